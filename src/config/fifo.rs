//! Where the server FIFOs and the clients' reply FIFOs live, and their mode.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::env::{nonempty, nonempty_os, Env};
use super::ConfigError;

const DEFAULT_INFIFO: &str = "infifo";
const DEFAULT_INFIFODIR: &str = "/run/indimail/inlookup";
const DEFAULT_FIFOTMPDIR: &str = "/tmp";
const DEFAULT_INDIMAILDIR: &str = "/var/indimail";

/// Where the server FIFOs and the client reply FIFOs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoConfig {
    /// `INFIFO` [infifo]: a name inside `infifodir`, or a path if it starts with '/' or '.'.
    pub infifo: OsString,
    /// INFIFODIR, or its older name FIFODIR (INFIFODIR wins) [/run/indimail/inlookup];
    /// a relative value is INDIMAILDIR/value (with the '/', unlike C) where INDIMAILDIR [/var/indimail]
    pub infifodir: PathBuf,
    /// `FIFOTMPDIR` [/tmp]: where clients create their reply FIFOs.
    pub fifotmpdir: PathBuf,
    /// `FIFO_MODE`, octal, <= 0o777: permissions of the server FIFOs, new or taken over.
    pub fifo_mode: Option<u32>,
}

impl FifoConfig {
    /// Read INFIFO, INFIFODIR/FIFODIR, INDIMAILDIR, FIFOTMPDIR and FIFO_MODE.
    ///
    /// An empty FIFO_MODE counts as unset; C would have turned it into mode 0.
    pub fn load(env: &Env) -> Result<FifoConfig, ConfigError> {
        let infifo =
            nonempty_os(env, "INFIFO").map_or_else(|| DEFAULT_INFIFO.into(), OsStr::to_os_string);
        let dir = nonempty_os(env, "INFIFODIR")
            .or_else(|| nonempty_os(env, "FIFODIR"))
            .map_or_else(|| PathBuf::from(DEFAULT_INFIFODIR), PathBuf::from);
        let infifodir = if dir.is_absolute() {
            dir
        } else {
            nonempty_os(env, "INDIMAILDIR")
                .map_or_else(|| PathBuf::from(DEFAULT_INDIMAILDIR), PathBuf::from)
                .join(dir)
        };
        let fifotmpdir = nonempty_os(env, "FIFOTMPDIR")
            .map_or_else(|| PathBuf::from(DEFAULT_FIFOTMPDIR), PathBuf::from);
        let fifo_mode =
            match nonempty(env, "FIFO_MODE")? {
                None => None,
                Some(v) => Some(parse_mode(v).ok_or_else(|| {
                    ConfigError::invalid_var("FIFO_MODE", v, "an octal file mode")
                })?),
            };
        Ok(FifoConfig {
            infifo,
            infifodir,
            fifotmpdir,
            fifo_mode,
        })
    }

    /// INFIFO starts with '/' or '.', so it names the FIFO itself.
    pub fn infifo_is_path(&self) -> bool {
        matches!(self.infifo.as_bytes().first(), Some(b'/' | b'.'))
    }

    /// The server FIFO base path: INFIFO verbatim if it starts with '/' or '.', else INFIFODIR/INFIFO.
    pub fn server_base(&self) -> PathBuf {
        if self.infifo_is_path() {
            PathBuf::from(&self.infifo)
        } else {
            self.infifodir.join(&self.infifo)
        }
    }

    /// base + ".k" (e.g. /run/indimail/inlookup/infifo.3)
    pub fn instance_path(&self, k: u32) -> PathBuf {
        let mut path = self.server_base().into_os_string();
        path.push(format!(".{k}"));
        PathBuf::from(path)
    }
}

/// Octal digits only (leading zeros allowed), at most 0o777.
pub(crate) fn parse_mode(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    s.bytes()
        .try_fold(0u32, |acc, b| {
            acc.checked_mul(8)?.checked_add(u32::from(b - b'0'))
        })
        // Permission bits only: setuid/setgid/sticky mean nothing on a FIFO.
        .filter(|m| *m <= 0o777)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use std::path::Path;

    #[test]
    fn fifo_defaults() {
        let f = FifoConfig::load(&Env::default()).unwrap();
        assert_eq!(f.infifo, "infifo");
        assert_eq!(f.infifodir, Path::new("/run/indimail/inlookup"));
        assert_eq!(f.fifotmpdir, Path::new("/tmp"));
        assert_eq!(f.fifo_mode, None);
        assert!(!f.infifo_is_path());
        assert_eq!(f.server_base(), Path::new("/run/indimail/inlookup/infifo"));
    }

    #[test]
    fn fifo_fifodir_fallback_and_infifodir_precedence() {
        let f = FifoConfig::load(&env(&[("FIFODIR", "/old")])).unwrap();
        assert_eq!(f.infifodir, Path::new("/old"));
        let f = FifoConfig::load(&env(&[("FIFODIR", "/old"), ("INFIFODIR", "/new")])).unwrap();
        assert_eq!(f.infifodir, Path::new("/new"));
    }

    #[test]
    fn fifo_relative_infifodir() {
        let f = FifoConfig::load(&env(&[("INFIFODIR", "inlookup")])).unwrap();
        assert_eq!(f.infifodir, Path::new("/var/indimail/inlookup"));
        let f =
            FifoConfig::load(&env(&[("INFIFODIR", "fifo"), ("INDIMAILDIR", "/home/im")])).unwrap();
        assert_eq!(f.infifodir, Path::new("/home/im/fifo"));
    }

    #[test]
    fn fifo_absolute_and_dot_infifo() {
        let f = FifoConfig::load(&env(&[("INFIFO", "/x/y"), ("INFIFODIR", "/ignored")])).unwrap();
        assert!(f.infifo_is_path());
        assert_eq!(f.server_base(), Path::new("/x/y"));
        let f = FifoConfig::load(&env(&[("INFIFO", "./here")])).unwrap();
        assert!(f.infifo_is_path());
        assert_eq!(f.server_base(), Path::new("./here"));
        let f = FifoConfig::load(&env(&[("INFIFO", "other"), ("FIFOTMPDIR", "/var/tmp")])).unwrap();
        assert!(!f.infifo_is_path());
        assert_eq!(f.server_base(), Path::new("/run/indimail/inlookup/other"));
        assert_eq!(f.fifotmpdir, Path::new("/var/tmp"));
    }

    #[test]
    fn fifo_instance_path() {
        let f = FifoConfig::load(&Env::default()).unwrap();
        assert_eq!(
            f.instance_path(3),
            Path::new("/run/indimail/inlookup/infifo.3")
        );
        let f = FifoConfig::load(&env(&[("INFIFO", "/x/y")])).unwrap();
        assert_eq!(f.instance_path(12), Path::new("/x/y.12"));
    }

    #[test]
    fn fifo_mode_parsing() {
        let f = FifoConfig::load(&env(&[("FIFO_MODE", "0660")])).unwrap();
        assert_eq!(f.fifo_mode, Some(0o660));
        let f = FifoConfig::load(&env(&[("FIFO_MODE", "777")])).unwrap();
        assert_eq!(f.fifo_mode, Some(0o777));
        let f = FifoConfig::load(&env(&[("FIFO_MODE", "")])).unwrap();
        assert_eq!(f.fifo_mode, None);
        let err = FifoConfig::load(&env(&[("FIFO_MODE", "0999")]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "FIFO_MODE: \"0999\" is not an octal file mode");
        for bad in [
            "10000",
            "7777",
            "2660",
            "rw",
            " 660",
            "0o660",
            "77777777777777777",
        ] {
            assert!(
                FifoConfig::load(&env(&[("FIFO_MODE", bad)])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn fifo_mode_is_permission_bits_only() {
        let env = Env::from_pairs([("FIFO_MODE", "2660")]);
        assert!(FifoConfig::load(&env).is_err());
        let env = Env::from_pairs([("FIFO_MODE", "0777")]);
        assert_eq!(FifoConfig::load(&env).unwrap().fifo_mode, Some(0o777));
    }
}
