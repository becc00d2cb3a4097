//! The inlookup wire format: query types, request records and replies.
//!
//! Everything here is a pure function over bytes. Moving those bytes through a FIFO or a
//! TCP stream is the transport's job; keeping the two apart lets the format be tested
//! byte for byte against the C peers without any I/O.
//!
//! Every integer on the wire is a C `int` in host byte order: the C client and server
//! never convert it. This module therefore always uses `i32::to_ne_bytes` and
//! `i32::from_ne_bytes`, which is little-endian on every platform IndiMail ships for.
//!
//! Decoding is total: any byte string either decodes or yields a [`DecodeError`], and
//! nothing in here panics on input, because requests come from any local process that can
//! write a server FIFO. Encoding refuses values that a C peer would read back as something
//! else ([`EncodeError`]), so what we send always means what we meant.

use std::fmt;

use thiserror::Error;

/// Linux `PIPE_BUF`: the largest write a FIFO keeps atomic. A whole request must fit in
/// one such write so that requests from concurrent clients never interleave, and the C
/// client refuses replies whose byte count is larger.
pub const PIPE_BUF: usize = 4096;

/// The largest accepted value of a request's length prefix: the prefix counts only the
/// bytes after itself, and prefix plus body must fit in one atomic write.
pub const MAX_BODY_LEN: usize = PIPE_BUF - INT_LEN;

/// Size of the C `int` that starts every request and every reply.
const INT_LEN: usize = 4;

/// The first int of a reply that means "temporary or system error" for every query type.
const ERROR_STATUS: i32 = -1;

/// Bytes between the type byte and the email: the C client always writes a NUL there.
const TYPE_SEPARATOR: u8 = 0;

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

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a byte string is not a valid request or reply.
///
/// Messages never quote field contents that could be secret (a password travels in PWD
/// replies), only names of fields, counts and single separator bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A request length prefix that is zero or negative. The C server compares it signed
    /// and would overflow its buffer with a negative one; we refuse it.
    #[error("request length prefix {0} is not a positive byte count")]
    BadLength(i32),
    /// A length or byte count larger than one atomic pipe write allows.
    #[error("length {0} is larger than one atomic pipe write allows")]
    TooLong(usize),
    /// Fewer than the 4 bytes of the leading int.
    #[error("message ends after {got} bytes, inside its 4-byte leading int")]
    ShortPrefix { got: usize },
    /// Fewer bytes than the leading int announced.
    #[error("expected {expected} bytes after the leading int, got only {got}")]
    ShortBody { expected: usize, got: usize },
    /// A field that should end with a NUL byte does not.
    #[error("the {field} field has no terminating NUL byte")]
    MissingNul { field: &'static str },
    /// Byte 5 of a request (the one after the type byte) is not 0x00.
    #[error("the byte after the query type must be 0x00, found 0x{0:02x}")]
    BadSeparator(u8),
    /// A well-formed request whose type byte is not 1..=7. The reply path is kept so that
    /// the server can still answer -1 instead of leaving the client to time out.
    #[error("unknown query type {type_byte}")]
    UnknownType { type_byte: u8, reply_path: Vec<u8> },
    /// Bytes left over after a complete message.
    #[error("{0} unexpected bytes after the end of the message")]
    TrailingBytes(usize),
    /// A reply's first int that means nothing for this query type (USER 7, RELAY 3, a
    /// negative byte count, a LIMIT count other than the struct size, ...).
    #[error("{value} is not a valid first int in a reply to a {}", .qtype.log_name())]
    BadStatus { qtype: QueryType, value: i32 },
    /// A PWSTRUCT record that the strict parser cannot read; `field` names the culprit.
    #[error("PWSTRUCT {field} {problem}")]
    BadPwStruct {
        field: &'static str,
        problem: &'static str,
    },
    /// Any other malformed reply payload; the text says what is wrong.
    #[error("malformed reply payload: {0}")]
    BadPayload(String),
}

/// Why a value cannot be put on the wire in a form the C peers read back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A byte the field cannot carry: a NUL anywhere (it would end the C string early),
    /// a `:` or `@` that would move the C parser's field boundaries, a newline in an
    /// alias line.
    #[error("the {field} field contains {}, which the wire format cannot carry", ByteName(*.byte))]
    ForbiddenByte { field: &'static str, byte: u8 },
    /// A request whose total size (length prefix included) exceeds `PIPE_BUF`, so it could
    /// not be written atomically.
    #[error("request of {0} bytes does not fit in one atomic pipe write of {PIPE_BUF} bytes")]
    RequestTooLong(usize),
    /// A reply payload (with its NUL) longer than `PIPE_BUF`; the C server sends -1 instead.
    #[error("reply payload of {0} bytes is longer than the {PIPE_BUF}-byte limit of C clients")]
    PayloadTooLong(usize),
    /// A password with `:` in it that is not a SCRAM value with exactly two of them.
    #[error(
        "the password contains {0} ':' characters; only a {{SCRAM-SHA-...}} value with exactly two can be parsed back"
    )]
    PasswordColons(usize),
    /// A user name that starts with `No such user`, which the C client reads as "absent".
    #[error("a user name starting with \"No such user\" would read as a not-found reply")]
    NameLooksLikeNotFound,
}

/// Renders a single forbidden byte readably in error messages.
struct ByteName(u8);

impl fmt::Display for ByteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("a NUL byte"),
            b'\n' => f.write_str("a newline"),
            b if b.is_ascii_graphic() => write!(f, "'{}'", char::from(b)),
            b => write!(f, "byte 0x{b:02x}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Query types
// ---------------------------------------------------------------------------------------

/// The query types of the FIFO protocol, with the numbers the C peers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum QueryType {
    User = 1,
    Relay = 2,
    Password = 3,
    Host = 4,
    Alias = 5,
    Limit = 6,
    Domain = 7,
}

impl QueryType {
    /// Every query type, in wire order.
    pub const ALL: [QueryType; 7] = [
        QueryType::User,
        QueryType::Relay,
        QueryType::Password,
        QueryType::Host,
        QueryType::Alias,
        QueryType::Limit,
        QueryType::Domain,
    ];

    /// The query type for a request's type byte, `None` for anything outside 1..=7.
    pub fn from_u8(b: u8) -> Option<QueryType> {
        Self::ALL.into_iter().find(|qtype| qtype.as_u8() == b)
    }

    /// The type byte written on the wire.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The name the C server prints in its logs, single quotes included, so that log
    /// readers written for the C daemon keep working.
    pub fn log_name(self) -> &'static str {
        match self {
            QueryType::User => "'User Query'",
            QueryType::Relay => "'Relay Query'",
            QueryType::Password => "'Password Query'",
            QueryType::Host => "'Host Query'",
            QueryType::Alias => "'Alias Query'",
            QueryType::Limit => "'Domain Limits Query'",
            QueryType::Domain => "'Domain Query'",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// One client request: what to look up and where to send the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub qtype: QueryType,
    /// An address, a bare user, or a bare domain for LIMIT and DOMAIN queries.
    pub email: Vec<u8>,
    /// The client's reply FIFO, or the literal `socket` over TCP.
    pub reply_path: Vec<u8>,
    /// The client's IP address, needed by RELAY queries only; empty when absent.
    pub ip: Vec<u8>,
}

impl Request {
    /// The whole record, ready for a single atomic write: an i32 length (native endian,
    /// counting the bytes after it), the type byte, 0x00, `email\0`, `reply_path\0`, the
    /// ip bytes and a final `\0` (so a request without IP ends in two NULs).
    ///
    /// Refuses a NUL inside any field (the server splits fields at NULs) and a record
    /// longer than `PIPE_BUF` (it would not be written atomically).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        refuse_bytes("email", &self.email, b"\0")?;
        refuse_bytes("reply path", &self.reply_path, b"\0")?;
        refuse_bytes("ip", &self.ip, b"\0")?;

        let body_len = 2 + self.email.len() + 1 + self.reply_path.len() + 1 + self.ip.len() + 1;
        let total = INT_LEN + body_len;
        if total > PIPE_BUF {
            return Err(EncodeError::RequestTooLong(total));
        }

        let mut record = Vec::with_capacity(total);
        record.extend_from_slice(&bounded_int(body_len).to_ne_bytes());
        record.push(self.qtype.as_u8());
        record.push(TYPE_SEPARATOR);
        for field in [&self.email, &self.reply_path, &self.ip] {
            record.extend_from_slice(field);
            record.push(0);
        }
        Ok(record)
    }

    /// Validates a request's 4-byte length prefix and returns the body length that
    /// follows it. A reader must call this before reading the body, so that a hostile
    /// length never sizes a buffer.
    pub fn body_len(prefix: [u8; 4]) -> Result<usize, DecodeError> {
        Self::body_len_within(prefix, MAX_BODY_LEN)
    }

    /// Like [`Request::body_len`] with a caller-chosen maximum (the C server accepts at most
    /// 1024 body bytes in its TCP modes).
    pub fn body_len_within(prefix: [u8; 4], max_body_len: usize) -> Result<usize, DecodeError> {
        let announced = i32::from_ne_bytes(prefix);
        let len = match usize::try_from(announced) {
            Ok(len) if len > 0 => len,
            _ => return Err(DecodeError::BadLength(announced)),
        };
        if len > max_body_len {
            return Err(DecodeError::TooLong(len));
        }
        Ok(len)
    }

    /// Decodes a request body (the bytes after the length prefix).
    ///
    /// Unlike the C server, which scans for NULs past the end of what it read, this parses
    /// strictly inside `body`: the type byte, 0x00, then exactly three NUL-terminated
    /// fields (email, reply path, ip; any may be empty) and nothing after them. The type
    /// byte is judged last, so that a request of unknown type still yields its reply path.
    pub fn decode_body(body: &[u8]) -> Result<Request, DecodeError> {
        if body.len() > MAX_BODY_LEN {
            return Err(DecodeError::TooLong(body.len()));
        }
        let [type_byte, separator, fields @ ..] = body else {
            return Err(DecodeError::ShortBody {
                expected: 2,
                got: body.len(),
            });
        };
        if *separator != TYPE_SEPARATOR {
            return Err(DecodeError::BadSeparator(*separator));
        }
        let (email, rest) = take_c_string(fields, "email")?;
        let (reply_path, rest) = take_c_string(rest, "reply path")?;
        let (ip, rest) = take_c_string(rest, "ip")?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()));
        }
        let Some(qtype) = QueryType::from_u8(*type_byte) else {
            return Err(DecodeError::UnknownType {
                type_byte: *type_byte,
                reply_path: reply_path.to_vec(),
            });
        };
        Ok(Request {
            qtype,
            email: email.to_vec(),
            reply_path: reply_path.to_vec(),
            ip: ip.to_vec(),
        })
    }

    /// Decodes a whole record (prefix and body). The prefix must announce exactly the
    /// number of bytes that follow it.
    pub fn decode(record: &[u8]) -> Result<Request, DecodeError> {
        let (prefix, body) = split_leading_int(record)?;
        let expected = Self::body_len(*prefix)?;
        Self::decode_body(exact_len(body, expected)?)
    }
}

/// Type byte of the cache-flush request, an extension of this implementation (C servers
/// ignore it): forget every cached answer about one address or domain, for example after
/// a password change. Laid out like a query (the name in the email field, no ip); the
/// reply is one int, the number of cache entries removed, or -1.
pub const FLUSH_TYPE: u8 = 32;

/// A cache-flush request (see [`FLUSH_TYPE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushRequest {
    /// An address (`user@domain`) or a bare domain.
    pub name: Vec<u8>,
    pub reply_path: Vec<u8>,
}

impl FlushRequest {
    /// The whole record, as [`Request::encode`] lays out a query.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        refuse_bytes("email", &self.name, b"\0")?;
        refuse_bytes("reply path", &self.reply_path, b"\0")?;
        let body_len = 2 + self.name.len() + 1 + self.reply_path.len() + 1 + 1;
        let total = INT_LEN + body_len;
        if total > PIPE_BUF {
            return Err(EncodeError::RequestTooLong(total));
        }
        let mut record = Vec::with_capacity(total);
        record.extend_from_slice(&bounded_int(body_len).to_ne_bytes());
        record.extend_from_slice(&[FLUSH_TYPE, TYPE_SEPARATOR]);
        record.extend_from_slice(&self.name);
        record.push(0);
        record.extend_from_slice(&self.reply_path);
        record.extend_from_slice(&[0, 0]);
        Ok(record)
    }

    /// Decodes a body whose type byte is [`FLUSH_TYPE`], with the same strictness as
    /// [`Request::decode_body`]; the ip field must be empty.
    pub fn decode_body(body: &[u8]) -> Result<FlushRequest, DecodeError> {
        let [FLUSH_TYPE, separator, fields @ ..] = body else {
            return Err(DecodeError::BadPayload("not a flush request".into()));
        };
        if *separator != TYPE_SEPARATOR {
            return Err(DecodeError::BadSeparator(*separator));
        }
        let (name, rest) = take_c_string(fields, "email")?;
        let (reply_path, rest) = take_c_string(rest, "reply path")?;
        let (ip, rest) = take_c_string(rest, "ip")?;
        if !rest.is_empty() || !ip.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len() + ip.len()));
        }
        Ok(FlushRequest {
            name: name.to_vec(),
            reply_path: reply_path.to_vec(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Reply building blocks
// ---------------------------------------------------------------------------------------

/// Answer to a USER query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum UserStatus {
    /// The mailbox exists and may receive mail.
    Active = 0,
    /// No such user.
    Absent = 1,
    /// Found only in the inactive-users table.
    Inactive = 2,
    /// The user's gid carries the bounce-mail (over quota) flag.
    OverQuota = 3,
    /// No mailbox, but at least one alias row.
    Alias = 4,
}

impl UserStatus {
    /// The status int sent on the wire.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The status for a wire int, `None` for values the C server never sends.
    pub fn from_i32(value: i32) -> Option<UserStatus> {
        match value {
            0 => Some(UserStatus::Active),
            1 => Some(UserStatus::Absent),
            2 => Some(UserStatus::Inactive),
            3 => Some(UserStatus::OverQuota),
            4 => Some(UserStatus::Alias),
            _ => None,
        }
    }
}

/// Answer to a RELAY query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum RelayStatus {
    /// No unexpired relay row for this user and IP.
    NotAuthenticated = 0,
    /// A matching, unexpired relay row exists (POP/IMAP-before-SMTP).
    Authenticated = 1,
    /// Sent by C servers built without roaming-user support.
    Unsupported = -2,
}

impl RelayStatus {
    /// The status int sent on the wire.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The status for a wire int, `None` for values no server sends.
    pub fn from_i32(value: i32) -> Option<RelayStatus> {
        match value {
            0 => Some(RelayStatus::NotAuthenticated),
            1 => Some(RelayStatus::Authenticated),
            -2 => Some(RelayStatus::Unsupported),
            _ => None,
        }
    }
}

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

/// The domain limits record (`struct vlimits`), sent raw in the LP64 in-memory layout.
///
/// `-1` in the seven `i64` fields means unlimited or never expires; `0` in the four quota
/// fields means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VLimits {
    pub domain_expiry: i64,
    pub passwd_expiry: i64,
    pub maxpopaccounts: i64,
    pub maxaliases: i64,
    pub maxforwards: i64,
    pub maxautoresponders: i64,
    pub maxmailinglists: i64,
    pub diskquota: u64,
    pub maxmsgcount: u64,
    pub defaultquota: u64,
    pub defaultmaxmsgcount: u64,
    pub disable_pop: i16,
    pub disable_imap: i16,
    pub disable_dialup: i16,
    pub disable_passwordchanging: i16,
    pub disable_webmail: i16,
    pub disable_relay: i16,
    pub disable_smtp: i16,
    pub perm_account: i16,
    pub perm_alias: i16,
    pub perm_forward: i16,
    pub perm_autoresponder: i16,
    /// Bits 0-2 of the database's single `perm_maillist` column.
    pub perm_maillist: i16,
    /// Bits 3-5 of the database's `perm_maillist` column.
    pub perm_maillist_users: i16,
    /// Bits 6-8 of the database's `perm_maillist` column.
    pub perm_maillist_moderators: i16,
    pub perm_quota: i16,
    pub perm_defaultquota: i16,
    /// 1 = a domain row was found, 2 = a per-user row was found.
    pub limit_type: i16,
}

impl Default for VLimits {
    /// The limits of a domain without a vlimits row: nothing limited, nothing disabled.
    fn default() -> Self {
        VLimits {
            domain_expiry: -1,
            passwd_expiry: -1,
            maxpopaccounts: -1,
            maxaliases: -1,
            maxforwards: -1,
            maxautoresponders: -1,
            maxmailinglists: -1,
            diskquota: 0,
            maxmsgcount: 0,
            defaultquota: 0,
            defaultmaxmsgcount: 0,
            disable_pop: 0,
            disable_imap: 0,
            disable_dialup: 0,
            disable_passwordchanging: 0,
            disable_webmail: 0,
            disable_relay: 0,
            disable_smtp: 0,
            perm_account: 0,
            perm_alias: 0,
            perm_forward: 0,
            perm_autoresponder: 0,
            perm_maillist: 0,
            perm_maillist_users: 0,
            perm_maillist_moderators: 0,
            perm_quota: 0,
            perm_defaultquota: 0,
            limit_type: 0,
        }
    }
}

impl VLimits {
    /// `sizeof(struct vlimits)` on LP64 (x86-64, aarch64), trailing padding included.
    pub const SIZE: usize = 128;

    /// The C struct's bytes: fields in declaration order at their natural alignment,
    /// native endian, the 6 bytes of trailing padding zero.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut out = StructWriter::default();
        for long in [
            self.domain_expiry,
            self.passwd_expiry,
            self.maxpopaccounts,
            self.maxaliases,
            self.maxforwards,
            self.maxautoresponders,
            self.maxmailinglists,
        ] {
            out.put(&long.to_ne_bytes());
        }
        for quota in [
            self.diskquota,
            self.maxmsgcount,
            self.defaultquota,
            self.defaultmaxmsgcount,
        ] {
            out.put(&quota.to_ne_bytes());
        }
        for short in [
            self.disable_pop,
            self.disable_imap,
            self.disable_dialup,
            self.disable_passwordchanging,
            self.disable_webmail,
            self.disable_relay,
            self.disable_smtp,
            self.perm_account,
            self.perm_alias,
            self.perm_forward,
            self.perm_autoresponder,
            self.perm_maillist,
            self.perm_maillist_users,
            self.perm_maillist_moderators,
            self.perm_quota,
            self.perm_defaultquota,
            self.limit_type,
        ] {
            out.put(&short.to_ne_bytes());
        }
        out.bytes
    }

    /// Reads the C struct's bytes; exactly [`VLimits::SIZE`] of them. The padding is
    /// ignored: C servers send whatever was in memory there.
    pub fn from_bytes(b: &[u8]) -> Result<VLimits, DecodeError> {
        if b.len() != Self::SIZE {
            return Err(DecodeError::BadPayload(format!(
                "struct vlimits must be {} bytes, got {}",
                Self::SIZE,
                b.len()
            )));
        }
        let mut r = StructReader { rest: b };
        // Field initialisers run in the order written, which is the struct's order.
        Ok(VLimits {
            domain_expiry: i64::from_ne_bytes(r.take()?),
            passwd_expiry: i64::from_ne_bytes(r.take()?),
            maxpopaccounts: i64::from_ne_bytes(r.take()?),
            maxaliases: i64::from_ne_bytes(r.take()?),
            maxforwards: i64::from_ne_bytes(r.take()?),
            maxautoresponders: i64::from_ne_bytes(r.take()?),
            maxmailinglists: i64::from_ne_bytes(r.take()?),
            diskquota: u64::from_ne_bytes(r.take()?),
            maxmsgcount: u64::from_ne_bytes(r.take()?),
            defaultquota: u64::from_ne_bytes(r.take()?),
            defaultmaxmsgcount: u64::from_ne_bytes(r.take()?),
            disable_pop: i16::from_ne_bytes(r.take()?),
            disable_imap: i16::from_ne_bytes(r.take()?),
            disable_dialup: i16::from_ne_bytes(r.take()?),
            disable_passwordchanging: i16::from_ne_bytes(r.take()?),
            disable_webmail: i16::from_ne_bytes(r.take()?),
            disable_relay: i16::from_ne_bytes(r.take()?),
            disable_smtp: i16::from_ne_bytes(r.take()?),
            perm_account: i16::from_ne_bytes(r.take()?),
            perm_alias: i16::from_ne_bytes(r.take()?),
            perm_forward: i16::from_ne_bytes(r.take()?),
            perm_autoresponder: i16::from_ne_bytes(r.take()?),
            perm_maillist: i16::from_ne_bytes(r.take()?),
            perm_maillist_users: i16::from_ne_bytes(r.take()?),
            perm_maillist_moderators: i16::from_ne_bytes(r.take()?),
            perm_quota: i16::from_ne_bytes(r.take()?),
            perm_defaultquota: i16::from_ne_bytes(r.take()?),
            limit_type: i16::from_ne_bytes(r.take()?),
        })
    }
}

/// Lays out consecutive struct fields. The fields are written in descending alignment
/// (8-byte, then 2-byte), so consecutive placement equals the C layout.
struct StructWriter {
    bytes: [u8; VLimits::SIZE],
    offset: usize,
}

impl Default for StructWriter {
    fn default() -> Self {
        StructWriter {
            bytes: [0; VLimits::SIZE],
            offset: 0,
        }
    }
}

impl StructWriter {
    fn put(&mut self, field: &[u8]) {
        let end = self.offset + field.len();
        if let Some(slot) = self.bytes.get_mut(self.offset..end) {
            slot.copy_from_slice(field);
        }
        self.offset = end;
    }
}

/// Reads consecutive struct fields; the counterpart of [`StructWriter`].
struct StructReader<'a> {
    rest: &'a [u8],
}

impl StructReader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (field, rest) = self.rest.split_first_chunk::<N>().ok_or_else(|| {
            DecodeError::BadPayload("struct vlimits ends inside a field".to_owned())
        })?;
        self.rest = rest;
        Ok(*field)
    }
}

// ---------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------

/// A server's answer, as one of the shapes the C client knows for its query type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// USER: the int is the status, no payload.
    User(UserStatus),
    /// RELAY: the int is the status, no payload.
    Relay(RelayStatus),
    /// PWD: the int counts the `PWSTRUCT=` text and its NUL.
    Password(PasswordReply),
    /// HOST: `domain:host:port`; the int is its length plus the NUL.
    Host(Vec<u8>),
    /// ALIAS: each line followed by `\n`, then a NUL; no aliases is the lone NUL.
    Alias(Vec<Vec<u8>>),
    /// LIMIT: the int is 128, the payload the raw struct.
    Limits(VLimits),
    /// DOMAIN: the real domain; the int is its length plus the NUL.
    Domain(Vec<u8>),
    /// Int 0, no payload: "not found" for HOST, LIMIT, ALIAS and DOMAIN only (for USER
    /// and RELAY a 0 is a status, for PWD it means error).
    NotFound,
    /// Int -1, no payload: a temporary or system error, for any query type.
    Error,
}

impl Reply {
    /// The reply as one buffer: the int, then the payload if any. C clients read the int
    /// and the payload with separate reads, which works whether they arrive in one write
    /// or two.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        match self {
            Reply::User(status) => Ok(int_only(status.as_i32())),
            Reply::Relay(status) => Ok(int_only(status.as_i32())),
            Reply::Password(answer) => counted(with_nul(answer.to_text()?)),
            Reply::Host(text) => counted(c_string("host", text)?),
            Reply::Alias(lines) => counted(alias_payload(lines)?),
            Reply::Limits(limits) => counted(limits.to_bytes().to_vec()),
            Reply::Domain(text) => counted(c_string("domain", text)?),
            Reply::NotFound => Ok(int_only(0)),
            Reply::Error => Ok(int_only(ERROR_STATUS)),
        }
    }

    /// Whether this reply is a meaningful answer to a query of type `qtype`. A server
    /// should only send replies for which this holds: `NotFound` sent for a USER query,
    /// for example, would read as "active".
    pub fn is_valid_for(&self, qtype: QueryType) -> bool {
        match self {
            Reply::User(_) => qtype == QueryType::User,
            Reply::Relay(_) => qtype == QueryType::Relay,
            Reply::Password(_) => qtype == QueryType::Password,
            Reply::Host(_) => qtype == QueryType::Host,
            Reply::Alias(_) => qtype == QueryType::Alias,
            Reply::Limits(_) => qtype == QueryType::Limit,
            Reply::Domain(_) => qtype == QueryType::Domain,
            Reply::NotFound => matches!(
                qtype,
                QueryType::Host | QueryType::Alias | QueryType::Limit | QueryType::Domain
            ),
            Reply::Error => true,
        }
    }

    /// Decodes a complete reply (int and payload) to a query of type `qtype`.
    pub fn decode(qtype: QueryType, bytes: &[u8]) -> Result<Reply, DecodeError> {
        let (first, payload) = split_leading_int(bytes)?;
        Self::decode_parts(qtype, i32::from_ne_bytes(*first), payload)
    }

    /// Decodes a reply that a streaming client has read in two parts: the first int, then
    /// the [`Reply::payload_len`] bytes that follow it.
    pub fn decode_parts(
        qtype: QueryType,
        first: i32,
        payload: &[u8],
    ) -> Result<Reply, DecodeError> {
        let payload = exact_len(payload, Self::payload_len(qtype, first)?)?;
        if first == ERROR_STATUS {
            return Ok(Reply::Error);
        }
        let bad_status = DecodeError::BadStatus {
            qtype,
            value: first,
        };
        match qtype {
            QueryType::User => UserStatus::from_i32(first)
                .map(Reply::User)
                .ok_or(bad_status),
            QueryType::Relay => RelayStatus::from_i32(first)
                .map(Reply::Relay)
                .ok_or(bad_status),
            // The C server sends 0 when the lookup failed, and the C client treats it so.
            QueryType::Password if first == 0 => Ok(Reply::Error),
            _ if first == 0 => Ok(Reply::NotFound),
            QueryType::Password => {
                let text = c_string_text(payload, "PWSTRUCT")?;
                PasswordReply::parse_text(text).map(Reply::Password)
            }
            QueryType::Host => Ok(Reply::Host(c_string_text(payload, "host")?.to_vec())),
            QueryType::Alias => {
                parse_alias_list(c_string_text(payload, "alias list")?).map(Reply::Alias)
            }
            QueryType::Limit => VLimits::from_bytes(payload).map(Reply::Limits),
            QueryType::Domain => Ok(Reply::Domain(c_string_text(payload, "domain")?.to_vec())),
        }
    }

    /// For a streaming client: given the first int of a reply, how many payload bytes
    /// follow it. Status replies, errors and "not found" have none. Refuses ints that mean
    /// nothing for `qtype` and counts above `PIPE_BUF`, so that a hostile or confused
    /// server never sizes the client's buffer.
    pub fn payload_len(qtype: QueryType, first: i32) -> Result<usize, DecodeError> {
        if first == ERROR_STATUS {
            return Ok(0);
        }
        let bad_status = DecodeError::BadStatus {
            qtype,
            value: first,
        };
        match qtype {
            QueryType::User => UserStatus::from_i32(first).map(|_| 0).ok_or(bad_status),
            QueryType::Relay => RelayStatus::from_i32(first).map(|_| 0).ok_or(bad_status),
            QueryType::Limit => match payload_count(qtype, first)? {
                count @ (0 | VLimits::SIZE) => Ok(count),
                _ => Err(bad_status),
            },
            QueryType::Password | QueryType::Host | QueryType::Alias | QueryType::Domain => {
                payload_count(qtype, first)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Fails with [`EncodeError::ForbiddenByte`] on the first byte of `value` that is in
/// `forbidden`.
fn refuse_bytes(field: &'static str, value: &[u8], forbidden: &[u8]) -> Result<(), EncodeError> {
    match value.iter().find(|b| forbidden.contains(b)) {
        Some(&byte) => Err(EncodeError::ForbiddenByte { field, byte }),
        None => Ok(()),
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

/// Converts a length already checked against `PIPE_BUF` to the wire int.
fn bounded_int(len: usize) -> i32 {
    debug_assert!(len <= PIPE_BUF);
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// A reply that is only its first int.
fn int_only(value: i32) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
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

/// A reply of a byte count followed by that many payload bytes.
fn counted(payload: Vec<u8>) -> Result<Vec<u8>, EncodeError> {
    if payload.len() > PIPE_BUF {
        return Err(EncodeError::PayloadTooLong(payload.len()));
    }
    let mut reply = Vec::with_capacity(INT_LEN + payload.len());
    reply.extend_from_slice(&bounded_int(payload.len()).to_ne_bytes());
    reply.extend_from_slice(&payload);
    Ok(reply)
}

/// Appends the terminating NUL that C readers rely on.
fn with_nul(mut text: Vec<u8>) -> Vec<u8> {
    text.push(0);
    text
}

/// A NUL-terminated copy of `text`, refusing inner NULs.
fn c_string(field: &'static str, text: &[u8]) -> Result<Vec<u8>, EncodeError> {
    refuse_bytes(field, text, b"\0")?;
    Ok(with_nul(text.to_vec()))
}

/// The alias payload: every line followed by `\n`, then one NUL.
fn alias_payload(lines: &[Vec<u8>]) -> Result<Vec<u8>, EncodeError> {
    let mut payload = Vec::new();
    for line in lines {
        refuse_bytes("alias line", line, b"\0\n")?;
        payload.extend_from_slice(line);
        payload.push(b'\n');
    }
    Ok(with_nul(payload))
}

/// Splits the alias text (without its NUL) back into lines. Every line, the last one
/// included, must end with `\n`.
fn parse_alias_list(text: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(lines) = text.strip_suffix(b"\n") else {
        return Err(DecodeError::BadPayload(
            "the alias list does not end with a newline".to_owned(),
        ));
    };
    Ok(lines.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect())
}

/// The text of a NUL-terminated payload: it must end with a NUL and hold no other.
fn c_string_text<'a>(payload: &'a [u8], field: &'static str) -> Result<&'a [u8], DecodeError> {
    let Some((0, text)) = payload.split_last() else {
        return Err(DecodeError::MissingNul { field });
    };
    if let Some(offset) = text.iter().position(|&b| b == 0) {
        return Err(DecodeError::BadPayload(format!(
            "the {field} text holds a NUL byte at offset {offset}, before its end"
        )));
    }
    Ok(text)
}

/// A non-negative byte count of at most `PIPE_BUF`.
fn payload_count(qtype: QueryType, first: i32) -> Result<usize, DecodeError> {
    let count = usize::try_from(first).map_err(|_| DecodeError::BadStatus {
        qtype,
        value: first,
    })?;
    if count > PIPE_BUF {
        return Err(DecodeError::TooLong(count));
    }
    Ok(count)
}

/// Splits off the leading C int of a request or reply.
fn split_leading_int(bytes: &[u8]) -> Result<(&[u8; INT_LEN], &[u8]), DecodeError> {
    bytes
        .split_first_chunk::<INT_LEN>()
        .ok_or(DecodeError::ShortPrefix { got: bytes.len() })
}

/// `bytes` if it is exactly `expected` long; otherwise says which way it is off.
fn exact_len(bytes: &[u8], expected: usize) -> Result<&[u8], DecodeError> {
    match bytes.len().checked_sub(expected) {
        Some(0) => Ok(bytes),
        Some(extra) => Err(DecodeError::TrailingBytes(extra)),
        None => Err(DecodeError::ShortBody {
            expected,
            got: bytes.len(),
        }),
    }
}

/// Splits `bytes` at its first NUL into the string before it and the rest after it.
fn take_c_string<'a>(
    bytes: &'a [u8],
    field: &'static str,
) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
    let (text, rest) = split_at_first(bytes, 0);
    if text.len() == bytes.len() {
        return Err(DecodeError::MissingNul { field });
    }
    Ok((text, rest))
}

/// Splits at the first `separator`, which belongs to neither part; without one, the whole
/// input is the first part and the second is empty.
fn split_at_first(bytes: &[u8], separator: u8) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == separator) {
        Some(at) => (
            bytes.get(..at).unwrap_or_default(),
            bytes.get(at + 1..).unwrap_or_default(),
        ),
        None => (bytes, &[]),
    }
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

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// §2 example: USER query for joe@example.com, reply FIFO
    /// /run/indimail/inquery/123451700000000, no IP.
    #[cfg(target_endian = "little")]
    const USER_QUERY_RECORD: [u8; 61] = [
        0x39, 0x00, 0x00, 0x00, 0x01, 0x00, 0x6a, 0x6f, 0x65, 0x40, 0x65, 0x78, //
        0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x2f, 0x72, //
        0x75, 0x6e, 0x2f, 0x69, 0x6e, 0x64, 0x69, 0x6d, 0x61, 0x69, 0x6c, 0x2f, //
        0x69, 0x6e, 0x71, 0x75, 0x65, 0x72, 0x79, 0x2f, 0x31, 0x32, 0x33, 0x34, //
        0x35, 0x31, 0x37, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x00, //
        0x00,
    ];

    /// §2 example: RELAY query over TCP for joe@example.com from 10.0.0.1.
    #[cfg(target_endian = "little")]
    const RELAY_QUERY_RECORD: [u8; 38] = [
        0x22, 0x00, 0x00, 0x00, 0x02, 0x00, 0x6a, 0x6f, 0x65, 0x40, 0x65, 0x78, //
        0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x73, 0x6f, //
        0x63, 0x6b, 0x65, 0x74, 0x00, 0x31, 0x30, 0x2e, 0x30, 0x2e, 0x30, 0x2e, //
        0x31, 0x00,
    ];

    const SCRAM_TWO_COLONS: &[u8] =
        b"{SCRAM-SHA-256}4096,c2FsdA==,c3RvcmVk,c2VydmVy:68657873616c74:cleartext";

    fn user_query() -> Request {
        Request {
            qtype: QueryType::User,
            email: b"joe@example.com".to_vec(),
            reply_path: b"/run/indimail/inquery/123451700000000".to_vec(),
            ip: Vec::new(),
        }
    }

    fn relay_query() -> Request {
        Request {
            qtype: QueryType::Relay,
            email: b"joe@example.com".to_vec(),
            reply_path: b"socket".to_vec(),
            ip: b"10.0.0.1".to_vec(),
        }
    }

    fn joe() -> PwStruct {
        PwStruct {
            name: b"joe".to_vec(),
            domain: b"example.com".to_vec(),
            passwd: b"$5$abc$def".to_vec(),
            uid: 1,
            gid: 0,
            gecos: b"Joe Bloggs".to_vec(),
            dir: b"/home/mail/example.com/joe".to_vec(),
            shell: b"524288000".to_vec(),
            inactive: false,
        }
    }

    /// A record with the given length prefix and body, in native byte order.
    fn record(prefix: i32, body: &[u8]) -> Vec<u8> {
        let mut bytes = prefix.to_ne_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    fn forbidden(field: &'static str, byte: u8) -> EncodeError {
        EncodeError::ForbiddenByte { field, byte }
    }

    fn bad_status(qtype: QueryType, value: i32) -> DecodeError {
        DecodeError::BadStatus { qtype, value }
    }

    /// A record whose length prefix matches its body.
    fn framed(body: &[u8]) -> Vec<u8> {
        record(body.len() as i32, body)
    }

    /// A reply with the given first int and payload, in native byte order.
    fn reply_bytes(first: i32, payload: &[u8]) -> Vec<u8> {
        record(first, payload)
    }

    fn pwd_payload(text: &[u8]) -> Vec<u8> {
        let mut payload = text.to_vec();
        payload.push(0);
        reply_bytes(payload.len() as i32, &payload)
    }

    // --- query types -------------------------------------------------------------------

    #[test]
    fn query_type_numbers_and_log_names() {
        let expected = [
            (1, "'User Query'"),
            (2, "'Relay Query'"),
            (3, "'Password Query'"),
            (4, "'Host Query'"),
            (5, "'Alias Query'"),
            (6, "'Domain Limits Query'"),
            (7, "'Domain Query'"),
        ];
        for (qtype, (number, name)) in QueryType::ALL.into_iter().zip(expected) {
            assert_eq!(qtype.as_u8(), number);
            assert_eq!(QueryType::from_u8(number), Some(qtype));
            assert_eq!(qtype.log_name(), name);
        }
        assert_eq!(QueryType::from_u8(0), None);
        for b in 8..=255u8 {
            assert_eq!(QueryType::from_u8(b), None);
        }
    }

    // --- requests ----------------------------------------------------------------------

    #[cfg(target_endian = "little")]
    #[test]
    fn user_query_example_is_byte_exact() {
        assert_eq!(user_query().encode().unwrap(), USER_QUERY_RECORD);
        assert_eq!(Request::decode(&USER_QUERY_RECORD).unwrap(), user_query());
        assert_eq!(Request::body_len([0x39, 0, 0, 0]).unwrap(), 57);
        assert_eq!(
            Request::decode_body(&USER_QUERY_RECORD[4..]).unwrap(),
            user_query()
        );
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn relay_query_example_is_byte_exact() {
        assert_eq!(relay_query().encode().unwrap(), RELAY_QUERY_RECORD);
        assert_eq!(Request::decode(&RELAY_QUERY_RECORD).unwrap(), relay_query());
    }

    #[test]
    fn request_encode_refuses_nul_in_any_field() {
        let mut request = user_query();
        request.email = b"jo\0e".to_vec();
        assert_eq!(request.encode(), Err(forbidden("email", 0)));
        let mut request = user_query();
        request.reply_path = b"/tmp/\0".to_vec();
        assert_eq!(request.encode(), Err(forbidden("reply path", 0)));
        let mut request = relay_query();
        request.ip = b"10.0.0.1\0".to_vec();
        assert_eq!(request.encode(), Err(forbidden("ip", 0)));
    }

    #[test]
    fn request_encode_limit_is_pipe_buf() {
        // Fixed overhead: 4 prefix + type + separator + three NULs = 9 bytes.
        let mut request = user_query();
        request.reply_path = b"socket".to_vec();
        request.email = vec![b'a'; PIPE_BUF - 9 - request.reply_path.len()];
        let largest = request.encode().unwrap();
        assert_eq!(largest.len(), PIPE_BUF);
        assert_eq!(Request::decode(&largest).unwrap(), request);
        request.email.push(b'a');
        assert_eq!(
            request.encode(),
            Err(EncodeError::RequestTooLong(PIPE_BUF + 1))
        );
    }

    #[test]
    fn body_len_bounds() {
        assert_eq!(
            Request::body_len((-1i32).to_ne_bytes()),
            Err(DecodeError::BadLength(-1))
        );
        assert_eq!(
            Request::body_len(i32::MIN.to_ne_bytes()),
            Err(DecodeError::BadLength(i32::MIN))
        );
        assert_eq!(
            Request::body_len(0i32.to_ne_bytes()),
            Err(DecodeError::BadLength(0))
        );
        assert_eq!(Request::body_len(1i32.to_ne_bytes()), Ok(1));
        assert_eq!(Request::body_len(4092i32.to_ne_bytes()), Ok(MAX_BODY_LEN));
        assert_eq!(
            Request::body_len(4093i32.to_ne_bytes()),
            Err(DecodeError::TooLong(4093))
        );
        assert_eq!(
            Request::body_len(5000i32.to_ne_bytes()),
            Err(DecodeError::TooLong(5000))
        );
        assert_eq!(
            Request::body_len_within(1025i32.to_ne_bytes(), 1024),
            Err(DecodeError::TooLong(1025))
        );
    }

    #[test]
    fn request_decode_errors() {
        let good_body = b"\x01\x00joe@x\x00/tmp/f\x00\x00";
        let cases: Vec<(Vec<u8>, DecodeError)> = vec![
            (vec![], DecodeError::ShortPrefix { got: 0 }),
            (vec![9, 0, 0], DecodeError::ShortPrefix { got: 3 }),
            (record(-5, good_body), DecodeError::BadLength(-5)),
            (record(0, b""), DecodeError::BadLength(0)),
            (record(5000, good_body), DecodeError::TooLong(5000)),
            (
                record(good_body.len() as i32 + 3, good_body),
                DecodeError::ShortBody {
                    expected: good_body.len() + 3,
                    got: good_body.len(),
                },
            ),
            (
                framed(b"\x01"),
                DecodeError::ShortBody {
                    expected: 2,
                    got: 1,
                },
            ),
            (
                framed(b"\x01\x00"),
                DecodeError::MissingNul { field: "email" },
            ),
            (
                framed(b"\x01\x00joe"),
                DecodeError::MissingNul { field: "email" },
            ),
            (
                framed(b"\x01\x00joe\x00"),
                DecodeError::MissingNul {
                    field: "reply path",
                },
            ),
            (
                framed(b"\x01\x00joe\x00/tmp/f"),
                DecodeError::MissingNul {
                    field: "reply path",
                },
            ),
            (
                framed(b"\x01\x00joe\x00/tmp/f\x00"),
                DecodeError::MissingNul { field: "ip" },
            ),
            (
                framed(b"\x02\x00joe\x00/tmp/f\x001.2.3"),
                DecodeError::MissingNul { field: "ip" },
            ),
            (
                framed(b"\x01\x07joe\x00/tmp/f\x00\x00"),
                DecodeError::BadSeparator(7),
            ),
            (
                framed(b"\x01\x00joe\x00/tmp/f\x00\x00zz"),
                DecodeError::TrailingBytes(2),
            ),
            (
                framed(b"\x01\x00joe\x00/tmp/f\x00\x00\x00"),
                DecodeError::TrailingBytes(1),
            ),
            (
                framed(b"\x09\x00joe\x00/tmp/f\x00\x00"),
                DecodeError::UnknownType {
                    type_byte: 9,
                    reply_path: b"/tmp/f".to_vec(),
                },
            ),
            (
                framed(b"\x00\x00joe\x00/tmp/f\x00\x00"),
                DecodeError::UnknownType {
                    type_byte: 0,
                    reply_path: b"/tmp/f".to_vec(),
                },
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                Request::decode(&bytes),
                Err(expected),
                "record {bytes:02x?}"
            );
        }

        // The prefix must match the bytes given exactly, in both directions.
        let mut longer = record(good_body.len() as i32, good_body);
        longer.extend_from_slice(b"xyz");
        assert_eq!(Request::decode(&longer), Err(DecodeError::TrailingBytes(3)));

        assert_eq!(
            Request::decode_body(&[0x01; MAX_BODY_LEN + 1]),
            Err(DecodeError::TooLong(MAX_BODY_LEN + 1))
        );
        assert_eq!(
            Request::decode_body(b""),
            Err(DecodeError::ShortBody {
                expected: 2,
                got: 0
            })
        );
    }

    #[test]
    fn request_with_empty_fields_round_trips() {
        let request = Request {
            qtype: QueryType::Domain,
            email: Vec::new(),
            reply_path: Vec::new(),
            ip: Vec::new(),
        };
        let bytes = request.encode().unwrap();
        assert_eq!(bytes, record(5, b"\x07\x00\x00\x00\x00"));
        assert_eq!(Request::decode(&bytes).unwrap(), request);
    }

    // --- PWD replies -------------------------------------------------------------------

    const JOE_PWSTRUCT: &[u8] =
        b"PWSTRUCT=joe@example.com:$5$abc$def:1:0:Joe Bloggs:/home/mail/example.com/joe:524288000:0\0";

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

    // --- status replies ----------------------------------------------------------------

    #[test]
    fn status_replies() {
        for (status, value) in [
            (UserStatus::Active, 0i32),
            (UserStatus::Absent, 1),
            (UserStatus::Inactive, 2),
            (UserStatus::OverQuota, 3),
            (UserStatus::Alias, 4),
        ] {
            let bytes = Reply::User(status).encode().unwrap();
            assert_eq!(bytes, value.to_ne_bytes());
            assert_eq!(
                Reply::decode(QueryType::User, &bytes),
                Ok(Reply::User(status))
            );
        }
        for (status, value) in [
            (RelayStatus::NotAuthenticated, 0i32),
            (RelayStatus::Authenticated, 1),
            (RelayStatus::Unsupported, -2),
        ] {
            let bytes = Reply::Relay(status).encode().unwrap();
            assert_eq!(bytes, value.to_ne_bytes());
            assert_eq!(
                Reply::decode(QueryType::Relay, &bytes),
                Ok(Reply::Relay(status))
            );
        }
        for qtype in QueryType::ALL {
            assert_eq!(
                Reply::decode(qtype, &(-1i32).to_ne_bytes()),
                Ok(Reply::Error)
            );
            assert_eq!(Reply::payload_len(qtype, -1), Ok(0));
        }
        assert_eq!(Reply::Error.encode().unwrap(), [0xff; 4]);
        assert_eq!(Reply::NotFound.encode().unwrap(), [0; 4]);
    }

    #[test]
    fn status_reply_errors() {
        assert_eq!(
            Reply::decode(QueryType::User, &7i32.to_ne_bytes()),
            Err(bad_status(QueryType::User, 7))
        );
        assert_eq!(
            Reply::decode(QueryType::User, &(-2i32).to_ne_bytes()),
            Err(bad_status(QueryType::User, -2))
        );
        assert_eq!(
            Reply::decode(QueryType::Relay, &2i32.to_ne_bytes()),
            Err(bad_status(QueryType::Relay, 2))
        );
        assert_eq!(
            Reply::decode(QueryType::User, &reply_bytes(0, b"x")),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(
            Reply::decode(QueryType::User, &[0, 0]),
            Err(DecodeError::ShortPrefix { got: 2 })
        );
        let message = bad_status(QueryType::User, 7).to_string();
        assert!(message.contains("'User Query'"), "{message}");
    }

    // --- string replies ----------------------------------------------------------------

    #[cfg(target_endian = "little")]
    #[test]
    fn host_and_domain_replies_are_byte_exact() {
        let host = Reply::Host(b"example.com:mail1:25".to_vec());
        let bytes = host.encode().unwrap();
        assert_eq!(bytes, b"\x15\x00\x00\x00example.com:mail1:25\x00");
        assert_eq!(Reply::decode(QueryType::Host, &bytes), Ok(host));

        let domain = Reply::Domain(b"example.com".to_vec());
        let bytes = domain.encode().unwrap();
        assert_eq!(bytes, b"\x0c\x00\x00\x00example.com\x00");
        assert_eq!(Reply::decode(QueryType::Domain, &bytes), Ok(domain));
    }

    #[test]
    fn not_found_for_the_types_that_have_it() {
        for qtype in [
            QueryType::Host,
            QueryType::Alias,
            QueryType::Limit,
            QueryType::Domain,
        ] {
            assert_eq!(Reply::decode(qtype, &[0; 4]), Ok(Reply::NotFound));
            assert!(Reply::NotFound.is_valid_for(qtype));
        }
        for qtype in [QueryType::User, QueryType::Relay, QueryType::Password] {
            assert!(!Reply::NotFound.is_valid_for(qtype));
        }
    }

    #[test]
    fn string_reply_errors() {
        assert_eq!(
            Reply::Host(b"a\0b".to_vec()).encode(),
            Err(forbidden("host", 0))
        );
        assert_eq!(
            Reply::Domain(b"\0".to_vec()).encode(),
            Err(forbidden("domain", 0))
        );
        assert_eq!(
            Reply::Domain(vec![b'd'; PIPE_BUF]).encode(),
            Err(EncodeError::PayloadTooLong(PIPE_BUF + 1))
        );
        assert!(Reply::Domain(vec![b'd'; PIPE_BUF - 1]).encode().is_ok());
        assert_eq!(
            Reply::decode(QueryType::Host, &reply_bytes(3, b"abc")),
            Err(DecodeError::MissingNul { field: "host" })
        );
        assert_eq!(
            Reply::decode(QueryType::Domain, &reply_bytes(2, b"a\0\0")),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(
            Reply::decode(QueryType::Domain, &reply_bytes(-3, b"")),
            Err(bad_status(QueryType::Domain, -3))
        );
    }

    // --- alias replies -----------------------------------------------------------------

    #[cfg(target_endian = "little")]
    #[test]
    fn alias_list_is_byte_exact() {
        let two = Reply::Alias(vec![b"a@x".to_vec(), b"b@y".to_vec()]);
        let bytes = two.encode().unwrap();
        assert_eq!(bytes, b"\x09\x00\x00\x00a@x\nb@y\n\x00");
        assert_eq!(Reply::decode(QueryType::Alias, &bytes), Ok(two));

        let empty = Reply::Alias(Vec::new());
        assert_eq!(empty.encode().unwrap(), [1, 0, 0, 0, 0]);
        assert_eq!(Reply::decode(QueryType::Alias, &[1, 0, 0, 0, 0]), Ok(empty));
    }

    #[test]
    fn alias_list_errors() {
        assert_eq!(
            Reply::Alias(vec![b"a\nb".to_vec()]).encode(),
            Err(forbidden("alias line", b'\n'))
        );
        assert_eq!(
            Reply::Alias(vec![b"a\0".to_vec()]).encode(),
            Err(forbidden("alias line", 0))
        );
        assert!(matches!(
            Reply::decode(QueryType::Alias, &reply_bytes(4, b"a@x\0")),
            Err(DecodeError::BadPayload(_))
        ));
        assert_eq!(
            Reply::decode(QueryType::Alias, &reply_bytes(4, b"a@x\n")),
            Err(DecodeError::MissingNul {
                field: "alias list"
            })
        );
    }

    // --- limits --------------------------------------------------------------------------

    /// Every field distinct, so that a swapped or shifted field cannot go unnoticed.
    fn distinct_limits() -> VLimits {
        VLimits {
            domain_expiry: -1_000_001,
            passwd_expiry: 1_000_002,
            maxpopaccounts: 1_000_003,
            maxaliases: -1_000_004,
            maxforwards: 1_000_005,
            maxautoresponders: 1_000_006,
            maxmailinglists: 0x0102_0304_0506_0708,
            diskquota: 0x1112_1314_1516_1718,
            maxmsgcount: 0x2122_2324_2526_2728,
            defaultquota: u64::MAX - 3,
            defaultmaxmsgcount: 524_288_000,
            disable_pop: 101,
            disable_imap: 102,
            disable_dialup: 103,
            disable_passwordchanging: 104,
            disable_webmail: 105,
            disable_relay: 106,
            disable_smtp: 107,
            perm_account: 108,
            perm_alias: 109,
            perm_forward: -110,
            perm_autoresponder: 111,
            perm_maillist: 112,
            perm_maillist_users: 113,
            perm_maillist_moderators: 114,
            perm_quota: 0x0f0e,
            perm_defaultquota: 116,
            limit_type: 2,
        }
    }

    #[test]
    fn vlimits_layout_matches_lp64_offsets() {
        let limits = distinct_limits();
        let bytes = limits.to_bytes();
        let longs = [
            (0, limits.domain_expiry),
            (8, limits.passwd_expiry),
            (16, limits.maxpopaccounts),
            (24, limits.maxaliases),
            (32, limits.maxforwards),
            (40, limits.maxautoresponders),
            (48, limits.maxmailinglists),
        ];
        for (offset, value) in longs {
            assert_eq!(
                bytes[offset..offset + 8],
                value.to_ne_bytes(),
                "offset {offset}"
            );
        }
        let quotas = [
            (56, limits.diskquota),
            (64, limits.maxmsgcount),
            (72, limits.defaultquota),
            (80, limits.defaultmaxmsgcount),
        ];
        for (offset, value) in quotas {
            assert_eq!(
                bytes[offset..offset + 8],
                value.to_ne_bytes(),
                "offset {offset}"
            );
        }
        let shorts = [
            (88, limits.disable_pop),
            (90, limits.disable_imap),
            (92, limits.disable_dialup),
            (94, limits.disable_passwordchanging),
            (96, limits.disable_webmail),
            (98, limits.disable_relay),
            (100, limits.disable_smtp),
            (102, limits.perm_account),
            (104, limits.perm_alias),
            (106, limits.perm_forward),
            (108, limits.perm_autoresponder),
            (110, limits.perm_maillist),
            (112, limits.perm_maillist_users),
            (114, limits.perm_maillist_moderators),
            (116, limits.perm_quota),
            (118, limits.perm_defaultquota),
            (120, limits.limit_type),
        ];
        for (offset, value) in shorts {
            assert_eq!(
                bytes[offset..offset + 2],
                value.to_ne_bytes(),
                "offset {offset}"
            );
        }
        assert_eq!(bytes[122..128], [0; 6], "padding");
        assert_eq!(VLimits::from_bytes(&bytes), Ok(limits));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn vlimits_perm_maillist_trio_is_three_shorts() {
        let limits = VLimits {
            perm_maillist: 1,
            perm_maillist_users: 2,
            perm_maillist_moderators: 4,
            ..VLimits::default()
        };
        let bytes = limits.to_bytes();
        assert_eq!(bytes[108..118], [0, 0, 1, 0, 2, 0, 4, 0, 0, 0]);
        assert_eq!(VLimits::from_bytes(&bytes), Ok(limits));
    }

    #[test]
    fn vlimits_defaults() {
        let bytes = VLimits::default().to_bytes();
        assert_eq!(bytes[..56], [0xff; 56], "seven longs of -1");
        assert_eq!(bytes[56..], [0; 72], "quotas, shorts and padding zero");
    }

    #[test]
    fn limits_reply_round_trips_and_checks_sizes() {
        let reply = Reply::Limits(distinct_limits());
        let bytes = reply.encode().unwrap();
        assert_eq!(bytes[..4], 128i32.to_ne_bytes());
        assert_eq!(bytes.len(), 4 + 128);
        assert_eq!(Reply::decode(QueryType::Limit, &bytes), Ok(reply));

        // Non-zero padding from a C server is ignored.
        let mut padded = bytes.clone();
        padded[4 + 127] = 0xaa;
        assert_eq!(
            Reply::decode(QueryType::Limit, &padded),
            Ok(Reply::Limits(distinct_limits()))
        );

        assert_eq!(
            Reply::decode(QueryType::Limit, &reply_bytes(96, &[0; 96])),
            Err(bad_status(QueryType::Limit, 96))
        );
        assert_eq!(
            Reply::decode(QueryType::Limit, &bytes[..100]),
            Err(DecodeError::ShortBody {
                expected: 128,
                got: 96
            })
        );
        assert!(matches!(
            VLimits::from_bytes(&[0; 127]),
            Err(DecodeError::BadPayload(_))
        ));
        assert!(matches!(
            VLimits::from_bytes(&[0; 129]),
            Err(DecodeError::BadPayload(_))
        ));
    }

    #[test]
    fn payload_len_for_streaming_clients() {
        assert_eq!(Reply::payload_len(QueryType::User, 3), Ok(0));
        assert_eq!(Reply::payload_len(QueryType::Relay, -2), Ok(0));
        assert_eq!(Reply::payload_len(QueryType::Password, 90), Ok(90));
        assert_eq!(Reply::payload_len(QueryType::Password, 0), Ok(0));
        assert_eq!(Reply::payload_len(QueryType::Host, 4096), Ok(4096));
        assert_eq!(
            Reply::payload_len(QueryType::Host, 4097),
            Err(DecodeError::TooLong(4097))
        );
        assert_eq!(Reply::payload_len(QueryType::Limit, 128), Ok(128));
        assert_eq!(Reply::payload_len(QueryType::Alias, 0), Ok(0));
        assert_eq!(
            Reply::payload_len(QueryType::Alias, -2),
            Err(bad_status(QueryType::Alias, -2))
        );
        assert_eq!(
            Reply::decode_parts(QueryType::Password, 90, JOE_PWSTRUCT),
            Ok(Reply::Password(PasswordReply::Found(joe())))
        );
    }

    #[test]
    fn every_valid_reply_round_trips() {
        let replies = [
            Reply::User(UserStatus::OverQuota),
            Reply::Relay(RelayStatus::Authenticated),
            Reply::Password(PasswordReply::Found(joe())),
            Reply::Password(PasswordReply::NoSuchUser(b"x@y".to_vec())),
            Reply::Host(Vec::new()),
            Reply::Alias(vec![Vec::new()]),
            Reply::Limits(VLimits::default()),
            Reply::Domain(b"example.org".to_vec()),
            Reply::NotFound,
            Reply::Error,
        ];
        for reply in &replies {
            for qtype in QueryType::ALL
                .into_iter()
                .filter(|q| reply.is_valid_for(*q))
            {
                let bytes = reply.encode().unwrap();
                assert_eq!(
                    Reply::decode(qtype, &bytes).as_ref(),
                    Ok(reply),
                    "{qtype:?}"
                );
            }
        }
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(
            forbidden("gecos", b':').to_string(),
            "the gecos field contains ':', which the wire format cannot carry"
        );
        assert_eq!(
            forbidden("email", 0).to_string(),
            "the email field contains a NUL byte, which the wire format cannot carry"
        );
        assert_eq!(
            DecodeError::MissingNul {
                field: "reply path"
            }
            .to_string(),
            "the reply path field has no terminating NUL byte"
        );
        assert_eq!(
            DecodeError::BadSeparator(7).to_string(),
            "the byte after the query type must be 0x00, found 0x07"
        );
    }

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

    // --- totality ----------------------------------------------------------------------

    use crate::fuzz::Rng as XorShift;

    /// Mostly bytes that matter to the parsers, sometimes any byte.
    fn byte(rng: &mut XorShift) -> u8 {
        const INTERESTING: &[u8] =
            b"\x00\x01\x02\x03\x07\x08:@\n01{SCRAM-SHA-}PWSTRUCT=No such user ";
        if rng.below(4) == 0 {
            rng.next_u64() as u8
        } else {
            INTERESTING[rng.below(INTERESTING.len())]
        }
    }

    /// Decodes `bytes` every way there is; a decoded request must re-encode to the same
    /// bytes, a decoded reply must survive encode and decode unchanged.
    fn decode_every_way(bytes: &[u8]) {
        if let Ok(request) = Request::decode(bytes) {
            assert_eq!(request.encode().as_deref(), Ok(bytes));
        }
        if let Ok(request) = Request::decode_body(bytes) {
            assert_eq!(request.encode().unwrap()[4..], *bytes);
        }
        if let Some(prefix) = bytes.first_chunk::<4>() {
            let _ = Request::body_len(*prefix);
        }
        for qtype in QueryType::ALL {
            if let Ok(reply) = Reply::decode(qtype, bytes) {
                assert!(reply.is_valid_for(qtype), "{reply:?} for {qtype:?}");
                if let Ok(again) = reply.encode() {
                    assert_eq!(Reply::decode(qtype, &again).as_ref(), Ok(&reply));
                }
            }
            if let Some(first) = bytes.first_chunk::<4>() {
                let _ = Reply::payload_len(qtype, i32::from_ne_bytes(*first));
            }
        }
    }

    #[test]
    fn decoding_random_bytes_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..100_000 {
            let len = rng.below(64);
            let mut bytes: Vec<u8> = (0..len).map(|_| byte(&mut rng)).collect();
            // Half the time make the leading int a plausible count, so that the body and
            // payload parsers are reached rather than the length check.
            if len >= 4 && rng.below(2) == 0 {
                let count = match rng.below(4) {
                    0 => -1,
                    1 => 0,
                    _ => (len - 4) as i32,
                };
                bytes[..4].copy_from_slice(&count.to_ne_bytes());
            }
            decode_every_way(&bytes);
        }
    }

    #[test]
    fn decoding_mutated_records_never_panics() {
        let mut scram = joe();
        scram.passwd = SCRAM_TWO_COLONS.to_vec();
        let seeds: Vec<Vec<u8>> = vec![
            user_query().encode().unwrap(),
            relay_query().encode().unwrap(),
            Reply::Password(PasswordReply::Found(joe()))
                .encode()
                .unwrap(),
            Reply::Password(PasswordReply::Found(scram))
                .encode()
                .unwrap(),
            Reply::Password(PasswordReply::NoSuchUser(b"joe@x".to_vec()))
                .encode()
                .unwrap(),
            Reply::Alias(vec![b"a@x".to_vec(), b"b@y".to_vec()])
                .encode()
                .unwrap(),
            Reply::Limits(distinct_limits()).encode().unwrap(),
            Reply::Host(b"example.com:mail1:25".to_vec())
                .encode()
                .unwrap(),
        ];
        let mut rng = XorShift(0x0123_4567_89ab_cdef);
        let mut decoded_requests = 0;
        for round in 0..100_000 {
            let mut bytes = seeds[round % seeds.len()].clone();
            for _ in 0..=rng.below(3) {
                match rng.below(4) {
                    0 if !bytes.is_empty() => {
                        let at = rng.below(bytes.len());
                        bytes[at] = byte(&mut rng);
                    }
                    1 if !bytes.is_empty() => {
                        bytes.remove(rng.below(bytes.len()));
                    }
                    2 => {
                        let at = rng.below(bytes.len() + 1);
                        bytes.insert(at, byte(&mut rng));
                    }
                    _ => bytes.truncate(rng.below(bytes.len() + 1)),
                }
            }
            // Keep the leading int consistent in some rounds, so that field mutations are
            // judged by the field parsers.
            if bytes.len() >= 4 && rng.below(2) == 0 {
                let count = (bytes.len() - 4) as i32;
                bytes[..4].copy_from_slice(&count.to_ne_bytes());
            }
            if Request::decode(&bytes).is_ok() {
                decoded_requests += 1;
            }
            decode_every_way(&bytes);
        }
        // The loop must actually exercise the success path, not only the errors.
        assert!(
            decoded_requests > 100,
            "only {decoded_requests} mutated requests decoded"
        );
    }

    #[test]
    fn flush_request_round_trips_and_is_unknown_to_query_decoding() {
        let f = FlushRequest {
            name: b"joe@example.com".to_vec(),
            reply_path: b"/tmp/r".to_vec(),
        };
        let rec = f.encode().unwrap();
        assert_eq!(&rec[4..6], &[FLUSH_TYPE, 0]);
        assert_eq!(FlushRequest::decode_body(&rec[4..]).unwrap(), f);
        assert!(matches!(
            Request::decode(&rec),
            Err(DecodeError::UnknownType {
                type_byte: FLUSH_TYPE,
                ..
            })
        ));
        let mut with_ip = rec.clone();
        with_ip.insert(with_ip.len() - 1, b'x');
        with_ip[0] += 1;
        assert!(FlushRequest::decode_body(&with_ip[4..]).is_err());
        assert!(FlushRequest::decode_body(
            &Request {
                qtype: QueryType::User,
                email: b"a".to_vec(),
                reply_path: b"b".to_vec(),
                ip: vec![],
            }
            .encode()
            .unwrap()[4..]
        )
        .is_err());
    }
}
