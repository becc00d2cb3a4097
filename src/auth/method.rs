//! The authentication methods of IndiMail's `authmethods.h`, by number and by name.

use std::fmt;

/// An authentication method as qmail-smtpd sends it in the method byte of the fd-3 data
/// (and as authindi maps courier's AUTHTYPE onto it).
///
/// The numbers are IndiMail's `AUTH_*` constants; [`Method::Unspecified`] is 0, what
/// vchkpass sees when no method byte was sent. With a challenge present, that value
/// makes the comparison try every CRAM variant and DIGEST-MD5 in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// 0: no method byte.
    Unspecified,
    /// 1: `LOGIN`.
    Login,
    /// 2: `PLAIN`.
    Plain,
    /// 3: `CRAM-MD5`.
    CramMd5,
    /// 4: `CRAM-SHA1`.
    CramSha1,
    /// 5: `CRAM-SHA224`.
    CramSha224,
    /// 6: `CRAM-SHA256`.
    CramSha256,
    /// 7: `CRAM-SHA384`.
    CramSha384,
    /// 8: `CRAM-SHA512`.
    CramSha512,
    /// 9: `CRAM-RIPEMD` (HMAC-RIPEMD-160).
    CramRipemd,
    /// 10: `DIGEST-MD5`.
    DigestMd5,
    /// 11: `SCRAM-SHA-1`.
    ScramSha1,
    /// 12: `SCRAM-SHA-256`.
    ScramSha256,
    /// 13: `SCRAM-SHA-512`.
    ScramSha512,
    /// 14: `SCRAM-SHA-1-PLUS`.
    ScramSha1Plus,
    /// 15: `SCRAM-SHA-256-PLUS`.
    ScramSha256Plus,
    /// 16: `SCRAM-SHA-512-PLUS`.
    ScramSha512Plus,
    /// 17: `XOAUTH2`.
    XOAuth2,
}

/// Every method with its number, its SASL name and the variable that switches it off when
/// the method is unspecified. The order is the numeric order.
const TABLE: [(Method, u8, &str, Option<&str>); 18] = [
    (Method::Unspecified, 0, "unspecified", None),
    (Method::Login, 1, "LOGIN", None),
    (Method::Plain, 2, "PLAIN", None),
    (Method::CramMd5, 3, "CRAM-MD5", Some("DISABLE_CRAM_MD5")),
    (Method::CramSha1, 4, "CRAM-SHA1", Some("DISABLE_CRAM_SHA1")),
    (
        Method::CramSha224,
        5,
        "CRAM-SHA224",
        Some("DISABLE_CRAM_SHA224"),
    ),
    (
        Method::CramSha256,
        6,
        "CRAM-SHA256",
        Some("DISABLE_CRAM_SHA256"),
    ),
    (
        Method::CramSha384,
        7,
        "CRAM-SHA384",
        Some("DISABLE_CRAM_SHA384"),
    ),
    (
        Method::CramSha512,
        8,
        "CRAM-SHA512",
        Some("DISABLE_CRAM_SHA512"),
    ),
    (
        Method::CramRipemd,
        9,
        "CRAM-RIPEMD",
        Some("DISABLE_CRAM_RIPEMD"),
    ),
    (
        Method::DigestMd5,
        10,
        "DIGEST-MD5",
        Some("DISABLE_DIGEST_MD5"),
    ),
    (Method::ScramSha1, 11, "SCRAM-SHA-1", None),
    (Method::ScramSha256, 12, "SCRAM-SHA-256", None),
    (Method::ScramSha512, 13, "SCRAM-SHA-512", None),
    (Method::ScramSha1Plus, 14, "SCRAM-SHA-1-PLUS", None),
    (Method::ScramSha256Plus, 15, "SCRAM-SHA-256-PLUS", None),
    (Method::ScramSha512Plus, 16, "SCRAM-SHA-512-PLUS", None),
    (Method::XOAuth2, 17, "XOAUTH2", None),
];

impl Method {
    /// All methods, in numeric order.
    pub const ALL: [Method; 18] = {
        let mut all = [Method::Unspecified; 18];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].0;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static (Method, u8, &'static str, Option<&'static str>) {
        // TABLE is indexed by the method's number.
        &TABLE[self as usize]
    }

    /// The method for a method byte; `None` for a number IndiMail does not define.
    pub fn from_code(code: u8) -> Option<Method> {
        TABLE.get(usize::from(code)).map(|row| row.0)
    }

    /// The method's number (the fd-3 method byte).
    pub fn code(self) -> u8 {
        self.row().1
    }

    /// The method for a SASL mechanism name such as `CRAM-MD5` or `cram-md5` (ASCII case
    /// is ignored). [`Method::Unspecified`] has no name and is never returned.
    pub fn from_name(name: &[u8]) -> Option<Method> {
        TABLE[1..]
            .iter()
            .find(|row| row.2.as_bytes().eq_ignore_ascii_case(name))
            .map(|row| row.0)
    }

    /// The SASL mechanism name (`unspecified` for method 0).
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// The "CRAM class" of IndiMail (numbers 3 to 10, DIGEST-MD5 included): the methods
    /// that key an HMAC or a digest with the password and so need it in clear text.
    pub fn is_cram_class(self) -> bool {
        (3..=10).contains(&self.code())
    }

    /// The environment variable that takes this method out of the set tried when the
    /// method is unspecified (`DISABLE_CRAM_MD5` ... `DISABLE_DIGEST_MD5`).
    pub fn disable_variable(self) -> Option<&'static str> {
        self.row().3
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_authmethods_h() {
        for (i, m) in Method::ALL.iter().enumerate() {
            assert_eq!(usize::from(m.code()), i);
            assert_eq!(Method::from_code(m.code()), Some(*m));
        }
        assert_eq!(Method::from_code(1), Some(Method::Login));
        assert_eq!(Method::from_code(3), Some(Method::CramMd5));
        assert_eq!(Method::from_code(9), Some(Method::CramRipemd));
        assert_eq!(Method::from_code(10), Some(Method::DigestMd5));
        assert_eq!(Method::from_code(17), Some(Method::XOAuth2));
        assert_eq!(Method::from_code(18), None);
        assert_eq!(Method::from_code(255), None);
    }

    #[test]
    fn names_ignore_case() {
        assert_eq!(Method::from_name(b"CRAM-MD5"), Some(Method::CramMd5));
        assert_eq!(Method::from_name(b"cram-sha256"), Some(Method::CramSha256));
        assert_eq!(Method::from_name(b"Digest-MD5"), Some(Method::DigestMd5));
        assert_eq!(Method::from_name(b"login"), Some(Method::Login));
        assert_eq!(Method::from_name(b"xoauth2"), Some(Method::XOAuth2));
        assert_eq!(
            Method::from_name(b"SCRAM-SHA-256-PLUS"),
            Some(Method::ScramSha256Plus)
        );
        assert_eq!(Method::from_name(b"unspecified"), None);
        assert_eq!(Method::from_name(b""), None);
        assert_eq!(Method::from_name(b"CRAM-MD5 "), None);
        assert_eq!(Method::from_name(b"pass"), None);
        for m in &Method::ALL[1..] {
            assert_eq!(Method::from_name(m.name().as_bytes()), Some(*m));
            assert_eq!(m.to_string(), m.name());
        }
    }

    #[test]
    fn cram_class_is_three_to_ten() {
        let class: Vec<u8> = Method::ALL
            .iter()
            .filter(|m| m.is_cram_class())
            .map(|m| m.code())
            .collect();
        assert_eq!(class, (3..=10).collect::<Vec<u8>>());
        assert_eq!(
            Method::DigestMd5.disable_variable(),
            Some("DISABLE_DIGEST_MD5")
        );
        assert_eq!(Method::Login.disable_variable(), None);
    }
}
