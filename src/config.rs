//! Run-time configuration: environment variables and IndiMail control files.
//!
//! Nothing here reads the process environment except [`Env::from_process`].
//! Every loader takes an [`Env`] snapshot instead, so a process can build its
//! configuration once (possibly after applying an envdir) and tests can run in
//! parallel without touching global state.
//!
//! Conventions shared by every loader:
//!
//! * An empty value counts as unset, so the default applies. The exceptions
//!   are variables whose mere presence is the setting (`DOMAIN_LIMITS`) and
//!   the MySQL user and password, where an empty string is a real value.
//! * A value that cannot be used is an error naming the variable or the file
//!   and saying what was expected. Nothing is silently replaced by a default,
//!   because a typo in a lookup daemon's configuration should stop it at start
//!   rather than send every query to the wrong place.
//! * Paths stay as bytes (`OsString`/`PathBuf`); names such as domains and
//!   SQL identifiers must be UTF-8.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Compile-time defaults of the packaged IndiMail build.
const DEFAULT_SYSCONFDIR: &str = "/etc/indimail";
const DEFAULT_CONTROLDIR: &str = "/etc/indimail/control";
const DEFAULT_ASSIGNDIR: &str = "/etc/indimail/users";
const DEFAULT_INDIMAILDIR: &str = "/var/indimail";
const DEFAULT_INFIFO: &str = "infifo";
const DEFAULT_INFIFODIR: &str = "/run/indimail/inlookup";
const DEFAULT_FIFOTMPDIR: &str = "/tmp";
const DEFAULT_RELAY_CLEAR_MINUTES: u32 = 30;

/// Default for `control/timeoutread` and `control/timeoutwrite`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);
/// Upper bound for any timeout given in seconds: one day.
const MAX_TIMEOUT_SECS: u64 = 86_400;
/// Longest first line accepted from a control file or envdir file. Real
/// values are tiny; the cap only keeps a stray huge file from eating memory.
pub(crate) const MAX_LINE: u64 = 1 << 20;
/// Longest SQL identifier MySQL accepts.
const MAX_IDENT_LEN: usize = 64;

/// The names of every environment variable this module reads, for documentation checks.
pub const ENV_VARS: &[&str] = &[
    "SYSCONFDIR",
    "CONTROLDIR",
    "ASSIGNDIR",
    "MYSQL_HOST",
    "MYSQL_USER",
    "MYSQL_PASSWD",
    "MYSQL_SOCKET",
    "MYSQL_VPORT",
    "MYSQL_DATABASE",
    "MYSQL_TABLE",
    "MYSQL_INACTIVE_TABLE",
    "RELAY_TABLE",
    "MYSQL_OPT_CONNECT_TIMEOUT",
    "MYSQL_OPT_READ_TIMEOUT",
    "MYSQL_OPT_WRITE_TIMEOUT",
    "INFIFO",
    "INFIFODIR",
    "FIFODIR",
    "INDIMAILDIR",
    "FIFOTMPDIR",
    "FIFO_MODE",
    "INDIMAIL_DOMAIN",
    "DEFAULT_DOMAIN",
    "RELAY_CLEAR_MINUTES",
    "REAL_DOMAINS",
    "ALIAS_DOMAINS",
    "DOMAIN_LIMITS",
    "ROUTES",
];

/// Why a configuration could not be loaded. Every message starts with the
/// variable or file it is about, so an operator can fix it without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable that must be text is not UTF-8.
    #[error("{var} is not valid UTF-8")]
    NotUtf8 {
        /// The variable name.
        var: String,
    },
    /// A variable with a value of the wrong form.
    #[error("{var}: {value:?} is not {expected}")]
    InvalidVar {
        /// The variable name.
        var: String,
        /// The offending value.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A control file whose first line has the wrong form.
    #[error("{}: first line {value:?} is not {expected}", .path.display())]
    InvalidLine {
        /// The control file.
        path: PathBuf,
        /// The offending line (lossily decoded if it was not UTF-8).
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A MySQL host line that cannot be used. The line itself is never
    /// quoted because it holds the password.
    #[error("{origin}: {reason}")]
    HostLine {
        /// `MYSQL_HOST` or the path of `host.mysql`.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or directory that exists but has the wrong shape.
    #[error("{}: {reason}", .path.display())]
    File {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O failure other than "file not found".
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl ConfigError {
    fn invalid_var(var: &str, value: &str, expected: impl Into<String>) -> Self {
        ConfigError::InvalidVar {
            var: var.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    fn invalid_line(path: &Path, value: &[u8], expected: impl Into<String>) -> Self {
        ConfigError::InvalidLine {
            path: path.to_path_buf(),
            value: String::from_utf8_lossy(value).into_owned(),
            expected: expected.into(),
        }
    }

    fn file(path: &Path, reason: impl Into<String>) -> Self {
        ConfigError::File {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    fn io(path: &Path, source: io::Error) -> Self {
        ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A snapshot of environment variables.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, OsString>,
}

/// Values that can hold a password: the MySQL host lines and the
/// password variables. `Debug` shows them as `<hidden>`.
fn may_hold_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["_host", "passwd", "password", "secret"]
        .iter()
        .any(|part| name.contains(part))
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.vars {
            if may_hold_secret(k) {
                m.entry(k, &"<hidden>");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

impl Env {
    /// Snapshot the process environment. Variables whose names are not UTF-8
    /// are dropped: none of them can be a variable this crate reads.
    pub fn from_process() -> Env {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
            .collect();
        Env { vars }
    }

    /// Build a snapshot from explicit pairs (later pairs win).
    pub fn from_pairs<I, K, V>(pairs: I) -> Env
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<OsString>,
    {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Env { vars }
    }

    /// The raw value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(name).map(OsString::as_os_str)
    }

    /// The value of `name` as text; an error naming the variable if it is not UTF-8.
    pub fn get_str(&self, name: &str) -> Result<Option<&str>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(Some).ok_or_else(|| ConfigError::NotUtf8 {
                var: name.to_string(),
            }),
        }
    }

    /// Whether `name` is set at all, even to an empty value. IndiMail tests
    /// presence for switches such as `QUERY_CACHE` and `DOMAIN_LIMITS`.
    pub fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// Set `name` to `value`, replacing any earlier value.
    pub fn set(&mut self, name: &str, value: impl Into<OsString>) {
        self.vars.insert(name.to_string(), value.into());
    }

    /// Unset `name`.
    pub fn remove(&mut self, name: &str) {
        self.vars.remove(name);
    }

    /// Every variable in name order, e.g. to pass the snapshot on to a child.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &OsStr)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_os_str()))
    }

    /// daemontools envdir semantics: one file per variable (file name = variable name, names with '=' rejected, dot-files skipped);
    /// the value is the first line, with trailing spaces and tabs removed and NUL bytes turned into newlines;
    /// an EMPTY file (0 bytes) unsets the variable. Subdirectories are an error. Values from the dir override this Env.
    ///
    /// The directory is read completely before anything changes, so on error
    /// this `Env` is left as it was. Entries that are neither regular files nor
    /// directories (FIFOs, sockets, devices) are errors too: reading them could
    /// block or have side effects.
    pub fn load_envdir(&mut self, dir: &Path) -> Result<(), ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|e| ConfigError::io(dir, e))?;
        let mut changes: Vec<(String, Option<OsString>)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ConfigError::io(dir, e))?;
            let file_name = entry.file_name();
            let path = entry.path();
            if file_name.as_bytes().starts_with(b".") {
                continue;
            }
            let Some(name) = file_name.to_str() else {
                return Err(ConfigError::file(&path, "file name is not valid UTF-8"));
            };
            if name.contains('=') {
                return Err(ConfigError::file(
                    &path,
                    "a variable name cannot contain '='",
                ));
            }
            let Some(file) = open_regular(&path)? else {
                // Removed while we were reading the directory.
                continue;
            };
            let value = first_line_of(file, &path)?.map(envdir_value);
            changes.push((name.to_string(), value));
        }
        for (name, value) in changes {
            match value {
                Some(v) => self.set(&name, v),
                None => self.remove(&name),
            }
        }
        Ok(())
    }
}

/// The value an envdir file's first line gives its variable: trailing spaces
/// and tabs removed, NUL bytes turned into newlines.
pub(crate) fn envdir_value(mut line: Vec<u8>) -> OsString {
    while matches!(line.last(), Some(b' ' | b'\t')) {
        line.pop();
    }
    for b in &mut line {
        if *b == 0 {
            *b = b'\n';
        }
    }
    OsString::from_vec(line)
}

/// The value of `name` as text, treating an empty value as unset.
fn nonempty<'a>(env: &'a Env, name: &str) -> Result<Option<&'a str>, ConfigError> {
    Ok(env.get_str(name)?.filter(|v| !v.is_empty()))
}

/// The raw value of `name`, treating an empty value as unset.
fn nonempty_os<'a>(env: &'a Env, name: &str) -> Option<&'a OsStr> {
    env.get(name).filter(|v| !v.is_empty())
}

/// Strict decimal parse: ASCII digits only, no sign, no blanks, no overflow.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// A number of seconds from a variable, within 1..=86400.
fn env_seconds(env: &Env, name: &str, default: u64) -> Result<Duration, ConfigError> {
    match nonempty(env, name)? {
        None => Ok(Duration::from_secs(default)),
        Some(v) => match parse_decimal(v) {
            Some(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => Ok(Duration::from_secs(n)),
            _ => Err(ConfigError::invalid_var(
                name,
                v,
                format!("a whole number of seconds from 1 to {MAX_TIMEOUT_SECS}"),
            )),
        },
    }
}

/// Where the control files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `SYSCONFDIR` [/etc/indimail].
    pub sysconfdir: PathBuf,
    /// `CONTROLDIR` [/etc/indimail/control], already resolved against `sysconfdir`.
    pub controldir: PathBuf,
    /// `ASSIGNDIR` [/etc/indimail/users], home of the qmail `users/cdb` and `assign`.
    pub assigndir: PathBuf,
}

impl Paths {
    /// SYSCONFDIR [/etc/indimail], CONTROLDIR [/etc/indimail/control]; a relative CONTROLDIR is SYSCONFDIR/CONTROLDIR.
    /// ASSIGNDIR [/etc/indimail/users].
    ///
    /// Empty values count as unset: an empty SYSCONFDIR would otherwise make
    /// every control file relative to the current directory.
    pub fn from_env(env: &Env) -> Result<Paths, ConfigError> {
        let dir = |name: &str, default: &str| -> PathBuf {
            nonempty_os(env, name).map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        let sysconfdir = dir("SYSCONFDIR", DEFAULT_SYSCONFDIR);
        let controldir = dir("CONTROLDIR", DEFAULT_CONTROLDIR);
        let controldir = if controldir.is_absolute() {
            controldir
        } else {
            sysconfdir.join(controldir)
        };
        let assigndir = dir("ASSIGNDIR", DEFAULT_ASSIGNDIR);
        Ok(Paths {
            sysconfdir,
            controldir,
            assigndir,
        })
    }

    /// `controldir/name`.
    pub fn control_file(&self, name: &str) -> PathBuf {
        self.controldir.join(name)
    }
}

/// Open `path` for reading; `None` if it does not exist. Anything but a
/// regular file is refused. The open is non-blocking so that a FIFO put in
/// place of a control file cannot hang the caller before we notice.
fn open_regular(path: &Path) -> Result<Option<File>, ConfigError> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfigError::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| ConfigError::io(path, e))?;
    if meta.is_dir() {
        return Err(ConfigError::file(path, "is a directory, expected a file"));
    }
    if !meta.is_file() {
        return Err(ConfigError::file(path, "is not a regular file"));
    }
    Ok(Some(file))
}

/// The first line of an open file without its newline; `None` if the file
/// is empty (zero bytes), which envdir treats differently from an empty line.
/// `path` only names the file in errors.
pub(crate) fn first_line_of(file: impl Read, path: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
    let mut reader = BufReader::new(file.take(MAX_LINE + 1));
    let mut line = Vec::new();
    let n = reader
        .read_until(b'\n', &mut line)
        .map_err(|e| ConfigError::io(path, e))?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() as u64 > MAX_LINE {
        return Err(ConfigError::file(
            path,
            format!("first line is longer than {MAX_LINE} bytes"),
        ));
    }
    Ok(Some(line))
}

/// Read the first line of a control file (without the newline). Ok(None) when the file does not exist; an error
/// for any other I/O failure (names the path). A file with no newline at all yields its whole content as the line.
///
/// An empty file yields an empty line. Directories, FIFOs and other
/// non-regular files are errors.
pub fn read_first_line(path: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
    match open_regular(path)? {
        None => Ok(None),
        Some(file) => Ok(Some(first_line_of(file, path)?.unwrap_or_default())),
    }
}

/// The FIFO read and write timeouts.
///
/// They come from `control/timeoutread` and `control/timeoutwrite` because
/// C clients and servers use those files and peers must agree. Those same
/// files set qmail-smtpd's SMTP timeouts, which are often far longer than a
/// lookup should wait; the range limit at least keeps a mistake bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long to wait for data to read.
    pub read: Duration,
    /// How long to wait before a write can proceed.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            read: DEFAULT_TIMEOUT,
            write: DEFAULT_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// control/timeoutread and control/timeoutwrite: strict parse of the first line (optional surrounding ASCII
    /// whitespace, then 1..=10 decimal digits, value 1..=86400) — missing file or an empty first line => 4 s;
    /// anything else (garbage, 0, overflow) => ConfigError naming the file. (The C client read these without
    /// NUL-terminating its buffer; we parse strictly.)
    pub fn load(paths: &Paths) -> Result<Timeouts, ConfigError> {
        Ok(Timeouts {
            read: timeout_file(&paths.control_file("timeoutread"))?,
            write: timeout_file(&paths.control_file("timeoutwrite"))?,
        })
    }
}

fn timeout_file(path: &Path) -> Result<Duration, ConfigError> {
    let Some(line) = read_first_line(path)? else {
        return Ok(DEFAULT_TIMEOUT);
    };
    timeout_line(&line).ok_or_else(|| {
        ConfigError::invalid_line(
            path,
            &line,
            format!("a whole number of seconds from 1 to {MAX_TIMEOUT_SECS}"),
        )
    })
}

/// The timeout a timeout file's first line sets: the default for a blank
/// line, `None` for a line that is not a valid number of seconds.
pub(crate) fn timeout_line(line: &[u8]) -> Option<Duration> {
    let digits = line.trim_ascii();
    if digits.is_empty() {
        return Some(DEFAULT_TIMEOUT);
    }
    std::str::from_utf8(digits)
        .ok()
        .filter(|s| s.len() <= 10)
        .and_then(parse_decimal)
        .filter(|n| (1..=MAX_TIMEOUT_SECS).contains(n))
        .map(Duration::from_secs)
}

/// How to reach the local MySQL database (`host.mysql`, spec §10.1).
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlConfig {
    /// Server host name or address.
    pub host: String,
    /// Login user.
    pub user: String,
    /// Login password; never shown by `Debug` or in errors.
    pub password: String,
    /// Unix socket path, if one was given.
    pub socket: Option<PathBuf>,
    /// TCP port; 0 means the client library's default.
    pub port: u16,
    /// Whether TLS is required.
    pub ssl: bool,
    /// Database name.
    pub database: String,
    /// Active users table.
    pub table: String,
    /// Inactive users table.
    pub inactive_table: String,
    /// Table of POP/IMAP-before-SMTP relay entries.
    pub relay_table: String,
    /// MySQL connect timeout.
    pub connect_timeout: Duration,
    /// MySQL read timeout.
    pub read_timeout: Duration,
    /// MySQL write timeout.
    pub write_timeout: Duration,
    /// Where the host line came from: "MYSQL_HOST", the host.mysql path, or "default".
    pub source: String,
}

impl fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlConfig")
            .field("host", &self.host)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("socket", &self.socket)
            .field("port", &self.port)
            .field("ssl", &self.ssl)
            .field("database", &self.database)
            .field("table", &self.table)
            .field("inactive_table", &self.inactive_table)
            .field("relay_table", &self.relay_table)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("source", &self.source)
            .finish()
    }
}

/// An identifier (database or table name) from `name`, or its default.
/// These are pasted into SQL as identifiers, which cannot be bound as
/// parameters, so only a safe character set is accepted.
fn env_ident(env: &Env, name: &str, default: &str, what: &str) -> Result<String, ConfigError> {
    let Some(v) = nonempty(env, name)? else {
        return Ok(default.to_string());
    };
    let ok = v.len() <= MAX_IDENT_LEN
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$');
    if ok {
        Ok(v.to_string())
    } else {
        Err(ConfigError::invalid_var(
            name,
            v,
            format!("a {what} name of 1 to {MAX_IDENT_LEN} characters from A-Z a-z 0-9 _ $"),
        ))
    }
}

impl MysqlConfig {
    /// Line `host[:user[:password[:socket-or-port[:ssl]]]]` (spec §10.1), from env MYSQL_HOST if set, else the first line of
    /// CONTROLDIR/host.mysql (an empty first line is an error: "incomplete line"), else host "localhost".
    /// Fields split at ':' by position; an empty field keeps its default. Defaults: user MYSQL_USER|indimail,
    /// password MYSQL_PASSWD|ssh-1.5-, socket MYSQL_SOCKET, port MYSQL_VPORT|0, database MYSQL_DATABASE|indimail,
    /// table MYSQL_TABLE|indimail, inactive_table MYSQL_INACTIVE_TABLE|indibak, relay_table RELAY_TABLE|relay.
    /// The 4th field is a socket path if it starts with '/' or '.', else a decimal port (1..=65535, error otherwise).
    /// The 5th field turns TLS on only if it is exactly "ssl". More than 5 fields -> error.
    /// Table names must be 1..=64 of [A-Za-z0-9_$] (they are put into SQL as identifiers) — error naming the variable otherwise.
    /// Timeouts: MYSQL_OPT_CONNECT_TIMEOUT [120], MYSQL_OPT_READ_TIMEOUT [20], MYSQL_OPT_WRITE_TIMEOUT [20] seconds.
    ///
    /// The database name obeys the same rule as table names, since it is
    /// used in `CREATE DATABASE`. An empty MYSQL_HOST counts as unset.
    pub fn load(env: &Env, paths: &Paths) -> Result<MysqlConfig, ConfigError> {
        let port = match nonempty(env, "MYSQL_VPORT")? {
            None => 0,
            Some(v) => parse_decimal(v)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| {
                    ConfigError::invalid_var("MYSQL_VPORT", v, "a port number 0..=65535")
                })?,
        };
        let defaults = MysqlConfig {
            host: "localhost".to_string(),
            user: env.get_str("MYSQL_USER")?.unwrap_or("indimail").to_string(),
            password: env
                .get_str("MYSQL_PASSWD")?
                .unwrap_or("ssh-1.5-")
                .to_string(),
            socket: nonempty_os(env, "MYSQL_SOCKET").map(PathBuf::from),
            port,
            ssl: false,
            database: env_ident(env, "MYSQL_DATABASE", "indimail", "database")?,
            table: env_ident(env, "MYSQL_TABLE", "indimail", "table")?,
            inactive_table: env_ident(env, "MYSQL_INACTIVE_TABLE", "indibak", "table")?,
            relay_table: env_ident(env, "RELAY_TABLE", "relay", "table")?,
            connect_timeout: env_seconds(env, "MYSQL_OPT_CONNECT_TIMEOUT", 120)?,
            read_timeout: env_seconds(env, "MYSQL_OPT_READ_TIMEOUT", 20)?,
            write_timeout: env_seconds(env, "MYSQL_OPT_WRITE_TIMEOUT", 20)?,
            source: "default".to_string(),
        };
        if let Some(line) = nonempty(env, "MYSQL_HOST")? {
            let defaults = MysqlConfig {
                source: "MYSQL_HOST".to_string(),
                ..defaults
            };
            return MysqlConfig::parse_host_line(line, defaults);
        }
        let path = paths.control_file("host.mysql");
        let Some(line) = read_first_line(&path)? else {
            return Ok(defaults);
        };
        if line.is_empty() {
            return Err(ConfigError::file(&path, "incomplete line"));
        }
        let line = String::from_utf8(line)
            .map_err(|_| ConfigError::file(&path, "first line is not valid UTF-8"))?;
        let defaults = MysqlConfig {
            source: path.display().to_string(),
            ..defaults
        };
        MysqlConfig::parse_host_line(&line, defaults)
    }

    /// Parse just a host line with the given defaults (pure; used by load and by tests).
    ///
    /// Errors name `defaults.source` and never quote the line or its fields:
    /// a ':' inside a password shifts the fields, so any of them may be a
    /// piece of the password.
    pub fn parse_host_line(line: &str, defaults: MysqlConfig) -> Result<MysqlConfig, ConfigError> {
        let fields: Vec<&str> = line.split(':').collect();
        let mut cfg = defaults;
        if fields.len() > 5 {
            return Err(ConfigError::HostLine {
                origin: cfg.source,
                reason: format!(
                    "host line has {} ':'-separated fields, at most 5 are allowed \
                     (host:user:password:socket-or-port:ssl)",
                    fields.len()
                ),
            });
        }
        let field = |i: usize| fields.get(i).copied().filter(|f| !f.is_empty());
        if let Some(host) = field(0) {
            cfg.host = host.to_string();
        }
        if let Some(user) = field(1) {
            cfg.user = user.to_string();
        }
        if let Some(password) = field(2) {
            cfg.password = password.to_string();
        }
        if let Some(f) = field(3) {
            if f.starts_with('/') || f.starts_with('.') {
                cfg.socket = Some(PathBuf::from(f));
            } else {
                match parse_decimal(f).and_then(|n| u16::try_from(n).ok()) {
                    Some(port) if port > 0 => cfg.port = port,
                    _ => {
                        return Err(ConfigError::HostLine {
                            origin: cfg.source,
                            reason: "4th field of the host line is neither a socket path \
                                     (starting with '/' or '.') nor a port number 1..=65535"
                                .to_string(),
                        })
                    }
                }
            }
        }
        if let Some(f) = field(4) {
            cfg.ssl = f == "ssl";
        }
        Ok(cfg)
    }
}

/// Where the server FIFOs and the client reply FIFOs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoConfig {
    /// `INFIFO` [infifo]: a name inside `infifodir`, or a path if it starts with '/' or '.'.
    pub infifo: OsString,
    /// INFIFODIR, or its older name FIFODIR (INFIFODIR wins) [/run/indimail/inlookup];
    /// a relative value is INDIMAILDIR/value (with the '/', unlike C) where INDIMAILDIR [/var/indimail]
    pub infifodir: PathBuf,
    /// `FIFOTMPDIR` [/tmp]: where clients create their reply FIFOs.
    pub fifotmpdir: PathBuf,
    /// `FIFO_MODE`, octal, <= 0o777: permissions of the server FIFOs, new or taken over.
    pub fifo_mode: Option<u32>,
}

impl FifoConfig {
    /// Read INFIFO, INFIFODIR/FIFODIR, INDIMAILDIR, FIFOTMPDIR and FIFO_MODE.
    ///
    /// An empty FIFO_MODE counts as unset; C would have turned it into mode 0.
    pub fn load(env: &Env) -> Result<FifoConfig, ConfigError> {
        let infifo =
            nonempty_os(env, "INFIFO").map_or_else(|| DEFAULT_INFIFO.into(), OsStr::to_os_string);
        let dir = nonempty_os(env, "INFIFODIR")
            .or_else(|| nonempty_os(env, "FIFODIR"))
            .map_or_else(|| PathBuf::from(DEFAULT_INFIFODIR), PathBuf::from);
        let infifodir = if dir.is_absolute() {
            dir
        } else {
            nonempty_os(env, "INDIMAILDIR")
                .map_or_else(|| PathBuf::from(DEFAULT_INDIMAILDIR), PathBuf::from)
                .join(dir)
        };
        let fifotmpdir = nonempty_os(env, "FIFOTMPDIR")
            .map_or_else(|| PathBuf::from(DEFAULT_FIFOTMPDIR), PathBuf::from);
        let fifo_mode =
            match nonempty(env, "FIFO_MODE")? {
                None => None,
                Some(v) => Some(parse_mode(v).ok_or_else(|| {
                    ConfigError::invalid_var("FIFO_MODE", v, "an octal file mode")
                })?),
            };
        Ok(FifoConfig {
            infifo,
            infifodir,
            fifotmpdir,
            fifo_mode,
        })
    }

    /// INFIFO starts with '/' or '.', so it names the FIFO itself.
    pub fn infifo_is_path(&self) -> bool {
        matches!(self.infifo.as_bytes().first(), Some(b'/' | b'.'))
    }

    /// The server FIFO base path: INFIFO verbatim if it starts with '/' or '.', else INFIFODIR/INFIFO.
    pub fn server_base(&self) -> PathBuf {
        if self.infifo_is_path() {
            PathBuf::from(&self.infifo)
        } else {
            self.infifodir.join(&self.infifo)
        }
    }

    /// base + ".k" (e.g. /run/indimail/inlookup/infifo.3)
    pub fn instance_path(&self, k: u32) -> PathBuf {
        let mut path = self.server_base().into_os_string();
        path.push(format!(".{k}"));
        PathBuf::from(path)
    }
}

/// Octal digits only (leading zeros allowed), at most 0o777.
pub(crate) fn parse_mode(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    s.bytes()
        .try_fold(0u32, |acc, b| {
            acc.checked_mul(8)?.checked_add(u32::from(b - b'0'))
        })
        // Permission bits only: setuid/setgid/sticky mean nothing on a FIFO.
        .filter(|m| *m <= 0o777)
}

/// Settings of the lookups themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupConfig {
    /// INDIMAIL_DOMAIN, else DEFAULT_DOMAIN, else first line of CONTROLDIR/defaultdomain, else None; lower-cased
    pub default_domain: Option<String>,
    /// RELAY_CLEAR_MINUTES [30]; must be a non-negative decimal
    pub relay_clear_minutes: u32,
    /// REAL_DOMAINS, ':'-separated, empty entries dropped, lower-cased
    pub real_domains: Vec<String>,
    /// ALIAS_DOMAINS, same
    pub alias_domains: Vec<String>,
    /// DOMAIN_LIMITS set (any value)
    pub domain_limits: bool,
    /// ROUTES starting with "qmtp" -> Some(true), "smtp" -> Some(false), unset -> None; other -> error
    pub routes_qmtp: Option<bool>,
}

impl LookupConfig {
    /// Read the lookup settings. Empty INDIMAIL_DOMAIN, DEFAULT_DOMAIN or
    /// ROUTES count as unset; the defaultdomain line is trimmed of blanks.
    pub fn load(env: &Env, paths: &Paths) -> Result<LookupConfig, ConfigError> {
        let mut default_domain = match nonempty(env, "INDIMAIL_DOMAIN")? {
            Some(d) => Some(d.to_string()),
            None => nonempty(env, "DEFAULT_DOMAIN")?.map(str::to_string),
        };
        if default_domain.is_none() {
            let path = paths.control_file("defaultdomain");
            if let Some(line) = read_first_line(&path)? {
                let line = std::str::from_utf8(&line)
                    .map_err(|_| ConfigError::file(&path, "first line is not valid UTF-8"))?;
                let line = line.trim_ascii();
                if !line.is_empty() {
                    default_domain = Some(line.to_string());
                }
            }
        }
        let relay_clear_minutes = match nonempty(env, "RELAY_CLEAR_MINUTES")? {
            None => DEFAULT_RELAY_CLEAR_MINUTES,
            Some(v) => parse_decimal(v)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    ConfigError::invalid_var(
                        "RELAY_CLEAR_MINUTES",
                        v,
                        "a non-negative whole number of minutes",
                    )
                })?,
        };
        let routes_qmtp = match nonempty(env, "ROUTES")? {
            None => None,
            Some(v) if v.starts_with("qmtp") => Some(true),
            Some(v) if v.starts_with("smtp") => Some(false),
            Some(v) => {
                return Err(ConfigError::invalid_var(
                    "ROUTES",
                    v,
                    "a value starting with \"smtp\" or \"qmtp\"",
                ))
            }
        };
        Ok(LookupConfig {
            default_domain: default_domain.map(|d| d.to_ascii_lowercase()),
            relay_clear_minutes,
            real_domains: domain_list(env, "REAL_DOMAINS")?,
            alias_domains: domain_list(env, "ALIAS_DOMAINS")?,
            domain_limits: env.is_set("DOMAIN_LIMITS"),
            routes_qmtp,
        })
    }
}

fn domain_list(env: &Env, name: &str) -> Result<Vec<String>, ConfigError> {
    Ok(env
        .get_str(name)?
        .unwrap_or("")
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase)
        .collect())
}

/// Everything the lookups and the FIFO code need, loaded once.
#[derive(Debug, Clone)]
pub struct Config {
    /// Control file locations.
    pub paths: Paths,
    /// FIFO read/write timeouts.
    pub timeouts: Timeouts,
    /// Local MySQL connection.
    pub mysql: MysqlConfig,
    /// FIFO locations and permissions.
    pub fifo: FifoConfig,
    /// Lookup settings.
    pub lookup: LookupConfig,
}

impl Config {
    /// Load every part from `env` and the control files it points to.
    pub fn load(env: &Env) -> Result<Config, ConfigError> {
        let paths = Paths::from_env(env)?;
        Ok(Config {
            timeouts: Timeouts::load(&paths)?,
            mysql: MysqlConfig::load(env, &paths)?,
            fifo: FifoConfig::load(env)?,
            lookup: LookupConfig::load(env, &paths)?,
            paths,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use tempfile::TempDir;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (*k, *v)))
    }

    /// A temporary CONTROLDIR and the Env/Paths pointing at it.
    fn control(files: &[(&str, &[u8])]) -> (TempDir, Env, Paths) {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            fs::write(dir.path().join(name), content).unwrap();
        }
        let e = Env::from_pairs([("CONTROLDIR", dir.path().as_os_str())]);
        let p = Paths::from_env(&e).unwrap();
        (dir, e, p)
    }

    fn host_defaults() -> MysqlConfig {
        MysqlConfig::load(&Env::default(), &control(&[]).2).unwrap()
    }

    // ---- Env / envdir ----

    #[test]
    fn env_basic_accessors() {
        let mut e = env(&[("A", "1"), ("EMPTY", "")]);
        assert_eq!(e.get("A"), Some(OsStr::new("1")));
        assert!(e.is_set("EMPTY"));
        assert!(!e.is_set("B"));
        e.set("B", "2");
        e.remove("A");
        assert_eq!(e.get_str("B").unwrap(), Some("2"));
        assert_eq!(e.get_str("A").unwrap(), None);
        assert_eq!(e.iter().count(), 2);
    }

    #[test]
    fn get_str_rejects_non_utf8_naming_variable() {
        let e = Env::from_pairs([("MYSQL_USER", OsString::from_vec(vec![0xff, b'a']))]);
        let err = e.get_str("MYSQL_USER").unwrap_err().to_string();
        assert_eq!(err, "MYSQL_USER is not valid UTF-8");
    }

    #[test]
    fn envdir_value_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ONE"), "value\nsecond line\n").unwrap();
        fs::write(dir.path().join("NONL"), "no newline").unwrap();
        fs::write(dir.path().join("BLANKLINE"), "\nignored").unwrap();
        let mut e = Env::default();
        e.load_envdir(dir.path()).unwrap();
        assert_eq!(e.get_str("ONE").unwrap(), Some("value"));
        assert_eq!(e.get_str("NONL").unwrap(), Some("no newline"));
        // A newline-only file sets the variable to the empty string.
        assert!(e.is_set("BLANKLINE"));
        assert_eq!(e.get_str("BLANKLINE").unwrap(), Some(""));
    }

    #[test]
    fn envdir_trailing_blanks_and_nul() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("TRAIL"), " lead kept \t \t\nx").unwrap();
        fs::write(dir.path().join("NUL"), b"a\0b\0\n").unwrap();
        let mut e = Env::default();
        e.load_envdir(dir.path()).unwrap();
        assert_eq!(e.get_str("TRAIL").unwrap(), Some(" lead kept"));
        assert_eq!(e.get_str("NUL").unwrap(), Some("a\nb\n"));
    }

    #[test]
    fn envdir_empty_file_unsets_and_values_override() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("GONE"), "").unwrap();
        fs::write(dir.path().join("KEEP"), "new\n").unwrap();
        fs::write(dir.path().join(".hidden"), "x\n").unwrap();
        let mut e = env(&[("GONE", "old"), ("KEEP", "old"), ("OTHER", "o")]);
        e.load_envdir(dir.path()).unwrap();
        assert!(!e.is_set("GONE"));
        assert_eq!(e.get_str("KEEP").unwrap(), Some("new"));
        assert_eq!(e.get_str("OTHER").unwrap(), Some("o"));
        assert!(!e.is_set(".hidden"));
    }

    #[test]
    fn envdir_subdirectory_is_error_and_env_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("SUB")).unwrap();
        fs::write(dir.path().join("A"), "1\n").unwrap();
        let mut e = env(&[("A", "0")]);
        let err = e.load_envdir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("SUB"), "{err}");
        assert!(err.contains("directory"), "{err}");
        assert_eq!(e.get_str("A").unwrap(), Some("0"));
    }

    #[test]
    fn envdir_name_with_equals_is_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("A=B"), "1\n").unwrap();
        let err = Env::default().load_envdir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("A=B"), "{err}");
    }

    #[test]
    fn envdir_missing_dir_is_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Env::default().load_envdir(&missing).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        assert!(err.to_string().contains("nope"));
    }

    // ---- Paths / read_first_line ----

    #[test]
    fn paths_defaults() {
        let p = Paths::from_env(&Env::default()).unwrap();
        assert_eq!(p.sysconfdir, Path::new("/etc/indimail"));
        assert_eq!(p.controldir, Path::new("/etc/indimail/control"));
        assert_eq!(p.assigndir, Path::new("/etc/indimail/users"));
        assert_eq!(
            p.control_file("host.mysql"),
            Path::new("/etc/indimail/control/host.mysql")
        );
    }

    #[test]
    fn paths_relative_controldir() {
        let p = Paths::from_env(&env(&[("SYSCONFDIR", "/opt/im"), ("CONTROLDIR", "ctl")])).unwrap();
        assert_eq!(p.controldir, Path::new("/opt/im/ctl"));
        let p = Paths::from_env(&env(&[("SYSCONFDIR", "/opt/im"), ("CONTROLDIR", "/c")])).unwrap();
        assert_eq!(p.controldir, Path::new("/c"));
        let p = Paths::from_env(&env(&[("ASSIGNDIR", "/a")])).unwrap();
        assert_eq!(p.assigndir, Path::new("/a"));
    }

    #[test]
    fn read_first_line_cases() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_first_line(&dir.path().join("missing")).unwrap(), None);
        let f = dir.path().join("f");
        fs::write(&f, "no newline").unwrap();
        assert_eq!(read_first_line(&f).unwrap(), Some(b"no newline".to_vec()));
        fs::write(&f, "one\ntwo\n").unwrap();
        assert_eq!(read_first_line(&f).unwrap(), Some(b"one".to_vec()));
        fs::write(&f, "").unwrap();
        assert_eq!(read_first_line(&f).unwrap(), Some(Vec::new()));
        let err = read_first_line(dir.path()).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }

    // ---- Timeouts ----

    #[test]
    fn timeouts_default_when_missing() {
        let (_d, _e, p) = control(&[]);
        let t = Timeouts::load(&p).unwrap();
        assert_eq!(t, Timeouts::default());
        assert_eq!(t.read, Duration::from_secs(4));
        assert_eq!(t.write, Duration::from_secs(4));
    }

    #[test]
    fn timeouts_valid_values() {
        let (_d, _e, p) = control(&[("timeoutread", b" 10 \n"), ("timeoutwrite", b"86400")]);
        let t = Timeouts::load(&p).unwrap();
        assert_eq!(t.read, Duration::from_secs(10));
        assert_eq!(t.write, Duration::from_secs(86400));
    }

    #[test]
    fn timeouts_empty_line_is_default() {
        let (_d, _e, p) = control(&[("timeoutread", b"\n"), ("timeoutwrite", b"")]);
        assert_eq!(Timeouts::load(&p).unwrap(), Timeouts::default());
    }

    #[test]
    fn timeouts_garbage_error_names_file() {
        let (_d, _e, p) = control(&[("timeoutread", b"4s\n")]);
        let err = Timeouts::load(&p).unwrap_err().to_string();
        let path = p.control_file("timeoutread");
        assert!(
            err.starts_with(&format!(
                "{}: first line \"4s\" is not a whole number of seconds",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn timeouts_zero_is_error() {
        let (_d, _e, p) = control(&[("timeoutwrite", b"0\n")]);
        let err = Timeouts::load(&p).unwrap_err().to_string();
        assert!(err.contains("timeoutwrite"), "{err}");
    }

    #[test]
    fn timeouts_huge_is_error() {
        for v in [
            &b"86401"[..],
            b"99999999999999999999999",
            b"4294967296",
            b"00000000004",
        ] {
            let (_d, _e, p) = control(&[("timeoutread", v)]);
            assert!(
                Timeouts::load(&p).is_err(),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
        let (_d, _e, p) = control(&[("timeoutread", b"0000000004")]);
        assert_eq!(Timeouts::load(&p).unwrap().read, Duration::from_secs(4));
    }

    // ---- MySQL ----

    #[test]
    fn mysql_defaults_without_file() {
        let m = host_defaults();
        assert_eq!(m.host, "localhost");
        assert_eq!(m.user, "indimail");
        assert_eq!(m.password, "ssh-1.5-");
        assert_eq!(m.socket, None);
        assert_eq!(m.port, 0);
        assert!(!m.ssl);
        assert_eq!(m.database, "indimail");
        assert_eq!(m.table, "indimail");
        assert_eq!(m.inactive_table, "indibak");
        assert_eq!(m.relay_table, "relay");
        assert_eq!(m.connect_timeout, Duration::from_secs(120));
        assert_eq!(m.read_timeout, Duration::from_secs(20));
        assert_eq!(m.write_timeout, Duration::from_secs(20));
        assert_eq!(m.source, "default");
    }

    #[test]
    fn mysql_env_defaults() {
        let (_d, mut e, p) = control(&[]);
        for (k, v) in [
            ("MYSQL_USER", "u"),
            ("MYSQL_PASSWD", "pw"),
            ("MYSQL_SOCKET", "/run/mysql.sock"),
            ("MYSQL_VPORT", "3307"),
            ("MYSQL_DATABASE", "db1"),
            ("MYSQL_TABLE", "users"),
            ("MYSQL_INACTIVE_TABLE", "old_users"),
            ("RELAY_TABLE", "relay$2"),
            ("MYSQL_OPT_CONNECT_TIMEOUT", "5"),
            ("MYSQL_OPT_READ_TIMEOUT", "6"),
            ("MYSQL_OPT_WRITE_TIMEOUT", "7"),
        ] {
            e.set(k, v);
        }
        let m = MysqlConfig::load(&e, &p).unwrap();
        assert_eq!(m.user, "u");
        assert_eq!(m.password, "pw");
        assert_eq!(m.socket, Some(PathBuf::from("/run/mysql.sock")));
        assert_eq!(m.port, 3307);
        assert_eq!(m.database, "db1");
        assert_eq!(m.table, "users");
        assert_eq!(m.inactive_table, "old_users");
        assert_eq!(m.relay_table, "relay$2");
        assert_eq!(m.connect_timeout, Duration::from_secs(5));
        assert_eq!(m.read_timeout, Duration::from_secs(6));
        assert_eq!(m.write_timeout, Duration::from_secs(7));
    }

    #[test]
    fn mysql_bad_env_numbers() {
        let (_d, e, p) = control(&[]);
        let mut e1 = e.clone();
        e1.set("MYSQL_VPORT", "70000");
        let err = MysqlConfig::load(&e1, &p).unwrap_err().to_string();
        assert!(err.starts_with("MYSQL_VPORT: \"70000\""), "{err}");
        let mut e2 = e;
        e2.set("MYSQL_OPT_READ_TIMEOUT", "soon");
        let err = MysqlConfig::load(&e2, &p).unwrap_err().to_string();
        assert!(err.starts_with("MYSQL_OPT_READ_TIMEOUT: \"soon\""), "{err}");
    }

    #[test]
    fn host_line_every_field() {
        let d = host_defaults();
        let m = MysqlConfig::parse_host_line("db.example:bob", d.clone()).unwrap();
        assert_eq!((m.host.as_str(), m.user.as_str()), ("db.example", "bob"));
        assert_eq!(m.password, "ssh-1.5-");
        let m = MysqlConfig::parse_host_line("h:u:secret:3306:ssl", d.clone()).unwrap();
        assert_eq!(m.host, "h");
        assert_eq!(m.user, "u");
        assert_eq!(m.password, "secret");
        assert_eq!(m.port, 3306);
        assert_eq!(m.socket, None);
        assert!(m.ssl);
        let m = MysqlConfig::parse_host_line("h", d).unwrap();
        assert_eq!(m.host, "h");
        assert_eq!(m.user, "indimail");
    }

    #[test]
    fn host_line_empty_fields_keep_defaults() {
        let d = host_defaults();
        let m = MysqlConfig::parse_host_line("::::", d.clone()).unwrap();
        assert_eq!(m, d);
        let m = MysqlConfig::parse_host_line(":joe::/s", d.clone()).unwrap();
        assert_eq!(m.host, "localhost");
        assert_eq!(m.user, "joe");
        assert_eq!(m.password, "ssh-1.5-");
        assert_eq!(m.socket, Some(PathBuf::from("/s")));
    }

    #[test]
    fn host_line_socket_vs_port() {
        let d = host_defaults();
        let m = MysqlConfig::parse_host_line("h:::/var/run/mysqld.sock", d.clone()).unwrap();
        assert_eq!(m.socket, Some(PathBuf::from("/var/run/mysqld.sock")));
        assert_eq!(m.port, 0);
        let m = MysqlConfig::parse_host_line("h:::./rel.sock", d.clone()).unwrap();
        assert_eq!(m.socket, Some(PathBuf::from("./rel.sock")));
        let m = MysqlConfig::parse_host_line("h:::65535", d).unwrap();
        assert_eq!(m.socket, None);
        assert_eq!(m.port, 65535);
    }

    #[test]
    fn host_line_ssl_vs_nossl() {
        let d = host_defaults();
        assert!(
            MysqlConfig::parse_host_line("h::::ssl", d.clone())
                .unwrap()
                .ssl
        );
        assert!(
            !MysqlConfig::parse_host_line("h::::nossl", d.clone())
                .unwrap()
                .ssl
        );
        assert!(
            !MysqlConfig::parse_host_line("h::::SSL", d.clone())
                .unwrap()
                .ssl
        );
        assert!(!MysqlConfig::parse_host_line("h::::", d).unwrap().ssl);
    }

    #[test]
    fn host_line_bad_port() {
        for port in ["0", "65536", "abc", "+1", "33 06", "-1"] {
            let line = format!("h:u:topsecret:{port}");
            let err = MysqlConfig::parse_host_line(&line, host_defaults())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("default: 4th field"), "{err}");
            assert!(!err.contains("topsecret"), "{err}");
        }
    }

    #[test]
    fn host_line_too_many_fields() {
        let err = MysqlConfig::parse_host_line("h:u:pa:ss:3306:ssl", host_defaults())
            .unwrap_err()
            .to_string();
        assert!(err.contains("6 ':'-separated fields"), "{err}");
        assert!(!err.contains("pa:ss"), "{err}");
    }

    #[test]
    fn mysql_env_host_over_file() {
        let (_d, mut e, p) = control(&[("host.mysql", b"filehost:fu:fp:3306\n")]);
        let m = MysqlConfig::load(&e, &p).unwrap();
        assert_eq!(m.host, "filehost");
        assert_eq!(m.user, "fu");
        assert_eq!(m.port, 3306);
        assert_eq!(m.source, p.control_file("host.mysql").display().to_string());
        e.set("MYSQL_HOST", "envhost::::ssl");
        let m = MysqlConfig::load(&e, &p).unwrap();
        assert_eq!(m.host, "envhost");
        assert_eq!(m.user, "indimail");
        assert!(m.ssl);
        assert_eq!(m.source, "MYSQL_HOST");
        let err = {
            e.set("MYSQL_HOST", "h:::bad");
            MysqlConfig::load(&e, &p).unwrap_err().to_string()
        };
        assert!(err.starts_with("MYSQL_HOST: "), "{err}");
    }

    #[test]
    fn mysql_empty_file_line_is_error() {
        let (_d, e, p) = control(&[("host.mysql", b"\nsecond\n")]);
        let err = MysqlConfig::load(&e, &p).unwrap_err().to_string();
        let path = p.control_file("host.mysql");
        assert_eq!(err, format!("{}: incomplete line", path.display()));
    }

    #[test]
    fn mysql_bad_table_name_names_variable() {
        let (_d, e, p) = control(&[]);
        for (var, what) in [
            ("MYSQL_TABLE", "table"),
            ("MYSQL_INACTIVE_TABLE", "table"),
            ("RELAY_TABLE", "table"),
            ("MYSQL_DATABASE", "database"),
        ] {
            let mut e = e.clone();
            e.set(var, "x; drop table y");
            let err = MysqlConfig::load(&e, &p).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{var}: \"x; drop table y\" is not a {what} name")),
                "{err}"
            );
        }
        let mut e = e;
        e.set("MYSQL_TABLE", "a".repeat(65));
        assert!(MysqlConfig::load(&e, &p).is_err());
        e.set("MYSQL_TABLE", "a".repeat(64));
        assert!(MysqlConfig::load(&e, &p).is_ok());
    }

    #[test]
    fn mysql_debug_hides_password() {
        let m = MysqlConfig::parse_host_line("h:u:S3cr3tPw", host_defaults()).unwrap();
        let shown = format!("{m:?}");
        assert!(!shown.contains("S3cr3tPw"), "{shown}");
        assert!(shown.contains("<hidden>"), "{shown}");
        let cfg_shown = format!("{:#?}", host_defaults());
        assert!(!cfg_shown.contains("ssh-1.5-"), "{cfg_shown}");
    }

    // ---- FIFOs ----

    #[test]
    fn fifo_defaults() {
        let f = FifoConfig::load(&Env::default()).unwrap();
        assert_eq!(f.infifo, "infifo");
        assert_eq!(f.infifodir, Path::new("/run/indimail/inlookup"));
        assert_eq!(f.fifotmpdir, Path::new("/tmp"));
        assert_eq!(f.fifo_mode, None);
        assert!(!f.infifo_is_path());
        assert_eq!(f.server_base(), Path::new("/run/indimail/inlookup/infifo"));
    }

    #[test]
    fn fifo_fifodir_fallback_and_infifodir_precedence() {
        let f = FifoConfig::load(&env(&[("FIFODIR", "/old")])).unwrap();
        assert_eq!(f.infifodir, Path::new("/old"));
        let f = FifoConfig::load(&env(&[("FIFODIR", "/old"), ("INFIFODIR", "/new")])).unwrap();
        assert_eq!(f.infifodir, Path::new("/new"));
    }

    #[test]
    fn fifo_relative_infifodir() {
        let f = FifoConfig::load(&env(&[("INFIFODIR", "inlookup")])).unwrap();
        assert_eq!(f.infifodir, Path::new("/var/indimail/inlookup"));
        let f =
            FifoConfig::load(&env(&[("INFIFODIR", "fifo"), ("INDIMAILDIR", "/home/im")])).unwrap();
        assert_eq!(f.infifodir, Path::new("/home/im/fifo"));
    }

    #[test]
    fn fifo_absolute_and_dot_infifo() {
        let f = FifoConfig::load(&env(&[("INFIFO", "/x/y"), ("INFIFODIR", "/ignored")])).unwrap();
        assert!(f.infifo_is_path());
        assert_eq!(f.server_base(), Path::new("/x/y"));
        let f = FifoConfig::load(&env(&[("INFIFO", "./here")])).unwrap();
        assert!(f.infifo_is_path());
        assert_eq!(f.server_base(), Path::new("./here"));
        let f = FifoConfig::load(&env(&[("INFIFO", "other"), ("FIFOTMPDIR", "/var/tmp")])).unwrap();
        assert!(!f.infifo_is_path());
        assert_eq!(f.server_base(), Path::new("/run/indimail/inlookup/other"));
        assert_eq!(f.fifotmpdir, Path::new("/var/tmp"));
    }

    #[test]
    fn fifo_instance_path() {
        let f = FifoConfig::load(&Env::default()).unwrap();
        assert_eq!(
            f.instance_path(3),
            Path::new("/run/indimail/inlookup/infifo.3")
        );
        let f = FifoConfig::load(&env(&[("INFIFO", "/x/y")])).unwrap();
        assert_eq!(f.instance_path(12), Path::new("/x/y.12"));
    }

    #[test]
    fn fifo_mode_parsing() {
        let f = FifoConfig::load(&env(&[("FIFO_MODE", "0660")])).unwrap();
        assert_eq!(f.fifo_mode, Some(0o660));
        let f = FifoConfig::load(&env(&[("FIFO_MODE", "777")])).unwrap();
        assert_eq!(f.fifo_mode, Some(0o777));
        let f = FifoConfig::load(&env(&[("FIFO_MODE", "")])).unwrap();
        assert_eq!(f.fifo_mode, None);
        let err = FifoConfig::load(&env(&[("FIFO_MODE", "0999")]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "FIFO_MODE: \"0999\" is not an octal file mode");
        for bad in [
            "10000",
            "7777",
            "2660",
            "rw",
            " 660",
            "0o660",
            "77777777777777777",
        ] {
            assert!(
                FifoConfig::load(&env(&[("FIFO_MODE", bad)])).is_err(),
                "{bad}"
            );
        }
    }

    // ---- Lookup settings ----

    #[test]
    fn lookup_defaults() {
        let (_d, e, p) = control(&[]);
        let l = LookupConfig::load(&e, &p).unwrap();
        assert_eq!(
            l,
            LookupConfig {
                default_domain: None,
                relay_clear_minutes: 30,
                real_domains: vec![],
                alias_domains: vec![],
                domain_limits: false,
                routes_qmtp: None,
            }
        );
    }

    #[test]
    fn lookup_default_domain_order() {
        let (_d, e, p) = control(&[("defaultdomain", b"  File.Example \n")]);
        let l = LookupConfig::load(&e, &p).unwrap();
        assert_eq!(l.default_domain.as_deref(), Some("file.example"));
        let mut e2 = e.clone();
        e2.set("DEFAULT_DOMAIN", "Default.Example");
        let l = LookupConfig::load(&e2, &p).unwrap();
        assert_eq!(l.default_domain.as_deref(), Some("default.example"));
        e2.set("INDIMAIL_DOMAIN", "INDI.example");
        let l = LookupConfig::load(&e2, &p).unwrap();
        assert_eq!(l.default_domain.as_deref(), Some("indi.example"));
    }

    #[test]
    fn lookup_each_variable() {
        let (_d, mut e, p) = control(&[]);
        e.set("RELAY_CLEAR_MINUTES", "0");
        e.set("REAL_DOMAINS", ":A.example::b.example:");
        e.set("ALIAS_DOMAINS", "Alias.Example");
        e.set("DOMAIN_LIMITS", "");
        e.set("ROUTES", "qmtp");
        let l = LookupConfig::load(&e, &p).unwrap();
        assert_eq!(l.relay_clear_minutes, 0);
        assert_eq!(l.real_domains, vec!["a.example", "b.example"]);
        assert_eq!(l.alias_domains, vec!["alias.example"]);
        assert!(l.domain_limits);
        assert_eq!(l.routes_qmtp, Some(true));
        e.set("ROUTES", "smtproutes");
        assert_eq!(LookupConfig::load(&e, &p).unwrap().routes_qmtp, Some(false));
        e.set("ROUTES", "lmtp");
        let err = LookupConfig::load(&e, &p).unwrap_err().to_string();
        assert!(err.starts_with("ROUTES: \"lmtp\""), "{err}");
    }

    #[test]
    fn lookup_bad_relay_clear_minutes() {
        let (_d, mut e, p) = control(&[]);
        for bad in ["-5", "ten", "4294967296", "1.5"] {
            e.set("RELAY_CLEAR_MINUTES", bad);
            let err = LookupConfig::load(&e, &p).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("RELAY_CLEAR_MINUTES: {bad:?} is not")),
                "{err}"
            );
        }
    }

    // ---- Everything ----

    #[test]
    fn config_load_with_temp_controldir() {
        let (_d, e, p) = control(&[]);
        let c = Config::load(&e).unwrap();
        assert_eq!(c.paths, p);
        assert_eq!(c.timeouts, Timeouts::default());
        assert_eq!(c.mysql, host_defaults());
        assert_eq!(c.fifo, FifoConfig::load(&Env::default()).unwrap());
        assert_eq!(c.lookup.relay_clear_minutes, 30);
    }

    #[test]
    fn config_load_with_files() {
        let (_d, e, _p) = control(&[
            ("timeoutread", b"7\n"),
            ("host.mysql", b"db:::/tmp/my.sock\n"),
            ("defaultdomain", b"example.org\n"),
        ]);
        let c = Config::load(&e).unwrap();
        assert_eq!(c.timeouts.read, Duration::from_secs(7));
        assert_eq!(c.timeouts.write, Duration::from_secs(4));
        assert_eq!(c.mysql.host, "db");
        assert_eq!(c.mysql.socket, Some(PathBuf::from("/tmp/my.sock")));
        assert_eq!(c.lookup.default_domain.as_deref(), Some("example.org"));
    }

    #[test]
    fn fifo_in_place_of_a_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("timeoutread");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_first_line(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = Env::default()
            .load_envdir(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn mysql_file_line_not_utf8_and_empty_env_host() {
        let (_d, mut e, p) = control(&[("host.mysql", b"h:u:\xff\n")]);
        let err = MysqlConfig::load(&e, &p).unwrap_err().to_string();
        assert!(
            err.ends_with("host.mysql: first line is not valid UTF-8"),
            "{err}"
        );
        assert!(!err.contains('\u{fffd}'), "{err}");
        // An empty MYSQL_HOST counts as unset, so the file is read.
        e.set("MYSQL_HOST", "");
        assert!(MysqlConfig::load(&e, &p).is_err());
    }

    /// Every upper-case string literal in the code above the tests is a
    /// variable name listed in ENV_VARS, and every listed name is used.
    #[test]
    fn env_vars_list_matches_source() {
        let src = include_str!("config.rs");
        let code = &src[..src.find("#[cfg(test)]").unwrap()];
        let mut literals = Vec::new();
        let bytes = code.as_bytes();
        for (i, _) in code.match_indices('"') {
            let rest = &bytes[i + 1..];
            let len = rest
                .iter()
                .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
                .count();
            if len >= 3 && rest.get(len) == Some(&b'"') && rest[0].is_ascii_uppercase() {
                literals.push(&code[i + 1..i + 1 + len]);
            }
        }
        for lit in &literals {
            assert!(ENV_VARS.contains(lit), "{lit} is read but not in ENV_VARS");
        }
        for var in ENV_VARS {
            let uses = literals.iter().filter(|l| *l == var).count();
            assert!(uses >= 2, "{var} is in ENV_VARS but never read");
        }
    }

    #[test]
    fn env_debug_hides_passwords() {
        let env = Env::from_pairs([
            ("MYSQL_HOST", "db:indimail:s3cret-one"),
            ("MYSQL_PASSWD", "s3cret-two"),
            ("CNTRL_HOST", "c:u:s3cret-three"),
            ("INFIFO", "infifo"),
        ]);
        let shown = format!("{env:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("infifo"), "{shown}");
    }

    #[test]
    fn fifo_mode_is_permission_bits_only() {
        let env = Env::from_pairs([("FIFO_MODE", "2660")]);
        assert!(FifoConfig::load(&env).is_err());
        let env = Env::from_pairs([("FIFO_MODE", "0777")]);
        assert_eq!(FifoConfig::load(&env).unwrap().fifo_mode, Some(0o777));
    }
}
