//! The password field of an IndiMail account, split into what it holds.
//!
//! The lookup returns `scram + "," + pw_passwd` when the `scram` column is set and
//! `pw_passwd` alone otherwise, so one byte string can be:
//!
//! * `{SCRAM-SHA-256}iter,salt,storedkey,serverkey,<crypt hash>`
//! * `{SCRAM-SHA-256}iter,salt,storedkey,serverkey:<hex salted password>:<clear text>,<crypt hash>`
//! * `{CRAM}<clear text>,<crypt hash>`
//! * a crypt hash, or a legacy clear-text password, on its own.

use std::fmt;

use super::crypt::CryptScheme;
use super::{AuthError, Method};

/// The SCRAM mechanism named by the prefix of a stored SCRAM value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramMechanism {
    /// `{SCRAM-SHA-1}`
    Sha1,
    /// `{SCRAM-SHA-256}`
    Sha256,
    /// `{SCRAM-SHA-512}`: understood by IndiMail's parser and qmail-smtpd but not by the
    /// C vchkpass/authindi, which took the whole value for a crypt hash and failed.
    Sha512,
}

impl ScramMechanism {
    const PREFIXES: [(&'static [u8], ScramMechanism); 3] = [
        (b"{SCRAM-SHA-1}", ScramMechanism::Sha1),
        (b"{SCRAM-SHA-256}", ScramMechanism::Sha256),
        (b"{SCRAM-SHA-512}", ScramMechanism::Sha512),
    ];

    /// The SASL method this mechanism serves.
    pub fn method(self) -> Method {
        match self {
            ScramMechanism::Sha1 => Method::ScramSha1,
            ScramMechanism::Sha256 => Method::ScramSha256,
            ScramMechanism::Sha512 => Method::ScramSha512,
        }
    }
}

/// A stored SCRAM credential (RFC 5802 / RFC 7677 values, as IndiMail's tools write
/// them), with the crypt hash that follows it. The fields are the stored text, not
/// decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ScramSecret<'a> {
    pub mechanism: ScramMechanism,
    /// The iteration count in decimal, as stored.
    pub iterations: &'a [u8],
    /// Base64 salt.
    pub salt: &'a [u8],
    /// Base64 StoredKey.
    pub stored_key: &'a [u8],
    /// Base64 ServerKey.
    pub server_key: &'a [u8],
    /// Lowercase hex SaltedPassword, when stored.
    pub salted_password_hex: Option<&'a [u8]>,
    /// The clear-text password, stored for the CRAM methods (the 8-field form).
    pub clear_text: Option<&'a [u8]>,
    /// The crypt(3) hash for LOGIN and PLAIN.
    pub crypt_hash: &'a [u8],
}

impl ScramSecret<'_> {
    /// The iteration count, if it is a plain decimal number that fits.
    pub fn iteration_count(&self) -> Option<u32> {
        if self.iterations.is_empty() || !self.iterations.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(self.iterations).ok()?.parse().ok()
    }

    /// How many items IndiMail's parser counts for this value: 6 without clear text,
    /// 8 with it (the mechanism counts as one).
    pub fn field_count(&self) -> u8 {
        if self.clear_text.is_some() {
            8
        } else {
            6
        }
    }
}

/// The stored password of an account, split by format.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StoredSecret<'a> {
    /// A `{SCRAM-SHA-…}` value followed by a crypt hash.
    Scram(ScramSecret<'a>),
    /// `{CRAM}clear,hash`.
    Cram {
        clear_text: &'a [u8],
        crypt_hash: &'a [u8],
    },
    /// Anything else: normally a crypt hash, on old installations a clear-text password.
    Plain(&'a [u8]),
}

impl<'a> StoredSecret<'a> {
    /// Splits a stored password.
    ///
    /// A value with a SCRAM prefix must hold 6 or 8 items as IndiMail counts them, or it
    /// is [`AuthError::MalformedScram`] (vchkpass answered "unable to get secrets").
    /// Nothing else can fail: a value without a known prefix is [`StoredSecret::Plain`].
    pub fn parse(stored: &'a [u8]) -> Result<StoredSecret<'a>, AuthError> {
        for (prefix, mechanism) in ScramMechanism::PREFIXES {
            if let Some(rest) = stored.strip_prefix(prefix) {
                return parse_scram(mechanism, rest).map(StoredSecret::Scram);
            }
        }
        if let Some(rest) = stored.strip_prefix(b"{CRAM}") {
            // The clear text ends at the last comma, so it may itself contain commas.
            let (clear_text, crypt_hash) = match rest.iter().rposition(|&b| b == b',') {
                Some(comma) => (&rest[..comma], &rest[comma + 1..]),
                None => (rest, rest),
            };
            return Ok(StoredSecret::Cram {
                clear_text,
                crypt_hash,
            });
        }
        Ok(StoredSecret::Plain(stored))
    }

    /// The crypt hash (or, for [`StoredSecret::Plain`], the stored string).
    pub fn crypt_hash(&self) -> &'a [u8] {
        match self {
            StoredSecret::Scram(s) => s.crypt_hash,
            StoredSecret::Cram { crypt_hash, .. } => crypt_hash,
            StoredSecret::Plain(s) => s,
        }
    }

    /// The stored clear text, where the format has one.
    pub fn clear_text(&self) -> Option<&'a [u8]> {
        match self {
            StoredSecret::Scram(s) => s.clear_text,
            StoredSecret::Cram { clear_text, .. } => Some(clear_text),
            StoredSecret::Plain(_) => None,
        }
    }

    /// The secret IndiMail compares against for `method` (spec table "secret selection").
    ///
    /// The CRAM class (CRAM-* and DIGEST-MD5) uses the stored clear text. Without one, it
    /// uses the crypt hash of a SCRAM value or the whole plain value only if
    /// `cram_from_hash` is set (env `ENABLE_CRAM`, in vchkpass and authindi alike), and
    /// otherwise gets `None`, which sends the client to the next module. Every other
    /// method uses the crypt hash, or the plain value.
    pub fn secret_for(&self, method: Method, cram_from_hash: bool) -> Option<&'a [u8]> {
        if !method.is_cram_class() {
            return Some(self.crypt_hash());
        }
        self.challenge_secret(cram_from_hash)
    }

    /// The key of a challenge-response check: the stored clear text, else the crypt
    /// hash (or plain value) only when `cram_from_hash` allows a hash to serve as a
    /// password, else `None`.
    pub fn challenge_secret(&self, cram_from_hash: bool) -> Option<&'a [u8]> {
        match self.clear_text() {
            Some(clear) => Some(clear),
            None if cram_from_hash => Some(self.crypt_hash()),
            None => None,
        }
    }
}

/// The bytes from `start` to the next comma, looking for the comma from the second byte
/// on: IndiMail's parser always takes the first byte of a field as data, so an empty
/// field swallows the comma after it. Returns the field and the index after the comma.
fn field_to_comma(rest: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let from = start.checked_add(1)?;
    let comma = from + rest.get(from..)?.iter().position(|&b| b == b',')?;
    Some((&rest[start..comma], comma + 1))
}

fn malformed(found: u8) -> AuthError {
    AuthError::MalformedScram { found }
}

/// IndiMail's get_scram_secrets, without writing into its input. The item counts in the
/// errors are the ones the C function returns (the mechanism counts as one).
fn parse_scram(mechanism: ScramMechanism, rest: &[u8]) -> Result<ScramSecret<'_>, AuthError> {
    let (iterations, pos) = field_to_comma(rest, 0).ok_or(malformed(1))?;
    let (salt, pos) = field_to_comma(rest, pos).ok_or(malformed(2))?;
    let (stored_key, pos) = field_to_comma(rest, pos).ok_or(malformed(3))?;
    let (server_part, after) = field_to_comma(rest, pos).ok_or(malformed(4))?;
    if after == rest.len() {
        return Err(malformed(5));
    }

    let Some(colon) = server_part.iter().position(|&b| b == b':') else {
        // serverkey,hash: the hash is everything after that comma.
        return Ok(ScramSecret {
            mechanism,
            iterations,
            salt,
            stored_key,
            server_key: server_part,
            salted_password_hex: None,
            clear_text: None,
            crypt_hash: &rest[after..],
        });
    };
    let server_key = &server_part[..colon];
    let hex_and_clear = &server_part[colon + 1..];
    if hex_and_clear.is_empty() {
        // "serverkey:,hash" counts as 6 items with nothing after the colon.
        return Ok(ScramSecret {
            mechanism,
            iterations,
            salt,
            stored_key,
            server_key,
            salted_password_hex: None,
            clear_text: None,
            crypt_hash: &rest[after..],
        });
    }
    let second = hex_and_clear
        .iter()
        .position(|&b| b == b':')
        .ok_or(malformed(7))?;
    let salted_password_hex = &hex_and_clear[..second];

    // The C parser ends the clear text at the first comma, which breaks any password
    // with a comma in it. A crypt hash never holds a comma, so the hash starts after the
    // last one and the clear text runs up to it.
    let clear_start = pos + colon + 1 + second + 1;
    let last_comma = rest
        .iter()
        .rposition(|&b| b == b',')
        .filter(|&c| c >= clear_start)
        .ok_or(malformed(7))?;
    let clear_text = &rest[clear_start..last_comma];
    let crypt_hash = &rest[last_comma + 1..];
    if clear_text.is_empty() {
        return Err(malformed(7));
    }
    if crypt_hash.is_empty() {
        return Err(malformed(5));
    }
    Ok(ScramSecret {
        mechanism,
        iterations,
        salt,
        stored_key,
        server_key,
        salted_password_hex: Some(salted_password_hex),
        clear_text: Some(clear_text),
        crypt_hash,
    })
}

/// The crypt scheme of a hash for display, never its bytes.
fn scheme_label(hash: &[u8]) -> &'static str {
    match CryptScheme::identify(hash) {
        Ok(scheme) => scheme.name(),
        Err(AuthError::UnsupportedScheme(name)) => name,
        Err(_) => "not a crypt hash",
    }
}

impl fmt::Debug for ScramSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSecret")
            .field("mechanism", &self.mechanism)
            .field("fields", &self.field_count())
            .field(
                "salted_password_hex_len",
                &self.salted_password_hex.map(<[u8]>::len),
            )
            .field("clear_text_len", &self.clear_text.map(<[u8]>::len))
            .field("crypt_scheme", &scheme_label(self.crypt_hash))
            .field("crypt_hash_len", &self.crypt_hash.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for StoredSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredSecret::Scram(s) => f.debug_tuple("Scram").field(s).finish(),
            StoredSecret::Cram {
                clear_text,
                crypt_hash,
            } => f
                .debug_struct("Cram")
                .field("clear_text_len", &clear_text.len())
                .field("crypt_scheme", &scheme_label(crypt_hash))
                .field("crypt_hash_len", &crypt_hash.len())
                .finish(),
            StoredSecret::Plain(s) => f
                .debug_struct("Plain")
                .field("crypt_scheme", &scheme_label(s))
                .field("len", &s.len())
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From the comment of IndiMail's get_scram_secrets.c.
    const SCRAM6: &[u8] = b"{SCRAM-SHA-256}4096,GppkE9F92zRciuyk,\
        n9boN+EV/P7i+Uxn063JLcppQnyOrIktX81FCy8iibk=,\
        cVjrqEdR7DuGDAwKMLrn6YOp5Z4w7zOBjrxo+1mGmfE=,$1$GsamfuEK$eSxzR6dswY.kaNTtPNi5c1";
    const SCRAM8: &[u8] = b"{SCRAM-SHA-256}4096,GppkE9F92zRciuyk,\
        n9boN+EV/P7i+Uxn063JLcppQnyOrIktX81FCy8iibk=,\
        cVjrqEdR7DuGDAwKMLrn6YOp5Z4w7zOBjrxo+1mGmfE=:\
        86e346545877b822f8d904ae90595f3f7050d453b33eaf6b78dc95b4a3bfde3b:pass,\
        $1$GsamfuEK$eSxzR6dswY.kaNTtPNi5c1";

    fn scram(stored: &[u8]) -> ScramSecret<'_> {
        match StoredSecret::parse(stored) {
            Ok(StoredSecret::Scram(s)) => s,
            other => panic!("not SCRAM: {other:?}"),
        }
    }

    #[test]
    fn scram_six_fields() {
        let s = scram(SCRAM6);
        assert_eq!(s.mechanism, ScramMechanism::Sha256);
        assert_eq!(s.iterations, b"4096");
        assert_eq!(s.iteration_count(), Some(4096));
        assert_eq!(s.salt, b"GppkE9F92zRciuyk");
        assert_eq!(
            s.stored_key,
            b"n9boN+EV/P7i+Uxn063JLcppQnyOrIktX81FCy8iibk="
        );
        assert_eq!(
            s.server_key,
            b"cVjrqEdR7DuGDAwKMLrn6YOp5Z4w7zOBjrxo+1mGmfE="
        );
        assert_eq!(s.salted_password_hex, None);
        assert_eq!(s.clear_text, None);
        assert_eq!(s.crypt_hash, b"$1$GsamfuEK$eSxzR6dswY.kaNTtPNi5c1");
        assert_eq!(s.field_count(), 6);
    }

    #[test]
    fn scram_eight_fields_with_clear_text() {
        let s = scram(SCRAM8);
        assert_eq!(
            s.server_key,
            b"cVjrqEdR7DuGDAwKMLrn6YOp5Z4w7zOBjrxo+1mGmfE="
        );
        assert_eq!(
            s.salted_password_hex,
            Some(&b"86e346545877b822f8d904ae90595f3f7050d453b33eaf6b78dc95b4a3bfde3b"[..])
        );
        assert_eq!(s.clear_text, Some(&b"pass"[..]));
        assert_eq!(s.crypt_hash, b"$1$GsamfuEK$eSxzR6dswY.kaNTtPNi5c1");
        assert_eq!(s.field_count(), 8);
    }

    #[test]
    fn scram_mechanisms() {
        let sha1 = b"{SCRAM-SHA-1}4096,c2FsdA==,c3RvcmVk,c2VydmVy,$5$x$y";
        assert_eq!(scram(sha1).mechanism, ScramMechanism::Sha1);
        let sha512 = b"{SCRAM-SHA-512}4096,c2FsdA==,c3RvcmVk,c2VydmVy,$5$x$y";
        assert_eq!(scram(sha512).mechanism, ScramMechanism::Sha512);
        assert_eq!(scram(sha512).crypt_hash, b"$5$x$y");
        // Other spellings are not SCRAM values.
        for other in [
            &b"{SCRAM-SHA-384}4096,a,b,c,d"[..],
            b"{scram-sha-1}4096,a,b,c,d",
        ] {
            assert_eq!(StoredSecret::parse(other), Ok(StoredSecret::Plain(other)));
        }
    }

    #[test]
    fn clear_text_may_hold_colons_and_commas() {
        let s = scram(b"{SCRAM-SHA-1}4096,c2FsdA==,c3RvcmVk,c2VydmVy:abcd:p:a,s,s,$6$salt$hash");
        assert_eq!(s.salted_password_hex, Some(&b"abcd"[..]));
        assert_eq!(s.clear_text, Some(&b"p:a,s,s"[..]));
        assert_eq!(s.crypt_hash, b"$6$salt$hash");
    }

    #[test]
    fn scram_item_counts_follow_get_scram_secrets() {
        let cases: &[(&[u8], u8)] = &[
            (b"{SCRAM-SHA-256}", 1),
            (b"{SCRAM-SHA-256}4096", 1),
            (b"{SCRAM-SHA-256}4096,salt", 2),
            (b"{SCRAM-SHA-256}4096,salt,stored", 3),
            (b"{SCRAM-SHA-256}4096,salt,stored,server", 4),
            (b"{SCRAM-SHA-256}4096,salt,stored,server,", 5),
            (b"{SCRAM-SHA-256}4096,salt,stored,server:hex,$1$a$b", 7),
            (b"{SCRAM-SHA-256}4096,salt,stored,server:hex:,$1$a$b", 7),
            (b"{SCRAM-SHA-256}4096,salt,stored,server:hex:clear,", 5),
            // The first byte of a field is data even when it is a comma, as in C.
            (b"{SCRAM-SHA-256},x,y,z,hash", 4),
        ];
        for (stored, found) in cases {
            assert_eq!(
                StoredSecret::parse(stored),
                Err(AuthError::MalformedScram { found: *found }),
                "{}",
                String::from_utf8_lossy(stored)
            );
        }
        // "server:" followed by the comma: six items, no clear text.
        let s = scram(b"{SCRAM-SHA-256}4096,salt,stored,server:,$1$a$b");
        assert_eq!(s.server_key, b"server");
        assert_eq!(s.clear_text, None);
        assert_eq!(s.crypt_hash, b"$1$a$b");
        // Six items: everything after the fourth comma is the hash.
        let s = scram(b"{SCRAM-SHA-256}4096,salt,stored,server,a,b");
        assert_eq!(s.crypt_hash, b"a,b");
    }

    #[test]
    fn cram_prefix() {
        assert_eq!(
            StoredSecret::parse(b"{CRAM}secret,$5$abc$def"),
            Ok(StoredSecret::Cram {
                clear_text: b"secret",
                crypt_hash: b"$5$abc$def"
            })
        );
        // Split at the last comma.
        assert_eq!(
            StoredSecret::parse(b"{CRAM}se,cr,et,$5$abc$def"),
            Ok(StoredSecret::Cram {
                clear_text: b"se,cr,et",
                crypt_hash: b"$5$abc$def"
            })
        );
        // Without a comma both are the whole remainder.
        assert_eq!(
            StoredSecret::parse(b"{CRAM}secret"),
            Ok(StoredSecret::Cram {
                clear_text: b"secret",
                crypt_hash: b"secret"
            })
        );
    }

    #[test]
    fn plain_values() {
        for stored in [
            &b"$6$salt$hash"[..],
            b"Lzj/.qcDnwwkg",
            b"cleartext",
            b"",
            b",$5$a$b",
        ] {
            assert_eq!(StoredSecret::parse(stored), Ok(StoredSecret::Plain(stored)));
        }
    }

    #[test]
    fn secret_selection_table() {
        let s8 = StoredSecret::parse(SCRAM8).unwrap();
        let s6 = StoredSecret::parse(SCRAM6).unwrap();
        let cram = StoredSecret::parse(b"{CRAM}clear,$5$h").unwrap();
        let plain = StoredSecret::parse(b"$5$h").unwrap();
        let hash: &[u8] = b"$1$GsamfuEK$eSxzR6dswY.kaNTtPNi5c1";
        let (pass, clear, h5): (&[u8], &[u8], &[u8]) = (b"pass", b"clear", b"$5$h");
        for m in Method::ALL {
            for from_hash in [false, true] {
                let (e8, e6, ec, ep) = if m.is_cram_class() {
                    (
                        Some(pass),
                        from_hash.then_some(hash),
                        Some(clear),
                        from_hash.then_some(h5),
                    )
                } else {
                    (Some(hash), Some(hash), Some(h5), Some(h5))
                };
                assert_eq!(s8.secret_for(m, from_hash), e8, "{m} scram8");
                assert_eq!(s6.secret_for(m, from_hash), e6, "{m} scram6");
                assert_eq!(cram.secret_for(m, from_hash), ec, "{m} cram");
                assert_eq!(plain.secret_for(m, from_hash), ep, "{m} plain");
            }
        }
    }
}
