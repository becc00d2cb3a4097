//! Settings of the lookups themselves: default domain, relay window, domain lists, routes.

use super::control::{read_first_line, Paths};
use super::env::{nonempty, parse_decimal, Env};
use super::ConfigError;

const DEFAULT_RELAY_CLEAR_MINUTES: u32 = 30;

/// Settings of the lookups themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupConfig {
    /// INDIMAIL_DOMAIN, else DEFAULT_DOMAIN, else first line of CONTROLDIR/defaultdomain, else None; lower-cased
    pub default_domain: Option<String>,
    /// RELAY_CLEAR_MINUTES [30]; must be a non-negative decimal
    pub relay_clear_minutes: u32,
    /// REAL_DOMAINS, ':'-separated, empty entries dropped, lower-cased
    pub real_domains: Vec<String>,
    /// ALIAS_DOMAINS, same
    pub alias_domains: Vec<String>,
    /// DOMAIN_LIMITS set (any value)
    pub domain_limits: bool,
    /// ROUTES starting with "qmtp" -> Some(true), "smtp" -> Some(false), unset -> None; other -> error
    pub routes_qmtp: Option<bool>,
}

impl LookupConfig {
    /// Read the lookup settings. Empty INDIMAIL_DOMAIN, DEFAULT_DOMAIN or
    /// ROUTES count as unset; the defaultdomain line is trimmed of blanks.
    pub fn load(env: &Env, paths: &Paths) -> Result<LookupConfig, ConfigError> {
        let mut default_domain = match nonempty(env, "INDIMAIL_DOMAIN")? {
            Some(d) => Some(d.to_string()),
            None => nonempty(env, "DEFAULT_DOMAIN")?.map(str::to_string),
        };
        if default_domain.is_none() {
            let path = paths.control_file("defaultdomain");
            if let Some(line) = read_first_line(&path)? {
                let line = std::str::from_utf8(&line)
                    .map_err(|_| ConfigError::file(&path, "first line is not valid UTF-8"))?;
                let line = line.trim_ascii();
                if !line.is_empty() {
                    default_domain = Some(line.to_string());
                }
            }
        }
        let relay_clear_minutes = match nonempty(env, "RELAY_CLEAR_MINUTES")? {
            None => DEFAULT_RELAY_CLEAR_MINUTES,
            Some(v) => parse_decimal(v)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    ConfigError::invalid_var(
                        "RELAY_CLEAR_MINUTES",
                        v,
                        "a non-negative whole number of minutes",
                    )
                })?,
        };
        let routes_qmtp = match nonempty(env, "ROUTES")? {
            None => None,
            Some(v) if v.starts_with("qmtp") => Some(true),
            Some(v) if v.starts_with("smtp") => Some(false),
            Some(v) => {
                return Err(ConfigError::invalid_var(
                    "ROUTES",
                    v,
                    "a value starting with \"smtp\" or \"qmtp\"",
                ))
            }
        };
        Ok(LookupConfig {
            default_domain: default_domain.map(|d| d.to_ascii_lowercase()),
            relay_clear_minutes,
            real_domains: domain_list(env, "REAL_DOMAINS")?,
            alias_domains: domain_list(env, "ALIAS_DOMAINS")?,
            domain_limits: env.is_set("DOMAIN_LIMITS"),
            routes_qmtp,
        })
    }
}

fn domain_list(env: &Env, name: &str) -> Result<Vec<String>, ConfigError> {
    Ok(env
        .get_str(name)?
        .unwrap_or("")
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn lookup_defaults() {
        let (_d, e, p) = control(&[]);
        let l = LookupConfig::load(&e, &p).unwrap();
        assert_eq!(
            l,
            LookupConfig {
                default_domain: None,
                relay_clear_minutes: 30,
                real_domains: vec![],
                alias_domains: vec![],
                domain_limits: false,
                routes_qmtp: None,
            }
        );
    }

    #[test]
    fn lookup_default_domain_order() {
        let (_d, e, p) = control(&[("defaultdomain", b"  File.Example \n")]);
        let l = LookupConfig::load(&e, &p).unwrap();
        assert_eq!(l.default_domain.as_deref(), Some("file.example"));
        let mut e2 = e.clone();
        e2.set("DEFAULT_DOMAIN", "Default.Example");
        let l = LookupConfig::load(&e2, &p).unwrap();
        assert_eq!(l.default_domain.as_deref(), Some("default.example"));
        e2.set("INDIMAIL_DOMAIN", "INDI.example");
        let l = LookupConfig::load(&e2, &p).unwrap();
        assert_eq!(l.default_domain.as_deref(), Some("indi.example"));
    }

    #[test]
    fn lookup_each_variable() {
        let (_d, mut e, p) = control(&[]);
        e.set("RELAY_CLEAR_MINUTES", "0");
        e.set("REAL_DOMAINS", ":A.example::b.example:");
        e.set("ALIAS_DOMAINS", "Alias.Example");
        e.set("DOMAIN_LIMITS", "");
        e.set("ROUTES", "qmtp");
        let l = LookupConfig::load(&e, &p).unwrap();
        assert_eq!(l.relay_clear_minutes, 0);
        assert_eq!(l.real_domains, vec!["a.example", "b.example"]);
        assert_eq!(l.alias_domains, vec!["alias.example"]);
        assert!(l.domain_limits);
        assert_eq!(l.routes_qmtp, Some(true));
        e.set("ROUTES", "smtproutes");
        assert_eq!(LookupConfig::load(&e, &p).unwrap().routes_qmtp, Some(false));
        e.set("ROUTES", "lmtp");
        let err = LookupConfig::load(&e, &p).unwrap_err().to_string();
        assert!(err.starts_with("ROUTES: \"lmtp\""), "{err}");
    }

    #[test]
    fn lookup_bad_relay_clear_minutes() {
        let (_d, mut e, p) = control(&[]);
        for bad in ["-5", "ten", "4294967296", "1.5"] {
            e.set("RELAY_CLEAR_MINUTES", bad);
            let err = LookupConfig::load(&e, &p).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("RELAY_CLEAR_MINUTES: {bad:?} is not")),
                "{err}"
            );
        }
    }
}
