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
//!
//! [`server`] holds the server FIFOs' side, [`reply`] the reply FIFOs', `dirs` the checks of
//! the directories both live in.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};

mod dirs;
pub mod reply;
pub mod server;
#[cfg(test)]
mod test_support;

pub use dirs::{open_trusted_dir, DirError, DirProblem, Trusted};
pub use reply::{Refusal, ReplyDirs, ReplyFifo};
pub use server::{
    create_server_fifo, default_pipe_capacity, keep_pipe_capacity, open_server_fifo,
    read_available, remove_server_fifo, Owner, DIR_MODE,
};

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
