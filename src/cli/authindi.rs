//! `authindi [module...] app apparg`: the rest of courier's authlib chain,
//! passed on untouched; only a first argument `--help` is authindi's own.

use std::ffi::OsString;

use clap::Parser;

use super::checkpassword_args;
use crate::exit;

/// `authindi --help`, on stderr (stdout is the IMAP or POP3 client's).
pub const HELP: &str = "usage: authindi [module...] app apparg

IndiMail's module for courier-imap's authlib chain, run by imaplogin and
pop3login: it reads service\\nauthtype\\nauthdata from descriptor 3 and
checks the login against the account (through inlookup with QUERY_CACHE,
else in MySQL). Right: it sets AUTHENTICATED, HOME, MAILDIR and the rest,
and execs app apparg in the home directory. Wrong or unknown: the next
module runs with the same input; with none left, the login fails.

Exit status (when it does not exec): 1 login not permitted or failed,
2 misuse, 100 no module left, a bad quota, or this help, 111 temporary
failure. See authindi(8).
";

/// authindi's arguments.
#[derive(Debug, Parser)]
#[command(
    name = "authindi",
    no_binary_name = true,
    disable_help_flag = true,
    override_help = HELP
)]
pub struct Options {
    /// Print [`HELP`] on stderr and exit 100.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The modules still to try, then the application and its argument.
    #[arg(
        value_name = "module",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub chain: Vec<OsString>,
}

/// authindi's command line; `--help` is an error that prints the help.
pub fn parse(args: Vec<OsString>) -> Result<Options, exit::Error> {
    checkpassword_args(args)
}
