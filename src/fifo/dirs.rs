//! Directories the daemon may trust with its FIFOs and its clients' reply FIFOs.
//!
//! Whoever may rename or replace an entry of a directory decides what a path through it
//! names: a member of a group that may write `INFIFODIR` could put a FIFO of its own in the
//! place of `infifo.1` and read every request, and one that may write the parent of a reply
//! directory could make that directory a symbolic link into somebody else's files. So a
//! directory is trusted only when every directory on the way to it, and every symbolic link
//! followed on the way, belongs to root or to the daemon's own user, and nobody else may write
//! it unless it is sticky (`/tmp`: then nobody renames or removes another's entry).
//!
//! The walk is made with `openat(O_PATH|O_NOFOLLOW)` one component at a time from `/`, and
//! each directory is checked with `fstat` on the descriptor that the next step starts from, so
//! the directory checked is the directory used. Symbolic links are read (`readlinkat`) and
//! followed by the walk itself, after their owner was checked; the result is a descriptor of
//! the directory, for the `*at` calls.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::FileStat;
use nix::unistd::Uid;

use super::{fstat_fd, lstat_at, open_at};

/// As many symbolic links as the kernel follows in one path (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// What is wrong with a directory on the way to a FIFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirProblem {
    /// A component does not exist.
    Missing,
    /// A component is not a directory.
    NotADirectory,
    /// It belongs to a user who is neither root nor one of the trusted users.
    Owner { uid: u32 },
    /// Others than its owner may write it, and it is not sticky.
    Writable { mode: u32 },
    /// A symbolic link on the way belongs to an untrusted user.
    LinkOwner { uid: u32 },
    /// More symbolic links than the kernel would follow.
    TooManyLinks,
    /// The path is not absolute.
    Relative,
    /// A system call failed.
    Io { op: &'static str, errno: Errno },
}

/// A directory that cannot be trusted, and why: the message names it and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DirError {
    /// The directory (or link) that failed, as far as the walk had resolved it.
    pub path: PathBuf,
    pub problem: DirProblem,
}

impl fmt::Display for DirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.problem {
            DirProblem::Missing => write!(f, "{p}: no such directory"),
            DirProblem::NotADirectory => write!(f, "{p}: not a directory"),
            DirProblem::Owner { uid } => write!(
                f,
                "{p}: owned by uid {uid}, which is neither root nor the daemon's user, and \
                 could replace what is in it; give it to root or to the daemon's user \
                 (chown root {p})"
            ),
            DirProblem::Writable { mode } => write!(
                f,
                "{p}: mode {mode:04o} lets others than its owner write it, and it is not \
                 sticky, so they could rename or replace what is in it; make it sticky \
                 (chmod +t {p}) or writable by its owner only (chmod 0750 {p})"
            ),
            DirProblem::LinkOwner { uid } => write!(
                f,
                "{p}: a symbolic link owned by uid {uid}, which is neither root nor the \
                 daemon's user; use the directory it points to"
            ),
            DirProblem::TooManyLinks => write!(f, "{p}: too many levels of symbolic links"),
            DirProblem::Relative => write!(f, "{p}: not an absolute path"),
            DirProblem::Io { op, errno } => write!(f, "{p}: {op}: {}", errno.desc()),
        }
    }
}

/// The users, besides root, whose directories are trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted(Vec<Uid>);

impl Trusted {
    /// Root and `users`.
    pub fn new(users: impl IntoIterator<Item = Uid>) -> Trusted {
        let mut uids = vec![Uid::from_raw(0)];
        for u in users {
            if !uids.contains(&u) {
                uids.push(u);
            }
        }
        Trusted(uids)
    }

    fn owner_ok(&self, uid: u32) -> bool {
        self.0.iter().any(|u| u.as_raw() == uid)
    }
}

/// May a directory with these attributes hold FIFOs that others rely on?
pub(crate) fn check_dir(st: &FileStat, trusted: &Trusted) -> Result<(), DirProblem> {
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(DirProblem::NotADirectory);
    }
    if !trusted.owner_ok(st.st_uid) {
        return Err(DirProblem::Owner { uid: st.st_uid });
    }
    let others_write = st.st_mode & (libc::S_IWGRP | libc::S_IWOTH) != 0;
    if others_write && st.st_mode & libc::S_ISVTX == 0 {
        return Err(DirProblem::Writable {
            mode: st.st_mode & 0o7777,
        });
    }
    Ok(())
}

fn path_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW
}

fn open_root() -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/",
        path_flags() | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: `open` has just returned this descriptor; the `OwnedFd` is its only owner.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Open the directory `dir` for the `*at` calls (an `O_PATH` descriptor, which needs no read
/// permission on it), after checking that it and every directory and symbolic link on the way
/// may be trusted (see the module's text).
pub fn open_trusted_dir(dir: &Path, trusted: &Trusted) -> Result<OwnedFd, DirError> {
    let bytes = dir.as_os_str().as_bytes();
    let fail = |path: &Path, problem| DirError {
        path: path.to_path_buf(),
        problem,
    };
    if bytes.first() != Some(&b'/') {
        return Err(fail(dir, DirProblem::Relative));
    }
    let root = Path::new("/");
    let io = |path: &Path, op, errno| fail(path, DirProblem::Io { op, errno });
    let checked = |path: &Path, fd: BorrowedFd<'_>| -> Result<(), DirError> {
        let st = fstat_fd(fd).map_err(|e| io(path, "fstat", e))?;
        check_dir(&st, trusted).map_err(|p| fail(path, p))
    };
    let mut cur = open_root().map_err(|e| io(root, "open", e))?;
    checked(root, cur.as_fd())?;
    let mut cur_path = PathBuf::from("/");
    let mut pending: VecDeque<Vec<u8>> = bytes.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
    let mut links = 0;
    while let Some(comp) = pending.pop_front() {
        match comp.as_slice() {
            b"" | b"." => continue,
            b".." => {
                // `cur_path` holds no symbolic link, so its parent is the directory's.
                if cur_path != root {
                    cur = open_at(cur.as_fd(), OsStr::new(".."), path_flags())
                        .map_err(|e| io(&cur_path, "open ..", e))?;
                    cur_path.pop();
                }
                continue;
            }
            _ => {}
        }
        let name = OsStr::from_bytes(&comp);
        let here = cur_path.join(name);
        let st = match lstat_at(cur.as_fd(), name) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Err(fail(&here, DirProblem::Missing)),
            Err(e) => return Err(io(&here, "lstat", e)),
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            links += 1;
            if links > MAX_LINKS {
                return Err(fail(&here, DirProblem::TooManyLinks));
            }
            // The directory holding the link is trusted; its owner could still swap it in a
            // sticky directory, so it must be trusted too.
            if !trusted.owner_ok(st.st_uid) {
                return Err(fail(&here, DirProblem::LinkOwner { uid: st.st_uid }));
            }
            let target = nix::fcntl::readlinkat(Some(cur.as_raw_fd()), name)
                .map_err(|e| io(&here, "readlink", e))?;
            let target = target.as_bytes();
            if target.first() == Some(&b'/') {
                cur = open_root().map_err(|e| io(root, "open", e))?;
                cur_path = PathBuf::from("/");
            }
            for c in target.split(|&b| b == b'/').rev() {
                pending.push_front(c.to_vec());
            }
            continue;
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(fail(&here, DirProblem::NotADirectory));
        }
        let next = match open_at(cur.as_fd(), name, path_flags()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(fail(&here, DirProblem::Missing)),
            // Swapped for something else since the lstat.
            Err(Errno::ENOTDIR | Errno::ELOOP) => {
                return Err(fail(&here, DirProblem::NotADirectory))
            }
            Err(e) => return Err(io(&here, "open", e)),
        };
        checked(&here, next.as_fd())?;
        cur = next;
        cur_path = here;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn me() -> Trusted {
        Trusted::new([nix::unistd::geteuid()])
    }

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn own_directories_are_trusted_and_the_descriptor_is_that_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("a/b");
        fs::create_dir_all(&d).unwrap();
        chmod(&d, 0o750);
        let fd = open_trusted_dir(&d, &me()).unwrap();
        let st = fstat_fd(fd.as_fd()).unwrap();
        let want = nix::sys::stat::stat(&d).unwrap();
        assert_eq!((st.st_dev, st.st_ino), (want.st_dev, want.st_ino));
        // /tmp itself: others may write it, but it is sticky.
        open_trusted_dir(Path::new("/tmp"), &me()).unwrap();
    }

    #[test]
    fn a_directory_others_may_write_is_refused_unless_sticky() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("infifodir");
        fs::create_dir(&d).unwrap();
        for mode in [0o770, 0o775, 0o757, 0o2770] {
            chmod(&d, mode);
            let err = open_trusted_dir(&d, &me()).unwrap_err();
            assert_eq!(err.problem, DirProblem::Writable { mode }, "{mode:o}");
            assert_eq!(err.path, d);
            let text = err.to_string();
            assert!(
                text.contains(&d.display().to_string())
                    && text.contains("chmod +t")
                    && text.contains("chmod 0750"),
                "{text}"
            );
        }
        chmod(&d, 0o1770);
        open_trusted_dir(&d, &me()).unwrap();
        chmod(&d, 0o3770);
        open_trusted_dir(&d, &me()).unwrap();
        // Below a directory others may write, nothing is trusted.
        let below = d.join("below");
        fs::create_dir(&below).unwrap();
        chmod(&below, 0o700);
        chmod(&d, 0o777);
        let err = open_trusted_dir(&below, &me()).unwrap_err();
        assert_eq!(err.path, d);
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: giving a directory to another user needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("theirs");
        fs::create_dir(&d).unwrap();
        chmod(&d, 0o755);
        let nobody = Uid::from_raw(65534);
        nix::unistd::chown(&d, Some(nobody), None).unwrap();
        let err = open_trusted_dir(&d, &Trusted::new([])).unwrap_err();
        assert_eq!(err.problem, DirProblem::Owner { uid: 65534 });
        assert!(err.to_string().contains("chown root"), "{err}");
        // Trusted when it is the daemon's user's.
        open_trusted_dir(&d, &Trusted::new([nobody])).unwrap();
        // A link owned by another user is not followed, even to a directory of root's.
        let mine = tmp.path().join("mine");
        fs::create_dir(&mine).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&mine, &link).unwrap();
        nix::unistd::fchownat(
            None,
            &link,
            Some(nobody),
            None,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        open_trusted_dir(&mine, &Trusted::new([])).unwrap();
        let err = open_trusted_dir(&link, &Trusted::new([])).unwrap_err();
        assert_eq!(err.problem, DirProblem::LinkOwner { uid: 65534 });
        assert_eq!(err.path, link);
    }

    #[test]
    fn trusted_links_are_followed_and_their_targets_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        chmod(&real, 0o750);
        std::os::unix::fs::symlink(&real, tmp.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("real", tmp.path().join("rel")).unwrap();
        std::os::unix::fs::symlink("x/../real", tmp.path().join("up")).unwrap();
        fs::create_dir(tmp.path().join("x")).unwrap();
        let want = nix::sys::stat::stat(&real).unwrap();
        for l in ["abs", "rel", "up"] {
            let fd = open_trusted_dir(&tmp.path().join(l), &me()).unwrap();
            let st = fstat_fd(fd.as_fd()).unwrap();
            assert_eq!((st.st_dev, st.st_ino), (want.st_dev, want.st_ino), "{l}");
        }
        // A link to a directory others may write is no way around the check.
        chmod(&real, 0o777);
        let err = open_trusted_dir(&tmp.path().join("rel"), &me()).unwrap_err();
        assert_eq!(err.problem, DirProblem::Writable { mode: 0o777 });
        assert_eq!(err.path, real);
        // Loops end.
        std::os::unix::fs::symlink("loop", tmp.path().join("loop")).unwrap();
        let err = open_trusted_dir(&tmp.path().join("loop"), &me()).unwrap_err();
        assert_eq!(err.problem, DirProblem::TooManyLinks);
    }

    #[test]
    fn missing_relative_and_non_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let err = open_trusted_dir(&tmp.path().join("missing/x"), &me()).unwrap_err();
        assert_eq!(err.problem, DirProblem::Missing);
        assert_eq!(err.path, tmp.path().join("missing"));
        fs::write(tmp.path().join("file"), "x").unwrap();
        let err = open_trusted_dir(&tmp.path().join("file"), &me()).unwrap_err();
        assert_eq!(err.problem, DirProblem::NotADirectory);
        let err = open_trusted_dir(Path::new("relative"), &me()).unwrap_err();
        assert_eq!(err.problem, DirProblem::Relative);
    }
}
