//! Private MariaDB servers on loopback TCP ports, real replication between
//! them, and the three-server example cluster of the cluster specification
//! (§7): central, ms1 and ms2, optionally a replica of ms2.
//!
//! Every server also has a unix socket, through which the fixture sets it up
//! as root; the daemon under test reaches it over TCP as `indimail`. Servers
//! are killed and their directories removed on drop, also when the test
//! panics, and die with the test process.

use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indilookup::config::Env;
use mysql::prelude::{FromRow, Queryable};
use mysql::Conn;
use nix::sys::signal::Signal;

use crate::harness::{init_datadir, schema_statements, server_dir, spawn_mariadbd_with, Server};
use crate::tls::{ServerTls, TestCerts};

/// How a [`TcpServer`] runs.
#[derive(Clone, Debug, Default)]
pub struct TcpOptions {
    /// log_bin, binlog_format=ROW: it can be a replication primary.
    pub binlog: bool,
    /// 0: one of its own, unique in this process.
    pub server_id: u32,
    /// Present this certificate (ssl_cert, ssl_key, ssl_ca).
    pub tls: Option<ServerTls>,
    /// require_secure_transport=ON: TCP clients without TLS are refused
    /// (the unix socket counts as secure).
    pub require_tls: bool,
    /// A replica that writes what it applies to its own binlog.
    pub log_slave_updates: bool,
    pub read_only: bool,
}

impl TcpOptions {
    /// A replication primary.
    pub fn primary() -> TcpOptions {
        TcpOptions {
            binlog: true,
            ..TcpOptions::default()
        }
    }

    /// A read-only replica.
    pub fn replica() -> TcpOptions {
        TcpOptions {
            read_only: true,
            ..TcpOptions::default()
        }
    }

    pub fn with_tls(mut self, tls: ServerTls, required: bool) -> TcpOptions {
        self.tls = Some(tls);
        self.require_tls = required;
        self
    }
}

/// The replication account a primary grants to its replicas.
const REPL_USER: &str = "repl";
const REPL_PASSWORD: &str = "replpass";

/// A private mariadbd on 127.0.0.1, a TCP port of its own, and a unix socket.
///
/// Port choice: ports below the kernel's ephemeral range (so that no
/// outgoing connection holds one), tried in turn from a random start; a
/// port is first bound here to see that it is free, and a start that still
/// loses a race ("Address already in use") is retried on the next port.
/// While stopped, the server's port stays bound (not listening), so that
/// connections are refused and no other test's server can take it; when
/// that is impossible (connections of the old server in TIME_WAIT) the port
/// is merely unlikely to be reused, since each process walks its own part
/// of the range.
pub struct TcpServer {
    root: Server,
    dir: PathBuf,
    port: u16,
    server_id: u32,
    opts: TcpOptions,
    child: Option<Child>,
    /// The port, bound while the server is stopped.
    hold: Option<OwnedFd>,
    /// The primary's port, for a replica.
    primary_port: Option<u16>,
}

/// Why a start failed.
enum StartError {
    AddrInUse,
}

fn next_server_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(100);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// The next candidate port: below the ephemeral range, from a random start.
fn next_port() -> u16 {
    const LOW: u32 = 20000;
    let high = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|&h| h > LOW + 1000)
        .unwrap_or(32768);
    static CURSOR: Mutex<Option<u32>> = Mutex::new(None);
    let mut cursor = CURSOR.lock().unwrap();
    let c = cursor.get_or_insert_with(|| {
        let r = RandomState::new().hash_one(std::process::id()) as u32;
        r % (high - LOW)
    });
    *c = (*c + 1) % (high - LOW);
    (LOW + *c) as u16
}

/// Bind 127.0.0.1:`port` without listening: connections to it are refused,
/// and no server can bind it while this lives.
fn hold_port(port: u16) -> Option<OwnedFd> {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)).ok()?;
    Some(fd)
}

/// A free port, bound.
fn reserve_port() -> (u16, OwnedFd) {
    for _ in 0..1000 {
        let port = next_port();
        if let Some(fd) = hold_port(port) {
            return (port, fd);
        }
    }
    panic!("no free TCP port on 127.0.0.1");
}

/// `s` as an SQL string literal.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl TcpServer {
    /// Start a server on a fresh data directory and wait until it answers.
    pub fn start(opts: TcpOptions) -> TcpServer {
        let dir = server_dir();
        init_datadir(&dir);
        let server_id = if opts.server_id == 0 {
            next_server_id()
        } else {
            opts.server_id
        };
        let mut s = TcpServer {
            root: Server {
                socket: dir.join("sock"),
                user: "root".into(),
                password: String::new(),
            },
            dir,
            port: 0,
            server_id,
            opts,
            child: None,
            hold: None,
            primary_port: None,
        };
        for _ in 0..20 {
            let (port, hold) = reserve_port();
            s.port = port;
            s.hold = Some(hold);
            match s.try_run() {
                Ok(()) => return s,
                Err(StartError::AddrInUse) => continue,
            }
        }
        panic!("mariadbd found no free port in 20 tries");
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec![
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".into(),
            // Accounts match by address only: no DNS, and no 'localhost'
            // account can shadow one for 127.0.0.1.
            "--skip-name-resolve".into(),
            format!("--server-id={}", self.server_id),
            "--relay-log=relay".into(),
            // A commit reaches the OS at once, so that a killed server (a
            // crash of the process) keeps it, as a replica already has it.
            "--innodb-flush-log-at-trx-commit=2".into(),
        ];
        let o = &self.opts;
        if o.binlog {
            a.push("--log-bin=binlog".into());
            a.push("--binlog-format=ROW".into());
        }
        if o.log_slave_updates {
            a.push("--log-slave-updates".into());
        }
        if o.read_only {
            a.push("--read-only".into());
        }
        if let Some(tls) = &o.tls {
            a.push(format!("--ssl-cert={}", tls.cert.display()));
            a.push(format!("--ssl-key={}", tls.key.display()));
            a.push(format!("--ssl-ca={}", tls.ca.display()));
        }
        if o.require_tls {
            a.push("--require-secure-transport=ON".into());
        }
        a
    }

    /// Start mariadbd on this port and wait until it answers on its socket.
    fn try_run(&mut self) -> Result<(), StartError> {
        assert!(self.child.is_none(), "already running");
        let log_len = fs::metadata(self.dir.join("error.log")).map_or(0, |m| m.len());
        // The port is free from now until mariadbd binds it, or another
        // process took it meanwhile and the start is retried.
        self.hold = None;
        let args = self.args();
        self.child = Some(spawn_mariadbd_with(&self.dir, &args));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.root.connect(None).is_ok() {
                return Ok(());
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() {
                self.child = None;
                let log = self.error_log();
                let log = log.get(log_len as usize..).unwrap_or(&log);
                if log.contains("Address already in use") {
                    return Err(StartError::AddrInUse);
                }
                panic!("mariadbd exited at start ({exited:?}):\n{log}");
            }
            if Instant::now() > deadline {
                panic!(
                    "mariadbd did not come up within 60 s:\n{}",
                    self.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The unix socket, where root needs no password.
    pub fn socket(&self) -> &Path {
        &self.root.socket
    }

    /// Root over the unix socket, as the single-server fixtures use it
    /// (e.g. `Site::on(server.server())`).
    pub fn server(&self) -> &Server {
        &self.root
    }

    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    pub fn options(&self) -> &TcpOptions {
        &self.opts
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's error log so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn pid(&self) -> nix::unistd::Pid {
        let child = self.child.as_ref().expect("server running");
        nix::unistd::Pid::from_raw(child.id() as i32)
    }

    /// Stop the server (clean shutdown) and wait until it is gone; its port
    /// then refuses connections.
    pub fn stop(&mut self) {
        if self.child.is_some() {
            let _ = nix::sys::signal::kill(self.pid(), Signal::SIGTERM);
            let _ = self.child.take().unwrap().wait();
            self.hold = hold_port(self.port);
        }
    }

    /// Kill the server (SIGKILL, as in a crash) and wait until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.hold = hold_port(self.port);
        }
    }

    /// Stop the process (SIGSTOP): its port and connections stay open and
    /// nothing answers until the guard is dropped (SIGCONT), also when the
    /// test fails meanwhile.
    pub fn freeze(&self) -> Frozen<'_> {
        nix::sys::signal::kill(self.pid(), Signal::SIGSTOP).unwrap();
        Frozen(self)
    }

    /// Start it again on the same data, port and options.
    pub fn resume(&mut self) {
        if self.try_run().is_err() {
            panic!("port {} was taken while the server was down", self.port);
        }
    }

    /// A root connection over the unix socket.
    pub fn root_conn(&self, db: Option<&str>) -> Conn {
        self.root
            .connect(db)
            .unwrap_or_else(|e| panic!("root connection to port {}: {e}", self.port))
    }

    /// Run statements as root (several, separated by `;`, are allowed).
    pub fn sql(&self, db: Option<&str>, stmt: &str) {
        self.root_conn(db)
            .query_drop(stmt)
            .unwrap_or_else(|e| panic!("{e}: {stmt}"));
    }

    /// The rows of a query, as root.
    pub fn query<T: FromRow>(&self, db: Option<&str>, stmt: &str) -> Vec<T> {
        self.root_conn(db)
            .query(stmt)
            .unwrap_or_else(|e| panic!("{e}: {stmt}"))
    }

    /// The first row of a query, as root.
    pub fn query_first<T: FromRow>(&self, db: Option<&str>, stmt: &str) -> Option<T> {
        self.root_conn(db)
            .query_first(stmt)
            .unwrap_or_else(|e| panic!("{e}: {stmt}"))
    }

    /// An account `user`@`host` with a password and every privilege on
    /// database `db`, as an IndiMail site grants its `indimail` user.
    pub fn create_app_user(&self, user: &str, host: &str, password: &str, db: &str) {
        let (u, h) = (sql_literal(user), sql_literal(host));
        self.sql(
            None,
            &format!(
                "CREATE USER IF NOT EXISTS {u}@{h} IDENTIFIED BY {p}; \
                 GRANT ALL PRIVILEGES ON `{db}`.* TO {u}@{h}",
                p = sql_literal(password)
            ),
        );
    }

    /// A TCP connection as `user` (no TLS).
    pub fn tcp_conn(&self, user: &str, password: &str, db: Option<&str>) -> mysql::Result<Conn> {
        Conn::new(
            mysql::OptsBuilder::new()
                .ip_or_hostname(Some("127.0.0.1"))
                .tcp_port(self.port)
                .user(Some(user))
                .pass(Some(password))
                .db_name(db)
                .prefer_socket(false),
        )
    }

    /// A replica of this server (which needs a binlog): see [`start_replica`].
    pub fn start_replica(&self, opts: TcpOptions) -> TcpServer {
        start_replica(self, opts)
    }

    /// Wait until this replica has applied everything `primary` has
    /// written to its binlog so far; panics with the replication error if
    /// it does not within 30 s.
    pub fn wait_replicated(&self, primary: &TcpServer) {
        let pos: String = primary
            .query_first(None, "SELECT @@gtid_binlog_pos")
            .unwrap_or_default();
        if pos.is_empty() {
            return;
        }
        let done: Option<i64> = self.query_first(
            None,
            &format!("SELECT MASTER_GTID_WAIT({}, 30)", sql_literal(&pos)),
        );
        if done != Some(0) {
            panic!(
                "the replica did not reach the primary's {pos} within 30 s: {}",
                self.replication_status()
            );
        }
    }

    /// The replication threads' state and last errors, in words:
    /// `IO Yes (), SQL Yes (), gtid_slave_pos 0-101-12` when all is well.
    pub fn replication_status(&self) -> String {
        let mut conn = self.root_conn(None);
        let row: Option<mysql::Row> = conn.query_first("SHOW SLAVE STATUS").unwrap();
        let Some(row) = row else {
            return "not a replica".into();
        };
        let get = |name: &str| -> String {
            let i = row.columns_ref().iter().position(|c| c.name_str() == name);
            match i.and_then(|i| row.as_ref(i)) {
                Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(v) => v.as_sql(true),
                None => String::new(),
            }
        };
        let pos: Option<String> = conn.query_first("SELECT @@gtid_slave_pos").unwrap();
        format!(
            "IO {} ({}), SQL {} ({}), gtid_slave_pos {}",
            get("Slave_IO_Running"),
            get("Last_IO_Error"),
            get("Slave_SQL_Running"),
            get("Last_SQL_Error"),
            pos.unwrap_or_default(),
        )
    }

    /// For a replica: the port of its primary.
    pub fn primary_port(&self) -> Option<u16> {
        self.primary_port
    }
}

/// A frozen server; it goes on when this is dropped.
pub struct Frozen<'a>(&'a TcpServer);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0.pid(), Signal::SIGCONT);
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Start a replica of `primary` (which must have a binlog): a server with
/// `opts` that replicates from the very start of the primary's binlog by
/// GTID, so that everything the primary holds reaches it by replication.
/// Over TLS when the primary presents a certificate.
pub fn start_replica(primary: &TcpServer, opts: TcpOptions) -> TcpServer {
    assert!(
        primary.opts.binlog,
        "a replication primary needs TcpOptions::binlog"
    );
    let (u, h) = (sql_literal(REPL_USER), sql_literal("127.0.0.1"));
    primary.sql(
        None,
        &format!(
            "CREATE USER IF NOT EXISTS {u}@{h} IDENTIFIED BY {p}; \
             GRANT REPLICATION SLAVE ON *.* TO {u}@{h}",
            p = sql_literal(REPL_PASSWORD)
        ),
    );
    let mut replica = TcpServer::start(opts);
    let tls = match &primary.opts.tls {
        Some(t) => format!(
            ", MASTER_SSL=1, MASTER_SSL_CA={}, MASTER_SSL_VERIFY_SERVER_CERT=1",
            sql_literal(&t.ca.to_string_lossy())
        ),
        None => String::new(),
    };
    replica.sql(
        None,
        &format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, \
             MASTER_USER={u}, MASTER_PASSWORD={p}, MASTER_USE_GTID=slave_pos, \
             MASTER_CONNECT_RETRY=1{tls}; START SLAVE",
            primary.port,
            p = sql_literal(REPL_PASSWORD)
        ),
    );
    replica.primary_port = Some(primary.port);
    replica
}

/// The example cluster's mailstore and central passwords (spec §7.1).
pub const CENTRAL_PASSWORD: &str = "cpass";
pub const MS1_PASSWORD: &str = "ms1pass";
pub const MS2_PASSWORD: &str = "ms2pass";

/// Central rows, spec §7.3.
const CENTRAL_ROWS: &str = "\
INSERT INTO hostcntrl (pw_name,pw_domain,pw_passwd,host) VALUES
 ('alice','dist.example','x','ms1'), ('bob','dist.example','x','ms2'),
 ('sales','dist.example','alias','ms1');
INSERT INTO host_table (host,ipaddr) VALUES ('ms1','192.0.2.1'), ('ms2','192.0.2.2');
INSERT INTO smtp_port (host,src_host,domain,port) VALUES ('ms2','*','dist.example',209)";

/// ms1 rows, spec §7.4.
const MS1_ROWS: &str = "\
INSERT INTO indimail (pw_name,pw_domain,pw_passwd,pw_uid,pw_gid,pw_gecos,pw_dir,pw_shell) VALUES
 ('alice','dist.example','$5$s1$alicehash',1,0,'Alice','/home/mail/dist.example/alice','NOQUOTA');
INSERT INTO valias (alias,domain,valias_line) VALUES ('sales','dist.example','alice@dist.example');
INSERT INTO relay (email,ipaddr,timestamp) VALUES ('alice@dist.example','10.1.1.1',UNIX_TIMESTAMP())";

/// ms2 rows, spec §7.4.
const MS2_ROWS: &str = "\
INSERT INTO indimail (pw_name,pw_domain,pw_passwd,pw_uid,pw_gid,pw_gecos,pw_dir,pw_shell) VALUES
 ('bob','dist.example','$5$s2$bobhash',1,0,'Bob','/home/mail/dist.example/bob','NOQUOTA'),
 ('eve','dist.example','$5$s3$evehash',1,0,'Eve','/home/mail/dist.example/eve','NOQUOTA'),
 ('carol','plain.example','$5$s4$carolhash',1,16,'Carol','/home/mail/plain.example/carol','5000000');
INSERT INTO indibak (pw_name,pw_domain,pw_passwd,pw_uid,pw_gid,pw_gecos,pw_dir,pw_shell) VALUES
 ('dave','plain.example','$5$s5$davehash',1,0,'Dave','/home/mail/plain.example/dave','NOQUOTA');
INSERT INTO vlimits (domain, disable_imap) VALUES ('plain.example', 1)";

/// How to start a [`Cluster`].
#[derive(Default)]
pub struct ClusterBuilder {
    replica: bool,
    tls: Option<ServerTls>,
    require_tls: bool,
    ca: Option<PathBuf>,
}

impl ClusterBuilder {
    /// Also a read-only replica of ms2 (ms2 then has a binlog; the replica
    /// gets ms2's schema, account and rows by replication).
    pub fn replica(mut self) -> Self {
        self.replica = true;
        self
    }

    /// Every server presents the valid certificate of `certs`; `required`:
    /// TCP clients without TLS are refused. The host lines then end in
    /// `:ssl`, the records have `use_ssl 1`, and the environment names the
    /// CA (`MYSQL_OPT_SSL_CA`).
    pub fn tls(mut self, certs: &TestCerts, required: bool) -> Self {
        self.tls = Some(certs.server_tls());
        self.require_tls = required;
        self.ca = Some(certs.ca());
        self
    }

    pub fn start(self) -> Cluster {
        Cluster::start_with(self)
    }
}

/// The example cluster of spec §7: central, ms1, ms2 (and a replica of ms2
/// if asked), each with database `indimail`, the project's schema, account
/// `indimail`@`127.0.0.1` and the §7.3/§7.4 rows; a control directory with
/// host.cntrl, host.mysql, hostip and mcdinfo naming the real ports; an
/// empty ASSIGNDIR. Start a daemon on it with `Daemon::start(&cluster, ..)`.
pub struct Cluster {
    central: TcpServer,
    ms1: TcpServer,
    ms2: TcpServer,
    replica: Option<TcpServer>,
    tls: bool,
    dir: tempfile::TempDir,
    env: Env,
    pairs: Vec<(String, String)>,
}

/// The database every server of the example holds.
pub const DATABASE: &str = "indimail";

/// Create database `indimail` with the schema and the account, then `rows`.
fn load(server: &TcpServer, password: &str, rows: &str) {
    server.sql(None, &format!("CREATE DATABASE {DATABASE}"));
    let mut conn = server.root_conn(Some(DATABASE));
    for stmt in schema_statements() {
        conn.query_drop(&stmt).unwrap();
    }
    server.create_app_user("indimail", "127.0.0.1", password, DATABASE);
    if !rows.is_empty() {
        conn.query_drop(rows)
            .unwrap_or_else(|e| panic!("{e}: {rows}"));
    }
}

impl Cluster {
    /// The plain §7 cluster.
    pub fn start() -> Cluster {
        Cluster::builder().start()
    }

    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    fn start_with(b: ClusterBuilder) -> Cluster {
        let opts = TcpOptions {
            tls: b.tls.clone(),
            require_tls: b.require_tls,
            ..TcpOptions::default()
        };
        let ms2_opts = TcpOptions {
            binlog: b.replica,
            ..opts.clone()
        };
        // The three start and load in parallel; ms2's replica starts as soon
        // as ms2 is up, and catches up with the rows by replication.
        let (central, ms1, (ms2, replica)) = std::thread::scope(|s| {
            let central = s.spawn(|| {
                let c = TcpServer::start(opts.clone());
                load(&c, CENTRAL_PASSWORD, CENTRAL_ROWS);
                c
            });
            let ms1 = s.spawn(|| {
                let m = TcpServer::start(opts.clone());
                load(&m, MS1_PASSWORD, MS1_ROWS);
                m
            });
            let ms2 = s.spawn(|| {
                let m = TcpServer::start(ms2_opts);
                let replica = b.replica.then(|| {
                    let replica_opts = TcpOptions {
                        read_only: true,
                        ..opts.clone()
                    };
                    start_replica(&m, replica_opts)
                });
                load(&m, MS2_PASSWORD, MS2_ROWS);
                if let Some(r) = &replica {
                    r.wait_replicated(&m);
                }
                (m, replica)
            });
            (
                central.join().unwrap(),
                ms1.join().unwrap(),
                ms2.join().unwrap(),
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("indilookup-cluster.")
            .tempdir()
            .unwrap();
        fs::create_dir(dir.path().join("control")).unwrap();
        fs::create_dir(dir.path().join("users")).unwrap();
        let path = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
        let mut pairs = vec![
            ("SYSCONFDIR".to_string(), path("")),
            ("CONTROLDIR".to_string(), path("control")),
            ("ASSIGNDIR".to_string(), path("users")),
            (
                "REAL_DOMAINS".to_string(),
                "dist.example:plain.example".to_string(),
            ),
            ("RELAY_CLEAR_MINUTES".to_string(), "30".to_string()),
        ];
        if let Some(ca) = &b.ca {
            pairs.push((
                "MYSQL_OPT_SSL_CA".to_string(),
                ca.to_string_lossy().into_owned(),
            ));
        }
        let env = Env::from_pairs(pairs.iter().map(|(k, v)| (k.clone(), v.clone())));
        let cluster = Cluster {
            central,
            ms1,
            ms2,
            replica,
            tls: b.tls.is_some(),
            dir,
            env,
            pairs,
        };
        let ssl = if cluster.tls { ":ssl" } else { "" };
        cluster.write_control(
            "host.cntrl",
            &format!(
                "127.0.0.1:indimail:{CENTRAL_PASSWORD}:{}{ssl}\n",
                cluster.central.port()
            ),
        );
        cluster.write_control(
            "host.mysql",
            &format!(
                "127.0.0.1:indimail:{MS2_PASSWORD}:{}{ssl}\n",
                cluster.ms2.port()
            ),
        );
        cluster.write_control("hostip", "127.0.0.1\n");
        cluster.write_mcdinfo(&cluster.mcdinfo());
        cluster
    }

    pub fn central(&self) -> &TcpServer {
        &self.central
    }

    pub fn ms1(&self) -> &TcpServer {
        &self.ms1
    }

    pub fn ms2(&self) -> &TcpServer {
        &self.ms2
    }

    /// The replica of ms2; panics if the cluster was built without one.
    pub fn replica(&self) -> &TcpServer {
        self.replica
            .as_ref()
            .expect("a cluster built with .replica()")
    }

    /// For stop, kill and resume.
    pub fn central_mut(&mut self) -> &mut TcpServer {
        &mut self.central
    }

    pub fn ms1_mut(&mut self) -> &mut TcpServer {
        &mut self.ms1
    }

    pub fn ms2_mut(&mut self) -> &mut TcpServer {
        &mut self.ms2
    }

    pub fn replica_mut(&mut self) -> &mut TcpServer {
        self.replica
            .as_mut()
            .expect("a cluster built with .replica()")
    }

    /// The fixture's directory (control/, users/; a daemon's FIFOs go here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn control_dir(&self) -> PathBuf {
        self.dir.path().join("control")
    }

    /// ASSIGNDIR: empty, so there are no local records.
    pub fn assign_dir(&self) -> PathBuf {
        self.dir.path().join("users")
    }

    /// The environment a daemon or client of this cluster needs (spec §7.2).
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.pairs.clone()
    }

    /// The same, for `Config::load`.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The §7.2 mcdinfo with the real ports (`use_ssl 1` with TLS).
    pub fn mcdinfo(&self) -> String {
        let ssl = u8::from(self.tls);
        let record = |domain: &str, mdahost: &str, port: u16, pass: &str| {
            format!(
                "domain   {domain}\nserver   127.0.0.1\nmdahost  {mdahost}\nport     {port}\n\
                 use_ssl  {ssl}\ndatabase indimail\nuser     indimail\npass     {pass}\n"
            )
        };
        [
            record("dist.example 1", "192.0.2.1", self.ms1.port(), MS1_PASSWORD),
            record("dist.example 1", "192.0.2.2", self.ms2.port(), MS2_PASSWORD),
            record(
                "plain.example 0",
                "192.0.2.2",
                self.ms2.port(),
                MS2_PASSWORD,
            ),
        ]
        .join("\n")
    }

    /// Replace control/mcdinfo.
    pub fn write_mcdinfo(&self, text: &str) {
        self.write_control("mcdinfo", text);
    }

    /// Write control/`name`.
    pub fn write_control(&self, name: &str, content: &str) {
        fs::write(self.control_dir().join(name), content).unwrap();
    }
}

impl crate::daemon::DaemonSite for Cluster {
    fn daemon_env(&self) -> &Env {
        &self.env
    }
    fn daemon_base(&self) -> &Path {
        self.dir.path()
    }
}
