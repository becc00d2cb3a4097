//! The applets' command lines, on clap: each applet's options, its usage and
//! help texts, and its usage errors in the words of the C tool it replaces.
//!
//! They live in the library, not beside the applets, so that the tests can
//! hold every option clap knows against the man pages.

use std::error::Error as _;
use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Command, Parser};

use crate::exit;

pub mod authindi;
pub mod inlookup;
pub mod inquerytest;
pub mod multicall;
pub mod vchkpass;

/// What a command line asks for.
#[derive(Debug)]
pub enum Parsed<T> {
    /// Run with these options.
    Run(T),
    /// Print this help on stdout and exit 0.
    Help(String),
}

/// A clap error, in the terms the C tools' messages need.
#[derive(Debug, PartialEq, Eq)]
enum Problem {
    /// An option nobody knows, as it was written: `-x`, `--bogus`.
    Unknown(String),
    /// An option given without its value, by its shortest name (`-q`).
    NoValue(String),
    /// A value its parser refused: the option's shortest name and the
    /// parser's reason (which names the value).
    Invalid { option: String, reason: String },
    /// Anything else: clap's own sentence.
    Other(String),
}

/// The shortest name of the option that clap shows as `shown` (`--count <N>`,
/// `-i <instances>`): `-n` for `--count`, when it has a short name.
fn shortest_name(cmd: &Command, shown: &str) -> String {
    let first = shown.split_whitespace().next().unwrap_or(shown);
    let found = cmd.get_arguments().find(|a: &&Arg| {
        first
            .strip_prefix("--")
            .is_some_and(|l| a.get_long() == Some(l))
            || first
                .strip_prefix('-')
                .is_some_and(|s| s.chars().eq(a.get_short()))
    });
    match found.and_then(Arg::get_short) {
        Some(c) => format!("-{c}"),
        None => first.to_string(),
    }
}

fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        other => Some(other.to_string()),
    }
}

/// clap's first paragraph on one line, without its `error: `.
fn clap_sentence(e: &clap::Error) -> String {
    let text = e.to_string();
    let words: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = words.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

fn problem(cmd: &Command, e: &clap::Error) -> Problem {
    let arg = context(e, ContextKind::InvalidArg);
    let value = context(e, ContextKind::InvalidValue);
    match (e.kind(), arg) {
        (ErrorKind::UnknownArgument, Some(arg)) => Problem::Unknown(arg),
        (ErrorKind::InvalidValue, Some(arg)) if value.as_deref() == Some("") => {
            Problem::NoValue(shortest_name(cmd, &arg))
        }
        (ErrorKind::ValueValidation, Some(arg)) => Problem::Invalid {
            option: shortest_name(cmd, &arg),
            reason: e.source().map(ToString::to_string).unwrap_or_default(),
        },
        _ => Problem::Other(clap_sentence(e)),
    }
}

/// The arguments of vchkpass and authindi: a program and its arguments,
/// which are not theirs to read, so clap only looks at the first for
/// `--help`. The help goes to stderr, since stdout belongs to the client,
/// with exit 100, as for any call that is not the mail server's.
fn checkpassword_args<T: Parser>(args: Vec<OsString>) -> Result<T, exit::Error> {
    T::try_parse_from(args).map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp => exit::Error::new(exit::USAGE, e.to_string()),
        _ => exit::Error::new(
            exit::USAGE,
            format!("{}: {}", T::command().get_name(), clap_sentence(&e)),
        ),
    })
}

/// A number that must be greater than 0 (`-n`, `-c`, `--workers`).
fn positive<T: std::str::FromStr + PartialOrd + Default>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        Command::new("t")
            .no_binary_name(true)
            .arg(
                Arg::new("count")
                    .short('n')
                    .long("count")
                    .value_parser(positive::<u32>),
            )
            .arg(Arg::new("fifo").long("fifo"))
    }

    fn problem_of(args: &[&str]) -> Problem {
        let mut c = cmd();
        let e = c.try_get_matches_from_mut(args).unwrap_err();
        problem(&c, &e)
    }

    #[test]
    fn clap_errors_as_the_c_messages_need_them() {
        assert_eq!(problem_of(&["-x"]), Problem::Unknown("-x".into()));
        assert_eq!(problem_of(&["--bogus"]), Problem::Unknown("--bogus".into()));
        assert_eq!(problem_of(&["--count"]), Problem::NoValue("-n".into()));
        assert_eq!(problem_of(&["--fifo"]), Problem::NoValue("--fifo".into()));
        assert_eq!(
            problem_of(&["--count", "0"]),
            Problem::Invalid {
                option: "-n".into(),
                reason: "\"0\" is not a positive number".into()
            }
        );
        assert!(matches!(
            problem_of(&["--fifo=a", "--fifo=b"]),
            Problem::Other(_)
        ));
    }
}
