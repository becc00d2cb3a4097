//! Re-read the site's configuration when its files change, as HUP does:
//! mcdinfo, host.cntrl, host.mysql, the replicas file, the option file, and
//! the files the local records come from (`Config::site_files`).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;


/// How often the files are looked at.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What identifies a file's content without reading it; `None` = missing.
type Stamp = Option<(u64, u64, i64, i64, u64)>;

fn stamp(path: &PathBuf) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

/// Watch `files` until `stopped()`; when one changes, log which and send this
/// process a HUP (the signal loop reconfigures, and keeps the old settings
/// when the new ones are bad).
pub fn spawn(
    files: Vec<PathBuf>,
    stopped: impl Fn() -> bool + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            let mut seen: Vec<Stamp> = files.iter().map(stamp).collect();
            while !stopped() {
                std::thread::sleep(INTERVAL);
                let now: Vec<Stamp> = files.iter().map(stamp).collect();
                let changed: Vec<String> = files
                    .iter()
                    .zip(seen.iter().zip(&now))
                    .filter(|(_, (a, b))| a != b)
                    .map(|(f, _)| f.display().to_string())
                    .collect();
                seen = now;
                if changed.is_empty() {
                    continue;
                }
                log::info!("InLookup: {} changed; reconfiguring", changed.join(", "));
                let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGHUP);
            }
        })
        .map(drop)
}
