//! The Mail Cluster Definition of a clustered site: which database holds each domain's
//! users (`control/mcdinfo` plus the local records), and the read replicas of each
//! database server (`control/replicas`, an extension the C daemon does not read).
//!
//! The mcdinfo grammar is IndiMail's for every file IndiMail accepts, with its crashes
//! and silent misreadings turned into errors that name the file and the line: a record
//! key outside a record, a key given twice in one record, a record left incomplete, a
//! value too long for C's 128-byte fields or holding a control character. A `pass`
//! value is never shown in an error or warning.
//!
//! The daemon only reads these files. C's mcdinfo/dbinfo sync on `host.master` is the
//! administration tools' job, so nothing here writes mcdinfo.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::control::{open_regular, read_first_line, Paths};
use super::env::{nonempty_os, parse_decimal, Env};
use super::{ConfigError, LookupConfig, MysqlConfig};

/// Longest value C's 128-byte record fields hold (with their NUL).
const MAX_VALUE_LEN: usize = 127;
/// Largest mcdinfo, assign, virtualdomains or replicas file read: real ones are a few
/// kilobytes; the cap keeps a stray huge file from eating memory.
const MAX_FILE_LEN: u64 = 16 << 20;
/// The MySQL port that port 0 ("library default") means over TCP.
const MYSQL_DEFAULT_PORT: u16 = 3306;
/// The domain C gives a record that no `domain` line named.
pub const UNKNOWN_DOMAIN: &str = "unknown domain";

/// The seven items of a record, in the order `writemcdinfo` writes them.
const ITEMS: [&str; 7] = [
    "server", "mdahost", "port", "use_ssl", "database", "user", "pass",
];
const SERVER: usize = 0;
const MDAHOST: usize = 1;
const PORT: usize = 2;
const USE_SSL: usize = 3;
const DATABASE: usize = 4;
const USER: usize = 5;
const PASS: usize = 6;

/// One database of the cluster: where the users of one domain on one mail store live.
#[derive(Clone, PartialEq, Eq)]
pub struct DbRecord {
    /// The domain, lower-cased (C compares it case-sensitively, a bug we do not keep).
    pub domain: String,
    /// `domain <name> 1`: users are spread over mail stores, located through `hostcntrl`.
    pub distributed: bool,
    /// The MySQL server (`server` line). Always one entry from mcdinfo; the read
    /// replicas of a server come from [`Replicas::of`].
    pub servers: Vec<String>,
    /// The mail store's host as HOST answers name it; equals `host_table.ipaddr`.
    pub mdahost: String,
    /// TCP port; 0 = the client library's default.
    pub port: u16,
    /// Whether the connection must use TLS.
    pub use_ssl: bool,
    /// Database name.
    pub database: String,
    /// Login user.
    pub user: String,
    /// Login password; never in `Debug` output or any error text.
    pub password: String,
    /// Unix socket; only local records have one.
    pub socket: Option<PathBuf>,
    /// Built from `assign` and `host.mysql` rather than read from mcdinfo.
    pub local: bool,
    /// `<path>:<line>` of its `server` line, or `local record for <domain>`.
    pub origin: String,
}

impl DbRecord {
    /// The primary server: the one writes go to.
    pub fn server(&self) -> &str {
        self.servers.first().map_or("", String::as_str)
    }
}

impl fmt::Debug for DbRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbRecord")
            .field("domain", &self.domain)
            .field("distributed", &self.distributed)
            .field("servers", &self.servers)
            .field("mdahost", &self.mdahost)
            .field("port", &self.port)
            .field("use_ssl", &self.use_ssl)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("socket", &self.socket)
            .field("local", &self.local)
            .field("origin", &self.origin)
            .finish()
    }
}

/// The records of a clustered site, in C's order: the file's, then the local ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDefinition {
    /// The mcdinfo path used.
    pub path: PathBuf,
    /// File order, then local records.
    pub records: Vec<DbRecord>,
    /// Things that load but are probably not what the administrator meant.
    pub warnings: Vec<String>,
}

impl ClusterDefinition {
    /// Read mcdinfo (path: env `MCDFILE` [mcdinfo], used as given when it starts with
    /// `/` or `.`, else in CONTROLDIR) and append the local records built from
    /// `ASSIGNDIR/assign`, `control/virtualdomains` and the local database `local`.
    ///
    /// `None` when the site is not clustered: no mcdinfo file, or one with no `server`
    /// line. Unlike C, a site without mcdinfo gets no local records: nothing routes
    /// there, every lookup goes to `host.mysql` as on a single-database site.
    pub fn load(
        env: &Env,
        paths: &Paths,
        local: &MysqlConfig,
    ) -> Result<Option<ClusterDefinition>, ConfigError> {
        let path = control_path(env, paths, "MCDFILE", "mcdinfo");
        let Some(text) = read_file(&path)? else {
            return Ok(None);
        };
        let mut parsed = parse_mcdinfo(&text, &path)?;
        if parsed.records.is_empty() {
            return Ok(None);
        }
        let default_domain = LookupConfig::load(env, paths)?.default_domain;
        let local_records = local_records(
            paths,
            local,
            default_domain.as_deref(),
            &parsed.records,
            &mut parsed.warnings,
        )?;
        parsed.records.extend(local_records);
        parsed
            .warnings
            .extend(consistency_warnings(&parsed.records));
        Ok(Some(ClusterDefinition {
            path,
            records: parsed.records,
            warnings: parsed.warnings,
        }))
    }

    /// The first record of `domain` (C's choice for a non-distributed domain).
    pub fn first_record(&self, domain: &str) -> Option<&DbRecord> {
        self.records_of(domain).next()
    }

    /// The first record of `domain` whose mail host is `mdahost` (the mail store a
    /// routing answer names). Both compare ASCII case-insensitively.
    pub fn record_for(&self, domain: &str, mdahost: &str) -> Option<&DbRecord> {
        self.records_of(domain)
            .find(|r| r.mdahost.eq_ignore_ascii_case(mdahost))
    }

    /// Every record of `domain`, in order.
    pub fn records_of<'a, 'd>(
        &'a self,
        domain: &'d str,
    ) -> impl Iterator<Item = &'a DbRecord> + use<'a, 'd> {
        self.records
            .iter()
            .filter(move |r| r.domain.eq_ignore_ascii_case(domain))
    }

    /// The flag of the domain's first record; false when it has none.
    pub fn is_distributed(&self, domain: &str) -> bool {
        self.first_record(domain).is_some_and(|r| r.distributed)
    }
}

/// A file named by env `var` [default]: as given when it starts with `/` or `.`,
/// else in CONTROLDIR (C's rule for mcdinfo).
pub(crate) fn control_path(env: &Env, paths: &Paths, var: &str, default: &str) -> PathBuf {
    let name = nonempty_os(env, var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    let bytes = name.as_os_str().as_bytes();
    if bytes.starts_with(b"/") || bytes.starts_with(b".") {
        name
    } else {
        paths.controldir.join(name)
    }
}

/// The whole of a regular file; `None` when it does not exist.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(file) = open_regular(path)? else {
        return Ok(None);
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
    Ok(Some(text))
}

/// The lines of a file with their 1-based numbers, without the newlines.
fn numbered_lines(text: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let lines = (!text.is_empty()).then(|| body.split(|&b| b == b'\n'));
    lines
        .into_iter()
        .flatten()
        .zip(1..)
        .map(|(line, n)| (n, line))
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn line_error(path: &Path, line: usize, reason: impl Into<String>) -> ConfigError {
    ConfigError::Line {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

/// What a mcdinfo key means; keys match by prefix, in C's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Domain,
    Ignored,
    Item(usize),
}

fn classify(key: &str) -> Option<Key> {
    for (word, k) in [
        ("domain", Key::Domain),
        ("count", Key::Ignored),
        ("table", Key::Ignored),
        ("time", Key::Ignored),
    ] {
        if key.starts_with(word) {
            return Some(k);
        }
    }
    ITEMS
        .iter()
        .position(|item| key.starts_with(item))
        .map(Key::Item)
}

/// A key as errors show it: a key starting with `pass` may be a password run into its
/// keyword, so only `pass` is shown.
fn shown_key(key: &str) -> String {
    if key.starts_with("pass") {
        return "pass".to_string();
    }
    let short: String = key.chars().take(32).collect();
    format!("{short:?}")
}

/// A control character of `s`, named for an error message.
fn control_char(s: &str) -> Option<String> {
    let c = s.chars().find(|c| c.is_control())?;
    Some(match c {
        '\t' => "a tab".to_string(),
        '\r' => "a carriage return (is the file in DOS format?)".to_string(),
        c => format!("the control character U+{:04X}", u32::from(c)),
    })
}

/// The records and warnings of one mcdinfo file.
#[derive(Debug, Default)]
struct Parsed {
    records: Vec<DbRecord>,
    warnings: Vec<String>,
}

/// The `domain` line waiting for the next record to close.
struct PendingDomain {
    name: String,
    distributed: bool,
    line: usize,
}

/// A record whose `server` line has been read: each item with the line that gave it.
struct OpenRecord {
    line: usize,
    items: [Option<(usize, String)>; 7],
}

impl OpenRecord {
    fn count(&self) -> usize {
        self.items.iter().filter(|i| i.is_some()).count()
    }

    fn missing(&self) -> String {
        ITEMS
            .iter()
            .zip(&self.items)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn incomplete(&self) -> String {
        format!(
            "has only {} of 7 items: missing {}",
            self.count(),
            self.missing()
        )
    }

    fn value(&self, item: usize) -> &str {
        self.items[item].as_ref().map_or("", |(_, v)| v.as_str())
    }
}

/// Parse mcdinfo text (spec cluster.md §1.3). `path` names the file in errors and in
/// the records' origins.
fn parse_mcdinfo(text: &[u8], path: &Path) -> Result<Parsed, ConfigError> {
    let mut out = Parsed::default();
    let mut pending: Option<PendingDomain> = None;
    let mut open: Option<OpenRecord> = None;
    for (n, raw) in numbered_lines(text) {
        // A `#` right after other text probably meant to be part of a value.
        let (raw, glued_hash) = match raw.iter().position(|&b| b == b'#') {
            Some(i) => (&raw[..i], i > 0 && !is_c_space(raw[i - 1])),
            None => (raw, false),
        };
        let start = raw.iter().position(|&b| !is_c_space(b));
        let Some(start) = start else { continue };
        let line = std::str::from_utf8(&raw[start..])
            .map_err(|_| line_error(path, n, "not valid UTF-8"))?;
        let (key, rest) = match line.split_once(' ') {
            Some((k, r)) => (k, r),
            None => (line, ""),
        };
        if key.contains('\t') {
            return Err(line_error(
                path,
                n,
                format!(
                    "{} holds a tab: separate the key from its value with a space",
                    shown_key(key.split('\t').next().unwrap_or(key))
                ),
            ));
        }
        if control_char(key).is_some() {
            return Err(line_error(
                path,
                n,
                format!("{} holds a control character", shown_key(key)),
            ));
        }
        let value = rest.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
        let kind = classify(key).ok_or_else(|| {
            line_error(
                path,
                n,
                format!(
                    "unknown key {} (a record has server, mdahost, port, use_ssl, database, \
                     user and pass; a domain line names the domain of the next record)",
                    shown_key(key)
                ),
            )
        })?;
        let name = match kind {
            Key::Item(i) => ITEMS[i],
            Key::Domain => "domain",
            Key::Ignored => key,
        };
        let shown = if kind == Key::Item(PASS) {
            "pass".to_string()
        } else {
            format!("`{name}`")
        };
        if value.is_empty() {
            return Err(line_error(path, n, format!("{shown} has no value")));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(line_error(
                path,
                n,
                format!(
                    "the value of {shown} is {} bytes long, at most {MAX_VALUE_LEN} are allowed",
                    value.len()
                ),
            ));
        }
        if let Some(what) = control_char(value) {
            return Err(line_error(
                path,
                n,
                format!("the value of {shown} holds {what}"),
            ));
        }
        if glued_hash {
            out.warnings.push(format!(
                "{}:{n}: `#` starts a comment, so the value of {shown} ends before it",
                path.display()
            ));
        }
        match kind {
            Key::Ignored => {}
            Key::Domain => {
                let domain = parse_domain_line(value, path, n)?;
                if let Some(old) = pending.replace(domain) {
                    out.warnings.push(format!(
                        "{}:{n}: this domain line replaces the one at line {} ({}), which no \
                         record used",
                        path.display(),
                        old.line,
                        old.name
                    ));
                }
            }
            Key::Item(item) => {
                if item == SERVER {
                    if let Some(rec) = &open {
                        return Err(line_error(
                            path,
                            n,
                            format!(
                                "`server` opens a record, but the record opened at line {} is \
                                 incomplete ({})",
                                rec.line,
                                rec.incomplete()
                            ),
                        ));
                    }
                    open = Some(OpenRecord {
                        line: n,
                        items: Default::default(),
                    });
                }
                let Some(rec) = open.as_mut() else {
                    return Err(line_error(
                        path,
                        n,
                        format!(
                            "{shown} is outside a record (a record starts with a `server` line)"
                        ),
                    ));
                };
                if let Some((first, _)) = &rec.items[item] {
                    return Err(line_error(
                        path,
                        n,
                        format!(
                            "{shown} is given twice in the record opened at line {} (first at \
                             line {first})",
                            rec.line
                        ),
                    ));
                }
                check_item(item, value, path, n)?;
                if value.ends_with(' ') {
                    let blanks = value.len() - value.trim_end_matches(' ').len();
                    let what = if item == PASS { "password" } else { "value" };
                    out.warnings.push(format!(
                        "{}:{n}: the value of {shown} ends in {blanks} blank(s), which are part \
                         of the {what}",
                        path.display()
                    ));
                }
                rec.items[item] = Some((n, value.to_string()));
                if rec.count() == ITEMS.len() {
                    let rec = open.take().expect("record is open");
                    out.records
                        .push(close_record(&rec, pending.take(), path, &mut out.warnings));
                }
            }
        }
    }
    if let Some(rec) = open {
        return Err(line_error(
            path,
            rec.line,
            format!(
                "the record opened on this line is incomplete at the end of the file ({})",
                rec.incomplete()
            ),
        ));
    }
    if let Some(d) = pending {
        out.warnings.push(format!(
            "{}:{}: domain {} is not followed by a record; the line is ignored",
            path.display(),
            d.line,
            d.name
        ));
    }
    Ok(out)
}

/// `<name>[ <flag>]`: the flag is a whole number, non-zero = distributed.
fn parse_domain_line(value: &str, path: &Path, n: usize) -> Result<PendingDomain, ConfigError> {
    let (name, flag) = match value.split_once(' ') {
        Some((name, rest)) => (name, rest.trim_matches(' ')),
        None => (value, ""),
    };
    let distributed = if flag.is_empty() {
        false
    } else {
        match parse_decimal(flag) {
            Some(v) => v != 0,
            None => {
                return Err(line_error(
                    path,
                    n,
                    format!(
                        "the distributed flag of domain {name} is {flag:?}, not 0 \
                         (not distributed) or 1 (distributed)"
                    ),
                ))
            }
        }
    };
    Ok(PendingDomain {
        name: name.to_ascii_lowercase(),
        distributed,
        line: n,
    })
}

/// Refuse a `port` or `use_ssl` value that is not a number of the right range.
fn check_item(item: usize, value: &str, path: &Path, n: usize) -> Result<(), ConfigError> {
    match item {
        PORT if parse_port(value).is_none() => Err(line_error(
            path,
            n,
            format!("port {value:?} is not a number from 0 to 65535 (0 = the default)"),
        )),
        USE_SSL if parse_decimal(value).is_none() => Err(line_error(
            path,
            n,
            format!("use_ssl {value:?} is not 0 (plain) or 1 (TLS)"),
        )),
        _ => Ok(()),
    }
}

fn parse_port(value: &str) -> Option<u16> {
    parse_decimal(value).and_then(|p| u16::try_from(p).ok())
}

/// The record of a complete item set, named by the pending `domain` line.
fn close_record(
    rec: &OpenRecord,
    domain: Option<PendingDomain>,
    path: &Path,
    warnings: &mut Vec<String>,
) -> DbRecord {
    let origin = format!("{}:{}", path.display(), rec.line);
    let (domain, distributed) = match domain {
        Some(d) => (d.name, d.distributed),
        None => {
            warnings.push(format!(
                "{origin}: no domain line precedes this record; it is named \"{UNKNOWN_DOMAIN}\" \
                 and no lookup uses it"
            ));
            (UNKNOWN_DOMAIN.to_string(), false)
        }
    };
    DbRecord {
        domain,
        distributed,
        servers: vec![rec.value(SERVER).to_string()],
        mdahost: rec.value(MDAHOST).to_string(),
        port: parse_port(rec.value(PORT)).unwrap_or(0),
        use_ssl: parse_decimal(rec.value(USE_SSL)).is_some_and(|v| v != 0),
        database: rec.value(DATABASE).to_string(),
        user: rec.value(USER).to_string(),
        password: rec.value(PASS).to_string(),
        socket: None,
        local: false,
        origin,
    }
}

/// The §3.3-style checks that need no database: the records of one domain disagree
/// on the distributed flag, or two records of a domain name the same mail host (the
/// second is never reached by per-user routing).
fn consistency_warnings(records: &[DbRecord]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let Some(first) = records[..i]
            .iter()
            .find(|f| f.domain.eq_ignore_ascii_case(&r.domain))
        else {
            continue;
        };
        if first.distributed != r.distributed {
            warnings.push(format!(
                "{}: domain {} is {} here but {} at {}; the first record decides",
                r.origin,
                r.domain,
                distributed_word(r.distributed),
                distributed_word(first.distributed),
                first.origin
            ));
        }
        if let Some(same) = records[..i].iter().find(|f| {
            f.domain.eq_ignore_ascii_case(&r.domain) && f.mdahost.eq_ignore_ascii_case(&r.mdahost)
        }) {
            warnings.push(format!(
                "{}: domain {} already has a record for mail host {} at {}; users routed to \
                 that mail host use the first one",
                r.origin, r.domain, r.mdahost, same.origin
            ));
        }
    }
    warnings
}

fn distributed_word(d: bool) -> &'static str {
    if d {
        "distributed"
    } else {
        "not distributed"
    }
}

/// The domains of `control/virtualdomains` (the part before `:` of each line),
/// lower-cased. An empty line stops C's daemon; here it is skipped with a warning.
fn virtual_domains(paths: &Paths, warnings: &mut Vec<String>) -> Result<Vec<String>, ConfigError> {
    let path = paths.control_file("virtualdomains");
    let Some(text) = read_file(&path)? else {
        return Ok(Vec::new());
    };
    let mut domains = Vec::new();
    for (n, line) in numbered_lines(&text) {
        if line.is_empty() {
            warnings.push(format!(
                "{}:{n}: empty line skipped (IndiMail's own tools stop at it)",
                path.display()
            ));
            continue;
        }
        let line = match line.iter().position(|&b| b == b'#') {
            Some(i) => &line[..i],
            None => line,
        };
        let line = String::from_utf8_lossy(line);
        let entry = line.trim_start();
        if entry.is_empty() {
            continue;
        }
        let domain = entry.split(':').next().unwrap_or("").trim_end();
        domains.push(domain.to_ascii_lowercase());
    }
    Ok(domains)
}

/// Whether the domain of an assign line is an alias domain: its directory is a symlink
/// to an existing directory, or the directory's `.aliasdomains` lists it (C's
/// `is_alias_domain`, which finds the same directory through users/cdb).
fn is_alias_domain(dir: &[u8], domain: &str) -> Result<bool, ConfigError> {
    if dir.is_empty() {
        return Ok(false);
    }
    let dir = Path::new(std::ffi::OsStr::from_bytes(dir));
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(ConfigError::io(dir, e)),
    };
    if meta.file_type().is_symlink() {
        return Ok(fs::metadata(dir).is_ok());
    }
    let list = dir.join(".aliasdomains");
    let Some(text) = read_file(&list)? else {
        return Ok(false);
    };
    let listed = numbered_lines(&text).any(|(_, line)| {
        let line = match line.iter().position(|&b| b == b'#') {
            Some(i) => &line[..i],
            None => line,
        };
        String::from_utf8_lossy(line)
            .trim()
            .eq_ignore_ascii_case(domain)
    });
    Ok(listed)
}

/// C's `localDbInfo`: a record on the local database for each domain of
/// `ASSIGNDIR/assign` that is listed in virtualdomains, is not an alias domain and
/// has no record yet; when no domain qualifies, one for the default domain.
///
/// Differences from C: the mail host is the first line of `control/hostip` or
/// `localhost` (never a resolver answer); the same test decides counting and making
/// records (C can end up with an empty list); a missing default domain or hostip is a
/// warning.
fn local_records(
    paths: &Paths,
    local: &MysqlConfig,
    default_domain: Option<&str>,
    existing: &[DbRecord],
    warnings: &mut Vec<String>,
) -> Result<Vec<DbRecord>, ConfigError> {
    let assign = paths.assigndir.join("assign");
    let Some(text) = read_file(&assign)? else {
        warnings.push(format!(
            "No local dbinfo: {} does not exist, so this host's own domains get no local record",
            assign.display()
        ));
        return Ok(Vec::new());
    };
    let virtual_domains = virtual_domains(paths, warnings)?;
    let mut domains: Vec<String> = Vec::new();
    for (n, line) in numbered_lines(&text) {
        let mut fields = line.split(|&b| b == b':');
        let _local_part = fields.next();
        let Some(domain) = fields.next() else {
            continue;
        };
        let dir = fields.nth(2).unwrap_or(b"");
        let domain = std::str::from_utf8(domain)
            .map_err(|_| line_error(&assign, n, "the domain is not valid UTF-8"))?
            .to_ascii_lowercase();
        if domain.is_empty()
            || !virtual_domains.contains(&domain)
            || domains.contains(&domain)
            || existing.iter().any(|r| r.domain == domain)
            || is_alias_domain(dir, &domain)?
        {
            continue;
        }
        domains.push(domain);
    }
    if domains.is_empty() {
        match default_domain {
            Some(d) => domains.push(d.to_ascii_lowercase()),
            None => warnings.push(
                "no domain of assign qualifies for a local record and no default domain is set \
                 (INDIMAIL_DOMAIN, DEFAULT_DOMAIN or control/defaultdomain): no local record"
                    .to_string(),
            ),
        }
    }
    if domains.is_empty() {
        return Ok(Vec::new());
    }
    let mdahost = local_mail_host(paths, warnings)?;
    Ok(domains
        .into_iter()
        .map(|domain| DbRecord {
            distributed: false,
            servers: vec![local.host.clone()],
            mdahost: mdahost.clone(),
            port: local.port,
            use_ssl: local.ssl,
            database: local.database.clone(),
            user: local.user.clone(),
            password: local.password.clone(),
            socket: local.socket.clone(),
            local: true,
            origin: format!("local record for {domain}"),
            domain,
        })
        .collect())
}

/// The first line of `control/hostip`, else `localhost` with a warning.
fn local_mail_host(paths: &Paths, warnings: &mut Vec<String>) -> Result<String, ConfigError> {
    let path = paths.control_file("hostip");
    match read_first_line(&path)? {
        Some(line) => {
            let line = std::str::from_utf8(&line)
                .map_err(|_| ConfigError::file(&path, "first line is not valid UTF-8"))?
                .trim();
            if !line.is_empty() {
                return Ok(line.to_string());
            }
            warnings.push(format!(
                "{}: first line is empty: local records name their mail host \"localhost\"",
                path.display()
            ));
        }
        None => warnings.push(format!(
            "{} does not exist: local records name their mail host \"localhost\"",
            path.display()
        )),
    }
    Ok("localhost".to_string())
}

/// One database server: host and port, or a Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// Host name or address (an IPv6 address without its brackets); `localhost` for a socket.
    pub host: String,
    /// TCP port; 0 = the default (3306).
    pub port: u16,
    /// Unix socket path: a spec starting with `/`.
    pub socket: Option<PathBuf>,
}

impl ServerAddr {
    /// Whether this is the server at (host, port, socket): the same socket path, or for
    /// TCP the same host (ASCII case-insensitive) and port, where 0 means 3306.
    pub fn is(&self, host: &str, port: u16, socket: Option<&Path>) -> bool {
        match (&self.socket, socket) {
            (Some(mine), Some(theirs)) => mine == theirs,
            (Some(_), None) => false,
            (None, _) => {
                self.host.eq_ignore_ascii_case(host) && tcp_port(self.port) == tcp_port(port)
            }
        }
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.socket, self.host.contains(':'), self.port) {
            (Some(s), _, _) => write!(f, "{}", s.display()),
            (None, true, 0) => write!(f, "[{}]", self.host),
            (None, true, p) => write!(f, "[{}]:{p}", self.host),
            (None, false, 0) => write!(f, "{}", self.host),
            (None, false, p) => write!(f, "{}:{p}", self.host),
        }
    }
}

fn tcp_port(port: u16) -> u16 {
    if port == 0 {
        MYSQL_DEFAULT_PORT
    } else {
        port
    }
}

/// Read replicas of database servers, from `control/replicas` (env `REPLICAS_FILE`,
/// same path rule as mcdinfo): one line per primary, then its replicas in order of
/// preference, separated by blanks. A server is `host`, `host:port`, `[ipv6]`,
/// `[ipv6]:port` or a socket path starting with `/`. `#` starts a comment.
///
/// The C daemon does not know this file; a site without it has no replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replicas {
    entries: Vec<(ServerAddr, Vec<ServerAddr>)>,
}

impl Replicas {
    /// Read the replicas file; a missing file gives no replicas.
    pub fn load(env: &Env, paths: &Paths) -> Result<Replicas, ConfigError> {
        let path = control_path(env, paths, "REPLICAS_FILE", "replicas");
        match read_file(&path)? {
            None => Ok(Replicas::default()),
            Some(text) => parse_replicas(&text, &path),
        }
    }

    /// The replicas of the server at (host, port, socket), in order of preference;
    /// empty when it has none. See [`ServerAddr::is`] for the matching rule.
    pub fn of(&self, host: &str, port: u16, socket: Option<&Path>) -> &[ServerAddr] {
        self.entries
            .iter()
            .find(|(primary, _)| primary.is(host, port, socket))
            .map_or(&[], |(_, replicas)| replicas.as_slice())
    }

    /// True when no primary has replicas.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every primary with its replicas, in file order.
    pub fn entries(&self) -> &[(ServerAddr, Vec<ServerAddr>)] {
        &self.entries
    }
}

fn parse_replicas(text: &[u8], path: &Path) -> Result<Replicas, ConfigError> {
    let mut entries: Vec<(ServerAddr, Vec<ServerAddr>, usize)> = Vec::new();
    for (n, line) in numbered_lines(text) {
        let line = match line.iter().position(|&b| b == b'#') {
            Some(i) => &line[..i],
            None => line,
        };
        let line = std::str::from_utf8(line).map_err(|_| line_error(path, n, "not valid UTF-8"))?;
        let mut specs = line.split_ascii_whitespace();
        let Some(first) = specs.next() else { continue };
        let primary = parse_server_spec(first).map_err(|e| line_error(path, n, e))?;
        let mut replicas: Vec<ServerAddr> = Vec::new();
        for spec in specs {
            let replica = parse_server_spec(spec).map_err(|e| line_error(path, n, e))?;
            if same_server(&replica, &primary) {
                return Err(line_error(
                    path,
                    n,
                    format!("{replica} is listed as a replica of itself"),
                ));
            }
            if replicas.iter().any(|r| same_server(r, &replica)) {
                return Err(line_error(
                    path,
                    n,
                    format!("replica {replica} is listed twice"),
                ));
            }
            replicas.push(replica);
        }
        if replicas.is_empty() {
            return Err(line_error(
                path,
                n,
                format!("primary {primary} has no replica after it"),
            ));
        }
        if let Some((_, _, m)) = entries.iter().find(|(p, _, _)| same_server(p, &primary)) {
            return Err(line_error(
                path,
                n,
                format!("primary {primary} is already listed at line {m}"),
            ));
        }
        entries.push((primary, replicas, n));
    }
    Ok(Replicas {
        entries: entries.into_iter().map(|(p, r, _)| (p, r)).collect(),
    })
}

fn same_server(a: &ServerAddr, b: &ServerAddr) -> bool {
    a.is(&b.host, b.port, b.socket.as_deref())
}

/// One server of a replicas line.
fn parse_server_spec(spec: &str) -> Result<ServerAddr, String> {
    if spec.starts_with('/') {
        return Ok(ServerAddr {
            host: "localhost".to_string(),
            port: 0,
            socket: Some(PathBuf::from(spec)),
        });
    }
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("{spec:?}: '[' without its ']'"));
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(format!("{spec:?}: text after ']' is not ':port'")),
            },
        }
    } else {
        match spec.split_once(':') {
            None => (spec, None),
            Some((_, p)) if p.contains(':') => {
                return Err(format!(
                    "{spec:?}: write an IPv6 address in brackets, as [2001:db8::1] or \
                     [2001:db8::1]:3306"
                ))
            }
            Some((h, p)) => (h, Some(p)),
        }
    };
    if host.is_empty() {
        return Err(format!("{spec:?}: no host"));
    }
    let port = match port {
        None => 0,
        Some(p) => parse_port(p)
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("{spec:?}: port {p:?} is not a number from 1 to 65535"))?,
    };
    Ok(ServerAddr {
        host: host.to_string(),
        port,
        socket: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    /// The §7.2 sample: three records, the third a non-distributed domain.
    const SAMPLE: &str = "\
domain   dist.example 1
server   127.0.0.1
mdahost  192.0.2.1
port     3312
use_ssl  0
database indimail
user     indimail
pass     ms1pass

domain   dist.example 1
server   127.0.0.1
mdahost  192.0.2.2
port     3313
use_ssl  0
database indimail
user     indimail
pass     ms2pass

domain   plain.example 0
server   127.0.0.1
mdahost  192.0.2.2
port     3313
use_ssl  0
database indimail
user     indimail
pass     ms2pass
";

    fn parse(text: &str) -> Result<Parsed, String> {
        parse_mcdinfo(text.as_bytes(), Path::new("/ctl/mcdinfo")).map_err(|e| e.to_string())
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err()
    }

    fn record(
        domain: &str,
        distributed: bool,
        mdahost: &str,
        port: u16,
        pass: &str,
        line: usize,
    ) -> DbRecord {
        DbRecord {
            domain: domain.to_string(),
            distributed,
            servers: vec!["127.0.0.1".to_string()],
            mdahost: mdahost.to_string(),
            port,
            use_ssl: false,
            database: "indimail".to_string(),
            user: "indimail".to_string(),
            password: pass.to_string(),
            socket: None,
            local: false,
            origin: format!("/ctl/mcdinfo:{line}"),
        }
    }

    #[test]
    fn sample_gives_three_records() {
        let p = parse(SAMPLE).unwrap();
        assert_eq!(
            p.records,
            vec![
                record("dist.example", true, "192.0.2.1", 3312, "ms1pass", 2),
                record("dist.example", true, "192.0.2.2", 3313, "ms2pass", 11),
                record("plain.example", false, "192.0.2.2", 3313, "ms2pass", 20),
            ]
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    /// The sample through `load`, with the §7.2 environment: no assign file, so no
    /// local records and the "No local dbinfo" warning.
    #[test]
    fn load_sample_and_lookups() {
        let (d, mut e, p) = control(&[("mcdinfo", SAMPLE.as_bytes()), ("hostip", b"127.0.0.1\n")]);
        let assign = tempfile::tempdir().unwrap();
        e.set("ASSIGNDIR", assign.path().as_os_str());
        let p = Paths {
            assigndir: assign.path().to_path_buf(),
            ..p
        };
        let c = ClusterDefinition::load(&e, &p, &host_defaults())
            .unwrap()
            .unwrap();
        assert_eq!(c.path, d.path().join("mcdinfo"));
        assert_eq!(c.records.len(), 3);
        assert_eq!(
            c.warnings,
            vec![format!(
                "No local dbinfo: {} does not exist, so this host's own domains get no local record",
                assign.path().join("assign").display()
            )]
        );
        assert_eq!(c.first_record("DIST.example").unwrap().mdahost, "192.0.2.1");
        assert_eq!(
            c.record_for("dist.example", "192.0.2.2").unwrap().password,
            "ms2pass"
        );
        assert!(c.record_for("dist.example", "192.0.2.3").is_none());
        assert_eq!(c.records_of("dist.example").count(), 2);
        assert!(c.is_distributed("dist.example"));
        assert!(!c.is_distributed("plain.example"));
        assert!(!c.is_distributed("other.example"));
        assert!(c.first_record("other.example").is_none());
        assert_eq!(
            c.first_record("plain.example").unwrap().server(),
            "127.0.0.1"
        );
    }

    #[test]
    fn not_clustered() {
        let (_d, e, p) = control(&[]);
        assert_eq!(
            ClusterDefinition::load(&e, &p, &host_defaults()).unwrap(),
            None
        );
        let (_d, e, p) = control(&[("mcdinfo", b"# nothing\ndomain a.example 1\n\n")]);
        assert_eq!(
            ClusterDefinition::load(&e, &p, &host_defaults()).unwrap(),
            None
        );
    }

    #[test]
    fn mcdfile_path_rule() {
        let (d, mut e, p) = control(&[]);
        assert_eq!(
            control_path(&e, &p, "MCDFILE", "mcdinfo"),
            d.path().join("mcdinfo")
        );
        e.set("MCDFILE", "cluster.def");
        assert_eq!(
            control_path(&e, &p, "MCDFILE", "mcdinfo"),
            d.path().join("cluster.def")
        );
        e.set("MCDFILE", "/etc/other/mcd");
        assert_eq!(
            control_path(&e, &p, "MCDFILE", "mcdinfo"),
            Path::new("/etc/other/mcd")
        );
        e.set("MCDFILE", "./rel/mcd");
        assert_eq!(
            control_path(&e, &p, "MCDFILE", "mcdinfo"),
            Path::new("./rel/mcd")
        );
        e.set("MCDFILE", "");
        assert_eq!(
            control_path(&e, &p, "MCDFILE", "mcdinfo"),
            d.path().join("mcdinfo")
        );
        let p = Paths::from_env(&env(&[("SYSCONFDIR", "/opt/im"), ("CONTROLDIR", "ctl")])).unwrap();
        assert_eq!(
            control_path(&Env::default(), &p, "MCDFILE", "mcdinfo"),
            Path::new("/opt/im/ctl/mcdinfo")
        );
    }

    #[test]
    fn grammar_of_c_kept() {
        // Comments, leading blanks, prefix keys, trailing blanks kept, a domain line
        // inside the record, ignored keys, upper-case domain lower-cased, item order free.
        let text = "  # header\n\
                    count 2\n\
                    server\tx db.example  # the tab is leading blank of nothing: see below\n";
        // A tab inside the key is refused (C would take "server\tx" as the key).
        assert_eq!(
            err(text),
            "/ctl/mcdinfo: line 3: \"server\" holds a tab: separate the key from its value with a space"
        );
        let text = "servers db.example\n\
                    \t mdahostname 10.0.0.1\n\
                    ports 3306\n\
                    timestamp 12345\n\
                    domain Mixed.Example 1\n\
                    use_ssl 7\n\
                    databases mail\n\
                    username   u1\n\
                    password secret  \n";
        let p = parse(text).unwrap();
        assert_eq!(p.records.len(), 1);
        let r = &p.records[0];
        assert_eq!(r.domain, "mixed.example");
        assert!(r.distributed);
        assert_eq!(r.servers, vec!["db.example"]);
        assert_eq!(r.mdahost, "10.0.0.1");
        assert_eq!(r.port, 3306);
        assert!(r.use_ssl);
        assert_eq!(r.database, "mail");
        assert_eq!(r.user, "u1");
        assert_eq!(r.password, "secret  ");
        assert_eq!(r.origin, "/ctl/mcdinfo:1");
        assert_eq!(
            p.warnings,
            vec!["/ctl/mcdinfo:9: the value of pass ends in 2 blank(s), which are part of the password"]
        );
    }

    #[test]
    fn hash_always_starts_a_comment() {
        let p = parse(
            "domain a.example\nserver h # primary\nmdahost m\nport 0\nuse_ssl 0\ndatabase d\nuser u\npass ab#cd\n",
        )
        .unwrap();
        assert_eq!(p.records[0].password, "ab");
        assert_eq!(p.records[0].servers, vec!["h "]);
        assert_eq!(
            p.warnings,
            vec![
                "/ctl/mcdinfo:2: the value of `server` ends in 1 blank(s), which are part of the value",
                "/ctl/mcdinfo:8: `#` starts a comment, so the value of pass ends before it",
            ]
        );
    }

    #[test]
    fn domain_line_forms() {
        let rec = "server h\nmdahost m\nport 0\nuse_ssl 0\ndatabase d\nuser u\npass p\n";
        let p = parse(&format!("domain a.example\n{rec}")).unwrap();
        assert_eq!(
            (p.records[0].domain.as_str(), p.records[0].distributed),
            ("a.example", false)
        );
        let p = parse(&format!("domain a.example   2  \n{rec}")).unwrap();
        assert!(p.records[0].distributed);
        assert_eq!(
            err(&format!("domain a.example yes\n{rec}")),
            "/ctl/mcdinfo: line 1: the distributed flag of domain a.example is \"yes\", not 0 (not distributed) or 1 (distributed)"
        );
        assert!(err(&format!("domain a.example -1\n{rec}")).contains("\"-1\""));
        // No domain line: C's "unknown domain", not distributed, with a warning.
        let p = parse(rec).unwrap();
        assert_eq!(p.records[0].domain, UNKNOWN_DOMAIN);
        assert!(!p.records[0].distributed);
        assert_eq!(
            p.warnings,
            vec!["/ctl/mcdinfo:1: no domain line precedes this record; it is named \"unknown domain\" and no lookup uses it"]
        );
        // The domain is forgotten once a record took it.
        let p = parse(&format!("domain a.example 1\n{rec}{rec}")).unwrap();
        assert_eq!(p.records[1].domain, UNKNOWN_DOMAIN);
        // A second domain line before a record closes, and a trailing one: warnings.
        let p = parse(&format!(
            "domain a.example\nserver h\ndomain b.example\n{}domain c.example\n",
            &rec[9..]
        ))
        .unwrap();
        assert_eq!(p.records[0].domain, "b.example");
        assert_eq!(
            p.warnings,
            vec![
                "/ctl/mcdinfo:3: this domain line replaces the one at line 1 (a.example), which no record used",
                "/ctl/mcdinfo:10: domain c.example is not followed by a record; the line is ignored",
            ]
        );
    }

    #[test]
    fn error_item_outside_record() {
        assert_eq!(
            err("domain a.example\nport 3306\n"),
            "/ctl/mcdinfo: line 2: `port` is outside a record (a record starts with a `server` line)"
        );
        assert_eq!(
            err("pass hunter2\n"),
            "/ctl/mcdinfo: line 1: pass is outside a record (a record starts with a `server` line)"
        );
        // After a record closed, too.
        let rec = "server h\nmdahost m\nport 0\nuse_ssl 0\ndatabase d\nuser u\npass p\n";
        assert_eq!(
            err(&format!("{rec}user again\n")),
            "/ctl/mcdinfo: line 8: `user` is outside a record (a record starts with a `server` line)"
        );
    }

    #[test]
    fn error_server_inside_open_record() {
        assert_eq!(
            err("# x\nserver a\nmdahost m\nport 1\n\nserver b\n"),
            "/ctl/mcdinfo: line 6: `server` opens a record, but the record opened at line 2 is \
             incomplete (has only 3 of 7 items: missing use_ssl, database, user, pass)"
        );
    }

    #[test]
    fn error_duplicate_key() {
        assert_eq!(
            err("server a\nmdahost m\nport 1\nport 2\n"),
            "/ctl/mcdinfo: line 4: `port` is given twice in the record opened at line 1 (first at line 3)"
        );
        let e = err("server a\npass s3cret-one\npassword s3cret-two\n");
        assert_eq!(
            e,
            "/ctl/mcdinfo: line 3: pass is given twice in the record opened at line 1 (first at line 2)"
        );
    }

    #[test]
    fn error_eof_inside_record() {
        // The man page's example without use_ssl: C refuses it too.
        assert_eq!(
            err("domain a.example 1\nserver h\nmdahost m\nport 3306\ndatabase d\nuser u\npass p\n"),
            "/ctl/mcdinfo: line 2: the record opened on this line is incomplete at the end of the \
             file (has only 6 of 7 items: missing use_ssl)"
        );
    }

    #[test]
    fn error_no_value() {
        assert_eq!(
            err("server\n"),
            "/ctl/mcdinfo: line 1: `server` has no value"
        );
        assert_eq!(
            err("server   \n"),
            "/ctl/mcdinfo: line 1: `server` has no value"
        );
        assert_eq!(
            err("server h\npass \n"),
            "/ctl/mcdinfo: line 2: pass has no value"
        );
        assert_eq!(
            err("domain # comment\n"),
            "/ctl/mcdinfo: line 1: `domain` has no value"
        );
    }

    #[test]
    fn error_unknown_key() {
        assert_eq!(
            err("server h\nhost m\n"),
            "/ctl/mcdinfo: line 2: unknown key \"host\" (a record has server, mdahost, port, \
             use_ssl, database, user and pass; a domain line names the domain of the next record)"
        );
        // A password run into its keyword is not shown.
        let e = err("passhunter2\n");
        assert_eq!(e, "/ctl/mcdinfo: line 1: pass has no value");
    }

    #[test]
    fn error_bad_port_and_use_ssl() {
        for bad in ["65536", "-1", "33o6", "+3306", "99999999999999999999999"] {
            assert_eq!(
                err(&format!("server h\nport {bad}\n")),
                format!("/ctl/mcdinfo: line 2: port {bad:?} is not a number from 0 to 65535 (0 = the default)")
            );
        }
        assert_eq!(
            err("server h\nuse_ssl yes\n"),
            "/ctl/mcdinfo: line 2: use_ssl \"yes\" is not 0 (plain) or 1 (TLS)"
        );
    }

    #[test]
    fn error_long_value_and_control_chars() {
        let long = "a".repeat(128);
        assert_eq!(
            err(&format!("server {long}\n")),
            "/ctl/mcdinfo: line 1: the value of `server` is 128 bytes long, at most 127 are allowed"
        );
        assert!(parse(&format!("server {}\n", "a".repeat(127)))
            .unwrap_err()
            .contains("incomplete"));
        let secret = "p".repeat(200);
        let e = err(&format!("server h\npass {secret}\n"));
        assert_eq!(
            e,
            "/ctl/mcdinfo: line 2: the value of pass is 200 bytes long, at most 127 are allowed"
        );
        assert_eq!(
            err("server h\r\n"),
            "/ctl/mcdinfo: line 1: the value of `server` holds a carriage return (is the file in DOS format?)"
        );
        assert_eq!(
            err("server h\nuser u\x01x\n"),
            "/ctl/mcdinfo: line 2: the value of `user` holds the control character U+0001"
        );
        let e = err("server h\npass top\tsecret\n");
        assert_eq!(e, "/ctl/mcdinfo: line 2: the value of pass holds a tab");
        let e = parse_mcdinfo(b"server h\nuser \xff\n", Path::new("/ctl/mcdinfo")).unwrap_err();
        assert_eq!(e.to_string(), "/ctl/mcdinfo: line 2: not valid UTF-8");
    }

    #[test]
    fn passwords_never_in_errors_or_debug() {
        let cases = [
            "server h\npass s3cret\npass s3cret\n",
            "server h\npass s3cret\x7f\n",
            "pass s3cret\n",
            "passs3cret\n",
            "passs3cret\tx\n",
            "server h\npass s3cret\nserver h2\n",
        ];
        for text in cases {
            let e = err(text);
            assert!(!e.contains("s3cret"), "{e}");
        }
        let p = parse(SAMPLE).unwrap();
        let shown = format!("{:?}", p.records);
        assert!(
            !shown.contains("ms1pass") && shown.contains("<hidden>"),
            "{shown}"
        );
    }

    #[test]
    fn consistency_checks() {
        let rec = |d: &str, m: &str| {
            format!("domain {d}\nserver h\nmdahost {m}\nport 0\nuse_ssl 0\ndatabase d\nuser u\npass p\n")
        };
        let text = format!(
            "{}{}{}",
            rec("a.example 1", "m1"),
            rec("a.example 0", "m2"),
            rec("a.example 1", "m1")
        );
        let p = parse(&text).unwrap();
        let w = consistency_warnings(&p.records);
        assert_eq!(
            w,
            vec![
                "/ctl/mcdinfo:10: domain a.example is not distributed here but distributed at /ctl/mcdinfo:2; the first record decides",
                "/ctl/mcdinfo:18: domain a.example already has a record for mail host m1 at /ctl/mcdinfo:2; users routed to that mail host use the first one",
            ]
        );
    }

    /// A control directory with the sample, a users directory with `assign`, and
    /// the Env/Paths pointing at both.
    fn site(
        files: &[(&str, &[u8])],
        assign: Option<&str>,
    ) -> (tempfile::TempDir, tempfile::TempDir, Env, Paths) {
        let mut all: Vec<(&str, &[u8])> = vec![("mcdinfo", SAMPLE.as_bytes())];
        all.extend_from_slice(files);
        let (ctl, mut e, p) = control(&all);
        let users = tempfile::tempdir().unwrap();
        if let Some(a) = assign {
            fs::write(users.path().join("assign"), a).unwrap();
        }
        e.set("ASSIGNDIR", users.path().as_os_str());
        let p = Paths {
            assigndir: users.path().to_path_buf(),
            ..p
        };
        (ctl, users, e, p)
    }

    fn local_mysql() -> MysqlConfig {
        MysqlConfig::parse_host_line("db.local:lu:lpw:/run/my.sock:ssl", host_defaults()).unwrap()
    }

    #[test]
    fn local_records_for_assign_domains() {
        let assign = "+local.example-:local.example:555:555:/nonexistent/local.example:-::\n\
                      +Other.Example-:Other.Example:555:555:/nonexistent/other:-::\n\
                      +plain.example-:plain.example:555:555:/nonexistent/plain:-::\n\
                      +novirt.example-:novirt.example:555:555:/nonexistent/novirt:-::\n\
                      +local.example-:local.example:555:555:/nonexistent/local.example:-::\n\
                      .\n";
        let (_c, _u, e, p) = site(
            &[
                ("virtualdomains", b"local.example:local.example\n  other.example:x # c\nplain.example:plain.example\n"),
                ("hostip", b"10.9.8.7\n"),
            ],
            Some(assign),
        );
        let c = ClusterDefinition::load(&e, &p, &local_mysql())
            .unwrap()
            .unwrap();
        assert_eq!(c.records.len(), 5);
        let l = &c.records[3];
        assert_eq!(
            *l,
            DbRecord {
                domain: "local.example".into(),
                distributed: false,
                servers: vec!["db.local".into()],
                mdahost: "10.9.8.7".into(),
                port: 0,
                use_ssl: true,
                database: "indimail".into(),
                user: "lu".into(),
                password: "lpw".into(),
                socket: Some(PathBuf::from("/run/my.sock")),
                local: true,
                origin: "local record for local.example".into(),
            }
        );
        assert_eq!(c.records[4].domain, "other.example");
        assert_eq!(c.records[4].origin, "local record for other.example");
        // plain.example has a file record; novirt.example is not in virtualdomains.
        assert!(c.records_of("plain.example").all(|r| !r.local));
        assert!(c.first_record("novirt.example").is_none());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn local_records_skip_alias_domains() {
        let users = tempfile::tempdir().unwrap();
        let real = users.path().join("real.example");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, users.path().join("alias.example")).unwrap();
        fs::write(real.join(".aliasdomains"), "# aliases\n listed.example\n").unwrap();
        let assign = format!(
            "+real.example-:real.example:1:1:{r}:-::\n+alias.example-:alias.example:1:1:{a}:-::\n+listed.example-:listed.example:1:1:{r}:-::\n",
            r = real.display(),
            a = users.path().join("alias.example").display()
        );
        let (_c, _u, e, p) = site(
            &[(
                "virtualdomains",
                b"real.example:real.example\nalias.example:alias.example\nlisted.example:x\n",
            )],
            Some(&assign),
        );
        let c = ClusterDefinition::load(&e, &p, &host_defaults())
            .unwrap()
            .unwrap();
        let local: Vec<&str> = c
            .records
            .iter()
            .filter(|r| r.local)
            .map(|r| r.domain.as_str())
            .collect();
        assert_eq!(local, vec!["real.example"]);
        // No hostip: localhost, with a warning.
        assert_eq!(c.records[3].mdahost, "localhost");
        assert_eq!(
            c.warnings,
            vec![format!(
                "{} does not exist: local records name their mail host \"localhost\"",
                p.control_file("hostip").display()
            )]
        );
    }

    #[test]
    fn default_domain_record_when_no_assign_domain_qualifies() {
        let (_c, _u, mut e, p) = site(
            &[("hostip", b" 192.0.2.9 \n")],
            Some("+x.example-:x.example:1:1:/d:-::\n"),
        );
        e.set("DEFAULT_DOMAIN", "Default.Example");
        let c = ClusterDefinition::load(&e, &p, &host_defaults())
            .unwrap()
            .unwrap();
        assert_eq!(c.records.len(), 4);
        let l = &c.records[3];
        assert_eq!(l.domain, "default.example");
        assert_eq!(l.mdahost, "192.0.2.9");
        assert_eq!(l.servers, vec!["localhost"]);
        assert_eq!(l.password, "ssh-1.5-");
        assert!(l.local && !l.distributed);
        // C appends it even when the default domain has file records.
        e.set("DEFAULT_DOMAIN", "plain.example");
        let c = ClusterDefinition::load(&e, &p, &host_defaults())
            .unwrap()
            .unwrap();
        assert_eq!(c.records_of("plain.example").count(), 2);
        assert!(!c.first_record("plain.example").unwrap().local);
        // No default domain: no record, a warning.
        e.remove("DEFAULT_DOMAIN");
        let c = ClusterDefinition::load(&e, &p, &host_defaults())
            .unwrap()
            .unwrap();
        assert_eq!(c.records.len(), 3);
        assert!(
            c.warnings[0].starts_with("no domain of assign qualifies"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn virtualdomains_empty_line_is_a_warning() {
        let (_c, _u, e, p) = site(
            &[
                ("virtualdomains", b"a.example:a\n\nb.example:b\n"),
                ("hostip", b"h\n"),
            ],
            Some("+b.example-:b.example:1:1:/d:-::\n"),
        );
        let c = ClusterDefinition::load(&e, &p, &host_defaults())
            .unwrap()
            .unwrap();
        assert_eq!(c.records[3].domain, "b.example");
        assert_eq!(
            c.warnings,
            vec![format!(
                "{}:2: empty line skipped (IndiMail's own tools stop at it)",
                p.control_file("virtualdomains").display()
            )]
        );
    }

    #[test]
    fn mcdinfo_errors_through_load_name_the_path() {
        let (d, e, p) = control(&[("mcdinfo", b"server h\n")]);
        let err = ClusterDefinition::load(&e, &p, &host_defaults())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{}: line 1: the record opened",
                d.path().join("mcdinfo").display()
            )),
            "{err}"
        );
        let (_d, e, p) = control(&[]);
        fs::create_dir(p.control_file("mcdinfo")).unwrap();
        assert!(ClusterDefinition::load(&e, &p, &host_defaults()).is_err());
    }

    fn addr(host: &str, port: u16) -> ServerAddr {
        ServerAddr {
            host: host.into(),
            port,
            socket: None,
        }
    }

    fn replicas(text: &str) -> Result<Replicas, String> {
        parse_replicas(text.as_bytes(), Path::new("/ctl/replicas")).map_err(|e| e.to_string())
    }

    #[test]
    fn replicas_sample_and_matching() {
        let r = replicas(
            "# primary              replicas, in order of preference\n\
             127.0.0.1:3313         127.0.0.1:3314\n\
             db1.example            db2.example:3307 /run/mysqld/replica.sock\n\
             [2001:db8::1]:3306     [2001:db8::2]:3306   # v6\n\
             /run/mysqld/primary.sock  [2001:db8::3]\n",
        )
        .unwrap();
        assert!(!r.is_empty());
        assert_eq!(r.of("127.0.0.1", 3313, None), &[addr("127.0.0.1", 3314)]);
        assert_eq!(r.of("127.0.0.1", 3306, None), &[] as &[ServerAddr]);
        let sock = ServerAddr {
            host: "localhost".into(),
            port: 0,
            socket: Some("/run/mysqld/replica.sock".into()),
        };
        assert_eq!(
            r.of("DB1.example", 0, None),
            &[addr("db2.example", 3307), sock.clone()]
        );
        assert_eq!(
            r.of("db1.example", 3306, None),
            &[addr("db2.example", 3307), sock]
        );
        assert_eq!(r.of("db1.example", 3307, None), &[] as &[ServerAddr]);
        assert_eq!(r.of("2001:db8::1", 0, None), &[addr("2001:db8::2", 3306)]);
        assert_eq!(
            r.of("localhost", 0, Some(Path::new("/run/mysqld/primary.sock"))),
            &[addr("2001:db8::3", 0)]
        );
        assert_eq!(r.of("localhost", 0, None), &[] as &[ServerAddr]);
        // A record with a socket still matches a TCP primary by host and port.
        assert_eq!(
            r.of("127.0.0.1", 3313, Some(Path::new("/other.sock"))),
            &[addr("127.0.0.1", 3314)]
        );
        assert_eq!(r.entries().len(), 4);
        assert_eq!(r.entries()[2].0.to_string(), "[2001:db8::1]:3306");
        assert_eq!(r.entries()[3].1[0].to_string(), "[2001:db8::3]");
    }

    #[test]
    fn replicas_errors_name_file_and_line() {
        let cases = [
            ("a:0 b\n", "line 1: \"a:0\": port \"0\" is not a number from 1 to 65535"),
            ("a b:x\n", "line 1: \"b:x\": port \"x\" is not a number from 1 to 65535"),
            ("a b\n\na c\n", "line 3: primary a is already listed at line 1"),
            ("a:3306 b\nA c\n", "line 2: primary A is already listed at line 1"),
            ("# c\nlonely   # no replica\n", "line 2: primary lonely has no replica after it"),
            ("a a:3306\n", "line 1: a:3306 is listed as a replica of itself"),
            ("a b b:3306\n", "line 1: replica b:3306 is listed twice"),
            ("2001:db8::1 b\n", "line 1: \"2001:db8::1\": write an IPv6 address in brackets, as [2001:db8::1] or [2001:db8::1]:3306"),
            ("[::1 b\n", "line 1: \"[::1\": '[' without its ']'"),
            ("[::1]x b\n", "line 1: \"[::1]x\": text after ']' is not ':port'"),
            (":3306 b\n", "line 1: \":3306\": no host"),
        ];
        for (text, want) in cases {
            assert_eq!(
                replicas(text).unwrap_err(),
                format!("/ctl/replicas: {want}"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn replicas_load_missing_and_env_path() {
        let (d, mut e, p) = control(&[]);
        assert!(Replicas::load(&e, &p).unwrap().is_empty());
        fs::write(d.path().join("reps"), "a b\n").unwrap();
        e.set("REPLICAS_FILE", "reps");
        assert_eq!(
            Replicas::load(&e, &p).unwrap().of("a", 0, None),
            &[addr("b", 0)]
        );
        fs::write(d.path().join("replicas"), "a\n").unwrap();
        e.remove("REPLICAS_FILE");
        let err = Replicas::load(&e, &p).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: line 1: primary a has no replica after it",
                d.path().join("replicas").display()
            )
        );
    }
}
