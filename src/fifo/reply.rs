//! The reply FIFOs: a path that arrives, untrusted, inside a request is opened only when it
//! names a client's FIFO, with a reader, in an allowed directory.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::FileStat;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use super::{
    file_id, file_type, fstat_fd, io_err, is_fifo, lstat_at, open_at, open_trusted_dir, same_file,
    DirError, DirProblem, FifoError, Trusted,
};

/// Longest file name a directory entry can have (Linux `NAME_MAX`).
const NAME_MAX: usize = 255;

/// Directories a reply FIFO may be in.
#[derive(Debug, Clone)]
pub struct ReplyDirs {
    /// Absolute, normalised (no empty, `.` or trailing components), without duplicates.
    dirs: Vec<PathBuf>,
    /// The directories kept open (opened on first use), one slot per entry
    /// of `dirs`, shared by the clones: this saves an open and a close per
    /// reply.
    open: Arc<Vec<Mutex<Option<Arc<OwnedFd>>>>>,
    /// (device, inode) of files that are never a reply FIFO: the daemon's own
    /// server FIFOs, which pass every other check (they are FIFOs with a
    /// reader) and must not be unlinked.
    forbidden: Vec<(u64, u64)>,
    /// The user the daemon serves as: its FIFOs are its clients', and its directories are
    /// trusted.
    serving_uid: Uid,
    /// The group of the server FIFOs: a reply FIFO that this group may write is a client's.
    client_group: Option<Gid>,
}

impl ReplyDirs {
    /// Every entry must be absolute; duplicates are removed and trailing slashes stripped
    /// (repeated slashes and `.` components are collapsed as well). A relative entry, or one
    /// with a `..` component (which cannot be resolved without following links), is an error.
    ///
    /// The daemon serves as its effective uid, and no group's FIFOs count as its clients'
    /// until [`ReplyDirs::serving_as`] and [`ReplyDirs::set_client_group`] say otherwise.
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>) -> Result<ReplyDirs, FifoError> {
        let mut out: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            let bytes = dir.as_os_str().as_bytes();
            if bytes.first() != Some(&b'/') {
                return Err(FifoError::BadReplyDir {
                    path: dir,
                    reason: "not an absolute path",
                });
            }
            let mut norm: Vec<u8> = Vec::with_capacity(bytes.len());
            for comp in bytes.split(|&b| b == b'/') {
                match comp {
                    b"" | b"." => {}
                    b".." => {
                        return Err(FifoError::BadReplyDir {
                            path: dir,
                            reason: "contains a '..' component",
                        })
                    }
                    _ => {
                        norm.push(b'/');
                        norm.extend_from_slice(comp);
                    }
                }
            }
            if norm.is_empty() {
                norm.push(b'/');
            }
            let norm = PathBuf::from(OsStr::from_bytes(&norm));
            if !out.contains(&norm) {
                out.push(norm);
            }
        }
        Ok(ReplyDirs {
            open: Arc::new(out.iter().map(|_| Mutex::new(None)).collect()),
            dirs: out,
            forbidden: Vec::new(),
            serving_uid: nix::unistd::geteuid(),
            client_group: None,
        })
    }

    /// The daemon will serve as `uid` (the service user a root daemon becomes).
    pub fn serving_as(mut self, uid: Uid) -> ReplyDirs {
        self.serving_uid = uid;
        self
    }

    /// Reply FIFOs that `gid` (the group of the server FIFOs) may write are clients'.
    pub fn set_client_group(&mut self, gid: Gid) {
        self.client_group = Some(gid);
    }

    fn trusted(&self) -> Trusted {
        Trusted::new([self.serving_uid])
    }

    /// Check every allowed directory that exists (see [`open_trusted_dir`]) and keep it open.
    /// One that does not exist is no error (it is checked when a reply names it); one that
    /// exists and may not be trusted is.
    pub fn check_existing(&self) -> Result<(), FifoError> {
        for dir in &self.dirs {
            match self.dir_fd(dir, true) {
                Ok(_) => {}
                Err(e) if e.problem == DirProblem::Missing => {
                    log::debug!("reply directory {} does not exist (yet)", dir.display());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The open directory `dir` (one of `dirs`), checked when it was opened; `fresh` opens
    /// and checks it again.
    fn dir_fd(&self, dir: &Path, fresh: bool) -> Result<Arc<OwnedFd>, DirError> {
        let i = self
            .dirs
            .iter()
            .position(|d| d == dir)
            .ok_or_else(|| DirError {
                path: dir.to_path_buf(),
                problem: DirProblem::Missing,
            })?;
        let mut slot = self.open[i].lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some(fd) if !fresh => Ok(fd.clone()),
            _ => {
                let fd = Arc::new(open_trusted_dir(dir, &self.trusted())?);
                *slot = Some(fd.clone());
                Ok(fd)
            }
        }
    }

    /// Never accept the file now at `path` as a reply FIFO (a server FIFO).
    pub fn forbid(&mut self, path: &Path) -> Result<(), FifoError> {
        let st = nix::sys::stat::lstat(path).map_err(|e| io_err(path, "lstat", e))?;
        self.forbidden.push(file_id(&st));
        Ok(())
    }

    /// The normalised directories, in the order first given.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}

/// Why a reply path was refused (for logs and counters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("reply path is not absolute")]
    NotAbsolute,
    #[error("reply path contains '..'")]
    DotDot,
    #[error("reply path is not in an allowed directory")]
    NotInAllowedDir,
    #[error("reply path is malformed")]
    BadName,
    #[error("reply path is not a FIFO")]
    NotAFifo,
    #[error("reply path is a symbolic link")]
    Symlink,
    #[error("reply FIFO has no reader")]
    NoReader,
    #[error("reply FIFO vanished or was replaced")]
    Vanished,
    #[error("reply path is a server FIFO of this daemon")]
    ServerFifo,
    /// Neither the daemon's user's nor writable by the FIFO group, nor in a private
    /// directory of its owner: somebody else's FIFO, which gets no bytes from the daemon.
    #[error("reply FIFO belongs to neither the daemon's user nor its FIFO group")]
    NotAClientFifo,
    /// The subdirectory is not a private directory of the FIFO's owner.
    #[error("reply FIFO's directory {0}")]
    NotPrivate(&'static str),
    /// The allowed directory is missing or cannot be trusted (any more).
    #[error("reply directory: {0}")]
    Dir(String),
    #[error("reply FIFO: {0}")]
    Io(String),
}

/// Where a reply path points: the allowed directory, the private subdirectory of it (if any)
/// and the FIFO's name.
pub(crate) struct ReplyPlace<'a> {
    pub dir: &'a Path,
    pub subdir: Option<&'a OsStr>,
    pub name: &'a OsStr,
}

/// Check the syntax of a reply path; return the allowed directory it is in, the private
/// subdirectory of that directory if it is in one, and its file name.
pub(crate) fn check_reply_path<'a>(
    path: &'a [u8],
    dirs: &'a ReplyDirs,
) -> Result<ReplyPlace<'a>, Refusal> {
    if path.first() != Some(&b'/') {
        return Err(Refusal::NotAbsolute);
    }
    // PATH_MAX counts the terminating NUL.
    if path.len() >= libc::PATH_MAX as usize || path.contains(&0) {
        return Err(Refusal::BadName);
    }
    let comps = path[1..].split(|&b| b == b'/');
    if comps.clone().any(|c| c == b"..") {
        return Err(Refusal::DotDot);
    }
    if comps.clone().any(|c| c.is_empty() || c == b".") {
        return Err(Refusal::BadName);
    }
    let (parent, name) = split_last(path).ok_or(Refusal::NotAbsolute)?;
    if name.len() > NAME_MAX {
        return Err(Refusal::BadName);
    }
    let allowed = |p: &[u8]| {
        dirs.dirs
            .iter()
            .find(|d| d.as_os_str().as_bytes() == p)
            .map(PathBuf::as_path)
    };
    if let Some(dir) = allowed(parent) {
        return Ok(ReplyPlace {
            dir,
            subdir: None,
            name: OsStr::from_bytes(name),
        });
    }
    // One level down: a client's private directory.
    let (grandparent, subdir) = split_last(parent).ok_or(Refusal::NotInAllowedDir)?;
    match allowed(grandparent) {
        Some(dir) if subdir.len() <= NAME_MAX && !subdir.is_empty() => Ok(ReplyPlace {
            dir,
            subdir: Some(OsStr::from_bytes(subdir)),
            name: OsStr::from_bytes(name),
        }),
        _ => Err(Refusal::NotInAllowedDir),
    }
}

/// `/a/b/c` -> (`/a/b`, `c`); `/c` -> (`/`, `c`); `/` -> None.
fn split_last(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let slash = path.iter().rposition(|&b| b == b'/')?;
    if path.len() == 1 {
        return None;
    }
    let parent: &[u8] = if slash == 0 { b"/" } else { &path[..slash] };
    Some((parent, &path[slash + 1..]))
}

fn refusal_io(op: &str, what: impl std::fmt::Display, e: impl std::fmt::Display) -> Refusal {
    Refusal::Io(format!("{op} {what}: {e}"))
}

/// A reply FIFO found by [`ReplyFifo::open`], before it is opened.
struct Located {
    /// The directory it is in: the allowed one, or a private subdirectory of it.
    dir: Arc<OwnedFd>,
    /// The owner of the private subdirectory it is in, if it is in one.
    subdir_owner: Option<u32>,
    /// lstat of the FIFO.
    st: FileStat,
}

/// Open the private subdirectory `sub` of `dir`: a directory (no symbolic link) that nobody but
/// its owner may list or change.
fn open_private_subdir(dir: BorrowedFd<'_>, sub: &OsStr) -> Result<(OwnedFd, u32), Refusal> {
    let shown = || crate::logline::Escaped::new(sub.as_bytes()).to_string();
    let st = match lstat_at(dir, sub) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Err(Refusal::Vanished),
        Err(e) => return Err(refusal_io("lstat", shown(), e)),
    };
    match file_type(&st) {
        libc::S_IFDIR => {}
        libc::S_IFLNK => return Err(Refusal::Symlink),
        _ => return Err(Refusal::NotInAllowedDir),
    }
    // O_PATH: the daemon needs to search it, not to read it (mode 0710 lets the group do
    // exactly that).
    let fd = match open_at(
        dir,
        sub,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Err(Refusal::Vanished),
        Err(e) => return Err(refusal_io("open", shown(), e)),
    };
    let opened = fstat_fd(fd.as_fd()).map_err(|e| refusal_io("fstat", shown(), e))?;
    if !same_file(&opened, &st) {
        return Err(Refusal::Vanished);
    }
    // Anybody who may list it could aim at its FIFOs; anybody who may write it could swap
    // them. Neither is a private directory.
    if opened.st_mode & (libc::S_IRWXG | libc::S_IRWXO) & !(libc::S_IXGRP | libc::S_IXOTH) != 0 {
        return Err(Refusal::NotPrivate(
            "may be listed or changed by others than its owner",
        ));
    }
    Ok((fd, opened.st_uid))
}

/// Find the FIFO `place` names below the allowed directory open on `dirfd` (without opening
/// it). ENOENT anywhere is [`Refusal::Vanished`].
fn locate(dirfd: &Arc<OwnedFd>, place: &ReplyPlace<'_>, shown: &str) -> Result<Located, Refusal> {
    let (dir, subdir_owner) = match place.subdir {
        None => (dirfd.clone(), None),
        Some(sub) => {
            let (fd, owner) = open_private_subdir(dirfd.as_fd(), sub)?;
            (Arc::new(fd), Some(owner))
        }
    };
    let st = match lstat_at(dir.as_fd(), place.name) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Err(Refusal::Vanished),
        Err(e) => return Err(refusal_io("lstat", shown, e)),
    };
    Ok(Located {
        dir,
        subdir_owner,
        st,
    })
}

/// An opened reply FIFO, ready to write the answer into.
#[derive(Debug)]
pub struct ReplyFifo {
    fd: OwnedFd,
    path: Vec<u8>,
}

impl ReplyFifo {
    /// Validate and open the reply path from a request. Rules, all required:
    ///  * the path bytes (not necessarily UTF-8) are absolute, contain no `..`, no `.` and no
    ///    empty component (no `//`, no trailing `/`), no NUL, and fit in `PATH_MAX`;
    ///  * its parent directory is exactly one of `dirs` (byte comparison; the client's path is
    ///    not canonicalised), or a subdirectory of one that is private: a directory, not a
    ///    symlink, that nobody but its owner may list or write (mode 0700, 0710, 0711);
    ///  * the allowed directory, kept open, was checked when it was opened (see
    ///    [`open_trusted_dir`]);
    ///  * `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)` must say FIFO, and not one of the
    ///    daemon's own, so no regular file, device, directory or symlink is ever opened
    ///    (opening some devices has effects of its own);
    ///  * the FIFO belongs to a client: it is in a private subdirectory of its owner, or it
    ///    belongs to the user the daemon serves as (qmail-smtpd's `<pid><time>` FIFOs when the
    ///    daemon runs as qmaild), or the group of the server FIFOs may write it; anybody
    ///    else's FIFO is never opened ([`Refusal::NotAClientFifo`]);
    ///  * `openat(dirfd, name, O_WRONLY|O_NONBLOCK|O_NOFOLLOW|O_NOCTTY|O_CLOEXEC)`: ENXIO ->
    ///    [`Refusal::NoReader`], ENOENT -> [`Refusal::Vanished`], ELOOP -> [`Refusal::Symlink`];
    ///    then `fstat` must say FIFO with the same device and inode (else `Vanished`);
    ///  * the name is then unlinked (a failure to unlink is only logged: the client unlinks it
    ///    too).
    ///
    /// What is written to is decided on the open descriptor, so a name swapped by its owner
    /// between two steps cannot turn the write towards anything but a FIFO a client is reading.
    /// The unlink removes a name in the client's directory that the client could have removed
    /// itself: whoever swapped another file under it loses only a name of their own. Nothing on
    /// disk is changed in any refusal case.
    pub fn open(path: &[u8], dirs: &ReplyDirs) -> Result<ReplyFifo, Refusal> {
        let place = check_reply_path(path, dirs)?;
        let shown = crate::logline::Escaped::new(path).to_string();
        let dir_err = |e: DirError| Refusal::Dir(e.to_string());
        let dirfd = dirs.dir_fd(place.dir, false).map_err(dir_err)?;
        let found = match locate(&dirfd, &place, &shown) {
            // The directory kept open may have been replaced (a service
            // script recreating /run/indimail/inquery): look once more in
            // the directory now at that path.
            Err(Refusal::Vanished) => {
                let dirfd = dirs.dir_fd(place.dir, true).map_err(dir_err)?;
                locate(&dirfd, &place, &shown)?
            }
            other => other?,
        };
        let before = found.st;
        match file_type(&before) {
            libc::S_IFIFO => {}
            libc::S_IFLNK => return Err(Refusal::Symlink),
            _ => return Err(Refusal::NotAFifo),
        }
        if dirs.forbidden.contains(&file_id(&before)) {
            return Err(Refusal::ServerFifo);
        }
        let a_clients = match found.subdir_owner {
            Some(owner) => before.st_uid == owner,
            None => {
                before.st_uid == dirs.serving_uid.as_raw()
                    || (dirs.client_group.map(Gid::as_raw) == Some(before.st_gid)
                        && before.st_mode & libc::S_IWGRP != 0)
            }
        };
        if !a_clients {
            return Err(Refusal::NotAClientFifo);
        }

        let fd = match open_at(
            found.dir.as_fd(),
            place.name,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY,
        ) {
            Ok(fd) => fd,
            Err(Errno::ENXIO) => return Err(Refusal::NoReader),
            Err(Errno::ENOENT) => return Err(Refusal::Vanished),
            Err(Errno::ELOOP) => return Err(Refusal::Symlink),
            Err(e) => return Err(refusal_io("open", &shown, e)),
        };
        let opened = fstat_fd(fd.as_fd()).map_err(|e| refusal_io("fstat", &shown, e))?;
        if !is_fifo(&opened) || !same_file(&opened, &before) {
            // Swapped between the check and the open; nothing has been written.
            return Err(Refusal::Vanished);
        }

        // Remove the name now that we hold the FIFO, as C clients expect. (In a private
        // directory the daemon usually may not; its client removes it.)
        if let Err(e) = nix::unistd::unlinkat(
            Some(found.dir.as_raw_fd()),
            place.name,
            UnlinkatFlags::NoRemoveDir,
        ) {
            log::debug!("unlink {shown}: {e}");
        }

        Ok(ReplyFifo {
            fd,
            path: path.to_vec(),
        })
    }

    /// Write a reply with one non-blocking write, never waiting. A reply is at
    /// most `PIPE_BUF` bytes and goes into the fresh, empty FIFO of a client
    /// that is reading it, so it always fits; a FIFO that cannot take it at
    /// once (`WouldBlock`) belongs to a broken or hostile client, which must
    /// not hold a worker.
    pub fn write_now(&mut self, buf: &[u8]) -> io::Result<()> {
        loop {
            return match nix::unistd::write(self.fd.as_fd(), buf) {
                Ok(n) if n == buf.len() => Ok(()),
                Ok(n) => Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("{}: only {n} of {} bytes fit", self.shown(), buf.len()),
                )),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{}: the reply FIFO is full", self.shown()),
                )),
                Err(e) => Err(e.into()),
            };
        }
    }

    /// Write the whole buffer, waiting with `poll(POLLOUT)` up to `timeout` in total.
    ///
    /// Replies are at most `PIPE_BUF` bytes, so the kernel writes them in one piece; longer
    /// buffers are written in several. `EAGAIN` waits again, `EINTR` retries, and `EPIPE` (the
    /// reader has gone; the daemon ignores SIGPIPE) is returned as an error of kind
    /// `BrokenPipe`. Running out of time gives an error of kind `TimedOut`.
    pub fn write_all(&mut self, buf: &[u8], timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut rest = buf;
        while !rest.is_empty() {
            match nix::unistd::write(self.fd.as_fd(), rest) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("{}: write returned 0", self.shown()),
                    ))
                }
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => self.wait_writable(deadline, timeout)?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Wait until the FIFO can take more data or `deadline` passes.
    fn wait_writable(&self, deadline: Instant, timeout: Duration) -> io::Result<()> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: timed out after {} ms writing the reply",
                        self.shown(),
                        timeout.as_millis()
                    ),
                ));
            }
            // Round up so that poll does not return a little early, then spin on zero.
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128);
            let poll_timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLOUT)];
            match nix::poll::poll(&mut fds, poll_timeout) {
                Ok(0) | Err(Errno::EINTR) => continue,
                // Writable, or an error/hang-up condition that the next write will report.
                Ok(_) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The reply path as given in the request.
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// The path as a log line may show it.
    fn shown(&self) -> String {
        crate::logline::Escaped::new(&self.path).to_string()
    }
}

impl AsFd for ReplyFifo {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    fn dirs_of(paths: &[&Path]) -> ReplyDirs {
        ReplyDirs::new(paths.iter().map(|p| p.to_path_buf())).unwrap()
    }

    fn bytes(p: &Path) -> &[u8] {
        p.as_os_str().as_bytes()
    }

    #[test]
    fn reply_dirs_are_normalised() {
        let d = ReplyDirs::new([
            PathBuf::from("/tmp/"),
            PathBuf::from("/tmp"),
            PathBuf::from("/run//indimail/./replies//"),
            PathBuf::from("/"),
            PathBuf::from("///"),
        ])
        .unwrap();
        assert_eq!(
            d.dirs(),
            &[
                PathBuf::from("/tmp"),
                PathBuf::from("/run/indimail/replies"),
                PathBuf::from("/"),
            ]
        );
        assert!(matches!(
            ReplyDirs::new([PathBuf::from("tmp")]),
            Err(FifoError::BadReplyDir { .. })
        ));
        assert!(matches!(
            ReplyDirs::new([PathBuf::from("")]),
            Err(FifoError::BadReplyDir { .. })
        ));
        assert!(matches!(
            ReplyDirs::new([PathBuf::from("/tmp/../etc")]),
            Err(FifoError::BadReplyDir { .. })
        ));
    }

    #[test]
    fn reply_path_syntax_is_checked_first() {
        let dirs = dirs_of(&[Path::new("/nonexistent-reply-dir")]);
        let check = |p: &[u8]| ReplyFifo::open(p, &dirs).unwrap_err();
        assert_eq!(check(b""), Refusal::NotAbsolute);
        assert_eq!(check(b"nonexistent-reply-dir/x"), Refusal::NotAbsolute);
        assert_eq!(check(b"/nonexistent-reply-dir/../x"), Refusal::DotDot);
        assert_eq!(check(b"/nonexistent-reply-dir/.."), Refusal::DotDot);
        assert_eq!(check(b"/nonexistent-reply-dir//x"), Refusal::BadName);
        assert_eq!(check(b"/nonexistent-reply-dir/./x"), Refusal::BadName);
        assert_eq!(check(b"/nonexistent-reply-dir/x/"), Refusal::BadName);
        assert_eq!(check(b"/nonexistent-reply-dir/."), Refusal::BadName);
        assert_eq!(check(b"/nonexistent-reply-dir/a\0b"), Refusal::BadName);
        let mut long = b"/nonexistent-reply-dir/".to_vec();
        long.resize(libc::PATH_MAX as usize, b'a');
        assert_eq!(check(&long), Refusal::BadName);
        assert_eq!(check(b"/nonexistent-reply-dir"), Refusal::NotInAllowedDir);
        assert_eq!(check(b"/other/x"), Refusal::NotInAllowedDir);
        // Non-UTF-8 names are fine as far as syntax goes.
        assert!(matches!(
            check(b"/nonexistent-reply-dir/\xff\xfe"),
            Refusal::Dir(_)
        ));
        // One level of subdirectory passes the syntax check, two do not.
        assert!(matches!(
            check(b"/nonexistent-reply-dir/sub/x"),
            Refusal::Dir(_)
        ));
        assert_eq!(
            check(b"/nonexistent-reply-dir/sub/sub/x"),
            Refusal::NotInAllowedDir
        );
    }

    #[test]
    fn reply_fifo_is_opened_unlinked_and_written() {
        let tmp = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[other.path(), tmp.path()]);
        let p = tmp.path().join("12341700000000");
        mkfifo(&p, 0o660);
        let mut r = reader(&p);

        let mut reply = ReplyFifo::open(bytes(&p), &dirs).unwrap();
        assert_eq!(reply.path(), bytes(&p));
        assert!(snapshot(&p).is_none(), "reply FIFO name was not unlinked");

        reply
            .write_all(b"\x01\0\0\0", Duration::from_secs(2))
            .unwrap();
        reply
            .write_all(b"payload\0", Duration::from_secs(2))
            .unwrap();
        drop(reply);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"\x01\0\0\0payload\0");
    }

    #[test]
    fn reply_dir_given_with_trailing_slash_matches() {
        let tmp = tempfile::tempdir().unwrap();
        let mut with_slash = tmp.path().as_os_str().to_owned();
        with_slash.push("/");
        let dirs = ReplyDirs::new([PathBuf::from(with_slash)]).unwrap();
        let p = tmp.path().join("f");
        mkfifo(&p, 0o660);
        let _r = reader(&p);
        ReplyFifo::open(bytes(&p), &dirs).unwrap();
    }

    /// Run `ReplyFifo::open` and check it is refused with `want` while every path in
    /// `watch` stays exactly as it was.
    fn assert_refused(path: &[u8], dirs: &ReplyDirs, want: Refusal, watch: &[&Path]) {
        let before: Vec<_> = watch.iter().map(|p| snapshot(p)).collect();
        let got = ReplyFifo::open(path, dirs).map(|_| ());
        assert_eq!(got, Err(want.clone()), "{}", String::from_utf8_lossy(path));
        let after: Vec<_> = watch.iter().map(|p| snapshot(p)).collect();
        assert_eq!(before, after, "file system changed for {want}");
    }

    #[test]
    fn reply_refuses_relative_path() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let p = tmp.path().join("f");
        mkfifo(&p, 0o660);
        let _r = reader(&p);
        // The same FIFO named relative to the working directory or to the allowed dir.
        let rel = p.strip_prefix("/").unwrap();
        assert_refused(bytes(rel), &dirs, Refusal::NotAbsolute, &[&p]);
        assert_refused(b"f", &dirs, Refusal::NotAbsolute, &[&p]);
    }

    #[test]
    fn reply_refuses_dotdot() {
        let tmp = tempfile::tempdir().unwrap();
        let allowed = tmp.path().join("allowed");
        fs::create_dir(&allowed).unwrap();
        let dirs = dirs_of(&[&allowed]);
        let p = allowed.join("x");
        mkfifo(&p, 0o660);
        let _r = reader(&p);
        let mut sneaky = bytes(&allowed).to_vec();
        sneaky.extend_from_slice(b"/../allowed/x");
        assert_refused(&sneaky, &dirs, Refusal::DotDot, &[&p]);
    }

    #[test]
    fn reply_fifo_in_a_private_subdirectory_is_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        for mode in [0o700, 0o710, 0o711, 0o2710] {
            let sub = tmp.path().join(format!("inquery-{mode:o}"));
            fs::create_dir(&sub).unwrap();
            fs::set_permissions(&sub, fs::Permissions::from_mode(mode)).unwrap();
            let p = sub.join("inquery.1.0123456789abcdef");
            mkfifo(&p, 0o600);
            let mut r = reader(&p);
            let mut reply = ReplyFifo::open(bytes(&p), &dirs).unwrap();
            reply.write_now(b"\x01\0\0\0").unwrap();
            drop(reply);
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"\x01\0\0\0", "{mode:o}");
        }
    }

    #[test]
    fn reply_refuses_subdirectory_others_may_list_or_change() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        for mode in [0o750, 0o730, 0o755, 0o704, 0o702, 0o1777, 0o2770] {
            let sub = tmp.path().join(format!("sub-{mode:o}"));
            fs::create_dir(&sub).unwrap();
            fs::set_permissions(&sub, fs::Permissions::from_mode(mode)).unwrap();
            let p = sub.join("x");
            mkfifo(&p, 0o660);
            let _r = reader(&p);
            let Err(Refusal::NotPrivate(_)) = ReplyFifo::open(bytes(&p), &dirs) else {
                panic!("a subdirectory of mode {mode:o} was taken as private");
            };
            assert!(is_fifo_path(&p));
        }
    }

    #[test]
    fn reply_refuses_deeper_subdirectories_and_linked_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let deep = tmp.path().join("a/b");
        fs::create_dir_all(&deep).unwrap();
        for d in [tmp.path().join("a"), deep.clone()] {
            fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        }
        let p = deep.join("x");
        mkfifo(&p, 0o660);
        let _r = reader(&p);
        assert_refused(bytes(&p), &dirs, Refusal::NotInAllowedDir, &[&p]);
        // A symlink to a private directory elsewhere is not one.
        let elsewhere = tempfile::tempdir().unwrap();
        let q = elsewhere.path().join("x");
        mkfifo(&q, 0o660);
        let _r2 = reader(&q);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
        assert_refused(
            bytes(&link.join("x")),
            &dirs,
            Refusal::Symlink,
            &[&q, &link],
        );
    }

    /// Run as root, to give files to other users.
    fn other_users_or_skip(test: &str) -> Option<(Uid, Gid)> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("{test}: skipped, giving files to other users needs root");
            return None;
        }
        Some((Uid::from_raw(65534), Gid::from_raw(65534)))
    }

    #[test]
    fn reply_refuses_fifos_of_users_who_are_not_clients() {
        let Some((nobody, nogroup)) =
            other_users_or_skip("reply_refuses_fifos_of_users_who_are_not_clients")
        else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let mut dirs = dirs_of(&[tmp.path()]);
        let fifo = |name: &str, mode: u32, uid: Uid, gid: Gid| {
            let p = tmp.path().join(name);
            mkfifo(&p, mode);
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            nix::unistd::chown(&p, Some(uid), Some(gid)).unwrap();
            p
        };
        // Another user's private FIFO, being read: never opened, never removed.
        let private = fifo("private", 0o600, nobody, nogroup);
        let _r1 = reader(&private);
        assert_refused(bytes(&private), &dirs, Refusal::NotAClientFifo, &[&private]);
        // Writable by its group, but that is not the group of the server FIFOs.
        let other_group = fifo("other-group", 0o660, nobody, nogroup);
        let _r2 = reader(&other_group);
        assert_refused(
            bytes(&other_group),
            &dirs,
            Refusal::NotAClientFifo,
            &[&other_group],
        );
        // Once it is the server FIFOs' group, it is a client's (C clients in a set-group-ID
        // FIFOTMPDIR).
        dirs.set_client_group(nogroup);
        ReplyFifo::open(bytes(&other_group), &dirs).unwrap();
        // The group may not write it: not a client's.
        let read_only = fifo("read-only", 0o640, nobody, nogroup);
        let _r3 = reader(&read_only);
        assert_refused(
            bytes(&read_only),
            &dirs,
            Refusal::NotAClientFifo,
            &[&read_only],
        );
        // A daemon serving as that user writes to its FIFOs (qmail-smtpd's, mode 0644).
        let own = fifo("123451700000000", 0o644, nobody, Gid::from_raw(0));
        let _r4 = reader(&own);
        let as_nobody = dirs_of(&[tmp.path()]).serving_as(nobody);
        ReplyFifo::open(bytes(&own), &as_nobody).unwrap();
    }

    #[test]
    fn reply_in_a_subdirectory_must_be_its_owners() {
        let Some((nobody, nogroup)) =
            other_users_or_skip("reply_in_a_subdirectory_must_be_its_owners")
        else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let sub = tmp.path().join("inquery-65534");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o710)).unwrap();
        nix::unistd::chown(&sub, Some(nobody), Some(nogroup)).unwrap();
        // nobody's FIFO in nobody's private directory: written, whatever its mode.
        let theirs = sub.join("inquery.1.00");
        mkfifo(&theirs, 0o600);
        nix::unistd::chown(&theirs, Some(nobody), Some(nogroup)).unwrap();
        let _r1 = reader(&theirs);
        ReplyFifo::open(bytes(&theirs), &dirs).unwrap();
        // Somebody else's FIFO in it is not.
        let planted = sub.join("planted");
        mkfifo(&planted, 0o666);
        let _r2 = reader(&planted);
        assert_refused(bytes(&planted), &dirs, Refusal::NotAClientFifo, &[&planted]);
    }

    #[test]
    fn reply_refuses_path_outside_allowed_dirs() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[allowed.path()]);
        let p = outside.path().join("x");
        mkfifo(&p, 0o660);
        let _r = reader(&p);
        assert_refused(bytes(&p), &dirs, Refusal::NotInAllowedDir, &[&p]);
    }

    #[test]
    fn reply_refuses_regular_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let p = tmp.path().join("victim");
        fs::write(&p, b"important contents").unwrap();
        assert_refused(bytes(&p), &dirs, Refusal::NotAFifo, &[&p]);
        assert_eq!(fs::read(&p).unwrap(), b"important contents");
    }

    #[test]
    fn reply_refuses_symlink_to_fifo() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let target = elsewhere.path().join("fifo");
        mkfifo(&target, 0o660);
        let _r = reader(&target);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_refused(bytes(&link), &dirs, Refusal::Symlink, &[&link, &target]);
        // A link to a FIFO in the allowed directory itself is refused as well.
        let inside = tmp.path().join("fifo");
        mkfifo(&inside, 0o660);
        let _r2 = reader(&inside);
        let link2 = tmp.path().join("link2");
        std::os::unix::fs::symlink("fifo", &link2).unwrap();
        assert_refused(bytes(&link2), &dirs, Refusal::Symlink, &[&link2, &inside]);
    }

    #[test]
    fn reply_refuses_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let d = tmp.path().join("d");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("inner"), b"x").unwrap();
        assert_refused(bytes(&d), &dirs, Refusal::NotAFifo, &[&d, &d.join("inner")]);
    }

    #[test]
    fn reply_refuses_fifo_without_reader() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let p = tmp.path().join("gone");
        mkfifo(&p, 0o660);
        assert_refused(bytes(&p), &dirs, Refusal::NoReader, &[&p]);
        assert!(is_fifo_path(&p));
    }

    #[test]
    fn reply_refuses_missing_path() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let p = tmp.path().join("missing");
        assert_refused(bytes(&p), &dirs, Refusal::Vanished, &[&p]);
        assert!(snapshot(&p).is_none());
    }

    #[test]
    fn write_all_to_closed_reader_is_epipe() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let p = tmp.path().join("f");
        mkfifo(&p, 0o660);
        let r = reader(&p);
        let mut reply = ReplyFifo::open(bytes(&p), &dirs).unwrap();
        drop(r);
        let err = reply
            .write_all(b"\x01\0\0\0", Duration::from_secs(2))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    }

    #[test]
    fn write_all_times_out_on_full_pipe() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let p = tmp.path().join("f");
        mkfifo(&p, 0o660);
        let _r = reader(&p);
        let mut reply = ReplyFifo::open(bytes(&p), &dirs).unwrap();

        // Fill the pipe: whole pages first, then single bytes, until it takes no more.
        let page = [b'x'; 4096];
        for chunk in [&page[..], &page[..1]] {
            loop {
                match nix::unistd::write(reply.as_fd(), chunk) {
                    Ok(_) => {}
                    Err(Errno::EAGAIN) => break,
                    Err(e) => panic!("filling the pipe: {e}"),
                }
            }
        }

        let start = Instant::now();
        let err = reply
            .write_all(b"\x01\0\0\0", Duration::from_millis(200))
            .unwrap_err();
        let took = start.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(
            took >= Duration::from_millis(190),
            "returned after {took:?}"
        );
        assert!(took < Duration::from_secs(5), "returned after {took:?}");
    }
}
