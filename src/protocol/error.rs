//! Why bytes do not decode, and why a value cannot be encoded.

use std::fmt;

use thiserror::Error;

use super::{QueryType, PIPE_BUF};

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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

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
}
