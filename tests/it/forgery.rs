//! Forged answers: a member of the FIFO group watches the reply directory and, for every new
//! reply FIFO, asks the daemon for the record of an account whose password it knows, naming
//! the victim's reply path. The daemon writes that record into the victim's FIFO; a client
//! that took it would accept the attacker's password for the victim's login.
//!
//! Our clients make their reply FIFOs in a private directory under names nobody can guess,
//! and take a record only when it names the login they asked; so not one forged answer is
//! accepted. The attacker runs as another user (nobody, a member of the FIFO group) in a
//! process of its own, as it would on a real system; a second test gives it the names
//! anyway (it runs as root, which may list the private directories), so that every forged
//! record that reaches a client is refused by the client's own check.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::daemon::{request_bytes, Daemon};
use crate::vchkpass::{auth_site, password, Start};

/// The group of the server FIFOs in these tests, and the attacker's user: nobody, nogroup.
const NOBODY: u32 = 65534;
/// Logins of the victim with the attacker's password.
const LOGINS: usize = 40;
/// The victim, and the account the attacker knows the password of (add_auth_users).
const VICTIM: &str = "alice@example.com";
const ATTACKER: &str = "md5u@example.com";
const ATTACKER_PASSWORD: &str = "md5 pw";

/// What the attacker did.
#[derive(Debug, Default)]
struct Attack {
    /// Forged requests sent, one per reply FIFO seen.
    sent: usize,
    /// Directories of the reply directory it could not list.
    unlistable: usize,
}

/// Watch `replydir` (and the directories in it) and, for every FIFO that appears, send a
/// PWD request for `login` naming that FIFO, until `stop`.
fn attack(replydir: &Path, server_fifo: &Path, login: &str, stop: impl Fn() -> bool) -> Attack {
    let mut server = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(server_fifo)
        .expect("the attacker may write the server FIFO");
    let mut seen = HashSet::new();
    let mut denied = HashSet::new();
    let mut done = Attack::default();
    while !stop() {
        let mut dirs = vec![replydir.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    if denied.insert(dir) {
                        done.unlistable += 1;
                    }
                    continue;
                }
                Err(_) => continue,
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() && dir == replydir {
                    dirs.push(path);
                } else if kind.is_fifo() && seen.insert(path.clone()) {
                    let req = request_bytes(3, login, &path, "");
                    if server.write_all(&req).is_ok() {
                        done.sent += 1;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    done
}

/// The attacker as a process of its own, run by `forged_answers_from_a_group_member_...` as
/// nobody. Does nothing when run without its settings.
#[test]
#[ignore = "run by the forgery tests, as another user"]
fn attacker_process() {
    let (Some(replydir), Some(fifo), Some(stop)) = (
        std::env::var_os("FORGERY_REPLYDIR"),
        std::env::var_os("FORGERY_SERVER_FIFO"),
        std::env::var_os("FORGERY_STOP"),
    ) else {
        return;
    };
    let stop = PathBuf::from(stop);
    let done = attack(Path::new(&replydir), Path::new(&fifo), ATTACKER, || {
        stop.exists()
    });
    println!("FORGERY sent {} unlistable {}", done.sent, done.unlistable);
}

/// The victim's logins with the attacker's password: (accepted, temporary failures).
fn logins(site: &crate::harness::Site, d: &Daemon) -> (usize, usize) {
    let (mut accepted, mut temporary) = (0, 0);
    for _ in 0..LOGINS {
        let run = Start::new(
            site,
            "vchkpass",
            &["/bin/false"],
            &password(VICTIM, ATTACKER_PASSWORD, 1),
        )
        .daemon(d)
        .run();
        match run.code {
            Some(0) => accepted += 1,
            Some(111) => {
                temporary += 1;
                assert!(
                    run.stderr.contains("not the login asked"),
                    "a temporary failure for another reason: {run:?}"
                );
            }
            Some(1) => {}
            _ => panic!("vchkpass: {run:?}"),
        }
    }
    (accepted, temporary)
}

/// The site and a daemon whose FIFOs the group nogroup may write, with the clients' reply
/// directory as /tmp is (anybody may make files there, sticky).
fn setup(test: &str) -> Option<(crate::harness::Site, Daemon)> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("{test}: skipped, the attacker is made another user, which needs root");
        return None;
    }
    let site = auth_site();
    // The attacker may reach the daemon's directories (as on a real system).
    fs::set_permissions(site.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let d = Daemon::start(&site, &["-i", "2", "--fifo-group", "nogroup"], &[]);
    fs::set_permissions(&d.replydir, fs::Permissions::from_mode(0o1777)).unwrap();
    // Without an attacker, the wrong password is wrong.
    let run = Start::new(
        &site,
        "vchkpass",
        &["/bin/false"],
        &password(VICTIM, ATTACKER_PASSWORD, 1),
    )
    .daemon(&d)
    .run();
    assert_eq!(run.code, Some(1), "{run:?}");
    Some((site, d))
}

/// A stop flag that is raised when dropped, also when the test fails.
struct StopFile(PathBuf);

impl Drop for StopFile {
    fn drop(&mut self) {
        let _ = fs::write(&self.0, "");
    }
}

/// The attack as a local user would make it: another user, a member of the FIFO group, in a
/// process of its own. Against clients that made their reply FIFOs where it could list them
/// and took any record, it got about half of the logins accepted.
#[test]
fn forged_answers_from_a_group_member_are_never_accepted() {
    let Some((site, d)) = setup("forged_answers_from_a_group_member_are_never_accepted") else {
        return;
    };
    let control = tempfile::tempdir().unwrap();
    let stop = StopFile(control.path().join("stop"));
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "forgery::attacker_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("FORGERY_REPLYDIR", &d.replydir)
    .env("FORGERY_SERVER_FIFO", d.fifo(1))
    .env("FORGERY_STOP", &stop.0)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // SAFETY: only setgroups/setgid/setuid, which are async-signal-safe system calls,
    // between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let nogroup = libc::gid_t::from(NOBODY);
            if libc::setgroups(1, &nogroup) == -1
                || libc::setgid(nogroup) == -1
                || libc::setuid(NOBODY) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let attacker = testkit::Guarded::spawn(&mut cmd).expect("start the attacker");
    // Let it start watching.
    std::thread::sleep(Duration::from_millis(300));
    let (accepted, temporary) = logins(&site, &d);
    drop(stop);
    let out = attacker.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let line = report
        .lines()
        .find_map(|l| l.find("FORGERY ").map(|i| &l[i..]))
        .unwrap_or_else(|| {
            panic!(
                "the attacker did not report: {report}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    eprintln!(
        "attack by a FIFO-group member: {accepted}/{LOGINS} forged answers accepted, \
         {temporary} refused as forged; attacker: {line}"
    );
    assert_eq!(accepted, 0, "forged answers accepted; attacker: {line}");
    assert!(d.stop().success());
}

/// The same attack by one who knows the names of the reply FIFOs (here root, which may list
/// the private directories): every forged record that reaches a client names another
/// account, and is refused by the client.
#[test]
fn forged_answers_with_known_reply_names_are_never_accepted() {
    let Some((site, d)) = setup("forged_answers_with_known_reply_names_are_never_accepted") else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let (replydir, fifo, stop) = (d.replydir.clone(), d.fifo(2), stop.clone());
        std::thread::spawn(move || {
            attack(&replydir, &fifo, ATTACKER, || stop.load(Ordering::Relaxed))
        })
    };
    struct Raise(Arc<AtomicBool>);
    impl Drop for Raise {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let raise = Raise(stop);
    std::thread::sleep(Duration::from_millis(100));
    let (accepted, temporary) = logins(&site, &d);
    drop(raise);
    let done = attacker.join().unwrap();
    eprintln!(
        "attack with the reply names known: {accepted}/{LOGINS} forged answers accepted, \
         {temporary} refused as forged; {} forged requests sent",
        done.sent
    );
    assert!(done.sent > 0, "the attacker saw no reply FIFO");
    assert_eq!(accepted, 0, "forged answers accepted");
    assert!(d.stop().success());
}
