//! Integration tests: a real MariaDB (see harness.rs) and real FIFOs.

mod applets;
mod authindi;
mod daemon;
mod differences;
mod docs;
mod faults;
mod forgery;
mod fuzz;
mod hardening;
mod harness;
mod inquerytest;
mod logs;
mod lookups;
mod query;
mod vchkpass;
