//! Push invalidation: whether the daemon follows the databases' binlogs,
//! and as whom.

use std::fmt;
use std::time::Duration;

use super::env::{env_seconds, nonempty, parse_decimal, Env};
use super::ConfigError;

/// INLOOKUP_BINLOG and its companions.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PushConfig {
    /// INLOOKUP_BINLOG=1: follow the binlog of every database server the
    /// lookups read, and drop the cached answers a change makes stale.
    pub enabled: bool,
    /// INLOOKUP_BINLOG_USER / INLOOKUP_BINLOG_PASSWORD: an account with the
    /// replication grants; unset = the lookups' account.
    pub user: Option<String>,
    pub password: Option<String>,
    /// INLOOKUP_BINLOG_SERVER_ID: the replication server id; unset = one
    /// derived from the host name and the FIFO directory (see
    /// `db::binlog::default_server_id`).
    pub server_id: Option<u32>,
    /// INLOOKUP_BINLOG_HEARTBEAT [1] seconds: how often a quiet server must
    /// say it is there; three missed heartbeats are a gap.
    pub heartbeat: Duration,
}

impl fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushConfig")
            .field("enabled", &self.enabled)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("server_id", &self.server_id)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

impl PushConfig {
    pub fn load(env: &Env) -> Result<PushConfig, ConfigError> {
        let enabled = match nonempty(env, "INLOOKUP_BINLOG")? {
            None | Some("0") => false,
            Some("1") => true,
            Some(v) => return Err(ConfigError::invalid_var("INLOOKUP_BINLOG", v, "1 or 0")),
        };
        let server_id = match nonempty(env, "INLOOKUP_BINLOG_SERVER_ID")? {
            None => None,
            Some(v) => Some(
                parse_decimal(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| {
                        ConfigError::invalid_var(
                            "INLOOKUP_BINLOG_SERVER_ID",
                            v,
                            "a server id 1..=4294967295",
                        )
                    })?,
            ),
        };
        Ok(PushConfig {
            enabled,
            user: nonempty(env, "INLOOKUP_BINLOG_USER")?.map(str::to_string),
            password: env.get_str("INLOOKUP_BINLOG_PASSWORD")?.map(str::to_string),
            server_id,
            heartbeat: env_seconds(env, "INLOOKUP_BINLOG_HEARTBEAT", 1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::env;

    #[test]
    fn off_unless_asked_and_every_value_checked() {
        assert!(!PushConfig::load(&env(&[])).unwrap().enabled);
        assert!(
            !PushConfig::load(&env(&[("INLOOKUP_BINLOG", "0")]))
                .unwrap()
                .enabled
        );
        let p = PushConfig::load(&env(&[
            ("INLOOKUP_BINLOG", "1"),
            ("INLOOKUP_BINLOG_USER", "repl"),
            ("INLOOKUP_BINLOG_PASSWORD", "s3cret"),
            ("INLOOKUP_BINLOG_SERVER_ID", "4026531841"),
            ("INLOOKUP_BINLOG_HEARTBEAT", "2"),
        ]))
        .unwrap();
        assert!(p.enabled);
        assert_eq!(p.user.as_deref(), Some("repl"));
        assert_eq!(p.server_id, Some(4_026_531_841));
        assert_eq!(p.heartbeat, Duration::from_secs(2));
        assert!(!format!("{p:?}").contains("s3cret"));
        for (k, v) in [
            ("INLOOKUP_BINLOG", "yes"),
            ("INLOOKUP_BINLOG_SERVER_ID", "0"),
            ("INLOOKUP_BINLOG_SERVER_ID", "4294967296"),
            ("INLOOKUP_BINLOG_HEARTBEAT", "0"),
        ] {
            let e = PushConfig::load(&env(&[(k, v)])).unwrap_err().to_string();
            assert!(e.contains(k), "{e}");
        }
    }
}
