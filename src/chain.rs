//! What an authentication module does with the client's data and other programs: read
//! the data from fd 3, hand it to the next module of the chain on a fresh fd 3, replace
//! itself with a program, or run a helper (POSTAUTH) and wait for it.
//!
//! The environment a program gets is this process's environment with a few changes
//! ([`ChildEnv`]); the process's own environment is never modified, so that nothing
//! here depends on `setenv` and threads.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

/// The descriptor checkpassword and authlib modules read the client's data from.
pub const AUTH_FD: i32 = 3;

/// The most data a module accepts on fd 3 (IndiMail's `AUTH_SIZE`).
pub const AUTH_SIZE: usize = 512;

/// Why the fd-3 data could not be had.
#[derive(Debug)]
pub enum ReadError {
    /// More than [`AUTH_SIZE`] bytes: a misuse (exit 2).
    TooLong,
    /// The read failed (exit 111).
    Io(io::Error),
}

/// Reads `input` to end of file, at most [`AUTH_SIZE`] bytes. Interrupted reads are
/// retried.
pub fn read_auth_data(mut input: impl Read) -> Result<Vec<u8>, ReadError> {
    let mut buf = vec![0u8; AUTH_SIZE + 1];
    let mut len = 0;
    loop {
        match input.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len > AUTH_SIZE {
                    return Err(ReadError::TooLong);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Mark fd 3 close-on-exec once its data is read: the programs vchkpass
/// runs on success (POSTAUTH, a native-mode program) must not inherit the
/// drained pipe. The next module in the chain gets a fresh fd 3 of its own.
/// (authindi leaves it: courier's applications are started as the C module
/// started them.)
pub fn close_input_on_exec(fd: i32) {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
}

/// A raw descriptor as a reader (fd 3, which this process did not open).
pub struct RawFdReader(pub i32);

impl Read for RawFdReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        nix::unistd::read(self.0, buf).map_err(io::Error::from)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    struct Chunks<'a>(Vec<&'a [u8]>);
    impl Read for Chunks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let c = self.0.remove(0);
            if c == b"EINTR" {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let n = c.len().min(buf.len());
            buf[..n].copy_from_slice(&c[..n]);
            Ok(n)
        }
    }

    #[test]
    fn read_limit_is_512() {
        let full = vec![b'a'; 512];
        assert_eq!(read_auth_data(&full[..]).unwrap().len(), 512);
        let over = vec![b'a'; 513];
        assert!(matches!(read_auth_data(&over[..]), Err(ReadError::TooLong)));
        let much = vec![b'a'; 4000];
        assert!(matches!(read_auth_data(&much[..]), Err(ReadError::TooLong)));
        assert_eq!(read_auth_data(&b""[..]).unwrap(), b"");
        // Short reads and EINTR.
        let r = Chunks(vec![b"us", b"EINTR", b"er\0", b"pw\0\0"]);
        assert_eq!(read_auth_data(r).unwrap(), b"user\0pw\0\0");
    }

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
    fn child_env_last_change_wins() {
        let mut env = ChildEnv::new();
        env.set("INDILOOKUP_TEST_X", "1")
            .remove("INDILOOKUP_TEST_X")
            .set("INDILOOKUP_TEST_Y", "2");
        assert_eq!(env.get("INDILOOKUP_TEST_X"), None);
        assert_eq!(env.get("INDILOOKUP_TEST_Y"), Some("2".into()));
    }
}
