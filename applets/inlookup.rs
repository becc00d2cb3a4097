//! `inlookup [-f infifo] [-i instances] [-c activeSecs] [-v]`: the daemon.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use indilookup::config::{Config, Env};
use indilookup::fifo::Owner;
use indilookup::server::{self, Settings, DEFAULT_REPLY_DIRS};

const USAGE: &str = "usage: inlookup [-f infifo] [-i instances] [-c activeSecs] [-v]
       [--envdir DIR] [--workers N] [--queue N] [--reply-dir DIR]...
       [--fifo-owner USER] [--fifo-group GROUP]

  -f infifo          FIFO name (in INFIFODIR) or path; overrides INFIFO [infifo]
  -i instances       number of FIFOs, INFIFODIR/infifo.1 .. infifo.N, all served
                     by this one process (C clients pick one at random) [1]
  -c activeSecs      pre-cache the password entries of users who logged in
                     (IMAP, POP3, webmail) in the last activeSecs seconds;
                     again after every HUP [0 = none]
  -v, --verbose      log every query (as DEBUG does)
  --envdir DIR       load variables from a daemontools envdir (one file per
                     variable), also re-read on HUP
  --workers N        lookup threads and database connections
                     [INLOOKUP_WORKERS, 8]
  --queue N          requests waiting for a thread before new ones are
                     answered -1 at once [INLOOKUP_QUEUE, 1024]
  --reply-dir DIR    also accept reply FIFOs in DIR (repeatable)
                     [INLOOKUP_REPLY_DIRS, colon-separated]
  --fifo-owner USER  owner of the FIFOs it creates
  --fifo-group GROUP group of the FIFOs it creates

The cache is on with USE_BTREE=1 (or INLOOKUP_CACHE=1): MAX_BTREE_COUNT or
INLOOKUP_CACHE_ENTRIES entries at most [1000000], INLOOKUP_CACHE_BYTES
bytes at most [268435456 (256 MiB), 0 = no byte bound],
INLOOKUP_CACHE_TTL [300 s], INLOOKUP_CACHE_NEGATIVE_TTL [30 s],
INLOOKUP_CACHE_STALE [3600 s, 0 = off], INLOOKUP_CACHE_RELAY (set = cache
RELAY answers too).

Signals: HUP empties the cache, re-reads the configuration, reconnects and
pre-caches again; INT closes the database connections; USR1 prints the
stats; USR2 toggles per-query logging; TERM prints the stats, removes the
FIFOs and exits 0.
";

struct Args {
    infifo: Option<OsString>,
    instances: u32,
    active_secs: u64,
    verbose: bool,
    envdir: Option<PathBuf>,
    workers: Option<usize>,
    queue: Option<usize>,
    reply_dirs: Vec<PathBuf>,
    owner: Option<String>,
    group: Option<String>,
}

fn parse_args(args: Vec<OsString>) -> anyhow::Result<Option<Args>> {
    let mut a = Args {
        infifo: None,
        instances: 1,
        active_secs: 0,
        verbose: false,
        envdir: None,
        workers: None,
        queue: None,
        reply_dirs: Vec::new(),
        owner: None,
        group: None,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let flag = arg.to_string_lossy().into_owned();
        let mut value = |name: &str| -> anyhow::Result<OsString> {
            it.next()
                .with_context(|| format!("option {name} needs a value"))
        };
        let number = |name: &str, v: OsString| -> anyhow::Result<u64> {
            v.to_string_lossy()
                .parse()
                .with_context(|| format!("option {name}: {:?} is not a number", v))
        };
        if let Some(long) = flag.strip_prefix("--") {
            match long {
                "help" => return Ok(None),
                "verbose" => a.verbose = true,
                "envdir" => a.envdir = Some(value("--envdir")?.into()),
                "workers" => {
                    let v = value("--workers")?;
                    a.workers = Some(number("--workers", v)? as usize);
                }
                "queue" => {
                    let v = value("--queue")?;
                    a.queue = Some(number("--queue", v)? as usize);
                }
                "reply-dir" => a.reply_dirs.push(value("--reply-dir")?.into()),
                "fifo-owner" => a.owner = Some(value("--fifo-owner")?.to_string_lossy().into()),
                "fifo-group" => a.group = Some(value("--fifo-group")?.to_string_lossy().into()),
                _ => bail!("unknown option {flag:?}"),
            }
            continue;
        }
        // As the C daemon: an argument that is not an option is skipped, and
        // only the letter after the '-' counts (-vx is -v).
        let Some(letter) = flag.strip_prefix('-').and_then(|f| f.chars().next()) else {
            continue;
        };
        match letter {
            'h' => return Ok(None),
            'v' => a.verbose = true,
            'f' => a.infifo = Some(value("-f")?),
            'i' => {
                let v = value("-i")?;
                a.instances = u32::try_from(number("-i", v)?).context("option -i: too large")?;
            }
            'c' => {
                let v = value("-c")?;
                a.active_secs = number("-c", v)?;
            }
            _ => bail!("unknown option -{letter}"),
        }
    }
    Ok(Some(a))
}

fn init_logging(filters: Option<&str>) {
    let mut b = env_logger::Builder::new();
    b.filter_level(log::LevelFilter::Info);
    if let Some(f) = filters {
        b.parse_filters(f);
    }
    b.target(env_logger::Target::Stdout)
        .format(|f, record| match record.level() {
            log::Level::Info => writeln!(f, "{}", record.args()),
            level => writeln!(f, "{}: {}", level.as_str().to_lowercase(), record.args()),
        })
        .init();
}

/// A positive count from the environment.
fn env_count(env: &Env, name: &str) -> anyhow::Result<Option<usize>> {
    match env.get_str(name)? {
        None | Some("") => Ok(None),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => bail!("{name}: {v:?} is not a positive number"),
        },
    }
}

fn settings(args: &Args, env: &Env, config: &Config) -> anyhow::Result<Settings> {
    let mut fifo = config.fifo.clone();
    if let Some(f) = &args.infifo {
        fifo.infifo = f.clone();
    }
    let n = args.instances.max(1);
    // An absolute (or ./) single FIFO is served at exactly that path; a FIFO
    // name in INFIFODIR always gets the .1 .. .N suffixes, because that is
    // the only form C clients with a relative INFIFO can reach.
    let (fifos, fifo_labels) = if fifo.infifo_is_path() && n == 1 {
        (vec![fifo.server_base()], None)
    } else {
        let name = fifo.infifo.to_string_lossy().into_owned();
        (
            (1..=n).map(|k| fifo.instance_path(k)).collect(),
            Some((1..=n).map(|k| format!("{name}.{k}")).collect()),
        )
    };
    let mut reply_dirs = args.reply_dirs.clone();
    if let Some(list) = env.get("INLOOKUP_REPLY_DIRS") {
        reply_dirs.extend(std::env::split_paths(list).filter(|p| !p.as_os_str().is_empty()));
    }
    let owner = Owner {
        uid: match &args.owner {
            Some(name) => Some(
                nix::unistd::User::from_name(name)?
                    .with_context(|| format!("--fifo-owner: no user {name:?}"))?
                    .uid,
            ),
            None => None,
        },
        gid: match &args.group {
            Some(name) => Some(
                nix::unistd::Group::from_name(name)?
                    .with_context(|| format!("--fifo-group: no group {name:?}"))?
                    .gid,
            ),
            None => None,
        },
    };
    Ok(Settings {
        fifos,
        fifo_labels,
        fifo_mode: fifo.fifo_mode.unwrap_or(0o660),
        owner,
        workers: args
            .workers
            .filter(|&w| w > 0)
            .or(env_count(env, "INLOOKUP_WORKERS")?)
            .unwrap_or(8),
        queue: args
            .queue
            .filter(|&q| q > 0)
            .or(env_count(env, "INLOOKUP_QUEUE")?)
            .unwrap_or(1024),
        reply_dirs,
        debug: args.verbose || env.is_set("DEBUG"),
        envdir: args.envdir.clone(),
        cache: indilookup::cache::policy_from_env(env)?,
        precache_secs: args.active_secs,
    })
}

pub fn main(args: Vec<OsString>) -> u8 {
    let args = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            // The C daemon's usage line and exit status.
            eprintln!(
                "inlookup: {e:#}\nUSAGE: inlookup [-f infifo] [-i instance] [-c activeSecs] [-v]\n\
                 (inlookup --help lists the long options)"
            );
            return 1;
        }
    };
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("inlookup: fatal: {e:#}");
            111
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let env = server::load_env(args.envdir.as_deref())?;
    // After the envdir, so that INLOOKUP_LOG may be set there too.
    init_logging(env.get_str("INLOOKUP_LOG")?);
    if env.is_set("TCPREMOTEIP") {
        bail!("TCPREMOTEIP is set: serving one request under tcpserver is not supported by this version");
    }
    let config = Config::load(&env)?;
    if config.mysql.ssl {
        bail!(
            "{}: {}",
            config.mysql.source,
            indilookup::db::DbError::TlsUnsupported
        );
    }
    let settings = settings(&args, &env, &config)?;
    log::info!(
        "InLookup: {} FIFO(s), {} worker(s), cache {}, reply FIFOs accepted in {}, {}{}",
        settings.fifos.len(),
        settings.workers,
        settings.cache.map_or("off".to_string(), |p| format!(
            "on ({} entries, {}, ttl {}s, negative ttl {}s)",
            p.max_entries,
            p.max_bytes
                .map_or("no byte bound".to_string(), |b| format!("{b} bytes")),
            p.ttl.as_secs(),
            p.negative_ttl.as_secs()
        )),
        config.fifo.fifotmpdir.display(),
        DEFAULT_REPLY_DIRS.join(", "),
        settings
            .reply_dirs
            .iter()
            .map(|d| format!(", {}", d.display()))
            .collect::<String>()
    );
    server::run(config, settings)
}
