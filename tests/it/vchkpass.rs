//! vchkpass end to end: the real executable with fd 3 and fd 6, a real MariaDB, and
//! for QUERY_CACHE the real daemon. Password hashes and HMACs are made at test time by
//! openssl and mkpasswd, not by our code.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use indilookup::db::gid;

use crate::daemon::Daemon;
use crate::harness::Site;
use crate::lookups::populate;

const EXE: &str = env!("CARGO_BIN_EXE_indilookup");

/// What a run of an applet gave.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// What the applet wrote to fd 6.
    pub fd6: Vec<u8>,
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A descriptor above the range a child's fixed numbers use, close-on-exec.
fn high_fd(file: &File) -> i32 {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor we own; the copy is ours to close.
    let fd = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
    assert!(fd >= 100, "fcntl F_DUPFD_CLOEXEC failed");
    fd
}

/// How to start an applet.
pub struct Start<'a> {
    pub site: &'a Site,
    pub daemon: Option<&'a Daemon>,
    pub applet: &'a str,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The bytes on fd 3; `None` leaves fd 3 closed.
    pub input: Option<Vec<u8>>,
}

impl<'a> Start<'a> {
    pub fn new(site: &'a Site, applet: &'a str, args: &[&str], input: &[u8]) -> Start<'a> {
        Start {
            site,
            daemon: None,
            applet,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            input: Some(input.to_vec()),
        }
    }

    pub fn env(mut self, pairs: &[(&str, &str)]) -> Start<'a> {
        self.env
            .extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    pub fn daemon(mut self, d: &'a Daemon) -> Start<'a> {
        self.daemon = Some(d);
        self
    }

    pub fn run(self) -> Run {
        let mut cmd = Command::new(EXE);
        cmd.arg(self.applet).args(&self.args).env_clear();
        for (k, v) in self.site.env.iter() {
            cmd.env(k, v);
        }
        cmd.env("PATH", "/usr/bin:/bin");
        if let Some(d) = self.daemon {
            cmd.env("QUERY_CACHE", "1")
                .env("INFIFODIR", &d.fifodir)
                .env("FIFOTMPDIR", &d.replydir);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let input_fd = self.input.as_ref().map(|data| {
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(data).unwrap();
            f.seek(SeekFrom::Start(0)).unwrap();
            let fd = high_fd(&f);
            drop(f);
            fd
        });
        let mut fd6_file = tempfile::tempfile().unwrap();
        let fd6 = high_fd(&fd6_file);
        // SAFETY: only dup2/close, which are async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                match input_fd {
                    Some(fd) => {
                        if libc::dup2(fd, 3) == -1 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    None => {
                        libc::close(3);
                    }
                }
                if libc::dup2(fd6, 6) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.stdin(Stdio::null()).output().expect("start indilookup");
        // SAFETY: closing the copies made by high_fd, which nothing else uses.
        unsafe {
            if let Some(fd) = input_fd {
                libc::close(fd);
            }
            libc::close(fd6);
        }
        let mut written = Vec::new();
        fd6_file.seek(SeekFrom::Start(0)).unwrap();
        fd6_file.read_to_end(&mut written).unwrap();
        Run {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            fd6: written,
        }
    }
}

/// Variables for a run.
type Env<'a> = &'a [(&'a str, &'a str)];

/// `vchkpass ARGS` with `input` on fd 3.
fn vchkpass<'a>(site: &'a Site, input: &[u8], args: &[&str]) -> Start<'a> {
    Start::new(site, "vchkpass", args, input)
}

// ---------------------------------------------------------------------------
// Hashes and HMACs from independent tools

fn tool(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Option<String> {
    let mut child = testkit::Guarded::spawn(
        Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .ok()?;
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    let out = child.wait_with_output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `openssl passwd -1|-5|-6 PASSWORD`.
pub fn openssl_hash(flag: &str, password: &str) -> String {
    tool("openssl", &["passwd", flag, password], None).expect("openssl passwd")
}

/// A hash from mkpasswd (whois package) when it is installed, else the given one,
/// made by `mkpasswd -m METHOD PASSWORD` when this test was written.
fn mkpasswd_hash(method: &str, password: &str, made_earlier: &str) -> String {
    tool("mkpasswd", &["-m", method, password], None).unwrap_or_else(|| made_earlier.to_string())
}

/// Lowercase hex HMAC by `openssl dgst -ALG -hmac KEY`.
pub fn hmac_hex(alg: &str, key: &str, message: &str) -> String {
    let out = tool(
        "openssl",
        &["dgst", &format!("-{alg}"), "-hmac", key, "-r"],
        Some(message.as_bytes()),
    )
    .expect("openssl dgst -hmac");
    out.split_whitespace().next().unwrap().to_string()
}

// ---------------------------------------------------------------------------
// The test site

pub const RFC2195_CHALLENGE: &str = "<1896.697170952@postoffice.reston.mci.net>";
pub const RFC2195_RESPONSE: &str = "b913a602c7eda7a495b4e6e7334d3890";
const RFC2831_RESPONSE: &str = "d388dad90d4bbd760a152321f2143af7";
const RFC2831_RSPAUTH: &[u8] = b"ea40f60335c427b5527b84dbabcdfffd";
const RFC2831_DIRECTIVES: &str = "digest-uri=imap/elwood.innosoft.com\nnc=00000001\n\
    nonce=OA6MG9tEQGm2hh\ncnonce=OA6MHXh6VqTrRk\nqop=auth\nrealm=elwood.innosoft.com";

/// Users with real hashes, on top of lookups::populate's site. Returns the password
/// of every password user.
pub fn auth_site() -> Site {
    let site = Site::new();
    populate(&site);
    add_auth_users(&site);
    site
}

pub fn set_scram(site: &Site, table: &str, user: &str, domain: &str, scram: &str) {
    site.sql_params(
        &format!("UPDATE {table} SET scram = ? WHERE pw_name = ? AND pw_domain = ?"),
        (scram, user, domain),
    );
}

/// How a test user's password is stored.
enum Stored {
    /// `openssl passwd FLAG PASSWORD`.
    Openssl(&'static str, &'static str),
    /// `mkpasswd -m METHOD PASSWORD`, or the hash it made when this test was written.
    Mkpasswd(&'static str, &'static str, &'static str),
    /// As it stands.
    Text(&'static str),
}

/// A user of `add_auth_users`: table, name, domain, password, gid flags and
/// the scram column (None: left empty).
type AuthUser = (
    &'static str,
    &'static str,
    &'static str,
    Stored,
    u32,
    Option<&'static str>,
);

#[rustfmt::skip]
const AUTH_USERS: &[AuthUser] = &[
    ("indimail", "alice", "example.com", Stored::Openssl("-6", "alice pw 6"), 0, None),
    ("indimail", "md5u", "example.com", Stored::Openssl("-1", "md5 pw"), 0, None),
    ("indimail", "sha256u", "example.com", Stored::Openssl("-5", "sha256 pw"), 0, None),
    ("indimail", "desu", "example.com", Stored::Mkpasswd("descrypt", "despw", "3TNIMiTym.ZgQ"), 0, None),
    ("indimail", "bcryptu", "example.com", Stored::Mkpasswd("bcrypt", "bcrypt pw",
        "$2b$05$ck87WND4Fk2RR4UsO6GqH.y4YY8BwWpTJUssDL4LPHgm.FEPnRcZ2"), 0, None),
    ("indimail", "yesu", "example.com", Stored::Mkpasswd("yescrypt", "yes pw",
        "$y$j9T$ThCIJ2i8mN3KMs/haKT/t0$tA03ppEevdCCNofleDGfbYrdbqaII8ibLJzRVNimWZB"), 0, None),
    // CRAM-enabled: {CRAM} clear text in the scram column.
    ("indimail", "tim", "example.com", Stored::Openssl("-5", "tim login pw"), 0,
        Some("{CRAM}tanstaaftanstaaf")),
    ("indimail", "chris", "elwood.innosoft.com", Stored::Openssl("-5", "chris login pw"), 0,
        Some("{CRAM}secret")),
    // SCRAM with the clear text (8 items).
    ("indimail", "scramu", "example.com", Stored::Openssl("-6", "scram login pw"), 0,
        Some("{SCRAM-SHA-256}4096,c2FsdA==,c3RvcmVk,c2VydmVy:abcd:scram clear")),
    // A SCRAM value that does not parse.
    ("indimail", "badscram", "example.com", Stored::Openssl("-6", "bad pw"), 0,
        Some("{SCRAM-SHA-256}4096,salt,stored")),
    // Legacy clear-text passwords (IndiMail's -e option).
    ("indimail", "legacy", "example.com", Stored::Text("tanstaaftanstaaf"), 0, None),
    ("indimail", "chris", "example.com", Stored::Text("secret"), 0, None),
    // Only a hash: CRAM needs ENABLE_CRAM (and the hash as the key).
    ("indimail", "hashonly", "example.com", Stored::Text("$1$abcdefgh$YiSEwLIXhWSr7ZqQKy6.p/"), 0, None),
    ("indimail", "nosmtp", "example.com", Stored::Openssl("-6", "nosmtp pw"), gid::NO_SMTP, None),
    ("indimail", "norelay", "example.com", Stored::Openssl("-6", "norelay pw"), gid::NO_RELAY, None),
    ("indibak", "sleepy", "example.com", Stored::Openssl("-6", "sleepy pw"), 0, None),
    ("indimail", "olddom", "expired.org", Stored::Openssl("-6", "olddom pw"), 0, None),
    ("indimail", "oldpw", "example.org", Stored::Openssl("-6", "oldpw pw"), 0, None),
];

pub fn add_auth_users(site: &Site) {
    for (table, user, domain, stored, flags, scram) in AUTH_USERS {
        let passwd = match stored {
            Stored::Openssl(flag, pw) => openssl_hash(flag, pw),
            Stored::Mkpasswd(method, pw, made_earlier) => mkpasswd_hash(method, pw, made_earlier),
            Stored::Text(text) => text.to_string(),
        };
        site.add_user(table, user, domain, &passwd, *flags);
        if let Some(scram) = scram {
            set_scram(site, table, user, domain, scram);
        }
    }
    site.sql(
        "INSERT INTO vlimits (domain, domain_expiry, passwd_expiry) VALUES \
         ('expired.org', UNIX_TIMESTAMP() - 3600, -1), \
         ('oldpw@example.org', -1, UNIX_TIMESTAMP() - 60), \
         ('example.org', UNIX_TIMESTAMP() + 86400, UNIX_TIMESTAMP() + 86400)",
    );
}

/// `login\0field2\0field3\0method\0`.
pub fn fd3(login: &str, field2: &str, field3: &str, method: u8) -> Vec<u8> {
    [
        login.as_bytes(),
        b"\0",
        field2.as_bytes(),
        b"\0",
        field3.as_bytes(),
        b"\0",
        &[method],
        b"\0",
    ]
    .concat()
}

pub fn password(login: &str, pw: &str, method: u8) -> Vec<u8> {
    fd3(login, pw, "", method)
}

/// A next module that records what it got and exits 42: fd 3 to `fd3`, its
/// arguments (one per line) to `args`, its environment to `env`.
pub struct Recorder {
    pub dir: tempfile::TempDir,
}

impl Recorder {
    pub fn new() -> Recorder {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("next");
        fs::write(
            &script,
            "#!/bin/sh\nd=$(dirname \"$0\")\ncat <&3 > \"$d/fd3\"\nprintf '%s\\n' \"$0\" \"$@\" > \"$d/args\"\n\
             env > \"$d/env\"\npwd > \"$d/cwd\"\nexit 42\n",
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        Recorder { dir }
    }

    pub fn path(&self) -> String {
        self.dir.path().join("next").to_string_lossy().into_owned()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ran(&self) -> bool {
        self.file("args").exists()
    }

    pub fn env_var(&self, name: &str) -> Option<String> {
        let env = fs::read_to_string(self.file("env")).ok()?;
        let prefix = format!("{name}=");
        env.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
    }

    pub fn args(&self) -> Vec<String> {
        fs::read_to_string(self.file("args"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `cmp` of what the module got on fd 3 with `expected`.
    pub fn got_exactly(&self, expected: &[u8]) -> bool {
        let want = self.file("expected");
        fs::write(&want, expected).unwrap();
        Command::new("cmp")
            .arg(&want)
            .arg(self.file("fd3"))
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    pub fn reset(&self) {
        for f in ["fd3", "args", "env", "cwd", "expected"] {
            let _ = fs::remove_file(self.file(f));
        }
    }
}

// ---------------------------------------------------------------------------
// The tests

/// The LOGIN/PLAIN/method-0 password cases: (login, right password).
fn password_users() -> Vec<(&'static str, &'static str)> {
    vec![
        ("alice@example.com", "alice pw 6"),
        ("md5u@example.com", "md5 pw"),
        ("sha256u@example.com", "sha256 pw"),
        ("desu@example.com", "despw"),
        ("bcryptu@example.com", "bcrypt pw"),
        ("yesu@example.com", "yes pw"),
        ("tim@example.com", "tim login pw"),
        ("scramu@example.com", "scram login pw"),
        // Default domain, alias domain, and the other separators.
        ("alice", "alice pw 6"),
        ("ALICE@Example.COM", "alice pw 6"),
        ("alice@alias.com", "alice pw 6"),
        ("alice%example.com", "alice pw 6"),
    ]
}

#[test]
fn passwords_of_every_scheme_right_and_wrong() {
    let site = auth_site();
    for (login, pw) in password_users() {
        for method in [0u8, 1, 2] {
            let r = vchkpass(&site, &password(login, pw, method), &["/bin/false"]).run();
            assert_eq!(r.code, Some(0), "{login} method {method}: {r:?}");
            assert!(r.stdout.is_empty() && r.stderr.is_empty(), "{r:?}");
            let wrong = format!("{pw}x");
            let r = vchkpass(&site, &password(login, &wrong, method), &["/bin/false"]).run();
            assert_eq!(r.code, Some(1), "{login} wrong, method {method}: {r:?}");
            assert!(r.stdout.is_empty(), "{r:?}");
        }
    }
    // The clear text of a {CRAM} or SCRAM value is no LOGIN password.
    let r = vchkpass(
        &site,
        &password("tim@example.com", "tanstaaftanstaaf", 1),
        &["/bin/false"],
    )
    .run();
    assert_eq!(r.code, Some(1));
}

#[test]
fn cram_methods_rfc2195_and_every_hmac() {
    let site = auth_site();
    // RFC 2195 as sent by qmail-smtpd.
    let input = fd3("tim@example.com", RFC2195_CHALLENGE, RFC2195_RESPONSE, 3);
    let r = vchkpass(&site, &input, &["/bin/false"]).run();
    assert_eq!(r.code, Some(0), "{r:?}");
    // Every CRAM method, its HMAC from openssl, for a {CRAM} and a SCRAM user.
    let algs = [
        (3u8, "md5"),
        (4, "sha1"),
        (5, "sha224"),
        (6, "sha256"),
        (7, "sha384"),
        (8, "sha512"),
        (9, "ripemd160"),
    ];
    let challenge = "<4242.1700000000@mail.example.com>";
    for (login, secret) in [
        ("tim@example.com", "tanstaaftanstaaf"),
        ("scramu@example.com", "scram clear"),
    ] {
        for (method, alg) in algs {
            let mac = hmac_hex(alg, secret, challenge);
            let r = vchkpass(&site, &fd3(login, challenge, &mac, method), &["/bin/false"]).run();
            assert_eq!(r.code, Some(0), "{login} {alg}: {r:?}");
            // Upper-case hex is the same digest.
            let upper = mac.to_ascii_uppercase();
            let r = vchkpass(
                &site,
                &fd3(login, challenge, &upper, method),
                &["/bin/false"],
            )
            .run();
            assert_eq!(r.code, Some(0), "{login} {alg} upper case: {r:?}");
            // Method 0 with a challenge is keyed as the CRAM methods are: with the
            // stored clear text (IndiMail keyed it with the crypt hash).
            let r = vchkpass(&site, &fd3(login, challenge, &mac, 0), &["/bin/false"]).run();
            assert_eq!(r.code, Some(0), "{login} {alg} method 0: {r:?}");
            // Wrong key, and the right MAC under another method number.
            let bad = hmac_hex(alg, "not the secret", challenge);
            let r = vchkpass(&site, &fd3(login, challenge, &bad, method), &["/bin/false"]).run();
            assert_eq!(r.code, Some(1), "{login} {alg} wrong: {r:?}");
            let other = if method == 3 { 4 } else { 3 };
            let r = vchkpass(&site, &fd3(login, challenge, &mac, other), &["/bin/false"]).run();
            assert_eq!(r.code, Some(1), "{login} {alg} as method {other}: {r:?}");
        }
    }
    // A legacy clear-text password (a plain stored value) is the secret of method 0,
    // which tries every variant (unless switched off), only with ENABLE_CRAM: a plain
    // value may as well be a hash.
    for (_, alg) in algs {
        let mac = hmac_hex(alg, "tanstaaftanstaaf", challenge);
        let input = fd3("legacy@example.com", challenge, &mac, 0);
        let r = vchkpass(&site, &input, &["/bin/false"]).run();
        assert_eq!(r.code, Some(1), "legacy {alg} method 0: {r:?}");
        let r = vchkpass(&site, &input, &["/bin/false"])
            .env(&[("ENABLE_CRAM", "")])
            .run();
        assert_eq!(r.code, Some(0), "legacy {alg} method 0, ENABLE_CRAM: {r:?}");
    }
}

#[test]
fn digest_md5_rfc2831_realm_and_rspauth_on_fd6() {
    let site = auth_site();
    // qmail-smtpd's layout: the bare user name, the client's response, the directives.
    // The user is found under the realm as domain.
    let input = fd3("chris", RFC2831_RESPONSE, RFC2831_DIRECTIVES, 10);
    let r = vchkpass(&site, &input, &["/bin/false"]).run();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.fd6, RFC2831_RSPAUTH);
    assert!(r.stdout.is_empty());
    // A wrong response: the next module gets the directives with their newlines.
    let rec = Recorder::new();
    let bad = fd3(
        "chris",
        "d388dad90d4bbd760a152321f2143af8",
        RFC2831_DIRECTIVES,
        10,
    );
    let r = vchkpass(&site, &bad, &[&rec.path()]).run();
    assert_eq!(r.code, Some(42), "{r:?}");
    assert!(r.fd6.is_empty());
    assert!(rec.got_exactly(&bad));
    // DISABLE_DIGEST_MD5 only matters for method 0.
    let r = vchkpass(&site, &input, &["/bin/false"])
        .env(&[("DISABLE_DIGEST_MD5", "")])
        .run();
    assert_eq!(r.code, Some(0));
    // Method 0 tries DIGEST-MD5 too. A plain stored value is a challenge key only
    // with ENABLE_CRAM, as for method 10, so a legacy clear-text password
    // (chris@example.com, the default domain: the realm is used only for method 10)
    // needs it.
    let any = fd3("chris", RFC2831_RESPONSE, RFC2831_DIRECTIVES, 0);
    let r = vchkpass(&site, &any, &["/bin/false"]).run();
    assert_eq!(r.code, Some(1), "no ENABLE_CRAM: {r:?}");
    let r = vchkpass(&site, &any, &["/bin/false"])
        .env(&[("ENABLE_CRAM", "")])
        .run();
    assert_eq!(r.code, Some(0), "method 0 tries DIGEST-MD5: {r:?}");
    assert_eq!(r.fd6, RFC2831_RSPAUTH);
    let r = vchkpass(&site, &any, &["/bin/false"])
        .env(&[("ENABLE_CRAM", ""), ("DISABLE_DIGEST_MD5", "1")])
        .run();
    assert_eq!(r.code, Some(1));
}

#[test]
fn enable_cram_and_the_disable_switches() {
    let site = auth_site();
    let hash = "$1$abcdefgh$YiSEwLIXhWSr7ZqQKy6.p/";
    let mac = hmac_hex("md5", hash, RFC2195_CHALLENGE);
    let hashonly = fd3("hashonly@example.com", RFC2195_CHALLENGE, &mac, 3);
    let any = fd3("tim@example.com", RFC2195_CHALLENGE, RFC2195_RESPONSE, 0);
    let exact = fd3("tim@example.com", RFC2195_CHALLENGE, RFC2195_RESPONSE, 3);
    let alice = password("alice@example.com", "alice pw 6", 1);
    // What, fd 3, environment, exit status.
    #[rustfmt::skip]
    let cases: [(&str, &[u8], Env, i32); 5] = [
        // No clear text stored: CRAM only with ENABLE_CRAM, keyed with the hash.
        ("hash-keyed CRAM", &hashonly, &[], 1),
        ("hash-keyed CRAM, ENABLE_CRAM", &hashonly, &[("ENABLE_CRAM", "")], 0),
        // DISABLE_CRAM_MD5 takes MD5 out of method 0's set, not out of method 3.
        ("method 0, DISABLE_CRAM_MD5", &any, &[("DISABLE_CRAM_MD5", "")], 1),
        ("method 3, DISABLE_CRAM_MD5", &exact, &[("DISABLE_CRAM_MD5", "")], 0),
        // DISABLE_CRYPT: no password matches.
        ("password, DISABLE_CRYPT", &alice, &[("DISABLE_CRYPT", "")], 1),
    ];
    for (what, input, env, code) in cases {
        let r = vchkpass(&site, input, &["/bin/false"]).env(env).run();
        assert_eq!(r.code, Some(code), "{what}: {r:?}");
    }
}

/// Whoever can read a stored hash (any member of the FIFO group can ask for a
/// PWSTRUCT) must not log in with it: an HMAC keyed with the hash is refused, with
/// an explicit CRAM method and with method 0, unless ENABLE_CRAM is set.
#[test]
fn the_stored_hash_is_no_password_without_enable_cram() {
    let site = auth_site();
    let hash = crate::authindi::stored_hash(&site, "alice");
    assert!(hash.starts_with("$6$"), "{hash}");
    let challenge = "<12345.1700000000@mail.example.com>";
    for (alg, method) in [("md5", 0), ("md5", 3), ("sha256", 6), ("sha1", 0)] {
        let mac = hmac_hex(alg, &hash, challenge);
        let input = fd3("alice@example.com", challenge, &mac, method);
        let r = vchkpass(&site, &input, &["/bin/false"]).run();
        assert_eq!(r.code, Some(1), "{alg} method {method}: {r:?}");
        let r = vchkpass(&site, &input, &["/bin/false"])
            .env(&[("ENABLE_CRAM", "1")])
            .run();
        assert_eq!(
            r.code,
            Some(0),
            "{alg} method {method} with ENABLE_CRAM: {r:?}"
        );
    }
    // The password itself still works, without a challenge.
    let r = vchkpass(
        &site,
        &password("alice@example.com", "alice pw 6", 0),
        &["/bin/false"],
    )
    .run();
    assert_eq!(r.code, Some(0), "{r:?}");
}

#[test]
fn account_state_only_after_the_password() {
    let site = auth_site();
    let run =
        |input: &[u8], env: &[(&str, &str)]| vchkpass(&site, input, &["/bin/false"]).env(env).run();
    // NO_SMTP: told only to the owner of the password.
    let r = run(&password("nosmtp@example.com", "nosmtp pw", 1), &[]);
    assert_eq!(r.code, Some(1));
    assert_eq!(
        r.stdout_text(),
        "553-Sorry, this account cannot use SMTP (#5.7.1)\r\n"
    );
    let r = run(&password("nosmtp@example.com", "guess", 1), &[]);
    assert_eq!((r.code, r.stdout.len()), (Some(1), 0), "{r:?}");
    // Inactive.
    let r = run(&password("sleepy@example.com", "sleepy pw", 1), &[]);
    assert_eq!(r.code, Some(1));
    assert_eq!(
        r.stdout_text(),
        "553-Sorry, this account is inactive (#5.7.1)\r\n"
    );
    let r = run(&password("sleepy@example.com", "guess", 1), &[]);
    assert_eq!((r.code, r.stdout.len()), (Some(1), 0));
    let r = run(
        &password("sleepy@example.com", "sleepy pw", 1),
        &[("ALLOW_INACTIVE", "")],
    );
    assert_eq!((r.code, r.stdout.len()), (Some(0), 0), "{r:?}");
    // NO_RELAY: authenticated, exit 3.
    let r = run(&password("norelay@example.com", "norelay pw", 2), &[]);
    assert_eq!((r.code, r.stdout.len()), (Some(3), 0));
    let r = run(&password("norelay@example.com", "guess", 2), &[]);
    assert_eq!(r.code, Some(1));
    // A SCRAM value that does not parse: C said "unable to get secrets" to anyone;
    // now it is a failure like any other, and a log line for the administrator.
    let r = run(&password("badscram@example.com", "bad pw", 1), &[]);
    assert_eq!((r.code, r.stdout.len()), (Some(1), 0), "{r:?}");
    assert!(r.stderr.contains("unable to get secrets"), "{}", r.stderr);
    assert!(!r.stderr.contains("bad pw"));
}

#[test]
fn domain_limits_expiry_in_both_modes() {
    let site = auth_site();
    let d = Daemon::start(&site, &[], &[]);
    for daemon in [None, Some(&d)] {
        let run = |login: &str, pw: &str, env: &[(&str, &str)]| {
            let mut s = vchkpass(&site, &password(login, pw, 1), &["/bin/false"]).env(env);
            if let Some(d) = daemon {
                s = s.daemon(d);
            }
            s.run()
        };
        let limits = [("DOMAIN_LIMITS", "")];
        let r = run("olddom@expired.org", "olddom pw", &limits);
        assert_eq!(r.code, Some(1), "{daemon:?}", daemon = daemon.is_some());
        assert_eq!(
            r.stdout_text(),
            "553-Sorry, your domain has expired (#5.7.1)\r\n"
        );
        let r = run("oldpw@example.org", "oldpw pw", &limits);
        assert_eq!(
            r.stdout_text(),
            "553-Sorry, your password has expired (#5.7.1)\r\n"
        );
        assert_eq!(r.code, Some(1));
        // Wrong password: nothing told.
        let r = run("olddom@expired.org", "guess", &limits);
        assert_eq!((r.code, r.stdout.len()), (Some(1), 0));
        // Limits in the future, and no limits row at all.
        let r = run("bob@example.org", "v", &limits);
        assert_eq!(r.code, Some(1), "bob's stored password is no hash");
        let r = run("alice@example.com", "alice pw 6", &limits);
        assert_eq!((r.code, r.stdout.len()), (Some(0), 0), "{r:?}");
        // Without DOMAIN_LIMITS nothing is checked.
        let r = run("olddom@expired.org", "olddom pw", &[]);
        assert_eq!(r.code, Some(0));
    }
    // The domain's disable_smtp flag becomes NO_SMTP (direct mode decides itself).
    site.sql("INSERT INTO vlimits (domain, disable_smtp) VALUES ('alias-free.net', 1)");
    site.add_user(
        "indimail",
        "flagged",
        "alias-free.net",
        &openssl_hash("-6", "fl pw"),
        0,
    );
    let r = vchkpass(
        &site,
        &password("flagged@alias-free.net", "fl pw", 1),
        &["/bin/false"],
    )
    .env(&[("DOMAIN_LIMITS", "")])
    .run();
    assert_eq!(
        r.stdout_text(),
        "553-Sorry, this account cannot use SMTP (#5.7.1)\r\n"
    );
    d.stop();
}

#[test]
fn unknown_user_and_wrong_password_look_alike() {
    let site = auth_site();
    let rec = Recorder::new();
    let mut seen = Vec::new();
    for input in [
        password("alice@example.com", "not it", 1),
        password("nobody@example.com", "not it", 1),
        password("alice@unknown.test", "not it", 1),
        password("nosmtp@example.com", "not it", 1),
        password("sleepy@example.com", "not it", 1),
        fd3("nobody@example.com", RFC2195_CHALLENGE, RFC2195_RESPONSE, 3),
        fd3(
            "hashonly@example.com",
            RFC2195_CHALLENGE,
            RFC2195_RESPONSE,
            3,
        ),
    ] {
        rec.reset();
        let r = vchkpass(&site, &input, &[&rec.path(), "arg1"]).run();
        assert!(rec.ran(), "{r:?}");
        assert!(rec.got_exactly(&input));
        seen.push((r.code, r.stdout, r.stderr, r.fd6));
    }
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
    assert_eq!(seen[0].0, Some(42));
}

#[test]
fn chain_gets_exactly_the_original_bytes() {
    let site = auth_site();
    let rec = Recorder::new();
    let cases = [
        password("alice@example.com", "wrong", 1),
        // No method byte, method byte without its NUL, XOAUTH2 and SCRAM numbers and
        // an undefined one: passed on as they are.
        b"alice@example.com\0wrong\0\0".to_vec(),
        b"alice@example.com\0wrong\0\0\x02".to_vec(),
        fd3("alice@example.com", "bearer-token", "", 17),
        fd3("alice@example.com", "alice pw 6", "", 12),
        fd3("alice@example.com", "alice pw 6", "", 200),
        // Empty login.
        password("", "x", 1),
        // Bytes that are no login.
        password("al\"ice@example.com", "x", 1),
        password("al\nice@example.com", "x", 1),
        // 512 bytes exactly.
        {
            let mut v = password("alice@example.com", "wrong", 1);
            let pad = 512 - v.len();
            v.splice(18..18, std::iter::repeat_n(b'w', pad));
            assert_eq!(v.len(), 512);
            v
        },
    ];
    for input in cases {
        rec.reset();
        let r = vchkpass(&site, &input, &[&rec.path(), "a b", "c"]).run();
        assert_eq!(r.code, Some(42), "{input:?}: {r:?}");
        assert!(rec.got_exactly(&input), "{input:?}");
        assert_eq!(rec.args()[1..], ["a b", "c"]);
        // HOME is unset for the next module.
        assert_eq!(rec.env_var("HOME"), None);
    }
    // The unsupported methods are named in the log.
    rec.reset();
    let r = vchkpass(
        &site,
        &fd3("alice@example.com", "tok", "", 17),
        &[&rec.path()],
    )
    .run();
    assert!(r.stderr.contains("XOAUTH2"), "{}", r.stderr);
    // Found by PATH search, as execvp does.
    let r = vchkpass(
        &site,
        &password("alice@example.com", "wrong", 1),
        &["false"],
    )
    .run();
    assert_eq!(r.code, Some(1));
    // A next module that cannot be run: temporary failure.
    let r = vchkpass(
        &site,
        &password("alice@example.com", "wrong", 1),
        &["/nonexistent/next"],
    )
    .run();
    assert_eq!(r.code, Some(111));
    // In libqmail's words, as C says it to the SMTP client.
    assert_eq!(
        r.stdout_text(),
        "454-exec: file does not exist (#4.3.0)\r\n",
        "{r:?}"
    );
    // DEBUG names the module.
    rec.reset();
    let r = vchkpass(
        &site,
        &password("alice@example.com", "wrong", 1),
        &[&rec.path()],
    )
    .env(&[("DEBUG", "")])
    .run();
    assert!(
        r.stderr
            .contains(&format!("executing authmodule [{}]", rec.path())),
        "{}",
        r.stderr
    );
}

#[test]
fn help_is_only_a_first_argument() {
    let site = auth_site();
    // Help on stderr, exit 100, fd 3 not read (closed here: reading it would
    // be a 454 read error and exit 111).
    for args in [&["--help"][..], &["--help", "/bin/true"]] {
        let mut s = vchkpass(&site, b"", args);
        s.input = None;
        let r = s.run();
        assert_eq!(r.code, Some(100), "{args:?}: {r:?}");
        assert!(
            r.stderr.starts_with("usage: vchkpass prog [args...]\n"),
            "{r:?}"
        );
        assert!(r.stderr.contains("See vchkpass(8)."), "{r:?}");
        assert!(r.stdout.is_empty(), "the SMTP client gets nothing: {r:?}");
    }
    // After the program everything is the program's, options or not.
    let rec = Recorder::new();
    let passed = ["--help", "-h", "--", "-x", "--version"];
    let mut args = vec![rec.path()];
    args.extend(passed.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let input = password("alice@example.com", "wrong", 1);
    let r = vchkpass(&site, &input, &args).run();
    assert_eq!(r.code, Some(42), "{r:?}");
    assert_eq!(rec.args()[1..], passed);
    assert!(rec.got_exactly(&input));
}

#[test]
fn malformed_input_is_exit_2() {
    let site = auth_site();
    let over = {
        let mut v = password("alice@example.com", "alice pw 6", 1);
        v.resize(513, b'x');
        v
    };
    for input in [
        b"".to_vec(),
        b"alice@example.com".to_vec(),
        b"alice@example.com\0".to_vec(),
        b"alice@example.com\0alice pw 6".to_vec(),
        b"alice@example.com\0alice pw 6\0".to_vec(),
        over,
        vec![b'a'; 5000],
    ] {
        let r = vchkpass(&site, &input, &["/bin/true"]).run();
        assert_eq!(r.code, Some(2), "{input:?}: {r:?}");
        assert!(r.stdout.is_empty());
    }
    // No program to chain to.
    let r = vchkpass(&site, &password("alice@example.com", "alice pw 6", 1), &[]).run();
    assert_eq!(r.code, Some(2));
    // fd 3 not open: a read error.
    let mut s = vchkpass(&site, b"", &["/bin/true"]);
    s.input = None;
    let r = s.run();
    assert_eq!(r.code, Some(111));
    assert_eq!(
        r.stdout_text(),
        "454-read error: file descriptor not open (#4.3.0)\r\n"
    );
    assert!(r
        .stderr
        .contains("vchkpass: read: file descriptor not open"));
}

#[test]
fn postauth_and_home() {
    let site = auth_site();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("postauth");
    fs::write(
        &script,
        "#!/bin/sh\nd=$(dirname \"$0\")\nprintf '%s\\n' \"$@\" > \"$d/args\"\necho \"$HOME\" > \"$d/home\"\n\
         if [ -e /proc/self/fd/3 ]; then echo open > \"$d/fd3\"; else echo closed > \"$d/fd3\"; fi\n\
         exit $(cat \"$d/status\")\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let post = script.to_string_lossy().into_owned();
    let set_status = |n: &str| fs::write(dir.path().join("status"), n).unwrap();
    let run = |login: &str, pw: &str| {
        vchkpass(&site, &password(login, pw, 1), &["/bin/false"])
            .env(&[("POSTAUTH", &post)])
            .run()
    };
    set_status("0");
    let r = run("alice", "alice pw 6");
    assert_eq!(r.code, Some(0), "{r:?}");
    // One argument, the login, whatever it holds; HOME is the user's.
    assert_eq!(
        fs::read_to_string(dir.path().join("args")).unwrap(),
        "alice\n"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("home")).unwrap(),
        "/home/mail/example.com/alice\n"
    );
    // The drained fd-3 pipe is not passed on.
    assert_eq!(
        fs::read_to_string(dir.path().join("fd3")).unwrap(),
        "closed\n"
    );
    // Its status is vchkpass's.
    set_status("5");
    assert_eq!(run("alice", "alice pw 6").code, Some(5));
    // NO_RELAY gives 3 when POSTAUTH succeeds, and does not hide its failure.
    set_status("0");
    assert_eq!(run("norelay@example.com", "norelay pw").code, Some(3));
    set_status("1");
    assert_eq!(run("norelay@example.com", "norelay pw").code, Some(1));
    // Not run for a wrong password.
    fs::remove_file(dir.path().join("args")).unwrap();
    assert_eq!(run("alice", "wrong").code, Some(1));
    assert!(!dir.path().join("args").exists());
    // A POSTAUTH that is not executable is ignored.
    let r = vchkpass(&site, &password("alice", "alice pw 6", 1), &["/bin/false"])
        .env(&[("POSTAUTH", "/nonexistent/postauth")])
        .run();
    assert_eq!(r.code, Some(0));
}

#[test]
fn native_mode_execs_on_success_only() {
    let site = auth_site();
    let rec = Recorder::new();
    for var in ["NATIVE_CHECKPASSWORD", "DOVECOT_VERSION"] {
        rec.reset();
        let r = vchkpass(
            &site,
            &password("alice@example.com", "alice pw 6", 0),
            &[&rec.path(), "x"],
        )
        .env(&[(var, "1"), ("EXTRA", "quota"), ("HOME", "/wrong")])
        .run();
        assert_eq!(r.code, Some(42), "{r:?}");
        assert_eq!(rec.args()[1..], ["x"]);
        assert_eq!(
            rec.env_var("HOME").as_deref(),
            Some("/home/mail/example.com/alice")
        );
        assert_eq!(rec.env_var("userdb_uid").as_deref(), Some("indimail"));
        assert_eq!(rec.env_var("userdb_gid").as_deref(), Some("indimail"));
        assert_eq!(
            rec.env_var("EXTRA").as_deref(),
            Some("userdb_uid userdb_gid quota")
        );
        // Failure: exit 1, nothing run, nothing said.
        for login in ["alice@example.com", "nobody@example.com"] {
            rec.reset();
            let r = vchkpass(&site, &password(login, "wrong", 0), &[&rec.path()])
                .env(&[(var, "1")])
                .run();
            assert_eq!((r.code, r.stdout.len()), (Some(1), 0), "{login}");
            assert!(!rec.ran(), "{login}");
        }
        // NO_RELAY and POSTAUTH's status do not apply.
        rec.reset();
        let r = vchkpass(
            &site,
            &password("norelay@example.com", "norelay pw", 0),
            &[&rec.path()],
        )
        .env(&[(var, "1"), ("POSTAUTH", "/bin/false")])
        .run();
        assert_eq!(r.code, Some(42));
        assert_eq!(
            rec.env_var("EXTRA").as_deref(),
            Some("userdb_uid userdb_gid")
        );
    }
}

/// Native mode runs POSTAUTH as C does (`POSTAUTH login`, HOME set), ignores its
/// status, then runs the program; a POSTAUTH that cannot run does not stop the login.
#[test]
fn native_mode_runs_postauth_then_the_program() {
    let site = auth_site();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let script = |name: &str, body: &str| {
        let path = dir.path().join(name);
        fs::write(&path, format!("#!/bin/sh\nd='{d}'\n{body}")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    };
    let post = script(
        "postauth",
        "printf '%s\\n' \"$@\" > \"$d/args\"\necho \"$HOME\" > \"$d/home\"\n\
         if [ -e /proc/self/fd/3 ]; then echo open > \"$d/fd3\"; else echo closed > \"$d/fd3\"; fi\n\
         exit 5\n",
    );
    // The program sees what POSTAUTH left: it ran first.
    let prog = script(
        "prog",
        "if [ -e \"$d/args\" ]; then echo after > \"$d/order\"; else echo before > \"$d/order\"; fi\n\
         exit 42\n",
    );
    for var in ["NATIVE_CHECKPASSWORD", "DOVECOT_VERSION"] {
        for f in ["args", "home", "fd3", "order"] {
            let _ = fs::remove_file(dir.path().join(f));
        }
        let r = vchkpass(
            &site,
            &password("alice@example.com", "alice pw 6", 0),
            &[&prog],
        )
        .env(&[(var, "1"), ("POSTAUTH", &post)])
        .run();
        assert_eq!(r.code, Some(42), "{var}: POSTAUTH's 5 is ignored: {r:?}");
        let read = |f: &str| fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("args"), "alice@example.com\n");
        assert_eq!(read("home"), "/home/mail/example.com/alice\n");
        assert_eq!(read("fd3"), "closed\n");
        assert_eq!(read("order"), "after\n");
        // Not for a wrong password.
        fs::remove_file(dir.path().join("args")).unwrap();
        let r = vchkpass(&site, &password("alice@example.com", "wrong", 0), &[&prog])
            .env(&[(var, "1"), ("POSTAUTH", &post)])
            .run();
        assert_eq!(r.code, Some(1));
        assert!(!dir.path().join("args").exists());
    }
    // A POSTAUTH that cannot be run is logged and the program still runs.
    let broken = script("broken", "");
    fs::write(&broken, "#!/nonexistent/interpreter\n").unwrap();
    let r = vchkpass(
        &site,
        &password("alice@example.com", "alice pw 6", 0),
        &[&prog],
    )
    .env(&[("NATIVE_CHECKPASSWORD", "1"), ("POSTAUTH", &broken)])
    .run();
    assert_eq!(r.code, Some(42), "{r:?}");
    assert!(r.stderr.contains("POSTAUTH"), "{r:?}");
}

#[test]
fn daemon_and_direct_agree() {
    let site = auth_site();
    let d = Daemon::start(&site, &[], &[]);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for (login, pw) in password_users() {
        inputs.push(password(login, pw, 1));
        inputs.push(password(login, "wrong", 2));
    }
    for login in [
        "nosmtp@example.com",
        "norelay@example.com",
        "sleepy@example.com",
    ] {
        let pw = format!("{} pw", login.split('@').next().unwrap());
        inputs.push(password(login, &pw, 1));
    }
    inputs.push(password("nobody@example.com", "x", 1));
    inputs.push(password("badscram@example.com", "bad pw", 1));
    inputs.push(fd3(
        "tim@example.com",
        RFC2195_CHALLENGE,
        RFC2195_RESPONSE,
        3,
    ));
    inputs.push(fd3("chris", RFC2831_RESPONSE, RFC2831_DIRECTIVES, 10));
    for input in &inputs {
        let direct = vchkpass(&site, input, &["/bin/false"]).run();
        let cached = vchkpass(&site, input, &["/bin/false"]).daemon(&d).run();
        assert_eq!(
            (direct.code, &direct.stdout, &direct.fd6),
            (cached.code, &cached.stdout, &cached.fd6),
            "{input:?}\ndirect: {direct:?}\ndaemon: {cached:?}"
        );
    }
    d.stop();
}

#[test]
fn daemon_gone_is_a_temporary_failure() {
    let site = auth_site();
    let d = Daemon::start(&site, &[], &[]);
    let fifodir = d.fifodir.clone();
    let replydir = d.replydir.clone();
    let r = vchkpass(&site, &password("alice", "alice pw 6", 1), &["/bin/false"])
        .daemon(&d)
        .run();
    assert_eq!(r.code, Some(0));
    d.stop();
    let rec = Recorder::new();
    for input in [
        password("alice", "alice pw 6", 1),
        password("alice", "wrong", 1),
        password("nobody", "wrong", 1),
    ] {
        let r = vchkpass(&site, &input, &[&rec.path()])
            .env(&[
                ("QUERY_CACHE", "1"),
                ("INFIFODIR", fifodir.to_str().unwrap()),
                ("FIFOTMPDIR", replydir.to_str().unwrap()),
            ])
            .run();
        assert_eq!(r.code, Some(111), "{r:?}");
        assert!(r.stdout_text().starts_with("454-inquery: "), "{r:?}");
        assert!(r.stdout_text().ends_with(" (#4.3.0)\r\n"));
        assert!(r.stderr.starts_with("vchkpass: inquery: "), "{}", r.stderr);
        assert!(!rec.ran(), "never the next module");
    }
}

#[test]
fn database_unreachable_is_a_temporary_failure() {
    let site = auth_site();
    let rec = Recorder::new();
    let gone = site.dir.path().join("no-such-socket");
    let host = format!("localhost:root::{}", gone.display());
    for input in [
        password("alice", "alice pw 6", 1),
        password("nobody", "x", 1),
    ] {
        let r = vchkpass(&site, &input, &[&rec.path()])
            .env(&[("MYSQL_HOST", &host)])
            .run();
        assert_eq!(r.code, Some(111), "{r:?}");
        assert_eq!(
            r.stdout_text(),
            "454-failed to connect to database: file does not exist (#4.3.0)\r\n"
        );
        assert!(
            r.stderr.starts_with("vchkpass: sql_getpw: "),
            "{}",
            r.stderr
        );
        assert!(!rec.ran());
    }
}

/// A login with a newline, a forged log line and terminal escapes, and one
/// of 400 bytes: the DEBUG line shows them escaped (`\xNN`) and cut after
/// 128 bytes, on one line.
#[test]
fn a_login_cannot_forge_or_flood_log_lines() {
    let site = auth_site();
    let rec = Recorder::new();
    let forged = "vchkpass: pid [1]: login [alice@example.com] authmethod [LOGIN]";
    let login = format!("x\x1b[2J\n{forged}\n@example.com");
    let long = format!("{}@example.com", "a".repeat(400));
    for (login, shown) in [
        (
            login.as_str(),
            format!("x\\x1b[2J\\x0a{forged}\\x0a@example.com"),
        ),
        (
            long.as_str(),
            format!("{}...[284 more bytes]", "a".repeat(128)),
        ),
    ] {
        let r = vchkpass(&site, &password(login, "pw", 1), &[&rec.path()])
            .env(&[("DEBUG", "1")])
            .run();
        assert!(rec.ran(), "{r:?}");
        rec.reset();
        assert!(!r.stderr.contains('\x1b'), "{}", r.stderr);
        assert!(
            r.stderr
                .lines()
                .all(|l| !l.starts_with("vchkpass: pid [1]")),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!("login [{shown}]")),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn no_secret_in_the_log_whatever_debug_says() {
    let site = auth_site();
    let hash = crate::authindi::stored_hash(&site, "alice");
    let env = [("DEBUG", "1"), ("DEBUG_LOGIN", "9")];
    let cram = hmac_hex("sha256", "tanstaaftanstaaf", RFC2195_CHALLENGE);
    let inputs = [
        password("alice@example.com", "alice pw 6", 1),
        password("alice@example.com", "alice pw 6 wrong", 2),
        password("nobody@example.com", "alice pw 6", 1),
        password("badscram@example.com", "bad pw", 1),
        fd3("tim@example.com", RFC2195_CHALLENGE, &cram, 6),
        fd3("chris", RFC2831_RESPONSE, RFC2831_DIRECTIVES, 10),
        fd3(
            "chris",
            "0123456789abcdef0123456789abcdef",
            RFC2831_DIRECTIVES,
            10,
        ),
        fd3("legacy@example.com", RFC2195_CHALLENGE, RFC2195_RESPONSE, 0),
    ];
    let mut all = String::new();
    for input in inputs {
        let r = vchkpass(&site, &input, &["/bin/false"]).env(&env).run();
        assert!(r.stderr.contains("authmethod ["), "{}", r.stderr);
        all.push_str(&r.stderr);
    }
    for secret in [
        "alice pw 6",
        hash.as_str(),
        &hash[3..20],
        "tanstaaf",
        &cram[..16],
        RFC2831_RESPONSE,
        "ea40f603",
        "0123456789abcdef",
        "bad pw",
        "{CRAM}",
    ] {
        assert!(!all.contains(secret), "{secret:?} in:\n{all}");
    }
    assert!(all.contains("login [alice@example.com]"), "{all}");
    assert!(all.contains("authmethod [CRAM-SHA256]"), "{all}");
    assert!(all.contains("challenge [10 bytes]"), "{all}");
}

#[test]
fn the_faq_test_command() {
    // `printf "manny\0ssh-1.5-\0\0" | vchkpass /bin/false 3<&0` from IndiMail's FAQ,
    // through a symlink named vchkpass.
    let site = auth_site();
    site.add_user(
        "indimail",
        "manny",
        "example.com",
        &openssl_hash("-5", "ssh-1.5-"),
        0,
    );
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("vchkpass");
    std::os::unix::fs::symlink(EXE, &link).unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!(
            "printf 'manny\\0ssh-1.5-\\0\\0' | {} /bin/false 3<&0",
            link.display()
        ))
        .env_clear();
    for (k, v) in site.env.iter() {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut cmd2 = Command::new("/bin/sh");
    cmd2.arg("-c")
        .arg(format!(
            "printf 'manny\\0ssh-1.6-\\0\\0' | {} /bin/false 3<&0",
            link.display()
        ))
        .env_clear();
    for (k, v) in site.env.iter() {
        cmd2.env(k, v);
    }
    assert_eq!(cmd2.output().unwrap().status.code(), Some(1));
}

/// Most users of the site have SHA-512 hashes of 10000 rounds, and PASSWORD_HASH
/// is unset (which says SHA-256). The daemon counts the hashes at start and
/// writes their cost beside its FIFOs; vchkpass and authindi, asking the daemon,
/// check an unknown user's password at that cost (their DEBUG line says so), and
/// after the users' hashes change, HUP makes the daemon write the new cost.
/// Without the daemon's file they use PASSWORD_HASH's scheme.
#[test]
fn unknown_users_are_checked_at_the_cost_the_daemon_learnt() {
    // Python's crypt.crypt('x y', '$6$rounds=10000$abcdefgh') (libxcrypt).
    const SHA512_10000: &str = "$6$rounds=10000$abcdefgh$bt2D1fknJbYs39Z.DQkLis4UDjSg8/acBHhDptxtbSUWorySezY9AvZuIkjpil6p9C2IaIWkEwmCGxfgSM617.";
    let site = Site::new();
    populate(&site);
    for i in 0..8 {
        site.add_user("indimail", &format!("s{i}"), "example.com", SHA512_10000, 0);
    }
    let rec = Recorder::new();
    let unknown = password("nobody@example.com", "x y", 1);
    let cost_line = |r: &Run| {
        r.stderr
            .lines()
            .find(|l| l.contains("unknown users are checked at the cost"))
            .unwrap_or_else(|| panic!("no cost line: {}", r.stderr))
            .to_string()
    };

    // No daemon yet, no file: PASSWORD_HASH's scheme.
    let r = vchkpass(&site, &unknown, &[&rec.path()])
        .env(&[
            ("DEBUG", "1"),
            ("INFIFODIR", site.dir.path().to_str().unwrap()),
        ])
        .run();
    assert!(rec.ran(), "{r:?}");
    rec.reset();
    assert!(
        cost_line(&r).ends_with("the cost $5$ (PASSWORD_HASH)"),
        "{}",
        r.stderr
    );

    let d = Daemon::start(&site, &["-i", "2"], &[]);
    d.wait_for(
        |l| l.contains("checks will cost the same"),
        1,
        "the hash cost",
    );
    let file = d.fifodir.join("hashcost");
    assert_eq!(fs::read_to_string(&file).unwrap(), "$6$rounds=10000$\n");
    let r = vchkpass(&site, &unknown, &[&rec.path()])
        .daemon(&d)
        .env(&[("DEBUG", "1")])
        .run();
    assert!(rec.ran(), "{r:?}");
    rec.reset();
    assert!(
        cost_line(&r).ends_with(&format!(
            "the cost $6$rounds=10000$ (learnt by inlookup ({}))",
            file.display()
        )),
        "{}",
        r.stderr
    );
    let chain = crate::authindi::Chain::new();
    let r = chain
        .start(
            &site,
            &crate::authindi::login_rec("imap", "nobody", "x y"),
            false,
        )
        .daemon(&d)
        .env(&[("DEBUG", "1")])
        .run();
    assert!(
        cost_line(&r).contains("the cost $6$rounds=10000$ (learnt by inlookup"),
        "{}",
        r.stderr
    );

    // The site moves to bcrypt (cost 5): HUP, and the daemon says so.
    site.sql(
        "UPDATE indimail SET pw_passwd = '$2b$05$ck87WND4Fk2RR4UsO6GqH.y4YY8BwWpTJUssDL4LPHgm.FEPnRcZ2'",
    );
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for(
        |l| l.contains("checks will cost the same"),
        2,
        "the new hash cost",
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "$2b$05$\n");
    let r = vchkpass(&site, &unknown, &[&rec.path()])
        .daemon(&d)
        .env(&[("DEBUG", "1")])
        .run();
    assert!(
        cost_line(&r).contains("the cost $2b$05$ (learnt"),
        "{}",
        r.stderr
    );

    // A file someone else could have written is not used, and said so.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    let r = vchkpass(&site, &unknown, &[&rec.path()])
        .daemon(&d)
        .env(&[("DEBUG", "1"), ("PASSWORD_HASH", "3")])
        .run();
    assert!(
        cost_line(&r).ends_with("the cost $6$ (PASSWORD_HASH)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("writable by others"), "{}", r.stderr);
    assert!(d.stop().success());
}
