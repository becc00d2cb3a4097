//! Integration tests: a real MariaDB (see harness.rs) and real FIFOs.

mod harness;
mod lookups;
mod daemon;
