//! `indilookup inlookup` for a site: FIFOs in a directory of the fixture's
//! own, every output line kept, killed when dropped.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indilookup::config::{Env, FifoConfig};
use nix::sys::signal::Signal;

use crate::c_client::{c_query_raw, request_bytes};
use crate::child::Guarded;
use crate::harness::Site;
use crate::process::{indilookup_exe, own_user_name};

/// What a daemon runs on: a site's environment, and a directory of its
/// own where the daemon's FIFOs go ([`Site`], or a cluster of servers).
pub trait DaemonSite {
    fn daemon_env(&self) -> &Env;
    fn daemon_base(&self) -> &Path;
}

impl DaemonSite for Site {
    fn daemon_env(&self) -> &Env {
        &self.env
    }
    fn daemon_base(&self) -> &Path {
        self.dir.path()
    }
}

/// Called with every line the daemon prints.
type LineHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Applied to the command before it runs.
type Prepare<'a> = Box<dyn FnOnce(&mut Command) + 'a>;

/// How to start a daemon: `Daemon::launch(site)`, options, then `start`
/// (wait until it serves) or `spawn` (do not wait).
pub struct Launch<'a> {
    site: &'a dyn DaemonSite,
    /// None: the indilookup cargo built.
    exe: Option<PathBuf>,
    base: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: Option<PathBuf>,
    on_line: Option<LineHook>,
    patience: Duration,
    census: bool,
    remove_base: bool,
    prepare: Option<Prepare<'a>>,
}

impl<'a> Launch<'a> {
    /// Run this executable instead of the indilookup cargo built.
    pub fn exe(mut self, path: &Path) -> Self {
        self.exe = Some(path.to_path_buf());
        self
    }

    /// FIFOs in `base/inlookup`, reply FIFOs in `base/inquery` (default:
    /// the site's directory).
    pub fn base(mut self, base: &Path) -> Self {
        self.base = base.to_path_buf();
        self
    }

    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Environment on top of the site's.
    pub fn envs<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env.extend(
            env.into_iter()
                .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())),
        );
        self
    }

    /// Also write every output line to this file (appended).
    pub fn log(mut self, path: &Path) -> Self {
        self.log = Some(path.to_path_buf());
        self
    }

    /// Call `hook` with every output line as it comes.
    pub fn on_line(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_line = Some(Arc::new(hook));
        self
    }

    /// How long `start` and `wait_for` wait (default 10 s).
    pub fn patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// `start` returns once the FIFOs are served, while the daemon may still
    /// be counting its users' hash costs.
    pub fn without_census(mut self) -> Self {
        self.census = false;
        self
    }

    /// Remove the base directory when the daemon is dropped.
    pub fn remove_base(mut self) -> Self {
        self.remove_base = true;
        self
    }

    /// Change the command before it runs (e.g. to start with fewer privileges).
    pub fn prepare(mut self, prepare: impl FnOnce(&mut Command) + 'a) -> Self {
        self.prepare = Some(Box::new(prepare));
        self
    }

    /// Start the daemon and return at once.
    pub fn spawn(self) -> Daemon {
        self.try_spawn()
            .unwrap_or_else(|e| panic!("start indilookup inlookup: {e}"))
    }

    fn try_spawn(self) -> std::io::Result<Daemon> {
        let fifodir = self.base.join("inlookup");
        let replydir = self.base.join("inquery");
        fs::create_dir_all(&replydir)?;
        let exe = self.exe.clone().unwrap_or_else(indilookup_exe);
        let mut cmd = Command::new(exe);
        cmd.arg("inlookup").args(&self.args).env_clear();
        for (k, v) in self.site.daemon_env().iter() {
            cmd.env(k, v);
        }
        cmd.env("INFIFODIR", &fifodir)
            .env("FIFOTMPDIR", &replydir)
            .env("PATH", "/usr/bin:/bin")
            // As the fixture's own user, also when that is root: its files are its own.
            .env("INLOOKUP_USER", own_user_name());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(prepare) = self.prepare {
            prepare(&mut cmd);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Guarded::spawn(&mut cmd)?;
        let log = match &self.log {
            Some(path) => Some(Arc::new(Mutex::new(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ))),
            None => None,
        };
        let lines = Arc::new(Mutex::new(Vec::new()));
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (lines, log, hook) = (lines.clone(), log.clone(), self.on_line.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(log) = &log {
                        let _ = writeln!(log.lock().unwrap(), "{line}");
                    }
                    if let Some(hook) = &hook {
                        hook(&line);
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Ok(Daemon {
            child,
            lines,
            fifodir,
            replydir,
            patience: self.patience,
            remove: self.remove_base.then_some(self.base),
        })
    }

    /// Start the daemon and wait until every FIFO is served and the count
    /// of the users' hash costs is done; panics with its output if not.
    pub fn start(self) -> Daemon {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `start`, with what went wrong (and the daemon's output) as the error.
    pub fn try_start(self) -> Result<Daemon, String> {
        let instances = self
            .args
            .iter()
            .position(|a| a == "-i")
            .and_then(|i| self.args.get(i + 1)?.parse().ok())
            .unwrap_or(1);
        let census = self.census;
        let d = self
            .try_spawn()
            .map_err(|e| format!("cannot start indilookup inlookup: {e}"))?;
        let ready = d.try_wait_for(
            |l| l.contains("Ready with INFIFO=") || l.starts_with("InLookup INFIFO="),
            instances,
            "ready lines",
        )?;
        // Serving INFIFODIR/infifo.N, the daemon counts the users' hash costs
        // at start on a connection of the pool: let it finish, so that a
        // caller that counts connections or descriptors sees a daemon at rest.
        if census && ready[0].contains("Ready with INFIFO=") {
            d.try_wait_for(is_hash_cost_line, 1, "the hash cost census")?;
        }
        Ok(d)
    }
}

/// A running `indilookup inlookup`, killed when dropped.
pub struct Daemon {
    child: Guarded,
    lines: Arc<Mutex<Vec<String>>>,
    pub fifodir: PathBuf,
    pub replydir: PathBuf,
    patience: Duration,
    /// The base directory, where it goes with the daemon.
    remove: Option<PathBuf>,
}

impl Daemon {
    /// A daemon for `site`, to be configured and started.
    pub fn launch(site: &dyn DaemonSite) -> Launch<'_> {
        Launch {
            site,
            exe: None,
            base: site.daemon_base().to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            log: None,
            on_line: None,
            patience: Duration::from_secs(10),
            census: true,
            remove_base: false,
            prepare: None,
        }
    }

    /// Start `indilookup inlookup ARGS` for this site, FIFOs in the site's
    /// directory, and wait until it is ready.
    pub fn start(site: &dyn DaemonSite, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::launch(site)
            .args(args)
            .envs(env.iter().copied())
            .start()
    }

    /// Like `start`, without waiting.
    pub fn spawn(site: &dyn DaemonSite, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::launch(site)
            .args(args)
            .envs(env.iter().copied())
            .spawn()
    }

    /// Every line it has printed so far (stdout and stderr).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The lines it has printed so far and will print, also after it is gone.
    pub fn output(&self) -> Arc<Mutex<Vec<String>>> {
        self.lines.clone()
    }

    /// Wait until `count` output lines match; panics with the output when
    /// they do not come in time.
    pub fn wait_for(&self, pred: impl Fn(&str) -> bool, count: usize, what: &str) -> Vec<String> {
        self.try_wait_for(pred, count, what)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_wait_for(
        &self,
        pred: impl Fn(&str) -> bool,
        count: usize,
        what: &str,
    ) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + self.patience;
        loop {
            let found: Vec<String> = self.lines().into_iter().filter(|l| pred(l)).collect();
            if found.len() >= count {
                return Ok(found);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no {what} from inlookup; output:\n{}",
                    self.lines().join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the process exits (a daemon that refused to start, or
    /// was told to stop); panics when it does not in time.
    pub fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + self.patience;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "inlookup did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its exit status if it has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: Signal) {
        self.child.signal(sig).unwrap();
    }

    /// SIGTERM, and its exit status once it has stopped.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.exit_status()
    }

    /// The FIFO settings of a client of this daemon.
    pub fn fifo_config(&self) -> FifoConfig {
        client_fifo_config(&self.fifodir, &self.replydir)
    }

    pub fn fifo(&self, k: u32) -> PathBuf {
        self.fifodir.join(format!("infifo.{k}"))
    }

    /// The next statistics line that starts with `prefix`, after a USR1.
    pub fn stats_line(&self, prefix: &str) -> String {
        let before = self
            .lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count();
        self.signal(Signal::SIGUSR1);
        self.wait_for(|l| l.starts_with(prefix), before + 1, prefix)
            .pop()
            .unwrap()
    }

    /// A query as a C client sends it, with the reply FIFO named like
    /// inquery()'s: `<pid><time>` (plus `tag` so that concurrent test clients
    /// in one process do not collide).
    pub fn c_query(&self, qtype: u8, email: &str, ip: &str, tag: &str) -> Vec<u8> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let reply = self
            .replydir
            .join(format!("{}{now}{tag}", std::process::id()));
        self.c_query_at(&reply, qtype, email, ip)
    }

    /// A query as a C client sends it, with the reply FIFO `reply`.
    pub fn c_query_at(&self, reply: &Path, qtype: u8, email: &str, ip: &str) -> Vec<u8> {
        c_query_raw(
            &self.fifodir,
            reply,
            &request_bytes(qtype, email, reply, ip),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(base) = &self.remove {
            // The process first (the guard would kill it after this).
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = fs::remove_dir_all(base);
        }
    }
}

/// The FIFO settings of a client of a server with FIFOs `fifodir/infifo.N`,
/// its reply FIFOs in `replydir`.
pub fn client_fifo_config(fifodir: &Path, replydir: &Path) -> FifoConfig {
    FifoConfig {
        infifo: "infifo".into(),
        infifodir: fifodir.to_path_buf(),
        fifotmpdir: replydir.to_path_buf(),
        fifo_mode: None,
    }
}

/// The line that ends the daemon's count of its users' hash costs.
pub fn is_hash_cost_line(l: &str) -> bool {
    l.contains("checks will cost the same")
        || l.contains("no user has a crypt hash")
        || l.contains("cannot count the password hash costs")
        || l.contains("hashcost: ")
}

/// The number after `label` in a statistics line ("Failed writes 0, ...").
pub fn stat(line: &str, label: &str) -> u64 {
    line.split(&format!("{label} "))
        .nth(1)
        .and_then(|s| s.split([',', ' ']).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no {label} in {line:?}"))
}
