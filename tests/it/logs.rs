//! The daemon's log against hostile clients: bytes that would forge or split
//! a log line, and floods of requests that each cost a warning.

use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use indilookup::logline::{BURST, INTERVAL};
use indilookup::protocol::FlushRequest;
use nix::sys::signal::Signal;

use crate::daemon::{c_query_raw, int, send_raw, send_waiting, Daemon};
use crate::harness::Site;
use crate::lookups::populate;

/// A line the daemon writes when it is ready, as a client would forge it.
const FORGED_READY: &str = "InLookup[1] PPID 1 PID 1 Ready with INFIFO=forged";
/// The first line of the stats block qmailmrtg reads, forged.
const FORGED_STATS: &str =
    "User:Relay:Password:Limit:Alias:Host:Domain 999 0 0 0 0 0 0 Cached Nodes 0";
/// Clear the screen and set a terminal's title.
const ESCAPES: &str = "\x1b[2J\x1b]0;forged\x07";

/// Bytes the daemon has written to its log (stdout and stderr) so far.
fn log_bytes(d: &Daemon) -> usize {
    d.lines().iter().map(|l| l.len() + 1).sum()
}

/// A request whose reply path is `path` (bytes, maybe not a path at all).
fn request_to(qtype: u8, email: &[u8], path: &[u8], ip: &[u8]) -> Vec<u8> {
    let mut body = vec![qtype, 0];
    for field in [email, path, ip] {
        body.extend(field);
        body.push(0);
    }
    let mut rec = (body.len() as i32).to_ne_bytes().to_vec();
    rec.extend(body);
    rec
}

/// Every line that a client's bytes could have made: none may be forged.
fn assert_nothing_forged(lines: &[String]) {
    for l in lines {
        assert!(!l.contains('\x1b') && !l.contains('\x07'), "escape: {l:?}");
        assert!(!l.starts_with(FORGED_READY), "forged Ready line: {l:?}");
        assert!(!l.starts_with(FORGED_STATS), "forged stats line: {l:?}");
    }
}

/// Newlines, a forged `Ready` line, a forged stats line and terminal escapes
/// in an address (the per-query line shows it), a RELAY IP, reply paths (the
/// refusal shows them), a flush name and the reply path of an unknown query
/// type: every one reaches the log escaped, on the line it belongs to.
#[test]
fn client_bytes_cannot_forge_or_split_log_lines() {
    let site = Site::new();
    populate(&site);
    let d = Daemon::start(&site, &["-i", "1", "-v"], &[("USE_BTREE", "1")]);
    // At most 128 bytes of a value are shown: these come first.
    let hostile = format!("{ESCAPES}\n{FORGED_READY}\n{FORGED_STATS}");

    // The address, in the per-query line: answered "absent" as usual.
    let email = format!("joe{hostile}@example.com");
    let reply = d.replydir.join("addr");
    let got = d.c_query_at(&reply, 1, &email, "");
    assert_eq!(got, int(1), "an address no account can have is absent");
    // A RELAY IP, in the per-query line.
    let reply = d.replydir.join("ip");
    let got = d.c_query_at(&reply, 2, "joe@example.com", &format!("10.0.0.1{hostile}"));
    assert_eq!(got, int(0), "no relay entry has that IP");
    // Reply paths, in the refusal line: one in the reply directory that does
    // not exist, one that is no path at all.
    let mut in_dir = d.replydir.as_os_str().as_bytes().to_vec();
    in_dir.extend(format!("/x{hostile}").as_bytes());
    send_raw(&d.fifodir, &request_to(1, b"joe@example.com", &in_dir, b""));
    send_raw(
        &d.fifodir,
        &request_to(3, b"joe@example.com", hostile.as_bytes(), b""),
    );
    // An unknown query type, answered -1 on a path that is refused.
    send_raw(&d.fifodir, &request_to(9, b"joe@example.com", &in_dir, b""));
    // A flush name, in the flush line.
    let reply = d.replydir.join("flush");
    let flush = FlushRequest {
        name: format!("joe{hostile}").into_bytes(),
        reply_path: reply.as_os_str().as_bytes().to_vec(),
    };
    assert_eq!(
        c_query_raw(&d.fifodir, &reply, &flush.encode().unwrap()),
        int(0)
    );

    let escaped = "\\x1b[2J\\x1b]0;forged\\x07\\x0aInLookup[1] PPID 1 PID 1 Ready with \
                   INFIFO=forged\\x0aUser:Relay:Password:";
    // Each kind of line, escaped: the daemon writes them in its own time
    // (the flush line may reach the log after the flush answer), so wait
    // for each one rather than for a count of all of them.
    for what in [
        "Query ['User Query'], User joe\\x1b",
        "RemoteIp 10.0.0.1\\x1b",
        "reply path refused: /",
        "reply path refused: \\x1b",
        "unknown query type 9 from /",
        "cache flush for joe\\x1b",
    ] {
        d.wait_for(|l| l.contains(what) && l.contains(escaped), 1, what);
    }
    let lines = d.lines();
    assert_nothing_forged(&lines);
    // The daemon's own Ready line is there, once.
    let ready = lines
        .iter()
        .filter(|l| l.starts_with("InLookup[") && l.contains("Ready with INFIFO="))
        .count();
    assert_eq!(ready, 1, "{}", lines.join("\n"));
    assert!(d.stop().success());
}

/// How many lines of a kind were suppressed, from the counter lines.
fn suppressed(lines: &[String], kind: &str) -> u64 {
    let tail = format!(" more \"{kind}\" lines suppressed in the last ");
    lines
        .iter()
        .filter_map(|l| {
            let (head, _) = l.split_once(&tail)?;
            head.rsplit(' ').next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Three thousand requests of the greatest size, each refused with a
/// warning (a 4000-byte reply path that does not exist, an unknown query
/// type, bytes that are no request), as fast as the daemon reads them: the
/// log grows by a few kilobytes, not by the megabytes the warnings would
/// take, and the counter lines account for every warning not written.
#[test]
fn a_flood_of_refused_requests_makes_a_bounded_log() {
    const EACH: usize = 1000;
    let site = Site::new();
    populate(&site);
    let d = Daemon::start(&site, &["-i", "1"], &[]);
    let fifo = d.fifo(1);
    let before = log_bytes(&d);
    let started = Instant::now();
    let mut path = d.replydir.as_os_str().as_bytes().to_vec();
    path.push(b'/');
    path.resize(4000, b'p');
    for i in 0..EACH {
        // No address: answered by the reader at once, so every refusal
        // is logged in order, before the sentinel below.
        let mut p = path.clone();
        p.extend(format!("{i:06}").as_bytes());
        send_waiting(&fifo, &request_to(1, b"", &p, b""));
        send_waiting(&fifo, &request_to(99, b"", &p, b""));
        // A length prefix of 4000, then 4000 bytes that are no request.
        let mut garbage = 4000i32.to_ne_bytes().to_vec();
        garbage.extend(std::iter::repeat_n(0xffu8, 4000));
        send_waiting(&fifo, &garbage);
    }
    // Everything before it has been read once this is answered.
    let reply = d.replydir.join("sentinel");
    let got = d.c_query_at(&reply, 1, "", "");
    assert_eq!(got, int(1));
    let flood = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let grown = log_bytes(&d) - before;
    d.signal(Signal::SIGTERM);
    d.wait_for(
        |l| l.starts_with("Database connections open"),
        1,
        "the stats at TERM",
    );
    let lines = d.lines();
    let refused = lines
        .iter()
        .filter(|l| l.contains("reply path refused: "))
        .count() as u64;
    let unknown = lines
        .iter()
        .filter(|l| l.contains("unknown query type 99 from "))
        .count() as u64;
    let bad = lines.iter().filter(|l| l.contains("bad request (")).count() as u64;
    eprintln!(
        "log flood: {} requests of ~4 kB in {:.2} s; the log grew by {grown} bytes \
         ({refused} refusal, {unknown} unknown-type, {bad} bad-request lines written, \
         the rest counted)",
        3 * EACH + 1,
        flood.as_secs_f64()
    );
    // Per kind and interval, a burst and a counter line, each line short.
    let intervals = 1 + flood.as_secs() / INTERVAL.as_secs();
    let most_lines = 4 * intervals * (u64::from(BURST) + 1);
    assert!(
        grown as u64 <= most_lines * 400,
        "the log grew by {grown} bytes during the flood"
    );
    // Every warning was written or counted. Each refused reply path was
    // refused twice: the USER answer, the -1 to the unknown type.
    assert_eq!(
        refused + suppressed(&lines, "reply path refused"),
        2 * EACH as u64
    );
    assert_eq!(
        unknown + suppressed(&lines, "unknown query type"),
        EACH as u64
    );
    assert!(bad >= 1 && bad <= u64::from(BURST) * intervals);
    assert_nothing_forged(&lines);
}
