//! inlookup end to end: the real executable, real FIFOs, a real MariaDB, and
//! a client that writes exactly the bytes libindimail's inquery() writes.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indilookup::fuzz::Rng;
use nix::sys::signal::Signal;

use crate::harness::Site;
use crate::lookups::populate;
pub use testkit::c_client::{c_query_raw, int, request_bytes, send_raw, send_waiting, text};
pub use testkit::daemon::Daemon;
use testkit::fifo::{mkfifo, reader};
pub use testkit::process::reply_fifos;
use testkit::process::{open_fds, rss_kib};

/// The expected bytes of every type and outcome for the populated site.
pub fn expectations(hostip: &str) -> Vec<(u8, &'static str, &'static str, Vec<u8>)> {
    let mut limits_joe = vec![0u8; 128];
    let mut put =
        |off: usize, bytes: &[u8]| limits_joe[off..off + bytes.len()].copy_from_slice(bytes);
    for off in [0, 8, 24, 32, 40, 48] {
        put(off, &(-1i64).to_le_bytes());
    }
    put(16, &5i64.to_le_bytes()); // maxpopaccounts
    put(56, &2000u64.to_le_bytes()); // diskquota
    put(110, &3i16.to_le_bytes()); // perm_maillist bits 0-2 of 83
    put(112, &2i16.to_le_bytes()); // perm_maillist_users
    put(114, &1i16.to_le_bytes()); // perm_maillist_moderators
    put(120, &2i16.to_le_bytes()); // limit_type: per user
    let mut limits_none = vec![0u8; 128];
    for off in (0..56).step_by(8) {
        limits_none[off..off + 8].copy_from_slice(&(-1i64).to_le_bytes());
    }
    let mut limits_joe_reply = int(128);
    limits_joe_reply.extend(&limits_joe);
    let mut limits_none_reply = int(128);
    limits_none_reply.extend(&limits_none);
    let route: &'static str = Box::leak(format!("example.com:{hostip}:25").into_boxed_str());
    vec![
        (1, "joe@example.com", "", int(0)),
        (1, "nobody@example.com", "", int(1)),
        (1, "inact@example.com", "", int(2)),
        (1, "full@example.com", "", int(3)),
        (1, "sales@example.com", "", int(4)),
        (2, "joe@example.com", "10.0.0.1", int(1)),
        (2, "joe@example.com", "10.0.0.9", int(0)),
        (2, "jo@example.com", "10.0.0.3", int(0)),
        (
            3,
            "joe@example.com",
            "",
            text("PWSTRUCT=joe@example.com:$5$abc$def:1:0:joe gecos:/home/mail/example.com/joe:NOQUOTA:0"),
        ),
        (
            3,
            "inact@Alias.com",
            "",
            text("PWSTRUCT=inact@Alias.com:w:1:0:inact gecos:/home/mail/example.com/inact:NOQUOTA:1"),
        ),
        (3, "nobody@example.com", "", text("PWSTRUCT=No such user nobody@example.com")),
        (4, "joe@example.com", "", text(route)),
        (4, "nobody@example.com", "", int(0)),
        (5, "sales@example.com", "", text("&ann@example.com\n&joe@example.com\n")),
        (5, "ann@example.com", "", text("")),
        (6, "joe@example.com", "", limits_joe_reply),
        (6, "bob@example.org", "", limits_none_reply),
        (6, "example.org", "", int(0)),
        (6, "nobody@example.com", "", int(0)),
        (7, "alias.com", "", text("example.com")),
        (7, "example.com", "", text("example.com")),
        (7, "unknown.test", "", text("unknown.test")),
    ]
}

#[test]
fn c_client_gets_byte_exact_replies() {
    let site = Site::new();
    populate(&site);
    site.control("hostip", "192.0.2.7");
    let d = Daemon::start(&site, &["-i", "3"], &[]);
    for k in 1..=3 {
        let meta = fs::metadata(d.fifo(k)).unwrap();
        assert!(meta.file_type().is_fifo_like(), "infifo.{k}");
        assert_eq!(meta.mode() & 0o7777, 0o660);
    }
    for (i, (t, email, ip, want)) in expectations("192.0.2.7").into_iter().enumerate() {
        let got = d.c_query(t, email, ip, &format!("x{i}"));
        assert_eq!(got, want, "type {t} {email} {ip}");
    }
    // The server removed every reply FIFO it answered.
    assert_eq!(fs::read_dir(&d.replydir).unwrap().count(), 0);
    let status = d.stop();
    assert!(status.success(), "{status:?}");
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

/// Type, content, size, mtime and inode of everything under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        let content = if m.file_type().is_file() {
            fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        // A server FIFO's times change whenever a client writes a request.
        let times =
            if m.file_type().is_fifo() && p.starts_with(dir.parent().unwrap().join("inlookup")) {
                String::new()
            } else {
                format!(
                    "{}.{:09} {}.{:09}",
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec()
                )
            };
        out.insert(
            p.clone(),
            format!(
                "{:?} {} {:o} {} {times} {:?}",
                m.file_type(),
                m.ino(),
                m.mode(),
                m.len(),
                content
            ),
        );
        if m.file_type().is_dir() {
            out.extend(snapshot(&p));
        }
    }
    out
}

#[test]
fn hostile_requests_change_nothing_and_block_no_one() {
    let site = Site::new();
    populate(&site);
    // One worker: a request that could hold it would hold everyone. The
    // write timeout of qmail sites (20 minutes) must not matter. The FIFO
    // directory is also an allowed reply directory, so that the daemon's own
    // FIFO can be named as a reply path.
    site.control("timeoutwrite", "1200\n");
    let fifodir = site.dir.path().join("inlookup");
    let d = Daemon::start(
        &site,
        &[
            "-i",
            "2",
            "--workers",
            "1",
            "--reply-dir",
            fifodir.to_str().unwrap(),
        ],
        &[],
    );
    let rd = d.replydir.clone();
    let outside = site.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(rd.join("victim.txt"), "precious").unwrap();
    std::os::unix::fs::symlink(rd.join("victim.txt"), rd.join("link")).unwrap();
    fs::create_dir(rd.join("subdir")).unwrap();
    fs::write(rd.join("subdir").join("deep.txt"), "deep").unwrap();
    mkfifo(&rd.join("noreader"), 0o660);
    fs::write(outside.join("other.txt"), "other").unwrap();
    // A FIFO with a reader outside the allowed directories.
    mkfifo(&outside.join("fifo"), 0o660);
    let _outside_reader = reader(&outside.join("fifo"));
    // A symlink in the allowed directory to a FIFO that has a reader.
    std::os::unix::fs::symlink(outside.join("fifo"), rd.join("fifolink")).unwrap();
    // A FIFO whose reader never reads, filled to the brim.
    mkfifo(&rd.join("full"), 0o660);
    let _full_reader = reader(&rd.join("full"));
    let filler = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(rd.join("full"))
        .unwrap();
    while nix::unistd::write(&filler, &[0u8; 4096]).is_ok() {}
    let before = (snapshot(&rd), snapshot(&outside), snapshot(&fifodir));

    let rdname = rd.file_name().unwrap().to_str().unwrap();
    let bad_paths: Vec<(&str, String)> = vec![
        ("regular file", rd.join("victim.txt").display().to_string()),
        ("symlink to a file", rd.join("link").display().to_string()),
        (
            "symlink to a FIFO",
            rd.join("fifolink").display().to_string(),
        ),
        ("directory", rd.join("subdir").display().to_string()),
        (
            "file in a sub-directory",
            rd.join("subdir/deep.txt").display().to_string(),
        ),
        (
            "outside the allowed dirs",
            outside.join("fifo").display().to_string(),
        ),
        (
            "outside, regular file",
            outside.join("other.txt").display().to_string(),
        ),
        (
            "dot-dot",
            format!("{}/../{rdname}/victim.txt", rd.display()),
        ),
        ("no reader", rd.join("noreader").display().to_string()),
        ("relative", "victim.txt".to_string()),
        ("missing", rd.join("missing").display().to_string()),
        ("the daemon's own FIFO", d.fifo(1).display().to_string()),
    ];
    // Refused without an answer, but not without trying: the full FIFO is a
    // FIFO with a reader, opened, unlinked... and the reply does not fit.
    let stuck = rd.join("full").display().to_string();
    let good = |tag: &str| d.c_query(1, "joe@example.com", "", tag);
    for (i, (name, path)) in bad_paths.iter().enumerate() {
        send_raw(
            &d.fifodir,
            &request_bytes(3, "joe@example.com", Path::new(path), ""),
        );
        assert_eq!(good(&format!("p{i}")), int(0), "good query after: {name}");
    }
    let mut framing: Vec<(&str, Vec<u8>)> = vec![
        ("negative length", int(-100)),
        ("length 0", int(0)),
        ("length 5000", {
            let mut v = int(5000);
            v.extend(vec![b'A'; 3000]);
            v
        }),
        ("length with no body", int(57)),
        ("three bytes", vec![1, 2, 3]),
    ];
    let tmp = rd.join("unused");
    let mut missing_nul = request_bytes(1, "joe@example.com", &tmp, "");
    let n = missing_nul.len();
    missing_nul[n - 1] = b'x';
    framing.push(("missing NUL", missing_nul));
    let mut no_fields = int(2);
    no_fields.extend([1, 0]);
    framing.push(("no fields", no_fields));
    for (i, (name, bytes)) in framing.iter().enumerate() {
        send_raw(&d.fifodir, bytes);
        assert_eq!(good(&format!("f{i}")), int(0), "good query after: {name}");
        // The hostile bytes and a good request in one write, so that the
        // daemon reads them together.
        let reply = rd.join(format!("{}{i}together", std::process::id()));
        let mut both = bytes.clone();
        both.extend(request_bytes(1, "joe@example.com", &reply, ""));
        assert_eq!(
            c_query_raw(&d.fifodir, &reply, &both),
            int(0),
            "good request read together with: {name}"
        );
    }
    // A reply FIFO that cannot take the reply costs the one worker nothing.
    send_raw(
        &d.fifodir,
        &request_bytes(3, "joe@example.com", Path::new(&stuck), ""),
    );
    assert_eq!(good("after-stuck"), int(0));
    // An unknown type with a valid reply FIFO gets -1 instead of silence.
    let reply = rd.join(format!("{}{}", std::process::id(), 999));
    assert_eq!(d.c_query_at(&reply, 9, "joe@example.com", ""), int(-1));
    assert_eq!(good("after-unknown"), int(0));

    let mut after = (snapshot(&rd), snapshot(&outside), snapshot(&fifodir));
    // The stuck FIFO was opened and unlinked (it passed every check); that is
    // the only change, and it was made to a FIFO that asked for an answer.
    let full = rd.join("full");
    assert!(!after.0.contains_key(&full), "the full FIFO was unlinked");
    after.0.insert(full.clone(), before.0[&full].clone());
    assert_eq!(after, before, "nothing else changed on disk");
    d.signal(Signal::SIGUSR1);
    let stats = d.wait_for(|l| l.starts_with("Bad requests"), 1, "stats");
    let refused: u64 = stats[0]
        .split("Refused reply paths ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert_eq!(refused as usize, bad_paths.len(), "{}", stats[0]);
    assert!(d.stop().success());
}

#[test]
fn sixteen_clients_thousand_queries_each() {
    let site = Site::new();
    populate(&site);
    site.control("hostip", "192.0.2.7");
    let d = Arc::new(Daemon::start(&site, &["-i", "4"], &[]));
    let cases = Arc::new(expectations("192.0.2.7"));
    let started = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (d, cases) = (d.clone(), cases.clone());
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let (q, email, ip, want) = &cases[(t * 7 + i) % cases.len()];
                    let got = d.c_query(*q, email, ip, &format!("c{t}n{i}"));
                    assert_eq!(&got, want, "client {t} query {i}: type {q} {email}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "16 clients x 1000 mixed queries: {:.0} queries/s ({secs:.2} s), every answer correct",
        16000.0 / secs
    );
    let d = Arc::into_inner(d).unwrap();
    assert!(d.stop().success());
}

#[test]
fn signals() {
    let site = Site::new();
    populate(&site);
    let envdir = site.dir.path().join("variables");
    fs::create_dir(&envdir).unwrap();
    fs::write(envdir.join("DEFAULT_DOMAIN"), "example.com\n").unwrap();
    let d = Daemon::start(
        &site,
        &["-i", "2", "--envdir", envdir.to_str().unwrap()],
        &[],
    );
    assert_eq!(d.c_query(1, "joe", "", "a"), int(0));
    assert_eq!(d.c_query(1, "bob", "", "b"), int(1));

    // USR1: the C stats block and ours.
    d.signal(Signal::SIGUSR1);
    let stats = d.wait_for(
        |l| l.starts_with("User:Relay:Password:Limit:Alias:Host:Domain"),
        1,
        "stats",
    );
    assert_eq!(
        stats[0],
        "User:Relay:Password:Limit:Alias:Host:Domain 2 0 0 0 0 0 0 Cached Nodes 0"
    );
    let q = d.wait_for(|l| l.starts_with("Queries "), 1, "queries line");
    assert!(q[0].starts_with("Queries 2, Total Time "), "{}", q[0]);
    assert!(q[0].contains(", Query/Sec = "), "{}", q[0]);
    d.wait_for(|l| l.starts_with("Start Time: "), 1, "start time");

    // USR2 toggles the per-query lines.
    assert!(!d.lines().iter().any(|l| l.contains("Query ['User Query']")));
    d.signal(Signal::SIGUSR2);
    d.wait_for(|l| l.ends_with("Resetting DEBUG flag to 1"), 1, "debug on");
    d.c_query(1, "joe@example.com", "", "c");
    let line = d.wait_for(
        |l| l.contains("Query ['User Query'], User joe@example.com"),
        1,
        "query line",
    );
    assert!(line[0].starts_with("infifo."), "{}", line[0]);
    assert!(line[0].contains(", RemoteIp N/A"), "{}", line[0]);
    d.signal(Signal::SIGUSR2);
    d.wait_for(|l| l.ends_with("Resetting DEBUG flag to 0"), 1, "debug off");
    d.c_query(1, "ann@example.com", "", "d");
    d.signal(Signal::SIGUSR1);
    d.wait_for(|l| l.starts_with("Queries 4,"), 1, "stats after 4 queries");
    assert!(!d.lines().iter().any(|l| l.contains("User ann@example.com")));

    // INT closes the database connections; the next query reconnects.
    d.signal(Signal::SIGINT);
    d.wait_for(|l| l.ends_with("closing db"), 1, "closing db");
    d.signal(Signal::SIGUSR1);
    d.wait_for(
        |l| l.starts_with("Database connections open 0, made 1"),
        1,
        "closed",
    );
    assert_eq!(d.c_query(1, "joe@example.com", "", "e"), int(0));
    d.signal(Signal::SIGUSR1);
    d.wait_for(
        |l| l.starts_with("Database connections open 1, made 2"),
        1,
        "reconnected",
    );

    // HUP re-reads the envdir and reconnects.
    fs::write(envdir.join("DEFAULT_DOMAIN"), "example.org\n").unwrap();
    d.signal(Signal::SIGHUP);
    d.wait_for(|l| l.ends_with("Reconfiguring"), 1, "reconfiguring");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(d.c_query(1, "bob", "", "f"), int(0));
    assert_eq!(d.c_query(1, "joe", "", "g"), int(1));

    // TERM: stats, FIFOs removed, exit 0.
    let (f1, f2) = (d.fifo(1), d.fifo(2));
    let lines = d.output();
    let status = d.stop();
    assert_eq!(status.code(), Some(0));
    assert!(!f1.exists() && !f2.exists(), "FIFOs removed");
    let out = lines.lock().unwrap().join("\n");
    assert!(out.contains("Queries 7,"), "{out}");
}

#[test]
fn fifo_creation_rules() {
    let site = Site::new();
    populate(&site);
    // A regular file where a FIFO should be: refused, left alone.
    let dir = site.dir.path().join("inlookup");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("infifo.1"), "not a fifo").unwrap();
    let mut d = Daemon::spawn(&site, &[], &[]);
    let status = d.exit_status();
    assert_eq!(status.code(), Some(111));
    assert_eq!(
        fs::read_to_string(dir.join("infifo.1")).unwrap(),
        "not a fifo"
    );
    d.wait_for(
        |l| l.contains("infifo.1") && l.contains("not a FIFO"),
        1,
        "refusal",
    );
    fs::remove_file(dir.join("infifo.1")).unwrap();
    drop(d);

    // A stale FIFO is taken over and gets FIFO_MODE; a relative INFIFO with
    // one instance is still infifo.1.
    mkfifo(&dir.join("infifo.1"), 0o600);
    let d = Daemon::start(&site, &[], &[("FIFO_MODE", "0666")]);
    assert_eq!(fs::metadata(d.fifo(1)).unwrap().mode() & 0o7777, 0o666);
    assert_eq!(d.c_query(1, "joe@example.com", "", "s"), int(0));
    // A second daemon on the same FIFO is refused.
    let mut second = Daemon::spawn(&site, &[], &[]);
    assert_eq!(second.exit_status().code(), Some(111));
    drop(second);
    assert_eq!(d.c_query(1, "joe@example.com", "", "t"), int(0));
    assert!(d.stop().success());

    // An absolute -f with one instance is that exact path.
    let path = site.dir.path().join("exact-fifo");
    let d = Daemon::start(&site, &["-f", path.to_str().unwrap()], &[]);
    assert!(path.exists());
    assert!(!site.dir.path().join("exact-fifo.1").exists());
    let reply = d.replydir.join("12345");
    let got = c_query_raw_path(&path, &reply, &request_bytes(7, "alias.com", &reply, ""));
    assert_eq!(got, text("example.com"));
    assert!(d.stop().success());
    assert!(!path.exists());

    // -i 0 serves no one: a usage error, nothing made.
    let mut zero = Daemon::spawn(&site, &["-i", "0"], &[]);
    assert_eq!(zero.exit_status().code(), Some(1));
    zero.wait_for(|l| l.contains("0 FIFOs serve no one"), 1, "usage error");
    drop(zero);
    assert!(!dir.join("infifo.1").exists());

    // The start-up line names each reply directory once, also when FIFOTMPDIR
    // is /tmp, one of the defaults.
    let d = Daemon::start(&site, &[], &[("FIFOTMPDIR", "/tmp")]);
    let line = d.wait_for(
        |l| l.contains("reply FIFOs accepted in"),
        1,
        "start-up line",
    );
    let dirs = line[0].split("reply FIFOs accepted in ").nth(1).unwrap();
    assert_eq!(dirs.matches("/tmp").count(), 1, "{dirs}");
    assert!(d.stop().success());
}

/// Like c_query_raw, for a single FIFO path.
fn c_query_raw_path(fifo: &Path, reply: &Path, request: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(fifo, dir.path().join("infifo.1")).unwrap();
    c_query_raw(dir.path(), reply, request)
}

#[test]
fn reply_directory_recreated_while_running() {
    let site = Site::new();
    populate(&site);
    let d = Daemon::start(&site, &["-i", "2"], &[]);
    assert_eq!(d.c_query(1, "joe@example.com", "", "a"), int(0));
    // A service script removes and recreates the clients' directory.
    fs::remove_dir_all(&d.replydir).unwrap();
    fs::create_dir(&d.replydir).unwrap();
    assert_eq!(d.c_query(1, "joe@example.com", "", "b"), int(0));
    assert!(d.stop().success());
}

/// The daemon's open descriptors and resident memory (kB).
pub fn fds_and_rss(pid: u32) -> (usize, u64) {
    (open_fds(pid).unwrap(), rss_kib(pid).unwrap())
}

/// 10 000 generated malformed requests (random bytes, random field counts and
/// type bytes, wrong length prefixes, reply paths to regular files, symlinks,
/// directories and other directories), with a valid query after every ten:
/// every valid one answered correctly, nothing on disk changed, descriptors
/// and memory flat.
#[test]
fn ten_thousand_malformed_requests() {
    let site = Site::new();
    populate(&site);
    site.control("hostip", "192.0.2.7");
    let d = Daemon::start(&site, &["-i", "2"], &[]);
    let rd = d.replydir.clone();
    let outside = site.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(rd.join("file"), "precious").unwrap();
    std::os::unix::fs::symlink(rd.join("file"), rd.join("link")).unwrap();
    fs::create_dir(rd.join("dir")).unwrap();
    fs::write(outside.join("other"), "other").unwrap();
    let targets: Vec<Vec<u8>> = [
        rd.join("file"),
        rd.join("link"),
        rd.join("dir"),
        rd.join("dir/x"),
        outside.join("other"),
        outside.clone(),
        PathBuf::from(format!("{}/../outside/other", rd.display())),
        PathBuf::from("file"),
        rd.join("missing"),
    ]
    .iter()
    .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
    .collect();
    let before = (snapshot(&rd), snapshot(&outside));
    let cases = expectations("192.0.2.7");
    // Warm up (connections, statements), then measure.
    for (i, (q, email, ip, want)) in cases.iter().enumerate() {
        assert_eq!(&d.c_query(*q, email, ip, &format!("w{i}")), want);
    }
    let pid = d.pid();
    let (fds0, rss0) = fds_and_rss(pid);

    let mut rng = Rng(0x9E3779B97F4A7C15);
    let mut next = move || rng.next_u64();
    let mut sent = 0;
    for round in 0..1000 {
        for _ in 0..10 {
            let kind = next() % 4;
            let bytes = match kind {
                // Random bytes, random length.
                0 => (0..1 + next() % 300).map(|_| next() as u8).collect(),
                // A record with random type, separator and field count.
                1 => {
                    let mut body = vec![next() as u8, (next() % 3) as u8];
                    for _ in 0..next() % 6 {
                        body.extend((0..next() % 20).map(|_| b'a' + (next() % 26) as u8));
                        body.push(0);
                    }
                    let mut rec = (body.len() as i32).to_ne_bytes().to_vec();
                    rec.extend(body);
                    rec
                }
                // A well-formed query whose reply path must be refused.
                2 => {
                    let t = &targets[(next() % targets.len() as u64) as usize];
                    request_bytes(
                        1 + (next() % 7) as u8,
                        "joe@example.com",
                        Path::new(std::ffi::OsStr::from_bytes(t)),
                        "10.0.0.1",
                    )
                }
                // A well-formed query with a wrong length prefix.
                _ => {
                    let mut rec = request_bytes(3, "joe@example.com", &rd.join("file"), "");
                    let wrong = rec.len() as i32 - 4 + (next() % 40) as i32 - 20;
                    rec[..4].copy_from_slice(&wrong.to_ne_bytes());
                    rec
                }
            };
            send_raw(&d.fifodir, &bytes);
            sent += 1;
        }
        let (q, email, ip, want) = &cases[round % cases.len()];
        assert_eq!(
            &d.c_query(*q, email, ip, &format!("r{round}")),
            want,
            "valid query {round} (type {q} {email}) after {sent} malformed ones"
        );
    }
    assert_eq!(sent, 10_000);
    assert_eq!(
        (snapshot(&rd), snapshot(&outside)),
        before,
        "nothing changed on disk"
    );
    let (fds1, rss1) = fds_and_rss(pid);
    assert_eq!(fds1, fds0, "descriptors");
    assert!(
        rss1 <= rss0 + 4096,
        "memory grew from {rss0} kB to {rss1} kB"
    );
    eprintln!("10 000 malformed requests: fds {fds0} -> {fds1}, RSS {rss0} -> {rss1} kB");
    assert!(d.stop().success());
}
