//! Lowercase hex output and constant-time comparison of hex responses.

use subtle::ConstantTimeEq;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`, the form every CRAM and DIGEST-MD5 value travels in.
pub(crate) fn encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    out
}

/// Writes the lowercase hex of a 16-byte digest into a fixed buffer.
pub(crate) fn encode16(digest: &[u8; 16]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, &b) in digest.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
    out
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Does the client's hex text `response` spell exactly `expected`?
///
/// The length and the hex syntax of the response are the client's own data, so
/// rejecting them early reveals nothing; the bytes derived from the secret are compared
/// in constant time. Upper-case hex is accepted (the C code only took lower case).
pub(crate) fn response_matches(response: &[u8], expected: &[u8]) -> bool {
    if response.len() != expected.len() * 2 {
        return false;
    }
    let mut decoded = Vec::with_capacity(expected.len());
    for pair in response.chunks_exact(2) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => decoded.push(hi << 4 | lo),
            _ => return false,
        }
    }
    bool::from(decoded.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_lowercase() {
        assert_eq!(encode(&[0x00, 0x9f, 0xa0, 0xff]), b"009fa0ff");
        let mut d = [0u8; 16];
        d[0] = 0xab;
        d[15] = 0x01;
        assert_eq!(&encode16(&d)[..], b"ab000000000000000000000000000001");
    }

    #[test]
    fn response_comparison_accepts_either_case_and_nothing_else() {
        let expected = [0xde, 0xad, 0xbe, 0xef];
        assert!(response_matches(b"deadbeef", &expected));
        assert!(response_matches(b"DEADBEEF", &expected));
        assert!(!response_matches(b"deadbee", &expected));
        assert!(!response_matches(b"deadbeef00", &expected));
        assert!(!response_matches(b"deadbeeg", &expected));
        assert!(!response_matches(b"deadbeee", &expected));
        assert!(!response_matches(b"", &expected));
    }
}
