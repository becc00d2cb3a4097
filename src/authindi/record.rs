//! The record the login program writes to fd 3: service, authentication type, login and
//! response.

use crate::auth::{Attempt, Method};

/// What the login program asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    /// `pass`: a password change, which authindi leaves to other modules.
    PasswordChange,
    /// A login with this method (0 for an AUTHTYPE authindi does not know, which is
    /// then treated as a password, as in C).
    Login(Method),
}

impl AuthType {
    /// courier's AUTHTYPE, compared exactly (lower case) as C did.
    pub fn from_name(name: &[u8]) -> AuthType {
        AuthType::Login(match name {
            b"pass" => return AuthType::PasswordChange,
            b"login" => Method::Login,
            b"plain" => Method::Plain,
            b"cram-md5" => Method::CramMd5,
            b"cram-sha1" => Method::CramSha1,
            b"cram-sha256" => Method::CramSha256,
            b"cram-sha512" => Method::CramSha512,
            b"cram-ripemd" => Method::CramRipemd,
            _ => Method::Unspecified,
        })
    }
}

/// A courier authlib request: `service\nauthtype\nauthdata`.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub service: Vec<u8>,
    /// AUTHTYPE as sent (for log lines).
    pub authtype: Vec<u8>,
    pub kind: AuthType,
    /// The user id: the third line, or for CRAM the text before the first blank of
    /// the decoded client reply.
    pub login: Vec<u8>,
    /// CRAM: the decoded challenge. Empty otherwise.
    pub challenge: Vec<u8>,
    /// The password, or for CRAM the client's hex digest.
    pub response: Vec<u8>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("service", &crate::logline::Escaped::new(&self.service))
            .field("kind", &self.kind)
            .field("login", &crate::logline::Escaped::new(&self.login))
            .field("challenge_len", &self.challenge.len())
            .field("response_len", &self.response.len())
            .finish()
    }
}

impl Record {
    /// The method number the password check uses.
    pub fn method(&self) -> Method {
        match self.kind {
            AuthType::Login(m) => m,
            AuthType::PasswordChange => Method::Unspecified,
        }
    }

    /// The credentials as the password library takes them.
    pub fn attempt(&self) -> Attempt<'_> {
        let method = self.method();
        if method.is_cram_class() {
            Attempt::challenge_response(method, &self.login, &self.challenge, &self.response)
        } else {
            Attempt::password(method, &self.login, &self.response)
        }
    }
}

/// Why a record could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// A line is missing or nothing follows it (exit 2).
    TooShort,
    /// A CRAM line is not valid base64 (fail completely).
    BadBase64,
}

/// Splits a record as IndiMail's authindi does (spec §2.2).
///
/// The service, the AUTHTYPE and the third line must each end in `\n` with more data
/// after it. The fourth line (the password, or the CRAM reply) runs to `\n` or the
/// end; when it is empty, the fifth line is the password. For the CRAM types the third
/// and fourth lines are base64: the challenge, and `userid<blank>hexdigest`.
pub fn parse_record(data: &[u8]) -> Result<Record, RecordError> {
    let mut pos = 0;
    let line_with_more = |pos: &mut usize| -> Result<std::ops::Range<usize>, RecordError> {
        let start = *pos;
        let nl = data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| start + i)
            .filter(|&nl| nl + 1 < data.len())
            .ok_or(RecordError::TooShort)?;
        *pos = nl + 1;
        Ok(start..nl)
    };
    let service = line_with_more(&mut pos)?;
    let authtype = line_with_more(&mut pos)?;
    let third = line_with_more(&mut pos)?;
    let rest_line = |pos: &mut usize| -> std::ops::Range<usize> {
        let start = (*pos).min(data.len());
        let end = data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| start + i);
        *pos = (end + 1).min(data.len());
        start..end
    };
    let mut fourth = rest_line(&mut pos);
    let kind = AuthType::from_name(&data[authtype.clone()]);
    let cram = matches!(kind, AuthType::Login(m) if m.is_cram_class());
    let (login, challenge, response) = if cram {
        let challenge = base64_decode(&data[third]).ok_or(RecordError::BadBase64)?;
        let reply = base64_decode(&data[fourth]).ok_or(RecordError::BadBase64)?;
        let blank = reply.iter().position(|b| b.is_ascii_whitespace());
        let (login, response) = match blank {
            Some(i) => (reply[..i].to_vec(), reply[i + 1..].to_vec()),
            None => (reply, Vec::new()),
        };
        (login, challenge, response)
    } else {
        if fourth.is_empty() {
            // "In case of auth login, auth plain": the password on the next line.
            fourth = rest_line(&mut pos);
        }
        (data[third].to_vec(), Vec::new(), data[fourth].to_vec())
    };
    Ok(Record {
        service: data[service].to_vec(),
        authtype: data[authtype].to_vec(),
        kind,
        login,
        challenge,
        response,
    })
}

/// Standard base64 (RFC 4648 alphabet, `=` padding, length a multiple of 4). `None`
/// for anything else; C's decoder read past its input and accepted any byte.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (n, quad) in text.chunks_exact(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && n + 1 != quads) {
            return None;
        }
        let mut triple = 0u32;
        for &c in &quad[..4 - pad] {
            triple = triple << 6 | value(c)?;
        }
        triple <<= 6 * pad as u32;
        let bytes = triple.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(data: &[u8]) -> Result<Record, RecordError> {
        parse_record(data)
    }

    #[test]
    fn login_records() {
        let r = rec(b"imap\nlogin\njoe@example.com\nsecret\n").unwrap();
        assert_eq!(r.service, b"imap");
        assert_eq!(r.kind, AuthType::Login(Method::Login));
        assert_eq!(r.login, b"joe@example.com");
        assert_eq!(r.response, b"secret");
        assert!(r.challenge.is_empty());
        // No final newline.
        let r = rec(b"pop3\nplain\njoe\nsecret").unwrap();
        assert_eq!(r.kind, AuthType::Login(Method::Plain));
        assert_eq!(r.response, b"secret");
        // Empty fourth line: the fifth is the password.
        let r = rec(b"imap\nlogin\njoe\n\nsecret\n").unwrap();
        assert_eq!(r.response, b"secret");
        // Unknown types are passwords with method 0.
        let r = rec(b"imap\ndigest-md5\njoe\nsecret\n").unwrap();
        assert_eq!(r.kind, AuthType::Login(Method::Unspecified));
        assert_eq!(
            rec(b"imap\npass\njoe\nold\nnew\n").unwrap().kind,
            AuthType::PasswordChange
        );
        // Exact, lower-case names only.
        assert_eq!(
            AuthType::from_name(b"LOGIN"),
            AuthType::Login(Method::Unspecified)
        );
    }

    #[test]
    fn short_records() {
        for bad in [
            &b""[..],
            b"imap",
            b"imap\n",
            b"imap\nlogin",
            b"imap\nlogin\n",
            b"imap\nlogin\njoe",
            b"imap\nlogin\njoe\n",
        ] {
            assert_eq!(rec(bad), Err(RecordError::TooShort), "{bad:?}");
        }
        // A third line followed by anything is enough.
        assert_eq!(rec(b"imap\nlogin\njoe\nx").unwrap().response, b"x");
    }

    #[test]
    fn cram_records() {
        // RFC 2195: challenge and "tim <digest>".
        let challenge = b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
        let reply = b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw";
        let data = [&b"imap\ncram-md5\n"[..], challenge, b"\n", reply, b"\n"].concat();
        let r = rec(&data).unwrap();
        assert_eq!(r.kind, AuthType::Login(Method::CramMd5));
        assert_eq!(r.challenge, b"<1896.697170952@postoffice.reston.mci.net>");
        assert_eq!(r.login, b"tim");
        assert_eq!(r.response, b"b913a602c7eda7a495b4e6e7334d3890");
        let a = r.attempt();
        assert_eq!(a.challenge, &r.challenge[..]);
        // Bad base64 in either line.
        let bad = [&b"imap\ncram-md5\n"[..], b"PDE4=OTY\n", reply, b"\n"].concat();
        assert_eq!(rec(&bad), Err(RecordError::BadBase64));
        let bad = [&b"imap\ncram-sha1\n"[..], challenge, b"\nabc\n"].concat();
        assert_eq!(rec(&bad), Err(RecordError::BadBase64));
        // A reply without a blank: no response.
        let data = [&b"imap\ncram-sha256\n"[..], challenge, b"\ndGlt\n"].concat();
        let r = rec(&data).unwrap();
        assert_eq!(r.login, b"tim");
        assert!(r.response.is_empty());
    }

    #[test]
    fn base64_strict() {
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert_eq!(base64_decode(b"Zg==").unwrap(), b"f");
        assert_eq!(base64_decode(b"Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode(b"Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode(b"Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode(b"+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        for bad in [
            &b"Zg="[..],
            b"Zg=a",
            b"Z===",
            b"Zg==Zg==",
            b"Zm9v\n",
            b"Zm 9",
        ] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }
}
