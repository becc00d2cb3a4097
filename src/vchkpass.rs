//! vchkpass: the checkpassword data on fd 3 and the decision IndiMail's vchkpass makes
//! from it, as functions the applet calls. The applet itself only reads fd 3, prints
//! the SMTP lines, writes fd 6 and runs the next program.
//!
//! Where the C program has a known weakness (spec/auth.md §6) this does the intended
//! thing: the account's state (NO_SMTP, inactive, expired) is told only to a client
//! that has proved the password; an unknown user costs the same work as a wrong
//! password; a failed limits lookup is a temporary failure; logins no account can have
//! are never sent to the database.

use std::io;

use crate::auth::{self, spend_like_verify, Attempt, AuthError, Method, Policy, RspAuth, Verdict};
use crate::db::{gid, plausible_login};
use crate::protocol::PwStruct;
use crate::query::{Query, QueryError};

/// The three fields of the checkpassword data and the method byte.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    pub login: &'a [u8],
    /// The password, or the challenge (CRAM), or the client's digest (DIGEST-MD5).
    pub field2: &'a [u8],
    /// Empty, or the CRAM response, or the DIGEST-MD5 directives.
    pub field3: &'a [u8],
    /// The byte after field 3's NUL; 0 when there is none.
    pub method_byte: u8,
}

impl std::fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fields")
            .field("login", &crate::logline::Escaped::new(self.login))
            .field("field2_len", &self.field2.len())
            .field("field3_len", &self.field3.len())
            .field("method_byte", &self.method_byte)
            .finish()
    }
}

/// Splits `login\0field2\0field3\0[method\0]` as vchkpass does (spec §1.2).
///
/// `None` (exit 2) when the login or field 2 has no NUL after it, or that NUL is the
/// last byte of the data: at least three NUL-terminated fields are needed, and
/// `user\0pass\0` is refused while `user\0pass\0\0` is a password with method 0.
pub fn parse_fields(data: &[u8]) -> Option<Fields<'_>> {
    let nul_in = |from: usize| data[from..].iter().position(|&b| b == 0).map(|i| from + i);
    let end1 = nul_in(0).filter(|&i| i + 1 < data.len())?;
    let end2 = nul_in(end1 + 1).filter(|&i| i + 1 < data.len())?;
    let start3 = end2 + 1;
    let (field3, method_byte) = match nul_in(start3) {
        Some(end3) if end3 + 1 < data.len() => (&data[start3..end3], data[end3 + 1]),
        Some(end3) => (&data[start3..end3], 0),
        None => (&data[start3..], 0),
    };
    Some(Fields {
        login: &data[..end1],
        field2: &data[end1 + 1..end2],
        field3,
        method_byte,
    })
}

/// The method of a method byte if vchkpass can verify it: 0 (unspecified), LOGIN,
/// PLAIN, the CRAM family and DIGEST-MD5. SCRAM is verified inside qmail-smtpd and
/// XOAUTH2 bearer tokens are no password, so those (and numbers IndiMail does not
/// define) are passed to the next module.
pub fn supported_method(byte: u8) -> Option<Method> {
    Method::from_code(byte).filter(|m| m.code() <= Method::DigestMd5.code())
}

/// The name C's vchkpass logs for a method byte (`unknown` for 0 and for numbers that
/// name nothing).
pub fn method_log_name(byte: u8) -> &'static str {
    match Method::from_code(byte) {
        Some(Method::Unspecified) | None => "unknown",
        Some(m) => m.name(),
    }
}

/// What the environment decides about a vchkpass run.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `DISABLE_*`, and `cram_from_hash` from `ENABLE_CRAM`.
    pub policy: Policy,
    /// `ALLOW_INACTIVE`: users in `indibak` may authenticate.
    pub allow_inactive: bool,
    /// `DOMAIN_LIMITS`: check domain and password expiry.
    pub domain_limits: bool,
    /// Current time, Unix seconds.
    pub now: i64,
}

/// The account's state refuses a client that knew the password: a `553-` line, exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoSmtp,
    Inactive,
    DomainExpired,
    PasswordExpired,
}

impl Refusal {
    /// The SMTP continuation line, CRLF included.
    pub fn smtp_line(self) -> &'static str {
        match self {
            Refusal::NoSmtp => "553-Sorry, this account cannot use SMTP (#5.7.1)\r\n",
            Refusal::Inactive => "553-Sorry, this account is inactive (#5.7.1)\r\n",
            Refusal::DomainExpired => "553-Sorry, your domain has expired (#5.7.1)\r\n",
            Refusal::PasswordExpired => "553-Sorry, your password has expired (#5.7.1)\r\n",
        }
    }
}

/// Why the next module gets the data.
#[derive(Debug)]
pub enum Reject {
    /// A method this module cannot verify (the byte as sent).
    UnsupportedMethod(u8),
    /// A login no account can have.
    ImplausibleLogin,
    NoSuchUser,
    WrongPassword,
    /// CRAM or DIGEST-MD5, no clear text stored, ENABLE_CRAM not set.
    NoClearText,
    /// The stored secret could not be used (malformed SCRAM value, unknown or damaged
    /// hash). The C program answered `553-Sorry, unable to get secrets` for a bad SCRAM
    /// value before checking anything; that told a stranger about the account.
    Unverifiable(AuthError),
}

impl Reject {
    /// Worth a line in the log even without DEBUG: the administrator has to act.
    pub fn needs_attention(&self) -> bool {
        matches!(self, Reject::UnsupportedMethod(_) | Reject::Unverifiable(_))
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::UnsupportedMethod(b) => {
                write!(
                    f,
                    "auth method {} ({b}) is not supported here",
                    method_log_name(*b)
                )
            }
            Reject::ImplausibleLogin => f.write_str("not a valid login"),
            Reject::NoSuchUser => f.write_str("no such user"),
            Reject::WrongPassword => f.write_str("password mismatch"),
            Reject::NoClearText => {
                f.write_str("no clear-text secret stored for a CRAM method (ENABLE_CRAM not set)")
            }
            Reject::Unverifiable(e) => write!(f, "unable to get secrets: {e}"),
        }
    }
}

/// A temporary failure: a `454-` line, exit 111.
#[derive(Debug)]
pub enum TempFailure {
    /// The user lookup failed; `via` is `inquery` or `sql_getpw`, as C names it.
    Lookup {
        via: &'static str,
        error: QueryError,
    },
    /// The limits of `domain` could not be had (`error` is `None` when the lookup
    /// found no such user any more).
    Limits {
        domain: String,
        error: Option<QueryError>,
    },
}

impl TempFailure {
    /// The SMTP continuation line, CRLF included. It names what failed and the system
    /// error, in libqmail's words as C's text did; the rest of the story goes to the log only (the
    /// client does not need to learn the database's address or user).
    pub fn smtp_line(&self) -> String {
        match self {
            TempFailure::Lookup { error, .. } if is_connect_error(error) => format!(
                "454-failed to connect to database: {} (#4.3.0)\r\n",
                brief_reason(error)
            ),
            TempFailure::Lookup { via, error } => {
                format!("454-{via}: {} (#4.3.0)\r\n", brief_reason(error))
            }
            TempFailure::Limits { domain, .. } => {
                format!("454-unable to get domain limits for {domain} (#4.3.0)\r\n")
            }
        }
    }

    /// The log line, without the program name.
    pub fn log_line(&self) -> String {
        match self {
            TempFailure::Lookup { via, error } => format!("{via}: {error}"),
            TempFailure::Limits {
                domain,
                error: Some(e),
            } => format!("unable to get domain limits for {domain}: {e}"),
            TempFailure::Limits {
                domain,
                error: None,
            } => format!("unable to get domain limits for {domain}: the user is gone"),
        }
    }
}

fn is_connect_error(e: &QueryError) -> bool {
    matches!(e, QueryError::Database(crate::db::DbError::Connect(_)))
}

/// The system error at the root of a failure, as libqmail's error_str words it, or a few words
/// that name the kind of failure.
fn brief_reason(e: &QueryError) -> String {
    use crate::client::ClientError;
    use crate::db::DbError;
    let mysql_error = match e {
        QueryError::Database(DbError::Connect(m) | DbError::Query { source: m, .. }) => Some(m),
        _ => None,
    };
    match mysql_error {
        Some(mysql::Error::IoError(io)) => return crate::ctext::error_str(io),
        Some(mysql::Error::DriverError(mysql::DriverError::CouldNotConnect(Some((
            _,
            desc,
            _,
        ))))) => return crate::ctext::error_str_in_text(desc),
        Some(mysql::Error::DriverError(mysql::DriverError::ConnectTimeout)) => {
            return "timed out".to_string()
        }
        _ => {}
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return crate::ctext::error_str(io);
        }
        source = err.source();
    }
    match e {
        QueryError::Remote(ClientError::Timeout(_)) => "timed out".to_string(),
        QueryError::Remote(ClientError::NoServer(_) | ClientError::NotServed(_)) => {
            "inlookup is not running".to_string()
        }
        QueryError::Server => "inlookup service returned error".to_string(),
        _ => "temporary failure".to_string(),
    }
}

/// The client proved the password and may use SMTP.
#[derive(Debug)]
pub struct Success {
    /// The login the account was found under (with the DIGEST-MD5 realm added when
    /// the client sent none); POSTAUTH gets it.
    pub login: Vec<u8>,
    /// The user's home directory (HOME for POSTAUTH and the native-mode program).
    pub home: Vec<u8>,
    /// NO_RELAY: authenticated, but no relaying (exit 3).
    pub no_relay: bool,
    /// DIGEST-MD5: the `rspauth` value for fd 6.
    pub rspauth: Option<RspAuth>,
}

/// The result of a vchkpass check.
#[derive(Debug)]
pub enum Outcome {
    Success(Success),
    NextModule(Reject),
    Refused(Refusal),
    TempFail(TempFailure),
}

/// Checks the fd-3 fields against the account, as vchkpass does (spec §1.3), with the
/// state of the account looked at only after the password matched.
///
/// `remote` says whether `query` asks the daemon (for the names in messages).
pub fn authenticate(fields: &Fields<'_>, query: &Query, remote: bool, s: &Settings) -> Outcome {
    let Some(method) = supported_method(fields.method_byte) else {
        return Outcome::NextModule(Reject::UnsupportedMethod(fields.method_byte));
    };
    // DIGEST-MD5 clients may send a bare user name and the domain as the realm. The
    // digest itself is over the login as sent.
    let realm_login = match method {
        Method::DigestMd5 => auth::login_with_realm(fields.login, fields.field3),
        _ => None,
    };
    let login = realm_login.as_deref().unwrap_or(fields.login);
    let attempt = Attempt::from_checkpassword(method, fields.login, fields.field2, fields.field3);
    if !plausible_login(login) {
        spend_like_verify(&attempt, &s.policy);
        return Outcome::NextModule(Reject::ImplausibleLogin);
    }
    let pw = match query.password(login) {
        Ok(Some(pw)) => pw,
        Ok(None) => {
            spend_like_verify(&attempt, &s.policy);
            return Outcome::NextModule(Reject::NoSuchUser);
        }
        Err(error) => {
            let via = if remote { "inquery" } else { "sql_getpw" };
            return Outcome::TempFail(TempFailure::Lookup { via, error });
        }
    };
    let rspauth = match auth::verify(&pw.passwd, &attempt, &s.policy) {
        Ok(Verdict::Match { rspauth }) => rspauth,
        Ok(Verdict::Mismatch) => return Outcome::NextModule(Reject::WrongPassword),
        Err(AuthError::NoClearText { .. }) => {
            spend_like_verify(&attempt, &s.policy);
            return Outcome::NextModule(Reject::NoClearText);
        }
        Err(e) => {
            spend_like_verify(&attempt, &s.policy);
            return Outcome::NextModule(Reject::Unverifiable(e));
        }
    };
    // From here on the client knows the password: it may learn the account's state.
    if pw.gid & gid::NO_SMTP != 0 {
        return Outcome::Refused(Refusal::NoSmtp);
    }
    if pw.inactive && !s.allow_inactive {
        return Outcome::Refused(Refusal::Inactive);
    }
    if s.domain_limits {
        let (key, domain) = limits_key(login, &pw);
        match query.limits(key.as_bytes()) {
            Ok(Some(l)) => {
                if l.domain_expiry > -1 && s.now > l.domain_expiry {
                    return Outcome::Refused(Refusal::DomainExpired);
                }
                if l.passwd_expiry > -1 && s.now > l.passwd_expiry {
                    return Outcome::Refused(Refusal::PasswordExpired);
                }
            }
            Ok(None) => {
                return Outcome::TempFail(TempFailure::Limits {
                    domain,
                    error: None,
                })
            }
            Err(e) => {
                return Outcome::TempFail(TempFailure::Limits {
                    domain,
                    error: Some(e),
                })
            }
        }
    }
    Outcome::Success(Success {
        login: login.to_vec(),
        home: pw.dir,
        no_relay: pw.gid & gid::NO_RELAY != 0,
        rspauth,
    })
}

/// The LIMIT query for a user, `user@domain`, and the domain alone (for messages).
/// The domain is the one typed after the first `@`, `%` or `:`, else the one the
/// lookup applied (the default domain). Asking for the user rather than the bare
/// domain also finds per-user limits, and the lookup resolves alias domains.
fn limits_key(login: &[u8], pw: &PwStruct) -> (String, String) {
    let text = String::from_utf8_lossy(login).to_ascii_lowercase();
    let (user, domain) = match text.find(['@', '%', ':']) {
        Some(i) => (text[..i].to_string(), text[i + 1..].to_string()),
        None => (
            text.clone(),
            String::from_utf8_lossy(&pw.domain).to_ascii_lowercase(),
        ),
    };
    (format!("{user}@{domain}"), domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Split<'a> = (&'a [u8], &'a [u8], &'a [u8], u8);

    fn fields(data: &[u8]) -> Option<Split<'_>> {
        parse_fields(data).map(|f| (f.login, f.field2, f.field3, f.method_byte))
    }

    #[test]
    fn field_rules() {
        // Password with and without a method byte.
        assert_eq!(
            fields(b"user\0pass\0\0"),
            Some((&b"user"[..], &b"pass"[..], &b""[..], 0))
        );
        assert_eq!(
            fields(b"user\0pass\0\0\x01\0"),
            Some((&b"user"[..], &b"pass"[..], &b""[..], 1))
        );
        // The NUL after the method byte is not checked.
        assert_eq!(
            fields(b"user\0pass\0\0\x02"),
            Some((&b"user"[..], &b"pass"[..], &b""[..], 2))
        );
        // Field 3 running to the end of the data.
        assert_eq!(
            fields(b"user\0<c>\0abcd"),
            Some((&b"user"[..], &b"<c>"[..], &b"abcd"[..], 0))
        );
        assert_eq!(
            fields(b"user\0<c>\0abcd\0\x03\0"),
            Some((&b"user"[..], &b"<c>"[..], &b"abcd"[..], 3))
        );
        // Empty login and empty password are fields too.
        assert_eq!(fields(b"\0\0\0"), Some((&b""[..], &b""[..], &b""[..], 0)));
        // Too few fields.
        for bad in [&b""[..], b"user", b"user\0", b"user\0pass", b"user\0pass\0"] {
            assert_eq!(fields(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn methods_vchkpass_verifies() {
        for code in 0..=10 {
            assert_eq!(supported_method(code).map(Method::code), Some(code));
        }
        for code in [11, 12, 13, 14, 15, 16, 17, 18, 99, 255] {
            assert_eq!(supported_method(code), None, "{code}");
        }
        assert_eq!(method_log_name(0), "unknown");
        assert_eq!(method_log_name(3), "CRAM-MD5");
        assert_eq!(method_log_name(200), "unknown");
    }

    #[test]
    fn refusal_lines() {
        assert_eq!(
            Refusal::NoSmtp.smtp_line(),
            "553-Sorry, this account cannot use SMTP (#5.7.1)\r\n"
        );
        assert_eq!(
            Refusal::Inactive.smtp_line(),
            "553-Sorry, this account is inactive (#5.7.1)\r\n"
        );
        let t = TempFailure::Limits {
            domain: "example.com".into(),
            error: None,
        };
        assert_eq!(
            t.smtp_line(),
            "454-unable to get domain limits for example.com (#4.3.0)\r\n"
        );
        let t = TempFailure::Lookup {
            via: "inquery",
            error: QueryError::Server,
        };
        assert_eq!(
            t.smtp_line(),
            "454-inquery: inlookup service returned error (#4.3.0)\r\n"
        );
    }

    /// A backend that knows one user, `joe@example.com`, with a SHA-256-crypt hash of
    /// the default cost (what IndiMail's tools make).
    struct OneUser;
    impl crate::query::Backend for OneUser {
        fn ask(
            &self,
            _: crate::protocol::QueryType,
            email: &[u8],
            _: &[u8],
        ) -> Result<crate::protocol::Reply, QueryError> {
            use crate::protocol::{PasswordReply, Reply};
            if email != b"joe@example.com" {
                return Ok(Reply::Password(PasswordReply::NoSuchUser(email.to_vec())));
            }
            Ok(Reply::Password(PasswordReply::Found(PwStruct {
                name: b"joe".to_vec(),
                domain: b"example.com".to_vec(),
                // openssl passwd -5 -salt abc 'x y'
                passwd: b"$5$abc$f/AVgTKzbWla6N3L9LPyTn0a4ZqNgvkSY09z35tJVo6".to_vec(),
                uid: 1,
                gid: gid::NO_SMTP,
                gecos: Vec::new(),
                dir: b"/home/joe".to_vec(),
                shell: Vec::new(),
                inactive: false,
            })))
        }
    }

    fn check(login: &str, password: &str) -> Outcome {
        let query = Query::new(std::sync::Arc::new(OneUser));
        let data = [login.as_bytes(), b"\0", password.as_bytes(), b"\0\0\x01\0"].concat();
        let fields = parse_fields(&data).unwrap();
        authenticate(&fields, &query, false, &Settings::default())
    }

    #[test]
    fn state_only_after_the_password() {
        assert!(matches!(
            check("joe@example.com", "x y"),
            Outcome::Refused(Refusal::NoSmtp)
        ));
        assert!(matches!(
            check("joe@example.com", "x z"),
            Outcome::NextModule(Reject::WrongPassword)
        ));
        assert!(matches!(
            check("ann@example.com", "x y"),
            Outcome::NextModule(Reject::NoSuchUser)
        ));
    }

    /// An unknown user (and an address that cannot be one) costs what a wrong password
    /// costs: exactly one crypt computation, in the same scheme and at the same cost as the
    /// known user's hash. Counted, not timed, so a loaded machine cannot fail it.
    #[test]
    fn unknown_user_costs_one_crypt_of_the_same_scheme_as_a_wrong_password() {
        use crate::auth::{CryptScheme, VERIFIED};
        let work = |login: &str| {
            VERIFIED.with(|v| v.borrow_mut().clear());
            assert!(matches!(
                check(login, "wrong password"),
                Outcome::NextModule(_)
            ));
            VERIFIED.with(|v| v.take())
        };
        // The scheme, and the explicit rounds if any: what decides the cost.
        let cost = |h: &[u8]| {
            let scheme = CryptScheme::identify(h).unwrap();
            let rounds = h
                .split(|&b| b == b'$')
                .find(|part| part.starts_with(b"rounds="))
                .map(<[u8]>::to_vec);
            (scheme, rounds)
        };
        let known = work("joe@example.com");
        assert_eq!(known.len(), 1, "a wrong password is one crypt");
        for login in ["nobody@example.com", "no body@example.com", "nodomain"] {
            let unknown = work(login);
            assert_eq!(unknown.len(), 1, "{login}: {unknown:?}");
            assert_eq!(cost(&unknown[0]), cost(&known[0]), "{login}");
            assert_ne!(unknown[0], known[0], "{login}: checked against a real hash");
        }
    }

    /// A backend that knows `joe@example.com` with the given hash.
    struct UserWithHash(&'static str);
    impl crate::query::Backend for UserWithHash {
        fn ask(
            &self,
            q: crate::protocol::QueryType,
            email: &[u8],
            ip: &[u8],
        ) -> Result<crate::protocol::Reply, QueryError> {
            let mut reply = OneUser.ask(q, email, ip)?;
            if let crate::protocol::Reply::Password(crate::protocol::PasswordReply::Found(pw)) =
                &mut reply
            {
                pw.passwd = self.0.as_bytes().to_vec();
            }
            Ok(reply)
        }
    }

    /// A site whose users have SHA-512 hashes of 10000 rounds (IndiMail's
    /// PASSWORD_HASH unset, which would say SHA-256): with the cost learnt from the
    /// site's hashes, as the applets use it, an unknown user costs exactly one crypt
    /// computation of that scheme and those rounds, what a wrong password costs.
    #[test]
    fn unknown_user_costs_what_the_sites_own_hashes_cost() {
        use crate::auth::{most_common, HashCost, VERIFIED};
        // Python's crypt.crypt('x y', '$6$rounds=10000$abcdefgh') (libxcrypt).
        const SITE_HASH: &str = "$6$rounds=10000$abcdefgh$bt2D1fknJbYs39Z.DQkLis4UDjSg8/acBHhDptxtbSUWorySezY9AvZuIkjpil6p9C2IaIWkEwmCGxfgSM617.";
        // Most users have that cost; a few have older hashes.
        let site: Vec<&[u8]> = vec![
            SITE_HASH.as_bytes(),
            b"$6$rounds=10000$zyxwvuts$...",
            b"$6$rounds=10000$qwertyui$...",
            b"$5$abc$f/AVgTKzbWla6N3L9LPyTn0a4ZqNgvkSY09z35tJVo6",
            b"{CRAM}clear",
        ];
        let learnt = most_common(site).unwrap().cost;
        let mut settings = Settings::default();
        settings.policy.dummy = learnt;
        let query = Query::new(std::sync::Arc::new(UserWithHash(SITE_HASH)));
        let work = |login: &str, password: &str| {
            VERIFIED.with(|v| v.borrow_mut().clear());
            let data = [login.as_bytes(), b"\0", password.as_bytes(), b"\0\0\x01\0"].concat();
            let outcome = authenticate(&parse_fields(&data).unwrap(), &query, false, &settings);
            (outcome, VERIFIED.with(|v| v.take()))
        };
        let (outcome, right) = work("joe@example.com", "x y");
        assert!(
            matches!(outcome, Outcome::Refused(Refusal::NoSmtp)),
            "{outcome:?}"
        );
        assert_eq!(right, vec![SITE_HASH.as_bytes().to_vec()]);
        let (_, known) = work("joe@example.com", "wrong password");
        assert_eq!(known.len(), 1, "a wrong password is one crypt");
        let site_cost = HashCost::of_hash(&known[0]);
        assert_eq!(site_cost, Some(HashCost::Sha512Crypt { rounds: 10000 }));
        for login in ["nobody@example.com", "no body@example.com", "nodomain"] {
            let (outcome, unknown) = work(login, "wrong password");
            assert!(matches!(outcome, Outcome::NextModule(_)), "{login}");
            assert_eq!(unknown.len(), 1, "{login}: {unknown:?}");
            assert_eq!(HashCost::of_hash(&unknown[0]), site_cost, "{login}");
            assert_ne!(unknown[0], known[0], "{login}: checked against a real hash");
        }
    }

    #[test]
    fn limits_key_uses_typed_or_applied_domain() {
        let pw = PwStruct {
            name: b"joe".to_vec(),
            domain: b"example.com".to_vec(),
            passwd: Vec::new(),
            uid: 0,
            gid: 0,
            gecos: Vec::new(),
            dir: Vec::new(),
            shell: Vec::new(),
            inactive: false,
        };
        assert_eq!(
            limits_key(b"Joe@Alias.com", &pw),
            ("joe@alias.com".into(), "alias.com".into())
        );
        assert_eq!(
            limits_key(b"joe%other.net", &pw),
            ("joe@other.net".into(), "other.net".into())
        );
        assert_eq!(
            limits_key(b"joe", &pw),
            ("joe@example.com".into(), "example.com".into())
        );
    }
}
