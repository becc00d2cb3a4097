//! The Maildir: its quota string, made when missing, and the mail it holds.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// `MAILDIRQUOTA` from the quota field (pw_shell), `<bytes>S,<count>C`, for every form
/// IndiMail's tools write and its `parse_quota` reads:
///
/// * `NOQUOTA` (size 0), optionally followed by `,<count>`;
/// * a decimal size, optionally followed by `k`/`m`/`g` (either case: KiB, MiB, GiB)
///   or by `S` (bytes, as vsetuserquota and vmoduser store it: `5242880S`);
/// * optionally `,<count>` or `,<count>C` (`5242880S,1000C`);
/// * an empty size or count is 0, as C's strtoll reads it.
///
/// Blanks around the parts are ignored. C's strtoll also took hex and octal (so `010`
/// was 8) and a suffix anywhere in the field, even in the count, multiplied the size;
/// here numbers are decimal and a suffix follows its number. Values past
/// `i64::MAX`, which C refused as well, are `None`, as is anything else.
pub fn maildir_quota(shell: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(shell).ok()?.trim();
    let (size, count) = match text.split_once(',') {
        Some((s, c)) => (s.trim(), Some(c.trim())),
        None => (text, None),
    };
    let count = match count {
        None => 0,
        Some(c) => quota_number(c, |suffix| matches!(suffix, "" | "c" | "C").then_some(1))?,
    };
    let bytes = if size == "NOQUOTA" {
        0
    } else {
        quota_number(size, |suffix| match suffix {
            "" | "s" | "S" => Some(1),
            "k" | "K" => Some(1 << 10),
            "m" | "M" => Some(1 << 20),
            "g" | "G" => Some(1 << 30),
            _ => None,
        })?
    };
    Some(format!("{bytes}S,{count}C"))
}

/// A decimal number (empty is 0) times the factor `unit` gives for what follows it.
fn quota_number(text: &str, unit: impl Fn(&str) -> Option<i64>) -> Option<i64> {
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, suffix) = text.split_at(digits);
    let number: i64 = if number.is_empty() {
        0
    } else {
        number.parse().ok()?
    };
    number.checked_mul(unit(suffix)?)
}

/// Creates a new user's `<home>/Maildir` with cur, new and tmp (mode 0750), the
/// `domain` file and an empty `BulkMail`, as IndiMail's vmake_maildir does at the first
/// login. When run as root the new directories and files are given to the `indimail`
/// user and group. (C also sent the welcome mail; that is not done here.)
pub fn make_maildir(home: &Path, domain: &str) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true).mode(0o750);
    let mut made = Vec::new();
    // The parts of `home` that do not exist yet are ours to hand over.
    let mut missing = Vec::new();
    let mut p = home;
    while !p.as_os_str().is_empty() && p.symlink_metadata().is_err() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    let maildir = home.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        builder.create(maildir.join(sub))?;
    }
    made.extend(missing);
    made.push(maildir.clone());
    for sub in ["cur", "new", "tmp"] {
        made.push(maildir.join(sub));
    }
    fs::write(maildir.join("domain"), format!("{domain}\n"))?;
    made.push(maildir.join("domain"));
    fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(maildir.join("BulkMail"))?;
    made.push(maildir.join("BulkMail"));
    if nix::unistd::geteuid().is_root() {
        let user = nix::unistd::User::from_name("indimail").ok().flatten();
        let group = nix::unistd::Group::from_name("indimail").ok().flatten();
        if let (Some(u), Some(g)) = (user, group) {
            for path in &made {
                nix::unistd::chown(path, Some(u.uid), Some(g.gid))?;
            }
        }
    }
    Ok(())
}

/// The mail a Maildir holds, in bytes: from `maildirsize` (Maildir++), else the sizes
/// of the files in `cur` and `new`. Unreadable parts count as empty.
pub fn maildir_usage(maildir: &Path) -> u64 {
    if let Ok(text) = fs::read(maildir.join("maildirsize")) {
        return text
            .split(|&b| b == b'\n')
            .skip(1)
            .filter_map(|line| {
                let line = std::str::from_utf8(line).ok()?;
                line.split_whitespace().next()?.parse::<i64>().ok()
            })
            .sum::<i64>()
            .max(0) as u64;
    }
    ["cur", "new"]
        .iter()
        .filter_map(|d| fs::read_dir(maildir.join(d)).ok())
        .flatten()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_strings() {
        assert_eq!(maildir_quota(b"NOQUOTA").as_deref(), Some("0S,0C"));
        assert_eq!(maildir_quota(b"NOQUOTA,100").as_deref(), Some("0S,100C"));
        assert_eq!(maildir_quota(b"5242880").as_deref(), Some("5242880S,0C"));
        assert_eq!(maildir_quota(b"10M").as_deref(), Some("10485760S,0C"));
        assert_eq!(maildir_quota(b"2k,50").as_deref(), Some("2048S,50C"));
        assert_eq!(maildir_quota(b"1g").as_deref(), Some("1073741824S,0C"));
        // The forms IndiMail's own tools store.
        assert_eq!(maildir_quota(b"5242880S").as_deref(), Some("5242880S,0C"));
        assert_eq!(
            maildir_quota(b"5242880S,1000C").as_deref(),
            Some("5242880S,1000C")
        );
        assert_eq!(
            maildir_quota(b"5242880,1000").as_deref(),
            Some("5242880S,1000C")
        );
        assert_eq!(maildir_quota(b"NOQUOTA,25C").as_deref(), Some("0S,25C"));
        assert_eq!(maildir_quota(b"0S").as_deref(), Some("0S,0C"));
        // Empty parts are 0, as strtoll reads them.
        assert_eq!(maildir_quota(b"").as_deref(), Some("0S,0C"));
        assert_eq!(maildir_quota(b"100S,").as_deref(), Some("100S,0C"));
        assert_eq!(
            maildir_quota(b"9223372036854775807S").as_deref(),
            Some("9223372036854775807S,0C")
        );
        for bad in [
            &b"5242880SS"[..],
            b"5242880kS",
            b"100S,10CC",
            b"100S,10S",
            b"9223372036854775808",
            b"9223372036854775807k",
            &b"abc"[..],
            b"10x",
            b"-5",
            b"10M,x",
            b"99999999999999999999",
            b"99999999999G",
        ] {
            assert_eq!(maildir_quota(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn maildir_made_and_measured() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("example.com/joe");
        make_maildir(&home, "example.com").unwrap();
        for sub in ["cur", "new", "tmp"] {
            assert!(home.join("Maildir").join(sub).is_dir());
        }
        assert_eq!(
            fs::read_to_string(home.join("Maildir/domain")).unwrap(),
            "example.com\n"
        );
        assert_eq!(
            fs::metadata(home.join("Maildir/BulkMail")).unwrap().len(),
            0
        );
        let md = home.join("Maildir");
        assert_eq!(maildir_usage(&md), 0);
        fs::write(md.join("new/1.x"), vec![0u8; 100]).unwrap();
        fs::write(md.join("cur/2.x"), vec![0u8; 50]).unwrap();
        assert_eq!(maildir_usage(&md), 150);
        fs::write(md.join("maildirsize"), "1000S,10C\n300 2\n-100 -1\n").unwrap();
        assert_eq!(maildir_usage(&md), 200);
    }
}
