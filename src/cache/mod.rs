//! A bounded answer cache, generic over what it stores.
//!
//! * Bounded by entries and by bytes: least recently used entries are
//!   evicted first. The key space is split into shards, each an
//!   `lru::LruCache` behind its own lock, so that worker threads rarely wait
//!   for each other.
//! * Every entry has a deadline: answers that found something live for the
//!   positive TTL, answers that found nothing for the (shorter) negative TTL,
//!   so that a new user does not stay "absent" until HUP.
//! * Errors are never stored. When the loader fails, an expired entry that
//!   is no older than the stale window may be served instead (stale if
//!   error); without one the error stands.
//! * Concurrent misses for one key run the loader once; the others wait for
//!   its answer (single flight).
//! * What the cache forgets (`remove`, `remove_where`, `clear`) stays
//!   forgotten: an answer that was loading meanwhile may predate the change
//!   that made it forget, so it goes to the callers that waited for it but is
//!   not stored, and a request that comes after does not join that load.
//! * Entries are found by their key, or by a scan over every entry
//!   (`remove_where`, `keys_where`): the way to reach them by a second key,
//!   such as the domain of an address or a field of the answer.
//! * Time comes from a `Clock`, so that tests can move it.
//!
//! The cache knows nothing of what it stores: the owner names the kinds of
//! key (one set of counters each) and encodes its answers through [`Answer`].

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod store;

pub use store::EntryRef;
use store::{Pushed, Store};

/// Monotonic time since some fixed origin.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// The real clock.
pub struct SystemClock(Instant);

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock(Instant::now())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The default byte bound: 256 MiB of keys, answers and per-entry overhead
/// as the cache counts them. A password entry of a typical site (a SHA-512
/// crypt hash, a home directory) counts about 250 bytes, so a million of
/// them fit.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

/// What is cached and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_entries: usize,
    /// Approximate bytes of keys, values and per-entry overhead; `None` = no
    /// byte bound.
    pub max_bytes: Option<usize>,
    /// Lifetime of an answer that found something.
    pub ttl: Duration,
    /// Lifetime of an answer that found nothing.
    pub negative_ttl: Duration,
    /// How long past its deadline an entry may still be served when the
    /// database fails; zero turns stale answers off.
    pub stale: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_entries: 1_000_000,
            max_bytes: Some(DEFAULT_MAX_BYTES),
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(30),
            stale: Duration::from_secs(3600),
        }
    }
}

/// Give the memory freed by emptying the cache back to the system.
///
/// The entries are many small allocations made by the worker threads, mixed
/// with their other allocations, so glibc's allocator keeps the freed memory
/// in its per-thread arenas: after HUP emptied the answers of 200 000 misses
/// the benchmark's daemon stayed at its RSS (35.6 MB before and after).
/// `malloc_trim(3)` returns every free page of every arena (15.9 MB).
/// musl's allocator returns freed memory by itself and has no such call.
/// Returns whether memory was given back (always `false` without glibc).
pub fn release_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists; it
        // takes the arena locks itself and touches no memory in use.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// An answer the cache can hold: encoded into the entry's bytes, decoded on
/// every hit.
pub trait Answer: Clone + Send + 'static {
    /// Append the encoded answer; `None` when it cannot be encoded (it is
    /// then not stored).
    fn encode(&self, out: &mut Vec<u8>) -> Option<()>;
    /// About how many bytes `encode` appends (a capacity hint).
    fn encoded_len(&self) -> usize;
    /// The answer `encode` wrote; `None` for bytes it cannot have written
    /// (the entry then counts as absent).
    fn decode(answer: &[u8]) -> Option<Self>;
    /// An answer that found nothing (kept for the negative TTL).
    fn is_negative(&self) -> bool;
    /// Whether the encoded answer names `key` itself, so that the entry
    /// need not hold the key twice.
    fn names_key(_answer: &[u8], _key: &[u8]) -> bool {
        false
    }
    /// The key an encoded answer names (only asked when `names_key` said so).
    fn key_of(_answer: &[u8], _out: &mut Vec<u8>) {}
}

/// A cache key: its kind (an index into the kinds the cache was made with)
/// and its bytes. Every input that shapes an answer is in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub kind: u8,
    pub name: Box<[u8]>,
}

impl Key {
    pub fn new(kind: u8, name: &[u8]) -> Key {
        Key {
            kind,
            name: name.into(),
        }
    }
}

/// How an answer was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// From the cache, an answer that found something.
    Hit,
    /// From the cache, an answer that found nothing.
    NegativeHit,
    /// Loaded now.
    Miss,
    /// Loaded by a concurrent request for the same key.
    Joined,
    /// The loader failed; an expired entry was served.
    Stale,
    /// Not cacheable (the owner's rule): loaded now.
    Bypass,
    /// Answered by the owner without the cache or the loader.
    Implausible,
}

struct Shard<V> {
    store: Store<V>,
    bytes: usize,
    /// Counts the times this shard forgot entries (`remove`, `clear`):
    /// an answer loaded since an older count is not stored.
    epoch: u64,
}

/// When the cache last forgot something, shard by shard (see `Cache::mark`).
pub struct Mark(Vec<u64>);

/// Counters of one kind of key.
#[derive(Default)]
pub struct Counters {
    pub hits: AtomicU64,
    pub negative_hits: AtomicU64,
    pub misses: AtomicU64,
    pub joins: AtomicU64,
    pub stale: AtomicU64,
    pub expirations: AtomicU64,
    pub evictions: AtomicU64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a cache lookup found.
enum Probe<V> {
    Fresh(V, Source),
    /// Nothing fresh; the expired answer that may be served on error.
    Expired(Option<V>),
}

/// A load in progress, which concurrent misses wait for.
struct Flight<V> {
    done: Mutex<Option<Result<V, Arc<str>>>>,
    cond: Condvar,
}

pub struct Cache<V> {
    shards: Vec<Mutex<Shard<V>>>,
    hasher: RandomState,
    flights: Mutex<HashMap<Key, Arc<Flight<V>>>>,
    policy: Policy,
    clock: Arc<dyn Clock>,
    /// The names of the kinds of key, for the report.
    kinds: &'static [&'static str],
    counters: Vec<Counters>,
}

/// At least this many shards, so that worker threads rarely wait for each
/// other.
const MIN_SHARDS: usize = 16;
/// The most entries one shard holds: 7/8 of 65 536, the most that a table of
/// 65 536 buckets takes before it doubles. A large cache gets more shards
/// rather than half-empty tables: a million entries in 18 shards fill their
/// tables to 85 %, in 16 they would fill tables twice that size to 48 %.
const SHARD_ENTRIES: usize = 57_344;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<V: Answer> Cache<V> {
    /// A cache for keys of `kinds.len()` kinds, named in the report.
    pub fn new(policy: Policy, clock: Arc<dyn Clock>, kinds: &'static [&'static str]) -> Cache<V> {
        let max_entries = policy.max_entries.max(1);
        let shards = MIN_SHARDS
            .min(max_entries)
            .max(max_entries.div_ceil(SHARD_ENTRIES));
        let per_shard = max_entries.div_ceil(shards);
        Cache {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        store: Store::new(per_shard),
                        bytes: 0,
                        epoch: 0,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            flights: Mutex::new(HashMap::new()),
            policy,
            clock,
            kinds,
            counters: kinds.iter().map(|_| Counters::default()).collect(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The key's keyed hash (the store's map key) and its shard's index,
    /// chosen by bits the map's table does not use first.
    fn shard_index(&self, key: &Key) -> (u64, usize) {
        let mut h = self.hasher.build_hasher();
        h.write_u8(key.kind);
        h.write(&key.name);
        let hash = h.finish();
        (hash, ((hash >> 32) as usize) % self.shards.len())
    }

    /// The key's hash and its shard.
    fn shard(&self, key: &Key) -> (u64, &Mutex<Shard<V>>) {
        let (hash, i) = self.shard_index(key);
        (hash, &self.shards[i])
    }

    /// The cache's state of forgetting, to be taken before loading answers
    /// and given to `insert_since` with them.
    pub fn mark(&self) -> Mark {
        Mark(self.shards.iter().map(|s| lock(s).epoch).collect())
    }

    /// The counters of one kind of key.
    pub fn counters(&self, kind: u8) -> &Counters {
        &self.counters[usize::from(kind)]
    }

    /// Count an answer obtained without the cache's help (`Bypass`).
    pub fn count(&self, kind: u8, source: Source) {
        let c = self.counters(kind);
        let n = match source {
            Source::Hit => &c.hits,
            Source::NegativeHit => &c.negative_hits,
            Source::Miss | Source::Bypass => &c.misses,
            Source::Joined => &c.joins,
            Source::Stale => &c.stale,
            Source::Implausible => return,
        };
        n.fetch_add(1, Ordering::Relaxed);
    }

    /// The answer for `key`: from the cache while it is fresh, else from
    /// `load` (once for all concurrent callers). An error from `load` is
    /// returned (as its text) unless a stale entry may be served.
    pub fn get_or_load<E: std::fmt::Display>(
        &self,
        key: Key,
        load: impl FnOnce() -> Result<V, E>,
    ) -> Result<(V, Source), Arc<str>> {
        let kind = key.kind;
        let stale = match self.probe(&key, true) {
            Probe::Fresh(value, source) => return Ok((value, source)),
            Probe::Expired(stale) => stale,
        };
        // A miss: join the load in flight, or become it.
        // Taken before the load begins: if the cache forgets this key while
        // the load runs, the answer may be older than what made it forget.
        let epoch = lock(self.shard(&key).1).epoch;
        let (flight, leader) = {
            let mut flights = lock(&self.flights);
            match flights.get(&key) {
                Some(f) => (f.clone(), false),
                None => {
                    let f = Arc::new(Flight {
                        done: Mutex::new(None),
                        cond: Condvar::new(),
                    });
                    flights.insert(key.clone(), f.clone());
                    (f, true)
                }
            }
        };
        if !leader {
            let mut done = lock(&flight.done);
            while done.is_none() {
                done = flight.cond.wait(done).unwrap_or_else(|e| e.into_inner());
            }
            self.count(kind, Source::Joined);
            return done
                .clone()
                .unwrap_or_else(|| Err("no answer".into()))
                .map(|v| (v, Source::Joined));
        }
        let result = match load() {
            Ok(value) => {
                self.store(&key, &value, Some(epoch));
                self.count(kind, Source::Miss);
                Ok((value, Source::Miss))
            }
            Err(e) => match stale {
                Some(value) => {
                    self.count(kind, Source::Stale);
                    Ok((value, Source::Stale))
                }
                None => {
                    self.count(kind, Source::Miss);
                    Err(Arc::from(e.to_string()))
                }
            },
        };
        {
            // A flush may have put a newer load in this key's place.
            let mut flights = lock(&self.flights);
            if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                flights.remove(&key);
            }
        }
        *lock(&flight.done) = Some(result.clone().map(|(v, _)| v));
        flight.cond.notify_all();
        result
    }

    /// A fresh answer for `key`, if the cache has one (counted as a hit);
    /// never loads. For a caller that must not wait: the daemon answers
    /// hits on the thread that reads requests.
    pub fn get_fresh(&self, key: &Key) -> Option<(V, Source)> {
        match self.probe(key, false) {
            Probe::Fresh(value, source) => Some((value, source)),
            Probe::Expired(_) => None,
        }
    }

    /// Look `key` up: a fresh answer (counted), or whether an expired one
    /// may still be served if the loader fails (counted as an expiration
    /// when `count_expired`, so that a probe before the real lookup does not
    /// count it twice).
    fn probe(&self, key: &Key, count_expired: bool) -> Probe<V> {
        let now = millis(self.clock.now());
        let (hash, shard) = self.shard(key);
        let mut shard = lock(shard);
        let Some((answer, deadline)) = shard.store.get(hash, key.kind, &key.name) else {
            return Probe::Expired(None);
        };
        let fresh = now < deadline;
        let usable = fresh || now < deadline.saturating_add(millis(self.policy.stale));
        // Bytes the cache did not write cannot be there; if they were, the
        // entry would count as absent and the loader would be asked.
        let value = if usable { V::decode(answer) } else { None };
        drop(shard);
        if fresh {
            if let Some(value) = value {
                let source = if value.is_negative() {
                    Source::NegativeHit
                } else {
                    Source::Hit
                };
                self.count(key.kind, source);
                return Probe::Fresh(value, source);
            }
        }
        let stale = if fresh { None } else { value };
        if count_expired {
            self.counters(key.kind)
                .expirations
                .fetch_add(1, Ordering::Relaxed);
        }
        Probe::Expired(stale)
    }

    /// Store an answer.
    pub fn insert(&self, key: &Key, value: &V) {
        self.store(key, value, None);
    }

    /// Store an answer loaded after `mark` was taken (a pre-cache), unless
    /// the cache forgot something about its key since. Returns whether it
    /// was stored.
    pub fn insert_since(&self, mark: &Mark, key: &Key, value: &V) -> bool {
        let epoch = mark.0.get(self.shard_index(key).1).copied();
        epoch.is_some() && self.store(key, value, epoch)
    }

    /// Store an answer; with `epoch`, only if the key's shard has forgotten
    /// nothing since that epoch.
    fn store(&self, key: &Key, value: &V, epoch: Option<u64>) -> bool {
        let ttl = if value.is_negative() {
            self.policy.negative_ttl
        } else {
            self.policy.ttl
        };
        if ttl.is_zero() {
            return false;
        }
        let deadline = millis(self.clock.now() + ttl);
        let Some(blob) = store::encode(key.kind, &key.name, value, deadline) else {
            return false;
        };
        let byte_cap = self.policy.max_bytes.map(|b| b / self.shards.len());
        let mut evicted: Vec<u8> = Vec::new();
        {
            let (hash, shard) = self.shard(key);
            let mut shard = lock(shard);
            if epoch.is_some_and(|e| e != shard.epoch) {
                return false;
            }
            let (pushed, bytes) = shard.store.push(hash, blob);
            shard.bytes += bytes;
            match pushed {
                Pushed::New => {}
                Pushed::Replaced(_, old) => shard.bytes -= old,
                Pushed::Evicted(kind, old) => {
                    shard.bytes -= old;
                    evicted.push(kind);
                }
            }
            if let Some(cap) = byte_cap {
                while shard.bytes > cap && shard.store.len() > 1 {
                    match shard.store.pop_lru() {
                        Some((kind, old)) => {
                            shard.bytes -= old;
                            evicted.push(kind);
                        }
                        None => break,
                    }
                }
            }
        }
        for kind in evicted {
            self.count_eviction(kind);
        }
        true
    }

    fn count_eviction(&self, kind: u8) {
        if let Some(c) = self.counters.get(usize::from(kind)) {
            c.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forget the answer for `key`; returns whether there was one. A load
    /// under way for it is left to its callers; later requests start their
    /// own.
    pub fn remove(&self, key: &Key) -> bool {
        lock(&self.flights).remove(key);
        let (hash, shard) = self.shard(key);
        let mut shard = lock(shard);
        shard.epoch += 1;
        match shard.store.pop(hash, key.kind, &key.name) {
            Some(bytes) => {
                shard.bytes -= bytes;
                true
            }
            None => false,
        }
    }

    /// Forget every answer that `doomed` picks, in every shard, and the
    /// loads under way for keys it picks (asked with no answer); returns how
    /// many entries went. A scan of every entry: for what is found by a
    /// second key (every entry of a domain, the entries whose answer names
    /// something).
    pub fn remove_where(&self, doomed: impl Fn(&EntryRef) -> bool) -> usize {
        lock(&self.flights).retain(|k, _| {
            !doomed(&EntryRef {
                kind: k.kind,
                key: &k.name,
                answer: &[],
            })
        });
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = lock(shard);
            shard.epoch += 1;
            for (_, bytes) in shard.store.remove_where(&doomed) {
                shard.bytes -= bytes;
                removed += 1;
            }
        }
        removed
    }

    /// The keys of the entries (fresh or expired) that `wanted` picks.
    pub fn keys_where(&self, wanted: impl Fn(&EntryRef) -> bool) -> Vec<Key> {
        let mut keys = Vec::new();
        for shard in &self.shards {
            lock(shard).store.for_each(|e| {
                if wanted(e) {
                    keys.push(Key::new(e.kind, e.key));
                }
            });
        }
        keys
    }

    /// Forget everything (HUP); returns how many entries went.
    pub fn clear(&self) -> usize {
        lock(&self.flights).clear();
        self.shards
            .iter()
            .map(|s| {
                let mut s = lock(s);
                let n = s.store.len();
                s.store.clear();
                s.bytes = 0;
                s.epoch += 1;
                n
            })
            .sum()
    }

    /// Entries held now (fresh or expired).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).store.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate bytes held now.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| lock(s).bytes).sum()
    }

    /// Loads under way now.
    pub fn loads_in_flight(&self) -> usize {
        lock(&self.flights).len()
    }

    /// The holders of the load under way for `key`: the cache, the caller
    /// that loads and each caller that waits for it; 0 when none is.
    pub fn load_holders(&self, key: &Key) -> usize {
        lock(&self.flights).get(key).map_or(0, Arc::strong_count)
    }

    /// One line with the size and the policy, then one per kind of key with
    /// its counters, for the stats block.
    pub fn report(&self) -> String {
        let mut out = format!(
            "Cache entries {}, bytes {}, ttl {}s, negative ttl {}s, stale {}s\n",
            self.len(),
            self.bytes(),
            self.policy.ttl.as_secs(),
            self.policy.negative_ttl.as_secs(),
            self.policy.stale.as_secs()
        );
        for (name, c) in self.kinds.iter().zip(&self.counters) {
            let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
            out.push_str(&format!(
                "Cache {name}: hits {}, negative hits {}, misses {}, joined {}, stale {}, expired {}, evicted {}\n",
                g(&c.hits),
                g(&c.negative_hits),
                g(&c.misses),
                g(&c.joins),
                g(&c.stale),
                g(&c.expirations),
                g(&c.evictions)
            ));
        }
        out
    }
}
