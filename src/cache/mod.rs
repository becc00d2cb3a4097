//! The daemon's answer cache.
//!
//! * Bounded by entries and by bytes: least recently used entries are
//!   evicted first. The key space is split into shards, each
//!   behind its own lock, so that worker threads rarely wait for each other.
//! * Every entry has a deadline: answers that found something live for the
//!   positive TTL, answers that found nothing for the (shorter) negative TTL,
//!   so that a new user does not stay "absent" until HUP.
//! * Errors are never stored. When the database fails, an expired entry that
//!   is no older than the stale window may be served instead (stale if
//!   error); without one the error stands.
//! * Concurrent misses for one key run the loader once; the others wait for
//!   its answer (single flight).
//! * What the cache forgets (a flush, HUP) stays forgotten: an answer that
//!   was loading meanwhile may predate the change that made it forget, so
//!   it goes to the callers that waited for it but is not stored, and a
//!   request that comes after the flush does not join that load.
//! * Time comes from a `Clock`, so that tests can move it.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod store;

use store::{Pushed, Store};

use crate::config::{ConfigError, Env};
use crate::db::{PasswdRow, Route};
use crate::protocol::{QueryType, UserStatus, VLimits};

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
    /// Cache RELAY answers too. Off by default: a POP/IMAP login changes
    /// them at any moment.
    pub relay: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_entries: 1_000_000,
            max_bytes: Some(DEFAULT_MAX_BYTES),
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(30),
            stale: Duration::from_secs(3600),
            relay: false,
        }
    }
}

/// The cache's settings, from the environment. `None` when the cache is
/// off. As in C, USE_BTREE starting with `1` turns it on and
/// MAX_BTREE_COUNT (when above 0) bounds the number of entries;
/// INLOOKUP_CACHE=1/0 turns it on or off whatever USE_BTREE says, and the
/// other INLOOKUP_CACHE_* variables set the rest (INLOOKUP_CACHE_BYTES=0:
/// no byte bound).
pub fn policy_from_env(env: &Env) -> Result<Option<Policy>, ConfigError> {
    let on = match env.get_str("INLOOKUP_CACHE")? {
        Some("1") => true,
        Some("0") => false,
        Some("") | None => env
            .get_str("USE_BTREE")?
            .is_some_and(|v| v.starts_with('1')),
        Some(v) => return Err(invalid("INLOOKUP_CACHE", v, "1 or 0")),
    };
    if !on {
        return Ok(None);
    }
    let d = Policy::default();
    // C reads MAX_BTREE_COUNT leniently (garbage or 0 = unlimited); here an
    // unusable value means "no bound of its own" and the default bound holds.
    let btree = env
        .get_str("MAX_BTREE_COUNT")?
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    let max_entries = number(env, "INLOOKUP_CACHE_ENTRIES")?
        .map(|n| n as usize)
        .or(btree)
        .unwrap_or(d.max_entries);
    if max_entries == 0 {
        return Err(invalid("INLOOKUP_CACHE_ENTRIES", "0", "a positive number"));
    }
    let secs = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
        Ok(number(env, name)?.map_or(default, Duration::from_secs))
    };
    Ok(Some(Policy {
        max_entries,
        max_bytes: match number(env, "INLOOKUP_CACHE_BYTES")? {
            None => d.max_bytes,
            Some(0) => None,
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        },
        ttl: secs("INLOOKUP_CACHE_TTL", d.ttl)?,
        negative_ttl: secs("INLOOKUP_CACHE_NEGATIVE_TTL", d.negative_ttl)?,
        stale: secs("INLOOKUP_CACHE_STALE", d.stale)?,
        relay: env.is_set("INLOOKUP_CACHE_RELAY"),
    }))
}

fn invalid(var: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::InvalidVar {
        var: var.into(),
        value: value.into(),
        expected: expected.into(),
    }
}

/// An optional whole number from the environment; empty counts as unset.
fn number(env: &Env, name: &str) -> Result<Option<u64>, ConfigError> {
    match env.get_str(name)? {
        None | Some("") => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| invalid(name, v, "a whole number")),
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

/// A cache key: the query type, the normalised address (or domain), and for
/// RELAY the IP. Every input that shapes an answer is in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub qtype: QueryType,
    /// The normalised address or domain; for RELAY followed by a space and
    /// the IP (neither part can hold a space).
    pub name: Box<str>,
}

impl Key {
    pub fn new(qtype: QueryType, name: &str) -> Key {
        Key {
            qtype,
            name: name.into(),
        }
    }

    pub fn relay(name: &str, ip: &str) -> Key {
        Key {
            qtype: QueryType::Relay,
            name: format!("{name} {ip}").into(),
        }
    }

    /// The address or domain the key is about.
    fn subject(&self) -> &str {
        self.name.split(' ').next().unwrap_or("")
    }
}

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
    pub fn pack(row: &PasswdRow) -> PackedRow {
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

    pub fn unpack(&self) -> PasswdRow {
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
        PasswdRow {
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

impl Value {
    /// An answer that found nothing (kept for the negative TTL).
    pub fn is_negative(&self) -> bool {
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
    /// The database failed; an expired entry was served.
    Stale,
    /// Not cacheable (RELAY with relay caching off): loaded now.
    Bypass,
    /// A name no account can have: answered "absent" without the cache or
    /// the database.
    Implausible,
}

struct Shard {
    store: Store,
    bytes: usize,
    /// Counts the times this shard forgot entries (`invalidate`, `clear`):
    /// an answer loaded since an older count is not stored.
    epoch: u64,
}

/// When the cache last forgot something, shard by shard (see `Cache::mark`).
pub struct Mark(Vec<u64>);

/// Counters of one query type.
#[derive(Default)]
pub struct TypeCounters {
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
enum Probe {
    Fresh(Value, Source),
    /// Nothing fresh; the expired answer that may be served on error.
    Expired(Option<Value>),
}

/// A load in progress, which concurrent misses wait for.
struct Flight {
    done: Mutex<Option<Result<Value, Arc<str>>>>,
    cond: Condvar,
}

pub struct Cache {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    flights: Mutex<HashMap<Key, Arc<Flight>>>,
    policy: Policy,
    clock: Arc<dyn Clock>,
    counters: [TypeCounters; 7],
}

const SHARDS: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cache {
    pub fn new(policy: Policy, clock: Arc<dyn Clock>) -> Cache {
        let shards = SHARDS.min(policy.max_entries.max(1));
        let per_shard = policy.max_entries.max(1).div_ceil(shards);
        let hasher = RandomState::new();
        Cache {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        store: Store::new(per_shard, hasher.clone()),
                        bytes: 0,
                        epoch: 0,
                    })
                })
                .collect(),
            hasher,
            flights: Mutex::new(HashMap::new()),
            policy,
            clock,
            counters: Default::default(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The key's hash and its shard's index. The table inside a shard uses
    /// the low and the top bits of the hash; the shard is chosen by others.
    fn shard_index(&self, key: &Key) -> (u64, usize) {
        let hash = store::hash_key(&self.hasher, key.qtype, key.name.as_bytes());
        (hash, ((hash >> 32) as usize) % self.shards.len())
    }

    /// The key's hash and its shard.
    fn shard(&self, key: &Key) -> (u64, &Mutex<Shard>) {
        let (hash, i) = self.shard_index(key);
        (hash, &self.shards[i])
    }

    /// The cache's state of forgetting, to be taken before loading answers
    /// from the database and given to `insert_since` with them.
    pub fn mark(&self) -> Mark {
        Mark(self.shards.iter().map(|s| lock(s).epoch).collect())
    }

    pub fn counters(&self, q: QueryType) -> &TypeCounters {
        &self.counters[usize::from(q.as_u8() - 1)]
    }

    fn count(&self, q: QueryType, source: Source) {
        let c = self.counters(q);
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
        load: impl FnOnce() -> Result<Value, E>,
    ) -> Result<(Value, Source), Arc<str>> {
        let q = key.qtype;
        if q == QueryType::Relay && !self.policy.relay {
            self.count(q, Source::Bypass);
            return load()
                .map(|v| (v, Source::Bypass))
                .map_err(|e| Arc::from(e.to_string()));
        }
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
            self.count(q, Source::Joined);
            return done
                .clone()
                .unwrap_or_else(|| Err("no answer".into()))
                .map(|v| (v, Source::Joined));
        }
        let result = match load() {
            Ok(value) => {
                self.store(key.clone(), value.clone(), Some(epoch));
                self.count(q, Source::Miss);
                Ok((value, Source::Miss))
            }
            Err(e) => match stale {
                Some(value) => {
                    self.count(q, Source::Stale);
                    Ok((value, Source::Stale))
                }
                None => {
                    self.count(q, Source::Miss);
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
    pub fn get_fresh(&self, key: &Key) -> Option<(Value, Source)> {
        if key.qtype == QueryType::Relay && !self.policy.relay {
            return None;
        }
        match self.probe(key, false) {
            Probe::Fresh(value, source) => Some((value, source)),
            Probe::Expired(_) => None,
        }
    }

    /// Look `key` up: a fresh answer (counted), or whether an expired one
    /// may still be served if the database fails (counted as an expiration
    /// when `count_expired`, so that a probe before the real lookup does not
    /// count it twice).
    fn probe(&self, key: &Key, count_expired: bool) -> Probe {
        let now = millis(self.clock.now());
        let (hash, shard) = self.shard(key);
        let mut shard = lock(shard);
        let Some((answer, deadline)) = shard.store.get(hash, key.qtype, key.name.as_bytes()) else {
            return Probe::Expired(None);
        };
        let fresh = now < deadline;
        let usable = fresh || now < deadline.saturating_add(millis(self.policy.stale));
        // Bytes the cache did not write cannot be there; if they were, the
        // entry would count as absent and the database would be asked.
        let value = if usable { store::decode(answer) } else { None };
        drop(shard);
        if fresh {
            if let Some(value) = value {
                let source = if value.is_negative() {
                    Source::NegativeHit
                } else {
                    Source::Hit
                };
                self.count(key.qtype, source);
                return Probe::Fresh(value, source);
            }
        }
        let stale = if fresh { None } else { value };
        if count_expired {
            self.counters(key.qtype)
                .expirations
                .fetch_add(1, Ordering::Relaxed);
        }
        Probe::Expired(stale)
    }

    /// Store an answer.
    pub fn insert(&self, key: Key, value: Value) {
        self.store(key, value, None);
    }

    /// Store an answer loaded after `mark` was taken (the pre-cache), unless
    /// the cache forgot something about its key since. Returns whether it
    /// was stored.
    pub fn insert_since(&self, mark: &Mark, key: Key, value: Value) -> bool {
        let epoch = mark.0.get(self.shard_index(&key).1).copied();
        epoch.is_some() && self.store(key, value, epoch)
    }

    /// Store an answer; with `epoch`, only if the key's shard has forgotten
    /// nothing since that epoch.
    fn store(&self, key: Key, value: Value, epoch: Option<u64>) -> bool {
        let ttl = if value.is_negative() {
            self.policy.negative_ttl
        } else {
            self.policy.ttl
        };
        if ttl.is_zero() {
            return false;
        }
        let deadline = millis(self.clock.now() + ttl);
        let byte_cap = self.policy.max_bytes.map(|b| b / self.shards.len());
        let mut evicted: Vec<QueryType> = Vec::new();
        {
            let (hash, shard) = self.shard(&key);
            let mut shard = lock(shard);
            if epoch.is_some_and(|e| e != shard.epoch) {
                return false;
            }
            let Some((pushed, bytes)) =
                shard
                    .store
                    .push(hash, key.qtype, key.name.as_bytes(), &value, deadline)
            else {
                return false;
            };
            shard.bytes += bytes;
            match pushed {
                Pushed::New => {}
                Pushed::Replaced(old) => shard.bytes -= old,
                Pushed::Evicted(q, old) => {
                    shard.bytes -= old;
                    evicted.push(q);
                }
            }
            if let Some(cap) = byte_cap {
                while shard.bytes > cap && shard.store.len() > 1 {
                    match shard.store.pop_lru() {
                        Some((q, old)) => {
                            shard.bytes -= old;
                            evicted.push(q);
                        }
                        None => break,
                    }
                }
            }
        }
        for t in evicted {
            self.counters(t).evictions.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Forget every answer about `name` (an address or a domain); returns
    /// how many entries went.
    pub fn invalidate(&self, name: &str) -> usize {
        // Loads under way for the name are left to their callers; later
        // requests start their own.
        lock(&self.flights).retain(|k, _| k.subject() != name);
        let mut removed = 0;
        for q in QueryType::ALL {
            let key = Key::new(q, name);
            let (hash, shard) = self.shard(&key);
            let mut shard = lock(shard);
            shard.epoch += 1;
            if let Some(bytes) = shard.store.pop(hash, q, name.as_bytes()) {
                shard.bytes -= bytes;
                removed += 1;
            }
        }
        if self.policy.relay {
            // RELAY keys are "address ip".
            let subject = |k: &[u8]| {
                k.strip_prefix(name.as_bytes())
                    .is_some_and(|rest| rest.first() == Some(&b' '))
            };
            for shard in &self.shards {
                let mut shard = lock(shard);
                // A RELAY key (name and IP) may be in any shard.
                shard.epoch += 1;
                for bytes in shard.store.remove_where(QueryType::Relay, subject) {
                    shard.bytes -= bytes;
                    removed += 1;
                }
            }
        }
        removed
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

    /// One line per query type with its counters, for the stats block.
    pub fn report(&self) -> String {
        let mut out = format!(
            "Cache entries {}, bytes {}, ttl {}s, negative ttl {}s, stale {}s\n",
            self.len(),
            self.bytes(),
            self.policy.ttl.as_secs(),
            self.policy.negative_ttl.as_secs(),
            self.policy.stale.as_secs()
        );
        for q in QueryType::ALL {
            let c = self.counters(q);
            let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
            out.push_str(&format!(
                "Cache {}: hits {}, negative hits {}, misses {}, joined {}, stale {}, expired {}, evicted {}\n",
                q.log_name(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A clock the test moves by hand.
    #[derive(Default)]
    struct ManualClock(Mutex<Duration>);

    impl ManualClock {
        fn advance(&self, d: Duration) {
            *lock(&self.0) += d;
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Duration {
            *lock(&self.0)
        }
    }

    fn policy() -> Policy {
        Policy {
            max_entries: 1000,
            max_bytes: None,
            ttl: Duration::from_secs(100),
            negative_ttl: Duration::from_secs(10),
            stale: Duration::from_secs(50),
            relay: false,
        }
    }

    fn cache(p: Policy) -> (Cache, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        (Cache::new(p, clock.clone()), clock)
    }

    fn user(name: &str) -> Key {
        Key::new(QueryType::User, name)
    }

    type R = Result<Value, String>;

    fn get(c: &Cache, k: Key, v: R) -> Result<(Value, Source), Arc<str>> {
        c.get_or_load(k, || v)
    }

    const ACTIVE: Value = Value::User(UserStatus::Active);
    const ABSENT: Value = Value::User(UserStatus::Absent);

    #[test]
    fn positive_ttl() {
        let (c, clock) = cache(policy());
        assert_eq!(
            get(&c, user("a@x"), Ok(ACTIVE)).unwrap(),
            (ACTIVE, Source::Miss)
        );
        clock.advance(Duration::from_secs(99));
        // The loader is not asked while the entry is fresh.
        assert_eq!(
            get(&c, user("a@x"), Err("unused".into())).unwrap(),
            (ACTIVE, Source::Hit)
        );
        clock.advance(Duration::from_secs(1));
        let inactive = Value::User(UserStatus::Inactive);
        assert_eq!(
            get(&c, user("a@x"), Ok(inactive.clone())).unwrap(),
            (inactive, Source::Miss)
        );
        let k = c.counters(QueryType::User);
        assert_eq!(k.hits.load(Ordering::Relaxed), 1);
        assert_eq!(k.misses.load(Ordering::Relaxed), 2);
        assert_eq!(k.expirations.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn negative_ttl_is_shorter() {
        let (c, clock) = cache(policy());
        assert_eq!(get(&c, user("new@x"), Ok(ABSENT)).unwrap().1, Source::Miss);
        clock.advance(Duration::from_secs(9));
        assert_eq!(
            get(&c, user("new@x"), Ok(ACTIVE)).unwrap(),
            (ABSENT, Source::NegativeHit)
        );
        clock.advance(Duration::from_secs(1));
        // The user was created meanwhile: seen as soon as the negative entry expires.
        assert_eq!(
            get(&c, user("new@x"), Ok(ACTIVE)).unwrap(),
            (ACTIVE, Source::Miss)
        );
        assert_eq!(
            c.counters(QueryType::User)
                .negative_hits
                .load(Ordering::Relaxed),
            1
        );
    }

    #[test]
    fn zero_ttl_stores_nothing() {
        let (c, _) = cache(Policy {
            negative_ttl: Duration::ZERO,
            ..policy()
        });
        get(&c, user("a@x"), Ok(ABSENT)).unwrap();
        assert!(c.is_empty());
        get(&c, user("b@x"), Ok(ACTIVE)).unwrap();
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn errors_are_not_cached_and_stale_is_served_only_within_the_window() {
        let (c, clock) = cache(policy());
        // No entry: the error stands.
        assert_eq!(
            &*get(&c, user("a@x"), Err("db down".into())).unwrap_err(),
            "db down"
        );
        assert!(c.is_empty(), "errors are not stored");
        get(&c, user("a@x"), Ok(ACTIVE)).unwrap();
        clock.advance(Duration::from_secs(120));
        // Expired 20 s ago, database failing: the stale answer.
        assert_eq!(
            get(&c, user("a@x"), Err("db down".into())).unwrap(),
            (ACTIVE, Source::Stale)
        );
        clock.advance(Duration::from_secs(30));
        // 50 s past the deadline: too old.
        assert!(get(&c, user("a@x"), Err("db down".into())).is_err());
        assert_eq!(c.counters(QueryType::User).stale.load(Ordering::Relaxed), 1);
        // A stale window of 0 turns it off.
        let (c, clock) = cache(Policy {
            stale: Duration::ZERO,
            ..policy()
        });
        get(&c, user("a@x"), Ok(ACTIVE)).unwrap();
        clock.advance(Duration::from_secs(101));
        assert!(get(&c, user("a@x"), Err("db down".into())).is_err());
    }

    #[test]
    fn keys_keep_types_users_and_ips_apart() {
        let (c, _) = cache(Policy {
            relay: true,
            ..policy()
        });
        get(&c, user("a@x"), Ok(ACTIVE)).unwrap();
        get(&c, user("b@x"), Ok(ABSENT)).unwrap();
        get(&c, Key::new(QueryType::Host, "a@x"), Ok(Value::Host(None))).unwrap();
        get(&c, Key::relay("a@x", "10.0.0.1"), Ok(Value::Relay(true))).unwrap();
        assert_eq!(get(&c, user("a@x"), Err("x".into())).unwrap().0, ACTIVE);
        assert_eq!(get(&c, user("b@x"), Err("x".into())).unwrap().0, ABSENT);
        assert_eq!(
            get(&c, Key::relay("a@x", "10.0.0.2"), Ok(Value::Relay(false))).unwrap(),
            (Value::Relay(false), Source::Miss)
        );
        assert_eq!(
            get(&c, Key::relay("a@x", "10.0.0.1"), Err("x".into())).unwrap(),
            (Value::Relay(true), Source::Hit)
        );
    }

    #[test]
    fn relay_is_not_cached_unless_asked() {
        let (c, _) = cache(policy());
        let k = Key::relay("a@x", "10.0.0.1");
        assert_eq!(
            get(&c, k.clone(), Ok(Value::Relay(true))).unwrap().1,
            Source::Bypass
        );
        assert_eq!(
            get(&c, k, Ok(Value::Relay(false))).unwrap(),
            (Value::Relay(false), Source::Bypass)
        );
        assert!(c.is_empty());
    }

    #[test]
    fn entry_bound_holds_under_churn() {
        let (c, _) = cache(Policy {
            max_entries: 64,
            ..policy()
        });
        for i in 0..10_000 {
            get(&c, user(&format!("u{i}@x")), Ok(ACTIVE)).unwrap();
            assert!(c.len() <= 64, "{} entries after {i}", c.len());
        }
        let evicted = c
            .counters(QueryType::User)
            .evictions
            .load(Ordering::Relaxed);
        assert_eq!(evicted as usize, 10_000 - c.len());
        // The most recent entry is there, the oldest is not.
        assert_eq!(
            get(&c, user("u9999@x"), Err("x".into())).unwrap().1,
            Source::Hit
        );
        assert!(get(&c, user("u0@x"), Err("x".into())).is_err());
    }

    #[test]
    fn byte_bound_holds() {
        let (c, _) = cache(Policy {
            max_bytes: Some(16 * 4096),
            ..policy()
        });
        let big = Value::Alias(Arc::new(vec![vec![b'x'; 1000]; 3]));
        for i in 0..1000 {
            get(
                &c,
                Key::new(QueryType::Alias, &format!("a{i}@x")),
                Ok(big.clone()),
            )
            .unwrap();
            assert!(c.bytes() <= 16 * 4096 + 4096, "{} bytes", c.bytes());
        }
        assert!(c.len() < 1000);
    }

    #[test]
    fn invalidate_one_address_and_clear_all() {
        let (c, _) = cache(Policy {
            relay: true,
            ..policy()
        });
        for q in [QueryType::User, QueryType::Password, QueryType::Alias] {
            get(&c, Key::new(q, "a@x"), Ok(ABSENT)).unwrap();
        }
        get(&c, Key::relay("a@x", "10.0.0.1"), Ok(Value::Relay(true))).unwrap();
        get(&c, user("b@x"), Ok(ACTIVE)).unwrap();
        assert_eq!(c.invalidate("a@x"), 4);
        assert_eq!(c.len(), 1);
        assert_eq!(
            get(&c, user("b@x"), Err("x".into())).unwrap().1,
            Source::Hit
        );
        assert_eq!(c.invalidate("nobody@x"), 0);
        assert_eq!(c.clear(), 1);
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn concurrent_misses_load_once() {
        let (c, _) = cache(policy());
        let c = Arc::new(c);
        let loads = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (c, loads, gate) = (c.clone(), loads.clone(), gate.clone());
                std::thread::spawn(move || {
                    c.get_or_load(user("hot@x"), || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        // Hold the load until every thread has arrived.
                        let mut open = lock(&gate.0);
                        while !*open {
                            open = gate.1.wait(open).unwrap();
                        }
                        Ok::<_, String>(ACTIVE)
                    })
                    .unwrap()
                })
            })
            .collect();
        // Wait until all 16 threads hold the one flight: the map's reference,
        // the leader's and the 15 joiners'.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while lock(&c.flights)
            .get(&user("hot@x"))
            .map_or(0, Arc::strong_count)
            < 17
        {
            assert!(std::time::Instant::now() < deadline, "threads never met");
            std::thread::yield_now();
        }
        *lock(&gate.0) = true;
        gate.1.notify_all();
        let sources: Vec<Source> = threads.into_iter().map(|t| t.join().unwrap().1).collect();
        assert_eq!(
            loads.load(Ordering::SeqCst),
            1,
            "one load for 16 concurrent misses"
        );
        assert_eq!(sources.iter().filter(|s| **s == Source::Miss).count(), 1);
        assert_eq!(sources.iter().filter(|s| **s == Source::Joined).count(), 15);
    }

    /// The data changes while an answer for it is loading, and the cache
    /// is told to forget the address (a flush request) or everything (HUP):
    /// the load's old answer goes to the caller that asked before, but a
    /// request after the flush does not get it, now or later.
    #[test]
    fn an_answer_loading_during_a_flush_or_hup_is_not_kept() {
        const OLD: Value = Value::User(UserStatus::Active);
        const NEW: Value = Value::User(UserStatus::OverQuota);
        let forgets: [fn(&Cache); 2] = [
            |c| {
                c.invalidate("a@x");
            },
            |c| {
                c.clear();
            },
        ];
        for forget in forgets {
            let (c, _) = cache(policy());
            let c = Arc::new(c);
            let (started_tx, started) = std::sync::mpsc::channel();
            let (go, go_rx) = std::sync::mpsc::channel::<()>();
            let before = {
                let c = c.clone();
                std::thread::spawn(move || {
                    c.get_or_load(user("a@x"), || {
                        started_tx.send(()).unwrap();
                        let _ = go_rx.recv();
                        Ok::<_, String>(OLD)
                    })
                })
            };
            started.recv().unwrap();
            forget(&c);
            let (after_tx, after) = std::sync::mpsc::channel();
            {
                let c = c.clone();
                std::thread::spawn(move || {
                    let _ = after_tx.send(c.get_or_load(user("a@x"), || Ok::<_, String>(NEW)));
                });
            }
            let answer = after.recv_timeout(Duration::from_secs(10));
            go.send(()).unwrap();
            let answer = answer.expect("a request after the flush waited for an older load");
            assert_eq!(answer.unwrap(), (NEW, Source::Miss));
            assert_eq!(before.join().unwrap().unwrap(), (OLD, Source::Miss));
            assert_eq!(
                c.get_fresh(&user("a@x")).map(|(v, _)| v),
                Some(NEW),
                "the old answer replaced the new one"
            );
            assert_eq!(lock(&c.flights).len(), 0);
        }
    }

    #[test]
    fn pre_cached_rows_older_than_a_flush_or_hup_are_not_stored() {
        let (c, _) = cache(policy());
        let pw = |name: &str| Key::new(QueryType::Password, name);
        let row = || Value::Password(None);
        let mark = c.mark();
        assert!(c.insert_since(&mark, pw("a@x"), row()));
        c.invalidate("b@x");
        assert!(!c.insert_since(&mark, pw("b@x"), row()));
        assert!(c.insert_since(&c.mark(), pw("b@x"), row()));
        let mark = c.mark();
        c.clear();
        assert!(!c.insert_since(&mark, pw("a@x"), row()));
        assert!(c.is_empty());
    }

    #[test]
    fn a_failed_load_fails_its_joiners_without_caching() {
        let (c, _) = cache(policy());
        let c = Arc::new(c);
        let started = Arc::new(std::sync::Barrier::new(2));
        let leader = {
            let (c, started) = (c.clone(), started.clone());
            std::thread::spawn(move || {
                c.get_or_load(user("x@x"), || {
                    started.wait();
                    std::thread::sleep(Duration::from_millis(200));
                    Err::<Value, _>("db down")
                })
            })
        };
        started.wait();
        let joined = c.get_or_load(user("x@x"), || Ok::<_, String>(ACTIVE));
        assert!(leader.join().unwrap().is_err());
        assert_eq!(&*joined.unwrap_err(), "db down");
        assert!(c.is_empty());
    }

    #[test]
    fn policy_from_environment() {
        let env = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
        assert_eq!(policy_from_env(&env(&[])).unwrap(), None);
        assert_eq!(policy_from_env(&env(&[("USE_BTREE", "0")])).unwrap(), None);
        let p = policy_from_env(&env(&[("USE_BTREE", "1"), ("MAX_BTREE_COUNT", "5000")]))
            .unwrap()
            .unwrap();
        assert_eq!(p.max_entries, 5000);
        assert_eq!(p.ttl, Policy::default().ttl);
        // A byte bound unless asked for none.
        assert_eq!(p.max_bytes, Some(DEFAULT_MAX_BYTES));
        let p = policy_from_env(&env(&[("USE_BTREE", "1"), ("INLOOKUP_CACHE_BYTES", "0")]))
            .unwrap()
            .unwrap();
        assert_eq!(p.max_bytes, None);
        // C's lenient MAX_BTREE_COUNT: garbage or 0 keep the default bound.
        for v in ["", "0", "lots"] {
            let p = policy_from_env(&env(&[("USE_BTREE", "1"), ("MAX_BTREE_COUNT", v)]))
                .unwrap()
                .unwrap();
            assert_eq!(p.max_entries, Policy::default().max_entries);
        }
        let p = policy_from_env(&env(&[
            ("INLOOKUP_CACHE", "1"),
            ("INLOOKUP_CACHE_ENTRIES", "7"),
            ("INLOOKUP_CACHE_BYTES", "1000"),
            ("INLOOKUP_CACHE_TTL", "60"),
            ("INLOOKUP_CACHE_NEGATIVE_TTL", "5"),
            ("INLOOKUP_CACHE_STALE", "0"),
            ("INLOOKUP_CACHE_RELAY", ""),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            p,
            Policy {
                max_entries: 7,
                max_bytes: Some(1000),
                ttl: Duration::from_secs(60),
                negative_ttl: Duration::from_secs(5),
                stale: Duration::ZERO,
                relay: true,
            }
        );
        assert_eq!(
            policy_from_env(&env(&[("USE_BTREE", "1"), ("INLOOKUP_CACHE", "0")])).unwrap(),
            None
        );
        let e = policy_from_env(&env(&[
            ("INLOOKUP_CACHE", "1"),
            ("INLOOKUP_CACHE_TTL", "5m"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("INLOOKUP_CACHE_TTL"), "{e}");
        assert!(policy_from_env(&env(&[("INLOOKUP_CACHE", "yes")])).is_err());
    }

    #[test]
    fn packed_rows_round_trip_and_hide_the_password() {
        let row = PasswdRow {
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
        let empty = PasswdRow {
            name: Vec::new(),
            domain: Vec::new(),
            passwd: Vec::new(),
            uid: 0,
            gid: 0,
            gecos: Vec::new(),
            dir: Vec::new(),
            shell: Vec::new(),
            inactive: false,
        };
        assert_eq!(PackedRow::pack(&empty).unpack(), empty);
        // The value the cache stores stays small.
        assert!(
            std::mem::size_of::<Value>() <= 32,
            "{}",
            std::mem::size_of::<Value>()
        );
    }
}
