//! The cache-flush request and its reply, an extension of this implementation.

use super::request::{encode_record, split_fields};
use super::{split_leading_int, DecodeError, EncodeError, INT_LEN};

/// Type byte of the cache-flush request, an extension of this implementation (C servers
/// ignore it): forget every cached answer about one address or domain, for example after
/// a password change. Laid out like a query (the name in the email field, no ip); the
/// reply is one int ([`FlushReply`]).
pub const FLUSH_TYPE: u8 = 32;

/// A cache-flush request (see [`FLUSH_TYPE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushRequest {
    /// An address (`user@domain`) or a bare domain.
    pub name: Vec<u8>,
    pub reply_path: Vec<u8>,
}

impl FlushRequest {
    /// The whole record, as [`Request::encode`](super::Request::encode) lays out a query.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        encode_record(FLUSH_TYPE, &self.name, &self.reply_path, b"")
    }

    /// Decodes a body whose type byte is [`FLUSH_TYPE`], with the same strictness as
    /// [`Request::decode_body`](super::Request::decode_body); the ip field must be empty.
    pub fn decode_body(body: &[u8]) -> Result<FlushRequest, DecodeError> {
        let [FLUSH_TYPE, separator, fields @ ..] = body else {
            return Err(DecodeError::BadPayload("not a flush request".into()));
        };
        let [name, reply_path, ip, rest] = split_fields(*separator, fields)?;
        if !rest.is_empty() || !ip.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len() + ip.len()));
        }
        Ok(FlushRequest {
            name: name.to_vec(),
            reply_path: reply_path.to_vec(),
        })
    }
}

/// The reply to a [`FlushRequest`]: one int, the number of cache entries removed, or a
/// negative number when the daemon could not flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReply {
    /// The number of cache entries removed.
    Removed(u32),
    /// The daemon could not flush its cache.
    Failed,
}

impl FlushReply {
    /// The int sent for a count of `removed` entries, which never reads as a failure.
    pub fn removed(removed: usize) -> FlushReply {
        FlushReply::Removed(u32::try_from(removed).unwrap_or(u32::MAX))
    }

    /// The reply's one int.
    pub fn encode(self) -> [u8; INT_LEN] {
        let value = match self {
            FlushReply::Removed(n) => i32::try_from(n).unwrap_or(i32::MAX),
            FlushReply::Failed => -1,
        };
        value.to_ne_bytes()
    }

    /// Reads the reply's int: any negative value is a failure.
    pub fn decode(bytes: &[u8]) -> Result<FlushReply, DecodeError> {
        let (first, rest) = split_leading_int(bytes)?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()));
        }
        let value = i32::from_ne_bytes(*first);
        Ok(u32::try_from(value).map_or(FlushReply::Failed, FlushReply::Removed))
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    #[test]
    fn flush_reply_is_one_native_int() {
        for (reply, int) in [
            (FlushReply::Removed(0), 0),
            (FlushReply::Removed(7), 7),
            (FlushReply::Failed, -1),
        ] {
            assert_eq!(reply.encode(), i32::to_ne_bytes(int));
            assert_eq!(FlushReply::decode(&reply.encode()), Ok(reply));
        }
        assert_eq!(
            FlushReply::decode(&(-2i32).to_ne_bytes()),
            Ok(FlushReply::Failed)
        );
        assert_eq!(
            FlushReply::removed(usize::MAX).encode(),
            i32::MAX.to_ne_bytes()
        );
        assert_eq!(
            FlushReply::decode(&[0, 0]),
            Err(DecodeError::ShortPrefix { got: 2 })
        );
        assert_eq!(
            FlushReply::decode(&[0; 5]),
            Err(DecodeError::TrailingBytes(1))
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
