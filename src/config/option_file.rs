//! The MySQL option file that IndiMail names for every connection
//! (`MYSQL_READ_DEFAULT_FILE` [SYSCONFDIR/indimail.cnf], group
//! `MYSQL_READ_DEFAULT_GROUP` [indimail]; svctool sets `inlookup`), read as MariaDB
//! Connector/C (libmariadb, `ma_default.c`) reads it, so a site keeps its settings.
//!
//! What libmariadb does, and therefore what the connection layer must do with these
//! values:
//!
//! * The file is read when connecting (`mysql_real_connect`), after every
//!   `mysql_options` call. So a key present in the file **overrides** the option
//!   IndiMail set from the environment (TLS files, verification, connect timeout).
//! * The connect arguments win over the file when given: host, user and database when
//!   non-empty, the password when non-NULL, the port when non-zero, the socket when
//!   non-NULL. IndiMail always passes host, user, password and database, so in practice
//!   the file supplies the **port** (when the host line has none) and the **socket**
//!   (when neither the host line nor `MYSQL_SOCKET` gives one).
//!
//! The format, as libmariadb reads it: groups `[client]`, `[client-server]`,
//! `[client-mariadb]` and the named group are read, others skipped; a later line
//! overrides an earlier one; `key = value` or a bare `key`; `_` and `-` are the same in
//! keys; a value is trimmed, one pair of surrounding quotes is dropped and the escapes
//! `\n \t \r \b \s \" \' \\` are decoded; lines starting with `#` or `;` are comments
//! (a `#` later in a line is part of the value); a line starting with a quote is
//! skipped; an empty string value unsets the key; `!include FILE` reads another file
//! and `!includedir DIR` reads `DIR/my.cnf` (only that file, as libmariadb does);
//! unknown keys are ignored; a missing file is harmless.
//!
//! Where we differ, deliberately: a line that libmariadb gives up on (an option before
//! any group, a `[` without `]`) or a value it would read as garbage (`port = 33o6`,
//! `ssl-verify-server-cert = true`, which `atoi` reads as 0) is an error naming the
//! file and line; an unreadable file is an error rather than silently ignored; a bare
//! boolean key (`ssl-verify-server-cert`) means on, where libmariadb keeps the newline
//! in the key and ignores it; a relative `!include` path is relative to the including
//! file rather than to the working directory; `ssl` (which libmariadb ignores) is read.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::control::{open_regular, Paths};
use super::env::{nonempty, nonempty_os, parse_decimal, Env};
use super::{ConfigError, MAX_TIMEOUT_SECS};

/// The groups libmariadb always reads, before the named one.
const CLIENT_GROUPS: [&str; 3] = ["client", "client-server", "client-mariadb"];
/// libmariadb's include depth limit.
const MAX_INCLUDE_DEPTH: usize = 64;
/// Largest option file read.
const MAX_FILE_LEN: u64 = 1 << 20;

/// The settings an option file gives, `None` where it says nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OptionFile {
    /// The file named by `MYSQL_READ_DEFAULT_FILE` (it may not exist).
    pub path: PathBuf,
    /// The group named by `MYSQL_READ_DEFAULT_GROUP`.
    pub group: String,
    /// `host` (alias `servername`).
    pub host: Option<String>,
    /// `port`; 0 = the library default.
    pub port: Option<u16>,
    /// `socket`.
    pub socket: Option<PathBuf>,
    /// `user`.
    pub user: Option<String>,
    /// `password` (alias `passwd`); never in `Debug` output or errors.
    pub password: Option<String>,
    /// `database` (alias `db`).
    pub database: Option<String>,
    /// `ssl`: libmariadb ignores it; MySQL's client programs read it as "use TLS".
    pub ssl: Option<bool>,
    /// `ssl-enforce` (alias `tls-enforce`): TLS on every connection.
    pub ssl_enforce: Option<bool>,
    /// `ssl-ca` (alias `tls-ca`).
    pub ssl_ca: Option<PathBuf>,
    /// `ssl-capath` (alias `tls-capath`).
    pub ssl_capath: Option<PathBuf>,
    /// `ssl-cert` (alias `tls-cert`).
    pub ssl_cert: Option<PathBuf>,
    /// `ssl-key` (alias `tls-key`).
    pub ssl_key: Option<PathBuf>,
    /// `ssl-crl` (alias `tls-crl`).
    pub ssl_crl: Option<PathBuf>,
    /// `ssl-crlpath` (alias `tls-crlpath`).
    pub ssl_crlpath: Option<PathBuf>,
    /// `ssl-cipher` (alias `tls-cipher`).
    pub ssl_cipher: Option<String>,
    /// `tls-version`, e.g. `TLSv1.2,TLSv1.3`.
    pub tls_version: Option<String>,
    /// `ssl-verify-server-cert` (alias `tls-verify-peer`).
    pub ssl_verify_server_cert: Option<bool>,
    /// `connect-timeout` (alias `timeout`), 1 to 86400 seconds.
    pub connect_timeout: Option<Duration>,
    /// `<file>:<line>` of the line that gave each key, by canonical key name.
    origins: Vec<(&'static str, String)>,
}

impl fmt::Debug for OptionFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OptionFile")
            .field("path", &self.path)
            .field("group", &self.group)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("socket", &self.socket)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("database", &self.database)
            .field("ssl", &self.ssl)
            .field("ssl_enforce", &self.ssl_enforce)
            .field("ssl_ca", &self.ssl_ca)
            .field("ssl_capath", &self.ssl_capath)
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
            .field("ssl_crl", &self.ssl_crl)
            .field("ssl_crlpath", &self.ssl_crlpath)
            .field("ssl_cipher", &self.ssl_cipher)
            .field("tls_version", &self.tls_version)
            .field("ssl_verify_server_cert", &self.ssl_verify_server_cert)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The kind of value a key takes.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Path,
    Bool,
    Port,
    Seconds,
}

/// Keys honoured, with their aliases, after `_` → `-`.
const KEYS: &[(&str, &str, Kind)] = &[
    ("host", "host", Kind::Str),
    ("servername", "host", Kind::Str),
    ("port", "port", Kind::Port),
    ("socket", "socket", Kind::Path),
    ("user", "user", Kind::Str),
    ("password", "password", Kind::Str),
    ("passwd", "password", Kind::Str),
    ("database", "database", Kind::Str),
    ("db", "database", Kind::Str),
    ("ssl", "ssl", Kind::Bool),
    ("ssl-enforce", "ssl-enforce", Kind::Bool),
    ("tls-enforce", "ssl-enforce", Kind::Bool),
    ("ssl-ca", "ssl-ca", Kind::Path),
    ("tls-ca", "ssl-ca", Kind::Path),
    ("ssl-capath", "ssl-capath", Kind::Path),
    ("tls-capath", "ssl-capath", Kind::Path),
    ("ssl-cert", "ssl-cert", Kind::Path),
    ("tls-cert", "ssl-cert", Kind::Path),
    ("ssl-key", "ssl-key", Kind::Path),
    ("tls-key", "ssl-key", Kind::Path),
    ("ssl-crl", "ssl-crl", Kind::Path),
    ("tls-crl", "ssl-crl", Kind::Path),
    ("ssl-crlpath", "ssl-crlpath", Kind::Path),
    ("tls-crlpath", "ssl-crlpath", Kind::Path),
    ("ssl-cipher", "ssl-cipher", Kind::Str),
    ("tls-cipher", "ssl-cipher", Kind::Str),
    ("tls-version", "tls-version", Kind::Str),
    (
        "ssl-verify-server-cert",
        "ssl-verify-server-cert",
        Kind::Bool,
    ),
    ("tls-verify-peer", "ssl-verify-server-cert", Kind::Bool),
    ("connect-timeout", "connect-timeout", Kind::Seconds),
    ("timeout", "connect-timeout", Kind::Seconds),
];

impl OptionFile {
    /// Read the option file of `MYSQL_READ_DEFAULT_FILE` [SYSCONFDIR/indimail.cnf] for
    /// the group `MYSQL_READ_DEFAULT_GROUP` [indimail]. A missing file gives no settings.
    pub fn load(env: &Env, paths: &Paths) -> Result<OptionFile, ConfigError> {
        let path = nonempty_os(env, "MYSQL_READ_DEFAULT_FILE")
            .map_or_else(|| paths.sysconfdir.join("indimail.cnf"), PathBuf::from);
        let group = nonempty(env, "MYSQL_READ_DEFAULT_GROUP")?.unwrap_or("indimail");
        let mut out = OptionFile {
            path: path.clone(),
            group: group.to_string(),
            ..OptionFile::default()
        };
        out.read(&path, 0)?;
        Ok(out)
    }

    /// Parse option-file text as if read from `path` (includes are read from disk).
    pub fn parse(text: &[u8], path: &Path, group: &str) -> Result<OptionFile, ConfigError> {
        let mut out = OptionFile {
            path: path.to_path_buf(),
            group: group.to_string(),
            ..OptionFile::default()
        };
        out.parse_text(text, path, 0)?;
        Ok(out)
    }

    /// `<file>:<line>` of the line that set `key` (canonical name, e.g. `ssl-ca`).
    pub fn origin(&self, key: &str) -> Option<&str> {
        self.origins
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, o)| o.as_str())
    }

    fn read(&mut self, path: &Path, depth: usize) -> Result<(), ConfigError> {
        let Some(file) = open_regular(path)? else {
            return Ok(());
        };
        let mut text = Vec::new();
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut text)
            .map_err(|e| ConfigError::io(path, e))?;
        if text.len() as u64 > MAX_FILE_LEN {
            return Err(ConfigError::file(
                path,
                format!("is larger than {MAX_FILE_LEN} bytes"),
            ));
        }
        self.parse_text(&text, path, depth)
    }

    fn parse_text(&mut self, text: &[u8], path: &Path, depth: usize) -> Result<(), ConfigError> {
        let err = |n: usize, reason: String| ConfigError::Line {
            path: path.to_path_buf(),
            line: n,
            reason,
        };
        let mut in_group = false;
        let mut reading = false;
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            let line = raw.trim_ascii();
            match line.first() {
                None | Some(b'#' | b';' | b'"' | b'\'') => continue,
                Some(b'!') => {
                    self.directive(line, path, depth, n)?;
                    continue;
                }
                Some(b'[') => {
                    let Some(end) = line.iter().position(|&b| b == b']') else {
                        return Err(err(n, "a group name without its closing ']'".to_string()));
                    };
                    let name = String::from_utf8_lossy(line[1..end].trim_ascii_end());
                    in_group = true;
                    reading = CLIENT_GROUPS.contains(&name.as_ref()) || name == self.group;
                    continue;
                }
                Some(_) => {}
            }
            if !in_group {
                return Err(err(
                    n,
                    "an option before any [group] line (libmariadb stops reading the file here)"
                        .to_string(),
                ));
            }
            if !reading {
                continue;
            }
            let line =
                std::str::from_utf8(line).map_err(|_| err(n, "not valid UTF-8".to_string()))?;
            let (key, value) = match line.split_once('=') {
                Some((k, v)) => (k.trim_end(), Some(v.trim())),
                None => (line, None),
            };
            let key = key.replace('_', "-");
            let Some(&(_, canonical, kind)) = KEYS.iter().find(|(name, _, _)| *name == key) else {
                continue;
            };
            let value = value.map(unquote);
            self.set(canonical, kind, value.as_deref())
                .map_err(|reason| err(n, reason))?;
            self.origins
                .push((canonical, format!("{}:{n}", path.display())));
        }
        Ok(())
    }

    /// `!include FILE` and `!includedir DIR`; other directives are ignored, as
    /// libmariadb ignores them.
    fn directive(
        &mut self,
        line: &[u8],
        path: &Path,
        depth: usize,
        n: usize,
    ) -> Result<(), ConfigError> {
        let line = String::from_utf8_lossy(&line[1..]);
        let Some((word, target)) = line.split_once(' ') else {
            return Ok(());
        };
        let target = target.trim();
        let file = match word {
            "include" => PathBuf::from(target),
            "includedir" => Path::new(target).join("my.cnf"),
            _ => return Ok(()),
        };
        if depth + 1 >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::Line {
                path: path.to_path_buf(),
                line: n,
                reason: format!("includes nest more than {MAX_INCLUDE_DEPTH} deep"),
            });
        }
        let file = match path.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file,
        };
        self.read(&file, depth + 1)
    }

    /// Store one key's value; the error text never holds a password.
    fn set(&mut self, key: &'static str, kind: Kind, value: Option<&str>) -> Result<(), String> {
        let text = || value.filter(|v| !v.is_empty()).map(str::to_string);
        match kind {
            Kind::Str | Kind::Path => {
                let Some(v) = value else {
                    // A bare string key: libmariadb ignores it too.
                    return Ok(());
                };
                let v = (!v.is_empty()).then(|| v.to_string());
                match key {
                    "host" => self.host = v,
                    "user" => self.user = v,
                    "password" => self.password = v,
                    "database" => self.database = v,
                    "ssl-cipher" => self.ssl_cipher = v,
                    "tls-version" => self.tls_version = v,
                    _ => {
                        let p = v.map(PathBuf::from);
                        match key {
                            "socket" => self.socket = p,
                            "ssl-ca" => self.ssl_ca = p,
                            "ssl-capath" => self.ssl_capath = p,
                            "ssl-cert" => self.ssl_cert = p,
                            "ssl-key" => self.ssl_key = p,
                            "ssl-crl" => self.ssl_crl = p,
                            _ => self.ssl_crlpath = p,
                        }
                    }
                }
            }
            Kind::Bool => {
                let on = match value {
                    None => true,
                    Some(v) => parse_decimal(v)
                        .map(|n| n != 0)
                        .ok_or_else(|| format!("{key} {v:?} is not 0 (off) or 1 (on)"))?,
                };
                match key {
                    "ssl" => self.ssl = Some(on),
                    "ssl-enforce" => self.ssl_enforce = Some(on),
                    _ => self.ssl_verify_server_cert = Some(on),
                }
            }
            Kind::Port => {
                let Some(v) = text() else { return Ok(()) };
                let port = parse_decimal(&v)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| format!("port {v:?} is not a number from 0 to 65535"))?;
                self.port = Some(port);
            }
            Kind::Seconds => {
                let Some(v) = text() else { return Ok(()) };
                let secs = parse_decimal(&v)
                    .filter(|s| (1..=MAX_TIMEOUT_SECS).contains(s))
                    .ok_or_else(|| {
                        format!(
                            "{key} {v:?} is not a whole number of seconds from 1 to \
                             {MAX_TIMEOUT_SECS}"
                        )
                    })?;
                self.connect_timeout = Some(Duration::from_secs(secs));
            }
        }
        Ok(())
    }
}

/// A value as libmariadb stores it: one leading quote dropped with a trailing quote of
/// either kind, then the escapes decoded; an unknown escape keeps its backslash.
fn unquote(value: &str) -> String {
    let mut v = value;
    if let Some(rest) = v.strip_prefix(['\'', '"']) {
        v = rest.strip_suffix(['\'', '"']).unwrap_or(rest);
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&next) = chars.peek() else {
            out.push('\\');
            break;
        };
        chars.next();
        match next {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'b' => out.push('\u{8}'),
            's' => out.push(' '),
            '"' | '\'' | '\\' => out.push(next),
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use std::fs;

    fn parse(text: &str, group: &str) -> Result<OptionFile, String> {
        OptionFile::parse(
            text.as_bytes(),
            Path::new("/etc/indimail/indimail.cnf"),
            group,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn groups_and_override() {
        let text = "\
# IndiMail's client settings
[mysqld]
port = 1111
socket = /server/only.sock

[client]
port=3306
socket = /run/mysqld/mysqld.sock
user = client_user

[indimail]
port = 3307

[inlookup]
port = 3308
ssl-ca = /etc/ssl/ca.pem

[client-mariadb]
user = mariadb_user
";
        let o = parse(text, "indimail").unwrap();
        assert_eq!(o.port, Some(3307));
        assert_eq!(o.socket, Some(PathBuf::from("/run/mysqld/mysqld.sock")));
        assert_eq!(o.user.as_deref(), Some("mariadb_user"));
        assert_eq!(o.ssl_ca, None);
        assert_eq!(o.origin("port"), Some("/etc/indimail/indimail.cnf:12"));
        let o = parse(text, "inlookup").unwrap();
        assert_eq!(o.port, Some(3308));
        assert_eq!(o.ssl_ca, Some(PathBuf::from("/etc/ssl/ca.pem")));
        assert_eq!(o.origin("ssl-ca"), Some("/etc/indimail/indimail.cnf:16"));
        assert_eq!(o.origin("ssl-key"), None);
    }

    #[test]
    fn keys_aliases_and_values() {
        let text = "\
[client]
  ; comment
Host = ignored because keys are case-sensitive
servername = db.example
ssl_key = /k.pem
tls-cert=/c.pem
passwd = \"p#ss word\\s\"
db = 'maildb'
unix_socket = /unused.sock
tls_version = TLSv1.2,TLSv1.3
ssl-verify-server-cert
timeout = 7
ssl-cipher = ECDHE-RSA-AES256-GCM-SHA384
tls-crlpath = /crl
ssl-enforce = 1
ssl = 0
compress
max_allowed_packet = 16M
\"quoted lines are skipped = yes
";
        let o = parse(text, "indimail").unwrap();
        assert_eq!(o.host.as_deref(), Some("db.example"));
        assert_eq!(o.ssl_key, Some(PathBuf::from("/k.pem")));
        assert_eq!(o.ssl_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(o.password.as_deref(), Some("p#ss word "));
        assert_eq!(o.database.as_deref(), Some("maildb"));
        // libmariadb turns unix_socket into unix-socket, which it does not know.
        assert_eq!(o.socket, None);
        assert_eq!(o.tls_version.as_deref(), Some("TLSv1.2,TLSv1.3"));
        assert_eq!(o.ssl_verify_server_cert, Some(true));
        assert_eq!(o.connect_timeout, Some(Duration::from_secs(7)));
        assert_eq!(o.ssl_cipher.as_deref(), Some("ECDHE-RSA-AES256-GCM-SHA384"));
        assert_eq!(o.ssl_crlpath, Some(PathBuf::from("/crl")));
        assert_eq!(o.ssl_enforce, Some(true));
        assert_eq!(o.ssl, Some(false));
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("p#ss") && shown.contains("<hidden>"),
            "{shown}"
        );
    }

    #[test]
    fn empty_value_unsets_and_inline_hash_is_value() {
        let o = parse(
            "[client]\nsocket=/a.sock\nsocket=\nuser = u # not a comment\nport=\n",
            "g",
        )
        .unwrap();
        assert_eq!(o.socket, None);
        assert_eq!(o.user.as_deref(), Some("u # not a comment"));
        assert_eq!(o.port, None);
    }

    #[test]
    fn unquote_vectors() {
        for (raw, want) in [
            ("plain", "plain"),
            ("\"quoted\"", "quoted"),
            ("'single'", "single"),
            ("\"mixed'", "mixed"),
            ("\"open", "open"),
            ("a\\nb\\tc\\rd\\be\\sf", "a\nb\tc\rd\u{8}e f"),
            ("\\\"\\'\\\\", "\"'\\"),
            ("c:\\dir", "c:\\dir"),
            ("trailing\\", "trailing\\"),
        ] {
            assert_eq!(unquote(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            ("port = 3306\n", "line 1: an option before any [group] line (libmariadb stops reading the file here)"),
            ("# c\n[client\n", "line 2: a group name without its closing ']'"),
            ("[client]\nport = 33o6\n", "line 2: port \"33o6\" is not a number from 0 to 65535"),
            ("[client]\nport = 3306 # c\n", "line 2: port \"3306 # c\" is not a number from 0 to 65535"),
            ("[client]\n\nssl-verify-server-cert = true\n", "line 3: ssl-verify-server-cert \"true\" is not 0 (off) or 1 (on)"),
            ("[client]\nconnect_timeout = 0\n", "line 2: connect-timeout \"0\" is not a whole number of seconds from 1 to 86400"),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse(text, "indimail").unwrap_err(),
                format!("/etc/indimail/indimail.cnf: {want}"),
                "{text:?}"
            );
        }
        // Bad values in groups that are not read do not matter.
        assert_eq!(
            parse("[mysqld]\nport = x\n", "indimail").unwrap().port,
            None
        );
        assert!(parse("[client]\npassword = \u{1}\n", "g").is_ok());
    }

    #[test]
    fn load_paths_include_and_includedir() {
        let (_d, mut e, _p) = control(&[]);
        let sys = tempfile::tempdir().unwrap();
        e.set("SYSCONFDIR", sys.path().as_os_str());
        let p = Paths::from_env(&e).unwrap();
        // Missing file: no settings.
        let o = OptionFile::load(&e, &p).unwrap();
        assert_eq!(o.path, sys.path().join("indimail.cnf"));
        assert_eq!(o.group, "indimail");
        assert_eq!(o.port, None);
        let conf_d = sys.path().join("conf.d");
        fs::create_dir(&conf_d).unwrap();
        fs::write(
            conf_d.join("my.cnf"),
            "[inlookup]\nssl-ca = /from/includedir\n",
        )
        .unwrap();
        fs::write(
            conf_d.join("other.cnf"),
            "[inlookup]\nssl-key = /not/read\n",
        )
        .unwrap();
        fs::write(
            sys.path().join("extra.cnf"),
            "[client]\nport = 3310\nuser = inc\n",
        )
        .unwrap();
        fs::write(
            sys.path().join("indimail.cnf"),
            format!(
                "!include extra.cnf\n!includedir {}\n!include /missing/is/harmless.cnf\n!unknown x\n[client]\nuser = main\n",
                conf_d.display()
            ),
        )
        .unwrap();
        e.set("MYSQL_READ_DEFAULT_GROUP", "inlookup");
        let o = OptionFile::load(&e, &p).unwrap();
        assert_eq!(o.port, Some(3310));
        assert_eq!(o.user.as_deref(), Some("main"));
        assert_eq!(o.ssl_ca, Some(PathBuf::from("/from/includedir")));
        assert_eq!(o.ssl_key, None);
        assert_eq!(
            o.origin("ssl-ca"),
            Some(format!("{}:2", conf_d.join("my.cnf").display()).as_str())
        );
        // An error inside an included file names that file.
        fs::write(sys.path().join("extra.cnf"), "[client]\nport = x\n").unwrap();
        let err = OptionFile::load(&e, &p).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: line 2: port \"x\" is not a number from 0 to 65535",
                sys.path().join("extra.cnf").display()
            )
        );
        // MYSQL_READ_DEFAULT_FILE names the file; a file including itself stops.
        let own = sys.path().join("own.cnf");
        fs::write(&own, "!include own.cnf\n").unwrap();
        e.set("MYSQL_READ_DEFAULT_FILE", own.as_os_str());
        let err = OptionFile::load(&e, &p).unwrap_err().to_string();
        assert!(
            err.ends_with("line 1: includes nest more than 64 deep"),
            "{err}"
        );
    }
}
