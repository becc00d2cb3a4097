//! The answers of the database as the cache holds them: [`Value`], and
//! its encoding into the cache's entries (a password row packed into one
//! allocation, the entry of a row stored under the address it names holding
//! that address once).

use std::sync::Arc;

use crate::cache::Answer;
use crate::db::Route;
use crate::protocol::{PwStruct, UserStatus, VLimits};

/// A database answer, before the parts that come from the request (the
/// domain as typed) are added.
///
/// Kept small: a site caches a million of these. The limits record is boxed
/// and a password row is packed into one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    User(UserStatus),
    Relay(bool),
    Password(Option<PackedRow>),
    Host(Option<Route>),
    Alias(Arc<Vec<Vec<u8>>>),
    Limits(Option<Box<VLimits>>),
    Domain(Option<Arc<str>>),
}

/// A password row in one allocation: uid, gid (4 bytes each), the inactive
/// flag, the lengths of the six text fields (2 bytes each; the columns hold
/// at most a few hundred bytes), then the fields (name, domain, password,
/// gecos, dir, shell).
#[derive(Clone, PartialEq, Eq)]
pub struct PackedRow(Box<[u8]>);

const PACKED_HEADER: usize = 4 + 4 + 1 + 6 * 2;

impl PackedRow {
    pub fn pack(row: &PwStruct) -> PackedRow {
        let fields = [
            &row.name,
            &row.domain,
            &row.passwd,
            &row.gecos,
            &row.dir,
            &row.shell,
        ];
        let mut buf =
            Vec::with_capacity(PACKED_HEADER + fields.iter().map(|f| f.len()).sum::<usize>());
        buf.extend_from_slice(&row.uid.to_le_bytes());
        buf.extend_from_slice(&row.gid.to_le_bytes());
        buf.push(u8::from(row.inactive));
        // A longer field (impossible with the IndiMail columns) is cut
        // rather than misread.
        let len = |f: &Vec<u8>| f.len().min(usize::from(u16::MAX));
        for f in &fields {
            buf.extend_from_slice(&(len(f) as u16).to_le_bytes());
        }
        for f in fields {
            buf.extend_from_slice(&f[..len(f)]);
        }
        PackedRow(buf.into_boxed_slice())
    }

    pub fn unpack(&self) -> PwStruct {
        let b = &self.0;
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut at = PACKED_HEADER;
        let mut field = |i: usize| {
            let len = usize::from(u16::from_le_bytes([b[9 + 2 * i], b[10 + 2 * i]]));
            let f = b[at..at + len].to_vec();
            at += len;
            f
        };
        let (name, domain, passwd, gecos, dir, shell) =
            (field(0), field(1), field(2), field(3), field(4), field(5));
        PwStruct {
            name,
            domain,
            passwd,
            uid: word(0),
            gid: word(4),
            gecos,
            dir,
            shell,
            inactive: b[8] != 0,
        }
    }

    /// The encoded row.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Field `i` (0 name, 1 domain, 2 password, 3 gecos, 4 dir, 5 shell)
    /// of an encoded row checked by `from_bytes` or made by `pack`.
    fn field_of(b: &[u8], i: usize) -> &[u8] {
        let len = |k: usize| usize::from(u16::from_le_bytes([b[9 + 2 * k], b[10 + 2 * k]]));
        let at = PACKED_HEADER + (0..i).map(len).sum::<usize>();
        &b[at..at + len(i)]
    }

    /// A row from bytes that `pack` made: `None` unless the header and the
    /// lengths add up.
    fn from_bytes(b: &[u8]) -> Option<PackedRow> {
        let lens = b.get(9..PACKED_HEADER)?;
        let total: usize = lens
            .chunks_exact(2)
            .map(|l| usize::from(u16::from_le_bytes([l[0], l[1]])))
            .sum();
        (b.len() == PACKED_HEADER + total).then(|| PackedRow(b.into()))
    }
}

impl std::fmt::Debug for PackedRow {
    // The row holds the password: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedRow(<{} bytes>)", self.0.len())
    }
}

// Answer tags.
const USER: u8 = 0;
const RELAY: u8 = 1;
const PASSWORD_NONE: u8 = 2;
const PASSWORD: u8 = 3;
const HOST_NONE: u8 = 4;
const HOST: u8 = 5;
const ALIAS: u8 = 6;
const LIMITS_NONE: u8 = 7;
const LIMITS: u8 = 8;
const DOMAIN_NONE: u8 = 9;
const DOMAIN: u8 = 10;

impl Answer for Value {
    /// An answer tag, then the answer.
    fn encode(&self, out: &mut Vec<u8>) -> Option<()> {
        match self {
            Value::User(s) => out.extend_from_slice(&[USER, *s as u8]),
            Value::Relay(r) => out.extend_from_slice(&[RELAY, u8::from(*r)]),
            Value::Password(None) => out.push(PASSWORD_NONE),
            Value::Password(Some(row)) => {
                out.push(PASSWORD);
                out.extend_from_slice(row.bytes());
            }
            Value::Host(None) => out.push(HOST_NONE),
            Value::Host(Some(r)) => {
                out.push(HOST);
                out.extend_from_slice(&r.port.to_le_bytes());
                out.extend_from_slice(r.host.as_bytes());
            }
            Value::Alias(lines) => {
                out.push(ALIAS);
                for l in lines.iter() {
                    out.extend_from_slice(&u32::try_from(l.len()).ok()?.to_le_bytes());
                    out.extend_from_slice(l);
                }
            }
            Value::Limits(None) => out.push(LIMITS_NONE),
            Value::Limits(Some(l)) => {
                out.push(LIMITS);
                out.extend_from_slice(&l.to_bytes());
            }
            Value::Domain(None) => out.push(DOMAIN_NONE),
            Value::Domain(Some(d)) => {
                out.push(DOMAIN);
                out.extend_from_slice(d.as_bytes());
            }
        }
        Some(())
    }

    fn encoded_len(&self) -> usize {
        1 + match self {
            Value::Password(Some(row)) => row.bytes().len(),
            Value::Host(Some(r)) => 2 + r.host.len(),
            Value::Alias(lines) => lines.iter().map(|l| 4 + l.len()).sum(),
            Value::Limits(Some(_)) => VLimits::SIZE,
            Value::Domain(Some(d)) => d.len(),
            _ => 1,
        }
    }

    /// The answer `encode` wrote; `None` for bytes it cannot have written.
    fn decode(answer: &[u8]) -> Option<Value> {
        let (&tag, rest) = answer.split_first()?;
        Some(match tag {
            USER => Value::User(match rest {
                [0] => UserStatus::Active,
                [1] => UserStatus::Absent,
                [2] => UserStatus::Inactive,
                [3] => UserStatus::OverQuota,
                [4] => UserStatus::Alias,
                _ => return None,
            }),
            RELAY => Value::Relay(*rest.first()? != 0),
            PASSWORD_NONE => Value::Password(None),
            PASSWORD => Value::Password(Some(PackedRow::from_bytes(rest)?)),
            HOST_NONE => Value::Host(None),
            HOST => {
                let (port, host) = rest.split_at_checked(2)?;
                Value::Host(Some(Route {
                    host: String::from_utf8(host.to_vec()).ok()?,
                    port: u16::from_le_bytes([port[0], port[1]]),
                }))
            }
            ALIAS => {
                let mut lines = Vec::new();
                let mut at = rest;
                while !at.is_empty() {
                    let (len, tail) = at.split_at_checked(4)?;
                    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                    let (line, tail) = tail.split_at_checked(len)?;
                    lines.push(line.to_vec());
                    at = tail;
                }
                Value::Alias(Arc::new(lines))
            }
            LIMITS_NONE => Value::Limits(None),
            LIMITS => Value::Limits(Some(Box::new(VLimits::from_bytes(rest).ok()?))),
            DOMAIN_NONE => Value::Domain(None),
            DOMAIN => Value::Domain(Some(Arc::from(std::str::from_utf8(rest).ok()?))),
            _ => return None,
        })
    }

    fn is_negative(&self) -> bool {
        match self {
            Value::User(s) => *s == UserStatus::Absent,
            Value::Relay(r) => !r,
            Value::Password(p) => p.is_none(),
            Value::Host(h) => h.is_none(),
            Value::Alias(a) => a.is_empty(),
            Value::Limits(l) => l.is_none(),
            Value::Domain(d) => d.is_none(),
        }
    }

    /// A password row stored under the address it names holds it once.
    fn names_key(answer: &[u8], key: &[u8]) -> bool {
        match answer.split_first() {
            Some((&PASSWORD, row)) if PackedRow::from_bytes(row).is_some() => {
                let (name, domain) = (PackedRow::field_of(row, 0), PackedRow::field_of(row, 1));
                key.len() == name.len() + 1 + domain.len()
                    && key.starts_with(name)
                    && key[name.len()] == b'@'
                    && key.ends_with(domain)
            }
            _ => false,
        }
    }

    fn key_of(answer: &[u8], out: &mut Vec<u8>) {
        if let Some((&PASSWORD, row)) = answer.split_first() {
            out.extend_from_slice(PackedRow::field_of(row, 0));
            out.push(b'@');
            out.extend_from_slice(PackedRow::field_of(row, 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, domain: &str) -> PackedRow {
        PackedRow::pack(&PwStruct {
            name: name.into(),
            domain: domain.into(),
            passwd: b"$6$salt$hash".to_vec(),
            uid: 1,
            gid: 2,
            gecos: b"G".to_vec(),
            dir: b"/d".to_vec(),
            shell: b"NOQUOTA".to_vec(),
            inactive: false,
        })
    }

    fn every_value() -> Vec<Value> {
        let limits = VLimits {
            maxforwards: 7,
            perm_maillist_users: 3,
            ..VLimits::default()
        };
        vec![
            Value::User(UserStatus::Active),
            Value::User(UserStatus::Absent),
            Value::User(UserStatus::Inactive),
            Value::User(UserStatus::OverQuota),
            Value::User(UserStatus::Alias),
            Value::Relay(true),
            Value::Relay(false),
            Value::Password(None),
            Value::Password(Some(row("jo", "example.com"))),
            Value::Host(None),
            Value::Host(Some(Route {
                host: "10.0.0.1".into(),
                port: 2525,
            })),
            Value::Alias(Arc::new(vec![])),
            Value::Alias(Arc::new(vec![b"&a@b".to_vec(), Vec::new(), b"x".to_vec()])),
            Value::Limits(None),
            Value::Limits(Some(Box::new(limits))),
            Value::Domain(None),
            Value::Domain(Some(Arc::from("example.com"))),
        ]
    }

    fn encoded(v: &Value) -> Vec<u8> {
        let mut b = Vec::new();
        v.encode(&mut b).unwrap();
        b
    }

    #[test]
    fn every_answer_round_trips() {
        for v in every_value() {
            assert_eq!(Value::decode(&encoded(&v)), Some(v.clone()), "{v:?}");
        }
    }

    #[test]
    fn a_row_names_the_address_it_belongs_to_and_nothing_else() {
        let own = encoded(&Value::Password(Some(row("jo", "example.com"))));
        assert!(Value::names_key(&own, b"jo@example.com"));
        // Same length, other bytes: not the key.
        for other in [
            &b"jo@example.org"[..],
            b"jo.example.com",
            b"Jo@example.com",
            b"jo@example.co",
            b"joe@example.com",
            b"jo",
            b"jo@alias.test",
        ] {
            assert!(!Value::names_key(&own, other), "{other:?}");
        }
        let mut key = Vec::new();
        Value::key_of(&own, &mut key);
        assert_eq!(key, b"jo@example.com");
        // Only a row names a key.
        for v in every_value() {
            if !matches!(v, Value::Password(Some(_))) {
                assert!(!Value::names_key(&encoded(&v), b"jo@example.com"), "{v:?}");
            }
        }
    }

    #[test]
    fn bytes_the_cache_did_not_write_decode_to_nothing() {
        for bad in [
            &[][..],
            &[USER, 9],
            &[USER],
            &[PASSWORD, 1, 2, 3],
            &[HOST, 1],
            &[HOST, 0, 0, 0xff],
            &[ALIAS, 5, 0, 0, 0, b'a'],
            &[LIMITS, 0, 0],
            &[DOMAIN, 0xff],
            &[99],
        ] {
            assert_eq!(Value::decode(bad), None, "{bad:?}");
        }
        assert!(PackedRow::from_bytes(&[0; PACKED_HEADER + 1]).is_none());
        assert!(!Value::names_key(&[PASSWORD, 1, 2, 3], b"x@y"));
    }

    #[test]
    fn packed_rows_round_trip_and_hide_the_password() {
        let row = PwStruct {
            name: b"joe".to_vec(),
            domain: b"example.com".to_vec(),
            passwd: b"$6$salt$secret-hash".to_vec(),
            uid: 555,
            gid: 0x2010,
            gecos: b"Joe Bloggs".to_vec(),
            dir: b"/home/mail/example.com/joe".to_vec(),
            shell: Vec::new(),
            inactive: true,
        };
        let packed = PackedRow::pack(&row);
        assert_eq!(packed.unpack(), row);
        assert!(!format!("{packed:?}").contains("secret"));
        let empty = PwStruct::default();
        assert_eq!(PackedRow::pack(&empty).unpack(), empty);
        // The value the cache stores stays small.
        assert!(
            std::mem::size_of::<Value>() <= 32,
            "{}",
            std::mem::size_of::<Value>()
        );
    }
}
