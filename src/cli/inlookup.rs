//! `inlookup [-f infifo] [-i instances] [-c activeSecs] [-v]` and our long
//! options. The short options are read as the C daemon reads them, so that
//! a run script written for it works unchanged (see [`as_getopt`]).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::{Arg, Command, CommandFactory, FromArgMatches, Parser};

use super::{clap_sentence, problem, Parsed, Problem};
use crate::exit;

/// `--help`.
pub const USAGE: &str = "usage: inlookup [-f infifo] [-i instances] [-c activeSecs] [-v]
       [--envdir DIR] [--workers N] [--queue N] [--reply-dir DIR]...
       [--user USER] [--fifo-owner USER] [--fifo-group GROUP]

  -f infifo          FIFO name (in INFIFODIR) or path; overrides INFIFO [infifo]
  -i instances       number of FIFOs, INFIFODIR/infifo.1 .. infifo.N, all served
                     by this one process (C clients pick one at random) [1]
  -c activeSecs      pre-cache the password entries of users who logged in
                     (IMAP, POP3, webmail) in the last activeSecs seconds;
                     again after every HUP [0 = none]
  -v, --verbose      log every query (as DEBUG does)
  --envdir DIR       load variables from a daemontools envdir (one file per
                     variable), also re-read on HUP
  --workers N        lookup threads and database connections
                     [INLOOKUP_WORKERS, 8]
  --queue N          requests waiting for a thread before new ones are
                     answered -1 at once [INLOOKUP_QUEUE, 1024]
  --reply-dir DIR    also accept reply FIFOs in DIR (repeatable)
                     [INLOOKUP_REPLY_DIRS, colon-separated]
  --user USER        started as root, run as USER once the FIFOs exist; the
                     FIFOs and the directories made for them are USER's
                     [INLOOKUP_USER, indimail; root keeps root]
  --fifo-owner USER  owner of the FIFOs it creates [the --user]
  --fifo-group GROUP group of the FIFOs it creates, whose members may ask
                     [the --user's group]
  -h, --help         this text

The cache is on with USE_BTREE=1 (or INLOOKUP_CACHE=1): MAX_BTREE_COUNT or
INLOOKUP_CACHE_ENTRIES entries at most [1000000], INLOOKUP_CACHE_BYTES
bytes at most [268435456 (256 MiB), 0 = no byte bound],
INLOOKUP_CACHE_TTL [300 s], INLOOKUP_CACHE_NEGATIVE_TTL [30 s],
INLOOKUP_CACHE_STALE [3600 s, 0 = off], INLOOKUP_CACHE_RELAY (set = cache
RELAY answers too).

Signals: HUP empties the cache, re-reads the configuration (as the user the
daemon runs as), sets the FIFOs' pipe size back, reconnects and pre-caches
again; INT closes the database connections; USR1 prints the stats; USR2
toggles per-query logging; TERM prints the stats, removes the FIFOs and
exits 0.
";

/// The C daemon's usage line, after the message of a usage error.
const C_USAGE: &str = "USAGE: inlookup [-f infifo] [-i instance] [-c activeSecs] [-v]\n\
                       (inlookup --help lists the long options)";

/// The daemon's options.
#[derive(Debug, Parser)]
#[command(
    name = "inlookup",
    no_binary_name = true,
    args_override_self = true,
    override_help = USAGE
)]
pub struct Options {
    /// -f: the server FIFO, a name in INFIFODIR or a path.
    #[arg(short = 'f', value_name = "infifo", allow_hyphen_values = true)]
    pub infifo: Option<OsString>,
    /// -i: how many FIFOs (1 or more).
    #[arg(
        short = 'i',
        value_name = "instances",
        default_value = "1",
        allow_hyphen_values = true,
        value_parser = instances
    )]
    pub instances: u32,
    /// -c: pre-cache the users active in the last so many seconds.
    #[arg(
        short = 'c',
        value_name = "activeSecs",
        default_value = "0",
        allow_hyphen_values = true,
        value_parser = number
    )]
    pub active_secs: u64,
    /// -v: log every query.
    #[arg(short, long)]
    pub verbose: bool,
    /// An envdir to load (and to load again on HUP).
    #[arg(long, value_name = "dir")]
    pub envdir: Option<PathBuf>,
    /// Worker threads; 0 or empty counts as not given.
    #[arg(long, value_name = "n", value_parser = count)]
    pub workers: Option<usize>,
    /// Queue length; 0 or empty counts as not given.
    #[arg(long, value_name = "n", value_parser = count)]
    pub queue: Option<usize>,
    /// More directories for reply FIFOs.
    #[arg(long = "reply-dir", value_name = "dir")]
    pub reply_dirs: Vec<PathBuf>,
    /// The service user to become once the FIFOs exist (started as root).
    #[arg(long, value_name = "user")]
    pub user: Option<String>,
    /// Owner of the FIFOs.
    #[arg(long = "fifo-owner", value_name = "user")]
    pub owner: Option<String>,
    /// Group of the FIFOs.
    #[arg(long = "fifo-group", value_name = "group")]
    pub group: Option<String>,
}

/// A decimal number.
fn number(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("{s:?} is not a number"))
}

/// `-i`: a number of FIFOs, at least one, that fits the FIFO numbering.
fn instances(s: &str) -> Result<u32, String> {
    match u32::try_from(number(s)?) {
        Ok(0) => Err("0 FIFOs serve no one; give 1 or more".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err("too large".to_string()),
    }
}

/// A count where 0 or nothing means "not given".
fn count(s: &str) -> Result<usize, String> {
    match s {
        "" => Ok(0),
        _ => usize::try_from(number(s)?).map_err(|_| "too large".to_string()),
    }
}

/// The C daemon reads its arguments its own way: an argument that does not
/// start with `-` is skipped (unless it is the value of the option before
/// it), of an option only the letter after the `-` counts (`-vx` is `-v`),
/// and the argument after `-f`, `-i` or `-c` is its value whatever it looks
/// like. This turns such a command line into one that clap reads the same
/// way; long options (ours only) pass as they are, with their values.
pub fn as_getopt(cmd: &Command, args: Vec<OsString>) -> Vec<OsString> {
    let takes_value = |a: &Arg| a.get_action().takes_values();
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let bytes = arg.as_bytes();
        let wants_value = if let Some(long) = bytes.strip_prefix(b"--") {
            let with_value = !long.contains(&b'=')
                && cmd
                    .get_arguments()
                    .any(|a| a.get_long().map(str::as_bytes) == Some(long) && takes_value(a));
            out.push(arg);
            with_value
        } else if bytes.len() >= 2 && bytes[0] == b'-' {
            let letter = OsStr::from_bytes(&bytes[..2]).to_owned();
            let with_value = cmd.get_arguments().any(|a| {
                a.get_short()
                    .is_some_and(|c| c as u32 == u32::from(bytes[1]))
                    && takes_value(a)
            });
            out.push(letter);
            with_value
        } else {
            false
        };
        if wants_value {
            out.extend(it.next());
        }
    }
    out
}

/// The daemon's command line. A usage error exits 1 with the C usage line.
pub fn parse(args: Vec<OsString>) -> Result<Parsed<Options>, exit::Error> {
    let mut cmd = Options::command();
    let args = as_getopt(&cmd, args);
    let matches = match cmd.try_get_matches_from_mut(args) {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            return Ok(Parsed::Help(e.to_string()))
        }
        Err(e) => {
            let message = match problem(&cmd, &e) {
                Problem::Unknown(o) if o.starts_with("--") => format!("unknown option {o:?}"),
                Problem::Unknown(o) => format!("unknown option {o}"),
                Problem::NoValue(o) => format!("option {o} needs a value"),
                Problem::Invalid { option, reason } => format!("option {option}: {reason}"),
                Problem::Other(s) => s,
            };
            return Err(usage_error(&message));
        }
    };
    let mut o = Options::from_arg_matches(&matches).map_err(|e| usage_error(&clap_sentence(&e)))?;
    o.workers = o.workers.filter(|&n| n > 0);
    o.queue = o.queue.filter(|&n| n > 0);
    Ok(Parsed::Run(o))
}

fn usage_error(message: &str) -> exit::Error {
    exit::Error::new(
        exit::DAEMON_USAGE,
        format!("inlookup: {message}\n{C_USAGE}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn getopt(args: &[&str]) -> Vec<String> {
        let args = args.iter().map(OsString::from).collect();
        as_getopt(&Options::command(), args)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn run(args: &[&str]) -> Options {
        match parse(args.iter().map(OsString::from).collect()) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn the_c_daemons_reading_of_its_arguments() {
        assert_eq!(getopt(&["-vx", "stray", "-i", "4"]), ["-v", "-i", "4"]);
        assert_eq!(getopt(&["-f", "-v", "-c3", "60"]), ["-f", "-v", "-c", "60"]);
        assert_eq!(
            getopt(&["--envdir", "-d", "--workers=2", "x", "-"]),
            ["--envdir", "-d", "--workers=2"]
        );
        let o = run(&["-vx", "stray", "-f", "-v", "-i", "4"]);
        assert!(o.verbose);
        assert_eq!(
            (o.infifo.as_deref(), o.instances),
            (Some(OsStr::new("-v")), 4)
        );
        let o = run(&["--workers", "0", "--queue", ""]);
        assert_eq!(
            (o.workers, o.queue, o.instances, o.active_secs),
            (None, None, 1, 0)
        );
    }

    #[test]
    fn usage_errors_exit_1_with_the_c_usage_line() {
        for (args, message) in [
            (&["-i"][..], "inlookup: option -i needs a value\n"),
            (&["-x"], "inlookup: unknown option -x\n"),
            (&["--bogus"], "inlookup: unknown option \"--bogus\"\n"),
            (
                &["-i", "many"],
                "inlookup: option -i: \"many\" is not a number\n",
            ),
            (&["-i", "5000000000"], "inlookup: option -i: too large\n"),
            (
                &["-i", "0"],
                "inlookup: option -i: 0 FIFOs serve no one; give 1 or more\n",
            ),
        ] {
            let e = parse(args.iter().map(OsString::from).collect()).unwrap_err();
            assert_eq!(e.code(), exit::DAEMON_USAGE);
            assert_eq!(e.message(), format!("{message}{C_USAGE}"), "{args:?}");
        }
    }
}
