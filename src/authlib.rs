//! authindi: IndiMail's module for courier-imap's authlib chain, as functions the
//! applet calls. The applet reads fd 3, chooses among "run the application", "next
//! module" and "fail completely", and execs.
//!
//! Where IndiMail's C authindi has a known weakness (spec/auth.md §6) this does the
//! intended thing: an unknown domain, an unknown user and a wrong password all go to
//! the next module (C told them apart); the account's flags are looked at only after
//! the password matched; the service flags also apply to `imaps`, `pop3s` and the
//! names a site maps onto them; lastauth and re-activation use the real domain;
//! the base64 input is validated; no secret reaches a log line or a child's
//! environment.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::auth::{self, Attempt, AuthError, Method, Policy, Verdict};
use crate::checkpassword::{plausible_login, spend_like_verify};
use crate::db::{gid, Database, DbError};
use crate::protocol::PwStruct;
use crate::query::{Query, QueryError};

// ---------------------------------------------------------------------------
// The record on fd 3

/// What the login program asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    /// `pass`: a password change, which authindi leaves to other modules.
    PasswordChange,
    /// A login with this method (0 for an AUTHTYPE authindi does not know, which is
    /// then treated as a password, as in C).
    Login(Method),
}

impl AuthType {
    /// courier's AUTHTYPE, compared exactly (lower case) as C did.
    pub fn from_name(name: &[u8]) -> AuthType {
        AuthType::Login(match name {
            b"pass" => return AuthType::PasswordChange,
            b"login" => Method::Login,
            b"plain" => Method::Plain,
            b"cram-md5" => Method::CramMd5,
            b"cram-sha1" => Method::CramSha1,
            b"cram-sha256" => Method::CramSha256,
            b"cram-sha512" => Method::CramSha512,
            b"cram-ripemd" => Method::CramRipemd,
            _ => Method::Unspecified,
        })
    }
}

/// A courier authlib request: `service\nauthtype\nauthdata`.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub service: Vec<u8>,
    /// AUTHTYPE as sent (for log lines).
    pub authtype: Vec<u8>,
    pub kind: AuthType,
    /// The user id: the third line, or for CRAM the text before the first blank of
    /// the decoded client reply.
    pub login: Vec<u8>,
    /// CRAM: the decoded challenge. Empty otherwise.
    pub challenge: Vec<u8>,
    /// The password, or for CRAM the client's hex digest.
    pub response: Vec<u8>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("service", &crate::logline::Escaped::new(&self.service))
            .field("kind", &self.kind)
            .field("login", &crate::logline::Escaped::new(&self.login))
            .field("challenge_len", &self.challenge.len())
            .field("response_len", &self.response.len())
            .finish()
    }
}

impl Record {
    /// The method number the password check uses.
    pub fn method(&self) -> Method {
        match self.kind {
            AuthType::Login(m) => m,
            AuthType::PasswordChange => Method::Unspecified,
        }
    }

    /// The credentials as the password library takes them.
    pub fn attempt(&self) -> Attempt<'_> {
        let method = self.method();
        if method.is_cram_class() {
            Attempt::challenge_response(method, &self.login, &self.challenge, &self.response)
        } else {
            Attempt::password(method, &self.login, &self.response)
        }
    }
}

/// Why a record could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// A line is missing or nothing follows it (exit 2).
    TooShort,
    /// A CRAM line is not valid base64 (fail completely).
    BadBase64,
}

/// Splits a record as IndiMail's authindi does (spec §2.2).
///
/// The service, the AUTHTYPE and the third line must each end in `\n` with more data
/// after it. The fourth line (the password, or the CRAM reply) runs to `\n` or the
/// end; when it is empty, the fifth line is the password. For the CRAM types the third
/// and fourth lines are base64: the challenge, and `userid<blank>hexdigest`.
pub fn parse_record(data: &[u8]) -> Result<Record, RecordError> {
    let mut pos = 0;
    let line_with_more = |pos: &mut usize| -> Result<std::ops::Range<usize>, RecordError> {
        let start = *pos;
        let nl = data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| start + i)
            .filter(|&nl| nl + 1 < data.len())
            .ok_or(RecordError::TooShort)?;
        *pos = nl + 1;
        Ok(start..nl)
    };
    let service = line_with_more(&mut pos)?;
    let authtype = line_with_more(&mut pos)?;
    let third = line_with_more(&mut pos)?;
    let rest_line = |pos: &mut usize| -> std::ops::Range<usize> {
        let start = (*pos).min(data.len());
        let end = data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| start + i);
        *pos = (end + 1).min(data.len());
        start..end
    };
    let mut fourth = rest_line(&mut pos);
    let kind = AuthType::from_name(&data[authtype.clone()]);
    let cram = matches!(kind, AuthType::Login(m) if m.is_cram_class());
    let (login, challenge, response) = if cram {
        let challenge = base64_decode(&data[third]).ok_or(RecordError::BadBase64)?;
        let reply = base64_decode(&data[fourth]).ok_or(RecordError::BadBase64)?;
        let blank = reply.iter().position(|b| b.is_ascii_whitespace());
        let (login, response) = match blank {
            Some(i) => (reply[..i].to_vec(), reply[i + 1..].to_vec()),
            None => (reply, Vec::new()),
        };
        (login, challenge, response)
    } else {
        if fourth.is_empty() {
            // "In case of auth login, auth plain": the password on the next line.
            fourth = rest_line(&mut pos);
        }
        (data[third].to_vec(), Vec::new(), data[fourth].to_vec())
    };
    Ok(Record {
        service: data[service].to_vec(),
        authtype: data[authtype].to_vec(),
        kind,
        login,
        challenge,
        response,
    })
}

/// Standard base64 (RFC 4648 alphabet, `=` padding, length a multiple of 4). `None`
/// for anything else; C's decoder read past its input and accepted any byte.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (n, quad) in text.chunks_exact(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && n + 1 != quads) {
            return None;
        }
        let mut triple = 0u32;
        for &c in &quad[..4 - pad] {
            triple = triple << 6 | value(c)?;
        }
        triple <<= 6 * pad as u32;
        let bytes = triple.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// Services and their flags

/// The services whose pw_gid flags IndiMail checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceClass {
    Imap,
    Pop3,
    Webmail,
}

impl ServiceClass {
    /// The pw_gid bit that closes this service.
    pub fn closing_flag(self) -> u32 {
        match self {
            ServiceClass::Imap => gid::NO_IMAP,
            ServiceClass::Pop3 => gid::NO_POP,
            ServiceClass::Webmail => gid::NO_WEBMAIL,
        }
    }

    fn from_name(name: &str) -> Option<ServiceClass> {
        match name {
            "imap" => Some(ServiceClass::Imap),
            "pop3" => Some(ServiceClass::Pop3),
            "webmail" => Some(ServiceClass::Webmail),
            _ => None,
        }
    }
}

/// The variable that maps a site's own service names onto the three classes:
/// `name=class` pairs separated by `:`, for example `imap-ssl=imap:sieve=imap`.
pub const SERVICE_MAP_VAR: &str = "AUTHINDI_SERVICE_MAP";

/// Service name → class. `imap`, `imaps`, `pop3`, `pop3s` and `webmail` are always
/// known (C checked only the exact names `imap`, `pop3` and `webmail`, so a NO_IMAP
/// account could still log in over `imaps`); other names are not checked unless a
/// site maps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceMap {
    names: Vec<(String, ServiceClass)>,
}

impl Default for ServiceMap {
    fn default() -> ServiceMap {
        let names = [
            ("imap", ServiceClass::Imap),
            ("imaps", ServiceClass::Imap),
            ("pop3", ServiceClass::Pop3),
            ("pop3s", ServiceClass::Pop3),
            ("webmail", ServiceClass::Webmail),
        ];
        ServiceMap {
            names: names.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        }
    }
}

impl ServiceMap {
    /// The defaults plus the pairs of [`SERVICE_MAP_VAR`]. An entry that is not
    /// `name=imap|pop3|webmail` is an error naming it.
    pub fn parse(value: Option<&str>) -> Result<ServiceMap, String> {
        let mut map = ServiceMap::default();
        for entry in value.unwrap_or("").split(':').filter(|e| !e.is_empty()) {
            let parsed = entry.split_once('=').and_then(|(name, class)| {
                let class = ServiceClass::from_name(&class.trim().to_ascii_lowercase())?;
                let name = name.trim().to_ascii_lowercase();
                (!name.is_empty()).then_some((name, class))
            });
            match parsed {
                Some((name, class)) => {
                    map.names.retain(|(n, _)| *n != name);
                    map.names.push((name, class));
                }
                None => {
                    return Err(format!(
                        "{SERVICE_MAP_VAR}: {entry:?} is not name=imap, name=pop3 or name=webmail"
                    ))
                }
            }
        }
        Ok(map)
    }

    /// The class of a service name (ASCII case ignored).
    pub fn class(&self, service: &[u8]) -> Option<ServiceClass> {
        self.names
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(service))
            .map(|(_, c)| *c)
    }
}

// ---------------------------------------------------------------------------
// The decision

/// What the environment decides about an authindi run.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `DISABLE_*`, and `cram_from_hash` from `ENABLE_CRAM`.
    pub policy: Policy,
    /// `DOMAIN_LIMITS`.
    pub domain_limits: bool,
    /// The site's default domain, for a login without one.
    pub default_domain: Option<String>,
    pub services: ServiceMap,
    /// Unix seconds.
    pub now: i64,
}

/// The account of a client that proved its password and may use the service.
#[derive(Debug)]
pub struct Account {
    pub pw: PwStruct,
    /// The user's domain after alias resolution.
    pub real_domain: String,
}

impl Account {
    /// `pw_name@real_domain`.
    pub fn address(&self) -> String {
        format!(
            "{}@{}",
            String::from_utf8_lossy(&self.pw.name),
            self.real_domain
        )
    }
}

/// Why the next module gets the request.
#[derive(Debug)]
pub enum Reject {
    PasswordChange,
    NoSuchUser,
    WrongPassword,
    /// The stored secret cannot be used (malformed SCRAM value, unknown hash scheme).
    Unverifiable(AuthError),
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::PasswordChange => f.write_str("Password Change not supported"),
            Reject::NoSuchUser => f.write_str("no such user"),
            Reject::WrongPassword => f.write_str("password mismatch"),
            Reject::Unverifiable(e) => write!(f, "unable to get secrets: {e}"),
        }
    }
}

/// Why no other module may try: the client proved the password but may not log in,
/// or the lookup failed (courier's TEMPFAIL, which also fails completely).
#[derive(Debug)]
pub enum Failure {
    ServiceDisabled(String),
    DomainExpired,
    PasswordExpired,
    Lookup(QueryError),
    /// The limits lookup found no such user any more.
    LimitsGone,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::ServiceDisabled(s) => write!(f, "{s} disabled for this account"),
            Failure::DomainExpired => f.write_str("Sorry, your domain has expired"),
            Failure::PasswordExpired => f.write_str("Sorry, your password has expired"),
            Failure::Lookup(e) => write!(f, "TEMPFAIL: {e}"),
            Failure::LimitsGone => f.write_str("TEMPFAIL: unable to get domain limits"),
        }
    }
}

#[derive(Debug)]
pub enum Outcome {
    Success(Account),
    NextModule(Reject),
    FailCompletely(Failure),
}

/// The address to look a login up under: `user@domain` lower-cased, split at the first
/// `@`, `%` or `:`, with the default domain for a bare user; a bare user as it is when
/// there is no default domain (the daemon then applies its own).
pub fn lookup_address(login: &[u8], default_domain: Option<&str>) -> Vec<u8> {
    let lower = login.to_ascii_lowercase();
    match lower.iter().position(|b| matches!(b, b'@' | b'%' | b':')) {
        Some(i) => [&lower[..i], b"@", &lower[i + 1..]].concat(),
        None => match default_domain {
            Some(d) => [&lower[..], b"@", d.to_ascii_lowercase().as_bytes()].concat(),
            None => lower,
        },
    }
}

/// Checks a record against the account (spec §2.3 with the §6 fixes).
pub fn authenticate(record: &Record, query: &Query, s: &Settings) -> Outcome {
    if record.kind == AuthType::PasswordChange {
        return Outcome::NextModule(Reject::PasswordChange);
    }
    let attempt = record.attempt();
    let policy = &s.policy;
    if !plausible_login(&record.login) {
        spend_like_verify(&attempt, policy);
        return Outcome::NextModule(Reject::NoSuchUser);
    }
    let address = lookup_address(&record.login, s.default_domain.as_deref());
    let pw = match query.password(&address) {
        Ok(Some(pw)) => pw,
        Ok(None) => {
            spend_like_verify(&attempt, policy);
            return Outcome::NextModule(Reject::NoSuchUser);
        }
        Err(e) => return Outcome::FailCompletely(Failure::Lookup(e)),
    };
    match auth::verify(&pw.passwd, &attempt, policy) {
        Ok(Verdict::Match { .. }) => {}
        Ok(Verdict::Mismatch) => return Outcome::NextModule(Reject::WrongPassword),
        Err(e) => {
            spend_like_verify(&attempt, policy);
            return Outcome::NextModule(Reject::Unverifiable(e));
        }
    }
    // The password matched: the account's state may be told now.
    let typed_domain = match address.iter().position(|&b| b == b'@') {
        Some(i) => address[i + 1..].to_vec(),
        None => pw.domain.clone(),
    };
    let real_domain = match query.real_domain(&typed_domain) {
        Ok(d) => String::from_utf8_lossy(&d).to_ascii_lowercase(),
        Err(e) => return Outcome::FailCompletely(Failure::Lookup(e)),
    };
    if let Some(class) = s.services.class(&record.service) {
        if pw.gid & class.closing_flag() != 0 {
            let service = String::from_utf8_lossy(&record.service).into_owned();
            return Outcome::FailCompletely(Failure::ServiceDisabled(service));
        }
    }
    let account = Account { pw, real_domain };
    if s.domain_limits {
        match query.limits(account.address().as_bytes()) {
            Ok(Some(l)) => {
                if l.domain_expiry > -1 && s.now > l.domain_expiry {
                    return Outcome::FailCompletely(Failure::DomainExpired);
                }
                if l.passwd_expiry > -1 && s.now > l.passwd_expiry {
                    return Outcome::FailCompletely(Failure::PasswordExpired);
                }
            }
            Ok(None) => return Outcome::FailCompletely(Failure::LimitsGone),
            Err(e) => return Outcome::FailCompletely(Failure::Lookup(e)),
        }
    }
    Outcome::Success(account)
}

// ---------------------------------------------------------------------------
// After success

/// `MAILDIRQUOTA` from the quota field (pw_shell), `<bytes>S,<count>C`, for every form
/// IndiMail's tools write and its `parse_quota` reads:
///
/// * `NOQUOTA` (size 0), optionally followed by `,<count>`;
/// * a decimal size, optionally followed by `k`/`m`/`g` (either case: KiB, MiB, GiB)
///   or by `S` (bytes, as vsetuserquota and vmoduser store it: `5242880S`);
/// * optionally `,<count>` or `,<count>C` (`5242880S,1000C`);
/// * an empty size or count is 0, as C's strtoll reads it.
///
/// Blanks around the parts are ignored. C's strtoll also took hex and octal (so `010`
/// was 8) and a suffix anywhere in the field, even in the count, multiplied the size;
/// here numbers are decimal and a suffix follows its number. Values past
/// `i64::MAX`, which C refused as well, are `None`, as is anything else.
pub fn maildir_quota(shell: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(shell).ok()?.trim();
    let (size, count) = match text.split_once(',') {
        Some((s, c)) => (s.trim(), Some(c.trim())),
        None => (text, None),
    };
    let count = match count {
        None => 0,
        Some(c) => quota_number(c, |suffix| matches!(suffix, "" | "c" | "C").then_some(1))?,
    };
    let bytes = if size == "NOQUOTA" {
        0
    } else {
        quota_number(size, |suffix| match suffix {
            "" | "s" | "S" => Some(1),
            "k" | "K" => Some(1 << 10),
            "m" | "M" => Some(1 << 20),
            "g" | "G" => Some(1 << 30),
            _ => None,
        })?
    };
    Some(format!("{bytes}S,{count}C"))
}

/// A decimal number (empty is 0) times the factor `unit` gives for what follows it.
fn quota_number(text: &str, unit: impl Fn(&str) -> Option<i64>) -> Option<i64> {
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, suffix) = text.split_at(digits);
    let number: i64 = if number.is_empty() {
        0
    } else {
        number.parse().ok()?
    };
    number.checked_mul(unit(suffix)?)
}

/// A path component from account data (domain, gecos, service), if it is one: not
/// empty, no `/`, not `.` or `..`. C used gecos as it was, so `../x` walked the tree.
fn component(text: &[u8]) -> Option<&Path> {
    let ok = !text.is_empty() && !text.contains(&b'/') && text != b"." && text != b"..";
    ok.then(|| Path::new(std::ffi::OsStr::from_bytes(text)))
}

/// IndiMail's Check_Login: is there a `nologin` file for this service, under the
/// domain's or the gecos's directory of CONTROLDIR?
pub fn login_forbidden(controldir: &Path, service: &[u8], domain: &[u8], gecos: &[u8]) -> bool {
    let Some(service) = component(service) else {
        return false;
    };
    [domain, gecos]
        .iter()
        .filter_map(|d| component(d))
        .any(|dir| {
            controldir
                .join(dir)
                .join(service)
                .join("nologin")
                .symlink_metadata()
                .is_ok()
        })
}

/// Creates a new user's `<home>/Maildir` with cur, new and tmp (mode 0750), the
/// `domain` file and an empty `BulkMail`, as IndiMail's vmake_maildir does at the first
/// login. When run as root the new directories and files are given to the `indimail`
/// user and group. (C also sent the welcome mail; that is not done here.)
pub fn make_maildir(home: &Path, domain: &str) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true).mode(0o750);
    let mut made = Vec::new();
    // The parts of `home` that do not exist yet are ours to hand over.
    let mut missing = Vec::new();
    let mut p = home;
    while !p.as_os_str().is_empty() && p.symlink_metadata().is_err() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    let maildir = home.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        builder.create(maildir.join(sub))?;
    }
    made.extend(missing);
    made.push(maildir.clone());
    for sub in ["cur", "new", "tmp"] {
        made.push(maildir.join(sub));
    }
    fs::write(maildir.join("domain"), format!("{domain}\n"))?;
    made.push(maildir.join("domain"));
    fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(maildir.join("BulkMail"))?;
    made.push(maildir.join("BulkMail"));
    if nix::unistd::geteuid().is_root() {
        let user = nix::unistd::User::from_name("indimail").ok().flatten();
        let group = nix::unistd::Group::from_name("indimail").ok().flatten();
        if let (Some(u), Some(g)) = (user, group) {
            for path in &made {
                nix::unistd::chown(path, Some(u.uid), Some(g.gid))?;
            }
        }
    }
    Ok(())
}

/// The mail a Maildir holds, in bytes: from `maildirsize` (Maildir++), else the sizes
/// of the files in `cur` and `new`. Unreadable parts count as empty.
pub fn maildir_usage(maildir: &Path) -> u64 {
    if let Ok(text) = fs::read(maildir.join("maildirsize")) {
        return text
            .split(|&b| b == b'\n')
            .skip(1)
            .filter_map(|line| {
                let line = std::str::from_utf8(line).ok()?;
                line.split_whitespace().next()?.parse::<i64>().ok()
            })
            .sum::<i64>()
            .max(0) as u64;
    }
    ["cur", "new"]
        .iter()
        .filter_map(|d| fs::read_dir(maildir.join(d)).ok())
        .flatten()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// The remote address for lastauth: TCP6REMOTEIP, TCPREMOTEIP, the peer of stdin,
/// else `unknown`.
pub fn remote_ip(env: &crate::config::Env) -> String {
    for var in ["TCP6REMOTEIP", "TCPREMOTEIP"] {
        if let Some(v) = env.get(var).filter(|v| !v.is_empty()) {
            return v.to_string_lossy().into_owned();
        }
    }
    peer_of_stdin().unwrap_or_else(|| "unknown".to_string())
}

fn peer_of_stdin() -> Option<String> {
    // SAFETY: sockaddr_storage is plain data; getpeername(2) writes at most `len`
    // bytes into it and fails harmlessly when fd 0 is no socket.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above; the pointers are to live locals of the right size.
    let rc = unsafe {
        libc::getpeername(
            0,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(&storage as *const _ as *const libc::sockaddr_in) };
            Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).to_string())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(&storage as *const _ as *const libc::sockaddr_in6) };
            Some(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).to_string())
        }
        _ => None,
    }
}

/// What Login_Tasks leaves for the application's environment and the Maildir choice.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TaskResult {
    /// 0 normally; 2 when logins come too fast (MIN_LOGIN_INTERVAL); otherwise the
    /// non-zero exit status of POSTAUTH or MIGRATEUSER.
    pub status: i32,
    /// `LAST_PASSWORD_CHANGE`, when it was looked up.
    pub last_password_change: Option<i64>,
}

/// The inputs of Login_Tasks.
pub struct LoginTasks<'a> {
    pub account: &'a Account,
    pub service: &'a [u8],
    pub env: &'a crate::config::Env,
    /// The environment POSTAUTH and MIGRATEUSER get besides PWSTRUCT.
    pub child_env: &'a crate::chain::ChildEnv,
    pub now: i64,
}

/// Where the log lines of Login_Tasks go (stderr in the applet).
pub type Warn<'a> = &'a dyn Fn(&str);

/// The lastauth `service` column holds 10 bytes.
fn lastauth_service(service: &[u8]) -> String {
    String::from_utf8_lossy(&service[..service.len().min(10)]).into_owned()
}

impl LoginTasks<'_> {
    /// IndiMail's Login_Tasks after a successful login: Maildir creation, re-activation
    /// of an inactive user, POP-before-SMTP relay, the login-interval check, lastauth,
    /// POSTAUTH and MIGRATEUSER. Database writes go to MySQL directly (`db`), whatever
    /// QUERY_CACHE says; a failing write is logged and the login goes on. Bulletins,
    /// over-quota warnings and the welcome mail are not done.
    pub fn run(&self, db: &Database, warn: Warn<'_>) -> TaskResult {
        let pw = &self.account.pw;
        let user = String::from_utf8_lossy(&pw.name).to_ascii_lowercase();
        let domain = self.account.real_domain.as_str();
        let home = PathBuf::from(OsString::from_vec(pw.dir.clone()));
        let maildir = home.join("Maildir");
        let mut result = TaskResult::default();
        // After one failure to reach the database the other writes are not tried.
        let db_ok = std::cell::Cell::new(true);
        let try_db = |what: &str, r: Result<(), DbError>| {
            if let Err(e) = r {
                warn(&format!("warn: {what}: {e}"));
                if matches!(e, DbError::Connect(_) | DbError::Busy(_)) {
                    db_ok.set(false);
                }
            }
        };

        if !pw.dir.is_empty() && home.symlink_metadata().is_err() {
            if let Err(e) = make_maildir(&home, domain) {
                warn(&format!("warn: vmake_maildir: {}: {e}", home.display()));
            }
        }
        if pw.inactive {
            try_db("activate", db.activate_user(&user, domain).map(|_| ()));
            if db_ok.get() {
                let entry = crate::db::auth::LastAuth {
                    user: &user,
                    domain,
                    service: "ACTI",
                    remote_ip: &remote_ip(self.env),
                    quota: maildir_usage(&maildir),
                    gecos: &String::from_utf8_lossy(&pw.gecos),
                    when: self.now,
                };
                try_db("lastauth", db.set_lastauth(&entry));
            }
        } else if self.env.is_set("NOLASTAUTHLOGGING") || self.env.is_set("NOLASTAUTH") {
            return result;
        }
        let ip = remote_ip(self.env);
        if !self.env.is_set("NORELAY")
            && pw.gid & gid::NO_RELAY == 0
            && self.env.is_set("OPEN_SMTP")
            && db_ok.get()
        {
            let email = format!("{user}@{domain}");
            try_db("open relay", db.open_relay(&email, &ip, self.now));
        }
        let min_interval = self
            .env
            .get("MIN_LOGIN_INTERVAL")
            .and_then(|v| v.to_str()?.trim().parse::<i64>().ok())
            .unwrap_or(0);
        if min_interval > 0 && db_ok.get() {
            match db.last_login_time(&user, domain) {
                Ok(Some(last)) if self.now - last < min_interval => {
                    warn(&format!(
                        "ERR: Login interval {} < {min_interval}, user={user}, domain={domain}",
                        self.now - last
                    ));
                    result.status = 2;
                    return result;
                }
                Ok(_) => {}
                Err(e) => try_db("lastauth", Err(e)),
            }
        }
        if db_ok.get() {
            match db.last_password_change(&user, domain) {
                Ok(t) => result.last_password_change = Some(t.unwrap_or(0)),
                Err(e) => try_db("lastauth", Err(e)),
            }
        }
        if db_ok.get() {
            let entry = crate::db::auth::LastAuth {
                user: &user,
                domain,
                service: &lastauth_service(self.service),
                remote_ip: &ip,
                quota: maildir_usage(&maildir),
                gecos: &String::from_utf8_lossy(&pw.gecos),
                when: self.now,
            };
            try_db("lastauth", db.set_lastauth(&entry));
        }
        let address = self.account.address();
        if let Some(postauth) = self
            .env
            .get("POSTAUTH")
            .filter(|p| crate::chain::is_executable(p))
        {
            let status = self.run_helper(postauth, &address, &home, warn);
            if status != 0 {
                result.status = status;
                return result;
            }
        }
        let flag = self
            .env
            .get("MIGRATEFLAG")
            .map_or_else(|| OsString::from("Qmail.txt"), |f| f.to_owned());
        let migrate = self.env.get("MIGRATEUSER").map_or_else(
            || OsString::from("/usr/local/bin/migrateuser"),
            |m| m.to_owned(),
        );
        if home.join(&flag).symlink_metadata().is_err() && crate::chain::is_executable(&migrate) {
            let status = self.run_helper(&migrate, &address, &home, warn);
            if status != 0 {
                result.status = status;
            }
        }
        result
    }

    /// Runs POSTAUTH or MIGRATEUSER as `program user@domain home` with PWSTRUCT set;
    /// its exit status (-1 when it could not run or was killed).
    fn run_helper(
        &self,
        program: &std::ffi::OsStr,
        address: &str,
        home: &Path,
        warn: Warn<'_>,
    ) -> i32 {
        let mut env = self.child_env.clone();
        env.set(
            "PWSTRUCT",
            pwstruct_without_secret(&self.account.pw, address),
        );
        let status = crate::chain::run(
            program,
            &[std::ffi::OsStr::new(address), home.as_os_str()],
            &env,
        );
        let code = match &status {
            Ok(st) => st.code().unwrap_or(-1),
            Err(_) => -1,
        };
        if code != 0 {
            let how = match status {
                Ok(st) => st.to_string(),
                Err(e) => e.to_string(),
            };
            warn(&format!(
                "Login_Tasks: {} {address} {}: {how}",
                program.to_string_lossy(),
                home.display()
            ));
        }
        code
    }
}

/// The PWSTRUCT record C exported to POSTAUTH and MIGRATEUSER, with `x` in place of
/// the password field: C put the hash there, or the SCRAM value with its clear text.
pub fn pwstruct_without_secret(pw: &PwStruct, address: &str) -> OsString {
    let mut v = format!("{address}:x:{}:{}:", pw.uid, pw.gid).into_bytes();
    v.extend_from_slice(&pw.gecos);
    v.push(b':');
    v.extend_from_slice(&pw.dir);
    v.push(b':');
    v.extend_from_slice(&pw.shell);
    v.push(b':');
    v.push(if pw.inactive { b'1' } else { b'0' });
    OsString::from_vec(v)
}

/// courier's authmod_fail_completely: the login program (`AUTHUSER`) again, with the
/// arguments it stored in `AUTHARGC` / `AUTHARGV0..`; it then says "login failed" and
/// asks again. `None` when those variables are missing or broken.
pub fn login_program(env: &crate::config::Env) -> Option<(OsString, Vec<OsString>)> {
    let argc: usize = env.get("AUTHARGC")?.to_str()?.trim().parse().ok()?;
    if argc == 0 {
        return None;
    }
    let argv = (0..argc)
        .map(|i| env.get(&format!("AUTHARGV{i}")).map(|v| v.to_owned()))
        .collect::<Option<Vec<_>>>()?;
    let user = env.get("AUTHUSER")?.to_owned();
    Some((user, argv))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(data: &[u8]) -> Result<Record, RecordError> {
        parse_record(data)
    }

    #[test]
    fn login_records() {
        let r = rec(b"imap\nlogin\njoe@example.com\nsecret\n").unwrap();
        assert_eq!(r.service, b"imap");
        assert_eq!(r.kind, AuthType::Login(Method::Login));
        assert_eq!(r.login, b"joe@example.com");
        assert_eq!(r.response, b"secret");
        assert!(r.challenge.is_empty());
        // No final newline.
        let r = rec(b"pop3\nplain\njoe\nsecret").unwrap();
        assert_eq!(r.kind, AuthType::Login(Method::Plain));
        assert_eq!(r.response, b"secret");
        // Empty fourth line: the fifth is the password.
        let r = rec(b"imap\nlogin\njoe\n\nsecret\n").unwrap();
        assert_eq!(r.response, b"secret");
        // Unknown types are passwords with method 0.
        let r = rec(b"imap\ndigest-md5\njoe\nsecret\n").unwrap();
        assert_eq!(r.kind, AuthType::Login(Method::Unspecified));
        assert_eq!(
            rec(b"imap\npass\njoe\nold\nnew\n").unwrap().kind,
            AuthType::PasswordChange
        );
        // Exact, lower-case names only.
        assert_eq!(
            AuthType::from_name(b"LOGIN"),
            AuthType::Login(Method::Unspecified)
        );
    }

    #[test]
    fn short_records() {
        for bad in [
            &b""[..],
            b"imap",
            b"imap\n",
            b"imap\nlogin",
            b"imap\nlogin\n",
            b"imap\nlogin\njoe",
            b"imap\nlogin\njoe\n",
        ] {
            assert_eq!(rec(bad), Err(RecordError::TooShort), "{bad:?}");
        }
        // A third line followed by anything is enough.
        assert_eq!(rec(b"imap\nlogin\njoe\nx").unwrap().response, b"x");
    }

    #[test]
    fn cram_records() {
        // RFC 2195: challenge and "tim <digest>".
        let challenge = b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
        let reply = b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw";
        let data = [&b"imap\ncram-md5\n"[..], challenge, b"\n", reply, b"\n"].concat();
        let r = rec(&data).unwrap();
        assert_eq!(r.kind, AuthType::Login(Method::CramMd5));
        assert_eq!(r.challenge, b"<1896.697170952@postoffice.reston.mci.net>");
        assert_eq!(r.login, b"tim");
        assert_eq!(r.response, b"b913a602c7eda7a495b4e6e7334d3890");
        let a = r.attempt();
        assert_eq!(a.challenge, &r.challenge[..]);
        // Bad base64 in either line.
        let bad = [&b"imap\ncram-md5\n"[..], b"PDE4=OTY\n", reply, b"\n"].concat();
        assert_eq!(rec(&bad), Err(RecordError::BadBase64));
        let bad = [&b"imap\ncram-sha1\n"[..], challenge, b"\nabc\n"].concat();
        assert_eq!(rec(&bad), Err(RecordError::BadBase64));
        // A reply without a blank: no response.
        let data = [&b"imap\ncram-sha256\n"[..], challenge, b"\ndGlt\n"].concat();
        let r = rec(&data).unwrap();
        assert_eq!(r.login, b"tim");
        assert!(r.response.is_empty());
    }

    #[test]
    fn base64_strict() {
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert_eq!(base64_decode(b"Zg==").unwrap(), b"f");
        assert_eq!(base64_decode(b"Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode(b"Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode(b"Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode(b"+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        for bad in [
            &b"Zg="[..],
            b"Zg=a",
            b"Z===",
            b"Zg==Zg==",
            b"Zm9v\n",
            b"Zm 9",
        ] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn service_classes() {
        let m = ServiceMap::default();
        assert_eq!(m.class(b"imap"), Some(ServiceClass::Imap));
        assert_eq!(m.class(b"IMAPS"), Some(ServiceClass::Imap));
        assert_eq!(m.class(b"pop3s"), Some(ServiceClass::Pop3));
        assert_eq!(m.class(b"webmail"), Some(ServiceClass::Webmail));
        assert_eq!(m.class(b"sieve"), None);
        let m = ServiceMap::parse(Some("sieve=imap:imaps=pop3:WebM=webmail")).unwrap();
        assert_eq!(m.class(b"sieve"), Some(ServiceClass::Imap));
        assert_eq!(m.class(b"imaps"), Some(ServiceClass::Pop3));
        assert_eq!(m.class(b"webm"), Some(ServiceClass::Webmail));
        assert!(ServiceMap::parse(Some("sieve=smtp")).is_err());
        assert!(ServiceMap::parse(Some("sieve")).is_err());
        assert!(ServiceMap::parse(Some("=imap")).is_err());
        assert_eq!(ServiceMap::parse(Some("")).unwrap(), ServiceMap::default());
        assert_eq!(ServiceClass::Imap.closing_flag(), gid::NO_IMAP);
        assert_eq!(ServiceClass::Pop3.closing_flag(), gid::NO_POP);
        assert_eq!(ServiceClass::Webmail.closing_flag(), gid::NO_WEBMAIL);
    }

    #[test]
    fn quota_strings() {
        assert_eq!(maildir_quota(b"NOQUOTA").as_deref(), Some("0S,0C"));
        assert_eq!(maildir_quota(b"NOQUOTA,100").as_deref(), Some("0S,100C"));
        assert_eq!(maildir_quota(b"5242880").as_deref(), Some("5242880S,0C"));
        assert_eq!(maildir_quota(b"10M").as_deref(), Some("10485760S,0C"));
        assert_eq!(maildir_quota(b"2k,50").as_deref(), Some("2048S,50C"));
        assert_eq!(maildir_quota(b"1g").as_deref(), Some("1073741824S,0C"));
        // The forms IndiMail's own tools store.
        assert_eq!(maildir_quota(b"5242880S").as_deref(), Some("5242880S,0C"));
        assert_eq!(
            maildir_quota(b"5242880S,1000C").as_deref(),
            Some("5242880S,1000C")
        );
        assert_eq!(
            maildir_quota(b"5242880,1000").as_deref(),
            Some("5242880S,1000C")
        );
        assert_eq!(maildir_quota(b"NOQUOTA,25C").as_deref(), Some("0S,25C"));
        assert_eq!(maildir_quota(b"0S").as_deref(), Some("0S,0C"));
        // Empty parts are 0, as strtoll reads them.
        assert_eq!(maildir_quota(b"").as_deref(), Some("0S,0C"));
        assert_eq!(maildir_quota(b"100S,").as_deref(), Some("100S,0C"));
        assert_eq!(
            maildir_quota(b"9223372036854775807S").as_deref(),
            Some("9223372036854775807S,0C")
        );
        for bad in [
            &b"5242880SS"[..],
            b"5242880kS",
            b"100S,10CC",
            b"100S,10S",
            b"9223372036854775808",
            b"9223372036854775807k",
            &b"abc"[..],
            b"10x",
            b"-5",
            b"10M,x",
            b"99999999999999999999",
            b"99999999999G",
        ] {
            assert_eq!(maildir_quota(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn nologin_files() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path();
        assert!(!login_forbidden(c, b"imap", b"example.com", b"Joe"));
        fs::create_dir_all(c.join("example.com/pop3")).unwrap();
        fs::write(c.join("example.com/pop3/nologin"), "").unwrap();
        assert!(login_forbidden(c, b"pop3", b"example.com", b"Joe"));
        assert!(!login_forbidden(c, b"imap", b"example.com", b"Joe"));
        fs::create_dir_all(c.join("staff/imap")).unwrap();
        fs::write(c.join("staff/imap/nologin"), "").unwrap();
        assert!(login_forbidden(c, b"imap", b"example.com", b"staff"));
        // gecos is no path.
        fs::create_dir_all(c.join("x/imap")).unwrap();
        assert!(!login_forbidden(c, b"imap", b"example.com", b"../staff"));
        assert!(!login_forbidden(c, b"../staff/imap", b"x", b""));
        assert!(!login_forbidden(c, b"imap", b"..", b"."));
    }

    #[test]
    fn maildir_made_and_measured() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("example.com/joe");
        make_maildir(&home, "example.com").unwrap();
        for sub in ["cur", "new", "tmp"] {
            assert!(home.join("Maildir").join(sub).is_dir());
        }
        assert_eq!(
            fs::read_to_string(home.join("Maildir/domain")).unwrap(),
            "example.com\n"
        );
        assert_eq!(
            fs::metadata(home.join("Maildir/BulkMail")).unwrap().len(),
            0
        );
        let md = home.join("Maildir");
        assert_eq!(maildir_usage(&md), 0);
        fs::write(md.join("new/1.x"), vec![0u8; 100]).unwrap();
        fs::write(md.join("cur/2.x"), vec![0u8; 50]).unwrap();
        assert_eq!(maildir_usage(&md), 150);
        fs::write(md.join("maildirsize"), "1000S,10C\n300 2\n-100 -1\n").unwrap();
        assert_eq!(maildir_usage(&md), 200);
    }

    #[test]
    fn lookup_addresses() {
        assert_eq!(lookup_address(b"Joe@Example.COM", None), b"joe@example.com");
        assert_eq!(lookup_address(b"joe%example.com", None), b"joe@example.com");
        assert_eq!(
            lookup_address(b"joe", Some("Example.com")),
            b"joe@example.com"
        );
        assert_eq!(lookup_address(b"joe", None), b"joe");
    }

    #[test]
    fn pwstruct_has_no_secret() {
        let pw = PwStruct {
            name: b"joe".to_vec(),
            domain: b"example.com".to_vec(),
            passwd: b"$6$salt$hash".to_vec(),
            uid: 1,
            gid: 2,
            gecos: b"Joe".to_vec(),
            dir: b"/home/joe".to_vec(),
            shell: b"NOQUOTA".to_vec(),
            inactive: true,
        };
        assert_eq!(
            pwstruct_without_secret(&pw, "joe@example.com"),
            "joe@example.com:x:1:2:Joe:/home/joe:NOQUOTA:1"
        );
    }

    #[test]
    fn login_program_from_authargv() {
        let env = crate::config::Env::from_pairs([
            ("AUTHUSER", "/usr/sbin/imaplogin"),
            ("AUTHARGC", "3"),
            ("AUTHARGV0", "imaplogin"),
            ("AUTHARGV1", "/x/authindi"),
            ("AUTHARGV2", "/usr/bin/imapd"),
        ]);
        let (user, argv) = login_program(&env).unwrap();
        assert_eq!(user, "/usr/sbin/imaplogin");
        assert_eq!(argv, ["imaplogin", "/x/authindi", "/usr/bin/imapd"]);
        let env = crate::config::Env::from_pairs([
            ("AUTHUSER", "/x"),
            ("AUTHARGC", "2"),
            ("AUTHARGV0", "a"),
        ]);
        assert_eq!(login_program(&env), None);
        let env = crate::config::Env::from_pairs([("AUTHARGC", "0")]);
        assert_eq!(login_program(&env), None);
    }
}
