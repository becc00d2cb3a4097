//! Faults injected into a running inlookup: the database stopped under load
//! and started again, a query stalled behind a table lock, clients that die
//! or pull their reply FIFO away in the middle of a request, a reply FIFO
//! the daemon may not write, a full FIFOTMPDIR, and the daemon killed while
//! vchkpass and authindi wait for it. Every case checks what the clients
//! got, that the daemon goes on answering others, and (where the daemon
//! survives) that its descriptors return to what they were before.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indilookup::client::ClientError;
use indilookup::protocol::UserStatus;
use indilookup::query::QueryError;
use mysql::prelude::Queryable;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use testkit::daemon::stat;
use testkit::Guarded;

use crate::authindi::{login_rec, site as authindi_site, Chain};
use crate::daemon::{
    expectations, fds_and_rss, int, reply_fifos, request_bytes, send_raw, send_waiting, text,
    Daemon,
};
use crate::harness::{OwnServer, Site};
use crate::lookups::populate;
use crate::query::remote;
use crate::vchkpass::{auth_site, password, Recorder, Run, Start};

/// Longer than anything the daemon should take: a client that has no answer
/// after this long is counted as hung.
const HANG: Duration = Duration::from_secs(10);

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A request sent as the C client sends it, whose reply is still to be read.
struct Pending {
    reply: PathBuf,
    rfd: File,
}

/// What a client got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    /// The daemon closed the reply FIFO after these bytes (none: it closed
    /// it without a word).
    Reply(Vec<u8>),
    /// No end of reply before the deadline (the bytes read so far).
    Silence(Vec<u8>),
}

impl Pending {
    /// Make a reply FIFO in `dir`, open it for reading, write the request.
    fn send(d: &Daemon, dir: &Path, qtype: u8, email: &str, ip: &str) -> Pending {
        Pending::send_with(d, dir, qtype, email, ip, |_| {})
    }

    /// Like `send`, with `prepare` run on the reply FIFO before the request
    /// goes out.
    fn send_with(
        d: &Daemon,
        dir: &Path,
        qtype: u8,
        email: &str,
        ip: &str,
        prepare: impl FnOnce(&Path),
    ) -> Pending {
        let p = Pending::fifo(dir);
        prepare(&p.reply);
        send_raw(&d.fifodir, &request_bytes(qtype, email, &p.reply, ip));
        p
    }

    /// Make a reply FIFO in `dir` and open it for reading; no request yet.
    fn fifo(dir: &Path) -> Pending {
        let reply = dir.join(format!(
            "{}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        testkit::fifo::mkfifo(&reply, 0o660);
        let rfd = testkit::fifo::reader(&reply);
        Pending { reply, rfd }
    }

    /// Has a writer come to the reply FIFO (data waiting, or it came and
    /// went)? Never waits.
    fn answered(&self) -> bool {
        let mut p = [PollFd::new(self.rfd.as_fd(), PollFlags::POLLIN)];
        poll(&mut p, PollTimeout::ZERO).unwrap() > 0
    }

    /// Read the reply until the daemon closes the FIFO, for at most `limit`.
    fn wait(&self, limit: Duration) -> Got {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let mut rfd = &self.rfd;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::Silence(out);
            }
            let mut p = [PollFd::new(rfd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut p,
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => panic!("poll: {e}"),
            }
            let hup = p[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP));
            match rfd.read(&mut buf) {
                Ok(0) if hup => return Got::Reply(out),
                Ok(0) => std::thread::sleep(Duration::from_millis(1)),
                Ok(n) => out.extend(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read {}: {e}", self.reply.display()),
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.reply);
    }
}

/// One question and its answer, for the daemon's own reply directory.
fn ask(d: &Daemon, qtype: u8, email: &str, ip: &str) -> Got {
    Pending::send(d, &d.replydir, qtype, email, ip).wait(HANG)
}

/// How an answer compares with the right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Correct,
    /// -1: a temporary failure, which the client reports as such.
    TempFail,
    /// Anything else: "absent" for a user who exists, other data, a short
    /// reply.
    Wrong,
    /// The reply FIFO was closed without an answer.
    Lost,
    /// No answer within HANG.
    Hang,
}

fn classify(got: &Got, want: &[u8]) -> Class {
    match got {
        Got::Reply(b) if b == want => Class::Correct,
        Got::Reply(b) if *b == int(-1) => Class::TempFail,
        Got::Reply(b) if b.is_empty() => Class::Lost,
        Got::Reply(_) => Class::Wrong,
        Got::Silence(_) => Class::Hang,
    }
}

/// The expected reply of one of the daemon tests' questions.
fn expected(hostip: &str, qtype: u8, email: &str, ip: &str) -> Vec<u8> {
    expectations(hostip)
        .into_iter()
        .find(|(t, e, i, _)| *t == qtype && *e == email && *i == ip)
        .map(|(_, _, _, want)| want)
        .unwrap_or_else(|| panic!("no expectation for type {qtype} {email} {ip}"))
}

/// Descriptors the daemon has open.
fn fds(d: &Daemon) -> usize {
    fds_and_rss(d.pid()).0
}

/// Descriptors other than database connections: those come and go with the
/// database, everything else must come back to where it was.
fn fds_besides_db(d: &Daemon) -> (usize, u64) {
    let line = d.stats_line("Database connections open");
    let open = stat(&line, "Database connections open");
    let n = fds(d);
    (n - open as usize, open)
}

/// The table lock that stalls every lookup of a user: InnoDB reads take no
/// row locks, so a row lock would not stop them; a table write lock does
/// (the statements wait for the table's metadata lock).
struct TableLock(mysql::Conn);

impl TableLock {
    fn take(site: &Site, table: &str) -> TableLock {
        let mut c = site.server.connect(Some(&site.db)).unwrap();
        c.query_drop(format!("LOCK TABLES {table} WRITE")).unwrap();
        TableLock(c)
    }

    fn release(mut self) {
        self.0.query_drop("UNLOCK TABLES").unwrap();
    }
}

/// Statements of this site's database waiting for a table lock.
fn lock_waiters(site: &Site) -> u64 {
    let mut c = site.server.connect(None).unwrap();
    c.exec_first(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
         WHERE DB = ? AND STATE LIKE 'Waiting for table%'",
        (&site.db,),
    )
    .unwrap()
    .unwrap()
}

/// Wait until `n` statements of this site wait for the table lock: proof
/// that the lock really stops the daemon's lookups.
fn wait_lock_waiters(site: &Site, n: u64) {
    let deadline = Instant::now() + HANG;
    loop {
        let now = lock_waiters(site);
        if now >= n {
            assert_eq!(now, n, "more statements waiting than sent");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} of {n} lookups waiting for the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// The database stopped under load

/// `n` more users u0..u{n-1}@example.com, password `p<i>`.
fn add_numbered_users(site: &Site, n: usize) {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "('u{i}', 'example.com', 'p{i}', 1, 0, 'u{i} gecos', '/home/mail/example.com/u{i}', 'NOQUOTA')"
            )
        })
        .collect();
    site.sql(&format!(
        "INSERT INTO indimail (pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell) \
         VALUES {}",
        rows.join(", ")
    ));
}

/// The questions about numbered user `i` and their answers.
fn numbered(i: usize, qtype: u8) -> (u8, String, &'static str, Vec<u8>) {
    let email = format!("u{i}@example.com");
    match qtype {
        1 => (1, email, "", int(0)),
        2 => (2, email, "10.0.0.1", int(0)),
        3 => {
            let want = text(&format!(
                "PWSTRUCT=u{i}@example.com:p{i}:1:0:u{i} gecos:/home/mail/example.com/u{i}:NOQUOTA:0"
            ));
            (3, email, "", want)
        }
        _ => (4, email, "", text("example.com:192.0.2.7:25")),
    }
}

/// One answered request of the load.
struct Record {
    daemon: usize,
    sent: Instant,
    done: Instant,
    class: Class,
    what: String,
}

/// Users asked by the load; the ones above are asked once each, after an
/// outage (three outages, two daemons).
const LOAD_USERS: usize = 300;
const PROBE_USERS: usize = 6;

/// 16 clients ask two daemons (cache on, cache off) mixed questions: the
/// daemon tests' questions (positive and negative answers, every type) and
/// questions about 300 more users, most of them not cached. Their MariaDB is
/// stopped and started again, then killed and started again, then frozen
/// (SIGSTOP) for longer than the daemons' MySQL read timeout and let go on.
/// Every answer is right or -1 (from the cache, the right answer while the
/// database is down); none is wrong, lost or late; every answer outside the
/// outages is right; after each outage the first new question to each
/// daemon gets the right answer, without a restart (the time from the
/// server's return to those answers is printed).
#[test]
fn database_stopped_killed_and_frozen_under_load() {
    let mut own = OwnServer::start();
    let sites: Vec<Site> = (0..2).map(|_| Site::on(&own.server)).collect();
    for site in &sites {
        populate(site);
        add_numbered_users(site, LOAD_USERS + PROBE_USERS);
        site.control("hostip", "192.0.2.7");
    }
    let settings: [(&str, &[(&str, &str)]); 2] = [
        (
            "cache on",
            &[
                ("USE_BTREE", "1"),
                ("INLOOKUP_CACHE_TTL", "1"),
                ("INLOOKUP_CACHE_NEGATIVE_TTL", "1"),
                ("MYSQL_OPT_READ_TIMEOUT", "3"),
            ],
        ),
        ("cache off", &[("MYSQL_OPT_READ_TIMEOUT", "3")]),
    ];
    let daemons: Arc<Vec<Daemon>> = Arc::new(
        sites
            .iter()
            .zip(settings)
            .map(|(site, (_, env))| Daemon::start(site, &["-i", "4"], env))
            .collect(),
    );
    let cases = Arc::new(expectations("192.0.2.7"));
    // Warm up: every question of the daemon tests once.
    for d in daemons.iter() {
        for (q, email, ip, want) in cases.iter() {
            assert_eq!(
                ask(d, *q, email, ip),
                Got::Reply(want.clone()),
                "{q} {email}"
            );
        }
    }
    let before: Vec<(usize, u64)> = daemons.iter().map(fds_besides_db).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..16u64)
        .map(|t| {
            let (daemons, cases, stop) = (daemons.clone(), cases.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15 ^ (t + 1);
                let mut next = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                let mut out = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let which = (t as usize + i) % 2;
                    i += 1;
                    let (q, email, ip, want) = if next() % 2 == 0 {
                        let (q, e, ip, w) = &cases[(next() % cases.len() as u64) as usize];
                        (*q, e.to_string(), *ip, w.clone())
                    } else {
                        numbered(
                            (next() % LOAD_USERS as u64) as usize,
                            1 + (next() % 4) as u8,
                        )
                    };
                    let sent = Instant::now();
                    let got = ask(&daemons[which], q, &email, ip);
                    let class = classify(&got, &want);
                    out.push(Record {
                        daemon: which,
                        sent,
                        done: Instant::now(),
                        class,
                        what: format!("type {q} {email}: {got:?}, want {want:?}"),
                    });
                    // Many clients, not a flood: the machine is shared with
                    // the other tests.
                    std::thread::sleep(Duration::from_millis(10));
                }
                out
            })
        })
        .collect();

    // Stale answers the cached daemon has served so far.
    let stale = || -> u64 {
        [
            "Cache 'User Query'",
            "Cache 'Password Query'",
            "Cache 'Host Query'",
        ]
        .iter()
        .map(|c| stat(&daemons[0].stats_line(c), "stale"))
        .sum()
    };
    // Each outage: (what, when it began, when the server was back, when
    // both daemons answered right again).
    let mut outages: Vec<(&str, Instant, Instant, Instant)> = Vec::new();
    let mut stale_during = Vec::new();
    // Lookups each daemon answered -1 because of the database (its
    // statistics): the outage seen by the daemon, also when the answers
    // reached no client in time.
    let errors = |d: &Daemon| stat(&d.stats_line("Bad requests"), "Errors");
    let mut errors_during: Vec<[u64; 2]> = Vec::new();
    for what in ["stopped", "killed", "frozen"] {
        std::thread::sleep(Duration::from_millis(1000));
        let stale_before = stale();
        let errors_before = [errors(&daemons[0]), errors(&daemons[1])];
        let began = Instant::now();
        match what {
            "stopped" => {
                own.stop();
                std::thread::sleep(Duration::from_millis(1500));
                own.resume();
            }
            "killed" => {
                own.kill();
                std::thread::sleep(Duration::from_millis(1500));
                own.resume();
            }
            _ => {
                // Longer than the daemons' read timeout (below).
                let frozen = own.freeze();
                std::thread::sleep(Duration::from_millis(4500));
                drop(frozen);
            }
        }
        let back = Instant::now();
        // Recovery: a question nobody asked yet (so not in the cache), to
        // each daemon. The daemons wait for nothing before they use the
        // database again, so the first one sent once the server is back gets
        // the right answer.
        for (n, d) in daemons.iter().enumerate() {
            let (q, email, ip, want) = numbered(LOAD_USERS + outages.len() * 2 + n, 3);
            let got = ask(d, q, &email, ip);
            assert_eq!(
                classify(&got, &want),
                Class::Correct,
                "{}, first question after mariadbd was {what} and back: {got:?}",
                settings[n].0
            );
        }
        outages.push((what, began, back, Instant::now()));
        stale_during.push(stale() - stale_before);
        errors_during.push([
            errors(&daemons[0]) - errors_before[0],
            errors(&daemons[1]) - errors_before[1],
        ]);
    }
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let records: Vec<Record> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();

    for (n, (name, _)) in settings.iter().enumerate() {
        let mine: Vec<&Record> = records.iter().filter(|r| r.daemon == n).collect();
        let mut counts: BTreeMap<Class, usize> = BTreeMap::new();
        for r in &mine {
            *counts.entry(r.class).or_default() += 1;
        }
        let slowest = mine.iter().map(|r| r.done - r.sent).max().unwrap();
        eprintln!(
            "{name}: {} answers {counts:?}, slowest {:.3} s",
            mine.len(),
            slowest.as_secs_f64()
        );
        for r in &mine {
            assert!(
                matches!(r.class, Class::Correct | Class::TempFail),
                "{name}: {:?}: {}",
                r.class,
                r.what
            );
            // Outside the outages, every answer is right.
            let up = outages
                .iter()
                .all(|(_, began, _, recovered)| r.done < *began || r.sent > *recovered);
            if up {
                assert_eq!(r.class, Class::Correct, "{name}, database up: {}", r.what);
            }
        }
        for (((what, began, back, recovered), stale), errors) in
            outages.iter().zip(&stale_during).zip(&errors_during)
        {
            let during: Vec<&&Record> = mine
                .iter()
                .filter(|r| r.done >= *began && r.sent <= *recovered)
                .collect();
            let failed = during.iter().filter(|r| r.class == Class::TempFail).count();
            let slowest = during.iter().map(|r| r.done - r.sent).max().unwrap();
            // Stale answers are right answers that only the cache could give.
            let stale = if n == 0 { *stale } else { 0 };
            eprintln!(
                "  mariadbd {what} for {:.2} s: {} answers, {failed} of them -1, {stale} stale; \
                 slowest {:.3} s; both daemons right again {:.3} s after it was back",
                (*back - *began).as_secs_f64(),
                during.len(),
                slowest.as_secs_f64(),
                (*recovered - *back).as_secs_f64()
            );
            // The outage was seen (else this test proved nothing): by the
            // clients (-1, stale answers), or at least by the daemon (its
            // database errors; on a loaded machine their -1 may reach no
            // client in time).
            assert!(
                failed as u64 + stale + errors[n] > 0,
                "{name}: neither -1 nor a stale answer nor a database error while mariadbd was {what}"
            );
        }
        assert!(
            mine.iter().any(|r| r.sent > outages.last().unwrap().3),
            "{name}: no load after the last recovery"
        );
    }
    assert!(
        stale_during.iter().sum::<u64>() > 0,
        "no stale answer from the cache"
    );
    for (d, was) in daemons.iter().zip(&before) {
        let now = fds_besides_db(d);
        assert_eq!(now.0, was.0, "descriptors besides database connections");
    }
    let daemons = Arc::into_inner(daemons).unwrap();
    for d in daemons {
        assert!(d.stop().success());
    }
}

// ---------------------------------------------------------------------------
// A query stalled in the database

/// One lookup stalled behind a table lock holds one worker; the others keep
/// answering lookups in other tables, and the reader keeps answering cache
/// hits. With every worker stalled and the queue full, more requests get -1
/// at once, while the lock is still held. When the lock goes within the
/// daemon's MySQL read timeout, the stalled and queued lookups get their
/// right answers; when it is held longer, they get -1 after that timeout.
#[test]
fn stalled_query_blocks_no_one_and_the_queue_is_bounded() {
    let site = Site::new();
    populate(&site);
    site.control("hostip", "192.0.2.7");
    let want = |q: u8, email: &str, ip: &str| expected("192.0.2.7", q, email, ip);
    let d = Daemon::start(
        &site,
        &["-i", "1", "--workers", "2", "--queue", "2"],
        &[("USE_BTREE", "1")],
    );
    // In the cache from now on.
    assert_eq!(
        ask(&d, 1, "joe@example.com", ""),
        Got::Reply(int(0)),
        "warm-up"
    );
    let (fds0, _) = fds_besides_db(&d);

    // A row lock does not stall a lookup: InnoDB reads the last committed
    // version without waiting.
    let mut row_lock = site.server.connect(Some(&site.db)).unwrap();
    row_lock.query_drop("START TRANSACTION").unwrap();
    row_lock
        .query_drop("SELECT * FROM indimail WHERE pw_name = 'ann' FOR UPDATE")
        .unwrap();
    row_lock
        .query_drop("UPDATE indimail SET pw_passwd = 'new' WHERE pw_name = 'ann'")
        .unwrap();
    let pw_ann = "PWSTRUCT=ann@example.com:y:1:0:ann gecos:/home/mail/example.com/ann:NOQUOTA:0";
    assert_eq!(ask(&d, 3, "ann@example.com", ""), Got::Reply(text(pw_ann)));
    row_lock.query_drop("ROLLBACK").unwrap();
    drop(row_lock);

    // A table lock does.
    let lock = TableLock::take(&site, "indimail");
    let stalled1 = Pending::send(&d, &d.replydir, 1, "ann@example.com", "");
    wait_lock_waiters(&site, 1);
    let state: String = site
        .server
        .connect(None)
        .unwrap()
        .exec_first(
            "SELECT STATE FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE LIKE 'Waiting%'",
            (&site.db,),
        )
        .unwrap()
        .unwrap();
    eprintln!("a lookup behind LOCK TABLES indimail WRITE: {state:?}");
    // The other worker answers what needs no user table.
    for (q, email) in [
        (5, "sales@example.com"),
        (7, "unknown.test"),
        (6, "example.org"),
    ] {
        assert_eq!(
            ask(&d, q, email, ""),
            Got::Reply(want(q, email, "")),
            "type {q} {email} with one worker stalled"
        );
    }
    // The reader answers cache hits.
    assert_eq!(ask(&d, 1, "joe@example.com", ""), Got::Reply(int(0)));
    assert!(!stalled1.answered(), "the lock does not stop the lookup");

    // Both workers stalled, then two requests fill the queue.
    let stalled2 = Pending::send(&d, &d.replydir, 3, "joe@example.com", "");
    wait_lock_waiters(&site, 2);
    let queued = [
        Pending::send(&d, &d.replydir, 1, "full@example.com", ""),
        Pending::send(&d, &d.replydir, 4, "joe@example.com", ""),
    ];
    // More: -1 at once, lock or no lock; a cache hit is still answered.
    let started = Instant::now();
    for (q, email, ip) in [
        (1, "jo@example.com", ""),
        (5, "ann@example.com", ""),
        (7, "alias.com", ""),
        (2, "joe@example.com", "10.0.0.1"),
    ] {
        assert_eq!(
            ask(&d, q, email, ip),
            Got::Reply(int(-1)),
            "type {q} {email}, queue full"
        );
    }
    let refused_in = started.elapsed();
    assert_eq!(ask(&d, 1, "joe@example.com", ""), Got::Reply(int(0)));
    assert_eq!(lock_waiters(&site), 2, "the lock is still held");
    assert!(!stalled1.answered() && !stalled2.answered());
    assert!(queued.iter().all(|p| !p.answered()));
    let full = d.stats_line("Bad requests");
    assert_eq!(stat(&full, "Queue full"), 4, "{full}");

    let released = Instant::now();
    lock.release();
    for (p, (q, email)) in [stalled1, stalled2].iter().chain(&queued).zip([
        (1, "ann@example.com"),
        (3, "joe@example.com"),
        (1, "full@example.com"),
        (4, "joe@example.com"),
    ]) {
        let got = p.wait(HANG);
        let w = match email {
            "ann@example.com" => int(0),
            _ => want(q, email, ""),
        };
        assert_eq!(got, Got::Reply(w), "type {q} {email} after the lock");
    }
    eprintln!(
        "queue full: 4 requests answered -1 in {:.3} s while the lock was held; \
         4 stalled or queued lookups answered right {:.3} s after it was released",
        refused_in.as_secs_f64(),
        released.elapsed().as_secs_f64()
    );
    assert_eq!(fds_besides_db(&d).0, fds0, "descriptors");
    assert!(d.stop().success());

    // Held past the MySQL read timeout: -1 after it, not after the lock.
    let d = Daemon::start(
        &site,
        &["-i", "1", "--workers", "1"],
        &[("MYSQL_OPT_READ_TIMEOUT", "2")],
    );
    assert_eq!(ask(&d, 1, "ann@example.com", ""), Got::Reply(int(0)));
    let (fds0, _) = fds_besides_db(&d);
    let lock = TableLock::take(&site, "indimail");
    let started = Instant::now();
    let stalled = Pending::send(&d, &d.replydir, 1, "joe@example.com", "");
    let got = stalled.wait(HANG);
    let after = started.elapsed();
    assert_eq!(got, Got::Reply(int(-1)), "stalled past the read timeout");
    assert!(lock_waiters(&site) > 0, "answered while the lock was held");
    assert!(after >= Duration::from_secs(2), "before the read timeout");
    lock.release();
    eprintln!(
        "stalled past MYSQL_OPT_READ_TIMEOUT=2: -1 after {:.3} s",
        after.as_secs_f64()
    );
    assert_eq!(ask(&d, 1, "joe@example.com", ""), Got::Reply(int(0)));
    assert_eq!(fds_besides_db(&d).0, fds0, "descriptors");
    let line = d.stats_line("Bad requests");
    assert_eq!(stat(&line, "Errors"), 1, "{line}");
    // The timed-out statement was not tried again on a new connection (that
    // would have held the worker for another timeout): one connection
    // before, one after.
    let line = d.stats_line("Database connections open");
    assert_eq!(stat(&line, "made"), 2, "{line}");
    assert!(d.stop().success());
}

// ---------------------------------------------------------------------------
// Clients that die or take their reply FIFO away

/// A client process: it makes `reply` (a FIFO) and opens it for reading as
/// inquery() does, writes `bytes` into the server FIFO with one write, and
/// then waits to be killed. All of that happens before `spawn` returns (it
/// returns once the process has become `sleep`), so the request is in the
/// FIFO when this returns.
/// Killed (SIGKILL) when dropped.
fn client_process(infifo: &Path, reply: Option<&Path>, bytes: Vec<u8>) -> Guarded {
    let infifo = CString::new(infifo.as_os_str().as_bytes()).unwrap();
    let reply = reply.map(|p| CString::new(p.as_os_str().as_bytes()).unwrap());
    let mut cmd = Command::new("sleep");
    cmd.arg("60")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only mkfifo, open, write and close,
    // which are async-signal-safe, on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fail = || Err(std::io::Error::last_os_error());
            if let Some(r) = &reply {
                if libc::mkfifo(r.as_ptr(), 0o660) == -1
                    || libc::open(r.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) == -1
                {
                    return fail();
                }
            }
            let fd = libc::open(infifo.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK);
            if fd == -1 {
                return fail();
            }
            if libc::write(fd, bytes.as_ptr().cast(), bytes.len()) != bytes.len() as isize {
                return fail();
            }
            libc::close(fd);
            Ok(())
        });
    }
    Guarded::spawn(&mut cmd).expect("client process")
}

fn kill(client: Guarded) {
    drop(client);
}

/// Clients killed half-way through writing a request, or after sending one
/// (before the daemon took it, and after), reply FIFOs removed or replaced
/// by a file between the request and the reply, and a reply FIFO made mode
/// 000: the daemon answers a good client right after each, and ends with the
/// descriptors it had before.
#[test]
fn clients_that_die_or_take_their_fifo_away() {
    let site = Site::new();
    populate(&site);
    // One worker and one database connection: a stalled lookup holds every
    // later request in the queue, where its client can be made to go away.
    let d = Daemon::start(&site, &["-i", "1", "--workers", "1"], &[]);
    let infifo = d.fifo(1);
    let good = |tag: &str| {
        assert_eq!(
            ask(&d, 1, "joe@example.com", ""),
            Got::Reply(int(0)),
            "{tag}"
        )
    };
    good("warm-up");
    let fds0 = fds(&d);

    // Killed while writing: only part of the record made it.
    let reply = d.replydir.join("half");
    let whole = request_bytes(3, "joe@example.com", &reply, "");
    let halves: Vec<(&str, Vec<u8>)> = vec![
        ("two bytes of the length", whole[..2].to_vec()),
        ("the length only", whole[..4].to_vec()),
        ("half the record", whole[..whole.len() / 2].to_vec()),
        ("all but the last byte", whole[..whole.len() - 1].to_vec()),
    ];
    for (what, bytes) in &halves {
        kill(client_process(&infifo, None, bytes.clone()));
        good(what);
    }

    let lock = TableLock::take(&site, "indimail");
    // Killed after the daemon opened its reply FIFO (the lookup is stalled):
    // the reply goes nowhere.
    let opened = d.replydir.join("opened-then-killed");
    let a = client_process(
        &infifo,
        Some(&opened),
        request_bytes(1, "ann@example.com", &opened, ""),
    );
    wait_lock_waiters(&site, 1);
    assert!(!opened.exists(), "the daemon opened and unlinked it");
    kill(a);
    // Killed while its request waits in the queue: its FIFO has no reader
    // when the daemon comes to it (and stays behind, as a killed C client's
    // does).
    let queued = d.replydir.join("queued-then-killed");
    let b = client_process(
        &infifo,
        Some(&queued),
        request_bytes(1, "jo@example.com", &queued, ""),
    );
    kill(b);
    // Removed while queued; the client still reads the FIFO it opened.
    let removed = Pending::send(&d, &d.replydir, 1, "full@example.com", "");
    fs::remove_file(&removed.reply).unwrap();
    // Replaced by a regular file while queued.
    let replaced = Pending::send(&d, &d.replydir, 1, "bob@example.org", "");
    fs::remove_file(&replaced.reply).unwrap();
    fs::write(&replaced.reply, "precious").unwrap();
    // Mode 000: the daemon runs as root here, and the mode stops no root
    // process; the answer arrives (see the next test for a daemon that
    // permissions do stop).
    let mode000 = Pending::send_with(&d, &d.replydir, 1, "inact@example.com", "", |p| {
        fs::set_permissions(p, fs::Permissions::from_mode(0o000)).unwrap()
    });
    let last = Pending::send(&d, &d.replydir, 1, "joe@example.com", "");
    assert_eq!(lock_waiters(&site), 1);
    lock.release();

    // One worker, in order: when the last one is answered, all were served.
    assert_eq!(last.wait(HANG), Got::Reply(int(0)), "good client after all");
    assert_eq!(
        mode000.wait(HANG),
        Got::Reply(int(2)),
        "mode 000, root daemon"
    );
    assert!(!removed.answered(), "nothing for a FIFO that was removed");
    assert_eq!(fs::read_to_string(&replaced.reply).unwrap(), "precious");
    good("after all");
    let line = d.stats_line("Bad requests");
    eprintln!("{line}");
    assert_eq!(stat(&line, "Bad requests"), halves.len() as u64, "{line}");
    assert_eq!(stat(&line, "Refused reply paths"), 3, "{line}");
    assert_eq!(stat(&line, "Failed writes"), 1, "{line}");
    assert_eq!(stat(&line, "Errors"), 0, "{line}");
    // The killed client's FIFO and the file stay; the rest are gone.
    let mut left: Vec<PathBuf> = fs::read_dir(&d.replydir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    left.sort();
    let mut want = vec![queued.clone(), replaced.reply.clone()];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(fds(&d), fds0, "descriptors");
    assert!(d.stop().success());
}

/// Capabilities that let root ignore file permissions (linux/capability.h).
const CAP_DAC_OVERRIDE: libc::c_ulong = 1;
const CAP_DAC_READ_SEARCH: libc::c_ulong = 2;

/// The effective capability set of a process (/proc/PID/status).
fn effective_caps(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

/// A reply FIFO the daemon may not open for writing (mode 000, mode 0444):
/// refused, nothing written, and the next client is answered. The daemon
/// runs as a deployed one does, subject to file permissions: as the test
/// runs as root, it is started without the capabilities that let root
/// ignore them.
#[test]
fn reply_fifo_the_daemon_may_not_write() {
    let site = Site::new();
    populate(&site);
    let root = nix::unistd::geteuid().is_root();
    let d = Daemon::launch(&site)
        .args(["-i", "1", "--workers", "1"])
        .prepare(|cmd| {
            if root {
                // SAFETY: prctl(2) is async-signal-safe; it changes only the
                // child's bounding set, so that root keeps neither capability
                // across exec.
                unsafe {
                    cmd.pre_exec(|| {
                        for cap in [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH] {
                            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) == -1 {
                                return Err(std::io::Error::last_os_error());
                            }
                        }
                        Ok(())
                    });
                }
            }
        })
        .start();
    let caps = effective_caps(d.pid());
    assert_eq!(
        caps & (1 << CAP_DAC_OVERRIDE | 1 << CAP_DAC_READ_SEARCH),
        0,
        "the daemon still overrides file permissions: {caps:x}"
    );
    assert_eq!(ask(&d, 1, "joe@example.com", ""), Got::Reply(int(0)));
    let fds0 = fds(&d);
    for mode in [0o000, 0o444] {
        let p = Pending::send_with(&d, &d.replydir, 1, "joe@example.com", "", |p| {
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap()
        });
        // One worker, in order: once this is answered, that one was served.
        assert_eq!(ask(&d, 1, "ann@example.com", ""), Got::Reply(int(0)));
        assert!(!p.answered(), "mode {mode:o}: written");
        assert!(p.reply.exists(), "mode {mode:o}: removed");
    }
    let line = d.stats_line("Bad requests");
    assert_eq!(stat(&line, "Refused reply paths"), 2, "{line}");
    assert!(
        d.lines()
            .iter()
            .any(|l| l.contains("reply path refused") && l.contains("Permission denied")),
        "{}",
        d.lines().join("\n")
    );
    assert_eq!(fds(&d), fds0, "descriptors");
    assert!(d.stop().success());
}

// ---------------------------------------------------------------------------
// A full FIFOTMPDIR

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(CString);

impl Tmpfs {
    fn mount(dir: &Path, inodes: u32) -> Tmpfs {
        let target = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let opts = CString::new(format!("size=256k,nr_inodes={inodes},mode=0755")).unwrap();
        // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mount a tmpfs on {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
        Tmpfs(target)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // SAFETY: umount2(2) on the path this guard mounted.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

/// FIFOTMPDIR full (a tmpfs out of inodes, so that no reply FIFO can be made
/// in it): the library client, vchkpass and inquerytest report a failure
/// (vchkpass a temporary one), never "absent" or "wrong password"; the daemon goes on answering
/// clients whose reply FIFOs are elsewhere; once there is room again every
/// client works. Needs root, to mount the tmpfs.
#[test]
fn full_fifotmpdir() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("full_fifotmpdir: skipped, mounting a tmpfs needs root");
        return;
    }
    let site = auth_site();
    let fifotmpdir = site.dir.path().join("inquery");
    fs::create_dir(&fifotmpdir).unwrap();
    let _tmpfs = Tmpfs::mount(&fifotmpdir, 32);
    let elsewhere = site.dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let d = Daemon::start(
        &site,
        &["-i", "1", "--reply-dir", elsewhere.to_str().unwrap()],
        &[],
    );
    let q = remote(&site, &d);
    let vchkpass = |pw: &str| {
        Start::new(
            &site,
            "vchkpass",
            &["/bin/false"],
            &password("alice", pw, 1),
        )
        .daemon(&d)
        .run()
    };
    let inquerytest = || {
        Start::new(
            &site,
            "inquerytest",
            &["-q", "1", "-i", "", "joe@example.com"],
            b"",
        )
        .daemon(&d)
        .run()
    };
    let good =
        || Pending::send(&d, &elsewhere, 1, "joe@example.com", "").wait(HANG) == Got::Reply(int(0));
    assert_eq!(
        q.user_status(b"joe@example.com").unwrap(),
        UserStatus::Active
    );
    assert_eq!(vchkpass("alice pw 6").code, Some(0));
    assert_eq!(vchkpass("wrong").code, Some(1));
    let fine = inquerytest();
    assert_eq!(fine.code, Some(0), "{fine:?}");
    assert!(good());
    let fds0 = fds(&d);

    let mut fillers = 0;
    loop {
        match File::create(fifotmpdir.join(format!("filler{fillers}"))) {
            Ok(_) => fillers += 1,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", fifotmpdir.display()),
        }
    }
    assert_eq!(
        nix::unistd::mkfifo(
            &fifotmpdir.join("probe"),
            nix::sys::stat::Mode::from_bits_truncate(0o660)
        ),
        Err(nix::errno::Errno::ENOSPC),
        "no room for a FIFO"
    );
    for email in [&b"joe@example.com"[..], b"nobody@example.com"] {
        match q.user_status(email) {
            Err(QueryError::Remote(ClientError::ReplyFifo { source, .. })) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC))
            }
            other => panic!("full FIFOTMPDIR: {other:?}"),
        }
    }
    for pw in ["alice pw 6", "wrong"] {
        let r = vchkpass(pw);
        assert_eq!(r.code, Some(111), "{r:?}");
        assert!(r.stdout_text().starts_with("454-"), "{r:?}");
    }
    // inquerytest's "a lookup failed" (an absent user is exit 0 and an
    // answer on stdout).
    let full = inquerytest();
    assert_eq!(full.code, Some(1), "{full:?}");
    assert!(full.stdout.is_empty(), "{full:?}");
    assert!(
        full.stderr
            .contains("inquery failure: unable to create reply fifo")
            && full.stderr.contains("No space left on device"),
        "{full:?}"
    );
    assert!(good(), "others are served");

    for n in 0..fillers {
        fs::remove_file(fifotmpdir.join(format!("filler{n}"))).unwrap();
    }
    assert_eq!(
        q.user_status(b"joe@example.com").unwrap(),
        UserStatus::Active
    );
    assert_eq!(vchkpass("alice pw 6").code, Some(0));
    assert_eq!(inquerytest().stdout, fine.stdout);
    assert!(good());
    eprintln!(
        "FIFOTMPDIR full after {fillers} files: client, vchkpass and inquerytest failed \
         temporarily, the daemon served others; all fine once there was room"
    );
    let line = d.stats_line("Bad requests");
    assert_eq!(stat(&line, "Errors"), 0, "{line}");
    assert_eq!(
        reply_fifos(&fifotmpdir),
        Vec::<PathBuf>::new(),
        "nothing left"
    );
    assert_eq!(fds(&d), fds0, "descriptors");
    assert!(d.stop().success());
}

// ---------------------------------------------------------------------------
// The daemon killed under the clients

/// The daemon killed (SIGKILL) while vchkpass and authindi wait for it: one
/// whose lookup was under way (the daemon had opened its reply FIFO), others
/// whose requests were still queued; then with the daemon dead and its FIFO
/// left behind without a reader. Always the temporary failure (vchkpass exit
/// 111, authindi TEMPFAIL): never success, never "wrong password".
#[test]
fn daemon_killed_while_vchkpass_and_authindi_wait() {
    let site = authindi_site();
    // The clients give up after timeoutread + timeoutwrite.
    site.control("timeoutread", "1\n");
    site.control("timeoutwrite", "1\n");
    let d = Daemon::start(&site, &["-i", "1", "--workers", "1"], &[]);
    let rec = Recorder::new();
    let chain = Chain::new();
    let vchkpass = |pw: &str| {
        let r = Start::new(&site, "vchkpass", &[&rec.path()], &password("alice", pw, 1))
            .daemon(&d)
            .run();
        (r, Instant::now())
    };
    let authindi = || {
        let r = chain
            .start(&site, &login_rec("imap", "alice", "alice pw 6"), false)
            .daemon(&d)
            .run();
        (r, Instant::now())
    };
    let ok = Start::new(
        &site,
        "vchkpass",
        &["/bin/false"],
        &password("alice", "alice pw 6", 1),
    )
    .daemon(&d)
    .run();
    assert_eq!(ok.code, Some(0), "{ok:?}");
    let temporary = |(r, _): &(Run, Instant), what: &str| {
        assert_eq!(r.code, Some(111), "{what}: {r:?}");
        assert!(
            r.stdout_text().starts_with("454-inquery: "),
            "{what}: {r:?}"
        );
        assert!(!rec.ran(), "{what}: the next module ran");
    };

    let lock = TableLock::take(&site, "indimail");
    std::thread::scope(|s| {
        let under_way = s.spawn(|| vchkpass("alice pw 6"));
        wait_lock_waiters(&site, 1);
        let queued_wrong = s.spawn(|| vchkpass("wrong"));
        let queued_authindi = s.spawn(authindi);
        // Both queued clients made their reply FIFOs (the first one's was
        // taken by the daemon) and send their requests right after.
        let deadline = Instant::now() + HANG;
        while reply_fifos(&d.replydir).len() < 2 {
            assert!(Instant::now() < deadline, "the clients did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        d.signal(Signal::SIGKILL);
        let killed = Instant::now();
        let under_way = under_way.join().unwrap();
        temporary(&under_way, "lookup under way");
        let queued_wrong = queued_wrong.join().unwrap();
        temporary(&queued_wrong, "queued, wrong password");
        let (r, done) = queued_authindi.join().unwrap();
        assert_eq!(chain.which(), "login", "queued authindi: {r:?}");
        assert!(r.stderr.contains("TEMPFAIL"), "{}", r.stderr);
        eprintln!(
            "daemon killed: vchkpass under way exit 111 after {:.3} s, queued vchkpass 111 after \
             {:.3} s, queued authindi TEMPFAIL after {:.3} s",
            (under_way.1 - killed).as_secs_f64(),
            (queued_wrong.1 - killed).as_secs_f64(),
            (done - killed).as_secs_f64()
        );
    });
    lock.release();

    // Dead, its FIFO still there without a reader.
    assert!(d.fifo(1).exists());
    for pw in ["alice pw 6", "wrong"] {
        let r = vchkpass(pw);
        temporary(&r, "daemon dead");
        assert!(r.0.stderr.contains("infifo.1"), "{:?}", r.0);
    }
    chain.reset();
    let (r, _) = authindi();
    assert_eq!(chain.which(), "login", "daemon dead: {r:?}");
    assert!(r.stderr.contains("TEMPFAIL"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------
// A flood of names longer than the columns

/// How a library client's answer compares with the right one.
fn legit_class<T: PartialEq>(got: &Result<T, QueryError>, want: &Result<T, QueryError>) -> Class {
    match (got, want) {
        (Ok(g), Ok(w)) if g == w => Class::Correct,
        (Ok(_), _) => Class::Wrong,
        (Err(QueryError::Server), _) => Class::TempFail,
        (Err(QueryError::Remote(ClientError::Timeout(_))), _) => Class::Hang,
        (Err(_), _) => Class::Lost,
    }
}

/// The `p`-th percentile of sorted durations, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Two clients flood the daemon with USER and PWD questions about distinct
/// 4000-byte names (longer than any column), 64 requests in flight each,
/// while a well-behaved client asks about 300 users whose answers are not
/// cached yet (each needs a worker). The queue is small (32), so that a
/// flood that reached the workers would fill it. The well-behaved client
/// gets every answer right (no -1, nothing wrong or late); the flood costs
/// no cache entry and no memory; HUP leaves the RSS where it was. Its
/// latencies and the RSS figures are printed, not asserted.
#[test]
fn flood_of_long_names_costs_no_memory_and_no_one_their_answers() {
    const FLOOD_THREADS: usize = 2;
    const IN_FLIGHT: usize = 64;
    const FLOOD: usize = 10_000;
    let site = Site::new();
    populate(&site);
    add_numbered_users(&site, LOAD_USERS);
    site.control("hostip", "192.0.2.7");
    let d = Daemon::start(
        &site,
        &["-i", "2", "--workers", "2", "--queue", "32"],
        &[("USE_BTREE", "1")],
    );
    assert_eq!(
        ask(&d, 1, "joe@example.com", ""),
        Got::Reply(int(0)),
        "warm-up"
    );
    let rss_before = fds_and_rss(d.pid()).1;
    let entries_before = stat(&d.stats_line("Cache entries"), "Cache entries");

    let flooding = AtomicBool::new(true);
    let flood_sent = AtomicU64::new(0);
    let flood_minus_one = AtomicU64::new(0);
    let started = Instant::now();
    let (legit, flood_secs) = std::thread::scope(|s| {
        let floods: Vec<_> = (0..FLOOD_THREADS)
            .map(|t| {
                let (d, sent, minus_one) = (&d, &flood_sent, &flood_minus_one);
                s.spawn(move || {
                    let mut n = 0;
                    while n < FLOOD / FLOOD_THREADS {
                        let batch: Vec<Pending> = (0..IN_FLIGHT)
                            .map(|k| {
                                let tag = format!("{t}.{n}.{k}@example.com");
                                let name = format!("{}{tag}", "x".repeat(4000 - tag.len()));
                                let qtype = if k % 2 == 0 { 1 } else { 3 };
                                let p = Pending::fifo(&d.replydir);
                                let bytes = request_bytes(qtype, &name, &p.reply, "");
                                send_waiting(&d.fifo(1 + (k % 2) as u32), &bytes);
                                p
                            })
                            .collect();
                        for p in &batch {
                            match p.wait(HANG) {
                                Got::Reply(b) if b == int(-1) => {
                                    minus_one.fetch_add(1, Ordering::Relaxed);
                                }
                                Got::Reply(_) => {}
                                got => panic!("flood request not answered: {got:?}"),
                            }
                        }
                        n += IN_FLIGHT;
                        sent.fetch_add(IN_FLIGHT as u64, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let legit = s.spawn(|| {
            // The library's client (inquery()), as vchkpass uses it: every
            // user once, in turn USER and PWD, while the flood lasts.
            let query = remote(&site, &d);
            let mut asked = Vec::new();
            for i in 0..LOAD_USERS {
                if !flooding.load(Ordering::Relaxed) && i > 0 {
                    break;
                }
                let email = format!("u{i}@example.com");
                let sent = Instant::now();
                let (class, got) = if i % 2 == 0 {
                    let got = query.user_status(email.as_bytes());
                    (
                        legit_class(&got, &Ok(UserStatus::Active)),
                        format!("{got:?}"),
                    )
                } else {
                    let passwd = query
                        .password(email.as_bytes())
                        .map(|pw| pw.map(|pw| pw.passwd));
                    let want = Ok(Some(format!("p{i}").into_bytes()));
                    (legit_class(&passwd, &want), format!("{passwd:?}"))
                };
                asked.push((sent.elapsed(), class, email, got));
            }
            asked
        });
        for f in floods {
            f.join().unwrap();
        }
        let flood_secs = started.elapsed().as_secs_f64();
        flooding.store(false, Ordering::Relaxed);
        (legit.join().unwrap(), flood_secs)
    });
    let rss_after = fds_and_rss(d.pid()).1;

    let mut latencies: Vec<Duration> = legit.iter().map(|(l, ..)| *l).collect();
    latencies.sort_unstable();
    let bad: Vec<_> = legit
        .iter()
        .filter(|(_, class, ..)| *class != Class::Correct)
        .map(|(_, class, email, got)| format!("{email}: {class:?} {got:?}"))
        .collect();
    eprintln!(
        "flood: {} requests of 4000-byte names in {flood_secs:.2} s ({} answered -1); \
         a well-behaved client meanwhile: {} answers, {} not right, \
         latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        flood_sent.load(Ordering::Relaxed),
        flood_minus_one.load(Ordering::Relaxed),
        legit.len(),
        bad.len(),
        percentile_ms(&latencies, 0.5),
        percentile_ms(&latencies, 0.9),
        percentile_ms(&latencies, 0.99),
        percentile_ms(&latencies, 1.0),
    );
    let cached = d.stats_line("Cache entries");
    let entries = stat(&cached, "Cache entries");
    d.signal(Signal::SIGHUP);
    d.wait_for(|l| l.contains("cache flushed"), 1, "the HUP flush");
    let rss_hup = fds_and_rss(d.pid()).1;
    eprintln!(
        "flood: daemon RSS {rss_before} kB before, {rss_after} kB after, {rss_hup} kB after HUP; \
         {entries} cache entries after ({entries_before} before)"
    );
    assert!(
        bad.is_empty(),
        "during the flood, {} answers not right: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert!(
        legit.len() >= 50,
        "only {} answers during the flood",
        legit.len()
    );
    assert!(
        entries <= entries_before + legit.len() as u64,
        "the flood is in the cache: {cached}"
    );
    // Transient buffers only: a cache that kept the names would hold 40 MB.
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS {rss_before} kB before the flood, {rss_after} kB after"
    );
    // Every flood answer was "absent" (or -1 for a PWD answer too long to
    // send), never a lost request.
    assert_eq!(ask(&d, 1, "joe@example.com", ""), Got::Reply(int(0)));
    assert!(d.stop().success());
}
