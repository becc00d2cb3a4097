//! What the configuration tests of every concern need: environments and control directories.

use std::fs;

use tempfile::TempDir;

use super::{Env, MysqlConfig, Paths};

pub(super) fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs.iter().map(|(k, v)| (*k, *v)))
}

/// A temporary CONTROLDIR and the Env/Paths pointing at it.
pub(super) fn control(files: &[(&str, &[u8])]) -> (TempDir, Env, Paths) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        fs::write(dir.path().join(name), content).unwrap();
    }
    let e = Env::from_pairs([("CONTROLDIR", dir.path().as_os_str())]);
    let p = Paths::from_env(&e).unwrap();
    (dir, e, p)
}

pub(super) fn host_defaults() -> MysqlConfig {
    MysqlConfig::load(&Env::default(), &control(&[]).2).unwrap()
}
