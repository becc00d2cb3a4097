//! The daemon's answer cache: the generic cache holding [`Value`]s, under
//! the rules of this service. One kind of key per query type; RELAY answers
//! are cached only when asked (a POP/IMAP login changes them at any moment);
//! a flush forgets every answer about an address or a domain.

use std::sync::Arc;
use std::time::Duration;

use super::value::Value;
use crate::cache::{self, Cache, Clock, Key, Mark, Policy, Source, SystemClock};
use crate::config::{ConfigError, Env};
use crate::protocol::QueryType;

/// The cache's kinds of key, one per query type in wire order: the names
/// of the USR1 report lines.
const KINDS: [&str; 7] = [
    "'User Query'",
    "'Relay Query'",
    "'Password Query'",
    "'Host Query'",
    "'Alias Query'",
    "'Domain Limits Query'",
    "'Domain Query'",
];

/// The cache's kind of key for a query type.
pub fn kind(qtype: QueryType) -> u8 {
    qtype.as_u8() - 1
}

/// The cache key of an answer about `name` (a normalised address or domain).
pub fn key(qtype: QueryType, name: &str) -> Key {
    Key::new(kind(qtype), name.as_bytes())
}

/// The cache key of a RELAY answer: the normalised address, a space, the IP
/// (neither part can hold a space).
pub fn relay_key(name: &str, ip: &str) -> Key {
    Key::new(kind(QueryType::Relay), format!("{name} {ip}").as_bytes())
}

/// The address or domain a key is about.
fn subject(key: &[u8]) -> &[u8] {
    key.split(|&b| b == b' ').next().unwrap_or_default()
}

/// What is cached, and whether RELAY answers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    pub policy: Policy,
    /// Cache RELAY answers too. Off by default: a POP/IMAP login changes
    /// them at any moment.
    pub relay: bool,
}

/// The cache's settings, from the environment. `None` when the cache is
/// off. As in C, USE_BTREE starting with `1` turns it on and
/// MAX_BTREE_COUNT (when above 0) bounds the number of entries;
/// INLOOKUP_CACHE=1/0 turns it on or off whatever USE_BTREE says, and the
/// other INLOOKUP_CACHE_* variables set the rest (INLOOKUP_CACHE_BYTES=0:
/// no byte bound).
pub fn policy_from_env(env: &Env) -> Result<Option<CacheSettings>, ConfigError> {
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
    Ok(Some(CacheSettings {
        policy: Policy {
            max_entries,
            max_bytes: match number(env, "INLOOKUP_CACHE_BYTES")? {
                None => d.max_bytes,
                Some(0) => None,
                Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            },
            ttl: secs("INLOOKUP_CACHE_TTL", d.ttl)?,
            negative_ttl: secs("INLOOKUP_CACHE_NEGATIVE_TTL", d.negative_ttl)?,
            stale: secs("INLOOKUP_CACHE_STALE", d.stale)?,
        },
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

/// The daemon's cache of database answers; clones share it.
#[derive(Clone)]
pub struct AnswerCache {
    cache: Arc<Cache<Value>>,
    relay: bool,
}

impl AnswerCache {
    pub fn new(settings: CacheSettings) -> AnswerCache {
        AnswerCache::with_clock(settings, Arc::new(SystemClock::new()))
    }

    pub fn with_clock(settings: CacheSettings, clock: Arc<dyn Clock>) -> AnswerCache {
        AnswerCache {
            cache: Arc::new(Cache::new(settings.policy, clock, &KINDS)),
            relay: settings.relay,
        }
    }

    /// RELAY answers are loaded every time unless relay caching is on.
    fn bypassed(&self, key: &Key) -> bool {
        key.kind == kind(QueryType::Relay) && !self.relay
    }

    /// The answer for `key`: from the cache while it is fresh, else from
    /// `load` (once for all concurrent callers); see [`Cache::get_or_load`].
    pub fn get_or_load<E: std::fmt::Display>(
        &self,
        key: Key,
        load: impl FnOnce() -> Result<Value, E>,
    ) -> Result<(Value, Source), Arc<str>> {
        if self.bypassed(&key) {
            self.cache.count(key.kind, Source::Bypass);
            return load()
                .map(|v| (v, Source::Bypass))
                .map_err(|e| Arc::from(e.to_string()));
        }
        self.cache.get_or_load(key, load)
    }

    /// A fresh answer for `key`, if the cache has one; never loads.
    pub fn get_fresh(&self, key: &Key) -> Option<(Value, Source)> {
        if self.bypassed(key) {
            return None;
        }
        self.cache.get_fresh(key)
    }

    /// See [`Cache::mark`].
    pub fn mark(&self) -> Mark {
        self.cache.mark()
    }

    /// Store an answer loaded after `mark` was taken, unless the cache forgot
    /// something about its key since; see [`Cache::insert_since`].
    pub fn insert_since(&self, mark: &Mark, key: Key, value: Value) -> bool {
        self.cache.insert_since(mark, &key, &value)
    }

    /// Forget every answer about `name` (a normalised address or domain);
    /// returns how many entries went.
    pub fn invalidate(&self, name: &str) -> usize {
        let mut removed = QueryType::ALL
            .into_iter()
            .filter(|&q| self.cache.remove(&key(q, name)))
            .count();
        if self.relay {
            // A RELAY key (name and IP) may be in any shard.
            let relay = kind(QueryType::Relay);
            removed += self
                .cache
                .remove_where(|e| e.kind == relay && subject(e.key) == name.as_bytes());
        }
        removed
    }

    /// Forget every answer about a domain (lower-cased): the domain's own,
    /// those about its addresses, and the password rows of that domain cached
    /// under an alias domain's address. Returns how many entries went.
    pub fn invalidate_domain(&self, domain: &str) -> usize {
        let domain = domain.as_bytes();
        let password = kind(QueryType::Password);
        self.cache.remove_where(|e| {
            let subject = subject(e.key);
            let domain_of = |name: &[u8]| {
                name.iter()
                    .rposition(|&b| b == b'@')
                    .map_or(name, |i| &name[i + 1..])
                    == domain
            };
            domain_of(subject)
                || (e.kind == password && !e.answer.is_empty() && {
                    let mut named = Vec::new();
                    <Value as cache::Answer>::key_of(e.answer, &mut named);
                    !named.is_empty() && domain_of(&named)
                })
        })
    }

    /// Forget everything (HUP) and give the memory back; returns how many
    /// entries went.
    pub fn clear(&self) -> usize {
        let n = self.cache.clear();
        cache::release_freed_memory();
        n
    }

    /// Entries held now (fresh or expired).
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Approximate bytes held now.
    pub fn bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// The cache's lines of the stats block.
    pub fn report(&self) -> String {
        self.cache.report()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::DEFAULT_MAX_BYTES;
    use crate::protocol::UserStatus;
    use std::sync::atomic::Ordering;
    use std::sync::{Condvar, Mutex};

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
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
        }
    }

    fn cache_of(policy: Policy, relay: bool) -> (AnswerCache, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        let settings = CacheSettings { policy, relay };
        (AnswerCache::with_clock(settings, clock.clone()), clock)
    }

    fn cache(p: Policy) -> (AnswerCache, Arc<ManualClock>) {
        cache_of(p, false)
    }

    fn user(name: &str) -> Key {
        key(QueryType::User, name)
    }

    type R = Result<Value, String>;

    fn get(c: &AnswerCache, k: Key, v: R) -> Result<(Value, Source), Arc<str>> {
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
        let k = c.cache.counters(kind(QueryType::User));
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
            c.cache
                .counters(kind(QueryType::User))
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
        assert_eq!(
            c.cache
                .counters(kind(QueryType::User))
                .stale
                .load(Ordering::Relaxed),
            1
        );
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
        let (c, _) = cache_of(policy(), true);
        get(&c, user("a@x"), Ok(ACTIVE)).unwrap();
        get(&c, user("b@x"), Ok(ABSENT)).unwrap();
        get(&c, key(QueryType::Host, "a@x"), Ok(Value::Host(None))).unwrap();
        get(&c, relay_key("a@x", "10.0.0.1"), Ok(Value::Relay(true))).unwrap();
        assert_eq!(get(&c, user("a@x"), Err("x".into())).unwrap().0, ACTIVE);
        assert_eq!(get(&c, user("b@x"), Err("x".into())).unwrap().0, ABSENT);
        assert_eq!(
            get(&c, relay_key("a@x", "10.0.0.2"), Ok(Value::Relay(false))).unwrap(),
            (Value::Relay(false), Source::Miss)
        );
        assert_eq!(
            get(&c, relay_key("a@x", "10.0.0.1"), Err("x".into())).unwrap(),
            (Value::Relay(true), Source::Hit)
        );
    }

    #[test]
    fn relay_is_not_cached_unless_asked() {
        let (c, _) = cache(policy());
        let k = relay_key("a@x", "10.0.0.1");
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
            .cache
            .counters(kind(QueryType::User))
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
                key(QueryType::Alias, &format!("a{i}@x")),
                Ok(big.clone()),
            )
            .unwrap();
            assert!(c.bytes() <= 16 * 4096 + 4096, "{} bytes", c.bytes());
        }
        assert!(c.len() < 1000);
    }

    #[test]
    fn invalidate_one_address_and_clear_all() {
        let (c, _) = cache_of(policy(), true);
        for q in [QueryType::User, QueryType::Password, QueryType::Alias] {
            get(&c, key(q, "a@x"), Ok(ABSENT)).unwrap();
        }
        get(&c, relay_key("a@x", "10.0.0.1"), Ok(Value::Relay(true))).unwrap();
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
        while c.cache.load_holders(&user("hot@x")) < 17 {
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
        let forgets: [fn(&AnswerCache); 2] = [
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
            assert_eq!(c.cache.loads_in_flight(), 0);
        }
    }

    #[test]
    fn pre_cached_rows_older_than_a_flush_or_hup_are_not_stored() {
        let (c, _) = cache(policy());
        let pw = |name: &str| key(QueryType::Password, name);
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
        assert_eq!(p.policy.max_entries, 5000);
        assert_eq!(p.policy.ttl, Policy::default().ttl);
        // A byte bound unless asked for none.
        assert_eq!(p.policy.max_bytes, Some(DEFAULT_MAX_BYTES));
        let p = policy_from_env(&env(&[("USE_BTREE", "1"), ("INLOOKUP_CACHE_BYTES", "0")]))
            .unwrap()
            .unwrap();
        assert_eq!(p.policy.max_bytes, None);
        // C's lenient MAX_BTREE_COUNT: garbage or 0 keep the default bound.
        for v in ["", "0", "lots"] {
            let p = policy_from_env(&env(&[("USE_BTREE", "1"), ("MAX_BTREE_COUNT", v)]))
                .unwrap()
                .unwrap();
            assert_eq!(p.policy.max_entries, Policy::default().max_entries);
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
            CacheSettings {
                policy: Policy {
                    max_entries: 7,
                    max_bytes: Some(1000),
                    ttl: Duration::from_secs(60),
                    negative_ttl: Duration::from_secs(5),
                    stale: Duration::ZERO,
                },
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
    fn a_domain_is_forgotten_with_its_addresses_and_the_rows_cached_under_its_aliases() {
        let (c, _) = cache(policy());
        let row = |name: &str, domain: &str| {
            Value::Password(Some(super::super::value::PackedRow::pack(
                &crate::protocol::PwStruct {
                    name: name.into(),
                    domain: domain.into(),
                    passwd: b"x".to_vec(),
                    ..Default::default()
                },
            )))
        };
        get(&c, user("a@real.test"), Ok(ACTIVE)).unwrap();
        get(
            &c,
            key(QueryType::Domain, "real.test"),
            Ok(Value::Domain(None)),
        )
        .unwrap();
        get(
            &c,
            key(QueryType::Password, "a@real.test"),
            Ok(row("a", "real.test")),
        )
        .unwrap();
        // The row of real.test, cached under the alias domain's address.
        get(
            &c,
            key(QueryType::Password, "b@alias.test"),
            Ok(row("b", "real.test")),
        )
        .unwrap();
        get(&c, user("a@other.test"), Ok(ACTIVE)).unwrap();
        get(&c, user("a@sub.real.test"), Ok(ACTIVE)).unwrap();
        // Found by a second key: the rows of real.test, whatever address they are cached under.
        let password = kind(QueryType::Password);
        let mut rows = c.cache.keys_where(|e| {
            let mut named = Vec::new();
            <Value as cache::Answer>::key_of(e.answer, &mut named);
            e.kind == password && named.ends_with(b"@real.test")
        });
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            rows,
            [
                key(QueryType::Password, "a@real.test"),
                key(QueryType::Password, "b@alias.test")
            ]
        );
        assert_eq!(c.invalidate_domain("real.test"), 4);
        assert_eq!(c.len(), 2);
        assert_eq!(
            get(&c, user("a@other.test"), Err("x".into())).unwrap().1,
            Source::Hit
        );
    }
}
