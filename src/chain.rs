//! What an authentication module does with other programs: hand the client's data to
//! the next module of the chain on a fresh fd 3, replace itself with a program, or run
//! a helper (POSTAUTH) and wait for it.
//!
//! The environment a program gets is this process's environment with a few changes
//! ([`ChildEnv`]); the process's own environment is never modified, so that nothing
//! here depends on `setenv` and threads.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

/// The descriptor checkpassword and authlib modules read the client's data from.
pub const AUTH_FD: i32 = 3;

/// Changes to the environment a program is started with.
#[derive(Clone, Default)]
pub struct ChildEnv {
    changes: Vec<(String, Option<OsString>)>,
}

impl ChildEnv {
    pub fn new() -> ChildEnv {
        ChildEnv::default()
    }

    /// Set `name` to `value` in the program's environment.
    pub fn set(&mut self, name: &str, value: impl Into<OsString>) -> &mut ChildEnv {
        self.changes.push((name.to_string(), Some(value.into())));
        self
    }

    /// Leave `name` out of the program's environment.
    pub fn remove(&mut self, name: &str) -> &mut ChildEnv {
        self.changes.push((name.to_string(), None));
        self
    }

    /// The value `name` will have: the last change, else the process's own.
    pub fn get(&self, name: &str) -> Option<OsString> {
        match self.changes.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => v.clone(),
            None => std::env::var_os(name),
        }
    }

    fn apply(&self, cmd: &mut Command) {
        for (name, value) in &self.changes {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
    }
}

/// A program name as `execv(2)` takes it: no PATH search, so a name without a `/` is
/// relative to the current directory. (`Command` would search PATH for it.)
pub fn execv_path(program: &OsStr) -> PathBuf {
    if program.as_bytes().contains(&b'/') {
        PathBuf::from(program)
    } else {
        PathBuf::from(".").join(program)
    }
}

/// Replaces this process with `path`, given the argument vector `argv` (`argv[0]`
/// included), as `execv(2)` does: no PATH search. Returns only on failure.
pub fn execv(path: &OsStr, argv: &[OsString], env: &ChildEnv) -> io::Error {
    let mut cmd = Command::new(execv_path(path));
    if let Some((argv0, args)) = argv.split_first() {
        cmd.arg0(argv0).args(args);
    }
    env.apply(&mut cmd);
    cmd.exec()
}

/// IndiMail's `pipe_exec`: runs the next module, `argv[0]` searched in PATH with
/// `argv[1..]` as its arguments, with exactly `data` readable on a new fd 3. Returns
/// only on failure.
///
/// The data is written into the pipe before the exec: it is at most 512 bytes, less than
/// any pipe holds, so the write cannot block.
pub fn pipe_exec(argv: &[OsString], data: &[u8], env: &ChildEnv) -> io::Error {
    let Some((program, args)) = argv.split_first() else {
        return io::Error::new(io::ErrorKind::InvalidInput, "no program to run");
    };
    if let Err(e) = data_on_fd3(data) {
        return e;
    }
    let mut cmd = Command::new(program);
    cmd.args(args);
    env.apply(&mut cmd);
    cmd.exec()
}

/// Puts a pipe holding `data` (and then end of file) on fd 3, in place of whatever was
/// there, without close-on-exec.
fn data_on_fd3(data: &[u8]) -> io::Result<()> {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let mut written = 0;
    while written < data.len() {
        match nix::unistd::write(&write_end, &data[written..]) {
            Ok(n) => written += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    drop(write_end);
    if read_end.as_raw_fd() == AUTH_FD {
        // fd 3 was closed and the pipe got it: keep it open across the exec.
        fcntl(AUTH_FD, FcntlArg::F_SETFD(FdFlag::empty()))?;
        std::mem::forget(read_end);
    } else {
        // dup2 replaces the old fd 3 and leaves the new one without close-on-exec.
        nix::unistd::dup2(read_end.as_raw_fd(), AUTH_FD)?;
    }
    Ok(())
}

/// Runs `program args...` (no PATH search) and waits for it; stdin, stdout and stderr
/// are this process's.
pub fn run(program: &OsStr, args: &[&OsStr], env: &ChildEnv) -> io::Result<ExitStatus> {
    let mut cmd = Command::new(execv_path(program));
    cmd.arg0(program).args(args);
    env.apply(&mut cmd);
    cmd.status()
}

/// Is `path` a file this process may execute (`access(X_OK)`, as IndiMail checks
/// POSTAUTH)? A directory is not.
pub fn is_executable(path: &OsStr) -> bool {
    let path = execv_path(path);
    nix::unistd::access(&path, nix::unistd::AccessFlags::X_OK).is_ok()
        && std::fs::metadata(&path).is_ok_and(|m| m.is_file())
}

/// Writes all of `data` to descriptor `fd`, which this process did not open (fd 6 for
/// the DIGEST-MD5 `rspauth`). A descriptor that is not open gives `EBADF`.
pub fn write_fd(fd: i32, data: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        let rest = &data[done..];
        // SAFETY: write(2) reads `rest.len()` bytes from a live slice; an fd that is not
        // open only makes it fail with EBADF.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(())
}

/// libqmail's `error_str` texts, which IndiMail's programs print (to the SMTP client
/// too) where the C library would print strerror's: the first entry for an errno wins,
/// as in its chain of comparisons (EWOULDBLOCK is EAGAIN on Linux).
const ERROR_STR: &[(i32, &str)] = &[
    (libc::EINTR, "interrupted system call"),
    (libc::ENOMEM, "out of memory"),
    (libc::ENOENT, "file does not exist"),
    (libc::ETXTBSY, "text busy"),
    (libc::EIO, "input/output error"),
    (libc::EEXIST, "file already exists"),
    (libc::ETIMEDOUT, "timed out"),
    (libc::EINPROGRESS, "operation in progress"),
    (libc::EAGAIN, "temporary failure"),
    (libc::EWOULDBLOCK, "input/output would block"),
    (libc::EPIPE, "broken pipe"),
    (libc::EPERM, "permission denied"),
    (libc::EACCES, "access denied"),
    (libc::ESRCH, "no such process"),
    (libc::ENXIO, "device not configured"),
    (libc::ENOEXEC, "exec format error"),
    (libc::EBADF, "file descriptor not open"),
    (libc::ECHILD, "no child processes"),
    (libc::EDEADLK, "operation would cause deadlock"),
    (libc::EFAULT, "bad address"),
    (libc::ENOTBLK, "not a block device"),
    (libc::EBUSY, "device busy"),
    (libc::EXDEV, "cross-device link"),
    (libc::ENODEV, "device does not support operation"),
    (libc::ENOTDIR, "not a directory"),
    (libc::EISDIR, "is a directory"),
    (libc::EINVAL, "invalid argument"),
    (libc::ENFILE, "system cannot open more files"),
    (libc::EMFILE, "process cannot open more files"),
    (libc::ENOTTY, "not a tty"),
    (libc::EFBIG, "file too big"),
    (libc::ENOSPC, "out of disk space"),
    (libc::ESPIPE, "unseekable descriptor"),
    (libc::EROFS, "read-only file system"),
    (libc::EMLINK, "too many links"),
    (libc::EDOM, "input out of range"),
    (libc::ERANGE, "output out of range"),
    (libc::EALREADY, "operation already in progress"),
    (libc::ENOTSOCK, "not a socket"),
    (libc::EDESTADDRREQ, "destination address required"),
    (libc::EMSGSIZE, "message too long"),
    (libc::EPROTOTYPE, "incorrect protocol type"),
    (libc::ENOPROTOOPT, "protocol not available"),
    (libc::EPROTONOSUPPORT, "protocol not supported"),
    (libc::ESOCKTNOSUPPORT, "socket type not supported"),
    (libc::EOPNOTSUPP, "operation not supported"),
    (libc::EPFNOSUPPORT, "protocol family not supported"),
    (libc::EAFNOSUPPORT, "address family not supported"),
    (libc::EADDRINUSE, "address already used"),
    (libc::EADDRNOTAVAIL, "address not available"),
    (libc::ENETDOWN, "network down"),
    (libc::ENETUNREACH, "network unreachable"),
    (libc::ENETRESET, "network reset"),
    (libc::ECONNABORTED, "connection aborted"),
    (libc::ECONNRESET, "connection reset"),
    (libc::ENOBUFS, "out of buffer space"),
    (libc::EISCONN, "already connected"),
    (libc::ENOTCONN, "not connected"),
    (libc::ESHUTDOWN, "socket shut down"),
    (libc::ETOOMANYREFS, "too many references"),
    (libc::ECONNREFUSED, "connection refused"),
    (libc::ELOOP, "symbolic link loop"),
    (libc::ENAMETOOLONG, "file name too long"),
    (libc::EHOSTDOWN, "host down"),
    (libc::EHOSTUNREACH, "host unreachable"),
    (libc::ENOTEMPTY, "directory not empty"),
    (libc::EUSERS, "too many users"),
    (libc::EDQUOT, "disk quota exceeded"),
    (libc::ESTALE, "stale NFS file handle"),
    (libc::EREMOTE, "too many levels of remote in path"),
    (libc::ENOLCK, "no locks available"),
    (libc::ENOSYS, "system call not available"),
    (libc::ENOSTR, "not a stream device"),
    (libc::ETIME, "timer expired"),
    (libc::ENOSR, "out of stream resources"),
    (libc::ENOMSG, "no message of desired type"),
    (libc::EBADMSG, "bad message type"),
    (libc::EIDRM, "identifier removed"),
    (libc::ENONET, "machine not on network"),
    (libc::ENOLINK, "link severed"),
    (libc::EADV, "advertise error"),
    (libc::ESRMNT, "srmount error"),
    (libc::ECOMM, "communication error"),
    (libc::EPROTO, "protocol error"),
    (libc::EMULTIHOP, "multihop attempted"),
    (libc::EREMCHG, "remote address changed"),
];

/// An I/O error as IndiMail's programs word it (libqmail's `error_str`): `file does not
/// exist` for ENOENT, `unknown error` for an errno it does not name; an error that
/// carries no errno is its own text.
pub fn error_str(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => ERROR_STR
            .iter()
            .find(|(n, _)| *n == code)
            .map_or("unknown error", |(_, text)| text)
            .to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execv_path_never_searches() {
        assert_eq!(
            execv_path(OsStr::new("/bin/true")),
            PathBuf::from("/bin/true")
        );
        assert_eq!(execv_path(OsStr::new("prog")), PathBuf::from("./prog"));
        assert_eq!(execv_path(OsStr::new("a/prog")), PathBuf::from("a/prog"));
    }

    #[test]
    fn error_str_words_errors_as_libqmail() {
        let text = |code| error_str(&io::Error::from_raw_os_error(code));
        assert_eq!(text(libc::ENOENT), "file does not exist");
        assert_eq!(text(libc::EACCES), "access denied");
        assert_eq!(text(libc::EPERM), "permission denied");
        assert_eq!(text(libc::EAGAIN), "temporary failure");
        assert_eq!(text(libc::ECONNREFUSED), "connection refused");
        assert_eq!(text(libc::ENOEXEC), "exec format error");
        assert_eq!(text(libc::EBADF), "file descriptor not open");
        assert_eq!(text(libc::ETIMEDOUT), "timed out");
        assert_eq!(text(libc::EREMCHG), "remote address changed");
        assert_eq!(text(9999), "unknown error");
        assert_eq!(error_str(&io::Error::other("plain")), "plain");
    }

    #[test]
    fn child_env_last_change_wins() {
        let mut env = ChildEnv::new();
        env.set("INDILOOKUP_TEST_X", "1")
            .remove("INDILOOKUP_TEST_X")
            .set("INDILOOKUP_TEST_Y", "2");
        assert_eq!(env.get("INDILOOKUP_TEST_X"), None);
        assert_eq!(env.get("INDILOOKUP_TEST_Y"), Some("2".into()));
    }
}
