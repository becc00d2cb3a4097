//! A client that writes exactly the bytes libindimail's inquery() writes,
//! laid out by hand (not with the library's encoder).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::fifo::{mkfifo, reader};

/// Request bytes laid out as inquery.c does.
pub fn request_bytes(qtype: u8, email: &str, reply: &Path, ip: &str) -> Vec<u8> {
    let mut body = vec![qtype, 0];
    body.extend(email.as_bytes());
    body.push(0);
    body.extend(reply.as_os_str().as_encoded_bytes());
    body.push(0);
    body.extend(ip.as_bytes());
    body.push(0);
    let mut rec = (body.len() as i32).to_le_bytes().to_vec();
    rec.extend(body);
    rec
}

/// The C client's steps: make the reply FIFO, open it non-blocking for
/// reading, write the request to a server FIFO (instance chosen at random)
/// in one write, read the reply until the server closes it.
pub fn c_query_raw(fifodir: &Path, reply: &Path, request: &[u8]) -> Vec<u8> {
    mkfifo(reply, 0o660);
    let mut rfd = reader(reply);
    send_raw(fifodir, request);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no reply on {}", reply.display());
        let mut p = [PollFd::new(rfd.as_fd(), PollFlags::POLLIN)];
        poll(&mut p, PollTimeout::try_from(left).unwrap()).unwrap();
        match rfd.read(&mut buf) {
            Ok(0) if !out.is_empty() => break,
            Ok(0) => std::thread::sleep(Duration::from_millis(1)),
            Ok(n) => out.extend(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read reply: {e}"),
        }
    }
    // The server unlinks the reply FIFO once it has opened it, as C clients
    // expect.
    assert!(
        fs::symlink_metadata(reply).is_err(),
        "{} was not removed by the server",
        reply.display()
    );
    out
}

/// Write bytes into a randomly chosen server FIFO, in one write.
pub fn send_raw(fifodir: &Path, bytes: &[u8]) {
    let n = (1..)
        .take_while(|k| fifodir.join(format!("infifo.{k}")).exists())
        .count();
    assert!(n > 0, "no server FIFO in {}", fifodir.display());
    static PICK: AtomicU64 = AtomicU64::new(0);
    let k = 1 + PICK.fetch_add(1, Ordering::Relaxed) % n as u64;
    let mut w = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifodir.join(format!("infifo.{k}")))
        .unwrap();
    w.write_all(bytes).unwrap();
}

/// A reply that is one native-endian int.
pub fn int(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// A reply with a NUL-terminated text payload.
pub fn text(s: &str) -> Vec<u8> {
    let mut v = int(s.len() as i32 + 1);
    v.extend(s.as_bytes());
    v.push(0);
    v
}

/// Write one request into the server FIFO `fifo` with one write, waiting
/// while the pipe is full (a flood fills it faster than the daemon reads);
/// panics after 10 s.
pub fn send_waiting(fifo: &Path, bytes: &[u8]) {
    let mut w = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match w.write(bytes) {
            Ok(n) => {
                assert_eq!(n, bytes.len(), "a request is one atomic write");
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the server FIFO stayed full");
                let mut p = [PollFd::new(w.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut p, PollTimeout::from(100u8));
            }
            Err(e) => panic!("write request: {e}"),
        }
    }
}
