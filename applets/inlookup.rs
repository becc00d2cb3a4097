//! `inlookup [-f infifo] [-i instances] [-c activeSecs] [-v]`: the daemon.

use std::ffi::OsString;
use std::io::Write;

use anyhow::{bail, Context};
use indilookup::cli::inlookup::Options as Args;
use indilookup::cli::Parsed;
use indilookup::config::{Config, Env};
use indilookup::exit;
use indilookup::fifo::Owner;
use indilookup::server::privileges::{PrivilegeError, ServiceUser, DEFAULT_USER};
use indilookup::server::{self, Settings};

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
    let n = args.instances;
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
    let run_as = service_user(args, env)?;
    // A root daemon makes its FIFOs and directories for the user it becomes.
    let owner = Owner {
        uid: match &args.owner {
            Some(name) => Some(
                nix::unistd::User::from_name(name)?
                    .with_context(|| format!("--fifo-owner: no user {name:?}"))?
                    .uid,
            ),
            None => run_as.as_ref().map(|u| u.uid),
        },
        gid: match &args.group {
            Some(name) => Some(
                nix::unistd::Group::from_name(name)?
                    .with_context(|| format!("--fifo-group: no group {name:?}"))?
                    .gid,
            ),
            None => run_as.as_ref().map(|u| u.gid),
        },
    };
    Ok(Settings {
        fifos,
        fifo_labels,
        fifo_mode: fifo.fifo_mode.unwrap_or(0o660),
        owner,
        workers: args
            .workers
            .or(env_count(env, "INLOOKUP_WORKERS")?)
            .unwrap_or(8),
        queue: args
            .queue
            .or(env_count(env, "INLOOKUP_QUEUE")?)
            .unwrap_or(1024),
        reply_dirs,
        debug: args.verbose || env.is_set("DEBUG"),
        envdir: args.envdir.clone(),
        cache: indilookup::query::policy_from_env(env)?,
        precache_secs: args.active_secs,
        run_as,
    })
}

/// The user to run as: started as root, `--user`, else INLOOKUP_USER, else IndiMail's
/// service user; root there keeps root (with a warning). Not started as root, the daemon
/// stays who it is, and a `--user` naming somebody else is an error.
fn service_user(args: &Args, env: &Env) -> anyhow::Result<Option<ServiceUser>> {
    let given = match &args.user {
        Some(u) => Some(u.clone()),
        None => env
            .get_str("INLOOKUP_USER")?
            .filter(|v| !v.is_empty())
            .map(str::to_string),
    };
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        if let Some(name) = given {
            let user = match ServiceUser::lookup(&name) {
                Err(PrivilegeError::NoSuchUser(_)) => bail!("--user {name}: no such user"),
                other => other?,
            };
            if user.uid != euid {
                bail!(
                    "--user {name}: only root can change the user; this process runs as uid {euid}"
                );
            }
        }
        return Ok(None);
    }
    let name = given.unwrap_or_else(|| DEFAULT_USER.to_string());
    let user = ServiceUser::lookup(&name)?;
    if user.uid.is_root() {
        log::warn!(
            "InLookup: keeping root (--user {name}): any FIFO of root's in a reply directory \
             that a request names gets the answer; name an unprivileged user instead"
        );
        return Ok(None);
    }
    Ok(Some(user))
}

pub fn main(args: Vec<OsString>) -> exit::Result {
    let args = match indilookup::cli::inlookup::parse(args)? {
        Parsed::Run(a) => a,
        Parsed::Help(text) => {
            print!("{text}");
            return Ok(());
        }
    };
    run(args).map_err(|e| exit::Error::new(exit::TEMPORARY, format!("inlookup: fatal: {e:#}")))
}

fn run(args: Args) -> anyhow::Result<()> {
    let env = server::load_env(args.envdir.as_deref())?;
    // After the envdir, so that INLOOKUP_LOG may be set there too.
    init_logging(env.get_str("INLOOKUP_LOG")?);
    if env.is_set("TCPREMOTEIP") {
        bail!("TCPREMOTEIP is set: serving one request under tcpserver is not supported by this version");
    }
    let config = Config::load(&env)?;
    for warning in config.warnings() {
        log::warn!("inlookup: {warning}");
    }
    let settings = settings(&args, &env, &config)?;
    // The list the daemon uses: each directory once (FIFOTMPDIR is often /tmp,
    // which is also a default).
    let reply_dirs: Vec<String> = server::reply_dirs(&config, &settings)?
        .dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    log::info!(
        "InLookup: {} FIFO(s), {} worker(s), cache {}, reply FIFOs accepted in {}",
        settings.fifos.len(),
        settings.workers,
        settings.cache.map_or("off".to_string(), |s| format!(
            "on ({} entries, {}, ttl {}s, negative ttl {}s)",
            s.policy.max_entries,
            s.policy
                .max_bytes
                .map_or("no byte bound".to_string(), |b| format!("{b} bytes")),
            s.policy.ttl.as_secs(),
            s.policy.negative_ttl.as_secs()
        )),
        reply_dirs.join(", ")
    );
    server::run(config, settings)
}
