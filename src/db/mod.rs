//! The IndiMail lookups on MySQL/MariaDB (single-database site).
//!
//! Every lookup returns a typed answer that keeps "found", "not found" and
//! "database error" apart: `Ok(None)` or an "absent" status means the
//! database said so; `Err(DbError)` is a temporary failure that the daemon
//! answers with -1. SQL is always parameterised; table names come from the
//! validated configuration.

pub mod auth;
pub mod binlog;
pub mod change;
pub mod cluster;
pub(crate) mod control_files;
mod dbinfo;
mod lookups;
pub mod pool;
pub mod servers;
pub mod store;

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use crate::cache::Policy;
use crate::config::cluster::DbRecord;
use crate::config::{Config, LookupConfig, MysqlConfig, OptionFile, Paths, Replicas, TlsSettings};
use cluster::{Cluster, Place};
use servers::{ServerSettings, ServerSpec, Servers, TlsOptions};
use store::Store;

pub use lookups::{gid, limit_flags, Route};

/// Where the Debian/Ubuntu and RHEL MariaDB packages put the server socket;
/// libmysqlclient uses its compiled-in default the same way for `localhost`.
pub const DEFAULT_SOCKET: &str = "/run/mysqld/mysqld.sock";

/// A temporary failure: the lookup could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to MySQL: {}", describe_mysql_error(.0))]
    Connect(mysql::Error),
    #[error("{what}: {}", describe_mysql_error(.source))]
    Query {
        what: &'static str,
        source: mysql::Error,
    },
    /// No connection came free within the wait; `Duration::ZERO`: not
    /// waited at all, because as many callers as allowed wait already.
    #[error("{}", busy_text(*.0))]
    Busy(Duration),
    #[error("{0}")]
    BadData(String),
    /// The error a concurrent lookup of the same route ran into.
    #[error("{0}")]
    Earlier(Arc<str>),
    /// TLS was required and could not be had: never a plain-text fallback.
    #[error("{server}: TLS: {reason}")]
    Tls { server: String, reason: String },
    /// Every server of the database failed lately and none is due for
    /// another try: the lookup fails at once.
    #[error("{server}: {reason} (tried again within {} s)", .retry_in.as_secs_f64().ceil())]
    Unavailable {
        server: String,
        reason: String,
        retry_in: Duration,
    },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A MySQL error in words for an administrator's log: what failed and why, never
/// the crate's debug form (`DriverError { ... }`), never a password.
pub fn describe_mysql_error(e: &mysql::Error) -> String {
    use mysql::{DriverError, Error};
    if let Some(tls) = servers::tls_failure(e) {
        return tls;
    }
    if pool::is_timeout(e) {
        return "no answer from the server within the timeout".to_string();
    }
    let without_os_error = |text: &str| crate::ctext::split_os_error(text).0.to_string();
    match e {
        Error::IoError(io) => without_os_error(&io.to_string()),
        Error::CodecError(c) => {
            match std::error::Error::source(c).and_then(|s| s.downcast_ref::<std::io::Error>()) {
                Some(io) => without_os_error(&io.to_string()),
                None => c.to_string(),
            }
        }
        Error::DriverError(DriverError::CouldNotConnect(Some((addr, desc, _)))) => {
            format!("cannot reach {addr}: {}", without_os_error(desc))
        }
        Error::DriverError(DriverError::CouldNotConnect(None)) => {
            "cannot reach the server".to_string()
        }
        Error::DriverError(DriverError::ConnectTimeout) => {
            "no answer from the server within the connect timeout".to_string()
        }
        Error::DriverError(d) => d.to_string(),
        Error::MySqlError(m) => match m.code {
            1044 | 1045 => format!("access denied ({})", m.message),
            1049 => format!("no such database ({})", m.message),
            _ => format!("{} (error {})", m.message, m.code),
        },
        other => other.to_string(),
    }
}

fn busy_text(wait: Duration) -> String {
    if wait.is_zero() {
        "too many lookups wait for this database server already; not waiting".to_string()
    } else {
        format!("no free database connection within {wait:?}")
    }
}

/// The longest user part an IndiMail address can have: `pw_name` (and every
/// other user column) is char(40).
pub const MAX_USER: usize = 40;
/// The longest domain: `pw_domain` (and every other domain column) is
/// char(67).
pub const MAX_DOMAIN: usize = 67;
/// The longest IP address the `relay` table holds (`ipaddr` char(46)).
pub const MAX_IP: usize = 46;

/// Could this be an IndiMail address or domain: printable ASCII without
/// spaces, not empty? Anything else is answered "absent" without SQL.
pub fn plausible_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(u8::is_ascii_graphic)
}

/// Could this be a domain of this site: a plausible name the domain columns
/// can hold (at most [`MAX_DOMAIN`] bytes)?
pub fn plausible_domain(name: &[u8]) -> bool {
    plausible_name(name) && name.len() <= MAX_DOMAIN
}

/// Could this be the IP of a relay entry: a plausible name of at most
/// [`MAX_IP`] bytes?
pub fn plausible_ip(ip: &[u8]) -> bool {
    plausible_name(ip) && ip.len() <= MAX_IP
}

/// Could an IndiMail account have this login? Printable ASCII without quotes or
/// backslashes, a user part of 1 to 40 bytes and, after the first `@`, `%` or `:`, a
/// domain of 1 to 67 bytes. Anything else is "no such user" without a lookup.
pub fn plausible_login(login: &[u8]) -> bool {
    let allowed = |b: &u8| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'`' | b'\\');
    if !login.iter().all(allowed) {
        return false;
    }
    match login.iter().position(|b| matches!(b, b'@' | b'%' | b':')) {
        Some(i) => {
            let domain_len = login.len() - i - 1;
            (1..=MAX_USER).contains(&i) && (1..=MAX_DOMAIN).contains(&domain_len)
        }
        None => (1..=MAX_USER).contains(&login.len()),
    }
}

/// An address split as IndiMail's parse_email does, lower-cased as its SQL
/// lookups do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub user: String,
    /// The domain, lower-cased.
    pub domain: String,
    /// The domain exactly as the client typed it (HOST replies echo it).
    pub typed_domain: String,
}

impl Address {
    /// Split at the first `@`, `%` or `:`; no separator means the default
    /// domain. `None` for anything no IndiMail account can have: an empty
    /// part, whitespace, control characters or bytes outside ASCII (IndiMail
    /// user names are ASCII, and domains are in their ASCII form), a user
    /// part over [`MAX_USER`] or a domain over [`MAX_DOMAIN`] bytes. Such an
    /// address is "absent" without asking the database; so no value reaches
    /// SQL that a column's character set could not hold, or compare equal
    /// to another through its collation's accent rules.
    pub fn parse(email: &[u8], default_domain: Option<&str>) -> Option<Address> {
        if !plausible_name(email) {
            return None;
        }
        let email = std::str::from_utf8(email).ok()?;
        let (user, domain) = match email.find(['@', '%', ':']) {
            Some(i) => (&email[..i], &email[i + 1..]),
            None => (email, default_domain?),
        };
        if user.is_empty() || domain.is_empty() {
            return None;
        }
        // Longer than the columns: no row can match, and the cache keeps no
        // answer about it (a flood of such names costs neither SQL nor memory).
        if user.len() > MAX_USER || domain.len() > MAX_DOMAIN {
            return None;
        }
        Some(Address {
            user: user.to_ascii_lowercase(),
            domain: domain.to_ascii_lowercase(),
            typed_domain: domain.to_string(),
        })
    }

    /// `user@domain`, normalised: the name the cache knows the address by.
    pub fn key(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }
}

/// The lookups and what they need: the databases and the settings.
pub struct Database {
    /// The host.mysql database: a single-database site's only one.
    local: Arc<Store>,
    /// A clustered site's records, databases and routes.
    cluster: Option<Cluster>,
    /// This host's address, for HOST answers when control/hostip is missing.
    host_address: std::sync::OnceLock<String>,
    /// users/cdb, kept open while it does not change.
    cdb: std::sync::Mutex<Option<control_files::OpenCdb>>,
    /// The alias domains lookups have met, by real domain: the answers
    /// cached under them go when a row of the real domain changes.
    aliases_seen:
        std::sync::Mutex<std::collections::HashMap<String, std::collections::BTreeSet<String>>>,
    sql: lookups::Statements,
    mysql: MysqlConfig,
    lookup: LookupConfig,
    paths: Paths,
}

impl Database {
    /// A single-database site. No connection is made here; the first lookup
    /// connects.
    pub fn new(
        mysql: MysqlConfig,
        lookup: LookupConfig,
        paths: Paths,
        max_connections: usize,
    ) -> Database {
        let connections = Connections {
            tls: TlsSettings::default(),
            replicas: Replicas::default(),
            option_file: OptionFile::default(),
            max: max_connections,
            settings: ServerSettings {
                max_waiting: max_connections,
                ..ServerSettings::default()
            },
        };
        Database::single(mysql, lookup, paths, &connections)
    }

    fn single(
        mysql: MysqlConfig,
        lookup: LookupConfig,
        paths: Paths,
        connections: &Connections,
    ) -> Database {
        let local = Arc::new(connections.store(&mysql));
        let sql = lookups::Statements::new(&mysql.table, &mysql.inactive_table, &mysql.relay_table);
        Database {
            local,
            cluster: None,
            host_address: std::sync::OnceLock::new(),
            cdb: std::sync::Mutex::new(None),
            aliases_seen: Default::default(),
            sql,
            mysql,
            lookup,
            paths,
        }
    }

    /// The site the configuration describes: clustered when it has a cluster
    /// definition. Records with the same connection share one database (and
    /// one pool); a local record with host.mysql's connection shares
    /// host.mysql's. `route_policy`: how long user routes are cached (the
    /// answer cache's policy); `None` caches none.
    pub fn for_config(
        config: &Config,
        max_connections: usize,
        route_policy: Option<Policy>,
    ) -> Database {
        // A connect or a statement must give up while the client still
        // waits for the answer (-1 is better than no answer): with at most
        // a second's wait for a connection before it (see pool.rs), 1.5 s
        // before the clients' deadline (control/timeoutread), at most. The
        // pre-cache reads on a connection with a timeout of its own.
        let most = config
            .timeouts
            .read
            .saturating_sub(Duration::from_millis(1500))
            .max(Duration::from_secs(1));
        let capped = |c: &MysqlConfig| MysqlConfig {
            connect_timeout: c.connect_timeout.min(most),
            read_timeout: c.read_timeout.min(most),
            write_timeout: c.write_timeout.min(most),
            ..c.clone()
        };
        let local = capped(&config.mysql);
        // Every database of a clustered site gets half the workers'
        // connections, and a quarter more may wait for one: a database that
        // is down or frozen holds up at most three quarters of the workers,
        // and the others keep answering for the other databases.
        let clustered = config.cluster.is_some();
        let (max, waiting) = if clustered {
            ((max_connections / 2).max(1), (max_connections / 4).max(1))
        } else {
            (max_connections, max_connections)
        };
        let connections = Connections {
            tls: config.tls.clone(),
            replicas: config.replicas.clone(),
            option_file: config.option_file.clone(),
            max,
            settings: ServerSettings {
                retry_interval: config.retry_interval,
                max_waiting: waiting,
            },
        };
        let mut db = Database::single(
            local.clone(),
            config.lookup.clone(),
            config.paths.clone(),
            &connections,
        );
        let Some(site) = &config.cluster else {
            return db;
        };
        let central = site
            .central
            .as_ref()
            .map(|c| Arc::new(connections.store(&capped(c))));
        let mut made: Vec<(MysqlConfig, Arc<Store>)> = vec![(local.clone(), db.local.clone())];
        let store_of = |r: &DbRecord| {
            let mut settings = record_mysql(r, &local);
            crate::config::central::fill_from_option_file(&mut settings, &connections.option_file);
            let settings = capped(&settings);
            if let Some((_, s)) = made.iter().find(|(m, _)| same_database(m, &settings)) {
                return s.clone();
            }
            let store = Arc::new(connections.store(&settings));
            made.push((settings, store.clone()));
            store
        };
        // With control/host.master, the central database's dbinfo table
        // may hold a newer copy of the definition (C's sync; read only).
        let mut definition = site.definition.clone();
        if config.paths.control_file("host.master").exists() {
            if let Some(central) = &central {
                match dbinfo::newer_definition(central, &definition) {
                    Ok(Some(newer)) => {
                        log::info!(
                            "InLookup: the dbinfo table is newer than {}: using its {} records",
                            definition.path.display(),
                            newer.records.len()
                        );
                        definition = newer;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        log::warn!("InLookup: dbinfo: {e}; using {}", definition.path.display())
                    }
                }
            }
        }
        db.cluster = Some(Cluster::new(
            definition,
            central,
            &site.cntrl_table,
            store_of,
            route_policy,
        ));
        db
    }

    /// Run `f` on the database of the user `addr` (at its real domain
    /// `domain`); `absent` when no database holds the user.
    fn on_users_store<T>(
        &self,
        addr: &Address,
        domain: &str,
        absent: impl FnOnce() -> T,
        f: impl FnOnce(&Store) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let Some(cluster) = &self.cluster else {
            return f(&self.local);
        };
        match cluster.place(&addr.user, domain)? {
            Place::Record(_, store) => f(store),
            Place::Nowhere => Ok(absent()),
        }
    }

    /// The database of a user (real domain), for the writes of a login.
    fn store_for(&self, user: &str, domain: &str) -> Result<&Store, DbError> {
        let Some(cluster) = &self.cluster else {
            return Ok(&self.local);
        };
        let (user, domain) = (user.to_ascii_lowercase(), domain.to_ascii_lowercase());
        match cluster.place(&user, &domain)? {
            Place::Record(_, store) => Ok(store),
            Place::Nowhere => Err(DbError::BadData(format!(
                "no database of this site holds {user}@{domain}"
            ))),
        }
    }

    /// The databases that hold users: host.mysql's, or every mailstore's.
    fn mailstores(&self) -> Vec<Arc<Store>> {
        match &self.cluster {
            None => vec![self.local.clone()],
            Some(c) if c.stores().is_empty() => vec![self.local.clone()],
            Some(c) => c.stores().to_vec(),
        }
    }

    /// Every database this site uses, each once.
    fn all_stores(&self) -> Vec<Arc<Store>> {
        let mut all = vec![self.local.clone()];
        if let Some(c) = &self.cluster {
            for s in c.all_stores() {
                if !all.iter().any(|a| Arc::ptr_eq(a, s)) {
                    all.push(s.clone());
                }
            }
        }
        all
    }

    /// The servers whose changes the cached answers depend on: each
    /// database's first server, once per server and database.
    pub fn followed_servers(&self) -> Vec<ServerSpec> {
        let mut specs: Vec<ServerSpec> = Vec::new();
        for store in self.all_stores() {
            let p = store.primary();
            let same = |s: &ServerSpec| {
                s.host == p.host
                    && s.port == p.port
                    && s.socket == p.socket
                    && s.database == p.database
            };
            if !specs.iter().any(same) {
                specs.push(p.clone());
            }
        }
        specs
    }

    /// Whether this is a clustered site.
    pub fn is_clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// Close the connections (INT / HUP); the next lookup reconnects.
    pub fn close_connections(&self) {
        for s in self.all_stores() {
            s.close_all();
        }
    }

    /// (connections open now, connections made since start), over every
    /// database.
    pub fn connection_counts(&self) -> (usize, u64) {
        self.all_stores().iter().fold((0, 0), |(o, m), s| {
            let (so, sm) = s.counts();
            (o + so, m + sm)
        })
    }

    /// Statements run since start, over every database.
    pub fn statements(&self) -> u64 {
        self.all_stores().iter().map(|s| s.statements()).sum()
    }

    /// Why the last attempt to connect failed, when none has succeeded since:
    /// of the first database that cannot be reached, named.
    pub fn connect_failure(&self) -> Option<String> {
        let all = self.all_stores();
        let single = all.len() == 1;
        all.iter().find_map(|s| {
            let why = s.connect_failure()?;
            Some(if single {
                why
            } else {
                format!("{}: {why}", s.label())
            })
        })
    }

    /// The alias domains of `real` that lookups have met since start.
    pub fn aliases_seen(&self, real: &str) -> Vec<String> {
        let seen = self.aliases_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(real)
            .map_or_else(Vec::new, |s| s.iter().cloned().collect())
    }

    /// Note that lookups met `alias` as an alias domain of `real`.
    pub(crate) fn saw_alias(&self, real: &str, alias: &str) {
        let mut seen = self.aliases_seen.lock().unwrap_or_else(|e| e.into_inner());
        let aliases = seen.entry(real.to_string()).or_default();
        if !aliases.contains(alias) {
            aliases.insert(alias.to_string());
        }
    }

    /// Forget the cached routes of an address or a domain (a flush).
    pub fn forget_routes(&self, name: &str) -> usize {
        self.cluster.as_ref().map_or(0, |c| c.forget_routes(name))
    }

    /// Forget every cached route (a change that cannot be told apart).
    pub fn forget_all_routes(&self) -> usize {
        self.cluster.as_ref().map_or(0, |c| c.forget_all_routes())
    }

    /// The table of a clustered site's user routes; `None` on a
    /// single-database site, which reads none.
    pub fn cntrl_table(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.cntrl_table())
    }

    pub fn mysql_config(&self) -> &MysqlConfig {
        &self.mysql
    }

    pub fn lookup_config(&self) -> &LookupConfig {
        &self.lookup
    }

    /// Split an address with this site's default domain.
    pub fn address(&self, email: &[u8]) -> Option<Address> {
        Address::parse(email, self.lookup.default_domain.as_deref())
    }
}

/// Whether two connection settings reach the same database the same way:
/// everything a connection is made with (not where the settings came from).
fn same_database(a: &MysqlConfig, b: &MysqlConfig) -> bool {
    (
        &a.host,
        a.port,
        &a.socket,
        &a.user,
        &a.password,
        &a.database,
        a.ssl,
    ) == (
        &b.host,
        b.port,
        &b.socket,
        &b.user,
        &b.password,
        &b.database,
        b.ssl,
    )
}

/// A record's connection settings as a host line would give them, with
/// host.mysql's tables and timeouts.
fn record_mysql(r: &DbRecord, local: &MysqlConfig) -> MysqlConfig {
    MysqlConfig {
        host: r.servers.first().cloned().unwrap_or_default(),
        user: r.user.clone(),
        password: r.password.clone(),
        socket: r.socket.clone(),
        port: r.port,
        ssl: r.use_ssl,
        database: r.database.clone(),
        source: r.origin.clone(),
        ..local.clone()
    }
}

/// What every database of a site is reached with.
struct Connections {
    tls: TlsSettings,
    replicas: Replicas,
    option_file: OptionFile,
    /// Connections per server.
    max: usize,
    settings: ServerSettings,
}

impl Connections {
    /// The database of a connection line (host.mysql, host.cntrl, a
    /// record): its server, then the read replicas `control/replicas` lists
    /// for it, with the same account, database and TLS.
    fn store(&self, c: &MysqlConfig) -> Store {
        let primary = self.spec(c);
        let label = format!("{}/{}", primary.label(), c.database);
        let replicas = self
            .replicas
            .of(&c.host, c.port, c.socket.as_deref())
            .iter()
            .map(|r| ServerSpec {
                host: r.host.clone(),
                port: r.port,
                socket: r.socket.clone(),
                ..primary.clone()
            })
            .collect();
        Store::new(
            Servers::new(primary.clone(), replicas, self.max, self.settings),
            primary,
            label,
        )
    }

    fn spec(&self, c: &MysqlConfig) -> ServerSpec {
        let socket = c.socket.clone().or_else(|| {
            (c.port == 0 && (c.host == "localhost" || c.host.is_empty()))
                .then(|| PathBuf::from(DEFAULT_SOCKET))
        });
        let tls = (c.ssl || self.tls.enforce).then(|| TlsOptions {
            ca: self.tls.ca.clone(),
            cert: self.tls.cert.clone(),
            key: self.tls.key.clone(),
            verify_cert: self.tls.verify_cert,
        });
        ServerSpec {
            host: c.host.clone(),
            port: c.port,
            socket,
            user: c.user.clone(),
            password: c.password.clone(),
            database: c.database.clone(),
            tls,
            connect_timeout: c.connect_timeout,
            read_timeout: c.read_timeout,
            write_timeout: c.write_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_no_account_can_have() {
        for ok in [
            &b"joe"[..],
            b"joe@example.com",
            b"joe%example.com",
            b"joe:example.com",
            b"Joe.Smith+x@Example.COM",
        ] {
            assert!(plausible_login(ok), "{ok:?}");
        }
        let long_user = [b'a'; 41];
        let mut long_domain = b"joe@".to_vec();
        long_domain.extend([b'd'; 68]);
        for bad in [
            &b""[..],
            b"@example.com",
            b"joe@",
            b"jo e@example.com",
            b"joe\"@example.com",
            b"joe'--@example.com",
            b"joe\\@example.com",
            b"joe\n@example.com",
            b"j\xc3\xb6e@example.com",
            &long_user,
            &long_domain,
        ] {
            assert!(!plausible_login(bad), "{bad:?}");
        }
        assert!(plausible_login(&[b'a'; 40]));
    }

    #[test]
    fn address_split_and_case() {
        let a = Address::parse(b"Joe@Example.COM", None).unwrap();
        assert_eq!((a.user.as_str(), a.domain.as_str()), ("joe", "example.com"));
        assert_eq!(a.typed_domain, "Example.COM");
        let a = Address::parse(b"joe%example.com", None).unwrap();
        assert_eq!(a.domain, "example.com");
        let a = Address::parse(b"joe:example.com", None).unwrap();
        assert_eq!(a.domain, "example.com");
        // Only the first separator splits.
        let a = Address::parse(b"a@b@c", None).unwrap();
        assert_eq!((a.user.as_str(), a.domain.as_str()), ("a", "b@c"));
    }

    #[test]
    fn address_default_domain() {
        assert_eq!(Address::parse(b"joe", None), None);
        let a = Address::parse(b"joe", Some("example.com")).unwrap();
        assert_eq!(a.domain, "example.com");
    }

    #[test]
    fn address_rejects_what_no_account_has() {
        for bad in [
            &b""[..],
            b"@example.com",
            b"joe@",
            b"jo e@example.com",
            b"joe@example.com ",
            b"joe\0@example.com",
            b"joe\t@example.com",
            b"joe\x7f@example.com",
            b"j\xffe@example.com",
        ] {
            assert_eq!(Address::parse(bad, Some("d.com")), None, "{bad:?}");
        }
        // Not ASCII: no IndiMail account has it.
        assert_eq!(Address::parse("jöe@example.com".as_bytes(), None), None);
        assert_eq!(Address::parse("joe@exämple.com".as_bytes(), None), None);
    }

    #[test]
    fn address_longer_than_the_columns_is_no_address() {
        let user = |n: usize| "u".repeat(n);
        let domain = |n: usize| format!("{}.com", "d".repeat(n - 4));
        let parse = |s: String| Address::parse(s.as_bytes(), Some("d.com"));
        assert!(parse(format!("{}@{}", user(40), domain(67))).is_some());
        assert!(parse(user(40)).is_some());
        assert_eq!(parse(format!("{}@{}", user(41), domain(10))), None);
        assert_eq!(parse(format!("{}@{}", user(1), domain(68))), None);
        assert_eq!(parse(user(41)), None);
        assert_eq!(parse(format!("{}%{}", user(4000), domain(10))), None);
        // A default domain longer than the column cannot have users either.
        assert_eq!(Address::parse(b"joe", Some(&domain(68))), None);
        assert!(plausible_domain(domain(67).as_bytes()));
        assert!(!plausible_domain(domain(68).as_bytes()));
        assert!(plausible_ip(b"2001:db8::1"));
        assert!(!plausible_ip("1".repeat(47).as_bytes()));
        assert!(!plausible_ip(b"10.0.0.1 x"));
    }
}
