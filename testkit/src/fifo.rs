//! FIFOs a test makes for the daemon to find.

use std::fs::{self, File};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A FIFO at `path`, with `mode` less the umask (as a client's mkfifo makes it).
pub fn mkfifo(path: &Path, mode: u32) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(mode))
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

/// The read end of a FIFO, opened without waiting for a writer.
pub fn reader(path: &Path) -> File {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} for reading: {e}", path.display()))
}
