//! `inquerytest [-v] -q query_type [-i infifo] email [ipaddr]`: the C tool's
//! options (getopt `vq:i:`), its usage text and its checks in its order,
//! and ours: --direct, --json, --show-secrets, --flush, -n and -c.

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser};

use super::{clap_sentence, positive, problem, Parsed, Problem};
use crate::exit;
use crate::protocol::QueryType;

/// The C tool's usage text, printed on stderr for every usage error.
pub const USAGE: &str = "usage: inquerytest [-v] -q query_type -i infifo email [ipaddr]
1   - User         Status Query
2   - Relay        Status Query
3   - Passwd       Query
4   - SmtpRoute    Query
5   - Valias       Query
6   - Domain Limit Query
7   - Domain       Query
";

/// The rest of `--help`, after [`USAGE`].
pub const HELP: &str = "
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

/// inquerytest's options. As with getopt, bundled short options (`-vq3`),
/// values attached or apart, options and operands in any order, `--` ends
/// the options, a value may start with `-`, and a repeated option's last
/// value counts.
#[derive(Debug, Parser)]
#[command(
    name = "inquerytest",
    no_binary_name = true,
    args_override_self = true,
    override_help = format!("{USAGE}{HELP}")
)]
pub struct Options {
    /// -v: say which FIFOs (or database) are used.
    #[arg(short, long)]
    pub verbose: bool,
    /// -q as given; see [`Options::qtype`].
    #[arg(
        short = 'q',
        long,
        value_name = "query_type",
        allow_hyphen_values = true
    )]
    pub query_type: Option<OsString>,
    /// The query type of -q, checked.
    #[arg(skip)]
    pub qtype: Option<QueryType>,
    /// -i: the server FIFO; empty is the same as none.
    #[arg(short, long, value_name = "infifo", allow_hyphen_values = true)]
    pub infifo: Option<OsString>,
    /// Ask MySQL directly, no daemon.
    #[arg(long)]
    pub direct: bool,
    /// One JSON object per answer.
    #[arg(long)]
    pub json: bool,
    /// The password hash in the JSON output.
    #[arg(long)]
    pub show_secrets: bool,
    /// Addresses and domains whose cache entries the daemon drops.
    #[arg(long, value_name = "address", allow_hyphen_values = true)]
    pub flush: Vec<OsString>,
    /// Load mode: every question this many times.
    #[arg(short = 'n', long, value_name = "n", value_parser = positive::<u64>)]
    pub count: Option<u64>,
    /// Load mode: on this many threads.
    #[arg(short, long, value_name = "n", value_parser = positive::<usize>)]
    pub concurrency: Option<usize>,
    /// Addresses, `-` for stdin, and the IP address.
    #[arg(value_name = "address")]
    pub operands: Vec<OsString>,
}

impl Options {
    /// Is it the load mode (-n or -c)?
    pub fn load_mode(&self) -> bool {
        self.count.is_some() || self.concurrency.is_some()
    }

    /// Does -i name a FIFO (not none, not empty)?
    pub fn private_fifo(&self) -> Option<&OsString> {
        self.infifo.as_ref().filter(|f| !f.is_empty())
    }
}

/// A usage error: the message line, then the usage text; exit 100.
pub fn usage_error(message: &str) -> exit::Error {
    exit::Error::new(exit::USAGE, format!("{message}\n{USAGE}"))
}

/// inquerytest's command line, checked as the C tool checks it.
pub fn parse(args: Vec<OsString>) -> Result<Parsed<Options>, exit::Error> {
    let mut cmd = Options::command();
    let matches = match cmd.try_get_matches_from_mut(args) {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            return Ok(Parsed::Help(e.to_string()))
        }
        Err(e) => {
            let message = match problem(&cmd, &e) {
                Problem::Unknown(o) => match o.strip_prefix("--") {
                    Some(_) => format!("inquerytest: unknown option {o}"),
                    None => format!("inquerytest: illegal option -- {}", &o[1..]),
                },
                Problem::NoValue(o) => format!(
                    "inquerytest: option requires an argument -- {}",
                    o.trim_start_matches('-')
                ),
                Problem::Invalid { option, reason } => {
                    format!("inquerytest: {option}: {reason}")
                }
                Problem::Other(s) => format!("inquerytest: {s}"),
            };
            return Err(usage_error(&message));
        }
    };
    let mut o = Options::from_arg_matches(&matches)
        .map_err(|e| usage_error(&format!("inquerytest: {}", clap_sentence(&e))))?;
    check(&mut o)?;
    Ok(Parsed::Run(o))
}

/// The C tool's checks, in its order, then ours.
fn check(o: &mut Options) -> Result<(), exit::Error> {
    let Some(qtext) = &o.query_type else {
        if o.flush.is_empty() {
            return Err(usage_error("inquerytest: query_type not specified"));
        }
        if !o.operands.is_empty() {
            return Err(usage_error("inquerytest: addresses need -q query_type"));
        }
        return check_modes(o);
    };
    if o.operands.is_empty() {
        return Err(usage_error("inquerytest: email not specified"));
    }
    let qtype = match qtext.as_encoded_bytes() {
        [d @ b'0'..=b'9'] => QueryType::from_u8(d - b'0'),
        _ => None,
    };
    if qtype == Some(QueryType::Relay) && o.operands.len() < 2 && o.operands[0] != "-" {
        return Err(usage_error(
            "inquerytest: ipaddr must be specified for RELAY query",
        ));
    }
    let Some(qtype) = qtype else {
        return Err(usage_error(&format!(
            "inquerytest: Invalid query type [{}]",
            qtext.to_string_lossy()
        )));
    };
    o.qtype = Some(qtype);
    check_modes(o)
}

fn check_modes(o: &Options) -> Result<(), exit::Error> {
    if o.direct && o.private_fifo().is_some() {
        return Err(usage_error(
            "inquerytest: -i and --direct exclude each other",
        ));
    }
    if o.direct && !o.flush.is_empty() {
        return Err(usage_error(
            "inquerytest: --flush needs the daemon, not --direct",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args.iter().map(OsString::from).collect()) {
            Ok(Parsed::Run(o)) => o,
            Ok(Parsed::Help(_)) => panic!("{args:?}: help"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn getopts_conventions() {
        // Bundled, attached, mixed with operands, the last -q counts,
        // --flush adds up, a value may start with '-', `--` ends options.
        let o = run(&["joe", "-vq3", "-q", "1", "--flush", "a", "--flush=b"]);
        assert!(o.verbose);
        assert_eq!(o.qtype, Some(QueryType::User));
        assert_eq!(o.flush, ["a", "b"]);
        assert_eq!(o.operands, ["joe"]);
        let o = run(&["-i", "-x", "-q7", "--", "-d.example"]);
        assert_eq!(o.infifo.as_deref(), Some(std::ffi::OsStr::new("-x")));
        assert_eq!(o.operands, ["-d.example"]);
        assert!(matches!(
            parse(vec!["-vh".into()]),
            Ok(Parsed::Help(h)) if h == format!("{USAGE}{HELP}")
        ));
    }
}
