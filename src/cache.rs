//! The daemon's answer cache.
//!
//! * Bounded by entries (and optionally by bytes): least recently used
//!   entries are evicted first. The key space is split into shards, each
//!   behind its own lock, so that worker threads rarely wait for each other.
//! * Every entry has a deadline: answers that found something live for the
//!   positive TTL, answers that found nothing for the (shorter) negative TTL,
//!   so that a new user does not stay "absent" until HUP.
//! * Errors are never stored. When the database fails, an expired entry that
//!   is no older than the stale window may be served instead (stale if
//!   error); without one the error stands.
//! * Concurrent misses for one key run the loader once; the others wait for
//!   its answer (single flight).
//! * Time comes from a `Clock`, so that tests can move it.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;

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

/// What is cached and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_entries: usize,
    /// Approximate bytes of keys and values; `None` = no byte bound.
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
            max_bytes: None,
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
/// other INLOOKUP_CACHE_* variables set the rest.
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
        max_bytes: number(env, "INLOOKUP_CACHE_BYTES")?.map(|n| n as usize),
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

/// A cache key: the query type, the normalised address (or domain), and for
/// RELAY the IP. Every input that shapes an answer is in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub qtype: QueryType,
    pub name: Box<str>,
    pub ip: Option<Box<str>>,
}

impl Key {
    pub fn new(qtype: QueryType, name: &str) -> Key {
        Key {
            qtype,
            name: name.into(),
            ip: None,
        }
    }

    pub fn relay(name: &str, ip: &str) -> Key {
        Key {
            qtype: QueryType::Relay,
            name: name.into(),
            ip: Some(ip.into()),
        }
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Key>() + self.name.len() + self.ip.as_ref().map_or(0, |i| i.len())
    }
}

/// A database answer, before the parts that come from the request (the
/// domain as typed) are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    User(UserStatus),
    Relay(bool),
    Password(Option<Arc<PasswdRow>>),
    Host(Option<Route>),
    Alias(Arc<Vec<Vec<u8>>>),
    Limits(Option<VLimits>),
    Domain(Option<Arc<str>>),
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

    fn bytes(&self) -> usize {
        let inner = match self {
            Value::Password(Some(p)) => {
                std::mem::size_of::<PasswdRow>()
                    + p.name.len()
                    + p.domain.len()
                    + p.passwd.len()
                    + p.gecos.len()
                    + p.dir.len()
                    + p.shell.len()
            }
            Value::Host(Some(r)) => r.host.len(),
            Value::Alias(a) => a.iter().map(|l| l.len() + 24).sum::<usize>() + 24,
            Value::Domain(Some(d)) => d.len(),
            _ => 0,
        };
        std::mem::size_of::<Value>() + inner
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
}

struct Entry {
    value: Value,
    deadline: Duration,
    bytes: usize,
}

struct Shard {
    lru: LruCache<Key, Entry>,
    bytes: usize,
}

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

/// A load in progress, which concurrent misses wait for.
struct Flight {
    done: Mutex<Option<Result<Value, Arc<str>>>>,
    cond: Condvar,
}

pub struct Cache {
    shards: Vec<Mutex<Shard>>,
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
        let cap = NonZeroUsize::new(per_shard).unwrap_or(NonZeroUsize::MIN);
        Cache {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        lru: LruCache::new(cap),
                        bytes: 0,
                    })
                })
                .collect(),
            flights: Mutex::new(HashMap::new()),
            policy,
            clock,
            counters: Default::default(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % self.shards.len()]
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
        let now = self.clock.now();
        let mut stale = None;
        {
            let mut shard = lock(self.shard(&key));
            if let Some(entry) = shard.lru.get(&key) {
                if now < entry.deadline {
                    let source = if entry.value.is_negative() {
                        Source::NegativeHit
                    } else {
                        Source::Hit
                    };
                    let value = entry.value.clone();
                    drop(shard);
                    self.count(q, source);
                    return Ok((value, source));
                }
                self.counters(q).expirations.fetch_add(1, Ordering::Relaxed);
                if now < entry.deadline + self.policy.stale {
                    stale = Some(entry.value.clone());
                }
            }
        }
        // A miss: join the load in flight, or become it.
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
                self.insert(key.clone(), value.clone());
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
        lock(&self.flights).remove(&key);
        *lock(&flight.done) = Some(result.clone().map(|(v, _)| v));
        flight.cond.notify_all();
        result
    }

    /// Store an answer (also used by the pre-cache).
    pub fn insert(&self, key: Key, value: Value) {
        let ttl = if value.is_negative() {
            self.policy.negative_ttl
        } else {
            self.policy.ttl
        };
        if ttl.is_zero() {
            return;
        }
        let bytes = key.bytes() + value.bytes();
        let entry = Entry {
            value,
            deadline: self.clock.now() + ttl,
            bytes,
        };
        let byte_cap = self.policy.max_bytes.map(|b| b / self.shards.len());
        let mut evicted: Vec<QueryType> = Vec::new();
        {
            let same = key.clone();
            let mut shard = lock(self.shard(&key));
            shard.bytes += bytes;
            // push gives back the entry it replaced (same key) or the least
            // recently used one it evicted to make room.
            if let Some((old_key, old)) = shard.lru.push(key, entry) {
                shard.bytes -= old.bytes;
                if old_key != same {
                    evicted.push(old_key.qtype);
                }
            }
            if let Some(cap) = byte_cap {
                while shard.bytes > cap && shard.lru.len() > 1 {
                    match shard.lru.pop_lru() {
                        Some((k, e)) => {
                            shard.bytes -= e.bytes;
                            evicted.push(k.qtype);
                        }
                        None => break,
                    }
                }
            }
        }
        for t in evicted {
            self.counters(t).evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forget every answer about `name` (an address or a domain); returns
    /// how many entries went.
    pub fn invalidate(&self, name: &str) -> usize {
        let mut removed = 0;
        for q in QueryType::ALL {
            let key = Key::new(q, name);
            let mut shard = lock(self.shard(&key));
            if let Some(e) = shard.lru.pop(&key) {
                shard.bytes -= e.bytes;
                removed += 1;
            }
        }
        if self.policy.relay {
            for shard in &self.shards {
                let mut shard = lock(shard);
                let keys: Vec<Key> = shard
                    .lru
                    .iter()
                    .filter(|(k, _)| k.qtype == QueryType::Relay && &*k.name == name)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    if let Some(e) = shard.lru.pop(&k) {
                        shard.bytes -= e.bytes;
                        removed += 1;
                    }
                }
            }
        }
        removed
    }

    /// Forget everything (HUP); returns how many entries went.
    pub fn clear(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut s = lock(s);
                let n = s.lru.len();
                s.lru.clear();
                s.bytes = 0;
                n
            })
            .sum()
    }

    /// Entries held now (fresh or expired).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).lru.len()).sum()
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
