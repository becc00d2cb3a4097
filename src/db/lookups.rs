//! The seven lookups. Each uncached lookup is one SQL statement (plus one for
//! an alias domain that is neither in users/cdb nor in the REAL_DOMAINS list,
//! and one for the domain limits of a PWD query when DOMAIN_LIMITS is set).
//!
//! Matching is done twice: by the SQL `=` (which uses the indexes but follows
//! the column collation, so `joe` may equal `JOE`, `joe ` or `jöe`), and then
//! byte for byte (ASCII case folded) on the row that came back. A row that
//! only the collation matches is not this address's row.

use mysql::prelude::Queryable;
use mysql::{Row, Value};

use super::cluster::{CentralRoute, Place};
use super::store::Store;
use super::{Address, Database, DbError};
use crate::protocol::{PwStruct, UserStatus, VLimits};

/// pw_gid flag bits (IndiMail's indimail.h).
pub mod gid {
    pub const NO_PASSWD_CHNG: u32 = 0x01;
    pub const NO_POP: u32 = 0x02;
    pub const NO_WEBMAIL: u32 = 0x04;
    pub const NO_IMAP: u32 = 0x08;
    /// Over quota: USER queries answer 3.
    pub const BOUNCE_MAIL: u32 = 0x10;
    pub const NO_RELAY: u32 = 0x20;
    pub const NO_DIALUP: u32 = 0x40;
    pub const NO_SMTP: u32 = 0x100;
    /// Not subject to domain limits.
    pub const V_OVERRIDE: u32 = 0x2000;
}

/// Where mail for a user goes: the reply of a HOST query is
/// `<domain as typed>:<host>:<port>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: String,
    pub port: u16,
}

impl Route {
    pub fn reply_text(&self, typed_domain: &str) -> String {
        format!("{typed_domain}:{}:{}", self.host, self.port)
    }
}

/// The SQL of each lookup, built once from the configured table names
/// (validated identifiers) so that the connection's statement cache keys on
/// the same text every time.
pub(super) struct Statements {
    user_status: String,
    password: String,
    relay: String,
    host: String,
    aliases: String,
    user_limits: String,
    domain_limits: String,
    active: String,
    hash_settings: String,
}

const LIMIT_COLUMNS: &str = "domain_expiry, passwd_expiry, maxpopaccounts, maxaliases, \
     maxforwards, maxautoresponders, maxmailinglists, diskquota, maxmsgcount, defaultquota, \
     defaultmaxmsgcount, disable_pop, disable_imap, disable_dialup, disable_passwordchanging, \
     disable_webmail, disable_relay, disable_smtp, perm_account, perm_alias, perm_forward, \
     perm_autoresponder, perm_maillist, perm_quota, perm_defaultquota";

/// How long the pre-cache query may take to send its next row: the whole
/// lastauth window of a large site is read at once.
const BULK_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// The vlimits columns that become pw_gid flags, in `limit_flags` order.
const FLAG_COLUMNS: [&str; 7] = [
    "disable_pop",
    "disable_smtp",
    "disable_imap",
    "disable_relay",
    "disable_webmail",
    "disable_passwordchanging",
    "disable_dialup",
];

impl Statements {
    pub(super) fn new(active: &str, inactive: &str, relay: &str) -> Statements {
        let present = |t: &str| {
            format!("(SELECT pw_name FROM `{t}` WHERE pw_name = ? AND pw_domain = ? LIMIT 1)")
        };
        // Each branch of a UNION converts its text columns to one character
        // set, so that tables created with different collations (a site's
        // tables often span MariaDB versions) can still be combined.
        let utf8 = |c: &str| format!("CONVERT({c} USING utf8mb4)");
        let pw_cols = format!(
            "{}, {}, {}, {}, pw_uid, pw_gid, {}, {}, {}",
            utf8("pw_name"),
            utf8("pw_domain"),
            utf8("pw_passwd"),
            utf8("scram"),
            utf8("pw_gecos"),
            utf8("pw_dir"),
            utf8("pw_shell")
        );
        let limit_cols = LIMIT_COLUMNS
            .split(", ")
            .map(|c| format!("l.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        Statements {
            user_status: format!(
                "(SELECT 0, {n}, {d}, pw_gid FROM `{active}` WHERE pw_name = ? AND pw_domain = ?) \
                 UNION ALL (SELECT 1, {n}, {d}, pw_gid FROM `{inactive}` WHERE pw_name = ? AND pw_domain = ?) \
                 UNION ALL (SELECT 2, {a}, {ad}, 0 FROM valias WHERE alias = ? AND domain = ? \
                   GROUP BY CAST(alias AS BINARY), CAST(domain AS BINARY)) \
                 ORDER BY 1",
                n = utf8("pw_name"),
                d = utf8("pw_domain"),
                a = utf8("alias"),
                ad = utf8("domain"),
            ),
            password: format!(
                "(SELECT 0, {pw_cols} FROM `{active}` WHERE pw_name = ? AND pw_domain = ?) \
                 UNION ALL (SELECT 1, {pw_cols} FROM `{inactive}` WHERE pw_name = ? AND pw_domain = ?) \
                 ORDER BY 1"
            ),
            relay: format!(
                "SELECT email, ipaddr, {}, {} FROM `{relay}` \
                 WHERE email = ? AND ipaddr = ? AND timestamp > UNIX_TIMESTAMP() - ?",
                present(active),
                present(inactive)
            ),
            host: format!(
                "SELECT {}, {}, (SELECT port FROM smtp_port WHERE host = ? AND domain = ? \
                   AND (src_host = ? OR src_host LIKE '*%') ORDER BY src_host = ? DESC, src_host LIMIT 1)",
                present(active),
                present(inactive)
            ),
            aliases: "SELECT alias, domain, valias_line FROM valias WHERE alias = ? AND domain = ?"
                .to_string(),
            user_limits: format!(
                "SELECT p.a, p.b, l.domain, {limit_cols} FROM (SELECT {} AS a, {} AS b) p \
                 LEFT JOIN vlimits l ON l.domain IN (?, ?)",
                present(active),
                present(inactive)
            ),
            domain_limits: format!("SELECT domain, {LIMIT_COLUMNS} FROM vlimits WHERE domain = ?"),
            // The first bytes of every active user's hash: enough for the
            // setting (`$6$rounds=999999999$` is 20, a DES hash 13).
            hash_settings: format!("SELECT LEFT(pw_passwd, 40) FROM `{active}`"),
            // The pre-cache: users who logged in by IMAP, POP3 or webmail
            // lately, oldest login first (read along the lastauth timestamp
            // index, so rows flow at once), with the domain-limit flags of
            // their domain's limits row and of their own, OR-ed.
            active: format!(
                "SELECT 0, i.pw_name, i.pw_domain, i.pw_passwd, i.scram, i.pw_uid, i.pw_gid, i.pw_gecos, \
                   i.pw_dir, i.pw_shell, {flags} \
                 FROM lastauth a STRAIGHT_JOIN `{active}` i ON i.pw_name = a.user AND i.pw_domain = a.domain \
                 LEFT JOIN vlimits lu ON lu.domain = CONCAT(i.pw_name, '@', i.pw_domain) \
                 LEFT JOIN vlimits ld ON ld.domain = i.pw_domain \
                 WHERE a.timestamp >= FROM_UNIXTIME(UNIX_TIMESTAMP() - ?) \
                   AND a.service IN ('imap', 'pop3', 'webm') \
                 ORDER BY a.timestamp",
                flags = FLAG_COLUMNS
                    .iter()
                    .map(|c| format!("(COALESCE(lu.{c}, 0) <> 0 OR COALESCE(ld.{c}, 0) <> 0)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A column as bytes; NULL is `None`.
fn bytes(row: &Row, i: usize) -> Result<Option<Vec<u8>>, DbError> {
    match row.as_ref(i) {
        None => Err(DbError::BadData(format!("row has no column {i}"))),
        Some(Value::NULL) => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b.clone())),
        Some(Value::Int(n)) => Ok(Some(n.to_string().into_bytes())),
        Some(Value::UInt(n)) => Ok(Some(n.to_string().into_bytes())),
        Some(v) => Err(DbError::BadData(format!(
            "column {i}: unexpected value {}",
            v.as_sql(true)
        ))),
    }
}

/// A column as an integer; NULL is `None`.
fn int(row: &Row, i: usize) -> Result<Option<i64>, DbError> {
    match row.as_ref(i) {
        Some(Value::Int(n)) => Ok(Some(*n)),
        Some(Value::UInt(n)) => i64::try_from(*n)
            .map(Some)
            .map_err(|_| DbError::BadData(format!("column {i}: {n} out of range"))),
        _ => match bytes(row, i)? {
            None => Ok(None),
            Some(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| DbError::BadData(format!("column {i}: not an integer"))),
        },
    }
}

/// An unsigned 64-bit column (the vlimits quotas); negative values count as 0.
fn uint(row: &Row, i: usize) -> Result<u64, DbError> {
    match row.as_ref(i) {
        Some(Value::UInt(n)) => Ok(*n),
        _ => Ok(int(row, i)?.unwrap_or(0).max(0) as u64),
    }
}

/// Does a column hold exactly `want` (ASCII case folded)? NULL does not.
fn same(row: &Row, i: usize, want: &str) -> Result<bool, DbError> {
    Ok(bytes(row, i)?.is_some_and(|b| b.eq_ignore_ascii_case(want.as_bytes())))
}

impl Database {
    /// USER_QUERY: active, inactive (only in `indibak`), over quota
    /// (gid & BOUNCE_MAIL), an alias (no mailbox but `valias` rows), absent.
    pub fn user_status(&self, email: &[u8]) -> Result<UserStatus, DbError> {
        match self.address(email) {
            Some(addr) => self.user_status_of(&addr),
            None => Ok(UserStatus::Absent),
        }
    }

    /// [`Database::user_status`] of a parsed address. On a clustered site the
    /// user's mailstore answers; for a non-distributed domain with several
    /// records, an address absent from the first record's database may be an
    /// alias kept in another one's (C searched them all, as this does).
    pub fn user_status_of(&self, addr: &Address) -> Result<UserStatus, DbError> {
        let domain = self.lookup_domain(&addr.domain)?;
        let Some(cluster) = &self.cluster else {
            return self.user_status_at(&self.local, addr, &domain);
        };
        if cluster.is_distributed(&domain) {
            return match cluster.place(&addr.user, &domain)? {
                Place::Record(_, store) => self.user_status_at(store, addr, &domain),
                Place::Nowhere => Ok(UserStatus::Absent),
            };
        }
        let mut asked: Vec<&Store> = Vec::new();
        for (_, store) in cluster.records_of(&domain) {
            if asked.iter().any(|a| std::ptr::eq(*a, &**store)) {
                continue;
            }
            asked.push(store);
            let status = self.user_status_at(store, addr, &domain)?;
            if status != UserStatus::Absent {
                return Ok(status);
            }
        }
        Ok(UserStatus::Absent)
    }

    fn user_status_at(
        &self,
        store: &Store,
        addr: &Address,
        domain: &str,
    ) -> Result<UserStatus, DbError> {
        let (u, d) = (addr.user.as_str(), domain);
        let rows = store.rows("user status", &self.sql.user_status, (u, d, u, d, u, d))?;
        for row in &rows {
            if !(same(row, 1, u)? && same(row, 2, d)?) {
                continue;
            }
            return Ok(match int(row, 0)? {
                Some(0) => {
                    let gid = int(row, 3)?.unwrap_or(0) as u32;
                    if gid & gid::BOUNCE_MAIL != 0 {
                        UserStatus::OverQuota
                    } else {
                        UserStatus::Active
                    }
                }
                Some(1) => UserStatus::Inactive,
                _ => UserStatus::Alias,
            });
        }
        Ok(UserStatus::Absent)
    }

    /// PWD_QUERY: the user's row, from `indimail` or else `indibak`: its domain the
    /// row's, the password `scram,pw_passwd` when the scram column is set, the gid with
    /// the domain-limit flags OR-ed in when DOMAIN_LIMITS is set.
    pub fn password(&self, email: &[u8]) -> Result<Option<PwStruct>, DbError> {
        match self.address(email) {
            Some(addr) => self.password_of(&addr),
            None => Ok(None),
        }
    }

    /// [`Database::password`] of a parsed address, from the user's database.
    pub fn password_of(&self, addr: &Address) -> Result<Option<PwStruct>, DbError> {
        let domain = self.lookup_domain(&addr.domain)?;
        self.on_users_store(
            addr,
            &domain,
            || None,
            |store| self.password_at(store, addr, &domain),
        )
    }

    fn password_at(
        &self,
        store: &Store,
        addr: &Address,
        d: &str,
    ) -> Result<Option<PwStruct>, DbError> {
        let u = addr.user.as_str();
        let rows = store.rows("password", &self.sql.password, (u, d, u, d))?;
        let mut found = None;
        for row in &rows {
            if same(row, 1, u)? && same(row, 2, d)? {
                found = Some(passwd_row(row)?);
                break;
            }
        }
        let Some(mut pw) = found else {
            return Ok(None);
        };
        if self.lookup.domain_limits && pw.gid & gid::V_OVERRIDE == 0 {
            pw.gid |= self.limit_flags_of_user(store, addr, d)?;
        }
        Ok(Some(pw))
    }

    /// RELAY_QUERY: is there an unexpired `relay` row for exactly this user
    /// (at its real domain) and this IP? The C code compared only a prefix of
    /// the relay address; this is an exact match.
    pub fn relay(&self, email: &[u8], ip: &[u8]) -> Result<bool, DbError> {
        let Some(addr) = self.address(email) else {
            return Ok(false);
        };
        if !super::plausible_ip(ip) {
            return Ok(false);
        }
        let Ok(ip) = std::str::from_utf8(ip) else {
            return Ok(false);
        };
        self.relay_of(&addr, ip)
    }

    /// [`Database::relay`] of a parsed address and a plausible IP, from the
    /// user's database.
    pub fn relay_of(&self, addr: &Address, ip: &str) -> Result<bool, DbError> {
        let domain = self.lookup_domain(&addr.domain)?;
        self.on_users_store(
            addr,
            &domain,
            || false,
            |store| self.relay_at(store, addr, &domain, ip),
        )
    }

    fn relay_at(&self, store: &Store, addr: &Address, d: &str, ip: &str) -> Result<bool, DbError> {
        let u = addr.user.as_str();
        let key = format!("{u}@{d}");
        let expiry = i64::from(self.lookup.relay_clear_minutes) * 60;
        let rows = store.rows(
            "relay",
            &self.sql.relay,
            (u, d, u, d, key.as_str(), ip, expiry),
        )?;
        for row in &rows {
            let user_exists = same(row, 2, u)? || same(row, 3, u)?;
            if user_exists
                && same(row, 0, &key)?
                && bytes(row, 1)?.as_deref() == Some(ip.as_bytes())
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// HOST_QUERY on a single-database site: the mail host and port when
    /// the user exists. The port comes from the `smtp_port` table, else from
    /// smtproutes/qmtproutes, else 25 (209 when routing by QMTP).
    pub fn host_route(&self, email: &[u8]) -> Result<Option<Route>, DbError> {
        match self.address(email) {
            Some(addr) => self.host_route_of(&addr),
            None => Ok(None),
        }
    }

    /// [`Database::host_route`] of a parsed address. On a clustered site: for a
    /// distributed domain the central database alone answers (whether the user
    /// exists is not checked, as in C: the `'*'` row routes every name), with
    /// the `smtp_port` table's port; for a non-distributed domain the mail host
    /// of its first record, when the user is in that record's database, with
    /// the port of smtproutes/qmtproutes.
    pub fn host_route_of(&self, addr: &Address) -> Result<Option<Route>, DbError> {
        let domain = self.lookup_domain(&addr.domain)?;
        let Some(cluster) = &self.cluster else {
            return self.host_route_at(&self.local, addr, &domain);
        };
        if cluster.is_distributed(&domain) {
            return match cluster.route(&addr.user, &domain)? {
                CentralRoute::Unknown => Ok(None),
                CentralRoute::Mailstore { hostid, mail_host } => {
                    let default = if self.lookup.routes_qmtp == Some(true) {
                        super::control_files::QMTP_PORT
                    } else {
                        super::control_files::SMTP_PORT
                    };
                    let port = cluster.smtp_port(&hostid, &domain, &self.mail_host()?, default)?;
                    Ok(Some(Route {
                        host: mail_host,
                        port,
                    }))
                }
            };
        }
        match cluster.first_place(&domain) {
            Place::Nowhere => Ok(None),
            Place::Record(record, store) => {
                if self.password_at(store, addr, &domain)?.is_none() {
                    return Ok(None);
                }
                Ok(Some(Route {
                    host: record.mdahost.clone(),
                    port: self.route_port(&domain)?,
                }))
            }
        }
    }

    /// HOST on a single-database site.
    fn host_route_at(
        &self,
        store: &Store,
        addr: &Address,
        domain: &str,
    ) -> Result<Option<Route>, DbError> {
        let (u, d) = (addr.user.as_str(), domain);
        let host = self.mail_host()?;
        let h = host.as_str();
        let rows = store.rows("host route", &self.sql.host, (u, d, u, d, h, d, h, h))?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        if !(same(row, 0, u)? || same(row, 1, u)?) {
            return Ok(None);
        }
        let port = match int(row, 2)? {
            Some(p) if p > 0 && p <= i64::from(u16::MAX) => p as u16,
            _ => self.route_port(d)?,
        };
        Ok(Some(Route { host, port }))
    }

    /// ALIAS_QUERY: the `valias` lines of the address (empty when it has
    /// none), also for an alias that has no mailbox.
    pub fn aliases(&self, email: &[u8]) -> Result<Vec<Vec<u8>>, DbError> {
        match self.address(email) {
            Some(addr) => self.aliases_of(&addr),
            None => Ok(Vec::new()),
        }
    }

    /// [`Database::aliases`] of a parsed address, from the user's database.
    pub fn aliases_of(&self, addr: &Address) -> Result<Vec<Vec<u8>>, DbError> {
        let domain = self.lookup_domain(&addr.domain)?;
        self.on_users_store(addr, &domain, Vec::new, |store| {
            let (u, d) = (addr.user.as_str(), domain.as_str());
            let rows = store.rows("aliases", &self.sql.aliases, (u, d))?;
            let mut lines = Vec::with_capacity(rows.len());
            for row in &rows {
                if same(row, 0, u)? && same(row, 1, d)? {
                    lines.push(bytes(row, 2)?.unwrap_or_default());
                }
            }
            Ok(lines)
        })
    }

    /// LIMIT_QUERY. `user@domain`: the user's own limits, else its domain's,
    /// else the defaults (limit_type 0); `None` when the user does not exist.
    /// A bare `domain`: that domain's limits, `None` when it has none.
    pub fn limits(&self, key: &[u8]) -> Result<Option<VLimits>, DbError> {
        if !key.contains(&b'@') {
            let Ok(domain) = std::str::from_utf8(key) else {
                return Ok(None);
            };
            let domain = domain.to_ascii_lowercase();
            if !super::plausible_domain(domain.as_bytes()) {
                return Ok(None);
            }
            return self.domain_limits(&domain);
        }
        match self.address(key) {
            Some(addr) => self.limits_of(&addr),
            None => Ok(None),
        }
    }

    /// The limits of a lower-cased, plausible domain; `None` when it has none.
    /// On a clustered site the database of the domain's first record answers
    /// (C used whichever database the previous request had left open).
    pub fn domain_limits(&self, domain: &str) -> Result<Option<VLimits>, DbError> {
        let store = match &self.cluster {
            None => &self.local,
            Some(cluster) => match cluster.first_place(&self.lookup_domain(domain)?) {
                Place::Record(_, store) => store,
                Place::Nowhere => &self.local,
            },
        };
        let rows = store.rows("domain limits", &self.sql.domain_limits, (domain,))?;
        for row in &rows {
            if same(row, 0, domain)? {
                return limits_from_row(row, 1, 1).map(Some);
            }
        }
        Ok(None)
    }

    /// [`Database::limits`] of a parsed address.
    pub fn limits_of(&self, addr: &Address) -> Result<Option<VLimits>, DbError> {
        let domain = self.lookup_domain(&addr.domain)?;
        self.on_users_store(
            addr,
            &domain,
            || None,
            |store| self.limits_of_user(store, addr, &domain),
        )
    }

    /// Per-user limits (`user@domain` row), else the domain's, else defaults;
    /// `None` when the user is in neither user table.
    fn limits_of_user(
        &self,
        store: &Store,
        addr: &Address,
        domain: &str,
    ) -> Result<Option<VLimits>, DbError> {
        let u = addr.user.as_str();
        let (key, rows) = self.user_limit_rows(store, addr, domain)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        if !(same(first, 0, u)? || same(first, 1, u)?) {
            return Ok(None);
        }
        let mut domain_row = None;
        for row in &rows {
            if same(row, 2, &key)? {
                return limits_from_row(row, 3, 2).map(Some);
            }
            if same(row, 2, domain)? {
                domain_row = Some(row);
            }
        }
        match domain_row {
            Some(row) => limits_from_row(row, 3, 1).map(Some),
            None => Ok(Some(VLimits::default())),
        }
    }
}

impl Database {
    /// The user's `user@domain` key and the rows of `user_limits`: the user's
    /// presence, then the user's own limits row and the domain's, where they exist.
    fn user_limit_rows(
        &self,
        store: &Store,
        addr: &Address,
        domain: &str,
    ) -> Result<(String, Vec<Row>), DbError> {
        let u = addr.user.as_str();
        let key = format!("{u}@{domain}");
        let rows = store.rows(
            "user limits",
            &self.sql.user_limits,
            (u, domain, u, domain, key.as_str(), domain),
        )?;
        Ok((key, rows))
    }

    /// The pw_gid flags DOMAIN_LIMITS adds to a user's password answer: those of the
    /// domain's limits row OR-ed with those of the user's own row. A per-user row,
    /// given for a quota or an expiry, never lifts a restriction of the domain (C took
    /// the domain's flags alone; a user's row can only add to them here).
    fn limit_flags_of_user(
        &self,
        store: &Store,
        addr: &Address,
        domain: &str,
    ) -> Result<u32, DbError> {
        let (key, rows) = self.user_limit_rows(store, addr, domain)?;
        let mut flags = 0;
        for row in &rows {
            if same(row, 2, &key)? || same(row, 2, domain)? {
                flags |= limit_flags(&limits_from_row(row, 3, 0)?);
            }
        }
        Ok(flags)
    }

    /// The password rows of users active (IMAP, POP3 or webmail login,
    /// from `lastauth`) in the last `secs` seconds, oldest login first (so
    /// that a bounded cache keeps the most recent), each given to `each`
    /// with its normalised `user@domain` key as it arrives (a million rows
    /// are never held at once): what `inlookup -c` pre-caches. A user who
    /// logged in by several services comes once per service. The
    /// domain-limit flags are applied as PWD queries apply them. Runs on a
    /// connection of its own whose read timeout allows for a large table.
    /// Returns how many rows there were. On a clustered site every mailstore's
    /// `lastauth` is read in turn; one that fails is reported and skipped.
    pub fn for_each_active_password(
        &self,
        secs: u64,
        mut each: impl FnMut(String, PwStruct),
    ) -> Result<usize, DbError> {
        let stores = self.mailstores();
        let mut n = 0;
        let mut failed = None;
        for store in &stores {
            match self.active_passwords_at(store, secs, &mut each) {
                Ok(k) => n += k,
                Err(e) if stores.len() > 1 => {
                    log::warn!("pre-cache: {}: {e}", store.label());
                    failed = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        match failed {
            Some(e) if n == 0 => Err(e),
            _ => Ok(n),
        }
    }

    fn active_passwords_at(
        &self,
        store: &Store,
        secs: u64,
        each: &mut impl FnMut(String, PwStruct),
    ) -> Result<usize, DbError> {
        let mut conn = store.connect_once(BULK_READ_TIMEOUT)?;
        let what = "pre-cache";
        let fail = |source| DbError::Query { what, source };
        let mut n = 0;
        for row in conn.exec_iter(&self.sql.active, (secs,)).map_err(fail)? {
            let (key, pw) = self.active_row(&row.map_err(fail)?)?;
            each(key, pw);
            n += 1;
        }
        Ok(n)
    }

    /// The crypt cost most active users' hashes have (see `auth::HashCost`):
    /// what a wrong password costs on this site, and so what the check of an
    /// unknown user's password must cost. Reads the first bytes of every
    /// hash, row by row, on one of the pool's connections (a million rows
    /// take a second or two), on every mailstore; `None` when no user has a
    /// crypt hash.
    pub fn hash_cost_census(&self) -> Result<Option<crate::auth::Census>, DbError> {
        let mut counter = crate::auth::Counter::default();
        for store in self.mailstores() {
            counter.merge(store.read("password hash costs", |c| {
                let mut counter = crate::auth::Counter::default();
                for row in c.query_iter(&self.sql.hash_settings)? {
                    if let Some(Value::Bytes(setting)) = row?.as_ref(0) {
                        counter.add(setting);
                    }
                }
                Ok(counter)
            })?);
        }
        Ok(counter.most_common())
    }

    fn active_row(&self, row: &Row) -> Result<(String, PwStruct), DbError> {
        let mut pw = passwd_row(row)?;
        if self.lookup.domain_limits && pw.gid & gid::V_OVERRIDE == 0 {
            for (i, bit) in FLAG_BITS.iter().enumerate() {
                if int(row, 10 + i)?.unwrap_or(0) != 0 {
                    pw.gid |= bit;
                }
            }
        }
        let key = format!(
            "{}@{}",
            String::from_utf8_lossy(&pw.name).to_ascii_lowercase(),
            String::from_utf8_lossy(&pw.domain).to_ascii_lowercase()
        );
        Ok((key, pw))
    }
}

fn passwd_row(row: &Row) -> Result<PwStruct, DbError> {
    let plain = bytes(row, 3)?.unwrap_or_default();
    // An empty scram column is no SCRAM secret.
    let passwd = match bytes(row, 4)?.filter(|s| !s.is_empty()) {
        Some(mut scram) => {
            scram.push(b',');
            scram.extend_from_slice(&plain);
            scram
        }
        None => plain,
    };
    Ok(PwStruct {
        inactive: int(row, 0)? == Some(1),
        name: bytes(row, 1)?.unwrap_or_default(),
        domain: bytes(row, 2)?.unwrap_or_default(),
        passwd,
        // NULL ids read as 0 (the C code crashed on them).
        uid: int(row, 5)?.unwrap_or(0) as u32,
        gid: int(row, 6)?.unwrap_or(0) as u32,
        gecos: bytes(row, 7)?.unwrap_or_default(),
        dir: bytes(row, 8)?.unwrap_or_default(),
        shell: bytes(row, 9)?.unwrap_or_default(),
    })
}

/// The 25 LIMIT_COLUMNS starting at column `at`.
fn limits_from_row(row: &Row, at: usize, limit_type: i16) -> Result<VLimits, DbError> {
    let long = |i: usize| -> Result<i64, DbError> { Ok(int(row, at + i)?.unwrap_or(-1)) };
    let short = |i: usize| -> Result<i16, DbError> {
        Ok(int(row, at + i)?
            .unwrap_or(0)
            .clamp(i16::MIN.into(), i16::MAX.into()) as i16)
    };
    let maillist = short(22)?;
    Ok(VLimits {
        domain_expiry: long(0)?,
        passwd_expiry: long(1)?,
        maxpopaccounts: long(2)?,
        maxaliases: long(3)?,
        maxforwards: long(4)?,
        maxautoresponders: long(5)?,
        maxmailinglists: long(6)?,
        diskquota: uint(row, at + 7)?,
        maxmsgcount: uint(row, at + 8)?,
        defaultquota: uint(row, at + 9)?,
        defaultmaxmsgcount: uint(row, at + 10)?,
        disable_pop: short(11)?,
        disable_imap: short(12)?,
        disable_dialup: short(13)?,
        disable_passwordchanging: short(14)?,
        disable_webmail: short(15)?,
        disable_relay: short(16)?,
        disable_smtp: short(17)?,
        perm_account: short(18)?,
        perm_alias: short(19)?,
        perm_forward: short(20)?,
        perm_autoresponder: short(21)?,
        // One column holds three 3-bit permission groups.
        perm_maillist: maillist & 7,
        perm_maillist_users: (maillist >> 3) & 7,
        perm_maillist_moderators: (maillist >> 6) & 7,
        perm_quota: short(23)?,
        perm_defaultquota: short(24)?,
        limit_type,
    })
}

/// The pw_gid bits that domain limits add (DOMAIN_LIMITS). disable_dialup
/// sets NO_DIALUP; the C code set NO_POP for it.
pub fn limit_flags(l: &VLimits) -> u32 {
    let on = [
        l.disable_pop,
        l.disable_smtp,
        l.disable_imap,
        l.disable_relay,
        l.disable_webmail,
        l.disable_passwordchanging,
        l.disable_dialup,
    ];
    on.iter()
        .zip(FLAG_BITS)
        .filter(|(on, _)| **on != 0)
        .fold(0, |acc, (_, bit)| acc | bit)
}

/// The pw_gid bit of each of FLAG_COLUMNS.
const FLAG_BITS: [u32; 7] = [
    gid::NO_POP,
    gid::NO_SMTP,
    gid::NO_IMAP,
    gid::NO_RELAY,
    gid::NO_WEBMAIL,
    gid::NO_PASSWD_CHNG,
    gid::NO_DIALUP,
];
