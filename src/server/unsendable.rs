//! Password rows that no PWSTRUCT can carry.
//!
//! A row with a `:` in its quota field (or its home directory, or a password that is
//! not a SCRAM value) cannot be put into a PWSTRUCT record that a C client parses back
//! unchanged, so every password answer for it is -1: a temporary failure, which makes
//! the client try again later and loses no mail. The answer repeats at every query; the
//! log line that tells the administrator does not: it is written once per address until
//! HUP (which is also how the fixed row is picked up).

use std::collections::HashSet;
use std::sync::Mutex;

use crate::protocol::{EncodeError, PwStruct};

/// How many addresses are remembered at most. Past that the memory starts over, so it
/// stays bounded and a flood of broken rows is logged again at most once per this many.
const REMEMBERED: usize = 4096;

/// The addresses whose unsendable row has been logged since the start or the last HUP.
#[derive(Default)]
pub struct Unsendable {
    logged: Mutex<HashSet<String>>,
}

impl Unsendable {
    /// Logs that the row found for `pw` cannot be sent, unless that was already logged
    /// for this address. The line names the address and the field at fault, never a
    /// value of the row; the bytes are escaped, so that nothing from the database or
    /// the client can split or forge a log line.
    pub fn report(&self, pw: &PwStruct, error: &EncodeError) {
        let address = format!(
            "{}@{}",
            pw.name.to_ascii_lowercase().escape_ascii(),
            pw.domain.to_ascii_lowercase().escape_ascii()
        );
        if self.first(address.clone()) {
            log::warn!(
                "InLookup: the password row of {address} cannot be sent in a PWSTRUCT: {error}; \
                 every password query for it is answered -1 (temporary failure) until the row \
                 is fixed and inlookup gets HUP"
            );
        }
    }

    /// True the first time `address` comes (since the start, the last HUP, or the
    /// memory starting over).
    fn first(&self, address: String) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.contains(&address) {
            return false;
        }
        if logged.len() >= REMEMBERED {
            logged.clear();
        }
        logged.insert(address)
    }

    /// HUP: log every broken row again at its next query.
    pub fn clear(&self) {
        self.logged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_address_until_cleared() {
        let u = Unsendable::default();
        assert!(u.first("joe@example.com".into()));
        assert!(!u.first("joe@example.com".into()));
        assert!(u.first("ann@example.com".into()));
        u.clear();
        assert!(u.first("joe@example.com".into()));
    }

    #[test]
    fn memory_is_bounded() {
        let u = Unsendable::default();
        for i in 0..REMEMBERED {
            assert!(u.first(format!("u{i}@example.com")));
        }
        assert!(!u.first("u0@example.com".into()));
        // Full: it starts over.
        assert!(u.first("new@example.com".into()));
        assert_eq!(u.logged.lock().unwrap().len(), 1);
        assert!(u.first("u0@example.com".into()));
    }
}
