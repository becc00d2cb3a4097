//! The one query module every applet uses.
//!
//! Three backends give the same typed answers to the seven questions:
//! * `Database` (direct): MySQL through the db module;
//! * `Cached`: the daemon's cache in front of the database;
//! * `Remote`: a running inlookup, over the FIFO protocol (inquery()).
//!
//! `Query::for_client` chooses as IndiMail's client programs do: with
//! QUERY_CACHE set (any value, even empty) the daemon is asked, otherwise
//! MySQL directly.
//!
//! Answers travel as `protocol::Reply` between the backends, so that the
//! daemon sends exactly what the direct backend would have said; the typed
//! methods of `Query` unpack them. A database or transport failure is
//! always an error, never "not found".

use std::sync::Arc;

use crate::cache::{Cache, Key, PackedRow, Source, Value};
use crate::client::{self, ClientError};
use crate::config::{Config, Env, FifoConfig, Timeouts};
use crate::db::{plausible_domain, plausible_ip, Database, DbError, PasswdRow};
use crate::protocol::{
    PasswordReply, PwStruct, QueryType, RelayStatus, Reply, UserStatus, VLimits,
};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("database error: {0}")]
    Database(#[from] DbError),
    /// A database error reported by a concurrent lookup of the same key.
    #[error("database error: {0}")]
    Shared(Arc<str>),
    #[error("{0}")]
    Remote(#[from] ClientError),
    /// The daemon answered -1.
    #[error("inlookup service returned error")]
    Server,
    /// An answer of the wrong kind for the question.
    #[error("unexpected reply to a {0} query")]
    Mismatch(&'static str),
}

/// Something that answers queries.
pub trait Backend: Send + Sync {
    fn ask(&self, qtype: QueryType, email: &[u8], ip: &[u8]) -> Result<Reply, QueryError>;
}

// ---------------------------------------------------------------------------
// Direct and cached: the database answers

/// The database's answer, before the parts that come from the request.
fn load(db: &Database, qtype: QueryType, email: &[u8], ip: &[u8]) -> Result<Value, DbError> {
    Ok(match qtype {
        QueryType::User => Value::User(db.user_status(email)?),
        QueryType::Relay => Value::Relay(db.relay(email, ip)?),
        QueryType::Password => Value::Password(db.password(email)?.as_ref().map(PackedRow::pack)),
        QueryType::Host => Value::Host(db.host_route(email)?),
        QueryType::Alias => Value::Alias(Arc::new(db.aliases(email)?)),
        QueryType::Limit => Value::Limits(db.limits(email)?.map(Box::new)),
        QueryType::Domain => Value::Domain(match std::str::from_utf8(email) {
            Ok(d) => db.real_domain(d)?.map(Arc::from),
            Err(_) => None,
        }),
    })
}

/// The wire reply for a database answer to this request.
fn reply(db: &Database, value: Value, email: &[u8]) -> Reply {
    match value {
        Value::User(s) => Reply::User(s),
        Value::Relay(true) => Reply::Relay(RelayStatus::Authenticated),
        Value::Relay(false) => Reply::Relay(RelayStatus::NotAuthenticated),
        Value::Password(Some(row)) => Reply::Password(PasswordReply::Found(pw_struct(
            row.unpack(),
            email,
            db.lookup_config().default_domain.as_deref(),
        ))),
        Value::Password(None) => Reply::Password(PasswordReply::NoSuchUser(email.to_vec())),
        Value::Host(Some(route)) => {
            let typed = db
                .address(email)
                .map(|a| a.typed_domain)
                .unwrap_or_default();
            Reply::Host(route.reply_text(&typed).into_bytes())
        }
        Value::Host(None) => Reply::NotFound,
        Value::Alias(lines) => Reply::Alias(lines.as_ref().clone()),
        Value::Limits(Some(l)) => Reply::Limits(*l),
        Value::Limits(None) => Reply::NotFound,
        // The C server echoes the input when the domain is unknown.
        Value::Domain(d) => {
            Reply::Domain(d.map_or_else(|| email.to_vec(), |d| d.as_bytes().to_vec()))
        }
    }
}

/// The PWSTRUCT record of a row. Its domain is what C clients expect: the
/// text after the last `@` of the request as typed, or the default domain.
fn pw_struct(row: PasswdRow, email: &[u8], default_domain: Option<&str>) -> PwStruct {
    let domain = match email.iter().rposition(|&b| b == b'@') {
        Some(i) => email[i + 1..].to_vec(),
        None => default_domain.unwrap_or_default().as_bytes().to_vec(),
    };
    let mut gecos = row.gecos;
    // gecos is display text; a ':' in it would shift every later field for
    // the C parser, so it is sent as a space.
    for b in gecos.iter_mut().filter(|b| **b == b':') {
        *b = b' ';
    }
    PwStruct {
        name: row.name,
        domain,
        passwd: row.passwd,
        uid: row.uid,
        gid: row.gid,
        gecos,
        dir: row.dir,
        shell: row.shell,
        inactive: row.inactive,
    }
}

impl Backend for Database {
    fn ask(&self, qtype: QueryType, email: &[u8], ip: &[u8]) -> Result<Reply, QueryError> {
        let value = load(self, qtype, email, ip)?;
        Ok(reply(self, value, email))
    }
}

/// The cache key of a request: the normalised address (or domain) and, for
/// RELAY, the IP. `None` when the request needs no database work to answer
/// (an address no account can have, a name longer than the columns hold, an
/// IP no relay entry can have), so there is nothing to cache: the answer is
/// [`absent`].
pub fn cache_key(db: &Database, qtype: QueryType, email: &[u8], ip: &[u8]) -> Option<Key> {
    let domain_key = || {
        let d = std::str::from_utf8(email).ok()?;
        plausible_domain(d.as_bytes()).then(|| Key::new(qtype, &d.to_ascii_lowercase()))
    };
    match qtype {
        QueryType::Domain => domain_key(),
        QueryType::Limit if !email.contains(&b'@') => domain_key(),
        _ => {
            let a = db.address(email)?;
            let name = format!("{}@{}", a.user, a.domain);
            match qtype {
                QueryType::Relay if !plausible_ip(ip) => None,
                QueryType::Relay => Some(Key::relay(&name, std::str::from_utf8(ip).ok()?)),
                _ => Some(Key::new(qtype, &name)),
            }
        }
    }
}

/// The daemon's backend: the database, with the cache in front when one is
/// configured.
pub struct Cached {
    pub db: Arc<Database>,
    pub cache: Option<Arc<Cache>>,
}

impl Cached {
    /// The answer and where it came from (for the "cache hit" log line).
    pub fn ask_traced(
        &self,
        qtype: QueryType,
        email: &[u8],
        ip: &[u8],
    ) -> (Result<Reply, QueryError>, Source) {
        let db = &*self.db;
        let (Some(cache), Some(key)) = (&self.cache, cache_key(db, qtype, email, ip)) else {
            return (db.ask(qtype, email, ip), Source::Bypass);
        };
        match cache.get_or_load(key, || load(db, qtype, email, ip)) {
            Ok((value, source)) => (Ok(reply(db, value, email)), source),
            Err(e) => (Err(QueryError::Shared(e)), Source::Miss),
        }
    }
}

/// The database's answer to a request that has no cache key: what the
/// lookups answer, without SQL, for a name no account can have.
pub fn absent(qtype: QueryType) -> Value {
    match qtype {
        QueryType::User => Value::User(UserStatus::Absent),
        QueryType::Relay => Value::Relay(false),
        QueryType::Password => Value::Password(None),
        QueryType::Host => Value::Host(None),
        QueryType::Alias => Value::Alias(Arc::new(Vec::new())),
        QueryType::Limit => Value::Limits(None),
        QueryType::Domain => Value::Domain(None),
    }
}

impl Cached {
    /// The answer when it needs no database: a fresh one from the cache, or
    /// "absent" for a name no account can have (which is never cached, so
    /// that a flood of such names costs neither memory nor a worker). Never
    /// touches the database.
    pub fn ask_cached(&self, qtype: QueryType, email: &[u8], ip: &[u8]) -> Option<(Reply, Source)> {
        let Some(key) = cache_key(&self.db, qtype, email, ip) else {
            return Some((reply(&self.db, absent(qtype), email), Source::Implausible));
        };
        let (value, source) = self.cache.as_ref()?.get_fresh(&key)?;
        Some((reply(&self.db, value, email), source))
    }
}

impl Backend for Cached {
    fn ask(&self, qtype: QueryType, email: &[u8], ip: &[u8]) -> Result<Reply, QueryError> {
        self.ask_traced(qtype, email, ip).0
    }
}

// ---------------------------------------------------------------------------
// Remote: a running inlookup

/// Ask the daemon over its FIFO.
pub struct Remote {
    pub fifo: FifoConfig,
    pub timeouts: Timeouts,
}

impl Backend for Remote {
    fn ask(&self, qtype: QueryType, email: &[u8], ip: &[u8]) -> Result<Reply, QueryError> {
        match client::inquery(&self.fifo, self.timeouts, qtype, email, ip)? {
            Reply::Error => Err(QueryError::Server),
            r => Ok(r),
        }
    }
}

// ---------------------------------------------------------------------------
// The typed interface

/// Typed answers to the seven questions, from any backend.
#[derive(Clone)]
pub struct Query {
    backend: Arc<dyn Backend>,
}

impl Query {
    pub fn new(backend: Arc<dyn Backend>) -> Query {
        Query { backend }
    }

    /// The backend IndiMail's clients would use: the daemon when QUERY_CACHE
    /// is set (even empty), else MySQL with one connection.
    pub fn for_client(env: &Env, config: &Config) -> Query {
        if env.is_set("QUERY_CACHE") {
            Query::new(Arc::new(Remote {
                fifo: config.fifo.clone(),
                timeouts: config.timeouts,
            }))
        } else {
            Query::new(Arc::new(Database::new(
                config.mysql.clone(),
                config.lookup.clone(),
                config.paths.clone(),
                1,
            )))
        }
    }

    /// The raw reply; `Reply::Error` never comes back (it is an `Err`).
    pub fn ask(&self, qtype: QueryType, email: &[u8], ip: &[u8]) -> Result<Reply, QueryError> {
        match self.backend.ask(qtype, email, ip)? {
            Reply::Error => Err(QueryError::Server),
            r => Ok(r),
        }
    }

    pub fn user_status(&self, email: &[u8]) -> Result<UserStatus, QueryError> {
        match self.ask(QueryType::User, email, b"")? {
            Reply::User(s) => Ok(s),
            _ => Err(QueryError::Mismatch("user")),
        }
    }

    /// Is there a valid POP/IMAP-before-SMTP entry for this address and IP?
    pub fn relay(&self, email: &[u8], ip: &[u8]) -> Result<bool, QueryError> {
        match self.ask(QueryType::Relay, email, ip)? {
            Reply::Relay(RelayStatus::Authenticated) => Ok(true),
            Reply::Relay(_) => Ok(false),
            _ => Err(QueryError::Mismatch("relay")),
        }
    }

    /// The user's record; `None` when there is no such user.
    pub fn password(&self, email: &[u8]) -> Result<Option<PwStruct>, QueryError> {
        match self.ask(QueryType::Password, email, b"")? {
            Reply::Password(PasswordReply::Found(pw)) => Ok(Some(pw)),
            Reply::Password(PasswordReply::NoSuchUser(_)) => Ok(None),
            _ => Err(QueryError::Mismatch("password")),
        }
    }

    /// `domain:host:port`; `None` when the user does not exist.
    pub fn host(&self, email: &[u8]) -> Result<Option<Vec<u8>>, QueryError> {
        match self.ask(QueryType::Host, email, b"")? {
            Reply::Host(h) => Ok(Some(h)),
            Reply::NotFound => Ok(None),
            _ => Err(QueryError::Mismatch("host")),
        }
    }

    /// The alias lines (empty when there are none).
    pub fn aliases(&self, email: &[u8]) -> Result<Vec<Vec<u8>>, QueryError> {
        match self.ask(QueryType::Alias, email, b"")? {
            Reply::Alias(lines) => Ok(lines),
            Reply::NotFound => Ok(Vec::new()),
            _ => Err(QueryError::Mismatch("alias")),
        }
    }

    /// Limits of `user@domain` or of a bare `domain`; `None` when the user
    /// does not exist, or the domain has no limits.
    pub fn limits(&self, key: &[u8]) -> Result<Option<VLimits>, QueryError> {
        match self.ask(QueryType::Limit, key, b"")? {
            Reply::Limits(l) => Ok(Some(l)),
            Reply::NotFound => Ok(None),
            _ => Err(QueryError::Mismatch("limit")),
        }
    }

    /// The real domain of `domain`, or `domain` itself when it is unknown.
    pub fn real_domain(&self, domain: &[u8]) -> Result<Vec<u8>, QueryError> {
        match self.ask(QueryType::Domain, domain, b"")? {
            Reply::Domain(d) => Ok(d),
            Reply::NotFound => Ok(domain.to_vec()),
            _ => Err(QueryError::Mismatch("domain")),
        }
    }
}
