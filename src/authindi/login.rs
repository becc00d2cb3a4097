//! What is done after a success: nologin files, lastauth and re-activation, and the
//! environment and argv of the login program.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::db::{gid, Database, DbError};
use crate::protocol::PwStruct;

use super::decision::Account;
use super::maildir::{maildir_usage, make_maildir};

/// A path component from account data (domain, gecos, service), if it is one: not
/// empty, no `/`, not `.` or `..`. C used gecos as it was, so `../x` walked the tree.
fn component(text: &[u8]) -> Option<&Path> {
    let ok = !text.is_empty() && !text.contains(&b'/') && text != b"." && text != b"..";
    ok.then(|| Path::new(std::ffi::OsStr::from_bytes(text)))
}

/// IndiMail's Check_Login: is there a `nologin` file for this service, under the
/// domain's or the gecos's directory of CONTROLDIR?
pub fn login_forbidden(controldir: &Path, service: &[u8], domain: &[u8], gecos: &[u8]) -> bool {
    let Some(service) = component(service) else {
        return false;
    };
    [domain, gecos]
        .iter()
        .filter_map(|d| component(d))
        .any(|dir| {
            controldir
                .join(dir)
                .join(service)
                .join("nologin")
                .symlink_metadata()
                .is_ok()
        })
}

/// The remote address for lastauth: TCP6REMOTEIP, TCPREMOTEIP, the peer of stdin,
/// else `unknown`.
pub fn remote_ip(env: &crate::config::Env) -> String {
    for var in ["TCP6REMOTEIP", "TCPREMOTEIP"] {
        if let Some(v) = env.get(var).filter(|v| !v.is_empty()) {
            return v.to_string_lossy().into_owned();
        }
    }
    peer_of_stdin().unwrap_or_else(|| "unknown".to_string())
}

/// The address of the peer of stdin when it is a TCP socket (tcpserver's or inetd's).
fn peer_of_stdin() -> Option<String> {
    peer_address(0)
}

/// The IPv4 or IPv6 address of the peer of socket `fd`; `None` for anything else.
fn peer_address(fd: std::os::fd::RawFd) -> Option<String> {
    use nix::sys::socket::{getpeername, SockaddrStorage};
    let peer = getpeername::<SockaddrStorage>(fd).ok()?;
    if let Some(sin) = peer.as_sockaddr_in() {
        return Some(sin.ip().to_string());
    }
    peer.as_sockaddr_in6().map(|sin6| sin6.ip().to_string())
}

/// What Login_Tasks leaves for the application's environment and the Maildir choice.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TaskResult {
    /// 0 normally; 2 when logins come too fast (MIN_LOGIN_INTERVAL); otherwise the
    /// non-zero exit status of POSTAUTH or MIGRATEUSER.
    pub status: i32,
    /// `LAST_PASSWORD_CHANGE`, when it was looked up.
    pub last_password_change: Option<i64>,
}

/// The inputs of Login_Tasks.
pub struct LoginTasks<'a> {
    pub account: &'a Account,
    pub service: &'a [u8],
    pub env: &'a crate::config::Env,
    /// The environment POSTAUTH and MIGRATEUSER get besides PWSTRUCT.
    pub child_env: &'a crate::chain::ChildEnv,
    pub now: i64,
}

/// Where the log lines of Login_Tasks go (stderr in the applet).
pub type Warn<'a> = &'a dyn Fn(&str);

/// The lastauth `service` column holds 10 bytes.
fn lastauth_service(service: &[u8]) -> String {
    String::from_utf8_lossy(&service[..service.len().min(10)]).into_owned()
}

impl LoginTasks<'_> {
    /// IndiMail's Login_Tasks after a successful login: Maildir creation, re-activation
    /// of an inactive user, POP-before-SMTP relay, the login-interval check, lastauth,
    /// POSTAUTH and MIGRATEUSER. Database writes go to MySQL directly (`db`), whatever
    /// QUERY_CACHE says; a failing write is logged and the login goes on. Bulletins,
    /// over-quota warnings and the welcome mail are not done.
    pub fn run(&self, db: &Database, warn: Warn<'_>) -> TaskResult {
        let pw = &self.account.pw;
        let user = String::from_utf8_lossy(&pw.name).to_ascii_lowercase();
        let domain = self.account.real_domain.as_str();
        let home = PathBuf::from(OsString::from_vec(pw.dir.clone()));
        let maildir = home.join("Maildir");
        let mut result = TaskResult::default();
        // After one failure to reach the database the other writes are not tried.
        let db_ok = std::cell::Cell::new(true);
        let try_db = |what: &str, r: Result<(), DbError>| {
            if let Err(e) = r {
                warn(&format!("warn: {what}: {e}"));
                if matches!(e, DbError::Connect(_) | DbError::Busy(_)) {
                    db_ok.set(false);
                }
            }
        };

        if !pw.dir.is_empty() && home.symlink_metadata().is_err() {
            if let Err(e) = make_maildir(&home, domain) {
                warn(&format!("warn: vmake_maildir: {}: {e}", home.display()));
            }
        }
        if pw.inactive {
            try_db("activate", db.activate_user(&user, domain).map(|_| ()));
            if db_ok.get() {
                let entry = crate::db::auth::LastAuth {
                    user: &user,
                    domain,
                    service: "ACTI",
                    remote_ip: &remote_ip(self.env),
                    quota: maildir_usage(&maildir),
                    gecos: &String::from_utf8_lossy(&pw.gecos),
                    when: self.now,
                };
                try_db("lastauth", db.set_lastauth(&entry));
            }
        } else if self.env.is_set("NOLASTAUTHLOGGING") || self.env.is_set("NOLASTAUTH") {
            return result;
        }
        let ip = remote_ip(self.env);
        if !self.env.is_set("NORELAY")
            && pw.gid & gid::NO_RELAY == 0
            && self.env.is_set("OPEN_SMTP")
            && db_ok.get()
        {
            let email = format!("{user}@{domain}");
            try_db("open relay", db.open_relay(&email, &ip, self.now));
        }
        let min_interval = self
            .env
            .get("MIN_LOGIN_INTERVAL")
            .and_then(|v| v.to_str()?.trim().parse::<i64>().ok())
            .unwrap_or(0);
        if min_interval > 0 && db_ok.get() {
            match db.last_login_time(&user, domain) {
                Ok(Some(last)) if self.now - last < min_interval => {
                    warn(&format!(
                        "ERR: Login interval {} < {min_interval}, user={user}, domain={domain}",
                        self.now - last
                    ));
                    result.status = 2;
                    return result;
                }
                Ok(_) => {}
                Err(e) => try_db("lastauth", Err(e)),
            }
        }
        if db_ok.get() {
            match db.last_password_change(&user, domain) {
                Ok(t) => result.last_password_change = Some(t.unwrap_or(0)),
                Err(e) => try_db("lastauth", Err(e)),
            }
        }
        if db_ok.get() {
            let entry = crate::db::auth::LastAuth {
                user: &user,
                domain,
                service: &lastauth_service(self.service),
                remote_ip: &ip,
                quota: maildir_usage(&maildir),
                gecos: &String::from_utf8_lossy(&pw.gecos),
                when: self.now,
            };
            try_db("lastauth", db.set_lastauth(&entry));
        }
        let address = self.account.address();
        if let Some(postauth) = self
            .env
            .get("POSTAUTH")
            .filter(|p| crate::chain::is_executable(p))
        {
            let status = self.run_helper(postauth, &address, &home, warn);
            if status != 0 {
                result.status = status;
                return result;
            }
        }
        let flag = self
            .env
            .get("MIGRATEFLAG")
            .map_or_else(|| OsString::from("Qmail.txt"), |f| f.to_owned());
        let migrate = self.env.get("MIGRATEUSER").map_or_else(
            || OsString::from("/usr/local/bin/migrateuser"),
            |m| m.to_owned(),
        );
        if home.join(&flag).symlink_metadata().is_err() && crate::chain::is_executable(&migrate) {
            let status = self.run_helper(&migrate, &address, &home, warn);
            if status != 0 {
                result.status = status;
            }
        }
        result
    }

    /// Runs POSTAUTH or MIGRATEUSER as `program user@domain home` with PWSTRUCT set;
    /// its exit status (-1 when it could not run or was killed).
    fn run_helper(
        &self,
        program: &std::ffi::OsStr,
        address: &str,
        home: &Path,
        warn: Warn<'_>,
    ) -> i32 {
        let mut env = self.child_env.clone();
        env.set(
            "PWSTRUCT",
            pwstruct_without_secret(&self.account.pw, address),
        );
        let status = crate::chain::run(
            program,
            &[std::ffi::OsStr::new(address), home.as_os_str()],
            &env,
        );
        let code = match &status {
            Ok(st) => st.code().unwrap_or(-1),
            Err(_) => -1,
        };
        if code != 0 {
            let how = match status {
                Ok(st) => st.to_string(),
                Err(e) => e.to_string(),
            };
            warn(&format!(
                "Login_Tasks: {} {address} {}: {how}",
                program.to_string_lossy(),
                home.display()
            ));
        }
        code
    }
}

/// The PWSTRUCT record C exported to POSTAUTH and MIGRATEUSER, with `x` in place of
/// the password field: C put the hash there, or the SCRAM value with its clear text.
pub fn pwstruct_without_secret(pw: &PwStruct, address: &str) -> OsString {
    let mut v = format!("{address}:x:{}:{}:", pw.uid, pw.gid).into_bytes();
    v.extend_from_slice(&pw.gecos);
    v.push(b':');
    v.extend_from_slice(&pw.dir);
    v.push(b':');
    v.extend_from_slice(&pw.shell);
    v.push(b':');
    v.push(if pw.inactive { b'1' } else { b'0' });
    OsString::from_vec(v)
}

/// courier's authmod_fail_completely: the login program (`AUTHUSER`) again, with the
/// arguments it stored in `AUTHARGC` / `AUTHARGV0..`; it then says "login failed" and
/// asks again. `None` when those variables are missing or broken.
pub fn login_program(env: &crate::config::Env) -> Option<(OsString, Vec<OsString>)> {
    let argc: usize = env.get("AUTHARGC")?.to_str()?.trim().parse().ok()?;
    if argc == 0 {
        return None;
    }
    let argv = (0..argc)
        .map(|i| env.get(&format!("AUTHARGV{i}")).map(|v| v.to_owned()))
        .collect::<Option<Vec<_>>>()?;
    let user = env.get("AUTHUSER")?.to_owned();
    Some((user, argv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn peer_addresses_of_tcp_sockets() {
        use std::net::{TcpListener, TcpStream};
        use std::os::fd::AsRawFd;
        for local in ["127.0.0.1", "::1"] {
            let Ok(listener) = TcpListener::bind((local, 0)) else {
                eprintln!("{local}: cannot listen, skipped");
                continue;
            };
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            assert_eq!(peer_address(client.as_raw_fd()).as_deref(), Some(local));
            assert_eq!(peer_address(server.as_raw_fd()).as_deref(), Some(local));
        }
        let file = fs::File::open("/dev/null").unwrap();
        assert_eq!(peer_address(file.as_raw_fd()), None);
    }

    #[test]
    fn nologin_files() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path();
        assert!(!login_forbidden(c, b"imap", b"example.com", b"Joe"));
        fs::create_dir_all(c.join("example.com/pop3")).unwrap();
        fs::write(c.join("example.com/pop3/nologin"), "").unwrap();
        assert!(login_forbidden(c, b"pop3", b"example.com", b"Joe"));
        assert!(!login_forbidden(c, b"imap", b"example.com", b"Joe"));
        fs::create_dir_all(c.join("staff/imap")).unwrap();
        fs::write(c.join("staff/imap/nologin"), "").unwrap();
        assert!(login_forbidden(c, b"imap", b"example.com", b"staff"));
        // gecos is no path.
        fs::create_dir_all(c.join("x/imap")).unwrap();
        assert!(!login_forbidden(c, b"imap", b"example.com", b"../staff"));
        assert!(!login_forbidden(c, b"../staff/imap", b"x", b""));
        assert!(!login_forbidden(c, b"imap", b"..", b"."));
    }

    #[test]
    fn pwstruct_has_no_secret() {
        let pw = PwStruct {
            name: b"joe".to_vec(),
            domain: b"example.com".to_vec(),
            passwd: b"$6$salt$hash".to_vec(),
            uid: 1,
            gid: 2,
            gecos: b"Joe".to_vec(),
            dir: b"/home/joe".to_vec(),
            shell: b"NOQUOTA".to_vec(),
            inactive: true,
        };
        assert_eq!(
            pwstruct_without_secret(&pw, "joe@example.com"),
            "joe@example.com:x:1:2:Joe:/home/joe:NOQUOTA:1"
        );
    }

    #[test]
    fn login_program_from_authargv() {
        let env = crate::config::Env::from_pairs([
            ("AUTHUSER", "/usr/sbin/imaplogin"),
            ("AUTHARGC", "3"),
            ("AUTHARGV0", "imaplogin"),
            ("AUTHARGV1", "/x/authindi"),
            ("AUTHARGV2", "/usr/bin/imapd"),
        ]);
        let (user, argv) = login_program(&env).unwrap();
        assert_eq!(user, "/usr/sbin/imaplogin");
        assert_eq!(argv, ["imaplogin", "/x/authindi", "/usr/bin/imapd"]);
        let env = crate::config::Env::from_pairs([
            ("AUTHUSER", "/x"),
            ("AUTHARGC", "2"),
            ("AUTHARGV0", "a"),
        ]);
        assert_eq!(login_program(&env), None);
        let env = crate::config::Env::from_pairs([("AUTHARGC", "0")]);
        assert_eq!(login_program(&env), None);
    }
}
