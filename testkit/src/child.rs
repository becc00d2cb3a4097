//! The processes a test starts: with the signal dispositions a process
//! normally starts with, and killed when the test is done with them, also
//! when it fails.

use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::sys::signal::Signal;

/// Make `cmd` start its process as a fresh one would, whatever this process
/// inherited: every signal at its default action (a test run as a background
/// job inherits SIGINT and SIGQUIT ignored, and its signal tests would then
/// prove nothing), and SIGKILL when the thread that started it ends (the
/// test process killed, say), so that nothing outlives its test.
pub fn fresh(cmd: &mut Command) -> &mut Command {
    // SAFETY: signal(2) and prctl(2) are async-signal-safe and change only the
    // child, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for sig in Signal::iterator() {
                if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
                    libc::signal(sig as libc::c_int, libc::SIG_DFL);
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A child process that is killed (SIGKILL) and reaped when this is dropped,
/// unless it was waited for.
pub struct Guarded(Option<Child>);

impl Guarded {
    /// Start `cmd` as [`fresh`] does.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Guarded> {
        fresh(cmd).spawn().map(|c| Guarded(Some(c)))
    }

    /// Send `sig` to the process.
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.id() as i32), sig)
    }

    /// Wait for the process to end and collect its output.
    pub fn wait_with_output(mut self) -> std::io::Result<std::process::Output> {
        self.0.take().expect("a child").wait_with_output()
    }
}

impl Deref for Guarded {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("a child")
    }
}

impl DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a child")
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // A child already waited for is not signalled: std keeps no pid of
        // a reaped child, and wait returns its status at once.
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
