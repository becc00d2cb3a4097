//! The storage of one cache shard: an `lru::LruCache` keyed by the entry's
//! keyed 64-bit hash, each value one allocation that holds the deadline, the
//! full key and the encoded answer.
//!
//! A site caches a million password rows. Keying the map by the hash keeps
//! the map's own key small (8 bytes, no allocation); the full key inside the
//! entry is compared on every hit, so two keys with one hash never answer
//! for each other (the later one simply takes the slot). An answer that
//! names its own key (a password row stored under the address it names)
//! keeps that key only once, in the answer.

use std::hash::{BuildHasher, Hasher};
use std::marker::PhantomData;

use lru::LruCache;

use super::Answer;

/// A key length saying that the answer names the key, which is not stored
/// again.
const KEY_IN_ANSWER: u16 = u16::MAX;
/// Bytes before the key: deadline, kind, key length.
const HEAD: usize = 8 + 1 + 2;

/// What the byte bound counts for an entry besides its encoded bytes: the
/// list node of `LruCache` (key, value pointer and length, two links). The
/// table's buckets and the allocator's rounding are not counted, as the
/// slab store before this one did not count them either: so the default
/// bound still holds a million password entries of a typical site.
pub const ENTRY_OVERHEAD: usize = 40;

/// The map's hasher: the key is a keyed hash already.
#[derive(Clone, Copy, Default)]
pub struct PreHashed;

/// The hasher of [`PreHashed`]: passes the 64-bit key through.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; this folds anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for PreHashed {
    type Hasher = PassThrough;

    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

/// What storing an entry did besides storing it.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    New,
    /// It replaced the entry with the same hash, of this kind and size.
    Replaced(u8, usize),
    /// It evicted the least recently used entry, of this kind and size.
    Evicted(u8, usize),
}

/// One entry as a scan sees it.
pub struct EntryRef<'a> {
    pub kind: u8,
    /// The key; put together from the answer when the answer names it.
    pub key: &'a [u8],
    /// The encoded answer.
    pub answer: &'a [u8],
}

pub struct Store<V> {
    map: LruCache<u64, Box<[u8]>, PreHashed>,
    cap: usize,
    _answers: PhantomData<fn() -> V>,
}

impl<V: Answer> Store<V> {
    pub fn new(cap: usize) -> Store<V> {
        Store {
            map: LruCache::unbounded_with_hasher(PreHashed),
            cap: cap.max(1),
            _answers: PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The encoded answer for a key and its deadline; the entry becomes the
    /// most recently used.
    pub fn get(&mut self, hash: u64, kind: u8, key: &[u8]) -> Option<(&[u8], u64)> {
        // Looked at before it is promoted: an entry of another key with the
        // same hash is no answer and keeps its place.
        if !self
            .map
            .peek(&hash)
            .is_some_and(|b| key_is::<V>(b, kind, key))
        {
            return None;
        }
        let blob = self.map.get(&hash)?;
        Some((answer(blob), deadline(blob)))
    }

    /// Store an entry made by [`encode`] under its hash.
    pub fn push(&mut self, hash: u64, blob: Box<[u8]>) -> (Pushed, usize) {
        let bytes = blob.len() + ENTRY_OVERHEAD;
        if let Some(old) = self.map.peek_mut(&hash) {
            let old = std::mem::replace(old, blob);
            self.map.promote(&hash);
            return (Pushed::Replaced(old[8], old.len() + ENTRY_OVERHEAD), bytes);
        }
        let mut pushed = Pushed::New;
        if self.map.len() >= self.cap {
            if let Some((kind, b)) = self.pop_lru() {
                pushed = Pushed::Evicted(kind, b);
            }
        }
        self.map.push(hash, blob);
        (pushed, bytes)
    }

    /// Remove the entry for a key; returns its size.
    pub fn pop(&mut self, hash: u64, kind: u8, key: &[u8]) -> Option<usize> {
        if !self
            .map
            .peek(&hash)
            .is_some_and(|b| key_is::<V>(b, kind, key))
        {
            return None;
        }
        self.map.pop(&hash).map(|b| b.len() + ENTRY_OVERHEAD)
    }

    /// Remove the least recently used entry; returns its kind and size.
    pub fn pop_lru(&mut self) -> Option<(u8, usize)> {
        self.map
            .pop_lru()
            .map(|(_, b)| (b[8], b.len() + ENTRY_OVERHEAD))
    }

    /// Remove every entry that `doomed` picks; returns the kinds and sizes
    /// removed.
    pub fn remove_where(&mut self, mut doomed: impl FnMut(&EntryRef) -> bool) -> Vec<(u8, usize)> {
        let mut removed = Vec::new();
        let mut scratch = Vec::new();
        self.map.retain(|_, blob| {
            let gone = doomed(&entry_ref::<V>(blob, &mut scratch));
            if gone {
                removed.push((blob[8], blob.len() + ENTRY_OVERHEAD));
            }
            !gone
        });
        removed
    }

    /// Call `each` with every entry, most recently used first.
    pub fn for_each(&self, mut each: impl FnMut(&EntryRef)) {
        let mut scratch = Vec::new();
        for (_, blob) in self.map.iter() {
            each(&entry_ref::<V>(blob, &mut scratch));
        }
    }

    /// Forget everything and give the memory back.
    pub fn clear(&mut self) {
        self.map = LruCache::unbounded_with_hasher(PreHashed);
    }
}

/// An entry: deadline, kind, key length, key (left out when the answer
/// names it), answer. `None` when the key is too long to encode (no address
/// is).
pub fn encode<V: Answer>(kind: u8, key: &[u8], value: &V, deadline: u64) -> Option<Box<[u8]>> {
    let mut answer = Vec::with_capacity(value.encoded_len());
    value.encode(&mut answer)?;
    let named = V::names_key(&answer, key);
    let klen = if named {
        KEY_IN_ANSWER
    } else {
        u16::try_from(key.len())
            .ok()
            .filter(|&n| n < KEY_IN_ANSWER)?
    };
    // Allocated at its exact size: a million entries each a little larger than
    // their bytes add up.
    let stored_key: &[u8] = if named { b"" } else { key };
    let mut b = Vec::with_capacity(HEAD + stored_key.len() + answer.len());
    b.extend_from_slice(&deadline.to_le_bytes());
    b.push(kind);
    b.extend_from_slice(&klen.to_le_bytes());
    b.extend_from_slice(stored_key);
    b.extend_from_slice(&answer);
    Some(b.into_boxed_slice())
}

fn deadline(blob: &[u8]) -> u64 {
    u64::from_le_bytes(blob[..8].try_into().unwrap_or_default())
}

fn key_len(blob: &[u8]) -> u16 {
    u16::from_le_bytes([blob[9], blob[10]])
}

/// The key as stored, or `None` when the answer names it.
fn stored_key(blob: &[u8]) -> Option<&[u8]> {
    match key_len(blob) {
        KEY_IN_ANSWER => None,
        n => Some(&blob[HEAD..HEAD + usize::from(n)]),
    }
}

/// The encoded answer.
fn answer(blob: &[u8]) -> &[u8] {
    match key_len(blob) {
        KEY_IN_ANSWER => &blob[HEAD..],
        n => &blob[HEAD + usize::from(n)..],
    }
}

fn key_is<V: Answer>(blob: &[u8], kind: u8, key: &[u8]) -> bool {
    blob[8] == kind
        && match stored_key(blob) {
            Some(k) => k == key,
            None => V::names_key(answer(blob), key),
        }
}

fn entry_ref<'a, V: Answer>(blob: &'a [u8], scratch: &'a mut Vec<u8>) -> EntryRef<'a> {
    let key = match stored_key(blob) {
        Some(k) => k,
        None => {
            scratch.clear();
            V::key_of(answer(blob), scratch);
            scratch.as_slice()
        }
    };
    EntryRef {
        kind: blob[8],
        key,
        answer: answer(blob),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer for the tests: bytes; "@name" names the key "name".
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Text(Vec<u8>);

    impl Answer for Text {
        fn encode(&self, out: &mut Vec<u8>) -> Option<()> {
            out.extend_from_slice(&self.0);
            Some(())
        }
        fn encoded_len(&self) -> usize {
            self.0.len()
        }
        fn decode(answer: &[u8]) -> Option<Text> {
            Some(Text(answer.to_vec()))
        }
        fn is_negative(&self) -> bool {
            self.0.is_empty()
        }
        fn names_key(answer: &[u8], key: &[u8]) -> bool {
            answer.strip_prefix(b"@") == Some(key)
        }
        fn key_of(answer: &[u8], out: &mut Vec<u8>) {
            out.extend_from_slice(&answer[1..]);
        }
    }

    fn hash(kind: u8, key: &[u8]) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        h.write_u8(kind);
        h.write(key);
        h.finish()
    }

    fn push(s: &mut Store<Text>, kind: u8, key: &[u8], v: &Text, deadline: u64) -> Pushed {
        let blob = encode(kind, key, v, deadline).unwrap();
        s.push(hash(kind, key), blob).0
    }

    #[test]
    fn an_answer_that_names_its_key_does_not_store_it_twice() {
        let own = encode(1, b"jo", &Text(b"@jo".to_vec()), 7).unwrap();
        let other = encode(1, b"ann", &Text(b"@jo".to_vec()), 7).unwrap();
        assert_eq!(key_len(&own), KEY_IN_ANSWER);
        assert_eq!(own.len() + 3, other.len());
        assert!(key_is::<Text>(&own, 1, b"jo"));
        assert!(!key_is::<Text>(&own, 2, b"jo"));
        assert!(!key_is::<Text>(&own, 1, b"j"));
        assert_eq!(answer(&own), b"@jo");
        assert_eq!(deadline(&own), 7);
        let mut scratch = Vec::new();
        assert_eq!(entry_ref::<Text>(&own, &mut scratch).key, b"jo");
    }

    #[test]
    fn overlong_keys_are_not_stored() {
        let key = vec![b'a'; usize::from(KEY_IN_ANSWER)];
        assert!(encode(1, &key, &Text(b"x".to_vec()), 9).is_none());
    }

    /// Two keys with one hash: neither answers for the other.
    #[test]
    fn a_hash_collision_is_a_miss_not_a_wrong_answer() {
        let mut s = Store::<Text>::new(10);
        s.push(42, encode(1, b"a", &Text(b"A".to_vec()), 1).unwrap());
        assert_eq!(s.get(42, 1, b"b"), None);
        assert_eq!(s.pop(42, 1, b"b"), None);
        assert_eq!(
            s.get(42, 1, b"a").map(|(a, _)| a.to_vec()),
            Some(b"A".to_vec())
        );
        // The later key takes the slot.
        let (pushed, _) = s.push(42, encode(1, b"b", &Text(b"B".to_vec()), 1).unwrap());
        assert!(matches!(pushed, Pushed::Replaced(1, _)));
        assert_eq!(s.get(42, 1, b"a"), None);
        assert_eq!(s.len(), 1);
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
        let mut s = Store::<Text>::new(cap);
        // Most recently used first: (kind, key, value, deadline).
        let mut model: Vec<(u8, Vec<u8>, Text, u64)> = Vec::new();
        for step in 0..20_000u64 {
            let kind = rnd(3) as u8;
            let n = rnd(120);
            let key = if kind == 2 {
                format!("u{n} 10.0.0.{}", n % 7)
            } else {
                format!("u{n}")
            }
            .into_bytes();
            let h = hash(kind, &key);
            let pos = model
                .iter()
                .position(|(mk, k, _, _)| *mk == kind && *k == key);
            match rnd(10) {
                0..=3 => {
                    let got = s.get(h, kind, &key).map(|(a, d)| (Text(a.to_vec()), d));
                    let want = pos.map(|p| {
                        let e = model.remove(p);
                        let r = (e.2.clone(), e.3);
                        model.insert(0, e);
                        r
                    });
                    assert_eq!(got, want, "step {step}");
                }
                4..=7 => {
                    // Answers that name their key, and others.
                    let v = match rnd(3) {
                        0 => Text([&b"@"[..], &key].concat()),
                        1 => Text(Vec::new()),
                        _ => Text(format!("v{step}").into_bytes()),
                    };
                    let pushed = push(&mut s, kind, &key, &v, step);
                    match pos {
                        Some(p) => {
                            assert!(matches!(pushed, Pushed::Replaced(..)), "step {step}");
                            model.remove(p);
                        }
                        None if model.len() == cap => {
                            let (lk, ..) = model.pop().unwrap();
                            assert!(
                                matches!(pushed, Pushed::Evicted(k, _) if k == lk),
                                "step {step}: {pushed:?}"
                            );
                        }
                        None => assert_eq!(pushed, Pushed::New, "step {step}"),
                    }
                    model.insert(0, (kind, key, v, step));
                }
                8 => {
                    let got = s.pop(h, kind, &key).is_some();
                    assert_eq!(got, pos.is_some(), "step {step}");
                    if let Some(p) = pos {
                        model.remove(p);
                    }
                }
                _ => {
                    let ip = format!(" 10.0.0.{}", n % 7);
                    let removed = s.remove_where(|e| e.kind == 2 && e.key.ends_with(ip.as_bytes()));
                    let before = model.len();
                    model.retain(|(mk, k, _, _)| !(*mk == 2 && k.ends_with(ip.as_bytes())));
                    assert_eq!(removed.len(), before - model.len(), "step {step}");
                }
            }
            assert_eq!(s.len(), model.len(), "step {step}");
        }
        // The scan sees the model's keys in its order.
        let mut seen = Vec::new();
        s.for_each(|e| seen.push((e.kind, e.key.to_vec())));
        let want: Vec<_> = model.iter().map(|(k, key, ..)| (*k, key.clone())).collect();
        assert_eq!(seen, want);
        // The eviction order is the model's, to the last entry.
        while let Some((kind, _)) = s.pop_lru() {
            assert_eq!(model.pop().unwrap().0, kind);
        }
        assert!(model.is_empty());
        s.clear();
        assert_eq!(s.len(), 0);
    }
}
