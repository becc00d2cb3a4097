//! `inquerytest [-v] -q query_type [-i infifo] email [ipaddr]`: ask inlookup
//! (or MySQL with --direct) and print the answer as the C tool does, or as
//! JSON; also several addresses, a load mode and the cache flush request.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use indilookup::cli::inquerytest::{self as cli, Options};
use indilookup::cli::Parsed;
use indilookup::client;
use indilookup::config::{Config, Env};
use indilookup::db::Database;
use indilookup::exit;
use indilookup::infifo::{self, InfifoError, Private};
use indilookup::jobs::{self, JobsError};
use indilookup::load::{self, Job, LoadOptions};
use indilookup::private_server::PrivateError;
use indilookup::query::{Query, Remote};
use indilookup::report::{self, Printer, Tables};

pub fn main(args: Vec<OsString>) -> exit::Result {
    match cli::parse(args)? {
        Parsed::Run(options) => run(options),
        Parsed::Help(text) => {
            report::say(text.as_bytes());
            Ok(())
        }
    }
}

/// A system error: `inquerytest: fatal: ...`, exit 111.
fn fatal(message: impl std::fmt::Display) -> exit::Error {
    exit::Error::new(exit::TEMPORARY, format!("inquerytest: fatal: {message}"))
}

/// A private server that could not be had: as C, its FIFO's error and
/// "InLookup died" are failures (1), the rest system errors.
fn infifo_error(e: InfifoError) -> exit::Error {
    match e {
        InfifoError::Private(e @ PrivateError::Create { .. }) => {
            exit::Error::new(exit::FAILURE, format!("inquerytest: {e}"))
        }
        InfifoError::Private(PrivateError::Died(_)) => {
            exit::Error::new(exit::FAILURE, "inquerytest: InLookup died")
        }
        e => fatal(e),
    }
}

fn run(o: Options) -> exit::Result {
    let env = Env::from_process();
    let config = Config::load(&env).map_err(fatal)?;
    let jobs = match o.qtype {
        Some(q) => jobs::from_operands(q, &o.operands, &mut std::io::stdin().lock()).map_err(
            |e| match e {
                JobsError::NoIp => cli::usage_error(&format!("inquerytest: {e}")),
                JobsError::Read(_) => fatal(e),
            },
        )?,
        None => Vec::new(),
    };
    // Verbose lines go where the C tool put them (stdout), unless stdout
    // carries JSON or figures.
    let say = |line: String| {
        if o.json || o.load_mode() {
            eprintln!("{line}");
        } else {
            report::say(format!("{line}\n").as_bytes());
        }
    };
    let printer = Printer {
        json: o.json,
        show_secrets: o.show_secrets,
        tables: Tables {
            active: &config.mysql.table,
            inactive: &config.mysql.inactive_table,
        },
        show_server: o.direct && (o.verbose || o.json),
        push: (o.json && !o.direct)
            .then(|| push_status(&config.fifo))
            .flatten(),
    };

    if o.direct {
        let m = &config.mysql;
        if o.verbose {
            let at = m.socket.as_ref().map_or_else(
                || format!("{}:{}", m.host, m.port),
                |s| s.display().to_string(),
            );
            say(format!(
                "Using MySQL database {} at {at} as {}",
                m.database, m.user
            ));
        }
        let db = Database::for_config(&config, o.concurrency.unwrap_or(1), None);
        return ask_all(&Query::new(Arc::new(db)), &jobs, &o, &printer, None);
    }

    let mut fifo = config.fifo.clone();
    let private = match o.private_fifo() {
        Some(f) => infifo::use_infifo(f, &mut fifo, o.verbose).map_err(infifo_error)?,
        None => None,
    };
    if o.verbose {
        infifo::describe(&fifo).into_iter().for_each(say);
    }
    let mut failed = false;
    for name in &o.flush {
        let r = client::flush(&fifo, config.timeouts, name.as_bytes());
        failed |= printer.flush(name.as_bytes(), &r);
    }
    let query = Query::new(Arc::new(Remote {
        fifo,
        ..Remote::new(&config)
    }));
    let asked = ask_all(&query, &jobs, &o, &printer, private.as_ref());
    drop(private);
    match asked {
        Ok(()) if failed => Err(exit::FAILURE.into()),
        asked => asked,
    }
}

/// Every question in turn, or the load run.
fn ask_all(
    query: &Query,
    jobs: &[Job],
    o: &Options,
    printer: &Printer<'_>,
    private: Option<&Private>,
) -> exit::Result {
    let mut failed = false;
    if o.load_mode() {
        let opts = LoadOptions {
            repeat: o.count.unwrap_or(1),
            concurrency: o.concurrency.unwrap_or(1),
        };
        let r = load::run(query, jobs, opts, |p| {
            eprintln!("{}", report::progress_line(&p))
        });
        printer.load(&r);
        if let Some(e) = &r.first_error {
            eprintln!("inquerytest: {} errors, the first: {e}", r.errors);
        }
        failed = r.errors > 0;
    } else {
        for job in jobs {
            indilookup::db::store::clear_last_server();
            let result = query.ask(job.qtype, &job.address, &job.ip);
            failed |= printer.answer(job, &result);
            if result.is_err() && private.is_some_and(Private::exited) {
                eprintln!("inquerytest: InLookup died");
                break;
            }
        }
    }
    if failed {
        Err(exit::FAILURE.into())
    } else {
        Ok(())
    }
}

/// The daemon's push invalidation status, from the file it keeps beside its
/// FIFOs (when it follows a binlog); `None` when there is none.
fn push_status(fifo: &indilookup::config::FifoConfig) -> Option<serde_json::Value> {
    let dir = fifo.server_base().parent()?.to_path_buf();
    let text = std::fs::read_to_string(dir.join(indilookup::server::PUSH_STATUS_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}
