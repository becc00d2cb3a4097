//! The `dbinfo` table: the copy of the cluster definition that IndiMail's
//! administration tools keep on the central database when
//! `control/host.master` exists. Where the table is newer than the file
//! (rows written after the file's last change), its records are the site's,
//! as in C's sync (`file ← table`); the daemon only reads the table and
//! never writes it nor the file: keeping them in step is the tools' job.

use std::path::Path;
use std::time::UNIX_EPOCH;

use mysql::prelude::Queryable;

use super::store::Store;
use super::DbError;
use crate::config::cluster::DbRecord;
use crate::config::ClusterDefinition;

type Row = (
    String,
    i64,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    Option<i64>,
);

/// The definition to use: `file`'s, or the table's when its newest row is
/// newer than the file. A table that cannot be read leaves the file's (C
/// does the same), with the reason for the log.
pub fn newer_definition(
    central: &Store,
    file: &ClusterDefinition,
) -> Result<Option<ClusterDefinition>, DbError> {
    let key = file.path.to_string_lossy().into_owned();
    let rows: Vec<Row> = central.read("dbinfo", |c| {
        c.exec(
            "SELECT domain, distributed, server, mdahost, port, use_ssl, dbname, user, passwd, \
             UNIX_TIMESTAMP(timestamp) FROM dbinfo WHERE filename = ?",
            (key.as_str(),),
        )
    })?;
    let Some(newest) = rows.iter().filter_map(|r| r.9).max() else {
        return Ok(None);
    };
    if newest <= mtime(&file.path) {
        return Ok(None);
    }
    let records = rows
        .into_iter()
        .filter_map(|r| {
            let port = u16::try_from(r.4).ok()?;
            Some(DbRecord {
                domain: r.0.to_ascii_lowercase(),
                distributed: r.1 != 0,
                servers: vec![r.2.trim().to_string()],
                mdahost: r.3.trim().to_string(),
                port,
                use_ssl: r.5 != 0,
                database: r.6,
                user: r.7,
                password: r.8,
                socket: None,
                local: false,
                origin: format!("dbinfo row of {} for {}", file.path.display(), r.0),
            })
        })
        .collect();
    Ok(Some(ClusterDefinition {
        path: file.path.clone(),
        records,
        warnings: Vec::new(),
    }))
}

/// The file's modification time in Unix seconds; 0 when it cannot be read.
fn mtime(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}
