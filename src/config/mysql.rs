//! How to reach the MySQL database: the host line (`MYSQL_HOST` or `host.mysql`) and its
//! defaults.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::control::{read_first_line, Paths};
use super::env::{env_seconds, nonempty, nonempty_os, parse_decimal, Env};
use super::ConfigError;

/// Longest SQL identifier MySQL accepts.
const MAX_IDENT_LEN: usize = 64;

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
pub(super) fn env_ident(
    env: &Env,
    name: &str,
    default: &str,
    what: &str,
) -> Result<String, ConfigError> {
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

/// The account part of a connection's defaults, from the five variables of
/// its kind (user, password, socket, port, database: `MYSQL_*` for
/// host.mysql, `CNTRL_*` for the central database).
pub(super) struct Account {
    pub user: String,
    pub password: String,
    pub socket: Option<PathBuf>,
    pub port: u16,
    pub database: String,
}

impl Account {
    /// `base` with this account and host `localhost` (what a host line's
    /// empty fields keep), without TLS.
    pub(super) fn defaults_over(self, base: MysqlConfig) -> MysqlConfig {
        MysqlConfig {
            host: "localhost".to_string(),
            user: self.user,
            password: self.password,
            socket: self.socket,
            port: self.port,
            ssl: false,
            database: self.database,
            ..base
        }
    }

    /// User [indimail] and password [ssh-1.5-] may be empty; the socket,
    /// the port [0] and the database [indimail] are unset when empty.
    pub(super) fn load(
        env: &Env,
        [user, password, socket, port, database]: [&str; 5],
    ) -> Result<Account, ConfigError> {
        let port = match nonempty(env, port)? {
            None => 0,
            Some(v) => parse_decimal(v)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| ConfigError::invalid_var(port, v, "a port number 0..=65535"))?,
        };
        Ok(Account {
            user: env.get_str(user)?.unwrap_or("indimail").to_string(),
            password: env.get_str(password)?.unwrap_or("ssh-1.5-").to_string(),
            socket: nonempty_os(env, socket).map(PathBuf::from),
            port,
            database: env_ident(env, database, "indimail", "database")?,
        })
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
        let account = Account::load(
            env,
            [
                "MYSQL_USER",
                "MYSQL_PASSWD",
                "MYSQL_SOCKET",
                "MYSQL_VPORT",
                "MYSQL_DATABASE",
            ],
        )?;
        let defaults = MysqlConfig {
            host: "localhost".to_string(),
            user: account.user,
            password: account.password,
            socket: account.socket,
            port: account.port,
            ssl: false,
            database: account.database,
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

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
}
