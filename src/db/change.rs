//! A change the database reports (push invalidation): what the binlog
//! follower reads, and what the query module turns into the cache entries to
//! drop. Plain data, so that each side can be tested alone.

/// One row image: each column by name, its value as bytes (numbers in
/// decimal, text as stored), `None` for NULL.
pub type Columns = Vec<(String, Option<Vec<u8>>)>;

/// What happened on a database server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A row written, updated or deleted in `table` (of the database the
    /// lookups use): its image before (updates, deletes) and after (writes,
    /// updates).
    Row {
        table: String,
        before: Option<Columns>,
        after: Option<Columns>,
    },
    /// A change whose rows cannot be told: DDL, TRUNCATE, a rename, a row
    /// image without the key columns. `table` when it is known.
    Unmappable { table: Option<String> },
    /// The stream was interrupted (connect, reconnect, server restart, a
    /// silent stream): changes may have been missed.
    Gap { reason: String },
}

impl Change {
    /// The value of `column` in a row image, as text (lossy), when present
    /// and not NULL.
    pub fn text(columns: &Columns, column: &str) -> Option<String> {
        columns
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(column))
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}
