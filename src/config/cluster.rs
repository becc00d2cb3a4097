//! TEMPORARY interface stub (replaced by the real parser).
use std::path::{Path, PathBuf};

use super::{ConfigError, Env, MysqlConfig, Paths};

#[derive(Debug, Clone)]
pub struct DbRecord {
    pub domain: String,
    pub distributed: bool,
    pub servers: Vec<String>,
    pub mdahost: String,
    pub port: u16,
    pub use_ssl: bool,
    pub database: String,
    pub user: String,
    pub password: String,
    pub socket: Option<PathBuf>,
    pub local: bool,
    pub origin: String,
}

#[derive(Debug, Clone)]
pub struct ClusterDefinition {
    pub path: PathBuf,
    pub records: Vec<DbRecord>,
    pub warnings: Vec<String>,
}

impl ClusterDefinition {
    pub fn load(
        _env: &Env,
        _paths: &Paths,
        _local: &MysqlConfig,
    ) -> Result<Option<ClusterDefinition>, ConfigError> {
        let _ = Path::new("");
        Ok(None)
    }
    pub fn first_record(&self, domain: &str) -> Option<&DbRecord> {
        self.records.iter().find(|r| r.domain == domain)
    }
    pub fn record_for(&self, domain: &str, mdahost: &str) -> Option<&DbRecord> {
        self.records
            .iter()
            .find(|r| r.domain == domain && r.mdahost == mdahost)
    }
    pub fn records_of<'a>(&'a self, domain: &'a str) -> impl Iterator<Item = &'a DbRecord> + 'a {
        self.records.iter().filter(move |r| r.domain == domain)
    }
    pub fn is_distributed(&self, domain: &str) -> bool {
        self.first_record(domain).is_some_and(|r| r.distributed)
    }
}
