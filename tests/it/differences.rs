//! Where vchkpass, authindi and inlookup differ from IndiMail's C programs on purpose
//! (the DIFFERENCES sections of their man pages): one test per difference, each one
//! failing if the behaviour went back to what the C program does (said beside it).

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::daemon::{int, text, Daemon};
use crate::harness::Site;
use crate::lookups::populate;
use crate::vchkpass::{password, Start};

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
