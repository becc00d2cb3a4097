//! One logical database: the connections to its server and a name for the
//! logs. A single-database site has one (host.mysql); a clustered site one
//! per distinct mailstore connection and one for the central database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, Row};

use super::pool::Pool;
use super::DbError;

thread_local! {
    static LAST_SERVER: std::cell::RefCell<Option<Arc<str>>> = const { std::cell::RefCell::new(None) };
}

/// The database that ran this thread's last read (`inquerytest --direct -v`
/// says which server answered).
pub fn last_server() -> Option<Arc<str>> {
    LAST_SERVER.with(|l| l.borrow().clone())
}

/// Forget the last server (before a lookup that may need none).
pub fn clear_last_server() {
    LAST_SERVER.with(|l| *l.borrow_mut() = None);
}

/// A database the lookups can run statements on.
pub struct Store {
    pool: Pool,
    label: Arc<str>,
    /// Statements run, for the statements-per-lookup figure.
    statements: AtomicU64,
}

impl Store {
    pub fn new(pool: Pool, label: String) -> Store {
        Store {
            pool,
            label: Arc::from(label),
            statements: AtomicU64::new(0),
        }
    }

    /// `database@server`, without the password: for log lines.
    pub fn label(&self) -> &Arc<str> {
        &self.label
    }

    /// Run a read; see [`Pool::run`].
    pub fn read<T>(
        &self,
        what: &'static str,
        f: impl FnMut(&mut Conn) -> mysql::Result<T>,
    ) -> Result<T, DbError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        LAST_SERVER.with(|l| *l.borrow_mut() = Some(self.label.clone()));
        self.pool.run(what, f)
    }

    /// Run a write.
    pub fn write<T>(
        &self,
        what: &'static str,
        f: impl FnMut(&mut Conn) -> mysql::Result<T>,
    ) -> Result<T, DbError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.pool.run(what, f)
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

    /// A connection outside the pool (bulk reads).
    pub fn connect_once(&self, read_timeout: Duration) -> Result<Conn, DbError> {
        self.pool.connect_once(read_timeout)
    }

    pub fn close_all(&self) {
        self.pool.close_all();
    }

    /// (connections open now, connections made since start)
    pub fn counts(&self) -> (usize, u64) {
        self.pool.counts()
    }

    pub fn connect_failure(&self) -> Option<String> {
        self.pool.connect_failure()
    }

    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }
}
