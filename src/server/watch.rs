//! Re-read the site's configuration when its files change, as HUP does:
//! mcdinfo, host.cntrl, host.mysql, the replicas file, the option file, and
//! the files the local records come from (`Config::site_files`).

use std::path::PathBuf;

use crate::config::{file_stamp, FileStamp};
use std::time::Duration;

/// How often the files are looked at.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// A file's stamp; `None` = missing.
type Stamp = Option<FileStamp>;

fn stamp(path: &PathBuf) -> Stamp {
    std::fs::metadata(path).ok().map(|m| file_stamp(&m))
}

/// Watch `files` until `stopped()`; when one changes, log which and send this
/// process a HUP (the signal loop reconfigures, and keeps the old settings
/// when the new ones are bad).
///
/// A change counts once the files have looked the same for one interval: a
/// definition rewritten in place (`cat > mcdinfo`, a copy, an editor without
/// a rename) passes through empty and partial states, and those that parse
/// (an empty file is "not clustered", a file cut after a record drops the
/// records after it) would route real users to "absent" until the next look.
pub fn spawn(
    files: Vec<PathBuf>,
    stopped: impl Fn() -> bool + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            // What the running configuration was read from, and the last look.
            let mut used: Vec<Stamp> = files.iter().map(stamp).collect();
            let mut last = used.clone();
            while !stopped() {
                std::thread::sleep(INTERVAL);
                let now: Vec<Stamp> = files.iter().map(stamp).collect();
                if now != last {
                    // Still being written, perhaps: look again first.
                    last = now;
                    continue;
                }
                let changed: Vec<String> = files
                    .iter()
                    .zip(used.iter().zip(&now))
                    .filter(|(_, (a, b))| a != b)
                    .map(|(f, _)| f.display().to_string())
                    .collect();
                used = now;
                if changed.is_empty() {
                    continue;
                }
                log::info!("InLookup: {} changed; reconfiguring", changed.join(", "));
                let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGHUP);
            }
        })
        .map(drop)
}
