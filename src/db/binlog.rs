//! The binlog follower (push invalidation): reads a server's binary log as a
//! replication client and reports every row change of the lookups' database
//! as a [`Change`], so that the cache can drop exactly what changed.
//!
//! It runs on a thread of its own with connections of its own, and never
//! writes. Whatever may have been missed (connect, reconnect, a stream
//! error, a server silent past three heartbeats) is reported as a
//! [`Change::Gap`], after which everything cached before may be stale. A
//! server that cannot be followed at all (binary log off, not in ROW format,
//! privileges missing) is told once and the thread ends: the cache falls
//! back to its TTLs.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql::binlog::events::{Event, EventData, RowsEventData};
use mysql::binlog::row::BinlogRow;
use mysql::binlog::value::BinlogValue;
use mysql::prelude::Queryable;
use mysql::{BinlogRequest, Conn, Opts, OptsBuilder, Value};

use super::change::{Change, Columns};
use super::pool::connect_within_timeout;
use super::servers::ServerSpec;
use super::{describe_mysql_error, DbError};

/// How the daemon follows a server's binlog.
#[derive(Debug, Clone)]
pub struct FollowSettings {
    /// The replication server id of this daemon: unique among the
    /// server's replicas, or the server drops the older of the two streams.
    pub server_id: u32,
    /// An account of its own (replication privileges are global); `None`:
    /// the lookups' account.
    pub user: Option<String>,
    pub password: Option<String>,
    /// MASTER_HEARTBEAT_PERIOD asked of the server: a stream silent for
    /// three periods is taken for a frozen server.
    pub heartbeat: Duration,
}

impl FollowSettings {
    pub fn new(server_id: u32) -> FollowSettings {
        FollowSettings {
            server_id,
            user: None,
            password: None,
            heartbeat: Duration::from_secs(1),
        }
    }
}

/// The default server id: `0xF000_0000` or'ed with 28 bits of a hash of
/// `salt` (the host name and the daemon's FIFO directory), so that two
/// daemons differ and no real replica (ids are small in practice) collides.
pub fn default_server_id(salt: &str) -> u32 {
    // FNV-1a: stable across builds, unlike the std hasher.
    let hash = salt.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    0xF000_0000 | (hash & 0x0FFF_FFFF)
}

/// What the follower is doing, for the stats.
#[derive(Debug, Clone)]
pub struct FollowStatus {
    /// Streaming now.
    pub active: bool,
    /// Why not: for good (binlog off, STATEMENT format, privileges), or
    /// while it reconnects.
    pub off_reason: Option<String>,
    /// Row events of the database read since start.
    pub events: u64,
    /// Gaps reported since start (the first connect included).
    pub gaps: u64,
    /// Now minus the time of the last event or heartbeat.
    pub lag: Option<Duration>,
    /// The server, as `user@host:port`.
    pub server: String,
}

struct Shared {
    stop: AtomicBool,
    status: Mutex<Inner>,
    /// The stream's socket while it is open: shut down on drop so that a
    /// blocked read ends at once. Cleared under the lock before the socket
    /// closes, so a reused descriptor is never touched.
    stream_fd: Mutex<Option<RawFd>>,
}

struct Inner {
    status: FollowStatus,
    last_seen: Option<SystemTime>,
}

/// A thread following one server's binlog; stopped and joined on drop.
pub struct Follower {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    /// Follow the binlog of the server `spec` names, from its current
    /// position on, reporting every change of a table of `spec.database`
    /// to `on_change` (called on the follower's thread, in binlog order).
    /// Dropping the follower waits for `on_change` to return, so it must
    /// not wait for the thread that drops it.
    pub fn spawn(
        spec: ServerSpec,
        settings: FollowSettings,
        on_change: impl FnMut(Change) + Send + 'static,
    ) -> Follower {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            status: Mutex::new(Inner {
                status: FollowStatus {
                    active: false,
                    off_reason: Some("not connected yet".into()),
                    events: 0,
                    gaps: 0,
                    lag: None,
                    server: spec.label(),
                },
                last_seen: None,
            }),
            stream_fd: Mutex::new(None),
        });
        let mut run = Run {
            spec,
            settings,
            on_change: Box::new(on_change),
            shared: shared.clone(),
            tables: HashMap::new(),
            columns: HashMap::new(),
            columns_conn: None,
            gap_log: GapLog::default(),
        };
        let thread = std::thread::Builder::new()
            .name("binlog".into())
            .spawn(move || run.follow())
            .expect("spawn the binlog thread");
        Follower {
            shared,
            thread: Some(thread),
        }
    }

    pub fn status(&self) -> FollowStatus {
        let inner = lock(&self.shared.status);
        let mut s = inner.status.clone();
        s.lag = inner
            .last_seen
            .map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
        s
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(fd) = *lock(&self.shared.stream_fd) {
            // The descriptor is still the stream's: the follower clears it
            // under this lock before the socket closes.
            let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a session with the server ended.
enum Ended {
    /// It cannot be followed: told once, not retried.
    Off(String),
    /// Changes may have been missed; try again.
    Gap(String),
    /// Not connected (yet): try again, no new gap.
    NoConnection(String),
    Stopped,
}

/// A table as the lookups' account sees it in information_schema.
struct TableInfo {
    names: Vec<String>,
    /// Bits of an unsigned integer column (its value comes signed without
    /// full row metadata), by position.
    unsigned_bits: Vec<Option<u32>>,
    /// Positions of the columns of the primary key and unique indexes; all
    /// columns when there is none.
    keys: Vec<usize>,
}

/// Gap log lines, at most one per interval.
#[derive(Default)]
struct GapLog {
    last: Option<Instant>,
    suppressed: u64,
}

const GAP_LOG_INTERVAL: Duration = Duration::from_secs(10);

struct Run {
    spec: ServerSpec,
    settings: FollowSettings,
    on_change: Box<dyn FnMut(Change) + Send>,
    shared: Arc<Shared>,
    /// Table id → table name, for the tables of the database.
    tables: HashMap<u64, Option<String>>,
    columns: HashMap<String, Arc<TableInfo>>,
    columns_conn: Option<Conn>,
    gap_log: GapLog,
}

impl Run {
    fn follow(&mut self) {
        let label = self.spec.label();
        // Why the last stream ended; None before the first connect.
        let mut lost: Option<String> = None;
        loop {
            if self.stopped() {
                return;
            }
            let ended = self.session(lost.as_deref());
            if self.stopped() {
                // A read ended by the shutdown on drop is no gap.
                return;
            }
            match ended {
                Ended::Stopped => return,
                Ended::Off(reason) => {
                    log::warn!("InLookup: push invalidation off: {reason}");
                    self.set_inactive(Some(reason));
                    return;
                }
                Ended::Gap(reason) => {
                    self.set_inactive(Some(format!("{reason}; reconnecting")));
                    self.gap(format!("{label}: {reason}"));
                    lost = Some(reason);
                }
                Ended::NoConnection(reason) => {
                    // Not a gap of its own: before the first stream nothing
                    // was missed, after a gap the gap is told already.
                    self.set_inactive(Some(format!("{reason}; retrying every second")));
                }
            }
            self.pause(Duration::from_secs(1));
        }
    }

    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Sleep, waking early when stopped.
    fn pause(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopped() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn set_inactive(&self, reason: Option<String>) {
        let mut inner = lock(&self.shared.status);
        inner.status.active = false;
        inner.status.off_reason = reason;
    }

    /// Report a gap, with a throttled log line.
    fn gap(&mut self, reason: String) {
        lock(&self.shared.status).status.gaps += 1;
        let now = Instant::now();
        let g = &mut self.gap_log;
        if g.last
            .is_some_and(|t| now.duration_since(t) < GAP_LOG_INTERVAL)
        {
            g.suppressed += 1;
        } else {
            let more = match std::mem::take(&mut g.suppressed) {
                0 => String::new(),
                n => format!(" ({n} more gaps since the last line)"),
            };
            log::warn!("InLookup: binlog gap, the cache is flushed: {reason}{more}");
            g.last = Some(now);
        }
        (self.on_change)(Change::Gap { reason });
    }

    /// The options of the stream's connection: the follower's own account
    /// when given (without a database: it needs none), and a read timeout
    /// of three heartbeats.
    fn stream_opts(&self) -> Result<Opts, DbError> {
        let mut b = OptsBuilder::from_opts(self.spec.opts()?);
        if let Some(user) = &self.settings.user {
            b = b
                .user(Some(user.clone()))
                .pass(Some(self.settings.password.clone().unwrap_or_default()))
                .db_name(None::<String>);
        }
        Ok(Opts::from(b.read_timeout(Some(self.silence_limit()))))
    }

    fn silence_limit(&self) -> Duration {
        (self.settings.heartbeat * 3).max(Duration::from_millis(300))
    }

    fn account(&self) -> &str {
        self.settings.user.as_deref().unwrap_or(&self.spec.user)
    }

    fn server_label(&self) -> String {
        match &self.settings.user {
            Some(user) => ServerSpec {
                user: user.clone(),
                ..self.spec.clone()
            }
            .label(),
            None => self.spec.label(),
        }
    }

    /// Check the server, read its position, report the gap, and stream.
    fn session(&mut self, lost: Option<&str>) -> Ended {
        let label = self.server_label();
        let opts = match self.stream_opts() {
            Ok(o) => o,
            Err(e) => return Ended::Off(format!("{label}: {e}")),
        };
        let read_limit = self.silence_limit();
        let mut conn = match connect_within_timeout(&opts, Some(read_limit)) {
            Ok(c) => c,
            Err(e) => return self.classify(&label, "cannot connect", &e, false),
        };
        let (file, pos) = match self.check_and_position(&mut conn, &label) {
            Ok(p) => p,
            Err(ended) => return ended,
        };
        let ns = self.settings.heartbeat.as_nanos().max(1_000_000);
        if let Err(e) = conn.query_drop(format!("SET @master_heartbeat_period = {ns}")) {
            return self.classify(&label, "cannot ask for heartbeats", &e, true);
        }
        // The tables may have changed while no stream was read.
        self.tables.clear();
        self.columns.clear();
        // The position is read first: whatever changes after it is streamed,
        // whatever changed before is covered by this gap.
        let reason = match lost {
            None => "connected".to_string(),
            Some(why) => format!("reconnected after {why}"),
        };
        (self.on_change)(Change::Gap { reason });
        lock(&self.shared.status).status.gaps += 1;
        if self.stopped() {
            return Ended::Stopped;
        }
        let fd = conn.as_raw_fd();
        let request = BinlogRequest::new(self.settings.server_id)
            .with_filename(file.clone().into_bytes())
            .with_pos(pos);
        let mut stream = match conn.get_binlog_stream(request) {
            Ok(s) => s,
            Err(e) => return self.classify(&label, "the binlog dump was refused", &e, true),
        };
        // The stream owns the socket from here until it is dropped below.
        *lock(&self.shared.stream_fd) = Some(fd);
        log::info!("InLookup: following the binlog of {label} from {file}:{pos}");
        {
            let mut inner = lock(&self.shared.status);
            inner.status.active = true;
            inner.status.off_reason = None;
            inner.last_seen = Some(SystemTime::now());
        }
        let ended = self.stream(&mut stream, &label);
        *lock(&self.shared.stream_fd) = None;
        drop(stream);
        ended
    }

    /// log_bin, binlog_format, and the current position.
    fn check_and_position(&self, conn: &mut Conn, label: &str) -> Result<(String, u64), Ended> {
        let vars: Option<(String, String)> = conn
            .query_first("SELECT @@log_bin, @@binlog_format")
            .map_err(|e| self.classify(label, "cannot read the binlog settings", &e, true))?;
        let (log_bin, format) = vars.unwrap_or_default();
        if !matches!(log_bin.as_str(), "1" | "ON") {
            return Err(Ended::Off(format!(
                "the binary log is off on {label} (log_bin)"
            )));
        }
        if !format.eq_ignore_ascii_case("ROW") {
            return Err(Ended::Off(format!(
                "binlog_format is {format} on {label}; push invalidation needs ROW"
            )));
        }
        let status: Option<mysql::Row> = conn
            .query_first("SHOW MASTER STATUS")
            .map_err(|e| self.classify(label, "cannot read the binlog position", &e, true))?;
        let position = match status {
            Some(row) => row_position(&row),
            None => {
                let logs: Vec<mysql::Row> = conn
                    .query("SHOW BINARY LOGS")
                    .map_err(|e| self.classify(label, "cannot list the binlogs", &e, true))?;
                logs.last().and_then(row_position)
            }
        };
        position.ok_or_else(|| Ended::Off(format!("the binary log is off on {label} (log_bin)")))
    }

    /// An error in words: privileges and credentials for good, the rest a
    /// gap (once connected) or a failed connect.
    fn classify(&self, label: &str, what: &str, e: &mysql::Error, connected: bool) -> Ended {
        if let mysql::Error::MySqlError(m) = e {
            let account = self.account();
            // MariaDB refuses a dump without REPLICATION SLAVE with 1045,
            // as it refuses a wrong password at connect.
            match m.code {
                1227 | 1142 | 1143 | 1044 | 1045 if connected => {
                    return Ended::Off(format!(
                        "{label}: {what}: {}: following the binlog needs the global \
                         privileges REPLICATION SLAVE and BINLOG MONITOR \
                         (GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO {account}; \
                         REPLICATION CLIENT is BINLOG MONITOR's older name, and MySQL's), \
                         or an account that has them (INLOOKUP_BINLOG_USER, \
                         INLOOKUP_BINLOG_PASSWORD)",
                        m.message
                    ))
                }
                1044 | 1045 => {
                    return Ended::Off(format!(
                        "{label}: {what}: {} (the binlog account is INLOOKUP_BINLOG_USER \
                         and INLOOKUP_BINLOG_PASSWORD, or the lookups' own)",
                        m.message
                    ))
                }
                _ => {}
            }
        }
        let why = format!("{what}: {}", describe_mysql_error(e));
        if connected {
            Ended::Gap(why)
        } else {
            Ended::NoConnection(format!("{label}: {why}"))
        }
    }

    fn stream(&mut self, stream: &mut mysql::BinlogStream, label: &str) -> Ended {
        let silence = self.silence_limit();
        while let Some(event) = stream.next() {
            if self.stopped() {
                return Ended::Stopped;
            }
            let event = match event {
                Ok(ev) => ev,
                Err(e) if super::pool::is_timeout(&e) => {
                    return Ended::Gap(format!(
                        "no event and no heartbeat within {} s",
                        silence.as_secs_f64()
                    ))
                }
                Err(e) => return self.classify(label, "the stream failed", &e, true),
            };
            if let Err(e) = self.event(&event, stream) {
                return Ended::Gap(format!("an event could not be read: {e}"));
            }
        }
        if self.stopped() {
            return Ended::Stopped;
        }
        Ended::Gap("the server ended the stream".into())
    }

    fn seen(&self, ts: Option<u32>) {
        let when = match ts {
            Some(0) | None => SystemTime::now(),
            Some(s) => UNIX_EPOCH + Duration::from_secs(s.into()),
        };
        lock(&self.shared.status).last_seen = Some(when);
    }

    fn event(&mut self, event: &Event, stream: &mysql::BinlogStream) -> std::io::Result<()> {
        let Some(data) = event.read_data()? else {
            return Ok(());
        };
        let ts = event.header().timestamp();
        match data {
            EventData::HeartbeatEvent => self.seen(None),
            EventData::TableMapEvent(tme) => {
                let ours = tme.database_name() == self.spec.database.as_str();
                let name = ours.then(|| tme.table_name().into_owned());
                self.tables.insert(tme.table_id(), name);
                self.seen(Some(ts));
            }
            EventData::RowsEvent(re) => {
                self.seen(Some(ts));
                self.rows(&re, stream)?;
            }
            EventData::QueryEvent(q) => {
                self.seen(Some(ts));
                let schema = q.schema().into_owned();
                let query = q.query().into_owned();
                if let Some(table) = ddl_table(&schema, &query, &self.spec.database) {
                    match &table {
                        Some(t) => {
                            self.columns.remove(t);
                        }
                        None => self.columns.clear(),
                    }
                    (self.on_change)(Change::Unmappable { table });
                }
            }
            EventData::XidEvent(_) => {
                self.seen(Some(ts));
                // A table gets a new id whenever the server reopens it;
                // between transactions the map can start afresh.
                if self.tables.len() > 4096 {
                    self.tables.clear();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn rows(
        &mut self,
        re: &RowsEventData<'_>,
        stream: &mysql::BinlogStream,
    ) -> std::io::Result<()> {
        let Some(Some(table)) = self.tables.get(&re.table_id()).cloned() else {
            return Ok(());
        };
        lock(&self.shared.status).status.events += 1;
        let Some(tme) = stream.get_tme(re.table_id()) else {
            (self.on_change)(Change::Unmappable { table: Some(table) });
            return Ok(());
        };
        let info = match self.table_info(&table, tme.columns_count() as usize) {
            Some(info) => info,
            None => {
                (self.on_change)(Change::Unmappable { table: Some(table) });
                return Ok(());
            }
        };
        for row in re.rows(tme) {
            let (before, after) = row?;
            let before = before.map(|r| image(&info, r));
            let after = after.map(|r| image(&info, r));
            let complete = |i: &Option<Option<Columns>>| !matches!(i, Some(None));
            let change = if complete(&before) && complete(&after) {
                Change::Row {
                    table: table.clone(),
                    before: before.flatten(),
                    after: after.flatten(),
                }
            } else {
                Change::Unmappable {
                    table: Some(table.clone()),
                }
            };
            (self.on_change)(change);
        }
        Ok(())
    }

    /// The columns of a table: read once, again after DDL or when the
    /// binlog's count differs.
    fn table_info(&mut self, table: &str, count: usize) -> Option<Arc<TableInfo>> {
        if let Some(info) = self.columns.get(table) {
            if info.names.len() == count {
                return Some(info.clone());
            }
        }
        let info = Arc::new(self.read_table_info(table)?);
        self.columns.insert(table.to_string(), info.clone());
        (info.names.len() == count).then_some(info)
    }

    fn read_table_info(&mut self, table: &str) -> Option<TableInfo> {
        for _ in 0..2 {
            if self.columns_conn.is_none() {
                let opts = self.spec.opts().ok()?;
                match connect_within_timeout(&opts, None) {
                    Ok(c) => self.columns_conn = Some(c),
                    Err(e) => {
                        log::warn!(
                            "InLookup: binlog: cannot read the columns of {table}: {}",
                            describe_mysql_error(&e)
                        );
                        return None;
                    }
                }
            }
            let conn = self.columns_conn.as_mut()?;
            let db = self.spec.database.as_str();
            let cols: mysql::Result<Vec<(String, String, String)>> = conn.exec(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (db, table),
            );
            let keys: mysql::Result<Vec<String>> = conn.exec(
                "SELECT DISTINCT COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0",
                (db, table),
            );
            match (cols, keys) {
                (Ok(cols), Ok(keys)) => {
                    let names: Vec<String> = cols.iter().map(|c| c.0.clone()).collect();
                    let mut key_pos: Vec<usize> = names
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| keys.iter().any(|k| k.eq_ignore_ascii_case(n)))
                        .map(|(i, _)| i)
                        .collect();
                    if key_pos.is_empty() {
                        key_pos = (0..names.len()).collect();
                    }
                    let unsigned_bits = cols
                        .iter()
                        .map(|(_, ty, full)| unsigned_bits(ty, full))
                        .collect();
                    return Some(TableInfo {
                        names,
                        unsigned_bits,
                        keys: key_pos,
                    });
                }
                (Err(e), _) | (_, Err(e)) => {
                    log::warn!(
                        "InLookup: binlog: cannot read the columns of {table}: {}",
                        describe_mysql_error(&e)
                    );
                    self.columns_conn = None;
                }
            }
        }
        None
    }
}

/// File and position from a SHOW MASTER STATUS or SHOW BINARY LOGS row
/// (the latter's second column is the file's size: its end).
fn row_position(row: &mysql::Row) -> Option<(String, u64)> {
    let file: String = row.get_opt(0)?.ok()?;
    let pos: u64 = row.get_opt(1)?.ok()?;
    Some((file, pos))
}

/// The bits of an unsigned integer column, `None` for anything else.
fn unsigned_bits(data_type: &str, column_type: &str) -> Option<u32> {
    if !column_type.to_ascii_lowercase().contains("unsigned") {
        return None;
    }
    match data_type.to_ascii_lowercase().as_str() {
        "tinyint" => Some(8),
        "smallint" => Some(16),
        "mediumint" => Some(24),
        "int" | "integer" => Some(32),
        "bigint" => Some(64),
        _ => None,
    }
}

/// A row image by column name; `None` when a key column is missing (a
/// partial image).
fn image(info: &TableInfo, row: BinlogRow) -> Option<Columns> {
    let positions: Vec<usize> = row
        .columns_ref()
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let name = c.name_str();
            // Without full metadata the crate names a column `@<position>`.
            name.strip_prefix('@')
                .and_then(|p| p.parse().ok())
                .or_else(|| info.names.iter().position(|n| *n == name))
                .unwrap_or(k)
        })
        .collect();
    if !info.keys.iter().all(|k| positions.contains(k)) {
        return None;
    }
    let values = row.unwrap();
    let mut columns = Columns::with_capacity(values.len());
    for (pos, value) in positions.into_iter().zip(values) {
        let name = info.names.get(pos)?.clone();
        let bits = info.unsigned_bits.get(pos).copied().flatten();
        columns.push((name, value_bytes(value, bits)?));
    }
    Some(columns)
}

/// A value as the text a SELECT gives: numbers in decimal, strings as
/// stored (a TIMESTAMP as seconds since the epoch: the binlog has no time
/// zone); `Some(None)` for NULL, `None` when it cannot be told.
fn value_bytes(value: BinlogValue<'_>, unsigned_bits: Option<u32>) -> Option<Option<Vec<u8>>> {
    let value = match value {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            let json = serde_json::Value::try_from(j).ok()?;
            return Some(Some(json.to_string().into_bytes()));
        }
        BinlogValue::JsonDiff(_) => return None,
    };
    let text = match value {
        Value::NULL => return Some(None),
        Value::Bytes(b) => b,
        Value::Int(i) => match unsigned_bits {
            Some(bits) if i < 0 => {
                let mask = if bits >= 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                };
                ((i as u64) & mask).to_string().into_bytes()
            }
            _ => i.to_string().into_bytes(),
        },
        Value::UInt(u) => u.to_string().into_bytes(),
        Value::Float(f) => f.to_string().into_bytes(),
        Value::Double(d) => d.to_string().into_bytes(),
        Value::Date(y, mo, d, h, mi, s, us) => {
            let mut t = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
            if us != 0 {
                t.push_str(&format!(".{us:06}"));
            }
            t.into_bytes()
        }
        Value::Time(neg, days, h, mi, s, us) => {
            let hours = days * 24 + u32::from(h);
            let mut t = format!("{}{hours:02}:{mi:02}:{s:02}", if neg { "-" } else { "" });
            if us != 0 {
                t.push_str(&format!(".{us:06}"));
            }
            t.into_bytes()
        }
    };
    Some(Some(text))
}

/// For a statement in the binlog that changes tables of `database`
/// wholesale (DDL, TRUNCATE, RENAME, DROP): `Some(table)` with the table
/// when one is named, `Some(None)` when it cannot be told; `None` for
/// anything else (BEGIN, COMMIT, XA, other databases).
pub fn ddl_table(schema: &str, query: &str, database: &str) -> Option<Option<String>> {
    let tokens = sql_tokens(query);
    let upper: Vec<String> = tokens.iter().map(|t| t.to_ascii_uppercase()).collect();
    let verb = upper.first()?.as_str();
    if !matches!(verb, "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE") {
        return None;
    }
    // Skip modifiers up to the object word.
    let mut i = 1;
    while i < upper.len()
        && matches!(
            upper[i].as_str(),
            "OR" | "REPLACE"
                | "ONLINE"
                | "OFFLINE"
                | "IGNORE"
                | "TEMPORARY"
                | "UNIQUE"
                | "FULLTEXT"
                | "SPATIAL"
                | "DEFINER"
                | "="
        )
    {
        i += 1;
    }
    let object = upper.get(i).map(String::as_str).unwrap_or("TABLE");
    let object = if verb == "TRUNCATE" && object != "TABLE" {
        // TRUNCATE name: the object word is optional.
        i -= 1;
        "TABLE"
    } else {
        object
    };
    match object {
        "DATABASE" | "SCHEMA" => {
            let mut j = i + 1;
            while upper
                .get(j)
                .is_some_and(|t| t == "IF" || t == "EXISTS" || t == "NOT")
            {
                j += 1;
            }
            let db = tokens.get(j).map(|t| unquote(t))?;
            return (db == database).then_some(None);
        }
        "TABLE" | "TABLES" | "INDEX" | "VIEW" | "TRIGGER" => {}
        _ => return None,
    }
    let mut j = i + 1;
    if object == "INDEX" {
        // CREATE INDEX name ON table, DROP INDEX name ON table.
        j = upper.iter().position(|t| t == "ON").map(|p| p + 1)?;
    }
    while upper
        .get(j)
        .is_some_and(|t| matches!(t.as_str(), "IF" | "EXISTS" | "NOT"))
    {
        j += 1;
    }
    let name = tokens.get(j)?;
    let (db, table) = match name.split_once('.') {
        Some((d, t)) => (unquote(d), unquote(t)),
        None => (schema.to_string(), unquote(name)),
    };
    if db != database {
        // Another database's table; RENAME may move one into ours.
        let into_ours = verb == "RENAME" && query.contains(database);
        return into_ours.then_some(None);
    }
    // Several tables (DROP TABLE a, b; RENAME a TO b): cannot be told as one.
    let several =
        tokens.get(j + 1).is_some_and(|t| t == ",") || (verb == "RENAME" && tokens.len() > j + 3);
    if several || object == "TRIGGER" || object == "VIEW" {
        return Some(None);
    }
    Some(Some(table))
}

fn unquote(s: &str) -> String {
    s.trim_matches('`').to_string()
}

/// Words, backquoted names (with an optional `db.` part) and commas, of
/// the start of a statement; comments skipped.
fn sql_tokens(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = query.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < 16 {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b';' || c == b'(' {
            i += 1;
        } else if b[i..].starts_with(b"/*") {
            i = query[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
        } else if c == b'#' || b[i..].starts_with(b"-- ") {
            i = query[i..].find('\n').map_or(b.len(), |e| i + e + 1);
        } else if c == b',' {
            out.push(",".into());
            i += 1;
        } else {
            let start = i;
            let mut quoted = false;
            while i < b.len() {
                let c = b[i];
                if c == b'`' {
                    quoted = !quoted;
                } else if !quoted && (c.is_ascii_whitespace() || matches!(c, b',' | b';' | b'(')) {
                    break;
                }
                i += 1;
            }
            out.push(query[start..i].to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ids_are_out_of_the_way_and_differ() {
        let a = default_server_id("mail1:/run/indimail/inlookup");
        let b = default_server_id("mail2:/run/indimail/inlookup");
        assert_ne!(a, b);
        assert_eq!(a & 0xF000_0000, 0xF000_0000);
        assert_eq!(a, default_server_id("mail1:/run/indimail/inlookup"));
    }

    #[test]
    fn ddl_is_told_from_transactions() {
        let db = "indimail";
        let t = |s: &str, q: &str| ddl_table(s, q, db);
        assert_eq!(t(db, "BEGIN"), None);
        assert_eq!(t(db, "COMMIT"), None);
        assert_eq!(t(db, "XA START 'x'"), None);
        assert_eq!(t(db, "TRUNCATE TABLE valias"), Some(Some("valias".into())));
        assert_eq!(t(db, "truncate `vlimits`"), Some(Some("vlimits".into())));
        assert_eq!(
            t("", "ALTER TABLE `indimail`.`indimail` ADD x int"),
            Some(Some("indimail".into()))
        );
        assert_eq!(t("other", "ALTER TABLE t ADD x int"), None);
        assert_eq!(
            t(db, "DROP TABLE IF EXISTS `relay` /* generated by server */"),
            Some(Some("relay".into()))
        );
        assert_eq!(t(db, "DROP TABLE a, b"), Some(None));
        assert_eq!(
            t(db, "RENAME TABLE indimail TO x, y TO indimail"),
            Some(None)
        );
        assert_eq!(t("", "DROP DATABASE indimail"), Some(None));
        assert_eq!(t("", "DROP DATABASE other"), None);
        assert_eq!(t(db, "CREATE USER x"), None);
        assert_eq!(
            t(db, "CREATE INDEX i ON valias (alias)"),
            Some(Some("valias".into()))
        );
    }

    #[test]
    fn values_as_select_gives_them() {
        let v = |x: Value| value_bytes(BinlogValue::Value(x), None).unwrap();
        assert_eq!(v(Value::Int(-5)), Some(b"-5".to_vec()));
        assert_eq!(v(Value::NULL), None);
        assert_eq!(v(Value::Bytes(b"x y".to_vec())), Some(b"x y".to_vec()));
        assert_eq!(
            value_bytes(BinlogValue::Value(Value::Int(-1)), Some(32)).unwrap(),
            Some(b"4294967295".to_vec())
        );
        assert_eq!(
            v(Value::Date(2026, 1, 2, 3, 4, 5, 0)),
            Some(b"2026-01-02 03:04:05".to_vec())
        );
    }
}
