//! `indilookup`: one executable, several applets, chosen by the name it was
//! started under (argv[0]) or by its first argument.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod authindi;
mod inlookup;
mod inquerytest;
mod install;
mod vchkpass;

/// An applet's entry point: the arguments after the applet name; returns
/// the exit status.
type Main = fn(Vec<OsString>) -> u8;

struct Applet {
    name: &'static str,
    about: &'static str,
    main: Main,
}

const APPLETS: &[Applet] = &[
    Applet {
        name: "inlookup",
        about: "the lookup daemon: answers user, relay, password, host, alias, limit and domain queries over FIFOs",
        main: inlookup::main,
    },
    Applet {
        name: "inquerytest",
        about: "ask inlookup (or MySQL) and print the answers; JSON, load and cache-flush modes",
        main: inquerytest::main,
    },
    Applet {
        name: "vchkpass",
        about: "checkpassword-style SMTP AUTH module (fd 3)",
        main: vchkpass::main,
    },
    Applet {
        name: "authindi",
        about: "courier-imap authentication module",
        main: authindi::main,
    },
];

/// Exit status of IndiMail tools for a temporary or system failure.
pub const EXIT_TEMPFAIL: u8 = 111;

fn find(name: &str) -> Option<&'static Applet> {
    APPLETS.iter().find(|a| a.name == name)
}

fn usage() -> String {
    let mut s = format!(
        "indilookup {}: IndiMail lookup service (inlookup, inquerytest, vchkpass, authindi)\n\n\
         usage: indilookup APPLET [ARGS...]\n\
         \x20      APPLET [ARGS...]            (through a symlink named after the applet)\n\
         \x20      indilookup --list\n\
         \x20      indilookup --install DIR [--force]\n\
         \x20      indilookup --version | --help\n\napplets:\n",
        env!("CARGO_PKG_VERSION")
    );
    for a in APPLETS {
        s.push_str(&format!("  {:<12} {}\n", a.name, a.about));
    }
    s.push_str(
        "\n--install DIR creates the symlinks DIR/APPLET -> this executable. It replaces\n\
         only symlinks that already point to an indilookup executable, unless --force.\n",
    );
    s
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = if args.is_empty() {
        OsString::from("indilookup")
    } else {
        args.remove(0)
    };
    let base = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(applet) = find(&base) {
        return ExitCode::from((applet.main)(args));
    }
    ExitCode::from(multicall(args))
}

/// Started as `indilookup`: the first argument is an applet or an option.
fn multicall(mut args: Vec<OsString>) -> u8 {
    let Some(first) = args.first().map(|a| a.to_string_lossy().into_owned()) else {
        eprint!("{}", usage());
        return 100;
    };
    match first.as_str() {
        "--help" | "-h" => {
            print!("{}", usage());
            0
        }
        "--version" | "-V" => {
            println!("indilookup {}", env!("CARGO_PKG_VERSION"));
            0
        }
        "--list" => {
            for a in APPLETS {
                println!("{}", a.name);
            }
            0
        }
        "--install" => {
            args.remove(0);
            install_cmd(args)
        }
        name => match find(name) {
            Some(applet) => {
                args.remove(0);
                (applet.main)(args)
            }
            None => {
                eprintln!("indilookup: unknown applet or option '{name}' (try --list or --help)");
                100
            }
        },
    }
}

fn install_cmd(args: Vec<OsString>) -> u8 {
    let mut dir = None;
    let mut force = false;
    for a in args {
        if a == "--force" {
            force = true;
        } else if dir.is_none() && !a.to_string_lossy().starts_with('-') {
            dir = Some(PathBuf::from(a));
        } else {
            eprintln!(
                "indilookup --install: unexpected argument '{}'",
                a.to_string_lossy()
            );
            return 100;
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: indilookup --install DIR [--force]");
        return 100;
    };
    let exe = match std::env::current_exe().and_then(|p| p.canonicalize()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("indilookup --install: cannot find this executable: {e}");
            return EXIT_TEMPFAIL;
        }
    };
    let names: Vec<&str> = APPLETS.iter().map(|a| a.name).collect();
    match install::install(&dir, &exe, &names, force) {
        Ok(report) => {
            let mut refused = false;
            for line in &report {
                refused |= matches!(line.action, install::Action::Refused(_));
                println!("{line}");
            }
            u8::from(refused)
        }
        Err(e) => {
            eprintln!("indilookup --install: {e}");
            EXIT_TEMPFAIL
        }
    }
}
