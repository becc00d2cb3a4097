//! Clustered sites: which database answers for which user.
//!
//! The records of the Mail Cluster Definition (`control/mcdinfo`, plus the
//! local records) say which database holds each domain. A **distributed**
//! domain spreads its users over several mailstores: the central database
//! (`control/host.cntrl`) says which one holds each user, in `hostcntrl`
//! (user → hostid, `'*'` = the domain's default) and `host_table`
//! (hostid → the mailstore's mail host, which names a record by its
//! `mdahost`). A non-distributed domain lives in its first record's database.
//!
//! A user's route is one central statement, cached as an answer is (same
//! lifetimes, flushed with the user's answers, emptied by HUP), so an
//! uncached lookup of a known user costs one statement on its mailstore.

use std::sync::Arc;

use mysql::prelude::Queryable;
use mysql::Value as SqlValue;

use super::store::Store;
use super::DbError;
use crate::cache::{Answer, Cache, Key, Policy, SystemClock};
use crate::config::cluster::{ClusterDefinition, DbRecord};

/// The route cache's one kind of key.
const ROUTE_KINDS: [&str; 1] = ["'Route'"];

/// Where the central database sends a user of a distributed domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CentralRoute {
    /// `hostcntrl` names a hostid (the user's own row, or the domain's `'*'`
    /// row) and `host_table` its mail host.
    Mailstore { hostid: String, mail_host: String },
    /// Neither the user nor the domain has a `hostcntrl` row.
    Unknown,
}

impl Answer for CentralRoute {
    fn encode(&self, out: &mut Vec<u8>) -> Option<()> {
        match self {
            CentralRoute::Unknown => out.push(0),
            CentralRoute::Mailstore { hostid, mail_host } => {
                out.push(1);
                out.extend_from_slice(hostid.as_bytes());
                out.push(0);
                out.extend_from_slice(mail_host.as_bytes());
            }
        }
        Some(())
    }

    fn encoded_len(&self) -> usize {
        match self {
            CentralRoute::Unknown => 1,
            CentralRoute::Mailstore { hostid, mail_host } => 2 + hostid.len() + mail_host.len(),
        }
    }

    fn decode(answer: &[u8]) -> Option<Self> {
        match answer.split_first()? {
            (0, []) => Some(CentralRoute::Unknown),
            (1, rest) => {
                let i = rest.iter().position(|&b| b == 0)?;
                Some(CentralRoute::Mailstore {
                    hostid: String::from_utf8(rest[..i].to_vec()).ok()?,
                    mail_host: String::from_utf8(rest[i + 1..].to_vec()).ok()?,
                })
            }
            _ => None,
        }
    }

    fn is_negative(&self) -> bool {
        matches!(self, CentralRoute::Unknown)
    }
}

/// Which database answers for a user.
pub enum Place<'a> {
    /// This record's database.
    Record(&'a DbRecord, &'a Arc<Store>),
    /// No database holds the user: no record for the domain, no `hostcntrl`
    /// row, or a mail host no record of the domain names. The answer is
    /// "absent", as C's `userNotFound`.
    Nowhere,
}

/// A clustered site's databases and routes.
pub struct Cluster {
    definition: ClusterDefinition,
    /// The central database (`host.cntrl`); `None` when the site has none,
    /// and then every lookup of a distributed domain is a temporary failure.
    central: Option<Arc<Store>>,
    /// The database of each record, by record index (records with the same
    /// connection share one).
    record_stores: Vec<Arc<Store>>,
    /// Each database once, in record order.
    stores: Vec<Arc<Store>>,
    /// `user@real-domain` → route; `None` when the daemon caches nothing.
    routes: Option<Cache<CentralRoute>>,
    /// The route statement, with the configured hostcntrl table.
    route_sql: String,
    /// The configured hostcntrl table: its rows change routes.
    cntrl_table: String,
}

impl Cluster {
    /// `store_of` gives the database of a record (the caller shares one
    /// between records with the same connection).
    pub fn new(
        definition: ClusterDefinition,
        central: Option<Arc<Store>>,
        cntrl_table: &str,
        mut store_of: impl FnMut(&DbRecord) -> Arc<Store>,
        route_policy: Option<Policy>,
    ) -> Cluster {
        let record_stores: Vec<Arc<Store>> = definition.records.iter().map(&mut store_of).collect();
        let mut stores: Vec<Arc<Store>> = Vec::new();
        for s in &record_stores {
            if !stores.iter().any(|t| Arc::ptr_eq(s, t)) {
                stores.push(s.clone());
            }
        }
        let routes =
            route_policy.map(|p| Cache::new(p, Arc::new(SystemClock::new()), &ROUTE_KINDS));
        Cluster {
            definition,
            central,
            record_stores,
            stores,
            routes,
            route_sql: format!(
                "SELECT h.pw_name, h.pw_domain, h.host, t.host, t.ipaddr FROM `{cntrl_table}` h \
                 LEFT JOIN host_table t ON t.host = h.host \
                 WHERE h.pw_domain = ? AND h.pw_name IN (?, '*')"
            ),
            cntrl_table: cntrl_table.to_string(),
        }
    }

    pub fn definition(&self) -> &ClusterDefinition {
        &self.definition
    }

    /// The table that says which mailstore holds each user.
    pub fn cntrl_table(&self) -> &str {
        &self.cntrl_table
    }

    pub fn central(&self) -> Option<&Arc<Store>> {
        self.central.as_ref()
    }

    /// Every mailstore database once.
    pub fn stores(&self) -> &[Arc<Store>] {
        &self.stores
    }

    pub fn is_distributed(&self, real_domain: &str) -> bool {
        self.definition.is_distributed(real_domain)
    }

    /// The records of a domain with their databases, in file order (the
    /// definition's rule: domains compared without regard to case).
    pub fn records_of<'a, 'd>(
        &'a self,
        real_domain: &'d str,
    ) -> impl Iterator<Item = (&'a DbRecord, &'a Arc<Store>)> + use<'a, 'd> {
        self.definition
            .records
            .iter()
            .zip(&self.record_stores)
            .filter(move |(r, _)| r.domain.eq_ignore_ascii_case(real_domain))
    }

    /// The database of a domain's first record: non-distributed domains, and
    /// the bare-domain LIMIT of any domain.
    pub fn first_place(&self, real_domain: &str) -> Place<'_> {
        match self.records_of(real_domain).next() {
            Some((r, store)) => Place::Record(r, store),
            None => Place::Nowhere,
        }
    }

    /// Which database answers for `user` of `real_domain`.
    pub fn place(&self, user: &str, real_domain: &str) -> Result<Place<'_>, DbError> {
        // The domain's first record says whether it is distributed.
        let first = self.first_place(real_domain);
        if !matches!(first, Place::Record(r, _) if r.distributed) {
            return Ok(first);
        }
        match self.route(user, real_domain)? {
            CentralRoute::Unknown => Ok(Place::Nowhere),
            CentralRoute::Mailstore { hostid, mail_host } => {
                let of_host = self
                    .records_of(real_domain)
                    .find(|(r, _)| r.mdahost.eq_ignore_ascii_case(&mail_host));
                match of_host {
                    Some((r, store)) => Ok(Place::Record(r, store)),
                    None => {
                        // C says nothing here, and every user of that
                        // mailstore silently becomes unknown.
                        log::warn!(
                            "InLookup: {user}@{real_domain}: host_table gives mailstore {hostid} \
                             the mail host {mail_host}, but no record of {real_domain} in {} has \
                             that mdahost; answering as for an unknown user",
                            self.definition.path.display()
                        );
                        Ok(Place::Nowhere)
                    }
                }
            }
        }
    }

    /// The central database's route for a user of a distributed domain,
    /// from the route cache when it has it.
    pub fn route(&self, user: &str, real_domain: &str) -> Result<CentralRoute, DbError> {
        let Some(routes) = &self.routes else {
            return self.load_route(user, real_domain);
        };
        let key = Key::new(0, format!("{user}@{real_domain}").as_bytes());
        routes
            .get_or_load(key, || self.load_route(user, real_domain))
            .map(|(route, _)| route)
            .map_err(DbError::Earlier)
    }

    /// One statement on the central database: the user's `hostcntrl` row
    /// and the domain's `'*'` row, each with its `host_table` row.
    fn load_route(&self, user: &str, real_domain: &str) -> Result<CentralRoute, DbError> {
        let central = self.central_store()?;
        let rows = central.rows("hostcntrl", &self.route_sql, (real_domain, user))?;
        let text = |row: &mysql::Row, i: usize| match row.as_ref(i) {
            Some(SqlValue::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        let mut own = None;
        let mut default = None;
        for row in &rows {
            let (Some(name), Some(domain)) = (text(row, 0), text(row, 1)) else {
                continue;
            };
            if !domain.eq_ignore_ascii_case(real_domain) {
                continue;
            }
            if name.eq_ignore_ascii_case(user) {
                own = Some(row);
            } else if name == "*" {
                default = Some(row);
            }
        }
        let Some(row) = own.or(default) else {
            return Ok(CentralRoute::Unknown);
        };
        let hostid = text(row, 2).unwrap_or_default();
        match (text(row, 3), text(row, 4)) {
            (Some(_), Some(mail_host)) if !mail_host.is_empty() => Ok(CentralRoute::Mailstore {
                hostid,
                mail_host: mail_host.trim().to_string(),
            }),
            _ => Err(DbError::BadData(format!(
                "hostcntrl sends {user}@{real_domain} to mailstore {hostid:?}, which host_table \
                 does not list (or lists without an address)"
            ))),
        }
    }

    fn central_store(&self) -> Result<&Arc<Store>, DbError> {
        self.central.as_ref().ok_or_else(|| {
            DbError::BadData(
                "a distributed domain needs the central database, and control/host.cntrl \
                 (or CNTRL_HOST) names none"
                    .to_string(),
            )
        })
    }

    /// The SMTP port of mail to `domain` on mailstore `hostid` (the
    /// `smtp_port` table): the row for this host (`src_host` = control/hostip)
    /// first, else the last `*` row; none, port 0 or no such table →
    /// `default`. Any other database error is an error (C took the default
    /// port then, and a wrong port was cached): HOST answers -1.
    pub fn smtp_port(
        &self,
        hostid: &str,
        domain: &str,
        this_host: &str,
        default: u16,
    ) -> Result<u16, DbError> {
        const ER_NO_SUCH_TABLE: u16 = 1146;
        let central = self.central_store()?;
        let found = central.read("smtp_port", |c| {
            c.exec::<(Option<String>, Option<i64>), _, _>(
                "SELECT src_host, port FROM smtp_port WHERE host = ? AND domain = ?",
                (hostid, domain),
            )
        });
        let rows = match found {
            Ok(rows) => rows,
            Err(DbError::Query {
                source: mysql::Error::MySqlError(e),
                ..
            }) if e.code == ER_NO_SUCH_TABLE => return Ok(default),
            Err(e) => return Err(e),
        };
        let port_of = |p: Option<i64>| {
            p.and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0)
                .unwrap_or(default)
        };
        if let Some((_, p)) = rows
            .iter()
            .find(|(src, _)| src.as_deref() == Some(this_host))
        {
            return Ok(port_of(*p));
        }
        Ok(
            match rows
                .iter()
                .rev()
                .find(|(src, _)| src.as_deref().is_some_and(|s| s.starts_with('*')))
            {
                Some((_, p)) => port_of(*p),
                None => default,
            },
        )
    }

    /// Forget the routes of an address (`user@domain`) or of every user of a
    /// domain; returns how many went.
    pub fn forget_routes(&self, name: &str) -> usize {
        let Some(routes) = &self.routes else {
            return 0;
        };
        if name.contains('@') {
            usize::from(routes.remove(&Key::new(0, name.as_bytes())))
        } else {
            let suffix = format!("@{name}");
            routes.remove_where(|e| e.key.ends_with(suffix.as_bytes()))
        }
    }

    pub fn forget_all_routes(&self) -> usize {
        self.routes.as_ref().map_or(0, |r| r.clear())
    }

    /// Every database: the central one, then the mailstores.
    pub fn all_stores(&self) -> impl Iterator<Item = &Arc<Store>> {
        self.central.iter().chain(self.stores.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_encode_and_decode() {
        for r in [
            CentralRoute::Unknown,
            CentralRoute::Mailstore {
                hostid: "ms1".into(),
                mail_host: "192.0.2.1".into(),
            },
            CentralRoute::Mailstore {
                hostid: String::new(),
                mail_host: "h".into(),
            },
        ] {
            let mut b = Vec::new();
            r.encode(&mut b).unwrap();
            assert_eq!(b.len(), r.encoded_len());
            assert_eq!(CentralRoute::decode(&b), Some(r));
        }
        assert_eq!(CentralRoute::decode(b""), None);
        assert_eq!(CentralRoute::decode(b"\x01abc"), None);
        assert_eq!(CentralRoute::decode(b"\x00x"), None);
        assert!(CentralRoute::Unknown.is_negative());
    }
}
