//! Integration tests: a real MariaDB (see harness.rs) and real FIFOs.

mod applets;
mod authindi;
mod daemon;
mod docs;
mod faults;
mod fuzz;
mod harness;
mod inquerytest;
mod logs;
mod lookups;
mod query;
mod vchkpass;
