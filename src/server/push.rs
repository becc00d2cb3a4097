//! The daemon's push invalidation: one binlog follower per database server
//! the lookups read, each change applied to the cache as it arrives.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::db::binlog::{default_server_id, FollowSettings, Follower};
use crate::db::Database;
use crate::query::Cached;

/// The followers of one configuration (replaced by HUP).
pub struct Push {
    followers: Vec<Follower>,
    /// Cached answers the changes dropped.
    dropped: Arc<AtomicU64>,
}

impl Push {
    /// Follow every server `db` reads, when INLOOKUP_BINLOG=1 and the cache
    /// is on; `None` otherwise (a line says why, when it was asked for).
    pub fn start(
        config: &Config,
        db: &Database,
        backend: &Arc<Cached>,
        fifo_dir: &Path,
    ) -> Option<Push> {
        let p = &config.push;
        if !p.enabled {
            return None;
        }
        if !backend.caches() {
            log::warn!(
                "InLookup: INLOOKUP_BINLOG=1, but the cache is off (USE_BTREE, INLOOKUP_CACHE): \
                 nothing to invalidate"
            );
            return None;
        }
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base = p
            .server_id
            .unwrap_or_else(|| default_server_id(&format!("{host}:{}", fifo_dir.display())));
        let dropped = Arc::new(AtomicU64::new(0));
        let followers = db
            .followed_servers()
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                // The stream uses INLOOKUP_BINLOG_USER when given; the
                // tables' column names are read with the lookups' account.
                // Two followers of one server must not share an id: the
                // server would drop the older connection.
                let settings = FollowSettings {
                    server_id: base.wrapping_add(i as u32).max(1),
                    user: p.user.clone(),
                    password: p.password.clone(),
                    heartbeat: p.heartbeat,
                };
                let (backend, dropped) = (backend.clone(), dropped.clone());
                Follower::spawn(spec, settings, move |change| {
                    let n = backend.apply_change(&change);
                    dropped.fetch_add(n as u64, Ordering::Relaxed);
                })
            })
            .collect();
        Some(Push { followers, dropped })
    }

    /// Wait until every follower is streaming or has given up, at most
    /// `timeout`: the pre-cache loads after the first gap has emptied the
    /// cache, not before.
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let ready = self.followers.iter().all(|f| {
                let s = f.status();
                s.active || s.off_reason.is_some()
            });
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The statistics line: whether push invalidation is active, on how
    /// many servers, the row events read, the answers dropped, the gaps and
    /// the largest lag; a line per server that is off, with the reason.
    pub fn stats_lines(&self) -> String {
        let all: Vec<_> = self.followers.iter().map(Follower::status).collect();
        let active = all.iter().filter(|s| s.active).count();
        let events: u64 = all.iter().map(|s| s.events).sum();
        let gaps: u64 = all.iter().map(|s| s.gaps).sum();
        let lag = all.iter().filter_map(|s| s.lag).max();
        let mut text = format!(
            "Push invalidation {}, servers {active} of {}, row events {events}, answers dropped {}, gaps {gaps}, lag {}\n",
            if active == all.len() { "active" } else if active > 0 { "partly active" } else { "off" },
            all.len(),
            self.dropped.load(Ordering::Relaxed),
            lag.map_or_else(|| "-".to_string(), |l| format!("{} ms", l.as_millis())),
        );
        for s in all.iter().filter(|s| !s.active) {
            if let Some(why) = &s.off_reason {
                text.push_str(&format!("Push invalidation off for {}: {why}\n", s.server));
            }
        }
        text
    }
}

impl Drop for Push {
    /// The followers stop in a thread of their own: a reader blocked on a
    /// quiet server must not hold up the worker that drops the old
    /// configuration.
    fn drop(&mut self) {
        let followers = std::mem::take(&mut self.followers);
        let _ = std::thread::Builder::new()
            .name("push-stop".into())
            .spawn(move || drop(followers));
    }
}
