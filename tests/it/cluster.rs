//! Clustered sites (spec cluster.md §7): the three-server example — a central
//! database and two mailstores, each its own mariadbd on a loopback port —
//! answered by the daemon and by the direct backend, byte for byte; the
//! outages of §7.6; routes cached and flushed; configuration errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indilookup::config::Config;
use indilookup::db::Database;
use indilookup::protocol::{QueryType, VLimits};
use indilookup::query::{Backend, Query};
use testkit::c_client::{int, text};
use testkit::cluster::Cluster;
use testkit::daemon::Daemon;

const USER: u8 = 1;
const RELAY: u8 = 2;
const PWD: u8 = 3;
const HOST: u8 = 4;
const ALIAS: u8 = 5;
const LIMIT: u8 = 6;
const DOMAIN: u8 = 7;

fn pwstruct(s: &str) -> Vec<u8> {
    text(&format!("PWSTRUCT={s}"))
}

/// The rows of spec §7.5 whose answers are the same in C and here: request,
/// expected bytes.
fn table_7_5() -> Vec<(u8, &'static str, &'static str, Vec<u8>)> {
    vec![
        (USER, "alice@dist.example", "", int(0)),
        (USER, "bob@dist.example", "", int(0)),
        (USER, "sales@dist.example", "", int(4)),
        (USER, "eve@dist.example", "", int(1)),
        (USER, "ghost@dist.example", "", int(1)),
        (USER, "carol@plain.example", "", int(3)),
        (USER, "dave@plain.example", "", int(2)),
        (USER, "nobody@plain.example", "", int(1)),
        (HOST, "alice@dist.example", "", text("dist.example:192.0.2.1:25")),
        (HOST, "bob@dist.example", "", text("dist.example:192.0.2.2:209")),
        (HOST, "sales@dist.example", "", text("dist.example:192.0.2.1:25")),
        (HOST, "eve@dist.example", "", int(0)),
        (HOST, "nobody@plain.example", "", int(0)),
        (HOST, "carol@plain.example", "", text("plain.example:192.0.2.2:25")),
        (HOST, "dave@plain.example", "", text("plain.example:192.0.2.2:25")),
        (
            PWD,
            "alice@dist.example",
            "",
            pwstruct(
                "alice@dist.example:$5$s1$alicehash:1:0:Alice:/home/mail/dist.example/alice:NOQUOTA:0",
            ),
        ),
        (
            PWD,
            "carol@plain.example",
            "",
            pwstruct(
                "carol@plain.example:$5$s4$carolhash:1:16:Carol:/home/mail/plain.example/carol:5000000:0",
            ),
        ),
        (
            PWD,
            "dave@plain.example",
            "",
            pwstruct(
                "dave@plain.example:$5$s5$davehash:1:0:Dave:/home/mail/plain.example/dave:NOQUOTA:1",
            ),
        ),
        (PWD, "eve@dist.example", "", pwstruct("No such user eve@dist.example")),
        (RELAY, "alice@dist.example", "10.1.1.1", int(1)),
        (RELAY, "alice@dist.example", "10.1.1.2", int(0)),
        (RELAY, "bob@dist.example", "10.1.1.1", int(0)),
        (ALIAS, "sales@dist.example", "", text("alice@dist.example\n")),
        (ALIAS, "alice@dist.example", "", text("")),
        (ALIAS, "eve@dist.example", "", text("")),
        (LIMIT, "eve@dist.example", "", int(0)),
        (DOMAIN, "dist.example", "", text("dist.example")),
        (DOMAIN, "other.example", "", text("other.example")),
    ]
}

/// A LIMIT answer: the 128-byte struct after its length.
fn limits(reply: &[u8]) -> VLimits {
    assert_eq!(&reply[..4], &int(128)[..], "{reply:?}");
    VLimits::from_bytes(&reply[4..]).unwrap()
}

fn check_limits(ask: impl Fn(u8, &str, &str) -> Vec<u8>) {
    // carol's mailstore (ms2) has plain.example's row.
    let l = limits(&ask(LIMIT, "carol@plain.example", ""));
    assert_eq!((l.limit_type, l.disable_imap), (1, 1));
    // ms1 has no vlimits row: the defaults (limit_type never stale: 0).
    let l = limits(&ask(LIMIT, "alice@dist.example", ""));
    assert_eq!(l, VLimits::default());
    // A bare domain: its first record's database (ms2), whatever came before.
    let l = limits(&ask(LIMIT, "plain.example", ""));
    assert_eq!((l.limit_type, l.disable_imap), (1, 1));
}

/// Every §7.5 row through the daemon, as a C client asks it (twice: from the
/// database, then from the cache).
#[test]
fn the_example_cluster_answers_every_row_byte_for_byte() {
    let cluster = Cluster::start();
    let d = Daemon::start(&cluster, &["-i", "1"], &[("USE_BTREE", "1")]);
    for round in 0..2 {
        for (i, (q, email, ip, want)) in table_7_5().into_iter().enumerate() {
            let got = d.c_query(q, email, ip, &format!("r{round}.{i}"));
            assert_eq!(got, want, "round {round}: query {q} {email} {ip}");
        }
        check_limits(|q, e, ip| d.c_query(q, e, ip, &format!("l{round}")));
    }
    assert!(d.stop().success());
}

/// The same rows through the direct backend (inquerytest --direct, vchkpass
/// and authindi without QUERY_CACHE): the same routing, the same answers.
#[test]
fn the_direct_backend_routes_the_same_way() {
    let cluster = Cluster::start();
    let config = Config::load(cluster.env()).unwrap();
    let db = Arc::new(Database::for_config(&config, 1, None));
    assert!(db.is_clustered());
    let ask = |q: u8, email: &str, ip: &str| -> Vec<u8> {
        let qtype = QueryType::from_u8(q).unwrap();
        let reply = db.ask(qtype, email.as_bytes(), ip.as_bytes()).unwrap();
        reply.encode().unwrap()
    };
    for (q, email, ip, want) in table_7_5() {
        assert_eq!(ask(q, email, ip), want, "query {q} {email} {ip}");
    }
    check_limits(ask);
    // Which server answered is known to the direct backend.
    let query = Query::new(db.clone());
    indilookup::db::store::clear_last_server();
    query.user_status(b"bob@dist.example").unwrap();
    let server = indilookup::db::store::last_server().unwrap();
    assert!(
        server.ends_with(&format!(":{}", cluster.ms2().port())),
        "{server}"
    );
}

/// Spec §7.5's variant: a `'*'` row routes every unknown name of the domain.
#[test]
fn a_domain_default_row_routes_unknown_names() {
    let cluster = Cluster::start();
    cluster.central().sql(
        Some("indimail"),
        "INSERT INTO hostcntrl (pw_name,pw_domain,pw_passwd,host) VALUES ('*','dist.example','x','ms2')",
    );
    let d = Daemon::start(&cluster, &["-i", "1"], &[]);
    let ask = |q, e: &str| d.c_query(q, e, "", e);
    assert_eq!(
        ask(HOST, "eve@dist.example"),
        text("dist.example:192.0.2.2:209")
    );
    assert_eq!(
        ask(HOST, "ghost@dist.example"),
        text("dist.example:192.0.2.2:209")
    );
    assert_eq!(ask(USER, "eve@dist.example"), int(0));
    assert_eq!(ask(USER, "ghost@dist.example"), int(1));
    assert!(d.stop().success());
}

/// Where this implementation answers otherwise than C, on purpose (see
/// inlookup(8), CLUSTERED SITES): addresses are lower-cased, so the domain
/// as typed is the record's domain too.
#[test]
fn a_domain_typed_in_capitals_is_the_same_domain() {
    let cluster = Cluster::start();
    let d = Daemon::start(&cluster, &["-i", "1"], &[]);
    // C: 00 00 00 00 (record match is case-sensitive). The reply echoes the
    // domain as typed, as every HOST answer does.
    assert_eq!(
        d.c_query(HOST, "carol@PLAIN.example", "", "a"),
        text("PLAIN.example:192.0.2.2:25")
    );
    assert_eq!(d.c_query(USER, "Alice@Dist.Example", "", "b"), int(0));
    assert!(d.stop().success());
}

/// Ask until the answer is `want` (a database that was down is tried again
/// within its retry interval); fails after 10 s.
fn answered_again(d: &Daemon, q: u8, email: &str, want: Vec<u8>) {
    let started = Instant::now();
    for n in 0.. {
        if d.c_query(q, email, "", &format!("again{n}")) == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{email}: never answered again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// §7.6: a mailstore down costs its own users -1 (never "absent", never a
/// stall), while the central database alone still answers their HOST, and
/// the other mailstore's users are answered as before.
#[test]
fn a_mailstore_down_is_minus_one_for_its_users_only() {
    let mut cluster = Cluster::start();
    let d = Daemon::start(&cluster, &["-i", "1"], &[("MYSQL_RETRY_INTERVAL", "1")]);
    assert_eq!(d.c_query(USER, "bob@dist.example", "", "a"), int(0));
    cluster.ms2_mut().stop();
    let started = Instant::now();
    assert_eq!(d.c_query(USER, "bob@dist.example", "", "b"), int(-1));
    assert_eq!(
        d.c_query(RELAY, "bob@dist.example", "10.1.1.1", "c"),
        int(-1)
    );
    // C: 00 00 00 00 (a count of 0); a database error is never an answer.
    assert_eq!(d.c_query(PWD, "bob@dist.example", "", "d"), int(-1));
    assert_eq!(d.c_query(USER, "carol@plain.example", "", "e"), int(-1));
    // C: 0 or -1 depending on the previous request; always -1 here.
    assert_eq!(d.c_query(HOST, "carol@plain.example", "", "f"), int(-1));
    assert_eq!(
        d.c_query(HOST, "bob@dist.example", "", "g"),
        text("dist.example:192.0.2.2:209")
    );
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "h"), int(0));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // Back: answered again, without a HUP (at the latest after the retry
    // interval, 1 s here, once the server had failed too often in a row).
    cluster.ms2_mut().resume();
    answered_again(&d, USER, "bob@dist.example", int(0));
    assert!(d.stop().success());
}

/// §7.6, central down: C gives no answer to anything. Here users of
/// distributed domains whose route is not cached get -1, cached routes keep
/// working, and non-distributed domains need no central database at all.
#[test]
fn the_central_database_down_spares_what_needs_no_route() {
    let mut cluster = Cluster::start();
    let d = Daemon::start(
        &cluster,
        &["-i", "1"],
        &[("USE_BTREE", "1"), ("MYSQL_RETRY_INTERVAL", "1")],
    );
    // alice's route is cached by this answer (USER answers are too, so ask
    // another query type for her later).
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "a"), int(0));
    cluster.central_mut().stop();
    assert_eq!(d.c_query(USER, "bob@dist.example", "", "b"), int(-1));
    assert_eq!(d.c_query(HOST, "bob@dist.example", "", "c"), int(-1));
    assert_eq!(
        d.c_query(RELAY, "alice@dist.example", "10.1.1.1", "d"),
        int(1)
    );
    assert_eq!(d.c_query(USER, "carol@plain.example", "", "e"), int(3));
    assert_eq!(
        d.c_query(DOMAIN, "dist.example", "", "f"),
        text("dist.example")
    );
    cluster.central_mut().resume();
    answered_again(&d, USER, "bob@dist.example", int(0));
    assert!(d.stop().success());
}

/// §7.6: a hostid that host_table does not list is an error (-1), for HOST
/// and for the lookups it routes.
#[test]
fn a_mailstore_missing_from_host_table_is_an_error() {
    let cluster = Cluster::start();
    cluster.central().sql(
        Some("indimail"),
        "DELETE FROM host_table WHERE host = 'ms2'",
    );
    let d = Daemon::start(&cluster, &["-i", "1"], &[]);
    assert_eq!(d.c_query(HOST, "bob@dist.example", "", "a"), int(-1));
    assert_eq!(d.c_query(USER, "bob@dist.example", "", "b"), int(-1));
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "c"), int(0));
    assert!(d.stop().success());
}

/// §7.6: host_table and mcdinfo disagree about ms2's mail host. HOST still
/// answers from the central data; ms2's users are unknown, as in C — but the
/// daemon says why in its log.
#[test]
fn a_mail_host_no_record_names_is_unknown_and_logged() {
    let cluster = Cluster::start();
    cluster.write_mcdinfo(&cluster.mcdinfo().replacen("192.0.2.2", "192.0.2.22", 1));
    let d = Daemon::start(&cluster, &["-i", "1"], &[]);
    assert_eq!(
        d.c_query(HOST, "bob@dist.example", "", "a"),
        text("dist.example:192.0.2.2:209")
    );
    assert_eq!(d.c_query(USER, "bob@dist.example", "", "b"), int(1));
    assert_eq!(
        d.c_query(PWD, "bob@dist.example", "", "c"),
        pwstruct("No such user bob@dist.example")
    );
    d.wait_for(
        |l| l.contains("bob@dist.example") && l.contains("192.0.2.2") && l.contains("mdahost"),
        1,
        "the warning about the mail host",
    );
    assert!(d.stop().success());
}

/// A user moved to another mailstore is found there after a flush of that
/// user (its route goes with its answers), and after HUP.
#[test]
fn a_moved_user_is_found_after_flush_and_hup() {
    let cluster = Cluster::start();
    let d = Daemon::start(&cluster, &["-i", "1"], &[("USE_BTREE", "1")]);
    assert_eq!(
        d.c_query(HOST, "alice@dist.example", "", "a"),
        text("dist.example:192.0.2.1:25")
    );
    assert_eq!(
        d.c_query(RELAY, "alice@dist.example", "10.1.1.1", "b"),
        int(1)
    );
    // Move alice to ms2 (her row goes with her; ms2 has no relay row).
    cluster.ms2().sql(
        Some("indimail"),
        "INSERT INTO indimail (pw_name,pw_domain,pw_passwd,pw_uid,pw_gid,pw_gecos,pw_dir,pw_shell) \
         VALUES ('alice','dist.example','$5$s1$alicehash',1,0,'Alice','/home/mail/dist.example/alice','NOQUOTA')",
    );
    cluster.central().sql(
        Some("indimail"),
        "UPDATE hostcntrl SET host = 'ms2' WHERE pw_name = 'alice'",
    );
    // Cached: still ms1.
    assert_eq!(
        d.c_query(HOST, "alice@dist.example", "", "c"),
        text("dist.example:192.0.2.1:25")
    );
    let flushed = testkit::c_client::c_query_raw(
        &d.fifodir,
        &d.replydir.join("flush"),
        &indilookup::protocol::FlushRequest {
            name: b"alice@dist.example".to_vec(),
            reply_path: d
                .replydir
                .join("flush")
                .as_os_str()
                .as_encoded_bytes()
                .to_vec(),
        }
        .encode()
        .unwrap(),
    );
    assert_ne!(flushed, int(0), "the flush removed her answers and route");
    assert_eq!(
        d.c_query(HOST, "alice@dist.example", "", "d"),
        text("dist.example:192.0.2.2:209")
    );
    assert_eq!(
        d.c_query(RELAY, "alice@dist.example", "10.1.1.1", "e"),
        int(0)
    );
    // And back, seen after HUP.
    cluster.central().sql(
        Some("indimail"),
        "UPDATE hostcntrl SET host = 'ms1' WHERE pw_name = 'alice'",
    );
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for(|l| l.contains("Reconfiguring"), 1, "the HUP");
    assert_eq!(
        d.c_query(RELAY, "alice@dist.example", "10.1.1.1", "f"),
        int(1)
    );
    assert!(d.stop().success());
}

/// With control/host.master, a dbinfo table on the central database that is
/// newer than mcdinfo is the definition (C's sync, read only); an older one
/// is not.
#[test]
fn a_newer_dbinfo_table_wins_over_the_file_with_host_master() {
    let cluster = Cluster::start();
    cluster.write_control("host.master", "127.0.0.1\n");
    let file = cluster.control_dir().join("mcdinfo");
    let file = file.to_str().unwrap();
    let row = |mdahost: &str, port: u16, pass: &str| {
        format!(
            "('{file}','dist.example',1,'127.0.0.1','{mdahost}',{port},0,'indimail','indimail','{pass}',NOW() + INTERVAL 1 HOUR)"
        )
    };
    cluster.central().sql(
        Some("indimail"),
        &format!(
            "INSERT INTO dbinfo (filename,domain,distributed,server,mdahost,port,use_ssl,dbname,user,passwd,timestamp) VALUES {}, {}",
            row("192.0.2.1", cluster.ms1().port(), testkit::cluster::MS1_PASSWORD),
            // ms2 under another mail host than host_table's: its users are unknown.
            row("192.0.2.22", cluster.ms2().port(), testkit::cluster::MS2_PASSWORD),
        ),
    );
    let d = Daemon::start(&cluster, &["-i", "1"], &[]);
    d.wait_for(
        |l| l.contains("dbinfo table is newer"),
        1,
        "the dbinfo line",
    );
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "a"), int(0));
    assert_eq!(d.c_query(USER, "bob@dist.example", "", "b"), int(1));
    // The table has no plain.example: only its records count (no local ones).
    assert_eq!(d.c_query(USER, "carol@plain.example", "", "c"), int(1));
    // Older than the file: the file's records again (after HUP).
    cluster.central().sql(
        Some("indimail"),
        "UPDATE dbinfo SET timestamp = '2001-01-01 00:00:00'",
    );
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for(|l| l.contains("Reconfiguring"), 1, "the HUP");
    answered_again(&d, USER, "bob@dist.example", int(0));
    assert_eq!(d.c_query(USER, "carol@plain.example", "", "e"), int(3));
    assert!(d.stop().success());
}
