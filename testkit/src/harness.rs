//! A real MariaDB for the integration tests.
//!
//! By default the first test that needs it initialises a private server in a
//! temporary directory (unix socket only, no TCP port) and the test process
//! kills and removes it when it exits. `INDILOOKUP_TEST_MYSQL_SOCKET` points
//! the tests at an existing server instead (user
//! `INDILOOKUP_TEST_MYSQL_USER` [root], password
//! `INDILOOKUP_TEST_MYSQL_PASSWORD` [empty]). Either way every test gets a
//! database of its own, dropped when the test ends, so tests run in parallel.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indilookup::config::{Config, Env};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};

#[derive(Clone)]
pub struct Server {
    pub socket: PathBuf,
    pub user: String,
    pub password: String,
}

/// The private server, for the exit handler.
static PRIVATE: Mutex<Option<(u32, PathBuf)>> = Mutex::new(None);

extern "C" fn stop_private_server() {
    if let Ok(mut guard) = PRIVATE.lock() {
        if let Some((pid, dir)) = guard.take() {
            // SAFETY: kill(2) on the pid of the child this process started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let mut status = 0;
            // SAFETY: reaping that same child.
            unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
            let _ = fs::remove_dir_all(dir);
        }
    }
}

pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Some(sock) = std::env::var_os("INDILOOKUP_TEST_MYSQL_SOCKET") {
            return Server {
                socket: PathBuf::from(sock),
                user: std::env::var("INDILOOKUP_TEST_MYSQL_USER").unwrap_or("root".into()),
                password: std::env::var("INDILOOKUP_TEST_MYSQL_PASSWORD").unwrap_or_default(),
            };
        }
        start_private_server()
    })
}

fn find_program(names: &[&str]) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/libexec",
    ] {
        for n in names {
            let p = Path::new(dir).join(n);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("none of {names:?} found: install mariadb-server (apt-get install mariadb-server)");
}

/// Initialise a data directory under `dir`: a copy of one made by
/// mariadb-install-db once per test process (a copy takes a tenth of the time).
pub(crate) fn init_datadir(dir: &Path) {
    let template = template_datadir();
    fs::create_dir_all(dir.join("tmp")).unwrap();
    // Sparse: most of the template is an empty redo log.
    let out = Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(template.join("data"))
        .arg(dir.join("data"))
        .output()
        .expect("run cp");
    assert!(
        out.status.success(),
        "copying the template data directory failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The template data directory, removed when the process exits.
static TEMPLATE: Mutex<Option<PathBuf>> = Mutex::new(None);

extern "C" fn remove_template() {
    if let Ok(mut guard) = TEMPLATE.lock() {
        if let Some(dir) = guard.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

fn template_datadir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = server_dir();
        install_datadir(&dir);
        *TEMPLATE.lock().unwrap() = Some(dir.clone());
        // SAFETY: registering a plain extern "C" function with atexit(3).
        unsafe { libc::atexit(remove_template) };
        dir
    })
}

/// Initialise a data directory under `dir` (mariadb-install-db).
fn install_datadir(dir: &Path) {
    fs::create_dir_all(dir.join("tmp")).unwrap();
    let mut install = Command::new(find_program(&["mariadb-install-db", "mysql_install_db"]));
    install
        .env("TMPDIR", dir.join("tmp"))
        .arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if nix::unistd::geteuid().is_root() {
        install.arg("--user=root");
    }
    let out = install.output().expect("run mariadb-install-db");
    assert!(
        out.status.success(),
        "mariadb-install-db failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Start mariadbd on the data directory under `dir`, socket `dir/sock`.
fn spawn_mariadbd(dir: &Path) -> Child {
    spawn_mariadbd_with(dir, &["--skip-networking".to_string()])
}

/// Start mariadbd on the data directory under `dir`, socket `dir/sock`,
/// with `extra` options (networking, binlog, TLS), which come last.
pub(crate) fn spawn_mariadbd_with(dir: &Path, extra: &[String]) -> Child {
    let mut cmd = Command::new(find_program(&["mariadbd", "mysqld"]));
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
        .args([
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--max-connections=500",
        ])
        // Last, so that they may override the above.
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if nix::unistd::geteuid().is_root() {
        cmd.arg("--user=root");
    }
    // The server must not outlive this test process, even when the process
    // is killed: it gets SIGKILL when the thread that started it ends, and
    // that thread lives until the process does.
    crate::child::fresh(&mut cmd);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = cmd.spawn();
        let failed = child.is_err();
        tx.send(child).unwrap();
        if !failed {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv().unwrap().expect("start mariadbd")
}

/// Wait until the server in `dir` answers.
fn wait_up(server: &Server, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.connect(None).is_err() {
        if Instant::now() > deadline {
            let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            panic!("mariadbd did not come up within 60 s:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A short directory: a unix socket path must fit in 108 bytes.
pub(crate) fn server_dir() -> PathBuf {
    tempfile::Builder::new()
        .prefix("indilookup-db.")
        .tempdir_in("/tmp")
        .expect("temporary directory")
        .keep()
}

fn start_private_server() -> Server {
    let dir = server_dir();
    init_datadir(&dir);
    // Reaped by stop_private_server at exit, through its pid.
    #[allow(clippy::zombie_processes)]
    let child = spawn_mariadbd(&dir);
    *PRIVATE.lock().unwrap() = Some((child.id(), dir.clone()));
    // SAFETY: registering a plain extern "C" function with atexit(3).
    unsafe { libc::atexit(stop_private_server) };
    let server = Server {
        socket: dir.join("sock"),
        user: "root".into(),
        password: String::new(),
    };
    wait_up(&server, &dir);
    server
}

/// A MariaDB of one test's own, which the test may stop and start again
/// (database failures). Removed when dropped.
pub struct OwnServer {
    pub server: Server,
    dir: PathBuf,
    child: Option<Child>,
    /// More mariadbd options (e.g. a binlog), again at every resume.
    extra: Vec<String>,
}

impl OwnServer {
    pub fn start() -> OwnServer {
        OwnServer::start_with(&[])
    }

    /// With more mariadbd options, e.g. `--log-bin=binlog`,
    /// `--binlog-format=ROW`, `--server-id=1` for a binlog to follow.
    pub fn start_with(extra: &[&str]) -> OwnServer {
        let dir = server_dir();
        init_datadir(&dir);
        let mut own = OwnServer {
            server: Server {
                socket: dir.join("sock"),
                user: "root".into(),
                password: String::new(),
            },
            dir,
            child: None,
            extra: std::iter::once("--skip-networking")
                .chain(extra.iter().copied())
                .map(str::to_string)
                .collect(),
        };
        own.resume();
        own
    }

    /// Stop the server (clean shutdown) and wait until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }

    /// Kill the server (SIGKILL, as in a crash) and wait until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop the server process (SIGSTOP): it keeps its connections and
    /// its socket, and answers nothing until the guard is dropped (SIGCONT),
    /// also when the test fails meanwhile.
    pub fn freeze(&self) -> Frozen<'_> {
        self.send(nix::sys::signal::Signal::SIGSTOP);
        Frozen(self)
    }

    fn send(&self, sig: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("server running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    }

    /// Start it again on the same data.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.child = Some(spawn_mariadbd_with(&self.dir, &self.extra));
        wait_up(&self.server, &self.dir);
    }

    /// A global status counter (e.g. Com_stmt_execute).
    pub fn status(&self, name: &str) -> u64 {
        let mut c = self.server.connect(None).unwrap();
        let row: Option<(String, String)> = c
            .query_first(format!("SHOW GLOBAL STATUS LIKE '{name}'"))
            .unwrap();
        row.unwrap().1.parse().unwrap()
    }
}

/// A frozen server; it goes on when this is dropped.
pub struct Frozen<'a>(&'a OwnServer);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        self.0.send(nix::sys::signal::Signal::SIGCONT);
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    pub fn connect(&self, db: Option<&str>) -> mysql::Result<Conn> {
        Conn::new(
            OptsBuilder::new()
                .socket(Some(self.socket.to_string_lossy()))
                .user(Some(&self.user))
                .pass(Some(&self.password))
                .db_name(db),
        )
    }
}

/// The statements of the project's schema file (comment lines removed).
pub fn schema_statements() -> Vec<String> {
    let text =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../sql/indimail.sql")).unwrap();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect();
    code.split(';')
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A database of its own with the IndiMail tables, plus a private CONTROLDIR
/// and ASSIGNDIR; everything is removed when dropped.
pub struct Site {
    pub server: Server,
    pub db: String,
    pub dir: tempfile::TempDir,
    pub env: Env,
    conn: Mutex<Conn>,
}

impl Site {
    /// A site on the shared test server.
    pub fn new() -> Site {
        Site::on(server())
    }

    /// A site on the given server.
    pub fn on(server: &Server) -> Site {
        static N: AtomicU32 = AtomicU32::new(0);
        let db = format!(
            "t_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = server.connect(None).expect("connect to MariaDB");
        admin
            .query_drop(format!("DROP DATABASE IF EXISTS {db}"))
            .unwrap();
        admin.query_drop(format!("CREATE DATABASE {db}")).unwrap();
        let mut conn = server.connect(Some(&db)).unwrap();
        for stmt in schema_statements() {
            conn.query_drop(&stmt).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("control")).unwrap();
        fs::create_dir(dir.path().join("users")).unwrap();
        let env = Env::from_pairs([
            ("SYSCONFDIR", dir.path().as_os_str().to_owned()),
            ("CONTROLDIR", dir.path().join("control").into_os_string()),
            ("ASSIGNDIR", dir.path().join("users").into_os_string()),
            (
                "MYSQL_HOST",
                format!(
                    "localhost:{}:{}:{}",
                    server.user,
                    server.password,
                    server.socket.display()
                )
                .into(),
            ),
            ("MYSQL_DATABASE", db.clone().into()),
            // An empty password field in the host line means "the default",
            // so the password (empty for the private server) goes here.
            ("MYSQL_PASSWD", server.password.clone().into()),
            ("DEFAULT_DOMAIN", "example.com".into()),
        ]);
        Site {
            server: server.clone(),
            db,
            dir,
            env,
            conn: Mutex::new(conn),
        }
    }

    pub fn config(&self) -> Config {
        Config::load(&self.env).expect("test configuration loads")
    }

    pub fn control(&self, name: &str, content: &str) {
        fs::write(self.dir.path().join("control").join(name), content).unwrap();
    }

    /// Run SQL on this site's database (on a fresh connection after the
    /// server was restarted).
    pub fn sql(&self, stmt: &str) {
        let mut conn = self.conn.lock().unwrap();
        if conn.query_drop(stmt).is_err() {
            *conn = self.server.connect(Some(&self.db)).unwrap();
            conn.query_drop(stmt).unwrap();
        }
    }

    pub fn sql_params(&self, stmt: &str, params: impl Into<mysql::Params>) {
        self.conn.lock().unwrap().exec_drop(stmt, params).unwrap();
    }

    /// A user row with the usual IndiMail values.
    pub fn add_user(&self, table: &str, user: &str, domain: &str, passwd: &str, gid: u32) {
        self.sql_params(
            &format!(
                "INSERT INTO {table} (pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell) \
                 VALUES (?, ?, ?, 1, ?, ?, ?, 'NOQUOTA')"
            ),
            (
                user,
                domain,
                passwd,
                gid,
                format!("{user} gecos"),
                format!("/home/mail/{domain}/{user}"),
            ),
        );
    }

    /// `INSERT INTO table (columns) VALUES` for each row (a parenthesised
    /// list of SQL literals), a thousand rows to a statement.
    pub fn insert_rows(&self, table: &str, columns: &str, rows: impl IntoIterator<Item = String>) {
        let rows: Vec<String> = rows.into_iter().collect();
        for chunk in rows.chunks(1000) {
            let stmt = format!("INSERT INTO {table} ({columns}) VALUES {}", chunk.join(","));
            self.conn
                .lock()
                .unwrap()
                .query_drop(&stmt)
                .unwrap_or_else(|e| panic!("{e}: {stmt}"));
        }
    }

    /// A mail directory `domains/D` for each of `domains`, listed in users/cdb;
    /// returns the `domains` directory.
    pub fn domain_dirs(&self, domains: &[&str]) -> PathBuf {
        let top = self.dir.path().join("domains");
        let dirs: Vec<PathBuf> = domains.iter().map(|d| top.join(d)).collect();
        for dir in &dirs {
            fs::create_dir_all(dir).unwrap();
        }
        let entries: Vec<(&str, &Path)> = domains
            .iter()
            .zip(&dirs)
            .map(|(d, p)| (*d, p.as_path()))
            .collect();
        self.users_cdb(&entries);
        top
    }

    /// A users/cdb with `domain -> dir` entries (qmail-newu's format).
    pub fn users_cdb(&self, entries: &[(&str, &Path)]) {
        let path = self.dir.path().join("users").join("cdb");
        let mut w = cdb::CDBWriter::create(path.to_string_lossy().into_owned()).unwrap();
        for (domain, dir) in entries {
            let v = format!("{domain}\x00555\x00555\x00{}\x00-\x00\x00", dir.display());
            w.add(format!("!{domain}-").as_bytes(), v.as_bytes())
                .unwrap();
        }
        w.finish().unwrap();
    }
}

impl Default for Site {
    fn default() -> Site {
        Site::new()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Ok(mut c) = self.server.connect(None) {
            let _ = c.query_drop(format!("DROP DATABASE IF EXISTS {}", self.db));
        }
    }
}
