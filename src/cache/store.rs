//! The storage of one cache shard: a least-recently-used list kept in a slab,
//! each entry one allocation that holds its key and its answer, encoded.
//!
//! A site caches a million password rows. Per entry this costs the encoded
//! key and answer (a password entry stored under the address its row names
//! keeps that address only once, in the row), a 32-byte slot and a few bytes
//! of hash table. A map of boxed keys to enum values with a heap node per
//! entry cost about a hundred bytes more.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use hashbrown::HashTable;

use super::{PackedRow, Value};
use crate::db::Route;
use crate::protocol::{QueryType, UserStatus, VLimits};

/// No slot (the end of a list).
const NIL: u32 = u32::MAX;
/// Slots are allocated this many at a time, so that growing never copies
/// the slab or leaves half of it unused.
const CHUNK: usize = 1024;
/// A key length saying that the key is the row's `name@domain`, which the
/// entry holds already.
const KEY_IS_ROW: u16 = u16::MAX;
/// Bytes before the key: query type, key length.
const HEAD: usize = 3;

/// What an entry costs besides its encoded bytes: its slot and about two
/// table buckets.
pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>() + 10;

struct Slot {
    /// Query type, key length, key, answer. Empty in a free slot.
    blob: Box<[u8]>,
    /// Milliseconds on the cache's clock.
    deadline: u64,
    /// Towards the most recently used entry; in a free slot unused.
    prev: u32,
    /// Towards the least recently used entry; in a free slot the next free one.
    next: u32,
}

pub struct Store {
    chunks: Vec<Vec<Slot>>,
    /// Free slots, linked through `next`.
    free: u32,
    /// The most recently used entry.
    head: u32,
    /// The least recently used entry.
    tail: u32,
    table: HashTable<u32>,
    len: usize,
    cap: usize,
    hasher: RandomState,
    /// A key put together from a row, when the table rehashes.
    scratch: RefCell<Vec<u8>>,
}

/// What storing an entry did besides storing it.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    New,
    /// It replaced the entry for the same key, of this many bytes.
    Replaced(usize),
    /// It evicted the least recently used entry, of this type and size.
    Evicted(QueryType, usize),
}

/// The hash of a key, the same for the cache's shard choice and the table.
pub fn hash_key(hasher: &RandomState, qtype: QueryType, key: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write_u8(qtype.as_u8());
    h.write(key);
    h.finish()
}

impl Store {
    pub fn new(cap: usize, hasher: RandomState) -> Store {
        Store {
            chunks: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            table: HashTable::new(),
            len: 0,
            cap: cap.max(1),
            hasher,
            scratch: RefCell::new(Vec::new()),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn slot(&self, i: u32) -> &Slot {
        &self.chunks[i as usize / CHUNK][i as usize % CHUNK]
    }

    fn slot_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.chunks[i as usize / CHUNK][i as usize % CHUNK]
    }

    fn find(&self, hash: u64, qtype: QueryType, key: &[u8]) -> Option<u32> {
        self.table
            .find(hash, |&i| key_is(&self.slot(i).blob, qtype, key))
            .copied()
    }

    /// The hash of the entry in slot `i`, computed again from its key.
    fn rehash(&self, i: u32) -> u64 {
        let blob = &self.slot(i).blob;
        let qtype = QueryType::from_u8(blob[0]).unwrap_or(QueryType::User);
        match stored_key(blob) {
            Some(key) => hash_key(&self.hasher, qtype, key),
            None => {
                let mut key = self.scratch.borrow_mut();
                key.clear();
                row_key(blob, &mut key);
                hash_key(&self.hasher, qtype, &key)
            }
        }
    }

    /// The encoded answer for a key and its deadline; the entry becomes the
    /// most recently used.
    pub fn get(&mut self, hash: u64, qtype: QueryType, key: &[u8]) -> Option<(&[u8], u64)> {
        let i = self.find(hash, qtype, key)?;
        self.unlink(i);
        self.link_front(i);
        let s = self.slot(i);
        Some((answer(&s.blob), s.deadline))
    }

    /// Store an answer under a key. Returns `None`, storing nothing, when
    /// the key is too long to encode (no address is).
    pub fn push(
        &mut self,
        hash: u64,
        qtype: QueryType,
        key: &[u8],
        value: &Value,
        deadline: u64,
    ) -> Option<(Pushed, usize)> {
        let blob = encode(qtype, key, value)?;
        let bytes = blob.len() + SLOT_BYTES;
        if let Some(i) = self.find(hash, qtype, key) {
            let s = self.slot_mut(i);
            let old = std::mem::replace(&mut s.blob, blob);
            s.deadline = deadline;
            self.unlink(i);
            self.link_front(i);
            return Some((Pushed::Replaced(old.len() + SLOT_BYTES), bytes));
        }
        let mut pushed = Pushed::New;
        if self.len >= self.cap {
            if let Some((q, b)) = self.pop_lru() {
                pushed = Pushed::Evicted(q, b);
            }
        }
        let i = self.alloc(blob, deadline);
        self.link_front(i);
        let chunks = &self.chunks;
        let hasher = &self.hasher;
        let scratch = &self.scratch;
        self.table
            .insert_unique(hash, i, |&j| slot_hash(chunks, hasher, scratch, j));
        self.len += 1;
        Some((pushed, bytes))
    }

    /// Remove the entry for a key; returns its size.
    pub fn pop(&mut self, hash: u64, qtype: QueryType, key: &[u8]) -> Option<usize> {
        let i = self.find(hash, qtype, key)?;
        Some(self.remove(hash, i).1)
    }

    /// Remove the least recently used entry; returns its type and size.
    pub fn pop_lru(&mut self) -> Option<(QueryType, usize)> {
        let i = self.tail;
        if i == NIL {
            return None;
        }
        let hash = self.rehash(i);
        Some(self.remove(hash, i))
    }

    /// Remove every entry of type `qtype` whose stored key satisfies
    /// `doomed`; returns the sizes removed.
    pub fn remove_where(&mut self, qtype: QueryType, doomed: impl Fn(&[u8]) -> bool) -> Vec<usize> {
        let mut found = Vec::new();
        let mut i = self.head;
        while i != NIL {
            let s = self.slot(i);
            if s.blob[0] == qtype.as_u8() && stored_key(&s.blob).is_some_and(&doomed) {
                found.push(i);
            }
            i = s.next;
        }
        found
            .into_iter()
            .map(|i| {
                let hash = self.rehash(i);
                self.remove(hash, i).1
            })
            .collect()
    }

    /// Forget everything and give the memory back.
    pub fn clear(&mut self) {
        self.chunks = Vec::new();
        self.table = HashTable::new();
        self.free = NIL;
        self.head = NIL;
        self.tail = NIL;
        self.len = 0;
    }

    fn remove(&mut self, hash: u64, i: u32) -> (QueryType, usize) {
        if let Ok(e) = self.table.find_entry(hash, |&j| j == i) {
            e.remove();
        }
        self.unlink(i);
        let free = self.free;
        let s = self.slot_mut(i);
        let blob = std::mem::take(&mut s.blob);
        s.next = free;
        self.free = i;
        self.len -= 1;
        let qtype = QueryType::from_u8(blob[0]).unwrap_or(QueryType::User);
        (qtype, blob.len() + SLOT_BYTES)
    }

    fn alloc(&mut self, blob: Box<[u8]>, deadline: u64) -> u32 {
        let slot = Slot {
            blob,
            deadline,
            prev: NIL,
            next: NIL,
        };
        if self.free != NIL {
            let i = self.free;
            self.free = self.slot(i).next;
            *self.slot_mut(i) = slot;
            return i;
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let n = self.chunks.len() - 1;
        let last = &mut self.chunks[n];
        last.push(slot);
        (n * CHUNK + last.len() - 1) as u32
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = self.slot(i);
            (s.prev, s.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slot_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slot_mut(next).prev = prev;
        }
    }

    fn link_front(&mut self, i: u32) {
        let head = self.head;
        {
            let s = self.slot_mut(i);
            s.prev = NIL;
            s.next = head;
        }
        if head == NIL {
            self.tail = i;
        } else {
            self.slot_mut(head).prev = i;
        }
        self.head = i;
    }
}

/// `Store::rehash` for the table's growth, which cannot borrow the store.
fn slot_hash(
    chunks: &[Vec<Slot>],
    hasher: &RandomState,
    scratch: &RefCell<Vec<u8>>,
    i: u32,
) -> u64 {
    let blob = &chunks[i as usize / CHUNK][i as usize % CHUNK].blob;
    let qtype = QueryType::from_u8(blob[0]).unwrap_or(QueryType::User);
    match stored_key(blob) {
        Some(key) => hash_key(hasher, qtype, key),
        None => {
            let mut key = scratch.borrow_mut();
            key.clear();
            row_key(blob, &mut key);
            hash_key(hasher, qtype, &key)
        }
    }
}

fn key_len(blob: &[u8]) -> u16 {
    u16::from_le_bytes([blob[1], blob[2]])
}

/// The key as stored, or `None` when the row holds it.
fn stored_key(blob: &[u8]) -> Option<&[u8]> {
    match key_len(blob) {
        KEY_IS_ROW => None,
        n => Some(&blob[HEAD..HEAD + usize::from(n)]),
    }
}

/// The encoded answer: tag and payload.
fn answer(blob: &[u8]) -> &[u8] {
    match key_len(blob) {
        KEY_IS_ROW => &blob[HEAD..],
        n => &blob[HEAD + usize::from(n)..],
    }
}

/// Append `name@domain` of the row in a blob whose key the row holds.
fn row_key(blob: &[u8], out: &mut Vec<u8>) {
    let row = &answer(blob)[1..];
    out.extend_from_slice(PackedRow::field_of(row, 0));
    out.push(b'@');
    out.extend_from_slice(PackedRow::field_of(row, 1));
}

fn key_is(blob: &[u8], qtype: QueryType, key: &[u8]) -> bool {
    if blob[0] != qtype.as_u8() {
        return false;
    }
    match stored_key(blob) {
        Some(k) => k == key,
        None => row_names(&answer(blob)[1..], key),
    }
}

/// Whether `key` is `name@domain` of an encoded row.
fn row_names(row: &[u8], key: &[u8]) -> bool {
    let (name, domain) = (PackedRow::field_of(row, 0), PackedRow::field_of(row, 1));
    key.len() == name.len() + 1 + domain.len()
        && key.starts_with(name)
        && key[name.len()] == b'@'
        && key.ends_with(domain)
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

/// Encode an entry: query type, key length, key (left out when the answer is
/// a row that names it), answer tag, answer.
pub fn encode(qtype: QueryType, key: &[u8], value: &Value) -> Option<Box<[u8]>> {
    let row_names_key = matches!(value, Value::Password(Some(row)) if row_names(row.bytes(), key));
    let klen = if row_names_key {
        KEY_IS_ROW
    } else {
        u16::try_from(key.len()).ok().filter(|&n| n < KEY_IS_ROW)?
    };
    let mut b = Vec::with_capacity(HEAD + key.len() + 1 + value_len(value));
    b.push(qtype.as_u8());
    b.extend_from_slice(&klen.to_le_bytes());
    if !row_names_key {
        b.extend_from_slice(key);
    }
    match value {
        Value::User(s) => b.extend_from_slice(&[USER, *s as u8]),
        Value::Relay(r) => b.extend_from_slice(&[RELAY, u8::from(*r)]),
        Value::Password(None) => b.push(PASSWORD_NONE),
        Value::Password(Some(row)) => {
            b.push(PASSWORD);
            b.extend_from_slice(row.bytes());
        }
        Value::Host(None) => b.push(HOST_NONE),
        Value::Host(Some(r)) => {
            b.push(HOST);
            b.extend_from_slice(&r.port.to_le_bytes());
            b.extend_from_slice(r.host.as_bytes());
        }
        Value::Alias(lines) => {
            b.push(ALIAS);
            for l in lines.iter() {
                b.extend_from_slice(&u32::try_from(l.len()).ok()?.to_le_bytes());
                b.extend_from_slice(l);
            }
        }
        Value::Limits(None) => b.push(LIMITS_NONE),
        Value::Limits(Some(l)) => {
            b.push(LIMITS);
            b.extend_from_slice(&l.to_bytes());
        }
        Value::Domain(None) => b.push(DOMAIN_NONE),
        Value::Domain(Some(d)) => {
            b.push(DOMAIN);
            b.extend_from_slice(d.as_bytes());
        }
    }
    Some(b.into_boxed_slice())
}

fn value_len(value: &Value) -> usize {
    match value {
        Value::Password(Some(row)) => row.bytes().len(),
        Value::Host(Some(r)) => 2 + r.host.len(),
        Value::Alias(lines) => lines.iter().map(|l| 4 + l.len()).sum(),
        Value::Limits(Some(_)) => VLimits::SIZE,
        Value::Domain(Some(d)) => d.len(),
        _ => 1,
    }
}

/// Decode an answer encoded by `encode`; `None` for bytes it cannot have
/// written.
pub fn decode(answer: &[u8]) -> Option<Value> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::PasswdRow;

    fn row(name: &str, domain: &str) -> PackedRow {
        PackedRow::pack(&PasswdRow {
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

    #[test]
    fn every_answer_round_trips() {
        for v in every_value() {
            for key in [&b"jo@example.com"[..], b"other@alias.test", b""] {
                let blob = encode(QueryType::Password, key, &v).unwrap();
                assert_eq!(
                    decode(answer(&blob)),
                    Some(v.clone()),
                    "{v:?} under {key:?}"
                );
                assert!(key_is(&blob, QueryType::Password, key));
                assert!(!key_is(&blob, QueryType::User, key));
                assert!(!key_is(&blob, QueryType::Password, b"jo@example.co"));
            }
        }
    }

    #[test]
    fn a_row_that_names_its_key_does_not_store_it_twice() {
        let v = Value::Password(Some(row("jo", "example.com")));
        let own = encode(QueryType::Password, b"jo@example.com", &v).unwrap();
        let alias = encode(QueryType::Password, b"jo@alias.test", &v).unwrap();
        assert_eq!(key_len(&own), KEY_IS_ROW);
        assert_eq!(own.len() + b"jo@alias.test".len(), alias.len());
        // Same length, other bytes: not the key.
        for other in [
            &b"jo@example.org"[..],
            b"jo.example.com",
            b"Jo@example.com",
            b"jo@example.co",
            b"joe@example.com",
            b"jo",
        ] {
            assert!(!key_is(&own, QueryType::Password, other), "{other:?}");
        }
        let mut key = Vec::new();
        row_key(&own, &mut key);
        assert_eq!(key, b"jo@example.com");
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
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        assert!(PackedRow::from_bytes(&[0; PACKED_HEADER_FOR_TESTS + 1]).is_none());
    }

    const PACKED_HEADER_FOR_TESTS: usize = 4 + 4 + 1 + 6 * 2;

    #[test]
    fn overlong_keys_are_not_stored() {
        let mut s = Store::new(4, RandomState::new());
        let key = vec![b'a'; usize::from(KEY_IS_ROW)];
        let h = hash_key(&s.hasher, QueryType::User, &key);
        assert_eq!(
            s.push(h, QueryType::User, &key, &Value::Relay(true), 9),
            None
        );
        assert_eq!(s.len(), 0);
    }

    /// The store against a plain list kept in recency order, through a long
    /// run of random operations: same answers, same evictions, same sizes.
    #[test]
    fn behaves_like_a_plain_lru_list() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let cap = 50;
        let mut s = Store::new(cap, RandomState::new());
        // Most recently used first: (type, key, value, deadline).
        let mut model: Vec<(QueryType, Vec<u8>, Value, u64)> = Vec::new();
        let values = every_value();
        for step in 0..20_000u64 {
            let q = [QueryType::User, QueryType::Password, QueryType::Relay][rnd(3) as usize];
            let n = rnd(120);
            // Keys that a row names, keys it does not, and relay keys.
            let key = match (q, n % 3) {
                (QueryType::Relay, _) => format!("u{n}@example.com 10.0.0.{}", n % 7),
                (_, 0) => format!("u{n}@example.com"),
                _ => format!("u{n}@alias.test"),
            }
            .into_bytes();
            let h = hash_key(&s.hasher, q, &key);
            let pos = model
                .iter()
                .position(|(mq, mk, _, _)| *mq == q && *mk == key);
            match rnd(10) {
                0..=3 => {
                    let got = s.get(h, q, &key).map(|(a, d)| (decode(a).unwrap(), d));
                    let want = pos.map(|p| {
                        let e = model.remove(p);
                        let r = (e.2.clone(), e.3);
                        model.insert(0, e);
                        r
                    });
                    assert_eq!(got, want, "step {step}");
                }
                4..=7 => {
                    let v = if q == QueryType::Password && n % 3 == 0 {
                        Value::Password(Some(row(&format!("u{n}"), "example.com")))
                    } else {
                        values[rnd(values.len() as u64) as usize].clone()
                    };
                    let (pushed, _) = s.push(h, q, &key, &v, step).unwrap();
                    match pos {
                        Some(p) => {
                            assert!(matches!(pushed, Pushed::Replaced(_)), "step {step}");
                            model.remove(p);
                        }
                        None if model.len() == cap => {
                            let (lq, ..) = model.pop().unwrap();
                            assert!(
                                matches!(pushed, Pushed::Evicted(eq, _) if eq == lq),
                                "step {step}: {pushed:?}"
                            );
                        }
                        None => assert_eq!(pushed, Pushed::New, "step {step}"),
                    }
                    model.insert(0, (q, key, v, step));
                }
                8 => {
                    let got = s.pop(h, q, &key).is_some();
                    assert_eq!(got, pos.is_some(), "step {step}");
                    if let Some(p) = pos {
                        model.remove(p);
                    }
                }
                _ => {
                    let ip = format!(" 10.0.0.{}", n % 7);
                    let removed = s.remove_where(QueryType::Relay, |k| k.ends_with(ip.as_bytes()));
                    let before = model.len();
                    model.retain(|(mq, mk, _, _)| {
                        !(*mq == QueryType::Relay && mk.ends_with(ip.as_bytes()))
                    });
                    assert_eq!(removed.len(), before - model.len(), "step {step}");
                }
            }
            assert_eq!(s.len(), model.len(), "step {step}");
        }
        // The eviction order is the model's, to the last entry.
        while let Some((q, _)) = s.pop_lru() {
            assert_eq!(model.pop().unwrap().0, q);
        }
        assert!(model.is_empty());
    }

    #[test]
    fn entries_keyed_by_their_row_survive_the_table_growing() {
        let mut s = Store::new(100_000, RandomState::new());
        for n in 0..20_000 {
            let key = format!("u{n}@example.com");
            let v = Value::Password(Some(row(&format!("u{n}"), "example.com")));
            let h = hash_key(&s.hasher, QueryType::Password, key.as_bytes());
            s.push(h, QueryType::Password, key.as_bytes(), &v, n)
                .unwrap();
        }
        for n in 0..20_000 {
            let key = format!("u{n}@example.com");
            let h = hash_key(&s.hasher, QueryType::Password, key.as_bytes());
            assert_eq!(s.get(h, QueryType::Password, key.as_bytes()).unwrap().1, n);
        }
        s.clear();
        assert_eq!(s.len(), 0);
        assert!(s.chunks.is_empty());
    }
}
