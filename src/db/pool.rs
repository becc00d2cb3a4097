//! A small bounded pool of persistent MySQL connections.
//!
//! Why not the `mysql` crate's own pool: it pings the server before handing
//! out every connection, which doubles the round trips of a one-statement
//! lookup. Here a connection is used as it is; when the server has gone away
//! (restart, idle kill) the statement fails with a connection-level error, the
//! connection is dropped, and the statement is run once more on a fresh
//! connection. Lookups are read-only, so the retry is safe. A statement that
//! ran out of time (MYSQL_OPT_READ_TIMEOUT) is not retried: its connection
//! is dropped too, but the server is slow or stalled rather than gone, and a
//! second try would hold the worker for as long again.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mysql::{Conn, Opts};

use super::DbError;

/// Server error codes that mean "this connection is dead", as opposed to
/// "this statement failed".
const ER_SERVER_SHUTDOWN: u16 = 1053;
const ER_CONNECTION_KILLED: u16 = 1927;
const ER_CLIENT_INTERACTION_TIMEOUT: u16 = 4031;

/// True when the error says the connection cannot be used again.
pub fn is_connection_error(err: &mysql::Error) -> bool {
    match err {
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) | mysql::Error::DriverError(_) => {
            true
        }
        mysql::Error::MySqlError(e) => matches!(
            e.code,
            ER_SERVER_SHUTDOWN | ER_CONNECTION_KILLED | ER_CLIENT_INTERACTION_TIMEOUT
        ),
        _ => false,
    }
}

/// True when the error is a read or write timeout running out
/// (MYSQL_OPT_READ_TIMEOUT, MYSQL_OPT_WRITE_TIMEOUT): the connection is in an
/// unknown state, but the server is still there.
pub fn is_timeout(err: &mysql::Error) -> bool {
    let io = match err {
        mysql::Error::IoError(e) => Some(e),
        mysql::Error::CodecError(e) => {
            std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>())
        }
        _ => None,
    };
    io.is_some_and(|e| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    })
}

struct State {
    idle: Vec<Conn>,
    /// Connections that exist: idle plus handed out.
    open: usize,
    /// Bumped by `close_all`; connections of an older generation are closed
    /// when they come back instead of being reused.
    generation: u64,
    /// Connections made since the pool was created (for stats and tests).
    connects: u64,
    /// Why the last attempt to connect failed, until one succeeds.
    last_connect_error: Option<String>,
}

/// A bounded set of connections shared by the worker threads.
pub struct Pool {
    opts: Opts,
    /// The site asked for TLS, which this build cannot do: every connect
    /// fails with a clear error instead.
    tls_requested: bool,
    max: usize,
    wait: Duration,
    state: Mutex<State>,
    freed: Condvar,
}

/// A connection taken from the pool; it goes back when dropped.
struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    generation: u64,
    /// False for a connection that was just made: a failure on it is not
    /// retried, because a new connection would fail the same way.
    reused: bool,
}

impl Pool {
    /// `max` connections at most; a caller waits at most `wait` for one.
    pub fn new(opts: Opts, max: usize, wait: Duration) -> Pool {
        Pool {
            opts,
            tls_requested: false,
            max: max.max(1),
            wait,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                generation: 0,
                connects: 0,
                last_connect_error: None,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only counters behind, which
        // stay usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on a connection. A connection-level failure on a reused
    /// connection is retried once on a new one, unless it was a timeout.
    pub fn run<T>(
        &self,
        what: &'static str,
        mut f: impl FnMut(&mut Conn) -> mysql::Result<T>,
    ) -> Result<T, DbError> {
        let mut lease = self.lease()?;
        let first = f(lease.conn());
        match first {
            Ok(v) => Ok(v),
            Err(e) if is_connection_error(&e) && lease.reused && !is_timeout(&e) => {
                log::warn!("{what}: connection lost ({e}); reconnecting");
                lease.discard();
                drop(lease);
                let mut lease = self.lease_new()?;
                f(lease.conn()).map_err(|e| lease.fail(what, e))
            }
            Err(e) => Err(lease.fail(what, e)),
        }
    }

    /// Take an idle connection, or make one when fewer than `max` exist.
    fn lease(&self) -> Result<Lease<'_>, DbError> {
        let deadline = Instant::now() + self.wait;
        let mut st = self.lock();
        loop {
            if let Some(conn) = st.idle.pop() {
                let generation = st.generation;
                return Ok(Lease {
                    pool: self,
                    conn: Some(conn),
                    generation,
                    reused: true,
                });
            }
            if st.open < self.max {
                st.open += 1;
                let generation = st.generation;
                drop(st);
                return self.connect(generation);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(DbError::Busy(self.wait));
            }
            st = self
                .freed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A fresh connection for a retry. The slot of the discarded connection
    /// was given back, so this may wait like `lease`.
    fn lease_new(&self) -> Result<Lease<'_>, DbError> {
        let deadline = Instant::now() + self.wait;
        let mut st = self.lock();
        loop {
            if st.open < self.max {
                st.open += 1;
                let generation = st.generation;
                drop(st);
                return self.connect(generation);
            }
            // Every slot is taken, so the idle ones are as good as new
            // only if they are not stale too; close one to make room.
            if let Some(stale) = st.idle.pop() {
                st.open -= 1;
                drop(st);
                drop(stale);
                st = self.lock();
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(DbError::Busy(self.wait));
            }
            st = self
                .freed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Connect for a slot already counted in `open`.
    fn connect(&self, generation: u64) -> Result<Lease<'_>, DbError> {
        if self.tls_requested {
            self.release_slot();
            return Err(DbError::TlsUnsupported);
        }
        match Conn::new(self.opts.clone()) {
            Ok(conn) => {
                let mut st = self.lock();
                st.connects += 1;
                st.last_connect_error = None;
                drop(st);
                Ok(Lease {
                    pool: self,
                    conn: Some(conn),
                    generation,
                    reused: false,
                })
            }
            Err(e) => {
                self.lock().last_connect_error = Some(super::describe_mysql_error(&e));
                self.release_slot();
                Err(DbError::Connect(e))
            }
        }
    }

    fn release_slot(&self) {
        let mut st = self.lock();
        st.open -= 1;
        drop(st);
        self.freed.notify_one();
    }

    /// A connection outside the pool, with its own read timeout (for a bulk
    /// read such as the pre-cache); closed when dropped.
    pub fn connect_once(&self, read_timeout: Duration) -> Result<Conn, DbError> {
        if self.tls_requested {
            return Err(DbError::TlsUnsupported);
        }
        let opts =
            mysql::OptsBuilder::from_opts(self.opts.clone()).read_timeout(Some(read_timeout));
        let conn = Conn::new(opts).map_err(DbError::Connect)?;
        self.lock().connects += 1;
        Ok(conn)
    }

    /// Refuse to connect because TLS was asked for (see `tls_requested`).
    pub fn with_tls_requested(mut self, requested: bool) -> Pool {
        self.tls_requested = requested;
        self
    }

    /// Close every idle connection now and every busy one when it comes back.
    pub fn close_all(&self) {
        let idle = {
            let mut st = self.lock();
            st.generation += 1;
            let idle = std::mem::take(&mut st.idle);
            st.open -= idle.len();
            idle
        };
        drop(idle);
        self.freed.notify_all();
    }

    /// (connections open now, connections made since start)
    pub fn counts(&self) -> (usize, u64) {
        let st = self.lock();
        (st.open, st.connects)
    }

    /// Why the last attempt to connect failed, when no attempt has succeeded since.
    pub fn connect_failure(&self) -> Option<String> {
        self.lock().last_connect_error.clone()
    }
}

impl Lease<'_> {
    fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("lease holds a connection until dropped")
    }

    /// Drop the connection instead of returning it to the pool.
    fn discard(&mut self) {
        self.conn = None;
    }

    /// Turn a statement error into a DbError, discarding a dead connection.
    fn fail(&mut self, what: &'static str, e: mysql::Error) -> DbError {
        if is_connection_error(&e) {
            self.discard();
        }
        DbError::Query { what, source: e }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut st = self.pool.lock();
        // A connection to close is closed after the lock is released: its
        // QUIT message goes to the server.
        let closing = match self.conn.take() {
            Some(conn) if self.generation == st.generation => {
                st.idle.push(conn);
                None
            }
            other => {
                st.open -= 1;
                other
            }
        };
        drop(st);
        drop(closing);
        self.pool.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error as IoError, ErrorKind};

    #[test]
    fn timeouts_are_told_apart_from_lost_connections() {
        for kind in [ErrorKind::WouldBlock, ErrorKind::TimedOut] {
            let io = mysql::Error::IoError(IoError::from(kind));
            assert!(is_timeout(&io) && is_connection_error(&io), "{kind:?}");
            // How a read timeout comes back from a statement.
            let codec = mysql::Error::CodecError(IoError::from(kind).into());
            assert!(
                is_timeout(&codec) && is_connection_error(&codec),
                "{kind:?}"
            );
        }
        for kind in [
            ErrorKind::ConnectionReset,
            ErrorKind::BrokenPipe,
            ErrorKind::UnexpectedEof,
        ] {
            let io = mysql::Error::IoError(IoError::from(kind));
            assert!(!is_timeout(&io) && is_connection_error(&io), "{kind:?}");
            let codec = mysql::Error::CodecError(IoError::from(kind).into());
            assert!(!is_timeout(&codec), "{kind:?}");
        }
    }
}
