//! A server's answer to each query type: the leading int and its payload.

use super::{
    bounded_int, exact_len, refuse_bytes, split_leading_int, DecodeError, EncodeError,
    PasswordReply, QueryType, VLimits, INT_LEN, PIPE_BUF,
};

/// The first int of a reply that means "temporary or system error" for every query type.
const ERROR_STATUS: i32 = -1;

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

/// A reply that is only its first int.
fn int_only(value: i32) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use super::*;

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
}
