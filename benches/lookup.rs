//! The lookup benchmark: inlookup against the protocol's floor and against
//! MySQL without the daemon, side by side in one run.
//!
//! `cargo bench --bench lookup -- [--users N] [--seconds S] [--fifo-dir tmpfs|ext4|both]
//!  [--rss-users N] [--auth-tries N] [--only auth|rss|cluster] [--json PATH]`
//!
//! It starts a private MariaDB (as the integration tests do), loads N users,
//! and measures, for 1, 4, 16 and 64 client threads using the library's
//! inquery():
//! * floor: a minimal server that does the FIFO steps of a request (read it,
//!   open, unlink and write the reply FIFO) and no lookup;
//! * the daemon with its cache (warm) and without it, unique addresses with
//!   the cache on, and a realistic mix;
//! * without the daemon: a MySQL connection per lookup (what clients do
//!   without QUERY_CACHE), and one persistent connection per thread.
//!
//! For each: queries/s, latency percentiles, the daemon's CPU time per query,
//! SQL statements per lookup (the server's Com_stmt_execute),
//! and the daemon's RSS. Then vchkpass through the daemon, a known user with a
//! wrong password against an unknown user (`--auth-tries` runs of each, in
//! interleaved rounds): the two times must not tell the users apart. The
//! unknown user is also timed with the dummy check at PASSWORD_HASH's cost,
//! the way it was before the daemon learnt the site's hash cost.
//! Then clustered sites (three more private MariaDB on loopback ports): PWD
//! cache misses at 16 clients on a single-database site, on a clustered
//! site over two mailstores, and on that site over TLS, in interleaved
//! rounds: the ratios cluster/single and tls/plain.
//! Figures, not pass/fail: nothing here asserts speed.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indilookup::client;
use indilookup::config::{FifoConfig, Timeouts};
use indilookup::db::Database;
use indilookup::fifo;
use indilookup::protocol::frames::{frames, Frame};
use indilookup::protocol::{PasswordReply, PwStruct, QueryType, Reply};
use mysql::prelude::Queryable;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use testkit::cluster::{Cluster, CENTRAL_PASSWORD, MS1_PASSWORD, MS2_PASSWORD};
use testkit::daemon::client_fifo_config;
use testkit::process::rss_kib;
use testkit::{Daemon, DaemonSite, Guarded, OwnServer, Server, Site, TcpServer, TestCerts};

const DOMAIN: &str = "bench.test";
/// The shape of a SHA-512 crypt hash (16-character salt, 86-character hash),
/// the scheme most IndiMail sites store.
const HASH: &str = "$6$benchsalt0123456$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmn";

struct Args {
    users: usize,
    seconds: f64,
    fifo_dirs: Vec<(&'static str, PathBuf)>,
    rss_users: usize,
    json: PathBuf,
    clients: Vec<usize>,
    auth_tries: usize,
    /// Run one section only: `auth` (vchkpass timing), `rss` (`--rss-users`)
    /// or `cluster` (clustered sites and TLS).
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        users: 10_000,
        seconds: 2.0,
        fifo_dirs: vec![
            ("tmpfs", PathBuf::from("/dev/shm")),
            ("ext4", PathBuf::from("/tmp")),
        ],
        rss_users: 0,
        json: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/bench-lookup.json"
        )),
        clients: vec![1, 4, 16, 64],
        auth_tries: 200,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--users" => a.users = val().parse().expect("--users N"),
            "--seconds" => a.seconds = val().parse().expect("--seconds S"),
            "--rss-users" => a.rss_users = val().parse().expect("--rss-users N"),
            "--auth-tries" => a.auth_tries = val().parse().expect("--auth-tries N"),
            "--only" => a.only = Some(val()),
            "--json" => a.json = PathBuf::from(val()),
            "--clients" => {
                a.clients = val()
                    .split(',')
                    .map(|c| c.parse().expect("--clients 1,4,16"))
                    .collect()
            }
            "--fifo-dir" => {
                let v = val();
                a.fifo_dirs.retain(|(name, _)| v == "both" || v == *name);
            }
            // cargo bench passes --bench; other harness flags are ignored.
            _ => {}
        }
    }
    a
}

// ---------------------------------------------------------------------------
// Measurements

#[derive(Default, Clone)]
struct Figures {
    scenario: String,
    fifo_fs: String,
    clients: usize,
    queries: u64,
    errors: u64,
    qps: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    cpu_us_per_query: Option<f64>,
    sql_per_lookup: Option<f64>,
    rss_mb: Option<f64>,
    /// CPU time of the client threads (this process) per query.
    client_cpu_us_per_query: Option<f64>,
}

/// Run `f(thread, i)` on `clients` threads for `seconds`; latencies in µs.
fn run_load(
    clients: usize,
    seconds: f64,
    f: impl Fn(usize, u64) -> bool + Send + Sync + 'static,
) -> (Vec<u32>, u64, f64) {
    let f = Arc::new(f);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|t| {
            let (f, stop, errors) = (f.clone(), stop.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(1 << 16);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    if !f(t, i) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    i += 1;
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    (all, errors.load(Ordering::Relaxed), elapsed)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn figures(
    scenario: &str,
    fs_name: &str,
    clients: usize,
    lat: &[u32],
    errors: u64,
    secs: f64,
) -> Figures {
    Figures {
        scenario: scenario.into(),
        fifo_fs: fs_name.into(),
        clients,
        queries: lat.len() as u64,
        errors,
        qps: lat.len() as f64 / secs,
        p50: percentile(lat, 0.50),
        p90: percentile(lat, 0.90),
        p99: percentile(lat, 0.99),
        max: percentile(lat, 1.0),
        ..Figures::default()
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

fn rss_mb(pid: u32) -> f64 {
    rss_kib(pid).map_or(0.0, |kib| kib as f64 / 1024.0)
}

/// Prepared statements these servers have run, together.
fn sql_total(servers: &[&Server]) -> u64 {
    servers.iter().map(|s| sql_count(s)).sum()
}

/// Prepared statements the server has run (every lookup is one; reading
/// this counter is not).
fn sql_count(server: &Server) -> u64 {
    let mut c = server.connect(None).unwrap();
    let row: Option<(String, String)> = c
        .query_first("SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'")
        .unwrap();
    row.map_or(0, |(_, v)| v.parse().unwrap_or(0))
}

// ---------------------------------------------------------------------------
// The site

fn populate(site: &Site, users: usize) {
    site.sql("SET unique_checks = 0");
    site.insert_rows(
        "indimail",
        "pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell",
        (0..users).map(|i| {
            format!("('u{i}', '{DOMAIN}', '{HASH}', 555, 0, 'Bench User {i}', '/home/mail/L2P/{DOMAIN}/u{i}', '524288000')")
        }),
    );
    site.insert_rows(
        "lastauth",
        "user, domain, service, remote_ip, quota, gecos, timestamp",
        (0..users).map(|i| format!("('u{i}', '{DOMAIN}', 'imap', '10.0.0.1', 0, 'x', NOW())")),
    );
    site.sql(&format!(
        "INSERT INTO valias (alias, domain, valias_line) VALUES ('sales', '{DOMAIN}', '&u1@{DOMAIN}'), ('sales', '{DOMAIN}', '&u2@{DOMAIN}')"
    ));
    site.sql(&format!(
        "INSERT INTO relay (email, ipaddr, timestamp) VALUES ('u1@{DOMAIN}', '192.0.2.1', UNIX_TIMESTAMP())"
    ));
    site.sql(&format!(
        "INSERT INTO vlimits (domain, maxpopaccounts) VALUES ('{DOMAIN}', 100000)"
    ));
    site.domain_dirs(&[DOMAIN]);
    site.control("hostip", "192.0.2.7");
}

/// Where the daemon's log goes: INDILOOKUP_BENCH_DAEMON_LOG (appended),
/// else `log` in its scratch directory.
fn daemon_log(default: &Path) -> PathBuf {
    std::env::var_os("INDILOOKUP_BENCH_DAEMON_LOG")
        .map_or_else(|| default.to_path_buf(), PathBuf::from)
}

/// FIFOs the daemon serves (INDILOOKUP_BENCH_INSTANCES, default 4, as a
/// site running `inlookup -i 4`).
fn instances() -> u32 {
    std::env::var("INDILOOKUP_BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

fn user(i: u64, users: usize) -> String {
    format!("u{}@{DOMAIN}", i as usize % users)
}

// ---------------------------------------------------------------------------
// Servers

/// The daemon serving FIFOs under `base` (removed with it), `instances()`
/// of them, its output in its log.
fn daemon(site: &dyn DaemonSite, base: &Path, extra: &[(&str, &str)], args: &[&str]) -> Daemon {
    Daemon::launch(site)
        .base(base)
        .remove_base()
        .args(["-i", &instances().to_string()])
        .args(args)
        .envs(extra.iter().copied())
        .log(&daemon_log(&base.join("log")))
        .patience(Duration::from_secs(20))
        .without_census()
        .start()
}

trait NonBlock {
    fn custom_nonblock(&mut self) -> &mut Self;
}
impl NonBlock for fs::OpenOptions {
    fn custom_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

/// The floor: read requests, open, unlink and write each reply FIFO, with
/// a fixed answer and no lookup. One thread, no hand-off, in a process of
/// its own as the daemon is (this program run with `--floor-server`), so
/// that both are scheduled alike and their CPU time is counted alike.
struct Floor {
    child: Guarded,
    dir: PathBuf,
}

impl Floor {
    /// `checked`: open the reply FIFO with the daemon's safety checks
    /// (ReplyFifo::open) instead of a plain open and unlink, to show what
    /// the hardening costs.
    fn start(base: &Path, checked: bool) -> Floor {
        let dir = base.to_path_buf();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.arg("--floor-server")
            .arg(&dir)
            .arg(if checked { "checked" } else { "plain" })
            .stdout(Stdio::piped());
        // It goes when the benchmark goes, even when that is killed.
        let mut child = Guarded::spawn(&mut cmd).expect("start the floor server");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "the floor server did not start");
        Floor { child, dir }
    }

    fn fifo_config(&self) -> FifoConfig {
        client_fifo_config(&self.dir.join("inlookup"), &self.dir.join("inquery"))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The floor server's process: serve the FIFOs under `dir` until killed.
fn floor_server(dir: &Path, checked: bool) -> ! {
    let fifodir = dir.join("inlookup");
    fs::create_dir_all(dir.join("inquery")).unwrap();
    // As many FIFOs as the daemon has instances, so that a client does
    // exactly the same work (it counts the instances) for both.
    let fds: Vec<_> = (1..=instances())
        .map(|k| {
            let path = fifodir.join(format!("infifo.{k}"));
            fifo::create_server_fifo(&path, 0o660, fifo::Owner::default()).unwrap();
            fifo::open_server_fifo(&path).unwrap()
        })
        .collect();
    let reply = Reply::Password(PasswordReply::Found(PwStruct {
        name: b"u1".to_vec(),
        domain: DOMAIN.as_bytes().to_vec(),
        passwd: HASH.as_bytes().to_vec(),
        uid: 555,
        gid: 0,
        gecos: b"Bench User 1".to_vec(),
        dir: format!("/home/mail/L2P/{DOMAIN}/u1").into_bytes(),
        shell: b"524288000".to_vec(),
        inactive: false,
    }))
    .encode()
    .unwrap();
    let dirs = checked.then(|| fifo::ReplyDirs::new([dir.join("inquery")]).unwrap());
    println!("ready");
    let mut buf = Vec::with_capacity(65536);
    loop {
        let mut p: Vec<PollFd> = fds
            .iter()
            .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        if poll(&mut p, PollTimeout::NONE).unwrap_or(0) == 0 {
            continue;
        }
        let ready: Vec<bool> = p
            .iter()
            .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(p);
        buf.clear();
        for (fd, _) in fds.iter().zip(&ready).filter(|(_, r)| **r) {
            let _ = fifo::read_available(fd.as_fd(), &mut buf);
        }
        for frame in frames(&buf) {
            let Frame::Request(r) = frame else { continue };
            if let Some(dirs) = &dirs {
                if let Ok(mut f) = fifo::ReplyFifo::open(&r.reply_path, dirs) {
                    let _ = f.write_now(&reply);
                }
                continue;
            }
            let path = std::ffi::OsStr::from_bytes(&r.reply_path);
            if let Ok(f) = fs::OpenOptions::new()
                .write(true)
                .custom_nonblock()
                .open(path)
            {
                let _ = fs::remove_file(path);
                let _ = nix::unistd::write(&f, &reply);
            }
        }
    }
}

fn ask(fifo: &FifoConfig, q: QueryType, email: &str, ip: &str) -> bool {
    let t = Timeouts {
        read: Duration::from_secs(4),
        write: Duration::from_secs(4),
    };
    match client::inquery(fifo, t, q, email.as_bytes(), ip.as_bytes()) {
        Ok(Reply::Error) | Err(_) => false,
        Ok(_) => true,
    }
}

fn scratch(base: &Path, name: &str) -> PathBuf {
    let d = base.join(format!("indilookup-bench.{}.{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

// ---------------------------------------------------------------------------

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(i) = argv.iter().position(|a| a == "--floor-server") {
        floor_server(Path::new(&argv[i + 1]), argv[i + 2] == "checked");
    }
    let a = args();
    eprintln!("setting up a private MariaDB with {} users", a.users);
    let site = Site::new();
    populate(&site, a.users);
    let server = site.server.clone();
    let users = a.users;
    let mut results: Vec<Figures> = Vec::new();
    let secs = a.seconds;
    let only = |section: &str| a.only.as_deref().is_none_or(|o| o == section);
    if a.auth_tries > 0 && only("auth") {
        let base = &a.fifo_dirs.first().expect("a FIFO directory").1;
        results.extend(auth_timing(&site, base, a.auth_tries));
    }
    let mut notes: Vec<String> = Vec::new();
    let (first_fs, first_base) = a.fifo_dirs.first().expect("a FIFO directory").clone();
    let cluster = |results: &mut Vec<Figures>, notes: &mut Vec<String>| {
        let (figs, n) = cluster_section(secs, first_fs, &first_base);
        results.extend(figs);
        notes.extend(n);
    };
    if a.only.is_some() {
        if a.rss_users > 0 && only("rss") {
            results.extend(rss_run(a.rss_users));
        }
        if only("cluster") {
            cluster(&mut results, &mut notes);
        }
        print_table(&results);
        print_ratios(&results);
        print_notes(&notes);
        write_json(&a.json, &results);
        return;
    }

    for (fs_name, base) in &a.fifo_dirs {
        // The floor, the floor with the daemon's reply-path checks, and the
        // daemon with a warm cache, measured in interleaved rounds so that
        // the load of a shared machine falls on all three alike.
        {
            let floor = Floor::start(&scratch(base, "floor"), false);
            let checked = Floor::start(&scratch(base, "checked"), true);
            let d = daemon(
                &site,
                &scratch(base, "cached"),
                &[("USE_BTREE", "1"), ("INLOOKUP_CACHE_TTL", "3600")],
                &["-c", "86400"],
            );
            // Wait for the pre-cache to load every user.
            let n = wait_cached(&d);
            eprintln!("pre-cached {n} users");
            for &c in &a.clients {
                let load = |cfg: FifoConfig| -> Load {
                    Arc::new(move |_, i| ask(&cfg, QueryType::Password, &user(i, users), ""))
                };
                let mut figs = interleaved(
                    fs_name,
                    c,
                    secs,
                    vec![
                        ("floor", load(floor.fifo_config()), floor.pid(), vec![]),
                        (
                            "floor, checked reply path",
                            load(checked.fifo_config()),
                            checked.pid(),
                            vec![],
                        ),
                        (
                            "daemon cached PWD",
                            load(d.fifo_config()),
                            d.pid(),
                            vec![&server],
                        ),
                    ],
                );
                for f in &figs {
                    eprintln!("{}", row(f));
                }
                results.append(&mut figs);
            }
            let cfg = d.fifo_config();
            results.push(daemon_run(
                "daemon cached USER",
                fs_name,
                16,
                secs,
                &d,
                &server,
                move |_, i| ask(&cfg, QueryType::User, &user(i, users), ""),
            ));
            // A realistic mix: mostly cached passwords and users, some
            // misses, alias and relay queries.
            let cfg = d.fifo_config();
            let miss = Arc::new(AtomicU64::new(0));
            results.push(daemon_run(
                "daemon cached mix",
                fs_name,
                16,
                secs,
                &d,
                &server,
                move |_, i| match i % 20 {
                    0 => ask(&cfg, QueryType::Relay, &user(1, users), "192.0.2.1"),
                    1 => ask(&cfg, QueryType::Alias, &format!("sales@{DOMAIN}"), ""),
                    2 => {
                        let n = miss.fetch_add(1, Ordering::Relaxed);
                        ask(&cfg, QueryType::User, &format!("nobody{n}@{DOMAIN}"), "")
                    }
                    3..=9 => ask(&cfg, QueryType::User, &user(i * 7919, users), ""),
                    _ => ask(&cfg, QueryType::Password, &user(i * 7919, users), ""),
                },
            ));
            // Unique addresses: every query a miss.
            let cfg = d.fifo_config();
            let n = Arc::new(AtomicU64::new(0));
            results.push(daemon_run(
                "daemon cache miss PWD",
                fs_name,
                16,
                secs,
                &d,
                &server,
                move |_, _| {
                    let k = n.fetch_add(1, Ordering::Relaxed);
                    ask(&cfg, QueryType::Password, &format!("miss{k}@{DOMAIN}"), "")
                },
            ));
        }
        // The daemon without its cache.
        {
            let d = daemon(&site, &scratch(base, "uncached"), &[], &["--workers", "16"]);
            for &c in &a.clients {
                let cfg = d.fifo_config();
                results.push(daemon_run(
                    "daemon uncached PWD",
                    fs_name,
                    c,
                    secs,
                    &d,
                    &server,
                    move |_, i| ask(&cfg, QueryType::Password, &user(i * 7919, users), ""),
                ));
            }
            for (name, q) in [
                ("USER", QueryType::User),
                ("HOST", QueryType::Host),
                ("ALIAS", QueryType::Alias),
                ("LIMIT", QueryType::Limit),
                ("RELAY", QueryType::Relay),
                ("DOMAIN", QueryType::Domain),
            ] {
                let cfg = d.fifo_config();
                results.push(daemon_run(
                    &format!("daemon uncached {name}"),
                    fs_name,
                    16,
                    secs.min(1.0),
                    &d,
                    &server,
                    move |_, i| {
                        let email = match q {
                            QueryType::Domain => "bench.test".to_string(),
                            QueryType::Alias => format!("sales@{DOMAIN}"),
                            _ => user(i * 7919, users),
                        };
                        ask(&cfg, q, &email, "192.0.2.1")
                    },
                ));
            }
        }
    }
    // Without the daemon (no FIFOs involved).
    let cfg = site.config();
    {
        let cfg = cfg.clone();
        let before = sql_count(&server);
        let (lat, err, el) = run_load(16, secs, move |_, i| {
            let db = Database::new(cfg.mysql.clone(), cfg.lookup.clone(), cfg.paths.clone(), 1);
            db.password(user(i * 7919, users).as_bytes())
                .is_ok_and(|r| r.is_some())
        });
        let mut f = figures("direct, connect per lookup", "-", 16, &lat, err, el);
        f.sql_per_lookup = Some((sql_count(&server) - before) as f64 / lat.len().max(1) as f64);
        results.push(f);
        report_last(&results);
    }
    {
        let dbs: Arc<Vec<Database>> = Arc::new(
            (0..16)
                .map(|_| Database::new(cfg.mysql.clone(), cfg.lookup.clone(), cfg.paths.clone(), 1))
                .collect(),
        );
        let before = sql_count(&server);
        let d2 = dbs.clone();
        let (lat, err, el) = run_load(16, secs, move |t, i| {
            d2[t]
                .password(user(i * 7919, users).as_bytes())
                .is_ok_and(|r| r.is_some())
        });
        let mut f = figures("direct, persistent connection", "-", 16, &lat, err, el);
        f.sql_per_lookup = Some((sql_count(&server) - before) as f64 / lat.len().max(1) as f64);
        results.push(f);
        report_last(&results);
    }
    cluster(&mut results, &mut notes);
    if a.rss_users > 0 {
        for f in rss_run(a.rss_users) {
            eprintln!("{}", row(&f));
            results.push(f);
        }
    }
    print_table(&results);
    print_ratios(&results);
    print_notes(&notes);
    write_json(&a.json, &results);
    eprintln!("figures written to {}", a.json.display());
}

/// Wait until the daemon's pre-cache holds `n` entries (its RSS stops
/// growing and a hit costs no SQL).
/// Wait until the daemon's pre-cache has finished (its log says `cached N
/// records`) and return N.
fn wait_cached(d: &Daemon) -> usize {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let log = d.lines();
        let done = log.iter().rev().find_map(|l| {
            l.strip_prefix("cached ")?
                .strip_suffix(" records")?
                .parse::<usize>()
                .ok()
        });
        if let Some(n) = done {
            return n;
        }
        if log.iter().any(|l| l.contains("pre-cache of users")) {
            panic!("the pre-cache failed:\n{}", log.join("\n"));
        }
        assert!(Instant::now() < deadline, "pre-cache did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn daemon_run(
    scenario: &str,
    fs_name: &str,
    clients: usize,
    secs: f64,
    d: &Daemon,
    server: &Server,
    f: impl Fn(usize, u64) -> bool + Send + Sync + 'static,
) -> Figures {
    let cpu0 = cpu_seconds(d.pid());
    let sql0 = sql_count(server);
    let (lat, err, el) = run_load(clients, secs, f);
    let mut fig = figures(scenario, fs_name, clients, &lat, err, el);
    let q = lat.len().max(1) as f64;
    fig.cpu_us_per_query = Some((cpu_seconds(d.pid()) - cpu0) * 1e6 / q);
    fig.sql_per_lookup = Some((sql_count(server) - sql0) as f64 / q);
    fig.rss_mb = Some(rss_mb(d.pid()));
    eprintln!("{}", row(&fig));
    fig
}

/// A load for `run_load`.
type Load = Arc<dyn Fn(usize, u64) -> bool + Send + Sync>;

/// A contender in an interleaved comparison: its name, its load, the
/// process that answers (for its CPU time and RSS), and the databases it
/// asks, if any.
type Contender<'a> = (&'a str, Load, u32, Vec<&'a Server>);

/// Rounds of an interleaved comparison.
const ROUNDS: usize = 6;

/// Run each contender for `secs` in all, in `ROUNDS` slices taken in turn
/// (the order rotating each round), and give the figures of each, with the
/// answering process's CPU time (and SQL statements, with a database) per
/// query counted over its own slices only.
fn interleaved(
    fs_name: &str,
    clients: usize,
    secs: f64,
    contenders: Vec<Contender<'_>>,
) -> Vec<Figures> {
    let n = contenders.len();
    let mut lat: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut errors = vec![0u64; n];
    let mut elapsed = vec![0f64; n];
    let mut cpu = vec![0f64; n];
    let mut own = vec![0f64; n];
    let mut sql = vec![0u64; n];
    for round in 0..ROUNDS {
        for k in (0..n).map(|k| (k + round) % n) {
            let (_, f, pid, servers) = &contenders[k];
            let (cpu0, sql0) = (cpu_seconds(*pid), sql_total(servers));
            let own0 = cpu_seconds(std::process::id());
            let f = f.clone();
            let (l, e, el) = run_load(clients, secs / ROUNDS as f64, move |t, i| f(t, i));
            cpu[k] += cpu_seconds(*pid) - cpu0;
            own[k] += cpu_seconds(std::process::id()) - own0;
            sql[k] += sql_total(servers) - sql0;
            lat[k].extend(l);
            errors[k] += e;
            elapsed[k] += el;
        }
    }
    contenders
        .iter()
        .enumerate()
        .map(|(k, (name, _, pid, servers))| {
            lat[k].sort_unstable();
            let mut fig = figures(name, fs_name, clients, &lat[k], errors[k], elapsed[k]);
            let q = lat[k].len().max(1) as f64;
            fig.cpu_us_per_query = Some(cpu[k] * 1e6 / q);
            fig.client_cpu_us_per_query = Some(own[k] * 1e6 / q);
            fig.rss_mb = Some(rss_mb(*pid));
            if !servers.is_empty() {
                fig.sql_per_lookup = Some(sql[k] as f64 / q);
            }
            fig
        })
        .collect()
}

/// Wait until the daemon has written the site's hash cost beside its FIFOs.
fn wait_hash_cost(d: &Daemon) -> String {
    let path = d.fifodir.join("hashcost");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(text) = fs::read_to_string(&path) {
            return text.trim().to_string();
        }
        assert!(Instant::now() < deadline, "no {}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One vchkpass run through daemon `d` (fd 3 holds `data`); its wall time in µs.
fn vchkpass(site: &Site, d: &Daemon, data: &[u8]) -> u32 {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    nix::unistd::write(&write, data).unwrap();
    drop(write);
    let fd = read.as_raw_fd();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_indilookup"));
    cmd.args(["vchkpass", "/bin/false"]).env_clear();
    for (k, v) in site.env.iter() {
        cmd.env(k, v);
    }
    cmd.env("QUERY_CACHE", "1")
        .env("INFIFODIR", &d.fifodir)
        .env("FIFOTMPDIR", &d.replydir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only dup2, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let t0 = Instant::now();
    let status = cmd.status().expect("run vchkpass");
    let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
    // The next module (/bin/false) ran: neither user was let in.
    assert_eq!(status.code(), Some(1), "vchkpass: {status}");
    us
}

/// vchkpass through the daemon: a known user with a wrong password, an unknown
/// user, and an unknown user checked at PASSWORD_HASH's cost (a second daemon whose
/// hash-cost file is removed: what clients did before the daemon learnt the
/// site's cost). `tries` runs of each, in interleaved rounds.
fn auth_timing(site: &Site, base: &Path, tries: usize) -> Vec<Figures> {
    // The known user needs a real hash (the others' only has a hash's
    // shape, which verification refuses as malformed at once):
    // `openssl passwd -6 -salt abcdefgh 'x y'`, the cost of the others'.
    site.sql(&format!(
        "INSERT INTO indimail (pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell) \
         VALUES ('timing', '{DOMAIN}', '$6$abcdefgh$DBHYhC5e9gqlBf.3Z3wbjgu4bIcxWcChf9wYe33SpjVigGWUG01VNd81vcmFxwx77OGX3vyc4V3PvuH1q4kkh.', \
         555, 0, 'Timing', '/home/mail/{DOMAIN}/timing', '524288000')"
    ));
    let learnt = daemon(site, &scratch(base, "auth"), &[], &[]);
    let cost = wait_hash_cost(&learnt);
    let before = daemon(site, &scratch(base, "auth-before"), &[], &[]);
    wait_hash_cost(&before);
    fs::remove_file(before.fifodir.join("hashcost")).unwrap();
    eprintln!("vchkpass timing: the site's hashes cost {cost}; {tries} runs each");
    let login = |email: &str| [email.as_bytes(), b"\0wrong password\0\0\x01\0"].concat();
    let known = login(&format!("timing@{DOMAIN}"));
    let unknown = login(&format!("nobody@{DOMAIN}"));
    let contenders: [(&str, &Daemon, &[u8]); 3] = [
        ("vchkpass known user, wrong pw", &learnt, &known),
        ("vchkpass unknown user", &learnt, &unknown),
        ("vchkpass unknown, PASSWORD_HASH", &before, &unknown),
    ];
    let rounds = 10;
    let mut lat: Vec<Vec<u32>> = vec![Vec::new(); contenders.len()];
    let mut elapsed = vec![0f64; contenders.len()];
    for round in 0..rounds {
        for k in (0..contenders.len()).map(|k| (k + round) % contenders.len()) {
            let (_, d, data) = contenders[k];
            let t0 = Instant::now();
            for _ in 0..tries.div_ceil(rounds) {
                lat[k].push(vchkpass(site, d, data));
            }
            elapsed[k] += t0.elapsed().as_secs_f64();
        }
    }
    contenders
        .iter()
        .enumerate()
        .map(|(k, (name, d, _))| {
            lat[k].sort_unstable();
            let ms = |p| percentile(&lat[k], p);
            eprintln!(
                "{name}: p10 {:.3} ms, p25 {:.3}, p50 {:.3}, p75 {:.3}, p90 {:.3}, p99 {:.3}",
                ms(0.10),
                ms(0.25),
                ms(0.50),
                ms(0.75),
                ms(0.90),
                ms(0.99)
            );
            let mut f = figures(name, "-", 1, &lat[k], 0, elapsed[k]);
            f.rss_mb = Some(rss_mb(d.pid()));
            f
        })
        .collect()
}

/// Lines of the daemon's log that contain `text`.
fn log_count(d: &Daemon, text: &str) -> usize {
    d.lines().iter().filter(|l| l.contains(text)).count()
}

/// Send HUP to the daemon and wait until it has emptied its cache and
/// pre-cached again (nothing, once lastauth is empty).
fn hup_and_wait(d: &Daemon) {
    let precached = log_count(d, "cached ");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while log_count(d, "cached ") <= precached {
        assert!(Instant::now() < deadline, "no pre-cache after HUP");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// RSS of a daemon holding `n` pre-cached password entries, on a MariaDB of
/// its own; then after HUP has emptied the cache (with nothing to pre-cache
/// again: lastauth is emptied first); then holding the answers of `n / 5`
/// misses (unknown addresses asked by 16 clients, so the workers made the
/// entries, as a flood of distinct names does), and after HUP again.
fn rss_run(n: usize) -> Vec<Figures> {
    eprintln!("RSS run: loading {n} users");
    let own = OwnServer::start();
    let site = Site::on(&own.server);
    populate(&site, n);
    let base = scratch(Path::new("/dev/shm"), "rss");
    let d = daemon(
        &site,
        &base,
        &[
            ("USE_BTREE", "1"),
            ("INLOOKUP_CACHE_TTL", "3600"),
            // Room for all: the bound is split over shards.
            ("INLOOKUP_CACHE_ENTRIES", &(n + n / 10).to_string()),
        ],
        &["-c", "86400"],
    );
    let empty = rss_mb(d.pid());
    let cached = wait_cached(&d);
    let full = rss_mb(d.pid());
    let per_entry = (full - empty) * 1024.0 * 1024.0 / cached.max(1) as f64;
    site.sql("DELETE FROM lastauth");
    hup_and_wait(&d);
    let after_hup = rss_mb(d.pid());
    let misses = (n / 5).max(1) as u64;
    let next = AtomicU64::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..16 {
            let (cfg, next) = (d.fifo_config(), &next);
            s.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= misses {
                    return;
                }
                // The longest user part there is (40 bytes).
                let user = format!("miss{k:036}");
                ask(&cfg, QueryType::Password, &format!("{user}@{DOMAIN}"), "");
            });
        }
    });
    let filled = rss_mb(d.pid());
    eprintln!(
        "RSS run: {misses} misses in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    hup_and_wait(&d);
    let after_misses_hup = rss_mb(d.pid());
    let row = |scenario: String, rss: f64| Figures {
        scenario,
        fifo_fs: "tmpfs".into(),
        clients: 0,
        rss_mb: Some(rss),
        ..Figures::default()
    };
    vec![
        row(
            format!(
                "daemon RSS, {cached} entries cached (empty: {empty:.0} MB, {per_entry:.0} bytes an entry)"
            ),
            full,
        ),
        row("daemon RSS after HUP emptied the cache".into(), after_hup),
        row(format!("daemon RSS, {misses} misses cached"), filled),
        row("daemon RSS after HUP emptied them".into(), after_misses_hup),
    ]
}

// ---------------------------------------------------------------------------
// Clustered sites: what routing to the user's mailstore costs, and TLS

/// The single-database site's domain (on ms1) and the clustered site's
/// distributed domain (over ms1 and ms2).
const SINGLE_DOMAIN: &str = "single.bench";
const DIST_DOMAIN: &str = "dist.bench";

/// Scenario names of the cluster section, which `print_ratios` looks up.
const SC_SINGLE: &str = "single database, PWD miss";
const SC_CLUSTER: &str = "cluster 2 mailstores, PWD miss";
const SC_TLS: &str = "cluster over TLS, PWD miss";

/// A site made of an environment and a directory for the daemon's FIFOs.
struct EnvSite {
    env: indilookup::config::Env,
    base: PathBuf,
}

impl DaemonSite for EnvSite {
    fn daemon_env(&self) -> &indilookup::config::Env {
        &self.env
    }
    fn daemon_base(&self) -> &Path {
        &self.base
    }
}

/// A control directory (and an empty ASSIGNDIR) under `dir` with `files`,
/// and the environment that names them.
fn env_site(dir: &Path, files: &[(&str, String)], env: &[(&str, String)]) -> EnvSite {
    let control = dir.join("control");
    fs::create_dir_all(&control).unwrap();
    fs::create_dir_all(dir.join("users")).unwrap();
    for (name, text) in files {
        fs::write(control.join(name), text).unwrap();
    }
    let mut pairs: Vec<(String, String)> = vec![
        ("SYSCONFDIR".into(), dir.to_string_lossy().into_owned()),
        ("CONTROLDIR".into(), control.to_string_lossy().into_owned()),
        (
            "ASSIGNDIR".into(),
            dir.join("users").to_string_lossy().into_owned(),
        ),
    ];
    pairs.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    EnvSite {
        env: indilookup::config::Env::from_pairs(pairs),
        base: dir.to_path_buf(),
    }
}

/// The clustered site's control files: central database, host.mysql (ms2),
/// and DIST_DOMAIN over ms1 then ms2; `:ssl` and `use_ssl 1` with TLS.
fn cluster_files(cluster: &Cluster, tls: bool) -> Vec<(&'static str, String)> {
    let ssl = if tls { ":ssl" } else { "" };
    let record = |mdahost: &str, port: u16, pass: &str| {
        format!(
            "domain   {DIST_DOMAIN} 1\nserver   127.0.0.1\nmdahost  {mdahost}\nport     {port}\n\
             use_ssl  {}\ndatabase indimail\nuser     indimail\npass     {pass}\n",
            u8::from(tls)
        )
    };
    vec![
        (
            "host.cntrl",
            format!(
                "127.0.0.1:indimail:{CENTRAL_PASSWORD}:{}{ssl}\n",
                cluster.central().port()
            ),
        ),
        (
            "host.mysql",
            format!(
                "127.0.0.1:indimail:{MS2_PASSWORD}:{}{ssl}\n",
                cluster.ms2().port()
            ),
        ),
        ("hostip", "127.0.0.1\n".into()),
        (
            "mcdinfo",
            [
                record("192.0.2.1", cluster.ms1().port(), MS1_PASSWORD),
                record("192.0.2.2", cluster.ms2().port(), MS2_PASSWORD),
            ]
            .join("\n"),
        ),
    ]
}

/// `n` users of SINGLE_DOMAIN on ms1, and `n` of DIST_DOMAIN, the even
/// ones on ms1 and the odd ones on ms2, with their central routes.
fn populate_cluster(cluster: &Cluster, n: usize) {
    let insert = |server: &TcpServer, table: &str, columns: &str, rows: Vec<String>| {
        let mut conn = server.root_conn(Some(testkit::cluster::DATABASE));
        for chunk in rows.chunks(1000) {
            conn.query_drop(format!(
                "INSERT INTO {table} ({columns}) VALUES {}",
                chunk.join(",")
            ))
            .unwrap();
        }
    };
    let cols = "pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell";
    let row = |i: usize, domain: &str| {
        format!("('u{i}', '{domain}', '{HASH}', 555, 0, 'Bench User {i}', '/home/mail/L2P/{domain}/u{i}', '524288000')")
    };
    insert(
        cluster.ms1(),
        "indimail",
        cols,
        (0..n).map(|i| row(i, SINGLE_DOMAIN)).collect(),
    );
    for (s, server) in [cluster.ms1(), cluster.ms2()].into_iter().enumerate() {
        insert(
            server,
            "indimail",
            cols,
            (s..n).step_by(2).map(|i| row(i, DIST_DOMAIN)).collect(),
        );
    }
    insert(
        cluster.central(),
        "hostcntrl",
        "pw_name, pw_domain, pw_passwd, host",
        (0..n)
            .map(|i| format!("('u{i}', '{DIST_DOMAIN}', 'x', 'ms{}')", i % 2 + 1))
            .collect(),
    );
}

/// PWD for `email`, true when the user was found.
fn ask_found(fifo: &FifoConfig, email: &str) -> bool {
    let t = Timeouts {
        read: Duration::from_secs(4),
        write: Duration::from_secs(4),
    };
    matches!(
        client::inquery(fifo, t, QueryType::Password, email.as_bytes(), b""),
        Ok(Reply::Password(PasswordReply::Found(_)))
    )
}

/// USER for each of the `n` users of `domain`, by 16 threads: the daemon
/// caches each route (and the USER answer), not the PWD answer. A -1 (a
/// clustered site's server busy) is asked again a moment later (the daemon
/// gives a failed load's answer for a while), up to 10 times. Returns
/// the answers of -1 and the users never answered "exists".
fn warm_routes(fifo: &FifoConfig, domain: &str, n: usize) -> (u64, u64) {
    let next = AtomicU64::new(0);
    let bad = AtomicU64::new(0);
    let busy = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                if k >= n {
                    return;
                }
                let t = Timeouts {
                    read: Duration::from_secs(4),
                    write: Duration::from_secs(4),
                };
                let email = format!("u{k}@{domain}");
                let exists = (0..10).any(|attempt| {
                    if attempt > 0 {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    match client::inquery(fifo, t, QueryType::User, email.as_bytes(), b"") {
                        Ok(Reply::User(indilookup::protocol::UserStatus::Active)) => true,
                        _ => {
                            busy.fetch_add(1, Ordering::Relaxed);
                            false
                        }
                    }
                });
                if !exists {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (busy.into_inner(), bad.into_inner())
}

/// Uncached PWD at 16 clients: a single-database site (its database on
/// ms1, over TCP), a clustered site with its users on ms1 and ms2, and the
/// same clustered site over TLS, in interleaved rounds on the same three
/// servers. Every daemon runs with its cache on (so routes are cached, as a
/// site runs it) and is asked each user once: every PWD is a miss, one
/// statement. Returns the figures and notes (TLS not measured, and why).
fn cluster_section(secs: f64, fs_name: &str, base: &Path) -> (Vec<Figures>, Vec<String>) {
    let mut notes = Vec::new();
    // Enough users that no one is asked twice at any plausible rate.
    let n = ((secs * 15_000.0) as usize).max(20_000);
    let certs = std::panic::catch_unwind(TestCerts::new);
    let cluster = match &certs {
        // The servers present a certificate; plain clients are not refused.
        Ok(certs) => Cluster::builder().tls(certs, false).start(),
        Err(_) => Cluster::start(),
    };
    eprintln!("cluster section: loading {n} users on each site");
    populate_cluster(&cluster, n);
    let work = scratch(base, "cluster");
    let single = env_site(
        &work.join("single"),
        &[
            (
                "host.mysql",
                format!(
                    "127.0.0.1:indimail:{MS1_PASSWORD}:{}\n",
                    cluster.ms1().port()
                ),
            ),
            ("hostip", "127.0.0.1\n".into()),
        ],
        &[("REAL_DOMAINS", SINGLE_DOMAIN.into())],
    );
    let plain = env_site(
        &work.join("plain"),
        &cluster_files(&cluster, false),
        &[("REAL_DOMAINS", DIST_DOMAIN.into())],
    );
    let env = [("USE_BTREE", "1")];
    let args = ["--workers", "16"];
    let d_single = daemon(&single, &work.join("single"), &env, &args);
    let d_plain = daemon(&plain, &work.join("plain"), &env, &args);
    let d_tls = match &certs {
        Err(_) => {
            notes.push("TLS: not measured (no test certificates: openssl failed)".into());
            None
        }
        Ok(certs) => {
            let tls = env_site(
                &work.join("tls"),
                &cluster_files(&cluster, true),
                &[
                    ("REAL_DOMAINS", DIST_DOMAIN.into()),
                    (
                        "MYSQL_OPT_SSL_CA",
                        certs.ca().to_string_lossy().into_owned(),
                    ),
                ],
            );
            let started = Daemon::launch(&tls)
                .base(&work.join("tls"))
                .args(["-i", &instances().to_string()])
                .args(args)
                .envs(env)
                .log(&daemon_log(&work.join("tls").join("log")))
                .patience(Duration::from_secs(20))
                .without_census()
                .try_start();
            match started {
                Err(e) => {
                    // The daemon's own words: its line about TLS, else its last.
                    let why = e
                        .lines()
                        .rev()
                        .find(|l| l.contains("TLS") || l.contains("ssl") || l.contains("SSL"))
                        .or_else(|| e.lines().rev().find(|l| !l.trim().is_empty()))
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    notes.push(format!(
                        "TLS: not measured (the daemon did not start: {why})"
                    ));
                    None
                }
                // One lookup first: a daemon that cannot do TLS answers -1.
                Ok(d) if !ask_found(&d.fifo_config(), &format!("u0@{DIST_DOMAIN}")) => {
                    let why = d
                        .lines()
                        .into_iter()
                        .rev()
                        .find(|l| l.contains("TLS") || l.contains("ssl") || l.contains("SSL"))
                        .unwrap_or_else(|| "no reason in its log".into());
                    notes.push(format!(
                        "TLS: not measured (the daemon answers -1 over TLS: {})",
                        why.trim()
                    ));
                    None
                }
                Ok(d) => Some(d),
            }
        }
    };
    let mut sites: Vec<(&str, &Daemon, &str)> = vec![
        (SC_SINGLE, &d_single, SINGLE_DOMAIN),
        (SC_CLUSTER, &d_plain, DIST_DOMAIN),
    ];
    if let Some(d) = &d_tls {
        sites.push((SC_TLS, d, DIST_DOMAIN));
    }
    for (name, d, domain) in &sites {
        let t0 = Instant::now();
        let (busy, bad) = warm_routes(&d.fifo_config(), domain, n);
        eprintln!(
            "{name}: {n} USER lookups to cache the routes in {:.1} s, {busy} answers of -1 (asked again), \
             {bad} users never 'exists'",
            t0.elapsed().as_secs_f64()
        );
        if busy > 0 {
            notes.push(format!(
                "{name}: {busy} of the {n} warm-up USER lookups (16 clients) were answered -1"
            ));
        }
        if bad > 0 {
            notes.push(format!(
                "{name}: {bad} users were never found in the warm-up (their routes are not cached)"
            ));
        }
    }
    let servers: Vec<&Server> = vec![
        cluster.central().server(),
        cluster.ms1().server(),
        cluster.ms2().server(),
    ];
    // Each daemon's own next user: asked once, so never in its cache.
    let repeats: Vec<Arc<AtomicU64>> = sites.iter().map(|_| Arc::default()).collect();
    let contenders: Vec<Contender<'_>> = sites
        .iter()
        .zip(&repeats)
        .map(|((name, d, domain), repeats)| {
            let (cfg, domain, repeats) = (d.fifo_config(), domain.to_string(), repeats.clone());
            let next = AtomicU64::new(0);
            let load: Load = Arc::new(move |_, _| {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n as u64 {
                    repeats.fetch_add(1, Ordering::Relaxed);
                }
                ask_found(&cfg, &format!("u{}@{domain}", k % n as u64))
            });
            (*name, load, d.pid(), servers.clone())
        })
        .collect();
    let figs = interleaved(fs_name, 16, secs, contenders);
    for (f, r) in figs.iter().zip(&repeats) {
        eprintln!("{}", row(f));
        let r = r.load(Ordering::Relaxed);
        if r > 0 {
            notes.push(format!(
                "{}: {r} lookups asked a user a second time (cache hits): give fewer --seconds",
                f.scenario
            ));
        }
    }
    drop(d_tls);
    drop(d_plain);
    drop(d_single);
    let _ = fs::remove_dir_all(&work);
    (figs, notes)
}

fn row(f: &Figures) -> String {
    let opt = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
    format!(
        "{:<32} {:<6} {:>3} {:>9.0} {:>7.3} {:>7.3} {:>7.3} {:>8.3} {:>8} {:>6} {:>7} {:>6}",
        f.scenario,
        f.fifo_fs,
        f.clients,
        f.qps,
        f.p50,
        f.p90,
        f.p99,
        f.max,
        opt(f.cpu_us_per_query, 1),
        opt(f.sql_per_lookup, 2),
        opt(f.rss_mb, 1),
        f.errors
    )
}

fn header() -> String {
    format!(
        "{:<32} {:<6} {:>3} {:>9} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6} {:>7} {:>6}",
        "scenario",
        "fifos",
        "cli",
        "q/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "cpu µs/q",
        "sql/q",
        "RSS MB",
        "errors"
    )
}

fn report_last(results: &[Figures]) {
    if let Some(f) = results.last() {
        eprintln!("{}", row(f));
    }
}

fn print_table(results: &[Figures]) {
    println!("{}", header());
    for f in results {
        println!("{}", row(f));
    }
}

fn find<'a>(
    r: &'a [Figures],
    scenario: &str,
    fs_name: &str,
    clients: usize,
) -> Option<&'a Figures> {
    r.iter()
        .find(|f| f.scenario == scenario && f.fifo_fs == fs_name && f.clients == clients)
}

fn print_ratios(r: &[Figures]) {
    println!();
    let rss =
        |pick: &dyn Fn(&str) -> bool| r.iter().find(|f| pick(&f.scenario)).and_then(|f| f.rss_mb);
    for (what, full, emptied) in [
        (
            "pre-cached entries",
            rss(&|s| s.starts_with("daemon RSS, ") && s.contains("entries cached")),
            rss(&|s| s == "daemon RSS after HUP emptied the cache"),
        ),
        (
            "the answers of misses",
            rss(&|s| s.starts_with("daemon RSS, ") && s.ends_with("misses cached")),
            rss(&|s| s == "daemon RSS after HUP emptied them"),
        ),
    ] {
        if let (Some(full), Some(emptied)) = (full, emptied) {
            println!(
                "daemon RSS after HUP / full of {what}: {emptied:.1} / {full:.1} MB = {:.2}",
                emptied / full
            );
        }
    }
    let p50 = |name: &str| find(r, name, "-", 1).map(|f| f.p50);
    if let (Some(known), Some(unknown), Some(before)) = (
        p50("vchkpass known user, wrong pw"),
        p50("vchkpass unknown user"),
        p50("vchkpass unknown, PASSWORD_HASH"),
    ) {
        println!("vchkpass through the daemon, median time:");
        println!(
            "  unknown user / known user, wrong password          {:.3}",
            unknown / known
        );
        println!(
            "  the same at PASSWORD_HASH's cost (before)         {:.3}",
            before / known
        );
    }
    // The cluster section: its FIFOs are on the first --fifo-dir.
    let miss = |name: &str| r.iter().find(|f| f.scenario == name && f.clients == 16);
    // Users found per second: a -1 is quick, and must not count as an answer.
    let found = |f: &Figures| f.qps * (f.queries - f.errors) as f64 / f.queries.max(1) as f64;
    let failed = |f: &Figures| match f.errors {
        0 => String::new(),
        e => format!(", {e} answers not found or -1"),
    };
    if let (Some(single), Some(cluster)) = (miss(SC_SINGLE), miss(SC_CLUSTER)) {
        println!("uncached PWD, 16 clients, interleaved rounds (users found per second):");
        println!(
            "  cluster/single   {:.3}  (cluster {:.0} q/s, {:.2} sql/q{}; single database {:.0} q/s, {:.2} sql/q{})",
            found(cluster) / found(single),
            found(cluster),
            cluster.sql_per_lookup.unwrap_or(0.0),
            failed(cluster),
            found(single),
            single.sql_per_lookup.unwrap_or(0.0),
            failed(single)
        );
        if let Some(tls) = miss(SC_TLS) {
            println!(
                "  tls/plain        {:.3}  (TLS {:.0} q/s{}; plain TCP {:.0} q/s)",
                found(tls) / found(cluster),
                found(tls),
                failed(tls),
                found(cluster)
            );
        }
    }
    let connect = find(r, "direct, connect per lookup", "-", 16).map(|f| f.qps);
    let persistent = find(r, "direct, persistent connection", "-", 16).map(|f| f.qps);
    for fs_name in ["tmpfs", "ext4"] {
        let floor = find(r, "floor", fs_name, 16).map(|f| f.qps);
        let cached = find(r, "daemon cached PWD", fs_name, 16).map(|f| f.qps);
        let uncached = find(r, "daemon uncached PWD", fs_name, 16).map(|f| f.qps);
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        if floor.is_none() {
            continue;
        }
        println!("FIFOs on {fs_name}, 16 clients:");
        println!(
            "  cached daemon / floor                   {}",
            ratio(cached, floor)
        );
        let checked = find(r, "floor, checked reply path", fs_name, 16).map(|f| f.qps);
        println!(
            "  cached daemon / checked floor           {}",
            ratio(cached, checked)
        );
        println!(
            "  checked floor / floor                   {}",
            ratio(checked, floor)
        );
        println!(
            "  cached daemon / connect-per-lookup      {}",
            ratio(cached, connect)
        );
        println!(
            "  uncached daemon / connect-per-lookup    {}",
            ratio(uncached, connect)
        );
        println!(
            "  uncached daemon / persistent direct     {}",
            ratio(uncached, persistent)
        );
        let us = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        let cpu = |name: &str| find(r, name, fs_name, 16).and_then(|f| f.cpu_us_per_query);
        println!(
            "  CPU µs/query, server: floor {}, checked floor {}, cached daemon {}; clients {}",
            us(cpu("floor")),
            us(cpu("floor, checked reply path")),
            us(cpu("daemon cached PWD")),
            us(find(r, "daemon cached PWD", fs_name, 16).and_then(|f| f.client_cpu_us_per_query)),
        );
    }
}

fn print_notes(notes: &[String]) {
    for n in notes {
        println!("{n}");
    }
}

fn write_json(path: &Path, r: &[Figures]) {
    let rows: Vec<serde_json::Value> = r
        .iter()
        .map(|f| {
            serde_json::json!({
                "scenario": f.scenario,
                "fifo_fs": f.fifo_fs,
                "clients": f.clients,
                "queries": f.queries,
                "errors": f.errors,
                "qps": f.qps,
                "p50_ms": f.p50,
                "p90_ms": f.p90,
                "p99_ms": f.p99,
                "max_ms": f.max,
                "cpu_us_per_query": f.cpu_us_per_query,
                "sql_per_lookup": f.sql_per_lookup,
                "rss_mb": f.rss_mb,
                "client_cpu_us_per_query": f.client_cpu_us_per_query,
            })
        })
        .collect();
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    fs::write(path, serde_json::to_string_pretty(&rows).unwrap() + "\n").unwrap();
}
