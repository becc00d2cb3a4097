//! The soak run: the real daemon under steady mixed load for a long time,
//! with HUPs, data changes and a MariaDB restart, and every answer checked.
//!
//! usage: soak [--seconds N] [--clients N] [--hup-every S] [--restart-at S|none]
//!             [--down S] [--grace S] [--users N] [--daemon PATH] [--fifo-dir DIR]
//!             [--json PATH] [--cluster]
//!
//! It starts a private MariaDB (as the integration tests do), loads a site
//! whose every answer it can work out itself, and runs `indilookup inlookup`
//! (four FIFOs, cache on, pre-cache on). Then, for `--seconds`:
//! * `--clients` threads ask the seven query types through the library's
//!   inquery() (the Remote backend), about existing, inactive, over-quota,
//!   alias-only and absent users, in several spellings;
//! * every `--hup-every` seconds the daemon gets SIGHUP;
//! * between HUPs the data changes: passwords, a gid flag, alias lines, the
//!   SMTP port, domain limits and an alias domain (these must show after the
//!   next HUP), relay rows (at once: RELAY is not cached), and passwords
//!   followed by a flush request (at once after the flush);
//! * at `--restart-at` MariaDB is stopped, and started again `--down`
//!   seconds later.
//!
//! Each answer is compared with what the data says, allowing the old or the
//! new value of a changed item only while the change is on its way (between
//! the change and the HUP or flush that must make it visible). An answer of
//! -1 (temporary failure) is accepted only from the stop of MariaDB until
//! `--grace` seconds after it is back. The daemon's RSS and descriptor count
//! are sampled every 2 seconds.
//!
//! With `--cluster` the site is clustered instead (three private MariaDB on
//! loopback ports: a central database and mailstores ms1 and ms2): users of
//! a distributed domain spread over both mailstores, a non-distributed
//! domain on ms2, the data changes made on each user's own mailstore, and
//! ms1 restarted instead of the one database. Then -1 is accepted only for
//! the answers that need ms1, inside the window: ms2's users must be
//! answered right all along.
//!
//! Exit status 1 (and the reasons printed) on: a wrong answer, a temporary
//! failure outside the window, a request with no answer within its deadline
//! (10 s), any other client error, the daemon dying or not exiting 0 on
//! TERM, a HUP or flush that is not carried out, reply FIFOs left behind,
//! more descriptors at the end (idle) than at the peak of the warm-up, or an
//! RSS at the end above 1.5 times the RSS at the end of the warm-up (the
//! first quarter of the run, at most 60 s). Exit status 2: it could not set
//! up.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use indilookup::client::{self, ClientError};
use indilookup::config::{FifoConfig, Timeouts};
use indilookup::db::gid;
use indilookup::fuzz::Rng;
use indilookup::protocol::{
    PasswordReply, PwStruct, QueryType, RelayStatus, Reply, UserStatus, VLimits,
};
use indilookup::query::{Backend, QueryError, Remote};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use testkit::process::{built_indilookup, open_fds, reply_fifos, rss_kib};
use testkit::{Cluster, DaemonSite, OwnServer, Server, Site, TcpServer};

const DOMAIN: &str = "soak.test";
/// An alias domain of DOMAIN through the aliasdomain table, for the whole run.
const ALIAS_DOMAIN: &str = "alias.soak";
/// An alias domain of DOMAIN whose aliasdomain row comes and goes.
const MOVED_DOMAIN: &str = "moved.soak";
/// Listed in rcpthosts only: its own real domain.
const RCPT_DOMAIN: &str = "rcpt.soak";
const HOST_IP: &str = "192.0.2.7";
/// The port a smtp_port row gives (without the row: 25).
const ROW_PORT: i64 = 2525;
/// An IP no relay row has.
const STRANGER_IP: &str = "198.51.100.9";
/// Users whose password changes before a HUP, before a flush request, and
/// whose relay row changes; alias-only addresses.
const ROTATED: usize = 4;
const FLUSHED: usize = 4;
const RELAYED: usize = 4;
const LISTS: usize = 20;
/// How long a client waits for one answer (the inquery() deadline is the
/// read plus the write timeout).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many wrong answers are shown in full.
const SHOW_WRONG: usize = 20;

/// `--cluster`: the domains of the clustered site. DIST is spread over ms1
/// and ms2 by the central database; PLAIN lives on ms2 alone.
const DIST: &str = "dist.soak";
const PLAIN: &str = "plain.soak";
/// The mailstores' mail hosts (host_table, mcdinfo's mdahost) and hostids.
const MS_IP: [&str; 2] = ["192.0.2.1", "192.0.2.2"];
const MS_ID: [&str; 2] = ["ms1", "ms2"];
/// The SMTP port of DIST on each mailstore (a smtp_port row for ms2 only).
const MS_PORT: [u16; 2] = [25, 209];
/// maxpopaccounts of the fixed domain limits on ms2: each mailstore's rows
/// differ, so that an answer from the wrong one shows.
const MS2_DIST_MAXPOP: i64 = 2000;
const PLAIN_MAXPOP: i64 = 3000;
/// The mailstore the clustered run restarts (ms1).
const RESTARTED: usize = 0;

/// Whether this run is `--cluster`; set once, before anything asks.
static CLUSTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
/// `--push`: changes are due a second after their commit, not at a HUP or
/// a flush.
static PUSH: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// With push invalidation, how long after its commit a change must be seen.
const PUSH_DEADLINE: Duration = Duration::from_secs(1);

fn clustered() -> bool {
    CLUSTERED.get().copied().unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Options

struct Args {
    seconds: f64,
    clients: usize,
    hup_every: f64,
    restart_at: Option<f64>,
    down: f64,
    grace: f64,
    users: usize,
    daemon: Option<PathBuf>,
    fifo_dir: Option<PathBuf>,
    json: Option<PathBuf>,
    cluster: bool,
    push: bool,
}

const USAGE: &str = "usage: soak [options]

  --seconds N      length of the run [600]
  --clients N      client threads [16]
  --hup-every S    SIGHUP the daemon every S seconds [30]
  --restart-at S   stop MariaDB S seconds into the run, `none` for never
                   [half the run]
  --down S         how long MariaDB stays stopped [5]
  --grace S        temporary failures are accepted until S seconds after
                   MariaDB is back [5]
  --users N        ordinary users in the database [2000]
  --daemon PATH    the indilookup executable [next to this program's
                   directory: target/<profile>/indilookup]
  --fifo-dir DIR   where the FIFOs go [/dev/shm when it exists, else /tmp]
  --json PATH      also write the figures as JSON
  --cluster        a clustered site: central, ms1 and ms2; ms1 is the
                   server restarted (--restart-at, --down, --grace)
  --push           push invalidation: MariaDB with a ROW binlog, the daemon
                   follows it (INLOOKUP_BINLOG=1) with hour-long cache
                   lifetimes, and no HUP or flush is sent: every change must
                   be seen within a second of its commit (--hup-every only
                   paces the changes)
  --help           this text

Exit status: 0 when every check held, 1 when one did not, 2 when the run
could not be set up.
";

fn usage_error(msg: &str) -> ! {
    eprintln!("soak: {msg}\n\n{USAGE}");
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        seconds: 600.0,
        clients: 16,
        hup_every: 30.0,
        restart_at: None,
        down: 5.0,
        grace: 5.0,
        users: 2000,
        daemon: None,
        fifo_dir: None,
        json: None,
        cluster: false,
        push: false,
    };
    let mut restart: Option<String> = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--help" || arg == "-h" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        if arg == "--cluster" {
            a.cluster = true;
            continue;
        }
        if arg == "--push" {
            a.push = true;
            continue;
        }
        let val = it
            .next()
            .unwrap_or_else(|| usage_error(&format!("{arg} needs a value")));
        let num = |v: &str| -> f64 {
            v.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .unwrap_or_else(|| usage_error(&format!("{arg}: {v:?} is not a number")))
        };
        match arg.as_str() {
            "--seconds" => a.seconds = num(&val),
            "--clients" => a.clients = num(&val) as usize,
            "--hup-every" => a.hup_every = num(&val),
            "--restart-at" => restart = Some(val),
            "--down" => a.down = num(&val),
            "--grace" => a.grace = num(&val),
            "--users" => a.users = num(&val) as usize,
            "--daemon" => a.daemon = Some(PathBuf::from(val)),
            "--fifo-dir" => a.fifo_dir = Some(PathBuf::from(val)),
            "--json" => a.json = Some(PathBuf::from(val)),
            _ => usage_error(&format!("unknown option {arg}")),
        }
    }
    if a.push && a.cluster {
        usage_error("--push runs on a single database: leave out --cluster");
    }
    if a.clients == 0 || a.users < 20 || a.hup_every < 1.0 || a.seconds < 1.0 {
        usage_error("--clients must be at least 1, --users 20, --hup-every and --seconds 1");
    }
    a.restart_at = match restart.as_deref() {
        Some("none") => None,
        Some(v) => Some(
            v.parse()
                .unwrap_or_else(|_| usage_error("--restart-at S|none")),
        ),
        None => Some(a.seconds / 2.0),
    };
    a
}

/// The daemon: `--daemon`, else the `indilookup` cargo built beside this program.
fn daemon_path(a: &Args) -> PathBuf {
    a.daemon
        .clone()
        .or_else(built_indilookup)
        .unwrap_or_else(|| {
            eprintln!(
            "soak: no indilookup beside this program: build it (cargo build --bins --examples, \
             with --release for a release run) or give --daemon PATH"
        );
            std::process::exit(2)
        })
}

// ---------------------------------------------------------------------------
// The data and what it says
//
// Ordinary users u0..uN in DOMAIN: some inactive (in indibak), some over
// quota, some with limits of their own, a forward line or a relay row; every
// other one logged in lately (lastauth), so the pre-cache loads them. The
// items that change during the run are cells with a history of values.

fn inactive(i: usize) -> bool {
    i % 11 == 3
}
fn over_quota(i: usize) -> bool {
    i % 7 == 2
}
fn own_limits(i: usize) -> bool {
    i % 13 == 5
}
fn forwards(i: usize) -> bool {
    i % 17 == 4
}
/// 0: a live relay row for the user's IP; 1: an expired one; else none.
fn relay_row(i: usize) -> usize {
    i % 5
}
fn user_ip(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}
fn relayed_ip(k: usize) -> String {
    format!("192.0.2.{}", 10 + k)
}
fn list_lines(j: usize, users: usize) -> Vec<String> {
    (0..j % 3 + 1)
        .map(|k| format!("&u{}@{DOMAIN}", (j * 7 + k) % users))
        .collect()
}

/// What changes during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Cell {
    /// Password version of rot<k>: visible after the next HUP.
    Rotated(usize),
    /// Password version of fl<k>: visible after the flush request.
    Flushed(usize),
    /// 1 when ry<k>'s relay row is live: visible at once.
    Relayed(usize),
    /// 1 when `flip` has the over-quota gid flag.
    Flip,
    /// Number of alias lines of `hotlist` (0 to 3).
    HotList,
    /// The SMTP port of DOMAIN (a smtp_port row, or 25 without it).
    Port,
    /// maxpopaccounts of DOMAIN's limits.
    MaxPop,
    /// 1 when MOVED_DOMAIN is an alias domain of DOMAIN.
    Moved,
}

const INITIAL: &[(Cell, i64)] = &[
    (Cell::Rotated(0), 0),
    (Cell::Rotated(1), 0),
    (Cell::Rotated(2), 0),
    (Cell::Rotated(3), 0),
    (Cell::Flushed(0), 0),
    (Cell::Flushed(1), 0),
    (Cell::Flushed(2), 0),
    (Cell::Flushed(3), 0),
    (Cell::Relayed(0), 1),
    (Cell::Relayed(1), 0),
    (Cell::Relayed(2), 1),
    (Cell::Relayed(3), 0),
    (Cell::Flip, 0),
    (Cell::HotList, 1),
    (Cell::Port, 25),
    (Cell::MaxPop, 1000),
    (Cell::Moved, 1),
];

/// One value of a cell: since when it may be seen (the change began) and
/// since when it must be seen (the HUP, flush or commit that settles it).
#[derive(Clone, Copy)]
struct Change {
    value: i64,
    begun: Instant,
    settled: Option<Instant>,
}

/// Every cell's history.
struct Timeline {
    cells: RwLock<HashMap<Cell, Vec<Change>>>,
}

impl Timeline {
    fn new(t0: Instant) -> Timeline {
        let cells = INITIAL
            .iter()
            .map(|&(c, value)| {
                (
                    c,
                    vec![Change {
                        value,
                        begun: t0,
                        settled: Some(t0),
                    }],
                )
            })
            .collect();
        Timeline {
            cells: RwLock::new(cells),
        }
    }

    fn current(&self, c: Cell) -> i64 {
        self.cells.read().unwrap()[&c].last().unwrap().value
    }

    /// Record a change about to be made; returns its index for `settle`.
    fn begin(&self, c: Cell, value: i64) -> usize {
        let mut cells = self.cells.write().unwrap();
        let h = cells.get_mut(&c).unwrap();
        h.push(Change {
            value,
            begun: Instant::now(),
            settled: None,
        });
        h.len() - 1
    }

    fn settle(&self, c: Cell, index: usize, at: Instant) {
        self.cells.write().unwrap().get_mut(&c).unwrap()[index].settled = Some(at);
    }

    /// The values an answer to a query running from `start` to `end` may
    /// reflect: from the last one settled before it started to the last one
    /// begun before it ended.
    fn acceptable(&self, c: Cell, start: Instant, end: Instant) -> Vec<i64> {
        let cells = self.cells.read().unwrap();
        let h = &cells[&c];
        let lo = h
            .iter()
            .rposition(|ch| ch.settled.is_some_and(|t| t <= start))
            .unwrap_or(0);
        let hi = h
            .iter()
            .rposition(|ch| ch.begun <= end)
            .unwrap_or(0)
            .max(lo);
        let mut v: Vec<i64> = h[lo..=hi].iter().map(|ch| ch.value).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Who a query is about.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    User(usize),
    Rotated(usize),
    Flushed(usize),
    Relayed(usize),
    Flip,
    List(usize),
    HotList,
    Nobody(u64),
}

/// How the address is spelled.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Spelling {
    Plain,
    /// The whole address in capitals.
    Upper,
    /// No domain: DEFAULT_DOMAIN (DOMAIN) applies.
    Bare,
    /// In ALIAS_DOMAIN.
    Alias,
    /// In MOVED_DOMAIN.
    Moved,
}

/// The subject of a DOMAIN query or of a LIMIT query for a bare domain.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DomainName {
    Main,
    MainUpper,
    Alias,
    Moved,
    Rcpt,
    Unknown(u64),
}

#[derive(Debug, Clone)]
struct Ask {
    qtype: QueryType,
    subject: Subject,
    email: String,
    ip: String,
}

#[derive(Debug, Clone, Copy)]
enum Subject {
    Address(Who, Spelling),
    Domain(DomainName),
}

fn name_of(who: Who) -> String {
    match who {
        Who::User(i) => format!("u{i}"),
        Who::Rotated(k) => format!("rot{k}"),
        Who::Flushed(k) => format!("fl{k}"),
        Who::Relayed(k) => format!("ry{k}"),
        Who::Flip => "flip".into(),
        Who::List(j) => format!("list{j}"),
        Who::HotList => "hotlist".into(),
        Who::Nobody(k) => format!("nobody{k}"),
    }
}

fn address(who: Who, sp: Spelling) -> String {
    let name = name_of(who);
    match sp {
        Spelling::Plain => format!("{name}@{DOMAIN}"),
        Spelling::Upper => format!("{name}@{DOMAIN}").to_ascii_uppercase(),
        Spelling::Bare => name,
        Spelling::Alias => format!("{name}@{ALIAS_DOMAIN}"),
        Spelling::Moved => format!("{name}@{MOVED_DOMAIN}"),
    }
}

fn domain_text(d: DomainName) -> String {
    match d {
        DomainName::Main if clustered() => DIST.into(),
        DomainName::Rcpt if clustered() => PLAIN.into(),
        DomainName::Main => DOMAIN.into(),
        DomainName::MainUpper => DOMAIN.to_ascii_uppercase(),
        DomainName::Alias => ALIAS_DOMAIN.into(),
        DomainName::Moved => MOVED_DOMAIN.into(),
        DomainName::Rcpt => RCPT_DOMAIN.into(),
        DomainName::Unknown(k) => format!("unknown{k}.test"),
    }
}

/// A user's row as the database holds it.
struct Row {
    name: String,
    passwd: String,
    uid: u32,
    gid: u32,
    gecos: String,
    dir: String,
    shell: String,
    inactive: bool,
}

fn hot_row(name: String, passwd: String, gid: u32) -> Row {
    Row {
        gecos: format!("{name} hot"),
        dir: format!("/home/mail/{DOMAIN}/{name}"),
        name,
        passwd,
        uid: 1,
        gid,
        shell: "NOQUOTA".into(),
        inactive: false,
    }
}

fn user_row(i: usize) -> Row {
    Row {
        name: format!("u{i}"),
        passwd: format!("$6$s{i}$h{i}"),
        uid: 1000 + (i % 50) as u32,
        gid: if over_quota(i) { gid::BOUNCE_MAIL } else { 0 },
        gecos: format!("Soak User {i}"),
        dir: format!("/home/mail/{DOMAIN}/u{i}"),
        shell: if i.is_multiple_of(3) {
            "NOQUOTA".into()
        } else {
            format!("{i}000")
        },
        inactive: inactive(i),
    }
}

fn rotated_passwd(k: usize, v: i64) -> String {
    format!("$6$rot{k}$v{v}")
}
fn flushed_passwd(k: usize, v: i64) -> String {
    format!("$6$fl{k}$v{v}")
}

fn domain_limits(maxpop: i64) -> VLimits {
    VLimits {
        maxpopaccounts: maxpop,
        diskquota: 5_000_000,
        disable_relay: 1,
        perm_maillist: 3,
        perm_maillist_users: 2,
        perm_maillist_moderators: 1,
        limit_type: 1,
        ..VLimits::default()
    }
}

fn user_limits(i: usize) -> VLimits {
    VLimits {
        maxpopaccounts: i as i64,
        diskquota: i as u64 * 1000,
        disable_imap: 1,
        limit_type: 2,
        ..VLimits::default()
    }
}

/// The cells an answer depends on, for a query about `s`.
fn cells_of(s: Subject) -> Vec<Cell> {
    let mut v = vec![Cell::Port, Cell::MaxPop];
    match s {
        Subject::Address(who, sp) => {
            if sp == Spelling::Moved {
                v.push(Cell::Moved);
            }
            match who {
                Who::Rotated(k) => v.push(Cell::Rotated(k)),
                Who::Flushed(k) => v.push(Cell::Flushed(k)),
                Who::Relayed(k) => v.push(Cell::Relayed(k)),
                Who::Flip => v.push(Cell::Flip),
                Who::HotList => v.push(Cell::HotList),
                _ => {}
            }
        }
        Subject::Domain(DomainName::Moved) => v.push(Cell::Moved),
        Subject::Domain(_) => {}
    }
    v
}

/// Where an address of the clustered site lives.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Home {
    /// In DIST, routed by a hostcntrl row to mailstore 0 (ms1) or 1 (ms2).
    Dist(usize),
    /// In DIST without a hostcntrl row: absent, and no mailstore is asked.
    NoRoute,
    /// In PLAIN, on ms2.
    Plain,
}

fn home(who: Who) -> Home {
    match who {
        Who::User(i) => match i % 4 {
            3 => Home::Plain,
            1 => Home::Dist(1),
            _ => Home::Dist(0),
        },
        Who::Rotated(k) | Who::Flushed(k) | Who::Relayed(k) => Home::Dist(k % 2),
        Who::Flip => Home::Dist(1),
        Who::List(j) => Home::Dist(j % 2),
        Who::HotList => Home::Dist(0),
        Who::Nobody(k) if k % 2 == 0 => Home::NoRoute,
        Who::Nobody(_) => Home::Plain,
    }
}

fn home_domain(h: Home) -> &'static str {
    match h {
        Home::Plain => PLAIN,
        Home::Dist(_) | Home::NoRoute => DIST,
    }
}

/// The mailstore whose rows hold `who` (rows and rules of the clustered site).
fn store_of(who: Who) -> Option<usize> {
    match home(who) {
        Home::Dist(s) => Some(s),
        Home::Plain => Some(1),
        Home::NoRoute => None,
    }
}

/// The mailstore an answer of the clustered site needs: `None` when the
/// central database (routes, HOST of DIST) or the environment answers.
fn store_needed(ask: &Ask) -> Option<usize> {
    match ask.subject {
        // A bare-domain LIMIT: the domain's first record, else host.mysql (ms2).
        Subject::Domain(d) => match (ask.qtype, d) {
            (QueryType::Limit, DomainName::Main) => Some(0),
            (QueryType::Limit, _) => Some(1),
            _ => None,
        },
        Subject::Address(who, _) => match (ask.qtype, home(who)) {
            (QueryType::Host, Home::Dist(_)) => None,
            _ => store_of(who),
        },
    }
}

/// The domain limits a mailstore of the clustered site holds for `h`.
fn home_limits(h: Home, cell: &dyn Fn(Cell) -> i64) -> VLimits {
    match h {
        Home::Dist(0) => domain_limits(cell(Cell::MaxPop)),
        Home::Dist(_) => domain_limits(MS2_DIST_MAXPOP),
        Home::Plain | Home::NoRoute => domain_limits(PLAIN_MAXPOP),
    }
}

/// A DOMAIN or bare-domain LIMIT answer of the clustered site.
fn expected_cluster_domain(q: QueryType, d: DomainName, cell: &dyn Fn(Cell) -> i64) -> Reply {
    match (q, d) {
        (QueryType::Domain, DomainName::Main) => Reply::Domain(DIST.into()),
        (QueryType::Domain, DomainName::Rcpt) => Reply::Domain(PLAIN.into()),
        (QueryType::Domain, _) => Reply::Domain(domain_text(d).into_bytes()),
        (QueryType::Limit, DomainName::Main) => Reply::Limits(domain_limits(cell(Cell::MaxPop))),
        (QueryType::Limit, DomainName::Rcpt) => Reply::Limits(domain_limits(PLAIN_MAXPOP)),
        (QueryType::Limit, _) => Reply::NotFound,
        (q, _) => unreachable!("{q:?} about a domain"),
    }
}

/// The answer the data gives, the changing cells taken from `cell`.
fn expected(ask: &Ask, users: usize, cell: &dyn Fn(Cell) -> i64) -> Reply {
    let (who, sp) = match ask.subject {
        Subject::Domain(d) if clustered() => return expected_cluster_domain(ask.qtype, d, cell),
        Subject::Domain(d) => {
            let typed = domain_text(d);
            return match (ask.qtype, d) {
                (
                    QueryType::Domain,
                    DomainName::Main | DomainName::MainUpper | DomainName::Alias,
                ) => Reply::Domain(DOMAIN.into()),
                (QueryType::Domain, DomainName::Moved) if cell(Cell::Moved) == 1 => {
                    Reply::Domain(DOMAIN.into())
                }
                (QueryType::Domain, DomainName::Rcpt) => Reply::Domain(RCPT_DOMAIN.into()),
                // Unknown domains are echoed as typed.
                (QueryType::Domain, _) => Reply::Domain(typed.into_bytes()),
                (QueryType::Limit, DomainName::Main | DomainName::MainUpper) => {
                    Reply::Limits(domain_limits(cell(Cell::MaxPop)))
                }
                // Only a limits row of that very name counts.
                (QueryType::Limit, _) => Reply::NotFound,
                (q, _) => unreachable!("{q:?} about a domain"),
            };
        }
        Subject::Address(who, sp) => (who, sp),
    };
    let typed_domain = match sp {
        _ if clustered() => {
            let d = home_domain(home(who));
            if sp == Spelling::Upper {
                d.to_ascii_uppercase()
            } else {
                d.to_string()
            }
        }
        Spelling::Plain | Spelling::Bare => DOMAIN.to_string(),
        Spelling::Upper => DOMAIN.to_ascii_uppercase(),
        Spelling::Alias => ALIAS_DOMAIN.into(),
        Spelling::Moved => MOVED_DOMAIN.into(),
    };
    // Does the domain lead to DOMAIN's users at all?
    let resolves = sp != Spelling::Moved || cell(Cell::Moved) == 1;
    let row = match who {
        _ if !resolves => None,
        Who::User(i) => Some(user_row(i)),
        Who::Rotated(k) => Some(hot_row(
            name_of(who),
            rotated_passwd(k, cell(Cell::Rotated(k))),
            0,
        )),
        Who::Flushed(k) => Some(hot_row(
            name_of(who),
            flushed_passwd(k, cell(Cell::Flushed(k))),
            0,
        )),
        Who::Relayed(k) => Some(hot_row(name_of(who), format!("$6$ry{k}$x"), 0)),
        Who::Flip => Some(hot_row(
            name_of(who),
            "$6$flip$x".into(),
            if cell(Cell::Flip) == 1 {
                gid::BOUNCE_MAIL
            } else {
                0
            },
        )),
        Who::List(_) | Who::HotList | Who::Nobody(_) => None,
    };
    let aliases: Vec<String> = match who {
        _ if !resolves => vec![],
        Who::User(i) if forwards(i) => vec![format!("&u{i}@elsewhere.example")],
        Who::List(j) => list_lines(j, users),
        Who::HotList => (0..cell(Cell::HotList))
            .map(|k| format!("&hot{k}@elsewhere.example"))
            .collect(),
        _ => vec![],
    };
    match ask.qtype {
        QueryType::User => Reply::User(match &row {
            Some(r) if r.inactive => UserStatus::Inactive,
            Some(r) if r.gid & gid::BOUNCE_MAIL != 0 => UserStatus::OverQuota,
            Some(_) => UserStatus::Active,
            None if !aliases.is_empty() => UserStatus::Alias,
            None => UserStatus::Absent,
        }),
        QueryType::Password => Reply::Password(match row {
            Some(r) => PasswordReply::Found(PwStruct {
                name: r.name.into_bytes(),
                domain: typed_domain.into_bytes(),
                passwd: r.passwd.into_bytes(),
                uid: r.uid,
                gid: r.gid,
                gecos: r.gecos.into_bytes(),
                dir: r.dir.into_bytes(),
                shell: r.shell.into_bytes(),
                inactive: r.inactive,
            }),
            None => PasswordReply::NoSuchUser(ask.email.clone().into_bytes()),
        }),
        QueryType::Relay => {
            let live = row.is_some()
                && match who {
                    Who::User(i) => relay_row(i) == 0 && ask.ip == user_ip(i),
                    Who::Relayed(k) => cell(Cell::Relayed(k)) == 1 && ask.ip == relayed_ip(k),
                    _ => false,
                };
            Reply::Relay(if live {
                RelayStatus::Authenticated
            } else {
                RelayStatus::NotAuthenticated
            })
        }
        // DIST: the central database's route, whether the user exists or
        // not; PLAIN: its record's mail host when the user is there.
        QueryType::Host if clustered() => match (home(who), row) {
            (Home::Dist(s), _) => {
                Reply::Host(format!("{typed_domain}:{}:{}", MS_IP[s], MS_PORT[s]).into_bytes())
            }
            (Home::Plain, Some(_)) => {
                Reply::Host(format!("{typed_domain}:{}:25", MS_IP[1]).into_bytes())
            }
            _ => Reply::NotFound,
        },
        QueryType::Host => match row {
            Some(_) => {
                Reply::Host(format!("{typed_domain}:{HOST_IP}:{}", cell(Cell::Port)).into_bytes())
            }
            None => Reply::NotFound,
        },
        QueryType::Alias => Reply::Alias(aliases.into_iter().map(String::into_bytes).collect()),
        // Without an `@` a LIMIT query is about a domain of that name.
        QueryType::Limit if sp == Spelling::Bare => Reply::NotFound,
        QueryType::Limit => match (row, who) {
            (Some(_), Who::User(i)) if own_limits(i) => Reply::Limits(user_limits(i)),
            (Some(_), _) if clustered() => Reply::Limits(home_limits(home(who), cell)),
            (Some(_), _) => Reply::Limits(domain_limits(cell(Cell::MaxPop))),
            (None, _) => Reply::NotFound,
        },
        QueryType::Domain => unreachable!("DOMAIN queries are about domains"),
    }
}

/// A reply in a form where equal answers compare equal: alias lines come in
/// no particular order.
fn canonical(mut r: Reply) -> Reply {
    if let Reply::Alias(lines) = &mut r {
        lines.sort();
    }
    r
}

/// A reply in a line of text (the passwords here are made up: shown).
fn describe(r: &Reply) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match r {
        Reply::Password(PasswordReply::Found(p)) => format!(
            "PWD {}@{} {} uid {} gid {:#x} {:?} {} {} inactive {}",
            text(&p.name),
            text(&p.domain),
            text(&p.passwd),
            p.uid,
            p.gid,
            text(&p.gecos),
            text(&p.dir),
            text(&p.shell),
            p.inactive
        ),
        Reply::Password(PasswordReply::NoSuchUser(e)) => format!("PWD no such user {}", text(e)),
        Reply::Host(h) => format!("HOST {}", text(h)),
        Reply::Domain(d) => format!("DOMAIN {}", text(d)),
        Reply::Alias(lines) => format!(
            "ALIAS [{}]",
            lines.iter().map(|l| text(l)).collect::<Vec<_>>().join(", ")
        ),
        Reply::Limits(l) => format!(
            "LIMITS type {} maxpop {} diskquota {} imap off {}",
            l.limit_type, l.maxpopaccounts, l.diskquota, l.disable_imap
        ),
        other => format!("{other:?}"),
    }
}

/// A reply as a client reads it: encoded by the daemon, decoded by inquery().
fn on_the_wire(q: QueryType, r: Reply) -> Reply {
    let bytes = r.encode().expect("an expected answer that can be sent");
    Reply::decode(q, &bytes).expect("an expected answer that can be read")
}

/// Every answer the data allows for a query that ran from `start` to `end`.
fn allowed(ask: &Ask, users: usize, tl: &Timeline, start: Instant, end: Instant) -> Vec<Reply> {
    let cells = cells_of(ask.subject);
    let choices: Vec<Vec<i64>> = cells
        .iter()
        .map(|&c| tl.acceptable(c, start, end))
        .collect();
    let mut out = Vec::new();
    let mut pick = vec![0usize; cells.len()];
    loop {
        let value = |c: Cell| {
            let i = cells.iter().position(|&x| x == c).unwrap();
            choices[i][pick[i]]
        };
        let r = canonical(on_the_wire(ask.qtype, expected(ask, users, &value)));
        if !out.contains(&r) {
            out.push(r);
        }
        // The next combination.
        let mut i = 0;
        loop {
            if i == pick.len() {
                return out;
            }
            pick[i] += 1;
            if pick[i] < choices[i].len() {
                break;
            }
            pick[i] = 0;
            i += 1;
        }
    }
}

// ---------------------------------------------------------------------------
// The workload

const TYPES: [QueryType; 7] = [
    QueryType::Password,
    QueryType::User,
    QueryType::Relay,
    QueryType::Alias,
    QueryType::Limit,
    QueryType::Host,
    QueryType::Domain,
];
const TYPE_WEIGHTS: [u64; 7] = [30, 25, 10, 10, 10, 10, 5];

fn next_ask(rng: &mut Rng, users: usize, unique: &AtomicU64) -> Ask {
    if clustered() {
        return next_cluster_ask(rng, users, unique);
    }
    let qtype = TYPES[rng.weighted(&TYPE_WEIGHTS)];
    let bare_domain =
        qtype == QueryType::Domain || (qtype == QueryType::Limit && rng.below(5) == 0);
    if bare_domain {
        let d = match rng.below(12) {
            0..=3 => DomainName::Main,
            4 => DomainName::MainUpper,
            5 | 6 => DomainName::Alias,
            7 | 8 => DomainName::Moved,
            9 => DomainName::Rcpt,
            10 => DomainName::Unknown(rng.below(20) as u64),
            _ => DomainName::Unknown(unique.fetch_add(1, Ordering::Relaxed)),
        };
        return Ask {
            qtype,
            subject: Subject::Domain(d),
            email: domain_text(d),
            ip: String::new(),
        };
    }
    let who = match rng.weighted(&[55, 5, 5, 5, 4, 3, 5, 12, 6]) {
        0 => Who::User(rng.below(users)),
        1 => Who::Rotated(rng.below(ROTATED)),
        2 => Who::Flushed(rng.below(FLUSHED)),
        3 => Who::Relayed(rng.below(RELAYED)),
        4 => Who::Flip,
        5 => Who::HotList,
        6 => Who::List(rng.below(LISTS)),
        // Absent addresses: some asked again and again (negative cache
        // hits), some never before.
        7 => Who::Nobody(rng.below(50) as u64),
        _ => Who::Nobody(1_000_000 + unique.fetch_add(1, Ordering::Relaxed)),
    };
    let mut sp = match rng.weighted(&[60, 10, 10, 10, 10]) {
        0 => Spelling::Plain,
        1 => Spelling::Upper,
        2 => Spelling::Bare,
        3 => Spelling::Alias,
        _ => Spelling::Moved,
    };
    // A flush request names one address: the spellings in other domains
    // are other cache entries, which only a HUP empties.
    if matches!(who, Who::Flushed(_)) && matches!(sp, Spelling::Alias | Spelling::Moved) {
        sp = Spelling::Plain;
    }
    let ip = match (qtype, who) {
        (QueryType::Relay, Who::User(i)) if rng.below(10) < 7 => user_ip(i),
        (QueryType::Relay, Who::Relayed(k)) if rng.below(10) < 7 => relayed_ip(k),
        (QueryType::Relay, _) => STRANGER_IP.into(),
        _ => String::new(),
    };
    Ask {
        qtype,
        subject: Subject::Address(who, sp),
        email: address(who, sp),
        ip,
    }
}

/// A query of the clustered run: the same people, each in its own domain,
/// spelled plainly or in capitals.
fn next_cluster_ask(rng: &mut Rng, users: usize, unique: &AtomicU64) -> Ask {
    let qtype = TYPES[rng.weighted(&TYPE_WEIGHTS)];
    let bare_domain =
        qtype == QueryType::Domain || (qtype == QueryType::Limit && rng.below(5) == 0);
    if bare_domain {
        let d = match rng.below(10) {
            0..=3 => DomainName::Main,
            4..=6 => DomainName::Rcpt,
            7 | 8 => DomainName::Unknown(rng.below(20) as u64),
            _ => DomainName::Unknown(unique.fetch_add(1, Ordering::Relaxed)),
        };
        return Ask {
            qtype,
            subject: Subject::Domain(d),
            email: domain_text(d),
            ip: String::new(),
        };
    }
    let who = match rng.weighted(&[55, 5, 5, 5, 4, 3, 5, 12, 6]) {
        0 => Who::User(rng.below(users)),
        1 => Who::Rotated(rng.below(ROTATED)),
        2 => Who::Flushed(rng.below(FLUSHED)),
        3 => Who::Relayed(rng.below(RELAYED)),
        4 => Who::Flip,
        5 => Who::HotList,
        6 => Who::List(rng.below(LISTS)),
        7 => Who::Nobody(rng.below(50) as u64),
        _ => Who::Nobody(1_000_000 + unique.fetch_add(1, Ordering::Relaxed)),
    };
    // A flush request names the address as the run sends it: lower case.
    let sp = if rng.below(5) == 0 && !matches!(who, Who::Flushed(_)) {
        Spelling::Upper
    } else {
        Spelling::Plain
    };
    let ip = match (qtype, who) {
        (QueryType::Relay, Who::User(i)) if rng.below(10) < 7 => user_ip(i),
        (QueryType::Relay, Who::Relayed(k)) if rng.below(10) < 7 => relayed_ip(k),
        (QueryType::Relay, _) => STRANGER_IP.into(),
        _ => String::new(),
    };
    let email = format!("{}@{}", name_of(who), home_domain(home(who)));
    Ask {
        qtype,
        subject: Subject::Address(who, sp),
        email: if sp == Spelling::Upper {
            email.to_ascii_uppercase()
        } else {
            email
        },
        ip,
    }
}

fn type_index(q: QueryType) -> usize {
    usize::from(q.as_u8() - 1)
}

fn type_name(q: QueryType) -> &'static str {
    match q {
        QueryType::User => "USER",
        QueryType::Relay => "RELAY",
        QueryType::Password => "PWD",
        QueryType::Host => "HOST",
        QueryType::Alias => "ALIAS",
        QueryType::Limit => "LIMIT",
        QueryType::Domain => "DOMAIN",
    }
}

/// Counters shared by the client threads.
#[derive(Default)]
struct Counts {
    queries: [AtomicU64; 7],
    wrong: [AtomicU64; 7],
    temporary: [AtomicU64; 7],
    hangs: AtomicU64,
    client_errors: AtomicU64,
    /// Answers that showed a changed cell's newest value while an older one
    /// was still allowed, and after it was required: evidence that changes
    /// get through.
    fresh_seen: AtomicU64,
    /// `--cluster`: right answers that needed ms2, given while ms1 was down.
    healthy_in_outage: AtomicU64,
}

fn sum(a: &[AtomicU64; 7]) -> u64 {
    a.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}

/// What the run records besides counters.
#[derive(Default)]
struct Records {
    /// Seconds into the run of every -1 answer, and whether the outage can
    /// explain it (always, but for `--cluster`'s answers that need no ms1).
    temporary_at: Vec<(f64, bool)>,
    wrong: Vec<String>,
    errors: Vec<String>,
}

struct Shared {
    t0: Instant,
    users: usize,
    timeline: Timeline,
    counts: Counts,
    records: Mutex<Records>,
    stop: AtomicBool,
    /// Per client: when its query in flight started (ms into the run + 1),
    /// 0 when idle.
    in_flight: Vec<AtomicU64>,
    unique: AtomicU64,
    /// From the stop of the restarted server until it is back.
    outage: AtomicBool,
}

impl Shared {
    fn secs(&self, t: Instant) -> f64 {
        t.duration_since(self.t0).as_secs_f64()
    }
}

fn client_thread(shared: &Shared, n: usize, fifo: FifoConfig) {
    let remote = Remote {
        fifo,
        timeouts: Timeouts {
            read: CLIENT_TIMEOUT,
            write: CLIENT_TIMEOUT,
        },
        default_domain: Some(DOMAIN.to_string()),
    };
    let mut rng =
        Rng(0x9e37_79b9_7f4a_7c15 ^ ((n as u64 + 1) << 32) ^ u64::from(std::process::id()));
    let c = &shared.counts;
    while !shared.stop.load(Ordering::Relaxed) {
        let ask = next_ask(&mut rng, shared.users, &shared.unique);
        let t = type_index(ask.qtype);
        let start = Instant::now();
        shared.in_flight[n].store(
            start.duration_since(shared.t0).as_millis() as u64 + 1,
            Ordering::Relaxed,
        );
        let answer = remote.ask(ask.qtype, ask.email.as_bytes(), ask.ip.as_bytes());
        let end = Instant::now();
        shared.in_flight[n].store(0, Ordering::Relaxed);
        c.queries[t].fetch_add(1, Ordering::Relaxed);
        match answer {
            Ok(reply) => {
                let got = canonical(reply);
                let ok = allowed(&ask, shared.users, &shared.timeline, start, end);
                if !ok.contains(&got) {
                    c.wrong[t].fetch_add(1, Ordering::Relaxed);
                    let mut r = shared.records.lock().unwrap();
                    if r.wrong.len() < SHOW_WRONG {
                        r.wrong.push(format!(
                            "{:.3}-{:.3} s: {} {:?} ip {:?} ({:?}): got {}, allowed {}",
                            shared.secs(start),
                            shared.secs(end),
                            type_name(ask.qtype),
                            ask.email,
                            ask.ip,
                            ask.subject,
                            describe(&got),
                            ok.iter().map(describe).collect::<Vec<_>>().join(" or ")
                        ));
                    }
                } else {
                    if ok.len() > 1 && ok.last() == Some(&got) {
                        c.fresh_seen.fetch_add(1, Ordering::Relaxed);
                    }
                    if clustered()
                        && store_needed(&ask) == Some(1 - RESTARTED)
                        && shared.outage.load(Ordering::Relaxed)
                    {
                        c.healthy_in_outage.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(QueryError::Server) => {
                c.temporary[t].fetch_add(1, Ordering::Relaxed);
                let excusable = !clustered() || store_needed(&ask) == Some(RESTARTED);
                shared
                    .records
                    .lock()
                    .unwrap()
                    .temporary_at
                    .push((shared.secs(end), excusable));
            }
            Err(QueryError::Remote(ClientError::Timeout(_))) => {
                c.hangs.fetch_add(1, Ordering::Relaxed);
                let mut r = shared.records.lock().unwrap();
                r.errors.push(format!(
                    "{:.3} s: {} {:?}: no answer within {:?}",
                    shared.secs(start),
                    type_name(ask.qtype),
                    ask.email,
                    end - start
                ));
            }
            Err(e) => {
                c.client_errors.fetch_add(1, Ordering::Relaxed);
                let mut r = shared.records.lock().unwrap();
                if r.errors.len() < SHOW_WRONG {
                    r.errors.push(format!(
                        "{:.3} s: {} {:?}: {e}",
                        shared.secs(start),
                        type_name(ask.qtype),
                        ask.email
                    ));
                }
                // A daemon that is gone answers nothing: do not spin.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The site and the daemon

const USER_COLUMNS: &str =
    "pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell";
const LASTAUTH_COLUMNS: &str = "user, domain, service, remote_ip, quota, gecos, timestamp";

fn populate(site: &Site, users: usize) {
    let values = |r: &Row| {
        format!(
            "('{}', '{DOMAIN}', '{}', {}, {}, '{}', '{}', '{}')",
            r.name, r.passwd, r.uid, r.gid, r.gecos, r.dir, r.shell
        )
    };
    let (gone, here): (Vec<Row>, Vec<Row>) = (0..users).map(user_row).partition(|r| r.inactive);
    site.insert_rows("indimail", USER_COLUMNS, here.iter().map(values));
    site.insert_rows("indibak", USER_COLUMNS, gone.iter().map(values));
    site.insert_rows(
        "lastauth",
        LASTAUTH_COLUMNS,
        (0..users)
            .filter(|i| i.is_multiple_of(2) && !inactive(*i))
            .map(|i| format!("('u{i}', '{DOMAIN}', 'imap', '10.0.0.1', 0, 'x', NOW())")),
    );
    site.insert_rows(
        "relay",
        "email, ipaddr, timestamp",
        (0..users).filter_map(|i| {
            let when = match relay_row(i) {
                0 => "UNIX_TIMESTAMP() + 315360000",
                1 => "0",
                _ => return None,
            };
            Some(format!("('u{i}@{DOMAIN}', '{}', {when})", user_ip(i)))
        }),
    );
    site.insert_rows(
        "vlimits",
        "domain, maxpopaccounts, diskquota, disable_imap",
        (0..users).filter(|&i| own_limits(i)).map(|i| {
            let l = user_limits(i);
            format!(
                "('u{i}@{DOMAIN}', {}, {}, {})",
                l.maxpopaccounts, l.diskquota, l.disable_imap
            )
        }),
    );
    site.insert_rows(
        "valias",
        "alias, domain, valias_line",
        (0..users)
            .filter(|&i| forwards(i))
            .map(|i| format!("('u{i}', '{DOMAIN}', '&u{i}@elsewhere.example')")),
    );
    // The users that change.
    let mut hot = Vec::new();
    for k in 0..ROTATED {
        hot.push(hot_row(format!("rot{k}"), rotated_passwd(k, 0), 0));
    }
    for k in 0..FLUSHED {
        hot.push(hot_row(format!("fl{k}"), flushed_passwd(k, 0), 0));
    }
    for k in 0..RELAYED {
        hot.push(hot_row(format!("ry{k}"), format!("$6$ry{k}$x"), 0));
    }
    hot.push(hot_row("flip".into(), "$6$flip$x".into(), 0));
    site.insert_rows("indimail", USER_COLUMNS, hot.iter().map(values));
    site.insert_rows(
        "lastauth",
        LASTAUTH_COLUMNS,
        hot.iter().map(|r| {
            format!(
                "('{}', '{DOMAIN}', 'pop3', '10.0.0.2', 0, 'x', NOW())",
                r.name
            )
        }),
    );
    site.insert_rows(
        "relay",
        "email, ipaddr, timestamp",
        (0..RELAYED).map(|k| {
            let when = if INITIAL.contains(&(Cell::Relayed(k), 1)) {
                "UNIX_TIMESTAMP() + 315360000"
            } else {
                "0"
            };
            format!("('ry{k}@{DOMAIN}', '{}', {when})", relayed_ip(k))
        }),
    );
    site.insert_rows(
        "valias",
        "alias, domain, valias_line",
        (0..LISTS)
            .flat_map(|j| list_lines(j, users).into_iter().map(move |l| (j, l)))
            .map(|(j, line)| format!("('list{j}', '{DOMAIN}', '{line}')"))
            .chain([format!(
                "('hotlist', '{DOMAIN}', '&hot0@elsewhere.example')"
            )]),
    );
    let l = domain_limits(1000);
    site.sql(&format!(
        "INSERT INTO vlimits (domain, maxpopaccounts, diskquota, disable_relay, perm_maillist) \
         VALUES ('{DOMAIN}', {}, {}, {}, {})",
        l.maxpopaccounts,
        l.diskquota,
        l.disable_relay,
        l.perm_maillist | (l.perm_maillist_users << 3) | (l.perm_maillist_moderators << 6)
    ));
    site.sql(&format!(
        "INSERT INTO aliasdomain (alias, domain) VALUES ('{ALIAS_DOMAIN}', '{DOMAIN}'), ('{MOVED_DOMAIN}', '{DOMAIN}')"
    ));
    // The cells start at the values loaded here.
    assert_eq!(INITIAL.iter().find(|c| c.0 == Cell::HotList).unwrap().1, 1);
    assert_eq!(INITIAL.iter().find(|c| c.0 == Cell::Port).unwrap().1, 25);
    assert_eq!(INITIAL.iter().find(|c| c.0 == Cell::Moved).unwrap().1, 1);
    site.domain_dirs(&[DOMAIN]);
    site.control("hostip", HOST_IP);
    site.control("rcpthosts", &format!("{DOMAIN}\n{RCPT_DOMAIN}\n"));
}

/// `INSERT INTO table (columns) VALUES` on a cluster server's database, a
/// thousand rows to a statement.
fn insert_rows(
    server: &TcpServer,
    table: &str,
    columns: &str,
    rows: impl IntoIterator<Item = String>,
) {
    use mysql::prelude::Queryable;
    let rows: Vec<String> = rows.into_iter().collect();
    let mut conn = server.root_conn(Some(testkit::cluster::DATABASE));
    for chunk in rows.chunks(1000) {
        let stmt = format!("INSERT INTO {table} ({columns}) VALUES {}", chunk.join(","));
        conn.query_drop(&stmt)
            .unwrap_or_else(|e| panic!("{e}: {stmt}"));
    }
}

/// A domain's limits row, as `domain_limits(maxpop)` reads it back.
fn domain_limits_row(domain: &str, maxpop: i64) -> String {
    let l = domain_limits(maxpop);
    format!(
        "('{domain}', {}, {}, {}, {})",
        l.maxpopaccounts,
        l.diskquota,
        l.disable_relay,
        l.perm_maillist | (l.perm_maillist_users << 3) | (l.perm_maillist_moderators << 6)
    )
}

/// The clustered site: every user's rows on its own mailstore, a hostcntrl
/// row for everything of DIST but the `nobody`s, and a cluster definition
/// with DIST over ms1 and ms2 and PLAIN on ms2.
fn populate_cluster(cluster: &Cluster, users: usize) {
    let values = |r: &Row, domain: &str| {
        format!(
            "('{}', '{domain}', '{}', {}, {}, '{}', '{}', '{}')",
            r.name, r.passwd, r.uid, r.gid, r.gecos, r.dir, r.shell
        )
    };
    let dom = |who: Who| home_domain(home(who));
    let hot_people: Vec<(Who, Row)> = (0..ROTATED)
        .map(|k| {
            (
                Who::Rotated(k),
                hot_row(format!("rot{k}"), rotated_passwd(k, 0), 0),
            )
        })
        .chain((0..FLUSHED).map(|k| {
            (
                Who::Flushed(k),
                hot_row(format!("fl{k}"), flushed_passwd(k, 0), 0),
            )
        }))
        .chain((0..RELAYED).map(|k| {
            (
                Who::Relayed(k),
                hot_row(format!("ry{k}"), format!("$6$ry{k}$x"), 0),
            )
        }))
        .chain([(Who::Flip, hot_row("flip".into(), "$6$flip$x".into(), 0))])
        .collect();
    for (s, server) in [cluster.ms1(), cluster.ms2()].into_iter().enumerate() {
        let mine: Vec<usize> = (0..users)
            .filter(|&i| store_of(Who::User(i)) == Some(s))
            .collect();
        let row_of = |i: usize| values(&user_row(i), dom(Who::User(i)));
        let (gone, here): (Vec<usize>, Vec<usize>) = mine.iter().partition(|&&i| inactive(i));
        insert_rows(
            server,
            "indimail",
            USER_COLUMNS,
            here.iter().map(|&i| row_of(i)),
        );
        insert_rows(
            server,
            "indibak",
            USER_COLUMNS,
            gone.iter().map(|&i| row_of(i)),
        );
        insert_rows(
            server,
            "lastauth",
            LASTAUTH_COLUMNS,
            mine.iter()
                .filter(|&&i| i.is_multiple_of(2) && !inactive(i))
                .map(|&i| {
                    format!(
                        "('u{i}', '{}', 'imap', '10.0.0.1', 0, 'x', NOW())",
                        dom(Who::User(i))
                    )
                }),
        );
        insert_rows(
            server,
            "relay",
            "email, ipaddr, timestamp",
            mine.iter().filter_map(|&i| {
                let when = match relay_row(i) {
                    0 => "UNIX_TIMESTAMP() + 315360000",
                    1 => "0",
                    _ => return None,
                };
                Some(format!(
                    "('u{i}@{}', '{}', {when})",
                    dom(Who::User(i)),
                    user_ip(i)
                ))
            }),
        );
        let own: Vec<String> = mine
            .iter()
            .filter(|&&i| own_limits(i))
            .map(|&i| {
                let l = user_limits(i);
                format!(
                    "('u{i}@{}', {}, {}, {})",
                    dom(Who::User(i)),
                    l.maxpopaccounts,
                    l.diskquota,
                    l.disable_imap
                )
            })
            .collect();
        insert_rows(
            server,
            "vlimits",
            "domain, maxpopaccounts, diskquota, disable_imap",
            own,
        );
        let mut aliases: Vec<String> = mine
            .iter()
            .filter(|&&i| forwards(i))
            .map(|&i| {
                format!(
                    "('u{i}', '{}', '&u{i}@elsewhere.example')",
                    dom(Who::User(i))
                )
            })
            .collect();
        for j in (0..LISTS).filter(|&j| store_of(Who::List(j)) == Some(s)) {
            for line in list_lines(j, users) {
                aliases.push(format!("('list{j}', '{DIST}', '{line}')"));
            }
        }
        if store_of(Who::HotList) == Some(s) {
            aliases.push(format!("('hotlist', '{DIST}', '&hot0@elsewhere.example')"));
        }
        insert_rows(server, "valias", "alias, domain, valias_line", aliases);
        let hot: Vec<&(Who, Row)> = hot_people
            .iter()
            .filter(|(w, _)| store_of(*w) == Some(s))
            .collect();
        insert_rows(
            server,
            "indimail",
            USER_COLUMNS,
            hot.iter().map(|(_, r)| values(r, DIST)),
        );
        insert_rows(
            server,
            "lastauth",
            LASTAUTH_COLUMNS,
            hot.iter().map(|(_, r)| {
                format!(
                    "('{}', '{DIST}', 'pop3', '10.0.0.2', 0, 'x', NOW())",
                    r.name
                )
            }),
        );
        insert_rows(
            server,
            "relay",
            "email, ipaddr, timestamp",
            (0..RELAYED)
                .filter(|&k| store_of(Who::Relayed(k)) == Some(s))
                .map(|k| {
                    let when = if INITIAL.contains(&(Cell::Relayed(k), 1)) {
                        "UNIX_TIMESTAMP() + 315360000"
                    } else {
                        "0"
                    };
                    format!("('ry{k}@{DIST}', '{}', {when})", relayed_ip(k))
                }),
        );
        let limits = if s == 0 {
            vec![domain_limits_row(DIST, 1000)]
        } else {
            vec![
                domain_limits_row(DIST, MS2_DIST_MAXPOP),
                domain_limits_row(PLAIN, PLAIN_MAXPOP),
            ]
        };
        insert_rows(
            server,
            "vlimits",
            "domain, maxpopaccounts, diskquota, disable_relay, perm_maillist",
            limits,
        );
    }
    // The central routes of everything of DIST (the nobodies have none).
    let routed = (0..users)
        .map(Who::User)
        .chain(hot_people.iter().map(|(w, _)| *w))
        .chain((0..LISTS).map(Who::List))
        .chain([Who::HotList]);
    insert_rows(
        cluster.central(),
        "hostcntrl",
        "pw_name, pw_domain, pw_passwd, host",
        routed.filter_map(|w| match home(w) {
            Home::Dist(s) => Some(format!("('{}', '{DIST}', 'x', '{}')", name_of(w), MS_ID[s])),
            _ => None,
        }),
    );
    insert_rows(
        cluster.central(),
        "smtp_port",
        "host, src_host, domain, port",
        [format!("('{}', '*', '{DIST}', {})", MS_ID[1], MS_PORT[1])],
    );
    assert_eq!(
        INITIAL.iter().find(|c| c.0 == Cell::MaxPop).unwrap().1,
        1000
    );
    assert_eq!(
        MS_IP,
        ["192.0.2.1", "192.0.2.2"],
        "the example's mail hosts"
    );
    // The example's definition, for these domains: DIST on ms1 then ms2,
    // PLAIN on ms2.
    cluster.write_mcdinfo(
        &cluster
            .mcdinfo()
            .replace("dist.example", DIST)
            .replace("plain.example", PLAIN),
    );
}

const INSTANCES: u32 = 4;

/// The HUPs the daemon has carried out, counted from its output.
struct Output {
    hups: Mutex<u64>,
    changed: Condvar,
}

/// The daemon under test, and the HUPs it has carried out.
struct Daemon {
    inner: testkit::Daemon,
    output: Arc<Output>,
}

impl Daemon {
    fn start(path: &Path, site: &dyn DaemonSite, base: &Path, env: &[(&str, &str)]) -> Daemon {
        let output = Arc::new(Output {
            hups: Mutex::new(0),
            changed: Condvar::new(),
        });
        let seen = output.clone();
        let inner = testkit::Daemon::launch(site)
            .exe(path)
            .base(base)
            .args(["-i", &INSTANCES.to_string(), "-c", "86400"])
            .envs(env.iter().copied())
            .log(&base.join("inlookup.log"))
            .patience(Duration::from_secs(30))
            .on_line(move |line| {
                // Logged by the signal loop once the cache is emptied
                // and before the reconfiguration: the HUP has begun.
                if line.contains(", cache flushed (") {
                    *seen.hups.lock().unwrap() += 1;
                    seen.changed.notify_all();
                }
            })
            .try_start()
            .unwrap_or_else(|e| {
                eprintln!("soak: {e}");
                std::process::exit(2)
            });
        Daemon { inner, output }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.inner.pid() as i32)
    }

    fn fifo(&self) -> FifoConfig {
        self.inner.fifo_config()
    }

    /// SIGHUP, then wait until the daemon says it emptied its cache.
    /// Returns when it did, `None` if it did not within 20 s.
    fn hup(&self) -> Option<Instant> {
        let mut n = self.output.hups.lock().unwrap();
        let before = *n;
        kill(self.pid(), Signal::SIGHUP).ok()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while *n == before {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            n = self.output.changed.wait_timeout(n, left).unwrap().0;
        }
        Some(Instant::now())
    }

    fn log_tail(&self, lines: usize) -> String {
        let all = self.inner.lines();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// VmRSS in KiB and the number of open descriptors of `pid`.
fn sample(pid: Pid) -> Option<(u64, u64)> {
    let pid = pid.as_raw() as u32;
    Some((rss_kib(pid)?, open_fds(pid)? as u64))
}

// ---------------------------------------------------------------------------
// The events: HUPs, data changes, the MariaDB restart

/// What the control thread did, for the summary.
#[derive(Default)]
struct Events {
    hups: u64,
    hups_missed: u64,
    hup_changes: u64,
    relay_changes: u64,
    flush_changes: u64,
    flush_failures: Vec<String>,
    /// Seconds into the run: MariaDB asked to stop, and back up.
    down: Option<(f64, Option<f64>)>,
    problems: Vec<String>,
}

/// The domain of the users whose data changes.
fn hot_domain() -> &'static str {
    if clustered() {
        DIST
    } else {
        DOMAIN
    }
}

/// Which of the control thread's databases a cell's rows are in: the one
/// database, or the mailstore of the user it is about.
fn target(c: Cell) -> usize {
    if !clustered() {
        return 0;
    }
    let who = match c {
        Cell::Rotated(k) => Who::Rotated(k),
        Cell::Flushed(k) => Who::Flushed(k),
        Cell::Relayed(k) => Who::Relayed(k),
        Cell::Flip => Who::Flip,
        Cell::HotList => Who::HotList,
        // DIST's limits on ms1.
        Cell::MaxPop | Cell::Port | Cell::Moved => return 0,
    };
    store_of(who).unwrap_or(0)
}

/// The databases of the run.
// One value for the whole run: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Setup {
    Single { own: OwnServer, site: Site },
    Cluster(Cluster),
}

/// The server that the run stops and starts again.
trait Restart {
    fn stop(&mut self);
    fn resume(&mut self);
}

impl Restart for OwnServer {
    fn stop(&mut self) {
        OwnServer::stop(self)
    }
    fn resume(&mut self) {
        OwnServer::resume(self)
    }
}

impl Restart for TcpServer {
    fn stop(&mut self) {
        TcpServer::stop(self)
    }
    fn resume(&mut self) {
        TcpServer::resume(self)
    }
}

struct Control<'a> {
    shared: &'a Shared,
    /// Where the changes are made: a server (as root) and its database.
    targets: &'a [(Server, String)],
    daemon: &'a Daemon,
    /// Changes waiting for the next HUP.
    pending: Vec<(Cell, usize)>,
    /// Push invalidation (`--push`): a change settles at its commit plus
    /// [`PUSH_DEADLINE`]; no HUP, no flush request.
    push: bool,
    round: i64,
    quick_round: i64,
    /// For the random pause between two flush changes.
    pause: u64,
    /// The connections the changes are made on, one per target (again
    /// after a restart).
    conns: Vec<Option<mysql::Conn>>,
    events: Events,
}

impl Control<'_> {
    /// Record and make one change; `None` when the SQL failed.
    fn change(&mut self, c: Cell, value: i64, sql: &str) -> Option<usize> {
        use mysql::prelude::Queryable;
        let t = target(c);
        if self.conns[t].is_none() {
            let (server, db) = &self.targets[t];
            match server.connect(Some(db)) {
                Ok(conn) => self.conns[t] = Some(conn),
                Err(e) => {
                    self.events.problems.push(format!("change {c:?}: {e}"));
                    return None;
                }
            }
        }
        let index = self.shared.timeline.begin(c, value);
        if let Err(e) = self.conns[t].as_mut()?.query_drop(sql) {
            // Whether it took effect is unknown: the value stays possible,
            // and is never required.
            self.conns[t] = None;
            self.events.problems.push(format!("change {c:?}: {e}"));
            return None;
        }
        if self.push {
            // Committed: the binlog must carry it to the daemon within the
            // deadline, with no HUP and no flush.
            self.shared
                .timeline
                .settle(c, index, Instant::now() + PUSH_DEADLINE);
        }
        Some(index)
    }

    /// The changes a HUP must make visible: each cell moves on.
    fn hup_changes(&mut self) {
        let dom = hot_domain();
        let r = self.round;
        self.round += 1;
        let tl = &self.shared.timeline;
        let k = (r as usize) % ROTATED;
        let v = tl.current(Cell::Rotated(k)) + 1;
        let sql = format!(
            "UPDATE indimail SET pw_passwd = '{}' WHERE pw_name = 'rot{k}' AND pw_domain = '{dom}'",
            rotated_passwd(k, v)
        );
        let mut made = vec![(Cell::Rotated(k), v, sql)];
        let flip = 1 - tl.current(Cell::Flip);
        made.push((
            Cell::Flip,
            flip,
            format!(
                "UPDATE indimail SET pw_gid = {} WHERE pw_name = 'flip' AND pw_domain = '{dom}'",
                if flip == 1 { gid::BOUNCE_MAIL } else { 0 }
            ),
        ));
        // 1, 2, 3, 2, 1, 0, 1, ...: one line added or removed at a time.
        let lines = tl.current(Cell::HotList);
        let up = [1, 1, 1, 0, 0, 0][(r as usize) % 6] == 1;
        let (next, sql) = if up && lines < 3 || lines == 0 {
            (
                lines + 1,
                format!(
                    "INSERT INTO valias (alias, domain, valias_line) VALUES ('hotlist', '{dom}', '&hot{lines}@elsewhere.example')"
                ),
            )
        } else {
            (
                lines - 1,
                format!(
                    "DELETE FROM valias WHERE alias = 'hotlist' AND domain = '{dom}' AND valias_line = '&hot{}@elsewhere.example'",
                    lines - 1
                ),
            )
        };
        made.push((Cell::HotList, next, sql));
        let port = tl.current(Cell::Port);
        // The clustered site's ports and alias domains are the central
        // database's, which stays up: only the mailstores' data changes.
        let single = !clustered();
        made.push(if !single {
            (Cell::MaxPop, 0, String::new())
        } else if port == 25 {
            (
                Cell::Port,
                ROW_PORT,
                format!(
                    "INSERT INTO smtp_port (host, src_host, domain, port) VALUES ('{HOST_IP}', '*', '{dom}', {ROW_PORT})"
                ),
            )
        } else {
            (
                Cell::Port,
                25,
                format!("DELETE FROM smtp_port WHERE domain = '{dom}'"),
            )
        });
        let maxpop = tl.current(Cell::MaxPop) + 1;
        made.push((
            Cell::MaxPop,
            maxpop,
            format!("UPDATE vlimits SET maxpopaccounts = {maxpop} WHERE domain = '{dom}'"),
        ));
        // The alias domain goes every other round, and comes back.
        if single && (r % 2 == 0 || tl.current(Cell::Moved) == 0) {
            let moved = 1 - tl.current(Cell::Moved);
            made.push((
                Cell::Moved,
                moved,
                if moved == 1 {
                    format!("INSERT INTO aliasdomain (alias, domain) VALUES ('{MOVED_DOMAIN}', '{dom}')")
                } else {
                    format!("DELETE FROM aliasdomain WHERE alias = '{MOVED_DOMAIN}'")
                },
            ));
        }
        for (c, v, sql) in made {
            if sql.is_empty() {
                continue;
            }
            if let Some(i) = self.change(c, v, &sql) {
                if !self.push {
                    self.pending.push((c, i));
                }
                self.events.hup_changes += 1;
            }
        }
    }

    fn hup(&mut self) {
        if self.push {
            return;
        }
        self.events.hups += 1;
        match self.daemon.hup() {
            Some(at) => {
                for (c, i) in self.pending.drain(..) {
                    self.shared.timeline.settle(c, i, at);
                }
            }
            None => {
                self.events.hups_missed += 1;
                let t = self.shared.secs(Instant::now());
                self.events.problems.push(format!(
                    "{t:.1} s: the daemon did not act on SIGHUP within 20 s"
                ));
            }
        }
    }

    /// A relay row changes (RELAY is not cached: at once), and a password
    /// changes followed by a flush request for that address.
    fn quick_changes(&mut self) {
        let dom = hot_domain();
        let r = self.round_quick();
        let k = (r as usize) % RELAYED;
        let live = 1 - self.shared.timeline.current(Cell::Relayed(k));
        let sql = format!(
            "UPDATE relay SET timestamp = {} WHERE email = 'ry{k}@{dom}'",
            if live == 1 {
                "UNIX_TIMESTAMP() + 315360000"
            } else {
                "0"
            }
        );
        if let Some(i) = self.change(Cell::Relayed(k), live, &sql) {
            self.shared
                .timeline
                .settle(Cell::Relayed(k), i, Instant::now());
            self.events.relay_changes += 1;
        }
        // Twice in a row, a moment apart: the second change comes while
        // clients are loading the answer again after the first flush.
        let k = (r as usize) % FLUSHED;
        self.flush_change(k);
        self.pause = self
            .pause
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_micros((self.pause >> 33) % 30_000));
        self.flush_change(k);
    }

    /// A new password for fl<k>, then a flush request for that address.
    fn flush_change(&mut self, k: usize) {
        let dom = hot_domain();
        let v = self.shared.timeline.current(Cell::Flushed(k)) + 1;
        let sql = format!(
            "UPDATE indimail SET pw_passwd = '{}' WHERE pw_name = 'fl{k}' AND pw_domain = '{dom}'",
            flushed_passwd(k, v)
        );
        let Some(i) = self.change(Cell::Flushed(k), v, &sql) else {
            return;
        };
        self.events.flush_changes += 1;
        if self.push {
            // Settled by the commit (see `change`): no flush request.
            return;
        }
        let t = Timeouts {
            read: CLIENT_TIMEOUT,
            write: CLIENT_TIMEOUT,
        };
        match client::flush(&self.daemon.fifo(), t, format!("fl{k}@{dom}").as_bytes()) {
            Ok(_) => self
                .shared
                .timeline
                .settle(Cell::Flushed(k), i, Instant::now()),
            Err(e) => {
                let at = self.shared.secs(Instant::now());
                self.events
                    .flush_failures
                    .push(format!("{at:.1} s: flush of fl{k}@{dom}: {e}"));
                // Made visible by the next HUP instead.
                self.pending.push((Cell::Flushed(k), i));
            }
        }
    }

    fn round_quick(&mut self) -> i64 {
        self.quick_round += 1;
        self.quick_round
    }
}

/// What the summary calls the server the run restarts.
fn restarted_name() -> &'static str {
    if clustered() {
        "ms1"
    } else {
        "MariaDB"
    }
}

fn control(
    shared: &Shared,
    targets: &[(Server, String)],
    own: &mut (dyn Restart + Send),
    daemon: &Daemon,
    a: &Args,
) -> Events {
    let mut c = Control {
        shared,
        targets,
        daemon,
        pending: Vec::new(),
        push: a.push,
        round: 0,
        quick_round: 0,
        pause: u64::from(std::process::id()),
        conns: targets.iter().map(|_| None).collect(),
        events: Events::default(),
    };
    let end = a.seconds;
    let quick_every = (a.hup_every / 6.0).clamp(1.0, 5.0);
    let mut next_hup = a.hup_every;
    let mut next_changes = a.hup_every / 2.0;
    let mut next_quick = quick_every / 2.0;
    let mut restart = a.restart_at.filter(|&t| t < end);
    let mut resume: Option<f64> = None;
    loop {
        let next = [
            Some(next_hup),
            Some(next_changes),
            Some(next_quick),
            restart,
            resume,
        ]
        .into_iter()
        .flatten()
        .fold(f64::INFINITY, f64::min);
        if next >= end || shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let now = shared.secs(Instant::now());
        if next > now {
            std::thread::sleep(Duration::from_secs_f64(next - now));
        }
        let db_up = resume.is_none();
        if restart == Some(next) {
            restart = None;
            let at = shared.secs(Instant::now());
            c.events.down = Some((at, None));
            eprintln!("[{at:6.1} s] stopping {}", restarted_name());
            c.conns.iter_mut().for_each(|conn| *conn = None);
            shared.outage.store(true, Ordering::SeqCst);
            own.stop();
            resume = Some(shared.secs(Instant::now()) + a.down);
        } else if resume == Some(next) {
            resume = None;
            own.resume();
            shared.outage.store(false, Ordering::SeqCst);
            let at = shared.secs(Instant::now());
            if let Some((_, up)) = &mut c.events.down {
                *up = Some(at);
            }
            eprintln!("[{at:6.1} s] {} is back", restarted_name());
        } else if next == next_hup {
            next_hup += a.hup_every;
            c.hup();
        } else if next == next_changes {
            next_changes += a.hup_every;
            if db_up {
                c.hup_changes();
            }
        } else {
            next_quick += quick_every;
            if db_up {
                c.quick_changes();
            }
        }
    }
    if resume.is_some() {
        own.resume();
        shared.outage.store(false, Ordering::SeqCst);
        let at = shared.secs(Instant::now());
        if let Some((_, up)) = &mut c.events.down {
            *up = Some(at);
        }
    }
    c.events
}

// ---------------------------------------------------------------------------

struct Samples {
    /// (seconds into the run, RSS KiB, descriptors)
    all: Vec<(f64, u64, u64)>,
}

impl Samples {
    fn range(&self, from: f64, to: f64) -> Option<((u64, u64), (u64, u64))> {
        let s: Vec<_> = self
            .all
            .iter()
            .filter(|s| s.0 >= from && s.0 <= to)
            .collect();
        if s.is_empty() {
            return None;
        }
        let rss = (s.iter().map(|s| s.1).min()?, s.iter().map(|s| s.1).max()?);
        let fds = (s.iter().map(|s| s.2).min()?, s.iter().map(|s| s.2).max()?);
        Some((rss, fds))
    }
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

fn main() {
    let a = args();
    let daemon_exe = daemon_path(&a);
    let fifo_base = a.fifo_dir.clone().unwrap_or_else(|| {
        if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        }
    });
    let scratch = fifo_base.join(format!("indilookup-soak.{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).unwrap_or_else(|e| {
        eprintln!("soak: {}: {e}", scratch.display());
        std::process::exit(2)
    });

    CLUSTERED.set(a.cluster).expect("the mode is set once");
    PUSH.set(a.push).expect("the mode is set once");
    let mut setup = if a.cluster {
        eprintln!(
            "soak: starting a central database and two mailstores (ms1, ms2) and loading {} users",
            a.users
        );
        let cluster = Cluster::start();
        populate_cluster(&cluster, a.users);
        Setup::Cluster(cluster)
    } else {
        eprintln!(
            "soak: starting a private MariaDB and loading {} users",
            a.users
        );
        let own = if a.push {
            OwnServer::start_with(&["--log-bin=binlog", "--binlog-format=ROW", "--server-id=1"])
        } else {
            OwnServer::start()
        };
        let site = Site::on(&own.server);
        populate(&site, a.users);
        Setup::Single { own, site }
    };
    let (daemon, targets) = match &setup {
        Setup::Single { site, .. } => (
            Daemon::start(
                &daemon_exe,
                site,
                &scratch,
                if a.push {
                    &[
                        ("DEFAULT_DOMAIN", DOMAIN),
                        ("USE_BTREE", "1"),
                        ("INLOOKUP_BINLOG", "1"),
                        ("INLOOKUP_CACHE_TTL", "3600"),
                        ("INLOOKUP_CACHE_NEGATIVE_TTL", "3600"),
                    ][..]
                } else {
                    &[("DEFAULT_DOMAIN", DOMAIN), ("USE_BTREE", "1")][..]
                },
            ),
            vec![(site.server.clone(), site.db.clone())],
        ),
        Setup::Cluster(cluster) => (
            Daemon::start(
                &daemon_exe,
                cluster,
                &scratch,
                &[
                    ("DEFAULT_DOMAIN", DIST),
                    ("REAL_DOMAINS", &format!("{DIST}:{PLAIN}")),
                    ("USE_BTREE", "1"),
                ],
            ),
            [cluster.ms1(), cluster.ms2()]
                .iter()
                .map(|s| (s.server().clone(), testkit::cluster::DATABASE.to_string()))
                .collect(),
        ),
    };
    let warmup = (a.seconds / 4.0).min(60.0);
    println!(
        "soak: {} s, {} clients, {}, {} restart {}, {} users, daemon {} (pid {})",
        a.seconds,
        a.clients,
        if a.push {
            format!(
                "push invalidation (no HUP, no flush; changes every {} s, due {:?} after their commit)",
                a.hup_every, PUSH_DEADLINE
            )
        } else {
            format!("HUP every {} s", a.hup_every)
        },
        restarted_name(),
        a.restart_at
            .filter(|&t| t < a.seconds)
            .map_or("never".to_string(), |t| format!(
                "at {t} s for {} s",
                a.down
            )),
        a.users,
        daemon_exe.display(),
        daemon.pid()
    );

    let t0 = Instant::now();
    let shared = Arc::new(Shared {
        t0,
        users: a.users,
        timeline: Timeline::new(t0),
        counts: Counts::default(),
        records: Mutex::new(Records::default()),
        stop: AtomicBool::new(false),
        in_flight: (0..a.clients).map(|_| AtomicU64::new(0)).collect(),
        unique: AtomicU64::new(0),
        outage: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..a.clients)
        .map(|n| {
            let (shared, fifo) = (shared.clone(), daemon.fifo());
            std::thread::spawn(move || client_thread(&shared, n, fifo))
        })
        .collect();

    let mut failures: Vec<String> = Vec::new();
    let mut samples = Samples { all: Vec::new() };
    let mut daemon_exit = None;
    let events = std::thread::scope(|scope| {
        let restarted: &mut (dyn Restart + Send) = match &mut setup {
            Setup::Single { own, .. } => own,
            Setup::Cluster(cluster) => cluster.ms1_mut(),
        };
        let ctl = scope.spawn(|| control(&shared, &targets, restarted, &daemon, &a));
        let mut last_report = 0.0;
        let mut last_queries = 0;
        let mut stuck_reported = false;
        loop {
            std::thread::sleep(Duration::from_secs(2));
            let now = shared.secs(Instant::now());
            match sample(daemon.pid()) {
                Some((rss, fds)) => samples.all.push((now, rss, fds)),
                None => {
                    failures.push(format!("{now:.1} s: the daemon is gone"));
                    break;
                }
            }
            // A query in flight for much longer than its own deadline means
            // the client itself is stuck.
            let now_ms = (now * 1000.0) as u64;
            let stuck = shared.in_flight.iter().any(|f| {
                let s = f.load(Ordering::Relaxed);
                s != 0 && now_ms.saturating_sub(s) > 30_000
            });
            if stuck && !stuck_reported {
                stuck_reported = true;
                failures.push(format!("{now:.1} s: a client has waited more than 30 s"));
            }
            if now - last_report >= 10.0 - 1e-6 || now >= a.seconds {
                let c = &shared.counts;
                let q = sum(&c.queries);
                let (rss, fds) = samples.all.last().map_or((0, 0), |s| (s.1, s.2));
                println!(
                    "[{now:6.1} s] queries {q:>9} ({:>6.0} q/s)  wrong {}  temporary {}  hangs {}  errors {}  RSS {}  fds {fds}",
                    (q - last_queries) as f64 / (now - last_report),
                    sum(&c.wrong),
                    sum(&c.temporary),
                    c.hangs.load(Ordering::Relaxed),
                    c.client_errors.load(Ordering::Relaxed),
                    mb(rss),
                );
                last_report = now;
                last_queries = q;
            }
            if now >= a.seconds {
                break;
            }
        }
        shared.stop.store(true, Ordering::SeqCst);
        ctl.join().unwrap()
    });
    for c in clients {
        let _ = c.join();
    }
    let ran = shared.secs(Instant::now());

    // Idle now: what the daemon holds when nobody asks anything.
    std::thread::sleep(Duration::from_secs(2));
    let idle = sample(daemon.pid());
    let leftovers = reply_fifos(&daemon.inner.replydir).len();
    let mut daemon = daemon;
    let _ = kill(daemon.pid(), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon_exit.is_none() && Instant::now() < deadline {
        daemon_exit = daemon.inner.try_exit_status();
        if daemon_exit.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // ---- the verdict
    let c = &shared.counts;
    let records = shared.records.lock().unwrap();
    let wrong = sum(&c.wrong);
    let hangs = c.hangs.load(Ordering::Relaxed);
    let client_errors = c.client_errors.load(Ordering::Relaxed);
    let window = events
        .down
        .map(|(from, to)| (from, to.unwrap_or(ran) + a.grace));
    let in_window = |t: f64| window.is_some_and(|(from, to)| t >= from && t <= to);
    let temp_in: Vec<f64> = records
        .temporary_at
        .iter()
        .filter(|&&(t, excusable)| excusable && in_window(t))
        .map(|&(t, _)| t)
        .collect();
    let temp_out: Vec<f64> = records
        .temporary_at
        .iter()
        .filter(|&&(t, excusable)| !(excusable && in_window(t)))
        .map(|&(t, _)| t)
        .collect();
    if wrong > 0 {
        failures.push(format!("{wrong} wrong answers"));
    }
    if !temp_out.is_empty() && clustered() {
        failures.push(format!(
            "{} temporary failures not caused by ms1's outage: outside the window, or for \
             answers that need no ms1 (first at {:.1} s)",
            temp_out.len(),
            temp_out[0]
        ));
    } else if !temp_out.is_empty() {
        failures.push(format!(
            "{} temporary failures while MariaDB was up (first at {:.1} s)",
            temp_out.len(),
            temp_out[0]
        ));
    }
    if hangs > 0 {
        failures.push(format!(
            "{hangs} requests without an answer within the deadline"
        ));
    }
    if client_errors > 0 {
        failures.push(format!("{client_errors} client errors"));
    }
    failures.extend(events.problems.iter().cloned());
    failures.extend(events.flush_failures.iter().cloned());
    match daemon_exit {
        Some(s) if s.success() => {}
        Some(s) => failures.push(format!("the daemon exited with {s} on TERM")),
        None => failures.push("the daemon did not exit within 20 s of TERM".into()),
    }
    if leftovers > 0 {
        failures.push(format!("{leftovers} reply FIFOs left behind"));
    }
    let warm = samples.range(0.0, warmup);
    let after = samples.range(warmup, ran);
    // The RSS when the warm-up ended: the first sample after it.
    let warm_rss = samples.all.iter().find(|s| s.0 >= warmup).map(|s| s.1);
    let (idle_rss, idle_fds) = idle.unwrap_or((0, 0));
    if let (Some(base), Some(_)) = (warm_rss, idle) {
        if idle_rss as f64 > base as f64 * 1.5 {
            failures.push(format!(
                "RSS grew: {} at the end of the warm-up, {} at the end",
                mb(base),
                mb(idle_rss)
            ));
        }
    }
    if let (Some((_, (_, warm_max))), Some(_)) = (warm, idle) {
        if idle_fds > warm_max {
            failures.push(format!(
                "descriptors grew: at most {warm_max} during the warm-up, {idle_fds} idle at the end"
            ));
        }
    }
    if idle.is_none() && daemon_exit.is_some() {
        failures.push("the daemon was gone before the end".into());
    }

    // ---- the report
    let mut out = String::new();
    let q = sum(&c.queries);
    writeln!(out, "\nsoak summary").unwrap();
    writeln!(
        out,
        "  ran                   {ran:.1} s, {} clients, {q} queries, {:.0} q/s",
        a.clients,
        q as f64 / ran
    )
    .unwrap();
    writeln!(
        out,
        "  {:<8} {:>10} {:>8} {:>10}",
        "type", "queries", "wrong", "temporary"
    )
    .unwrap();
    for qt in QueryType::ALL {
        let i = type_index(qt);
        writeln!(
            out,
            "  {:<8} {:>10} {:>8} {:>10}",
            type_name(qt),
            c.queries[i].load(Ordering::Relaxed),
            c.wrong[i].load(Ordering::Relaxed),
            c.temporary[i].load(Ordering::Relaxed)
        )
        .unwrap();
    }
    writeln!(out, "  wrong answers         {wrong}").unwrap();
    let span = |v: &[f64]| match (v.first(), v.last()) {
        (Some(f), Some(l)) => format!(", from {f:.1} s to {l:.1} s"),
        _ => String::new(),
    };
    if clustered() {
        writeln!(
            out,
            "  temporary failures    {} for answers from ms1 while it was down or coming back{}; {} else{}",
            temp_in.len(),
            span(&temp_in),
            temp_out.len(),
            span(&temp_out)
        )
        .unwrap();
    } else {
        writeln!(
            out,
            "  temporary failures    {} while MariaDB was down or coming back{}; {} outside that{}",
            temp_in.len(),
            span(&temp_in),
            temp_out.len(),
            span(&temp_out)
        )
        .unwrap();
    }
    match events.down {
        Some((from, to)) => writeln!(
            out,
            "  {:<22}stopped at {from:.1} s, back at {}, failures accepted until {:.1} s",
            restarted_name(),
            to.map_or("the end".into(), |t| format!("{t:.1} s")),
            window.map_or(0.0, |w| w.1)
        )
        .unwrap(),
        None => writeln!(out, "  {:<22}not restarted", restarted_name()).unwrap(),
    }
    if clustered() && events.down.is_some() {
        writeln!(
            out,
            "  ms2 while ms1 was down {} right answers that needed ms2",
            c.healthy_in_outage.load(Ordering::Relaxed)
        )
        .unwrap();
    }
    writeln!(out, "  hangs, client errors  {hangs}, {client_errors}").unwrap();
    writeln!(
        out,
        "  HUPs                  {} sent, {} not acted on",
        events.hups, events.hups_missed
    )
    .unwrap();
    if PUSH.get().copied().unwrap_or(false) {
        writeln!(
            out,
            "  data changes          {} and {} passwords, each due {:?} after its commit (no HUP, no flush), {} relay rows",
            events.hup_changes,
            events.flush_changes,
            PUSH_DEADLINE,
            events.relay_changes,
        )
        .unwrap();
    } else {
        writeln!(
            out,
            "  data changes          {} due at a HUP, {} relay rows, {} followed by a flush ({} flushes not answered)",
            events.hup_changes,
            events.relay_changes,
            events.flush_changes,
            events.flush_failures.len()
        )
        .unwrap();
    }
    writeln!(
        out,
        "  new values seen       {} answers showed a change before it was required",
        c.fresh_seen.load(Ordering::Relaxed)
    )
    .unwrap();
    let fmt_range = |r: Option<((u64, u64), (u64, u64))>| match r {
        Some(((rl, rh), (fl, fh))) => format!("RSS {} to {}, fds {fl} to {fh}", mb(rl), mb(rh)),
        None => "no samples".into(),
    };
    writeln!(out, "  warm-up (0-{warmup:.0} s)     {}", fmt_range(warm)).unwrap();
    writeln!(out, "  after the warm-up     {}", fmt_range(after)).unwrap();
    writeln!(
        out,
        "  idle at the end       RSS {}, fds {idle_fds} (RSS limit {}: 1.5 x the RSS when the warm-up ended)",
        mb(idle_rss),
        warm_rss.map_or("-".into(), |b| mb(b * 3 / 2))
    )
    .unwrap();
    if !records.wrong.is_empty() {
        writeln!(out, "  first wrong answers:").unwrap();
        for w in &records.wrong {
            writeln!(out, "    {w}").unwrap();
        }
    }
    if !records.errors.is_empty() {
        writeln!(out, "  first client errors:").unwrap();
        for e in records.errors.iter().take(SHOW_WRONG) {
            writeln!(out, "    {e}").unwrap();
        }
    }
    if failures.is_empty() {
        writeln!(
            out,
            "soak: OK: every answer right, no hang, descriptors and memory stable"
        )
        .unwrap();
    } else {
        writeln!(out, "soak: FAILURE:").unwrap();
        for f in &failures {
            writeln!(out, "  {f}").unwrap();
        }
        writeln!(out, "the daemon's last lines:\n{}", daemon.log_tail(30)).unwrap();
    }
    print!("{out}");
    let _ = std::io::stdout().flush();

    if let Some(path) = &a.json {
        let after_v = after.map(|((rl, rh), (fl, fh))| serde_json::json!({"rss_kib_min": rl, "rss_kib_max": rh, "fds_min": fl, "fds_max": fh}));
        let per_type: serde_json::Map<String, serde_json::Value> = QueryType::ALL
            .iter()
            .map(|&qt| {
                let i = type_index(qt);
                (
                    type_name(qt).to_string(),
                    serde_json::json!({
                        "queries": c.queries[i].load(Ordering::Relaxed),
                        "wrong": c.wrong[i].load(Ordering::Relaxed),
                        "temporary": c.temporary[i].load(Ordering::Relaxed),
                    }),
                )
            })
            .collect();
        let mut v = serde_json::json!({
            "seconds": ran,
            "clients": a.clients,
            "queries": q,
            "wrong": wrong,
            "temporary_in_window": temp_in.len(),
            "temporary_outside_window": temp_out.len(),
            "hangs": hangs,
            "client_errors": client_errors,
            "hups": events.hups,
            "mariadb_down": events.down.map(|(f, t)| serde_json::json!([f, t])),
            "after_warmup": after_v,
            "idle_rss_kib": idle_rss,
            "idle_fds": idle_fds,
            "by_type": per_type,
            "failures": failures,
        });
        if clustered() {
            v["cluster"] = serde_json::json!({
                "restarted": restarted_name(),
                "healthy_right_answers_during_outage": c.healthy_in_outage.load(Ordering::Relaxed),
            });
        }
        if let Err(e) = fs::write(path, serde_json::to_string_pretty(&v).unwrap() + "\n") {
            eprintln!("soak: {}: {e}", path.display());
        }
    }
    drop(records);
    drop(daemon);
    drop(setup);
    let _ = fs::remove_dir_all(&scratch);
    std::process::exit(if failures.is_empty() { 0 } else { 1 });
}
