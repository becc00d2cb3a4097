//! `indilookup APPLET [ARGS...]`, `--list`, `--install DIR [--force]`,
//! `--version`, `--help`: the options of the executable itself, when it is
//! not started under an applet's name.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use super::{clap_sentence, problem, Parsed, Problem};
use crate::exit;

/// The executable's options. An applet's name ends them: what follows is
/// the applet's.
#[derive(Debug, Parser)]
#[command(
    name = "indilookup",
    no_binary_name = true,
    version,
    arg_required_else_help = true,
    allow_external_subcommands = true
)]
pub struct Options {
    /// Print the applets' names.
    #[arg(long, group = "action")]
    pub list: bool,
    /// Create the applets' symlinks in this directory.
    #[arg(long, value_name = "dir", group = "action")]
    pub install: Option<PathBuf>,
    /// With --install: replace what is there, whatever it is.
    #[arg(long, requires = "install")]
    pub force: bool,
    #[command(subcommand)]
    pub applet: Option<Applet>,
}

/// An applet to run.
#[derive(Debug, Subcommand)]
pub enum Applet {
    /// Its name, then its arguments.
    #[command(external_subcommand)]
    Run(Vec<OsString>),
}

/// `--help` (on stdout) and the text for no arguments at all (on stderr,
/// exit 100), listing `applets` (name, what it is).
pub fn usage(applets: &[(&str, &str)]) -> String {
    let mut s = format!(
        "indilookup {}: IndiMail lookup service (inlookup, inquerytest, vchkpass, authindi)\n\n\
         usage: indilookup APPLET [ARGS...]\n\
         \x20      APPLET [ARGS...]            (through a symlink named after the applet)\n\
         \x20      indilookup --list\n\
         \x20      indilookup --install DIR [--force]\n\
         \x20      indilookup --version (-V) | --help (-h)\n\napplets:\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, about) in applets {
        s.push_str(&format!("  {name:<12} {about}\n"));
    }
    s.push_str(
        "\n--install DIR creates the symlinks DIR/APPLET -> this executable. It replaces\n\
         only symlinks that already point to an indilookup executable, unless --force.\n",
    );
    s
}

fn usage_error(message: String) -> exit::Error {
    exit::Error::new(exit::USAGE, message)
}

/// The executable's command line. `--help` and `--version` are
/// [`Parsed::Help`]: text for stdout.
pub fn parse(
    args: Vec<OsString>,
    applets: &[(&str, &str)],
) -> Result<Parsed<Options>, exit::Error> {
    use clap::error::ErrorKind;
    let mut cmd = Options::command().override_help(usage(applets));
    let matches = match cmd.try_get_matches_from_mut(args) {
        Ok(m) => m,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    Ok(Parsed::Help(e.to_string()))
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Err(usage_error(e.to_string()))
                }
                _ => Err(usage_error(match problem(&cmd, &e) {
                    Problem::Unknown(o) => {
                        format!("indilookup: unknown applet or option '{o}' (try --list or --help)")
                    }
                    Problem::NoValue(o) if o == "--install" => {
                        "usage: indilookup --install DIR [--force]".to_string()
                    }
                    _ => format!("indilookup: {} (try --help)", clap_sentence(&e)),
                })),
            };
        }
    };
    let o = Options::from_arg_matches(&matches)
        .map_err(|e| usage_error(format!("indilookup: {}", clap_sentence(&e))))?;
    if let (true, Some(Applet::Run(rest))) = (o.list || o.install.is_some(), &o.applet) {
        let first = rest
            .first()
            .map(|a| a.to_string_lossy())
            .unwrap_or_default();
        return Err(usage_error(format!(
            "indilookup: unexpected argument '{first}' (try --help)"
        )));
    }
    Ok(Parsed::Run(o))
}
