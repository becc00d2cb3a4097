//! What `inquerytest` prints for an answer: the C tool's text, byte for byte,
//! for every query type and outcome, and one JSON object per answer for
//! scripts that should not have to scrape that text.
//!
//! Everything here is a pure function of the question and the answer, so
//! the daemon's answer and the database's can be printed (and compared) the
//! same way; only [`Printer`] writes them out.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::client::ClientError;
use crate::ctext::ctime;
use crate::load::{Job, LoadReport, Progress};
use crate::protocol::{
    PasswordReply, PwStruct, QueryType, RelayStatus, Reply, UserStatus, VLimits,
};
use crate::query::QueryError;

/// pw_gid flag bits and their names (IndiMail's indimail.h).
pub const GID_FLAGS: [(u32, &str); 14] = [
    (0x01, "NO_PASSWD_CHNG"),
    (0x02, "NO_POP"),
    (0x04, "NO_WEBMAIL"),
    (0x08, "NO_IMAP"),
    (0x10, "BOUNCE_MAIL"),
    (0x20, "NO_RELAY"),
    (0x40, "NO_DIALUP"),
    (0x80, "QA_ADMIN"),
    (0x100, "NO_SMTP"),
    (0x200, "V_USER0"),
    (0x400, "V_USER1"),
    (0x800, "V_USER2"),
    (0x1000, "V_USER3"),
    (0x2000, "V_OVERRIDE"),
];

/// The names of the flag bits set in a pw_gid.
pub fn gid_flag_names(gid: u32) -> Vec<&'static str> {
    GID_FLAGS
        .iter()
        .filter(|(bit, _)| gid & bit != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// A short lower-case name of a query type, for JSON and messages.
pub fn type_name(qtype: QueryType) -> &'static str {
    match qtype {
        QueryType::User => "user",
        QueryType::Relay => "relay",
        QueryType::Password => "password",
        QueryType::Host => "host",
        QueryType::Alias => "alias",
        QueryType::Limit => "limit",
        QueryType::Domain => "domain",
    }
}

/// The user tables a PWD answer can come from, for its `Table    :` line
/// (MYSQL_TABLE and MYSQL_INACTIVE_TABLE, as the C tool reads them).
#[derive(Debug, Clone, Copy)]
pub struct Tables<'a> {
    pub active: &'a str,
    pub inactive: &'a str,
}

/// What an answer says, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// USER: the mailbox exists and may receive mail.
    Ok,
    Absent,
    Inactive,
    OverQuota,
    /// USER: no mailbox, only alias rows.
    Alias,
    Authenticated,
    NotAuthenticated,
    /// RELAY: a C server built without roaming users answered -2.
    Unsupported,
    /// PWD, HOST, ALIAS (with lines), LIMIT (a limits row), DOMAIN.
    Found,
    /// PWD "No such user", HOST / LIMIT / DOMAIN 0.
    NotFound,
    /// ALIAS: the address has no alias lines.
    NoAliases,
    /// LIMIT: no limits row applies; the defaults are in force.
    Defaults,
    /// The question could not be answered (daemon -1, transport, database).
    Error,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Absent => "absent",
            Outcome::Inactive => "inactive",
            Outcome::OverQuota => "overquota",
            Outcome::Alias => "alias",
            Outcome::Authenticated => "authenticated",
            Outcome::NotAuthenticated => "not-authenticated",
            Outcome::Unsupported => "unsupported",
            Outcome::Found => "found",
            Outcome::NotFound => "not-found",
            Outcome::NoAliases => "no-aliases",
            Outcome::Defaults => "defaults",
            Outcome::Error => "error",
        }
    }

    /// Whether `inquerytest` reports this as a failed lookup (exit 1), as
    /// the C tool does when inquery() returns NULL.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::NotFound | Outcome::Error)
    }
}

/// A LIMIT key without `@` asks for a domain's limits.
fn is_domain_key(key: &[u8]) -> bool {
    !key.contains(&b'@')
}

/// Classify an answer.
pub fn outcome(qtype: QueryType, email: &[u8], result: &Result<Reply, QueryError>) -> Outcome {
    let Ok(reply) = result else {
        return Outcome::Error;
    };
    match (qtype, reply) {
        (_, Reply::Error) => Outcome::Error,
        (QueryType::User, Reply::User(s)) => match s {
            UserStatus::Active => Outcome::Ok,
            UserStatus::Absent => Outcome::Absent,
            UserStatus::Inactive => Outcome::Inactive,
            UserStatus::OverQuota => Outcome::OverQuota,
            UserStatus::Alias => Outcome::Alias,
        },
        (QueryType::Relay, Reply::Relay(s)) => match s {
            RelayStatus::Authenticated => Outcome::Authenticated,
            RelayStatus::NotAuthenticated => Outcome::NotAuthenticated,
            RelayStatus::Unsupported => Outcome::Unsupported,
        },
        (QueryType::Password, Reply::Password(PasswordReply::Found(_))) => Outcome::Found,
        (QueryType::Password, Reply::Password(PasswordReply::NoSuchUser(_))) => Outcome::NotFound,
        (QueryType::Host, Reply::Host(_)) => Outcome::Found,
        (QueryType::Alias, Reply::Alias(lines)) if lines.is_empty() => Outcome::NoAliases,
        (QueryType::Alias, Reply::Alias(_)) => Outcome::Found,
        (QueryType::Limit, Reply::Limits(l)) if l.limit_type == 0 => Outcome::Defaults,
        (QueryType::Limit, Reply::Limits(_)) => Outcome::Found,
        (QueryType::Limit, Reply::NotFound) if is_domain_key(email) => Outcome::Defaults,
        (QueryType::Domain, Reply::Domain(_)) => Outcome::Found,
        (_, Reply::NotFound) => Outcome::NotFound,
        // A reply of the wrong kind; the decoder never produces one.
        _ => Outcome::Error,
    }
}

/// The text of an error for a message: never a secret (errors carry paths,
/// statuses and database messages, not request payloads).
pub fn error_text(e: &QueryError) -> String {
    e.to_string()
}

/// The C tool's output for one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub outcome: Outcome,
}

/// What the C `inquerytest` prints for this answer (spec §11), with two
/// fixes: a LIMIT answer without a limits row prints the defaults, and an
/// error is never called "No such user".
pub fn text(
    qtype: QueryType,
    email: &[u8],
    ip: &[u8],
    result: &Result<Reply, QueryError>,
    tables: Tables<'_>,
) -> Text {
    let outcome = outcome(qtype, email, result);
    let mut out = Vec::new();
    let mut err = Vec::new();
    let line = |buf: &mut Vec<u8>, parts: &[&[u8]]| {
        for p in parts {
            buf.extend_from_slice(p);
        }
        buf.push(b'\n');
    };
    match (outcome, result) {
        (Outcome::Error, Err(QueryError::Server)) | (Outcome::Error, Ok(_)) => {
            line(&mut err, &[email, b": inquery failure"]);
        }
        (Outcome::Error, Err(e)) => {
            line(
                &mut err,
                &[email, b": inquery failure: ", error_text(e).as_bytes()],
            );
        }
        (Outcome::NotFound, _) => line(&mut err, &[email, b": No such user"]),
        (_, Ok(reply)) => match reply {
            Reply::User(s) => {
                let what: &[u8] = match s {
                    UserStatus::Active => b" has all services enabled",
                    UserStatus::Absent => b" is Absent on this domain (#5.1.1)",
                    UserStatus::Inactive => b" is Inactive on this domain (#5.2.1)",
                    UserStatus::OverQuota => b" is Overquota on this domain (#5.2.2)",
                    UserStatus::Alias => b" is an alias",
                };
                line(&mut out, &[email, what]);
            }
            Reply::Relay(s) => {
                let what: &[u8] = if *s == RelayStatus::Authenticated {
                    b" is authenticated on "
                } else {
                    b" is not authenticated on "
                };
                line(&mut out, &[email, what, ip]);
            }
            Reply::Password(PasswordReply::Found(pw)) => pw_text(&mut out, pw, tables),
            Reply::Host(route) => line(&mut out, &[email, b": SMTPROUTE is ", route]),
            Reply::Alias(lines) if lines.is_empty() => {
                // strerr_warn adds a newline after the text's own.
                line(&mut err, &[email, b": No aliases\n"]);
            }
            Reply::Alias(lines) => {
                line(&mut out, &[b"Alias List for ", email]);
                for l in lines {
                    line(&mut out, &[l]);
                }
                // C prints the text after the last '\n' too: an empty line.
                line(&mut out, &[]);
            }
            Reply::Limits(l) => out.extend_from_slice(limits_text(l).as_bytes()),
            Reply::NotFound => out.extend_from_slice(limits_text(&VLimits::default()).as_bytes()),
            Reply::Domain(d) => line(&mut out, &[email, b": Real Domain is ", d]),
            Reply::Password(PasswordReply::NoSuchUser(_)) | Reply::Error => {}
        },
        (_, Err(_)) => {}
    }
    Text {
        stdout: out,
        stderr: err,
        outcome,
    }
}

fn pw_text(out: &mut Vec<u8>, pw: &PwStruct, tables: Tables<'_>) {
    let (uid, gid) = (pw.uid.to_string(), pw.gid.to_string());
    let fields: [(&[u8], &[u8]); 7] = [
        (b"pw_name  : ", &pw.name),
        (b"pw_passwd: ", &pw.passwd),
        (b"pw_uid   : ", uid.as_bytes()),
        (b"pw_gid   : ", gid.as_bytes()),
        (b"pw_gecos : ", &pw.gecos),
        (b"pw_dir   : ", &pw.dir),
        (b"pw_shell : ", &pw.shell),
    ];
    for (label, value) in fields {
        out.extend_from_slice(label);
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    let table = if pw.inactive {
        tables.inactive
    } else {
        tables.active
    };
    out.extend_from_slice(format!("Table    : {table}\n").as_bytes());
}

/// The C `print_limits()` block: the domain limits with their GID flags,
/// and for per-user limits (limit_type 2) the permissions of non-postmaster
/// accounts. Unlike C it prints the block for limit_type 0 (the defaults)
/// too, where C printed nothing.
pub fn limits_text(l: &VLimits) -> String {
    let mut s = String::new();
    let expiry = |t: i64| {
        if t == -1 {
            "Never Expires\n".to_string()
        } else {
            ctime(t)
        }
    };
    s += &format!("Domain Expiry   Date : {}", expiry(l.domain_expiry));
    s += &format!("Password Expiry Date : {}", expiry(l.passwd_expiry));
    let quota = |label: &str, v: u64| {
        if v == 0 {
            format!("{label}:     unlimited\n")
        } else {
            format!("{label}: {v:>13}\n")
        }
    };
    s += &quota("Max Domain Quota     ", l.diskquota);
    s += &quota("Max Domain Messages  ", l.maxmsgcount);
    s += &quota("Default User Quota   ", l.defaultquota);
    s += &quota("Default User Messages", l.defaultmaxmsgcount);
    let count = |label: &str, v: i64| {
        if v == -1 {
            format!("{label}:     unlimited\n")
        } else {
            format!("{label}: {v:>13}\n")
        }
    };
    s += &count("Max Pop Accounts     ", l.maxpopaccounts);
    s += &count("Max Aliases          ", l.maxaliases);
    s += &count("Max Forwards         ", l.maxforwards);
    s += &count("Max Autoresponders   ", l.maxautoresponders);
    s += &count("Max Mailinglists     ", l.maxmailinglists);
    s += "\nGID Flags:\n";
    for (off, no, yes) in [
        (l.disable_dialup, "NO_DIALUP", "DIALUP"),
        (l.disable_passwordchanging, "NO_PASSWD_CHNG", "PASSWD CHNG"),
        (l.disable_smtp, "NO_SMTP", "SMTP"),
        (l.disable_imap, "NO_IMAP", "IMAP"),
        (l.disable_pop, "NO_POP", "POP3"),
        (l.disable_webmail, "NO_WEBMAIL", "WEBMAIL"),
        (l.disable_relay, "NO_RELAY", "RELAY"),
    ] {
        s += &format!("  {}\n", if off != 0 { no } else { yes });
    }
    if l.limit_type == 2 {
        s += "\nFlags for non postmaster accounts:\n";
        for (label, perm) in [
            ("pop account           ", l.perm_account),
            ("alias                 ", l.perm_alias),
            ("forward               ", l.perm_forward),
            ("autoresponder         ", l.perm_autoresponder),
            ("mailinglist           ", l.perm_maillist),
            ("mailinglist users     ", l.perm_maillist_users),
            ("mailinglist moderators", l.perm_maillist_moderators),
            ("domain quota          ", l.perm_quota),
        ] {
            let [c, m, d] = permission_words(perm);
            s += &format!("  {label}: {c:>12} {m:>12} {d:>12}\n");
        }
        let [c, m, _] = permission_words(l.perm_defaultquota);
        s += &format!("  default quota         : {c:>12} {m:>12}\n");
    }
    s
}

/// VLIMIT_DISABLE_CREATE (1), _MODIFY (2), _DELETE (4) as words.
fn permission_words(perm: i16) -> [&'static str; 3] {
    [
        if perm & 1 != 0 {
            "DENY_CREATE"
        } else {
            "ALLOW_CREATE"
        },
        if perm & 2 != 0 {
            "DENY_MODIFY"
        } else {
            "ALLOW_MODIFY"
        },
        if perm & 4 != 0 {
            "DENY_DELETE"
        } else {
            "ALLOW_DELETE"
        },
    ]
}

fn lossy(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// One JSON object for an answer: the query type (number and name), the
/// address (and IP), the outcome word and every field of the answer. The
/// password field is replaced by its length unless `show_secrets`.
pub fn json(
    qtype: QueryType,
    email: &[u8],
    ip: &[u8],
    result: &Result<Reply, QueryError>,
    tables: Tables<'_>,
    show_secrets: bool,
) -> Value {
    let outcome = outcome(qtype, email, result);
    let mut obj = Map::new();
    obj.insert("type".into(), json!(qtype.as_u8()));
    obj.insert("query".into(), json!(type_name(qtype)));
    obj.insert("address".into(), lossy(email));
    if !ip.is_empty() {
        obj.insert("ip".into(), lossy(ip));
    }
    obj.insert("outcome".into(), json!(outcome.word()));
    let answer = match result {
        Err(e) => {
            obj.insert("error".into(), json!(error_text(e)));
            Value::Null
        }
        Ok(reply) => answer_json(qtype, email, reply, tables, show_secrets),
    };
    obj.insert("answer".into(), answer);
    Value::Object(obj)
}

fn answer_json(
    qtype: QueryType,
    email: &[u8],
    reply: &Reply,
    tables: Tables<'_>,
    show_secrets: bool,
) -> Value {
    match reply {
        Reply::User(s) => json!({ "status": s.as_i32() }),
        Reply::Relay(s) => json!({ "status": s.as_i32() }),
        Reply::Password(PasswordReply::Found(pw)) => {
            let mut m = Map::new();
            m.insert("pw_name".into(), lossy(&pw.name));
            m.insert("pw_domain".into(), lossy(&pw.domain));
            if show_secrets {
                m.insert("pw_passwd".into(), lossy(&pw.passwd));
            } else {
                m.insert("pw_passwd_length".into(), json!(pw.passwd.len()));
            }
            m.insert("pw_uid".into(), json!(pw.uid));
            m.insert("pw_gid".into(), json!(pw.gid));
            m.insert("gid_flags".into(), json!(gid_flag_names(pw.gid)));
            m.insert("pw_gecos".into(), lossy(&pw.gecos));
            m.insert("pw_dir".into(), lossy(&pw.dir));
            m.insert("pw_shell".into(), lossy(&pw.shell));
            m.insert("inactive".into(), json!(pw.inactive));
            m.insert(
                "table".into(),
                json!(if pw.inactive {
                    tables.inactive
                } else {
                    tables.active
                }),
            );
            Value::Object(m)
        }
        Reply::Host(route) => {
            let text = String::from_utf8_lossy(route).into_owned();
            // domain:host:port; a domain has no ':', an IPv6 host may.
            let (domain, rest) = text.split_once(':').unwrap_or((text.as_str(), ""));
            let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
            json!({
                "route": text,
                "domain": domain,
                "host": host,
                "port": port.parse::<u32>().ok(),
            })
        }
        Reply::Alias(lines) => json!({
            "aliases": lines.iter().map(|l| lossy(l)).collect::<Vec<_>>(),
        }),
        Reply::Limits(l) => limits_json(l),
        Reply::NotFound if qtype == QueryType::Limit && is_domain_key(email) => {
            limits_json(&VLimits::default())
        }
        Reply::Domain(d) => json!({ "real_domain": lossy(d) }),
        Reply::Password(PasswordReply::NoSuchUser(_)) | Reply::NotFound | Reply::Error => {
            Value::Null
        }
    }
}

fn limits_json(l: &VLimits) -> Value {
    json!({
        "limit_type": l.limit_type,
        "domain_expiry": l.domain_expiry,
        "passwd_expiry": l.passwd_expiry,
        "maxpopaccounts": l.maxpopaccounts,
        "maxaliases": l.maxaliases,
        "maxforwards": l.maxforwards,
        "maxautoresponders": l.maxautoresponders,
        "maxmailinglists": l.maxmailinglists,
        "diskquota": l.diskquota,
        "maxmsgcount": l.maxmsgcount,
        "defaultquota": l.defaultquota,
        "defaultmaxmsgcount": l.defaultmaxmsgcount,
        "disable_pop": l.disable_pop,
        "disable_imap": l.disable_imap,
        "disable_dialup": l.disable_dialup,
        "disable_passwordchanging": l.disable_passwordchanging,
        "disable_webmail": l.disable_webmail,
        "disable_relay": l.disable_relay,
        "disable_smtp": l.disable_smtp,
        "perm_account": l.perm_account,
        "perm_alias": l.perm_alias,
        "perm_forward": l.perm_forward,
        "perm_autoresponder": l.perm_autoresponder,
        "perm_maillist": l.perm_maillist,
        "perm_maillist_users": l.perm_maillist_users,
        "perm_maillist_moderators": l.perm_maillist_moderators,
        "perm_quota": l.perm_quota,
        "perm_defaultquota": l.perm_defaultquota,
    })
}

/// The flush request's answer for `name`: one JSON object.
pub fn flush_json(name: &[u8], result: &Result<i32, ClientError>) -> Value {
    let address = String::from_utf8_lossy(name);
    match result {
        Ok(n) => json!({
            "type": 32, "query": "flush", "address": address, "outcome": "ok",
            "answer": {"removed": n}
        }),
        Err(e) => json!({
            "type": 32, "query": "flush", "address": address, "outcome": "error",
            "answer": null, "error": e.to_string()
        }),
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A load run's figures: one JSON object.
pub fn load_json(r: &LoadReport) -> Value {
    let l = &r.latencies;
    let outcomes: Map<String, Value> = r
        .outcomes
        .iter()
        .map(|(o, n)| (o.word().to_string(), json!(n)))
        .collect();
    json!({
        "mode": "load",
        "queries": r.queries,
        "errors": r.errors,
        "concurrency": r.concurrency,
        "seconds": r.elapsed.as_secs_f64(),
        "queries_per_second": r.queries_per_second(),
        "latency_ms": {"p50": millis(l.p50), "p90": millis(l.p90), "p99": millis(l.p99), "max": millis(l.max)},
        "outcomes": outcomes,
    })
}

/// A load run's figures: three lines of text.
pub fn load_text(r: &LoadReport) -> String {
    let l = &r.latencies;
    let outcomes: Vec<String> = r
        .outcomes
        .iter()
        .map(|(o, n)| format!("{} {n}", o.word()))
        .collect();
    format!(
        "queries {}, errors {}, concurrency {}, time {:.3} s, {:.1} queries/s\n\
         latency p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms\n\
         outcomes {}\n",
        r.queries,
        r.errors,
        r.concurrency,
        r.elapsed.as_secs_f64(),
        r.queries_per_second(),
        millis(l.p50),
        millis(l.p90),
        millis(l.p99),
        millis(l.max),
        outcomes.join(", ")
    )
}

/// The progress line of a load run (for stderr).
pub fn progress_line(p: &Progress) -> String {
    let secs = p.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        p.done as f64 / secs
    } else {
        0.0
    };
    format!(
        "inquerytest: {}/{} queries, {rate:.0} queries/s, {} errors",
        p.done, p.total, p.errors
    )
}

/// Where inquerytest's answers go: the C tool's text or JSON lines, on
/// stdout and stderr. A closed stdout (`| head`) is no panic: the exit
/// status says how the questions went. Each method says whether it
/// reported a failure.
pub struct Printer<'a> {
    pub json: bool,
    pub show_secrets: bool,
    pub tables: Tables<'a>,
    /// Say which database server answered (`--direct` with `-v` or
    /// `--json`): the one that ran the question's last statement.
    pub show_server: bool,
    /// The daemon's push invalidation status (its status file), for the
    /// JSON lines.
    pub push: Option<Value>,
}

/// Write `text` on stdout at once.
pub fn say(text: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text);
    let _ = out.flush();
}

impl Printer<'_> {
    /// The answer to one question.
    pub fn answer(&self, job: &Job, result: &Result<Reply, QueryError>) -> bool {
        let server = self
            .show_server
            .then(crate::db::store::last_server)
            .flatten();
        if self.json {
            let mut v = json(
                job.qtype,
                &job.address,
                &job.ip,
                result,
                self.tables,
                self.show_secrets,
            );
            if let Value::Object(obj) = &mut v {
                if let Some(server) = &server {
                    obj.insert("server".into(), json!(server.as_ref()));
                }
                if let Some(push) = &self.push {
                    obj.insert("push".into(), push.clone());
                }
            }
            say(format!("{v}\n").as_bytes());
            return outcome(job.qtype, &job.address, result).is_failure();
        }
        if let Some(server) = &server {
            say(format!("Answered by database {server}\n").as_bytes());
        }
        let t = text(job.qtype, &job.address, &job.ip, result, self.tables);
        say(&t.stdout);
        let _ = std::io::stderr().write_all(&t.stderr);
        t.outcome.is_failure()
    }

    /// The answer to a flush request for `name`.
    pub fn flush(&self, name: &[u8], result: &Result<i32, ClientError>) -> bool {
        if self.json {
            say(format!("{}\n", flush_json(name, result)).as_bytes());
            return result.is_err();
        }
        let shown = String::from_utf8_lossy(name);
        match result {
            Ok(n) => say(format!("{shown}: flushed {n} cache entries\n").as_bytes()),
            Err(e) => eprintln!("{shown}: flush failed: {e}"),
        }
        result.is_err()
    }

    /// A load run's figures.
    pub fn load(&self, r: &LoadReport) {
        if self.json {
            say(format!("{}\n", load_json(r)).as_bytes());
        } else {
            say(load_text(r).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLES: Tables<'static> = Tables {
        active: "indimail",
        inactive: "indibak",
    };

    fn t(qtype: QueryType, email: &str, ip: &str, r: Result<Reply, QueryError>) -> Text {
        text(qtype, email.as_bytes(), ip.as_bytes(), &r, TABLES)
    }

    #[test]
    fn user_and_relay_lines() {
        let r = t(
            QueryType::User,
            "a@b",
            "",
            Ok(Reply::User(UserStatus::OverQuota)),
        );
        assert_eq!(r.stdout, b"a@b is Overquota on this domain (#5.2.2)\n");
        let r = t(
            QueryType::Relay,
            "a@b",
            "1.2.3.4",
            Ok(Reply::Relay(RelayStatus::Unsupported)),
        );
        assert_eq!(r.stdout, b"a@b is not authenticated on 1.2.3.4\n");
        assert_eq!(r.outcome, Outcome::Unsupported);
    }

    #[test]
    fn errors_and_not_found() {
        let r = t(QueryType::User, "a@b", "", Err(QueryError::Server));
        assert_eq!(r.stderr, b"a@b: inquery failure\n");
        assert!(r.outcome.is_failure());
        let r = t(QueryType::Host, "a@b", "", Ok(Reply::NotFound));
        assert_eq!(r.stderr, b"a@b: No such user\n");
        let r = t(QueryType::Alias, "a@b", "", Ok(Reply::Alias(vec![])));
        assert_eq!(r.stderr, b"a@b: No aliases\n\n");
        assert!(!r.outcome.is_failure());
    }

    #[test]
    fn limits_block() {
        let mut l = VLimits {
            maxpopaccounts: 5,
            diskquota: 2000,
            disable_imap: 1,
            perm_maillist: 3,
            perm_defaultquota: 7,
            limit_type: 2,
            ..VLimits::default()
        };
        let s = limits_text(&l);
        assert!(s.starts_with(
            "Domain Expiry   Date : Never Expires\nPassword Expiry Date : Never Expires\n\
             Max Domain Quota     :          2000\nMax Domain Messages  :     unlimited\n"
        ));
        assert!(s.contains("Max Pop Accounts     :             5\n"));
        assert!(s.contains("\nGID Flags:\n  DIALUP\n  PASSWD CHNG\n  SMTP\n  NO_IMAP\n  POP3\n"));
        assert!(s.contains("  mailinglist           :  DENY_CREATE  DENY_MODIFY ALLOW_DELETE\n"));
        assert!(s.ends_with("  default quota         :  DENY_CREATE  DENY_MODIFY\n"));
        l.limit_type = 1;
        assert!(!limits_text(&l).contains("Flags for non postmaster"));
    }

    #[test]
    fn gid_names() {
        assert_eq!(gid_flag_names(0x10 | 0x2000), ["BOUNCE_MAIL", "V_OVERRIDE"]);
    }
}
