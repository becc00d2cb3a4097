//! The decision: which account a login names, whether the password matches, and what
//! the account's flags allow.

use crate::auth::{self, spend_like_verify, AuthError, Policy, Verdict};
use crate::db::plausible_login;
use crate::protocol::PwStruct;
use crate::query::{Query, QueryError};

use super::record::{AuthType, Record};
use super::service::ServiceMap;

/// What the environment decides about an authindi run.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `DISABLE_*`, and `cram_from_hash` from `ENABLE_CRAM`.
    pub policy: Policy,
    /// `DOMAIN_LIMITS`.
    pub domain_limits: bool,
    /// The site's default domain, for a login without one.
    pub default_domain: Option<String>,
    pub services: ServiceMap,
    /// Unix seconds.
    pub now: i64,
}

/// The account of a client that proved its password and may use the service.
#[derive(Debug)]
pub struct Account {
    pub pw: PwStruct,
    /// The user's domain after alias resolution.
    pub real_domain: String,
}

impl Account {
    /// `pw_name@real_domain`.
    pub fn address(&self) -> String {
        format!(
            "{}@{}",
            String::from_utf8_lossy(&self.pw.name),
            self.real_domain
        )
    }
}

/// Why the next module gets the request.
#[derive(Debug)]
pub enum Reject {
    PasswordChange,
    NoSuchUser,
    WrongPassword,
    /// The stored secret cannot be used (malformed SCRAM value, unknown hash scheme).
    Unverifiable(AuthError),
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::PasswordChange => f.write_str("Password Change not supported"),
            Reject::NoSuchUser => f.write_str("no such user"),
            Reject::WrongPassword => f.write_str("password mismatch"),
            Reject::Unverifiable(e) => write!(f, "unable to get secrets: {e}"),
        }
    }
}

/// Why no other module may try: the client proved the password but may not log in,
/// or the lookup failed (courier's TEMPFAIL, which also fails completely).
#[derive(Debug)]
pub enum Failure {
    ServiceDisabled(String),
    DomainExpired,
    PasswordExpired,
    Lookup(QueryError),
    /// The limits lookup found no such user any more.
    LimitsGone,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::ServiceDisabled(s) => write!(f, "{s} disabled for this account"),
            Failure::DomainExpired => f.write_str("Sorry, your domain has expired"),
            Failure::PasswordExpired => f.write_str("Sorry, your password has expired"),
            Failure::Lookup(e) => write!(f, "TEMPFAIL: {e}"),
            Failure::LimitsGone => f.write_str("TEMPFAIL: unable to get domain limits"),
        }
    }
}

#[derive(Debug)]
pub enum Outcome {
    Success(Account),
    NextModule(Reject),
    FailCompletely(Failure),
}

/// The address to look a login up under: `user@domain` lower-cased, split at the first
/// `@`, `%` or `:`, with the default domain for a bare user; a bare user as it is when
/// there is no default domain (the daemon then applies its own).
pub fn lookup_address(login: &[u8], default_domain: Option<&str>) -> Vec<u8> {
    let lower = login.to_ascii_lowercase();
    match lower.iter().position(|b| matches!(b, b'@' | b'%' | b':')) {
        Some(i) => [&lower[..i], b"@", &lower[i + 1..]].concat(),
        None => match default_domain {
            Some(d) => [&lower[..], b"@", d.to_ascii_lowercase().as_bytes()].concat(),
            None => lower,
        },
    }
}

/// Checks a record against the account (spec §2.3 with the §6 fixes).
pub fn authenticate(record: &Record, query: &Query, s: &Settings) -> Outcome {
    if record.kind == AuthType::PasswordChange {
        return Outcome::NextModule(Reject::PasswordChange);
    }
    let attempt = record.attempt();
    let policy = &s.policy;
    if !plausible_login(&record.login) {
        spend_like_verify(&attempt, policy);
        return Outcome::NextModule(Reject::NoSuchUser);
    }
    let address = lookup_address(&record.login, s.default_domain.as_deref());
    let pw = match query.password(&address) {
        Ok(Some(pw)) => pw,
        Ok(None) => {
            spend_like_verify(&attempt, policy);
            return Outcome::NextModule(Reject::NoSuchUser);
        }
        Err(e) => return Outcome::FailCompletely(Failure::Lookup(e)),
    };
    match auth::verify(&pw.passwd, &attempt, policy) {
        Ok(Verdict::Match { .. }) => {}
        Ok(Verdict::Mismatch) => return Outcome::NextModule(Reject::WrongPassword),
        Err(e) => {
            spend_like_verify(&attempt, policy);
            return Outcome::NextModule(Reject::Unverifiable(e));
        }
    }
    // The password matched: the account's state may be told now.
    let typed_domain = match address.iter().position(|&b| b == b'@') {
        Some(i) => address[i + 1..].to_vec(),
        None => pw.domain.clone(),
    };
    let real_domain = match query.real_domain(&typed_domain) {
        Ok(d) => String::from_utf8_lossy(&d).to_ascii_lowercase(),
        Err(e) => return Outcome::FailCompletely(Failure::Lookup(e)),
    };
    if let Some(class) = s.services.class(&record.service) {
        if pw.gid & class.closing_flag() != 0 {
            let service = String::from_utf8_lossy(&record.service).into_owned();
            return Outcome::FailCompletely(Failure::ServiceDisabled(service));
        }
    }
    let account = Account { pw, real_domain };
    if s.domain_limits {
        match query.limits(account.address().as_bytes()) {
            Ok(Some(l)) => {
                if l.domain_expiry > -1 && s.now > l.domain_expiry {
                    return Outcome::FailCompletely(Failure::DomainExpired);
                }
                if l.passwd_expiry > -1 && s.now > l.passwd_expiry {
                    return Outcome::FailCompletely(Failure::PasswordExpired);
                }
            }
            Ok(None) => return Outcome::FailCompletely(Failure::LimitsGone),
            Err(e) => return Outcome::FailCompletely(Failure::Lookup(e)),
        }
    }
    Outcome::Success(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_addresses() {
        assert_eq!(lookup_address(b"Joe@Example.COM", None), b"joe@example.com");
        assert_eq!(lookup_address(b"joe%example.com", None), b"joe@example.com");
        assert_eq!(
            lookup_address(b"joe", Some("Example.com")),
            b"joe@example.com"
        );
        assert_eq!(lookup_address(b"joe", None), b"joe");
    }
}
