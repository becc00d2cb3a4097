//! The server FIFOs: made (or taken over) in a trusted directory, opened, drained without
//! blocking, kept at their pipe capacity, and removed only while they are still this daemon's.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use super::{
    fstat_fd, io_err, is_fifo, kind_name, lstat_at, open_at, open_trusted_dir, same_file,
    DirProblem, FifoError, Trusted,
};

/// Mode given to directories that [`create_server_fifo`] has to create: the owner (the
/// daemon's user) writes them, the group of the FIFOs may reach the FIFOs, nobody else may.
pub const DIR_MODE: u32 = 0o750;

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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use std::fs::{self, File};
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::{Duration, Instant};

    fn perm_bits(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

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
}
