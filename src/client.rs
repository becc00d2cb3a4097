//! The FIFO client: one request to a running inlookup, one reply back
//! (what libindimail's inquery() does, with its weaknesses fixed).
//!
//! * The server FIFO is INFIFO as given when it is a path, else one of
//!   `INFIFODIR/INFIFO.1..n` picked at random; an instance that cannot be
//!   opened (no reader, missing) is skipped for the next.
//! * The reply FIFO is made where nobody else can see it: in this user's
//!   private directory of FIFOTMPDIR (`inquery-<uid>`, mode 0710 with the
//!   group of the server FIFOs, so the daemon may reach what it is named
//!   but nobody but its owner may list it), under an unpredictable name. So
//!   no other writer of the server FIFOs can aim an answer of its choice at
//!   it. It is created exclusively (an existing path is an error, never
//!   reused), opened with O_NOFOLLOW and removed on every way out.
//! * The whole exchange has one deadline; partial reads are completed.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use crate::config::{FifoConfig, Timeouts};
use crate::protocol::{
    DecodeError, EncodeError, FlushReply, FlushRequest, QueryType, Reply, Request, PIPE_BUF,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no inlookup FIFO found at {0}")]
    NoServer(PathBuf),
    /// The FIFO is there but no process reads it: left behind by a daemon that was
    /// killed, or the daemon is not started.
    #[error(
        "no inlookup is reading {0} (is the daemon running? a killed one leaves its FIFO behind)"
    )]
    NotServed(PathBuf),
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
    /// The answer is about another account than the one asked: another writer of the
    /// server FIFOs put it into our reply FIFO (see `query::check_password_reply`).
    #[error(
        "the answer names {answered}, not the login asked ({asked}): ignored, as another \
         writer of the server FIFOs may have sent it"
    )]
    NotTheAnswer { asked: String, answered: String },
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
        // Only load spreading: without random bytes, the first instance.
        let start = random_bytes::<8>().map_or(0, u64::from_ne_bytes) % found.len() as u64;
        found.rotate_left(start as usize);
    }
    found
}

/// `N` bytes from the kernel's random source: getrandom(2), or /dev/urandom on a
/// kernel without it (before 3.17), through the `getrandom` crate. An error, never
/// bytes that merely look random: the reply FIFO's name must be unguessable.
fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| io::Error::other(format!("no random bytes for the reply FIFO's name: {e}")))?;
    Ok(b)
}

/// Mode of a private reply directory whose group is the server FIFOs' (the daemon's): it may
/// reach the FIFOs it is named, not list them.
const PRIVATE_DIR_MODE: u32 = 0o710;
/// Mode of a private reply directory that could not get that group: anybody may reach a FIFO
/// whose name they know, nobody but the owner may list them.
const PRIVATE_DIR_MODE_OTHERS: u32 = 0o711;

/// This user's private directory in FIFOTMPDIR, where its reply FIFOs are made.
struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
    /// Made for this exchange only (the usual name was taken by another user): removed
    /// afterwards.
    one_off: bool,
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if self.one_off {
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

fn fd_from(raw: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `raw` was just returned by open/openat and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

impl PrivateDir {
    /// `tmpdir/inquery-<uid>`, made if missing, or else a one-off directory if that name is
    /// somebody else's (a directory planted by another user, a symlink). Its group becomes
    /// `group` (the server FIFOs') when this process may give it, and its mode 0710 (0711
    /// without that group).
    fn open(tmpdir: &Path, group: Gid) -> io::Result<PrivateDir> {
        let euid = nix::unistd::geteuid();
        let parent = fd_from(nix::fcntl::open(
            tmpdir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?);
        let name = format!("inquery-{euid}");
        let path = tmpdir.join(&name);
        match nix::sys::stat::mkdirat(Some(parent.as_raw_fd()), name.as_str(), Mode::S_IRWXU) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let dir = match Self::open_own(&parent, OsStr::new(&name), euid) {
            Ok(fd) => PrivateDir {
                fd,
                path,
                one_off: false,
            },
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                // Somebody else's: never used, and no reason to fail either.
                let template = tmpdir.join(format!("inquery-{euid}.XXXXXX"));
                let made = nix::unistd::mkdtemp(&template)?;
                let fd = fd_from(nix::fcntl::open(
                    &made,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?);
                PrivateDir {
                    fd,
                    path: made,
                    one_off: true,
                }
            }
            Err(e) => return Err(e),
        };
        dir.make_private(group)?;
        Ok(dir)
    }

    /// Open `name` in `parent` if it is a directory (not a symlink) of `euid`'s; another
    /// owner or type is `PermissionDenied`.
    fn open_own(parent: &OwnedFd, name: &OsStr, euid: Uid) -> io::Result<OwnedFd> {
        let not_ours = || io::Error::new(io::ErrorKind::PermissionDenied, "not ours");
        let raw = match nix::fcntl::openat(
            Some(parent.as_raw_fd()),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(raw) => raw,
            Err(Errno::ENOTDIR | Errno::ELOOP | Errno::EACCES) => return Err(not_ours()),
            Err(e) => return Err(e.into()),
        };
        let fd = fd_from(raw);
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        if st.st_uid != euid.as_raw() || st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(not_ours());
        }
        Ok(fd)
    }

    /// Group `group` if this process may give it, then 0710 (0711 without it); nothing is
    /// changed that is right already.
    fn make_private(&self, group: Gid) -> io::Result<()> {
        let st = nix::sys::stat::fstat(self.fd.as_raw_fd())?;
        let mut gid = st.st_gid;
        if gid != group.as_raw()
            && nix::unistd::fchown(self.fd.as_raw_fd(), None, Some(group)).is_ok()
        {
            gid = group.as_raw();
        }
        let mode = if gid == group.as_raw() {
            PRIVATE_DIR_MODE
        } else {
            PRIVATE_DIR_MODE_OTHERS
        };
        // The set-group-ID bit stays (FIFOs made in it keep getting the group).
        let mode = mode | (st.st_mode & libc::S_ISGID);
        if st.st_mode & 0o7777 != mode {
            nix::sys::stat::fchmod(self.fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
        }
        Ok(())
    }
}

/// A reply FIFO that removes itself (by its name in the private directory).
struct ReplyPath<'a> {
    dir: &'a PrivateDir,
    name: String,
}

impl Drop for ReplyPath<'_> {
    fn drop(&mut self) {
        let _ = nix::unistd::unlinkat(
            Some(self.dir.fd.as_raw_fd()),
            self.name.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
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
    match FlushReply::decode(&reply)? {
        FlushReply::Removed(n) => Ok(i32::try_from(n).unwrap_or(i32::MAX)),
        FlushReply::Failed => Err(ClientError::Decode(DecodeError::BadPayload(
            "the daemon could not flush its cache".into(),
        ))),
    }
}

/// One request, one reply: open a server FIFO, make the reply FIFO, send the
/// request built for its path, read the int and the payload it announces. The
/// reply FIFO is removed on every way out.
fn exchange(
    fifo: &FifoConfig,
    timeouts: Timeouts,
    request_for: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, EncodeError>,
    payload_len: impl Fn(i32) -> Result<usize, DecodeError>,
) -> Result<Vec<u8>, ClientError> {
    let deadline = Instant::now() + timeouts.read + timeouts.write;
    // As C's inquery(): the server FIFO first, so that no reply FIFO is made
    // for a daemon that is not there. Its group is the daemon's clients'.
    let (server, server_path) = open_server(fifo)?;
    let group = server
        .metadata()
        .map_err(|source| ClientError::Server {
            path: server_path.clone(),
            source,
        })?
        .gid();
    let private_dir_err = |source: io::Error| ClientError::ReplyFifo {
        path: fifo
            .fifotmpdir
            .join(format!("inquery-{}", nix::unistd::geteuid())),
        source,
    };
    let dir = PrivateDir::open(&fifo.fifotmpdir, Gid::from_raw(group)).map_err(private_dir_err)?;
    let random = random_bytes::<16>().map_err(|source| ClientError::ReplyFifo {
        path: dir.path.clone(),
        source,
    })?;
    let name = format!(
        "inquery.{}.{:032x}",
        std::process::id(),
        u128::from_ne_bytes(random)
    );
    let reply_path = dir.path.join(&name);
    let fifo_err = |source: io::Error| ClientError::ReplyFifo {
        path: reply_path.clone(),
        source,
    };
    // mkfifo fails on an existing path: a name planted by someone else is
    // never used.
    nix::unistd::mkfifoat(
        Some(dir.fd.as_raw_fd()),
        name.as_str(),
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .map_err(|e| fifo_err(e.into()))?;
    let guard = ReplyPath { dir: &dir, name };
    let mut reader = File::from(fd_from(
        nix::fcntl::openat(
            Some(dir.fd.as_raw_fd()),
            guard.name.as_str(),
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fifo_err(e.into()))?,
    ));
    let meta = reader.metadata().map_err(fifo_err)?;
    if !meta.file_type().is_fifo() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(fifo_err(io::Error::other("not the FIFO this process made")));
    }
    // The daemon may run as another user of the FIFO's group: give the FIFO
    // that group when this process may, and FIFO_MODE (or 0660) whatever the
    // umask took away, as C's FifoCreate did.
    if meta.gid() != group {
        let _ = nix::unistd::fchown(reader.as_raw_fd(), None, Some(Gid::from_raw(group)));
    }
    let mode = Mode::from_bits_truncate(fifo.fifo_mode.unwrap_or(0o660));
    nix::sys::stat::fchmod(reader.as_raw_fd(), mode).map_err(|e| fifo_err(e.into()))?;
    let request = request_for(OsString::from(reply_path.clone()).into_vec())?;
    send(&server, &server_path, &request, deadline)?;
    drop(server);
    let mut buf = Vec::with_capacity(256);
    read_reply(&mut reader, &mut buf, payload_len, deadline, &reply_path)?;
    drop(guard);
    Ok(buf)
}

/// Open the first server FIFO that has a reader, for writing. Only a FIFO is
/// ever written to: a regular file (which would take the request as data) is
/// opened without truncation, refused by the fstat and closed untouched; a
/// directory fails to open.
fn open_server(fifo: &FifoConfig) -> Result<(File, PathBuf), ClientError> {
    let candidates = server_fifos(fifo);
    let mut last = None;
    let not_a_fifo = || io::Error::other("not a FIFO");
    for path in candidates {
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(&path)
            .and_then(|f| match f.metadata() {
                Ok(m) if m.file_type().is_fifo() => Ok(f),
                Ok(_) => Err(not_a_fifo()),
                Err(e) => Err(e),
            });
        match opened {
            Ok(f) => return Ok((f, path)),
            // No reader (a dead instance), gone, or no FIFO: try the next one.
            Err(e) => last = Some((path, e)),
        }
    }
    match last {
        Some((path, source)) if source.raw_os_error() == Some(libc::ENXIO) => {
            Err(ClientError::NotServed(path))
        }
        Some((path, source)) => Err(ClientError::Server { path, source }),
        None => Err(ClientError::NoServer(fifo.instance_path(1))),
    }
}

/// Write the request into the server FIFO, waiting for room in the pipe
/// until the deadline.
fn send(f: &File, path: &Path, request: &[u8], deadline: Instant) -> Result<(), ClientError> {
    let err = |source| ClientError::Server {
        path: path.to_path_buf(),
        source,
    };
    loop {
        // One write of at most PIPE_BUF bytes is atomic: all or nothing.
        match nix::unistd::write(f, request) {
            Ok(n) if n == request.len() => return Ok(()),
            Ok(_) => return Err(err(io::Error::other("short write to the server FIFO"))),
            Err(Errno::EAGAIN) => {
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
            Err(Errno::EINTR) => {}
            Err(e) => return Err(err(e.into())),
        }
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
    /// FIFO's path and attributes, answers with `answer`.
    fn one_shot_server(
        fifo: PathBuf,
        answer: Reply,
    ) -> std::thread::JoinHandle<(PathBuf, std::fs::Metadata, std::fs::Metadata)> {
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
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let dir = std::fs::symlink_metadata(path.parent().unwrap()).unwrap();
            let mut out = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            std::io::Write::write_all(&mut out, &answer.encode().unwrap()).unwrap();
            (path, meta, dir)
        })
    }

    fn config(server: &Path, tmp: &Path, fifo_mode: Option<u32>) -> FifoConfig {
        FifoConfig {
            infifo: server.as_os_str().to_owned(),
            infifodir: tmp.to_path_buf(),
            fifotmpdir: tmp.to_path_buf(),
            fifo_mode,
        }
    }

    fn ask_user(cfg: &FifoConfig) -> Result<Reply, ClientError> {
        inquery(
            cfg,
            Timeouts::default(),
            QueryType::User,
            b"joe@example.com",
            b"",
        )
    }

    #[test]
    fn reply_fifo_gets_fifo_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        for (fifo_mode, want) in [(None, 0o660), (Some(0o640), 0o640)] {
            let server = dir.path().join(format!("server-{want:o}"));
            let handle = one_shot_server(server.clone(), Reply::User(UserStatus::Active));
            let reply = ask_user(&config(&server, dir.path(), fifo_mode)).unwrap();
            assert_eq!(reply, Reply::User(UserStatus::Active));
            let (_, meta, _) = handle.join().unwrap();
            assert_eq!(meta.permissions().mode() & 0o7777, want);
        }
        // The two server FIFOs and the private directory are left; the reply
        // FIFOs were removed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        let private = dir
            .path()
            .join(format!("inquery-{}", nix::unistd::geteuid()));
        assert_eq!(std::fs::read_dir(&private).unwrap().count(), 0);
    }

    /// The reply FIFO is made where nobody but its owner may list it: in the
    /// private directory of its user, which gets the group of the server
    /// FIFOs (the daemon's) and mode 0710, and under a name nobody can guess.
    #[test]
    fn reply_fifo_is_in_a_private_directory_with_an_unpredictable_name() {
        let dir = tempfile::tempdir().unwrap();
        let server = dir.path().join("server");
        let mut names = Vec::new();
        for _ in 0..2 {
            let handle = one_shot_server(server.clone(), Reply::User(UserStatus::Active));
            if nix::unistd::geteuid().is_root() {
                // A group the client is not in: root may give it anyway.
                nix::unistd::chown(&server, None, Some(Gid::from_raw(65534))).unwrap();
            }
            ask_user(&config(&server, dir.path(), None)).unwrap();
            let (path, meta, parent) = handle.join().unwrap();
            let private = dir
                .path()
                .join(format!("inquery-{}", nix::unistd::geteuid()));
            assert_eq!(path.parent(), Some(private.as_path()));
            assert!(parent.is_dir());
            assert_eq!(parent.uid(), nix::unistd::geteuid().as_raw());
            let server_gid = std::fs::metadata(&server).unwrap().gid();
            assert_eq!(parent.gid(), server_gid);
            assert_eq!(meta.gid(), server_gid);
            assert_eq!(parent.permissions().mode() & 0o7777, PRIVATE_DIR_MODE);
            assert_eq!(PRIVATE_DIR_MODE, 0o710);
            std::fs::remove_file(&server).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // inquery.<pid>.<128 random bits>
            let random = name.rsplit('.').next().unwrap();
            assert_eq!(random.len(), 32, "{name}");
            names.push(name);
        }
        assert_ne!(names[0], names[1]);
    }

    /// The private directory's name taken by somebody else (a symlink, a file,
    /// another user's directory): never used, and no reason to fail; a one-off
    /// private directory serves and is removed.
    #[test]
    fn a_planted_private_directory_is_never_used() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let name = dir
            .path()
            .join(format!("inquery-{}", nix::unistd::geteuid()));
        let mut plants: Vec<Box<dyn Fn()>> = vec![
            Box::new(|| std::os::unix::fs::symlink(elsewhere.path(), &name).unwrap()),
            Box::new(|| std::fs::write(&name, "x").unwrap()),
        ];
        if nix::unistd::geteuid().is_root() {
            plants.push(Box::new(|| {
                std::fs::create_dir(&name).unwrap();
                nix::unistd::chown(&name, Some(Uid::from_raw(65534)), None).unwrap();
            }));
        }
        for plant in plants {
            plant();
            let server = dir.path().join("server");
            let handle = one_shot_server(server.clone(), Reply::User(UserStatus::Active));
            ask_user(&config(&server, dir.path(), None)).unwrap();
            let (path, _, parent) = handle.join().unwrap();
            let used = path.parent().unwrap();
            assert_ne!(used, name.as_path());
            assert_eq!(used.parent(), Some(dir.path()));
            assert_eq!(parent.uid(), nix::unistd::geteuid().as_raw());
            assert!(!used.exists(), "the one-off directory is removed");
            assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
            std::fs::remove_file(&server).unwrap();
            let _ = std::fs::remove_file(&name).or_else(|_| std::fs::remove_dir(&name));
        }
    }

    #[test]
    fn a_regular_file_as_server_fifo_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("infifo");
        std::fs::write(&file, "precious").unwrap();
        let err = ask_user(&config(&file, dir.path(), None)).unwrap_err();
        assert!(err.to_string().contains("not a FIFO"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no reply FIFO left"
        );
    }
}
