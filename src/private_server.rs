//! A private inlookup for one client run (`inquerytest -i PATH` with a
//! PATH that does not exist): make the FIFO, start this executable's
//! `inlookup -f PATH` on it, wait until it reads the FIFO, and afterwards
//! stop it and make sure the FIFO is gone, also when the query failed, the
//! daemon died, or the client got INT, TERM or HUP.

use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    /// mkfifo failed; the text is the C tool's `<path>: <strerror>`.
    #[error("{}: {}", .path.display(), .errno.desc())]
    Create { path: PathBuf, errno: nix::Error },
    #[error("cannot start {}: {source}", .exe.display())]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    /// The daemon exited before it was ready.
    #[error("InLookup died")]
    Died(ExitStatus),
    #[error("open: {}: inlookup did not open it within {:?}", .path.display(), .waited)]
    NotReady { path: PathBuf, waited: Duration },
}

/// A running private daemon and the FIFO made for it.
pub struct PrivateServer {
    child: Child,
    fifo: PathBuf,
    /// Device and inode of the FIFO this process made: only that file is
    /// ever removed.
    fifo_id: (u64, u64),
    stopped: bool,
}

impl PrivateServer {
    /// Make the FIFO (mode 0660, as C's FifoCreate; the daemon applies
    /// FIFO_MODE when it takes it over) and start `exe inlookup -f fifo`.
    /// The daemon's log goes to this process's stderr with `verbose`, else
    /// nowhere; its error messages always reach stderr.
    pub fn start(exe: &Path, fifo: &Path, verbose: bool) -> Result<PrivateServer, PrivateError> {
        let create_err = |errno| PrivateError::Create {
            path: fifo.to_path_buf(),
            errno,
        };
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o660))
            .map_err(create_err)?;
        let meta = match std::fs::symlink_metadata(fifo) {
            Ok(m) => m,
            Err(e) => {
                // The FIFO made a moment ago goes too.
                let _ = std::fs::remove_file(fifo);
                return Err(create_err(nix::Error::from_raw(
                    e.raw_os_error().unwrap_or(libc::EIO),
                )));
            }
        };
        let fifo_id = (meta.dev(), meta.ino());
        let mut cmd = Command::new(exe);
        // argv[0] `indilookup` makes the multi-call executable read its
        // first argument as the applet, whatever the file is called.
        cmd.arg0("indilookup").arg("inlookup").arg("-f").arg(fifo);
        // It serves this one client: as this client's user, whoever that is (a root
        // daemon would otherwise become the service user).
        if let Ok(Some(me)) = nix::unistd::User::from_uid(nix::unistd::geteuid()) {
            cmd.arg("--user").arg(me.name);
        }
        if verbose {
            cmd.arg("-v");
        }
        let stdout = if verbose {
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_or_else(|_| Stdio::null(), Stdio::from)
        } else {
            Stdio::null()
        };
        cmd.stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::inherit());
        // Its own process group: a Ctrl-C at the terminal reaches only this
        // process, which then stops the daemon with TERM.
        cmd.process_group(0);
        // SAFETY: prctl(2) is async-signal-safe and only affects the child.
        // The daemon gets TERM (and removes its FIFO) if this process dies
        // without stopping it, even by SIGKILL.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(child) => Ok(PrivateServer {
                child,
                fifo: fifo.to_path_buf(),
                fifo_id,
                stopped: false,
            }),
            Err(source) => {
                remove_if_ours(fifo, fifo_id);
                Err(PrivateError::Spawn {
                    exe: exe.to_path_buf(),
                    source,
                })
            }
        }
    }

    pub fn fifo(&self) -> &Path {
        &self.fifo
    }

    /// Whether the daemon reads the FIFO now: an `O_WRONLY|O_NONBLOCK` open
    /// succeeds only when a reader has it open. An error if it exited.
    pub fn is_ready(&mut self) -> Result<bool, PrivateError> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(PrivateError::Died(status));
        }
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.fifo);
        Ok(match opened {
            Ok(f) => f.metadata().is_ok_and(|m| m.file_type().is_fifo()),
            Err(_) => false,
        })
    }

    /// The exit status, if the daemon has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// TERM, wait (KILL after 5 s), then remove the FIFO if it is still the
    /// one this process made. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pid = Pid::from_raw(self.child.id() as i32);
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match self.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        remove_if_ours(&self.fifo, self.fifo_id);
    }
}

/// Remove `path` if it is still the FIFO with this device and inode.
fn remove_if_ours(path: &Path, id: (u64, u64)) {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_fifo() && (m.dev(), m.ino()) == id {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The private server, shared between the thread that uses it and the
/// thread that stops it on a signal. Whoever takes it first stops it.
#[derive(Clone, Default)]
pub struct SharedPrivateServer(Arc<Mutex<Option<PrivateServer>>>);

impl SharedPrivateServer {
    /// Start the server with `start` while holding the lock, so that a
    /// signal arriving meanwhile waits for it and then stops it.
    pub fn install(
        &self,
        start: impl FnOnce() -> Result<PrivateServer, PrivateError>,
    ) -> Result<(), PrivateError> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(start()?);
        Ok(())
    }

    /// Run `f` on the server unless it was stopped already.
    pub fn with<R>(&self, f: impl FnOnce(&mut PrivateServer) -> R) -> Option<R> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .map(f)
    }

    /// Stop the server and remove its FIFO (once).
    pub fn stop(&self) {
        let taken = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut s) = taken {
            s.stop();
        }
    }

    /// Wait until the daemon reads its FIFO, it dies, or `timeout` passes.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), PrivateError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.with(PrivateServer::is_ready) {
                Some(Ok(true)) => return Ok(()),
                Some(Err(e)) => return Err(e),
                // Stopped by a signal meanwhile: the signal thread ends the process.
                None => std::thread::sleep(Duration::from_secs(1)),
                Some(Ok(false)) => {}
            }
            if Instant::now() >= deadline {
                let path = self.with(|s| s.fifo().to_path_buf()).unwrap_or_default();
                return Err(PrivateError::NotReady {
                    path,
                    waited: timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Stop `server` when this process gets INT, TERM, HUP or QUIT, then die of
/// that signal. Must be called before any other thread is started: it
/// blocks those signals in the calling thread, every thread started later
/// inherits the mask, and one thread waits for them with sigwait (no code
/// runs in a signal handler). A signal that was ignored when the process
/// started (nohup) stays ignored.
pub fn stop_on_signals(server: SharedPrivateServer) -> nix::Result<()> {
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        if !is_ignored(sig) {
            set.add(sig);
        }
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(sig) = set.wait() else { return };
            server.stop();
            // Die of the signal, so that the caller sees how it ended.
            let mut one = SigSet::empty();
            one.add(sig);
            let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&one), None);
            let _ = nix::sys::signal::raise(sig);
            std::process::exit(128 + sig as i32);
        })
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)))?;
    Ok(())
}

fn is_ignored(sig: Signal) -> bool {
    // SAFETY: sigaction(2) with a null new action only reads the current
    // disposition into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig as libc::c_int, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}
