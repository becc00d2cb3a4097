//! authindi end to end: the real executable in a courier-style chain (next module,
//! application and login program are small shell scripts that record what they got),
//! a real MariaDB, and the daemon for QUERY_CACHE.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use indilookup::db::gid;
use mysql::prelude::Queryable;

use crate::daemon::Daemon;
use crate::harness::Site;
use crate::vchkpass::{
    auth_site, hmac_hex, openssl_hash, Recorder, Run, Start, RFC2195_CHALLENGE, RFC2195_RESPONSE,
};

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The site of the vchkpass tests, with homes under the test's directory and users
/// whose services are closed.
pub fn site() -> Site {
    let site = auth_site();
    let homes = site.dir.path().join("homes");
    for table in ["indimail", "indibak"] {
        site.sql_params(
            &format!("UPDATE {table} SET pw_dir = CONCAT(?, '/', pw_domain, '/', pw_name)"),
            (homes.to_str().unwrap(),),
        );
    }
    let add = |user: &str, flags: u32| {
        site.add_user(
            "indimail",
            user,
            "example.com",
            &openssl_hash("-6", &format!("{user} pw")),
            flags,
        );
        site.sql_params(
            "UPDATE indimail SET pw_dir = ? WHERE pw_name = ?",
            (home(&site, "example.com", user).to_str().unwrap(), user),
        );
    };
    add("noimap", gid::NO_IMAP);
    add("nopop", gid::NO_POP);
    add("noweb", gid::NO_WEBMAIL);
    site
}

fn home(site: &Site, domain: &str, user: &str) -> PathBuf {
    site.dir.path().join("homes").join(domain).join(user)
}

/// A login record.
pub fn login_rec(service: &str, user: &str, pw: &str) -> Vec<u8> {
    format!("{service}\nlogin\n{user}\n{pw}\n").into_bytes()
}

fn cram_rec(service: &str, kind: &str, challenge: &str, user: &str, digest: &str) -> Vec<u8> {
    format!(
        "{service}\n{kind}\n{}\n{}\n",
        b64(challenge.as_bytes()),
        b64(format!("{user} {digest}").as_bytes())
    )
    .into_bytes()
}

/// A courier chain: the next module, the application, the login program.
pub struct Chain {
    pub next: Recorder,
    pub app: Recorder,
    pub login: Recorder,
}

impl Chain {
    pub fn new() -> Chain {
        Chain {
            next: Recorder::new(),
            app: Recorder::new(),
            login: Recorder::new(),
        }
    }

    pub fn reset(&self) {
        for r in [&self.next, &self.app, &self.login] {
            r.reset();
        }
    }

    /// `authindi NEXT APP Maildir` (or without NEXT when `last`), with the login
    /// program's variables as imaplogin sets them.
    pub fn start<'a>(&self, site: &'a Site, input: &[u8], last: bool) -> Start<'a> {
        let next = self.next.path();
        let app = self.app.path();
        let args: Vec<&str> = if last {
            vec![&app, "Maildir"]
        } else {
            vec![&next, &app, "Maildir"]
        };
        let login = self.login.path();
        Start::new(site, "authindi", &args, input).env(&[
            ("AUTHUSER", &login),
            ("AUTHARGC", "2"),
            ("AUTHARGV0", "imaplogin"),
            ("AUTHARGV1", "again"),
            ("AUTHENTICATED", ""),
            ("TCPREMOTEIP", "192.0.2.9"),
        ])
    }

    /// Runs `authindi NEXT APP Maildir` afresh with `input` on fd 3 and `env` added.
    pub fn run(&self, site: &Site, input: &[u8], env: &[(&str, &str)]) -> Run {
        self.reset();
        self.start(site, input, false).env(env).run()
    }

    /// Runs `authindi APP Maildir` (the last module) afresh with `input` on fd 3.
    pub fn run_last(&self, site: &Site, input: &[u8]) -> Run {
        self.reset();
        self.start(site, input, true).run()
    }

    /// Which program ran: "app", "next", "login" or "none".
    pub fn which(&self) -> &'static str {
        match (self.app.ran(), self.next.ran(), self.login.ran()) {
            (true, false, false) => "app",
            (false, true, false) => "next",
            (false, false, true) => "login",
            (false, false, false) => "none",
            _ => "several",
        }
    }
}

fn lastauth(site: &Site, user: &str, domain: &str) -> Vec<(String, String)> {
    let mut c = site.server.connect(Some(&site.db)).unwrap();
    c.exec(
        "SELECT service, remote_ip FROM lastauth WHERE user = ? AND domain = ? ORDER BY service",
        (user, domain),
    )
    .unwrap()
}

pub fn stored_hash(site: &Site, user: &str) -> String {
    let mut c = site.server.connect(Some(&site.db)).unwrap();
    c.exec_first(
        "SELECT pw_passwd FROM indimail WHERE pw_name = ? AND pw_domain = 'example.com'",
        (user,),
    )
    .unwrap()
    .unwrap()
}

fn count(site: &Site, sql: &str) -> u64 {
    let mut c = site.server.connect(Some(&site.db)).unwrap();
    c.query_first(sql).unwrap().unwrap()
}

#[test]
fn login_runs_the_application_with_the_session() {
    let site = site();
    let chain = Chain::new();
    let alice_home = home(&site, "example.com", "alice");
    assert!(!alice_home.exists());
    let r = chain
        .start(
            &site,
            &login_rec("imap", "alice@example.com", "alice pw 6"),
            false,
        )
        .run();
    assert_eq!((r.code, chain.which()), (Some(42), "app"), "{r:?}");
    assert!(r.stdout.is_empty() && r.stderr.is_empty(), "{r:?}");
    let app = &chain.app;
    assert_eq!(app.args()[1..], ["Maildir"]);
    let want = [
        ("AUTHENTICATED", "alice@example.com".to_string()),
        ("AUTHADDR", "alice@example.com".into()),
        ("AUTHFULLNAME", "alice gecos".into()),
        ("MAILDIRQUOTA", "0S,0C".into()),
        ("HOME", alice_home.display().to_string()),
        ("AUTHSERVICE", "imap".into()),
        ("MAILDIR", alice_home.join("Maildir").display().to_string()),
        ("LAST_PASSWORD_CHANGE", "0".into()),
    ];
    for (var, value) in &want {
        assert_eq!(app.env_var(var).as_ref(), Some(value), "{var}");
    }
    assert_eq!(app.env_var("PWSTRUCT"), None);
    assert_eq!(
        fs::read_to_string(app.file("cwd")).unwrap().trim(),
        alice_home.display().to_string()
    );
    // The first login made the Maildir.
    for sub in ["cur", "new", "tmp"] {
        assert!(alice_home.join("Maildir").join(sub).is_dir(), "{sub}");
    }
    assert_eq!(
        fs::read_to_string(alice_home.join("Maildir/domain")).unwrap(),
        "example.com\n"
    );
    assert_eq!(
        lastauth(&site, "alice", "example.com"),
        [("imap".to_string(), "192.0.2.9".to_string())]
    );

    // As typed through an alias domain, with PLAIN and POP3; a quota.
    site.sql("UPDATE indimail SET pw_shell = '10M,100' WHERE pw_name = 'alice'");
    let input = b"pop3\nplain\nAlice@Alias.com\nalice pw 6\n".to_vec();
    let r = chain.run(&site, &input, &[]);
    assert_eq!((r.code, chain.which()), (Some(42), "app"), "{r:?}");
    assert_eq!(
        app.env_var("AUTHENTICATED").as_deref(),
        Some("Alice@Alias.com")
    );
    assert_eq!(
        app.env_var("AUTHADDR").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(app.env_var("AUTHSERVICE").as_deref(), Some("pop3"));
    assert_eq!(
        app.env_var("MAILDIRQUOTA").as_deref(),
        Some("10485760S,100C")
    );
    // lastauth under the real domain.
    assert_eq!(lastauth(&site, "alice", "example.com").len(), 2);
    // The default domain; the password on the fifth line.
    let r = chain.run(&site, b"imap\nlogin\nalice\n\nalice pw 6\n", &[]);
    assert_eq!((r.code, chain.which()), (Some(42), "app"), "{r:?}");
    assert_eq!(
        app.env_var("AUTHADDR").as_deref(),
        Some("alice@example.com")
    );
}

#[test]
fn cram_methods() {
    let site = site();
    let chain = Chain::new();
    let rec = cram_rec(
        "imap",
        "cram-md5",
        RFC2195_CHALLENGE,
        "tim@example.com",
        RFC2195_RESPONSE,
    );
    let r = chain.start(&site, &rec, false).run();
    assert_eq!((r.code, chain.which()), (Some(42), "app"), "{r:?}");
    assert_eq!(
        chain.app.env_var("AUTHENTICATED").as_deref(),
        Some("tim@example.com")
    );
    for (kind, alg) in [
        ("cram-sha1", "sha1"),
        ("cram-sha256", "sha256"),
        ("cram-sha512", "sha512"),
        ("cram-ripemd", "ripemd160"),
    ] {
        let challenge = "<77.1700000000@imap.example.com>";
        let mac = hmac_hex(alg, "tanstaaftanstaaf", challenge);
        let r = chain.run(
            &site,
            &cram_rec("imap", kind, challenge, "tim@example.com", &mac),
            &[],
        );
        assert_eq!((r.code, chain.which()), (Some(42), "app"), "{kind}: {r:?}");
        let bad = hmac_hex(alg, "wrong", challenge);
        let input = cram_rec("imap", kind, challenge, "tim@example.com", &bad);
        let r = chain.run(&site, &input, &[]);
        assert_eq!(
            (r.code, chain.which()),
            (Some(42), "next"),
            "{kind} wrong: {r:?}"
        );
        assert!(chain.next.got_exactly(&input));
    }
    // With no clear text stored, CRAM is keyed with the hash only with ENABLE_CRAM
    // (C authindi always did so: the hash was a password of its own).
    for (user, hash) in [
        ("hashonly", "$1$abcdefgh$YiSEwLIXhWSr7ZqQKy6.p/".to_string()),
        ("alice", stored_hash(&site, "alice")),
    ] {
        for (kind, alg) in [("cram-md5", "md5"), ("cram-sha256", "sha256")] {
            let mac = hmac_hex(alg, &hash, RFC2195_CHALLENGE);
            let login = format!("{user}@example.com");
            let input = cram_rec("imap", kind, RFC2195_CHALLENGE, &login, &mac);
            let r = chain.run(&site, &input, &[]);
            assert_eq!(chain.which(), "next", "{user} {kind}: {r:?}");
            assert!(chain.next.got_exactly(&input));
            let r = chain.run(&site, &input, &[("ENABLE_CRAM", "")]);
            assert_eq!(chain.which(), "app", "{user} {kind} ENABLE_CRAM: {r:?}");
        }
    }
    // Bad base64: no other module may try.
    let r = chain.run(&site, b"imap\ncram-md5\nnot base64!\nxx\n", &[]);
    assert_eq!(chain.which(), "login", "{r:?}");
    assert!(r.stderr.contains("AUTHFAILURE\n"));
}

#[test]
fn failures_all_go_to_the_next_module_alike() {
    let site = site();
    let chain = Chain::new();
    let mut seen = Vec::new();
    for input in [
        login_rec("imap", "alice@example.com", "wrong"),
        login_rec("imap", "nobody@example.com", "wrong"),
        login_rec("imap", "alice@unknown.test", "wrong"),
        login_rec("imap", "noimap@example.com", "wrong"),
        login_rec("imap", "sleepy@example.com", "wrong"),
        login_rec("imap", "olddom@expired.org", "wrong"),
        login_rec("imap", "bad\"login@example.com", "wrong"),
    ] {
        let r = chain.run(&site, &input, &[("DOMAIN_LIMITS", "")]);
        assert_eq!(chain.which(), "next", "{r:?}");
        assert!(chain.next.got_exactly(&input));
        assert_eq!(
            chain.next.args()[1..],
            [chain.app.path().as_str(), "Maildir"]
        );
        seen.push((r.code, r.stdout, r.stderr));
    }
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
    assert_eq!(seen[0].0, Some(42));
    // A password change is left to other modules, with a warning.
    let input = b"imap\npass\nalice@example.com\nalice pw 6\nnew pw\n";
    let r = chain.run(&site, input, &[]);
    assert_eq!(chain.which(), "next");
    assert!(chain.next.got_exactly(input));
    assert!(
        r.stderr.contains("Password Change not supported"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_last_module_fails_completely() {
    let site = site();
    let chain = Chain::new();
    for input in [
        login_rec("imap", "alice@example.com", "wrong"),
        login_rec("imap", "nobody@example.com", "wrong"),
    ] {
        let r = chain.run_last(&site, &input);
        assert_eq!((r.code, chain.which()), (Some(42), "login"), "{r:?}");
        assert!(r.stderr.contains("AUTHFAILURE\n"), "{}", r.stderr);
        assert!(r.stderr.contains("no more modules will be tried"));
        // The login program with its own arguments (AUTHARGV1..).
        assert_eq!(chain.login.args()[1..], ["again"]);
    }
    // Without AUTHARGC: AUTHFAILURE and exit 1.
    chain.reset();
    let mut s = chain.start(&site, &login_rec("imap", "alice", "wrong"), true);
    s.env.retain(|(k, _)| k != "AUTHARGC");
    let r = s.run();
    assert_eq!((r.code, chain.which()), (Some(1), "none"), "{r:?}");
    assert!(r.stderr.contains("AUTHFAILURE\n"));
    // Right password as the last module: the application.
    let r = chain.run_last(&site, &login_rec("imap", "alice", "alice pw 6"));
    assert_eq!(chain.which(), "app", "{r:?}");
}

#[test]
fn service_flags_after_the_password() {
    let site = site();
    let chain = Chain::new();
    let cases = [
        ("imap", "noimap", "login"),
        ("imaps", "noimap", "login"),
        ("IMAP", "noimap", "login"),
        ("pop3", "noimap", "app"),
        ("pop3", "nopop", "login"),
        ("pop3s", "nopop", "login"),
        ("imap", "nopop", "app"),
        ("webmail", "noweb", "login"),
        ("imap", "noweb", "app"),
        // Names nobody mapped are not checked, as in C...
        ("sieve", "noimap", "app"),
    ];
    for (service, user, want) in cases {
        let input = login_rec(
            service,
            &format!("{user}@example.com"),
            &format!("{user} pw"),
        );
        let r = chain.run(&site, &input, &[]);
        assert_eq!(chain.which(), want, "{service} {user}: {r:?}");
        if want == "login" {
            assert!(
                r.stderr
                    .contains(&format!("{service} disabled for this account")),
                "{}",
                r.stderr
            );
        }
    }
    // ... unless the site maps them.
    let input = login_rec("sieve", "noimap@example.com", "noimap pw");
    let r = chain.run(
        &site,
        &input,
        &[("AUTHINDI_SERVICE_MAP", "sieve=imap:webm=webmail")],
    );
    assert_eq!(chain.which(), "login", "{r:?}");
    // A broken map: no module may try (TEMPFAIL).
    let r = chain.run(&site, &input, &[("AUTHINDI_SERVICE_MAP", "sieve=smtp")]);
    assert_eq!(chain.which(), "login", "{r:?}");
    assert!(r.stderr.contains("AUTHINDI_SERVICE_MAP"), "{}", r.stderr);
}

#[test]
fn inactive_user_is_reactivated() {
    let site = site();
    let chain = Chain::new();
    let r = chain
        .start(
            &site,
            &login_rec("imap", "sleepy@example.com", "sleepy pw"),
            false,
        )
        .run();
    assert_eq!(chain.which(), "app", "{r:?}");
    assert_eq!(
        count(
            &site,
            "SELECT COUNT(*) FROM indibak WHERE pw_name = 'sleepy'"
        ),
        0
    );
    assert_eq!(
        count(
            &site,
            "SELECT COUNT(*) FROM indimail WHERE pw_name = 'sleepy'"
        ),
        1
    );
    let rows = lastauth(&site, "sleepy", "example.com");
    let services: Vec<&str> = rows.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(services, ["ACTI", "imap"]);
    // Still works as an active user.
    let r = chain.run(
        &site,
        &login_rec("imap", "sleepy@example.com", "sleepy pw"),
        &[],
    );
    assert_eq!(chain.which(), "app", "{r:?}");
}

#[test]
fn already_authenticated_runs_the_application() {
    let site = site();
    let chain = Chain::new();
    let mut s = chain
        .start(&site, b"", false)
        .env(&[("AUTHENTICATED", "someone@example.com")]);
    s.input = None;
    let r = s.run();
    assert_eq!((r.code, chain.which()), (Some(42), "app"), "{r:?}");
    assert_eq!(chain.app.args()[1..], ["Maildir"]);
    // A non-empty AUTHADDR alone is no authentication (C took it for one).
    let r = chain.run(
        &site,
        &login_rec("imap", "alice", "wrong"),
        &[("AUTHADDR", "alice@example.com")],
    );
    assert_eq!(chain.which(), "next", "{r:?}");
}

#[test]
fn misuse_exit_codes() {
    let site = site();
    let chain = Chain::new();
    let mut long = login_rec("imap", "alice", "alice pw 6");
    long.resize(513, b'x');
    let r = chain.start(&site, &long, false).run();
    assert_eq!((r.code, chain.which()), (Some(2), "none"));
    assert!(r.stderr.contains("authindi: fatal: auth data too long"));
    for short in [&b"imap\nlogin\nalice\n"[..], b"imap\nlogin", b"imap", b""] {
        let r = chain.start(&site, short, false).run();
        assert_eq!((r.code, chain.which()), (Some(2), "none"), "{short:?}");
        assert!(r.stderr.contains("auth data too short"), "{}", r.stderr);
    }
    let input = login_rec("imap", "alice", "alice pw 6");
    let r = Start::new(&site, "authindi", &["/bin/true"], &input).run();
    assert_eq!(r.code, Some(100));
    assert!(r.stderr.contains("no more modules will be tried"));
    let r = Start::new(&site, "authindi", &[], &input).run();
    assert_eq!(r.code, Some(2));
    // --help as the first argument: help on stderr, exit 100, fd 3 not read
    // (closed here: reading it would be exit 111).
    let mut s = Start::new(&site, "authindi", &["--help"], b"");
    s.input = None;
    let r = s.run();
    assert_eq!(r.code, Some(100), "{r:?}");
    assert!(
        r.stderr
            .starts_with("usage: authindi [module...] app apparg\n"),
        "{r:?}"
    );
    assert!(r.stdout.is_empty(), "{r:?}");
    // After the first module, an argument that looks like an option is the
    // chain's: here the application's argument.
    chain.reset();
    let app = chain.app.path();
    let r = Start::new(&site, "authindi", &[&app, "--help"], b"")
        .env(&[("AUTHENTICATED", "someone@example.com")])
        .run();
    assert_eq!((r.code, chain.which()), (Some(42), "app"), "{r:?}");
    assert_eq!(chain.app.args()[1..], ["--help"]);
    // fd 3 closed: a read error.
    let mut s = chain.start(&site, b"", false);
    s.input = None;
    let r = s.run();
    assert_eq!(r.code, Some(111));
    assert!(r
        .stderr
        .contains("authindi: fatal: read: file descriptor not open"));
}

#[test]
fn nologin_and_quota_errors() {
    let site = site();
    let chain = Chain::new();
    let dir = site.dir.path().join("control/example.com/imap");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("nologin"), "").unwrap();
    let r = chain
        .start(&site, &login_rec("imap", "alice", "alice pw 6"), false)
        .run();
    assert_eq!((r.code, chain.which()), (Some(1), "none"), "{r:?}");
    assert_eq!(r.stderr, "Login not permitted for imap\n");
    assert!(r.stdout.is_empty(), "the client's stream gets nothing");
    // Per gecos.
    let dir = site.dir.path().join("control/md5u gecos/pop3");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("nologin"), "").unwrap();
    let r = chain
        .start(&site, &login_rec("pop3", "md5u", "md5 pw"), false)
        .run();
    assert_eq!(r.code, Some(1), "{r:?}");
    // A quota field that does not parse.
    site.sql("UPDATE indimail SET pw_shell = 'lots' WHERE pw_name = 'md5u'");
    let r = chain
        .start(&site, &login_rec("webmail", "md5u", "md5 pw"), false)
        .run();
    assert_eq!((r.code, chain.which()), (Some(100), "none"), "{r:?}");
    assert!(r.stderr.contains("unable to parse_quota [lots]"));
}

#[test]
fn domain_limits() {
    let site = site();
    let chain = Chain::new();
    let limits = [("DOMAIN_LIMITS", "")];
    for (login, pw, msg) in [
        (
            "olddom@expired.org",
            "olddom pw",
            "Sorry, your domain has expired",
        ),
        (
            "oldpw@example.org",
            "oldpw pw",
            "Sorry, your password has expired",
        ),
    ] {
        let r = chain.run(&site, &login_rec("imap", login, pw), &limits);
        assert_eq!(chain.which(), "login", "{r:?}");
        assert!(r.stderr.contains(msg), "{}", r.stderr);
    }
    let r = chain.run(
        &site,
        &login_rec("imap", "olddom@expired.org", "olddom pw"),
        &[],
    );
    assert_eq!(chain.which(), "app", "without DOMAIN_LIMITS: {r:?}");
    // A user's own limits row (for a quota, say) does not lift the domain's closed
    // IMAP: the user's and the domain's flags together.
    site.sql(
        "UPDATE vlimits SET disable_imap = 1, disable_pop = 0 WHERE domain = 'example.com'; \
         INSERT INTO vlimits (domain, disable_pop, disable_dialup, disable_webmail) \
           VALUES ('alice@example.com', 1, 1, 1)",
    );
    for (service, which) in [("imap", "login"), ("pop3", "login"), ("smtp", "app")] {
        let r = chain.run(
            &site,
            &login_rec(service, "alice@example.com", "alice pw 6"),
            &limits,
        );
        assert_eq!(chain.which(), which, "{service}: {r:?}");
    }
}

#[test]
fn query_cache_uses_the_daemon_and_still_writes_lastauth() {
    let site = site();
    let chain = Chain::new();
    let d = Daemon::start(&site, &[], &[]);
    let run = |input: &[u8]| -> Run { chain.start(&site, input, false).daemon(&d).run() };
    let r = run(&login_rec("imap", "alice@alias.com", "alice pw 6"));
    assert_eq!(chain.which(), "app", "{r:?}");
    assert_eq!(
        chain.app.env_var("AUTHADDR").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(lastauth(&site, "alice", "example.com").len(), 1);
    chain.reset();
    let r = run(&login_rec("imap", "nobody@example.com", "x"));
    assert_eq!(chain.which(), "next", "{r:?}");
    chain.reset();
    let r = run(&login_rec("imap", "noimap@example.com", "noimap pw"));
    assert_eq!(chain.which(), "login", "{r:?}");
    let fifodir = d.fifodir.clone();
    let replydir = d.replydir.clone();
    d.stop();
    // The daemon gone: courier's TEMPFAIL (fail completely), never "wrong password".
    for input in [
        login_rec("imap", "alice", "alice pw 6"),
        login_rec("imap", "alice", "wrong"),
    ] {
        let r = chain.run(
            &site,
            &input,
            &[
                ("QUERY_CACHE", "1"),
                ("INFIFODIR", fifodir.to_str().unwrap()),
                ("FIFOTMPDIR", replydir.to_str().unwrap()),
            ],
        );
        assert_eq!(chain.which(), "login", "{r:?}");
        assert!(r.stderr.contains("TEMPFAIL"), "{}", r.stderr);
    }
}

#[test]
fn database_unreachable_fails_completely() {
    let site = site();
    let chain = Chain::new();
    let host = format!(
        "localhost:root::{}",
        site.dir.path().join("nosock").display()
    );
    let r = chain
        .start(&site, &login_rec("imap", "alice", "alice pw 6"), false)
        .env(&[("MYSQL_HOST", &host)])
        .run();
    assert_eq!(chain.which(), "login", "{r:?}");
    assert!(r.stderr.contains("TEMPFAIL"), "{}", r.stderr);
}

#[test]
fn no_secret_in_the_log_whatever_debug_says() {
    let site = site();
    let chain = Chain::new();
    let env = [("DEBUG", "1"), ("DEBUG_LOGIN", "1")];
    let mac = hmac_hex("sha1", "tanstaaftanstaaf", RFC2195_CHALLENGE);
    let mut all = String::new();
    for input in [
        login_rec("imap", "alice@example.com", "alice pw 6"),
        login_rec("imap", "alice@example.com", "alice pw 6 wrong"),
        login_rec("imap", "nobody@example.com", "alice pw 6"),
        login_rec("imap", "badscram@example.com", "bad pw"),
        cram_rec(
            "imap",
            "cram-sha1",
            RFC2195_CHALLENGE,
            "tim@example.com",
            &mac,
        ),
    ] {
        let r = chain.run(&site, &input, &env);
        all.push_str(&r.stderr);
    }
    assert!(all.contains("debug_login: pid "), "{all}");
    assert!(all.contains("login[alice@example.com]"), "{all}");
    for secret in ["alice pw 6", "bad pw", "tanstaaf", &mac[..12], "$6$"] {
        assert!(!all.contains(secret), "{secret:?} in:\n{all}");
    }
}

#[test]
fn postauth_and_exit_onerror() {
    let site = site();
    let chain = Chain::new();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("postauth");
    fs::write(
        &script,
        "#!/bin/sh\nd=$(dirname \"$0\")\nprintf '%s\\n' \"$@\" > \"$d/args\"\n\
         echo \"$PWSTRUCT\" > \"$d/pwstruct\"\necho \"$AUTHADDR\" > \"$d/authaddr\"\n\
         exit $(cat \"$d/status\")\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let msg = dir.path().join("msg");
    fs::write(&msg, "* BYE migration in progress\r\n").unwrap();
    let post = script.to_string_lossy().into_owned();
    let msg_path = msg.to_string_lossy().into_owned();
    let run = |status: &str, extra: &[(&str, &str)]| {
        fs::write(dir.path().join("status"), status).unwrap();
        chain.reset();
        chain
            .start(&site, &login_rec("imap", "alice", "alice pw 6"), false)
            .env(&[("POSTAUTH", &post)])
            .env(extra)
            .run()
    };
    let r = run("0", &[]);
    assert_eq!(chain.which(), "app", "{r:?}");
    let alice_home = home(&site, "example.com", "alice");
    assert_eq!(
        fs::read_to_string(dir.path().join("args")).unwrap(),
        format!("alice@example.com\n{}\n", alice_home.display())
    );
    let pwstruct = fs::read_to_string(dir.path().join("pwstruct")).unwrap();
    assert_eq!(
        pwstruct.trim(),
        format!(
            "alice@example.com:x:1:0:alice gecos:{}:NOQUOTA:0",
            alice_home.display()
        )
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("authaddr"))
            .unwrap()
            .trim(),
        "alice@example.com"
    );
    // Status 3 with EXIT_ONERROR: the message to the client, exit 100.
    let r = run("3", &[("EXIT_ONERROR", ""), ("MSG_ONERROR", &msg_path)]);
    assert_eq!((r.code, chain.which()), (Some(100), "none"), "{r:?}");
    assert_eq!(r.stdout_text(), "* BYE migration in progress\r\n");
    assert!(r.stderr.contains("POSTAUTH: Error on Exit"));
    // Status 3 without it, or any other status: the application runs.
    let tmp = dir.path().join("tmpmaildir");
    fs::create_dir(&tmp).unwrap();
    let r = run("3", &[("TMP_MAILDIR", tmp.to_str().unwrap())]);
    assert_eq!(chain.which(), "app", "{r:?}");
    assert_eq!(
        chain.app.env_var("MAILDIR"),
        Some(tmp.join("Maildir").display().to_string())
    );
    let r = run("7", &[("TMP_MAILDIR", tmp.to_str().unwrap())]);
    assert_eq!(chain.which(), "app", "{r:?}");
    assert_eq!(
        chain.app.env_var("MAILDIR"),
        Some(alice_home.join("Maildir").display().to_string())
    );
}

#[test]
fn login_interval_nolastauth_and_relay() {
    let site = site();
    let chain = Chain::new();
    let tmp = tempfile::tempdir().unwrap();
    let login = login_rec("imap", "md5u@example.com", "md5 pw");
    // NOLASTAUTH: nothing written.
    let r = chain
        .start(&site, &login, false)
        .env(&[("NOLASTAUTH", "")])
        .run();
    assert_eq!(chain.which(), "app", "{r:?}");
    assert!(lastauth(&site, "md5u", "example.com").is_empty());
    // First login recorded; a second one within MIN_LOGIN_INTERVAL gets TMP_MAILDIR.
    let env = [
        ("MIN_LOGIN_INTERVAL", "3600"),
        ("TMP_MAILDIR", tmp.path().to_str().unwrap()),
        ("OPEN_SMTP", ""),
    ];
    let r = chain.run(&site, &login, &env);
    assert_eq!(chain.which(), "app", "{r:?}");
    assert_eq!(lastauth(&site, "md5u", "example.com").len(), 1);
    let md5u_home = home(&site, "example.com", "md5u");
    assert_eq!(
        chain.app.env_var("MAILDIR"),
        Some(md5u_home.join("Maildir").display().to_string())
    );
    // OPEN_SMTP opened POP-before-SMTP relaying.
    assert_eq!(
        count(
            &site,
            "SELECT COUNT(*) FROM relay WHERE email = 'md5u@example.com' AND ipaddr = '192.0.2.9'"
        ),
        1
    );
    let r = chain.run(&site, &login, &env);
    assert_eq!(chain.which(), "app", "{r:?}");
    assert!(r.stderr.contains("ERR: Login interval"), "{}", r.stderr);
    assert_eq!(
        chain.app.env_var("MAILDIR"),
        Some(tmp.path().join("Maildir").display().to_string())
    );
    // NO_RELAY accounts get no relay entry.
    let r = chain.run(
        &site,
        &login_rec("imap", "norelay@example.com", "norelay pw"),
        &[("OPEN_SMTP", "")],
    );
    assert_eq!(chain.which(), "app", "{r:?}");
    assert_eq!(
        count(
            &site,
            "SELECT COUNT(*) FROM relay WHERE email = 'norelay@example.com'"
        ),
        0
    );
}

/// Every quota form IndiMail's tools store reaches the application as MAILDIRQUOTA,
/// for every service: `NNNNS` and `NNNNS,MMMMC` locked users out before.
#[test]
fn every_stored_quota_form_logs_in() {
    let site = site();
    let chain = Chain::new();
    let forms = [
        ("5242880S", "5242880S,0C"),
        ("5242880S,1000C", "5242880S,1000C"),
        ("5242880", "5242880S,0C"),
        ("5242880,1000", "5242880S,1000C"),
        ("NOQUOTA", "0S,0C"),
        ("NOQUOTA,50C", "0S,50C"),
        ("10M", "10485760S,0C"),
        ("2k,7", "2048S,7C"),
        ("1G", "1073741824S,0C"),
    ];
    let services = ["imap", "pop3", "webmail", "imaps", "pop3s", "smtp"];
    // Each form once (through the services in turn), then each service with the
    // form that locked users out.
    let cases = forms
        .iter()
        .zip(services.iter().cycle())
        .chain(services.iter().map(|s| (&forms[0], s)));
    for ((stored, want), service) in cases {
        site.sql_params(
            "UPDATE indimail SET pw_shell = ? WHERE pw_name = 'alice'",
            (*stored,),
        );
        let r = chain.run(
            &site,
            &login_rec(service, "alice@example.com", "alice pw 6"),
            &[],
        );
        assert_eq!(
            (r.code, chain.which()),
            (Some(42), "app"),
            "{stored} ({service}): {r:?}"
        );
        assert_eq!(
            chain.app.env_var("MAILDIRQUOTA").as_deref(),
            Some(*want),
            "{stored} ({service})"
        );
    }
}
