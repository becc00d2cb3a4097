//! Counters and the USR1/TERM stats block.
//!
//! The first four lines keep the C daemon's format, which qmailmrtg parses
//! (with the Query/Sec figure that the C code computed but never printed);
//! the lines after them are our own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ctext::ctime;
use crate::protocol::QueryType;

#[derive(Default)]
pub struct Stats {
    start: u64,
    by_type: [AtomicU64; 7],
    bad: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    busy: AtomicU64,
    write_failed: AtomicU64,
    /// Lookups the database answered (cache misses, and every lookup
    /// without a cache).
    db_lookups: AtomicU64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            start: now(),
            ..Stats::default()
        }
    }

    pub fn count(&self, q: QueryType) {
        self.by_type[usize::from(q.as_u8() - 1)].fetch_add(1, Ordering::Relaxed);
    }
    pub fn bad(&self) {
        self.bad.fetch_add(1, Ordering::Relaxed);
    }
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }
    pub fn db_lookup(&self) {
        self.db_lookups.fetch_add(1, Ordering::Relaxed);
    }

    /// The statements line: how many the databases ran, for how many
    /// lookups (a clustered site's route costs one more, unless cached).
    pub fn statements_line(&self, statements: u64) -> String {
        let lookups = self.db_lookups.load(Ordering::Relaxed);
        let each = if lookups == 0 {
            0.0
        } else {
            statements as f64 / lookups as f64
        };
        format!("Database statements {statements}, lookups {lookups}, per lookup {each:.2}\n")
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub fn busy(&self) {
        self.busy.fetch_add(1, Ordering::Relaxed);
    }
    pub fn write_failed(&self) {
        self.write_failed.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, q: QueryType) -> u64 {
        self.by_type[usize::from(q.as_u8() - 1)].load(Ordering::Relaxed)
    }

    /// The stats block, with the number of cached entries and the database
    /// pool's (open, made) counts.
    pub fn report(&self, nodes: usize, db_open: usize, db_made: u64) -> String {
        self.report_at(now(), nodes, db_open, db_made)
    }

    fn report_at(&self, end: u64, nodes: usize, db_open: usize, db_made: u64) -> String {
        use QueryType::*;
        let [u, r, p, l, a, h, d] =
            [User, Relay, Password, Limit, Alias, Host, Domain].map(|q| self.get(q));
        let total = u + r + p + l + a + h + d;
        let secs = end.saturating_sub(self.start);
        let rate = if secs == 0 {
            total as f64
        } else {
            total as f64 / secs as f64
        };
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "User:Relay:Password:Limit:Alias:Host:Domain {u} {r} {p} {l} {a} {h} {d} Cached Nodes {nodes}\n\
             Start Time: {}\
             End   Time: {}\
             Queries {total}, Total Time {secs} secs, Query/Sec = {rate:.2}\n\
             Bad requests {}, Refused reply paths {}, Errors {}, Queue full {}, Failed writes {}\n\
             Database connections open {db_open}, made {db_made}\n",
            ctime(self.start as i64),
            ctime(end as i64),
            ld(&self.bad),
            ld(&self.refused),
            ld(&self.errors),
            ld(&self.busy),
            ld(&self.write_failed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_format() {
        let mut s = Stats::new();
        s.start = 1_700_000_000;
        for _ in 0..3 {
            s.count(QueryType::Password);
        }
        s.count(QueryType::User);
        s.count(QueryType::Host);
        s.count(QueryType::Domain);
        s.bad();
        let text = s.report_at(1_700_000_004, 0, 2, 5);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "User:Relay:Password:Limit:Alias:Host:Domain 1 0 3 0 0 1 1 Cached Nodes 0"
        );
        assert!(
            lines[1].starts_with("Start Time: ") && lines[1].ends_with("2023"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("End   Time: "));
        assert_eq!(lines[3], "Queries 6, Total Time 4 secs, Query/Sec = 1.50");
        assert_eq!(
            lines[4],
            "Bad requests 1, Refused reply paths 0, Errors 0, Queue full 0, Failed writes 0"
        );
        assert_eq!(lines[5], "Database connections open 2, made 5");
        s.db_lookup();
        s.db_lookup();
        assert_eq!(
            s.statements_line(3),
            "Database statements 3, lookups 2, per lookup 1.50\n"
        );
    }
}
