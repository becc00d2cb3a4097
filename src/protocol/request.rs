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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use super::*;

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
}
