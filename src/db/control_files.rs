//! The lookups answered mostly from qmail/IndiMail control files and qmail's users/cdb:
//! real-domain resolution (whose one table lookup is `aliasdomain`) and the mail route
//! of the local host.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{Database, DbError};
use crate::config::read_first_line;

/// qmail-newu's users/cdb stores a domain under the key `!<domain>-`; the
/// value is NUL-separated `user uid gid dir dash ext`.
const CDB_DIR_FIELD: usize = 3;

pub(super) const SMTP_PORT: u16 = 25;
pub(super) const QMTP_PORT: u16 = 209;

impl Database {
    /// The real domain behind `domain`, as IndiMail's get_real_domain works it
    /// out: REAL_DOMAINS and ALIAS_DOMAINS, then the users/cdb directory (an
    /// alias domain's directory is a symlink to the real one), then the
    /// `aliasdomain` table, then rcpthosts/morercpthosts. `None` when this
    /// site does not know the domain.
    ///
    /// The C code asks either the `aliasdomain` table (when host.cntrl exists)
    /// or rcpthosts (when it does not); a single-database site has both in
    /// reach, and an alias domain is also listed in rcpthosts, so the table is
    /// asked first.
    pub fn real_domain(&self, domain: &str) -> Result<Option<String>, DbError> {
        if !super::plausible_domain(domain.as_bytes()) {
            return Ok(None);
        }
        let domain = domain.to_ascii_lowercase();
        let lc = &self.lookup;
        if lc.real_domains.contains(&domain) || lc.alias_domains.contains(&domain) {
            return Ok(Some(domain));
        }
        if let Some(dir) = self.cdb_domain_dir(&domain)? {
            return dir_real_domain(&dir, &domain);
        }
        if let Some(real) = self.alias_domain_table(&domain)? {
            return Ok(Some(real));
        }
        for file in ["rcpthosts", "morercpthosts"] {
            if listed_in(&self.paths.control_file(file), &domain)? {
                return Ok(Some(domain));
            }
        }
        Ok(None)
    }

    /// The real domain, or the domain itself when it is unknown: what every
    /// lookup searches the user tables with.
    pub(super) fn lookup_domain(&self, domain: &str) -> Result<String, DbError> {
        let real = self
            .real_domain(domain)?
            .unwrap_or_else(|| domain.to_string());
        if real != domain {
            self.saw_alias(&real, domain);
        }
        Ok(real)
    }

    /// The `aliasdomain` table: the central database's on a clustered site
    /// that has one, else the local one.
    fn alias_domain_table(&self, alias: &str) -> Result<Option<String>, DbError> {
        let store = match self.cluster.as_ref().and_then(|c| c.central()) {
            Some(central) => central,
            None => &self.local,
        };
        let rows = store.rows(
            "aliasdomain",
            "SELECT alias, domain FROM aliasdomain WHERE alias = ?",
            (alias,),
        )?;
        for row in &rows {
            let (Some(a), Some(d)) = (
                row.get_opt::<String, _>(0),
                row.get_opt::<Option<String>, _>(1),
            ) else {
                continue;
            };
            if a.is_ok_and(|a| a.eq_ignore_ascii_case(alias)) {
                return Ok(d
                    .ok()
                    .flatten()
                    .map(|d| d.to_ascii_lowercase())
                    .filter(|d| !d.is_empty()));
            }
        }
        Ok(None)
    }

    /// The host that HOST queries name as this site's mail store: the first
    /// line of control/hostip, else this host's address, else `localhost`.
    pub fn mail_host(&self) -> Result<String, DbError> {
        let path = self.paths.control_file("hostip");
        match read_first_line(&path) {
            Ok(Some(line)) if !line.is_empty() => {
                return Ok(String::from_utf8_lossy(&line).trim().to_string())
            }
            Ok(_) => {}
            Err(e) => return Err(DbError::BadData(e.to_string())),
        }
        // Resolved once: a HOST query must not wait for DNS every time.
        Ok(self
            .host_address
            .get_or_init(|| host_address().unwrap_or_else(|| "localhost".to_string()))
            .clone())
    }

    /// Port for mail to `domain`: 209 when routing by QMTP (ROUTES=qmtp, or
    /// control/qmtproutes exists), else 25; an exact `domain:relay:port` line
    /// of that routes file (or a `:relay:port` wildcard line) overrides it.
    pub(super) fn route_port(&self, domain: &str) -> Result<u16, DbError> {
        let qmtp = match self.lookup.routes_qmtp {
            Some(q) => q,
            None => self.paths.control_file("qmtproutes").exists(),
        };
        let (file, default) = if qmtp {
            ("qmtproutes", QMTP_PORT)
        } else {
            ("smtproutes", SMTP_PORT)
        };
        let path = self.paths.control_file(file);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(default),
            Err(source) => return Err(DbError::File { path, source }),
        };
        Ok(routes_port(&text, domain).unwrap_or(default))
    }
}

/// The port of the best line of a smtproutes/qmtproutes file: an exact
/// domain line first, else the wildcard (`:relay[:port]`). `None` when no
/// line matches or the matching line names no port.
pub(crate) fn routes_port(text: &[u8], domain: &str) -> Option<u16> {
    let mut wildcard = None;
    for line in text.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, ':');
        let dom = fields.next().unwrap_or("");
        let _relay = fields.next();
        let port = fields.next().and_then(|p| p.trim().parse::<u16>().ok());
        if dom.is_empty() {
            wildcard.get_or_insert(port);
        } else if dom.eq_ignore_ascii_case(domain) {
            return port.filter(|&p| p != 0);
        }
    }
    wildcard.flatten().filter(|&p| p != 0)
}

/// users/cdb as last opened, and what identified the file then.
pub(super) struct OpenCdb {
    db: Arc<cdb::CDB>,
    stamp: crate::config::FileStamp,
}

impl Database {
    /// The domain directory recorded in users/cdb, or `None` when the domain
    /// (or the file) is not there. The file stays open while it is
    /// unchanged (same inode, size and mtime): qmail-newu replaces it by a
    /// rename, which gives a new inode.
    fn cdb_domain_dir(&self, domain: &str) -> Result<Option<Vec<u8>>, DbError> {
        let path = self.paths.assigndir.join("cdb");
        let file_err = |source| DbError::File {
            path: path.clone(),
            source,
        };
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(file_err(e)),
        };
        let stamp = crate::config::file_stamp(&meta);
        let db = {
            let mut open = self.cdb.lock().unwrap_or_else(|e| e.into_inner());
            match &*open {
                Some(o) if o.stamp == stamp => o.db.clone(),
                _ => {
                    let db = match cdb::CDB::open(&path) {
                        Ok(db) => Arc::new(db),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                        Err(e) => return Err(file_err(e)),
                    };
                    *open = Some(OpenCdb {
                        db: db.clone(),
                        stamp,
                    });
                    db
                }
            }
        };
        cdb_lookup(&db, &path, domain)
    }
}

fn cdb_lookup(db: &cdb::CDB, path: &Path, domain: &str) -> Result<Option<Vec<u8>>, DbError> {
    let file_err = |source| DbError::File {
        path: path.to_path_buf(),
        source,
    };
    let key = format!("!{domain}-");
    match db.get(key.as_bytes()) {
        None => Ok(None),
        Some(Err(e)) => Err(file_err(e)),
        Some(Ok(value)) => Ok(cdb_dir_field(&value).map(<[u8]>::to_vec)),
    }
}

/// The domain directory of a users/cdb value (`user\0uid\0gid\0dir\0...`);
/// `None` when the field is missing or empty.
pub(crate) fn cdb_dir_field(value: &[u8]) -> Option<&[u8]> {
    value
        .split(|&b| b == 0)
        .nth(CDB_DIR_FIELD)
        .filter(|d| !d.is_empty())
}

/// A domain directory that is a symlink belongs to an alias domain: the real
/// domain is the name of the directory it points to.
fn dir_real_domain(dir: &[u8], domain: &str) -> Result<Option<String>, DbError> {
    use std::os::unix::ffi::OsStrExt;
    let path = Path::new(std::ffi::OsStr::from_bytes(dir));
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        // The domain was removed but users/cdb not rebuilt yet.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DbError::File {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !meta.file_type().is_symlink() {
        return Ok(Some(domain.to_string()));
    }
    let target = fs::read_link(path).map_err(|source| DbError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let name = target
        .components()
        .rfind(|c| matches!(c, std::path::Component::Normal(_)))
        .map(|c| c.as_os_str().to_string_lossy().to_ascii_lowercase());
    Ok(name.filter(|n| !n.is_empty()))
}

/// Exact (case-insensitive) match of a line of rcpthosts-style files; `#`
/// comments and leading blanks are ignored. A missing file lists nothing.
fn listed_in(path: &Path, domain: &str) -> Result<bool, DbError> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(DbError::File {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    Ok(lists(&text, domain))
}

/// Does the text of an rcpthosts-style file list `domain`?
pub(crate) fn lists(text: &[u8], domain: &str) -> bool {
    text.split(|&b| b == b'\n').any(|line| {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        !line.starts_with('#') && line.eq_ignore_ascii_case(domain)
    })
}

/// This host's first IPv4 address, from its host name.
fn host_address() -> Option<String> {
    use std::net::ToSocketAddrs;
    let name = nix::unistd::gethostname().ok()?.into_string().ok()?;
    (name.as_str(), 0)
        .to_socket_addrs()
        .ok()?
        .find(|a| a.is_ipv4())
        .map(|a| a.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_exact_then_wildcard() {
        let text =
            b"# comment\nexample.com.au:relay:2525\nexample.com:mx.example.com:587\n:smart:26\n";
        assert_eq!(routes_port(text, "example.com"), Some(587));
        assert_eq!(routes_port(text, "EXAMPLE.com"), Some(587));
        // No prefix matching: example.co is not example.com.
        assert_eq!(routes_port(text, "example.co"), Some(26));
        assert_eq!(routes_port(b"example.com:relay\n", "example.com"), None);
        assert_eq!(routes_port(b"example.com:relay:0\n", "example.com"), None);
        assert_eq!(routes_port(b"", "example.com"), None);
    }

    #[test]
    fn rcpthosts_exact_match() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rcpthosts");
        fs::write(&p, "# x\n  example.com\nexample.org.au\n").unwrap();
        assert!(listed_in(&p, "example.com").unwrap());
        assert!(!listed_in(&p, "example.org").unwrap());
        assert!(!listed_in(&dir.path().join("none"), "example.com").unwrap());
    }

    #[test]
    fn cdb_and_symlinked_alias_domain() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("example.com");
        let alias = dir.path().join("alias.com");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, &alias).unwrap();
        let cdb_path = dir.path().join("cdb");
        let mut w = cdb::CDBWriter::create(cdb_path.to_string_lossy().into_owned()).unwrap();
        for (d, p) in [("example.com", &real), ("alias.com", &alias)] {
            let v = format!("{d}\x00555\x00555\x00{}\x00-\x00\x00", p.display());
            w.add(format!("!{d}-").as_bytes(), v.as_bytes()).unwrap();
        }
        w.finish().unwrap();
        let reader = cdb::CDB::open(&cdb_path).unwrap();
        let dir_of = |d| cdb_lookup(&reader, &cdb_path, d).unwrap();
        assert_eq!(
            dir_real_domain(&dir_of("example.com").unwrap(), "example.com").unwrap(),
            Some("example.com".into())
        );
        assert_eq!(
            dir_real_domain(&dir_of("alias.com").unwrap(), "alias.com").unwrap(),
            Some("example.com".into())
        );
        assert_eq!(dir_of("other.com"), None);
        fs::remove_dir(&real).unwrap();
        fs::remove_file(&alias).unwrap();
        assert_eq!(
            dir_real_domain(&dir_of("example.com").unwrap(), "example.com").unwrap(),
            None
        );
    }
}
