//! The one query module every applet uses.
//!
//! Three backends give the same typed answers to the seven questions:
//! * `Database` (direct): MySQL through the db module;
//! * `Cached`: the daemon's cache in front of the database;
//! * `Remote`: a running inlookup, over the FIFO protocol (inquery()).
//!
//! `ClientBackend::choose` is the one place that chooses for the client
//! applets, as IndiMail's client programs do: with QUERY_CACHE set (any
//! value, even empty) the daemon is asked, otherwise MySQL directly.
//!
//! This module is the only code where the cache and the database meet: a
//! request is parsed once into a [`Lookup`], from which the cache key, the
//! SQL lookup and the reply derive; pre-cache and flush are operations of
//! `Cached`. `value` holds the answers as the cache stores them, `answers`
//! the daemon's cache rules.
//!
//! Answers travel as `protocol::Reply` between the backends, so that the
//! daemon sends exactly what the direct backend would have said; the typed
//! methods of `Query` unpack them. A database or transport failure is
//! always an error, never "not found".

use std::sync::Arc;

mod answers;
mod lookup;
mod push;
mod value;

pub use answers::{policy_from_env, AnswerCache, CacheSettings};
pub use lookup::{Lookup, Subject};
pub use push::{drops, Drop, Tables};
pub use value::{PackedRow, Value};

pub use crate::cache::Source;
use crate::client::{self, ClientError};
use crate::config::{Config, Env, FifoConfig, Timeouts};
use crate::db::{plausible_name, Database, DbError};
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

/// The database's answer to a parsed request, before the parts that come
/// from the request. One statement (see the db module) per lookup.
fn load(db: &Database, lookup: &Lookup) -> Result<Value, DbError> {
    let Some(subject) = &lookup.subject else {
        return Ok(absent(lookup.qtype));
    };
    Ok(match (lookup.qtype, subject) {
        (QueryType::User, Subject::Address(a)) => Value::User(db.user_status_of(a)?),
        (QueryType::Relay, Subject::Address(a)) => Value::Relay(db.relay_of(a, lookup.ip)?),
        (QueryType::Password, Subject::Address(a)) => {
            Value::Password(db.password_of(a)?.as_ref().map(PackedRow::pack))
        }
        (QueryType::Host, Subject::Address(a)) => Value::Host(db.host_route_of(a)?),
        (QueryType::Alias, Subject::Address(a)) => Value::Alias(Arc::new(db.aliases_of(a)?)),
        (QueryType::Limit, Subject::Address(a)) => Value::Limits(db.limits_of(a)?.map(Box::new)),
        (QueryType::Limit, Subject::Domain(d)) => Value::Limits(db.domain_limits(d)?.map(Box::new)),
        (QueryType::Domain, Subject::Domain(d)) => Value::Domain(db.real_domain(d)?.map(Arc::from)),
        // `Lookup::parse` makes no other pairs.
        (qtype, _) => absent(qtype),
    })
}

/// The wire reply for a database answer to this request.
fn reply(value: Value, lookup: &Lookup) -> Reply {
    let email = lookup.email;
    match value {
        Value::User(s) => Reply::User(s),
        Value::Relay(true) => Reply::Relay(RelayStatus::Authenticated),
        Value::Relay(false) => Reply::Relay(RelayStatus::NotAuthenticated),
        Value::Password(Some(row)) => Reply::Password(PasswordReply::Found(pw_struct(
            row.unpack(),
            email,
            lookup.default_domain,
        ))),
        // "No such user <email>" echoes the request; bytes that no address has are not
        // echoed into anybody's FIFO.
        Value::Password(None) => {
            Reply::Password(PasswordReply::NoSuchUser(if plausible_name(email) {
                email.to_vec()
            } else {
                Vec::new()
            }))
        }
        Value::Host(Some(route)) => {
            let typed = match &lookup.subject {
                Some(Subject::Address(a)) => a.typed_domain.as_str(),
                _ => "",
            };
            Reply::Host(route.reply_text(typed).into_bytes())
        }
        Value::Host(None) => Reply::NotFound,
        Value::Alias(lines) => Reply::Alias(lines.as_ref().clone()),
        Value::Limits(Some(l)) => Reply::Limits(*l),
        Value::Limits(None) => Reply::NotFound,
        Value::Domain(Some(d)) => Reply::Domain(d.as_bytes().to_vec()),
        // The C server echoes the input when the domain is unknown; a name that fails the
        // check every name passes (printable ASCII, no space) is no domain, and its bytes are
        // not echoed into anybody's FIFO.
        Value::Domain(None) if plausible_name(email) => Reply::Domain(email.to_vec()),
        Value::Domain(None) => Reply::NotFound,
    }
}

/// The domain of the PWSTRUCT record answering `email`: what C clients expect, the text after
/// the last `@` of the request as typed, or the default domain.
fn pw_domain<'a>(email: &'a [u8], default_domain: Option<&'a str>) -> &'a [u8] {
    match email.iter().rposition(|&b| b == b'@') {
        Some(i) => &email[i + 1..],
        None => default_domain.unwrap_or_default().as_bytes(),
    }
}

/// The record a PWD reply carries for a row read from the database: the row, with the
/// domain [`pw_domain`] in place of the row's.
fn pw_struct(row: PwStruct, email: &[u8], default_domain: Option<&str>) -> PwStruct {
    let mut record = PwStruct {
        domain: pw_domain(email, default_domain).to_vec(),
        ..row
    };
    // gecos is display text; a ':' in it would shift every later field for
    // the C parser, so it is sent as a space.
    for b in record.gecos.iter_mut().filter(|b| **b == b':') {
        *b = b' ';
    }
    record
}

impl Backend for Database {
    fn ask(&self, qtype: QueryType, email: &[u8], ip: &[u8]) -> Result<Reply, QueryError> {
        let lookup = Lookup::parse(
            qtype,
            email,
            ip,
            self.lookup_config().default_domain.as_deref(),
        );
        let value = load(self, &lookup)?;
        Ok(reply(value, &lookup))
    }
}

/// The database's answer to a request that has no subject: what the
/// lookups answer, without SQL, for a name no account can have.
fn absent(qtype: QueryType) -> Value {
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

/// The daemon's backend: the database, with the cache in front when one is
/// configured. The only code that touches both.
pub struct Cached {
    db: Arc<Database>,
    cache: Option<AnswerCache>,
    /// The tables whose changes [`Cached::apply_change`] maps.
    tables: Tables,
}

impl Cached {
    pub fn new(db: Arc<Database>, cache: Option<AnswerCache>) -> Cached {
        let tables = Tables::of(&db);
        Cached { db, cache, tables }
    }

    /// A request parsed: the daemon parses each request once, on the thread that
    /// reads it, and answers from this value.
    pub fn parse<'a>(&'a self, qtype: QueryType, email: &'a [u8], ip: &'a [u8]) -> Lookup<'a> {
        let default_domain = self.db.lookup_config().default_domain.as_deref();
        Lookup::parse(qtype, email, ip, default_domain)
    }

    /// The lookup of a request parsed before ([`Cached::parse`]), from its subject: for the
    /// worker that answers what the reader could not answer from the cache.
    pub fn resume<'a>(
        &'a self,
        qtype: QueryType,
        email: &'a [u8],
        ip: &'a [u8],
        subject: Option<Subject>,
    ) -> Lookup<'a> {
        let default_domain = self.db.lookup_config().default_domain.as_deref();
        Lookup::with_subject(qtype, email, ip, default_domain, subject)
    }

    /// The answer and where it came from (for the "cache hit" log line).
    pub fn answer(&self, lookup: &Lookup) -> (Result<Reply, QueryError>, Source) {
        let (Some(cache), Some(key)) = (&self.cache, lookup.cache_key()) else {
            let answer = load(&self.db, lookup).map(|v| reply(v, lookup));
            return (answer.map_err(QueryError::from), Source::Bypass);
        };
        match cache.get_or_load(key, || load(&self.db, lookup)) {
            Ok((value, source)) => (Ok(reply(value, lookup)), source),
            Err(e) => (Err(QueryError::Shared(e)), Source::Miss),
        }
    }

    /// The answer when it needs no database: a fresh one from the cache, or
    /// "absent" for a name no account can have (which is never cached, so
    /// that a flood of such names costs neither memory nor a worker). Never
    /// touches the database.
    pub fn answer_cached(&self, lookup: &Lookup) -> Option<(Reply, Source)> {
        let Some(key) = lookup.cache_key() else {
            return Some((reply(absent(lookup.qtype), lookup), Source::Implausible));
        };
        let (value, source) = self.cache.as_ref()?.get_fresh(&key)?;
        Some((reply(value, lookup), source))
    }

    /// Whether answers are cached.
    pub fn caches(&self) -> bool {
        self.cache.is_some()
    }

    /// `-c secs`: load the password rows of the users active in the last
    /// `secs` seconds into the cache. Returns how many entries that added.
    /// A row is stored only if no flush or HUP came about its key since the
    /// query began: the row may predate that change.
    pub fn precache(&self, secs: u64) -> Result<usize, DbError> {
        let Some(cache) = &self.cache else {
            return Ok(0);
        };
        let before = cache.len();
        let mark = cache.mark();
        self.db.for_each_active_password(secs, |key, row| {
            cache.insert_since(
                &mark,
                answers::key(QueryType::Password, &key),
                Value::Password(Some(PackedRow::pack(&row))),
            );
        })?;
        // Entries added: a user active on several services counts once.
        Ok(cache.len().saturating_sub(before))
    }

    /// Forget what the cache holds about one address or domain, named as a
    /// client names it; returns how many entries went.
    pub fn flush(&self, name: &[u8]) -> usize {
        let Some(cache) = &self.cache else {
            return 0;
        };
        let name = if name.contains(&b'@') {
            self.db.address(name).map(|a| a.key())
        } else {
            std::str::from_utf8(name).ok().map(str::to_ascii_lowercase)
        };
        // A user's route (clustered sites) goes with the user's answers.
        name.map_or(0, |n| cache.invalidate(&n) + self.db.forget_routes(&n))
    }

    /// Close the database connections (INT, HUP); the next lookup reconnects.
    pub fn close_connections(&self) {
        self.db.close_connections();
    }

    /// (connections open now, connections made since start)
    pub fn connection_counts(&self) -> (usize, u64) {
        self.db.connection_counts()
    }
}

impl Backend for Cached {
    fn ask(&self, qtype: QueryType, email: &[u8], ip: &[u8]) -> Result<Reply, QueryError> {
        self.answer(&self.parse(qtype, email, ip)).0
    }
}

// ---------------------------------------------------------------------------
// Remote: a running inlookup

/// Ask the daemon over its FIFO.
#[derive(Clone)]
pub struct Remote {
    pub fifo: FifoConfig,
    pub timeouts: Timeouts,
    /// The default domain (INDIMAIL_DOMAIN, DEFAULT_DOMAIN, control/defaultdomain), which the
    /// daemon gives the record of a login without a domain.
    pub default_domain: Option<String>,
}

impl Remote {
    /// The daemon's client for `config`: its FIFOs, timeouts and default domain.
    pub fn new(config: &Config) -> Remote {
        Remote {
            fifo: config.fifo.clone(),
            timeouts: config.timeouts,
            default_domain: config.lookup.default_domain.clone(),
        }
    }
}

impl Backend for Remote {
    fn ask(&self, qtype: QueryType, email: &[u8], ip: &[u8]) -> Result<Reply, QueryError> {
        let reply = match client::inquery(&self.fifo, self.timeouts, qtype, email, ip)? {
            Reply::Error => return Err(QueryError::Server),
            r => r,
        };
        if let Reply::Password(pw) = &reply {
            check_password_reply(pw, email, self.default_domain.as_deref(), |domain| {
                match client::inquery(&self.fifo, self.timeouts, QueryType::Domain, domain, b"")? {
                    Reply::Domain(d) => Ok(d),
                    _ => Ok(domain.to_vec()),
                }
            })?;
        }
        Ok(reply)
    }
}

/// Is this PWD answer the answer to the question about `email`?
///
/// Anyone who may write the daemon's FIFOs may name any reply path, and so put the record of
/// an account whose password it knows into the reply FIFO of somebody else's login. The
/// record names its account; it must name the one asked, as the daemon names it:
/// * the user part is the database's name of the user asked (compared without case: the
///   lookup ignores it);
/// * the domain is the text after the last `@` of the request as typed, or for a login
///   without `@` the default domain (`default_domain` must be the daemon's); compared
///   without case, as domains are;
/// * else the real domain behind the domain asked (`real_domain` asks for it, only then): a C
///   daemon's pre-cached record carries the database's domain, also when an alias domain
///   was asked.
///
/// "No such user" echoes the request as it was sent (nothing for bytes no address has).
/// A record that answers another question is [`ClientError::NotTheAnswer`]: the caller
/// makes it a temporary failure and its message the log line.
pub fn check_password_reply(
    reply: &PasswordReply,
    email: &[u8],
    default_domain: Option<&str>,
    real_domain: impl FnOnce(&[u8]) -> Result<Vec<u8>, QueryError>,
) -> Result<(), QueryError> {
    let wrong = |answered: &[u8]| {
        QueryError::Remote(ClientError::NotTheAnswer {
            asked: email.escape_ascii().to_string(),
            answered: answered.escape_ascii().to_string(),
        })
    };
    let pw = match reply {
        PasswordReply::NoSuchUser(echo) => {
            let expected: &[u8] = if plausible_name(email) { email } else { b"" };
            return if echo.as_slice() == expected {
                Ok(())
            } else {
                Err(wrong(&[b"No such user ", echo.as_slice()].concat()))
            };
        }
        PasswordReply::Found(pw) => pw,
    };
    let answered = || [pw.name.as_slice(), b"@", pw.domain.as_slice()].concat();
    let Some(asked) = crate::db::Address::parse(email, default_domain) else {
        return Err(wrong(&answered()));
    };
    if !pw.name.eq_ignore_ascii_case(asked.user.as_bytes()) {
        return Err(wrong(&answered()));
    }
    if pw
        .domain
        .eq_ignore_ascii_case(pw_domain(email, default_domain))
    {
        return Ok(());
    }
    let real = real_domain(asked.domain.as_bytes())?;
    if !real.is_empty() && pw.domain.eq_ignore_ascii_case(&real) {
        return Ok(());
    }
    Err(wrong(&answered()))
}

// ---------------------------------------------------------------------------
// The client applets' choice

/// Where a client applet's lookups go.
pub enum ClientBackend {
    /// The daemon, over its FIFO.
    Remote(Remote),
    /// MySQL, with one connection.
    Direct(Arc<Database>),
}

impl ClientBackend {
    /// The one place that decides, as IndiMail's client programs do: the
    /// daemon when QUERY_CACHE is set (any value, even empty), else MySQL
    /// directly.
    pub fn choose(env: &Env, config: &Config) -> ClientBackend {
        if env.is_set("QUERY_CACHE") {
            ClientBackend::Remote(Remote::new(config))
        } else {
            ClientBackend::Direct(Arc::new(client_database(config)))
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, ClientBackend::Remote(_))
    }

    /// The typed lookups through this backend.
    pub fn query(&self) -> Query {
        match self {
            ClientBackend::Remote(r) => Query::new(Arc::new(r.clone())),
            ClientBackend::Direct(db) => Query::new(db.clone()),
        }
    }

    /// The database of the direct backend (whose connection a client's own
    /// statements may share).
    pub fn database(&self) -> Option<&Arc<Database>> {
        match self {
            ClientBackend::Remote(_) => None,
            ClientBackend::Direct(db) => Some(db),
        }
    }
}

/// The database of a client applet: the site's, with one connection.
pub fn client_database(config: &Config) -> Database {
    Database::for_config(config, 1, None)
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

    /// The backend IndiMail's clients would use (see [`ClientBackend::choose`]).
    pub fn for_client(env: &Env, config: &Config) -> Query {
        ClientBackend::choose(env, config).query()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, domain: &str) -> PwStruct {
        PwStruct {
            name: name.into(),
            domain: domain.into(),
            passwd: b"$6$salt$hash".to_vec(),
            uid: 1,
            gid: 0,
            gecos: b"x".to_vec(),
            dir: b"/home".to_vec(),
            shell: b"NOQUOTA".to_vec(),
            inactive: false,
        }
    }

    /// The daemon's record for `email` of the row `name@domain`, checked as the client of
    /// `email` checks it, with `real` as the real domain of any domain asked.
    fn check(
        record: PwStruct,
        email: &str,
        default: Option<&str>,
        real: Option<&str>,
    ) -> Result<(), QueryError> {
        check_password_reply(
            &PasswordReply::Found(record),
            email.as_bytes(),
            default,
            |asked| Ok(real.map_or_else(|| asked.to_vec(), |r| r.as_bytes().to_vec())),
        )
    }

    fn no_real_domain_asked(_: &[u8]) -> Result<Vec<u8>, QueryError> {
        panic!("the real domain was asked although the record named the login")
    }

    #[test]
    fn the_record_the_daemon_makes_for_a_login_answers_it() {
        let default = Some("example.com");
        for (email, db_user, db_domain) in [
            ("joe@example.com", "joe", "example.com"),
            ("Joe@Example.COM", "joe", "example.com"),
            ("joe", "joe", "example.com"),
            // Split at '%' for the lookup, but the record gets the default domain.
            ("joe%other.test", "joe", "other.test"),
            // An alias domain: the record carries the alias as typed.
            ("joe@Alias.Test", "joe", "real.test"),
            // A name stored with capitals.
            ("jOE@example.com", "JoE", "example.com"),
        ] {
            let record = pw_struct(row(db_user, db_domain), email.as_bytes(), default);
            check_password_reply(
                &PasswordReply::Found(record),
                email.as_bytes(),
                default,
                no_real_domain_asked,
            )
            .unwrap_or_else(|e| panic!("{email}: {e}"));
        }
        // No such user: the request echoed, as the daemon makes it.
        for email in [&b"nobody@example.com"[..], b"\x1b[2Jx@y"] {
            let Reply::Password(reply) = answer(Value::Password(None), email) else {
                panic!("not a PWD reply");
            };
            check_password_reply(&reply, email, default, no_real_domain_asked).unwrap();
        }
    }

    /// The reply of the daemon of a site whose default domain is example.com.
    fn answer(value: Value, email: &[u8]) -> Reply {
        reply(
            value,
            &Lookup::parse(QueryType::Password, email, b"", Some("example.com")),
        )
    }

    #[test]
    fn a_record_of_another_account_is_not_the_answer() {
        let default = Some("example.com");
        let pw = |name: &str, domain: &str| PwStruct {
            name: name.into(),
            domain: domain.into(),
            ..pw_struct(row("x", "x"), b"x@x", None)
        };
        for (record, email) in [
            // The attacker's own account, in the victim's reply FIFO.
            (pw("mallory", "example.com"), "joe@example.com"),
            (pw("joe", "evil.test"), "joe@example.com"),
            (pw("joe", "evil.test"), "joe"),
            (pw("joe2", "example.com"), "joe"),
            (pw("jo", "example.com"), "joe@example.com"),
            (pw("joe", "example.co"), "joe@example.com"),
            (pw("joe", "example.com"), "jo e@example.com"),
        ] {
            let err = check(record, email, default, None).unwrap_err();
            assert!(
                matches!(err, QueryError::Remote(ClientError::NotTheAnswer { .. })),
                "{email}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains(email) && !text.contains("$6$"), "{text}");
        }
        // A login without a domain is the default domain's: a client that does not know
        // the daemon's cannot tell, and refuses.
        let record = pw_struct(row("joe", "example.com"), b"joe", default);
        assert!(check(record, "joe", None, None).is_err());
        // Control bytes in the name are shown escaped in the message.
        let err = check(pw("a\nb", "example.com"), "joe@example.com", default, None).unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
        // "No such user" about somebody else.
        let err = check_password_reply(
            &PasswordReply::NoSuchUser(b"other@example.com".to_vec()),
            b"joe@example.com",
            default,
            no_real_domain_asked,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            QueryError::Remote(ClientError::NotTheAnswer { .. })
        ));
    }

    /// A C daemon answers from a pre-cached record with the database's domain: the real
    /// domain behind the alias asked is accepted, nothing else.
    #[test]
    fn the_real_domain_of_the_domain_asked_is_accepted() {
        let default = Some("example.com");
        let precached = PwStruct {
            domain: b"real.test".to_vec(),
            ..pw_struct(row("joe", "real.test"), b"joe@real.test", default)
        };
        check(
            precached.clone(),
            "joe@alias.test",
            default,
            Some("real.test"),
        )
        .unwrap();
        check(
            precached.clone(),
            "joe@ALIAS.test",
            default,
            Some("Real.Test"),
        )
        .unwrap();
        assert!(check(precached.clone(), "joe@alias.test", default, None).is_err());
        assert!(check(
            precached.clone(),
            "joe@other.test",
            default,
            Some("other.test")
        )
        .is_err());
        // The question about the real domain is asked about the domain of the lookup.
        let mut asked = Vec::new();
        let _ = check_password_reply(
            &PasswordReply::Found(precached),
            b"Joe@Alias.Test",
            default,
            |d| {
                asked.push(d.to_vec());
                Ok(b"real.test".to_vec())
            },
        );
        assert_eq!(asked, [b"alias.test".to_vec()]);
        // Its failure is the lookup's failure.
        let err = check_password_reply(
            &PasswordReply::Found(pw_struct(row("joe", "x"), b"joe@x", default)),
            b"joe@alias.test",
            default,
            |_| Err(QueryError::Server),
        )
        .unwrap_err();
        assert!(matches!(err, QueryError::Server));
    }

    #[test]
    fn a_name_that_is_no_address_is_not_echoed() {
        // DOMAIN: an unknown domain is echoed, as C does; bytes that are no name are not.
        assert_eq!(
            answer(Value::Domain(None), b"example.org"),
            Reply::Domain(b"example.org".to_vec())
        );
        for junk in [&b"\x1b]0;x\x07"[..], b"a b", b"\xff", b""] {
            assert_eq!(answer(Value::Domain(None), junk), Reply::NotFound);
            assert_eq!(
                answer(Value::Password(None), junk),
                Reply::Password(PasswordReply::NoSuchUser(Vec::new()))
            );
        }
        assert_eq!(
            answer(Value::Password(None), b"nobody@example.com"),
            Reply::Password(PasswordReply::NoSuchUser(b"nobody@example.com".to_vec()))
        );
    }
}
