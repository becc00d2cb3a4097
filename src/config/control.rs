//! IndiMail's control files: where they are, how their first line is read, and the FIFO
//! timeouts they set.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::env::{nonempty_os, parse_decimal, Env};
use super::{ConfigError, MAX_TIMEOUT_SECS};

/// Compile-time defaults of the packaged IndiMail build.
const DEFAULT_SYSCONFDIR: &str = "/etc/indimail";
const DEFAULT_CONTROLDIR: &str = "/etc/indimail/control";
const DEFAULT_ASSIGNDIR: &str = "/etc/indimail/users";

/// Default for `control/timeoutread` and `control/timeoutwrite`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);
/// Longest first line accepted from a control file or envdir file. Real
/// values are tiny; the cap only keeps a stray huge file from eating memory.
pub(crate) const MAX_LINE: u64 = 1 << 20;

/// Where the control files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `SYSCONFDIR` [/etc/indimail].
    pub sysconfdir: PathBuf,
    /// `CONTROLDIR` [/etc/indimail/control], already resolved against `sysconfdir`.
    pub controldir: PathBuf,
    /// `ASSIGNDIR` [/etc/indimail/users], home of the qmail `users/cdb` and `assign`.
    pub assigndir: PathBuf,
}

impl Paths {
    /// SYSCONFDIR [/etc/indimail], CONTROLDIR [/etc/indimail/control]; a relative CONTROLDIR is SYSCONFDIR/CONTROLDIR.
    /// ASSIGNDIR [/etc/indimail/users].
    ///
    /// Empty values count as unset: an empty SYSCONFDIR would otherwise make
    /// every control file relative to the current directory.
    pub fn from_env(env: &Env) -> Result<Paths, ConfigError> {
        let dir = |name: &str, default: &str| -> PathBuf {
            nonempty_os(env, name).map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        let sysconfdir = dir("SYSCONFDIR", DEFAULT_SYSCONFDIR);
        let controldir = dir("CONTROLDIR", DEFAULT_CONTROLDIR);
        let controldir = if controldir.is_absolute() {
            controldir
        } else {
            sysconfdir.join(controldir)
        };
        let assigndir = dir("ASSIGNDIR", DEFAULT_ASSIGNDIR);
        Ok(Paths {
            sysconfdir,
            controldir,
            assigndir,
        })
    }

    /// `controldir/name`.
    pub fn control_file(&self, name: &str) -> PathBuf {
        self.controldir.join(name)
    }
}

/// Open `path` for reading; `None` if it does not exist. Anything but a
/// regular file is refused. The open is non-blocking so that a FIFO put in
/// place of a control file cannot hang the caller before we notice.
pub(super) fn open_regular(path: &Path) -> Result<Option<File>, ConfigError> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfigError::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| ConfigError::io(path, e))?;
    if meta.is_dir() {
        return Err(ConfigError::file(path, "is a directory, expected a file"));
    }
    if !meta.is_file() {
        return Err(ConfigError::file(path, "is not a regular file"));
    }
    Ok(Some(file))
}

/// The first line of an open file without its newline; `None` if the file
/// is empty (zero bytes), which envdir treats differently from an empty line.
/// `path` only names the file in errors.
pub(crate) fn first_line_of(file: impl Read, path: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
    let mut reader = BufReader::new(file.take(MAX_LINE + 1));
    let mut line = Vec::new();
    let n = reader
        .read_until(b'\n', &mut line)
        .map_err(|e| ConfigError::io(path, e))?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() as u64 > MAX_LINE {
        return Err(ConfigError::file(
            path,
            format!("first line is longer than {MAX_LINE} bytes"),
        ));
    }
    Ok(Some(line))
}

/// What identifies a file's content without reading it: device, inode,
/// modification time and size (a file replaced by a rename gets a new
/// inode; one rewritten in place a new time or size).
pub type FileStamp = (u64, u64, i64, i64, u64);

/// The [`FileStamp`] of a file's metadata.
pub fn file_stamp(m: &std::fs::Metadata) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size())
}

/// Read the first line of a control file (without the newline). Ok(None) when the file does not exist; an error
/// for any other I/O failure (names the path). A file with no newline at all yields its whole content as the line.
///
/// An empty file yields an empty line. Directories, FIFOs and other
/// non-regular files are errors.
pub fn read_first_line(path: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
    match open_regular(path)? {
        None => Ok(None),
        Some(file) => Ok(Some(first_line_of(file, path)?.unwrap_or_default())),
    }
}

/// The FIFO read and write timeouts.
///
/// They come from `control/timeoutread` and `control/timeoutwrite` because
/// C clients and servers use those files and peers must agree. Those same
/// files set qmail-smtpd's SMTP timeouts, which are often far longer than a
/// lookup should wait; the range limit at least keeps a mistake bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long to wait for data to read.
    pub read: Duration,
    /// How long to wait before a write can proceed.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            read: DEFAULT_TIMEOUT,
            write: DEFAULT_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// control/timeoutread and control/timeoutwrite: strict parse of the first line (optional surrounding ASCII
    /// whitespace, then 1..=10 decimal digits, value 1..=86400) — missing file or an empty first line => 4 s;
    /// anything else (garbage, 0, overflow) => ConfigError naming the file. (The C client read these without
    /// NUL-terminating its buffer; we parse strictly.)
    pub fn load(paths: &Paths) -> Result<Timeouts, ConfigError> {
        Ok(Timeouts {
            read: timeout_file(&paths.control_file("timeoutread"))?,
            write: timeout_file(&paths.control_file("timeoutwrite"))?,
        })
    }
}

fn timeout_file(path: &Path) -> Result<Duration, ConfigError> {
    let Some(line) = read_first_line(path)? else {
        return Ok(DEFAULT_TIMEOUT);
    };
    timeout_line(&line).ok_or_else(|| {
        ConfigError::invalid_line(
            path,
            &line,
            format!("a whole number of seconds from 1 to {MAX_TIMEOUT_SECS}"),
        )
    })
}

/// The timeout a timeout file's first line sets: the default for a blank
/// line, `None` for a line that is not a valid number of seconds.
pub(crate) fn timeout_line(line: &[u8]) -> Option<Duration> {
    let digits = line.trim_ascii();
    if digits.is_empty() {
        return Some(DEFAULT_TIMEOUT);
    }
    std::str::from_utf8(digits)
        .ok()
        .filter(|s| s.len() <= 10)
        .and_then(parse_decimal)
        .filter(|n| (1..=MAX_TIMEOUT_SECS).contains(n))
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use std::fs;

    #[test]
    fn paths_defaults() {
        let p = Paths::from_env(&Env::default()).unwrap();
        assert_eq!(p.sysconfdir, Path::new("/etc/indimail"));
        assert_eq!(p.controldir, Path::new("/etc/indimail/control"));
        assert_eq!(p.assigndir, Path::new("/etc/indimail/users"));
        assert_eq!(
            p.control_file("host.mysql"),
            Path::new("/etc/indimail/control/host.mysql")
        );
    }

    #[test]
    fn paths_relative_controldir() {
        let p = Paths::from_env(&env(&[("SYSCONFDIR", "/opt/im"), ("CONTROLDIR", "ctl")])).unwrap();
        assert_eq!(p.controldir, Path::new("/opt/im/ctl"));
        let p = Paths::from_env(&env(&[("SYSCONFDIR", "/opt/im"), ("CONTROLDIR", "/c")])).unwrap();
        assert_eq!(p.controldir, Path::new("/c"));
        let p = Paths::from_env(&env(&[("ASSIGNDIR", "/a")])).unwrap();
        assert_eq!(p.assigndir, Path::new("/a"));
    }

    #[test]
    fn read_first_line_cases() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_first_line(&dir.path().join("missing")).unwrap(), None);
        let f = dir.path().join("f");
        fs::write(&f, "no newline").unwrap();
        assert_eq!(read_first_line(&f).unwrap(), Some(b"no newline".to_vec()));
        fs::write(&f, "one\ntwo\n").unwrap();
        assert_eq!(read_first_line(&f).unwrap(), Some(b"one".to_vec()));
        fs::write(&f, "").unwrap();
        assert_eq!(read_first_line(&f).unwrap(), Some(Vec::new()));
        let err = read_first_line(dir.path()).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }

    #[test]
    fn timeouts_default_when_missing() {
        let (_d, _e, p) = control(&[]);
        let t = Timeouts::load(&p).unwrap();
        assert_eq!(t, Timeouts::default());
        assert_eq!(t.read, Duration::from_secs(4));
        assert_eq!(t.write, Duration::from_secs(4));
    }

    #[test]
    fn timeouts_valid_values() {
        let (_d, _e, p) = control(&[("timeoutread", b" 10 \n"), ("timeoutwrite", b"86400")]);
        let t = Timeouts::load(&p).unwrap();
        assert_eq!(t.read, Duration::from_secs(10));
        assert_eq!(t.write, Duration::from_secs(86400));
    }

    #[test]
    fn timeouts_empty_line_is_default() {
        let (_d, _e, p) = control(&[("timeoutread", b"\n"), ("timeoutwrite", b"")]);
        assert_eq!(Timeouts::load(&p).unwrap(), Timeouts::default());
    }

    #[test]
    fn timeouts_garbage_error_names_file() {
        let (_d, _e, p) = control(&[("timeoutread", b"4s\n")]);
        let err = Timeouts::load(&p).unwrap_err().to_string();
        let path = p.control_file("timeoutread");
        assert!(
            err.starts_with(&format!(
                "{}: first line \"4s\" is not a whole number of seconds",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn timeouts_zero_is_error() {
        let (_d, _e, p) = control(&[("timeoutwrite", b"0\n")]);
        let err = Timeouts::load(&p).unwrap_err().to_string();
        assert!(err.contains("timeoutwrite"), "{err}");
    }

    #[test]
    fn timeouts_huge_is_error() {
        for v in [
            &b"86401"[..],
            b"99999999999999999999999",
            b"4294967296",
            b"00000000004",
        ] {
            let (_d, _e, p) = control(&[("timeoutread", v)]);
            assert!(
                Timeouts::load(&p).is_err(),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
        let (_d, _e, p) = control(&[("timeoutread", b"0000000004")]);
        assert_eq!(Timeouts::load(&p).unwrap().read, Duration::from_secs(4));
    }

    #[test]
    fn fifo_in_place_of_a_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("timeoutread");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_first_line(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = Env::default()
            .load_envdir(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
