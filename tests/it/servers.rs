//! One database on several servers (`db::servers`): reads fail over from a
//! dead or frozen primary to a replica within the timeouts and come back
//! to the primary once it answers again; writes never go to a replica; a
//! server with too many waiting lookups answers `Busy` at once; TLS is
//! required and verified, never dropped.
//!
//! The "replica" here is a second private server loaded with the same rows
//! (enough for the connection layer); the rows say which server answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indilookup::db::pool::connect_within_timeout;
use indilookup::db::servers::{last_server, ServerSettings, ServerSpec, Servers, TlsOptions};
use indilookup::db::DbError;
use mysql::prelude::Queryable;

use crate::harness::OwnServer;

const DB: &str = "servers_test";

/// A private server with database `DB` and one row naming it.
fn server_named(name: &str) -> OwnServer {
    let own = OwnServer::start();
    let mut c = own.server.connect(None).unwrap();
    // The rows must survive the server being killed.
    c.query_drop("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
        .unwrap();
    c.query_drop(format!("CREATE DATABASE {DB}")).unwrap();
    c.query_drop(format!("CREATE TABLE {DB}.t (name varchar(20))"))
        .unwrap();
    c.exec_drop(format!("INSERT INTO {DB}.t VALUES (?)"), (name,))
        .unwrap();
    own
}

fn spec(own: &OwnServer, timeout: Duration) -> ServerSpec {
    ServerSpec {
        host: "localhost".into(),
        port: 0,
        socket: Some(own.server.socket.clone()),
        user: own.server.user.clone(),
        password: own.server.password.clone(),
        database: DB.into(),
        tls: None,
        connect_timeout: timeout,
        read_timeout: timeout,
        write_timeout: timeout,
    }
}

fn settings(retry: Duration, max_waiting: usize) -> ServerSettings {
    ServerSettings {
        retry_interval: retry,
        max_waiting,
    }
}

/// Which server's row the read found, and how long it took.
fn who(servers: &Servers) -> (Result<String, DbError>, Duration) {
    let started = Instant::now();
    let r = servers.read("name", |c| {
        c.query_first::<String, _>("SELECT name FROM t")
            .map(|n| n.unwrap_or_default())
    });
    (r, started.elapsed())
}

fn insert(servers: &Servers) -> (Result<(), DbError>, Duration) {
    let started = Instant::now();
    let r = servers.write("insert", |c| {
        c.query_drop("INSERT INTO t VALUES ('written')")
    });
    (r, started.elapsed())
}

fn rows(own: &OwnServer) -> u64 {
    let mut c = own.server.connect(Some(DB)).unwrap();
    c.query_first("SELECT COUNT(*) FROM t").unwrap().unwrap()
}

/// The kernel's state letter of the server process (T: stopped).
fn process_state(own: &OwnServer) -> String {
    let dir = own.server.socket.parent().unwrap();
    let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    let state = status.lines().find(|l| l.starts_with("State:")).unwrap();
    state["State:".len()..].trim().to_string()
}

/// Freeze the server and wait until the kernel has stopped it: SIGSTOP
/// takes effect asynchronously, and a busy machine can let a running
/// thread answer one more statement.
fn freeze(own: &OwnServer) -> crate::harness::Frozen<'_> {
    let frozen = own.freeze();
    within(Duration::from_secs(5), "server stopped", || {
        process_state(own).starts_with('T')
    });
    frozen
}

/// Wait until `cond` or panic after `limit`; how long it took.
fn within(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

#[test]
fn killed_primary_reads_go_to_the_replica_writes_fail_and_the_primary_comes_back() {
    let mut primary = server_named("primary");
    let replica = server_named("replica");
    let timeout = Duration::from_secs(2);
    let retry = Duration::from_secs(1);
    let servers = Servers::new(
        spec(&primary, timeout),
        vec![spec(&replica, timeout)],
        2,
        settings(retry, 4),
    );
    let primary_label = servers.primary_label();
    assert_eq!(primary_label, spec(&primary, timeout).label());

    assert_eq!(who(&servers).0.unwrap(), "primary");
    assert_eq!(last_server().as_deref(), Some(primary_label.as_str()));
    insert(&servers).0.unwrap();
    assert_eq!(rows(&primary), 2);
    assert_eq!(servers.connect_failure(), None);

    primary.kill();
    // The pooled connection is dead, the reconnect refused: the replica
    // answers the same read.
    let (r, took) = who(&servers);
    assert_eq!(r.unwrap(), "replica");
    eprintln!("killed primary: first read failed over in {took:?}");
    assert!(took < timeout, "{took:?}");
    assert_eq!(
        last_server().as_deref(),
        Some(spec(&replica, timeout).label().as_str())
    );
    assert_eq!(
        servers.health(),
        vec![
            (primary_label.clone(), false),
            (spec(&replica, timeout).label(), true)
        ]
    );
    let why = servers.connect_failure().unwrap();
    assert!(why.starts_with(&format!("{primary_label}: ")), "{why}");
    assert!(why.contains("reads go to"), "{why}");
    assert!(!why.contains("DriverError"), "{why}");
    // Later reads skip the primary without trying it.
    let (r, took) = who(&servers);
    assert_eq!(r.unwrap(), "replica");
    assert!(took < Duration::from_millis(500), "{took:?}");

    // A write goes to the primary only: it fails at once, and the replica
    // is untouched.
    let (r, took) = insert(&servers);
    let e = r.unwrap_err();
    assert!(took < Duration::from_millis(200), "{took:?}");
    assert!(e.to_string().starts_with(&primary_label), "{e}");
    assert_eq!(rows(&replica), 1);

    // Back: the probe sees it within the retry interval (and a little), and
    // reads go to the primary again.
    primary.resume();
    let back = within(3 * retry + Duration::from_secs(2), "primary up", || {
        servers.health()[0].1
    });
    eprintln!("restarted primary: used again {back:?} after it answered");
    assert_eq!(who(&servers).0.unwrap(), "primary");
    insert(&servers).0.unwrap();
    assert_eq!(rows(&primary), 3);
    assert_eq!(servers.connect_failure(), None);
}

#[test]
fn frozen_primary_reads_fail_over_within_the_timeout_and_never_hang() {
    let primary = server_named("primary");
    let replica = server_named("replica");
    let timeout = Duration::from_secs(1);
    // The replica's own timeouts are generous: a loaded test machine must
    // not make it fail too.
    let slack = Duration::from_secs(5);
    let servers = Servers::new(
        spec(&primary, timeout),
        vec![spec(&replica, slack)],
        2,
        settings(Duration::from_secs(30), 4),
    );
    assert_eq!(who(&servers).0.unwrap(), "primary");
    let frozen = freeze(&primary);

    // A pooled connection: the statement times out (read timeout), and the
    // same read is answered by the replica.
    let (r, took) = who(&servers);
    assert_eq!(r.unwrap(), "replica");
    eprintln!("frozen primary, pooled connection: failed over in {took:?}");
    assert!(took < timeout + Duration::from_millis(900), "{took:?}");
    let (r, took) = who(&servers);
    assert_eq!(r.unwrap(), "replica");
    assert!(took < Duration::from_millis(500), "{took:?}");

    // No pooled connection: the kernel accepts the connection for the
    // stopped server, which never greets; the connect timeout ends it.
    let fresh = Servers::new(
        spec(&primary, timeout),
        vec![spec(&replica, slack)],
        2,
        settings(Duration::from_secs(30), 4),
    );
    let (r, took) = who(&fresh);
    assert_eq!(r.unwrap(), "replica");
    eprintln!("frozen primary, new connection: failed over in {took:?}");
    assert!(took < timeout + Duration::from_millis(900), "{took:?}");

    // A write on the frozen primary: an error within the timeout, no hang.
    let (r, took) = insert(&fresh);
    assert!(r.is_err());
    assert!(took < timeout + Duration::from_millis(900), "{took:?}");

    // The probe's own attempts end in time too: dropping waits for it.
    let started = Instant::now();
    drop(fresh);
    drop(servers);
    assert!(started.elapsed() < 2 * timeout + Duration::from_secs(1));
    drop(frozen);
    assert_eq!(rows(&replica), 1);
}

#[test]
fn a_connect_to_a_frozen_server_ends_within_the_connect_timeout() {
    let own = server_named("alone");
    let mut s = spec(&own, Duration::from_millis(700));
    // A long statement timeout must not lengthen the connect.
    s.read_timeout = Duration::from_secs(30);
    s.write_timeout = Duration::from_secs(30);
    let opts = s.opts().unwrap();
    let c = connect_within_timeout(&opts, None).unwrap();
    drop(c);
    let _frozen = freeze(&own);
    let started = Instant::now();
    let e = connect_within_timeout(&opts, Some(Duration::from_secs(60))).unwrap_err();
    let took = started.elapsed();
    eprintln!("connect to a frozen server: gave up after {took:?} ({e})");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(indilookup::db::pool::is_timeout(&e), "{e:?}");
}

#[test]
fn a_connection_keeps_its_statement_timeout_after_a_short_connect_timeout() {
    let own = server_named("alone");
    let mut s = spec(&own, Duration::from_millis(300));
    s.read_timeout = Duration::from_secs(5);
    let mut c = connect_within_timeout(&s.opts().unwrap(), None).unwrap();
    // Longer than the connect timeout, shorter than the read timeout.
    let slept: u32 = c.query_first("SELECT SLEEP(1)").unwrap().unwrap();
    assert_eq!(slept, 0);
    // And the read timeout still applies.
    let mut c =
        connect_within_timeout(&s.opts().unwrap(), Some(Duration::from_millis(500))).unwrap();
    let e = c.query_first::<u32, _>("SELECT SLEEP(2)").unwrap_err();
    assert!(indilookup::db::pool::is_timeout(&e), "{e:?}");
}

#[test]
fn every_server_down_fails_at_once_until_the_primary_is_due() {
    // With a replica: both down, a read fails at once with the latest
    // reason until the primary's interval has passed.
    let mut primary = server_named("primary");
    let mut replica = server_named("replica");
    let retry = Duration::from_secs(1);
    let servers = Servers::new(
        spec(&primary, Duration::from_secs(2)),
        vec![spec(&replica, Duration::from_secs(2))],
        2,
        settings(retry, 4),
    );
    assert_eq!(who(&servers).0.unwrap(), "primary");
    primary.kill();
    replica.kill();
    assert!(who(&servers).0.is_err());
    let (r, took) = who(&servers);
    match r {
        Err(e @ DbError::Unavailable { .. }) => {
            let text = e.to_string();
            assert!(!text.contains("password"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_millis(50), "{took:?}");
    assert!(servers.connect_failure().is_some());
    primary.resume();
    std::thread::sleep(retry);
    assert_eq!(who(&servers).0.unwrap(), "primary");
    assert!(servers.health()[0].1);
}

/// A lone server is never skipped: nothing else could answer. Every lookup
/// tries it (a stopped server refuses at once), and the first lookup after
/// it is back is answered.
#[test]
fn a_lone_server_is_tried_again_by_the_next_lookup() {
    let mut only = server_named("primary");
    let servers = Servers::new(
        spec(&only, Duration::from_secs(2)),
        vec![],
        2,
        settings(Duration::from_secs(5), 4),
    );
    assert_eq!(who(&servers).0.unwrap(), "primary");
    only.kill();
    for _ in 0..8 {
        match who(&servers) {
            (Err(DbError::Unavailable { .. }), _) => panic!("skipped"),
            (Err(_), took) => assert!(took < Duration::from_secs(1), "{took:?}"),
            (Ok(w), _) => panic!("answered by {w} after the kill"),
        }
    }
    assert!(servers.connect_failure().is_some());
    only.resume();
    assert_eq!(who(&servers).0.unwrap(), "primary");
    assert!(servers.health()[0].1);
    assert_eq!(servers.connect_failure(), None);
}

#[test]
fn too_many_waiting_is_busy_at_once_and_a_read_goes_to_the_replica() {
    let primary = server_named("primary");
    let replica = server_named("replica");
    let timeout = Duration::from_secs(5);
    let lone = Arc::new(Servers::new(
        spec(&primary, timeout),
        vec![],
        1,
        settings(Duration::from_secs(5), 1),
    ));
    let pair = Arc::new(Servers::new(
        spec(&primary, timeout),
        vec![spec(&replica, timeout)],
        1,
        settings(Duration::from_secs(5), 1),
    ));
    for servers in [&lone, &pair] {
        let is_lone = Arc::ptr_eq(servers, &lone);
        let hold = |secs: f64| {
            let s = servers.clone();
            std::thread::spawn(move || {
                s.read("sleep", |c| c.query_drop(format!("SELECT SLEEP({secs})")))
            })
        };
        let ask = || {
            let s = servers.clone();
            std::thread::spawn(move || who(&s))
        };
        // A busy server that turns its statements over: two wait, over the
        // limit of one, and both are answered by it.
        let sleeper = hold(0.5);
        std::thread::sleep(Duration::from_millis(100));
        let waiters = [ask(), ask()];
        sleeper.join().unwrap().unwrap();
        for w in waiters {
            assert_eq!(w.join().unwrap().0.unwrap(), "primary");
        }
        // A stalled one (no connection back for over a second): one may
        // wait, the next is Busy at once (and goes to the replica when there
        // is one); nobody waits more than a second.
        let sleeper = hold(3.0);
        std::thread::sleep(indilookup::db::pool::STALLED + Duration::from_millis(100));
        let waiter = ask();
        std::thread::sleep(Duration::from_millis(100));
        let (r, took) = who(servers);
        assert!(took < Duration::from_millis(200), "{took:?}");
        if is_lone {
            match r {
                Err(DbError::Busy(d)) => assert!(d.is_zero()),
                other => panic!("{other:?}"),
            }
        } else {
            // Busy is no failure: the primary is not marked down.
            assert_eq!(r.unwrap(), "replica");
            assert!(servers.health()[0].1);
        }
        let (r, took) = waiter.join().unwrap();
        assert!(took < Duration::from_millis(1300), "{took:?}");
        if is_lone {
            assert!(matches!(r, Err(DbError::Busy(_))), "{r:?}");
        } else {
            assert_eq!(r.unwrap(), "replica");
        }
        sleeper.join().unwrap().unwrap();
    }
}

#[test]
fn bulk_connections_counts_and_close_all() {
    let mut primary = server_named("primary");
    let replica = server_named("replica");
    let timeout = Duration::from_secs(2);
    let servers = Servers::new(
        spec(&primary, timeout),
        vec![spec(&replica, timeout)],
        2,
        settings(Duration::from_secs(30), 4),
    );
    assert_eq!(servers.counts(), (0, 0));
    assert_eq!(who(&servers).0.unwrap(), "primary");
    assert_eq!(servers.counts(), (1, 1));
    let mut bulk = servers.connect_once(Duration::from_secs(10)).unwrap();
    let name: String = bulk.query_first("SELECT name FROM t").unwrap().unwrap();
    assert_eq!(name, "primary");
    assert_eq!(servers.counts(), (1, 2));
    drop(bulk);
    servers.close_all();
    assert_eq!(servers.counts(), (0, 2));

    primary.kill();
    let mut bulk = servers.connect_once(Duration::from_secs(10)).unwrap();
    let name: String = bulk.query_first("SELECT name FROM t").unwrap().unwrap();
    assert_eq!(name, "replica");
    assert!(!servers.health()[0].1);
}

/// A private mariadbd on a loopback TCP port, with TLS from certificates
/// made here (or without TLS), for the TLS tests.
struct TcpServer {
    dir: tempfile::TempDir,
    port: u16,
    process: Option<testkit::Guarded>,
}

const TLS_USER: &str = "tlsuser";
const TLS_PASSWORD: &str = "tls-pw-not-in-logs";

fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    run(std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args));
}

fn program(names: &[&str]) -> std::path::PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        for n in names {
            let p = std::path::Path::new(dir).join(n);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("none of {names:?} found");
}

impl TcpServer {
    fn start() -> TcpServer {
        let dir = tempfile::Builder::new()
            .prefix("indilookup-tls.")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("tmp")).unwrap();
        Self::certificates(d);
        let mut install =
            std::process::Command::new(program(&["mariadb-install-db", "mysql_install_db"]));
        install
            .env("TMPDIR", d.join("tmp"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if nix::unistd::geteuid().is_root() {
            install.arg("--user=root");
        }
        run(&mut install);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = TcpServer {
            dir,
            port,
            process: None,
        };
        server.run(true);
        let mut c = server.admin();
        c.query_drop("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
            .unwrap();
        c.query_drop(format!("CREATE DATABASE {DB}")).unwrap();
        c.query_drop(format!("CREATE TABLE {DB}.t (name varchar(20))"))
            .unwrap();
        c.query_drop(format!("INSERT INTO {DB}.t VALUES ('tls')"))
            .unwrap();
        c.query_drop(format!(
            "CREATE USER '{TLS_USER}'@'%' IDENTIFIED BY '{TLS_PASSWORD}'"
        ))
        .unwrap();
        c.query_drop(format!("GRANT ALL ON {DB}.* TO '{TLS_USER}'@'%'"))
            .unwrap();
        server
    }

    /// A CA, a server certificate for 127.0.0.1 it signed, an expired one,
    /// and a second CA that signed nothing here.
    fn certificates(d: &std::path::Path) {
        for ca in ["ca", "other-ca"] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "30",
                    "-subj",
                    &format!("/CN=indilookup test {ca}"),
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.pem"),
                ],
            );
        }
        for name in ["server", "expired"] {
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
        }
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("serial"), "1000\n").unwrap();
        std::fs::write(
            d.join("ca.cnf"),
            "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\n\
             serial = serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\n\
             unique_subject = no\n[any]\ncommonName = supplied\n",
        )
        .unwrap();
        let sign = |name: &str, dates: [&str; 4]| {
            let mut args = vec![
                "ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile",
                "ca.key",
            ];
            args.extend(dates);
            let input = format!("{name}.csr");
            let output = format!("{name}.pem");
            args.extend(["-in", &input, "-out", &output]);
            openssl(d, &args);
        };
        sign(
            "server",
            [
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20991231000000Z",
            ],
        );
        sign(
            "expired",
            [
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200201000000Z",
            ],
        );
    }

    /// Start mariadbd; with TLS from `cert`.pem/.key, or without TLS.
    fn run(&mut self, tls: bool) {
        self.run_with("server", tls);
    }

    fn run_with(&mut self, cert: &str, tls: bool) {
        self.stop();
        let d = self.dir.path();
        let mut cmd = std::process::Command::new(program(&["mariadbd", "mysqld"]));
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if tls {
            cmd.arg(format!("--ssl-ca={}", d.join("ca.pem").display()))
                .arg(format!(
                    "--ssl-cert={}",
                    d.join(format!("{cert}.pem")).display()
                ))
                .arg(format!(
                    "--ssl-key={}",
                    d.join(format!("{cert}.key")).display()
                ));
        } else {
            cmd.arg("--skip-ssl");
        }
        if nix::unistd::geteuid().is_root() {
            cmd.arg("--user=root");
        }
        self.process = Some(testkit::Guarded::spawn(&mut cmd).expect("start mariadbd"));
        let started = Instant::now();
        while self.try_admin().is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                let log = std::fs::read_to_string(d.join("error.log")).unwrap_or_default();
                panic!("mariadbd did not come up:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            let _ = p.signal(nix::sys::signal::Signal::SIGTERM);
            let _ = p.wait_with_output();
        }
    }

    fn try_admin(&self) -> mysql::Result<mysql::Conn> {
        mysql::Conn::new(
            mysql::OptsBuilder::new()
                .socket(Some(self.dir.path().join("sock").to_string_lossy()))
                .user(Some("root")),
        )
    }

    fn admin(&self) -> mysql::Conn {
        self.try_admin().unwrap()
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn spec(&self, ca: &str, verify_cert: bool) -> ServerSpec {
        ServerSpec {
            host: "127.0.0.1".into(),
            port: self.port,
            socket: None,
            user: TLS_USER.into(),
            password: TLS_PASSWORD.into(),
            database: DB.into(),
            tls: Some(TlsOptions {
                ca: Some(self.path(ca)),
                cert: None,
                key: None,
                verify_cert,
            }),
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(2),
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The TLS version the session runs, as the server sees it ("" in plain text).
fn tls_version(servers: &Servers) -> Result<String, DbError> {
    servers.read("ssl", |c| {
        c.query_first::<(String, String), _>("SHOW SESSION STATUS LIKE 'Ssl_version'")
            .map(|r| r.map(|r| r.1).unwrap_or_default())
    })
}

fn lone(spec: ServerSpec) -> Servers {
    Servers::new(spec, vec![], 2, settings(Duration::from_secs(30), 4))
}

/// The TLS error's words, checked for what must never be in them.
fn tls_error(r: Result<String, DbError>, label: &str) -> String {
    match r {
        Err(e @ DbError::Tls { .. }) => {
            let text = e.to_string();
            assert!(text.starts_with(&format!("{label}: TLS: ")), "{text}");
            assert!(!text.contains(TLS_PASSWORD), "{text}");
            assert!(!text.contains("Error {"), "{text}");
            eprintln!("{text}");
            text
        }
        other => panic!("not a TLS error: {other:?}"),
    }
}

#[test]
fn tls_is_required_verified_and_never_dropped() {
    let mut server = TcpServer::start();

    // Verified against the CA that signed the server certificate.
    let servers = lone(server.spec("ca.pem", true));
    let label = servers.primary_label();
    assert_eq!(label, format!("{TLS_USER}@127.0.0.1:{}", server.port));
    let version = tls_version(&servers).unwrap();
    assert!(version.starts_with("TLSv1."), "{version:?}");
    eprintln!("TLS to MariaDB: {version}");

    // Another CA: refused, and said why.
    let servers = lone(server.spec("other-ca.pem", true));
    let text = tls_error(tls_version(&servers), &label);
    assert!(text.contains("not signed by the CA given"), "{text}");
    assert!(!servers.health()[0].1, "the server counts as down");
    assert!(servers.connect_failure().unwrap().contains("TLS"));
    // Verification off (self-signed set-ups): accepted, still encrypted.
    let servers = lone(server.spec("other-ca.pem", false));
    assert!(tls_version(&servers).unwrap().starts_with("TLSv1."));

    // An expired certificate.
    server.run_with("expired", true);
    let servers = lone(server.spec("ca.pem", true));
    let text = tls_error(tls_version(&servers), &label);
    assert!(text.contains("expired"), "{text}");

    // A server without TLS: an error, never a plain-text connection.
    server.run(false);
    let servers = lone(server.spec("ca.pem", true));
    let text = tls_error(tls_version(&servers), &label);
    assert!(text.contains("does not offer TLS"), "{text}");
    // Without TLS asked for, the same server answers in plain text.
    let mut plain = server.spec("ca.pem", true);
    plain.tls = None;
    assert_eq!(tls_version(&lone(plain)).unwrap(), "");
}
