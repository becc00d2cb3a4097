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
//!
//! One file per concern: [`env`](mod@env) (the environment snapshot and envdir), [`control`] (control
//! files and the timeouts they set), [`mysql`] (the MySQL host line), [`fifo`] (where the
//! FIFOs live), [`lookup`] (settings of the lookups).

use std::io;
use std::path::{Path, PathBuf};

pub mod central;
pub mod cluster;
pub mod control;
pub mod env;
pub mod fifo;
pub mod lookup;
pub mod mysql;
pub mod option_file;
pub mod push;
#[cfg(test)]
mod test_support;
pub mod tls;

pub use cluster::{ClusterDefinition, DbRecord, Replicas, ServerAddr};
pub use control::{file_stamp, read_first_line, FileStamp, Paths, Timeouts};
pub use env::Env;
pub use fifo::FifoConfig;
pub use lookup::LookupConfig;
pub use mysql::MysqlConfig;
pub use option_file::OptionFile;
pub use tls::TlsSettings;

/// Upper bound for any timeout given in seconds: one day.
const MAX_TIMEOUT_SECS: u64 = 86_400;

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
    "MYSQL_RETRY_INTERVAL",
    "INLOOKUP_BINLOG",
    "INLOOKUP_BINLOG_USER",
    "INLOOKUP_BINLOG_PASSWORD",
    "INLOOKUP_BINLOG_SERVER_ID",
    "INLOOKUP_BINLOG_HEARTBEAT",
    "CNTRL_HOST",
    "CNTRL_USER",
    "CNTRL_PASSWD",
    "CNTRL_SOCKET",
    "CNTRL_VPORT",
    "CNTRL_DATABASE",
    "CNTRL_TABLE",
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
    "MCDFILE",
    "REPLICAS_FILE",
    "MYSQL_READ_DEFAULT_FILE",
    "MYSQL_READ_DEFAULT_GROUP",
    "MYSQL_OPT_SSL_CA",
    "MYSQL_OPT_SSL_CAPATH",
    "MYSQL_OPT_SSL_CERT",
    "MYSQL_OPT_SSL_KEY",
    "MYSQL_OPT_SSL_CRL",
    "MYSQL_OPT_SSL_CRLPATH",
    "MYSQL_OPT_SSL_CIPHER",
    "MYSQL_OPT_TLS_VERSION",
    "MYSQL_OPT_SSL_VERIFY_CERT",
    "MYSQL_OPT_SSL_ENFORCE",
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
    /// A line of a multi-line file (mcdinfo, replicas, an option file) that cannot be
    /// used. The reason never quotes a password.
    #[error("{}: line {line}: {reason}", .path.display())]
    Line {
        /// The file concerned.
        path: PathBuf,
        /// Its 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting that is well-formed but cannot be honoured, or that needs another
    /// setting with it. `origin` is a variable name or `<file>:<line>: key`.
    #[error("{origin}: {reason}")]
    Setting {
        /// Where the setting came from.
        origin: String,
        /// What is wrong and how to fix it.
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
    /// A clustered site's records and central database; `None` for a
    /// single-database site.
    pub cluster: Option<central::ClusterSite>,
    /// The read replicas of database servers (`control/replicas`).
    pub replicas: Replicas,
    /// TLS settings of every database connection.
    pub tls: TlsSettings,
    /// The MySQL option file (MYSQL_READ_DEFAULT_FILE): the port and socket
    /// that connection lines leave out.
    pub option_file: OptionFile,
    /// Push invalidation (INLOOKUP_BINLOG and its companions).
    pub push: push::PushConfig,
    /// How long a database server that failed is skipped before it is tried
    /// again (MYSQL_RETRY_INTERVAL [5] seconds).
    pub retry_interval: std::time::Duration,
    /// The files a site's databases and routes come from, besides the
    /// environment: the daemon reconfigures when one of them changes.
    pub site_files: Vec<PathBuf>,
}

impl Config {
    /// What loaded but is probably not what the administrator meant: the
    /// cluster definition's and the TLS settings' warnings, for the log.
    pub fn warnings(&self) -> Vec<String> {
        let mut all = self.tls.warnings();
        if let Some(site) = &self.cluster {
            all.extend(site.definition.warnings.iter().cloned());
        }
        all
    }

    /// Load every part from `env` and the control files it points to.
    pub fn load(env: &Env) -> Result<Config, ConfigError> {
        let paths = Paths::from_env(env)?;
        let option_file = OptionFile::load(env, &paths)?;
        let mut mysql = MysqlConfig::load(env, &paths)?;
        central::fill_from_option_file(&mut mysql, &option_file);
        let mut cluster = central::ClusterSite::load(env, &paths, &mysql)?;
        if let Some(central) = cluster.as_mut().and_then(|c| c.central.as_mut()) {
            central::fill_from_option_file(central, &option_file);
        }
        let site_files = vec![
            cluster::control_path(env, &paths, "MCDFILE", "mcdinfo"),
            cluster::control_path(env, &paths, "REPLICAS_FILE", "replicas"),
            paths.control_file("host.cntrl"),
            paths.control_file("host.mysql"),
            paths.control_file("hostip"),
            paths.control_file("virtualdomains"),
            paths.assigndir.join("assign"),
            option_file.path.clone(),
        ];
        Ok(Config {
            timeouts: Timeouts::load(&paths)?,
            cluster,
            site_files,
            retry_interval: env::env_seconds(env, "MYSQL_RETRY_INTERVAL", 5)?,
            push: push::PushConfig::load(env)?,
            replicas: Replicas::load(env, &paths)?,
            tls: TlsSettings::load(env, &option_file)?,
            option_file,
            mysql,
            fifo: FifoConfig::load(env)?,
            lookup: LookupConfig::load(env, &paths)?,
            paths,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use std::time::Duration;

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

    /// Every upper-case string literal in the code of this module's files (above their
    /// tests) is a variable name listed in ENV_VARS, and every listed name is used.
    #[test]
    fn env_vars_list_matches_source() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("env.rs"),
            include_str!("control.rs"),
            include_str!("mysql.rs"),
            include_str!("fifo.rs"),
            include_str!("lookup.rs"),
            include_str!("central.rs"),
            include_str!("cluster.rs"),
            include_str!("option_file.rs"),
            include_str!("tls.rs"),
            include_str!("push.rs"),
        ];
        let mut literals = Vec::new();
        for src in sources {
            let code = &src[..src.find("#[cfg(test)]\nmod tests").unwrap_or(src.len())];
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
        }
        for lit in &literals {
            assert!(ENV_VARS.contains(lit), "{lit} is read but not in ENV_VARS");
        }
        for var in ENV_VARS {
            let uses = literals.iter().filter(|l| *l == var).count();
            assert!(uses >= 2, "{var} is in ENV_VARS but never read");
        }
    }
}
