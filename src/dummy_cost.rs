//! How vchkpass and authindi learn what a wrong password costs on this site, so that
//! the check they make for an unknown user costs the same (spec/auth.md §6).
//!
//! The cost is the crypt scheme and rounds of the site's own hashes
//! ([`HashCost`]), which only the database knows, and a client that asks the daemon
//! has no database connection (nor time for a second query: any extra step taken
//! for unknown users only would show in their timing). So the daemon learns it: at
//! start and after every HUP it counts the settings of every active user's hash
//! (`SELECT LEFT(pw_passwd, 40) FROM indimail`, in the background) and writes the
//! most common one, such as `$6$` or `$6$rounds=656000$`, to the file
//! [`FILE_NAME`] beside its server FIFOs (the directory of INFIFO). vchkpass and
//! authindi read that file once at start, whether they ask the daemon or MySQL,
//! and check an unknown user's password against a hash of that cost.
//!
//! The file is trusted only when it is a regular file that no one but its owner may
//! write, owned by root or by the owner of its directory (the daemon's user): a
//! client that may create files in a shared FIFO directory cannot plant a cheap
//! cost there. Without a usable file (a C daemon, a daemon that has not finished
//! counting, no daemon at all) the cost is that of `PASSWORD_HASH`'s scheme at its
//! default rounds, as before.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::auth::{Census, HashCost};
use crate::config::{Env, FifoConfig};
use crate::db::Database;

/// The file the daemon writes beside its server FIFOs.
pub const FILE_NAME: &str = "hashcost";

/// The most bytes the file may have (one setting and a newline).
const MAX_LEN: u64 = 64;

/// The file of a daemon whose FIFOs are configured by `fifo`: in the directory of
/// the server FIFOs (INFIFODIR, or the directory of an INFIFO path).
pub fn path_for(fifo: &FifoConfig) -> PathBuf {
    let base = fifo.server_base();
    base.parent()
        .unwrap_or_else(|| Path::new("/"))
        .join(FILE_NAME)
}

/// Write `cost` to `dir/FILE_NAME`, replacing the file at once (a new file renamed
/// over it), mode 0644. Not in a directory that every user may write (such as
/// `/tmp`): the clients would not trust the file there.
pub fn publish(dir: &Path, cost: HashCost) -> io::Result<PathBuf> {
    publish_text(dir, FILE_NAME, &format!("{cost}\n"))
}

/// Write `text` to `dir/name` as [`publish`] does: a new file renamed over
/// the old one, mode 0644, never in a directory every user may write.
pub fn publish_text(dir: &Path, name: &str, text: &str) -> io::Result<PathBuf> {
    if fs::metadata(dir)?.mode() & 0o002 != 0 {
        return Err(io::Error::other(
            "the directory is writable by every user; not written",
        ));
    }
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        // The umask may have taken bits away: readable by every client.
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| path)
}

/// The cost in the file at `path`: `Ok(None)` when there is no such file, `Err`
/// with the reason when it is there but not to be trusted or not readable.
pub fn read(path: &Path) -> Result<Option<HashCost>, String> {
    let shown = path.display();
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    let meta = f.metadata().map_err(|e| format!("{shown}: {e}"))?;
    let dir = path.parent().unwrap_or_else(|| Path::new("/"));
    let dir_owner = fs::metadata(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .uid();
    if !meta.file_type().is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("{shown}: writable by others than its owner"));
    }
    if meta.uid() != 0 && meta.uid() != dir_owner {
        return Err(format!(
            "{shown}: owned by uid {}, neither root nor the owner of {}",
            meta.uid(),
            dir.display()
        ));
    }
    if meta.len() > MAX_LEN {
        return Err(format!("{shown}: longer than {MAX_LEN} bytes"));
    }
    let mut text = String::new();
    f.take(MAX_LEN)
        .read_to_string(&mut text)
        .map_err(|e| format!("{shown}: {e}"))?;
    text.trim_end_matches('\n')
        .parse()
        .map(Some)
        .map_err(|e| format!("{shown}: {e}"))
}

/// The cost of an unknown user's check, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DummyCost {
    pub cost: HashCost,
    /// `learnt by inlookup (PATH)` or `PASSWORD_HASH`, for the DEBUG line.
    pub from: String,
    /// Why the daemon's file was not used, when it is there: for the log.
    pub warning: Option<String>,
}

/// The cost a client applet uses: the daemon's file when there is a usable one,
/// else `PASSWORD_HASH`'s scheme.
pub fn for_client(env: &Env, fifo: &FifoConfig) -> DummyCost {
    let path = path_for(fifo);
    let fallback = |warning| DummyCost {
        cost: HashCost::for_password_hash(env.get_str("PASSWORD_HASH").ok().flatten()),
        from: "PASSWORD_HASH".into(),
        warning,
    };
    match read(&path) {
        Ok(Some(cost)) => DummyCost {
            cost,
            from: format!("learnt by inlookup ({})", path.display()),
            warning: None,
        },
        Ok(None) => fallback(None),
        Err(why) => fallback(Some(format!(
            "{why}; unknown users are checked at PASSWORD_HASH's cost"
        ))),
    }
}

/// A line for the log about a census.
pub fn describe(census: &Census) -> String {
    format!(
        "{} of {} crypt hashes are {} ({}{})",
        census.count,
        census.of,
        census.cost,
        census.cost.scheme().name(),
        match census.cost {
            HashCost::Sha256Crypt { rounds } | HashCost::Sha512Crypt { rounds } =>
                format!(", {rounds} rounds"),
            HashCost::Bcrypt { cost } => format!(", cost {cost}"),
            _ => String::new(),
        }
    )
}

/// The daemon's part: count the costs of the users' hashes and publish the most
/// common one in `dir`, on a thread of its own (a large user table takes a while).
pub fn learn_in_background(db: Arc<Database>, dir: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("hashcost".into())
        .spawn(move || match db.hash_cost_census() {
            Ok(Some(census)) => match publish(&dir, census.cost) {
                Ok(path) => log::info!(
                    "InLookup: {}; unknown users' checks will cost the same ({})",
                    describe(&census),
                    path.display()
                ),
                Err(e) => log::warn!(
                    "InLookup: cannot write {}: {e}",
                    dir.join(FILE_NAME).display()
                ),
            },
            Ok(None) => log::info!("InLookup: no user has a crypt hash; {FILE_NAME} not written"),
            Err(e) => log::warn!("InLookup: cannot count the password hash costs: {e}"),
        });
    if let Err(e) = spawned {
        log::warn!("InLookup: hash costs: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(dir: &Path) -> FifoConfig {
        FifoConfig {
            infifo: "infifo".into(),
            infifodir: dir.to_path_buf(),
            fifotmpdir: dir.to_path_buf(),
            fifo_mode: None,
        }
    }

    #[test]
    fn published_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&fifo(dir.path()));
        assert_eq!(path, dir.path().join("hashcost"));
        assert_eq!(read(&path), Ok(None));
        for text in ["$6$rounds=656000$", "$2b$12$", "des", "$y$j9T$"] {
            let cost: HashCost = text.parse().unwrap();
            assert_eq!(publish(dir.path(), cost).unwrap(), path);
            assert_eq!(fs::read_to_string(&path).unwrap(), format!("{text}\n"));
            assert_eq!(read(&path), Ok(Some(cost)));
            let mode = fs::metadata(&path).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
        // No temporary file left.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // Not where everyone may write.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(publish(dir.path(), "$5$".parse().unwrap()).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "$y$j9T$\n");
        // An INFIFO path: the file is in that FIFO's directory.
        let single = FifoConfig {
            infifo: "/some/where/fifo".into(),
            ..fifo(dir.path())
        };
        assert_eq!(path_for(&single), Path::new("/some/where/hashcost"));
    }

    #[test]
    fn a_file_not_to_be_trusted_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let cost: HashCost = "$6$".parse().unwrap();
        publish(dir.path(), cost).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
        let e = read(&path).unwrap_err();
        assert!(e.contains("writable by others"), "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read(&path), Ok(Some(cost)));
        for bad in ["sha512\n", "$6$rounds=1$\n", "", &"$6$".repeat(30)] {
            fs::write(&path, bad).unwrap();
            assert!(read(&path).is_err(), "{bad:?}");
        }
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        assert!(read(&path).is_err(), "a symlink");
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(read(&path).is_err(), "a directory");
    }

    #[test]
    fn clients_fall_back_to_password_hash() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::from_pairs([("PASSWORD_HASH", "3")]);
        let d = for_client(&env, &fifo(dir.path()));
        assert_eq!(d.cost, HashCost::Sha512Crypt { rounds: 5000 });
        assert_eq!((d.from.as_str(), d.warning), ("PASSWORD_HASH", None));
        let learnt: HashCost = "$6$rounds=10000$".parse().unwrap();
        publish(dir.path(), learnt).unwrap();
        let d = for_client(&env, &fifo(dir.path()));
        assert_eq!(d.cost, learnt);
        assert!(d.from.starts_with("learnt by inlookup ("), "{}", d.from);
        fs::write(dir.path().join(FILE_NAME), "nonsense\n").unwrap();
        let d = for_client(
            &Env::from_pairs([("PASSWORD_HASH", "1")]),
            &fifo(dir.path()),
        );
        assert_eq!(d.cost, HashCost::Md5Crypt);
        assert!(d.warning.unwrap().contains("nonsense"));
    }
}
