//! `inquerytest [-v] -q query_type [-i infifo] email [ipaddr]`: ask inlookup
//! (or MySQL with --direct) and print the answer as the C tool does, or as
//! JSON; also several addresses, a load mode and the cache flush request.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, Write};
use std::net::IpAddr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indilookup::client;
use indilookup::config::{Config, Env, FifoConfig};
use indilookup::db::Database;
use indilookup::load::{self, Job, LoadOptions, LoadReport};
use indilookup::private_server::{self, PrivateError, PrivateServer, Shared};
use indilookup::protocol::{QueryType, Reply};
use indilookup::query::{Query, QueryError, Remote};
use indilookup::report::{self, Tables};
use serde_json::json;

/// The C tool's usage text, printed on stderr for every usage error.
const USAGE: &str = "usage: inquerytest [-v] -q query_type -i infifo email [ipaddr]
1   - User         Status Query
2   - Relay        Status Query
3   - Passwd       Query
4   - SmtpRoute    Query
5   - Valias       Query
6   - Domain Limit Query
7   - Domain       Query
";

const HELP: &str = "
Ask inlookup one question per address and print the answer.

  -q, --query-type T   1..7, see above (one digit; C took the first digit of -q 12)
  -i, --infifo F       the server FIFO: a path (starting with / or .) or a name
                       in INFIFODIR. An existing FIFO is used as it is; a missing
                       one gets a private inlookup for this run, stopped and
                       removed afterwards. Without -i (or with -i \"\"): INFIFO,
                       INFIFODIR and one of its instances infifo.1..N.
  -v, --verbose        say which FIFOs (or database) are used; a private
                       inlookup logs to stderr
      --direct         ask MySQL directly with the same lookups, no daemon
      --json           one JSON object per answer: type, query, address, ip,
                       outcome (ok absent inactive overquota alias authenticated
                       not-authenticated unsupported found not-found no-aliases
                       defaults error), answer (every field), error
      --show-secrets   put the password hash into --json output (else only its
                       length; the plain text output shows it, as C did)
      --flush ADDRESS  ask the daemon to forget what it cached about ADDRESS (an
                       address or a domain) and print how many entries went;
                       repeatable, done before any query, -q then optional
  -n, --count N        load mode: ask every address N times [1]
  -c, --concurrency N  load mode: on N threads [1]; prints queries/s and latency
                       p50/p90/p99/max instead of the answers, and a progress
                       line on stderr every second after the first
  -h, --help           this text

Operands: addresses (domains for -q 7, and for -q 6 a domain asks for that
domain's limits). For -q 2 the last operand is the IP address; for other
types a last operand that is an IP address is taken as the (unused) ipaddr,
as C did. `-` reads addresses from stdin, one per line, `address [ipaddr]`.

Exit status: 0 every question answered (also \"absent\", \"No aliases\"), 1 a
lookup failed (no such user, daemon or database error), 100 usage, 111 system
error. Differences from the C inquerytest: -q takes one digit only; a LIMIT
query for a user without limits (or a domain without a limits row) prints the
default limits instead of nothing; an error is reported as `inquery failure:
<reason>`, never as `No such user`.
";

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 100;
const EXIT_FATAL: u8 = 111;

/// How long a private inlookup may take to open its FIFO.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

struct Args {
    verbose: bool,
    qtype: Option<QueryType>,
    infifo: Option<OsString>,
    direct: bool,
    json: bool,
    show_secrets: bool,
    flush: Vec<OsString>,
    count: Option<u64>,
    concurrency: Option<usize>,
    operands: Vec<OsString>,
}

enum Parsed {
    Run(Args),
    Help,
}

/// A usage error: an optional message line before the usage text.
struct Usage(Option<String>);

fn usage(msg: impl Into<String>) -> Usage {
    Usage(Some(msg.into()))
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    name: &str,
    v: &OsStr,
) -> Result<T, Usage> {
    match v.to_str().and_then(|s| s.parse::<T>().ok()) {
        Some(n) if n > T::default() => Ok(n),
        _ => Err(usage(format!(
            "inquerytest: {name}: {:?} is not a positive number",
            v.to_string_lossy()
        ))),
    }
}

/// getopt-style parsing: bundled short options (`-vq3`), values attached or
/// separate, long options with `=` or a separate value, `--` ends options;
/// options and operands may be mixed.
fn parse(args: Vec<OsString>) -> Result<Parsed, Usage> {
    let mut a = Args {
        verbose: false,
        qtype: None,
        infifo: None,
        direct: false,
        json: false,
        show_secrets: false,
        flush: Vec::new(),
        count: None,
        concurrency: None,
        operands: Vec::new(),
    };
    let mut qtext: Option<OsString> = None;
    let mut it = args.into_iter();
    let mut only_operands = false;
    while let Some(arg) = it.next() {
        let bytes = arg.as_bytes();
        if only_operands || bytes.len() < 2 || bytes[0] != b'-' {
            a.operands.push(arg);
            continue;
        }
        if bytes == b"--" {
            only_operands = true;
            continue;
        }
        if let Some(long) = bytes.strip_prefix(b"--") {
            let (name, inline) = match long.iter().position(|&b| b == b'=') {
                Some(i) => (
                    &long[..i],
                    Some(OsStr::from_bytes(&long[i + 1..]).to_owned()),
                ),
                None => (long, None),
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let value = |it: &mut std::vec::IntoIter<OsString>| -> Result<OsString, Usage> {
                inline.clone().or_else(|| it.next()).ok_or_else(|| {
                    usage(format!(
                        "inquerytest: option requires an argument -- {name}"
                    ))
                })
            };
            match name.as_str() {
                "help" => return Ok(Parsed::Help),
                "verbose" => a.verbose = true,
                "direct" => a.direct = true,
                "json" => a.json = true,
                "show-secrets" => a.show_secrets = true,
                "query-type" => qtext = Some(value(&mut it)?),
                "infifo" => a.infifo = Some(value(&mut it)?),
                "flush" => a.flush.push(value(&mut it)?),
                "count" => a.count = Some(positive("--count", &value(&mut it)?)?),
                "concurrency" => a.concurrency = Some(positive("--concurrency", &value(&mut it)?)?),
                _ => return Err(usage(format!("inquerytest: unknown option --{name}"))),
            }
            continue;
        }
        let mut i = 1;
        while i < bytes.len() {
            let c = bytes[i];
            i += 1;
            match c {
                b'v' => a.verbose = true,
                b'h' => return Ok(Parsed::Help),
                b'q' | b'i' | b'n' | b'c' => {
                    let v = if i < bytes.len() {
                        OsStr::from_bytes(&bytes[i..]).to_owned()
                    } else {
                        it.next().ok_or_else(|| {
                            usage(format!(
                                "inquerytest: option requires an argument -- {}",
                                c as char
                            ))
                        })?
                    };
                    i = bytes.len();
                    match c {
                        b'q' => qtext = Some(v),
                        b'i' => a.infifo = Some(v),
                        b'n' => a.count = Some(positive("-n", &v)?),
                        _ => a.concurrency = Some(positive("-c", &v)?),
                    }
                }
                other => {
                    return Err(usage(format!(
                        "inquerytest: illegal option -- {}",
                        char::from(other)
                    )))
                }
            }
        }
    }
    // The C tool's checks, in its order.
    let Some(qtext) = qtext else {
        if a.flush.is_empty() {
            return Err(Usage(None));
        }
        if !a.operands.is_empty() {
            return Err(usage("inquerytest: addresses need -q query_type"));
        }
        return check_modes(a).map(Parsed::Run);
    };
    if a.operands.is_empty() {
        return Err(usage("inquerytest: email not specified"));
    }
    let qtype = match qtext.as_bytes() {
        [d @ b'0'..=b'9'] => QueryType::from_u8(d - b'0'),
        _ => None,
    };
    if qtype == Some(QueryType::Relay) && a.operands.len() < 2 && a.operands[0] != "-" {
        return Err(usage(
            "inquerytest: ipaddr must be specified for RELAY query",
        ));
    }
    let Some(qtype) = qtype else {
        return Err(usage(format!(
            "inquerytest: Invalid query type [{}]",
            qtext.to_string_lossy()
        )));
    };
    a.qtype = Some(qtype);
    check_modes(a).map(Parsed::Run)
}

fn check_modes(a: Args) -> Result<Args, Usage> {
    let private = a.infifo.as_ref().is_some_and(|f| !f.is_empty());
    if a.direct && private {
        return Err(usage("inquerytest: -i and --direct exclude each other"));
    }
    if a.direct && !a.flush.is_empty() {
        return Err(usage("inquerytest: --flush needs the daemon, not --direct"));
    }
    Ok(a)
}

/// How a run ends early: a message and exit 111, or an exit status whose
/// message was printed already.
enum Stop {
    Fatal(String),
    Exit(u8),
}

impl<E: std::fmt::Display> From<E> for Stop {
    fn from(e: E) -> Stop {
        Stop::Fatal(e.to_string())
    }
}

fn fatal(msg: String) -> Stop {
    Stop::Fatal(msg)
}

pub fn main(args: Vec<OsString>) -> u8 {
    let args = match parse(args) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            let _ = io::stdout().write_all(format!("{USAGE}{HELP}").as_bytes());
            return 0;
        }
        Err(Usage(msg)) => {
            if let Some(m) = msg {
                eprintln!("{m}");
            }
            eprint!("{USAGE}");
            return EXIT_USAGE;
        }
    };
    match run(args) {
        Ok(code) | Err(Stop::Exit(code)) => code,
        Err(Stop::Fatal(msg)) => {
            eprintln!("inquerytest: fatal: {msg}");
            EXIT_FATAL
        }
    }
}

/// The questions: operands and stdin lines, with the IP rule of the usage.
fn jobs(qtype: QueryType, operands: &[OsString]) -> Result<Vec<Job>, Stop> {
    let mut operands = operands.to_vec();
    let mut ip = Vec::new();
    let last_is_ip = operands.len() >= 2
        && operands
            .last()
            .and_then(|o| o.to_str())
            .is_some_and(|s| s.parse::<IpAddr>().is_ok());
    if (qtype == QueryType::Relay && operands.len() >= 2) || last_is_ip {
        ip = operands
            .pop()
            .map(OsStringExt::into_vec)
            .unwrap_or_default();
    }
    let mut jobs = Vec::new();
    for op in operands {
        if op == "-" {
            for line in io::stdin().lock().split(b'\n') {
                let line = line.map_err(|e| fatal(format!("reading stdin: {e}")))?;
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                let mut fields = line
                    .split(|b| b.is_ascii_whitespace())
                    .filter(|f| !f.is_empty());
                let Some(address) = fields.next() else {
                    continue;
                };
                let line_ip = fields.next().map_or_else(|| ip.clone(), <[u8]>::to_vec);
                if qtype == QueryType::Relay && line_ip.is_empty() {
                    eprintln!("inquerytest: ipaddr must be specified for RELAY query");
                    eprint!("{USAGE}");
                    return Err(Stop::Exit(EXIT_USAGE));
                }
                jobs.push(Job {
                    qtype,
                    address: address.to_vec(),
                    ip: line_ip,
                });
            }
        } else {
            jobs.push(Job {
                qtype,
                address: op.into_vec(),
                ip: ip.clone(),
            });
        }
    }
    Ok(jobs)
}

/// The path of `-i F`: F itself if it starts with '/' or '.', else
/// INFIFODIR/F, INFIFODIR being created if missing, as C does: mode 0750
/// and this user's, since the private daemon runs as this user and uses a
/// FIFO directory only when nobody else may change it.
fn infifo_path(f: &OsStr, fifo: &FifoConfig) -> Result<PathBuf, Stop> {
    let path = if matches!(f.as_bytes().first(), Some(b'/' | b'.')) {
        PathBuf::from(f)
    } else {
        let dir = &fifo.infifodir;
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(indilookup::fifo::DIR_MODE)
                .create(dir)
                .map_err(|e| fatal(format!("r_mkdir: {}: {e}", dir.display())))?;
        }
        dir.join(f)
    };
    // The client takes INFIFO as a path only when it starts with '/' or '.'.
    if path.is_absolute() || path.starts_with(".") {
        Ok(path)
    } else {
        Ok(Path::new(".").join(path))
    }
}

/// println! that does not panic on a closed stdout (`| head`): the exit
/// status already says how the queries went.
macro_rules! out {
    ($($arg:tt)*) => {{
        let mut o = io::stdout().lock();
        let _ = writeln!(o, $($arg)*);
        let _ = o.flush();
    }};
}

/// Where the answers go: the C text or JSON lines, stdout and stderr.
struct Printer<'a> {
    json: bool,
    show_secrets: bool,
    tables: Tables<'a>,
}

impl Printer<'_> {
    fn answer(&self, job: &Job, result: &Result<Reply, QueryError>) -> bool {
        let mut out = io::stdout().lock();
        if self.json {
            let v = report::json(
                job.qtype,
                &job.address,
                &job.ip,
                result,
                self.tables,
                self.show_secrets,
            );
            let _ = writeln!(out, "{v}");
            let _ = out.flush();
            return report::outcome(job.qtype, &job.address, result).is_failure();
        }
        let t = report::text(job.qtype, &job.address, &job.ip, result, self.tables);
        let _ = out.write_all(&t.stdout);
        let _ = out.flush();
        let _ = io::stderr().write_all(&t.stderr);
        t.outcome.is_failure()
    }

    fn flush(&self, name: &[u8], result: &Result<i32, client::ClientError>) -> bool {
        let shown = String::from_utf8_lossy(name);
        if self.json {
            let v = match result {
                Ok(n) => {
                    json!({"type": 32, "query": "flush", "address": shown, "outcome": "ok", "answer": {"removed": n}})
                }
                Err(e) => {
                    json!({"type": 32, "query": "flush", "address": shown, "outcome": "error", "answer": null, "error": e.to_string()})
                }
            };
            out!("{v}");
            return result.is_err();
        }
        match result {
            Ok(n) => {
                out!("{shown}: flushed {n} cache entries");
                false
            }
            Err(e) => {
                eprintln!("{shown}: flush failed: {e}");
                true
            }
        }
    }

    fn load(&self, r: &LoadReport) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let l = &r.latencies;
        if self.json {
            let outcomes: serde_json::Map<String, serde_json::Value> = r
                .outcomes
                .iter()
                .map(|(o, n)| (o.word().to_string(), json!(n)))
                .collect();
            out!(
                "{}",
                json!({
                    "mode": "load",
                    "queries": r.queries,
                    "errors": r.errors,
                    "concurrency": r.concurrency,
                    "seconds": r.elapsed.as_secs_f64(),
                    "queries_per_second": r.queries_per_second(),
                    "latency_ms": {"p50": ms(l.p50), "p90": ms(l.p90), "p99": ms(l.p99), "max": ms(l.max)},
                    "outcomes": outcomes,
                })
            );
            return;
        }
        out!(
            "queries {}, errors {}, concurrency {}, time {:.3} s, {:.1} queries/s",
            r.queries,
            r.errors,
            r.concurrency,
            r.elapsed.as_secs_f64(),
            r.queries_per_second()
        );
        out!(
            "latency p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max)
        );
        let outcomes: Vec<String> = r
            .outcomes
            .iter()
            .map(|(o, n)| format!("{} {n}", o.word()))
            .collect();
        out!("outcomes {}", outcomes.join(", "));
    }
}

/// Stops the private server however `run` ends.
struct StopOnDrop(Option<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(s) = &self.0 {
            s.stop();
        }
    }
}

fn run(a: Args) -> Result<u8, Stop> {
    let env = Env::from_process();
    let config = Config::load(&env)?;
    let jobs = match a.qtype {
        Some(q) => jobs(q, &a.operands)?,
        None => Vec::new(),
    };
    let load_mode = a.count.is_some() || a.concurrency.is_some();
    // Verbose lines go where the C tool put them (stdout), unless stdout
    // carries JSON or figures.
    let say = |line: String| {
        if a.json || load_mode {
            eprintln!("{line}");
        } else {
            out!("{line}");
        }
    };
    let printer = Printer {
        json: a.json,
        show_secrets: a.show_secrets,
        tables: Tables {
            active: &config.mysql.table,
            inactive: &config.mysql.inactive_table,
        },
    };

    if a.direct {
        let m = &config.mysql;
        if a.verbose {
            let at = m.socket.as_ref().map_or_else(
                || format!("{}:{}", m.host, m.port),
                |s| s.display().to_string(),
            );
            say(format!(
                "Using MySQL database {} at {at} as {}",
                m.database, m.user
            ));
        }
        let db = Database::new(
            config.mysql.clone(),
            config.lookup.clone(),
            config.paths.clone(),
            a.concurrency.unwrap_or(1),
        );
        return Ok(ask_all(
            &Query::new(Arc::new(db)),
            &jobs,
            &a,
            &printer,
            None,
        ));
    }

    let mut fifo = config.fifo.clone();
    let mut private = StopOnDrop(None);
    if let Some(f) = a.infifo.as_ref().filter(|f| !f.is_empty()) {
        let path = infifo_path(f, &fifo)?;
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                private.0 = Some(start_private(&path, a.verbose)?);
            }
            Err(e) => return Err(fatal(format!("{}: {e}", path.display()))),
            Ok(_) => {
                let is_fifo = std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_fifo());
                if !is_fifo {
                    return Err(fatal(format!("{}: not a FIFO", path.display())));
                }
            }
        }
        fifo.infifo = path.into_os_string();
    }
    if a.verbose {
        match client::server_fifos(&fifo).as_slice() {
            [] => say(format!(
                "Using INFIFO={} (not found)",
                fifo.instance_path(1).display()
            )),
            [one] => say(format!("Using INFIFO={}", one.display())),
            many => {
                let base = fifo.server_base();
                say(format!(
                    "Using INFIFO={}.1 .. {}.{} (one picked at random for each query)",
                    base.display(),
                    base.display(),
                    many.len()
                ))
            }
        }
        say(format!("Using FIFOTMPDIR={}", fifo.fifotmpdir.display()));
    }
    let mut failed = false;
    for name in &a.flush {
        let r = client::flush(&fifo, config.timeouts, name.as_bytes());
        failed |= printer.flush(name.as_bytes(), &r);
    }
    let query = Query::new(Arc::new(Remote {
        fifo,
        ..Remote::new(&config)
    }));
    let code = ask_all(&query, &jobs, &a, &printer, private.0.as_ref());
    drop(private);
    Ok(if failed { EXIT_FAILED } else { code })
}

/// C prints `Creating FIFO <path>`, makes the FIFO and starts the server;
/// then waits until the server reads it.
fn start_private(path: &Path, verbose: bool) -> Result<Shared, Stop> {
    eprintln!("Creating FIFO {}", path.display());
    let exe =
        std::env::current_exe().map_err(|e| fatal(format!("cannot find this executable: {e}")))?;
    // Signals are blocked before the daemon exists, so that none can end
    // this process between starting it and being able to stop it.
    let shared = Shared::default();
    private_server::stop_on_signals(shared.clone()).map_err(|e| fatal(format!("signals: {e}")))?;
    match shared.install(|| PrivateServer::start(&exe, path, verbose)) {
        Ok(()) => {}
        Err(e @ PrivateError::Create { .. }) => {
            eprintln!("inquerytest: {e}");
            return Err(Stop::Exit(EXIT_FAILED));
        }
        Err(e) => return Err(fatal(e.to_string())),
    }
    let mut guard = StopOnDrop(Some(shared.clone()));
    match shared.wait_ready(READY_TIMEOUT) {
        Ok(()) => {
            guard.0 = None;
            Ok(shared)
        }
        Err(PrivateError::Died(_)) => {
            eprintln!("inquerytest: InLookup died");
            Err(Stop::Exit(EXIT_FAILED))
        }
        Err(e) => Err(fatal(e.to_string())),
    }
}

/// Every question in turn, or the load run; the exit status.
fn ask_all(
    query: &Query,
    jobs: &[Job],
    a: &Args,
    printer: &Printer<'_>,
    private: Option<&Shared>,
) -> u8 {
    if a.count.is_some() || a.concurrency.is_some() {
        let opts = LoadOptions {
            repeat: a.count.unwrap_or(1),
            concurrency: a.concurrency.unwrap_or(1),
        };
        let report = load::run(query, jobs, opts, |p| {
            let secs = p.elapsed.as_secs_f64();
            eprintln!(
                "inquerytest: {}/{} queries, {:.0} queries/s, {} errors",
                p.done,
                p.total,
                if secs > 0.0 {
                    p.done as f64 / secs
                } else {
                    0.0
                },
                p.errors
            );
        });
        printer.load(&report);
        if let Some(e) = &report.first_error {
            eprintln!("inquerytest: {} errors, the first: {e}", report.errors);
        }
        return if report.errors > 0 { EXIT_FAILED } else { 0 };
    }
    let mut failed = false;
    for job in jobs {
        let result = query.ask(job.qtype, &job.address, &job.ip);
        failed |= printer.answer(job, &result);
        if result.is_err() {
            if let Some(Some(_)) = private.map(|p| p.with(|s| s.exited())) {
                eprintln!("inquerytest: InLookup died");
                break;
            }
        }
    }
    if failed {
        EXIT_FAILED
    } else {
        0
    }
}
