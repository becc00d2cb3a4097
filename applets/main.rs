//! `indilookup`: one executable, several applets, chosen by the name it was
//! started under (argv[0]) or by its first argument.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::ExitCode;

use indilookup::cli::{multicall, Parsed};
use indilookup::exit;

mod authindi;
mod inlookup;
mod inquerytest;
mod install;
mod vchkpass;

/// An applet's entry point: the arguments after the applet name; how it
/// ended.
type Main = fn(Vec<OsString>) -> exit::Result;

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

fn find(name: &OsStr) -> Option<&'static Applet> {
    APPLETS.iter().find(|a| name == a.name)
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = if args.is_empty() {
        OsString::from("indilookup")
    } else {
        args.remove(0)
    };
    let result = match Path::new(&argv0).file_name().and_then(find) {
        Some(applet) => (applet.main)(args),
        None => multicall(args),
    };
    ExitCode::from(exit::status(result))
}

/// Started as `indilookup`: the first argument is an applet or an option.
fn multicall(args: Vec<OsString>) -> exit::Result {
    let applets: Vec<(&str, &str)> = APPLETS.iter().map(|a| (a.name, a.about)).collect();
    let options = match multicall::parse(args, &applets)? {
        Parsed::Run(o) => o,
        Parsed::Help(text) => {
            print!("{text}");
            return Ok(());
        }
    };
    if options.list {
        for a in APPLETS {
            println!("{}", a.name);
        }
        return Ok(());
    }
    if let Some(dir) = options.install {
        return install_cmd(&dir, options.force);
    }
    let Some(multicall::Applet::Run(mut args)) = options.applet else {
        return Err(exit::Error::new(exit::USAGE, multicall::usage(&applets)));
    };
    let name = args.remove(0);
    match find(&name) {
        Some(applet) => (applet.main)(args),
        None => Err(exit::Error::new(
            exit::USAGE,
            format!(
                "indilookup: unknown applet or option '{}' (try --list or --help)",
                name.to_string_lossy()
            ),
        )),
    }
}

fn install_cmd(dir: &Path, force: bool) -> exit::Result {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| {
            exit::Error::new(
                exit::TEMPORARY,
                format!("indilookup --install: cannot find this executable: {e}"),
            )
        })?;
    let names: Vec<&str> = APPLETS.iter().map(|a| a.name).collect();
    let report = install::install(dir, &exe, &names, force)
        .map_err(|e| exit::Error::new(exit::TEMPORARY, format!("indilookup --install: {e}")))?;
    let mut refused = false;
    for line in &report {
        refused |= matches!(line.action, install::Action::Refused(_));
        println!("{line}");
    }
    if refused {
        Err(exit::FAILURE.into())
    } else {
        Ok(())
    }
}
