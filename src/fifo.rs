//! File-system side of the FIFO transport.
//!
//! The daemon listens on one or more *server FIFOs* that it owns, and answers each request by
//! writing into a *reply FIFO* whose path arrives, untrusted, inside the request. This module
//! creates, opens and removes the server FIFOs, drains them without blocking, and validates and
//! opens reply FIFOs so that a hostile request can never make the daemon open, write to or delete
//! anything but a FIFO, in a configured directory, that a client is currently reading.
//!
//! Every check that matters is made on a file descriptor (`fstat`) or relative to an already
//! opened directory (`*at` calls with `AT_SYMLINK_NOFOLLOW` / `O_NOFOLLOW`), so that swapping a
//! path component between two system calls cannot redirect the operation elsewhere.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{FileStat, Mode};
use nix::unistd::{Gid, Uid, UnlinkatFlags};

/// Mode given to directories that [`create_server_fifo`] has to create.
const DIR_MODE: u32 = 0o775;

/// Longest file name a directory entry can have (Linux `NAME_MAX`).
const NAME_MAX: usize = 255;

/// Errors from the server-FIFO side of this module and from [`ReplyDirs::new`].
#[derive(Debug, thiserror::Error)]
pub enum FifoError {
    /// A system call failed.
    #[error("{}: {op}: {source}", .path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    /// Something other than a FIFO is at the path; it was left alone.
    #[error("{}: is {what}, not a FIFO (left untouched)", .path.display())]
    NotAFifo { path: PathBuf, what: &'static str },
    /// The FIFO already has a reader, i.e. another server is running on it.
    #[error("{}: FIFO is in use: another process has it open for reading", .path.display())]
    InUse { path: PathBuf },
    /// A component that has to be a directory is something else.
    #[error("{}: exists and is not a directory", .path.display())]
    NotADirectory { path: PathBuf },
    /// The path cannot name a FIFO (no final file name, or it is `.` or `..`).
    #[error("{}: {reason}", .path.display())]
    BadPath { path: PathBuf, reason: &'static str },
    /// The requested permission bits are not plain `rwx` bits.
    #[error("{}: mode {mode:#o} has bits outside 0o777", .path.display())]
    BadMode { path: PathBuf, mode: u32 },
    /// The FIFO was not removed because the path now names a different file.
    #[error("{}: not removed: the path no longer names the FIFO this server opened", .path.display())]
    Replaced { path: PathBuf },
    /// An entry of the reply-directory list is unusable.
    #[error("reply directory {}: {reason}", .path.display())]
    BadReplyDir { path: PathBuf, reason: &'static str },
}

/// Owner to give created FIFOs and directories (only applied when we are root or it is our own
/// uid/gid).
///
/// Without root, the uid is applied only when it is the effective uid, and the gid only when it
/// is the effective gid or one of the supplementary groups (what the kernel allows anyway);
/// other values are skipped silently, leaving the file with the owner it was created with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner {
    pub uid: Option<Uid>,
    pub gid: Option<Gid>,
}

fn io_err(path: &Path, op: &'static str, e: impl Into<io::Error>) -> FifoError {
    FifoError::Io {
        path: path.to_path_buf(),
        op,
        source: e.into(),
    }
}

fn file_type(st: &FileStat) -> u32 {
    st.st_mode & libc::S_IFMT
}

fn is_fifo(st: &FileStat) -> bool {
    file_type(st) == libc::S_IFIFO
}

fn same_file(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// A few words describing the type of file in `mode`.
fn kind_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFIFO => "a FIFO",
        _ => "a file of unknown type",
    }
}

fn fstat_fd(fd: BorrowedFd<'_>) -> nix::Result<FileStat> {
    nix::sys::stat::fstat(fd.as_raw_fd())
}

fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<FileStat> {
    nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// `openat(dir, name, flags | O_CLOEXEC)`, returning an owned descriptor.
fn open_at(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag) -> nix::Result<OwnedFd> {
    let raw: RawFd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` has just returned this descriptor, so it is open and nothing else owns
    // it; the `OwnedFd` becomes its only owner and closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Open a directory for use with the `*at` calls (`O_RDONLY|O_DIRECTORY|O_CLOEXEC`).
fn open_dir(dir: &Path, extra_flags: libc::c_int) -> io::Result<OwnedFd> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | extra_flags)
        .open(dir)?;
    Ok(OwnedFd::from(file))
}

/// Split a server FIFO path into its directory and a plain final name.
fn split_server_path(path: &Path) -> Result<(&Path, &OsStr), FifoError> {
    let bytes = path.as_os_str().as_bytes();
    let bad = |reason| FifoError::BadPath {
        path: path.to_path_buf(),
        reason,
    };
    let (dir, name): (&[u8], &[u8]) = match bytes.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &bytes[1..]),
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (b".", bytes),
    };
    if name.is_empty() {
        return Err(bad("path does not end in a file name"));
    }
    if name == b"." || name == b".." {
        return Err(bad("path ends in '.' or '..', not a file name"));
    }
    Ok((Path::new(OsStr::from_bytes(dir)), OsStr::from_bytes(name)))
}

/// The uid/gid of `owner` that we may and need to apply.
fn applicable_owner(owner: Owner) -> (Option<Uid>, Option<Gid>) {
    let euid = nix::unistd::geteuid();
    let root = euid.is_root();
    let uid = owner.uid.filter(|&u| root || u == euid);
    let gid = owner.gid.filter(|&g| {
        root || g == nix::unistd::getegid()
            || nix::unistd::getgroups().is_ok_and(|groups| groups.contains(&g))
    });
    if uid != owner.uid || gid != owner.gid {
        log::debug!(
            "not privileged to give files owner {:?}:{:?}; applying {:?}:{:?}",
            owner.uid,
            owner.gid,
            uid,
            gid
        );
    }
    (uid, gid)
}

/// chown (as far as allowed) and then chmod to exactly `mode` through an open descriptor.
fn set_owner_and_mode(
    fd: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
    owner: Owner,
) -> Result<(), FifoError> {
    let (uid, gid) = applicable_owner(owner);
    if uid.is_some() || gid.is_some() {
        nix::unistd::fchown(fd.as_raw_fd(), uid, gid).map_err(|e| io_err(path, "chown", e))?;
    }
    // After the chown, which may clear set-id bits: the result is exactly `mode`.
    nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))
        .map_err(|e| io_err(path, "chmod", e))
}

/// Make sure `dir` is a directory, creating it and any missing parents with [`DIR_MODE`] and
/// `owner`.
fn ensure_dir(dir: &Path, owner: Owner) -> Result<(), FifoError> {
    match std::fs::metadata(dir) {
        Ok(md) if md.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(FifoError::NotADirectory {
                path: dir.to_path_buf(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(dir, "stat", e)),
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() && parent != dir {
            ensure_dir(parent, owner)?;
        }
    }
    match nix::unistd::mkdir(dir, Mode::from_bits_truncate(DIR_MODE)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // Created by someone else meanwhile: use it if it is a directory, but leave its
            // attributes alone since it is not ours.
            return match std::fs::metadata(dir) {
                Ok(md) if md.is_dir() => Ok(()),
                Ok(_) => Err(FifoError::NotADirectory {
                    path: dir.to_path_buf(),
                }),
                Err(e) => Err(io_err(dir, "stat", e)),
            };
        }
        Err(e) => return Err(io_err(dir, "mkdir", e)),
    }
    log::debug!("created directory {}", dir.display());
    let fd = open_dir(dir, libc::O_NOFOLLOW).map_err(|e| io_err(dir, "open directory", e))?;
    set_owner_and_mode(fd.as_fd(), dir, DIR_MODE, owner)
}

/// Open the FIFO `name` in `dir` only to change its attributes: a non-blocking read-only open
/// of a FIFO never waits, and `O_NOFOLLOW` plus the `fstat` make sure it is one.
fn open_fifo_for_attrs(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
) -> Result<OwnedFd, FifoError> {
    let fd = match open_at(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW,
    ) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) => {
            return Err(FifoError::NotAFifo {
                path: path.to_path_buf(),
                what: kind_name(libc::S_IFLNK),
            })
        }
        Err(e) => return Err(io_err(path, "open", e)),
    };
    let st = fstat_fd(fd.as_fd()).map_err(|e| io_err(path, "fstat", e))?;
    if !is_fifo(&st) {
        return Err(FifoError::NotAFifo {
            path: path.to_path_buf(),
            what: kind_name(st.st_mode),
        });
    }
    Ok(fd)
}

/// Take over an existing FIFO left behind by an earlier server, unless a server still reads it.
fn take_over(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    mode: u32,
    owner: Owner,
) -> Result<(), FifoError> {
    let st = lstat_at(dir, name).map_err(|e| io_err(path, "lstat", e))?;
    if !is_fifo(&st) {
        return Err(FifoError::NotAFifo {
            path: path.to_path_buf(),
            what: kind_name(st.st_mode),
        });
    }
    // A non-blocking open for writing succeeds only if somebody holds the FIFO open for reading.
    match open_at(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW,
    ) {
        Ok(fd) => {
            let st = fstat_fd(fd.as_fd()).map_err(|e| io_err(path, "fstat", e))?;
            return Err(if is_fifo(&st) {
                FifoError::InUse {
                    path: path.to_path_buf(),
                }
            } else {
                FifoError::NotAFifo {
                    path: path.to_path_buf(),
                    what: kind_name(st.st_mode),
                }
            });
        }
        Err(Errno::ENXIO) => {}
        Err(Errno::ELOOP) => {
            return Err(FifoError::NotAFifo {
                path: path.to_path_buf(),
                what: kind_name(libc::S_IFLNK),
            })
        }
        Err(e) => return Err(io_err(path, "open for writing (is a server running?)", e)),
    }
    let fd = open_fifo_for_attrs(dir, name, path)?;
    set_owner_and_mode(fd.as_fd(), path, mode, owner)?;
    log::debug!("took over stale FIFO {}", path.display());
    Ok(())
}

/// Create the server FIFO at `path`, or take over a stale one.
/// - Missing parent directories are created (mode 0775, then chown to `owner` if given).
/// - mkfifo with `mode`; then chmod to exactly `mode` (the umask does not change it) and chown
///   to `owner` if given.
/// - If `path` exists: lstat it. A FIFO is taken over (chmod to `mode`, chown) — unless a live
///   server holds it, detected by opening it `O_WRONLY|O_NONBLOCK`: success means someone has it
///   open for reading -> [`FifoError::InUse`]. Anything else (regular file, symlink — even to a
///   FIFO —, directory, socket) -> [`FifoError::NotAFifo`], untouched.
///
/// `mode` may only hold permission bits (`0o777`).
pub fn create_server_fifo(path: &Path, mode: u32, owner: Owner) -> Result<(), FifoError> {
    if mode & !0o777 != 0 {
        return Err(FifoError::BadMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    let (dir, name) = split_server_path(path)?;
    ensure_dir(dir, owner)?;
    let dirfd = open_dir(dir, 0).map_err(|e| io_err(dir, "open directory", e))?;
    match nix::unistd::mkfifoat(
        Some(dirfd.as_raw_fd()),
        name,
        Mode::from_bits_truncate(mode),
    ) {
        Ok(()) => {
            let fd = open_fifo_for_attrs(dirfd.as_fd(), name, path)?;
            set_owner_and_mode(fd.as_fd(), path, mode, owner)?;
            log::debug!("created FIFO {} mode {:#o}", path.display(), mode);
            Ok(())
        }
        Err(Errno::EEXIST) => take_over(dirfd.as_fd(), name, path, mode, owner),
        Err(e) => Err(io_err(path, "mkfifo", e)),
    }
}

/// Open a server FIFO for reading: `O_RDWR` (so the daemon itself keeps a writer and never sees
/// EOF, and clients' `O_NONBLOCK` opens succeed) `| O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW`; the
/// opened file must be a FIFO.
pub fn open_server_fifo(path: &Path) -> Result<OwnedFd, FifoError> {
    let not_fifo = |mode| FifoError::NotAFifo {
        path: path.to_path_buf(),
        what: kind_name(mode),
    };
    // Check before opening so that no device or other special file is ever opened.
    let st = nix::sys::stat::lstat(path).map_err(|e| io_err(path, "lstat", e))?;
    if !is_fifo(&st) {
        return Err(not_fifo(st.st_mode));
    }
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(not_fifo(libc::S_IFLNK)),
        Err(e) => return Err(io_err(path, "open O_RDWR", e)),
    };
    let fd = OwnedFd::from(file);
    let st = fstat_fd(fd.as_fd()).map_err(|e| io_err(path, "fstat", e))?;
    if !is_fifo(&st) {
        return Err(not_fifo(st.st_mode));
    }
    Ok(fd)
}

/// Remove a server FIFO at shutdown, only if the path still names the file open on `fd` (same
/// device and inode). A path that is already gone is not an error; one that names another file
/// gives [`FifoError::Replaced`] and is left alone.
pub fn remove_server_fifo(path: &Path, fd: BorrowedFd<'_>) -> Result<(), FifoError> {
    let ours = fstat_fd(fd).map_err(|e| io_err(path, "fstat", e))?;
    let (dir, name) = split_server_path(path)?;
    let dirfd = open_dir(dir, 0).map_err(|e| io_err(dir, "open directory", e))?;
    let st = match lstat_at(dirfd.as_fd(), name) {
        Ok(st) => st,
        Err(Errno::ENOENT) => {
            log::debug!("{}: already removed", path.display());
            return Ok(());
        }
        Err(e) => return Err(io_err(path, "lstat", e)),
    };
    if !same_file(&st, &ours) {
        return Err(FifoError::Replaced {
            path: path.to_path_buf(),
        });
    }
    match nix::unistd::unlinkat(Some(dirfd.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(io_err(path, "unlink", e)),
    }
}

/// Read everything available from a non-blocking pipe or FIFO into `buf` (appending): until a
/// read returns less than asked for (the pipe is empty now), `EAGAIN` or end of file; returns
/// the number of bytes read. `EINTR` is retried.
///
/// The descriptor must be in non-blocking mode (an `InvalidInput` error otherwise), so this
/// never blocks. On a read error, the bytes read before it are already in `buf`.
pub fn read_available(fd: BorrowedFd<'_>, buf: &mut Vec<u8>) -> io::Result<usize> {
    let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
    if flags & libc::O_NONBLOCK == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "read_available needs a descriptor in non-blocking mode",
        ));
    }
    let mut chunk = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                total += n;
                // A pipe gives what it holds: a short read emptied it, and
                // asking again would only return EAGAIN.
                if n < chunk.len() {
                    break;
                }
            }
            Err(Errno::EAGAIN) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(total)
}

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
}

impl ReplyDirs {
    /// Every entry must be absolute; duplicates are removed and trailing slashes stripped
    /// (repeated slashes and `.` components are collapsed as well). A relative entry, or one
    /// with a `..` component (which cannot be resolved without following links), is an error.
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
        })
    }

    /// The normalised directories, in the order first given.
    /// The open directory `dir` (one of `dirs`); `fresh` opens it again.
    fn dir_fd(&self, dir: &Path, fresh: bool) -> io::Result<Arc<OwnedFd>> {
        let i = self
            .dirs
            .iter()
            .position(|d| d == dir)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let mut slot = self.open[i].lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some(fd) if !fresh => Ok(fd.clone()),
            _ => {
                let fd = Arc::new(open_dir(dir, 0)?);
                *slot = Some(fd.clone());
                Ok(fd)
            }
        }
    }

    /// Never accept the file now at `path` as a reply FIFO (a server FIFO).
    pub fn forbid(&mut self, path: &Path) -> Result<(), FifoError> {
        let st = nix::sys::stat::lstat(path).map_err(|e| io_err(path, "lstat", e))?;
        self.forbidden.push((st.st_dev as u64, st.st_ino as u64));
        Ok(())
    }

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
    #[error("reply FIFO: {0}")]
    Io(String),
}

/// Check the syntax of a reply path; return the allowed directory it is in and its file name.
pub(crate) fn check_reply_path<'a>(
    path: &'a [u8],
    dirs: &'a ReplyDirs,
) -> Result<(&'a Path, &'a OsStr), Refusal> {
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
    let slash = path
        .iter()
        .rposition(|&b| b == b'/')
        .ok_or(Refusal::NotAbsolute)?;
    let name = &path[slash + 1..];
    if name.len() > NAME_MAX {
        return Err(Refusal::BadName);
    }
    let parent: &[u8] = if slash == 0 { b"/" } else { &path[..slash] };
    let dir = dirs
        .dirs
        .iter()
        .find(|d| d.as_os_str().as_bytes() == parent)
        .ok_or(Refusal::NotInAllowedDir)?;
    Ok((dir.as_path(), OsStr::from_bytes(name)))
}

fn refusal_io(op: &str, what: impl std::fmt::Display, e: impl std::fmt::Display) -> Refusal {
    Refusal::Io(format!("{op} {what}: {e}"))
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
    ///    not canonicalised) and the last component is a plain name;
    ///  * `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)` on the allowed directory kept open must
    ///    say FIFO, and not one of the daemon's own, so no regular file, device, directory or
    ///    symlink is ever opened (opening some devices has effects of its own);
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
        let (dir, name) = check_reply_path(path, dirs)?;
        let shown = || crate::logline::Escaped::new(path).to_string();
        let open_err = |e| refusal_io("open directory", dir.display(), e);
        let mut dirfd = dirs.dir_fd(dir, false).map_err(open_err)?;
        let before = match lstat_at(dirfd.as_fd(), name) {
            Ok(st) => st,
            // The directory kept open may have been replaced (a service
            // script recreating /run/indimail/inquery): look once more in
            // the directory now at that path.
            Err(Errno::ENOENT) => {
                dirfd = dirs.dir_fd(dir, true).map_err(open_err)?;
                match lstat_at(dirfd.as_fd(), name) {
                    Ok(st) => st,
                    Err(Errno::ENOENT) => return Err(Refusal::Vanished),
                    Err(e) => return Err(refusal_io("lstat", shown(), e)),
                }
            }
            Err(e) => return Err(refusal_io("lstat", shown(), e)),
        };
        match file_type(&before) {
            libc::S_IFIFO => {}
            libc::S_IFLNK => return Err(Refusal::Symlink),
            _ => return Err(Refusal::NotAFifo),
        }
        if dirs
            .forbidden
            .contains(&(before.st_dev as u64, before.st_ino as u64))
        {
            return Err(Refusal::ServerFifo);
        }

        let fd = match open_at(
            dirfd.as_fd(),
            name,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY,
        ) {
            Ok(fd) => fd,
            Err(Errno::ENXIO) => return Err(Refusal::NoReader),
            Err(Errno::ENOENT) => return Err(Refusal::Vanished),
            Err(Errno::ELOOP) => return Err(Refusal::Symlink),
            Err(e) => return Err(refusal_io("open", shown(), e)),
        };
        let opened = fstat_fd(fd.as_fd()).map_err(|e| refusal_io("fstat", shown(), e))?;
        if !is_fifo(&opened) || !same_file(&opened, &before) {
            // Swapped between the check and the open; nothing has been written.
            return Err(Refusal::Vanished);
        }

        // Remove the name now that we hold the FIFO, as C clients expect.
        if let Err(e) =
            nix::unistd::unlinkat(Some(dirfd.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
        {
            log::debug!("unlink {}: {}", shown(), e);
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
    use super::*;
    use std::fs::{self, File};
    use std::io::{Read, Write};
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    fn mkfifo(p: &Path, mode: u32) {
        nix::unistd::mkfifo(p, Mode::from_bits_truncate(mode)).unwrap();
    }

    /// Open the read end of a FIFO without blocking.
    fn reader(p: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(p)
            .unwrap()
    }

    fn perm_bits(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn is_fifo_path(p: &Path) -> bool {
        fs::symlink_metadata(p)
            .map(|m| m.file_type().is_fifo())
            .unwrap_or(false)
    }

    /// Everything about a path that a refused request must not change.
    #[derive(Debug, PartialEq)]
    struct Snapshot {
        mode: u32,
        ino: u64,
        nlink: u64,
        uid: u32,
        gid: u32,
        size: u64,
        mtime: (i64, i64),
        content: Option<Vec<u8>>,
        link: Option<PathBuf>,
    }

    fn snapshot(p: &Path) -> Option<Snapshot> {
        let md = fs::symlink_metadata(p).ok()?;
        let ft = md.file_type();
        Some(Snapshot {
            mode: md.mode(),
            ino: md.ino(),
            nlink: md.nlink(),
            uid: md.uid(),
            gid: md.gid(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            content: ft.is_file().then(|| fs::read(p).unwrap()),
            link: ft.is_symlink().then(|| fs::read_link(p).unwrap()),
        })
    }

    fn dirs_of(paths: &[&Path]) -> ReplyDirs {
        ReplyDirs::new(paths.iter().map(|p| p.to_path_buf())).unwrap()
    }

    fn bytes(p: &Path) -> &[u8] {
        p.as_os_str().as_bytes()
    }

    // ---- server FIFOs -------------------------------------------------------------------

    #[test]
    fn create_makes_missing_dirs_with_exact_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let own = Owner {
            uid: Some(nix::unistd::geteuid()),
            gid: Some(nix::unistd::getegid()),
        };
        let p = tmp.path().join("run/indimail/inlookup/infifo.1");
        create_server_fifo(&p, 0o660, own).unwrap();
        assert!(is_fifo_path(&p));
        assert_eq!(perm_bits(&p), 0o660);
        for d in ["run", "run/indimail", "run/indimail/inlookup"] {
            let d = tmp.path().join(d);
            assert!(d.is_dir());
            assert_eq!(perm_bits(&d), 0o775, "{}", d.display());
        }
        let md = fs::metadata(&p).unwrap();
        assert_eq!(md.uid(), nix::unistd::geteuid().as_raw());
        assert_eq!(md.gid(), nix::unistd::getegid().as_raw());

        // Wider than any usual umask allows: the result must still be exact.
        let q = tmp.path().join("run/indimail/inlookup/infifo.2");
        create_server_fifo(&q, 0o666, Owner::default()).unwrap();
        assert!(is_fifo_path(&q));
        assert_eq!(perm_bits(&q), 0o666);
    }

    #[test]
    fn create_rejects_non_permission_mode_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("infifo");
        assert!(matches!(
            create_server_fifo(&p, 0o4660, Owner::default()),
            Err(FifoError::BadMode { .. })
        ));
        assert!(snapshot(&p).is_none());
    }

    #[test]
    fn create_takes_over_stale_fifo_and_fixes_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("infifo");
        mkfifo(&p, 0o600);
        let ino = fs::symlink_metadata(&p).unwrap().ino();
        create_server_fifo(&p, 0o666, Owner::default()).unwrap();
        assert!(is_fifo_path(&p));
        assert_eq!(perm_bits(&p), 0o666);
        assert_eq!(fs::symlink_metadata(&p).unwrap().ino(), ino);
        create_server_fifo(&p, 0o640, Owner::default()).unwrap();
        assert_eq!(perm_bits(&p), 0o640);
    }

    #[test]
    fn create_refuses_regular_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("infifo");
        fs::write(&p, b"precious").unwrap();
        let before = snapshot(&p);
        let err = create_server_fifo(&p, 0o666, Owner::default()).unwrap_err();
        assert!(matches!(err, FifoError::NotAFifo { .. }), "{err}");
        assert!(err.to_string().contains("regular file"), "{err}");
        assert_eq!(snapshot(&p), before);
    }

    #[test]
    fn create_refuses_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("infifo");
        fs::create_dir(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).unwrap();
        let before = snapshot(&p);
        let err = create_server_fifo(&p, 0o666, Owner::default()).unwrap_err();
        assert!(matches!(err, FifoError::NotAFifo { .. }), "{err}");
        assert_eq!(snapshot(&p), before);
    }

    #[test]
    fn create_refuses_symlink_to_fifo() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("real");
        mkfifo(&target, 0o600);
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        let p = tmp.path().join("infifo");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let (link_before, target_before) = (snapshot(&p), snapshot(&target));
        let err = create_server_fifo(&p, 0o666, Owner::default()).unwrap_err();
        assert!(matches!(err, FifoError::NotAFifo { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(snapshot(&p), link_before);
        assert_eq!(snapshot(&target), target_before);
    }

    #[test]
    fn create_reports_fifo_in_use() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("infifo");
        mkfifo(&p, 0o600);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let before = snapshot(&p);
        let r = reader(&p);
        let err = create_server_fifo(&p, 0o666, Owner::default()).unwrap_err();
        assert!(matches!(err, FifoError::InUse { .. }), "{err}");
        assert_eq!(snapshot(&p), before);
        drop(r);

        // A running server (which holds it O_RDWR) is detected the same way.
        create_server_fifo(&p, 0o660, Owner::default()).unwrap();
        let server = open_server_fifo(&p).unwrap();
        assert!(matches!(
            create_server_fifo(&p, 0o660, Owner::default()),
            Err(FifoError::InUse { .. })
        ));
        drop(server);
        create_server_fifo(&p, 0o660, Owner::default()).unwrap();
    }

    #[test]
    fn open_server_fifo_reads_what_clients_write() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("infifo.1");
        create_server_fifo(&p, 0o660, Owner::default()).unwrap();
        let fd = open_server_fifo(&p).unwrap();

        let mut buf = Vec::new();
        let start = Instant::now();
        assert_eq!(read_available(fd.as_fd(), &mut buf).unwrap(), 0);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(buf.is_empty());

        // A client's non-blocking open succeeds because the server holds a reader.
        let mut client = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .unwrap();
        client.write_all(b"\x05\0\0\0hello").unwrap();
        client.write_all(b"\x03\0\0\0abc").unwrap();
        // The client closing does not give the server EOF either.
        drop(client);
        assert_eq!(read_available(fd.as_fd(), &mut buf).unwrap(), 16);
        assert_eq!(buf, b"\x05\0\0\0hello\x03\0\0\0abc");
        assert_eq!(read_available(fd.as_fd(), &mut buf).unwrap(), 0);
        assert_eq!(buf.len(), 16);
    }

    #[test]
    fn read_available_refuses_blocking_descriptor() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        fs::write(&p, b"x").unwrap();
        let f = File::open(&p).unwrap();
        let err = read_available(f.as_fd(), &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn open_server_fifo_refuses_non_fifos() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"data").unwrap();
        assert!(matches!(
            open_server_fifo(&file),
            Err(FifoError::NotAFifo { .. })
        ));
        let fifo = tmp.path().join("fifo");
        mkfifo(&fifo, 0o600);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(matches!(
            open_server_fifo(&link),
            Err(FifoError::NotAFifo { .. })
        ));
        assert!(matches!(
            open_server_fifo(&tmp.path().join("missing")),
            Err(FifoError::Io { .. })
        ));
    }

    #[test]
    fn remove_server_fifo_removes_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("infifo.1");
        create_server_fifo(&p, 0o660, Owner::default()).unwrap();
        let fd = open_server_fifo(&p).unwrap();
        remove_server_fifo(&p, fd.as_fd()).unwrap();
        assert!(snapshot(&p).is_none());
        // Already gone: nothing to do.
        remove_server_fifo(&p, fd.as_fd()).unwrap();
    }

    #[test]
    fn remove_server_fifo_keeps_a_replacement() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("infifo.1");
        create_server_fifo(&p, 0o660, Owner::default()).unwrap();
        let fd = open_server_fifo(&p).unwrap();
        // Another server instance took the name over.
        fs::remove_file(&p).unwrap();
        create_server_fifo(&p, 0o660, Owner::default()).unwrap();
        let before = snapshot(&p);
        let err = remove_server_fifo(&p, fd.as_fd()).unwrap_err();
        assert!(matches!(err, FifoError::Replaced { .. }), "{err}");
        assert_eq!(snapshot(&p), before);
        assert!(is_fifo_path(&p));
    }

    // ---- reply FIFOs --------------------------------------------------------------------

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
            Refusal::Io(_)
        ));
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
    fn reply_refuses_fifo_in_subdirectory() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs_of(&[tmp.path()]);
        let sub = tmp.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let p = sub.join("x");
        mkfifo(&p, 0o660);
        let _r = reader(&p);
        assert_refused(bytes(&p), &dirs, Refusal::NotInAllowedDir, &[&p, &sub]);
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
