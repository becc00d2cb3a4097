//! The fixtures that indilookup's integration tests, benchmark and soak run
//! share: a real MariaDB with a site's database ([`harness`]), servers on
//! TCP ports with replication and the example cluster ([`cluster`]),
//! certificates for TLS ([`tls`]), the daemon ([`daemon`]), a client that
//! sends the C library's bytes ([`c_client`]), FIFOs for it to find ([`fifo`]),
//! child processes that cannot outlive their test ([`child`]) and what
//! /proc says about a process ([`process`]).
//!
//! A dev-dependency only: nothing in the library or the executable uses it.

pub mod c_client;
pub mod child;
pub mod cluster;
pub mod daemon;
pub mod fifo;
pub mod harness;
pub mod process;
pub mod tls;

pub use child::Guarded;
pub use cluster::{start_replica, Cluster, TcpOptions, TcpServer};
pub use daemon::{Daemon, DaemonSite};
pub use harness::{OwnServer, Server, Site};
pub use tls::TestCerts;
