//! The lookup daemon: one process, any number of server FIFOs, a pool of
//! worker threads sharing one database pool.
//!
//! Threads:
//! * the reader polls every server FIFO, cuts what it reads into requests
//!   (protocol/frames.rs) and queues them;
//! * the workers open the reply FIFO (safely, see fifo/reply.rs), run the lookup
//!   and write the reply;
//! * the thread that called `run` waits for signals (they are blocked in
//!   every thread, so none of our code runs inside a signal handler) and
//!   acts on them in normal code.

pub mod privileges;
mod push;
pub use push::STATUS_FILE as PUSH_STATUS_FILE;
mod stats;
mod unsendable;
mod watch;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};

use crate::config::{Config, Env};
use crate::db::Database;
use crate::fifo::{self, Owner, ReplyDirs, ReplyFifo};
use crate::logline::{Escaped, Throttle};
use crate::protocol::frames::{frames, Frame};
use crate::protocol::{FlushReply, FlushRequest, PasswordReply, QueryType, Reply, Request};
use crate::query::Cached;
use crate::query::{AnswerCache, CacheSettings, Source, Subject};
use nix::unistd::Gid;
use privileges::ServiceUser;
pub use stats::Stats;
use unsendable::Unsendable;

/// Directories reply FIFOs may always be in, besides FIFOTMPDIR: the C
/// client's default and the directory IndiMail's service scripts give
/// courier-imap and the other clients.
pub const DEFAULT_REPLY_DIRS: &[&str] = &["/tmp", "/run/indimail/inquery"];

/// What the daemon is asked to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server FIFOs to create and serve.
    pub fifos: Vec<PathBuf>,
    /// How the start-up lines name each FIFO, as the C daemon did: the INFIFO
    /// value with its instance suffix (`infifo.2`), or the path of a single
    /// FIFO given as a path. `None` = one FIFO at an exact path.
    pub fifo_labels: Option<Vec<String>>,
    /// Mode of the FIFOs (FIFO_MODE, default 0660).
    pub fifo_mode: u32,
    pub owner: Owner,
    /// Worker threads; also the number of database connections.
    pub workers: usize,
    /// Requests waiting for a worker, at most; more are answered -1 at once.
    pub queue: usize,
    /// Extra directories reply FIFOs may be in.
    pub reply_dirs: Vec<PathBuf>,
    /// Per-query log lines from the start (-v, DEBUG).
    pub debug: bool,
    /// Where to re-read the environment from on HUP.
    pub envdir: Option<PathBuf>,
    /// The answer cache; `None` = every query goes to the database.
    pub cache: Option<CacheSettings>,
    /// Pre-cache the password entries of users active in the last this
    /// many seconds (-c); 0 = no pre-cache.
    pub precache_secs: u64,
    /// The user to become once the FIFOs exist (started as root); `None` keeps the user the
    /// daemon was started as.
    pub run_as: Option<ServiceUser>,
}

/// What a worker needs that HUP may replace.
struct Live {
    backend: Arc<Cached>,
    /// The binlog followers (INLOOKUP_BINLOG=1), replaced with the rest by HUP.
    push: Option<push::Push>,
    /// The database behind `backend`, for the daemon's own statements (the
    /// hash-cost census); lookups go through `backend`.
    db: Arc<Database>,
    dirs: ReplyDirs,
}

/// What the readers, the workers and the signal loop share for the daemon's life.
struct DaemonState {
    live: RwLock<Arc<Live>>,
    /// The group of the server FIFOs: reply FIFOs it may write are clients'.
    client_group: Gid,
    /// What the pipe of every server FIFO holds (the kernel's default for a pipe); a writer
    /// that makes it smaller (F_SETPIPE_SZ) is undone.
    pipe_capacity: usize,
    /// A failure to set the pipe capacity back was logged already.
    pipe_warned: AtomicBool,
    /// Outlives HUP (which empties it), so that its counters keep counting.
    cache: Option<AnswerCache>,
    precache_secs: u64,
    stats: Stats,
    /// Which addresses' unsendable password rows were logged (until HUP).
    unsendable: Unsendable,
    /// The warnings a client can cause, and the cache flush lines: at most
    /// a burst of each kind per interval (see logline.rs).
    log_limit: Throttle,
    debug: AtomicBool,
    stop: AtomicBool,
}

enum Job {
    /// A request, what it is about (parsed by the reader) and the name of the FIFO it
    /// came in on (for log lines).
    Query(Request, Option<Subject>, Arc<str>),
    /// An unknown query type: answer -1 on this reply path.
    Reject(Vec<u8>),
    Flush(FlushRequest),
}

/// What the reader found out about a request before it is answered.
enum Prepared {
    /// The answer, from the cache (or "absent" without a lookup).
    Hit(Reply, Source),
    /// A miss: what the request is about, for the lookup.
    Parsed(Option<Subject>),
}

/// Load the environment as the daemon sees it: the process environment, then
/// the envdir if one was given.
pub fn load_env(envdir: Option<&std::path::Path>) -> anyhow::Result<Env> {
    let mut env = Env::from_process();
    if let Some(dir) = envdir {
        env.load_envdir(dir)?;
    }
    Ok(env)
}

/// The directories reply FIFOs are accepted in: FIFOTMPDIR, the defaults, the extra ones.
/// The directories reply FIFOs are accepted in: FIFOTMPDIR, the defaults and the
/// extra ones, each once.
pub fn reply_dirs(config: &Config, settings: &Settings) -> Result<ReplyDirs, fifo::FifoError> {
    let mut dirs: Vec<PathBuf> = vec![config.fifo.fifotmpdir.clone()];
    dirs.extend(DEFAULT_REPLY_DIRS.iter().map(PathBuf::from));
    dirs.extend(settings.reply_dirs.iter().cloned());
    ReplyDirs::new(dirs)
}

fn live_from(
    config: &Config,
    settings: &Settings,
    cache: &Option<AnswerCache>,
    client_group: Gid,
) -> anyhow::Result<Live> {
    // Routes are cached as answers are, for as long.
    let route_policy = settings.cache.map(|c| c.policy);
    let db = Arc::new(Database::for_config(config, settings.workers, route_policy));
    let mut dirs = reply_dirs(config, settings)?;
    dirs.check_existing()?;
    dirs.set_client_group(client_group);
    for fifo in &settings.fifos {
        dirs.forbid(fifo)?;
    }
    let backend = Arc::new(Cached::new(db.clone(), cache.clone()));
    // The followers' server id is derived from the FIFO directory (one per
    // daemon on a host).
    let fifo_dir = settings
        .fifos
        .first()
        .and_then(|f| f.parent())
        .unwrap_or_else(|| std::path::Path::new("/"));
    // The status file goes beside the FIFOs of the service (INFIFODIR), as
    // the hash cost does.
    let status_dir = settings
        .fifo_labels
        .as_ref()
        .and(Some(fifo_dir.to_path_buf()));
    let push = push::Push::start(config, &db, &backend, fifo_dir, status_dir);
    Ok(Live {
        backend,
        push,
        db,
        dirs,
    })
}

/// A served FIFO.
struct Served {
    path: PathBuf,
    fd: OwnedFd,
}

/// Run the daemon until TERM. Returns after the FIFOs are removed.
pub fn run(config: Config, settings: Settings) -> anyhow::Result<()> {
    let signals = handled_signals();
    // Block before any thread starts, so that every thread inherits the mask
    // and the signals wait for `wait_signal` below.
    signals.thread_block()?;

    // Checked before anything is made, as the user the daemon will serve as: a directory
    // that others could change stops the start with a message that says how to fix it.
    let serving = settings
        .run_as
        .as_ref()
        .map_or_else(nix::unistd::geteuid, |u| u.uid);
    reply_dirs(&config, &settings)?
        .serving_as(serving)
        .check_existing()?;

    let mut served = Vec::new();
    for path in &settings.fifos {
        let made = fifo::create_server_fifo(path, settings.fifo_mode, settings.owner)
            .and_then(|()| fifo::open_server_fifo(path));
        match made {
            Ok(fd) => served.push(Served {
                path: path.clone(),
                fd,
            }),
            Err(e) => {
                remove_fifos(&served);
                return Err(e.into());
            }
        }
    }
    let outcome = serve_fifos(config, settings, &served, &signals);
    if outcome.is_err() {
        remove_fifos(&served);
    }
    outcome
}

/// Remove the server FIFOs (at TERM, or when the start failed after making them).
fn remove_fifos(served: &[Served]) {
    for s in served {
        if let Err(e) = fifo::remove_server_fifo(&s.path, s.fd.as_fd()) {
            log::warn!("{e}");
        }
    }
}

/// Serve the FIFOs made by `run` until TERM.
fn serve_fifos(
    config: Config,
    settings: Settings,
    served: &[Served],
    signals: &SigSet,
) -> anyhow::Result<()> {
    let client_group = Gid::from_raw(nix::sys::stat::fstat(served[0].fd.as_raw_fd())?.st_gid);
    let pipe_capacity = fifo::default_pipe_capacity().unwrap_or(DEFAULT_PIPE_CAPACITY);
    // Once the FIFOs exist, root is no longer needed: become the service user before any
    // thread starts.
    if let Some(user) = &settings.run_as {
        user.become_for_good(Some(client_group))?;
    }
    let cache = settings.cache.map(AnswerCache::new);
    let shared = Arc::new(DaemonState {
        live: RwLock::new(Arc::new(live_from(
            &config,
            &settings,
            &cache,
            client_group,
        )?)),
        client_group,
        pipe_capacity,
        pipe_warned: AtomicBool::new(false),
        cache,
        precache_secs: settings.precache_secs,
        stats: Stats::new(),
        unsendable: Unsendable::default(),
        log_limit: Throttle::default(),
        debug: AtomicBool::new(settings.debug),
        stop: AtomicBool::new(false),
    });
    let pid = std::process::id();
    let ppid = nix::unistd::getppid();
    match &settings.fifo_labels {
        None => log::info!("InLookup INFIFO={}", served[0].path.display()),
        Some(labels) => {
            for (k, label) in labels.iter().enumerate() {
                let k = k + 1;
                log::info!("InLookup[{k}] PPID {ppid} PID {pid}");
                log::info!("InLookup[{k}] PPID {ppid} PID {pid} Ready with INFIFO={label}");
            }
        }
    }

    let (tx, rx) = sync_channel::<Job>(settings.queue.max(1));
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = Vec::new();
    for n in 0..settings.workers.max(1) {
        let (shared, rx) = (shared.clone(), rx.clone());
        workers.push(
            thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || worker(&shared, &rx))?,
        );
    }
    let reader = {
        let shared = shared.clone();
        let fds: Vec<OwnedFd> = served
            .iter()
            .map(|s| s.fd.try_clone())
            .collect::<Result<_, _>>()?;
        let names: Vec<String> = served
            .iter()
            .map(|s| s.path.display().to_string())
            .collect();
        thread::Builder::new()
            .name("reader".into())
            .spawn(move || reader(&shared, &fds, &names, &tx))?
    };

    let server_fifos: Vec<(BorrowedFd<'_>, &str)> = served
        .iter()
        .map(|s| (s.fd.as_fd(), s.path.to_str().unwrap_or("server FIFO")))
        .collect();
    keep_pipe_capacity(&shared, &server_fifos);
    precache_in_background(&shared);
    // What a wrong password costs on this site, for vchkpass and authindi:
    // published beside the FIFOs of the service (INFIFODIR/infifo.N), not
    // beside a single FIFO given as a path (inquerytest's private daemon).
    let fifo_dir = settings
        .fifo_labels
        .as_ref()
        .and(served[0].path.parent())
        .map(PathBuf::from);
    let learn_hash_cost = |shared: &DaemonState| {
        if let Some(dir) = &fifo_dir {
            crate::dummy_cost::learn_in_background(shared.current().db.clone(), dir.clone());
        }
    };
    learn_hash_cost(&shared);
    {
        let shared = shared.clone();
        watch::spawn(config.site_files.clone(), move || {
            shared.stop.load(Ordering::Relaxed)
        })?;
    }
    let first = served[0].path.display().to_string();
    let mut config = config;
    loop {
        let sig = signals.wait()?;
        let name = signal_text(sig);
        if sig != Signal::SIGTERM || shared.debug.load(Ordering::Relaxed) {
            log::info!("{pid} INFIFO {first}, Got {name}");
        }
        match sig {
            Signal::SIGUSR1 => {
                log::info!("{pid} INFIFO {first}, Dumping stats");
                print_stats(&shared);
            }
            Signal::SIGUSR2 => {
                let now = !shared.debug.fetch_xor(true, Ordering::Relaxed);
                log::info!(
                    "{pid} INFIFO {first} Resetting DEBUG flag to {}",
                    u8::from(now)
                );
            }
            Signal::SIGINT => {
                log::info!("{pid} INFIFO {first} closing db");
                shared.current().backend.close_connections();
            }
            Signal::SIGHUP => {
                log::info!("{pid} INFIFO {first}, Reconfiguring");
                shared.unsendable.clear();
                if let Some(cache) = &shared.cache {
                    let n = cache.clear();
                    log::info!("{pid} INFIFO {first}, cache flushed ({n} entries)");
                }
                // A writer may have made a pipe smaller; HUP sets it back at once.
                keep_pipe_capacity(&shared, &server_fifos);
                match reload(&settings, &shared.cache, shared.client_group) {
                    Ok((c, live)) => {
                        shared.current().backend.close_connections();
                        *shared.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
                        config = c;
                    }
                    Err(e) => log::warn!("reconfiguration failed, keeping the old settings: {e:#}"),
                }
                precache_in_background(&shared);
                learn_hash_cost(&shared);
            }
            Signal::SIGTERM => break,
            _ => {}
        }
    }
    drop(config);

    // TERM: no new clients, answer what was already read, report, leave.
    shared.stop.store(true, Ordering::SeqCst);
    remove_fifos(served);
    let _ = reader.join();
    for w in workers {
        let _ = w.join();
    }
    shared.log_limit.flush();
    print_stats(&shared);
    shared.current().backend.close_connections();
    Ok(())
}

/// HUP: the environment, the envdir and the control files again, read as the user the daemon
/// serves as (they must be readable by it).
fn reload(
    settings: &Settings,
    cache: &Option<AnswerCache>,
    client_group: Gid,
) -> anyhow::Result<(Config, Live)> {
    let env = load_env(settings.envdir.as_deref())?;
    let config = Config::load(&env)?;
    for warning in config.warnings() {
        log::warn!("InLookup: {warning}");
    }
    let live = live_from(&config, settings, cache, client_group)?;
    Ok((config, live))
}

/// The capacity of a pipe when the kernel cannot be asked.
const DEFAULT_PIPE_CAPACITY: usize = 65536;

/// How often the reader looks whether a writer made a server pipe smaller.
const PIPE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Give every server pipe its capacity back if a writer made it smaller (F_SETPIPE_SZ), which
/// would make clients wait for room.
fn keep_pipe_capacity(shared: &DaemonState, fifos: &[(BorrowedFd<'_>, &str)]) {
    for (fd, name) in fifos {
        match fifo::keep_pipe_capacity(*fd, shared.pipe_capacity) {
            Ok(None) => {}
            Ok(Some(found)) => log::warn!(
                "InLookup: {name}: its pipe had been made smaller ({found} bytes); set back to {}",
                shared.pipe_capacity
            ),
            Err(e) => {
                if !shared.pipe_warned.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "InLookup: {name}: cannot set its pipe back to {} bytes: {e}",
                        shared.pipe_capacity
                    );
                }
            }
        }
    }
}

/// `-c activeSecs`: load the password entries of recently active users into
/// the cache, without holding up the queries that arrive meanwhile.
fn precache_in_background(shared: &Arc<DaemonState>) {
    let secs = shared.precache_secs;
    let backend = shared.current();
    if !backend.backend.caches() {
        if secs > 0 {
            log::warn!(
                "-c {}: the cache is off (USE_BTREE, INLOOKUP_CACHE); nothing pre-cached",
                secs
            );
        }
        return;
    }
    if secs == 0 {
        return;
    }
    let spawned = thread::Builder::new()
        .name("precache".into())
        .spawn(move || {
            // Loaded after the followers' first gap has emptied the cache,
            // not before (where it would be dropped, or missed a change).
            if let Some(push) = &backend.push {
                push.wait_ready(Duration::from_secs(5));
            }
            match backend.backend.precache(secs) {
                Ok(added) => log::info!("cached {added} records"),
                Err(e) => log::warn!("pre-cache of users active in the last {secs} s failed: {e}"),
            }
        });
    if let Err(e) = spawned {
        log::warn!("pre-cache: {e}");
    }
}

impl DaemonState {
    fn current(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    set
}

/// glibc's strsignal texts, which the C daemon logs.
fn signal_text(sig: Signal) -> &'static str {
    match sig {
        Signal::SIGHUP => "Hangup",
        Signal::SIGINT => "Interrupt",
        Signal::SIGTERM => "Terminated",
        Signal::SIGUSR1 => "User defined signal 1",
        Signal::SIGUSR2 => "User defined signal 2",
        _ => "Unknown signal",
    }
}

fn print_stats(shared: &DaemonState) {
    let live = shared.current();
    let (open, made) = live.backend.connection_counts();
    let nodes = shared.cache.as_ref().map_or(0, |c| c.len());
    let mut text = shared.stats.report(nodes, open, made);
    // Degraded: the last attempt to reach the database failed (every lookup that
    // needs it answers -1 until one succeeds).
    if let Some(reason) = live.db.connect_failure() {
        text.push_str(&format!(
            "Database unreachable (degraded): {reason}
"
        ));
    }
    text.push_str(&shared.stats.statements_line(live.db.statements()));
    if let Some(push) = &live.push {
        text.push_str(&push.stats_lines());
    }
    match &shared.cache {
        Some(c) => text.push_str(&c.report()),
        None => text.push_str("Cache off\n"),
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// How long the reader sleeps in poll before it looks at the stop flag.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

fn reader(shared: &DaemonState, fds: &[OwnedFd], names: &[String], tx: &SyncSender<Job>) {
    let mut buf = Vec::with_capacity(64 * 1024);
    // The C log lines name a FIFO by its file name.
    let short: Vec<Arc<str>> = names
        .iter()
        .map(|n| Arc::from(n.rsplit('/').next().unwrap_or(n)))
        .collect();
    let pipes: Vec<(BorrowedFd<'_>, &str)> = fds
        .iter()
        .zip(names)
        .map(|(fd, name)| (fd.as_fd(), name.as_str()))
        .collect();
    let mut pipes_checked = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        if pipes_checked.elapsed() >= PIPE_CHECK_INTERVAL {
            keep_pipe_capacity(shared, &pipes);
            pipes_checked = Instant::now();
        }
        shared.log_limit.tick();
        let mut pfds: Vec<PollFd> = fds
            .iter()
            .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        let timeout = PollTimeout::try_from(POLL_INTERVAL).unwrap_or(PollTimeout::MAX);
        match poll(&mut pfds, timeout) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                log::error!("InLookup: poll: {e}");
                thread::sleep(Duration::from_secs(1));
                continue;
            }
        }
        let ready: Vec<usize> = pfds
            .iter()
            .enumerate()
            .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(i, _)| i)
            .collect();
        drop(pfds);
        for i in ready {
            buf.clear();
            if let Err(e) = fifo::read_available(fds[i].as_fd(), &mut buf) {
                log::error!("InLookup: read: {}: {e}", names[i]);
                continue;
            }
            for frame in frames(&buf) {
                dispatch(shared, frame, &names[i], &short[i], tx);
            }
        }
    }
}

fn dispatch(
    shared: &DaemonState,
    frame: Frame,
    fifo: &str,
    short: &Arc<str>,
    tx: &SyncSender<Job>,
) {
    let job = match frame {
        Frame::Request(req) => {
            shared.stats.count(req.qtype);
            // A cache hit needs no database and never waits (the reply is one
            // non-blocking write), so it is answered here, without waking a
            // worker.
            let live = shared.current();
            let lookup = live.backend.parse(req.qtype, &req.email, &req.ip);
            if let Some((reply, source)) = live.backend.answer_cached(&lookup) {
                let hit = Prepared::Hit(reply, source);
                guarded(shared, || serve(shared, &live, &req, short, hit));
                return;
            }
            let subject = lookup.subject;
            Job::Query(req, subject, short.clone())
        }
        Frame::UnknownType {
            type_byte,
            reply_path,
        } => {
            shared.stats.bad();
            if shared.log_limit.admit("unknown query type") {
                log::warn!(
                    "InLookup: {fifo}: unknown query type {type_byte} from {}; answering -1",
                    Escaped::new(&reply_path)
                );
            }
            Job::Reject(reply_path)
        }
        Frame::Flush(f) => Job::Flush(f),
        Frame::Bad { error, skipped } => {
            shared.stats.bad();
            if shared.log_limit.admit("bad request") {
                log::warn!("InLookup: {fifo}: bad request ({error}); {skipped} bytes skipped");
            }
            return;
        }
    };
    match tx.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(job)) => {
            // Every worker is busy and the queue is full: a quick -1 beats a
            // client waiting for its timeout.
            shared.stats.busy();
            let path = match &job {
                Job::Query(r, ..) => &r.reply_path,
                Job::Reject(p) => p,
                Job::Flush(f) => &f.reply_path,
            };
            if shared.log_limit.admit("queue full") {
                log::warn!("InLookup: {fifo}: queue full; answering -1");
            }
            reply(shared, &shared.current(), path, &Reply::Error, None);
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

/// Answer one request. A bug that panics while answering it must not cost
/// the daemon a thread (a worker, or the reader that answers cache hits):
/// the request goes unanswered (its client times out), the panic is logged,
/// and the thread carries on.
fn guarded(shared: &DaemonState, answer: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(answer)).is_err() {
        shared.stats.error();
        if shared.log_limit.admit("panic") {
            log::error!("InLookup: recovered from a panic; that request was not answered");
        }
    }
}

fn worker(shared: &DaemonState, rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            rx.recv()
        };
        let Ok(job) = job else { return };
        let live = shared.current();
        guarded(shared, || match job {
            Job::Reject(path) => reply(shared, &live, &path, &Reply::Error, None),
            Job::Query(req, subject, fifo) => {
                serve(shared, &live, &req, &fifo, Prepared::Parsed(subject))
            }
            Job::Flush(f) => flush(shared, &live, &f),
        });
    }
}

/// Answer one request: `prepared` is the answer when the cache had it, else what the
/// request is about, and the lookup runs here.
fn serve(shared: &DaemonState, live: &Live, req: &Request, fifo: &str, prepared: Prepared) {
    let debug = shared.debug.load(Ordering::Relaxed);
    let started = Instant::now();
    let path = Escaped::new(&req.reply_path);
    if debug {
        let ip = if req.qtype == QueryType::Relay {
            Escaped::new(&req.ip)
        } else {
            Escaped::new(b"N/A")
        };
        // Body length as the C server logs it: everything after the int.
        let bytes = 2 + req.email.len() + 1 + req.reply_path.len() + 1 + req.ip.len() + 1;
        log::info!(
            "{fifo}->{path}, Bytes {bytes}, Query [{}], User {}, RemoteIp {ip}",
            req.qtype.log_name(),
            Escaped::new(&req.email)
        );
    }
    // As the C server does: open (and unlink) the reply FIFO before the
    // lookup, so a client that is already gone costs no database work.
    let Some(mut out) = open_reply(shared, &req.reply_path, Some(req.qtype), live) else {
        return;
    };
    let (answer, source) = match prepared {
        Prepared::Hit(reply, source) => (Ok(reply), source),
        Prepared::Parsed(subject) => {
            let lookup = live.backend.resume(req.qtype, &req.email, &req.ip, subject);
            crate::db::store::clear_last_server();
            live.backend.answer(&lookup)
        }
    };
    if matches!(source, Source::Miss | Source::Bypass) {
        shared.stats.db_lookup();
        if debug {
            if let Some(server) = crate::db::store::last_server() {
                log::info!("{fifo}->{path}, answered by {server}");
            }
        }
    }
    let answer = answer.unwrap_or_else(|e| {
        shared.stats.error();
        if shared.log_limit.admit("lookup failed") {
            log::warn!(
                "{} for {}: {e}",
                req.qtype.log_name(),
                Escaped::new(&req.email)
            );
        }
        Reply::Error
    });
    if debug && matches!(source, Source::Hit | Source::NegativeHit | Source::Stale) {
        log::info!("{fifo}->{path}, cache hit");
    }
    write_reply(shared, &mut out, &answer, Some(req.qtype));
    if debug {
        log::info!(
            "{} {} -> {path}",
            started.elapsed().as_secs(),
            req.qtype.log_name()
        );
    }
}

/// Forget what the cache holds about one address or domain; the reply is
/// the number of entries removed.
fn flush(shared: &DaemonState, live: &Live, f: &FlushRequest) {
    let Some(mut out) = open_reply(shared, &f.reply_path, None, live) else {
        return;
    };
    let n = live.backend.flush(&f.name);
    if shared.log_limit.admit("cache flush") {
        log::info!(
            "InLookup: cache flush for {}: {n} entries removed",
            Escaped::new(&f.name)
        );
    }
    if let Err(e) = out.write_now(&FlushReply::removed(n).encode()) {
        shared.stats.write_failed();
        if shared.log_limit.admit("write failed") {
            log::warn!("InLookup: write-flush: {}: {e}", Escaped::new(out.path()));
        }
    }
}

fn open_reply(
    shared: &DaemonState,
    path: &[u8],
    qtype: Option<QueryType>,
    live: &Live,
) -> Option<ReplyFifo> {
    match ReplyFifo::open(path, &live.dirs) {
        Ok(f) => Some(f),
        Err(refusal) => {
            shared.stats.refused();
            if shared.log_limit.admit("reply path refused") {
                log::warn!(
                    "InLookup: reply path refused: {}: QueryType {}: {refusal}",
                    Escaped::new(path),
                    qtype.map_or("'Unknown'", QueryType::log_name)
                );
            }
            None
        }
    }
}

/// Open the reply FIFO and write one reply (for -1 answers that need no
/// lookup).
fn reply(shared: &DaemonState, live: &Live, path: &[u8], answer: &Reply, qtype: Option<QueryType>) {
    if let Some(mut out) = open_reply(shared, path, qtype, live) {
        write_reply(shared, &mut out, answer, qtype);
    }
}

/// One non-blocking write (see `ReplyFifo::write_now`): no client can make
/// a worker wait.
fn write_reply(
    shared: &DaemonState,
    out: &mut ReplyFifo,
    answer: &Reply,
    qtype: Option<QueryType>,
) {
    let bytes = match answer.encode() {
        Ok(b) => b,
        Err(e) => {
            match answer {
                // A broken row: logged once, not at every query for it.
                Reply::Password(PasswordReply::Found(pw)) => shared.unsendable.report(pw, &e),
                _ => {
                    if shared.log_limit.admit("answer too long") {
                        log::warn!(
                            "InLookup: cannot send the answer to {}: {e}; answering -1",
                            Escaped::new(out.path())
                        );
                    }
                }
            }
            shared.stats.error();
            Reply::Error.encode().unwrap_or_default()
        }
    };
    if let Err(e) = out.write_now(&bytes) {
        shared.stats.write_failed();
        if shared.log_limit.admit("write failed") {
            log::warn!(
                "InLookup: write-{}: {}: {e}",
                qtype.map_or("reply", writer_name),
                Escaped::new(out.path())
            );
        }
    }
}

/// The C function names its write-failure messages carry.
fn writer_name(q: QueryType) -> &'static str {
    match q {
        QueryType::User => "UserInLookup",
        QueryType::Relay => "RelayInLookup",
        QueryType::Password => "PwdInLookup",
        QueryType::Host => "findmdahost",
        QueryType::Alias => "AliasInLookup",
        QueryType::Limit => "VlimitInLookup",
        QueryType::Domain => "get_real_domain",
    }
}
