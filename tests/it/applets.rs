//! The multi-call executable: dispatch, --list, --version, --install.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_indilookup");

fn run(exe: &Path, args: &[&str]) -> Output {
    Command::new(exe).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn list_version_help() {
    let o = run(Path::new(EXE), &["--list"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "inlookup\ninquerytest\nvchkpass\nauthindi\n");
    let o = run(Path::new(EXE), &["--version"]);
    assert_eq!(
        stdout(&o),
        format!("indilookup {}\n", env!("CARGO_PKG_VERSION"))
    );
    let o = run(Path::new(EXE), &["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("--install DIR [--force]"));
    let o = run(Path::new(EXE), &["nosuch"]);
    assert_eq!(o.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown applet"));
    let o = run(Path::new(EXE), &[]);
    assert_eq!(o.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--install DIR [--force]"));
    // The short forms.
    assert_eq!(
        stdout(&run(Path::new(EXE), &["-V"])),
        stdout(&run(Path::new(EXE), &["--version"]))
    );
    assert_eq!(
        stdout(&run(Path::new(EXE), &["-h"])),
        stdout(&run(Path::new(EXE), &["--help"]))
    );
    // Usage errors.
    let o = run(Path::new(EXE), &["--install"]);
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "usage: indilookup --install DIR [--force]\n"
    );
    for args in [
        &["--force"][..],
        &["--list", "inlookup"],
        &["--list", "--install", "/tmp"],
        &["--bogus"],
    ] {
        let o = run(Path::new(EXE), args);
        assert_eq!(o.status.code(), Some(100), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).starts_with("indilookup: "),
            "{args:?}"
        );
    }
    // What follows an applet's name is the applet's.
    let o = run(Path::new(EXE), &["inquerytest", "--list"]);
    assert_eq!(o.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("inquerytest: unknown option --list\n"));
}

#[test]
fn dispatch_on_argv0_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("inlookup");
    std::os::unix::fs::symlink(EXE, &link).unwrap();
    let o = run(&link, &["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("usage: inlookup [-f infifo] [-i instances]"));
    let o = run(&link, &["-x"]);
    assert_eq!(o.status.code(), Some(1), "C exit status for a usage error");
    let o = run(Path::new(EXE), &["inlookup", "-i"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("-i needs a value"));
}

#[test]
fn install_creates_keeps_refuses_and_forces() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exe = fs::canonicalize(EXE).unwrap();
    fs::write(d.join("vchkpass"), "#!/bin/sh\necho the C vchkpass\n").unwrap();
    std::os::unix::fs::symlink("/usr/bin/true", d.join("authindi")).unwrap();
    let o = run(Path::new(EXE), &["--install", d.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "something was refused:\n{out}");
    assert!(
        out.contains(&format!(
            "created {}/inlookup -> {}",
            d.display(),
            exe.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("created {}/inquerytest", d.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "refused {}/vchkpass: it exists and is not a symlink",
            d.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "refused {}/authindi: it is a symlink to /usr/bin/true",
            d.display()
        )),
        "{out}"
    );
    assert_eq!(fs::read_link(d.join("inlookup")).unwrap(), exe);
    assert_eq!(
        fs::read_to_string(d.join("vchkpass")).unwrap(),
        "#!/bin/sh\necho the C vchkpass\n",
        "a refused file is left alone"
    );
    // Run again: ours are kept.
    let o = run(Path::new(EXE), &["--install", d.to_str().unwrap()]);
    assert!(stdout(&o).contains(&format!("kept {}/inlookup", d.display())));
    // A symlink to another indilookup is ours and is replaced.
    fs::remove_file(d.join("inlookup")).unwrap();
    std::os::unix::fs::symlink("/old/place/indilookup", d.join("inlookup")).unwrap();
    // --force replaces everything.
    let o = run(
        Path::new(EXE),
        &["--install", d.to_str().unwrap(), "--force"],
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!("replaced {}/inlookup", d.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("replaced {}/vchkpass", d.display())),
        "{out}"
    );
    for name in ["inlookup", "inquerytest", "vchkpass", "authindi"] {
        assert_eq!(fs::read_link(d.join(name)).unwrap(), exe, "{name}");
    }
    // The installed link runs the applet (inquerytest without arguments:
    // its usage, exit 100).
    let o = run(&d.join("inquerytest"), &[]);
    assert_eq!(o.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&o.stderr).contains("usage: inquerytest"));
    // No leftovers of the atomic replacement.
    assert_eq!(fs::read_dir(d).unwrap().count(), 4);
    // A missing directory is an error.
    let o = run(
        Path::new(EXE),
        &["--install", d.join("nope").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(111));
}

#[test]
fn install_replaces_our_symlink_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink("/old/place/indilookup", d.join("inlookup")).unwrap();
    let o = run(Path::new(EXE), &["--install", d.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains(&format!("replaced {}/inlookup", d.display())));
}
