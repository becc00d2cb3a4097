//! Turning a question into the reply the C peers expect.
//!
//! This is the direct (database) backend of the query module: it maps the
//! typed database answers onto the wire replies of spec §3, keeping "not
//! found" and "error" apart (a database error is always `Reply::Error`, -1).

use crate::db::{Database, DbError, PasswdRow};
use crate::protocol::{PasswordReply, PwStruct, QueryType, RelayStatus, Reply};

/// Answer one query from the database.
pub fn answer(db: &Database, qtype: QueryType, email: &[u8], ip: &[u8]) -> Reply {
    match try_answer(db, qtype, email, ip) {
        Ok(reply) => reply,
        Err(e) => {
            log::warn!(
                "{} for {}: database error: {e}",
                qtype.log_name(),
                String::from_utf8_lossy(email)
            );
            Reply::Error
        }
    }
}

fn try_answer(db: &Database, qtype: QueryType, email: &[u8], ip: &[u8]) -> Result<Reply, DbError> {
    Ok(match qtype {
        QueryType::User => Reply::User(db.user_status(email)?),
        QueryType::Relay => Reply::Relay(if db.relay(email, ip)? {
            RelayStatus::Authenticated
        } else {
            RelayStatus::NotAuthenticated
        }),
        QueryType::Password => Reply::Password(match db.password(email)? {
            Some(row) => PasswordReply::Found(pw_struct(row, email, db)),
            None => PasswordReply::NoSuchUser(email.to_vec()),
        }),
        QueryType::Host => match db.host_route(email)? {
            Some(route) => Reply::Host(route.into_bytes()),
            None => Reply::NotFound,
        },
        QueryType::Alias => Reply::Alias(db.aliases(email)?),
        QueryType::Limit => match db.limits(email)? {
            Some(l) => Reply::Limits(l),
            None => Reply::NotFound,
        },
        QueryType::Domain => {
            // The C server echoes the input when the domain is unknown.
            let real = match std::str::from_utf8(email) {
                Ok(d) => db.real_domain(d)?,
                Err(_) => None,
            };
            Reply::Domain(real.map_or_else(|| email.to_vec(), String::into_bytes))
        }
    })
}

/// The PWSTRUCT record of a row. Its domain is what C clients expect: the
/// text after the last `@` of the request as typed, or the default domain.
fn pw_struct(row: PasswdRow, email: &[u8], db: &Database) -> PwStruct {
    let domain = match email.iter().rposition(|&b| b == b'@') {
        Some(i) => email[i + 1..].to_vec(),
        None => db
            .lookup_config()
            .default_domain
            .clone()
            .unwrap_or_default()
            .into_bytes(),
    };
    PwStruct {
        name: row.name,
        domain,
        passwd: row.passwd,
        uid: row.uid,
        gid: row.gid,
        // gecos is display text; a ':' in it would shift every later field
        // for the C parser, so it is sent as a space.
        gecos: row
            .gecos
            .into_iter()
            .map(|b| if b == b':' { b' ' } else { b })
            .collect(),
        dir: row.dir,
        shell: row.shell,
        inactive: row.inactive,
    }
}
