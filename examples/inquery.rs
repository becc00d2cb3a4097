//! Ask a running inlookup one question and print the typed answer.
//!
//! usage: inquery TYPE EMAIL [IP]   (TYPE 1-7 or user, relay, password, host,
//! alias, limit, domain). Reads INFIFO, INFIFODIR, FIFOTMPDIR and the timeout
//! control files like every client. Passwords are shown as their length only.

use indilookup::client::inquery;
use indilookup::config::{Config, Env};
use indilookup::protocol::{PasswordReply, QueryType, Reply};

fn qtype(s: &str) -> Option<QueryType> {
    let names = [
        "user", "relay", "password", "host", "alias", "limit", "domain",
    ];
    s.parse::<u8>()
        .ok()
        .or_else(|| names.iter().position(|n| *n == s).map(|i| i as u8 + 1))
        .and_then(QueryType::from_u8)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(t), Some(email)) = (args.first().and_then(|t| qtype(t)), args.get(1)) else {
        eprintln!("usage: inquery TYPE EMAIL [IP]");
        std::process::exit(100);
    };
    let ip = args.get(2).map(String::as_str).unwrap_or("");
    let config = Config::load(&Env::from_process()).unwrap_or_else(|e| {
        eprintln!("inquery: {e}");
        std::process::exit(111)
    });
    match inquery(
        &config.fifo,
        config.timeouts,
        t,
        email.as_bytes(),
        ip.as_bytes(),
    ) {
        Ok(reply) => println!("{:<24} {email}: {}", t.log_name(), show(&reply)),
        Err(e) => {
            eprintln!("inquery: {e}");
            std::process::exit(111)
        }
    }
}

fn show(reply: &Reply) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match reply {
        Reply::Password(PasswordReply::Found(pw)) => format!(
            "name={} domain={} passwd=<{} bytes> uid={} gid={:#x} gecos={:?} dir={} quota={} inactive={}",
            text(&pw.name),
            text(&pw.domain),
            pw.passwd.len(),
            pw.uid,
            pw.gid,
            text(&pw.gecos),
            text(&pw.dir),
            text(&pw.shell),
            pw.inactive
        ),
        Reply::Password(PasswordReply::NoSuchUser(e)) => format!("No such user {}", text(e)),
        Reply::Host(h) => format!("route {}", text(h)),
        Reply::Domain(d) => format!("real domain {}", text(d)),
        Reply::Alias(lines) if lines.is_empty() => "no aliases".into(),
        Reply::Alias(lines) => lines.iter().map(|l| text(l)).collect::<Vec<_>>().join(", "),
        Reply::Limits(l) => format!(
            "limit_type={} maxpopaccounts={} diskquota={} disable_imap={} disable_dialup={}",
            l.limit_type, l.maxpopaccounts, l.diskquota, l.disable_imap, l.disable_dialup
        ),
        other => format!("{other:?}"),
    }
}
