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

mod dirs;
pub use dirs::{open_trusted_dir, DirError, DirProblem, Trusted};

/// Mode given to directories that [`create_server_fifo`] has to create: the owner (the
/// daemon's user) writes them, the group of the FIFOs may reach the FIFOs, nobody else may.
pub const DIR_MODE: u32 = 0o750;

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
    /// A directory on the way to a FIFO cannot be trusted (see [`open_trusted_dir`]).
    #[error(transparent)]
    Dir(#[from] DirError),
    /// A FIFO left at the server FIFO's path belongs to another user: it is not taken over.
    #[error(
        "{}: a FIFO owned by uid {uid}, not by the daemon's user (uid {want}); it is not \
         taken over: remove it if it is a leftover",
        .path.display()
    )]
    NotOurs { path: PathBuf, uid: u32, want: u32 },
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

/// (device, inode): which file it is.
fn file_id(st: &FileStat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
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

pub(crate) fn fstat_fd(fd: BorrowedFd<'_>) -> nix::Result<FileStat> {
    nix::sys::stat::fstat(fd.as_raw_fd())
}

pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<FileStat> {
    nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// `openat(dir, name, flags | O_CLOEXEC)`, returning an owned descriptor.
pub(crate) fn open_at(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag) -> nix::Result<OwnedFd> {
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

/// The users whose directories may hold the server FIFOs: root, the daemon (its effective
/// uid), and the user the FIFOs are given to (the service user a root daemon becomes).
fn trusted_for(owner: Owner) -> Trusted {
    Trusted::new([nix::unistd::geteuid()].into_iter().chain(owner.uid))
}

/// The uid a server FIFO must have to be this daemon's: `owner`'s, else our own.
fn fifo_owner_uid(owner: Owner) -> Uid {
    owner.uid.unwrap_or_else(nix::unistd::geteuid)
}

/// Make sure `dir` is a trusted directory (see [`open_trusted_dir`]) and return a descriptor
/// of it; missing directories are made, each below a parent that was checked first, with
/// [`DIR_MODE`] and `owner`. Nothing is made below a directory that is not trusted.
fn ensure_dir(dir: &Path, owner: Owner, trusted: &Trusted) -> Result<OwnedFd, FifoError> {
    match open_trusted_dir(dir, trusted) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.problem == DirProblem::Missing => {}
        Err(e) => return Err(e.into()),
    }
    let (parent, name) = match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => (parent, name),
        _ => {
            return Err(FifoError::BadPath {
                path: dir.to_path_buf(),
                reason: "cannot make a directory on a path with '..'",
            })
        }
    };
    let parent_fd = ensure_dir(parent, owner, trusted)?;
    match nix::sys::stat::mkdirat(
        Some(parent_fd.as_raw_fd()),
        name,
        Mode::from_bits_truncate(DIR_MODE),
    ) {
        Ok(()) => {
            log::debug!("created directory {}", dir.display());
            let fd = open_at(
                parent_fd.as_fd(),
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            )
            .map_err(|e| io_err(dir, "open directory", e))?;
            set_owner_and_mode(fd.as_fd(), dir, DIR_MODE, owner)?;
        }
        // Made by someone else meanwhile: it is checked like any other below.
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(io_err(dir, "mkdir", e)),
    }
    Ok(open_trusted_dir(dir, trusted)?)
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
    // Somebody else's FIFO would stay theirs to open, rename or replace: root's (a root daemon
    // of before) is taken over, nobody else's.
    let want = fifo_owner_uid(owner);
    if st.st_uid != want.as_raw() && st.st_uid != 0 {
        return Err(FifoError::NotOurs {
            path: path.to_path_buf(),
            uid: st.st_uid,
            want: want.as_raw(),
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
/// - Its directory must be trusted (see [`open_trusted_dir`]: it and every directory above
///   belong to root, the daemon or `owner`'s user, and nobody else may write them unless they
///   are sticky), else [`FifoError::Dir`]; missing directories are created (mode
///   [`DIR_MODE`], then chown to `owner` if given).
/// - mkfifo with `mode`; then chmod to exactly `mode` (the umask does not change it) and chown
///   to `owner` if given.
/// - If `path` exists: lstat it. A FIFO is taken over (chmod to `mode`, chown) — unless it
///   belongs to another user than `owner`'s (or ours) and root -> [`FifoError::NotOurs`], or a
///   live server holds it, detected by opening it `O_WRONLY|O_NONBLOCK`: success means someone
///   has it open for reading -> [`FifoError::InUse`]. Anything else (regular file, symlink —
///   even to a FIFO —, directory, socket) -> [`FifoError::NotAFifo`], untouched.
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
    let dir = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| io_err(dir, "getcwd", e))?
            .join(dir)
    };
    let dirfd = ensure_dir(&dir, owner, &trusted_for(owner))?;
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
    let dirfd = open_dir(dir, libc::O_PATH).map_err(|e| io_err(dir, "open directory", e))?;
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

/// The capacity the kernel gives a new pipe (`F_GETPIPE_SZ` of a fresh one).
pub fn default_pipe_capacity() -> io::Result<usize> {
    let (read, _write) = nix::unistd::pipe()?;
    let n = nix::fcntl::fcntl(read.as_raw_fd(), nix::fcntl::FcntlArg::F_GETPIPE_SZ)?;
    Ok(n as usize)
}

/// Any process that may open a server FIFO may make its pipe smaller (`F_SETPIPE_SZ`, down to
/// one page) for as long as the daemon holds it open, so that clients wait for room: give it
/// `want` bytes again when it holds less. Returns the smaller capacity it had.
pub fn keep_pipe_capacity(fd: BorrowedFd<'_>, want: usize) -> io::Result<Option<usize>> {
    use nix::fcntl::{fcntl, FcntlArg};
    let now = fcntl(fd.as_raw_fd(), FcntlArg::F_GETPIPE_SZ)? as usize;
    if now >= want {
        return Ok(None);
    }
    let want =
        libc::c_int::try_from(want).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(want))?;
    Ok(Some(now))
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
            assert_eq!(perm_bits(&d), DIR_MODE, "{}", d.display());
            assert_eq!(DIR_MODE, 0o750);
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
