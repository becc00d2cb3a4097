//! The daemon's push invalidation: one binlog follower per database server
//! the lookups read, each change applied to the cache as it arrives.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::db::binlog::{default_server_id, FollowSettings, Follower};
use crate::db::Database;
use crate::query::Cached;

/// The followers of one configuration (replaced by HUP).
pub struct Push {
    followers: Arc<Vec<Follower>>,
    /// Cached answers the changes dropped.
    dropped: Arc<AtomicU64>,
    /// Tells the status writer to stop.
    stop: Arc<AtomicBool>,
}

/// The file beside the server FIFOs where the daemon says, every second,
/// how push invalidation goes (`inquerytest --json` shows it).
pub const STATUS_FILE: &str = "pushstatus";

impl Push {
    /// Follow every server `db` reads, when INLOOKUP_BINLOG=1 and the cache
    /// is on; `None` otherwise (a line says why, when it was asked for).
    /// `status_dir`: where the status file goes (the FIFO directory of a
    /// daemon serving INFIFODIR), `None` for none.
    pub fn start(
        config: &Config,
        db: &Database,
        backend: &Arc<Cached>,
        fifo_dir: &Path,
        status_dir: Option<PathBuf>,
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
        let push = Push {
            followers: Arc::new(followers),
            dropped,
            stop: Arc::new(AtomicBool::new(false)),
        };
        if let Some(dir) = status_dir {
            push.write_status_every_second(dir);
        }
        Some(push)
    }

    /// The status as one JSON object.
    fn status_json(followers: &[Follower], dropped: u64) -> serde_json::Value {
        let t = Totals::of(followers);
        serde_json::json!({
            "active": t.active,
            "servers": t.servers.len(),
            "events": t.events,
            "dropped": dropped,
            "gaps": t.gaps,
            "lag_ms": t.lag.map(|l| l.as_millis() as u64),
            "off": t.off().map(|(_, why)| why).collect::<Vec<_>>(),
        })
    }

    fn write_status_every_second(&self, dir: PathBuf) {
        let (followers, dropped, stop) = (
            self.followers.clone(),
            self.dropped.clone(),
            self.stop.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("push-status".into())
            .spawn(move || {
                let mut warned = false;
                while !stop.load(Ordering::Relaxed) {
                    let status = Push::status_json(&followers, dropped.load(Ordering::Relaxed));
                    if let Err(e) =
                        crate::dummy_cost::publish_text(&dir, STATUS_FILE, &format!("{status}\n"))
                    {
                        if !warned {
                            log::warn!("InLookup: {}: {e}", dir.join(STATUS_FILE).display());
                            warned = true;
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                let _ = std::fs::remove_file(dir.join(STATUS_FILE));
            });
        if let Err(e) = spawned {
            log::warn!("InLookup: push status: {e}");
        }
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
        let t = Totals::of(&self.followers);
        let state = match t.active {
            n if n == t.servers.len() => "active",
            0 => "off",
            _ => "partly active",
        };
        let mut text = format!(
            "Push invalidation {state}, servers {} of {}, row events {}, answers dropped {}, gaps {}, lag {}\n",
            t.active,
            t.servers.len(),
            t.events,
            self.dropped.load(Ordering::Relaxed),
            t.gaps,
            t.lag
                .map_or_else(|| "-".to_string(), |l| format!("{} ms", l.as_millis())),
        );
        for (server, why) in t.off() {
            text.push_str(&format!("Push invalidation off for {server}: {why}\n"));
        }
        text
    }
}

/// The followers' statuses and their sums: what the statistics and the
/// status file say.
struct Totals {
    servers: Vec<crate::db::binlog::FollowStatus>,
    active: usize,
    events: u64,
    gaps: u64,
    lag: Option<Duration>,
}

impl Totals {
    fn of(followers: &[Follower]) -> Totals {
        let servers: Vec<_> = followers.iter().map(Follower::status).collect();
        Totals {
            active: servers.iter().filter(|s| s.active).count(),
            events: servers.iter().map(|s| s.events).sum(),
            gaps: servers.iter().map(|s| s.gaps).sum(),
            lag: servers.iter().filter_map(|s| s.lag).max(),
            servers,
        }
    }

    /// The servers not followed, with the reason.
    fn off(&self) -> impl Iterator<Item = (&str, &str)> {
        self.servers
            .iter()
            .filter(|s| !s.active)
            .filter_map(|s| Some((s.server.as_str(), s.off_reason.as_deref()?)))
    }
}

impl Drop for Push {
    /// The followers stop in a thread of their own: a reader blocked on a
    /// quiet server must not hold up the worker that drops the old
    /// configuration.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let followers = std::mem::take(&mut self.followers);
        let _ = std::thread::Builder::new()
            .name("push-stop".into())
            .spawn(move || drop(followers));
    }
}
