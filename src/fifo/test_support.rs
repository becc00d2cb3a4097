//! What the FIFO tests of both sides need: FIFOs, readers and snapshots of paths.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;

pub(super) fn mkfifo(p: &Path, mode: u32) {
    nix::unistd::mkfifo(p, Mode::from_bits_truncate(mode)).unwrap();
}

/// Open the read end of a FIFO without blocking.
pub(super) fn reader(p: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)
        .unwrap()
}

pub(super) fn is_fifo_path(p: &Path) -> bool {
    fs::symlink_metadata(p)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false)
}

/// Everything about a path that a refused request must not change.
#[derive(Debug, PartialEq)]
pub(super) struct Snapshot {
    mode: u32,
    ino: u64,
    nlink: u64,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
}

pub(super) fn snapshot(p: &Path) -> Option<Snapshot> {
    let md = fs::symlink_metadata(p).ok()?;
    let ft = md.file_type();
    Some(Snapshot {
        mode: md.mode(),
        ino: md.ino(),
        nlink: md.nlink(),
        uid: md.uid(),
        gid: md.gid(),
        size: md.size(),
        mtime: (md.mtime(), md.mtime_nsec()),
        content: ft.is_file().then(|| fs::read(p).unwrap()),
        link: ft.is_symlink().then(|| fs::read_link(p).unwrap()),
    })
}
