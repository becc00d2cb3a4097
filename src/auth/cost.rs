//! What checking a password against a stored crypt hash costs, so that the check
//! made for an unknown user costs what a wrong password of a real user costs.
//!
//! The cost of a crypt check is set by the hash's scheme and its parameters (rounds,
//! bcrypt's cost, yescrypt's parameters), not by its salt or checksum. [`HashCost`] is
//! that pair; [`HashCost::of_hash`] reads it from a stored hash (or its first bytes),
//! [`most_common`] finds the one most of a site's users have, and
//! [`HashCost::dummy_hash`] makes a well-formed hash of that cost whose checksum no
//! password has: verifying any password against it is the same work as verifying
//! against a real hash of that cost, and never matches.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::crypt::{CryptScheme, YESCRYPT_MAX_MEMORY};

/// The rounds of SHA-crypt when a hash names none.
pub const SHA_DEFAULT_ROUNDS: u32 = 5000;

/// The longest yescrypt parameter field kept (libxcrypt writes 3 to 6 characters).
const YESCRYPT_PARAMS_MAX: usize = 23;

/// A crypt scheme and its cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashCost {
    /// Traditional DES crypt (13 characters, no prefix).
    Des,
    /// `$1$`: a fixed 1000 rounds of MD5.
    Md5Crypt,
    /// `$5$`, `rounds=` or 5000.
    Sha256Crypt { rounds: u32 },
    /// `$6$`, `rounds=` or 5000.
    Sha512Crypt { rounds: u32 },
    /// `$2a$`, `$2b$`, `$2y$` and the two-digit cost.
    Bcrypt { cost: u8 },
    /// `$y$` and its encoded parameters (N, r, p, flags).
    Yescrypt {
        params: [u8; YESCRYPT_PARAMS_MAX],
        len: u8,
    },
}

/// A salt for the dummy hashes: the same for every process, so that the dummy check
/// of a site always costs the same.
const SALT: &str = "Dm9xTa2kQe1Lw3Zr";

impl HashCost {
    /// The cost of a stored hash, from its first bytes (its setting). `None` for a
    /// value that is no crypt hash this module can check (a clear-text password, a
    /// locked account, an unsupported scheme, parameters out of range).
    pub fn of_hash(hash: &[u8]) -> Option<HashCost> {
        let field = |rest: &[u8]| -> Option<Vec<u8>> {
            let end = rest.iter().position(|&b| b == b'$')?;
            Some(rest[..end].to_vec())
        };
        match hash {
            [b'$', b'1', b'$', ..] => Some(HashCost::Md5Crypt),
            [b'$', s @ (b'5' | b'6'), b'$', rest @ ..] => {
                let rounds = match rest.strip_prefix(b"rounds=") {
                    Some(after) => canonical_rounds(&field(after)?)?,
                    None => SHA_DEFAULT_ROUNDS,
                };
                Some(if *s == b'5' {
                    HashCost::Sha256Crypt { rounds }
                } else {
                    HashCost::Sha512Crypt { rounds }
                })
            }
            [b'$', b'2', b'a' | b'b' | b'y', b'$', c1, c2, b'$', ..]
                if c1.is_ascii_digit() && c2.is_ascii_digit() =>
            {
                let cost = (c1 - b'0') * 10 + (c2 - b'0');
                (4..=31)
                    .contains(&cost)
                    .then_some(HashCost::Bcrypt { cost })
            }
            [b'$', b'y', b'$', rest @ ..] => {
                let params = field(rest)?;
                if params.is_empty() || params.len() > YESCRYPT_PARAMS_MAX {
                    return None;
                }
                let parsed = yescrypt::Params::from_str(std::str::from_utf8(&params).ok()?).ok()?;
                let memory = 128
                    * u128::from(parsed.r())
                    * (u128::from(parsed.n()) + u128::from(parsed.p()));
                if memory > YESCRYPT_MAX_MEMORY {
                    return None;
                }
                let mut kept = [0u8; YESCRYPT_PARAMS_MAX];
                kept[..params.len()].copy_from_slice(&params);
                Some(HashCost::Yescrypt {
                    params: kept,
                    len: params.len() as u8,
                })
            }
            _ if CryptScheme::identify(hash) == Ok(CryptScheme::Des) => Some(HashCost::Des),
            _ => None,
        }
    }

    /// The crypt scheme.
    pub fn scheme(&self) -> CryptScheme {
        match self {
            HashCost::Des => CryptScheme::Des,
            HashCost::Md5Crypt => CryptScheme::Md5Crypt,
            HashCost::Sha256Crypt { .. } => CryptScheme::Sha256Crypt,
            HashCost::Sha512Crypt { .. } => CryptScheme::Sha512Crypt,
            HashCost::Bcrypt { .. } => CryptScheme::Bcrypt,
            HashCost::Yescrypt { .. } => CryptScheme::Yescrypt,
        }
    }

    /// What IndiMail's `PASSWORD_HASH` makes its tools write (0 DES, 1 MD5, 2 SHA-256,
    /// the default, 3 SHA-512, 4 yescrypt with libxcrypt's default cost `j9T`), at the
    /// default rounds.
    pub fn for_password_hash(password_hash: Option<&str>) -> HashCost {
        match password_hash.map(str::trim) {
            Some("0") => HashCost::Des,
            Some("1") => HashCost::Md5Crypt,
            Some("3") => HashCost::Sha512Crypt {
                rounds: SHA_DEFAULT_ROUNDS,
            },
            Some("4") => HashCost::of_hash(b"$y$j9T$").expect("libxcrypt's default yescrypt cost"),
            _ => HashCost::Sha256Crypt {
                rounds: SHA_DEFAULT_ROUNDS,
            },
        }
    }

    /// A well-formed hash of this cost, with a fixed salt and a checksum of zero bits:
    /// checking a password against it costs what checking against a real hash of
    /// this cost does, and no password matches it (the checksum would have to be
    /// all zero bits).
    pub fn dummy_hash(&self) -> Vec<u8> {
        let zeros = |n: usize| ".".repeat(n);
        let text = match self {
            HashCost::Des => format!("Dm{}", zeros(11)),
            HashCost::Md5Crypt => format!("$1${}${}", &SALT[..8], zeros(22)),
            HashCost::Sha256Crypt { .. } => format!("{self}{SALT}${}", zeros(43)),
            HashCost::Sha512Crypt { .. } => format!("{self}{SALT}${}", zeros(86)),
            // 22 salt characters (128 bits, the last one with 4 unused bits) and 31 of hash.
            HashCost::Bcrypt { .. } => format!("{self}{}{}O{}", SALT, &SALT[..5], zeros(31)),
            // 22 salt characters (128 bits, the unused bits of the last one zero).
            HashCost::Yescrypt { .. } => format!("{self}{}{}.${}", SALT, &SALT[..5], zeros(43)),
        };
        text.into_bytes()
    }
}

/// `rounds=N` as libxcrypt accepts it: digits without a leading zero, 1000 to
/// 999999999.
fn canonical_rounds(digits: &[u8]) -> Option<u32> {
    if digits.is_empty()
        || digits.len() > 9
        || digits[0] == b'0'
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let rounds: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (1000..=999_999_999).contains(&rounds).then_some(rounds)
}

/// The crypt setting: `$6$rounds=10000$`, `$6$` (5000 rounds), `$2b$12$`,
/// `$y$j9T$`, `$1$`, and `des` for traditional DES. [`HashCost::from_str`] reads it
/// back.
impl fmt::Display for HashCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashCost::Des => f.write_str("des"),
            HashCost::Md5Crypt => f.write_str("$1$"),
            HashCost::Sha256Crypt { rounds } | HashCost::Sha512Crypt { rounds } => {
                let id = if matches!(self, HashCost::Sha256Crypt { .. }) {
                    5
                } else {
                    6
                };
                if *rounds == SHA_DEFAULT_ROUNDS {
                    write!(f, "${id}$")
                } else {
                    write!(f, "${id}$rounds={rounds}$")
                }
            }
            HashCost::Bcrypt { cost } => write!(f, "$2b${cost:02}$"),
            HashCost::Yescrypt { params, len } => {
                let params = &params[..usize::from(*len)];
                write!(f, "$y${}$", String::from_utf8_lossy(params))
            }
        }
    }
}

/// The setting exactly as [`Display`](fmt::Display) writes it.
impl FromStr for HashCost {
    type Err = String;

    fn from_str(s: &str) -> Result<HashCost, String> {
        let parsed = match s {
            "des" => Some(HashCost::Des),
            _ => HashCost::of_hash(s.as_bytes()),
        };
        // Only the setting exactly as written, nothing after it.
        parsed
            .filter(|cost| cost.to_string() == s)
            .ok_or_else(|| format!("{s:?} is no crypt setting this build can check"))
    }
}

/// A cost and how many of the counted hashes have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Census {
    pub cost: HashCost,
    /// Hashes of that cost.
    pub count: u64,
    /// Crypt hashes counted in all.
    pub of: u64,
}

/// Counts the costs of stored hashes.
#[derive(Default)]
pub struct Counter(HashMap<HashCost, u64>);

impl Counter {
    /// Add the counts of another counter (another database's hashes).
    pub fn merge(&mut self, other: Counter) {
        for (cost, n) in other.0 {
            *self.0.entry(cost).or_default() += n;
        }
    }

    /// Count one stored value (values that are no crypt hash are not counted).
    pub fn add(&mut self, stored: &[u8]) {
        if let Some(cost) = HashCost::of_hash(stored) {
            *self.0.entry(cost).or_default() += 1;
        }
    }

    /// The cost most hashes have (of equally common ones, the last in the order of
    /// [`HashCost`], so that the choice does not depend on the order of the rows);
    /// `None` when no crypt hash was counted.
    pub fn most_common(&self) -> Option<Census> {
        let of = self.0.values().sum();
        self.0
            .iter()
            .max_by_key(|(cost, count)| (**count, **cost))
            .map(|(cost, count)| Census {
                cost: *cost,
                count: *count,
                of,
            })
    }
}

/// The cost most of `hashes` have.
pub fn most_common<'a>(hashes: impl IntoIterator<Item = &'a [u8]>) -> Option<Census> {
    let mut counter = Counter::default();
    for h in hashes {
        counter.add(h);
    }
    counter.most_common()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::crypt::verify;
    use crate::auth::Verdict;

    // Real hashes made with independent tools (see crypt.rs), password "correct horse".
    const MD5: &str = "$1$Xy3.pQ/z$bfw7tnxKfUAZFDJDJvVIk0";
    const YESCRYPT: &str =
        "$y$j9T$6Ye3BJzQ3V1vqstdS0rlD0$BL8JBsQhOzEGzCdKzMpI0KG5g6c1vOc9ePLVxF781J3";

    #[test]
    fn cost_of_stored_hashes() {
        assert_eq!(HashCost::of_hash(MD5.as_bytes()), Some(HashCost::Md5Crypt));
        assert_eq!(
            HashCost::of_hash(b"$6$abcdefgh$xyz"),
            Some(HashCost::Sha512Crypt { rounds: 5000 })
        );
        assert_eq!(
            HashCost::of_hash(b"$5$rounds=80000$abc$xyz"),
            Some(HashCost::Sha256Crypt { rounds: 80000 })
        );
        // An explicit 5000 is the default cost.
        assert_eq!(
            HashCost::of_hash(b"$6$rounds=5000$abc$xyz"),
            HashCost::of_hash(b"$6$abc$xyz")
        );
        for v in ["$2a$", "$2b$", "$2y$"] {
            assert_eq!(
                HashCost::of_hash(format!("{v}12$abcdefghijklmnopqrstuv").as_bytes()),
                Some(HashCost::Bcrypt { cost: 12 })
            );
        }
        let y = HashCost::of_hash(YESCRYPT.as_bytes()).unwrap();
        assert_eq!(y.to_string(), "$y$j9T$");
        assert_eq!(HashCost::of_hash(b"Lzj/.qcDnwwkg"), Some(HashCost::Des));
        // The setting alone is enough: the first 40 bytes of a stored value.
        assert_eq!(
            HashCost::of_hash(&YESCRYPT.as_bytes()[..12]),
            Some(y),
            "a cut hash"
        );
        for not in [
            &b""[..],
            b"secret",
            b"{CRAM}secret",
            b"!$6$abc$xyz",
            b"*",
            b"$7$abc",
            b"$6$rounds=999$abc$x",
            b"$6$rounds=05000$abc$x",
            b"$6$rounds=5000",
            b"$2b$03$abc",
            b"$2b$1x$abc",
            b"$y$$abc",
        ] {
            assert_eq!(
                HashCost::of_hash(not),
                None,
                "{:?}",
                String::from_utf8_lossy(not)
            );
        }
    }

    #[test]
    fn settings_read_back() {
        for text in [
            "des",
            "$1$",
            "$5$",
            "$6$",
            "$6$rounds=656000$",
            "$2b$10$",
            "$y$j9T$",
        ] {
            let cost: HashCost = text.parse().unwrap();
            assert_eq!(cost.to_string(), text);
        }
        for bad in [
            "",
            "6",
            "$6",
            "$6$rounds=12$",
            "$2b$12",
            "sha512",
            "$y$j9T$x$",
        ] {
            assert!(bad.parse::<HashCost>().is_err(), "{bad:?}");
        }
    }

    /// Each dummy hash is a well-formed hash of its cost: checking a password against
    /// it is a real computation at that cost, which never matches.
    #[test]
    fn dummy_hashes_have_their_cost_and_match_nothing() {
        for text in [
            "des",
            "$1$",
            "$5$",
            "$5$rounds=1000$",
            "$6$",
            "$6$rounds=2000$",
            "$2b$04$",
            "$y$j9T$",
            "$y$jC5$",
        ] {
            let cost: HashCost = text.parse().unwrap();
            let dummy = cost.dummy_hash();
            assert_eq!(HashCost::of_hash(&dummy), Some(cost), "{text}");
            assert_eq!(CryptScheme::identify(&dummy), Ok(cost.scheme()), "{text}");
            for pw in [&b""[..], b"guess", b"correct horse"] {
                assert_eq!(verify(pw, &dummy), Ok(Verdict::Mismatch), "{text}");
            }
        }
    }

    #[test]
    fn password_hash_variable() {
        assert_eq!(
            HashCost::for_password_hash(None),
            HashCost::Sha256Crypt { rounds: 5000 }
        );
        assert_eq!(HashCost::for_password_hash(Some("0")), HashCost::Des);
        assert_eq!(HashCost::for_password_hash(Some("1")), HashCost::Md5Crypt);
        assert_eq!(
            HashCost::for_password_hash(Some(" 3 ")),
            HashCost::Sha512Crypt { rounds: 5000 }
        );
        assert_eq!(
            HashCost::for_password_hash(Some("4")).to_string(),
            "$y$j9T$"
        );
        assert_eq!(
            HashCost::for_password_hash(Some("9")),
            HashCost::Sha256Crypt { rounds: 5000 }
        );
    }

    #[test]
    fn the_cost_most_users_have() {
        let hashes: Vec<&[u8]> = vec![
            b"$6$aaaa$x",
            b"$6$bbbb$x",
            b"$6$rounds=5000$cccc$x",
            b"$5$dddd$x",
            b"$6$rounds=10000$eeee$x",
            b"clear text",
            b"!$6$ffff$x",
            b"$2b$10$x",
        ];
        assert_eq!(
            most_common(hashes),
            Some(Census {
                cost: HashCost::Sha512Crypt { rounds: 5000 },
                count: 3,
                of: 6
            })
        );
        assert_eq!(most_common(vec![&b"plain"[..]]), None);
        // A tie is decided by the order of HashCost, whatever the order of the rows.
        let tie: Vec<&[u8]> = vec![b"$5$a$x", b"$6$rounds=9000$b$x"];
        let mut reversed = tie.clone();
        reversed.reverse();
        let want = HashCost::Sha512Crypt { rounds: 9000 };
        assert_eq!(most_common(tie).unwrap().cost, want);
        assert_eq!(most_common(reversed).unwrap().cost, want);
    }
}
