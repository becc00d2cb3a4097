//! The cluster fixtures themselves: servers on TCP ports, real replication,
//! TLS that is really required and verified, and the example cluster.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use testkit::c_client::int;
use testkit::cluster::{Cluster, TcpOptions, TcpServer};
use testkit::tls::TestCerts;
use testkit::Daemon;

/// Connection refused (nothing listens), as opposed to any other failure.
fn refused(port: u16) -> bool {
    matches!(
        std::net::TcpStream::connect(("127.0.0.1", port)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[test]
fn tcp_server_listens_stops_freezes_and_resumes_on_its_port() {
    let mut s = TcpServer::start(TcpOptions::default());
    s.sql(None, "CREATE DATABASE app");
    s.create_app_user("indimail", "127.0.0.1", "secret", "app");
    let port = s.port();

    let mut c = s.tcp_conn("indimail", "secret", Some("app")).unwrap();
    let (db, user): (String, String) = c
        .query_first("SELECT DATABASE(), CURRENT_USER()")
        .unwrap()
        .unwrap();
    assert_eq!((db.as_str(), user.as_str()), ("app", "indimail@127.0.0.1"));
    assert!(s.tcp_conn("indimail", "wrong", Some("app")).is_err());
    // Granted on its own database only.
    assert!(s.tcp_conn("indimail", "secret", Some("mysql")).is_err());

    s.stop();
    assert!(refused(port), "a stopped server's port refuses connections");
    s.resume();
    assert_eq!(s.port(), port);
    assert!(s.tcp_conn("indimail", "secret", Some("app")).is_ok());

    {
        let _frozen = s.freeze();
        let opts = mysql::OptsBuilder::new()
            .ip_or_hostname(Some("127.0.0.1"))
            .tcp_port(port)
            .user(Some("indimail"))
            .pass(Some("secret"))
            .tcp_connect_timeout(Some(Duration::from_millis(500)))
            .read_timeout(Some(Duration::from_millis(500)));
        let t = Instant::now();
        assert!(mysql::Conn::new(opts).is_err(), "a frozen server answers");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    assert!(s.tcp_conn("indimail", "secret", Some("app")).is_ok());

    s.kill();
    assert!(refused(port));
    s.resume();
    assert!(s.tcp_conn("indimail", "secret", Some("app")).is_ok());
}

#[test]
fn replication_carries_schema_rows_and_accounts_to_the_replica() {
    let mut primary = TcpServer::start(TcpOptions::primary());
    let replica = primary.start_replica(TcpOptions::replica());
    assert_ne!(primary.server_id(), replica.server_id());
    assert_eq!(replica.primary_port(), Some(primary.port()));

    // Only ever written on the primary.
    primary.sql(
        None,
        "CREATE DATABASE app; CREATE TABLE app.t (k int PRIMARY KEY, v char(10)); \
         INSERT INTO app.t VALUES (1, 'one'), (2, 'two')",
    );
    primary.create_app_user("indimail", "127.0.0.1", "secret", "app");
    replica.wait_replicated(&primary);
    let rows: Vec<(i32, String)> = replica.query(Some("app"), "SELECT k, v FROM t ORDER BY k");
    assert_eq!(rows, [(1, "one".into()), (2, "two".into())]);
    // The account came too, and the replica refuses its writes.
    let mut c = replica.tcp_conn("indimail", "secret", Some("app")).unwrap();
    assert!(c.query_drop("INSERT INTO t VALUES (3, 'three')").is_err());
    let slave_pos: String = replica
        .query_first(None, "SELECT @@gtid_slave_pos")
        .unwrap();
    let binlog_pos: String = primary
        .query_first(None, "SELECT @@gtid_binlog_pos")
        .unwrap();
    assert_eq!(slave_pos, binlog_pos);

    // The replica reconnects by itself after the primary was down.
    primary.kill();
    primary.resume();
    primary.sql(Some("app"), "UPDATE t SET v = 'uno' WHERE k = 1");
    replica.wait_replicated(&primary);
    let v: String = replica
        .query_first(Some("app"), "SELECT v FROM t WHERE k = 1")
        .unwrap();
    assert_eq!(v, "uno");
    assert!(
        replica.replication_status().starts_with("IO Yes"),
        "{}",
        replica.replication_status()
    );
}

/// Run `openssl s_client` against a MySQL port; true if the handshake and
/// the verification succeed.
fn tls_handshake(port: u16, ca: &std::path::Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-starttls", "mysql", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-CAfile")
        .arg(ca)
        .args(["-verify_return_error", "-verify_ip", "127.0.0.1"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A query over TLS with the mariadb client, verifying the server.
fn mariadb_tls(port: u16, ca: &std::path::Path) -> (bool, String) {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h",
            "127.0.0.1",
            "-u",
            "indimail",
            "-psecret",
        ])
        .arg(format!("-P{port}"))
        .arg(format!("--ssl-ca={}", ca.display()))
        .args([
            "--ssl-verify-server-cert",
            "-N",
            "-e",
            "SHOW SESSION STATUS LIKE 'Ssl_version'",
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn tls_is_required_and_verified_against_the_right_ca_only() {
    let certs = TestCerts::new();
    let s = TcpServer::start(TcpOptions::default().with_tls(certs.server_tls(), true));
    s.sql(None, "CREATE DATABASE app");
    s.create_app_user("indimail", "127.0.0.1", "secret", "app");

    // MariaDB refuses a plain-text login as it refuses a wrong password;
    // the same login over TLS succeeds below.
    let plain = s.tcp_conn("indimail", "secret", Some("app"));
    let err = plain.expect_err("a plain-text connection is refused");
    assert!(err.to_string().contains("Access denied"), "{err}");

    let (ok, text) = mariadb_tls(s.port(), &certs.ca());
    assert!(ok && text.contains("TLSv1."), "{text}");
    let (ok, text) = tls_handshake(s.port(), &certs.ca());
    assert!(ok, "{text}");
    let (ok, text) = tls_handshake(s.port(), &certs.other_ca());
    assert!(!ok, "the unrelated CA verified the server: {text}");
    let (ok, _) = mariadb_tls(s.port(), &certs.other_ca());
    assert!(!ok);

    // A replica of a TLS-only primary replicates over TLS.
    let primary = TcpServer::start(TcpOptions::primary().with_tls(certs.server_tls(), true));
    let replica = primary.start_replica(TcpOptions::replica());
    primary.sql(None, "CREATE DATABASE app");
    replica.wait_replicated(&primary);
    let dbs: Vec<String> = replica.query(None, "SHOW DATABASES LIKE 'app'");
    assert_eq!(dbs, ["app"]);

    let expired = TcpServer::start(TcpOptions::default().with_tls(certs.expired_tls(), true));
    let (ok, text) = tls_handshake(expired.port(), &certs.ca());
    assert!(!ok && text.contains("expired"), "{text}");
    assert!(fs::read(certs.client_cert()).is_ok() && fs::read(certs.client_key()).is_ok());
}

#[test]
fn example_cluster_has_its_rows_replica_and_control_files_and_runs_a_daemon() {
    let t = Instant::now();
    let cluster = Cluster::builder().replica().start();
    eprintln!(
        "Cluster::builder().replica().start() took {:?}",
        t.elapsed()
    );

    let ports = [
        cluster.central().port(),
        cluster.ms1().port(),
        cluster.ms2().port(),
        cluster.replica().port(),
    ];
    for (i, p) in ports.iter().enumerate() {
        assert!(!ports[..i].contains(p), "ports {ports:?}");
    }
    let count = |s: &TcpServer, pass: &str, table: &str| -> u64 {
        let mut c = s.tcp_conn("indimail", pass, Some("indimail")).unwrap();
        c.query_first(format!("SELECT COUNT(*) FROM {table}"))
            .unwrap()
            .unwrap()
    };
    assert_eq!(count(cluster.central(), "cpass", "hostcntrl"), 3);
    assert_eq!(count(cluster.central(), "cpass", "host_table"), 2);
    assert_eq!(count(cluster.central(), "cpass", "smtp_port"), 1);
    assert_eq!(count(cluster.central(), "cpass", "aliasdomain"), 0);
    assert_eq!(count(cluster.central(), "cpass", "dbinfo"), 0);
    assert_eq!(count(cluster.ms1(), "ms1pass", "indimail"), 1);
    assert_eq!(count(cluster.ms1(), "ms1pass", "relay"), 1);
    assert_eq!(count(cluster.ms2(), "ms2pass", "indimail"), 3);
    assert_eq!(count(cluster.ms2(), "ms2pass", "indibak"), 1);
    // Each password opens its own server only.
    assert!(cluster
        .ms1()
        .tcp_conn("indimail", "ms2pass", Some("indimail"))
        .is_err());
    // The replica: ms2's rows and account, by replication.
    assert_eq!(count(cluster.replica(), "ms2pass", "indimail"), 3);
    assert_eq!(count(cluster.replica(), "ms2pass", "vlimits"), 1);
    assert!(cluster.replica().replication_status().starts_with("IO Yes"));

    let ctl = cluster.control_dir();
    let read = |f: &str| fs::read_to_string(ctl.join(f)).unwrap();
    assert_eq!(
        read("host.cntrl"),
        format!("127.0.0.1:indimail:cpass:{}\n", ports[0])
    );
    assert_eq!(
        read("host.mysql"),
        format!("127.0.0.1:indimail:ms2pass:{}\n", ports[2])
    );
    assert_eq!(read("hostip"), "127.0.0.1\n");
    let mcd = read("mcdinfo");
    assert!(mcd.starts_with("domain   dist.example 1\nserver   127.0.0.1\nmdahost  192.0.2.1\n"));
    assert!(mcd.contains(&format!("port     {}\n", ports[1])));
    assert_eq!(mcd.matches("\nuse_ssl  0\n").count(), 3);
    assert!(mcd.contains("\n\ndomain   plain.example 0\n"));
    assert_eq!(fs::read_dir(cluster.assign_dir()).unwrap().count(), 0);
    let env = cluster.env_pairs();
    assert!(env.contains(&("REAL_DOMAINS".into(), "dist.example:plain.example".into())));
    assert!(env.contains(&("RELAY_CLEAR_MINUTES".into(), "30".into())));

    // A daemon on the cluster: carol lives on ms2, which is host.mysql and
    // her domain's only record, so any daemon finds her (gid 16 → 3).
    let d = Daemon::start(&cluster, &[], &[]);
    assert_eq!(d.c_query(1, "carol@plain.example", "", "a"), int(3));
}
