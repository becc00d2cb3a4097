//! Byte-exact vectors and totality checks for the wire format.

use super::*;

/// §2 example: USER query for joe@example.com, reply FIFO
/// /run/indimail/inquery/123451700000000, no IP.
#[cfg(target_endian = "little")]
const USER_QUERY_RECORD: [u8; 61] = [
    0x39, 0x00, 0x00, 0x00, 0x01, 0x00, 0x6a, 0x6f, 0x65, 0x40, 0x65, 0x78, //
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x2f, 0x72, //
    0x75, 0x6e, 0x2f, 0x69, 0x6e, 0x64, 0x69, 0x6d, 0x61, 0x69, 0x6c, 0x2f, //
    0x69, 0x6e, 0x71, 0x75, 0x65, 0x72, 0x79, 0x2f, 0x31, 0x32, 0x33, 0x34, //
    0x35, 0x31, 0x37, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x00, //
    0x00,
];

/// §2 example: RELAY query over TCP for joe@example.com from 10.0.0.1.
#[cfg(target_endian = "little")]
const RELAY_QUERY_RECORD: [u8; 38] = [
    0x22, 0x00, 0x00, 0x00, 0x02, 0x00, 0x6a, 0x6f, 0x65, 0x40, 0x65, 0x78, //
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x73, 0x6f, //
    0x63, 0x6b, 0x65, 0x74, 0x00, 0x31, 0x30, 0x2e, 0x30, 0x2e, 0x30, 0x2e, //
    0x31, 0x00,
];

const SCRAM_TWO_COLONS: &[u8] =
    b"{SCRAM-SHA-256}4096,c2FsdA==,c3RvcmVk,c2VydmVy:68657873616c74:cleartext";

fn user_query() -> Request {
    Request {
        qtype: QueryType::User,
        email: b"joe@example.com".to_vec(),
        reply_path: b"/run/indimail/inquery/123451700000000".to_vec(),
        ip: Vec::new(),
    }
}

fn relay_query() -> Request {
    Request {
        qtype: QueryType::Relay,
        email: b"joe@example.com".to_vec(),
        reply_path: b"socket".to_vec(),
        ip: b"10.0.0.1".to_vec(),
    }
}

fn joe() -> PwStruct {
    PwStruct {
        name: b"joe".to_vec(),
        domain: b"example.com".to_vec(),
        passwd: b"$5$abc$def".to_vec(),
        uid: 1,
        gid: 0,
        gecos: b"Joe Bloggs".to_vec(),
        dir: b"/home/mail/example.com/joe".to_vec(),
        shell: b"524288000".to_vec(),
        inactive: false,
    }
}

/// A record with the given length prefix and body, in native byte order.
fn record(prefix: i32, body: &[u8]) -> Vec<u8> {
    let mut bytes = prefix.to_ne_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

fn forbidden(field: &'static str, byte: u8) -> EncodeError {
    EncodeError::ForbiddenByte { field, byte }
}

fn bad_status(qtype: QueryType, value: i32) -> DecodeError {
    DecodeError::BadStatus { qtype, value }
}

/// A record whose length prefix matches its body.
fn framed(body: &[u8]) -> Vec<u8> {
    record(body.len() as i32, body)
}

/// A reply with the given first int and payload, in native byte order.
fn reply_bytes(first: i32, payload: &[u8]) -> Vec<u8> {
    record(first, payload)
}

fn pwd_payload(text: &[u8]) -> Vec<u8> {
    let mut payload = text.to_vec();
    payload.push(0);
    reply_bytes(payload.len() as i32, &payload)
}

// --- query types -------------------------------------------------------------------

#[test]
fn query_type_numbers_and_log_names() {
    let expected = [
        (1, "'User Query'"),
        (2, "'Relay Query'"),
        (3, "'Password Query'"),
        (4, "'Host Query'"),
        (5, "'Alias Query'"),
        (6, "'Domain Limits Query'"),
        (7, "'Domain Query'"),
    ];
    for (qtype, (number, name)) in QueryType::ALL.into_iter().zip(expected) {
        assert_eq!(qtype.as_u8(), number);
        assert_eq!(QueryType::from_u8(number), Some(qtype));
        assert_eq!(qtype.log_name(), name);
    }
    assert_eq!(QueryType::from_u8(0), None);
    for b in 8..=255u8 {
        assert_eq!(QueryType::from_u8(b), None);
    }
}

// --- requests ----------------------------------------------------------------------

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

// --- PWD replies -------------------------------------------------------------------

const JOE_PWSTRUCT: &[u8] =
    b"PWSTRUCT=joe@example.com:$5$abc$def:1:0:Joe Bloggs:/home/mail/example.com/joe:524288000:0\0";

#[cfg(target_endian = "little")]
#[test]
fn pwd_example_is_byte_exact() {
    let bytes = Reply::Password(PasswordReply::Found(joe()))
        .encode()
        .unwrap();
    assert_eq!(bytes[..4], [90, 0, 0, 0]);
    assert_eq!(&bytes[4..], JOE_PWSTRUCT);
    assert_eq!(JOE_PWSTRUCT.len(), 90);
    assert_eq!(
        Reply::decode(QueryType::Password, &bytes).unwrap(),
        Reply::Password(PasswordReply::Found(joe()))
    );
}

#[cfg(target_endian = "little")]
#[test]
fn pwd_no_such_user_is_byte_exact() {
    let reply = Reply::Password(PasswordReply::NoSuchUser(b"joe@example.com".to_vec()));
    let bytes = reply.encode().unwrap();
    let text = b"PWSTRUCT=No such user joe@example.com\0";
    assert_eq!(text.len(), 38);
    assert_eq!(bytes[..4], [38, 0, 0, 0]);
    assert_eq!(&bytes[4..], text);
    assert_eq!(Reply::decode(QueryType::Password, &bytes).unwrap(), reply);
}

#[test]
fn pwd_scram_with_two_colons_round_trips() {
    let mut pw = joe();
    pw.passwd = SCRAM_TWO_COLONS.to_vec();
    pw.gid = 0x10;
    pw.inactive = true;
    let reply = Reply::Password(PasswordReply::Found(pw));
    let bytes = reply.encode().unwrap();
    let mut expected_text = b"PWSTRUCT=joe@example.com:".to_vec();
    expected_text.extend_from_slice(SCRAM_TWO_COLONS);
    expected_text.extend_from_slice(b":1:16:Joe Bloggs:/home/mail/example.com/joe:524288000:1\0");
    assert_eq!(&bytes[4..], &expected_text[..]);
    assert_eq!(Reply::decode(QueryType::Password, &bytes).unwrap(), reply);
}

#[test]
fn pwd_scram_without_colons_round_trips() {
    let mut pw = joe();
    pw.passwd = b"{SCRAM-SHA-1}4096,salt,stored,server".to_vec();
    let reply = Reply::Password(PasswordReply::Found(pw));
    assert_eq!(
        Reply::decode(QueryType::Password, &reply.encode().unwrap()).unwrap(),
        reply
    );
}

#[test]
fn pwd_encode_refuses_what_the_c_parser_misreads() {
    let refused = |edit: fn(&mut PwStruct)| {
        let mut pw = joe();
        edit(&mut pw);
        Reply::Password(PasswordReply::Found(pw))
            .encode()
            .unwrap_err()
    };
    assert_eq!(
        refused(|pw| pw.passwd = [SCRAM_TWO_COLONS, b":more"].concat()),
        EncodeError::PasswordColons(3)
    );
    assert_eq!(
        refused(|pw| pw.passwd = b"{SCRAM-SHA-256}a:b".to_vec()),
        EncodeError::PasswordColons(1)
    );
    assert_eq!(
        refused(|pw| pw.passwd = b"plain:a:b".to_vec()),
        EncodeError::PasswordColons(2)
    );
    assert_eq!(
        refused(|pw| pw.passwd = b"hash\0".to_vec()),
        forbidden("password", 0)
    );
    assert_eq!(
        refused(|pw| pw.name = b"jo@e".to_vec()),
        forbidden("name", b'@')
    );
    assert_eq!(
        refused(|pw| pw.name = b"jo:e".to_vec()),
        forbidden("name", b':')
    );
    assert_eq!(
        refused(|pw| pw.name = b"No such user".to_vec()),
        EncodeError::NameLooksLikeNotFound
    );
    assert_eq!(
        refused(|pw| pw.domain = b"a:b".to_vec()),
        forbidden("domain", b':')
    );
    assert_eq!(
        refused(|pw| pw.gecos = b"Bloggs, Joe: Esq.".to_vec()),
        forbidden("gecos", b':')
    );
    assert_eq!(
        refused(|pw| pw.dir = b"/home:x".to_vec()),
        forbidden("dir", b':')
    );
    assert_eq!(
        refused(|pw| pw.shell = b"\0".to_vec()),
        forbidden("shell", 0)
    );
    assert_eq!(
        Reply::Password(PasswordReply::NoSuchUser(b"a\0b".to_vec())).encode(),
        Err(forbidden("email", 0))
    );
}

#[test]
fn pwd_payload_longer_than_pipe_buf_is_refused() {
    let mut pw = joe();
    pw.gecos = vec![b'g'; PIPE_BUF];
    assert!(matches!(
        Reply::Password(PasswordReply::Found(pw)).encode(),
        Err(EncodeError::PayloadTooLong(_))
    ));
}

#[test]
fn pwd_decode_accepts_what_c_accepts() {
    // No PWSTRUCT= prefix, and a name without domain.
    let reply = Reply::decode(QueryType::Password, &pwd_payload(b"joe:x:7:8:g:d:s:1")).unwrap();
    let Reply::Password(PasswordReply::Found(pw)) = reply else {
        panic!("expected a record, got {reply:?}");
    };
    assert_eq!(
        (pw.name.as_slice(), pw.domain.as_slice()),
        (&b"joe"[..], &b""[..])
    );
    assert_eq!((pw.uid, pw.gid, pw.inactive), (7, 8, true));
    // The name is cut at the first '@'; the domain keeps the rest.
    let reply = Reply::decode(
        QueryType::Password,
        &pwd_payload(b"PWSTRUCT=a@b@c:x:1:2:g:d:s:0"),
    )
    .unwrap();
    let Reply::Password(PasswordReply::Found(pw)) = reply else {
        panic!("expected a record, got {reply:?}");
    };
    assert_eq!(
        (pw.name.as_slice(), pw.domain.as_slice()),
        (&b"a"[..], &b"b@c"[..])
    );
    // Empty email in a not-found reply.
    assert_eq!(
        Reply::decode(QueryType::Password, &pwd_payload(b"PWSTRUCT=No such user ")).unwrap(),
        Reply::Password(PasswordReply::NoSuchUser(Vec::new()))
    );
}

#[test]
fn pwd_decode_errors_name_the_field() {
    let field_of = |text: &[u8]| match Reply::decode(QueryType::Password, &pwd_payload(text)) {
        Err(DecodeError::BadPwStruct { field, .. }) => field,
        other => panic!("expected a PWSTRUCT error, got {other:?}"),
    };
    assert_eq!(field_of(b"PWSTRUCT="), "record");
    assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:2:g:d:s"), "record");
    assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:2:g:d:s:0:extra"), "record");
    assert_eq!(field_of(b"PWSTRUCT=a@b:x::2:g:d:s:0"), "uid");
    assert_eq!(field_of(b"PWSTRUCT=a@b:x:+1:2:g:d:s:0"), "uid");
    assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:-2:g:d:s:0"), "gid");
    assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:4294967296:g:d:s:0"), "gid");
    assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:2:g:d:s:2"), "inactive flag");
    assert_eq!(field_of(b"PWSTRUCT=a@b:x:1:2:g:d:s:"), "inactive flag");
    assert_eq!(field_of(b"PWSTRUCT=No such userX"), "name");
    // A SCRAM password with one colon swallows the uid, leaving too few fields.
    assert_eq!(
        field_of(b"PWSTRUCT=a@b:{SCRAM-SHA-1}x:y:1:2:g:d:s:0"),
        "record"
    );
    // The uid 4294967295 is the largest accepted.
    assert!(Reply::decode(
        QueryType::Password,
        &pwd_payload(b"a@b:x:4294967295:0:g:d:s:0")
    )
    .is_ok());
}

#[test]
fn pwd_decode_error_messages_hold_no_password() {
    let secret = b"S3cr3tPassw0rd";
    let text = [&b"PWSTRUCT=a@b:"[..], secret, b":1:x:g:d:s:0"].concat();
    let err = Reply::decode(QueryType::Password, &pwd_payload(&text)).unwrap_err();
    assert!(!err.to_string().contains("S3cr3t"), "{err}");
    let mut pw = joe();
    pw.passwd = secret.to_vec();
    assert!(!format!("{pw:?}").contains("S3cr3t"));
}

#[test]
fn pwd_framing_errors() {
    // Payload without its NUL.
    assert_eq!(
        Reply::decode(QueryType::Password, &reply_bytes(3, b"abc")),
        Err(DecodeError::MissingNul { field: "PWSTRUCT" })
    );
    // NUL inside the text.
    assert!(matches!(
        Reply::decode(QueryType::Password, &reply_bytes(4, b"a\0b\0")),
        Err(DecodeError::BadPayload(_))
    ));
    // 0 means error for PWD; a negative count other than -1 is meaningless.
    assert_eq!(
        Reply::decode(QueryType::Password, &reply_bytes(0, b"")),
        Ok(Reply::Error)
    );
    assert_eq!(
        Reply::decode(QueryType::Password, &reply_bytes(-2, b"")),
        Err(bad_status(QueryType::Password, -2))
    );
    assert_eq!(
        Reply::decode(QueryType::Password, &reply_bytes(4097, b"")),
        Err(DecodeError::TooLong(4097))
    );
    assert_eq!(
        Reply::decode(QueryType::Password, &reply_bytes(10, b"abc\0")),
        Err(DecodeError::ShortBody {
            expected: 10,
            got: 4
        })
    );
}

// --- status replies ----------------------------------------------------------------

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

// --- string replies ----------------------------------------------------------------

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

// --- alias replies -----------------------------------------------------------------

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

// --- limits --------------------------------------------------------------------------

/// Every field distinct, so that a swapped or shifted field cannot go unnoticed.
fn distinct_limits() -> VLimits {
    VLimits {
        domain_expiry: -1_000_001,
        passwd_expiry: 1_000_002,
        maxpopaccounts: 1_000_003,
        maxaliases: -1_000_004,
        maxforwards: 1_000_005,
        maxautoresponders: 1_000_006,
        maxmailinglists: 0x0102_0304_0506_0708,
        diskquota: 0x1112_1314_1516_1718,
        maxmsgcount: 0x2122_2324_2526_2728,
        defaultquota: u64::MAX - 3,
        defaultmaxmsgcount: 524_288_000,
        disable_pop: 101,
        disable_imap: 102,
        disable_dialup: 103,
        disable_passwordchanging: 104,
        disable_webmail: 105,
        disable_relay: 106,
        disable_smtp: 107,
        perm_account: 108,
        perm_alias: 109,
        perm_forward: -110,
        perm_autoresponder: 111,
        perm_maillist: 112,
        perm_maillist_users: 113,
        perm_maillist_moderators: 114,
        perm_quota: 0x0f0e,
        perm_defaultquota: 116,
        limit_type: 2,
    }
}

#[test]
fn vlimits_layout_matches_lp64_offsets() {
    let limits = distinct_limits();
    let bytes = limits.to_bytes();
    let longs = [
        (0, limits.domain_expiry),
        (8, limits.passwd_expiry),
        (16, limits.maxpopaccounts),
        (24, limits.maxaliases),
        (32, limits.maxforwards),
        (40, limits.maxautoresponders),
        (48, limits.maxmailinglists),
    ];
    for (offset, value) in longs {
        assert_eq!(
            bytes[offset..offset + 8],
            value.to_ne_bytes(),
            "offset {offset}"
        );
    }
    let quotas = [
        (56, limits.diskquota),
        (64, limits.maxmsgcount),
        (72, limits.defaultquota),
        (80, limits.defaultmaxmsgcount),
    ];
    for (offset, value) in quotas {
        assert_eq!(
            bytes[offset..offset + 8],
            value.to_ne_bytes(),
            "offset {offset}"
        );
    }
    let shorts = [
        (88, limits.disable_pop),
        (90, limits.disable_imap),
        (92, limits.disable_dialup),
        (94, limits.disable_passwordchanging),
        (96, limits.disable_webmail),
        (98, limits.disable_relay),
        (100, limits.disable_smtp),
        (102, limits.perm_account),
        (104, limits.perm_alias),
        (106, limits.perm_forward),
        (108, limits.perm_autoresponder),
        (110, limits.perm_maillist),
        (112, limits.perm_maillist_users),
        (114, limits.perm_maillist_moderators),
        (116, limits.perm_quota),
        (118, limits.perm_defaultquota),
        (120, limits.limit_type),
    ];
    for (offset, value) in shorts {
        assert_eq!(
            bytes[offset..offset + 2],
            value.to_ne_bytes(),
            "offset {offset}"
        );
    }
    assert_eq!(bytes[122..128], [0; 6], "padding");
    assert_eq!(VLimits::from_bytes(&bytes), Ok(limits));
}

#[cfg(target_endian = "little")]
#[test]
fn vlimits_perm_maillist_trio_is_three_shorts() {
    let limits = VLimits {
        perm_maillist: 1,
        perm_maillist_users: 2,
        perm_maillist_moderators: 4,
        ..VLimits::default()
    };
    let bytes = limits.to_bytes();
    assert_eq!(bytes[108..118], [0, 0, 1, 0, 2, 0, 4, 0, 0, 0]);
    assert_eq!(VLimits::from_bytes(&bytes), Ok(limits));
}

#[test]
fn vlimits_defaults() {
    let bytes = VLimits::default().to_bytes();
    assert_eq!(bytes[..56], [0xff; 56], "seven longs of -1");
    assert_eq!(bytes[56..], [0; 72], "quotas, shorts and padding zero");
}

#[test]
fn limits_reply_round_trips_and_checks_sizes() {
    let reply = Reply::Limits(distinct_limits());
    let bytes = reply.encode().unwrap();
    assert_eq!(bytes[..4], 128i32.to_ne_bytes());
    assert_eq!(bytes.len(), 4 + 128);
    assert_eq!(Reply::decode(QueryType::Limit, &bytes), Ok(reply));

    // Non-zero padding from a C server is ignored.
    let mut padded = bytes.clone();
    padded[4 + 127] = 0xaa;
    assert_eq!(
        Reply::decode(QueryType::Limit, &padded),
        Ok(Reply::Limits(distinct_limits()))
    );

    assert_eq!(
        Reply::decode(QueryType::Limit, &reply_bytes(96, &[0; 96])),
        Err(bad_status(QueryType::Limit, 96))
    );
    assert_eq!(
        Reply::decode(QueryType::Limit, &bytes[..100]),
        Err(DecodeError::ShortBody {
            expected: 128,
            got: 96
        })
    );
    assert!(matches!(
        VLimits::from_bytes(&[0; 127]),
        Err(DecodeError::BadPayload(_))
    ));
    assert!(matches!(
        VLimits::from_bytes(&[0; 129]),
        Err(DecodeError::BadPayload(_))
    ));
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

// --- totality ----------------------------------------------------------------------

use crate::fuzz::Rng as XorShift;

/// Mostly bytes that matter to the parsers, sometimes any byte.
fn byte(rng: &mut XorShift) -> u8 {
    const INTERESTING: &[u8] = b"\x00\x01\x02\x03\x07\x08:@\n01{SCRAM-SHA-}PWSTRUCT=No such user ";
    if rng.below(4) == 0 {
        rng.next_u64() as u8
    } else {
        INTERESTING[rng.below(INTERESTING.len())]
    }
}

/// Decodes `bytes` every way there is; a decoded request must re-encode to the same
/// bytes, a decoded reply must survive encode and decode unchanged.
fn decode_every_way(bytes: &[u8]) {
    if let Ok(request) = Request::decode(bytes) {
        assert_eq!(request.encode().as_deref(), Ok(bytes));
    }
    if let Ok(request) = Request::decode_body(bytes) {
        assert_eq!(request.encode().unwrap()[4..], *bytes);
    }
    if let Some(prefix) = bytes.first_chunk::<4>() {
        let _ = Request::body_len(*prefix);
    }
    for qtype in QueryType::ALL {
        if let Ok(reply) = Reply::decode(qtype, bytes) {
            assert!(reply.is_valid_for(qtype), "{reply:?} for {qtype:?}");
            if let Ok(again) = reply.encode() {
                assert_eq!(Reply::decode(qtype, &again).as_ref(), Ok(&reply));
            }
        }
        if let Some(first) = bytes.first_chunk::<4>() {
            let _ = Reply::payload_len(qtype, i32::from_ne_bytes(*first));
        }
    }
}

#[test]
fn decoding_random_bytes_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..100_000 {
        let len = rng.below(64);
        let mut bytes: Vec<u8> = (0..len).map(|_| byte(&mut rng)).collect();
        // Half the time make the leading int a plausible count, so that the body and
        // payload parsers are reached rather than the length check.
        if len >= 4 && rng.below(2) == 0 {
            let count = match rng.below(4) {
                0 => -1,
                1 => 0,
                _ => (len - 4) as i32,
            };
            bytes[..4].copy_from_slice(&count.to_ne_bytes());
        }
        decode_every_way(&bytes);
    }
}

#[test]
fn decoding_mutated_records_never_panics() {
    let mut scram = joe();
    scram.passwd = SCRAM_TWO_COLONS.to_vec();
    let seeds: Vec<Vec<u8>> = vec![
        user_query().encode().unwrap(),
        relay_query().encode().unwrap(),
        Reply::Password(PasswordReply::Found(joe()))
            .encode()
            .unwrap(),
        Reply::Password(PasswordReply::Found(scram))
            .encode()
            .unwrap(),
        Reply::Password(PasswordReply::NoSuchUser(b"joe@x".to_vec()))
            .encode()
            .unwrap(),
        Reply::Alias(vec![b"a@x".to_vec(), b"b@y".to_vec()])
            .encode()
            .unwrap(),
        Reply::Limits(distinct_limits()).encode().unwrap(),
        Reply::Host(b"example.com:mail1:25".to_vec())
            .encode()
            .unwrap(),
    ];
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    let mut decoded_requests = 0;
    for round in 0..100_000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        for _ in 0..=rng.below(3) {
            match rng.below(4) {
                0 if !bytes.is_empty() => {
                    let at = rng.below(bytes.len());
                    bytes[at] = byte(&mut rng);
                }
                1 if !bytes.is_empty() => {
                    bytes.remove(rng.below(bytes.len()));
                }
                2 => {
                    let at = rng.below(bytes.len() + 1);
                    bytes.insert(at, byte(&mut rng));
                }
                _ => bytes.truncate(rng.below(bytes.len() + 1)),
            }
        }
        // Keep the leading int consistent in some rounds, so that field mutations are
        // judged by the field parsers.
        if bytes.len() >= 4 && rng.below(2) == 0 {
            let count = (bytes.len() - 4) as i32;
            bytes[..4].copy_from_slice(&count.to_ne_bytes());
        }
        if Request::decode(&bytes).is_ok() {
            decoded_requests += 1;
        }
        decode_every_way(&bytes);
    }
    // The loop must actually exercise the success path, not only the errors.
    assert!(
        decoded_requests > 100,
        "only {decoded_requests} mutated requests decoded"
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
