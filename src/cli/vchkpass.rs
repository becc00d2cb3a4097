//! `vchkpass prog [args...]`: the next program and its arguments, passed on
//! untouched; only a first argument `--help` is vchkpass's own.

use std::ffi::OsString;

use clap::Parser;

use super::checkpassword_args;
use crate::exit;

/// `vchkpass --help`, on stderr (stdout is the SMTP client's connection).
pub const HELP: &str = "usage: vchkpass prog [args...]

IndiMail's checkpassword module for SMTP AUTH, run by qmail-smtpd: it reads
login\\0password\\0\\0 or login\\0challenge\\0response\\0method\\0 from
descriptor 3 and checks them against the account (through inlookup with
QUERY_CACHE, else in MySQL). Right: exit 0, or 3 for a NO_RELAY account.
Wrong or unknown: prog args... runs with the same input on descriptor 3.
With NATIVE_CHECKPASSWORD or DOVECOT_VERSION set: exec prog when right,
exit 1 when wrong.

Exit status: 0 or 3 authenticated, 1 refused, 2 misuse, 111 temporary
failure, 100 this help; else that of POSTAUTH or prog. See vchkpass(8).
";

/// vchkpass's arguments.
#[derive(Debug, Parser)]
#[command(
    name = "vchkpass",
    no_binary_name = true,
    disable_help_flag = true,
    override_help = HELP
)]
pub struct Options {
    /// Print [`HELP`] on stderr and exit 100.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The next program and its arguments.
    #[arg(
        value_name = "prog",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub program: Vec<OsString>,
}

/// vchkpass's command line; `--help` is an error that prints the help.
pub fn parse(args: Vec<OsString>) -> Result<Options, exit::Error> {
    checkpassword_args(args)
}
