//! DIGEST-MD5 (RFC 2831) as qmail-smtpd hands it to vchkpass: the client's `response=`
//! value in field 2 and the other directives in field 3, one `key=value` per line,
//! unquoted (`digest-uri=V\nnc=V\nnonce=V\ncnonce=V\nqop=V\nrealm=V`).

use std::fmt;

use md5::{Digest, Md5};

use super::hex;

/// Suffix of A2 under the `auth-int` and `auth-conf` qualities of protection: a colon and
/// the hex of an all-zero 16-byte body hash (RFC 2831 §2.1.2.1). IndiMail's C code
/// appended one zero fewer.
const INTEGRITY_SUFFIX: &[u8] = b":00000000000000000000000000000000";

/// The directives of field 3 that the digest needs. They borrow from the input, which
/// stays untouched (the C code cut it up in place and then forwarded the damaged bytes
/// to the next module).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Directives<'a> {
    pub nc: &'a [u8],
    pub qop: &'a [u8],
    pub realm: &'a [u8],
    pub nonce: &'a [u8],
    pub cnonce: &'a [u8],
    pub digest_uri: &'a [u8],
    /// Optional; when present it is part of A1.
    pub authzid: Option<&'a [u8]>,
}

impl<'a> Directives<'a> {
    /// Reads `key=value` lines separated by `\n`. A later line for the same key replaces
    /// an earlier one, unknown keys are ignored, and `None` means one of nc, qop, realm,
    /// nonce, cnonce or digest-uri is missing (which IndiMail treats as a mismatch).
    pub fn parse(field: &'a [u8]) -> Option<Directives<'a>> {
        let (mut nc, mut qop, mut realm, mut nonce, mut cnonce, mut digest_uri) =
            (None, None, None, None, None, None);
        let mut authzid = None;
        for line in field.split(|&b| b == b'\n') {
            let Some(eq) = line.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (key, value) = (&line[..eq], &line[eq + 1..]);
            let slot = match key {
                b"nc" => &mut nc,
                b"qop" => &mut qop,
                b"realm" => &mut realm,
                b"nonce" => &mut nonce,
                b"cnonce" => &mut cnonce,
                b"digest-uri" => &mut digest_uri,
                b"authzid" => &mut authzid,
                _ => continue,
            };
            *slot = Some(value);
        }
        Some(Directives {
            nc: nc?,
            qop: qop?,
            realm: realm?,
            nonce: nonce?,
            cnonce: cnonce?,
            digest_uri: digest_uri?,
            authzid,
        })
    }

    /// Whether A2 carries the zero body hash: `auth-int` and `auth-conf`. IndiMail tests
    /// "longer than `auth`", which this keeps.
    fn protects_integrity(&self) -> bool {
        self.qop.len() > 4
    }
}

impl fmt::Debug for Directives<'_> {
    // The directives are not secret, but this type sits next to the password in every
    // call; it prints only what cannot identify anything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Directives")
            .field("qop_len", &self.qop.len())
            .field("realm_len", &self.realm.len())
            .field("digest_uri_len", &self.digest_uri.len())
            .field("authzid", &self.authzid.is_some())
            .finish()
    }
}

/// The `rspauth` value the server returns after a successful DIGEST-MD5 exchange: 32
/// lowercase hex digits, written by vchkpass to fd 6 for qmail-smtpd.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RspAuth([u8; 32]);

impl RspAuth {
    /// The 32 lowercase hex digits.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for RspAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RspAuth(<32 hex digits>)")
    }
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// hex(H(A1)): A1 = H(user:realm:password) ":" nonce ":" cnonce [":" authzid].
fn ha1(username: &[u8], password: &[u8], d: &Directives<'_>) -> [u8; 32] {
    let inner = md5(&[username, b":", d.realm, b":", password]);
    let a1 = match d.authzid {
        Some(authzid) => md5(&[&inner, b":", d.nonce, b":", d.cnonce, b":", authzid]),
        None => md5(&[&inner, b":", d.nonce, b":", d.cnonce]),
    };
    hex::encode16(&a1)
}

/// KD(hex(H(A1)), nonce:nc:cnonce:qop:hex(H(A2))) with A2 = `a2_prefix` digest-uri
/// [integrity suffix], as raw digest bytes.
fn kd(ha1: &[u8; 32], d: &Directives<'_>, a2_prefix: &[u8]) -> [u8; 16] {
    let suffix: &[u8] = if d.protects_integrity() {
        INTEGRITY_SUFFIX
    } else {
        b""
    };
    let ha2 = hex::encode16(&md5(&[a2_prefix, d.digest_uri, suffix]));
    md5(&[
        ha1, b":", d.nonce, b":", d.nc, b":", d.cnonce, b":", d.qop, b":", &ha2,
    ])
}

/// The `response=` value a client with `password` must send (lowercase hex).
pub fn expected_response(username: &[u8], password: &[u8], d: &Directives<'_>) -> [u8; 32] {
    hex::encode16(&kd(&ha1(username, password, d), d, b"AUTHENTICATE:"))
}

/// The `rspauth=` value the server answers with when the response was right.
pub fn rspauth(username: &[u8], password: &[u8], d: &Directives<'_>) -> RspAuth {
    RspAuth(hex::encode16(&kd(&ha1(username, password, d), d, b":")))
}

/// Checks a client's DIGEST-MD5 `response` (hex, field 2) against `password`, with the
/// directives of field 3. `Some(rspauth)` on a match; `None` on a mismatch, including
/// when a required directive is missing. The comparison is constant-time.
#[must_use]
pub fn verify(
    username: &[u8],
    password: &[u8],
    response: &[u8],
    directives: &[u8],
) -> Option<RspAuth> {
    let d = Directives::parse(directives)?;
    let h1 = ha1(username, password, &d);
    if hex::response_matches(response, &kd(&h1, &d, b"AUTHENTICATE:")) {
        Some(RspAuth(hex::encode16(&kd(&h1, &d, b":"))))
    } else {
        None
    }
}

/// The address to look the user up under when a DIGEST-MD5 client sent a bare user name:
/// `user@realm`, with the realm taken from the `realm=` directive of field 3 (IndiMail
/// meant to do this but searched the login instead, so it never happened). White space
/// and `"` are dropped from the realm, which ends at the first `,`. `None` when the
/// login already has an `@` or there is no usable realm; the login then stands as it is.
pub fn login_with_realm(login: &[u8], directives: &[u8]) -> Option<Vec<u8>> {
    if login.contains(&b'@') {
        return None;
    }
    let realm = directives
        .split(|&b| b == b'\n')
        .filter_map(|line| line.strip_prefix(b"realm="))
        .next_back()?;
    let domain: Vec<u8> = realm
        .iter()
        .copied()
        .take_while(|&b| b != b',')
        .filter(|&b| !b.is_ascii_whitespace() && b != b'"')
        .collect();
    if domain.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(login.len() + 1 + domain.len());
    out.extend_from_slice(login);
    out.push(b'@');
    out.extend_from_slice(&domain);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 §4, in the layout qmail-smtpd uses for field 3.
    const RFC_DIRECTIVES: &[u8] = b"digest-uri=imap/elwood.innosoft.com\nnc=00000001\n\
        nonce=OA6MG9tEQGm2hh\ncnonce=OA6MHXh6VqTrRk\nqop=auth\nrealm=elwood.innosoft.com";

    fn with_qop(qop: &str) -> Vec<u8> {
        String::from_utf8(RFC_DIRECTIVES.to_vec())
            .unwrap()
            .replace("qop=auth", &format!("qop={qop}"))
            .into_bytes()
    }

    #[test]
    fn rfc2831_example() {
        let d = Directives::parse(RFC_DIRECTIVES).unwrap();
        assert_eq!(
            &expected_response(b"chris", b"secret", &d),
            b"d388dad90d4bbd760a152321f2143af7"
        );
        assert_eq!(
            rspauth(b"chris", b"secret", &d).as_bytes(),
            b"ea40f60335c427b5527b84dbabcdfffd"
        );
        let got = verify(
            b"chris",
            b"secret",
            b"d388dad90d4bbd760a152321f2143af7",
            RFC_DIRECTIVES,
        )
        .expect("RFC 2831 response must match");
        assert_eq!(got.as_bytes(), b"ea40f60335c427b5527b84dbabcdfffd");
        // Upper-case hex from a client is the same value.
        assert!(verify(
            b"chris",
            b"secret",
            b"D388DAD90D4BBD760A152321F2143AF7",
            RFC_DIRECTIVES
        )
        .is_some());
    }

    #[test]
    fn wrong_password_or_tampered_directive_fails() {
        let good = b"d388dad90d4bbd760a152321f2143af7";
        assert!(verify(b"chris", b"Secret", good, RFC_DIRECTIVES).is_none());
        assert!(verify(b"chri", b"secret", good, RFC_DIRECTIVES).is_none());
        let other_nc = String::from_utf8(RFC_DIRECTIVES.to_vec())
            .unwrap()
            .replace("nc=00000001", "nc=00000002");
        assert!(verify(b"chris", b"secret", good, other_nc.as_bytes()).is_none());
        assert!(verify(b"chris", b"secret", &good[..31], RFC_DIRECTIVES).is_none());
        assert!(verify(b"chris", b"secret", b"", RFC_DIRECTIVES).is_none());
    }

    #[test]
    fn missing_directive_is_a_mismatch() {
        for key in ["digest-uri=", "nc=", "nonce=", "cnonce=", "qop=", "realm="] {
            let text = String::from_utf8(RFC_DIRECTIVES.to_vec()).unwrap();
            let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with(key)).collect();
            let field = kept.join("\n");
            assert!(Directives::parse(field.as_bytes()).is_none(), "{key}");
            assert!(verify(
                b"chris",
                b"secret",
                b"d388dad90d4bbd760a152321f2143af7",
                field.as_bytes()
            )
            .is_none());
        }
        // A bare key without `=` does not count as present.
        let bare = String::from_utf8(RFC_DIRECTIVES.to_vec())
            .unwrap()
            .replace("nc=00000001", "nc");
        assert!(Directives::parse(bare.as_bytes()).is_none());
    }

    #[test]
    fn empty_realm_is_present() {
        let d =
            Directives::parse(b"digest-uri=u\nnc=1\nnonce=n\ncnonce=c\nqop=auth\nrealm=").unwrap();
        assert_eq!(d.realm, b"");
    }

    #[test]
    fn later_duplicate_wins_and_input_is_untouched() {
        let mut field = b"nc=99999999\n".to_vec();
        field.extend_from_slice(RFC_DIRECTIVES);
        let before = field.clone();
        assert!(verify(
            b"chris",
            b"secret",
            b"d388dad90d4bbd760a152321f2143af7",
            &field
        )
        .is_some());
        assert_eq!(field, before);
    }

    #[test]
    fn integrity_protection_uses_32_zeros() {
        // Computed independently from RFC 2831 §2.1.2.1 (A2 with ":" and 32 zeros).
        let cases = [
            (
                "auth-int",
                b"89fdc8198a2499ec4b6d0045c00ae24a",
                b"2342e4b9b84956beda20b94d83cc8fe0",
            ),
            (
                "auth-conf",
                b"c7d2efa41f50398d289b732a0c09f381",
                b"e2b2f2d1742ec87e03e40f22efdeaac8",
            ),
        ];
        for (qop, response, rsp) in cases {
            let field = with_qop(qop);
            let d = Directives::parse(&field).unwrap();
            assert_eq!(&expected_response(b"chris", b"secret", &d), response);
            let got = verify(b"chris", b"secret", response, &field).unwrap();
            assert_eq!(got.as_bytes(), rsp);
        }
    }

    #[test]
    fn authzid_is_part_of_a1() {
        let mut field = RFC_DIRECTIVES.to_vec();
        field.extend_from_slice(b"\nauthzid=chris@elwood.innosoft.com");
        let d = Directives::parse(&field).unwrap();
        assert_eq!(
            &expected_response(b"chris", b"secret", &d),
            b"0d055ca694baf2188a002575317343bf"
        );
    }

    #[test]
    fn realm_from_the_directives() {
        assert_eq!(
            login_with_realm(b"chris", RFC_DIRECTIVES).as_deref(),
            Some(&b"chris@elwood.innosoft.com"[..])
        );
        assert_eq!(login_with_realm(b"chris@example.com", RFC_DIRECTIVES), None);
        assert_eq!(
            login_with_realm(b"joe", b"nc=1\nrealm=\" example.org \",x").as_deref(),
            Some(&b"joe@example.org"[..])
        );
        assert_eq!(login_with_realm(b"joe", b"nc=1\nrealm=\"\""), None);
        assert_eq!(login_with_realm(b"joe", b"nc=1\nqop=auth"), None);
        // The realm is never looked for in the login itself.
        assert_eq!(login_with_realm(b"realm=evil.example", b"qop=auth"), None);
    }
}
