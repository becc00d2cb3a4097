//! TLS to the databases and read replicas, through the configuration as an
//! administrator writes it: the `ssl` field of host lines and `use_ssl` of
//! records, MYSQL_OPT_SSL_* variables, `control/replicas`; against real
//! mariadbd servers with certificates the test makes, and a real
//! primary → replica replication pair.

use std::time::{Duration, Instant};

use indilookup::config::{Config, Env};
use indilookup::db::Database;
use indilookup::protocol::QueryType;
use indilookup::query::Backend;
use testkit::c_client::{int, text};
use testkit::cluster::{Cluster, TcpOptions, TcpServer, DATABASE};
use testkit::daemon::Daemon;
use testkit::tls::TestCerts;

const USER: u8 = 1;
const HOST: u8 = 4;

/// Every §7 answer that needs a mailstore, over TLS that the servers
/// require: the cluster works end to end with `use_ssl 1` and `:ssl`.
#[test]
fn a_cluster_over_required_tls_answers_as_without() {
    let certs = TestCerts::new();
    let cluster = Cluster::builder().tls(&certs, true).start();
    let d = Daemon::start(&cluster, &["-i", "1"], &[]);
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "a"), int(0));
    assert_eq!(d.c_query(USER, "bob@dist.example", "", "b"), int(0));
    assert_eq!(d.c_query(USER, "carol@plain.example", "", "c"), int(3));
    assert_eq!(
        d.c_query(HOST, "bob@dist.example", "", "d"),
        text("dist.example:192.0.2.2:209")
    );
    // The connections really are TLS: the servers refuse any other.
    let plain = cluster
        .ms1()
        .tcp_conn("indimail", testkit::cluster::MS1_PASSWORD, Some(DATABASE));
    assert!(plain.is_err(), "ms1 accepted a plain-text login");
    assert!(d.stop().success());
}

/// A CA that did not sign the servers' certificates: every lookup that needs
/// a database is -1 (never a plain-text fallback), and the log says why.
/// With MYSQL_OPT_SSL_VERIFY_CERT=0 the same set-up works, with a warning at
/// start-up.
#[test]
fn a_wrong_ca_is_minus_one_unless_verification_is_off() {
    let certs = TestCerts::new();
    let cluster = Cluster::builder().tls(&certs, false).start();
    let other = certs.other_ca();
    let other = other.to_str().unwrap();
    let d = Daemon::start(&cluster, &["-i", "1"], &[("MYSQL_OPT_SSL_CA", other)]);
    assert_eq!(d.c_query(USER, "carol@plain.example", "", "a"), int(-1));
    d.wait_for(
        |l| l.contains("TLS") && l.contains("carol@plain.example"),
        1,
        "the TLS failure in the log",
    );
    assert!(d.stop().success());

    let d = Daemon::start(
        &cluster,
        &["-i", "1"],
        &[
            ("MYSQL_OPT_SSL_CA", other),
            ("MYSQL_OPT_SSL_VERIFY_CERT", "0"),
        ],
    );
    assert_eq!(d.c_query(USER, "carol@plain.example", "", "a"), int(3));
    assert!(
        d.lines()
            .iter()
            .any(|l| l.contains("MYSQL_OPT_SSL_VERIFY_CERT=0") && l.contains("not verified")),
        "{}",
        d.lines().join("\n")
    );
    assert!(d.stop().success());
}

/// The database error of a USER lookup on a single-database site whose
/// host line is `127.0.0.1:indimail:<pw>:<port>:ssl`, with `extra`
/// variables.
fn tls_error(server: &TcpServer, ca: &std::path::Path, extra: &[(&str, &str)]) -> String {
    server.sql(None, &format!("CREATE DATABASE IF NOT EXISTS {DATABASE}"));
    server.create_app_user("indimail", "127.0.0.1", "pw", DATABASE);
    let dir = tempfile::tempdir().unwrap();
    let mut pairs: Vec<(String, String)> = vec![
        ("CONTROLDIR".into(), dir.path().display().to_string()),
        ("SYSCONFDIR".into(), dir.path().display().to_string()),
        (
            "MYSQL_HOST".into(),
            format!("127.0.0.1:indimail:pw:{}:ssl", server.port()),
        ),
        ("MYSQL_OPT_SSL_CA".into(), ca.display().to_string()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::load(&Env::from_pairs(pairs)).unwrap();
    let db = Database::for_config(&config, 1, None);
    match db.ask(QueryType::User, b"joe@example.com", b"") {
        Err(e) => e.to_string(),
        Ok(r) => panic!("answered {r:?} without the TLS it was told to use"),
    }
}

/// An expired server certificate, and a server that offers no TLS at all:
/// clear errors, never a connection in plain text.
#[test]
fn an_expired_certificate_and_a_server_without_tls_are_clear_errors() {
    let certs = TestCerts::new();
    let expired = TcpServer::start(TcpOptions::default().with_tls(certs.expired_tls(), false));
    let e = tls_error(&expired, &certs.ca(), &[]);
    assert!(e.contains("expired"), "{e}");
    let plain = TcpServer::start(TcpOptions::default());
    let e = tls_error(&plain, &certs.ca(), &[]);
    assert!(e.contains("does not offer TLS"), "{e}");
    // MYSQL_OPT_SSL_ENFORCE asks for TLS on a line without `ssl` too.
    let line = format!("127.0.0.1:indimail:pw:{}", plain.port());
    let e = tls_error(
        &plain,
        &certs.ca(),
        &[("MYSQL_HOST", &line), ("MYSQL_OPT_SSL_ENFORCE", "1")],
    );
    assert!(e.contains("does not offer TLS"), "{e}");
}

/// The port of the server whose `answered by` line is the last in `lines`.
fn answered_by(d: &Daemon, after: usize) -> String {
    let lines = d.wait_for(
        |l| l.contains("answered by"),
        after + 1,
        "an answered-by line",
    );
    lines[after].clone()
}

/// A real replication pair (ms2 → its replica, named in control/replicas):
/// ms2 killed, its users are answered by the replica within the clients'
/// deadline; ms2 back, it answers again after the retry interval.
#[test]
fn a_replica_answers_while_its_primary_is_down() {
    let mut cluster = Cluster::builder().replica().start();
    let (ms2, replica) = (cluster.ms2().port(), cluster.replica().port());
    cluster.write_control(
        "replicas",
        &format!("127.0.0.1:{ms2} 127.0.0.1:{replica}\n"),
    );
    let d = Daemon::start(
        &cluster,
        &["-i", "1", "-v"],
        &[("MYSQL_RETRY_INTERVAL", "1")],
    );
    let mut seen = 0;
    assert_eq!(d.c_query(USER, "bob@dist.example", "", "a"), int(0));
    let by = answered_by(&d, seen);
    seen += 1;
    assert!(
        by.ends_with(&format!(":{ms2}/indimail")) || by.contains(&format!(":{ms2}")),
        "{by}"
    );

    cluster.ms2_mut().kill();
    let started = Instant::now();
    assert_eq!(d.c_query(USER, "bob@dist.example", "", "b"), int(0));
    let failover = started.elapsed();
    assert!(
        failover < Duration::from_secs(4),
        "failover took {failover:?}"
    );
    let by = answered_by(&d, seen);
    seen += 1;
    assert!(by.contains(&format!(":{replica}")), "{by}");
    assert_eq!(d.c_query(USER, "carol@plain.example", "", "c"), int(3));
    seen += 1;
    eprintln!("failover: first lookup after the kill took {failover:?}");

    cluster.ms2_mut().resume();
    cluster.replica().wait_replicated(cluster.ms2());
    // Within a few retry intervals the primary answers again.
    let back = Instant::now();
    loop {
        assert_eq!(d.c_query(USER, "bob@dist.example", "", "d"), int(0));
        let by = answered_by(&d, seen);
        seen += 1;
        if by.contains(&format!(":{ms2}")) {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "ms2 never used again: {by}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "recovery: primary used again {:?} after it was back",
        back.elapsed()
    );
    assert!(d.stop().success());
}

/// The MySQL option file (MYSQL_READ_DEFAULT_FILE, IndiMail's indimail.cnf)
/// as libmariadb reads it: the socket a `localhost` line leaves out comes
/// from it, from the `client` group and the named one.
#[test]
fn the_option_file_gives_the_socket_a_host_line_leaves_out() {
    let site = testkit::Site::new();
    site.add_user("indimail", "joe", "example.com", "x", 0);
    let server = testkit::harness::server();
    let cnf = site.dir.path().join("indimail.cnf");
    std::fs::write(
        &cnf,
        format!(
            "# as svctool writes it\n[client]\nport=3306\n[inlookup]\nsocket={}\n",
            server.socket.display()
        ),
    )
    .unwrap();
    let mut pairs: Vec<(String, String)> = site
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned()))
        .filter(|(k, _)| k != "MYSQL_HOST")
        .collect();
    pairs.push(("MYSQL_HOST".into(), format!("localhost:{}", server.user)));
    pairs.push(("MYSQL_READ_DEFAULT_FILE".into(), cnf.display().to_string()));
    pairs.push(("MYSQL_READ_DEFAULT_GROUP".into(), "inlookup".into()));
    let config = Config::load(&Env::from_pairs(pairs)).unwrap();
    assert_eq!(
        config.mysql.socket.as_deref(),
        Some(server.socket.as_path())
    );
    let db = Database::for_config(&config, 1, None);
    indilookup::db::store::clear_last_server();
    let reply = db.ask(QueryType::User, b"joe@example.com", b"").unwrap();
    assert_eq!(reply.encode().unwrap(), int(0));
    let by = indilookup::db::store::last_server().unwrap();
    assert!(by.ends_with(&server.socket.display().to_string()), "{by}");
}

/// TLS settings in the option file win over the variables, as in
/// libmariadb (the file is read when connecting, after the options): the
/// right CA in the file, a wrong one in MYSQL_OPT_SSL_CA, and the servers
/// requiring TLS: answered.
#[test]
fn the_option_file_s_ca_wins_over_the_variable() {
    let certs = TestCerts::new();
    let cluster = Cluster::builder().tls(&certs, true).start();
    let cnf = cluster.dir().join("indimail.cnf");
    std::fs::write(&cnf, format!("[client]\nssl-ca={}\n", certs.ca().display())).unwrap();
    let (cnf, other) = (
        cnf.display().to_string(),
        certs.other_ca().display().to_string(),
    );
    let d = Daemon::start(
        &cluster,
        &["-i", "1"],
        &[
            ("MYSQL_READ_DEFAULT_FILE", cnf.as_str()),
            ("MYSQL_OPT_SSL_CA", other.as_str()),
        ],
    );
    assert_eq!(d.c_query(USER, "carol@plain.example", "", "a"), int(3));
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "b"), int(0));
    assert!(d.stop().success());
}
