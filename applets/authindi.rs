//! `authindi [module...] app apparg`: IndiMail's module for courier-imap's authlib
//! chain (imaplogin / pop3login).
//!
//! Reads `service\nauthtype\nauthdata` from fd 3. On success it sets AUTHENTICATED,
//! AUTHADDR, AUTHFULLNAME, MAILDIRQUOTA, HOME, AUTHSERVICE, MAILDIR (and
//! LAST_PASSWORD_CHANGE), records the login, and execs `app apparg` in the home
//! directory. A wrong password, an unknown user or domain and a password change go to
//! the next module with the same bytes on a new fd 3; when no module is left, or the
//! account may not use the service, or a lookup failed, it fails completely: the login
//! program (`AUTHUSER` with `AUTHARGV0..`) runs again and says "login failed".

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use indilookup::auth::Policy;
use indilookup::authindi::{
    self, authenticate, Account, LoginTasks, Outcome, Record, RecordError, Reject, ServiceMap,
    Settings, SERVICE_MAP_VAR,
};
use indilookup::chain::{self, ChildEnv, AUTH_FD};
use indilookup::chain::{read_auth_data, RawFdReader, ReadError};
use indilookup::config::{Config, Env};
use indilookup::ctext;
use indilookup::db::Database;
use indilookup::dummy_cost;
use indilookup::exit;
use indilookup::logline::Escaped;
use indilookup::query::{client_database, ClientBackend};

/// The application and its argument: always the last two arguments.
fn app(args: &[OsString]) -> (&OsStr, &OsStr) {
    let n = args.len();
    (&args[n - 2], &args[n - 1])
}

/// A failure of authindi: `authindi: ` and the message.
fn fail(code: u8, message: impl std::fmt::Display) -> exit::Error {
    exit::Error::new(code, format!("authindi: {message}"))
}

pub fn main(args: Vec<OsString>) -> exit::Result {
    let args = indilookup::cli::authindi::parse(args)?.chain;
    if args.is_empty() {
        return Err(exit::MISUSE.into());
    }
    let env = Env::from_process();
    let pid = std::process::id();
    // An earlier module accepted the login: run the application. (C looked at
    // AUTHADDR, which the authlib protocol does not define for this.)
    if args.len() >= 2 && env.get("AUTHENTICATED").is_some_and(|v| !v.is_empty()) {
        let (app, apparg) = app(&args);
        let e = chain::execv(app, &[app.to_owned(), apparg.to_owned()], &ChildEnv::new());
        return Err(fail(
            exit::TEMPORARY,
            format_args!(
                "fatal: execv: {}: {}",
                app.to_string_lossy(),
                ctext::error_str(&e)
            ),
        ));
    }
    if args.len() < 2 {
        return Err(fail(
            exit::PERMANENT,
            "fatal: no more modules will be tried",
        ));
    }
    let debug = env.is_set("DEBUG");
    if debug {
        eprintln!(
            "debug: authindi: pid {pid} uid[{}] euid[{}] {} {}",
            nix::unistd::getuid(),
            nix::unistd::geteuid(),
            if args.len() > 2 { "program" } else { "module" },
            args[0].to_string_lossy()
        );
    }
    let data = match read_auth_data(RawFdReader(AUTH_FD)) {
        Ok(d) => d,
        Err(ReadError::TooLong) => return Err(fail(exit::MISUSE, "fatal: auth data too long")),
        Err(ReadError::Io(e)) => {
            return Err(fail(
                exit::TEMPORARY,
                format_args!("fatal: read: {}", ctext::error_str(&e)),
            ))
        }
    };
    let record = match authindi::parse_record(&data) {
        Ok(r) => r,
        Err(RecordError::TooShort) => return Err(fail(exit::MISUSE, "fatal: auth data too short")),
        Err(RecordError::BadBase64) => {
            eprintln!("authindi: warn: the CRAM data is not valid base64");
            return fail_completely(&env);
        }
    };
    log_request(&env, pid, &record);
    let last_module = args.len() == 2;

    let config = match Config::load(&env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authindi: warn: TEMPFAIL: {e}");
            return fail_completely(&env);
        }
    };
    let services = match ServiceMap::parse(env.get(SERVICE_MAP_VAR).and_then(OsStr::to_str)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("authindi: warn: TEMPFAIL: {e}");
            return fail_completely(&env);
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut policy = Policy::from_env_with(|name| env.is_set(name));
    // As in vchkpass: the stored hash is a CRAM key only when the administrator says so.
    policy.cram_from_hash = env.is_set("ENABLE_CRAM");
    let dummy = dummy_cost::for_client(&env, &config.fifo);
    if let Some(why) = &dummy.warning {
        eprintln!("authindi: warn: {why}");
    }
    if debug {
        eprintln!(
            "debug: authindi: pid {pid} unknown users are checked at the cost {} ({})",
            dummy.cost, dummy.from
        );
    }
    policy.dummy = dummy.cost;
    let settings = Settings {
        policy,
        domain_limits: env.is_set("DOMAIN_LIMITS"),
        default_domain: config.lookup.default_domain.clone(),
        services,
        now,
    };
    // Without QUERY_CACHE the lookups and the login's writes share one connection.
    let backend = ClientBackend::choose(&env, &config);
    let (query, db) = (backend.query(), backend.database().cloned());

    match authenticate(&record, &query, &settings) {
        Outcome::Success(account) => {
            let db = db.unwrap_or_else(|| Arc::new(client_database(&config)));
            exec_local(&args, &env, &config, &record, &account, &db, now)
        }
        Outcome::NextModule(reject) => {
            let always = matches!(reject, Reject::PasswordChange | Reject::Unverifiable(_));
            if always || debug {
                eprintln!("authindi: warn: {}: {reject}", Escaped::new(&record.login));
            }
            if last_module {
                eprintln!("authindi: no more modules will be tried");
                return fail_completely(&env);
            }
            if debug {
                eprintln!(
                    "authindi: pid [{pid}], executing authmodule [{}]",
                    args[0].to_string_lossy()
                );
            }
            let e = chain::pipe_exec(&args, &data, &ChildEnv::new());
            Err(fail(
                exit::TEMPORARY,
                format_args!(
                    "fatal: pipe_exec: {}: {}",
                    args[0].to_string_lossy(),
                    ctext::error_str(&e)
                ),
            ))
        }
        Outcome::FailCompletely(failure) => {
            eprintln!("authindi: warn: {}: {failure}", Escaped::new(&record.login));
            fail_completely(&env)
        }
    }
}

/// The DEBUG / DEBUG_LOGIN line: lengths where C printed the password, challenge and
/// response.
fn log_request(env: &Env, pid: u32, r: &Record) {
    let service = Escaped::new(&r.service);
    let login = Escaped::new(&r.login);
    let authtype = Escaped::new(&r.authtype);
    let debug_login = env
        .get("DEBUG_LOGIN")
        .and_then(|v| v.as_bytes().first().copied())
        .is_some_and(|c| c > b'0');
    if debug_login {
        let mut line = format!(
            "debug_login: pid {pid} service[{service}] login[{login}] password[{} bytes] authmethod[{authtype}]",
            if r.challenge.is_empty() { r.response.len() } else { 0 }
        );
        if !r.challenge.is_empty() {
            line.push_str(&format!(
                " challenge[{} bytes] response[{} bytes]",
                r.challenge.len(),
                r.response.len()
            ));
        }
        eprintln!("{line}");
    } else if env.is_set("DEBUG") {
        eprintln!(
            "debug: authindi: pid {pid} service[{service}]: login[{login}] authmethod [{authtype}]"
        );
    }
}

/// courier's authmod_fail_completely: `AUTHFAILURE` on stderr, then the login program
/// again (it says "login failed" and asks anew). C ran a fixed imaplogin/pop3login
/// path with authindi's own arguments instead.
fn fail_completely(env: &Env) -> exit::Result {
    let _ = std::io::stderr().write_all(b"AUTHFAILURE\n");
    let Some((user, argv)) = authindi::login_program(env) else {
        return Err(exit::FAILURE.into());
    };
    let e = chain::execv(&user, &argv, &ChildEnv::new());
    Err(fail(
        exit::TEMPORARY,
        format_args!(
            "fatal: execv {}: {}",
            user.to_string_lossy(),
            ctext::error_str(&e)
        ),
    ))
}

/// Success: nologin check, the session's environment, Login_Tasks, then the
/// application in the Maildir's directory.
fn exec_local(
    args: &[OsString],
    env: &Env,
    config: &Config,
    record: &Record,
    account: &Account,
    db: &Database,
    now: i64,
) -> exit::Result {
    let (app, apparg) = app(args);
    let pw = &account.pw;
    let service = Escaped::new(&record.service);
    if authindi::login_forbidden(
        &config.paths.controldir,
        &record.service,
        account.real_domain.as_bytes(),
        &pw.gecos,
    ) {
        // C also wrote this to stdout, the IMAP/POP3 client's stream, where it is no
        // valid protocol line.
        return Err(exit::Error::new(
            exit::FAILURE,
            format!("Login not permitted for {service}"),
        ));
    }
    let Some(quota) = authindi::maildir_quota(&pw.shell) else {
        return Err(fail(
            exit::PERMANENT,
            format_args!("fatal: unable to parse_quota [{}]", Escaped::new(&pw.shell)),
        ));
    };
    let home = OsString::from_vec(pw.dir.clone());
    let mut child_env = ChildEnv::new();
    child_env
        .set("AUTHENTICATED", OsStr::from_bytes(&record.login))
        .set("AUTHADDR", account.address())
        .set("AUTHFULLNAME", OsStr::from_bytes(&pw.gecos))
        .set("MAILDIRQUOTA", quota)
        .set("HOME", home.clone())
        .set("AUTHSERVICE", OsStr::from_bytes(&record.service));
    let tasks = LoginTasks {
        account,
        service: &record.service,
        env,
        child_env: &child_env,
        now,
    };
    let result = tasks.run(db, &|line| eprintln!("authindi: {line}"));
    if let Some(t) = result.last_password_change {
        child_env.set("LAST_PASSWORD_CHANGE", t.to_string());
    }
    let tmp_or_home = || {
        env.get("TMP_MAILDIR")
            .map_or_else(|| home.clone(), OsStr::to_owned)
    };
    let base = match result.status {
        2 => tmp_or_home(),
        3 if env.is_set("EXIT_ONERROR") => {
            if let Some(msg) = env.get("MSG_ONERROR") {
                if let Ok(text) = std::fs::read(msg) {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&text);
                    let _ = out.flush();
                }
            }
            return Err(fail(exit::PERMANENT, "fatal: POSTAUTH: Error on Exit"));
        }
        3 => tmp_or_home(),
        _ => home,
    };
    let base = PathBuf::from(base);
    if let Err(e) = std::env::set_current_dir(&base) {
        return Err(fail(
            exit::TEMPORARY,
            format_args!("fatal: chdir: {}: {}", base.display(), ctext::error_str(&e)),
        ));
    }
    child_env.set("MAILDIR", base.join("Maildir"));
    let e = chain::execv(app, &[app.to_owned(), apparg.to_owned()], &child_env);
    Err(fail(
        exit::TEMPORARY,
        format_args!(
            "fatal: exec: {}: {}",
            app.to_string_lossy(),
            ctext::error_str(&e)
        ),
    ))
}
