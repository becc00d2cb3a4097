//! A request parsed once: the query type, the normalised address or domain
//! it is about, and for RELAY the IP. The cache key, the SQL lookup and the
//! reply are all derived from this one value.

use super::answers::{key, relay_key};
use crate::cache::Key;
use crate::db::{plausible_domain, plausible_ip, Address};
use crate::protocol::QueryType;

/// The IP of a RELAY request, when a relay entry can have it.
fn relay_ip(qtype: QueryType, ip: &[u8]) -> Option<&str> {
    match qtype {
        QueryType::Relay if plausible_ip(ip) => std::str::from_utf8(ip).ok(),
        _ => None,
    }
}

/// What a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An address, split and lower-cased as the lookups use it.
    Address(Address),
    /// A bare domain (DOMAIN, and LIMIT without `@`), lower-cased.
    Domain(String),
}

/// One request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<'a> {
    pub qtype: QueryType,
    /// The request as typed: replies echo it, and the PWSTRUCT record takes
    /// its domain from it.
    pub email: &'a [u8],
    /// For RELAY the client's IP (a plausible one); else empty.
    pub ip: &'a str,
    /// `None` when no account or domain can be what was asked (an address
    /// no account can have, a name longer than the columns hold, an IP no
    /// relay entry can have): the answer is "absent" without SQL, and is not
    /// cached.
    pub subject: Option<Subject>,
    /// The site's default domain: that of a login without one.
    pub default_domain: Option<&'a str>,
}

impl<'a> Lookup<'a> {
    pub fn parse(
        qtype: QueryType,
        email: &'a [u8],
        ip: &'a [u8],
        default_domain: Option<&'a str>,
    ) -> Lookup<'a> {
        let domain = || {
            let d = std::str::from_utf8(email).ok()?;
            plausible_domain(d.as_bytes()).then(|| Subject::Domain(d.to_ascii_lowercase()))
        };
        let subject = match qtype {
            QueryType::Domain => domain(),
            QueryType::Limit if !email.contains(&b'@') => domain(),
            QueryType::Relay if relay_ip(qtype, ip).is_none() => None,
            _ => Address::parse(email, default_domain).map(Subject::Address),
        };
        Lookup::with_subject(qtype, email, ip, default_domain, subject)
    }

    /// The lookup of a request whose subject [`Lookup::parse`] found before.
    pub fn with_subject(
        qtype: QueryType,
        email: &'a [u8],
        ip: &'a [u8],
        default_domain: Option<&'a str>,
        subject: Option<Subject>,
    ) -> Lookup<'a> {
        Lookup {
            qtype,
            email,
            ip: relay_ip(qtype, ip).unwrap_or_default(),
            subject,
            default_domain,
        }
    }

    /// The cache key: the query type, the normalised address (or domain)
    /// and, for RELAY, the IP. `None` when there is no subject.
    pub fn cache_key(&self) -> Option<Key> {
        Some(match self.subject.as_ref()? {
            Subject::Address(a) if self.qtype == QueryType::Relay => relay_key(&a.key(), self.ip),
            Subject::Address(a) => key(self.qtype, &a.key()),
            Subject::Domain(d) => key(self.qtype, d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(qtype: QueryType, email: &str, ip: &str) -> Lookup<'static> {
        let (email, ip) = (email.to_owned().leak(), ip.to_owned().leak());
        Lookup::parse(qtype, email.as_bytes(), ip.as_bytes(), Some("example.com"))
    }

    #[test]
    fn one_parse_gives_the_key_of_every_query_type() {
        let k = |l: Lookup| l.cache_key().map(|k| (k.kind, k.name.to_vec()));
        let name = |s: &str| s.as_bytes().to_vec();
        assert_eq!(
            k(parse(QueryType::User, "Joe@Example.COM", "")),
            Some((0, name("joe@example.com")))
        );
        assert_eq!(
            k(parse(QueryType::Password, "joe", "")),
            Some((2, name("joe@example.com")))
        );
        assert_eq!(
            k(parse(QueryType::Relay, "joe%Example.com", "10.0.0.1")),
            Some((1, name("joe@example.com 10.0.0.1")))
        );
        assert_eq!(k(parse(QueryType::Relay, "joe@example.com", "1 2")), None);
        assert_eq!(k(parse(QueryType::Relay, "joe@example.com", "")), None);
        assert_eq!(
            k(parse(QueryType::Limit, "Example.COM", "")),
            Some((5, name("example.com")))
        );
        assert_eq!(
            k(parse(QueryType::Limit, "a@Example.COM", "")),
            Some((5, name("a@example.com")))
        );
        assert_eq!(
            k(parse(QueryType::Domain, "Alias.Test", "")),
            Some((6, name("alias.test")))
        );
        for junk in ["", "a b@x", "\u{1b}[2J", "a@"] {
            assert_eq!(k(parse(QueryType::User, junk, "")), None, "{junk:?}");
        }
        assert_eq!(k(parse(QueryType::Domain, &"d".repeat(68), "")), None);
        // The HOST reply's domain is the one typed.
        let l = parse(QueryType::Host, "joe@Example.COM", "");
        assert!(matches!(&l.subject, Some(Subject::Address(a)) if a.typed_domain == "Example.COM"));
    }
}
