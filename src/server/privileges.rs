//! The user the daemon serves as.
//!
//! Started as root, the daemon makes its FIFOs (and their directories) for the service user
//! and then becomes that user for good: its supplementary groups, plus the group of the FIFOs,
//! then its gid and uid, real, effective and saved alike, so that no way back to root is left
//! and the kernel drops every capability. A root daemon would otherwise be a deputy that opens
//! any FIFO a request names, whoever it belongs to.

use nix::unistd::{Gid, Group, Uid, User};

/// IndiMail's service user, which its packages create and its services run as.
pub const DEFAULT_USER: &str = "indimail";

/// A user to serve as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUser {
    pub name: String,
    pub uid: Uid,
    /// The primary group.
    pub gid: Gid,
}

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "no user {0:?} to run as: started as root, the daemon becomes that user once its \
         FIFOs exist; create it (the packages do) or name another one with --user \
         (INLOOKUP_USER)"
    )]
    NoSuchUser(String),
    #[error("looking up user {name:?}: {errno}")]
    Lookup { name: String, errno: nix::Error },
    #[error("becoming {name} (uid {uid}): {op}: {errno}")]
    Switch {
        name: String,
        uid: Uid,
        op: &'static str,
        errno: nix::Error,
    },
    #[error("becoming {name} (uid {uid}): still able to become root again after the switch")]
    StillRoot { name: String, uid: Uid },
}

impl ServiceUser {
    pub fn lookup(name: &str) -> Result<ServiceUser, PrivilegeError> {
        match User::from_name(name) {
            Ok(Some(u)) => Ok(ServiceUser {
                name: u.name,
                uid: u.uid,
                gid: u.gid,
            }),
            Ok(None) => Err(PrivilegeError::NoSuchUser(name.to_string())),
            Err(errno) => Err(PrivilegeError::Lookup {
                name: name.to_string(),
                errno,
            }),
        }
    }

    /// The user's supplementary groups (from the group database) and `extra`, which the
    /// daemon needs to reach the reply FIFOs of its clients (the group of its FIFOs).
    fn groups(&self, extra: Option<Gid>) -> Result<Vec<Gid>, PrivilegeError> {
        let fail = |op, errno| PrivilegeError::Switch {
            name: self.name.clone(),
            uid: self.uid,
            op,
            errno,
        };
        let cname = std::ffi::CString::new(self.name.as_bytes())
            .map_err(|_| fail("user name", nix::errno::Errno::EINVAL))?;
        let mut groups =
            nix::unistd::getgrouplist(&cname, self.gid).map_err(|e| fail("getgrouplist", e))?;
        if let Some(g) = extra {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        Ok(groups)
    }

    /// Become this user for good (see the module's text). Must run before any thread starts,
    /// so that every thread has the same credentials.
    pub fn become_for_good(&self, extra_group: Option<Gid>) -> Result<(), PrivilegeError> {
        let fail = |op, errno| PrivilegeError::Switch {
            name: self.name.clone(),
            uid: self.uid,
            op,
            errno,
        };
        let groups = self.groups(extra_group)?;
        nix::unistd::setgroups(&groups).map_err(|e| fail("setgroups", e))?;
        nix::unistd::setresgid(self.gid, self.gid, self.gid).map_err(|e| fail("setresgid", e))?;
        nix::unistd::setresuid(self.uid, self.uid, self.uid).map_err(|e| fail("setresuid", e))?;
        let ids = nix::unistd::getresuid().map_err(|e| fail("getresuid", e))?;
        let gids = nix::unistd::getresgid().map_err(|e| fail("getresgid", e))?;
        let same_uid = [ids.real, ids.effective, ids.saved]
            .iter()
            .all(|&u| u == self.uid);
        let same_gid = [gids.real, gids.effective, gids.saved]
            .iter()
            .all(|&g| g == self.gid);
        if !same_uid
            || !same_gid
            || (!self.uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok())
        {
            return Err(PrivilegeError::StillRoot {
                name: self.name.clone(),
                uid: self.uid,
            });
        }
        log::info!(
            "InLookup: running as {} (uid {}, gid {}, groups {})",
            self.name,
            self.uid,
            self.gid,
            groups
                .iter()
                .map(|g| group_name(*g))
                .collect::<Vec<_>>()
                .join(",")
        );
        Ok(())
    }
}

fn group_name(gid: Gid) -> String {
    match Group::from_gid(gid) {
        Ok(Some(g)) => g.name,
        _ => gid.to_string(),
    }
}
