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
//!
//! At most `max` statements run at once. While the server turns its
//! statements over, any number of callers may wait for a connection (a busy
//! but healthy server); once no connection has come back for [`STALLED`],
//! at most `max_waiting` callers wait and the others get `Busy` at once, so
//! that one stalled server cannot hold every worker thread of the daemon.
//!
//! A connect is bounded by the connect timeout as a whole, handshake
//! included: a stopped (SIGSTOPped) server accepts the TCP or socket
//! connection through the kernel but never greets, and the crate's own
//! `tcp_connect_timeout` covers only the TCP connect.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mysql::{Conn, Opts, OptsBuilder};

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
    /// Callers waiting for a connection now.
    waiting: usize,
    /// Since when every connection has been handed out with none coming
    /// back; `None` while one is free or came back since.
    full_since: Option<Instant>,
}

/// How long without a connection coming back, with every connection
/// handed out, makes a server stalled: a lookup's statement takes
/// milliseconds.
pub const STALLED: Duration = Duration::from_secs(1);

/// How long a lookup waits for a connection at most, whatever the read
/// timeout: a server that returns none within this is stalled, and a longer
/// wait, with a connect and a statement after it, would outlast the client.
pub const MAX_SLOT_WAIT: Duration = Duration::from_secs(1);

/// How long a waiter sleeps before it looks again whether the server stalled.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// A bounded set of connections shared by the worker threads.
pub struct Pool {
    opts: Opts,
    /// Why this pool must not connect at all (TLS asked for on a unix
    /// socket, which the crate would silently leave in plain text).
    refusal: Option<String>,
    max: usize,
    /// How many callers may wait for a connection; beyond that `Busy` at
    /// once, so a stalled server cannot hold every worker thread.
    max_waiting: usize,
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
            refusal: None,
            max: max.max(1),
            max_waiting: usize::MAX,
            wait,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                generation: 0,
                connects: 0,
                last_connect_error: None,
                waiting: 0,
                full_since: None,
            }),
            freed: Condvar::new(),
        }
    }

    /// How long a caller waits for a connection.
    fn slot_wait(&self) -> Duration {
        self.wait.min(MAX_SLOT_WAIT)
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
        let deadline = Instant::now() + self.slot_wait();
        let mut st = self.lock();
        loop {
            if let Some(conn) = st.idle.pop() {
                self.note_full(&mut st);
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
                self.note_full(&mut st);
                let generation = st.generation;
                drop(st);
                return self.connect(generation);
            }
            st = self.wait_for_slot(st, deadline)?;
        }
    }

    /// Every connection is handed out now: from here, the server stalls if
    /// none comes back.
    fn note_full(&self, st: &mut State) {
        if st.idle.is_empty() && st.open >= self.max {
            st.full_since.get_or_insert_with(Instant::now);
        }
    }

    /// Wait a little for a connection to come back (the caller looks again);
    /// `Busy` at `deadline`, and at once when the server stalled and
    /// `max_waiting` callers wait already.
    fn wait_for_slot<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        deadline: Instant,
    ) -> Result<MutexGuard<'a, State>, DbError> {
        let now = Instant::now();
        if now >= deadline {
            return Err(DbError::Busy(self.slot_wait()));
        }
        let full_since = *st.full_since.get_or_insert(now);
        let stalled = now.saturating_duration_since(full_since) >= STALLED;
        if stalled && st.waiting >= self.max_waiting {
            return Err(DbError::Busy(Duration::ZERO));
        }
        st.waiting += 1;
        let mut st = self
            .freed
            .wait_timeout(st, (deadline - now).min(WAIT_SLICE))
            .unwrap_or_else(|e| e.into_inner())
            .0;
        st.waiting -= 1;
        Ok(st)
    }

    /// A fresh connection for a retry. The slot of the discarded connection
    /// was given back, so this may wait like `lease`.
    fn lease_new(&self) -> Result<Lease<'_>, DbError> {
        let deadline = Instant::now() + self.slot_wait();
        let mut st = self.lock();
        loop {
            if st.open < self.max {
                st.open += 1;
                self.note_full(&mut st);
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
            st = self.wait_for_slot(st, deadline)?;
        }
    }

    /// Connect for a slot already counted in `open`.
    fn connect(&self, generation: u64) -> Result<Lease<'_>, DbError> {
        if let Err(e) = self.check_refusal() {
            self.release_slot();
            return Err(e);
        }
        match connect_within_timeout(&self.opts, None) {
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
        st.full_since = None;
        drop(st);
        self.freed.notify_one();
    }

    /// A connection outside the pool, with its own read timeout (for a bulk
    /// read such as the pre-cache); closed when dropped.
    pub fn connect_once(&self, read_timeout: Duration) -> Result<Conn, DbError> {
        self.check_refusal()?;
        match connect_within_timeout(&self.opts, Some(read_timeout)) {
            Ok(conn) => {
                let mut st = self.lock();
                st.connects += 1;
                st.last_connect_error = None;
                Ok(conn)
            }
            Err(e) => {
                self.lock().last_connect_error = Some(super::describe_mysql_error(&e));
                Err(DbError::Connect(e))
            }
        }
    }

    /// Make one connection to see whether the server answers; it is kept
    /// for the next statement when a slot is free.
    pub fn probe(&self) -> Result<(), DbError> {
        let slot = {
            let mut st = self.lock();
            (st.open < self.max).then(|| {
                st.open += 1;
                st.generation
            })
        };
        match slot {
            // Dropping the lease puts the connection among the idle ones.
            Some(generation) => self.connect(generation).map(drop),
            None => self.connect_once(self.wait).map(drop),
        }
    }

    /// At most `n` callers wait for a connection; more get `Busy` at once.
    pub fn with_max_waiting(mut self, n: usize) -> Pool {
        self.max_waiting = n;
        self
    }

    /// Refuse to connect at all (see `refusal`); the reason is told as a
    /// TLS error of this server.
    pub(crate) fn with_refusal(mut self, reason: String) -> Pool {
        self.refusal = Some(reason);
        self
    }

    /// True when the connections are to use TLS.
    pub fn tls(&self) -> bool {
        self.opts.get_ssl_opts().is_some() || self.refusal.is_some()
    }

    fn check_refusal(&self) -> Result<(), DbError> {
        match &self.refusal {
            None => Ok(()),
            Some(reason) => {
                self.lock().last_connect_error = Some(reason.clone());
                Err(DbError::Tls {
                    server: opts_label(&self.opts),
                    reason: reason.clone(),
                })
            }
        }
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

/// `user@host:port` or `user@socket`, never the password.
pub(crate) fn opts_label(opts: &Opts) -> String {
    let user = opts.get_user().unwrap_or("");
    match opts.get_socket() {
        Some(socket) => format!("{user}@{socket}"),
        None => format!(
            "{user}@{}:{}",
            opts.get_ip_or_hostname(),
            opts.get_tcp_port()
        ),
    }
}

/// `Conn::new` with the whole handshake bounded by the connect timeout:
/// the read and write timeouts are at most the connect timeout while
/// connecting, then set to their own values (or to `read_timeout`) on the
/// connection's socket.
pub fn connect_within_timeout(opts: &Opts, read_timeout: Option<Duration>) -> mysql::Result<Conn> {
    let read = read_timeout.or(opts.get_read_timeout().copied());
    let write = opts.get_write_timeout().copied();
    let limit = opts
        .get_tcp_connect_timeout()
        .filter(|t| !t.is_zero())
        .or(read);
    let Some(limit) = limit else {
        return Conn::new(opts.clone());
    };
    let bounded = |t: Option<Duration>| Some(t.map_or(limit, |t| t.min(limit)));
    let conn = Conn::new(
        OptsBuilder::from_opts(opts.clone())
            .read_timeout(bounded(read))
            .write_timeout(bounded(write)),
    )?;
    set_socket_timeouts(&conn, read, write)?;
    Ok(conn)
}

/// SO_RCVTIMEO and SO_SNDTIMEO of the connection's socket (`None`: no
/// timeout); the crate sets them only when it connects.
fn set_socket_timeouts(
    conn: &Conn,
    read: Option<Duration>,
    write: Option<Duration>,
) -> std::io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    use nix::sys::time::TimeVal;
    let timeval = |d: Option<Duration>| {
        d.map_or(TimeVal::new(0, 0), |d| {
            TimeVal::new(
                d.as_secs().try_into().unwrap_or(i64::MAX),
                d.subsec_micros().into(),
            )
        })
    };
    // SAFETY: the descriptor belongs to `conn`, which outlives this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(conn.as_raw_fd()) };
    setsockopt(&fd, sockopt::ReceiveTimeout, &timeval(read))?;
    setsockopt(&fd, sockopt::SendTimeout, &timeval(write))?;
    Ok(())
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
        st.full_since = None;
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
