//! Push invalidation: the cached answers a database change can alter, and
//! their removal. The mapping follows the SQL of the lookups (which tables
//! and columns each answer reads); it is pure, so that every table and row
//! image can be tested without a server. When a change cannot be told
//! apart, everything goes: a dropped entry costs one lookup, a kept stale
//! one a wrong answer.

use super::{AnswerCache, Cached};
use crate::db::change::{Change, Columns};
use crate::db::Database;

/// What to drop from the cache for one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drop {
    /// `user@domain`, lower-cased: every answer about it (all query types,
    /// RELAY keys too).
    Address(String),
    /// Every answer about the domain and its addresses.
    Domain(String),
    Everything,
}

/// The configured names of the tables whose names are settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// Active users (`indimail`).
    pub active: String,
    /// Inactive users (`indibak`).
    pub inactive: String,
    pub relay: String,
    /// A clustered site's user routes (`hostcntrl`).
    pub cntrl: String,
}

impl Tables {
    /// The tables `db` reads; `hostcntrl` on a site without one (its rows
    /// then change nothing cached, and dropping is harmless).
    pub fn of(db: &Database) -> Tables {
        let m = db.mysql_config();
        Tables {
            active: m.table.clone(),
            inactive: m.inactive_table.clone(),
            relay: m.relay_table.clone(),
            cntrl: db.cntrl_table().unwrap_or("hostcntrl").to_string(),
        }
    }
}

/// What a table's rows are to the lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `indimail`, `indibak`: USER, PWD, HOST, RELAY and LIMIT read them.
    User,
    /// `valias`: ALIAS and USER.
    Alias,
    /// `vlimits`: LIMIT, and PWD with DOMAIN_LIMITS.
    Limits,
    /// RELAY.
    Relay,
    /// `aliasdomain`: the real domain behind an alias domain.
    AliasDomain,
    /// `smtp_port`: the port of HOST answers.
    SmtpPort,
    /// `hostcntrl`: the mailstore of a user, or of a domain's `*` row.
    Cntrl,
    /// `host_table`: the address of every user's mailstore.
    HostTable,
}

/// The roles of a table, by name (without case: dropping too much is
/// harmless). A setting may give one table several roles.
fn roles(table: &str, tables: &Tables) -> Vec<Role> {
    let named: [(&str, Role); 9] = [
        (&tables.active, Role::User),
        (&tables.inactive, Role::User),
        ("valias", Role::Alias),
        ("vlimits", Role::Limits),
        (&tables.relay, Role::Relay),
        ("aliasdomain", Role::AliasDomain),
        ("smtp_port", Role::SmtpPort),
        (&tables.cntrl, Role::Cntrl),
        ("host_table", Role::HostTable),
    ];
    let mut roles: Vec<Role> = Vec::new();
    for (name, role) in named {
        if name.eq_ignore_ascii_case(table) && !roles.contains(&role) {
            roles.push(role);
        }
    }
    roles
}

/// The drops for one change. `domain_limits`: DOMAIN_LIMITS is set. A
/// domain's limits row then changes every PWD answer of the domain; the
/// [`Drop::Domain`] it gives anyway covers them, since per-user LIMIT
/// answers fall back to that row too.
pub fn drops(change: &Change, tables: &Tables, domain_limits: bool) -> Vec<Drop> {
    let _ = domain_limits;
    match change {
        Change::Gap { .. } | Change::Unmappable { table: None } => vec![Drop::Everything],
        Change::Unmappable { table: Some(t) } if roles(t, tables).is_empty() => Vec::new(),
        Change::Unmappable { .. } => vec![Drop::Everything],
        Change::Row {
            table,
            before,
            after,
        } => {
            let roles = roles(table, tables);
            if roles.is_empty() {
                return Vec::new();
            }
            if before.is_none() && after.is_none() {
                return vec![Drop::Everything];
            }
            let mut out = Vec::new();
            for role in roles {
                for image in [before, after].into_iter().flatten() {
                    match image_drops(role, image) {
                        Some(d) => out.extend(d),
                        None => return vec![Drop::Everything],
                    }
                }
            }
            simplify(out)
        }
    }
}

/// A column of a row image: `None` when the image lacks it, `Some(None)`
/// when NULL.
fn column(row: &Columns, name: &str) -> Option<Option<String>> {
    row.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// The drops for one row image; `None` when it lacks a key column. A NULL
/// key matches no lookup's `=`, so its image changes no answer.
fn image_drops(role: Role, row: &Columns) -> Option<Vec<Drop>> {
    let one = |d: Drop| Some(vec![d]);
    let pair = |u: &str, d: &str| -> Option<Option<(String, String)>> {
        Some(column(row, u)?.zip(column(row, d)?))
    };
    match role {
        Role::User => match pair("pw_name", "pw_domain")? {
            Some((u, d)) => one(address(&u, &d)),
            None => Some(Vec::new()),
        },
        Role::Cntrl => match pair("pw_name", "pw_domain")? {
            // The domain's default route: every user without a row of his own.
            Some((u, d)) if u.trim() == "*" => one(domain(&d)),
            Some((u, d)) => one(address(&u, &d)),
            None => Some(Vec::new()),
        },
        Role::Alias => match pair("alias", "domain")? {
            Some((u, d)) => one(address(&u, &d)),
            None => Some(Vec::new()),
        },
        Role::Limits => match column(row, "domain")? {
            Some(v) if v.contains('@') => one(email(&v)),
            Some(d) => one(domain(&d)),
            None => Some(Vec::new()),
        },
        Role::Relay => Some(
            column(row, "email")?
                .map(|e| email(&e))
                .into_iter()
                .collect(),
        ),
        Role::AliasDomain => Some(
            column(row, "alias")?
                .map(|a| domain(&a))
                .into_iter()
                .collect(),
        ),
        Role::SmtpPort => Some(
            column(row, "domain")?
                .map(|d| domain(&d))
                .into_iter()
                .collect(),
        ),
        Role::HostTable => one(Drop::Everything),
    }
}

/// As the lookups normalise names: lower-cased; trimmed, since the
/// columns' collations ignore trailing spaces.
fn norm(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// An address from its user and domain columns. A name outside ASCII is no
/// name a lookup asks for, but the collations may compare it equal to one
/// (`ö` = `o`), and a lookup reading the first matching row may then see
/// it: its domain goes, or everything when the domain itself is such a name.
fn address(user: &str, dom: &str) -> Drop {
    let (u, d) = (norm(user), norm(dom));
    if !d.is_ascii() {
        Drop::Everything
    } else if !u.is_ascii() {
        Drop::Domain(d)
    } else {
        Drop::Address(format!("{u}@{d}"))
    }
}

/// An address held in one column (`relay.email`, a user's `vlimits` row).
fn email(text: &str) -> Drop {
    match text.split_once('@') {
        Some((u, d)) => address(u, d),
        None if text.is_ascii() => Drop::Address(norm(text)),
        None => Drop::Everything,
    }
}

fn domain(d: &str) -> Drop {
    let d = norm(d);
    if d.is_ascii() {
        Drop::Domain(d)
    } else {
        Drop::Everything
    }
}

/// Each drop once, none that another covers.
fn simplify(all: Vec<Drop>) -> Vec<Drop> {
    if all.contains(&Drop::Everything) {
        return vec![Drop::Everything];
    }
    let covered = |a: &str| {
        a.split_once('@').is_some_and(|(_, d)| {
            !d.contains('@') && all.iter().any(|x| matches!(x, Drop::Domain(y) if y == d))
        })
    };
    let mut out: Vec<Drop> = Vec::new();
    for d in &all {
        let redundant = match d {
            Drop::Address(a) => covered(a),
            _ => false,
        };
        if !redundant && !out.contains(d) {
            out.push(d.clone());
        }
    }
    out
}

/// What applying drops needs of the site besides the answer cache.
trait Site {
    /// The alias domains of `real` that lookups met: answers are cached
    /// under their spellings too.
    fn aliases_seen(&self, real: &str) -> Vec<String>;
    fn forget_routes(&self, name: &str) -> usize;
    fn forget_all_routes(&self) -> usize;
}

impl Site for Database {
    fn aliases_seen(&self, real: &str) -> Vec<String> {
        Database::aliases_seen(self, real)
    }

    fn forget_routes(&self, name: &str) -> usize {
        Database::forget_routes(self, name)
    }

    fn forget_all_routes(&self) -> usize {
        Database::forget_all_routes(self)
    }
}

/// Remove what `drops` name from the answer cache and the route cache,
/// also under the alias domains lookups met; returns how many entries went.
/// Routes are cached under real domains only.
fn apply_drops(cache: &AnswerCache, site: &impl Site, drops: &[Drop]) -> usize {
    let mut gone = 0;
    for d in drops {
        gone += match d {
            Drop::Everything => cache.clear() + site.forget_all_routes(),
            Drop::Address(a) => {
                let mut n = cache.invalidate(a) + site.forget_routes(a);
                if let Some((user, real)) = a.split_once('@') {
                    for alias in site.aliases_seen(real) {
                        n += cache.invalidate(&format!("{user}@{alias}"));
                    }
                }
                n
            }
            Drop::Domain(real) => {
                let mut n = cache.invalidate_domain(real) + site.forget_routes(real);
                for alias in site.aliases_seen(real) {
                    n += cache.invalidate_domain(&alias);
                }
                n
            }
        };
    }
    gone
}

impl Cached {
    /// Apply a change the database reported: drop the answers it can alter,
    /// under every spelling lookups met, and the routes it can alter.
    /// Returns how many entries went; 0 without a cache.
    pub fn apply_change(&self, change: &Change) -> usize {
        let Some(cache) = &self.cache else {
            return 0;
        };
        let domain_limits = self.db.lookup_config().domain_limits;
        let drops = drops(change, &self.tables, domain_limits);
        apply_drops(cache, &*self.db, &drops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Key, Policy, SystemClock};
    use crate::protocol::{QueryType, UserStatus};
    use crate::query::answers::{key, relay_key};
    use crate::query::{CacheSettings, Value};
    use std::cell::RefCell;
    use std::sync::Arc;

    fn tables() -> Tables {
        Tables {
            active: "indimail".into(),
            inactive: "indibak".into(),
            relay: "relay".into(),
            cntrl: "hostcntrl".into(),
        }
    }

    fn cols(pairs: &[(&str, Option<&str>)]) -> Columns {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(|v| v.as_bytes().to_vec())))
            .collect()
    }

    fn row(table: &str, before: Option<Columns>, after: Option<Columns>) -> Change {
        Change::Row {
            table: table.into(),
            before,
            after,
        }
    }

    fn user(name: &str, domain: &str) -> Columns {
        cols(&[
            ("pw_name", Some(name)),
            ("pw_domain", Some(domain)),
            ("pw_passwd", Some("$6$x")),
        ])
    }

    fn of(change: &Change) -> Vec<Drop> {
        drops(change, &tables(), false)
    }

    fn addr(a: &str) -> Drop {
        Drop::Address(a.into())
    }

    fn dom(d: &str) -> Drop {
        Drop::Domain(d.into())
    }

    #[test]
    fn a_user_row_drops_the_address_normalised() {
        let joe = || Some(user("Joe", " Example.COM "));
        for t in ["indimail", "indibak", "INDIMAIL"] {
            assert_eq!(of(&row(t, None, joe())), [addr("joe@example.com")], "{t}");
            assert_eq!(of(&row(t, joe(), None)), [addr("joe@example.com")], "{t}");
            // A new password: one address, once.
            assert_eq!(of(&row(t, joe(), joe())), [addr("joe@example.com")], "{t}");
        }
    }

    #[test]
    fn a_renamed_user_drops_both_names() {
        let c = row(
            "indimail",
            Some(user("joe", "example.com")),
            Some(user("jim", "example.org")),
        );
        assert_eq!(of(&c), [addr("joe@example.com"), addr("jim@example.org")]);
    }

    #[test]
    fn a_user_moved_between_tables_drops_it_from_both_events() {
        // A move is a delete in one table and a write in the other.
        let joe = || Some(user("joe", "example.com"));
        assert_eq!(of(&row("indimail", joe(), None)), [addr("joe@example.com")]);
        assert_eq!(of(&row("indibak", None, joe())), [addr("joe@example.com")]);
    }

    #[test]
    fn configured_table_names_are_the_ones_mapped() {
        let t = Tables {
            active: "users".into(),
            inactive: "old_users".into(),
            relay: "relays".into(),
            cntrl: "routes".into(),
        };
        let joe = || Some(user("joe", "example.com"));
        assert_eq!(
            drops(&row("old_users", joe(), None), &t, false),
            [addr("joe@example.com")]
        );
        assert_eq!(drops(&row("indimail", joe(), None), &t, false), []);
        let relay = Some(cols(&[
            ("email", Some("joe@example.com")),
            ("ipaddr", Some("1")),
        ]));
        assert_eq!(
            drops(&row("relays", relay.clone(), None), &t, false),
            [addr("joe@example.com")]
        );
        assert_eq!(drops(&row("relay", relay, None), &t, false), []);
        assert_eq!(
            drops(&row("routes", joe(), None), &t, false),
            [addr("joe@example.com")]
        );
        assert_eq!(drops(&row("hostcntrl", joe(), None), &t, false), []);
    }

    #[test]
    fn a_null_key_changes_no_answer() {
        let null_name = cols(&[("pw_name", None), ("pw_domain", Some("example.com"))]);
        let null_domain = cols(&[("pw_name", Some("joe")), ("pw_domain", None)]);
        assert_eq!(of(&row("indimail", Some(null_name.clone()), None)), []);
        assert_eq!(of(&row("indimail", None, Some(null_domain))), []);
        // NULL → joe: only joe's answers can change.
        let c = row(
            "indimail",
            Some(null_name),
            Some(user("joe", "example.com")),
        );
        assert_eq!(of(&c), [addr("joe@example.com")]);
        let null_alias = cols(&[("alias", None), ("domain", Some("d"))]);
        assert_eq!(of(&row("valias", Some(null_alias), None)), []);
        for (t, c) in [
            ("vlimits", "domain"),
            ("relay", "email"),
            ("aliasdomain", "alias"),
            ("smtp_port", "domain"),
        ] {
            assert_eq!(of(&row(t, Some(cols(&[(c, None)])), None)), [], "{t}");
        }
    }

    #[test]
    fn an_image_without_its_key_columns_drops_everything() {
        let no_domain = cols(&[("pw_name", Some("joe")), ("pw_passwd", Some("x"))]);
        assert_eq!(
            of(&row("indimail", Some(user("joe", "d")), Some(no_domain))),
            [Drop::Everything]
        );
        for (t, present) in [
            ("valias", "alias"),
            ("vlimits", "maxaliases"),
            ("relay", "ipaddr"),
            ("aliasdomain", "domain"),
            ("smtp_port", "port"),
            ("hostcntrl", "pw_name"),
        ] {
            let image = Some(cols(&[(present, Some("x"))]));
            assert_eq!(of(&row(t, image, None)), [Drop::Everything], "{t}");
        }
        // A row event with no image at all.
        assert_eq!(of(&row("indimail", None, None)), [Drop::Everything]);
        assert_eq!(of(&row("lastauth", None, None)), []);
    }

    #[test]
    fn key_columns_are_found_without_case() {
        let image = cols(&[("PW_NAME", Some("joe")), ("Pw_Domain", Some("d"))]);
        assert_eq!(of(&row("indimail", Some(image), None)), [addr("joe@d")]);
    }

    #[test]
    fn valias_drops_the_alias_address() {
        let line = |a: &str, d: &str, l: &str| {
            Some(cols(&[
                ("alias", Some(a)),
                ("domain", Some(d)),
                ("valias_line", Some(l)),
            ]))
        };
        assert_eq!(
            of(&row("valias", None, line("Sales", "Example.com", "&joe"))),
            [addr("sales@example.com")]
        );
        assert_eq!(
            of(&row(
                "valias",
                line("sales", "example.com", "&joe"),
                line("info", "example.com", "&joe")
            )),
            [addr("sales@example.com"), addr("info@example.com")]
        );
    }

    #[test]
    fn vlimits_drops_the_user_or_the_domain() {
        let limits = |d: &str| Some(cols(&[("domain", Some(d)), ("maxaliases", Some("5"))]));
        for domain_limits in [false, true] {
            let t = tables();
            let d = |c: &Change| drops(c, &t, domain_limits);
            assert_eq!(
                d(&row("vlimits", None, limits("Joe@Example.com"))),
                [addr("joe@example.com")]
            );
            assert_eq!(
                d(&row(
                    "vlimits",
                    limits("example.com"),
                    limits("example.com")
                )),
                [dom("example.com")]
            );
            assert_eq!(
                d(&row("vlimits", limits("example.com"), None)),
                [dom("example.com")]
            );
            // The domain's drop covers its user's.
            assert_eq!(
                d(&row(
                    "vlimits",
                    limits("joe@example.com"),
                    limits("example.com")
                )),
                [dom("example.com")]
            );
            assert_eq!(
                d(&row("vlimits", limits("joe@a.test"), limits("b.test"))),
                [addr("joe@a.test"), dom("b.test")]
            );
        }
    }

    #[test]
    fn relay_drops_the_address() {
        let entry = |e: &str| {
            Some(cols(&[
                ("email", Some(e)),
                ("ipaddr", Some("192.0.2.1")),
                ("timestamp", Some("1700000000")),
            ]))
        };
        assert_eq!(
            of(&row("relay", None, entry("Joe@Example.com"))),
            [addr("joe@example.com")]
        );
        assert_eq!(
            of(&row("relay", entry("joe@d"), entry("joe@d"))),
            [addr("joe@d")]
        );
        // Not an address: dropped by its text, which no key has.
        assert_eq!(of(&row("relay", entry("JOE"), None)), [addr("joe")]);
    }

    #[test]
    fn aliasdomain_drops_the_alias_domain() {
        let pair = |a: &str, d: Option<&str>| Some(cols(&[("alias", Some(a)), ("domain", d)]));
        assert_eq!(
            of(&row(
                "aliasdomain",
                None,
                pair("Alias.Test", Some("real.test"))
            )),
            [dom("alias.test")]
        );
        // Pointed at another real domain: only answers under the alias change.
        assert_eq!(
            of(&row(
                "aliasdomain",
                pair("alias.test", Some("real.test")),
                pair("alias.test", Some("other.test"))
            )),
            [dom("alias.test")]
        );
        assert_eq!(
            of(&row(
                "aliasdomain",
                pair("a.test", Some("real.test")),
                pair("b.test", None)
            )),
            [dom("a.test"), dom("b.test")]
        );
    }

    #[test]
    fn smtp_port_drops_the_domain() {
        let port = Some(cols(&[
            ("host", Some("ms1")),
            ("src_host", Some("*")),
            ("domain", Some("Example.com")),
            ("port", Some("587")),
        ]));
        assert_eq!(of(&row("smtp_port", port, None)), [dom("example.com")]);
    }

    #[test]
    fn hostcntrl_drops_the_user_or_with_the_default_row_the_domain() {
        let route = |u: &str| {
            Some(cols(&[
                ("pw_name", Some(u)),
                ("pw_domain", Some("Example.com")),
                ("host", Some("ms1")),
            ]))
        };
        assert_eq!(
            of(&row("hostcntrl", route("joe"), route("joe"))),
            [addr("joe@example.com")]
        );
        assert_eq!(
            of(&row("hostcntrl", None, route("*"))),
            [dom("example.com")]
        );
    }

    #[test]
    fn host_table_drops_everything() {
        let host = Some(cols(&[
            ("host", Some("ms1")),
            ("ipaddr", Some("192.0.2.1")),
        ]));
        assert_eq!(of(&row("host_table", host, None)), [Drop::Everything]);
    }

    #[test]
    fn tables_no_answer_reads_drop_nothing() {
        let image = Some(cols(&[
            ("user", Some("joe")),
            ("domain", Some("d")),
            ("service", Some("imap")),
        ]));
        assert_eq!(of(&row("lastauth", image.clone(), image.clone())), []);
        assert_eq!(of(&row("dir_control", image.clone(), None)), []);
        assert_eq!(of(&row("mgmtaccess", None, image)), []);
    }

    #[test]
    fn unmappable_and_gaps() {
        let u = |t: Option<&str>| Change::Unmappable {
            table: t.map(str::to_string),
        };
        for t in [
            "indimail",
            "indibak",
            "valias",
            "vlimits",
            "relay",
            "aliasdomain",
            "smtp_port",
            "hostcntrl",
            "host_table",
        ] {
            assert_eq!(of(&u(Some(t))), [Drop::Everything], "{t}");
        }
        assert_eq!(of(&u(Some("lastauth"))), []);
        assert_eq!(of(&u(Some("other"))), []);
        assert_eq!(of(&u(None)), [Drop::Everything]);
        let gap = Change::Gap {
            reason: "reconnected".into(),
        };
        assert_eq!(of(&gap), [Drop::Everything]);
    }

    #[test]
    fn names_outside_ascii_widen_the_drop() {
        assert_eq!(
            of(&row("indimail", Some(user("jöe", "example.com")), None)),
            [dom("example.com")]
        );
        assert_eq!(
            of(&row("indimail", Some(user("joe", "exämple.com")), None)),
            [Drop::Everything]
        );
        let bytes = vec![
            ("pw_name".to_string(), Some(b"j\xffe".to_vec())),
            ("pw_domain".to_string(), Some(b"d".to_vec())),
        ];
        assert_eq!(of(&row("indibak", Some(bytes), None)), [dom("d")]);
        let alias = Some(cols(&[("alias", Some("älias.test"))]));
        assert_eq!(of(&row("aliasdomain", alias, None)), [Drop::Everything]);
    }

    // -- Applying drops

    fn answer_cache(relay: bool) -> AnswerCache {
        let policy = Policy {
            max_entries: 1000,
            max_bytes: None,
            ..Policy::default()
        };
        AnswerCache::with_clock(
            CacheSettings { policy, relay },
            Arc::new(SystemClock::new()),
        )
    }

    fn put(c: &AnswerCache, k: Key) {
        assert!(c.insert_since(&c.mark(), k, Value::User(UserStatus::Active)));
    }

    fn has(c: &AnswerCache, k: &Key) -> bool {
        c.get_fresh(k).is_some()
    }

    /// Every answer about `name` but RELAY, and one RELAY answer.
    fn answers_of(name: &str) -> Vec<Key> {
        let mut keys: Vec<Key> = QueryType::ALL
            .into_iter()
            .filter(|&q| q != QueryType::Relay)
            .map(|q| key(q, name))
            .collect();
        keys.push(relay_key(name, "192.0.2.1"));
        keys
    }

    /// A site that knows some alias domains and records the routes forgotten.
    #[derive(Default)]
    struct FakeSite {
        aliases: Vec<(&'static str, &'static str)>,
        forgotten: RefCell<Vec<String>>,
    }

    impl Site for FakeSite {
        fn aliases_seen(&self, real: &str) -> Vec<String> {
            self.aliases
                .iter()
                .filter(|(r, _)| *r == real)
                .map(|(_, a)| a.to_string())
                .collect()
        }

        fn forget_routes(&self, name: &str) -> usize {
            self.forgotten.borrow_mut().push(name.to_string());
            0
        }

        fn forget_all_routes(&self) -> usize {
            self.forgotten.borrow_mut().push("*".to_string());
            0
        }
    }

    fn site() -> FakeSite {
        FakeSite {
            aliases: vec![
                ("real.test", "alias.test"),
                ("real.test", "other-alias.test"),
            ],
            ..FakeSite::default()
        }
    }

    #[test]
    fn an_address_drop_takes_its_answers_relay_too_and_alias_spellings() {
        let c = answer_cache(true);
        let mut gone = Vec::new();
        let mut kept = Vec::new();
        for name in ["joe@real.test", "joe@alias.test", "joe@other-alias.test"] {
            gone.extend(answers_of(name));
        }
        for name in ["jane@real.test", "jane@alias.test", "joe@unrelated.test"] {
            kept.extend(answers_of(name));
        }
        kept.push(key(QueryType::Domain, "real.test"));
        for k in gone.iter().chain(&kept) {
            put(&c, k.clone());
        }
        let s = site();
        let n = apply_drops(&c, &s, &[addr("joe@real.test")]);
        assert_eq!(n, gone.len());
        assert!(gone.iter().all(|k| !has(&c, k)));
        assert!(kept.iter().all(|k| has(&c, k)));
        assert_eq!(*s.forgotten.borrow(), ["joe@real.test"]);
    }

    #[test]
    fn without_relay_caching_an_address_drop_takes_the_rest() {
        let c = answer_cache(false);
        let joe = answers_of("joe@real.test");
        let jane = answers_of("jane@real.test");
        for k in joe.iter().chain(&jane) {
            // A RELAY answer is loaded every time, never stored.
            c.get_or_load(k.clone(), || Ok::<_, String>(Value::Relay(true)))
                .unwrap();
        }
        assert_eq!(apply_drops(&c, &site(), &[addr("joe@real.test")]), 6);
        assert_eq!(c.len(), 6);
        assert!(has(&c, &key(QueryType::Password, "jane@real.test")));
        assert!(!has(&c, &key(QueryType::Password, "joe@real.test")));
    }

    #[test]
    fn a_domain_drop_takes_the_domain_its_addresses_and_its_alias_spellings() {
        let c = answer_cache(true);
        let gone: Vec<Key> = [
            key(QueryType::Domain, "real.test"),
            key(QueryType::Limit, "real.test"),
            key(QueryType::Password, "joe@real.test"),
            key(QueryType::Password, "jane@alias.test"),
            key(QueryType::Domain, "alias.test"),
            relay_key("joe@other-alias.test", "192.0.2.1"),
        ]
        .into();
        let kept: Vec<Key> = [
            key(QueryType::Password, "joe@unrelated.test"),
            key(QueryType::Limit, "unrelated.test"),
            key(QueryType::User, "joe@sub.real.test"),
        ]
        .into();
        for k in gone.iter().chain(&kept) {
            put(&c, k.clone());
        }
        let s = site();
        assert_eq!(apply_drops(&c, &s, &[dom("real.test")]), gone.len());
        assert!(gone.iter().all(|k| !has(&c, k)));
        assert!(kept.iter().all(|k| has(&c, k)));
        assert_eq!(*s.forgotten.borrow(), ["real.test"]);
    }

    #[test]
    fn everything_clears_the_answers_and_the_routes() {
        let c = answer_cache(true);
        for k in answers_of("joe@real.test") {
            put(&c, k);
        }
        let s = site();
        assert_eq!(apply_drops(&c, &s, &[Drop::Everything]), 7);
        assert!(c.is_empty());
        assert_eq!(*s.forgotten.borrow(), ["*"]);
        assert_eq!(apply_drops(&c, &s, &[]), 0);
    }

    /// A database of a temporary control directory: no server is asked.
    fn database() -> (tempfile::TempDir, Arc<Database>) {
        use crate::config::{Env, LookupConfig, MysqlConfig, Paths};
        let dir = tempfile::tempdir().unwrap();
        let env = Env::from_pairs([("CONTROLDIR", dir.path().as_os_str())]);
        let paths = Paths::from_env(&env).unwrap();
        let mysql = MysqlConfig::load(&env, &paths).unwrap();
        let lookup = LookupConfig::load(&env, &paths).unwrap();
        (dir, Arc::new(Database::new(mysql, lookup, paths, 1)))
    }

    #[test]
    fn a_change_applied_to_the_daemons_cache() {
        let (_dir, db) = database();
        db.saw_alias("real.test", "alias.test");
        let c = answer_cache(false);
        let cached = Cached::new(db, Some(c.clone()));
        let pwd = |n: &str| key(QueryType::Password, n);
        for n in ["joe@real.test", "joe@alias.test", "jane@real.test"] {
            put(&c, pwd(n));
        }
        let changed = row(
            "indimail",
            Some(user("joe", "real.test")),
            Some(user("joe", "real.test")),
        );
        assert_eq!(cached.apply_change(&changed), 2);
        assert!(!has(&c, &pwd("joe@real.test")));
        assert!(!has(&c, &pwd("joe@alias.test")));
        assert!(has(&c, &pwd("jane@real.test")));
        // A table no answer reads: nothing goes.
        assert_eq!(cached.apply_change(&row("lastauth", None, None)), 0);
        assert!(has(&c, &pwd("jane@real.test")));
        let gap = Change::Gap {
            reason: "restart".into(),
        };
        assert_eq!(cached.apply_change(&gap), 1);
        assert!(c.is_empty());
    }

    #[test]
    fn without_a_cache_nothing_is_applied() {
        let (_dir, db) = database();
        let cached = Cached::new(db, None);
        let gap = Change::Gap {
            reason: "restart".into(),
        };
        assert_eq!(cached.apply_change(&gap), 0);
    }

    #[test]
    fn the_tables_of_a_single_database_site() {
        let (_dir, db) = database();
        assert_eq!(
            Tables::of(&db),
            Tables {
                active: "indimail".into(),
                inactive: "indibak".into(),
                relay: "relay".into(),
                cntrl: "hostcntrl".into(),
            }
        );
    }
}
