//! `vchkpass prog [args...]`: IndiMail's checkpassword module for SMTP AUTH.
//!
//! Reads `login\0field2\0field3\0method\0` from fd 3. Default mode: exit 0 (or 3 for a
//! NO_RELAY account, or POSTAUTH's status) when the credentials are right, otherwise
//! run `prog args...` with the same bytes on a new fd 3. Native mode
//! (NATIVE_CHECKPASSWORD or DOVECOT_VERSION set): exec `prog` on success, exit 1
//! otherwise. stdout is the SMTP client's connection: it gets `553-`/`454-` lines only.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::{SystemTime, UNIX_EPOCH};

use indilookup::auth::Policy;
use indilookup::chain::{self, ChildEnv, ReadError, AUTH_FD};
use indilookup::config::{Config, Env};
use indilookup::ctext;
use indilookup::dummy_cost;
use indilookup::exit;
use indilookup::logline::Escaped;
use indilookup::query::ClientBackend;
use indilookup::vchkpass::{
    self, authenticate, method_log_name, Fields, Outcome, Settings, Success,
};

/// Where qmail-smtpd reads the DIGEST-MD5 `rspauth` from.
const RSPAUTH_FD: i32 = 6;

/// A line for the SMTP client (stdout), sent at once.
fn client(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// A temporary failure: `line` for the client, `log` for the log.
fn temp_fail(line: &str, log: &str) -> exit::Error {
    client(line);
    exit::Error::new(exit::TEMPORARY, format!("vchkpass: {log}"))
}

pub fn main(args: Vec<OsString>) -> exit::Result {
    let args = indilookup::cli::vchkpass::parse(args)?.program;
    if args.is_empty() {
        return Err(exit::MISUSE.into());
    }
    let data = match chain::read_auth_data(chain::RawFdReader(AUTH_FD)) {
        Ok(d) => d,
        Err(ReadError::TooLong) => return Err(exit::MISUSE.into()),
        Err(ReadError::Io(e)) => {
            let err = ctext::error_str(&e);
            return Err(temp_fail(
                &format!("454-read error: {err} (#4.3.0)\r\n"),
                &format!("read: {err}"),
            ));
        }
    };
    chain::close_input_on_exec(AUTH_FD);
    let Some(fields) = vchkpass::parse_fields(&data) else {
        return Err(exit::MISUSE.into());
    };
    let env = Env::from_process();
    let native = env.is_set("NATIVE_CHECKPASSWORD") || env.is_set("DOVECOT_VERSION");
    // C unset these on entry; the programs started here do not see them.
    let mut child_env = ChildEnv::new();
    child_env.remove("HOME");
    let pid = std::process::id();
    log_request(&env, pid, &fields);

    let config = match Config::load(&env) {
        Ok(c) => c,
        Err(e) => {
            return Err(temp_fail(
                "454-configuration error (#4.3.0)\r\n",
                &e.to_string(),
            ))
        }
    };
    let backend = ClientBackend::choose(&env, &config);
    let (remote, query) = (backend.is_remote(), backend.query());
    let mut policy = Policy::from_env_with(|name| env.is_set(name));
    policy.cram_from_hash = env.is_set("ENABLE_CRAM");
    let dummy = dummy_cost::for_client(&env, &config.fifo);
    if let Some(why) = &dummy.warning {
        eprintln!("vchkpass: pid [{pid}]: warn: {why}");
    }
    if env.is_set("DEBUG") {
        eprintln!(
            "vchkpass: pid [{pid}]: unknown users are checked at the cost {} ({})",
            dummy.cost, dummy.from
        );
    }
    policy.dummy = dummy.cost;
    let settings = Settings {
        policy,
        allow_inactive: env.is_set("ALLOW_INACTIVE"),
        domain_limits: env.is_set("DOMAIN_LIMITS"),
        now: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };

    match authenticate(&fields, &query, remote, &settings) {
        Outcome::Success(success) => {
            if let Some(rspauth) = &success.rspauth {
                send_rspauth(rspauth.as_bytes())?;
            }
            if native {
                exec_native(&args, &env, child_env, &success)
            } else {
                finish_default(&env, child_env, &success)
            }
        }
        Outcome::NextModule(reject) => {
            if reject.needs_attention() || env.is_set("DEBUG") {
                eprintln!(
                    "vchkpass: pid [{pid}]: login [{}]: {reject}",
                    Escaped::new(fields.login)
                );
            }
            if native {
                return Err(exit::FAILURE.into());
            }
            Err(next_module(&args, &data, &env, &child_env, pid))
        }
        Outcome::Refused(refusal) => {
            client(refusal.smtp_line());
            Err(exit::FAILURE.into())
        }
        Outcome::TempFail(t) => Err(temp_fail(&t.smtp_line(), &t.log_line())),
    }
}

/// The DEBUG / DEBUG_LOGIN line. C printed the password, the challenge and response and
/// the stored secret here; this prints their lengths.
fn log_request(env: &Env, pid: u32, f: &Fields<'_>) {
    let login = Escaped::new(f.login);
    let method = method_log_name(f.method_byte);
    let debug_login = env
        .get("DEBUG_LOGIN")
        .and_then(|v| v.as_bytes().first().copied())
        .is_some_and(|c| c > b'0');
    if debug_login {
        eprintln!(
            "vchkpass: pid [{pid}]: login [{login}] challenge [{} bytes] response [{} bytes] authmethod [{method}]",
            f.field2.len(),
            f.field3.len()
        );
    } else if env.is_set("DEBUG") {
        eprintln!("vchkpass: pid [{pid}]: login [{login}] authmethod [{method}]");
    }
}

/// DIGEST-MD5: the `rspauth` for qmail-smtpd on fd 6. With fd 6 not open nobody
/// waits for it (a caller other than qmail-smtpd), which is no failure.
fn send_rspauth(rspauth: &[u8]) -> exit::Result {
    match chain::write_fd(RSPAUTH_FD, rspauth) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Ok(()),
        Err(e) => {
            let err = ctext::error_str(&e);
            Err(temp_fail(
                &format!("454-DIGEST-MD5: {err} (#4.3.0)\r\n"),
                &format!("DIGEST-MD5: write rspauth: {err}"),
            ))
        }
    }
}

/// Runs POSTAUTH, when it names an executable file, as `POSTAUTH login` with HOME set
/// to the user's home: `None` when there is none to run, else how it ended.
fn run_postauth(
    env: &Env,
    child_env: &mut ChildEnv,
    s: &Success,
) -> Option<(OsString, std::io::Result<std::process::ExitStatus>)> {
    let postauth = env.get("POSTAUTH").filter(|p| chain::is_executable(p))?;
    child_env.set("HOME", OsStr::from_bytes(&s.home));
    // The login is one argument: C built a command line and split it again,
    // so a login with blanks or `$NAME` words could add arguments.
    let ended = chain::run(postauth, &[OsStr::from_bytes(&s.login)], child_env);
    Some((postauth.to_os_string(), ended))
}

/// Default mode after a success: POSTAUTH, then 0, 3 (NO_RELAY) or POSTAUTH's status.
fn finish_default(env: &Env, mut child_env: ChildEnv, s: &Success) -> exit::Result {
    let status = match run_postauth(env, &mut child_env, s) {
        None => 0,
        Some((postauth, ended)) => match ended {
            Ok(st) => match st.code() {
                Some(code) => code as u8,
                None => {
                    return Err(temp_fail(
                        "454-POSTAUTH: killed by a signal (#4.3.0)\r\n",
                        &format!("POSTAUTH {}: {st}", postauth.to_string_lossy()),
                    ))
                }
            },
            Err(e) => {
                let err = ctext::error_str(&e);
                return Err(temp_fail(
                    &format!("454-POSTAUTH: {err} (#4.3.0)\r\n"),
                    &format!("POSTAUTH {}: {err}", postauth.to_string_lossy()),
                ));
            }
        },
    };
    // A failing POSTAUTH is a failure even for a NO_RELAY account (C let exit 3 win).
    match status {
        0 if s.no_relay => Err(exit::NO_RELAY.into()),
        0 => Ok(()),
        status => Err(status.into()),
    }
}

/// Native (DJB / Dovecot) mode after a success: POSTAUTH as in the default mode, its
/// status ignored (as C ignored it), then exec the program with HOME and the Dovecot
/// userdb variables.
fn exec_native(args: &[OsString], env: &Env, mut child_env: ChildEnv, s: &Success) -> exit::Result {
    if let Some((postauth, ended)) = run_postauth(env, &mut child_env, s) {
        let shown = postauth.to_string_lossy();
        match ended {
            Ok(st) if st.success() => {}
            Ok(st) => eprintln!("vchkpass: POSTAUTH {shown}: {st} (ignored in native mode)"),
            Err(e) => eprintln!(
                "vchkpass: POSTAUTH {shown}: {} (ignored in native mode)",
                ctext::error_str(&e)
            ),
        }
    }
    // C unset EXTRA before reading it; the value the caller gave is kept here.
    let extra = match env.get("EXTRA").filter(|v| !v.is_empty()) {
        Some(old) => {
            let mut v = OsString::from("userdb_uid userdb_gid ");
            v.push(old);
            v
        }
        None => OsString::from("userdb_uid userdb_gid"),
    };
    child_env
        .set("HOME", OsStr::from_bytes(&s.home))
        .set("userdb_uid", "indimail")
        .set("userdb_gid", "indimail")
        .set("EXTRA", extra);
    let e = chain::execv(&args[0], args, &child_env);
    let err = ctext::error_str(&e);
    Err(temp_fail(
        &format!("454-exec: {err} (#4.3.0)\r\n"),
        &format!("exec: {}: {err}", args[0].to_string_lossy()),
    ))
}

/// Default mode after a failure: the next module gets exactly the bytes read;
/// the error when it cannot be run.
fn next_module(
    args: &[OsString],
    data: &[u8],
    env: &Env,
    child_env: &ChildEnv,
    pid: u32,
) -> exit::Error {
    if env.is_set("DEBUG") {
        eprintln!(
            "vchkpass: pid [{pid}], executing authmodule [{}]",
            args[0].to_string_lossy()
        );
    }
    let e = chain::pipe_exec(args, data, child_env);
    let err = ctext::error_str(&e);
    temp_fail(
        &format!("454-exec: {err} (#4.3.0)\r\n"),
        &format!("pipe_exec: {}: {err}", args[0].to_string_lossy()),
    )
}
