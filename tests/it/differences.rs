//! Where vchkpass, authindi and inlookup differ from IndiMail's C programs on purpose
//! (the DIFFERENCES sections of their man pages): one test per difference, each one
//! failing if the behaviour went back to what the C program does (said beside it).
//!
//! Covered elsewhere: POSTAUTH without fd 3 in `vchkpass::postauth_and_home`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use mysql::prelude::Queryable;
use nix::sys::signal::Signal;

use crate::authindi::{login_rec, Chain as Courier};
use crate::daemon::{int, text, Daemon};
use crate::harness::Site;
use crate::lookups::populate;
use crate::vchkpass::{fd3, openssl_hash, password, Recorder, Start};

/// `vchkpass NEXT` with `input` on fd 3, through the daemon when one is given.
fn vchkpass<'a>(
    site: &'a Site,
    next: &'a Recorder,
    input: &[u8],
    daemon: Option<&'a Daemon>,
) -> Start<'a> {
    let next = next.path();
    let s = Start::new(site, "vchkpass", &[next.as_str()], input);
    match daemon {
        Some(d) => s.daemon(d),
        None => s,
    }
}

/// A user of `table` with a home under the site's directory (authindi makes its
/// Maildir there).
fn add_user_with_home(site: &Site, table: &str, user: &str, domain: &str, pw: &str) {
    site.add_user(table, user, domain, &openssl_hash("-6", pw), 0);
    let home = site.dir.path().join("homes").join(domain).join(user);
    site.sql_params(
        &format!("UPDATE {table} SET pw_dir = ? WHERE pw_name = ? AND pw_domain = ?"),
        (home.to_str().unwrap(), user, domain),
    );
}

// ---------------------------------------------------------------------------
// vchkpass and authindi

/// C compared the domain case-sensitively with users/cdb (and the site's domain list),
/// so `alice@EXAMPLE.COM` was an unknown user: the next module (vchkpass) or the next
/// module as for an unknown domain (authindi). Here the domain is found in any case.
#[test]
fn a_mixed_case_domain_is_found() {
    let site = crate::authindi::site();
    let d = Daemon::start(&site, &[], &[]);
    let rec = Recorder::new();
    let courier = Courier::new();
    for login in [
        "alice@EXAMPLE.COM",
        "alice@Example.com",
        "alice@ALIAS.COM",
        "alice%Alias.Com",
    ] {
        for daemon in [None, Some(&d)] {
            rec.reset();
            let r = vchkpass(&site, &rec, &password(login, "alice pw 6", 1), daemon).run();
            assert_eq!(
                (r.code, rec.ran()),
                (Some(0), false),
                "vchkpass {login} (daemon: {}): {r:?}",
                daemon.is_some()
            );
        }
        let r = courier.run(&site, &login_rec("imap", login, "alice pw 6"), &[]);
        assert_eq!(courier.which(), "app", "authindi {login}: {r:?}");
        assert_eq!(
            courier.app.env_var("AUTHADDR").as_deref(),
            Some("alice@example.com")
        );
    }
    // Still the account's password that decides.
    rec.reset();
    let r = vchkpass(
        &site,
        &rec,
        &password("alice@EXAMPLE.COM", "guess", 1),
        None,
    )
    .run();
    assert_eq!((r.code, rec.ran()), (Some(42), true), "{r:?}");
    d.stop();
}

/// A traditional DES hash is checked with DES whatever PASSWORD_HASH says. C's
/// libqmail (built with its own MD5/SHA crypt, the default) hashed the password with
/// the scheme PASSWORD_HASH names (2, SHA-256, when unset) whenever the stored hash did
/// not start with `$`, so DES accounts could not log in.
#[test]
fn des_hashes_verify_whatever_password_hash_says() {
    let site = crate::authindi::site();
    let rec = Recorder::new();
    let courier = Courier::new();
    for hash in [None, Some("0"), Some("1"), Some("2"), Some("3"), Some("4")] {
        let env: Vec<(&str, &str)> = hash.map(|h| ("PASSWORD_HASH", h)).into_iter().collect();
        rec.reset();
        let r = vchkpass(&site, &rec, &password("desu", "despw", 1), None)
            .env(&env)
            .run();
        assert_eq!((r.code, rec.ran()), (Some(0), false), "{hash:?}: {r:?}");
        rec.reset();
        let r = vchkpass(&site, &rec, &password("desu", "despx", 1), None)
            .env(&env)
            .run();
        assert_eq!(
            (r.code, rec.ran()),
            (Some(42), true),
            "{hash:?} wrong: {r:?}"
        );
        let r = courier.run(&site, &login_rec("pop3", "desu", "despw"), &env);
        assert_eq!(courier.which(), "app", "authindi {hash:?}: {r:?}");
    }
}

/// With DOMAIN_LIMITS the expiry comes from the user's own vlimits row, else from the
/// real domain's, with or without the daemon. Without QUERY_CACHE C read only the row
/// of the domain as typed (vchkpass: a login through an alias domain escaped the
/// expiry of its real domain) or of the real domain (authindi): a user's own row was
/// ignored by both.
#[test]
fn expiry_is_read_from_the_real_domain_and_the_users_row() {
    let site = Site::new();
    let domains = site.dir.path().join("domains");
    for d in ["real.test", "keep.test"] {
        fs::create_dir_all(domains.join(d)).unwrap();
    }
    std::os::unix::fs::symlink(domains.join("real.test"), domains.join("alias.test")).unwrap();
    site.users_cdb(&[
        ("real.test", &domains.join("real.test")),
        ("alias.test", &domains.join("alias.test")),
        ("keep.test", &domains.join("keep.test")),
    ]);
    add_user_with_home(&site, "indimail", "amy", "real.test", "amy pw");
    add_user_with_home(&site, "indimail", "pat", "keep.test", "pat pw");
    site.sql(
        "INSERT INTO vlimits (domain, domain_expiry, passwd_expiry) VALUES \
         ('real.test', UNIX_TIMESTAMP() - 3600, -1), \
         ('pat@keep.test', -1, UNIX_TIMESTAMP() - 60)",
    );
    let d = Daemon::start(&site, &[], &[]);
    let rec = Recorder::new();
    let courier = Courier::new();
    let limits = [("DOMAIN_LIMITS", "1")];
    let cases = [
        (
            "amy@alias.test",
            "amy pw",
            "553-Sorry, your domain has expired (#5.7.1)\r\n",
            "Sorry, your domain has expired",
        ),
        (
            "pat@keep.test",
            "pat pw",
            "553-Sorry, your password has expired (#5.7.1)\r\n",
            "Sorry, your password has expired",
        ),
    ];
    for (login, pw, smtp_line, log) in cases {
        for daemon in [None, Some(&d)] {
            rec.reset();
            let r = vchkpass(&site, &rec, &password(login, pw, 1), daemon)
                .env(&limits)
                .run();
            assert_eq!(
                r.code,
                Some(1),
                "{login} (daemon: {}): {r:?}",
                daemon.is_some()
            );
            assert_eq!(r.stdout_text(), smtp_line);
            assert!(!rec.ran());
        }
        let r = courier.run(&site, &login_rec("pop3", login, pw), &limits);
        assert_eq!(courier.which(), "login", "authindi {login}: {r:?}");
        assert!(r.stderr.contains(log), "{}", r.stderr);
        // Without DOMAIN_LIMITS nothing is checked: the rows are what refuses.
        rec.reset();
        let r = vchkpass(&site, &rec, &password(login, pw, 1), None).run();
        assert_eq!(r.code, Some(0), "{login} without DOMAIN_LIMITS: {r:?}");
    }
    d.stop();
}

/// authindi looks for `nologin` files under CONTROLDIR as the environment sets it
/// (relative to SYSCONFDIR when relative), as every other control file; C used the
/// directory compiled into it whatever CONTROLDIR said.
#[test]
fn nologin_files_are_looked_up_under_controldir() {
    let site = crate::authindi::site();
    let courier = Courier::new();
    let under = |controldir: &Path, domain: &str, service: &str| {
        let dir = controldir.join(domain).join(service);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("nologin"), "").unwrap();
    };
    // The site's CONTROLDIR, absolute; the domain is the real one.
    under(&site.dir.path().join("control"), "example.com", "imap");
    let r = courier.run(
        &site,
        &login_rec("imap", "alice@alias.com", "alice pw 6"),
        &[],
    );
    assert_eq!((r.code, courier.which()), (Some(1), "none"), "{r:?}");
    assert!(
        r.stderr.contains("Login not permitted for imap"),
        "{}",
        r.stderr
    );
    let r = courier.run(
        &site,
        &login_rec("pop3", "alice@alias.com", "alice pw 6"),
        &[],
    );
    assert_eq!(courier.which(), "app", "another service: {r:?}");
    // A relative CONTROLDIR, under SYSCONFDIR.
    let other = site.dir.path().join("other-control");
    under(&other, "example.com", "pop3");
    let env = [
        ("SYSCONFDIR", site.dir.path().to_str().unwrap()),
        ("CONTROLDIR", "other-control"),
    ];
    let r = courier.run(&site, &login_rec("pop3", "alice", "alice pw 6"), &env);
    assert_eq!((r.code, courier.which()), (Some(1), "none"), "{r:?}");
    assert!(
        r.stderr.contains("Login not permitted for pop3"),
        "{}",
        r.stderr
    );
    let r = courier.run(&site, &login_rec("imap", "alice", "alice pw 6"), &env);
    assert_eq!(
        courier.which(),
        "app",
        "imap under the other CONTROLDIR: {r:?}"
    );
}

/// AUTHADDR is `user@realdomain` as the account has it, whatever separator and case the
/// client used. C cut the login at its first `@` only and kept the user's case, so
/// `alice%example.com` became `alice%example.com@example.com`. AUTHENTICATED keeps the
/// login as typed, as in C.
#[test]
fn authaddr_is_the_normalised_address() {
    let site = crate::authindi::site();
    let d = Daemon::start(&site, &[], &[]);
    let courier = Courier::new();
    for login in [
        "alice%example.com",
        "alice:example.com",
        "alice%alias.com",
        "alice:Alias.com",
        "ALICE@alias.com",
        "Alice",
    ] {
        for daemon in [None, Some(&d)] {
            let mut env = vec![];
            if let Some(d) = daemon {
                env = vec![
                    ("QUERY_CACHE", "1"),
                    ("INFIFODIR", d.fifodir.to_str().unwrap()),
                    ("FIFOTMPDIR", d.replydir.to_str().unwrap()),
                ];
            }
            let r = courier.run(&site, &login_rec("imap", login, "alice pw 6"), &env);
            assert_eq!(courier.which(), "app", "{login}: {r:?}");
            assert_eq!(
                courier.app.env_var("AUTHADDR").as_deref(),
                Some("alice@example.com"),
                "{login} (daemon: {})",
                daemon.is_some()
            );
            assert_eq!(courier.app.env_var("AUTHENTICATED").as_deref(), Some(login));
        }
    }
    d.stop();
}

fn lastauth_ip(site: &Site, user: &str, service: &str) -> Option<String> {
    let mut c = site.server.connect(Some(&site.db)).unwrap();
    c.exec_first(
        "SELECT remote_ip FROM lastauth WHERE user = ? AND domain = 'example.com' AND service = ?",
        (user, service),
    )
    .unwrap()
}

/// The lastauth row of a re-activation (`ACTI`) records the client's address as the
/// service's row does (TCP6REMOTEIP, TCPREMOTEIP, the peer of standard input); C asked
/// only the peer of standard input, which is not the client when a TLS wrapper stands
/// between (and wrote 127.0.0.1 when standard input is no socket, as here).
#[test]
fn the_reactivation_row_records_the_client_address() {
    let site = crate::authindi::site();
    add_user_with_home(&site, "indibak", "dozy", "example.com", "dozy pw");
    let courier = Courier::new();
    let r = courier.run(&site, &login_rec("imap", "sleepy", "sleepy pw"), &[]);
    assert_eq!(courier.which(), "app", "{r:?}");
    assert_eq!(
        lastauth_ip(&site, "sleepy", "ACTI").as_deref(),
        Some("192.0.2.9")
    );
    assert_eq!(
        lastauth_ip(&site, "sleepy", "imap").as_deref(),
        Some("192.0.2.9")
    );
    let r = courier.run(
        &site,
        &login_rec("pop3", "dozy", "dozy pw"),
        &[("TCP6REMOTEIP", "2001:db8::9")],
    );
    assert_eq!(courier.which(), "app", "{r:?}");
    assert_eq!(
        lastauth_ip(&site, "dozy", "ACTI").as_deref(),
        Some("2001:db8::9")
    );
    assert_eq!(
        lastauth_ip(&site, "dozy", "pop3").as_deref(),
        Some("2001:db8::9")
    );
    // Nothing tells the address (no variable, standard input no socket): recorded
    // as "unknown", where C wrote 127.0.0.1.
    add_user_with_home(&site, "indibak", "drowsy", "example.com", "drowsy pw");
    let r = courier.run(
        &site,
        &login_rec("imap", "drowsy", "drowsy pw"),
        &[("TCPREMOTEIP", "")],
    );
    assert_eq!(courier.which(), "app", "{r:?}");
    for service in ["ACTI", "imap"] {
        assert_eq!(
            lastauth_ip(&site, "drowsy", service).as_deref(),
            Some("unknown"),
            "{service}"
        );
    }
}

/// The program vchkpass executes in native mode does not inherit the drained fd 3
/// (nor does POSTAUTH: `vchkpass::postauth_and_home`); C left it open. (authindi
/// leaves fd 3 to the application and POSTAUTH as C does.)
#[test]
fn the_native_program_does_not_inherit_fd3() {
    let site = crate::vchkpass::auth_site();
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("prog");
    fs::write(
        &prog,
        "#!/bin/sh\nif [ -e /proc/$$/fd/3 ]; then s=open; else s=closed; fi\n\
         echo $s > \"$(dirname \"$0\")/fd3\"\nexit 7\n",
    )
    .unwrap();
    fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
    for var in ["NATIVE_CHECKPASSWORD", "DOVECOT_VERSION"] {
        let _ = fs::remove_file(dir.path().join("fd3"));
        let r = Start::new(
            &site,
            "vchkpass",
            &[prog.to_str().unwrap()],
            &password("alice@example.com", "alice pw 6", 1),
        )
        .env(&[(var, "1")])
        .run();
        assert_eq!(r.code, Some(7), "{var}: {r:?}");
        assert_eq!(
            fs::read_to_string(dir.path().join("fd3")).unwrap(),
            "closed\n",
            "{var}"
        );
    }
}

/// SCRAM (11-16), XOAUTH2 (17) and method numbers IndiMail does not define go to the
/// next module (native mode: exit 1), even with the account's right password in field 2.
/// C checked field 2 as a password whatever the method byte said when field 3 was empty.
#[test]
fn scram_xoauth2_and_undefined_methods_run_the_next_module() {
    let site = crate::vchkpass::auth_site();
    let rec = Recorder::new();
    let mut methods: Vec<u8> = (11..=17).collect();
    methods.extend([18, 99, 200, 255]);
    for method in methods {
        let input = fd3("alice@example.com", "alice pw 6", "", method);
        rec.reset();
        let r = vchkpass(&site, &rec, &input, None).run();
        assert_eq!(r.code, Some(42), "method {method}: {r:?}");
        assert!(rec.got_exactly(&input), "method {method}");
        assert!(r.stderr.contains("is not supported here"), "{}", r.stderr);
        rec.reset();
        let r = vchkpass(&site, &rec, &input, None)
            .env(&[("NATIVE_CHECKPASSWORD", "1")])
            .run();
        assert_eq!(
            (r.code, rec.ran()),
            (Some(1), false),
            "native {method}: {r:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// The daemon

/// DOMAIN (type 7) resolves a domain in any case and answers the real domain in lower
/// case; C compared case-sensitively and echoed `ALIAS.COM` unresolved. An unknown
/// domain is echoed as it came, as in C.
#[test]
fn domain_queries_resolve_in_any_case() {
    let site = Site::new();
    populate(&site);
    let d = Daemon::start(&site, &[], &[]);
    for (i, (asked, want)) in [
        ("ALIAS.COM", "example.com"),
        ("Alias.Com", "example.com"),
        ("EXAMPLE.COM", "example.com"),
        ("Other.NET", "example.com"),
        ("RCPT.ORG", "rcpt.org"),
        ("UNKNOWN.TEST", "UNKNOWN.TEST"),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            d.c_query(7, asked, "", &format!("d{i}")),
            text(want),
            "{asked}"
        );
    }
    d.stop();
}

/// A `:` in the gecos field is sent as a space in the PWSTRUCT; C sent it as it was,
/// and every C client then read the home directory from the rest of the gecos, the
/// quota from the home directory and so on.
#[test]
fn a_colon_in_gecos_is_sent_as_a_space() {
    let site = Site::new();
    populate(&site);
    site.sql("UPDATE indimail SET pw_gecos = 'Smith: John' WHERE pw_name = 'ann'");
    let d = Daemon::start(&site, &[], &[]);
    assert_eq!(
        d.c_query(3, "ann@example.com", "", "g"),
        text("PWSTRUCT=ann@example.com:y:1:0:Smith  John:/home/mail/example.com/ann:NOQUOTA:0")
    );
    d.stop();
}

/// A `:` in the quota field cannot be carried by a PWSTRUCT: every password answer for
/// that user is -1 (a temporary failure, which loses no mail); the row is
/// logged once per address (not at every query) until HUP, naming the address and the
/// field but no value of the row. (C sent the record, which C clients then misread.)
#[test]
fn a_colon_in_the_quota_is_minus_one_and_logged_once() {
    for env in [vec![], vec![("USE_BTREE", "1")]] {
        let site = Site::new();
        populate(&site);
        site.add_user(
            "indimail",
            "broken",
            "example.com",
            "$6$saltsalt$hashhashhash",
            0,
        );
        site.sql("UPDATE indimail SET pw_shell = '10M:100' WHERE pw_name = 'broken'");
        let d = Daemon::start(&site, &[], &env);
        let about = |l: &str| l.contains("broken@example.com") && l.contains("cannot be sent");
        let settled = |n: usize| {
            d.wait_for(about, n, "the unsendable row's log line");
            // Give a second line the time to show up if there were one.
            std::thread::sleep(Duration::from_millis(300));
            d.lines().iter().filter(|l| about(l)).count()
        };
        let tag = |n: u32| format!("b{n}");
        assert_eq!(d.c_query(3, "broken@example.com", "", &tag(1)), int(-1));
        assert_eq!(d.c_query(3, "broken@example.com", "", &tag(2)), int(-1));
        assert_eq!(d.c_query(3, "Broken@EXAMPLE.com", "", &tag(3)), int(-1));
        assert_eq!(d.c_query(3, "broken", "", &tag(4)), int(-1));
        assert_eq!(settled(1), 1, "{env:?}: {:#?}", d.lines());
        // The other users are answered.
        assert_eq!(d.c_query(1, "joe@example.com", "", &tag(5)), int(0));
        // The clients see a temporary failure.
        let r = Start::new(
            &site,
            "vchkpass",
            &["/bin/false"],
            &password("broken", "x", 1),
        )
        .daemon(&d)
        .run();
        assert_eq!(r.code, Some(111), "{r:?}");
        // HUP: logged once more.
        d.signal(Signal::SIGHUP);
        d.wait_for(|l| l.ends_with("Reconfiguring"), 1, "reconfiguring");
        assert_eq!(d.c_query(3, "broken@example.com", "", &tag(6)), int(-1));
        assert_eq!(d.c_query(3, "broken@example.com", "", &tag(7)), int(-1));
        assert_eq!(settled(2), 2, "{env:?}: {:#?}", d.lines());
        let lines = d.lines();
        let line = lines.iter().find(|l| about(l)).unwrap();
        assert!(line.starts_with("warn: "), "{line}");
        assert!(line.contains("shell"), "names the field: {line}");
        assert!(line.contains("HUP"), "{line}");
        for secret in ["saltsalt", "hashhash", "10M"] {
            assert!(
                !lines.iter().any(|l| l.contains(secret)),
                "{secret}: {lines:#?}"
            );
        }
        // Fixed and HUP: answered.
        site.sql("UPDATE indimail SET pw_shell = '10M,100' WHERE pw_name = 'broken'");
        d.signal(Signal::SIGHUP);
        d.wait_for(|l| l.ends_with("Reconfiguring"), 2, "reconfiguring");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            d.c_query(3, "broken@example.com", "", &tag(8)),
            text(
                "PWSTRUCT=broken@example.com:$6$saltsalt$hashhashhash:1:0:broken gecos:\
                 /home/mail/example.com/broken:10M,100:0"
            )
        );
        assert_eq!(d.lines().iter().filter(|l| about(l)).count(), 2, "{env:?}");
        d.stop();
    }
}
