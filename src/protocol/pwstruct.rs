//! The password record of a PWD reply (`PWSTRUCT=name@domain:passwd:...`), written and
//! parsed the way the C client's `strToPw` reads it.

use std::fmt;

use super::{refuse_bytes, split_at_first, DecodeError, EncodeError};

/// Prefix of every PWD payload. The C parser drops it when present and also reads
/// payloads without it, so decoding accepts both.
const PWSTRUCT_PREFIX: &[u8] = b"PWSTRUCT=";

/// What the C client tests for (with `strncmp`) to decide that a PWD reply means
/// "no such user". No user name may start with it, or a real record would read as absent.
const NOT_FOUND_MARKER: &[u8] = b"No such user";

/// The exact text the C server puts between `PWSTRUCT=` and the email it was asked about.
const NOT_FOUND_PREFIX: &[u8] = b"No such user ";

/// SCRAM passwords are the one field allowed to contain `:`; the C parser recognises them
/// by this prefix and then keeps exactly two inner colons.
const SCRAM_PREFIX: &[u8] = b"{SCRAM-SHA-";

/// Number of inner `:` a SCRAM password must carry to be read back by the C parser:
/// `{SCRAM-SHA-256}iter,salt,stored,server:hexsaltedpassword:cleartext`.
const SCRAM_COLONS: usize = 2;

/// Number of `:`-separated fields in a PWSTRUCT record (the name field includes `@domain`).
const PW_FIELD_COUNT: usize = 8;

/// A password record as carried by a PWD reply; also a user's row as the database holds
/// it (`db::Database::password`), and packed, as the cache holds it.
///
/// `Debug` is written by hand so that the password never reaches a log through `{:?}`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PwStruct {
    pub name: Vec<u8>,
    /// In a reply, the domain the client asked about, not necessarily the one in the
    /// database; in a row read from the database, the row's (the real domain).
    pub domain: Vec<u8>,
    /// The hash, or `scram,hash` when the user has a SCRAM credential.
    pub passwd: Vec<u8>,
    pub uid: u32,
    /// Carries the per-user flag bits (no POP, no relay, over quota, ...).
    pub gid: u32,
    pub gecos: Vec<u8>,
    pub dir: Vec<u8>,
    /// IndiMail keeps the quota string here (`524288000`, `NOQUOTA`).
    pub shell: Vec<u8>,
    pub inactive: bool,
}

impl fmt::Debug for PwStruct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PwStruct")
            .field("name", &String::from_utf8_lossy(&self.name))
            .field("domain", &String::from_utf8_lossy(&self.domain))
            .field(
                "passwd",
                &format_args!("<{} bytes redacted>", self.passwd.len()),
            )
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("gecos", &String::from_utf8_lossy(&self.gecos))
            .field("dir", &String::from_utf8_lossy(&self.dir))
            .field("shell", &String::from_utf8_lossy(&self.shell))
            .field("inactive", &self.inactive)
            .finish()
    }
}

impl PwStruct {
    /// Refuses any value the C parser (`strToPw`) would split differently from what we
    /// meant: it cuts the record at every `:` (except inside a SCRAM password) and the name
    /// at its first `@`, and a name starting with `No such user` reads as "absent".
    fn check_writable(&self) -> Result<(), EncodeError> {
        refuse_bytes("name", &self.name, b"\0:@")?;
        if self.name.starts_with(NOT_FOUND_MARKER) {
            return Err(EncodeError::NameLooksLikeNotFound);
        }
        refuse_bytes("domain", &self.domain, b"\0:")?;
        refuse_bytes("password", &self.passwd, b"\0")?;
        check_password_colons(&self.passwd)?;
        refuse_bytes("gecos", &self.gecos, b"\0:")?;
        refuse_bytes("dir", &self.dir, b"\0:")?;
        refuse_bytes("shell", &self.shell, b"\0:")?;
        Ok(())
    }

    /// The record text after `PWSTRUCT=`:
    /// `name@domain:passwd:uid:gid:gecos:dir:shell:0|1`.
    fn write_record(&self, out: &mut Vec<u8>) {
        // Room for the whole record (and the NUL a reply adds), so that it
        // is written without growing the buffer: a daemon writes one for
        // every cached password answer.
        out.reserve(
            self.name.len()
                + self.domain.len()
                + self.passwd.len()
                + self.gecos.len()
                + self.dir.len()
                + self.shell.len()
                + 2 * 10
                + 10,
        );
        out.extend_from_slice(&self.name);
        out.push(b'@');
        out.extend_from_slice(&self.domain);
        out.push(b':');
        out.extend_from_slice(&self.passwd);
        for n in [self.uid, self.gid] {
            out.push(b':');
            decimal(n, out);
        }
        for field in [
            &self.gecos[..],
            &self.dir,
            &self.shell,
            if self.inactive { b"1" } else { b"0" },
        ] {
            out.push(b':');
            out.extend_from_slice(field);
        }
    }

    /// Parses the record text after `PWSTRUCT=` the way the C client's `strToPw` does,
    /// but strictly: exactly 8 fields, numeric uid and gid, an inactive flag of 0 or 1.
    fn parse_record(record: &[u8]) -> Result<PwStruct, DecodeError> {
        let fields: Vec<&[u8]> = record.split(|&b| b == b':').collect();
        // The C parser lets a SCRAM password keep two inner colons, but only when the
        // record has more than the usual number of fields.
        let (user, passwd, rest) = match fields.as_slice() {
            [user, first, second, third, rest @ ..]
                if fields.len() > PW_FIELD_COUNT && first.starts_with(SCRAM_PREFIX) =>
            {
                (*user, [*first, *second, *third].join(&b':'), rest)
            }
            [user, passwd, rest @ ..] => (*user, passwd.to_vec(), rest),
            _ => return Err(field_count_error(fields.len())),
        };
        let [uid, gid, gecos, dir, shell, inactive] = rest else {
            return Err(field_count_error(rest.len() + 2));
        };
        let (name, domain) = split_at_first(user, b'@');
        Ok(PwStruct {
            name: name.to_vec(),
            domain: domain.to_vec(),
            passwd,
            uid: parse_unsigned_decimal("uid", uid)?,
            gid: parse_unsigned_decimal("gid", gid)?,
            gecos: gecos.to_vec(),
            dir: dir.to_vec(),
            shell: shell.to_vec(),
            inactive: parse_inactive_flag(inactive)?,
        })
    }
}

/// Answer to a PWD query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordReply {
    Found(PwStruct),
    /// The user does not exist; carries the email exactly as the client sent it.
    NoSuchUser(Vec<u8>),
}

impl PasswordReply {
    /// The payload text without its final NUL: `PWSTRUCT=<record>` or
    /// `PWSTRUCT=No such user <email>`.
    pub fn to_text(&self) -> Result<Vec<u8>, EncodeError> {
        let mut text = PWSTRUCT_PREFIX.to_vec();
        match self {
            PasswordReply::Found(pw) => {
                pw.check_writable()?;
                pw.write_record(&mut text);
            }
            PasswordReply::NoSuchUser(email) => {
                refuse_bytes("email", email, b"\0")?;
                text.extend_from_slice(NOT_FOUND_PREFIX);
                text.extend_from_slice(email);
            }
        }
        Ok(text)
    }

    /// Parses the payload text without its final NUL. Like the C client it accepts the
    /// text with or without the `PWSTRUCT=` prefix.
    pub fn parse_text(text: &[u8]) -> Result<PasswordReply, DecodeError> {
        let text = text.strip_prefix(PWSTRUCT_PREFIX).unwrap_or(text);
        if let Some(email) = text.strip_prefix(NOT_FOUND_PREFIX) {
            return Ok(PasswordReply::NoSuchUser(email.to_vec()));
        }
        if text.starts_with(NOT_FOUND_MARKER) {
            // The C client would call this "absent" while we could not name the email:
            // refuse rather than guess.
            return Err(DecodeError::BadPwStruct {
                field: "name",
                problem: "starts with \"No such user\" but is not a not-found reply",
            });
        }
        PwStruct::parse_record(text).map(PasswordReply::Found)
    }
}

/// A password may contain `:` only as a SCRAM value with exactly two of them, the one
/// shape the C parser reassembles.
fn check_password_colons(passwd: &[u8]) -> Result<(), EncodeError> {
    let colons = passwd.iter().filter(|&&b| b == b':').count();
    match colons {
        0 => Ok(()),
        SCRAM_COLONS if passwd.starts_with(SCRAM_PREFIX) => Ok(()),
        _ => Err(EncodeError::PasswordColons(colons)),
    }
}

/// Append `n` in decimal.
fn decimal(n: u32, out: &mut Vec<u8>) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The error for a PWSTRUCT record with the wrong number of `:`-separated fields.
fn field_count_error(found: usize) -> DecodeError {
    DecodeError::BadPwStruct {
        field: "record",
        problem: if found < PW_FIELD_COUNT {
            "has fewer than 8 ':'-separated fields"
        } else {
            "has more than 8 ':'-separated fields"
        },
    }
}

/// Parses a uid or gid: one or more ASCII digits (no sign, no spaces) that fit in a u32.
fn parse_unsigned_decimal(field: &'static str, digits: &[u8]) -> Result<u32, DecodeError> {
    let bad = |problem| DecodeError::BadPwStruct { field, problem };
    if digits.is_empty() {
        return Err(bad("is empty"));
    }
    digits.iter().try_fold(0u32, |value, &digit| {
        if !digit.is_ascii_digit() {
            return Err(bad("is not an unsigned decimal number"));
        }
        value
            .checked_mul(10)
            .and_then(|value| value.checked_add(u32::from(digit - b'0')))
            .ok_or_else(|| bad("does not fit in 32 bits"))
    })
}

/// Parses the inactive flag, which the C server writes as `0` or `1`.
fn parse_inactive_flag(flag: &[u8]) -> Result<bool, DecodeError> {
    match flag {
        b"0" => Ok(false),
        b"1" => Ok(true),
        _ => Err(DecodeError::BadPwStruct {
            field: "inactive flag",
            problem: "is neither 0 nor 1",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use super::*;

    #[test]
    fn decimal_writes_what_to_string_writes() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            555,
            65_535,
            1 << 31,
            u32::MAX - 1,
            u32::MAX,
        ] {
            let mut out = b"x".to_vec();
            decimal(n, &mut out);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn pwd_example_is_byte_exact() {
        let bytes = Reply::Password(PasswordReply::Found(joe()))
            .encode()
            .unwrap();
        assert_eq!(bytes[..4], [90, 0, 0, 0]);
        assert_eq!(&bytes[4..], JOE_PWSTRUCT);
        assert_eq!(JOE_PWSTRUCT.len(), 90);
        assert_eq!(
            Reply::decode(QueryType::Password, &bytes).unwrap(),
            Reply::Password(PasswordReply::Found(joe()))
        );
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn pwd_no_such_user_is_byte_exact() {
        let reply = Reply::Password(PasswordReply::NoSuchUser(b"joe@example.com".to_vec()));
        let bytes = reply.encode().unwrap();
        let text = b"PWSTRUCT=No such user joe@example.com\0";
        assert_eq!(text.len(), 38);
        assert_eq!(bytes[..4], [38, 0, 0, 0]);
        assert_eq!(&bytes[4..], text);
        assert_eq!(Reply::decode(QueryType::Password, &bytes).unwrap(), reply);
    }

    #[test]
    fn pwd_scram_with_two_colons_round_trips() {
        let mut pw = joe();
        pw.passwd = SCRAM_TWO_COLONS.to_vec();
        pw.gid = 0x10;
        pw.inactive = true;
        let reply = Reply::Password(PasswordReply::Found(pw));
        let bytes = reply.encode().unwrap();
        let mut expected_text = b"PWSTRUCT=joe@example.com:".to_vec();
        expected_text.extend_from_slice(SCRAM_TWO_COLONS);
        expected_text
            .extend_from_slice(b":1:16:Joe Bloggs:/home/mail/example.com/joe:524288000:1\0");
        assert_eq!(&bytes[4..], &expected_text[..]);
        assert_eq!(Reply::decode(QueryType::Password, &bytes).unwrap(), reply);
    }

    #[test]
    fn pwd_scram_without_colons_round_trips() {
        let mut pw = joe();
        pw.passwd = b"{SCRAM-SHA-1}4096,salt,stored,server".to_vec();
        let reply = Reply::Password(PasswordReply::Found(pw));
        assert_eq!(
            Reply::decode(QueryType::Password, &reply.encode().unwrap()).unwrap(),
            reply
        );
    }

    #[test]
    fn pwd_encode_refuses_what_the_c_parser_misreads() {
        let refused = |edit: fn(&mut PwStruct)| {
            let mut pw = joe();
            edit(&mut pw);
            Reply::Password(PasswordReply::Found(pw))
                .encode()
                .unwrap_err()
        };
        assert_eq!(
            refused(|pw| pw.passwd = [SCRAM_TWO_COLONS, b":more"].concat()),
            EncodeError::PasswordColons(3)
        );
        assert_eq!(
            refused(|pw| pw.passwd = b"{SCRAM-SHA-256}a:b".to_vec()),
            EncodeError::PasswordColons(1)
        );
        assert_eq!(
            refused(|pw| pw.passwd = b"plain:a:b".to_vec()),
            EncodeError::PasswordColons(2)
        );
        assert_eq!(
            refused(|pw| pw.passwd = b"hash\0".to_vec()),
            forbidden("password", 0)
        );
        assert_eq!(
            refused(|pw| pw.name = b"jo@e".to_vec()),
            forbidden("name", b'@')
        );
        assert_eq!(
            refused(|pw| pw.name = b"jo:e".to_vec()),
            forbidden("name", b':')
        );
        assert_eq!(
            refused(|pw| pw.name = b"No such user".to_vec()),
            EncodeError::NameLooksLikeNotFound
        );
        assert_eq!(
            refused(|pw| pw.domain = b"a:b".to_vec()),
            forbidden("domain", b':')
        );
        assert_eq!(
            refused(|pw| pw.gecos = b"Bloggs, Joe: Esq.".to_vec()),
            forbidden("gecos", b':')
        );
        assert_eq!(
            refused(|pw| pw.dir = b"/home:x".to_vec()),
            forbidden("dir", b':')
        );
        assert_eq!(
            refused(|pw| pw.shell = b"\0".to_vec()),
            forbidden("shell", 0)
        );
        assert_eq!(
            Reply::Password(PasswordReply::NoSuchUser(b"a\0b".to_vec())).encode(),
            Err(forbidden("email", 0))
        );
    }

    #[test]
    fn pwd_payload_longer_than_pipe_buf_is_refused() {
        let mut pw = joe();
        pw.gecos = vec![b'g'; PIPE_BUF];
        assert!(matches!(
            Reply::Password(PasswordReply::Found(pw)).encode(),
            Err(EncodeError::PayloadTooLong(_))
        ));
    }

    #[test]
    fn pwd_decode_accepts_what_c_accepts() {
        // No PWSTRUCT= prefix, and a name without domain.
        let reply = Reply::decode(QueryType::Password, &pwd_payload(b"joe:x:7:8:g:d:s:1")).unwrap();
        let Reply::Password(PasswordReply::Found(pw)) = reply else {
            panic!("expected a record, got {reply:?}");
        };
        assert_eq!(
            (pw.name.as_slice(), pw.domain.as_slice()),
            (&b"joe"[..], &b""[..])
        );
        assert_eq!((pw.uid, pw.gid, pw.inactive), (7, 8, true));
        // The name is cut at the first '@'; the domain keeps the rest.
        let reply = Reply::decode(
            QueryType::Password,
            &pwd_payload(b"PWSTRUCT=a@b@c:x:1:2:g:d:s:0"),
        )
        .unwrap();
        let Reply::Password(PasswordReply::Found(pw)) = reply else {
            panic!("expected a record, got {reply:?}");
        };
        assert_eq!(
            (pw.name.as_slice(), pw.domain.as_slice()),
            (&b"a"[..], &b"b@c"[..])
        );
        // Empty email in a not-found reply.
        assert_eq!(
            Reply::decode(QueryType::Password, &pwd_payload(b"PWSTRUCT=No such user ")).unwrap(),
            Reply::Password(PasswordReply::NoSuchUser(Vec::new()))
        );
    }

    #[test]
    fn pwd_decode_errors_name_the_field() {
        let field_of = |text: &[u8]| match Reply::decode(QueryType::Password, &pwd_payload(text)) {
            Err(DecodeError::BadPwStruct { field, .. }) => field,
            other => panic!("expected a PWSTRUCT error, got {other:?}"),
        };
        assert_eq!(field_of(b"PWSTRUCT="), "record");
        assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:2:g:d:s"), "record");
        assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:2:g:d:s:0:extra"), "record");
        assert_eq!(field_of(b"PWSTRUCT=a@b:x::2:g:d:s:0"), "uid");
        assert_eq!(field_of(b"PWSTRUCT=a@b:x:+1:2:g:d:s:0"), "uid");
        assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:-2:g:d:s:0"), "gid");
        assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:4294967296:g:d:s:0"), "gid");
        assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:2:g:d:s:2"), "inactive flag");
        assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:2:g:d:s:"), "inactive flag");
        assert_eq!(field_of(b"PWSTRUCT=No such userX"), "name");
        // A SCRAM password with one colon swallows the uid, leaving too few fields.
        assert_eq!(
            field_of(b"PWSTRUCT=a@b:{SCRAM-SHA-1}x:y:1:2:g:d:s:0"),
            "record"
        );
        // The uid 4294967295 is the largest accepted.
        assert!(Reply::decode(
            QueryType::Password,
            &pwd_payload(b"a@b:x:4294967295:0:g:d:s:0")
        )
        .is_ok());
    }

    #[test]
    fn pwd_decode_error_messages_hold_no_password() {
        let secret = b"S3cr3tPassw0rd";
        let text = [&b"PWSTRUCT=a@b:"[..], secret, b":1:x:g:d:s:0"].concat();
        let err = Reply::decode(QueryType::Password, &pwd_payload(&text)).unwrap_err();
        assert!(!err.to_string().contains("S3cr3t"), "{err}");
        let mut pw = joe();
        pw.passwd = secret.to_vec();
        assert!(!format!("{pw:?}").contains("S3cr3t"));
    }

    #[test]
    fn pwd_framing_errors() {
        // Payload without its NUL.
        assert_eq!(
            Reply::decode(QueryType::Password, &reply_bytes(3, b"abc")),
            Err(DecodeError::MissingNul { field: "PWSTRUCT" })
        );
        // NUL inside the text.
        assert!(matches!(
            Reply::decode(QueryType::Password, &reply_bytes(4, b"a\0b\0")),
            Err(DecodeError::BadPayload(_))
        ));
        // 0 means error for PWD; a negative count other than -1 is meaningless.
        assert_eq!(
            Reply::decode(QueryType::Password, &reply_bytes(0, b"")),
            Ok(Reply::Error)
        );
        assert_eq!(
            Reply::decode(QueryType::Password, &reply_bytes(-2, b"")),
            Err(bad_status(QueryType::Password, -2))
        );
        assert_eq!(
            Reply::decode(QueryType::Password, &reply_bytes(4097, b"")),
            Err(DecodeError::TooLong(4097))
        );
        assert_eq!(
            Reply::decode(QueryType::Password, &reply_bytes(10, b"abc\0")),
            Err(DecodeError::ShortBody {
                expected: 10,
                got: 4
            })
        );
    }
}
