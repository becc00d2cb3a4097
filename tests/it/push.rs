//! Push invalidation end to end: a daemon with a long cache lifetime on a
//! private mariadbd with a ROW binlog; changes made by plain SQL are seen by
//! the next cached query, without HUP or flush.

use std::time::{Duration, Instant};

use testkit::c_client::{int, text};
use testkit::cluster::{TcpOptions, TcpServer};
use testkit::daemon::{stat, Daemon};
use testkit::Site;

const USER: u8 = 1;
const PWD: u8 = 3;
const ALIAS: u8 = 5;
const LIMIT: u8 = 6;
const DOMAIN: u8 = 7;

/// A site on `server` with joe, an alias, limits; its daemon caches for an
/// hour and follows the binlog.
fn site_and_daemon(server: &TcpServer, extra: &[(&str, &str)]) -> (Site, Daemon) {
    let site = Site::on(server.server());
    site.add_user("indimail", "joe", "example.com", "$5$a$old", 0);
    site.add_user("indimail", "ann", "example.com", "$5$a$ann", 0);
    site.sql(
        "INSERT INTO valias (alias, domain, valias_line) VALUES ('sales', 'example.com', '&ann@example.com')",
    );
    site.sql("INSERT INTO vlimits (domain, maxpopaccounts) VALUES ('example.com', 100)");
    site.control("rcpthosts", "example.com\n");
    let mut env = vec![
        ("USE_BTREE", "1"),
        ("INLOOKUP_CACHE_TTL", "3600"),
        ("INLOOKUP_CACHE_NEGATIVE_TTL", "3600"),
        ("INLOOKUP_BINLOG", "1"),
    ];
    env.extend_from_slice(extra);
    let d = Daemon::start(&site, &["-i", "1"], &env);
    d.wait_for(
        |l| l.contains("following the binlog of"),
        1,
        "the follower's start line",
    );
    (site, d)
}

/// The PWSTRUCT hash field of a PWD answer.
fn hash(reply: &[u8]) -> String {
    let s = String::from_utf8_lossy(&reply[4..]);
    s.split(':').nth(1).unwrap_or_default().to_string()
}

/// Ask until `ok(answer)`; the time it took. Fails after 5 s.
fn seen_within(d: &Daemon, q: u8, email: &str, ok: impl Fn(&[u8]) -> bool) -> Duration {
    let started = Instant::now();
    for n in 0.. {
        let got = d.c_query(q, email, "", &format!("w{n}"));
        if ok(&got) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{email}: change never seen: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    unreachable!()
}

/// 200 password changes by plain SQL, each seen by the next cached PWD
/// query: prints the delay from COMMIT to the first new answer.
#[test]
fn password_changes_are_seen_without_hup_or_flush() {
    let server = TcpServer::start(TcpOptions::primary());
    let (site, d) = site_and_daemon(&server, &[]);
    assert_eq!(
        hash(&d.c_query(PWD, "joe@example.com", "", "a")),
        "$5$a$old"
    );
    let mut delays = Vec::new();
    for i in 0..200 {
        let new = format!("$5$a$n{i}");
        site.sql(&format!(
            "UPDATE indimail SET pw_passwd = '{new}' WHERE pw_name = 'joe'"
        ));
        delays.push(seen_within(&d, PWD, "joe@example.com", |r| hash(r) == new));
        // ann's answer stays cached (one row drops one user's answers).
    }
    // The statistics say it is active, and what it did.
    let stats = d.stats_line("Push invalidation active");
    assert!(
        stats.starts_with("Push invalidation active, servers 1 of 1"),
        "{stats}"
    );
    assert!(stat(&stats, "row events") >= 200, "{stats}");
    assert!(stat(&stats, "answers dropped") >= 200, "{stats}");
    // inquerytest --json carries the same, from the status file the daemon
    // writes every second.
    let json = || -> serde_json::Value {
        let out = std::process::Command::new(testkit::process::indilookup_exe())
            .args(["inquerytest", "--json", "-q", "1", "joe@example.com"])
            .env_clear()
            .envs(site.env.iter())
            .env("INFIFODIR", &d.fifodir)
            .env("FIFOTMPDIR", &d.replydir)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let started = Instant::now();
    let line = loop {
        let line = json();
        if line["push"]["events"].as_u64() >= Some(200) {
            break line;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{line}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let push = &line["push"];
    assert_eq!(
        (push["active"].as_u64(), push["servers"].as_u64()),
        (Some(1), Some(1)),
        "{line}"
    );
    assert!(push["dropped"].as_u64().unwrap() >= 200, "{line}");
    assert!(push["lag_ms"].as_u64().is_some(), "{line}");
    delays.sort();
    let at = |p: f64| delays[((delays.len() as f64 - 1.0) * p) as usize];
    eprintln!(
        "commit to new answer over 200 changes: p50 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.99),
        delays[delays.len() - 1]
    );
    assert!(d.stop().success());
}

/// Every kind of change the issue names, each seen without HUP or flush.
#[test]
fn every_kind_of_change_is_seen() {
    let server = TcpServer::start(TcpOptions::primary());
    let (site, d) = site_and_daemon(&server, &[]);
    let ask = |q, e: &str| d.c_query(q, e, "", e);
    // Cache every answer first.
    assert_eq!(ask(USER, "joe@example.com"), int(0));
    assert_eq!(ask(USER, "new@example.com"), int(1));
    assert_eq!(ask(ALIAS, "sales@example.com"), text("&ann@example.com\n"));
    assert_eq!(ask(DOMAIN, "alias.example"), text("alias.example"));
    let limit = |r: &[u8]| indilookup::protocol::VLimits::from_bytes(&r[4..]).unwrap();
    assert_eq!(limit(&ask(LIMIT, "example.com")).maxpopaccounts, 100);

    // Moved to the inactive table.
    site.sql(
        "INSERT INTO indibak SELECT * FROM indimail WHERE pw_name = 'joe'; \
         DELETE FROM indimail WHERE pw_name = 'joe'",
    );
    seen_within(&d, USER, "joe@example.com", |r| r == int(2));
    // A new user.
    site.add_user("indimail", "new", "example.com", "x", 0);
    seen_within(&d, USER, "new@example.com", |r| r == int(0));
    // An alias line added.
    site.sql("INSERT INTO valias (alias, domain, valias_line) VALUES ('sales', 'example.com', '&new@example.com')");
    seen_within(&d, ALIAS, "sales@example.com", |r| {
        r == text("&ann@example.com\n&new@example.com\n")
    });
    // A domain limit changed.
    site.sql("UPDATE vlimits SET maxpopaccounts = 7 WHERE domain = 'example.com'");
    seen_within(&d, LIMIT, "example.com", |r| limit(r).maxpopaccounts == 7);
    // An alias domain added.
    site.sql("INSERT INTO aliasdomain (alias, domain) VALUES ('alias.example', 'example.com')");
    seen_within(&d, DOMAIN, "alias.example", |r| r == text("example.com"));
    // A user renamed: the old name absent, the new one there.
    assert_eq!(ask(USER, "ann@example.com"), int(0));
    assert_eq!(ask(USER, "anne@example.com"), int(1));
    site.sql("UPDATE indimail SET pw_name = 'anne' WHERE pw_name = 'ann'");
    seen_within(&d, USER, "ann@example.com", |r| r == int(1));
    seen_within(&d, USER, "anne@example.com", |r| r == int(0));
    // A user deleted.
    site.sql("DELETE FROM indimail WHERE pw_name = 'new'");
    seen_within(&d, USER, "new@example.com", |r| r == int(1));
    // A TRUNCATE cannot be told row by row: everything goes.
    assert_eq!(ask(USER, "anne@example.com"), int(0));
    site.sql("TRUNCATE TABLE indimail");
    seen_within(&d, USER, "anne@example.com", |r| r == int(1));
    assert!(d.stop().success());
}

/// A server without a binlog: one clear line, and answers live out their
/// lifetime as without push invalidation.
#[test]
fn without_a_binlog_the_cache_keeps_its_lifetimes() {
    let server = TcpServer::start(TcpOptions::default());
    let site = Site::on(server.server());
    site.add_user("indimail", "joe", "example.com", "$5$a$old", 0);
    let d = Daemon::start(
        &site,
        &["-i", "1"],
        &[
            ("USE_BTREE", "1"),
            ("INLOOKUP_CACHE_TTL", "3600"),
            ("INLOOKUP_BINLOG", "1"),
        ],
    );
    d.wait_for(
        |l| l.contains("log_bin") && l.contains("off"),
        1,
        "the binlog-off line",
    );
    assert_eq!(
        hash(&d.c_query(PWD, "joe@example.com", "", "a")),
        "$5$a$old"
    );
    site.sql("UPDATE indimail SET pw_passwd = '$5$a$new' WHERE pw_name = 'joe'");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        hash(&d.c_query(PWD, "joe@example.com", "", "b")),
        "$5$a$old"
    );
    assert!(d.stop().success());
}

/// The server restarted under the follower: everything cached before is
/// dropped (changes may have been missed), and changes after it are seen.
#[test]
fn a_server_restart_drops_everything_then_follows_again() {
    let mut server = TcpServer::start(TcpOptions::primary());
    let (site, d) = site_and_daemon(&server, &[]);
    assert_eq!(
        hash(&d.c_query(PWD, "joe@example.com", "", "a")),
        "$5$a$old"
    );
    server.stop();
    // Changed while the daemon could not see it.
    server.resume();
    site.sql("UPDATE indimail SET pw_passwd = '$5$a$offline' WHERE pw_name = 'joe'");
    seen_within(&d, PWD, "joe@example.com", |r| hash(r) == "$5$a$offline");
    site.sql("UPDATE indimail SET pw_passwd = '$5$a$after' WHERE pw_name = 'joe'");
    seen_within(&d, PWD, "joe@example.com", |r| hash(r) == "$5$a$after");
    assert!(d.stop().success());
}

/// A clustered site: one stream per database server. Here only ms2 has a
/// binlog (it has a replica): its users' changes are seen at once, the
/// servers without one are named in the statistics, and their answers keep
/// their lifetimes.
#[test]
fn a_cluster_follows_each_server_it_can() {
    let cluster = testkit::cluster::Cluster::builder().replica().start();
    // The replication grants, on the one server that can be followed.
    cluster.ms2().sql(
        None,
        "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'indimail'@'127.0.0.1'",
    );
    let d = Daemon::start(
        &cluster,
        &["-i", "1"],
        &[
            ("USE_BTREE", "1"),
            ("INLOOKUP_CACHE_TTL", "3600"),
            ("INLOOKUP_BINLOG", "1"),
        ],
    );
    d.wait_for(
        |l| l.contains("following the binlog of"),
        1,
        "the follower's start line",
    );
    let ask = |q, e: &str, tag: &str| d.c_query(q, e, "", tag);
    assert_eq!(ask(USER, "bob@dist.example", "a"), int(0));
    assert_eq!(ask(USER, "alice@dist.example", "b"), int(0));
    // bob leaves ms2 (his mailstore): seen without HUP.
    cluster.ms2().sql(
        Some("indimail"),
        "DELETE FROM indimail WHERE pw_name = 'bob'",
    );
    seen_within(&d, USER, "bob@dist.example", |r| r == int(1));
    // alice's mailstore (ms1) has no binlog: her answer lives on.
    cluster.ms1().sql(
        Some("indimail"),
        "DELETE FROM indimail WHERE pw_name = 'alice'",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ask(USER, "alice@dist.example", "c"), int(0));
    let stats = d.stats_line("Push invalidation partly active");
    assert!(
        stats.starts_with("Push invalidation partly active, servers 1 of 3"),
        "{stats}"
    );
    let off: Vec<String> = d
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("Push invalidation off for"))
        .collect();
    assert_eq!(off.len(), 2, "{off:?}");
    assert!(off.iter().all(|l| l.contains("log_bin")), "{off:?}");
    assert!(d.stop().success());
}

/// A burst of 100 000 row changes (one bulk UPDATE) while 16 clients ask:
/// once a change committed after the burst is seen, no answer is stale, and
/// the daemon's memory has not grown with the burst.
#[test]
fn a_burst_of_changes_leaves_no_stale_answer() {
    const USERS: usize = 100_000;
    let server = TcpServer::start(TcpOptions::primary());
    let site = Site::on(server.server());
    site.insert_rows(
        "indimail",
        "pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell",
        (0..USERS).map(|i| {
            format!("('u{i}', 'example.com', '$5$a$old', 1, 0, 'U', '/home/u{i}', 'NOQUOTA')")
        }),
    );
    site.add_user("indimail", "sentinel", "example.com", "$5$a$s0", 0);
    site.control("rcpthosts", "example.com\n");
    let d = Daemon::start(
        &site,
        &["-i", "4"],
        &[
            ("USE_BTREE", "1"),
            ("INLOOKUP_CACHE_TTL", "3600"),
            ("INLOOKUP_BINLOG", "1"),
        ],
    );
    d.wait_for(|l| l.contains("following the binlog of"), 1, "the follower");
    let d = std::sync::Arc::new(d);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Clients fill the cache with the old passwords, and keep asking.
    let clients: Vec<_> = (0..16)
        .map(|t| {
            let (d, stop) = (d.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut asked, mut failed) = (0u64, 0u64);
                let mut i = t * 7919;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i = (i * 31 + 17) % USERS;
                    let got = d.c_query(PWD, &format!("u{i}@example.com"), "", &format!("b{t}"));
                    // -1 (the database busy with the burst) is a temporary
                    // failure, never a wrong answer; anything else is a row.
                    if got == int(-1) {
                        failed += 1;
                    } else {
                        assert!(got.len() > 4, "u{i}: {got:?}");
                    }
                    asked += 1;
                }
                (asked, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    // The sentinel's old answer is cached: its new one shows only when the
    // follower has got past the burst.
    assert_eq!(
        hash(&d.c_query(PWD, "sentinel@example.com", "", "s")),
        "$5$a$s0"
    );
    let rss_before = testkit::process::rss_kib(d.pid());
    site.sql("UPDATE indimail SET pw_passwd = '$5$a$new' WHERE pw_name LIKE 'u%'");
    // Committed after the burst: once it is seen, so is the burst.
    site.sql("UPDATE indimail SET pw_passwd = '$5$a$s1' WHERE pw_name = 'sentinel'");
    let burst = Instant::now();
    loop {
        let got = d.c_query(PWD, "sentinel@example.com", "", "s");
        if got.len() > 4 && hash(&got) == "$5$a$s1" {
            break;
        }
        assert!(
            burst.elapsed() < Duration::from_secs(120),
            "the burst was never followed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let followed = burst.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (asked, failed) = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .fold((0, 0), |(a, f), (x, y)| (a + x, f + y));
    assert!(asked > 100, "the clients asked {asked} questions");
    for i in (0..USERS).step_by(997) {
        let got = d.c_query(PWD, &format!("u{i}@example.com"), "", "after");
        assert_eq!(hash(&got), "$5$a$new", "u{i} is stale after the burst");
    }
    let rss_after = testkit::process::rss_kib(d.pid());
    eprintln!(
        "burst: followed {followed:?} after its commit; {asked} questions meanwhile, {failed} of them -1; \
         daemon RSS {rss_before:?} KiB before, {rss_after:?} KiB after"
    );
    if let (Some(b), Some(a)) = (rss_before, rss_after) {
        assert!(a < b + 64 * 1024, "RSS grew from {b} to {a} KiB");
    }
}
