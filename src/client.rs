//! The FIFO client: one request to a running inlookup, one reply back
//! (what libindimail's inquery() does, with its weaknesses fixed).
//!
//! * The server FIFO is INFIFO as given when it is a path, else one of
//!   `INFIFODIR/INFIFO.1..n` picked at random; an instance that cannot be
//!   opened (no reader, missing) is skipped for the next.
//! * The reply FIFO gets an unpredictable name in FIFOTMPDIR, is created
//!   exclusively (an existing path is an error, never reused), opened with
//!   O_NOFOLLOW and removed on every way out.
//! * The whole exchange has one deadline; partial reads are completed.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::config::{FifoConfig, Timeouts};
use crate::protocol::{
    DecodeError, EncodeError, FlushRequest, QueryType, Reply, Request, PIPE_BUF,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no inlookup FIFO found at {0}")]
    NoServer(PathBuf),
    #[error("unable to write to {path}: {source}")]
    Server { path: PathBuf, source: io::Error },
    #[error("unable to create reply fifo {path}: {source}")]
    ReplyFifo { path: PathBuf, source: io::Error },
    #[error("timed out waiting for the reply on {0}")]
    Timeout(PathBuf),
    #[error("reading the reply from {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("bad request: {0}")]
    Encode(#[from] EncodeError),
    #[error("bad reply: {0}")]
    Decode(#[from] DecodeError),
}

/// The server FIFOs a client may use, in the order to try them.
pub fn server_fifos(fifo: &FifoConfig) -> Vec<PathBuf> {
    if fifo.infifo_is_path() {
        return vec![fifo.server_base()];
    }
    let mut found: Vec<PathBuf> = (1..)
        .map(|k| fifo.instance_path(k))
        .take_while(|p| p.exists())
        .collect();
    if found.len() > 1 {
        let start = (random_u64() % found.len() as u64) as usize;
        found.rotate_left(start);
    }
    found
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // getrandom(2) cannot fail for 8 bytes once the pool is initialised; on
    // the impossible error the name is still unique through pid and time.
    // SAFETY: the buffer is valid for 8 bytes.
    let _ = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    u64::from_ne_bytes(b)
}

/// A reply FIFO that removes itself.
struct ReplyPath(PathBuf);

impl Drop for ReplyPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Ask one question. `ip` is needed for RELAY queries only.
pub fn inquery(
    fifo: &FifoConfig,
    timeouts: Timeouts,
    qtype: QueryType,
    email: &[u8],
    ip: &[u8],
) -> Result<Reply, ClientError> {
    let reply = exchange(
        fifo,
        timeouts,
        |reply_path| {
            Request {
                qtype,
                email: email.to_vec(),
                reply_path,
                ip: ip.to_vec(),
            }
            .encode()
        },
        |first| Reply::payload_len(qtype, first),
    )?;
    Ok(Reply::decode(qtype, &reply)?)
}

/// Ask the daemon to forget what it cached about an address or a domain
/// (our extension of the protocol). Returns how many entries it removed.
pub fn flush(fifo: &FifoConfig, timeouts: Timeouts, name: &[u8]) -> Result<i32, ClientError> {
    let reply = exchange(
        fifo,
        timeouts,
        |reply_path| {
            FlushRequest {
                name: name.to_vec(),
                reply_path,
            }
            .encode()
        },
        |_| Ok(0),
    )?;
    let n = i32::from_ne_bytes([reply[0], reply[1], reply[2], reply[3]]);
    if n < 0 {
        return Err(ClientError::Decode(DecodeError::BadPayload(
            "the daemon could not flush its cache".into(),
        )));
    }
    Ok(n)
}

/// One request, one reply: make the reply FIFO, send the request built for
/// its path, read the int and the payload it announces. The reply FIFO is
/// removed on every way out.
fn exchange(
    fifo: &FifoConfig,
    timeouts: Timeouts,
    request_for: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, EncodeError>,
    payload_len: impl Fn(i32) -> Result<usize, DecodeError>,
) -> Result<Vec<u8>, ClientError> {
    let deadline = Instant::now() + timeouts.read + timeouts.write;
    let name = format!("inquery.{}.{:016x}", std::process::id(), random_u64());
    let reply_path = fifo.fifotmpdir.join(name);
    let fifo_err = |source: io::Error| ClientError::ReplyFifo {
        path: reply_path.clone(),
        source,
    };
    // mkfifo fails on an existing path: a name planted by someone else is
    // never used.
    nix::unistd::mkfifo(&reply_path, nix::sys::stat::Mode::from_bits_truncate(0o660))
        .map_err(|e| fifo_err(e.into()))?;
    let guard = ReplyPath(reply_path.clone());
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&guard.0)
        .map_err(fifo_err)?;
    let meta = reader.metadata().map_err(fifo_err)?;
    if !meta.file_type().is_fifo() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(fifo_err(io::Error::other("not the FIFO this process made")));
    }
    // The daemon may run as another user of the FIFO's group: give the FIFO
    // FIFO_MODE (or 0660) whatever the umask took away, as C's FifoCreate did.
    let mode = nix::sys::stat::Mode::from_bits_truncate(fifo.fifo_mode.unwrap_or(0o660));
    nix::sys::stat::fchmod(reader.as_raw_fd(), mode).map_err(|e| fifo_err(e.into()))?;
    let request = request_for(OsString::from(reply_path.clone()).into_vec())?;
    send(fifo, &request, deadline)?;
    let mut buf = Vec::with_capacity(256);
    read_reply(&mut reader, &mut buf, payload_len, deadline, &reply_path)?;
    drop(guard);
    Ok(buf)
}

/// Write the request into the first server FIFO that has a reader, waiting
/// for room in the pipe until the deadline.
fn send(fifo: &FifoConfig, request: &[u8], deadline: Instant) -> Result<(), ClientError> {
    let candidates = server_fifos(fifo);
    let mut last = None;
    let not_a_fifo = || io::Error::other("not a FIFO");
    for path in &candidates {
        // Only a FIFO is ever written to: a regular file (which would take
        // the request as data) is opened without truncation, refused by the
        // fstat and closed untouched; a directory fails to open.
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)
            .and_then(|f| match f.metadata() {
                Ok(m) if m.file_type().is_fifo() => Ok(f),
                Ok(_) => Err(not_a_fifo()),
                Err(e) => Err(e),
            });
        let f = match opened {
            Ok(f) => f,
            // No reader (a dead instance), gone, or no FIFO: try the next one.
            Err(e) => {
                last = Some((path.clone(), e));
                continue;
            }
        };
        let err = |source| ClientError::Server {
            path: path.clone(),
            source,
        };
        loop {
            // One write of at most PIPE_BUF bytes is atomic: all or nothing.
            match nix::unistd::write(&f, request) {
                Ok(n) if n == request.len() => return Ok(()),
                Ok(_) => return Err(err(io::Error::other("short write to the server FIFO"))),
                Err(nix::errno::Errno::EAGAIN) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(err(io::ErrorKind::TimedOut.into()));
                    }
                    let mut pfd = [PollFd::new(f.as_fd(), PollFlags::POLLOUT)];
                    let _ = poll(
                        &mut pfd,
                        PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
                    );
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(err(e.into())),
            }
        }
    }
    match last {
        Some((path, source)) => Err(ClientError::Server { path, source }),
        None => Err(ClientError::NoServer(fifo.instance_path(1))),
    }
}

/// Read the whole reply: the int, then as many payload bytes as it says.
fn read_reply(
    f: &mut File,
    buf: &mut Vec<u8>,
    payload_len: impl Fn(i32) -> Result<usize, DecodeError>,
    deadline: Instant,
    path: &Path,
) -> Result<(), ClientError> {
    let mut want = 4;
    let mut chunk = [0u8; PIPE_BUF];
    while buf.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::Timeout(path.to_path_buf()));
        }
        let mut pfd = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        let ms =
            PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        match poll(&mut pfd, ms) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(ClientError::Read {
                    path: path.to_path_buf(),
                    source: e.into(),
                })
            }
        }
        match f.read(&mut chunk[..want - buf.len()]) {
            Ok(0) => {
                // The writer closed: the reply ended early. Before any byte
                // arrived, POLLHUP cannot happen (no writer yet), so this is
                // a short reply.
                return Err(ClientError::Read {
                    path: path.to_path_buf(),
                    source: io::Error::new(io::ErrorKind::UnexpectedEof, "reply ended early"),
                });
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ClientError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
        if buf.len() == 4 && want == 4 {
            let first = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
            want = 4 + payload_len(first)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::UserStatus;
    use std::os::unix::fs::PermissionsExt;

    /// A one-request server: reads a request from `fifo`, notes the reply
    /// FIFO's mode, answers USER status 0.
    fn one_shot_server(fifo: PathBuf) -> std::thread::JoinHandle<u32> {
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Opened here, read-write like the daemon's, so that the client finds
        // a reader as soon as this returns.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; PIPE_BUF];
            let n = f.read(&mut buf).unwrap();
            let req = Request::decode(&buf[..n]).unwrap();
            let path = PathBuf::from(std::ffi::OsString::from_vec(req.reply_path));
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
            let mut out = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            std::io::Write::write_all(&mut out, &Reply::User(UserStatus::Active).encode().unwrap())
                .unwrap();
            mode
        })
    }

    #[test]
    fn reply_fifo_gets_fifo_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        for (fifo_mode, want) in [(None, 0o660), (Some(0o640), 0o640)] {
            let server = dir.path().join(format!("server-{want:o}"));
            let handle = one_shot_server(server.clone());
            let cfg = FifoConfig {
                infifo: server.clone().into_os_string(),
                infifodir: dir.path().to_path_buf(),
                fifotmpdir: dir.path().to_path_buf(),
                fifo_mode,
            };
            let reply = inquery(
                &cfg,
                Timeouts::default(),
                QueryType::User,
                b"joe@example.com",
                b"",
            )
            .unwrap();
            assert_eq!(reply, Reply::User(UserStatus::Active));
            assert_eq!(handle.join().unwrap(), want);
        }
        // Only the two server FIFOs are left: the reply FIFOs were removed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_regular_file_as_server_fifo_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("infifo");
        std::fs::write(&file, "precious").unwrap();
        let cfg = FifoConfig {
            infifo: file.clone().into_os_string(),
            infifodir: dir.path().to_path_buf(),
            fifotmpdir: dir.path().to_path_buf(),
            fifo_mode: None,
        };
        let err = inquery(
            &cfg,
            Timeouts::default(),
            QueryType::User,
            b"joe@example.com",
            b"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a FIFO"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no reply FIFO left"
        );
    }
}
