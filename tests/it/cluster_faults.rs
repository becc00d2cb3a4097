//! Clustered sites under faults (spec cluster.md §7 cluster): a frozen
//! mailstore under load, bad and changing cluster definitions, the pre-cache
//! and the statement count on every mailstore, and the auth modules' direct
//! mode routed to the user's mailstore.

use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use testkit::c_client::{int, request_bytes, send_raw, text};
use testkit::cluster::{Cluster, TcpServer, MS1_PASSWORD, MS2_PASSWORD};
use testkit::daemon::Daemon;
use testkit::fifo::{mkfifo, reader};

use crate::vchkpass::{openssl_hash, password, Recorder};

const USER: u8 = 1;
const PWD: u8 = 3;

const EXE: &str = env!("CARGO_BIN_EXE_indilookup");

fn pwstruct(s: &str) -> Vec<u8> {
    text(&format!("PWSTRUCT={s}"))
}

const ALICE_PW: &str =
    "alice@dist.example:$5$s1$alicehash:1:0:Alice:/home/mail/dist.example/alice:NOQUOTA:0";
const CAROL_PW: &str =
    "carol@plain.example:$5$s4$carolhash:1:16:Carol:/home/mail/plain.example/carol:5000000:0";

/// A query as a C client sends it, giving up after `deadline` (C clients
/// wait 4 s): `None` when no answer came.
fn query_within(d: &Daemon, q: u8, email: &str, tag: &str, deadline: Duration) -> Option<Vec<u8>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let path = d.replydir.join(format!("{}{now}{tag}", std::process::id()));
    mkfifo(&path, 0o660);
    let mut rfd = reader(&path);
    send_raw(&d.fifodir, &request_bytes(q, email, &path, ""));
    let end = Instant::now() + deadline;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let answered = loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        let mut p = [PollFd::new(rfd.as_fd(), PollFlags::POLLIN)];
        poll(&mut p, PollTimeout::try_from(left).unwrap()).unwrap();
        match rfd.read(&mut buf) {
            Ok(0) if !out.is_empty() => break true,
            Ok(0) => std::thread::sleep(Duration::from_millis(1)),
            Ok(n) => out.extend(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read reply: {e}"),
        }
    };
    // Not opened by the server yet: the client removes its own FIFO.
    let _ = fs::remove_file(&path);
    answered.then_some(out)
}

/// A global status counter of a server.
fn status(server: &TcpServer, name: &str) -> u64 {
    let row: Option<(String, String)> =
        server.query_first(None, &format!("SHOW GLOBAL STATUS LIKE '{name}'"));
    row.expect("a status row").1.parse().unwrap()
}

fn executes(server: &TcpServer) -> u64 {
    status(server, "Com_stmt_execute")
}

/// One query of the load test and what it got.
struct Outcome {
    /// On ms1 (the frozen one) or ms2.
    ms1: bool,
    sent: Instant,
    done: Instant,
    /// `None`: no answer within the client deadline.
    answer: Option<Vec<u8>>,
    right: bool,
}

/// Per phase and mailstore: (right answers, -1 answers, no answer, wrong).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Tally {
    right: usize,
    error: usize,
    silent: usize,
    wrong: usize,
}

fn tally<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> Tally {
    let mut t = Tally::default();
    for o in outcomes {
        match &o.answer {
            None => t.silent += 1,
            Some(_) if o.right => t.right += 1,
            Some(a) if *a == int(-1) => t.error += 1,
            Some(_) => t.wrong += 1,
        }
    }
    t
}

/// 16 clients, half asking for ms1's users, half for ms2's, without a
/// cache, while ms1 is stopped (SIGSTOP) for 6 s: no wrong answer; ms2's
/// users are answered throughout at a healthy rate; ms1's get -1 within the
/// clients' deadline, and answers again after the thaw.
///
/// A statement on a connection that is already open waits for
/// MYSQL_OPT_READ_TIMEOUT (20 s by default, as libmysqlclient's), far beyond
/// the clients' 4 s, so the site under test sets 2 s, as a cluster should.
/// Workers all waiting on the frozen server would starve ms2's users: the
/// rate check catches that.
#[test]
fn a_frozen_mailstore_under_load_spares_the_other() {
    let cluster = Cluster::start();
    let d = Daemon::start(&cluster, &["-i", "2"], &[("MYSQL_OPT_READ_TIMEOUT", "2")]);
    const CLIENT_DEADLINE: Duration = Duration::from_secs(4);
    // (query, address, expected answer): ms1's users, then ms2's.
    let ms1_asks: Vec<(u8, &str, Vec<u8>)> = vec![
        (USER, "alice@dist.example", int(0)),
        (USER, "sales@dist.example", int(4)),
        (PWD, "alice@dist.example", pwstruct(ALICE_PW)),
    ];
    let ms2_asks: Vec<(u8, &str, Vec<u8>)> = vec![
        (USER, "bob@dist.example", int(0)),
        (USER, "carol@plain.example", int(3)),
        (PWD, "carol@plain.example", pwstruct(CAROL_PW)),
    ];
    let stop = AtomicBool::new(false);
    let outcomes = Mutex::new(Vec::<Outcome>::new());
    let (warm, frozen_for, after) = (
        Duration::from_secs(2),
        Duration::from_secs(6),
        Duration::from_secs(5),
    );
    let (frozen_at, thawed_at) = std::thread::scope(|s| {
        for t in 0..16 {
            let (d, stop, outcomes) = (&d, &stop, &outcomes);
            let asks = if t % 2 == 0 { &ms1_asks } else { &ms2_asks };
            s.spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let (q, email, want) = &asks[n % asks.len()];
                    let sent = Instant::now();
                    let answer = query_within(d, *q, email, &format!("t{t}.{n}"), CLIENT_DEADLINE);
                    let right = answer.as_ref() == Some(want);
                    outcomes.lock().unwrap().push(Outcome {
                        ms1: t % 2 == 0,
                        sent,
                        done: Instant::now(),
                        answer,
                        right,
                    });
                    n += 1;
                }
            });
        }
        std::thread::sleep(warm);
        let (frozen_at, thawed_at) = {
            let _frozen = cluster.ms1().freeze();
            let frozen_at = Instant::now();
            std::thread::sleep(frozen_for);
            (frozen_at, Instant::now())
        };
        std::thread::sleep(after);
        stop.store(true, Ordering::Relaxed);
        (frozen_at, thawed_at)
    });
    let outcomes = outcomes.into_inner().unwrap();
    // Before: answered before the freeze; frozen: sent while ms1 was
    // stopped; after: sent after the thaw. (A query under way at the freeze
    // is in none.)
    let phase = |o: &Outcome| {
        if o.done < frozen_at {
            0
        } else if o.sent < frozen_at {
            3
        } else if o.sent < thawed_at {
            1
        } else {
            2
        }
    };
    let t = |ms1: bool, p: u8| tally(outcomes.iter().filter(|o| o.ms1 == ms1 && phase(o) == p));
    // The longest wait of one of ms2's users while ms1 was frozen.
    let ms2_wait = outcomes
        .iter()
        .filter(|o| !o.ms1 && phase(o) == 1)
        .map(|o| o.done - o.sent)
        .max()
        .unwrap_or_default();
    let report = format!(
        "before: ms1 {:?} ms2 {:?}; frozen ({frozen_for:?}): ms1 {:?} ms2 {:?} (longest wait \
         {ms2_wait:?}); after: ms1 {:?} ms2 {:?}",
        t(true, 0),
        t(false, 0),
        t(true, 1),
        t(false, 1),
        t(true, 2),
        t(false, 2),
    );
    eprintln!("{report}");
    let wrong: Vec<_> = outcomes
        .iter()
        .filter(|o| !o.right && o.answer.as_ref().is_some_and(|a| *a != int(-1)))
        .map(|o| o.answer.clone())
        .collect();
    assert!(wrong.is_empty(), "wrong answers {wrong:?}; {report}");
    // Before the freeze, everyone is answered.
    for ms1 in [true, false] {
        let before = t(ms1, 0);
        assert!(
            before.right > 0 && before.right == before_total(&before),
            "{report}"
        );
    }
    // Frozen: ms1's users get -1 (never "absent", never silence).
    let ms1_frozen = t(true, 1);
    assert_eq!(ms1_frozen.silent, 0, "ms1's users got no answer; {report}");
    assert!(ms1_frozen.error > 0, "{report}");
    // ms2's users are answered as before: never -1, never silence, and at
    // a rate of at least a quarter of the one before the freeze.
    let ms2_frozen = t(false, 1);
    assert_eq!(
        (ms2_frozen.error, ms2_frozen.silent),
        (0, 0),
        "ms2's users were starved; {report}"
    );
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let before_rate = rate(t(false, 0).right, warm);
    let frozen_rate = rate(ms2_frozen.right, frozen_for);
    assert!(
        frozen_rate * 4.0 >= before_rate,
        "ms2's users answered at {frozen_rate:.1}/s while ms1 was frozen, {before_rate:.1}/s \
         before; {report}"
    );
    // Thawed: ms1's users are answered again.
    let late: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.ms1 && o.sent > thawed_at + Duration::from_secs(3))
        .collect();
    assert!(
        !late.is_empty() && late.iter().all(|o| o.right),
        "ms1's users after the thaw; {report}"
    );
    assert_eq!(
        d.c_query(USER, "alice@dist.example", "", "end"),
        int(0),
        "{report}"
    );
    assert!(d.stop().success());
}

fn before_total(t: &Tally) -> usize {
    t.right + t.error + t.silent + t.wrong
}

/// A password that must never be shown.
const SECRET: &str = "Sekr3t-never-shown";

/// The lines of the §7 mcdinfo, record 1's password replaced by [`SECRET`]
/// (no file made from them loads, so it need not work).
fn lines_of(cluster: &Cluster) -> Vec<String> {
    cluster
        .mcdinfo()
        .replacen(MS1_PASSWORD, SECRET, 1)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Bad definitions, each with the line its error must name.
fn bad_mcdinfos(cluster: &Cluster) -> Vec<(&'static str, String, usize)> {
    let good = lines_of(cluster);
    // Record 1: 1 domain, 2 server, 3 mdahost, 4 port, 5 use_ssl,
    // 6 database, 7 user, 8 pass.
    let with = |f: &dyn Fn(&mut Vec<String>)| {
        let mut l = good.clone();
        f(&mut l);
        l.join("\n") + "\n"
    };
    let n = good.len();
    vec![
        (
            "a key before any server",
            with(&|l| l.insert(0, "port     3306".into())),
            1,
        ),
        (
            "a record of 6 items at the end",
            with(&|l| {
                l.extend(
                    [
                        "",
                        "domain   more.example 0",
                        "server   127.0.0.1",
                        "mdahost  192.0.2.3",
                        "port     3306",
                        "use_ssl  0",
                        "database indimail",
                        "user     indimail",
                    ]
                    .map(String::from),
                )
            }),
            n + 3,
        ),
        (
            "a key twice in a record",
            with(&|l| l.insert(6, "database other".into())),
            7,
        ),
        ("a bad port", with(&|l| l[3] = "port     70000".into()), 4),
        (
            "an unknown key",
            with(&|l| l.insert(2, "socket   /tmp/mysql.sock".into())),
            3,
        ),
        (
            "a 200-byte value",
            with(&|l| l[7] = format!("pass     {}xx", SECRET.repeat(11))),
            8,
        ),
        (
            "a 200-byte server",
            with(&|l| l[1] = format!("server   {}", "h".repeat(200))),
            2,
        ),
        (
            "a password after pass, without a space",
            with(&|l| l[7] = format!("pass{SECRET}")),
            8,
        ),
    ]
}

/// Nothing the daemon printed shows a password.
fn assert_no_secret(lines: &[String]) {
    for l in lines {
        for secret in [SECRET, MS1_PASSWORD, MS2_PASSWORD] {
            assert!(!l.contains(secret), "a password in {l:?}");
        }
    }
}

/// A bad definition refuses the start: a non-zero exit, and a message that
/// names the file and the line, never a password.
#[test]
fn a_bad_mcdinfo_refuses_the_start_naming_file_and_line() {
    let cluster = Cluster::start();
    let path = cluster.control_dir().join("mcdinfo");
    for (what, text, line) in bad_mcdinfos(&cluster) {
        cluster.write_mcdinfo(&text);
        let mut d = Daemon::launch(&cluster).args(["-i", "1"]).spawn();
        let status = d.exit_status();
        // The output threads may still be reading the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let lines = d.lines();
        assert!(!status.success(), "{what}: started; {lines:?}");
        let want = format!("{}: line {line}: ", path.display());
        assert!(
            lines.iter().any(|l| l.contains(&want)),
            "{what}: no {want:?} in {lines:?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("Ready with INFIFO")),
            "{what}: {lines:?}"
        );
        assert_no_secret(&lines);
    }
    // The good file starts (so the failures above were the files').
    cluster.write_mcdinfo(&cluster.mcdinfo());
    let d = Daemon::start(&cluster, &["-i", "1"], &[]);
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "ok"), int(0));
    assert!(d.stop().success());
}

/// A running daemon whose definition goes bad — noticed by the watcher, and
/// on an explicit HUP — says why and keeps the last good one.
#[test]
fn a_bad_mcdinfo_at_run_time_keeps_the_last_good_one() {
    let cluster = Cluster::start();
    let d = Daemon::start(&cluster, &["-i", "1"], &[]);
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "a"), int(0));
    let path = cluster.control_dir().join("mcdinfo");
    let failed = |l: &str| {
        l.contains("reconfiguration failed, keeping the old settings")
            && l.contains(&format!("{}: line ", path.display()))
    };
    for (i, (what, text, line)) in bad_mcdinfos(&cluster).into_iter().enumerate() {
        cluster.write_mcdinfo(&text);
        // The watcher's HUP, then ours.
        let seen = d.wait_for(failed, 2 * i + 1, "the refused change");
        assert!(
            seen[2 * i].contains(&format!("line {line}: ")),
            "{what}: {}",
            seen[2 * i]
        );
        d.signal(Signal::SIGHUP);
        d.wait_for(failed, 2 * i + 2, "the refused HUP");
        for (q, e, want) in [
            (USER, "alice@dist.example", int(0)),
            (USER, "bob@dist.example", int(0)),
            (USER, "carol@plain.example", int(3)),
        ] {
            assert_eq!(d.c_query(q, e, "", &format!("{i}{e}")), want, "{what}: {e}");
        }
    }
    assert_no_secret(&d.lines());
    assert!(d.stop().success());
}

/// A good change to the definition is used without a HUP (spec §7.6:
/// record 2's mail host changed, so bob becomes unknown), and so is the
/// change back — also over cached answers.
#[test]
fn a_changed_mcdinfo_is_used_without_a_hup() {
    let cluster = Cluster::start();
    let d = Daemon::start(&cluster, &["-i", "1"], &[("USE_BTREE", "1")]);
    assert_eq!(d.c_query(USER, "bob@dist.example", "", "a"), int(0));
    let good = cluster.mcdinfo();
    let changed = good.replacen("192.0.2.2\n", "192.0.2.22\n", 1);
    assert_ne!(good, changed);
    let mut n = 0;
    let mut until = |want: Vec<u8>, what: &str| {
        let started = Instant::now();
        loop {
            n += 1;
            let got = d.c_query(USER, "bob@dist.example", "", &format!("p{n}"));
            if got == want {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "{what}: still {got:?}; {:?}",
                d.lines()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    cluster.write_mcdinfo(&changed);
    until(int(1), "the change");
    assert_eq!(
        d.c_query(PWD, "bob@dist.example", "", "b"),
        pwstruct("No such user bob@dist.example")
    );
    // Record 2 still serves plain.example's users, and ms1's are unchanged.
    assert_eq!(d.c_query(USER, "carol@plain.example", "", "c"), int(3));
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "d"), int(0));
    cluster.write_mcdinfo(&good);
    until(int(0), "the change back");
    d.wait_for(
        |l| l.contains("mcdinfo changed; reconfiguring"),
        2,
        "the watcher",
    );
    assert!(d.stop().success());
}

/// A definition rewritten in place, slowly (`cat > mcdinfo` from a slow
/// source), passes through states that parse — empty ("not clustered"),
/// cut after a record — and would make real users "absent": the daemon uses
/// it once whole, reconfiguring once, and answers right throughout.
#[test]
fn a_definition_rewritten_in_place_is_used_once_whole() {
    use std::io::Write;
    let cluster = Cluster::start();
    let d = Daemon::start(&cluster, &["-i", "1"], &[]);
    let text = format!("# rewritten\n{}", cluster.mcdinfo());
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let done = AtomicBool::new(false);
    let (wrong, reconfigured) = std::thread::scope(|s| {
        let asker = s.spawn(|| {
            let mut wrong = Vec::new();
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                for (e, want) in [
                    ("alice@dist.example", int(0)),
                    ("bob@dist.example", int(0)),
                    ("carol@plain.example", int(3)),
                ] {
                    n += 1;
                    let got = d.c_query(USER, e, "", &format!("w{n}"));
                    if got != want {
                        wrong.push((e, got));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            wrong
        });
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(cluster.control_dir().join("mcdinfo"))
            .unwrap();
        for piece in lines.chunks(2) {
            std::thread::sleep(Duration::from_millis(200));
            f.write_all(piece.concat().as_bytes()).unwrap();
        }
        drop(f);
        let changed = |l: &str| l.contains("mcdinfo changed; reconfiguring");
        d.wait_for(changed, 1, "the change");
        // Two more looks: nothing else to take.
        std::thread::sleep(Duration::from_millis(2500));
        done.store(true, Ordering::Relaxed);
        let reconfigured = d.lines().iter().filter(|l| changed(l)).count();
        (asker.join().unwrap(), reconfigured)
    });
    assert!(wrong.is_empty(), "wrong answers {wrong:?}; {:?}", d.lines());
    assert_eq!(reconfigured, 1, "{:?}", d.lines());
    assert!(
        !d.lines()
            .iter()
            .any(|l| l.contains("reconfiguration failed")),
        "{:?}",
        d.lines()
    );
    assert!(d.stop().success());
}

/// `-c` pre-caches the users active lately from every mailstore's
/// `lastauth`, not only host.mysql's: with both mailstores stopped, their
/// password entries still come from the cache.
#[test]
fn the_pre_cache_reads_every_mailstore() {
    let mut cluster = Cluster::start();
    let lastauth = |user: &str, domain: &str| {
        format!(
            "INSERT INTO lastauth (user, domain, service, remote_ip, quota, gecos, timestamp) \
             VALUES ('{user}', '{domain}', 'imap', '192.0.2.9', 0, '', NOW())"
        )
    };
    cluster
        .ms1()
        .sql(Some("indimail"), &lastauth("alice", "dist.example"));
    cluster
        .ms2()
        .sql(Some("indimail"), &lastauth("carol", "plain.example"));
    let d = Daemon::start(&cluster, &["-i", "1", "-c", "3600"], &[("USE_BTREE", "1")]);
    let cached = d.wait_for(
        |l| l.starts_with("cached ") && l.ends_with(" records"),
        1,
        "the pre-cache",
    );
    assert_eq!(cached[0], "cached 2 records", "{:?}", d.lines());
    cluster.ms1_mut().stop();
    cluster.ms2_mut().stop();
    assert_eq!(
        d.c_query(PWD, "alice@dist.example", "", "a"),
        pwstruct(ALICE_PW)
    );
    assert_eq!(
        d.c_query(PWD, "carol@plain.example", "", "c"),
        pwstruct(CAROL_PW)
    );
    // Nothing else is cached: bob's answer needs his (stopped) mailstore.
    assert_eq!(d.c_query(PWD, "bob@dist.example", "", "b"), int(-1));
    d.signal(Signal::SIGUSR1);
    let stats = d.wait_for(|l| l.contains("Cached Nodes"), 1, "the stats");
    assert!(stats[0].ends_with("Cached Nodes 2"), "{}", stats[0]);
    assert!(d.stop().success());
}

/// `Database statements N, lookups M, per lookup X` of the USR1 block.
fn statements_line(d: &Daemon, nth: usize) -> (u64, u64, String) {
    d.signal(Signal::SIGUSR1);
    let lines = d.wait_for(
        |l| l.starts_with("Database statements "),
        nth,
        "the statements line",
    );
    let l = &lines[nth - 1];
    let rest = l.strip_prefix("Database statements ").unwrap();
    let (n, rest) = rest.split_once(", lookups ").unwrap();
    let (m, x) = rest.split_once(", per lookup ").unwrap();
    (n.parse().unwrap(), m.parse().unwrap(), x.to_string())
}

/// With the cache on, once a user's route is cached an uncached lookup of
/// that user costs one statement on the mailstore and none on the central
/// database; the statistics count them.
#[test]
fn a_cached_route_costs_one_statement_per_lookup() {
    let cluster = Cluster::start();
    let d = Daemon::start(&cluster, &["-i", "1"], &[("USE_BTREE", "1")]);
    let (s0, l0, _) = statements_line(&d, 1);
    let counts = || {
        (
            executes(cluster.central()),
            executes(cluster.ms1()),
            executes(cluster.ms2()),
        )
    };
    let c0 = counts();
    // Not cached: the route (central) and the row (ms1).
    assert_eq!(
        d.c_query(PWD, "alice@dist.example", "", "a"),
        pwstruct(ALICE_PW)
    );
    let c1 = counts();
    assert_eq!((c1.0 - c0.0, c1.1 - c0.1, c1.2 - c0.2), (1, 1, 0), "PWD");
    // Another query type (no answer cached), the route cached: ms1 only.
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "b"), int(0));
    let c2 = counts();
    assert_eq!((c2.0 - c1.0, c2.1 - c1.1, c2.2 - c1.2), (0, 1, 0), "USER");
    // The answer cached: nothing at all.
    assert_eq!(d.c_query(USER, "alice@dist.example", "", "c"), int(0));
    assert_eq!(counts(), c2, "a cached answer");
    let (s1, l1, per) = statements_line(&d, 2);
    assert_eq!((s1 - s0, l1 - l0), (3, 2), "statements and lookups");
    assert_eq!(per, format!("{:.2}", s1 as f64 / l1 as f64));
    assert!(d.stop().success());
}

/// Run an applet with the cluster's environment (no QUERY_CACHE: the direct
/// backend) and `input` on fd 3. (exit code, stdout, stderr).
fn run_applet(
    cluster: &Cluster,
    applet: &str,
    args: &[&str],
    env: &[(&str, &str)],
    input: &[u8],
) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let fd3 = dir.path().join("fd3");
    fs::write(&fd3, input).unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("exec \"$0\" \"$@\" 3<\"$FD3\"")
        .arg(EXE)
        .arg(applet)
        .args(args)
        .env_clear()
        .envs(cluster.env_pairs())
        .env("PATH", "/usr/bin:/bin")
        .env("FD3", &fd3);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn count(server: &TcpServer, sql: &str) -> u64 {
    server.query_first(Some("indimail"), sql).unwrap()
}

/// Real hashes for alice (ms1) and bob (ms2), whose §7 rows have dummy
/// ones, and homes that exist. The password is `<user> pw`.
fn set_passwords(cluster: &Cluster, homes: &Path) {
    for (server, user) in [(cluster.ms1(), "alice"), (cluster.ms2(), "bob")] {
        let home = homes.join(user);
        fs::create_dir_all(&home).unwrap();
        server.sql(
            Some("indimail"),
            &format!(
                "UPDATE indimail SET pw_passwd = '{}', pw_dir = '{}' WHERE pw_name = '{user}'",
                openssl_hash("-5", &format!("{user} pw")),
                home.display()
            ),
        );
    }
}

/// An IMAP login of `user@dist.example` (password `<user> pw`) through
/// authindi without QUERY_CACHE, from 192.0.2.9 with OPEN_SMTP: whether the
/// application ran (the login succeeded), and what the run said.
fn authindi_login(cluster: &Cluster, user: &str) -> (bool, String) {
    let (next, app, login) = (Recorder::new(), Recorder::new(), Recorder::new());
    let (next_p, app_p, login_p) = (next.path(), app.path(), login.path());
    let input = format!("imap\nlogin\n{user}@dist.example\n{user} pw\n");
    let (code, out, err) = run_applet(
        cluster,
        "authindi",
        &[&next_p, &app_p, "Maildir"],
        &[
            ("AUTHUSER", &login_p),
            ("AUTHARGC", "2"),
            ("AUTHARGV0", "imaplogin"),
            ("AUTHARGV1", "again"),
            ("AUTHENTICATED", ""),
            ("TCPREMOTEIP", "192.0.2.9"),
            ("OPEN_SMTP", ""),
        ],
        input.as_bytes(),
    );
    (app.ran() && !next.ran(), format!("{code:?} {out} {err}"))
}

/// vchkpass without QUERY_CACHE checks each login on the user's own
/// mailstore: alice's is not the host.mysql database (ms2), bob's is.
#[test]
fn vchkpass_direct_checks_the_users_own_mailstore() {
    let mut cluster = Cluster::start();
    let homes = tempfile::tempdir().unwrap();
    set_passwords(&cluster, homes.path());
    let check = |cluster: &Cluster, user: &str, pw: &str| {
        let input = password(&format!("{user}@dist.example"), pw, 1);
        let (code, out, err) = run_applet(cluster, "vchkpass", &["/bin/false"], &[], &input);
        (code, format!("{user} {pw:?}: {out} {err}"))
    };
    for user in ["alice", "bob"] {
        let (code, why) = check(&cluster, user, &format!("{user} pw"));
        assert_eq!(code, Some(0), "{why}");
        let (code, why) = check(&cluster, user, "wrong");
        assert_eq!(code, Some(1), "{why}");
    }
    // ms1 down: a temporary failure for alice, not a wrong password; bob
    // still logs in.
    cluster.ms1_mut().stop();
    let (code, why) = check(&cluster, "alice", "alice pw");
    assert_eq!(code, Some(111), "{why}");
    let (code, why) = check(&cluster, "bob", "bob pw");
    assert_eq!(code, Some(0), "{why}");
}

/// authindi without QUERY_CACHE: each login is checked on the user's
/// mailstore, and its writes (lastauth, the POP-before-SMTP relay row with
/// OPEN_SMTP) land there, never on the other mailstore or the central
/// database.
#[test]
fn authindi_direct_writes_to_the_users_own_mailstore() {
    let cluster = Cluster::start();
    let homes = tempfile::tempdir().unwrap();
    set_passwords(&cluster, homes.path());
    let lastauth = |s: &TcpServer, user: &str| {
        count(
            s,
            &format!("SELECT COUNT(*) FROM lastauth WHERE user = '{user}'"),
        )
    };
    let relay = |s: &TcpServer, user: &str| {
        count(
            s,
            &format!(
                "SELECT COUNT(*) FROM relay WHERE email = '{user}@dist.example' \
                 AND ipaddr = '192.0.2.9'"
            ),
        )
    };
    for (user, own, others) in [
        ("alice", cluster.ms1(), [cluster.ms2(), cluster.central()]),
        ("bob", cluster.ms2(), [cluster.ms1(), cluster.central()]),
    ] {
        let (ran, said) = authindi_login(&cluster, user);
        assert!(ran, "{user}: the application did not run: {said}");
        assert_eq!((lastauth(own, user), relay(own, user)), (1, 1), "{user}");
        for other in others {
            assert_eq!(
                (lastauth(other, user), relay(other, user)),
                (0, 0),
                "{user}"
            );
        }
    }
}

/// A real replication pair behind bob's mailstore (ms2 → its replica, named
/// in control/replicas), ms2 killed: authindi checks bob's password on the
/// replica, logs that the writes of the login (lastauth, relay) could not be
/// made, and lets him in; nothing is written to the replica. With ms2 back,
/// the next login's writes land on ms2, and reach the replica by
/// replication.
#[test]
fn with_the_primary_down_a_login_reads_the_replica_and_skips_its_writes() {
    let mut cluster = Cluster::builder().replica().start();
    let homes = tempfile::tempdir().unwrap();
    set_passwords(&cluster, homes.path());
    cluster.replica().wait_replicated(cluster.ms2());
    let (ms2, replica) = (cluster.ms2().port(), cluster.replica().port());
    cluster.write_control(
        "replicas",
        &format!("127.0.0.1:{ms2} 127.0.0.1:{replica}\n"),
    );
    let lastauth = |s: &TcpServer| count(s, "SELECT COUNT(*) FROM lastauth WHERE user = 'bob'");
    cluster.ms2_mut().kill();
    let (ran, said) = authindi_login(&cluster, "bob");
    assert!(ran, "bob was not let in with ms2 down: {said}");
    assert!(
        said.contains("lastauth"),
        "no word of the skipped write: {said}"
    );
    assert_eq!(
        lastauth(cluster.replica()),
        0,
        "a write reached the replica"
    );
    cluster.ms2_mut().resume();
    let (ran, said) = authindi_login(&cluster, "bob");
    assert!(ran, "{said}");
    assert_eq!(lastauth(cluster.ms2()), 1);
    cluster.replica().wait_replicated(cluster.ms2());
    assert_eq!(lastauth(cluster.replica()), 1);
}
