//! indilookup: the shared library behind the `indilookup` multi-call executable.
//!
//! The applets (`inlookup`, `inquerytest`, `vchkpass`, `authindi`) are thin
//! wrappers; everything they share lives here.

pub mod auth;
pub mod authindi;
pub mod cache;
pub mod chain;
pub mod cli;
pub mod client;
pub mod config;
pub mod ctext;
pub mod db;
pub mod dummy_cost;
pub mod exit;
pub mod fifo;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzz;
pub mod infifo;
pub mod jobs;
pub mod load;
pub mod logline;
pub mod private_server;
pub mod protocol;
pub mod query;
pub mod report;
pub mod server;
pub mod vchkpass;
