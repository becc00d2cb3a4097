//! Integration tests: a real MariaDB (testkit's harness) and real FIFOs.

use testkit::harness;

mod applets;
mod authindi;
mod binlog;
mod cluster;
mod cluster_faults;
mod cluster_harness;
mod cluster_tls;
mod daemon;
mod differences;
mod docs;
mod faults;
mod forgery;
mod fuzz;
mod hardening;
mod inquerytest;
mod logs;
mod lookups;
mod push;
mod query;
mod servers;
mod vchkpass;
