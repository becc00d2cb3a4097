//! Integration tests: a real MariaDB (see harness.rs) and real FIFOs.

mod applets;
mod daemon;
mod harness;
mod inquerytest;
mod lookups;
mod query;
