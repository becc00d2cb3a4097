//! The environment: a snapshot of the variables, daemontools envdir, and readers of values.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::Duration;

use super::control::{first_line_of, open_regular};
use super::{ConfigError, MAX_TIMEOUT_SECS};

/// A snapshot of environment variables.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, OsString>,
}

/// Values that can hold a password: the MySQL host lines and the
/// password variables. `Debug` shows them as `<hidden>`.
fn may_hold_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["_host", "passwd", "password", "secret"]
        .iter()
        .any(|part| name.contains(part))
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.vars {
            if may_hold_secret(k) {
                m.entry(k, &"<hidden>");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

impl Env {
    /// Snapshot the process environment. Variables whose names are not UTF-8
    /// are dropped: none of them can be a variable this crate reads.
    pub fn from_process() -> Env {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
            .collect();
        Env { vars }
    }

    /// Build a snapshot from explicit pairs (later pairs win).
    pub fn from_pairs<I, K, V>(pairs: I) -> Env
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<OsString>,
    {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Env { vars }
    }

    /// The raw value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(name).map(OsString::as_os_str)
    }

    /// The value of `name` as text; an error naming the variable if it is not UTF-8.
    pub fn get_str(&self, name: &str) -> Result<Option<&str>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(Some).ok_or_else(|| ConfigError::NotUtf8 {
                var: name.to_string(),
            }),
        }
    }

    /// Whether `name` is set at all, even to an empty value. IndiMail tests
    /// presence for switches such as `QUERY_CACHE` and `DOMAIN_LIMITS`.
    pub fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// Set `name` to `value`, replacing any earlier value.
    pub fn set(&mut self, name: &str, value: impl Into<OsString>) {
        self.vars.insert(name.to_string(), value.into());
    }

    /// Unset `name`.
    pub fn remove(&mut self, name: &str) {
        self.vars.remove(name);
    }

    /// Every variable in name order, e.g. to pass the snapshot on to a child.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &OsStr)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_os_str()))
    }

    /// daemontools envdir semantics: one file per variable (file name = variable name, names with '=' rejected, dot-files skipped);
    /// the value is the first line, with trailing spaces and tabs removed and NUL bytes turned into newlines;
    /// an EMPTY file (0 bytes) unsets the variable. Subdirectories are an error. Values from the dir override this Env.
    ///
    /// The directory is read completely before anything changes, so on error
    /// this `Env` is left as it was. Entries that are neither regular files nor
    /// directories (FIFOs, sockets, devices) are errors too: reading them could
    /// block or have side effects.
    pub fn load_envdir(&mut self, dir: &Path) -> Result<(), ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|e| ConfigError::io(dir, e))?;
        let mut changes: Vec<(String, Option<OsString>)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ConfigError::io(dir, e))?;
            let file_name = entry.file_name();
            let path = entry.path();
            if file_name.as_bytes().starts_with(b".") {
                continue;
            }
            let Some(name) = file_name.to_str() else {
                return Err(ConfigError::file(&path, "file name is not valid UTF-8"));
            };
            if name.contains('=') {
                return Err(ConfigError::file(
                    &path,
                    "a variable name cannot contain '='",
                ));
            }
            let Some(file) = open_regular(&path)? else {
                // Removed while we were reading the directory.
                continue;
            };
            let value = first_line_of(file, &path)?.map(envdir_value);
            changes.push((name.to_string(), value));
        }
        for (name, value) in changes {
            match value {
                Some(v) => self.set(&name, v),
                None => self.remove(&name),
            }
        }
        Ok(())
    }
}

/// The value an envdir file's first line gives its variable: trailing spaces
/// and tabs removed, NUL bytes turned into newlines.
pub(crate) fn envdir_value(mut line: Vec<u8>) -> OsString {
    while matches!(line.last(), Some(b' ' | b'\t')) {
        line.pop();
    }
    for b in &mut line {
        if *b == 0 {
            *b = b'\n';
        }
    }
    OsString::from_vec(line)
}

/// The value of `name` as text, treating an empty value as unset.
pub(super) fn nonempty<'a>(env: &'a Env, name: &str) -> Result<Option<&'a str>, ConfigError> {
    Ok(env.get_str(name)?.filter(|v| !v.is_empty()))
}

/// The raw value of `name`, treating an empty value as unset.
pub(super) fn nonempty_os<'a>(env: &'a Env, name: &str) -> Option<&'a OsStr> {
    env.get(name).filter(|v| !v.is_empty())
}

/// Strict decimal parse: ASCII digits only, no sign, no blanks, no overflow.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// A number of seconds from a variable, within 1..=86400.
pub(super) fn env_seconds(env: &Env, name: &str, default: u64) -> Result<Duration, ConfigError> {
    match nonempty(env, name)? {
        None => Ok(Duration::from_secs(default)),
        Some(v) => match parse_decimal(v) {
            Some(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => Ok(Duration::from_secs(n)),
            _ => Err(ConfigError::invalid_var(
                name,
                v,
                format!("a whole number of seconds from 1 to {MAX_TIMEOUT_SECS}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use std::fs;

    #[test]
    fn env_basic_accessors() {
        let mut e = env(&[("A", "1"), ("EMPTY", "")]);
        assert_eq!(e.get("A"), Some(OsStr::new("1")));
        assert!(e.is_set("EMPTY"));
        assert!(!e.is_set("B"));
        e.set("B", "2");
        e.remove("A");
        assert_eq!(e.get_str("B").unwrap(), Some("2"));
        assert_eq!(e.get_str("A").unwrap(), None);
        assert_eq!(e.iter().count(), 2);
    }

    #[test]
    fn get_str_rejects_non_utf8_naming_variable() {
        let e = Env::from_pairs([("MYSQL_USER", OsString::from_vec(vec![0xff, b'a']))]);
        let err = e.get_str("MYSQL_USER").unwrap_err().to_string();
        assert_eq!(err, "MYSQL_USER is not valid UTF-8");
    }

    #[test]
    fn envdir_value_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ONE"), "value\nsecond line\n").unwrap();
        fs::write(dir.path().join("NONL"), "no newline").unwrap();
        fs::write(dir.path().join("BLANKLINE"), "\nignored").unwrap();
        let mut e = Env::default();
        e.load_envdir(dir.path()).unwrap();
        assert_eq!(e.get_str("ONE").unwrap(), Some("value"));
        assert_eq!(e.get_str("NONL").unwrap(), Some("no newline"));
        // A newline-only file sets the variable to the empty string.
        assert!(e.is_set("BLANKLINE"));
        assert_eq!(e.get_str("BLANKLINE").unwrap(), Some(""));
    }

    #[test]
    fn envdir_trailing_blanks_and_nul() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("TRAIL"), " lead kept \t \t\nx").unwrap();
        fs::write(dir.path().join("NUL"), b"a\0b\0\n").unwrap();
        let mut e = Env::default();
        e.load_envdir(dir.path()).unwrap();
        assert_eq!(e.get_str("TRAIL").unwrap(), Some(" lead kept"));
        assert_eq!(e.get_str("NUL").unwrap(), Some("a\nb\n"));
    }

    #[test]
    fn envdir_empty_file_unsets_and_values_override() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("GONE"), "").unwrap();
        fs::write(dir.path().join("KEEP"), "new\n").unwrap();
        fs::write(dir.path().join(".hidden"), "x\n").unwrap();
        let mut e = env(&[("GONE", "old"), ("KEEP", "old"), ("OTHER", "o")]);
        e.load_envdir(dir.path()).unwrap();
        assert!(!e.is_set("GONE"));
        assert_eq!(e.get_str("KEEP").unwrap(), Some("new"));
        assert_eq!(e.get_str("OTHER").unwrap(), Some("o"));
        assert!(!e.is_set(".hidden"));
    }

    #[test]
    fn envdir_subdirectory_is_error_and_env_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("SUB")).unwrap();
        fs::write(dir.path().join("A"), "1\n").unwrap();
        let mut e = env(&[("A", "0")]);
        let err = e.load_envdir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("SUB"), "{err}");
        assert!(err.contains("directory"), "{err}");
        assert_eq!(e.get_str("A").unwrap(), Some("0"));
    }

    #[test]
    fn envdir_name_with_equals_is_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("A=B"), "1\n").unwrap();
        let err = Env::default().load_envdir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("A=B"), "{err}");
    }

    #[test]
    fn envdir_missing_dir_is_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Env::default().load_envdir(&missing).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn env_debug_hides_passwords() {
        let env = Env::from_pairs([
            ("MYSQL_HOST", "db:indimail:s3cret-one"),
            ("MYSQL_PASSWD", "s3cret-two"),
            ("CNTRL_HOST", "c:u:s3cret-three"),
            ("INFIFO", "infifo"),
        ]);
        let shown = format!("{env:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("infifo"), "{shown}");
    }
}
