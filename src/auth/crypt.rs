//! A password against a crypt(3) hash: what IndiMail does with
//! `strcmp(in_crypt(password, hash), hash)`, scheme by scheme, without libc's crypt.
//!
//! Every scheme the stored value could name is either verified or refused with an error
//! that names it. Apart from a locked account (`!` or `*`), which simply never matches,
//! an unknown or malformed value is never reported as a mismatch, so that a broken
//! account shows up as broken rather than as a wrong password.

use std::str::FromStr;

use sha_crypt::password_hash::Error as HashError;
// One trait (password-hash's) serves both sha-crypt and yescrypt.
use sha_crypt::PasswordVerifier as _;
use sha_crypt::ShaCrypt;
use subtle::ConstantTimeEq;
use yescrypt::Yescrypt;

use super::{c_str, AuthError, Verdict};

/// The most memory a yescrypt hash may ask for before we refuse to compute it (1 GiB).
/// libxcrypt's own cost settings stop well below this (16 MiB by default).
pub(super) const YESCRYPT_MAX_MEMORY: u128 = 1 << 30;

/// A SHA-256-crypt hash of a random string nobody knows, used to spend the time of a real
/// verification for a locked account that shows no hash of its own. (For an unknown user
/// the applets use the cost of the site's own hashes: see [`super::HashCost`].)
const DUMMY_HASH: &[u8] = b"$5$Dm9xTa2kQe1Lw3Zr$MFP1hlGi6AZVB38dCEilhlTam6rNFE496BT1/GpmcP7";

/// The crypt(3) schemes this module can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptScheme {
    /// `$1$salt$hash`: MD5-crypt.
    Md5Crypt,
    /// `$5$[rounds=N$]salt$hash`: SHA-256-crypt.
    Sha256Crypt,
    /// `$6$[rounds=N$]salt$hash`: SHA-512-crypt.
    Sha512Crypt,
    /// `$2a$`, `$2b$`, `$2y$`: bcrypt.
    Bcrypt,
    /// `$y$params$salt$hash`: yescrypt, the default of current Debian and Fedora.
    Yescrypt,
    /// 13 characters: traditional DES crypt, the first two being the salt.
    Des,
    /// A value starting with `!` or `*`: an account locked by the administrator (or a
    /// failure token of libxcrypt). No password matches it.
    Locked,
}

/// Schemes libxcrypt knows that we do not implement, by prefix.
const UNSUPPORTED: &[(&[u8], &str)] = &[
    (
        b"$2x$",
        "bcrypt with the pre-2011 sign-extension bug ($2x$)",
    ),
    (b"$7$", "scrypt ($7$)"),
    (b"$gy$", "gost-yescrypt ($gy$)"),
    (b"$sha1$", "sha1crypt ($sha1$)"),
    (b"$md5", "SunMD5 ($md5$)"),
    (b"$3$", "NT hash ($3$)"),
    (b"$apr1$", "Apache MD5 ($apr1$)"),
    (b"$argon2", "argon2 ($argon2...$)"),
];

impl CryptScheme {
    /// Human name, as used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            CryptScheme::Md5Crypt => "md5-crypt ($1$)",
            CryptScheme::Sha256Crypt => "sha256-crypt ($5$)",
            CryptScheme::Sha512Crypt => "sha512-crypt ($6$)",
            CryptScheme::Bcrypt => "bcrypt ($2a$/$2b$/$2y$)",
            CryptScheme::Yescrypt => "yescrypt ($y$)",
            CryptScheme::Des => "traditional DES crypt",
            CryptScheme::Locked => "locked account (! or *)",
        }
    }

    /// Which scheme a stored hash uses, judged by its prefix (and, for DES, its shape).
    /// The structure of the rest is checked by [`verify`].
    pub fn identify(hash: &[u8]) -> Result<CryptScheme, AuthError> {
        let scheme = match hash {
            [b'!' | b'*', ..] => CryptScheme::Locked,
            [b'$', b'1', b'$', ..] => CryptScheme::Md5Crypt,
            [b'$', b'5', b'$', ..] => CryptScheme::Sha256Crypt,
            [b'$', b'6', b'$', ..] => CryptScheme::Sha512Crypt,
            [b'$', b'2', b'a' | b'b' | b'y', b'$', ..] => CryptScheme::Bcrypt,
            [b'$', b'y', b'$', ..] => CryptScheme::Yescrypt,
            [b'$', ..] => {
                let name = UNSUPPORTED
                    .iter()
                    .find(|(prefix, _)| hash.starts_with(prefix))
                    .map_or("an unrecognised $-prefixed scheme", |(_, name)| name);
                return Err(AuthError::UnsupportedScheme(name));
            }
            [b'_', rest @ ..] if rest.len() == 19 && rest.iter().all(|&b| is_crypt64(b)) => {
                return Err(AuthError::UnsupportedScheme("BSDi extended DES (_)"));
            }
            _ if hash.len() == 13 && hash.iter().all(|&b| is_crypt64(b)) => CryptScheme::Des,
            _ => return Err(AuthError::NotACryptHash),
        };
        Ok(scheme)
    }
}

/// The alphabet of crypt's base-64 encoding and of the salts IndiMail generates.
fn is_crypt64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

fn all_crypt64(s: &[u8]) -> bool {
    s.iter().all(|&b| is_crypt64(b))
}

/// Checks `password` against the stored crypt `hash`.
///
/// An empty hash and a locked one never match. A hash of a scheme we do not implement is
/// [`AuthError::UnsupportedScheme`]; a known scheme with a damaged body is
/// [`AuthError::MalformedHash`]; anything that is not a crypt hash at all (a legacy
/// clear-text password, for instance) is [`AuthError::NotACryptHash`]. Every comparison
/// of derived bytes is constant-time.
pub fn verify(password: &[u8], hash: &[u8]) -> Result<Verdict, AuthError> {
    #[cfg(test)]
    VERIFIED.with(|v| v.borrow_mut().push(hash.to_vec()));
    if hash.is_empty() {
        return Ok(Verdict::Mismatch);
    }
    // crypt(3) takes a C string: the password ends at its first NUL.
    let password = c_str(password);
    let scheme = CryptScheme::identify(hash)?;
    let malformed = AuthError::MalformedHash(scheme.name());
    let matched = match scheme {
        CryptScheme::Locked => {
            // `!` put in front of a hash (usermod -L) keeps its cost: spend that,
            // so that a locked account takes as long as a wrong password.
            let cost = hash
                .iter()
                .position(|&b| b != b'!' && b != b'*')
                .and_then(|i| super::HashCost::of_hash(&hash[i..]));
            match cost {
                Some(cost) => dummy_verify_as(password, &cost.dummy_hash()),
                None => dummy_verify(password),
            }
            false
        }
        CryptScheme::Md5Crypt => {
            let text = md5_shape(hash).ok_or(malformed)?;
            #[allow(deprecated)] // deprecated only as advice against creating such hashes
            let computed = pwhash::md5_crypt::hash_with(text, password).map_err(|_| malformed)?;
            bool::from(computed.as_bytes().ct_eq(hash))
        }
        CryptScheme::Sha256Crypt | CryptScheme::Sha512Crypt => {
            let text = sha_shape(hash, scheme).ok_or(malformed)?;
            match ShaCrypt::default().verify_password(password, text) {
                Ok(()) => true,
                Err(HashError::PasswordInvalid) => false,
                Err(_) => return Err(malformed),
            }
        }
        CryptScheme::Bcrypt => {
            let text = bcrypt_shape(hash).ok_or(malformed)?;
            // Longer passwords are cut at 72 bytes, as libxcrypt does.
            bcrypt::verify(password, text).map_err(|_| malformed)?
        }
        CryptScheme::Yescrypt => {
            let text = yescrypt_shape(hash)?;
            match Yescrypt::default().verify_password(password, text) {
                Ok(()) => true,
                Err(HashError::PasswordInvalid) => false,
                Err(_) => return Err(malformed),
            }
        }
        CryptScheme::Des => {
            let text = std::str::from_utf8(hash).map_err(|_| malformed)?;
            #[allow(deprecated)] // deprecated only as advice against creating such hashes
            let computed = pwhash::unix_crypt::hash_with(text, password).map_err(|_| malformed)?;
            bool::from(computed.as_bytes().ct_eq(hash))
        }
    };
    Ok(if matched {
        Verdict::Match { rspauth: None }
    } else {
        Verdict::Mismatch
    })
}

/// Spends about the time of one real verification and throws the result away: for a
/// locked account without a hash of its own, so that it costs what a wrong password
/// costs.
pub fn dummy_verify(password: &[u8]) {
    dummy_verify_as(password, DUMMY_HASH);
}

/// [`dummy_verify`] against a given dummy hash (see [`super::HashCost::dummy_hash`]).
pub fn dummy_verify_as(password: &[u8], dummy: &[u8]) {
    let _ = verify(password, dummy);
}

#[cfg(test)]
thread_local! {
    /// The hashes this thread's `verify` calls checked a password against,
    /// so that tests can see the work an authentication did.
    pub static VERIFIED: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `$1$` salt of at most 8 characters `$` 22 characters. A longer salt would be cut by
/// crypt(3), so the stored value could never be reproduced: it is malformed.
fn md5_shape(hash: &[u8]) -> Option<&str> {
    let rest = &hash[3..];
    let dollar = rest.iter().position(|&b| b == b'$')?;
    let (salt, checksum) = (&rest[..dollar], &rest[dollar + 1..]);
    let ok = salt.len() <= 8 && all_crypt64(salt) && checksum.len() == 22 && all_crypt64(checksum);
    ok.then(|| std::str::from_utf8(hash).ok()).flatten()
}

/// `$5$` or `$6$`, an optional `rounds=N$` (N written without leading zeros, between 1000
/// and 999999999, the range libxcrypt accepts), a salt of 1 to 16 characters, `$`, and
/// a checksum of 43 (SHA-256) or 86 (SHA-512) characters.
fn sha_shape(hash: &[u8], scheme: CryptScheme) -> Option<&str> {
    let mut rest = &hash[3..];
    if let Some(after) = rest.strip_prefix(b"rounds=") {
        let dollar = after.iter().position(|&b| b == b'$')?;
        let digits = &after[..dollar];
        let canonical = !digits.is_empty()
            && digits.len() <= 9
            && digits[0] != b'0'
            && digits.iter().all(u8::is_ascii_digit);
        if !canonical {
            return None;
        }
        let rounds: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        if !(1000..=999_999_999).contains(&rounds) {
            return None;
        }
        rest = &after[dollar + 1..];
    }
    let dollar = rest.iter().position(|&b| b == b'$')?;
    let (salt, checksum) = (&rest[..dollar], &rest[dollar + 1..]);
    let checksum_len = if scheme == CryptScheme::Sha256Crypt {
        43
    } else {
        86
    };
    let ok = (1..=16).contains(&salt.len())
        && all_crypt64(salt)
        && checksum.len() == checksum_len
        && all_crypt64(checksum);
    ok.then(|| std::str::from_utf8(hash).ok()).flatten()
}

/// `$2?$NN$` and 53 characters (22 of salt, 31 of hash); cost 04 to 31.
fn bcrypt_shape(hash: &[u8]) -> Option<&str> {
    if hash.len() != 60 || hash[6] != b'$' || !all_crypt64(&hash[7..]) {
        return None;
    }
    let cost = &hash[4..6];
    if !cost.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let cost = u32::from(cost[0] - b'0') * 10 + u32::from(cost[1] - b'0');
    if !(4..=31).contains(&cost) {
        return None;
    }
    std::str::from_utf8(hash).ok()
}

/// `$y$params$salt$hash`, with parameters the crate understands and a memory cost under
/// [`YESCRYPT_MAX_MEMORY`].
fn yescrypt_shape(hash: &[u8]) -> Result<&str, AuthError> {
    let malformed = AuthError::MalformedHash(CryptScheme::Yescrypt.name());
    let fields: Vec<&[u8]> = hash[3..].split(|&b| b == b'$').collect();
    let &[params, salt, checksum] = fields.as_slice() else {
        return Err(malformed);
    };
    if params.is_empty()
        || salt.is_empty()
        || checksum.is_empty()
        || !all_crypt64(params)
        || !all_crypt64(salt)
        || !all_crypt64(checksum)
    {
        return Err(malformed);
    }
    let params = std::str::from_utf8(params).map_err(|_| malformed)?;
    let params = yescrypt::Params::from_str(params).map_err(|_| malformed)?;
    let memory = 128 * u128::from(params.r()) * (u128::from(params.n()) + u128::from(params.p()));
    if memory > YESCRYPT_MAX_MEMORY {
        return Err(AuthError::CostTooHigh(CryptScheme::Yescrypt.name()));
    }
    std::str::from_utf8(hash).map_err(|_| malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The password of every hash below unless a test says otherwise.
    const PW: &[u8] = b"correct horse";
    /// "pässwörd" in UTF-8, to exercise bytes above 0x7f.
    const PW_8BIT: &[u8] = "p\u{e4}ssw\u{f6}rd".as_bytes();

    fn is_match(password: &[u8], hash: &str) -> bool {
        match verify(password, hash.as_bytes()) {
            Ok(v) => v.is_match(),
            Err(e) => panic!("{hash}: unexpected error {e}"),
        }
    }

    /// Every hash must accept its password and refuse a near miss.
    fn accepts_only(password: &[u8], hash: &str) {
        assert!(is_match(password, hash), "{hash} should match");
        let mut wrong = password.to_vec();
        wrong.push(b'!');
        assert!(!is_match(&wrong, hash), "{hash} matched a wrong password");
        assert!(!is_match(b"", hash), "{hash} matched the empty password");
    }

    // The literal hashes below were made with independent tools on Debian 12:
    // `openssl passwd`, `mkpasswd` (whois package), and Python's crypt module over
    // libxcrypt 4.4.33.

    #[test]
    fn md5_crypt() {
        // openssl passwd -1 -salt Xy3.pQ/z
        accepts_only(PW, "$1$Xy3.pQ/z$bfw7tnxKfUAZFDJDJvVIk0");
        // mkpasswd -m md5crypt
        accepts_only(PW, "$1$Qgt8OJV0$OcyOnaV3q.uNxM/dSC9OZ0");
        // openssl passwd -1 -salt ab (short salt), and an empty salt (Python)
        accepts_only(PW, "$1$ab$.ThsTrbyIbEahEdE8LNwj1");
        accepts_only(PW, "$1$$IfI/mw4YSCwcQoW.D.DSu1");
        // Python crypt.crypt("pässwörd", "$1$nOnAsCiI")
        accepts_only(PW_8BIT, "$1$nOnAsCiI$5ZJFhgKrJlvJU9LFWHlAF/");
    }

    #[test]
    fn sha256_crypt_with_and_without_rounds() {
        // openssl passwd -5 -salt kJ8sD0.fGh/2LmN4
        accepts_only(
            PW,
            "$5$kJ8sD0.fGh/2LmN4$JpMYtikTpokZ.gRfLFe3nOw2Vm6ItHlrr1.Ca5ou1HD",
        );
        // mkpasswd -m sha256crypt -R 12000
        accepts_only(
            PW,
            "$5$rounds=12000$lKX4VAg3T7mx03Jt$VrXAAggRBWZ.HHB4LtEvjOCN4BK31Jp/zfWLkKXZAVC",
        );
        // Python crypt.crypt("pässwörd", "$5$nonAscii")
        accepts_only(
            PW_8BIT,
            "$5$nonAscii$1ndqZnVrtzf4EQY.W74MBXC5yq/1W2ua6zW9HULtZP8",
        );
    }

    #[test]
    fn sha512_crypt_with_and_without_rounds() {
        // openssl passwd -6 -salt Qw3rTy/.Zx9
        accepts_only(
            PW,
            "$6$Qw3rTy/.Zx9$DqWoTncxuWLb7n7EMMSF8dUYkGxcb/SS4nabKxaXKglmkNVRfI4hlL0NeDbyWujXz4K0BcnWsPo8KaK0CvjdJ/",
        );
        // mkpasswd -m sha512crypt -R 1000 (the minimum)
        accepts_only(
            PW,
            "$6$rounds=1000$jcMowjP6jeb2WVQ4$oEQOTg3jP31KIcG4F3sdG8dVjyY/Wp.f1Sc1cOIS7MX9RSp9C/j79fP.z19FpkwDZyiRMQkPtrESTXe1C9BWT.",
        );
        // The default count written out: Python crypt.crypt(pw, "$6$rounds=5000$abc")
        accepts_only(
            PW,
            "$6$rounds=5000$abc$dv7vAygfDghQeO8lNAuLv4y4HAQXw9d6a14dcjFGfTijFc0S6MgzM7g53hZv6MaGDXhNpGxhpXakWuTlqHtzn.",
        );
        // Python crypt.crypt("pässwörd", "$6$rounds=2000$nonAscii")
        accepts_only(
            PW_8BIT,
            "$6$rounds=2000$nonAscii$.PjKZkXB5MiWUdIiN13fuc7VjsKqZtEkVpyEc6mVM.BoYQo6FmXEWbVccaiHpW6VBQPUMsTKUGTONy/e0UC9Y0",
        );
    }

    #[test]
    fn traditional_des() {
        // mkpasswd -m descrypt. DES reads only the first 8 characters, so the near
        // misses differ early.
        assert!(is_match(PW, "Lzj/.qcDnwwkg"));
        assert!(!is_match(b"correct_horse", "Lzj/.qcDnwwkg"));
        assert!(!is_match(b"Correct horse", "Lzj/.qcDnwwkg"));
        assert!(!is_match(b"", "Lzj/.qcDnwwkg"));
        // Python crypt.crypt(pw, "Zz"); DES uses only the first 8 characters.
        assert!(is_match(PW, "ZziV3MgI7K8nk"));
        assert!(is_match(b"correct ", "ZziV3MgI7K8nk"));
        assert!(!is_match(b"correct", "ZziV3MgI7K8nk"));
        // Python crypt.crypt("päss", "Zz")
        assert!(is_match("p\u{e4}ss".as_bytes(), "ZzD7k.evnVpnU"));
        assert!(!is_match("p\u{e4}sS".as_bytes(), "ZzD7k.evnVpnU"));
    }

    #[test]
    fn bcrypt_variants() {
        // mkpasswd -m bcrypt -R 5, and -m bcrypt-a
        accepts_only(
            PW,
            "$2b$05$nTB4u.K/jvltrH0zltPZ5.wPCSYNZ6wtanNYo/V.bgw3WWHQBGhdu",
        );
        accepts_only(
            PW,
            "$2a$05$NTdr7YVwdkTOalE0F9h00OcsAPl1ysxjJ6CUOjDeQhHCCteuMprmy",
        );
        // Python crypt.crypt(pw, "$2y$05$abcdefghijklmnopqrstuu")
        accepts_only(
            PW,
            "$2y$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2",
        );
        // Python crypt.crypt("pässwörd\u{ff}\u{a3}", "$2a$05$abcdefghijklmnopqrstuu")
        accepts_only(
            "p\u{e4}ssw\u{f6}rd\u{ff}\u{a3}".as_bytes(),
            "$2a$05$abcdefghijklmnopqrstuu9eLUr0HFpU02tnzwmltloFx0QzmJudW",
        );
        // Python crypt.crypt("x" * 100, ...) equals the hash of 72 x: the cut is at 72.
        let long = "$2b$04$abcdefghijklmnopqrstuubzadhGtS2zEF.gu0yd0opP6cVzb.e0i";
        assert!(is_match(&[b'x'; 100], long));
        assert!(is_match(&[b'x'; 72], long));
        assert!(!is_match(&[b'x'; 71], long));
    }

    #[test]
    fn yescrypt() {
        // mkpasswd -m yescrypt (the Debian default cost) and -R 1
        accepts_only(
            PW,
            "$y$j9T$O.mLOVZ6egICFLj9EUjJq.$voukyMYhGs15CfMbSjkGD2uEwja5e35/Q/.RLxvug9C",
        );
        accepts_only(
            PW,
            "$y$j75$uQyHZQXQZfPNIGHfX.prI1$nV2.9pszhctYM9nbkSTRWN9ul0K0sc1jJBqNmsgm3w8",
        );
        // Python crypt.crypt("pässwörd", "$y$j9T$abcdefghijklmnopqrstu.")
        assert!(is_match(
            PW_8BIT,
            "$y$j9T$abcdefghijklmnopqrstu.$BtI1C85gEUrt1rdmxUp3jEfe9z/jo0SzRdBMGm351nA"
        ));
    }

    #[test]
    fn password_ends_at_nul_like_a_c_string() {
        let mut pw = PW.to_vec();
        pw.extend_from_slice(b"\0trailing");
        assert!(is_match(&pw, "$1$Xy3.pQ/z$bfw7tnxKfUAZFDJDJvVIk0"));
    }

    #[test]
    fn locked_and_empty_never_match() {
        for hash in [
            "!",
            "!!",
            "*",
            "*LK*",
            "*0",
            "!$1$Xy3.pQ/z$bfw7tnxKfUAZFDJDJvVIk0",
            "",
        ] {
            assert_eq!(verify(PW, hash.as_bytes()), Ok(Verdict::Mismatch), "{hash}");
        }
    }

    /// A locked account costs a check at the cost of the hash behind the `!`, else
    /// at the default dummy's.
    #[test]
    fn a_locked_account_costs_its_own_hash() {
        let work = |hash: &str| {
            VERIFIED.with(|v| v.borrow_mut().clear());
            assert_eq!(verify(PW, hash.as_bytes()), Ok(Verdict::Mismatch));
            let checked = VERIFIED.with(|v| v.take());
            assert_eq!(checked.len(), 2, "{hash}: the locked value and one dummy");
            super::super::HashCost::of_hash(&checked[1])
        };
        let sha512 = "$6$rounds=7000$abcdefgh$bt2D1fknJbYs39Z.DQkLis4UDjSg8/acBHhDptxtbSUWorySezY9AvZuIkjpil6p9C2IaIWkEwmCGxfgSM617.";
        assert_eq!(
            work(&format!("!{sha512}")),
            super::super::HashCost::of_hash(sha512.as_bytes())
        );
        assert_eq!(
            work(&format!("!!{sha512}")),
            super::super::HashCost::of_hash(sha512.as_bytes())
        );
        assert_eq!(work("*LK*"), super::super::HashCost::of_hash(DUMMY_HASH));
        assert_eq!(work("!"), super::super::HashCost::of_hash(DUMMY_HASH));
    }

    #[test]
    fn malformed_hashes_are_errors() {
        let md5 = AuthError::MalformedHash(CryptScheme::Md5Crypt.name());
        let sha256 = AuthError::MalformedHash(CryptScheme::Sha256Crypt.name());
        let sha512 = AuthError::MalformedHash(CryptScheme::Sha512Crypt.name());
        let bcrypt = AuthError::MalformedHash(CryptScheme::Bcrypt.name());
        let yes = AuthError::MalformedHash(CryptScheme::Yescrypt.name());
        let cases: &[(&str, AuthError)] = &[
            ("$1$Xy3.pQ/z$bfw7tnxKfUAZFDJDJvVIk", md5),
            ("$1$Xy3.pQ/z", md5),
            ("$1$abcdefghijk$y6iHhJNbuC0xpbk0w9pm80", md5),
            ("$1$a-b_c$CQqONDipTf2PD0UMj0aOH1", md5),
            (
                "$5$kJ8sD0.fGh/2LmN4$JpMYtikTpokZ.gRfLFe3nOw2Vm6ItHlrr1.Ca5ou1H",
                sha256,
            ),
            // Rounds below the minimum, above the maximum, with a leading zero, empty.
            (
                "$6$rounds=999$saltsalt$DqWoTncxuWLb7n7EMMSF8dUYkGxcb/SS4nabKxaXKglmkNVRfI4hlL0NeDbyWujXz4K0BcnWsPo8KaK0CvjdJ/",
                sha512,
            ),
            (
                "$6$rounds=1000000000$saltsalt$DqWoTncxuWLb7n7EMMSF8dUYkGxcb/SS4nabKxaXKglmkNVRfI4hlL0NeDbyWujXz4K0BcnWsPo8KaK0CvjdJ/",
                sha512,
            ),
            (
                "$6$rounds=01000$jcMowjP6jeb2WVQ4$oEQOTg3jP31KIcG4F3sdG8dVjyY/Wp.f1Sc1cOIS7MX9RSp9C/j79fP.z19FpkwDZyiRMQkPtrESTXe1C9BWT.",
                sha512,
            ),
            (
                "$6$rounds=$jcMowjP6jeb2WVQ4$oEQOTg3jP31KIcG4F3sdG8dVjyY/Wp.f1Sc1cOIS7MX9RSp9C/j79fP.z19FpkwDZyiRMQkPtrESTXe1C9BWT.",
                sha512,
            ),
            // A 17-character salt, which crypt would have cut to 16.
            (
                "$6$abcdefghijklmnopq$q2YZbPhm1LySTIzZVDisu/y2CX1McrFsw529ViOLMxoKT.sfgjBo4aFu.hwtGjEDxRb6mn/TZMj7V4/1AUTLi1",
                sha512,
            ),
            ("$6$", sha512),
            (
                "$2b$05$nTB4u.K/jvltrH0zltPZ5.wPCSYNZ6wtanNYo/V.bgw3WWHQBGhd",
                bcrypt,
            ),
            (
                "$2b$03$nTB4u.K/jvltrH0zltPZ5.wPCSYNZ6wtanNYo/V.bgw3WWHQBGhdu",
                bcrypt,
            ),
            ("$y$j9T$O.mLOVZ6egICFLj9EUjJq.", yes),
            ("$y$$O.mLOVZ6egICFLj9EUjJq.$voukyMYhGs15CfMbSjkGD2uEwja5e35/Q/.RLxvug9C", yes),
            ("$y$j9T$O.mLOVZ6egICFLj9EUjJq.$vouky$MYhG", yes),
        ];
        for (hash, error) in cases {
            assert_eq!(verify(PW, hash.as_bytes()), Err(*error), "{hash}");
        }
    }

    #[test]
    fn unsupported_schemes_are_named() {
        let cases = [
            (
                "$7$CU..../....b7W711jopggF7PJ87aagU.$OADEJod.wvQ0015l/pYwtusUdqauM0ZHkdBksiT9lY9",
                "scrypt ($7$)",
            ),
            (
                "$2x$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2",
                "bcrypt with the pre-2011 sign-extension bug ($2x$)",
            ),
            ("$gy$j9T$salt$hash", "gost-yescrypt ($gy$)"),
            ("_J9..abcdtIvPUrZYa6w", "BSDi extended DES (_)"),
            ("$9$whatever", "an unrecognised $-prefixed scheme"),
        ];
        for (hash, name) in cases {
            assert_eq!(
                verify(PW, hash.as_bytes()),
                Err(AuthError::UnsupportedScheme(name)),
                "{hash}"
            );
        }
    }

    #[test]
    fn clear_text_is_not_a_hash() {
        for stored in [
            "correct horse",
            "secret",
            "Lzj/.qcDnwwk",
            "Lzj/.qcDnwwkgg",
            "Lzj/.qcDnww-g",
        ] {
            assert_eq!(
                verify(stored.as_bytes(), stored.as_bytes()),
                Err(AuthError::NotACryptHash),
                "{stored}"
            );
        }
    }

    #[test]
    fn yescrypt_memory_is_capped() {
        // `G` gives N = 2^19 and `T` r = 32: 2 GiB. Refused before any allocation.
        let hash = "$y$jGT$O.mLOVZ6egICFLj9EUjJq.$voukyMYhGs15CfMbSjkGD2uEwja5e35/Q/.RLxvug9C";
        assert_eq!(
            verify(PW, hash.as_bytes()),
            Err(AuthError::CostTooHigh(CryptScheme::Yescrypt.name()))
        );
    }

    #[test]
    fn identify_by_prefix() {
        assert_eq!(CryptScheme::identify(b"$1$x$y"), Ok(CryptScheme::Md5Crypt));
        assert_eq!(
            CryptScheme::identify(b"$5$x$y"),
            Ok(CryptScheme::Sha256Crypt)
        );
        assert_eq!(
            CryptScheme::identify(b"$6$x$y"),
            Ok(CryptScheme::Sha512Crypt)
        );
        assert_eq!(CryptScheme::identify(b"$2y$x"), Ok(CryptScheme::Bcrypt));
        assert_eq!(CryptScheme::identify(b"$y$x"), Ok(CryptScheme::Yescrypt));
        assert_eq!(
            CryptScheme::identify(b"Lzj/.qcDnwwkg"),
            Ok(CryptScheme::Des)
        );
        assert_eq!(CryptScheme::identify(b"!x"), Ok(CryptScheme::Locked));
        assert_eq!(CryptScheme::identify(b""), Err(AuthError::NotACryptHash));
    }

    #[test]
    fn dummy_hash_is_well_formed() {
        assert_eq!(
            CryptScheme::identify(DUMMY_HASH),
            Ok(CryptScheme::Sha256Crypt)
        );
        assert_eq!(verify(b"guess", DUMMY_HASH), Ok(Verdict::Mismatch));
    }
}
