//! authindi: IndiMail's module for courier-imap's authlib chain, as functions the
//! applet calls. The applet reads fd 3, chooses among "run the application", "next
//! module" and "fail completely", and execs.
//!
//! Where IndiMail's C authindi has a known weakness (spec/auth.md §6) this does the
//! intended thing: an unknown domain, an unknown user and a wrong password all go to
//! the next module (C told them apart); the account's flags are looked at only after
//! the password matched; the service flags also apply to `imaps`, `pop3s` and the
//! names a site maps onto them; lastauth and re-activation use the real domain;
//! the base64 input is validated; no secret reaches a log line or a child's
//! environment.
//!
//! [`record`] reads the record the login program writes to fd 3, [`service`] the services
//! and their flags, [`decision`] decides, [`login`] holds what is done after a success
//! (nologin files, lastauth, the environment and argv of the login program), and
//! [`maildir`] the Maildir: made when missing, its quota and usage.

pub mod decision;
pub mod login;
pub mod maildir;
pub mod record;
pub mod service;

pub use decision::{authenticate, lookup_address, Account, Failure, Outcome, Reject, Settings};
pub use login::{
    login_forbidden, login_program, pwstruct_without_secret, remote_ip, LoginTasks, TaskResult,
    Warn,
};
pub use maildir::{maildir_quota, maildir_usage, make_maildir};
pub use record::{base64_decode, parse_record, AuthType, Record, RecordError};
pub use service::{ServiceClass, ServiceMap, SERVICE_MAP_VAR};
