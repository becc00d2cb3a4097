//! The servers of one logical database: a primary, then read replicas.
//!
//! Each server has its own bounded [`Pool`] and a health state. A server
//! that cannot be reached (refused, timed out, TLS failure, access denied)
//! or whose statement timed out is "down" for a retry interval: reads skip
//! it at once and go to the next server, so a dead or frozen server costs a
//! lookup at most one timeout, and later lookups nothing. Writes go to the
//! primary only, never to a replica, which would diverge from it.
//!
//! When there are replicas, a background probe tries the down servers every
//! retry interval, so the primary takes over again soon after it returns
//! without a client paying for the attempt. A lone server needs no probe:
//! when its interval has passed, the next lookup is the attempt (it would
//! fail anyway otherwise), and a site with many mailstores keeps no idle
//! thread per database.

use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mysql::{ClientIdentity, Conn, Opts, OptsBuilder, SslOpts};

use super::pool::{is_connection_error, Pool};
use super::{describe_mysql_error, DbError};

const DEFAULT_PORT: u16 = 3306;

/// TLS settings of a server (MYSQL_OPT_SSL_CA, _CERT, _KEY, _VERIFY_CERT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificate(s) the server certificate must chain to, in addition
    /// to the built-in public roots.
    pub ca: Option<PathBuf>,
    /// Client certificate and key, for servers that ask for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// False: accept any certificate and name (self-signed set-ups).
    pub verify_cert: bool,
}

impl TlsOptions {
    /// The crate's TLS options; a missing or unreadable file, or a
    /// certificate without its key, is told here rather than as an I/O
    /// error without a name at connect time.
    pub fn ssl_opts(&self) -> Result<SslOpts, String> {
        let readable = |what: &str, path: &PathBuf| {
            std::fs::File::open(path)
                .map(drop)
                .map_err(|e| format!("{what} {}: {}", path.display(), io_words(&e)))
        };
        let mut ssl = SslOpts::default();
        if let Some(ca) = &self.ca {
            readable("CA certificate", ca)?;
            ssl = ssl.with_root_cert_path(Some(ca.clone()));
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                readable("client certificate", cert)?;
                readable("client key", key)?;
                ssl =
                    ssl.with_client_identity(Some(ClientIdentity::new(cert.clone(), key.clone())));
            }
            (Some(_), None) => return Err("a client certificate needs its key too".into()),
            (None, Some(_)) => return Err("a client key needs its certificate too".into()),
            (None, None) => {}
        }
        if !self.verify_cert {
            ssl = ssl
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true);
        }
        Ok(ssl)
    }
}

fn io_words(e: &std::io::Error) -> String {
    crate::ctext::split_os_error(&e.to_string()).0.to_string()
}

/// How to reach one server.
#[derive(Clone)]
pub struct ServerSpec {
    pub host: String,
    /// 0: 3306.
    pub port: u16,
    /// A unix socket instead of TCP.
    pub socket: Option<PathBuf>,
    pub user: String,
    pub password: String,
    pub database: String,
    /// Some: TLS required (TCP only).
    pub tls: Option<TlsOptions>,
    /// The whole connect, handshake included; 0: none.
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
}

impl fmt::Debug for ServerSpec {
    // By hand: the password must never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSpec")
            .field("server", &self.label())
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .finish_non_exhaustive()
    }
}

impl ServerSpec {
    /// `user@host:port` or `user@/path/to/socket`: names the server in logs
    /// and answers, without the password.
    pub fn label(&self) -> String {
        match &self.socket {
            Some(socket) => format!("{}@{}", self.user, socket.display()),
            None if self.host.contains(':') => {
                format!("{}@[{}]:{}", self.user, self.host, self.port())
            }
            None => format!("{}@{}:{}", self.user, self.host, self.port()),
        }
    }

    fn port(&self) -> u16 {
        if self.port == 0 {
            DEFAULT_PORT
        } else {
            self.port
        }
    }

    /// The connection options. TLS with a unix socket is refused: the crate
    /// would connect in plain text.
    pub fn opts(&self) -> Result<Opts, DbError> {
        let tls_error = |reason: String| DbError::Tls {
            server: self.label(),
            reason,
        };
        let ssl = match &self.tls {
            None => None,
            Some(_) if self.socket.is_some() => {
                return Err(tls_error(format!(
                    "TLS needs a TCP connection; the server is given by its socket {}: \
                     give its host and port instead, or turn TLS off",
                    self.socket
                        .as_deref()
                        .unwrap_or_else(|| "".as_ref())
                        .display()
                )))
            }
            Some(tls) => Some(tls.ssl_opts().map_err(tls_error)?),
        };
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        let b = OptsBuilder::new()
            .ip_or_hostname(Some(self.host.clone()))
            .tcp_port(self.port())
            .socket(
                self.socket
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned()),
            )
            // Never switch to a socket behind our back: that would drop TLS,
            // and name another server than the one configured.
            .prefer_socket(false)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .db_name(Some(self.database.clone()))
            .tcp_connect_timeout(nonzero(self.connect_timeout))
            .read_timeout(nonzero(self.read_timeout))
            .write_timeout(nonzero(self.write_timeout))
            .stmt_cache_size(64)
            .ssl_opts(ssl);
        Ok(Opts::from(b))
    }
}

/// What all the servers of a database share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// How long a failed server is skipped (MYSQL_RETRY_INTERVAL).
    pub retry_interval: Duration,
    /// How many lookups may wait for a connection to one server, beyond
    /// those running on it.
    pub max_waiting: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            retry_interval: Duration::from_secs(5),
            max_waiting: 4,
        }
    }
}

/// The health of one server; the clock is passed in.
#[derive(Debug, Default)]
struct Health {
    down: Option<Down>,
}

#[derive(Debug)]
struct Down {
    reason: String,
    /// When it went down, and when it last failed.
    since: Instant,
    last: Instant,
    /// Not tried again before this, except by the one who claims the try.
    retry_at: Instant,
}

impl Health {
    fn is_up(&self) -> bool {
        self.down.is_none()
    }

    /// A down server whose interval has passed: the caller may try it, and
    /// nobody else may for another interval.
    fn claim_retry(&mut self, now: Instant, interval: Duration) -> bool {
        match &mut self.down {
            Some(d) if now >= d.retry_at => {
                d.retry_at = now + interval;
                true
            }
            _ => false,
        }
    }

    /// Give a claimed retry back: another caller may try at once.
    fn release_claim(&mut self, now: Instant) {
        if let Some(d) = &mut self.down {
            d.retry_at = now;
        }
    }

    fn mark_down(&mut self, now: Instant, interval: Duration, reason: String) {
        let since = self.down.as_ref().map_or(now, |d| d.since);
        self.down = Some(Down {
            reason,
            since,
            last: now,
            retry_at: now + interval,
        });
    }

    /// True when it was down.
    fn mark_up(&mut self) -> bool {
        self.down.take().is_some()
    }
}

struct Server {
    label: Arc<str>,
    pool: Pool,
    health: Mutex<Health>,
}

impl Server {
    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Shared {
    servers: Vec<Server>,
    settings: ServerSettings,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// One logical database on one or more servers, primary first.
pub struct Servers {
    shared: Arc<Shared>,
    probe: Option<JoinHandle<()>>,
}

thread_local! {
    static LAST_SERVER: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Which server answered the last `read` or `write` on this thread.
pub fn last_server() -> Option<Arc<str>> {
    LAST_SERVER.with(|l| l.borrow().clone())
}

/// Forget the last server (before a lookup that may need none).
pub fn clear_last_server() {
    LAST_SERVER.with(|l| *l.borrow_mut() = None);
}

/// What to do after a failure on one server.
enum Failure {
    /// The server is unusable for now: mark it down; a read tries the next.
    Down(DbError),
    /// Busy: a read tries the next server, nothing is marked.
    Busy(DbError),
    /// The statement failed (SQL error, bad data): another server would
    /// answer the same.
    Final(DbError),
}

impl Shared {
    fn classify(&self, server: &Server, e: DbError) -> Failure {
        match e {
            DbError::Connect(source) => match (server.pool.tls(), tls_failure(&source)) {
                (true, Some(reason)) => Failure::Down(DbError::Tls {
                    server: server.label.to_string(),
                    reason: strip_tls_prefix(&reason),
                }),
                _ => Failure::Down(DbError::Connect(source)),
            },
            e @ DbError::Tls { .. } => Failure::Down(e),
            DbError::Query { what, source } if is_connection_error(&source) => {
                Failure::Down(DbError::Query { what, source })
            }
            e @ DbError::Busy(_) => Failure::Busy(e),
            e => Failure::Final(e),
        }
    }

    fn mark_down(&self, server: &Server, e: &DbError) {
        let reason = match e {
            DbError::Tls { reason, .. } => format!("TLS: {reason}"),
            DbError::Connect(source) => describe_mysql_error(source),
            e => e.to_string(),
        };
        let was_up = {
            let mut h = server.health();
            let was_up = h.is_up();
            h.mark_down(Instant::now(), self.skip_after_failure(), reason.clone());
            was_up
        };
        if was_up {
            if self.servers.len() == 1 {
                log::warn!(
                    "database server {}: {reason}; tried again by the next lookup",
                    server.label
                );
            } else {
                log::warn!(
                    "database server {}: {reason}; skipped for {:?}",
                    server.label,
                    self.settings.retry_interval
                );
            }
            // Its other connections are as dead, or stuck behind the stalled
            // one: the server starts afresh when it is back.
            server.pool.close_all();
        } else {
            log::debug!("database server {} still down: {reason}", server.label);
        }
        self.wake.notify_all();
    }

    /// How long a server that just failed is skipped. One with replicas: the
    /// retry interval, while the replicas answer (the probe tries it). A lone
    /// server: not at all, since nothing else could answer; the next lookup
    /// tries it, and the first after it is back is answered.
    fn skip_after_failure(&self) -> Duration {
        if self.servers.len() == 1 {
            Duration::ZERO
        } else {
            self.settings.retry_interval
        }
    }

    fn mark_up(&self, server: &Server) {
        if server.health().mark_up() {
            log::info!("database server {} answers again", server.label);
        }
    }

    /// Run `attempt` on the servers in turn: the healthy ones in order, then,
    /// when none of them could answer, those whose retry interval has
    /// passed (primary first). `only_primary` for writes.
    fn run<T>(
        &self,
        only_primary: bool,
        mut attempt: impl FnMut(&Server) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let servers = if only_primary {
            &self.servers[..1]
        } else {
            &self.servers[..]
        };
        let mut last_error = None;
        let lone = self.servers.len() == 1;
        // The second round cannot take a server again: one tried in the
        // first was up, and is now either still up or down until later.
        // Each server is tried at most once per call: one that just failed
        // answers -1 now, and is tried again by the next lookup.
        let mut tried = vec![false; servers.len()];
        for retrying in [false, true] {
            for (i, server) in servers.iter().enumerate() {
                if tried[i] {
                    continue;
                }
                let go = {
                    let mut h = server.health();
                    if retrying {
                        h.claim_retry(Instant::now(), self.settings.retry_interval)
                    } else {
                        // A lone server is always tried: nothing else could
                        // answer. What keeps a frozen one from holding every
                        // worker is its pool's limits.
                        h.is_up() || lone
                    }
                };
                if !go {
                    continue;
                }
                tried[i] = true;
                match attempt(server).map_err(|e| self.classify(server, e)) {
                    Ok(v) => {
                        self.mark_up(server);
                        LAST_SERVER.with(|l| *l.borrow_mut() = Some(server.label.clone()));
                        return Ok(v);
                    }
                    Err(Failure::Final(e)) => {
                        // It answered: reachable, whatever the statement did.
                        self.mark_up(server);
                        return Err(e);
                    }
                    Err(Failure::Down(e)) => {
                        self.mark_down(server, &e);
                        last_error = Some(e);
                    }
                    Err(Failure::Busy(e)) => {
                        // A claimed retry that never reached the server
                        // must not hold the others off.
                        if retrying {
                            server.health().release_claim(Instant::now());
                        }
                        last_error = Some(e);
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| self.unavailable(servers)))
    }

    /// Every server down and none due for a try: the latest failure.
    fn unavailable(&self, servers: &[Server]) -> DbError {
        let now = Instant::now();
        let latest = servers
            .iter()
            .filter_map(|s| {
                let h = s.health();
                h.down.as_ref().map(|d| {
                    (
                        d.last,
                        s.label.to_string(),
                        d.reason.clone(),
                        d.retry_at.saturating_duration_since(now),
                    )
                })
            })
            .max_by_key(|d| d.0);
        match latest {
            Some((_, server, reason, retry_in)) => DbError::Unavailable {
                server,
                reason,
                retry_in,
            },
            // Only if a server came back meanwhile; the next lookup uses it.
            None => DbError::Busy(Duration::ZERO),
        }
    }

    /// The background probe: try each down server when its interval has
    /// passed, until told to stop.
    fn probe_loop(&self) {
        let mut stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *stop {
                return;
            }
            let now = Instant::now();
            let next = self
                .servers
                .iter()
                .filter_map(|s| s.health().down.as_ref().map(|d| d.retry_at))
                .min()
                .map_or(self.settings.retry_interval, |at| {
                    at.saturating_duration_since(now)
                });
            if !next.is_zero() {
                stop = self
                    .wake
                    .wait_timeout(stop, next)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            drop(stop);
            for server in &self.servers {
                let due = server
                    .health()
                    .claim_retry(Instant::now(), self.settings.retry_interval);
                if !due {
                    continue;
                }
                match server.pool.probe() {
                    Ok(()) => self.mark_up(server),
                    Err(e) => match self.classify(server, e) {
                        Failure::Down(e) | Failure::Final(e) => {
                            let reason = match &e {
                                DbError::Connect(s) => describe_mysql_error(s),
                                e => e.to_string(),
                            };
                            log::debug!("database server {} still down: {reason}", server.label);
                            server.health().mark_down(
                                Instant::now(),
                                self.settings.retry_interval,
                                reason,
                            );
                        }
                        Failure::Busy(_) => {}
                    },
                }
            }
            stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Servers {
    /// No connection is made here. A server whose options are refused (TLS
    /// on a socket, a missing certificate file) stays down with that reason.
    pub fn new(
        primary: ServerSpec,
        replicas: Vec<ServerSpec>,
        max_connections: usize,
        settings: ServerSettings,
    ) -> Servers {
        let servers: Vec<Server> = std::iter::once(primary)
            .chain(replicas)
            .map(|spec| {
                let label: Arc<str> = spec.label().into();
                let wait = spec.read_timeout;
                let pool = match spec.opts() {
                    Ok(opts) => Pool::new(opts, max_connections, wait),
                    Err(e) => {
                        let reason = match e {
                            DbError::Tls { reason, .. } => reason,
                            e => e.to_string(),
                        };
                        let opts = OptsBuilder::new()
                            .ip_or_hostname(Some(spec.host.clone()))
                            .tcp_port(spec.port())
                            .socket(spec.socket.as_ref().map(|p| p.to_string_lossy()))
                            .user(Some(spec.user.clone()));
                        Pool::new(opts.into(), max_connections, wait).with_refusal(reason)
                    }
                }
                .with_max_waiting(settings.max_waiting);
                Server {
                    label,
                    pool,
                    health: Mutex::new(Health::default()),
                }
            })
            .collect();
        let has_replicas = servers.len() > 1;
        let shared = Arc::new(Shared {
            servers,
            settings,
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let probe = has_replicas.then(|| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("db-probe".into())
                .spawn(move || shared.probe_loop())
                .expect("start the database probe thread")
        });
        Servers { shared, probe }
    }

    /// A read: on the first healthy server in order (primary first). A
    /// server that fails to connect or times out is marked down and skipped
    /// for the retry interval; the read goes on to the next server at once.
    /// A server with as many lookups waiting as allowed is passed over too.
    pub fn read<T>(
        &self,
        what: &'static str,
        mut f: impl FnMut(&mut Conn) -> mysql::Result<T>,
    ) -> Result<T, DbError> {
        self.shared.run(false, |s| s.pool.run(what, &mut f))
    }

    /// A write: on the primary only, never a replica. Down: `Err` at once.
    pub fn write<T>(
        &self,
        what: &'static str,
        mut f: impl FnMut(&mut Conn) -> mysql::Result<T>,
    ) -> Result<T, DbError> {
        self.shared.run(true, |s| s.pool.run(what, &mut f))
    }

    /// A connection of its own on the first healthy server, with its own
    /// read timeout (bulk reads such as the pre-cache); closed when dropped.
    pub fn connect_once(&self, read_timeout: Duration) -> Result<Conn, DbError> {
        self.shared
            .run(false, |s| s.pool.connect_once(read_timeout))
    }

    /// Close the idle connections now and the busy ones when they come back.
    pub fn close_all(&self) {
        for s in &self.shared.servers {
            s.pool.close_all();
        }
    }

    /// (connections open now, connections made since start), over all servers.
    pub fn counts(&self) -> (usize, u64) {
        self.shared
            .servers
            .iter()
            .map(|s| s.pool.counts())
            .fold((0, 0), |(o, m), (o2, m2)| (o + o2, m + m2))
    }

    /// Why the primary cannot be reached, in words (and which replica
    /// answers instead); `None` while the primary is up.
    pub fn connect_failure(&self) -> Option<String> {
        let servers = &self.shared.servers;
        let primary = &servers[0];
        let reason = primary.health().down.as_ref()?.reason.clone();
        let mut text = format!("{}: {reason}", primary.label);
        match servers[1..].iter().find(|s| s.health().is_up()) {
            Some(replica) => text.push_str(&format!("; reads go to {}", replica.label)),
            None => {
                for s in &servers[1..] {
                    if let Some(d) = &s.health().down {
                        text.push_str(&format!("; {}: {}", s.label, d.reason));
                    }
                }
            }
        }
        Some(text)
    }

    pub fn primary_label(&self) -> String {
        self.shared.servers[0].label.to_string()
    }

    /// Each server's label, and whether it is up.
    pub fn health(&self) -> Vec<(String, bool)> {
        self.shared
            .servers
            .iter()
            .map(|s| (s.label.to_string(), s.health().is_up()))
            .collect()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(probe) = self.probe.take() {
            let _ = probe.join();
        }
    }
}

/// The error in words when TLS failed: the server offers none, or the
/// handshake or certificate check failed (which the crate reports as an I/O
/// error around the TLS library's).
pub(crate) fn tls_failure(e: &mysql::Error) -> Option<String> {
    use mysql::{DriverError, Error};
    let rustls_in_io = |io: &std::io::Error| {
        io.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(rustls_words)
    };
    match e {
        Error::TlsError(mysql::error::tls::TlsError::Tls(t)) => Some(rustls_words(t)),
        Error::TlsError(t) => Some(format!("TLS: {t}")),
        Error::DriverError(DriverError::TlsNotSupported) => {
            Some("TLS: the server does not offer TLS, which this connection requires".into())
        }
        Error::IoError(io) => rustls_in_io(io),
        Error::CodecError(c) => std::error::Error::source(c)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .and_then(rustls_in_io),
        _ => None,
    }
}

/// The certificate errors an administrator meets, in words; the others as
/// the TLS library tells them. Every one starts with "TLS: ".
fn rustls_words(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "TLS: the server certificate is not signed by the CA given (MYSQL_OPT_SSL_CA) \
             nor by a public one"
                .to_string()
        }
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => {
            "TLS: the server certificate is not for this host name or address".to_string()
        }
        e => format!("TLS: {e}"),
    }
}

fn strip_tls_prefix(s: &str) -> String {
    s.strip_prefix("TLS: ").unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServerSpec {
        ServerSpec {
            host: "127.0.0.1".into(),
            port: 3313,
            socket: None,
            user: "indimail".into(),
            password: "s3cret-pw".into(),
            database: "indimail".into(),
            tls: None,
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(4),
        }
    }

    #[test]
    fn labels_name_the_server_never_the_password() {
        let mut s = spec();
        assert_eq!(s.label(), "indimail@127.0.0.1:3313");
        s.port = 0;
        assert_eq!(s.label(), "indimail@127.0.0.1:3306");
        s.host = "::1".into();
        assert_eq!(s.label(), "indimail@[::1]:3306");
        s.socket = Some("/run/mysqld/mysqld.sock".into());
        assert_eq!(s.label(), "indimail@/run/mysqld/mysqld.sock");
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(
            debug.contains("indimail@/run/mysqld/mysqld.sock"),
            "{debug}"
        );
    }

    #[test]
    fn opts_carry_the_spec() {
        let o = spec().opts().unwrap();
        assert_eq!(o.get_tcp_port(), 3313);
        assert_eq!(o.get_socket(), None);
        assert!(!o.get_prefer_socket());
        assert_eq!(o.get_user(), Some("indimail"));
        assert_eq!(o.get_db_name(), Some("indimail"));
        assert_eq!(o.get_tcp_connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(o.get_read_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(o.get_write_timeout(), Some(&Duration::from_secs(4)));
        assert!(o.get_ssl_opts().is_none());
        let mut s = spec();
        s.socket = Some("/tmp/x.sock".into());
        s.connect_timeout = Duration::ZERO;
        let o = s.opts().unwrap();
        assert_eq!(o.get_socket(), Some("/tmp/x.sock"));
        assert_eq!(o.get_tcp_connect_timeout(), None);
    }

    #[test]
    fn tls_opts_are_built_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let mut s = spec();
        s.tls = Some(TlsOptions {
            ca: Some(ca.clone()),
            cert: None,
            key: None,
            verify_cert: true,
        });
        let o = s.opts().unwrap();
        let ssl = o.get_ssl_opts().expect("TLS on");
        assert_eq!(ssl.root_cert_path(), Some(ca.as_path()));
        assert!(!ssl.accept_invalid_certs() && !ssl.skip_domain_validation());
        assert!(ssl.client_identity().is_none());

        // Verification off: any certificate, any name.
        let mut t = s.tls.clone().unwrap();
        t.verify_cert = false;
        t.cert = Some(ca.clone());
        t.key = Some(ca.clone());
        s.tls = Some(t);
        let o = s.opts().unwrap();
        let ssl = o.get_ssl_opts().unwrap();
        assert!(ssl.accept_invalid_certs() && ssl.skip_domain_validation());
        assert_eq!(
            ssl.client_identity().unwrap().cert_chain_path(),
            ca.as_path()
        );

        // A missing CA file is named.
        let mut t = s.tls.clone().unwrap();
        t.ca = Some(dir.path().join("nope.pem"));
        s.tls = Some(t);
        let e = s.opts().unwrap_err().to_string();
        assert!(
            e.contains("CA certificate") && e.contains("nope.pem"),
            "{e}"
        );
        assert!(e.starts_with("indimail@127.0.0.1:3313: TLS: "), "{e}");

        // A key without its certificate.
        let mut t = s.tls.clone().unwrap();
        t.ca = None;
        t.cert = None;
        s.tls = Some(t);
        assert!(s
            .opts()
            .unwrap_err()
            .to_string()
            .contains("needs its certificate"));
    }

    #[test]
    fn tls_on_a_socket_is_refused_not_sent_in_plain_text() {
        let mut s = spec();
        s.socket = Some("/run/mysqld/mysqld.sock".into());
        s.tls = Some(TlsOptions {
            ca: None,
            cert: None,
            key: None,
            verify_cert: true,
        });
        match s.opts() {
            Err(DbError::Tls { server, reason }) => {
                assert_eq!(server, "indimail@/run/mysqld/mysqld.sock");
                assert!(
                    reason.starts_with("TLS needs a TCP connection; "),
                    "{reason}"
                );
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        // And the Servers built from it say so without connecting.
        let servers = Servers::new(s, vec![], 2, ServerSettings::default());
        let e = servers.read("t", |_| Ok(())).unwrap_err();
        assert!(matches!(e, DbError::Tls { .. }), "{e}");
        assert!(!servers.health()[0].1);
        let why = servers.connect_failure().unwrap();
        assert!(why.contains("TLS needs a TCP connection"), "{why}");
        assert_eq!(servers.counts(), (0, 0));
    }

    #[test]
    fn health_skips_a_down_server_for_the_interval_and_one_caller_retries() {
        let t0 = Instant::now();
        let i = Duration::from_secs(5);
        let mut h = Health::default();
        assert!(h.is_up());
        assert!(!h.claim_retry(t0, i), "an up server needs no retry");
        h.mark_down(t0, i, "refused".into());
        assert!(!h.is_up());
        assert!(!h.claim_retry(t0 + Duration::from_secs(4), i));
        assert!(h.claim_retry(t0 + i, i), "due");
        assert!(!h.claim_retry(t0 + i, i), "claimed by the first caller");
        assert!(h.claim_retry(t0 + 2 * i, i));
        // Failing again keeps the first time it went down.
        h.mark_down(t0 + 2 * i, i, "timeout".into());
        let d = h.down.as_ref().unwrap();
        assert_eq!(
            (d.since, d.last, d.reason.as_str()),
            (t0, t0 + 2 * i, "timeout")
        );
        assert_eq!(d.retry_at, t0 + 3 * i);
        assert!(h.mark_up());
        assert!(h.is_up() && !h.mark_up());
    }

    #[test]
    fn tls_failures_are_told_in_words() {
        let e = mysql::Error::DriverError(mysql::DriverError::TlsNotSupported);
        assert_eq!(
            tls_failure(&e).unwrap(),
            "TLS: the server does not offer TLS, which this connection requires"
        );
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        );
        let text = describe_mysql_error(&mysql::Error::IoError(io));
        assert!(text.starts_with("TLS: invalid peer certificate"), "{text}");
        let plain = mysql::Error::IoError(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(tls_failure(&plain), None);
        // A timeout, and a lost connection, in words rather than the
        // crate's `CodecError { .. }`.
        let timeout = mysql::Error::CodecError(std::io::Error::from_raw_os_error(11).into());
        assert_eq!(
            describe_mysql_error(&timeout),
            "no answer from the server within the timeout"
        );
        let eof = mysql::Error::CodecError(
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed").into(),
        );
        assert_eq!(describe_mysql_error(&eof), "connection closed");
    }

    #[test]
    fn no_probe_thread_for_a_lone_server_and_none_left_after_drop() {
        let lone = Servers::new(spec(), vec![], 1, ServerSettings::default());
        assert!(lone.probe.is_none());
        let with_replica = Servers::new(spec(), vec![spec()], 1, ServerSettings::default());
        let probe = with_replica.probe.as_ref().unwrap().thread().clone();
        assert_eq!(probe.name(), Some("db-probe"));
        let started = Instant::now();
        drop(with_replica);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
