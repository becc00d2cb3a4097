//! indilookup: the shared library behind the `indilookup` multi-call executable.
//!
//! The applets (`inlookup`, `inquerytest`, `vchkpass`, `authindi`) are thin
//! wrappers; everything they share lives here.

pub mod cache;
pub mod client;
pub mod config;
pub mod db;
pub mod fifo;
pub mod protocol;
pub mod query;
pub mod server;
