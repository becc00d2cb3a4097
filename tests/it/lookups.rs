//! Every lookup and every outcome against a real MariaDB.

use std::fs;

use indilookup::db::{gid, Database, DbError};
use indilookup::protocol::{UserStatus, VLimits};

use crate::harness::Site;

/// A small site: users in every state, aliases, relay rows, limits and the
/// three kinds of alias domain.
pub fn populate(site: &Site) {
    site.add_user("indimail", "joe", "example.com", "$5$abc$def", 0);
    site.add_user("indimail", "full", "example.com", "x", gid::BOUNCE_MAIL);
    site.add_user("indimail", "ann", "example.com", "y", 0);
    site.add_user("indimail", "jo", "example.com", "z", 0);
    site.add_user("indibak", "inact", "example.com", "w", 0);
    site.add_user("indimail", "bob", "example.org", "v", 0);
    site.sql(
        "INSERT INTO valias (alias, domain, valias_line) VALUES \
         ('sales', 'example.com', '&joe@example.com'), ('sales', 'example.com', '&ann@example.com'), \
         ('joe', 'example.com', '&joe@elsewhere.net')",
    );
    site.sql(
        "INSERT INTO relay (email, ipaddr, timestamp) VALUES \
         ('joe@example.com', '10.0.0.1', UNIX_TIMESTAMP()), \
         ('ann@example.com', '10.0.0.2', UNIX_TIMESTAMP() - 3600), \
         ('jo@example.com.au', '10.0.0.3', UNIX_TIMESTAMP()), \
         ('ghost@example.com', '10.0.0.4', UNIX_TIMESTAMP())",
    );
    site.sql(
        "INSERT INTO vlimits (domain, maxpopaccounts, diskquota, disable_imap, disable_dialup, perm_maillist) VALUES \
         ('example.com', 100, 1000000, 1, 1, 0), ('joe@example.com', 5, 2000, 0, 0, 83)",
    );
    site.sql("INSERT INTO aliasdomain (alias, domain) VALUES ('other.net', 'example.com')");
    site.control("rcpthosts", "example.com\nrcpt.org\nother.net\n");
    let domains = site.dir.path().join("domains");
    fs::create_dir(&domains).unwrap();
    fs::create_dir(domains.join("example.com")).unwrap();
    fs::create_dir(domains.join("example.org")).unwrap();
    std::os::unix::fs::symlink(domains.join("example.com"), domains.join("alias.com")).unwrap();
    site.users_cdb(&[
        ("example.com", &domains.join("example.com")),
        ("example.org", &domains.join("example.org")),
        ("alias.com", &domains.join("alias.com")),
    ]);
}

fn database(site: &Site) -> Database {
    let c = site.config();
    Database::new(c.mysql, c.lookup, c.paths, 4)
}

fn site() -> (Site, Database) {
    let site = Site::new();
    populate(&site);
    let db = database(&site);
    (site, db)
}

#[test]
fn user_status_every_outcome() {
    let (_site, db) = site();
    let cases: &[(&[u8], UserStatus)] = &[
        (b"joe@example.com", UserStatus::Active),
        (b"JOE@Example.COM", UserStatus::Active),
        (b"joe", UserStatus::Active), // default domain
        (b"inact@example.com", UserStatus::Inactive),
        (b"full@example.com", UserStatus::OverQuota),
        (b"sales@example.com", UserStatus::Alias),
        (b"nobody@example.com", UserStatus::Absent),
        (b"joe@example.org", UserStatus::Absent),
        (b"bob@example.org", UserStatus::Active),
        (b"joe@alias.com", UserStatus::Active), // users/cdb symlink
        (b"joe@other.net", UserStatus::Active), // aliasdomain table
        (b"sales@alias.com", UserStatus::Alias),
        (b"joe@unknown.test", UserStatus::Absent),
    ];
    for (email, want) in cases {
        assert_eq!(
            db.user_status(email).unwrap(),
            *want,
            "{}",
            String::from_utf8_lossy(email)
        );
    }
}

#[test]
fn password_rows() {
    let (site, db) = site();
    let pw = db.password(b"joe@example.com").unwrap().unwrap();
    assert_eq!(pw.name, b"joe");
    assert_eq!(pw.domain, b"example.com");
    assert_eq!(pw.passwd, b"$5$abc$def");
    assert_eq!((pw.uid, pw.gid, pw.inactive), (1, 0, false));
    assert_eq!(pw.gecos, b"joe gecos");
    assert_eq!(pw.dir, b"/home/mail/example.com/joe");
    assert_eq!(pw.shell, b"NOQUOTA");

    let pw = db.password(b"inact@example.com").unwrap().unwrap();
    assert!(pw.inactive);
    assert_eq!(pw.passwd, b"w");
    let pw = db.password(b"full@example.com").unwrap().unwrap();
    assert_eq!(pw.gid, gid::BOUNCE_MAIL);
    assert!(db.password(b"nobody@example.com").unwrap().is_none());
    assert!(db.password(b"sales@example.com").unwrap().is_none());
    // Through an alias domain the row of the real domain is found.
    let pw = db.password(b"joe@alias.com").unwrap().unwrap();
    assert_eq!(pw.domain, b"example.com");

    // scram is joined before the password; NULL columns read as empty / 0.
    site.sql(
        "INSERT INTO indimail (pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell, scram) \
         VALUES ('sc', 'example.com', '$6$salt$hash', NULL, NULL, 'S C', NULL, NULL, \
         '{SCRAM-SHA-256}4096,c2FsdA==,stored,server:hex:clear')",
    );
    let pw = db.password(b"sc@example.com").unwrap().unwrap();
    assert_eq!(
        pw.passwd,
        b"{SCRAM-SHA-256}4096,c2FsdA==,stored,server:hex:clear,$6$salt$hash".to_vec()
    );
    assert_eq!((pw.uid, pw.gid), (0, 0));
    assert!(pw.dir.is_empty() && pw.shell.is_empty());
    // The password is not in the Debug text.
    assert!(!format!("{pw:?}").contains("hash"));
}

#[test]
fn password_with_domain_limits_flags() {
    let site = Site::new();
    populate(&site);
    let mut c = site.config();
    c.lookup.domain_limits = true;
    let db = Database::new(c.mysql, c.lookup, c.paths, 2);
    // ann has no own limits: the domain's disable_imap and disable_dialup.
    let pw = db.password(b"ann@example.com").unwrap().unwrap();
    assert_eq!(pw.gid, gid::NO_IMAP | gid::NO_DIALUP);
    // joe's own row disables nothing, and does not lift the domain's flags.
    assert_eq!(
        db.password(b"joe@example.com").unwrap().unwrap().gid,
        gid::NO_IMAP | gid::NO_DIALUP
    );
    // V_OVERRIDE users are not subject to limits.
    site.add_user("indimail", "boss", "example.com", "p", gid::V_OVERRIDE);
    assert_eq!(
        db.password(b"boss@example.com").unwrap().unwrap().gid,
        gid::V_OVERRIDE
    );
    // bob's domain has no limits at all.
    assert_eq!(db.password(b"bob@example.org").unwrap().unwrap().gid, 0);
}

#[test]
fn relay_rows() {
    let (site, db) = site();
    assert!(db.relay(b"joe@example.com", b"10.0.0.1").unwrap());
    assert!(db.relay(b"JOE@alias.com", b"10.0.0.1").unwrap());
    assert!(
        !db.relay(b"joe@example.com", b"10.0.0.9").unwrap(),
        "other IP"
    );
    assert!(
        !db.relay(b"ann@example.com", b"10.0.0.2").unwrap(),
        "expired"
    );
    // The C prefix match let jo@example.com.au authorise jo@example.com.
    assert!(!db.relay(b"jo@example.com", b"10.0.0.3").unwrap());
    // A relay row of an address that has no account does not count.
    assert!(!db.relay(b"ghost@example.com", b"10.0.0.4").unwrap());
    assert!(!db.relay(b"joe@example.com", b"").unwrap());
    // RELAY_CLEAR_MINUTES moves the expiry.
    let mut c = site.config();
    c.lookup.relay_clear_minutes = 120;
    let db = Database::new(c.mysql, c.lookup, c.paths, 1);
    assert!(db.relay(b"ann@example.com", b"10.0.0.2").unwrap());
}

/// The HOST reply text of an address, as the daemon builds it.
fn route(db: &Database, email: &[u8]) -> Option<String> {
    let typed = db.address(email).unwrap().typed_domain;
    db.host_route(email).unwrap().map(|r| r.reply_text(&typed))
}

#[test]
fn host_routes() {
    let (site, db) = site();
    site.control("hostip", "192.0.2.7\n");
    assert_eq!(
        route(&db, b"joe@Example.com").as_deref(),
        Some("Example.com:192.0.2.7:25")
    );
    assert_eq!(
        route(&db, b"inact@example.com").as_deref(),
        Some("example.com:192.0.2.7:25")
    );
    assert_eq!(db.host_route(b"nobody@example.com").unwrap(), None);
    assert_eq!(db.host_route(b"sales@example.com").unwrap(), None);
    // smtproutes, then qmtproutes, then the smtp_port table.
    site.control("smtproutes", "example.com:mx:2525\n");
    assert_eq!(
        route(&db, b"joe@example.com").as_deref(),
        Some("example.com:192.0.2.7:2525")
    );
    site.control("qmtproutes", ":mx\n");
    assert_eq!(
        route(&db, b"joe@example.com").as_deref(),
        Some("example.com:192.0.2.7:209")
    );
    site.sql(
        "INSERT INTO smtp_port (host, src_host, domain, port) VALUES \
         ('192.0.2.7', '*', 'example.com', 26), ('192.0.2.7', '192.0.2.7', 'example.com', 27), \
         ('192.0.2.8', '*', 'example.com', 28)",
    );
    assert_eq!(
        route(&db, b"joe@example.com").as_deref(),
        Some("example.com:192.0.2.7:27")
    );
    site.sql("DELETE FROM smtp_port WHERE port = 27");
    assert_eq!(
        route(&db, b"joe@example.com").as_deref(),
        Some("example.com:192.0.2.7:26")
    );
}

#[test]
fn alias_lines() {
    let (_site, db) = site();
    let mut lines = db.aliases(b"sales@example.com").unwrap();
    lines.sort();
    assert_eq!(
        lines,
        vec![b"&ann@example.com".to_vec(), b"&joe@example.com".to_vec()]
    );
    assert_eq!(
        db.aliases(b"joe@alias.com").unwrap(),
        vec![b"&joe@elsewhere.net".to_vec()]
    );
    assert!(db.aliases(b"ann@example.com").unwrap().is_empty());
    assert!(db.aliases(b"nobody@example.com").unwrap().is_empty());
}

#[test]
fn limits_user_domain_default() {
    let (_site, db) = site();
    let joe = db.limits(b"joe@example.com").unwrap().unwrap();
    assert_eq!(joe.limit_type, 2);
    assert_eq!((joe.maxpopaccounts, joe.diskquota), (5, 2000));
    // 83 = 0b001_010_011: three 3-bit groups.
    assert_eq!(
        (
            joe.perm_maillist,
            joe.perm_maillist_users,
            joe.perm_maillist_moderators
        ),
        (3, 2, 1)
    );
    let ann = db.limits(b"ann@example.com").unwrap().unwrap();
    assert_eq!(ann.limit_type, 1);
    assert_eq!(
        (ann.maxpopaccounts, ann.diskquota, ann.disable_imap),
        (100, 1000000, 1)
    );
    assert_eq!(ann.maxaliases, -1);
    let dom = db.limits(b"example.com").unwrap().unwrap();
    assert_eq!(dom, ann);
    // A user whose domain has no limits: the defaults, limit_type 0.
    let bob = db.limits(b"bob@example.org").unwrap().unwrap();
    assert_eq!(bob, VLimits::default());
    // Per-user limits found through an alias domain.
    assert_eq!(db.limits(b"joe@alias.com").unwrap().unwrap(), joe);
    assert_eq!(db.limits(b"example.org").unwrap(), None);
    assert_eq!(db.limits(b"nobody@example.com").unwrap(), None);
    // Same question twice: limit_type does not leak between answers.
    assert_eq!(
        db.limits(b"bob@example.org").unwrap().unwrap().limit_type,
        0
    );
}

#[test]
fn real_domains() {
    let (site, db) = site();
    let rd = |d: &str| db.real_domain(d).unwrap();
    assert_eq!(rd("example.com").as_deref(), Some("example.com"));
    assert_eq!(rd("EXAMPLE.COM").as_deref(), Some("example.com"));
    assert_eq!(rd("alias.com").as_deref(), Some("example.com"));
    assert_eq!(rd("other.net").as_deref(), Some("example.com"));
    assert_eq!(rd("rcpt.org").as_deref(), Some("rcpt.org"));
    assert_eq!(rd("unknown.test"), None);
    assert_eq!(rd(""), None);
    let mut c = site.config();
    c.lookup.real_domains = vec!["listed.test".into()];
    c.lookup.alias_domains = vec!["alias.test".into()];
    let db = Database::new(c.mysql, c.lookup, c.paths, 1);
    assert_eq!(
        db.real_domain("listed.test").unwrap().as_deref(),
        Some("listed.test")
    );
    assert_eq!(
        db.real_domain("alias.test").unwrap().as_deref(),
        Some("alias.test")
    );
}

#[test]
fn hostile_addresses_are_absent_never_errors() {
    let (_site, db) = site();
    let long = format!("{}@example.com", "a".repeat(5000));
    let hostile: Vec<Vec<u8>> = [
        "joe\"@example.com",
        "joe'@example.com",
        "joe\\@example.com",
        "jo%@example.com",
        "j_e@example.com",
        "jo_@example.com",
        "%@example.com",
        "_oe@example.com",
        "joe;@example.com",
        "joe@example.com;DROP TABLE indimail",
        "joe'--@example.com",
        "joe/**/@example.com",
        "' OR '1'='1@example.com",
        "joe@example.com' OR 1=1 -- ",
        "joe@%",
        "joe@example.%",
        "joe@example._om",
        "jöe@example.com",
        "JOE\u{130}@example.com",
        long.as_str(),
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([
        b"joe\0@example.com".to_vec(),
        b"joe\xff@example.com".to_vec(),
        b"joe @example.com".to_vec(),
    ])
    .collect();
    for email in &hostile {
        let shown = String::from_utf8_lossy(email);
        assert_eq!(
            db.user_status(email).unwrap(),
            UserStatus::Absent,
            "{shown}"
        );
        assert!(db.password(email).unwrap().is_none(), "{shown}");
        assert!(!db.relay(email, b"10.0.0.1").unwrap(), "{shown}");
        assert!(db.aliases(email).unwrap().is_empty(), "{shown}");
        assert!(db.host_route(email).unwrap().is_none(), "{shown}");
        assert!(
            db.limits(email).unwrap().is_none_or(|l| l.limit_type != 2),
            "{shown}"
        );
    }
    // The tables are intact.
    assert_eq!(
        db.user_status(b"joe@example.com").unwrap(),
        UserStatus::Active
    );
}

#[test]
fn database_errors_are_never_absent() {
    let site = Site::new();
    populate(&site);
    let mut c = site.config();
    c.mysql.socket = Some(site.dir.path().join("no-such-socket"));
    let db = Database::new(c.mysql, c.lookup, c.paths, 1);
    assert!(matches!(
        db.user_status(b"joe@example.com"),
        Err(DbError::Connect(_))
    ));
    assert!(db.password(b"nobody@example.com").is_err());
    assert!(db.relay(b"joe@example.com", b"10.0.0.1").is_err());
    assert!(db.aliases(b"sales@example.com").is_err());
    assert!(db.limits(b"example.com").is_err());
    assert!(db.limits(b"joe@example.com").is_err());
    assert!(db.host_route(b"joe@example.com").is_err());
    // A domain outside users/cdb needs the aliasdomain table: an error too.
    assert!(db.real_domain("other.net").is_err());

    // TLS asked for on a unix socket, which would stay plain text: a clear
    // error, no panic, no connection.
    let mut c = site.config();
    c.mysql.ssl = true;
    let db = Database::new(c.mysql, c.lookup, c.paths, 1);
    match db.user_status(b"joe@example.com") {
        Err(e @ DbError::Tls { .. }) => {
            assert!(e.to_string().contains("TLS needs a TCP connection"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db.connection_counts(), (0, 0));

    // A missing table is an error, not "absent".
    let db = database(&site);
    site.sql("DROP TABLE valias");
    assert!(db.user_status(b"nobody@example.com").is_err());
    assert!(db.aliases(b"sales@example.com").is_err());
}

#[test]
fn reconnects_after_the_connection_is_killed() {
    let (site, db) = site();
    assert_eq!(
        db.user_status(b"joe@example.com").unwrap(),
        UserStatus::Active
    );
    assert_eq!(db.connection_counts(), (1, 1));
    // Kill every connection to this test's database but the site's own.
    let mut admin = crate::harness::server().connect(None).unwrap();
    use mysql::prelude::Queryable;
    let ids: Vec<u64> = admin
        .exec(
            "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
            (site.db.as_str(),),
        )
        .unwrap();
    let site_conn: u64 = {
        // The site's own connection is idle in "Sleep"; keep it by killing only
        // connections made after it (higher ids).
        *ids.iter().min().unwrap()
    };
    for id in ids.iter().filter(|&&id| id != site_conn) {
        admin.query_drop(format!("KILL {id}")).unwrap();
    }
    assert_eq!(
        db.user_status(b"joe@example.com").unwrap(),
        UserStatus::Active
    );
    assert_eq!(db.connection_counts(), (1, 2), "one reconnect");
    // close_all drops the connections; the next lookup reconnects.
    db.close_connections();
    assert_eq!(db.connection_counts().0, 0);
    assert_eq!(
        db.user_status(b"inact@example.com").unwrap(),
        UserStatus::Inactive
    );
    assert_eq!(db.connection_counts(), (1, 3));
}

#[test]
fn pool_is_bounded_and_shared_by_threads() {
    let site = Site::new();
    populate(&site);
    let c = site.config();
    let db = std::sync::Arc::new(Database::new(c.mysql, c.lookup, c.paths, 2));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let (email, want) = if (t + i) % 2 == 0 {
                        (&b"joe@example.com"[..], UserStatus::Active)
                    } else {
                        (&b"inact@example.com"[..], UserStatus::Inactive)
                    };
                    assert_eq!(db.user_status(email).unwrap(), want);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (open, made) = db.connection_counts();
    assert!(open <= 2 && made <= 2, "open {open}, made {made}");
    assert!(made >= 1);
}

#[test]
fn tables_with_different_collations_still_answer() {
    let (site, db) = site();
    site.sql("ALTER TABLE indimail CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci");
    site.sql("ALTER TABLE indibak CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
    site.sql("ALTER TABLE valias CONVERT TO CHARACTER SET latin1 COLLATE latin1_general_ci");
    for (email, want) in [
        (&b"joe@example.com"[..], UserStatus::Active),
        (b"inact@example.com", UserStatus::Inactive),
        (b"sales@example.com", UserStatus::Alias),
        (b"nobody@example.com", UserStatus::Absent),
    ] {
        assert_eq!(db.user_status(email).unwrap(), want, "{email:?}");
    }
    assert_eq!(
        db.password(b"inact@example.com").unwrap().unwrap().passwd,
        b"w"
    );
    // Non-ASCII addresses are absent without SQL, whatever the collation.
    assert_eq!(
        db.user_status("jöe@example.com".as_bytes()).unwrap(),
        UserStatus::Absent
    );
}

#[test]
fn empty_scram_is_no_scram() {
    let (site, db) = site();
    site.sql("UPDATE indimail SET scram = '' WHERE pw_name = 'joe'");
    assert_eq!(
        db.password(b"joe@example.com").unwrap().unwrap().passwd,
        b"$5$abc$def"
    );
}

#[test]
fn a_rebuilt_users_cdb_is_read_again() {
    let (site, db) = site();
    assert_eq!(db.real_domain("new.test").unwrap(), None);
    assert_eq!(
        db.user_status(b"joe@alias.com").unwrap(),
        UserStatus::Active
    );
    // qmail-newu writes a new file and renames it over the old one.
    let domains = site.dir.path().join("domains");
    fs::create_dir(domains.join("new.test")).unwrap();
    site.users_cdb(&[
        ("example.com", &domains.join("example.com")),
        ("new.test", &domains.join("new.test")),
    ]);
    assert_eq!(
        db.real_domain("new.test").unwrap().as_deref(),
        Some("new.test")
    );
    // alias.com is gone from users/cdb (it is not in rcpthosts either).
    assert_eq!(db.real_domain("alias.com").unwrap(), None);
}
