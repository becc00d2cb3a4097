//! The exit statuses of the applets, named by what they mean, and the error
//! an applet returns to end with one (as uucore's `UError::code`).
//!
//! The numbers are those of the C tools, which follow qmail's convention:
//! 100 is a permanent failure, 111 a temporary one, and a checkpassword
//! module ends with 1 (refused) or 2 (misused).

use std::fmt;
use std::io::Write;

/// Everything went well.
pub const SUCCESS: u8 = 0;
/// A question got no answer or a login was refused: inquerytest's "No such
/// user" and lookup errors, a wrong password in vchkpass and authindi.
pub const FAILURE: u8 = 1;
/// A usage error of the daemon: the C inlookup's status for it.
pub const DAEMON_USAGE: u8 = 1;
/// A checkpassword module misused: no program to run, or authentication
/// data that is malformed or too long (vchkpass, authindi).
pub const MISUSE: u8 = 2;
/// vchkpass: the login is right, but the account may not relay.
pub const NO_RELAY: u8 = 3;
/// A usage error: inquerytest's and indilookup's, and the short help of
/// vchkpass and authindi, which are no commands to run by hand.
pub const USAGE: u8 = 100;
/// A permanent failure: authindi with no module left to try, a quota it
/// cannot parse, POSTAUTH's "Error on Exit".
pub const PERMANENT: u8 = 100;
/// A temporary or system failure: a database or daemon that cannot be
/// reached, a system call that failed. The caller may try again.
pub const TEMPORARY: u8 = 111;

/// How an applet ends when it does not end with [`SUCCESS`]: the status,
/// and what to say on stderr first. The message is empty when there is
/// nothing (more) to say, for a status that speaks for itself, as
/// vchkpass's [`NO_RELAY`], or one whose messages went out already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: u8,
    message: String,
}

impl Error {
    /// Exit with `code` after writing `message` (and a newline, if it has
    /// none) to stderr.
    pub fn new(code: u8, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    /// The exit status.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// What goes to stderr; may be empty.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A bare status: exit with it, saying nothing.
impl From<u8> for Error {
    fn from(code: u8) -> Error {
        Error::new(code, "")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// What an applet's entry point returns.
pub type Result<T = ()> = std::result::Result<T, Error>;

/// The process's exit status for an applet's result, after writing the
/// error's message to stderr.
pub fn status(result: Result) -> u8 {
    match result {
        Ok(()) => SUCCESS,
        Err(e) => {
            if !e.message.is_empty() {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(e.message.as_bytes());
                if !e.message.ends_with('\n') {
                    let _ = err.write_all(b"\n");
                }
            }
            e.code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_without_a_message() {
        let e = Error::from(NO_RELAY);
        assert_eq!((e.code(), e.message()), (3, ""));
        assert_eq!(status(Err(e)), NO_RELAY);
        assert_eq!(status(Ok(())), SUCCESS);
    }

    #[test]
    fn the_numbers_are_those_of_the_c_tools() {
        assert_eq!(
            [
                FAILURE,
                DAEMON_USAGE,
                MISUSE,
                NO_RELAY,
                USAGE,
                PERMANENT,
                TEMPORARY
            ],
            [1, 1, 2, 3, 100, 100, 111]
        );
    }
}
