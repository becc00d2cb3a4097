//! One logical database: the servers it is on (a primary and its read
//! replicas) and a name for the logs. A single-database site has one
//! (host.mysql); a clustered site one per distinct mailstore connection and
//! one for the central database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, Row};

use super::servers::{ServerSpec, Servers};
use super::DbError;

pub use super::servers::{clear_last_server, last_server};

/// A database the lookups can run statements on.
pub struct Store {
    servers: Servers,
    /// The server the lookups read first (the primary): the one whose
    /// binlog push invalidation follows.
    primary: ServerSpec,
    label: Arc<str>,
    /// Statements run, for the statements-per-lookup figure.
    statements: AtomicU64,
}

impl Store {
    pub fn new(servers: Servers, primary: ServerSpec, label: String) -> Store {
        Store {
            servers,
            primary,
            label: Arc::from(label),
            statements: AtomicU64::new(0),
        }
    }

    /// How to reach the server the lookups read first.
    pub fn primary(&self) -> &ServerSpec {
        &self.primary
    }

    /// `database@server`, without the password: for log lines.
    pub fn label(&self) -> &Arc<str> {
        &self.label
    }

    /// Run a read, on the first server that is up (see [`Servers::read`]).
    pub fn read<T>(
        &self,
        what: &'static str,
        f: impl FnMut(&mut Conn) -> mysql::Result<T>,
    ) -> Result<T, DbError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.servers.read(what, f)
    }

    /// Run a write, on the primary only.
    pub fn write<T>(
        &self,
        what: &'static str,
        f: impl FnMut(&mut Conn) -> mysql::Result<T>,
    ) -> Result<T, DbError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.servers.write(what, f)
    }

    /// Run one lookup statement and return its rows.
    pub fn rows<P: Into<mysql::Params>>(
        &self,
        what: &'static str,
        sql: &str,
        params: P,
    ) -> Result<Vec<Row>, DbError> {
        let params = params.into();
        self.read(what, |c| c.exec(sql, params.clone()))
    }

    /// A connection outside the pools (bulk reads).
    pub fn connect_once(&self, read_timeout: Duration) -> Result<Conn, DbError> {
        self.servers.connect_once(read_timeout)
    }

    pub fn close_all(&self) {
        self.servers.close_all();
    }

    /// (connections open now, connections made since start)
    pub fn counts(&self) -> (usize, u64) {
        self.servers.counts()
    }

    pub fn connect_failure(&self) -> Option<String> {
        self.servers.connect_failure()
    }

    /// Each server with whether it is up.
    pub fn health(&self) -> Vec<(String, bool)> {
        self.servers.health()
    }

    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }
}
