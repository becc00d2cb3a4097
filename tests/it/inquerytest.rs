//! inquerytest end to end: the real executable against a real daemon (and
//! with --direct against MariaDB), exact output, exit codes, private
//! servers, JSON, flush and the load mode.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use testkit::Guarded;

use crate::daemon::Daemon;
use crate::harness::Site;
use crate::lookups::populate;

const EXE: &str = env!("CARGO_BIN_EXE_indilookup");

const USAGE: &str = "usage: inquerytest [-v] -q query_type -i infifo email [ipaddr]
1   - User         Status Query
2   - Relay        Status Query
3   - Passwd       Query
4   - SmtpRoute    Query
5   - Valias       Query
6   - Domain Limit Query
7   - Domain       Query
";

/// `indilookup inquerytest ARGS` with the site's environment, the
/// daemon's FIFO directories (if any) and `env` on top.
fn command(site: &Site, d: Option<&Daemon>, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(EXE);
    cmd.arg("inquerytest").args(args).env_clear();
    for (k, v) in site.env.iter() {
        cmd.env(k, v);
    }
    let replydir = site.dir.path().join("inquery");
    fs::create_dir_all(&replydir).unwrap();
    cmd.env("FIFOTMPDIR", &replydir)
        .env("INFIFODIR", site.dir.path().join("inlookup"))
        .env("PATH", "/usr/bin:/bin")
        .env("TZ", "UTC");
    if let Some(d) = d {
        cmd.env("INFIFODIR", &d.fifodir)
            .env("FIFOTMPDIR", &d.replydir);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null());
    testkit::child::fresh(&mut cmd);
    cmd
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn out(o: Output) -> Out {
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn run(site: &Site, d: Option<&Daemon>, args: &[&str]) -> Out {
    out(command(site, d, &[], args).output().unwrap())
}

fn run_env(site: &Site, d: Option<&Daemon>, env: &[(&str, &str)], args: &[&str]) -> Out {
    out(command(site, d, env, args).output().unwrap())
}

fn run_stdin(site: &Site, d: Option<&Daemon>, args: &[&str], input: &str) -> Out {
    let mut child = Guarded::spawn(
        command(site, d, &[], args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    out(child.wait_with_output().unwrap())
}

/// The head of every limits block: expiry lines, the limits, the GID flags.
fn limits_head(quota: &str, pop: &str, gid: &str) -> String {
    format!(
        "Domain Expiry   Date : Never Expires\n\
         Password Expiry Date : Never Expires\n\
         Max Domain Quota     : {quota}\n\
         Max Domain Messages  :     unlimited\n\
         Default User Quota   :     unlimited\n\
         Default User Messages:     unlimited\n\
         Max Pop Accounts     : {pop}\n\
         Max Aliases          :     unlimited\n\
         Max Forwards         :     unlimited\n\
         Max Autoresponders   :     unlimited\n\
         Max Mailinglists     :     unlimited\n\
         \n\
         GID Flags:\n{gid}"
    )
}

const ALL_ALLOWED: &str = "  DIALUP\n  PASSWD CHNG\n  SMTP\n  IMAP\n  POP3\n  WEBMAIL\n  RELAY\n";

fn joe_limits() -> String {
    limits_head("         2000", "            5", ALL_ALLOWED)
        + "\n\
           Flags for non postmaster accounts:\n\
           \x20 pop account           : ALLOW_CREATE ALLOW_MODIFY ALLOW_DELETE\n\
           \x20 alias                 : ALLOW_CREATE ALLOW_MODIFY ALLOW_DELETE\n\
           \x20 forward               : ALLOW_CREATE ALLOW_MODIFY ALLOW_DELETE\n\
           \x20 autoresponder         : ALLOW_CREATE ALLOW_MODIFY ALLOW_DELETE\n\
           \x20 mailinglist           :  DENY_CREATE  DENY_MODIFY ALLOW_DELETE\n\
           \x20 mailinglist users     : ALLOW_CREATE  DENY_MODIFY ALLOW_DELETE\n\
           \x20 mailinglist moderators:  DENY_CREATE ALLOW_MODIFY ALLOW_DELETE\n\
           \x20 domain quota          : ALLOW_CREATE ALLOW_MODIFY ALLOW_DELETE\n\
           \x20 default quota         : ALLOW_CREATE ALLOW_MODIFY\n"
}

fn domain_limits() -> String {
    limits_head(
        "      1000000",
        "          100",
        "  NO_DIALUP\n  PASSWD CHNG\n  SMTP\n  NO_IMAP\n  POP3\n  WEBMAIL\n  RELAY\n",
    )
}

fn default_limits() -> String {
    limits_head("    unlimited", "    unlimited", ALL_ALLOWED)
}

/// (arguments, stdout, stderr, exit code) for every type and outcome of the
/// populated site.
fn goldens() -> Vec<(Vec<&'static str>, String, String, i32)> {
    let ok =
        |args: &[&'static str], stdout: &str| (args.to_vec(), stdout.to_string(), String::new(), 0);
    let fail = |args: &[&'static str], stderr: &str, code| {
        (args.to_vec(), String::new(), stderr.to_string(), code)
    };
    vec![
        ok(
            &["-q", "1", "joe@example.com"],
            "joe@example.com has all services enabled\n",
        ),
        ok(
            &["-q", "1", "nobody@example.com"],
            "nobody@example.com is Absent on this domain (#5.1.1)\n",
        ),
        ok(
            &["-q", "1", "inact@example.com"],
            "inact@example.com is Inactive on this domain (#5.2.1)\n",
        ),
        ok(
            &["-q", "1", "full@example.com"],
            "full@example.com is Overquota on this domain (#5.2.2)\n",
        ),
        ok(
            &["-q", "1", "sales@example.com"],
            "sales@example.com is an alias\n",
        ),
        ok(&["-q1", "joe"], "joe has all services enabled\n"),
        ok(
            &["-q", "2", "joe@example.com", "10.0.0.1"],
            "joe@example.com is authenticated on 10.0.0.1\n",
        ),
        ok(
            &["-q", "2", "joe@example.com", "10.0.0.9"],
            "joe@example.com is not authenticated on 10.0.0.9\n",
        ),
        ok(
            &["-q", "2", "jo@example.com", "10.0.0.3"],
            "jo@example.com is not authenticated on 10.0.0.3\n",
        ),
        ok(
            &["-q", "3", "joe@example.com"],
            "pw_name  : joe\npw_passwd: $5$abc$def\npw_uid   : 1\npw_gid   : 0\n\
             pw_gecos : joe gecos\npw_dir   : /home/mail/example.com/joe\npw_shell : NOQUOTA\n\
             Table    : indimail\n",
        ),
        ok(
            &["-q", "3", "inact@Alias.com"],
            "pw_name  : inact\npw_passwd: w\npw_uid   : 1\npw_gid   : 0\n\
             pw_gecos : inact gecos\npw_dir   : /home/mail/example.com/inact\npw_shell : NOQUOTA\n\
             Table    : indibak\n",
        ),
        ok(
            &["-q", "3", "full@example.com"],
            "pw_name  : full\npw_passwd: x\npw_uid   : 1\npw_gid   : 16\n\
             pw_gecos : full gecos\npw_dir   : /home/mail/example.com/full\npw_shell : NOQUOTA\n\
             Table    : indimail\n",
        ),
        fail(
            &["-q", "3", "nobody@example.com"],
            "nobody@example.com: No such user\n",
            1,
        ),
        ok(
            &["-q", "4", "joe@example.com"],
            "joe@example.com: SMTPROUTE is example.com:192.0.2.7:25\n",
        ),
        ok(
            &["-q", "4", "joe@Alias.com"],
            "joe@Alias.com: SMTPROUTE is Alias.com:192.0.2.7:25\n",
        ),
        fail(
            &["-q", "4", "nobody@example.com"],
            "nobody@example.com: No such user\n",
            1,
        ),
        ok(
            &["-q", "5", "sales@example.com"],
            "Alias List for sales@example.com\n&ann@example.com\n&joe@example.com\n\n",
        ),
        ok(
            &["-q", "5", "joe@example.com"],
            "Alias List for joe@example.com\n&joe@elsewhere.net\n\n",
        ),
        fail(
            &["-q", "5", "ann@example.com"],
            "ann@example.com: No aliases\n\n",
            0,
        ),
        ok(&["-q", "6", "joe@example.com"], &joe_limits()),
        ok(&["-q", "6", "ann@example.com"], &domain_limits()),
        ok(&["-q", "6", "example.com"], &domain_limits()),
        // Fixed: the defaults instead of nothing.
        ok(&["-q", "6", "bob@example.org"], &default_limits()),
        ok(&["-q", "6", "example.org"], &default_limits()),
        ok(
            &["-q", "6", "expiry.test"],
            &default_limits()
                .replace(
                    "Domain Expiry   Date : Never Expires",
                    "Domain Expiry   Date : Fri Jan  1 00:00:00 1971",
                )
                .replace(
                    "Password Expiry Date : Never Expires",
                    "Password Expiry Date : Sat Jan 10 06:13:20 1970",
                )
                .replace("  SMTP\n", "  NO_SMTP\n"),
        ),
        fail(
            &["-q", "6", "nobody@example.com"],
            "nobody@example.com: No such user\n",
            1,
        ),
        ok(
            &["-q", "7", "alias.com"],
            "alias.com: Real Domain is example.com\n",
        ),
        ok(
            &["-q", "7", "other.net"],
            "other.net: Real Domain is example.com\n",
        ),
        ok(
            &["-q", "7", "unknown.test"],
            "unknown.test: Real Domain is unknown.test\n",
        ),
        // A second operand that is an IP address is the (unused) ipaddr, as in C.
        ok(
            &["-q", "1", "joe@example.com", "10.0.0.1"],
            "joe@example.com has all services enabled\n",
        ),
    ]
}

fn golden_site() -> Site {
    let site = Site::new();
    populate(&site);
    site.control("hostip", "192.0.2.7");
    site.sql(
        "INSERT INTO vlimits (domain, domain_expiry, passwd_expiry, disable_smtp) \
         VALUES ('expiry.test', 31536000, 800000, 1)",
    );
    site
}

#[test]
fn golden_outputs_from_the_daemon_and_direct() {
    let site = golden_site();
    let d = Daemon::start(&site, &["-i", "2"], &[]);
    for (args, stdout, stderr, code) in goldens() {
        let got = run(&site, Some(&d), &args);
        assert_eq!(got.stdout, stdout, "stdout of {args:?}");
        assert_eq!(got.stderr, stderr, "stderr of {args:?}");
        assert_eq!(got.code, Some(code), "exit code of {args:?}");
        let mut direct = args.clone();
        direct.insert(0, "--direct");
        let got = run(&site, None, &direct);
        assert_eq!(
            (got.stdout, got.stderr, got.code),
            (stdout, stderr, Some(code)),
            "{direct:?}"
        );
    }
    // The C tool's option forms: bundled, attached values, -i "".
    for args in [
        &["-vq3", "joe@example.com"][..],
        &["-q3", "-i", "", "joe@example.com"],
        &["joe@example.com", "-q", "3"],
    ] {
        let got = run(&site, Some(&d), args);
        assert_eq!(got.code, Some(0), "{args:?}: {}", got.stderr);
        assert!(got.stdout.ends_with("Table    : indimail\n"), "{args:?}");
    }
    // -v says which FIFOs are used, on stdout as C did.
    let got = run(&site, Some(&d), &["-v", "-q", "1", "joe@example.com"]);
    let base = d.fifodir.join("infifo");
    assert_eq!(
        got.stdout,
        format!(
            "Using INFIFO={b}.1 .. {b}.2 (one picked at random for each query)\n\
             Using FIFOTMPDIR={}\njoe@example.com has all services enabled\n",
            d.replydir.display(),
            b = base.display()
        )
    );
    // An existing FIFO given with -i is used as it is, and left alone.
    let fifo1 = d.fifo(1);
    let got = run(
        &site,
        Some(&d),
        &["-i", fifo1.to_str().unwrap(), "-q", "7", "alias.com"],
    );
    assert_eq!(
        (got.stdout.as_str(), got.stderr.as_str(), got.code),
        ("alias.com: Real Domain is example.com\n", "", Some(0))
    );
    assert!(fifo1.exists());
    assert!(d.stop().success());
}

#[test]
fn errors_say_what_failed_and_never_the_password() {
    let site = Site::new();
    populate(&site);
    // No daemon at all.
    let got = run(&site, None, &["-q", "1", "joe@example.com"]);
    assert_eq!(got.code, Some(1));
    assert!(
        got.stderr
            .starts_with("joe@example.com: inquery failure: no inlookup FIFO found at "),
        "{}",
        got.stderr
    );
    assert!(got.stdout.is_empty());
    // The FIFO a killed daemon left behind: nobody reads it, and the message says so.
    let fifodir = site.dir.path().join("inlookup");
    fs::create_dir_all(&fifodir).unwrap();
    nix::unistd::mkfifo(
        &fifodir.join("infifo.1"),
        nix::sys::stat::Mode::from_bits_truncate(0o660),
    )
    .unwrap();
    let got = run(&site, None, &["-q", "1", "joe@example.com"]);
    assert_eq!(got.code, Some(1));
    assert!(
        got.stderr
            .starts_with("joe@example.com: inquery failure: no inlookup is reading ")
            && got.stderr.contains("infifo.1"),
        "{}",
        got.stderr
    );
    fs::remove_file(fifodir.join("infifo.1")).unwrap();
    // A daemon whose database is unreachable answers -1.
    let secret = "pw-Sekr1t-42";
    let bad_host = format!("localhost:nouser:{secret}:/nonexistent/mysql.sock");
    let bad: [(&str, &str); 2] = [
        ("MYSQL_HOST", &bad_host),
        ("MYSQL_OPT_CONNECT_TIMEOUT", "2"),
    ];
    let d = Daemon::start(&site, &["-i", "1"], &bad);
    for t in ["1", "3", "4", "5", "6"] {
        let got = run(&site, Some(&d), &["-q", t, "joe@example.com"]);
        assert_eq!(got.stderr, "joe@example.com: inquery failure\n", "type {t}");
        assert_eq!(got.code, Some(1), "type {t}");
    }
    let got = run(&site, Some(&d), &["--json", "-q", "3", "joe@example.com"]);
    let v: Value = serde_json::from_str(got.stdout.trim()).unwrap();
    assert_eq!(v["outcome"], "error");
    assert_eq!(v["error"], "inlookup service returned error");
    assert_eq!(got.code, Some(1));
    // The daemon says it is degraded, and why, in words (no debug dump).
    d.signal(Signal::SIGUSR1);
    let line = d.wait_for(
        |l| l.starts_with("Database unreachable (degraded): "),
        1,
        "degraded in the stats",
    );
    assert!(line[0].contains("cannot reach") && line[0].contains("/nonexistent/mysql.sock"));
    assert!(
        !d.lines().iter().any(|l| l.contains("DriverError")),
        "{:?}",
        d.lines()
    );
    assert!(d.stop().success());
    // The same database error, directly.
    let got = run_env(
        &site,
        None,
        &bad,
        &["--direct", "-q", "3", "joe@example.com"],
    );
    assert_eq!(got.code, Some(1));
    assert!(
        got.stderr
            .starts_with("joe@example.com: inquery failure: database error: "),
        "{}",
        got.stderr
    );
    assert!(!got.stderr.contains(secret), "{}", got.stderr);
    // A bad configuration is a fatal error (111) that does not quote the
    // host line either.
    let bad_line = format!("localhost:u:{secret}:notaport");
    let got = run_env(
        &site,
        None,
        &[("MYSQL_HOST", &bad_line)],
        &["--direct", "-q", "1", "joe"],
    );
    assert_eq!(got.code, Some(111));
    assert!(
        got.stderr.starts_with("inquerytest: fatal: MYSQL_HOST: "),
        "{}",
        got.stderr
    );
    assert!(!got.stderr.contains(secret), "{}", got.stderr);
}

#[test]
fn usage_errors_print_the_c_usage_and_exit_100() {
    let site = Site::new();
    let cases: &[(&[&str], &str)] = &[
        // Fixed: C printed only the usage for a missing -q.
        (&[], "inquerytest: query_type not specified\n"),
        (
            &["joe@example.com"],
            "inquerytest: query_type not specified\n",
        ),
        (&["-q", "1"], "inquerytest: email not specified\n"),
        (
            &["-q", "2", "joe@example.com"],
            "inquerytest: ipaddr must be specified for RELAY query\n",
        ),
        (
            &["-q", "8", "joe@example.com"],
            "inquerytest: Invalid query type [8]\n",
        ),
        (
            &["-q", "0", "joe@example.com"],
            "inquerytest: Invalid query type [0]\n",
        ),
        // Fixed: C took the first digit of -q 12.
        (
            &["-q", "12", "joe@example.com"],
            "inquerytest: Invalid query type [12]\n",
        ),
        (
            &["-q", "x", "joe@example.com"],
            "inquerytest: Invalid query type [x]\n",
        ),
        (
            &["-x", "-q", "1", "joe"],
            "inquerytest: illegal option -- x\n",
        ),
        (&["-q"], "inquerytest: option requires an argument -- q\n"),
        (
            &["--bogus", "-q", "1", "joe"],
            "inquerytest: unknown option --bogus\n",
        ),
        (
            &["-q", "1", "-n", "0", "joe"],
            "inquerytest: -n: \"0\" is not a positive number\n",
        ),
        (
            &["-q", "1", "-c", "many", "joe"],
            "inquerytest: -c: \"many\" is not a positive number\n",
        ),
        (
            &["--direct", "-i", "/tmp/x", "-q", "1", "joe"],
            "inquerytest: -i and --direct exclude each other\n",
        ),
        (
            &["--direct", "--flush", "joe@example.com"],
            "inquerytest: --flush needs the daemon, not --direct\n",
        ),
    ];
    for (args, msg) in cases {
        let got = run(&site, None, args);
        assert_eq!(got.code, Some(100), "{args:?}");
        assert_eq!(got.stderr, format!("{msg}{USAGE}"), "{args:?}");
        assert!(got.stdout.is_empty(), "{args:?}");
    }
    // Through a link named inquerytest, as installed.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("inquerytest");
    std::os::unix::fs::symlink(EXE, &link).unwrap();
    let o = Command::new(&link).args(["-q", "9", "x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("inquerytest: Invalid query type [9]\n{USAGE}")
    );
    for help in ["--help", "-h"] {
        let got = run(&site, None, &[help]);
        assert_eq!(got.code, Some(0));
        assert!(got.stdout.starts_with(USAGE));
        assert!(got.stdout.contains("-q takes one digit only"));
        assert!(got.stdout.contains("prints the\ndefault limits"));
        assert!(got.stderr.is_empty());
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Nothing left of a private server: no FIFO, no process. Processes are
/// reaped by inquerytest before it exits, so one check suffices.
fn assert_nothing_left(path: &Path) {
    assert!(
        fs::symlink_metadata(path).is_err(),
        "{} still exists",
        path.display()
    );
    let left = processes_mentioning(path.to_str().unwrap());
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

#[test]
fn private_server_for_a_missing_fifo() {
    let site = golden_site();
    // Each private daemon's first answer waits for its first database
    // connection: on a loaded machine that can pass the 4-s default.
    site.control("timeoutread", "30\n");
    let dir = site.dir.path().join("private");
    fs::create_dir(&dir).unwrap();
    let path = dir.join("infifo");
    let p = path.to_str().unwrap();
    let creating = format!("Creating FIFO {p}\n");

    // Every golden through a private server: same answers.
    for (args, stdout, stderr, code) in goldens().into_iter().step_by(3) {
        let mut with_i = vec!["-i", p];
        with_i.extend(&args);
        let got = run(&site, None, &with_i);
        assert_eq!(got.stdout, stdout, "{with_i:?}");
        assert_eq!(got.stderr, format!("{creating}{stderr}"), "{with_i:?}");
        assert_eq!(got.code, Some(code), "{with_i:?}");
        assert_nothing_left(&path);
    }
    // -v: the FIFO on stdout, the private daemon's log on stderr.
    let got = run(&site, None, &["-v", "-i", p, "-q", "1", "joe@example.com"]);
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    assert!(
        got.stdout.starts_with(&format!("Using INFIFO={p}\n")),
        "{}",
        got.stdout
    );
    assert!(got
        .stdout
        .ends_with("joe@example.com has all services enabled\n"));
    assert!(got.stderr.starts_with(&creating), "{}", got.stderr);
    assert!(
        got.stderr.contains(&format!("InLookup INFIFO={p}")),
        "{}",
        got.stderr
    );
    assert_nothing_left(&path);
    // A failing query.
    let got = run(&site, None, &["-i", p, "-q", "3", "nobody@example.com"]);
    assert_eq!(
        got.stderr,
        format!("{creating}nobody@example.com: No such user\n")
    );
    assert_eq!(got.code, Some(1));
    assert_nothing_left(&path);

    // The daemon cannot start (a setting only the daemon reads is bad).
    let got = run_env(
        &site,
        None,
        &[("INLOOKUP_WORKERS", "lots")],
        &["-i", p, "-q", "1", "joe@example.com"],
    );
    assert_eq!(got.code, Some(1), "{}", got.stderr);
    assert!(got.stderr.starts_with(&creating), "{}", got.stderr);
    assert!(got.stderr.contains("INLOOKUP_WORKERS"), "{}", got.stderr);
    assert!(
        got.stderr.ends_with("inquerytest: InLookup died\n"),
        "{}",
        got.stderr
    );
    assert!(got.stdout.is_empty());
    assert_nothing_left(&path);

    // The FIFO cannot be made: C's message and exit 1.
    let nodir = dir.join("no-such-dir").join("infifo");
    let got = run(
        &site,
        None,
        &["-i", nodir.to_str().unwrap(), "-q", "1", "joe"],
    );
    assert_eq!(
        got.stderr,
        format!(
            "Creating FIFO {n}\ninquerytest: {n}: No such file or directory\n",
            n = nodir.display()
        )
    );
    assert_eq!(got.code, Some(1));
    assert!(!dir.join("no-such-dir").exists());

    // A name relative to INFIFODIR, which is made if missing.
    let fifodir = site.dir.path().join("made-for-me");
    let got = run_env(
        &site,
        None,
        &[("INFIFODIR", fifodir.to_str().unwrap())],
        &["-i", "myfifo", "-q", "7", "alias.com"],
    );
    assert_eq!(got.stdout, "alias.com: Real Domain is example.com\n");
    assert_eq!(
        got.stderr,
        format!("Creating FIFO {}\n", fifodir.join("myfifo").display())
    );
    assert!(fifodir.is_dir());
    // This user's, and nobody else's to change: the private daemon uses it.
    let made = fs::metadata(&fifodir).unwrap();
    assert_eq!(made.mode() & 0o7777, 0o750);
    assert_eq!(made.uid(), nix::unistd::geteuid().as_raw());
    assert_nothing_left(&fifodir.join("myfifo"));

    // An existing path that is not a FIFO is refused and left alone.
    let file = dir.join("plain");
    fs::write(&file, "data").unwrap();
    let got = run(
        &site,
        None,
        &["-i", file.to_str().unwrap(), "-q", "1", "joe"],
    );
    assert_eq!(got.code, Some(111));
    assert_eq!(
        got.stderr,
        format!("inquerytest: fatal: {}: not a FIFO\n", file.display())
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "data");
}

#[test]
fn private_server_stopped_on_int_and_term() {
    let site = golden_site();
    for (k, sig) in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP]
        .into_iter()
        .enumerate()
    {
        let path = site.dir.path().join(format!("sig-fifo-{k}"));
        // Killed when the test fails: it would ask its private server
        // for minutes.
        let mut child = Guarded::spawn(
            command(
                &site,
                None,
                &[],
                &[
                    "-i",
                    path.to_str().unwrap(),
                    "-n",
                    "100000000",
                    "-q",
                    "1",
                    "joe@example.com",
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        )
        .unwrap();
        // Wait until the private daemon answers queries.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !fs::metadata(&path).is_ok_and(|m| m.file_type().is_fifo())
            || processes_mentioning(path.to_str().unwrap()).len() < 2
        {
            assert!(Instant::now() < deadline, "no private server");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        child.signal(sig).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "inquerytest ignored {sig}");
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(sig as i32), "died of {sig}");
        assert_nothing_left(&path);
    }
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn json_carries_the_same_facts() {
    let site = golden_site();
    let d = Daemon::start(&site, &["-i", "2"], &[]);
    let one = |args: &[&str]| -> (Value, Option<i32>) {
        let mut a = vec!["--json"];
        a.extend(args);
        let got = run(&site, Some(&d), &a);
        assert!(got.stderr.is_empty(), "{args:?}: {}", got.stderr);
        let mut lines = json_lines(&got.stdout);
        assert_eq!(lines.len(), 1, "{}", got.stdout);
        // The database says the same, and which server answered.
        a.insert(0, "--direct");
        let direct = run(&site, None, &a);
        let mut direct = json_lines(&direct.stdout).remove(0);
        // (Absent when no statement was needed.)
        if let Some(server) = direct.as_object_mut().unwrap().remove("server") {
            assert!(server.as_str().unwrap().contains("/sock"), "{server}");
        }
        assert_eq!(direct, lines[0], "{a:?}");
        (lines.remove(0), got.code)
    };
    let (v, code) = one(&["-q", "1", "inact@example.com"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["type"], 1);
    assert_eq!(v["query"], "user");
    assert_eq!(v["address"], "inact@example.com");
    assert_eq!(v["outcome"], "inactive");
    assert_eq!(v["answer"]["status"], 2);
    for (email, outcome) in [
        ("joe@example.com", "ok"),
        ("nobody@example.com", "absent"),
        ("full@example.com", "overquota"),
        ("sales@example.com", "alias"),
    ] {
        assert_eq!(one(&["-q", "1", email]).0["outcome"], outcome);
    }
    let (v, _) = one(&["-q", "2", "joe@example.com", "10.0.0.1"]);
    assert_eq!(
        (v["outcome"].as_str(), v["ip"].as_str()),
        (Some("authenticated"), Some("10.0.0.1"))
    );
    let (v, _) = one(&["-q", "2", "joe@example.com", "10.0.0.9"]);
    assert_eq!(v["outcome"], "not-authenticated");

    // PWD: every field of the text block; the hash only as its length.
    let (v, code) = one(&["-q", "3", "full@example.com"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["outcome"], "found");
    let a = &v["answer"];
    assert_eq!(a["pw_name"], "full");
    assert_eq!(a["pw_domain"], "example.com");
    assert_eq!(a["pw_passwd_length"], 1);
    assert!(a.get("pw_passwd").is_none());
    assert_eq!(
        (a["pw_uid"].as_u64(), a["pw_gid"].as_u64()),
        (Some(1), Some(16))
    );
    assert_eq!(a["gid_flags"], serde_json::json!(["BOUNCE_MAIL"]));
    assert_eq!(a["pw_gecos"], "full gecos");
    assert_eq!(a["pw_dir"], "/home/mail/example.com/full");
    assert_eq!(a["pw_shell"], "NOQUOTA");
    assert_eq!(
        (a["inactive"].as_bool(), a["table"].as_str()),
        (Some(false), Some("indimail"))
    );
    let (v, _) = one(&["-q", "3", "inact@example.com"]);
    assert_eq!(
        (
            v["answer"]["inactive"].as_bool(),
            v["answer"]["table"].as_str()
        ),
        (Some(true), Some("indibak"))
    );
    let (v, _) = one(&["--show-secrets", "-q", "3", "joe@example.com"]);
    assert_eq!(v["answer"]["pw_passwd"], "$5$abc$def");
    let got = run(&site, Some(&d), &["--json", "-q", "3", "joe@example.com"]);
    assert!(!got.stdout.contains("$5$abc$def"));
    let (v, code) = one(&["-q", "3", "nobody@example.com"]);
    assert_eq!((v["outcome"].as_str(), code), (Some("not-found"), Some(1)));
    assert!(v["answer"].is_null());

    let (v, _) = one(&["-q", "4", "joe@example.com"]);
    assert_eq!(v["answer"]["route"], "example.com:192.0.2.7:25");
    assert_eq!(
        (
            v["answer"]["domain"].as_str(),
            v["answer"]["host"].as_str(),
            v["answer"]["port"].as_u64()
        ),
        (Some("example.com"), Some("192.0.2.7"), Some(25))
    );
    let (v, _) = one(&["-q", "5", "sales@example.com"]);
    assert_eq!(
        v["answer"]["aliases"],
        serde_json::json!(["&ann@example.com", "&joe@example.com"])
    );
    let (v, code) = one(&["-q", "5", "ann@example.com"]);
    assert_eq!((v["outcome"].as_str(), code), (Some("no-aliases"), Some(0)));
    assert_eq!(v["answer"]["aliases"], serde_json::json!([]));

    let (v, _) = one(&["-q", "6", "joe@example.com"]);
    let a = &v["answer"];
    assert_eq!(v["outcome"], "found");
    assert_eq!(
        (a["limit_type"].as_i64(), a["maxpopaccounts"].as_i64()),
        (Some(2), Some(5))
    );
    assert_eq!(
        (a["diskquota"].as_u64(), a["perm_maillist"].as_i64()),
        (Some(2000), Some(3))
    );
    assert_eq!(
        (
            a["perm_maillist_users"].as_i64(),
            a["perm_maillist_moderators"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(a["domain_expiry"], -1);
    let (v, _) = one(&["-q", "6", "example.com"]);
    assert_eq!(
        (
            v["answer"]["limit_type"].as_i64(),
            v["answer"]["disable_imap"].as_i64()
        ),
        (Some(1), Some(1))
    );
    for key in ["bob@example.org", "example.org"] {
        let (v, code) = one(&["-q", "6", key]);
        assert_eq!(
            (v["outcome"].as_str(), code),
            (Some("defaults"), Some(0)),
            "{key}"
        );
        assert_eq!(v["answer"]["limit_type"], 0);
        assert_eq!(v["answer"]["maxpopaccounts"], -1);
    }
    let (v, _) = one(&["-q", "7", "alias.com"]);
    assert_eq!(v["answer"]["real_domain"], "example.com");

    // Several addresses: one object each, in order.
    let got = run(
        &site,
        Some(&d),
        &["--json", "-q", "1", "joe@example.com", "nobody@example.com"],
    );
    let lines = json_lines(&got.stdout);
    assert_eq!(
        lines
            .iter()
            .map(|v| v["outcome"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["ok", "absent"]
    );
    assert!(d.stop().success());
}

#[test]
fn several_addresses_from_operands_and_stdin() {
    let site = golden_site();
    let d = Daemon::start(&site, &["-i", "2"], &[]);
    let want = "joe@example.com has all services enabled\n\
                nobody@example.com is Absent on this domain (#5.1.1)\n\
                inact@example.com is Inactive on this domain (#5.2.1)\n";
    let relay_two = "joe@example.com is authenticated on 10.0.0.1\n\
                     joe@example.com is not authenticated on 10.0.0.9\n";
    let relay_one_ip = "joe@example.com is authenticated on 10.0.0.1\n\
                        ann@example.com is not authenticated on 10.0.0.1\n";
    let three = ["joe@example.com", "nobody@example.com", "inact@example.com"];
    // Arguments, stdin (None: not read), through the daemon (or --direct),
    // and what must come out: stdout, stderr, exit status (None: any).
    type Case<'a> = (
        Vec<&'a str>,
        Option<&'a str>,
        bool,
        Text<'a>,
        Text<'a>,
        Option<i32>,
    );
    #[rustfmt::skip]
    let cases: &[Case] = &[
        ([&["-q", "1"][..], &three].concat(), None, true, Text::Is(want), Text::Any, Some(0)),
        (vec!["-q", "1", "-"], Some("joe@example.com\n\nnobody@example.com\r\ninact@example.com"),
            true, Text::Is(want), Text::Is(""), Some(0)),
        // RELAY: the IP per line, or the last operand for all.
        (vec!["-q", "2", "-"], Some("joe@example.com 10.0.0.1\njoe@example.com\t10.0.0.9\n"),
            true, Text::Is(relay_two), Text::Any, None),
        (vec!["-q", "2", "joe@example.com", "ann@example.com", "10.0.0.1"], None,
            true, Text::Is(relay_one_ip), Text::Any, None),
        (vec!["-q", "2", "-"], Some("joe@example.com\n"), true, Text::Any,
            Text::StartsWith("inquerytest: ipaddr must be specified for RELAY query\n"), Some(100)),
        // One failure makes the exit status 1; the others are still answered.
        (vec!["-q", "4", "nobody@example.com", "joe@example.com"], None, true,
            Text::Is("joe@example.com: SMTPROUTE is example.com:192.0.2.7:25\n"),
            Text::Is("nobody@example.com: No such user\n"), Some(1)),
        // The same through MySQL.
        ([&["--direct", "-q", "1"][..], &three].concat(), None, false, Text::Is(want), Text::Any, None),
    ];
    for (args, stdin, daemon, stdout, stderr, code) in cases {
        let d = daemon.then_some(&d);
        let got = match stdin {
            Some(input) => run_stdin(&site, d, args, input),
            None => run(&site, d, args),
        };
        stdout.check(&got.stdout, &format!("stdout of {args:?}"));
        stderr.check(&got.stderr, &format!("stderr of {args:?}"));
        if code.is_some() {
            assert_eq!(got.code, *code, "{args:?}: {}", got.stderr);
        }
    }
    assert!(d.stop().success());
}

/// What an output must be.
enum Text<'a> {
    Is(&'a str),
    StartsWith(&'a str),
    Any,
}

impl Text<'_> {
    fn check(&self, got: &str, what: &str) {
        match self {
            Text::Is(want) => assert_eq!(got, *want, "{what}"),
            Text::StartsWith(head) => assert!(got.starts_with(head), "{what}: {got}"),
            Text::Any => {}
        }
    }
}

#[test]
fn flush_against_a_cached_daemon() {
    let site = golden_site();
    let d = Daemon::start(
        &site,
        &["-i", "2"],
        &[("USE_BTREE", "1"), ("INLOOKUP_CACHE_TTL", "3600")],
    );
    let passwd = |site: &Site| {
        let got = run(site, Some(&d), &["-q", "3", "joe@example.com"]);
        got.stdout.lines().nth(1).unwrap().to_string()
    };
    assert_eq!(passwd(&site), "pw_passwd: $5$abc$def");
    run(&site, Some(&d), &["-q", "1", "joe@example.com"]);
    site.sql("UPDATE indimail SET pw_passwd = 'changed' WHERE pw_name = 'joe'");
    assert_eq!(passwd(&site), "pw_passwd: $5$abc$def", "from the cache");
    let got = run(&site, Some(&d), &["--flush", "joe@example.com"]);
    assert_eq!(
        (got.stdout.as_str(), got.stderr.as_str(), got.code),
        ("joe@example.com: flushed 2 cache entries\n", "", Some(0))
    );
    assert_eq!(passwd(&site), "pw_passwd: changed");
    // Flush, then ask, in one run; JSON for both.
    site.sql("UPDATE indimail SET pw_passwd = 'again' WHERE pw_name = 'joe'");
    let got = run(
        &site,
        Some(&d),
        &[
            "--json",
            "--show-secrets",
            "--flush",
            "JOE@example.com",
            "-q",
            "3",
            "joe@example.com",
        ],
    );
    let lines = json_lines(&got.stdout);
    assert_eq!(lines[0]["query"], "flush");
    assert_eq!(lines[0]["type"], 32);
    assert_eq!(lines[0]["answer"]["removed"], 1);
    assert_eq!(lines[1]["answer"]["pw_passwd"], "again");
    // Nothing cached for that address: 0.
    let got = run(&site, Some(&d), &["--flush", "nobody@example.com"]);
    assert_eq!(got.stdout, "nobody@example.com: flushed 0 cache entries\n");
    assert!(d.stop().success());
    // No daemon: an error, exit 1.
    let got = run(&site, None, &["--flush", "joe@example.com"]);
    assert_eq!(got.code, Some(1));
    assert!(
        got.stderr.starts_with("joe@example.com: flush failed: "),
        "{}",
        got.stderr
    );
}

/// `queries N, errors E, concurrency C, time T s, Q queries/s` and the
/// latency line: the numbers.
fn figures(stdout: &str) -> (u64, u64, f64, [f64; 4]) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let words: Vec<&str> = lines[0]
        .split([' ', ','])
        .filter(|w| !w.is_empty())
        .collect();
    assert_eq!(
        (words[0], words[2], words[4], words[6], words[8], words[10]),
        ("queries", "errors", "concurrency", "time", "s", "queries/s"),
        "{}",
        lines[0]
    );
    let qps: f64 = words[9].parse().unwrap();
    let lat: Vec<f64> = lines[1]
        .split(", ")
        .map(|part| {
            let w: Vec<&str> = part.split(' ').collect();
            assert_eq!(w[w.len() - 1], "ms", "{}", lines[1]);
            w[w.len() - 2].parse().unwrap()
        })
        .collect();
    assert!(lines[1].starts_with("latency p50 "), "{}", lines[1]);
    assert!(
        lines[1].contains(", p90 ") && lines[1].contains(", p99 ") && lines[1].contains(", max ")
    );
    (
        words[1].parse().unwrap(),
        words[3].parse().unwrap(),
        qps,
        [lat[0], lat[1], lat[2], lat[3]],
    )
}

#[test]
fn load_mode_prints_the_figures() {
    let site = golden_site();
    let d = Daemon::start(&site, &["-i", "2"], &[]);
    let got = run(
        &site,
        Some(&d),
        &[
            "-q",
            "1",
            "-n",
            "200",
            "-c",
            "4",
            "joe@example.com",
            "nobody@example.com",
        ],
    );
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    let (queries, errors, qps, lat) = figures(&got.stdout);
    assert_eq!((queries, errors), (400, 0));
    assert!(qps > 0.0);
    assert!(
        lat[0] <= lat[1] && lat[1] <= lat[2] && lat[2] <= lat[3],
        "{lat:?}"
    );
    assert!(got.stdout.contains("concurrency 4,"));
    assert_eq!(
        got.stdout.lines().nth(2),
        Some("outcomes ok 200, absent 200")
    );
    // From stdin, directly, as JSON.
    let input = "joe@example.com\ninact@example.com\nfull@example.com\n";
    let got = run_stdin(
        &site,
        None,
        &["--direct", "--json", "-c", "3", "-q", "1", "-"],
        input,
    );
    let v: Value = serde_json::from_str(got.stdout.trim()).unwrap();
    assert_eq!(v["mode"], "load");
    assert_eq!(
        (v["queries"].as_u64(), v["errors"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(
        v["outcomes"],
        serde_json::json!({"ok": 1, "inactive": 1, "overquota": 1})
    );
    for p in ["p50", "p90", "p99", "max"] {
        assert!(v["latency_ms"][p].as_f64().unwrap() >= 0.0);
    }
    // A run longer than a second shows its progress on stderr: the user
    // table is locked for 1.5 s, so the queries wait.
    let mut locker = site.server.connect(Some(&site.db)).unwrap();
    use mysql::prelude::Queryable;
    locker
        .query_drop("LOCK TABLES indimail WRITE, indibak WRITE, valias WRITE")
        .unwrap();
    let child = Guarded::spawn(
        command(
            &site,
            Some(&d),
            &[],
            &["-q", "1", "-n", "20", "-c", "2", "ann@example.com"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    locker.query_drop("UNLOCK TABLES").unwrap();
    let got = out(child.wait_with_output().unwrap());
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    assert_eq!(figures(&got.stdout).0, 20);
    let progress: Vec<&str> = got.stderr.lines().collect();
    assert!(!progress.is_empty(), "no progress line");
    for line in progress {
        assert!(
            line.starts_with("inquerytest: ")
                && line.contains("/20 queries, ")
                && line.ends_with(" queries/s, 0 errors"),
            "{line}"
        );
    }
    // Errors are counted, the first one shown, exit 1.
    assert!(d.stop().success());
    let got = run(&site, None, &["-q", "1", "-n", "3", "joe@example.com"]);
    assert_eq!(got.code, Some(1));
    assert_eq!(figures(&got.stdout).1, 3);
    assert!(
        got.stderr
            .starts_with("inquerytest: 3 errors, the first: joe@example.com: "),
        "{}",
        got.stderr
    );
}
