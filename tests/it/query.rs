//! The query module: direct, cached and remote backends agree; the cache's
//! single flight, stale answers, invalidation and pre-cache, seen from the
//! outside.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indilookup::client;
use indilookup::config::{Config, Env};
use indilookup::db::Database;
use indilookup::protocol::{QueryType, Reply, UserStatus};
use indilookup::query::{Query, QueryError, Remote};
use nix::sys::signal::Signal;

use crate::daemon::Daemon;
use crate::harness::{OwnServer, Site};
use crate::lookups::populate;

/// The site's configuration as a client of this daemon sees it.
fn client_env(site: &Site, d: &Daemon) -> Env {
    let mut env = site.env.clone();
    env.set("INFIFODIR", d.fifodir.clone());
    env.set("FIFOTMPDIR", d.replydir.clone());
    env
}

pub fn remote(site: &Site, d: &Daemon) -> Query {
    let c = Config::load(&client_env(site, d)).unwrap();
    Query::new(Arc::new(Remote::new(&c)))
}

fn direct(site: &Site) -> Query {
    let c = site.config();
    Query::new(Arc::new(Database::new(c.mysql, c.lookup, c.paths, 1)))
}

/// Every question of the daemon tests, with a few more.
fn questions() -> Vec<(QueryType, &'static str, &'static str)> {
    use QueryType::*;
    let mut q = vec![];
    for email in [
        "joe@example.com",
        "JOE@Example.com",
        "joe",
        "inact@alias.com",
        "full@example.com",
        "sales@example.com",
        "nobody@example.com",
        "bob@example.org",
        "joe@other.net",
        "jo e@example.com",
    ] {
        for t in [User, Password, Host, Alias, Limit] {
            q.push((t, email, ""));
        }
        q.push((Relay, email, "10.0.0.1"));
    }
    for d in [
        "example.com",
        "alias.com",
        "other.net",
        "unknown.test",
        "example.org",
    ] {
        q.push((Domain, d, ""));
        q.push((Limit, d, ""));
    }
    q
}

#[test]
fn every_backend_gives_the_same_answers() {
    let site = Site::new();
    populate(&site);
    site.control("hostip", "192.0.2.7");
    let uncached = Daemon::start(&site, &["-i", "2"], &[]);
    let direct = direct(&site);
    let from_uncached = remote(&site, &uncached);
    let mut answers = Vec::new();
    for (t, email, ip) in questions() {
        let want = direct.ask(t, email.as_bytes(), ip.as_bytes()).unwrap();
        let got = from_uncached
            .ask(t, email.as_bytes(), ip.as_bytes())
            .unwrap();
        assert_eq!(got, want, "{t:?} {email}");
        answers.push(want);
    }
    assert!(uncached.stop().success());
    // With the cache on, twice: the second round comes from the cache.
    let cached = Daemon::start(&site, &["-i", "2"], &[("USE_BTREE", "1")]);
    let from_cached = remote(&site, &cached);
    for round in 0..2 {
        for ((t, email, ip), want) in questions().into_iter().zip(&answers) {
            let got = from_cached.ask(t, email.as_bytes(), ip.as_bytes()).unwrap();
            assert_eq!(&got, want, "round {round}: {t:?} {email}");
        }
    }
    cached.signal(Signal::SIGUSR1);
    let lines = cached.wait_for(
        |l| l.starts_with("Cache 'Password Query'"),
        1,
        "cache stats",
    );
    // 10 addresses: one has a space (no database work, nothing cached),
    // three are the same joe@example.com, two have no account. Round one:
    // 7 misses, 2 hits (joe again); round two: all 9 from the cache.
    assert_eq!(
        lines[0],
        "Cache 'Password Query': hits 9, negative hits 2, misses 7, joined 0, stale 0, expired 0, evicted 0",
        "the second round was served from the cache"
    );
    // The typed interface on both backends.
    for q in [&direct, &from_cached] {
        assert_eq!(
            q.user_status(b"inact@example.com").unwrap(),
            UserStatus::Inactive
        );
        assert!(q.relay(b"joe@example.com", b"10.0.0.1").unwrap());
        let pw = q.password(b"joe@Alias.com").unwrap().unwrap();
        assert_eq!(
            (pw.name.as_slice(), pw.domain.as_slice()),
            (&b"joe"[..], &b"Alias.com"[..])
        );
        assert_eq!(q.password(b"nobody@example.com").unwrap(), None);
        assert_eq!(
            q.host(b"joe@example.com").unwrap().unwrap(),
            b"example.com:192.0.2.7:25"
        );
        assert_eq!(q.host(b"nobody@example.com").unwrap(), None);
        assert_eq!(q.aliases(b"sales@example.com").unwrap().len(), 2);
        assert_eq!(q.limits(b"joe@example.com").unwrap().unwrap().limit_type, 2);
        assert_eq!(q.limits(b"example.org").unwrap(), None);
        assert_eq!(q.real_domain(b"alias.com").unwrap(), b"example.com");
        assert_eq!(q.real_domain(b"unknown.test").unwrap(), b"unknown.test");
    }
    assert!(cached.stop().success());
}

#[test]
fn query_cache_variable_chooses_the_backend() {
    let site = Site::new();
    populate(&site);
    let d = Daemon::start(&site, &["-i", "2"], &[]);
    let mut env = client_env(&site, &d);
    // Without QUERY_CACHE: MySQL directly, even with the daemon stopped.
    let c = Config::load(&env).unwrap();
    let q = Query::for_client(&env, &c);
    assert!(q.user_status(b"joe@example.com").is_ok());
    env.set("QUERY_CACHE", "");
    let c = Config::load(&env).unwrap();
    let q = Query::for_client(&env, &c);
    assert_eq!(
        q.user_status(b"joe@example.com").unwrap(),
        UserStatus::Active
    );
    d.signal(Signal::SIGUSR1);
    d.wait_for(
        |l| l.starts_with("User:Relay:Password:Limit:Alias:Host:Domain 1 "),
        1,
        "the daemon answered",
    );
    assert!(d.stop().success());
    // Daemon gone: an error, never "absent".
    assert!(matches!(
        q.user_status(b"joe@example.com"),
        Err(QueryError::Remote(_))
    ));
}

#[test]
fn client_skips_a_dead_instance() {
    let site = Site::new();
    populate(&site);
    let d = Daemon::start(&site, &["-i", "2"], &[]);
    // infifo.3 exists but nobody reads it, like a crashed C instance.
    testkit::fifo::mkfifo(&d.fifo(3), 0o660);
    let q = remote(&site, &d);
    for _ in 0..40 {
        assert_eq!(
            q.user_status(b"joe@example.com").unwrap(),
            UserStatus::Active
        );
    }
    // No reply FIFO left behind by the client.
    assert_eq!(
        crate::daemon::reply_fifos(&d.replydir),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(d.stop().success());
}

#[test]
fn password_change_seen_after_flush_and_after_hup() {
    let site = Site::new();
    populate(&site);
    let d = Daemon::start(
        &site,
        &["-i", "2"],
        &[("USE_BTREE", "1"), ("INLOOKUP_CACHE_TTL", "3600")],
    );
    let q = remote(&site, &d);
    let pw = |q: &Query| q.password(b"joe@example.com").unwrap().unwrap().passwd;
    assert_eq!(pw(&q), b"$5$abc$def");
    site.sql("UPDATE indimail SET pw_passwd = 'second' WHERE pw_name = 'joe'");
    assert_eq!(pw(&q), b"$5$abc$def", "cached");
    let c = Config::load(&client_env(&site, &d)).unwrap();
    // Flush by the address as a client types it; every entry of joe goes.
    q.user_status(b"joe@example.com").unwrap();
    let n = client::flush(&c.fifo, c.timeouts, b"JOE@example.com").unwrap();
    assert_eq!(n, 2, "the password and the user status entries");
    assert_eq!(pw(&q), b"second");
    // Other users keep their entries.
    q.password(b"ann@example.com").unwrap();
    site.sql("UPDATE indimail SET pw_passwd = 'third' WHERE pw_name IN ('joe', 'ann')");
    assert_eq!(
        client::flush(&c.fifo, c.timeouts, b"joe@example.com").unwrap(),
        1
    );
    assert_eq!(pw(&q), b"third");
    assert_eq!(
        q.password(b"ann@example.com").unwrap().unwrap().passwd,
        b"y",
        "still cached"
    );
    // HUP empties the cache.
    site.sql("UPDATE indimail SET pw_passwd = 'fourth' WHERE pw_name = 'joe'");
    d.signal(Signal::SIGHUP);
    d.wait_for(|l| l.contains("cache flushed"), 1, "flush on HUP");
    assert_eq!(pw(&q), b"fourth");
    assert_eq!(
        q.password(b"ann@example.com").unwrap().unwrap().passwd,
        b"third"
    );
    assert!(d.stop().success());
}

#[test]
fn precache_of_active_users() {
    let site = Site::new();
    populate(&site);
    site.sql(
        "INSERT INTO lastauth (user, domain, service, remote_ip, quota, gecos, timestamp) VALUES \
         ('joe', 'example.com', 'imap', '10.0.0.1', 0, 'x', NOW()), \
         ('joe', 'example.com', 'pop3', '10.0.0.1', 0, 'x', NOW() - INTERVAL 1 HOUR), \
         ('ann', 'example.com', 'pop3', '10.0.0.1', 0, 'x', NOW() - INTERVAL 2 DAY), \
         ('full', 'example.com', 'smtp', '10.0.0.1', 0, 'x', NOW())",
    );
    let d = Daemon::start(
        &site,
        &["-i", "2", "-c", "86400", "-v"],
        &[("USE_BTREE", "1"), ("DOMAIN_LIMITS", "1")],
    );
    d.wait_for(|l| l == "cached 1 records", 1, "pre-cache");
    let q = remote(&site, &d);
    let pw = q.password(b"joe@example.com").unwrap().unwrap();
    // The domain-limit flags are on pre-cached entries too (joe's own row
    // disables nothing; the domain's disable IMAP and dial-up).
    assert_eq!(
        pw.gid,
        indilookup::db::gid::NO_IMAP | indilookup::db::gid::NO_DIALUP
    );
    d.wait_for(
        |l| l.ends_with(", cache hit"),
        1,
        "a cache hit for the pre-cached user",
    );
    d.signal(Signal::SIGUSR1);
    d.wait_for(
        |l| l.starts_with("Cache 'Password Query': hits 1, negative hits 0, misses 0"),
        1,
        "hit counted",
    );
    // After HUP the cache is emptied and filled again.
    d.signal(Signal::SIGHUP);
    d.wait_for(|l| l == "cached 1 records", 2, "pre-cache after HUP");
    assert!(d.stop().success());
}

#[test]
fn single_flight_is_one_sql_statement() {
    let own = OwnServer::start();
    let site = Site::on(&own.server);
    populate(&site);
    let d = Arc::new(Daemon::start(
        &site,
        &["-i", "2", "--workers", "8"],
        &[("USE_BTREE", "1")],
    ));
    let q = remote(&site, &d);
    // Warm up everything but the key under test (connections, statements).
    q.password(b"ann@example.com").unwrap();
    let before = own.status("Com_stmt_execute");
    // Hold the user table so that the concurrent misses overlap.
    let mut locker = own.server.connect(Some(&site.db)).unwrap();
    use mysql::prelude::Queryable;
    locker.query_drop("LOCK TABLES indimail WRITE").unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || q.password(b"joe@example.com").unwrap().unwrap().passwd)
        })
        .collect();
    // Wait until the 8 queries reached the daemon.
    d.signal(Signal::SIGUSR1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = d.lines();
        if lines
            .iter()
            .any(|l| l.starts_with("User:Relay:Password:Limit:Alias:Host:Domain 0 0 9 "))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queries never arrived:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
        d.signal(Signal::SIGUSR1);
    }
    std::thread::sleep(Duration::from_millis(200));
    locker.query_drop("UNLOCK TABLES").unwrap();
    for t in threads {
        assert_eq!(t.join().unwrap(), b"$5$abc$def");
    }
    let executed = own.status("Com_stmt_execute") - before;
    assert_eq!(
        executed, 1,
        "8 concurrent misses for one key: one SQL statement"
    );
    d.signal(Signal::SIGUSR1);
    d.wait_for(
        |l| l.starts_with("Cache 'Password Query': hits 0, negative hits 0, misses 2, joined 7"),
        1,
        "joins counted",
    );
}

#[test]
fn stale_answers_while_the_database_is_down() {
    let mut own = OwnServer::start();
    let site = Site::on(&own.server);
    populate(&site);
    let d = Daemon::start(
        &site,
        &["-i", "2"],
        &[
            ("USE_BTREE", "1"),
            ("INLOOKUP_CACHE_TTL", "1"),
            ("MYSQL_OPT_CONNECT_TIMEOUT", "2"),
        ],
    );
    let q = remote(&site, &d);
    assert_eq!(
        q.user_status(b"joe@example.com").unwrap(),
        UserStatus::Active
    );
    own.stop();
    std::thread::sleep(Duration::from_millis(1100));
    // Expired, database down: the stale answer.
    assert_eq!(
        q.user_status(b"joe@example.com").unwrap(),
        UserStatus::Active
    );
    // Nothing cached: -1, never "absent".
    assert!(matches!(
        q.user_status(b"nobody@example.com"),
        Err(QueryError::Server)
    ));
    assert!(matches!(
        q.ask(QueryType::Password, b"ann@example.com", b""),
        Err(QueryError::Server)
    ));
    own.resume();
    // Back within 2 seconds, without restarting the daemon.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match q.ask(QueryType::User, b"nobody@example.com", b"") {
            Ok(Reply::User(UserStatus::Absent)) => break,
            other => assert!(Instant::now() < deadline, "not back after 2 s: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    d.signal(Signal::SIGUSR1);
    d.wait_for(
        |l| l.starts_with("Cache 'User Query':") && l.contains("stale 1,"),
        1,
        "stale counted",
    );
    assert!(d.stop().success());
}

/// DOMAIN_LIMITS: the password answer carries the domain's flags OR-ed with the
/// user's own row's, so a per-user row (given for a quota or an expiry) never lifts
/// a restriction of the domain. Both rows, each alone and neither; through the
/// database directly, the daemon with and without its cache, and `-c` pre-caching.
#[test]
fn domain_limit_flags_are_the_domain_s_and_the_user_s() {
    use indilookup::db::gid;
    let site = Site::new();
    site.sql(
        "INSERT INTO vlimits (domain, disable_imap) VALUES ('lim.test', 1); \
         INSERT INTO vlimits (domain, disable_pop, disable_dialup, disable_webmail) \
           VALUES ('both@lim.test', 1, 1, 1), ('own@free.test', 1, 1, 1)",
    );
    site.control("rcpthosts", "lim.test\nfree.test\n");
    for (user, domain) in [
        ("both", "lim.test"),
        ("domonly", "lim.test"),
        ("own", "free.test"),
        ("none", "free.test"),
    ] {
        site.add_user("indimail", user, domain, "x", 0);
    }
    site.sql(
        "INSERT INTO lastauth (user, domain, service, remote_ip, quota, gecos, timestamp) VALUES \
         ('both', 'lim.test', 'imap', '10.0.0.1', 0, 'x', NOW()), \
         ('domonly', 'lim.test', 'imap', '10.0.0.1', 0, 'x', NOW()), \
         ('own', 'free.test', 'pop3', '10.0.0.1', 0, 'x', NOW()), \
         ('none', 'free.test', 'imap', '10.0.0.1', 0, 'x', NOW())",
    );
    let own = gid::NO_POP | gid::NO_DIALUP | gid::NO_WEBMAIL;
    let want = [
        ("both@lim.test", gid::NO_IMAP | own),
        ("domonly@lim.test", gid::NO_IMAP),
        ("own@free.test", own),
        ("none@free.test", 0),
    ];
    let check = |q: &Query, how: &str| {
        for (addr, flags) in want {
            let pw = q.password(addr.as_bytes()).unwrap().unwrap();
            assert_eq!(pw.gid, flags, "{addr} {how}");
        }
    };
    let mut c = site.config();
    c.lookup.domain_limits = true;
    check(
        &Query::new(Arc::new(Database::new(c.mysql, c.lookup, c.paths, 1))),
        "direct",
    );
    let env = [("DOMAIN_LIMITS", "1")];
    let d = Daemon::start(&site, &["-i", "1"], &env);
    check(&remote(&site, &d), "uncached daemon");
    assert!(d.stop().success());
    let env = [("DOMAIN_LIMITS", "1"), ("USE_BTREE", "1")];
    let d = Daemon::start(&site, &["-i", "1", "-c", "86400", "-v"], &env);
    d.wait_for(|l| l == "cached 4 records", 1, "pre-cache");
    let q = remote(&site, &d);
    check(&q, "pre-cached");
    d.wait_for(
        |l| l.ends_with(", cache hit"),
        4,
        "every answer from the pre-cache",
    );
    // Without DOMAIN_LIMITS: the stored gid alone.
    assert!(d.stop().success());
    let d = Daemon::start(&site, &["-i", "1"], &[]);
    let q = remote(&site, &d);
    for (addr, _) in want {
        assert_eq!(
            q.password(addr.as_bytes()).unwrap().unwrap().gid,
            0,
            "{addr}"
        );
    }
    assert!(d.stop().success());
}
