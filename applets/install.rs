//! `indilookup --install DIR`: the applet symlinks.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub enum Action {
    Created,
    /// Already our symlink to this executable.
    Kept,
    /// Our symlink to another indilookup executable, or anything with --force.
    Replaced,
    /// Something that is not our symlink; the reason.
    Refused(String),
}

pub struct Line {
    pub link: PathBuf,
    pub target: PathBuf,
    pub action: Action,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, t) = (self.link.display(), self.target.display());
        match &self.action {
            Action::Created => write!(f, "created {l} -> {t}"),
            Action::Kept => write!(f, "kept {l} -> {t}"),
            Action::Replaced => write!(f, "replaced {l} -> {t}"),
            Action::Refused(why) => write!(f, "refused {l}: {why} (use --force to replace it)"),
        }
    }
}

/// Is `target` (a symlink's content, resolved against `dir`) an indilookup
/// executable?
fn is_ours(dir: &Path, target: &Path) -> bool {
    let full = dir.join(target);
    full.file_name().is_some_and(|n| n == "indilookup")
}

/// Create `dir/NAME -> exe` for every name. The link is relative when the
/// executable is in `dir` itself, so that the directory can be moved.
pub fn install(dir: &Path, exe: &Path, names: &[&str], force: bool) -> io::Result<Vec<Line>> {
    let dir_real = dir.canonicalize()?;
    let target: PathBuf = match exe.parent() {
        Some(p) if p == dir_real => PathBuf::from(exe.file_name().unwrap_or_default()),
        _ => exe.to_path_buf(),
    };
    let mut report = Vec::new();
    for name in names {
        let link = dir.join(name);
        let action = match fs::symlink_metadata(&link) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::os::unix::fs::symlink(&target, &link)?;
                Action::Created
            }
            Err(e) => return Err(e),
            Ok(meta) => {
                let current = meta
                    .file_type()
                    .is_symlink()
                    .then(|| fs::read_link(&link))
                    .transpose()?;
                match current {
                    Some(cur) if cur == target => Action::Kept,
                    Some(cur) if force || is_ours(dir, &cur) => {
                        replace(&link, &target)?;
                        Action::Replaced
                    }
                    _ if force => {
                        replace(&link, &target)?;
                        Action::Replaced
                    }
                    Some(cur) => Action::Refused(format!(
                        "it is a symlink to {}, not to indilookup",
                        cur.display()
                    )),
                    None => Action::Refused("it exists and is not a symlink".into()),
                }
            }
        };
        report.push(Line {
            link,
            target: target.clone(),
            action,
        });
    }
    Ok(report)
}

/// Swap in the new symlink atomically: make it under a temporary name, then
/// rename it over the old entry.
fn replace(link: &Path, target: &Path) -> io::Result<()> {
    let mut tmp = link.as_os_str().to_owned();
    tmp.push(format!(".indilookup-tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    if let Err(e) = fs::rename(&tmp, link) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}
