//! What the daemon trusts and what it keeps: the directories of its FIFOs and of the reply
//! FIFOs (nobody but their owner may change them unless they are sticky, and nothing is made
//! or followed below one that fails), the FIFOs it writes into (its clients' only), the user
//! it runs as (root is given up once the FIFOs exist), the names it echoes, and the size of
//! its pipes.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};

use crate::daemon::{int, request_bytes, send_raw, text, Daemon};
use crate::harness::Site;
use crate::lookups::populate;
use crate::query::remote;
use testkit::fifo::reader;

/// nobody and nogroup: a user who is not the tests'.
const NOBODY: u32 = 65534;

fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped, it needs root to give files and processes to other users");
    }
    root
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(p: &Path) {
    nix::unistd::chown(p, Some(Uid::from_raw(NOBODY)), Some(Gid::from_raw(NOBODY))).unwrap();
}

/// A FIFO with exactly `mode`, whatever the umask.
fn mkfifo(p: &Path, mode: u32) {
    testkit::fifo::mkfifo(p, mode);
    chmod(p, mode);
}

/// Whatever a writer put into the FIFO read by `r`.
fn drained(r: &mut File) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return got,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Send `request` naming the existing FIFO `fifo` and read the whole answer.
fn ask_into(d: &Daemon, fifo: &Path, request: &[u8]) -> Vec<u8> {
    let mut r = reader(fifo);
    send_raw(&d.fifodir, request);
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut got = Vec::new();
    loop {
        let more = drained(&mut r);
        if more.is_empty() && !got.is_empty() {
            return got;
        }
        got.extend(more);
        assert!(Instant::now() < deadline, "no answer in {}", fifo.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The daemon's line about a reply path it refused.
fn wait_refused(d: &Daemon, path: &Path) -> String {
    let shown = path.display().to_string();
    d.wait_for(
        |l| l.contains("reply path refused") && l.contains(&shown),
        1,
        "refusal",
    )
    .pop()
    .unwrap()
}

/// A site whose files the user nobody may read (as a service user reads its site's).
fn site_for_nobody() -> Site {
    let site = Site::new();
    populate(&site);
    chmod(site.dir.path(), 0o755);
    site
}

// ---------------------------------------------------------------------------
// Root is given up

/// `Uid:`, `Gid:`, `Groups:`, `CapEff:` and `CapPrm:` of /proc/PID/status.
fn credentials(pid: u32) -> Vec<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    ["Uid:", "Gid:", "Groups:", "CapEff:", "CapPrm:"]
        .iter()
        .map(|k| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Started as root with `--user nobody`, the daemon makes its FIFOs and their directory for
/// nobody (mode 0750), then becomes nobody for good: real, effective, saved and file-system
/// ids, the groups, no capability left. It answers our clients and qmail-smtpd's kind of
/// FIFO, re-reads its envdir on HUP and removes its FIFOs at TERM as nobody.
#[test]
fn a_root_daemon_becomes_its_service_user_for_good() {
    if !root_or_skip("a_root_daemon_becomes_its_service_user_for_good") {
        return;
    }
    let site = site_for_nobody();
    let envdir = site.dir.path().join("variables");
    fs::create_dir(&envdir).unwrap();
    fs::write(envdir.join("DEBUG"), "").unwrap();
    let d = Daemon::start(
        &site,
        &[
            "-i",
            "2",
            "--user",
            "nobody",
            "--envdir",
            envdir.to_str().unwrap(),
        ],
        &[],
    );
    let n = NOBODY.to_string();
    assert_eq!(
        credentials(d.pid()),
        [
            format!("{n} {n} {n} {n}"),
            format!("{n} {n} {n} {n}"),
            n.clone(),
            "0000000000000000".to_string(),
            "0000000000000000".to_string(),
        ],
        "the daemon's credentials"
    );
    d.wait_for(
        |l| l.contains("running as nobody (uid 65534"),
        1,
        "user line",
    );
    // Its directory and FIFOs: nobody's, the directory 0750.
    let dir = fs::metadata(&d.fifodir).unwrap();
    assert_eq!(
        (dir.uid(), dir.gid(), dir.mode() & 0o7777),
        (NOBODY, NOBODY, 0o750)
    );
    for k in 1..=2 {
        let f = fs::metadata(d.fifo(k)).unwrap();
        assert_eq!(
            (f.uid(), f.gid(), f.mode() & 0o7777),
            (NOBODY, NOBODY, 0o660)
        );
    }
    // Our client (root, here) gets its answer in its private directory.
    let q = remote(&site, &d);
    assert_eq!(q.real_domain(b"alias.com").unwrap(), b"example.com");
    // qmail-smtpd's kind of reply FIFO: the daemon's user's, mode 0644, in /tmp-like place.
    chmod(&d.replydir, 0o1777);
    let own = d.replydir.join("123451700000000");
    mkfifo(&own, 0o644);
    chown_nobody(&own);
    let got = ask_into(&d, &own, &request_bytes(7, "alias.com", &own, ""));
    assert_eq!(got, text("example.com"));
    // Root's FIFO of the same kind is not the daemon's (any more).
    let roots = d.replydir.join("123461700000000");
    mkfifo(&roots, 0o644);
    let mut r = reader(&roots);
    send_raw(&d.fifodir, &request_bytes(7, "alias.com", &roots, ""));
    let line = wait_refused(&d, &roots);
    assert!(line.contains("belongs to neither"), "{line}");
    assert_eq!(drained(&mut r), b"");
    // HUP re-reads the envdir as nobody.
    let before = d.lines().len();
    d.signal(Signal::SIGHUP);
    d.wait_for(|l| l.contains("Reconfiguring"), 1, "HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !d.lines()[before..]
            .iter()
            .any(|l| l.contains("reconfiguration failed")),
        "{}",
        d.lines().join("\n")
    );
    assert_eq!(q.real_domain(b"alias.com").unwrap(), b"example.com");
    let fifodir = d.fifodir.clone();
    assert!(d.stop().success());
    assert!(!fifodir.join("infifo.1").exists(), "FIFOs removed at TERM");
}

/// The service user must exist, and only root can become another user.
#[test]
fn the_service_user_is_checked() {
    let site = Site::new();
    let mut d = Daemon::spawn(&site, &[], &[("INLOOKUP_USER", "no-such-user-of-inlookup")]);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(d.exit_status().code(), Some(111));
        d.wait_for(
            |l| l.contains("no user \"no-such-user-of-inlookup\"") && l.contains("--user"),
            1,
            "refusal",
        );
    } else {
        assert_eq!(d.exit_status().code(), Some(111));
        d.wait_for(|l| l.contains("no such user"), 1, "refusal");
    }
    assert!(!d.fifo(1).exists());
    if !root_or_skip("the_service_user_is_checked (not root)") {
        return;
    }
    // Not root: another user is refused, by name, not ignored.
    let site = site_for_nobody();
    let mut d = Daemon::launch(&site)
        .args(["--user", "root"])
        .prepare(|cmd| {
            cmd.uid(NOBODY).gid(NOBODY);
        })
        .spawn();
    assert_eq!(d.exit_status().code(), Some(111));
    d.wait_for(
        |l| l.contains("--user root: only root can change the user"),
        1,
        "refusal",
    );
}

// ---------------------------------------------------------------------------
// Directories

/// A server FIFO directory that others than its owner may write and that is not sticky
/// (IndiMail's own 0770): the daemon refuses to start, says which directory and what to do,
/// and makes nothing in it. Sticky, it starts.
#[test]
fn a_fifo_directory_others_may_write_stops_the_start() {
    let site = Site::new();
    populate(&site);
    let dir = site.dir.path().join("inlookup");
    fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o770);
    let mut d = Daemon::spawn(&site, &["-i", "2"], &[]);
    assert_eq!(d.exit_status().code(), Some(111));
    let shown = dir.display().to_string();
    d.wait_for(
        |l| {
            l.contains(&shown)
                && l.contains("mode 0770")
                && l.contains(&format!("chmod +t {shown}"))
                && l.contains(&format!("chmod 0750 {shown}"))
        },
        1,
        "refusal naming the directory and the fix",
    );
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "nothing made in it");
    drop(d);
    chmod(&dir, 0o1770);
    let d = Daemon::start(&site, &["-i", "2"], &[]);
    assert_eq!(d.c_query(1, "joe@example.com", "", "a"), int(0));
    assert!(d.stop().success());
}

/// The same for a reply directory: others may write it and it is not sticky, so they could
/// swap the FIFOs in it; the daemon refuses to start. A missing one is no reason not to.
#[test]
fn a_reply_directory_others_may_write_stops_the_start() {
    let site = Site::new();
    populate(&site);
    let extra = site.dir.path().join("replies");
    fs::create_dir(&extra).unwrap();
    chmod(&extra, 0o775);
    let args = ["--reply-dir", extra.to_str().unwrap()];
    let mut d = Daemon::spawn(&site, &args, &[]);
    assert_eq!(d.exit_status().code(), Some(111));
    let shown = extra.display().to_string();
    d.wait_for(
        |l| l.contains(&shown) && l.contains("chmod +t"),
        1,
        "refusal",
    );
    drop(d);
    chmod(&extra, 0o755);
    let missing = site.dir.path().join("not-yet");
    let d = Daemon::start(
        &site,
        &[args[0], args[1], "--reply-dir", missing.to_str().unwrap()],
        &[],
    );
    let reply = extra.join("12345");
    let got = d.c_query_at(&reply, 1, "joe@example.com", "");
    assert_eq!(got, int(0));
    assert!(d.stop().success());
}

/// A reply directory replaced, while the daemon runs, by a symlink into another user's
/// private directory (by somebody who may write its parent): the daemon follows no link to
/// a directory it cannot trust, writes nothing there and removes nothing.
#[test]
fn a_reply_directory_swapped_for_a_link_is_not_followed() {
    if !root_or_skip("a_reply_directory_swapped_for_a_link_is_not_followed") {
        return;
    }
    let site = Site::new();
    populate(&site);
    let parent = site.dir.path().join("run");
    fs::create_dir(&parent).unwrap();
    let replies = parent.join("inquery");
    fs::create_dir(&replies).unwrap();
    let d = Daemon::start(&site, &["--reply-dir", replies.to_str().unwrap()], &[]);
    let reply = replies.join("1");
    let got = d.c_query_at(&reply, 1, "joe@example.com", "");
    assert_eq!(got, int(0));
    // Somebody else's private directory, with a FIFO its owner reads.
    let private = site.dir.path().join("home-of-nobody");
    fs::create_dir(&private).unwrap();
    chmod(&private, 0o700);
    chown_nobody(&private);
    let victim = private.join("fifo");
    mkfifo(&victim, 0o600);
    chown_nobody(&victim);
    let mut r = reader(&victim);
    fs::rename(&replies, parent.join("inquery.old")).unwrap();
    std::os::unix::fs::symlink(&private, &replies).unwrap();
    let named = replies.join("fifo");
    send_raw(
        &d.fifodir,
        &request_bytes(7, "bytes.of.my.choice", &named, ""),
    );
    let line = wait_refused(&d, &named);
    assert!(line.contains("uid 65534"), "{line}");
    assert_eq!(drained(&mut r), b"", "written into the other user's FIFO");
    assert!(victim.exists(), "the other user's FIFO was removed");
    assert!(d.stop().success());
}

/// A FIFO at a server FIFO's path that belongs to another user is not taken over: the
/// daemon refuses to start and leaves it as it is.
#[test]
fn a_stale_fifo_of_another_user_is_not_taken_over() {
    if !root_or_skip("a_stale_fifo_of_another_user_is_not_taken_over") {
        return;
    }
    let site = Site::new();
    populate(&site);
    let dir = site.dir.path().join("inlookup");
    fs::create_dir(&dir).unwrap();
    let planted = dir.join("infifo.1");
    mkfifo(&planted, 0o666);
    chown_nobody(&planted);
    let before = fs::metadata(&planted).unwrap();
    let mut d = Daemon::spawn(&site, &[], &[]);
    assert_eq!(d.exit_status().code(), Some(111));
    d.wait_for(
        |l| {
            l.contains("infifo.1")
                && l.contains("owned by uid 65534")
                && l.contains("not taken over")
        },
        1,
        "refusal",
    );
    let after = fs::metadata(&planted).unwrap();
    assert_eq!(
        (after.ino(), after.uid(), after.gid(), after.mode()),
        (before.ino(), before.uid(), before.gid(), before.mode())
    );
}

// ---------------------------------------------------------------------------
// Whose FIFOs get an answer, and what is echoed

/// A root daemon in /tmp: another user's private FIFO (mode 0600, read by its owner) named
/// in a request gets nothing, and is not removed. (The daemon of the tests keeps root.)
#[test]
fn another_users_fifo_gets_no_answer_from_a_root_daemon() {
    if !root_or_skip("another_users_fifo_gets_no_answer_from_a_root_daemon") {
        return;
    }
    let site = Site::new();
    populate(&site);
    let d = Daemon::start(&site, &["-i", "1"], &[]);
    chmod(&d.replydir, 0o1777);
    let victim = d.replydir.join("private-fifo");
    mkfifo(&victim, 0o600);
    chown_nobody(&victim);
    let mut r = reader(&victim);
    for name in ["bytes.of.my.choice", "\x1b]0;x\x07"] {
        send_raw(&d.fifodir, &request_bytes(7, name, &victim, ""));
    }
    let line = wait_refused(&d, &victim);
    assert!(line.contains("belongs to neither"), "{line}");
    // Both requests were taken (one worker answers in order: the next one is answered).
    assert_eq!(d.c_query(1, "joe@example.com", "", "after"), int(0));
    assert_eq!(drained(&mut r), b"");
    assert!(victim.exists(), "removed");
    // A FIFO the group of the server FIFOs may write is a client's (C vchkpass in a
    // set-group-ID FIFOTMPDIR).
    let group = fs::metadata(d.fifo(1)).unwrap().gid();
    let client = d.replydir.join("group-writable");
    mkfifo(&client, 0o660);
    nix::unistd::chown(
        &client,
        Some(Uid::from_raw(NOBODY)),
        Some(Gid::from_raw(group)),
    )
    .unwrap();
    let got = ask_into(&d, &client, &request_bytes(7, "alias.com", &client, ""));
    assert_eq!(got, text("example.com"));
    assert!(d.stop().success());
}

/// A DOMAIN query for bytes that are no name gets "not found", not its bytes back; a PWD
/// query's "No such user" does not repeat them either. Names are echoed as before.
#[test]
fn bytes_that_are_no_name_are_not_echoed() {
    let site = Site::new();
    populate(&site);
    let d = Daemon::start(&site, &["-i", "1"], &[]);
    assert_eq!(
        d.c_query(7, "unknown.example", "", "a"),
        text("unknown.example")
    );
    assert_eq!(d.c_query(7, "\x1b]0;forged\x07\nline", "", "b"), int(0));
    assert_eq!(d.c_query(7, "a b", "", "c"), int(0));
    assert_eq!(
        d.c_query(3, "x\x1b[2J@example.com", "", "d"),
        text("PWSTRUCT=No such user ")
    );
    assert_eq!(
        d.c_query(3, "nobody@example.com", "", "e"),
        text("PWSTRUCT=No such user nobody@example.com")
    );
    assert!(d.stop().success());
}

// ---------------------------------------------------------------------------
// Pipe size

fn pipe_size(f: &File) -> i32 {
    nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_GETPIPE_SZ).unwrap()
}

/// Any writer may make a server FIFO's pipe one page small (F_SETPIPE_SZ), so that clients
/// wait for room: the daemon sets it back, by itself within a second or two, and on HUP.
#[test]
fn a_server_pipe_made_smaller_is_set_back() {
    let site = Site::new();
    populate(&site);
    let d = Daemon::start(&site, &["-i", "1"], &[]);
    let w = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(d.fifo(1))
        .unwrap();
    let full = pipe_size(&w);
    assert!(full >= 65536, "{full}");
    let back = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while pipe_size(&w) != full {
            assert!(Instant::now() < deadline, "{what}: still {}", pipe_size(&w));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    for (i, hup) in [false, true].into_iter().enumerate() {
        nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
        assert_eq!(pipe_size(&w), 4096);
        if hup {
            d.signal(Signal::SIGHUP);
        }
        back(if hup { "after HUP" } else { "by itself" });
        d.wait_for(
            |l| l.contains("infifo.1") && l.contains("made smaller (4096 bytes)"),
            i + 1,
            "warning",
        );
    }
    assert_eq!(d.c_query(1, "joe@example.com", "", "a"), int(0));
    assert!(d.stop().success());
}
