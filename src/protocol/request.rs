//! A lookup request: the record a client writes to a server FIFO.

use super::{
    bounded_int, exact_len, refuse_bytes, split_leading_int, take_c_string, DecodeError,
    EncodeError, QueryType, INT_LEN, MAX_BODY_LEN, PIPE_BUF,
};

/// Bytes between the type byte and the email: the C client always writes a NUL there.
const TYPE_SEPARATOR: u8 = 0;

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
        encode_record(self.qtype.as_u8(), &self.email, &self.reply_path, &self.ip)
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
        let [email, reply_path, ip, rest] = split_fields(*separator, fields)?;
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

/// A record laid out as a query's: the length, `type_byte`, 0x00, then `email`,
/// `reply_path` and `ip`, each followed by a NUL. Refuses a NUL inside a field and a
/// record longer than `PIPE_BUF`.
pub(super) fn encode_record(
    type_byte: u8,
    email: &[u8],
    reply_path: &[u8],
    ip: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    refuse_bytes("email", email, b"\0")?;
    refuse_bytes("reply path", reply_path, b"\0")?;
    refuse_bytes("ip", ip, b"\0")?;

    let body_len = 2 + email.len() + 1 + reply_path.len() + 1 + ip.len() + 1;
    let total = INT_LEN + body_len;
    if total > PIPE_BUF {
        return Err(EncodeError::RequestTooLong(total));
    }

    let mut record = Vec::with_capacity(total);
    record.extend_from_slice(&bounded_int(body_len).to_ne_bytes());
    record.push(type_byte);
    record.push(TYPE_SEPARATOR);
    for field in [email, reply_path, ip] {
        record.extend_from_slice(field);
        record.push(0);
    }
    Ok(record)
}

/// Checks the byte after the type byte and splits what follows it into the email, the
/// reply path, the ip (each up to its NUL) and whatever is left after them.
pub(super) fn split_fields(separator: u8, fields: &[u8]) -> Result<[&[u8]; 4], DecodeError> {
    if separator != TYPE_SEPARATOR {
        return Err(DecodeError::BadSeparator(separator));
    }
    let (email, rest) = take_c_string(fields, "email")?;
    let (reply_path, rest) = take_c_string(rest, "reply path")?;
    let (ip, rest) = take_c_string(rest, "ip")?;
    Ok([email, reply_path, ip, rest])
}
