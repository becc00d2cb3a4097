//! The binlog follower against private mariadbd servers with a binary log:
//! row changes, the servers it cannot follow, gaps, DDL, a burst.

use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use indilookup::db::binlog::{default_server_id, FollowSettings, Follower};
use indilookup::db::change::{Change, Columns};
use indilookup::db::servers::ServerSpec;
use testkit::cluster::{TcpOptions, TcpServer};
use testkit::harness::schema_statements;

const DB: &str = "indimail";
const USER: &str = "indimail";
const PASSWORD: &str = "ssh-1.5-";

/// A server with the IndiMail schema and an application account with the
/// replication grants.
fn server(opts: TcpOptions) -> TcpServer {
    let s = TcpServer::start(opts);
    s.sql(None, &format!("CREATE DATABASE {DB}"));
    for stmt in schema_statements() {
        s.sql(Some(DB), &stmt);
    }
    s.create_app_user(USER, "127.0.0.1", PASSWORD, DB);
    s.sql(
        None,
        &format!("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{USER}'@'127.0.0.1'"),
    );
    s
}

fn spec(s: &TcpServer) -> ServerSpec {
    let t = Duration::from_secs(2);
    ServerSpec {
        host: "127.0.0.1".into(),
        port: s.port(),
        socket: None,
        user: USER.into(),
        password: PASSWORD.into(),
        database: DB.into(),
        tls: None,
        connect_timeout: t,
        read_timeout: t,
        write_timeout: t,
    }
}

fn settings(salt: &str) -> FollowSettings {
    FollowSettings {
        server_id: default_server_id(salt),
        user: None,
        password: None,
        heartbeat: Duration::from_secs(1),
    }
}

fn follow(s: &TcpServer, settings: FollowSettings) -> (Follower, Receiver<(Change, Instant)>) {
    let (tx, rx) = channel();
    let f = Follower::spawn(spec(s), settings, move |c| {
        let _ = tx.send((c, Instant::now()));
    });
    (f, rx)
}

fn next(rx: &Receiver<(Change, Instant)>, within: Duration) -> Change {
    rx.recv_timeout(within)
        .unwrap_or_else(|_| panic!("no change within {within:?}"))
        .0
}

/// The next change that is not a gap.
fn next_row(rx: &Receiver<(Change, Instant)>) -> Change {
    loop {
        match next(rx, Duration::from_secs(5)) {
            Change::Gap { .. } => continue,
            c => return c,
        }
    }
}

fn expect_gap(rx: &Receiver<(Change, Instant)>, within: Duration) -> String {
    match next(rx, within) {
        Change::Gap { reason } => reason,
        other => panic!("expected a gap, got {other:?}"),
    }
}

fn text(c: &Option<Columns>, col: &str) -> Option<String> {
    Change::text(c.as_ref().expect("row image"), col)
}

/// Wait until the follower streams (after its first gap).
fn started(f: &Follower, rx: &Receiver<(Change, Instant)>) {
    let reason = expect_gap(rx, Duration::from_secs(10));
    assert_eq!(reason, "connected");
    let end = Instant::now() + Duration::from_secs(5);
    while !f.status().active {
        assert!(Instant::now() < end, "not active: {:?}", f.status());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_off(f: &Follower) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let st = f.status();
        if !st.active && st.off_reason.as_deref() != Some("not connected yet") {
            if let Some(r) = st.off_reason {
                return r;
            }
        }
        assert!(Instant::now() < end, "not off: {st:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rows_of_the_indimail_tables_arrive_with_their_values() {
    let s = server(TcpOptions::primary());
    let (f, rx) = follow(&s, settings("rows"));
    started(&f, &rx);

    s.sql(
        Some(DB),
        "INSERT INTO indimail (pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir) \
         VALUES ('joe', 'example.com', '{SHA}x', 1, 2, 'Joe', NULL)",
    );
    let Change::Row {
        table,
        before,
        after,
    } = next_row(&rx)
    else {
        panic!()
    };
    assert_eq!(table, "indimail");
    assert!(before.is_none());
    assert_eq!(text(&after, "pw_name").as_deref(), Some("joe"));
    assert_eq!(text(&after, "pw_domain").as_deref(), Some("example.com"));
    assert_eq!(text(&after, "pw_gid").as_deref(), Some("2"));
    let image = after.unwrap();
    let dir = image.iter().find(|(n, _)| n == "pw_dir").unwrap();
    println!("timestamp column: {:?}", Change::text(&image, "timestamp"));
    assert_eq!(dir.1, None, "NULL is None");

    s.sql(
        Some(DB),
        "UPDATE indimail SET pw_name = 'joe2', pw_passwd = '{SHA}y' WHERE pw_name = 'joe'",
    );
    let Change::Row { before, after, .. } = next_row(&rx) else {
        panic!()
    };
    assert_eq!(text(&before, "pw_name").as_deref(), Some("joe"));
    assert_eq!(text(&before, "pw_passwd").as_deref(), Some("{SHA}x"));
    assert_eq!(text(&after, "pw_name").as_deref(), Some("joe2"));
    assert_eq!(text(&after, "pw_passwd").as_deref(), Some("{SHA}y"));

    s.sql(Some(DB), "DELETE FROM indimail WHERE pw_name = 'joe2'");
    let Change::Row { before, after, .. } = next_row(&rx) else {
        panic!()
    };
    assert_eq!(text(&before, "pw_name").as_deref(), Some("joe2"));
    assert!(after.is_none());

    s.sql(
        Some(DB),
        "INSERT INTO valias (alias, domain, valias_line) VALUES ('info', 'example.com', '&joe@example.com')",
    );
    let Change::Row { table, after, .. } = next_row(&rx) else {
        panic!()
    };
    assert_eq!(table, "valias");
    assert_eq!(text(&after, "alias").as_deref(), Some("info"));
    assert_eq!(
        text(&after, "valias_line").as_deref(),
        Some("&joe@example.com")
    );

    s.sql(
        Some(DB),
        "INSERT INTO vlimits (domain, maxpopaccounts, diskquota) \
         VALUES ('example.com', 10, 18446744073709551615)",
    );
    let Change::Row { table, after, .. } = next_row(&rx) else {
        panic!()
    };
    assert_eq!(table, "vlimits");
    assert_eq!(text(&after, "domain").as_deref(), Some("example.com"));
    assert_eq!(text(&after, "maxpopaccounts").as_deref(), Some("10"));
    assert_eq!(text(&after, "domain_expiry").as_deref(), Some("-1"));
    assert_eq!(
        text(&after, "diskquota").as_deref(),
        Some("18446744073709551615"),
        "BIGINT UNSIGNED in decimal"
    );
    s.sql(
        Some(DB),
        "UPDATE vlimits SET maxpopaccounts = 11 WHERE domain = 'example.com'",
    );
    let Change::Row { before, after, .. } = next_row(&rx) else {
        panic!()
    };
    assert_eq!(text(&before, "maxpopaccounts").as_deref(), Some("10"));
    assert_eq!(text(&after, "maxpopaccounts").as_deref(), Some("11"));

    // Another database's tables are not reported.
    s.sql(None, "CREATE DATABASE other; CREATE TABLE other.t (a int)");
    s.sql(None, "INSERT INTO other.t VALUES (1)");
    s.sql(Some(DB), "DELETE FROM vlimits");
    let Change::Row { table, .. } = next_row(&rx) else {
        panic!()
    };
    assert_eq!(table, "vlimits");

    let st = f.status();
    assert!(st.active && st.off_reason.is_none(), "{st:?}");
    assert!(st.events >= 7, "{st:?}");
    assert_eq!(st.gaps, 1);
    assert!(st.lag.unwrap() < Duration::from_secs(3), "{st:?}");
}

#[test]
fn servers_that_cannot_be_followed_are_told_once() {
    // No binary log.
    let plain = server(TcpOptions::default());
    let (f, rx) = follow(&plain, settings("off"));
    let why = wait_off(&f);
    assert!(
        why.contains("the binary log is off on") && why.contains("(log_bin)"),
        "{why}"
    );
    assert!(rx.try_recv().is_err(), "no gap: nothing was followed");
    drop(f);

    // STATEMENT format.
    let s = server(TcpOptions::primary());
    s.sql(None, "SET GLOBAL binlog_format = 'STATEMENT'");
    let (f, _rx) = follow(&s, settings("statement"));
    let why = wait_off(&f);
    assert!(
        why.contains("binlog_format is STATEMENT") && why.contains("needs ROW"),
        "{why}"
    );
    drop(f);
    s.sql(None, "SET GLOBAL binlog_format = 'ROW'");

    // No replication grants: an account of its own without them.
    s.sql(
        None,
        "CREATE USER 'nogrant'@'127.0.0.1' IDENTIFIED BY 'pw'; \
         GRANT SELECT ON indimail.* TO 'nogrant'@'127.0.0.1'",
    );
    let mut own = settings("nogrant");
    own.user = Some("nogrant".into());
    own.password = Some("pw".into());
    let (f, _rx) = follow(&s, own.clone());
    let why = wait_off(&f);
    println!("without grants: {why}");
    assert!(
        why.contains("REPLICATION SLAVE") && why.contains("BINLOG MONITOR"),
        "{why}"
    );
    assert!(!why.contains("pw'") && !why.contains(PASSWORD), "{why}");
    drop(f);

    // REPLICATION SLAVE alone is not enough (the position needs BINLOG MONITOR).
    s.sql(
        None,
        "GRANT REPLICATION SLAVE ON *.* TO 'nogrant'@'127.0.0.1'",
    );
    let (f, _rx) = follow(&s, own.clone());
    let why = wait_off(&f);
    assert!(why.contains("BINLOG MONITOR"), "{why}");
    drop(f);

    // BINLOG MONITOR alone is not enough either (the dump needs REPLICATION SLAVE).
    s.sql(
        None,
        "CREATE USER 'monitor'@'127.0.0.1' IDENTIFIED BY 'pw'; \
         GRANT BINLOG MONITOR ON *.* TO 'monitor'@'127.0.0.1'",
    );
    let mut monitor = settings("monitor");
    monitor.user = Some("monitor".into());
    monitor.password = Some("pw".into());
    let (f, _rx) = follow(&s, monitor.clone());
    let why = wait_off(&f);
    println!("BINLOG MONITOR alone: {why}");
    assert!(why.contains("REPLICATION SLAVE"), "{why}");
    drop(f);

    // A wrong password of its own account: off, the password not told.
    monitor.password = Some("wrong-secret".into());
    let (f, _rx) = follow(&s, monitor);
    let why = wait_off(&f);
    assert!(why.contains("INLOOKUP_BINLOG_USER"), "{why}");
    assert!(!why.contains("wrong-secret"), "{why}");
    drop(f);

    // The older names work as well: REPLICATION CLIENT is BINLOG MONITOR.
    s.sql(
        None,
        "CREATE USER 'oldnames'@'127.0.0.1' IDENTIFIED BY 'pw'; \
         GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'oldnames'@'127.0.0.1'",
    );
    let mut old = settings("oldnames");
    old.user = Some("oldnames".into());
    old.password = Some("pw".into());
    let (f, rx) = follow(&s, old);
    started(&f, &rx);
    s.sql(
        Some(DB),
        "INSERT INTO valias (alias, domain, valias_line) VALUES ('a', 'b.c', 'x')",
    );
    assert!(matches!(next_row(&rx), Change::Row { .. }));
    let grants: Vec<String> = s.query(None, "SHOW GRANTS FOR 'oldnames'@'127.0.0.1'");
    println!("REPLICATION CLIENT is stored as: {grants:?}");
}

#[test]
fn a_restart_or_a_crash_is_a_gap_and_rows_follow_again() {
    let mut s = server(TcpOptions::primary());
    let (f, rx) = follow(&s, settings("restart"));
    started(&f, &rx);

    s.stop();
    let why = expect_gap(&rx, Duration::from_secs(5));
    println!("stopped: {why}");
    assert!(!f.status().active);
    std::thread::sleep(Duration::from_millis(1500));
    s.resume();
    let why = expect_gap(&rx, Duration::from_secs(10));
    assert!(why.starts_with("reconnected after"), "{why}");
    s.sql(
        Some(DB),
        "INSERT INTO valias (alias, domain, valias_line) VALUES ('after', 'restart.com', 'x')",
    );
    let Change::Row { after, .. } = next_row(&rx) else {
        panic!()
    };
    assert_eq!(text(&after, "alias").as_deref(), Some("after"));

    s.kill();
    let why = expect_gap(&rx, Duration::from_secs(5));
    println!("killed: {why}");
    s.resume();
    let why = expect_gap(&rx, Duration::from_secs(15));
    assert!(why.starts_with("reconnected after"), "{why}");
    s.sql(
        Some(DB),
        "INSERT INTO valias (alias, domain, valias_line) VALUES ('after', 'crash.com', 'x')",
    );
    let Change::Row { after, .. } = next_row(&rx) else {
        panic!()
    };
    assert_eq!(text(&after, "domain").as_deref(), Some("crash.com"));
    assert!(f.status().gaps >= 5, "{:?}", f.status());
    assert!(f.status().active);

    // Dropping stops the thread promptly, also while it streams.
    let t = Instant::now();
    drop(f);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(rx.try_recv().is_err(), "stopping is no gap");
}

#[test]
fn a_frozen_server_is_a_gap_within_three_heartbeats() {
    let s = server(TcpOptions::primary());
    let (f, rx) = follow(&s, settings("frozen"));
    started(&f, &rx);
    // Heartbeats arrive while nothing changes: no gap in 4 quiet seconds,
    // and the lag stays under a heartbeat or two.
    assert!(rx.recv_timeout(Duration::from_secs(4)).is_err());
    let lag = f.status().lag.unwrap();
    assert!(lag < Duration::from_millis(2100), "{lag:?}");

    let frozen = s.freeze();
    let t = Instant::now();
    let why = expect_gap(&rx, Duration::from_secs(6));
    let after = t.elapsed();
    println!("frozen: gap after {after:?}: {why}");
    assert!(after <= Duration::from_millis(4500), "{after:?}");
    assert!(why.contains("heartbeat"), "{why}");
    drop(frozen);
    let why = expect_gap(&rx, Duration::from_secs(10));
    assert!(why.starts_with("reconnected after"), "{why}");
}

#[test]
fn truncate_and_alter_are_unmappable() {
    let s = server(TcpOptions::primary());
    let (f, rx) = follow(&s, settings("ddl"));
    started(&f, &rx);
    s.sql(Some(DB), "TRUNCATE TABLE valias");
    assert_eq!(
        next_row(&rx),
        Change::Unmappable {
            table: Some("valias".into())
        }
    );
    s.sql(None, "ALTER TABLE indimail.vlimits ADD COLUMN extra int");
    assert_eq!(
        next_row(&rx),
        Change::Unmappable {
            table: Some("vlimits".into())
        }
    );
    // The new column is known at once.
    s.sql(
        Some(DB),
        "INSERT INTO vlimits (domain, extra) VALUES ('x.com', 7)",
    );
    let Change::Row { after, .. } = next_row(&rx) else {
        panic!()
    };
    assert_eq!(text(&after, "extra").as_deref(), Some("7"));

    // A partial row image lacks the other columns, and a change of a key
    // column then cannot be mapped without them.
    s.sql(None, "SET GLOBAL binlog_row_image = 'MINIMAL'");
    let mut c = s.root_conn(Some(DB));
    use mysql::prelude::Queryable;
    c.query_drop("SET SESSION binlog_row_image = 'MINIMAL'")
        .unwrap();
    c.query_drop("UPDATE vlimits SET maxaliases = 3 WHERE domain = 'x.com'")
        .unwrap();
    assert_eq!(
        next_row(&rx),
        Change::Unmappable {
            table: Some("vlimits".into())
        }
    );
    s.sql(None, "SET GLOBAL binlog_row_image = 'FULL'");
    // BEGIN/COMMIT of other transactions are no DDL.
    s.sql(Some(DB), "BEGIN; DELETE FROM vlimits; COMMIT");
    assert!(matches!(next_row(&rx), Change::Row { .. }));
}

#[test]
fn a_burst_of_100000_rows_arrives_whole() {
    let s = server(TcpOptions::primary());
    s.sql(
        Some(DB),
        "INSERT INTO valias (alias, domain, valias_line) \
         SELECT CONCAT('a', seq), 'burst.com', 'x' FROM seq_1_to_100000",
    );
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1024);
    let f = Follower::spawn(spec(&s), settings("burst"), move |c| {
        if let Change::Row { .. } = c {
            let _ = tx.send(());
        }
    });
    let end = Instant::now() + Duration::from_secs(10);
    while !f.status().active {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    s.sql(Some(DB), "UPDATE valias SET valias_line = 'y'");
    let committed = t.elapsed();
    let mut n = 0;
    while n < 100_000 {
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("only {n} rows arrived"));
        n += 1;
    }
    println!(
        "burst: 100000 rows, UPDATE took {committed:?}, all arrived after {:?}; {:?}",
        t.elapsed(),
        f.status()
    );
}

#[test]
fn delay_from_commit_to_change() {
    let s = server(TcpOptions::primary());
    s.sql(
        Some(DB),
        "INSERT INTO indimail (pw_name, pw_domain, pw_passwd, pw_gecos) \
         VALUES ('joe', 'delay.com', 'p0', 'Joe')",
    );
    let (f, rx) = follow(&s, settings("delay"));
    started(&f, &rx);
    let mut conn = s.tcp_conn(USER, PASSWORD, Some(DB)).unwrap();
    use mysql::prelude::Queryable;
    let mut delays = Vec::new();
    let mut from_ok = Vec::new();
    for i in 1..=200 {
        let sent = Instant::now();
        conn.query_drop(format!(
            "UPDATE indimail SET pw_passwd = 'p{i}' WHERE pw_name = 'joe'"
        ))
        .unwrap();
        // Autocommit: the statement's return is its COMMIT.
        let committed = Instant::now();
        let (change, at) = rx.recv_timeout(Duration::from_secs(5)).expect("a change");
        let Change::Row { after, .. } = change else {
            panic!("{change:?}")
        };
        assert_eq!(text(&after, "pw_passwd"), Some(format!("p{i}")));
        delays.push(at.saturating_duration_since(sent));
        from_ok.push(at.saturating_duration_since(committed));
    }
    from_ok.sort();
    delays.sort();
    let p = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    println!(
        "statement sent to change over 200 updates: p50 {:?}, p99 {:?}, max {:?}; \
         after the OK: p50 {:?}, max {:?}",
        p(0.5),
        p(0.99),
        delays[delays.len() - 1],
        from_ok[from_ok.len() / 2],
        from_ok[from_ok.len() - 1]
    );
    assert!(p(0.99) < Duration::from_millis(500));
}

#[test]
fn a_rotation_is_followed_and_a_killed_dump_is_a_gap() {
    let s = server(TcpOptions::primary());
    let (f, rx) = follow(&s, settings("rotate"));
    started(&f, &rx);
    // A new binlog file: followed without a gap.
    s.sql(None, "FLUSH BINARY LOGS");
    s.sql(
        Some(DB),
        "INSERT INTO valias (alias, domain, valias_line) VALUES ('rot', 'x.com', 'x')",
    );
    let (c, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(matches!(c, Change::Row { .. }), "{c:?}");

    // The server ends the dump (KILL): a gap, then the stream again.
    let ids: Vec<u64> = s.query(
        None,
        "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
    );
    assert_eq!(ids.len(), 1, "{ids:?}");
    s.sql(None, &format!("KILL {}", ids[0]));
    let why = expect_gap(&rx, Duration::from_secs(5));
    println!("killed dump: {why}");
    let why = expect_gap(&rx, Duration::from_secs(5));
    assert!(why.starts_with("reconnected after"), "{why}");
    s.sql(Some(DB), "DELETE FROM valias");
    let (c, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(matches!(c, Change::Row { .. }), "{c:?}");
    assert_eq!(f.status().gaps, 3);
}
