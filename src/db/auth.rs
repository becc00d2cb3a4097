//! The writes of a successful IMAP/POP3 login (authindi's Login_Tasks): lastauth,
//! re-activation of an inactive user, the POP-before-SMTP relay entry; and the
//! lastauth times it reads. They go to MySQL directly, as in IndiMail, also when the
//! lookups go through the daemon.
//!
//! Every statement is parameterised; the table names come from the validated
//! configuration. The pool retries a statement once on a fresh connection after a
//! lost connection: these statements are idempotent (REPLACE, and one transaction
//! that the server rolls back when the connection goes).

use mysql::prelude::Queryable;
use mysql::TxOpts;

use super::{Database, DbError};

/// One `lastauth` row: who logged in to what, from where, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastAuth<'a> {
    pub user: &'a str,
    /// The real domain.
    pub domain: &'a str,
    /// The login service (`imap`, `pop3`, ...) or `ACTI` for a re-activation; at
    /// most 10 bytes.
    pub service: &'a str,
    pub remote_ip: &'a str,
    /// Mailbox usage in bytes.
    pub quota: u64,
    pub gecos: &'a str,
    /// Unix seconds.
    pub when: i64,
}

/// The column widths of `lastauth` (a longer value is cut rather than refused by a
/// strict server).
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The services of `lastauth` that are not logins.
const NOT_LOGINS: &str = "'pass', 'add', 'ACTI', 'INAC', 'DELE'";

impl Database {
    /// Moves a user from the inactive table back to the active one (IndiMail's
    /// sql_active). `true` when a row was moved; `false` when there was none (another
    /// login got there first).
    pub fn activate_user(&self, user: &str, domain: &str) -> Result<bool, DbError> {
        let cols =
            "pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell, scram";
        let (active, inactive) = (&self.mysql.table, &self.mysql.inactive_table);
        let insert = format!(
            "INSERT IGNORE INTO `{active}` ({cols}) SELECT {cols} FROM `{inactive}` \
             WHERE pw_name = ? AND pw_domain = ?"
        );
        let delete = format!("DELETE FROM `{inactive}` WHERE pw_name = ? AND pw_domain = ?");
        self.store_for(user, domain)?.write("activate user", |c| {
            let mut tx = c.start_transaction(TxOpts::default())?;
            tx.exec_drop(&insert, (user, domain))?;
            tx.exec_drop(&delete, (user, domain))?;
            let moved = tx.affected_rows() > 0;
            tx.commit()?;
            Ok(moved)
        })
    }

    /// Records a login (IndiMail's vset_lastauth): one row per user, domain and
    /// service, replaced each time.
    pub fn set_lastauth(&self, e: &LastAuth<'_>) -> Result<(), DbError> {
        let quota = i64::try_from(e.quota)
            .unwrap_or(i64::MAX)
            .min(i64::from(i32::MAX));
        let params = (
            cut(e.user, 40),
            cut(e.domain, 67),
            cut(e.service, 10),
            cut(e.remote_ip, 46),
            quota,
            cut(e.gecos, 48),
            e.when,
        );
        self.store_for(e.user, e.domain)?.write("lastauth", |c| {
            c.exec_drop(
                "REPLACE INTO lastauth (user, domain, service, remote_ip, quota, gecos, timestamp) \
                 VALUES (?, ?, ?, ?, ?, ?, FROM_UNIXTIME(?))",
                params,
            )
        })
    }

    /// The time of the user's last login by any service (not a password change, a
    /// creation or an (in)activation), Unix seconds.
    pub fn last_login_time(&self, user: &str, domain: &str) -> Result<Option<i64>, DbError> {
        let sql = format!(
            "SELECT UNIX_TIMESTAMP(MAX(timestamp)) FROM lastauth \
             WHERE user = ? AND domain = ? AND service NOT IN ({NOT_LOGINS})"
        );
        self.lastauth_time(&sql, user, domain)
    }

    /// The time of the user's last password change (`pass` row), Unix seconds.
    pub fn last_password_change(&self, user: &str, domain: &str) -> Result<Option<i64>, DbError> {
        self.lastauth_time(
            "SELECT UNIX_TIMESTAMP(MAX(timestamp)) FROM lastauth \
             WHERE user = ? AND domain = ? AND service = 'pass'",
            user,
            domain,
        )
    }

    fn lastauth_time(&self, sql: &str, user: &str, domain: &str) -> Result<Option<i64>, DbError> {
        let t: Option<mysql::Value> = self
            .store_for(user, domain)?
            .read("lastauth", |c| c.exec_first(sql, (user, domain)))?;
        Ok(match t {
            Some(mysql::Value::Int(n)) => Some(n),
            Some(mysql::Value::UInt(n)) => i64::try_from(n).ok(),
            Some(mysql::Value::Bytes(b)) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.split('.').next()?.parse().ok()),
            _ => None,
        })
    }

    /// Opens POP-before-SMTP relaying for `email` from `ip` (IndiMail's
    /// open_smtp_relay): the `relay` row that RELAY queries find.
    pub fn open_relay(&self, email: &str, ip: &str, now: i64) -> Result<(), DbError> {
        let sql = format!(
            "REPLACE INTO `{}` (email, ipaddr, timestamp) VALUES (?, ?, ?)",
            self.mysql.relay_table
        );
        let (user, domain) = email.split_once('@').unwrap_or((email, ""));
        self.store_for(user, domain)?.write("open relay", |c| {
            c.exec_drop(&sql, (cut(email, 96), cut(ip, 46), now))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn cut_to_column_width() {
        assert_eq!(cut("imap", 10), "imap");
        assert_eq!(cut("webmail-longer", 10), "webmail-lo");
        assert_eq!(cut("aé", 2), "a");
    }
}
