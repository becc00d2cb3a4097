//! Facts about processes and the files they leave.

use std::fs;
use std::path::{Path, PathBuf};

/// The indilookup executable that cargo built beside the running test,
/// benchmark or example (they are in target/<profile>/deps or
/// target/<profile>/examples, the executable in target/<profile>).
pub fn built_indilookup() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let exe = me.parent()?.parent()?.join("indilookup");
    exe.is_file().then_some(exe)
}

/// [`built_indilookup`], which must be there.
pub fn indilookup_exe() -> PathBuf {
    built_indilookup().expect("indilookup built beside this program (cargo build --bins)")
}

/// The name of this process's user (for the daemon's INLOOKUP_USER).
pub fn own_user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map_or_else(|| "root".to_string(), |u| u.name)
}

/// The FIFOs in a reply directory, also those in the clients' private
/// directories in it (those directories stay, by design: one per user).
/// Nothing where the directory cannot be read.
pub fn reply_fifos(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_fifo() {
            out.push(entry.path());
        } else if kind.is_dir() {
            if let Ok(inner) = fs::read_dir(entry.path()) {
                out.extend(
                    inner
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_fifo()))
                        .map(|e| e.path()),
                );
            }
        }
    }
    out
}

/// Resident memory of a process in KiB (VmRSS), if it is there.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The number of open descriptors of a process, if it is there.
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}
