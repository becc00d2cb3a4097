//! The server FIFO of an inquerytest run: `-i F` resolved as the C tool
//! resolves it (INFIFODIR made when missing), a missing FIFO served by a
//! private inlookup for the run, and the `Using INFIFO=` lines of `-v`.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client;
use crate::config::FifoConfig;
use crate::private_server::{self, PrivateError, PrivateServer, SharedPrivateServer};

/// How long a private inlookup may take to open its FIFO.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum InfifoError {
    /// INFIFODIR could not be made: the C tool's `r_mkdir` message.
    #[error("r_mkdir: {}: {source}", .dir.display())]
    Mkdir { dir: PathBuf, source: io::Error },
    #[error("{}: {source}", .path.display())]
    Stat { path: PathBuf, source: io::Error },
    #[error("{}: not a FIFO", .path.display())]
    NotAFifo { path: PathBuf },
    #[error("cannot find this executable: {0}")]
    Exe(io::Error),
    #[error("signals: {0}")]
    Signals(nix::Error),
    /// The private server: its FIFO could not be made, it died, it did not
    /// get ready.
    #[error(transparent)]
    Private(#[from] PrivateError),
}

/// A private inlookup, stopped (and its FIFO removed) when this is dropped
/// or when the process gets INT, TERM, HUP or QUIT.
pub struct Private(SharedPrivateServer);

impl Private {
    /// Has it exited (so that a failed question may be its death)?
    pub fn exited(&self) -> bool {
        matches!(self.0.with(|s| s.exited()), Some(Some(_)))
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The path of `-i F`: F itself if it starts with '/' or '.', else
/// INFIFODIR/F, INFIFODIR being created (0775, given to the indimail user
/// when running as root) if missing, as C does. A relative result gets a
/// `./`, since the client takes INFIFO as a path only then.
pub fn path_of(f: &OsStr, fifo: &FifoConfig) -> Result<PathBuf, InfifoError> {
    let path = if matches!(f.as_bytes().first(), Some(b'/' | b'.')) {
        PathBuf::from(f)
    } else {
        let dir = &fifo.infifodir;
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(crate::fifo::DIR_MODE)
                .create(dir)
                .map_err(|source| InfifoError::Mkdir {
                    dir: dir.clone(),
                    source,
                })?;
        }
        dir.join(f)
    };
    if path.is_absolute() || path.starts_with(".") {
        Ok(path)
    } else {
        Ok(Path::new(".").join(path))
    }
}

/// Make `fifo` ask the FIFO of `-i F`: an existing FIFO as it is, a missing
/// one served by a private inlookup (returned; it runs until dropped).
pub fn use_infifo(
    f: &OsStr,
    fifo: &mut FifoConfig,
    verbose: bool,
) -> Result<Option<Private>, InfifoError> {
    let path = path_of(f, fifo)?;
    let private = match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(start_private(&path, verbose)?),
        Err(source) => return Err(InfifoError::Stat { path, source }),
        Ok(_) => {
            let is_fifo = std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_fifo());
            if !is_fifo {
                return Err(InfifoError::NotAFifo { path });
            }
            None
        }
    };
    fifo.infifo = path.into_os_string();
    Ok(private)
}

/// C prints `Creating FIFO <path>`, makes the FIFO and starts the server;
/// then waits until the server reads it.
fn start_private(path: &Path, verbose: bool) -> Result<Private, InfifoError> {
    eprintln!("Creating FIFO {}", path.display());
    let exe = std::env::current_exe().map_err(InfifoError::Exe)?;
    // Signals are blocked before the daemon exists, so that none can end
    // this process between starting it and being able to stop it.
    let shared = SharedPrivateServer::default();
    private_server::stop_on_signals(shared.clone()).map_err(InfifoError::Signals)?;
    shared.install(|| PrivateServer::start(&exe, path, verbose))?;
    let private = Private(shared);
    private.0.wait_ready(READY_TIMEOUT)?;
    Ok(private)
}

/// What `-v` says about the server FIFOs that `fifo` leads to.
pub fn describe(fifo: &FifoConfig) -> Vec<String> {
    let first = match client::server_fifos(fifo).as_slice() {
        [] => format!(
            "Using INFIFO={} (not found)",
            fifo.instance_path(1).display()
        ),
        [one] => format!("Using INFIFO={}", one.display()),
        many => {
            let base = fifo.server_base();
            format!(
                "Using INFIFO={}.1 .. {}.{} (one picked at random for each query)",
                base.display(),
                base.display(),
                many.len()
            )
        }
    };
    vec![
        first,
        format!("Using FIFOTMPDIR={}", fifo.fifotmpdir.display()),
    ]
}
