//! The services a login is for, and the flags that close them.

use crate::db::gid;

/// The services whose pw_gid flags IndiMail checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceClass {
    Imap,
    Pop3,
    Webmail,
}

impl ServiceClass {
    /// The pw_gid bit that closes this service.
    pub fn closing_flag(self) -> u32 {
        match self {
            ServiceClass::Imap => gid::NO_IMAP,
            ServiceClass::Pop3 => gid::NO_POP,
            ServiceClass::Webmail => gid::NO_WEBMAIL,
        }
    }

    fn from_name(name: &str) -> Option<ServiceClass> {
        match name {
            "imap" => Some(ServiceClass::Imap),
            "pop3" => Some(ServiceClass::Pop3),
            "webmail" => Some(ServiceClass::Webmail),
            _ => None,
        }
    }
}

/// The variable that maps a site's own service names onto the three classes:
/// `name=class` pairs separated by `:`, for example `imap-ssl=imap:sieve=imap`.
pub const SERVICE_MAP_VAR: &str = "AUTHINDI_SERVICE_MAP";

/// Service name → class. `imap`, `imaps`, `pop3`, `pop3s` and `webmail` are always
/// known (C checked only the exact names `imap`, `pop3` and `webmail`, so a NO_IMAP
/// account could still log in over `imaps`); other names are not checked unless a
/// site maps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceMap {
    names: Vec<(String, ServiceClass)>,
}

impl Default for ServiceMap {
    fn default() -> ServiceMap {
        let names = [
            ("imap", ServiceClass::Imap),
            ("imaps", ServiceClass::Imap),
            ("pop3", ServiceClass::Pop3),
            ("pop3s", ServiceClass::Pop3),
            ("webmail", ServiceClass::Webmail),
        ];
        ServiceMap {
            names: names.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        }
    }
}

impl ServiceMap {
    /// The defaults plus the pairs of [`SERVICE_MAP_VAR`]. An entry that is not
    /// `name=imap|pop3|webmail` is an error naming it.
    pub fn parse(value: Option<&str>) -> Result<ServiceMap, String> {
        let mut map = ServiceMap::default();
        for entry in value.unwrap_or("").split(':').filter(|e| !e.is_empty()) {
            let parsed = entry.split_once('=').and_then(|(name, class)| {
                let class = ServiceClass::from_name(&class.trim().to_ascii_lowercase())?;
                let name = name.trim().to_ascii_lowercase();
                (!name.is_empty()).then_some((name, class))
            });
            match parsed {
                Some((name, class)) => {
                    map.names.retain(|(n, _)| *n != name);
                    map.names.push((name, class));
                }
                None => {
                    return Err(format!(
                        "{SERVICE_MAP_VAR}: {entry:?} is not name=imap, name=pop3 or name=webmail"
                    ))
                }
            }
        }
        Ok(map)
    }

    /// The class of a service name (ASCII case ignored).
    pub fn class(&self, service: &[u8]) -> Option<ServiceClass> {
        self.names
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(service))
            .map(|(_, c)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_classes() {
        let m = ServiceMap::default();
        assert_eq!(m.class(b"imap"), Some(ServiceClass::Imap));
        assert_eq!(m.class(b"IMAPS"), Some(ServiceClass::Imap));
        assert_eq!(m.class(b"pop3s"), Some(ServiceClass::Pop3));
        assert_eq!(m.class(b"webmail"), Some(ServiceClass::Webmail));
        assert_eq!(m.class(b"sieve"), None);
        let m = ServiceMap::parse(Some("sieve=imap:imaps=pop3:WebM=webmail")).unwrap();
        assert_eq!(m.class(b"sieve"), Some(ServiceClass::Imap));
        assert_eq!(m.class(b"imaps"), Some(ServiceClass::Pop3));
        assert_eq!(m.class(b"webm"), Some(ServiceClass::Webmail));
        assert!(ServiceMap::parse(Some("sieve=smtp")).is_err());
        assert!(ServiceMap::parse(Some("sieve")).is_err());
        assert!(ServiceMap::parse(Some("=imap")).is_err());
        assert_eq!(ServiceMap::parse(Some("")).unwrap(), ServiceMap::default());
        assert_eq!(ServiceClass::Imap.closing_flag(), gid::NO_IMAP);
        assert_eq!(ServiceClass::Pop3.closing_flag(), gid::NO_POP);
        assert_eq!(ServiceClass::Webmail.closing_flag(), gid::NO_WEBMAIL);
    }
}
