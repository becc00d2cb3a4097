//! What the wire-format tests of every message share: example records and values.

use super::*;

/// §2 example: USER query for joe@example.com, reply FIFO
/// /run/indimail/inquery/123451700000000, no IP.
#[cfg(target_endian = "little")]
pub(super) const USER_QUERY_RECORD: [u8; 61] = [
    0x39, 0x00, 0x00, 0x00, 0x01, 0x00, 0x6a, 0x6f, 0x65, 0x40, 0x65, 0x78, //
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x2f, 0x72, //
    0x75, 0x6e, 0x2f, 0x69, 0x6e, 0x64, 0x69, 0x6d, 0x61, 0x69, 0x6c, 0x2f, //
    0x69, 0x6e, 0x71, 0x75, 0x65, 0x72, 0x79, 0x2f, 0x31, 0x32, 0x33, 0x34, //
    0x35, 0x31, 0x37, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x00, //
    0x00,
];

/// §2 example: RELAY query over TCP for joe@example.com from 10.0.0.1.
#[cfg(target_endian = "little")]
pub(super) const RELAY_QUERY_RECORD: [u8; 38] = [
    0x22, 0x00, 0x00, 0x00, 0x02, 0x00, 0x6a, 0x6f, 0x65, 0x40, 0x65, 0x78, //
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x73, 0x6f, //
    0x63, 0x6b, 0x65, 0x74, 0x00, 0x31, 0x30, 0x2e, 0x30, 0x2e, 0x30, 0x2e, //
    0x31, 0x00,
];

pub(super) const SCRAM_TWO_COLONS: &[u8] =
    b"{SCRAM-SHA-256}4096,c2FsdA==,c3RvcmVk,c2VydmVy:68657873616c74:cleartext";

pub(super) fn user_query() -> Request {
    Request {
        qtype: QueryType::User,
        email: b"joe@example.com".to_vec(),
        reply_path: b"/run/indimail/inquery/123451700000000".to_vec(),
        ip: Vec::new(),
    }
}

pub(super) fn relay_query() -> Request {
    Request {
        qtype: QueryType::Relay,
        email: b"joe@example.com".to_vec(),
        reply_path: b"socket".to_vec(),
        ip: b"10.0.0.1".to_vec(),
    }
}

pub(super) fn joe() -> PwStruct {
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
pub(super) fn record(prefix: i32, body: &[u8]) -> Vec<u8> {
    let mut bytes = prefix.to_ne_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

pub(super) fn forbidden(field: &'static str, byte: u8) -> EncodeError {
    EncodeError::ForbiddenByte { field, byte }
}

pub(super) fn bad_status(qtype: QueryType, value: i32) -> DecodeError {
    DecodeError::BadStatus { qtype, value }
}

/// A record whose length prefix matches its body.
pub(super) fn framed(body: &[u8]) -> Vec<u8> {
    record(body.len() as i32, body)
}

/// A reply with the given first int and payload, in native byte order.
pub(super) fn reply_bytes(first: i32, payload: &[u8]) -> Vec<u8> {
    record(first, payload)
}

pub(super) fn pwd_payload(text: &[u8]) -> Vec<u8> {
    let mut payload = text.to_vec();
    payload.push(0);
    reply_bytes(payload.len() as i32, &payload)
}

/// Every field distinct, so that a swapped or shifted field cannot go unnoticed.
pub(super) fn distinct_limits() -> VLimits {
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

pub(super) const JOE_PWSTRUCT: &[u8] =
    b"PWSTRUCT=joe@example.com:$5$abc$def:1:0:Joe Bloggs:/home/mail/example.com/joe:524288000:0\0";
