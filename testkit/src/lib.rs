//! The fixtures that indilookup's integration tests, benchmark and soak run
//! share: a real MariaDB with a site's database ([`harness`]), the daemon
//! ([`daemon`]), a client that sends the C library's bytes ([`c_client`]),
//! FIFOs for it to find ([`fifo`]),
//! child processes that cannot outlive their test ([`child`]) and what
//! /proc says about a process ([`process`]).
//!
//! A dev-dependency only: nothing in the library or the executable uses it.

pub mod c_client;
pub mod child;
pub mod daemon;
pub mod fifo;
pub mod harness;
pub mod process;

pub use child::Guarded;
pub use daemon::Daemon;
pub use harness::{OwnServer, Server, Site};
