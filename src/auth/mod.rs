//! Password verification for vchkpass and authindi: IndiMail's stored password formats
//! and its `pw_comp` comparison, as pure functions over bytes.
//!
//! An applet does three things, which [`verify`] bundles:
//!
//! 1. [`StoredSecret::parse`] splits the account's password field (SCRAM value, `{CRAM}`
//!    clear text, or a crypt hash);
//! 2. [`StoredSecret::secret_for`] picks the secret the method compares against;
//! 3. [`check_secret`] compares: a crypt(3) check when there is no challenge, otherwise
//!    the CRAM HMACs and DIGEST-MD5.
//!
//! Nothing here logs, reads files or touches the process, and no value this module
//! formats ([`Debug`](std::fmt::Debug) or [`Display`](std::fmt::Display)) contains a byte
//! of a password, hash, SCRAM key or response: they show schemes and lengths. Every
//! comparison of a value derived from a secret is constant-time.
//!
//! Where IndiMail's C code has a known weakness, this code does the intended thing and
//! says so at the spot: constant-time comparisons, hex responses of either case, the
//! RFC 2831 body hash for `auth-int`/`auth-conf`, the DIGEST-MD5 realm read from the
//! directives, `{SCRAM-SHA-512}` values, clear texts containing commas, and locked or
//! malformed hashes reported as such instead of a temporary failure.
//!
//! `PASSWORD_HASH` plays no part in a comparison: a stored hash names its own scheme
//! (`$5$`, `$6$`, ...), and one without a `$` prefix is traditional DES, whatever the
//! variable says. It only gives the cost of an unknown user's dummy check when the
//! site's own is not known ([`HashCost::for_password_hash`]).

mod cost;
mod cram;
mod crypt;
pub mod digest_md5;
mod hex;
mod method;
mod stored;

use std::fmt;

pub use cost::{most_common, Census, Counter, HashCost, SHA_DEFAULT_ROUNDS};
pub use cram::CramAlgorithm;
#[cfg(test)]
pub(crate) use crypt::VERIFIED;
pub use crypt::{dummy_verify, dummy_verify_as, verify as verify_crypt, CryptScheme};
pub use digest_md5::{login_with_realm, RspAuth};
pub use method::Method;
pub use stored::{ScramMechanism, ScramSecret, StoredSecret};

/// Why a password could not be checked at all (as opposed to being wrong).
///
/// The texts name schemes and counts only, never stored or supplied bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The stored value has a `{SCRAM-SHA-…}` prefix but not the 6 or 8 items IndiMail's
    /// parser requires; `found` is the count that parser reports.
    #[error("the stored SCRAM secret is malformed ({found} items where 6 or 8 are needed)")]
    MalformedScram { found: u8 },
    /// The method keys an HMAC or digest with the clear-text password, the account stores
    /// none, and using the hash in its place is not enabled.
    #[error("{method} needs a clear-text secret and the account stores none")]
    NoClearText { method: Method },
    /// The stored hash uses a crypt scheme this build cannot compute.
    #[error("the stored password uses {0}, which is not supported")]
    UnsupportedScheme(&'static str),
    /// The stored hash has the prefix of a known scheme but a damaged body.
    #[error("the stored {0} hash is malformed")]
    MalformedHash(&'static str),
    /// The stored hash asks for more work or memory than this verifier allows.
    #[error("the stored {0} hash asks for more memory than allowed")]
    CostTooHigh(&'static str),
    /// A password was to be checked against something that is not a crypt hash (a legacy
    /// clear-text password, for instance, which IndiMail never accepted for LOGIN/PLAIN).
    #[error("the stored password is not a crypt hash")]
    NotACryptHash,
}

/// The result of a check that could be carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are right. A DIGEST-MD5 match carries the `rspauth` value for the
    /// client (vchkpass writes it to fd 6).
    Match { rspauth: Option<RspAuth> },
    /// The credentials are wrong.
    Mismatch,
}

impl Verdict {
    /// True for [`Verdict::Match`].
    #[must_use]
    pub fn is_match(&self) -> bool {
        matches!(self, Verdict::Match { .. })
    }

    /// The DIGEST-MD5 `rspauth` value of a match, if there is one.
    pub fn rspauth(&self) -> Option<&RspAuth> {
        match self {
            Verdict::Match { rspauth } => rspauth.as_ref(),
            Verdict::Mismatch => None,
        }
    }
}

/// What the client sent.
///
/// With an empty `challenge`, `response` is a password for a crypt check. Otherwise it
/// is a challenge/response exchange: for CRAM, `challenge` is the server's challenge and
/// `response` the client's hex HMAC; for DIGEST-MD5, `challenge` is the client's hex
/// `response=` value and `response` holds the other directives (the layout qmail-smtpd
/// uses, see [`Attempt::from_checkpassword`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Attempt<'a> {
    pub method: Method,
    /// The login as the client gave it; DIGEST-MD5 hashes it as the user name.
    pub login: &'a [u8],
    pub challenge: &'a [u8],
    pub response: &'a [u8],
}

impl<'a> Attempt<'a> {
    /// A password to check against the crypt hash (LOGIN, PLAIN, ...).
    pub fn password(method: Method, login: &'a [u8], password: &'a [u8]) -> Attempt<'a> {
        Attempt {
            method,
            login,
            challenge: b"",
            response: password,
        }
    }

    /// A challenge and the client's response to it.
    pub fn challenge_response(
        method: Method,
        login: &'a [u8],
        challenge: &'a [u8],
        response: &'a [u8],
    ) -> Attempt<'a> {
        Attempt {
            method,
            login,
            challenge,
            response,
        }
    }

    /// vchkpass's mapping of the three fd-3 fields: with a non-empty field 3, field 2 is
    /// the challenge and field 3 the response; with an empty field 3 there is no
    /// challenge and field 2 is the password.
    pub fn from_checkpassword(
        method: Method,
        login: &'a [u8],
        field2: &'a [u8],
        field3: &'a [u8],
    ) -> Attempt<'a> {
        if field3.is_empty() {
            Attempt::password(method, login, field2)
        } else {
            Attempt::challenge_response(method, login, field2, field3)
        }
    }
}

impl fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("method", &self.method)
            .field("login_len", &self.login.len())
            .field("challenge_len", &self.challenge.len())
            .field("response_len", &self.response.len())
            .finish()
    }
}

/// The switches of IndiMail's environment that change a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Use the crypt hash (or a plain stored value) as the CRAM secret when the account
    /// has no stored clear text: env `ENABLE_CRAM`, for vchkpass and authindi alike.
    /// It makes the stored hash a password of its own.
    pub cram_from_hash: bool,
    /// `DISABLE_CRYPT`: a password without a challenge never matches.
    pub disable_crypt: bool,
    /// Bit per method number: methods left out when the method is unspecified
    /// (`DISABLE_CRAM_MD5` ... `DISABLE_DIGEST_MD5`).
    disabled: u32,
    /// The cost of the check an unknown user's password gets: that of the site's own
    /// hashes where known (the applets learn it, see `dummy_cost`), else of what
    /// `PASSWORD_HASH` makes.
    pub dummy: HashCost,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            cram_from_hash: false,
            disable_crypt: false,
            disabled: 0,
            dummy: HashCost::for_password_hash(None),
        }
    }
}

impl Policy {
    /// Reads `DISABLE_CRYPT` and the `DISABLE_CRAM_*` / `DISABLE_DIGEST_MD5` variables
    /// through `is_set` (IndiMail only asks whether a variable exists). `cram_from_hash`
    /// is left false: it depends on the applet.
    pub fn from_env_with(is_set: impl Fn(&str) -> bool) -> Policy {
        let mut policy = Policy {
            disable_crypt: is_set("DISABLE_CRYPT"),
            ..Policy::default()
        };
        for method in Method::ALL {
            if method.disable_variable().is_some_and(&is_set) {
                policy.disable_when_unspecified(method);
            }
        }
        policy
    }

    /// [`Policy::from_env_with`] over the process environment.
    pub fn from_env() -> Policy {
        Policy::from_env_with(|name| std::env::var_os(name).is_some())
    }

    /// Leaves `method` out of the set tried when the method is unspecified.
    pub fn disable_when_unspecified(&mut self, method: Method) {
        self.disabled |= 1 << method.code();
    }

    /// Whether `method` is left out when the method is unspecified.
    pub fn is_disabled_when_unspecified(&self, method: Method) -> bool {
        self.disabled & (1 << method.code()) != 0
    }

    /// Does a comparison for `requested` run the branch of `branch`? Its own method
    /// always; every branch that is not disabled when the method is unspecified.
    fn runs(&self, requested: Method, branch: Method) -> bool {
        requested == branch
            || (requested == Method::Unspecified && !self.is_disabled_when_unspecified(branch))
    }
}

/// Checks an attempt against an account's stored password field, as vchkpass and
/// authindi do: parse, choose the secret for the method, compare.
///
/// An unspecified method with a challenge can match only in a challenge-response
/// branch, so it is keyed as those are: with the stored clear text, and with the crypt
/// hash only under `cram_from_hash`. IndiMail keyed it with the crypt hash whatever
/// was stored, so whoever could read a hash could log in with it, without the
/// password and without `ENABLE_CRAM`.
pub fn verify(stored: &[u8], attempt: &Attempt<'_>, policy: &Policy) -> Result<Verdict, AuthError> {
    let stored = StoredSecret::parse(stored)?;
    let challenged = !c_str(attempt.challenge).is_empty();
    let secret = if attempt.method == Method::Unspecified && challenged {
        stored.challenge_secret(policy.cram_from_hash)
    } else {
        stored.secret_for(attempt.method, policy.cram_from_hash)
    };
    let secret = secret.ok_or(AuthError::NoClearText {
        method: attempt.method,
    })?;
    check_secret(secret, attempt, policy)
}

/// The part of a byte string a C function would see: up to the first NUL.
pub(crate) fn c_str(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// IndiMail's `pw_comp`: compares an attempt with the chosen `secret`.
///
/// * An empty secret never matches.
/// * Without a challenge, `response` is a password checked against `secret` as a crypt
///   hash (unless `DISABLE_CRYPT`), whatever the method.
/// * With a challenge, the CRAM branches run in IndiMail's order (MD5, SHA1, SHA224,
///   SHA256, SHA384, SHA512, RIPEMD) and then DIGEST-MD5: the requested one, or, for an
///   unspecified method, each one not disabled. Other methods (LOGIN, PLAIN, SCRAM,
///   XOAUTH2) with a challenge never match.
///
/// Inputs are read as C strings, up to a NUL, as the C code saw them.
pub fn check_secret(
    secret: &[u8],
    attempt: &Attempt<'_>,
    policy: &Policy,
) -> Result<Verdict, AuthError> {
    let secret = c_str(secret);
    let challenge = c_str(attempt.challenge);
    let response = c_str(attempt.response);
    if secret.is_empty() {
        return Ok(Verdict::Mismatch);
    }
    if challenge.is_empty() {
        // A challenge-response method without a challenge is no password
        // check in disguise: it never matches.
        if policy.disable_crypt
            || attempt.method.is_cram_class()
            || attempt.method == Method::DigestMd5
        {
            return Ok(Verdict::Mismatch);
        }
        return crypt::verify(response, secret);
    }
    for algorithm in CramAlgorithm::ALL {
        if policy.runs(attempt.method, algorithm.method())
            && algorithm.verify(secret, challenge, response)
        {
            return Ok(Verdict::Match { rspauth: None });
        }
    }
    if policy.runs(attempt.method, Method::DigestMd5) {
        // DIGEST-MD5: the client's hex digest travels as the "challenge" and the
        // directives as the "response".
        if let Some(rspauth) = digest_md5::verify(c_str(attempt.login), secret, challenge, response)
        {
            return Ok(Verdict::Match {
                rspauth: Some(rspauth),
            });
        }
    }
    Ok(Verdict::Mismatch)
}

/// Spends about the work of a real check of `attempt`, for a login that has no account
/// (or no usable secret), so that the reply time does not tell.
pub fn spend_like_verify(attempt: &Attempt<'_>, policy: &Policy) {
    /// Stands for a stored clear text; no client knows it.
    const DUMMY_SECRET: &[u8] = b"5wT0r9Qv2bLk8ZpN";
    if attempt.challenge.is_empty() {
        if !policy.disable_crypt {
            dummy_verify_as(attempt.response, &policy.dummy.dummy_hash());
        }
    } else {
        let _ = check_secret(DUMMY_SECRET, attempt, policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC2195_CHALLENGE: &[u8] = b"<1896.697170952@postoffice.reston.mci.net>";
    const RFC2195_RESPONSE: &[u8] = b"b913a602c7eda7a495b4e6e7334d3890";
    const RFC2831_DIRECTIVES: &[u8] = b"digest-uri=imap/elwood.innosoft.com\nnc=00000001\n\
        nonce=OA6MG9tEQGm2hh\ncnonce=OA6MHXh6VqTrRk\nqop=auth\nrealm=elwood.innosoft.com";
    const RFC2831_RESPONSE: &[u8] = b"d388dad90d4bbd760a152321f2143af7";
    const RFC2831_RSPAUTH: &[u8] = b"ea40f60335c427b5527b84dbabcdfffd";

    /// `correct horse` under openssl passwd -1.
    const MD5_HASH: &[u8] = b"$1$Xy3.pQ/z$bfw7tnxKfUAZFDJDJvVIk0";

    fn policy() -> Policy {
        Policy::default()
    }

    fn stored_cram(clear: &str) -> Vec<u8> {
        format!("{{CRAM}}{clear},{}", std::str::from_utf8(MD5_HASH).unwrap()).into_bytes()
    }

    fn matched() -> Result<Verdict, AuthError> {
        Ok(Verdict::Match { rspauth: None })
    }

    #[test]
    fn login_and_plain_check_the_crypt_hash() {
        for method in [
            Method::Login,
            Method::Plain,
            Method::Unspecified,
            Method::XOAuth2,
        ] {
            let ok = Attempt::from_checkpassword(method, b"joe", b"correct horse", b"");
            let bad = Attempt::from_checkpassword(method, b"joe", b"correct horsE", b"");
            assert_eq!(verify(MD5_HASH, &ok, &policy()), matched());
            assert_eq!(verify(MD5_HASH, &bad, &policy()), Ok(Verdict::Mismatch));
            // The crypt hash of a {CRAM} value, not its clear text.
            let stored = stored_cram("tanstaaftanstaaf");
            assert_eq!(verify(&stored, &ok, &policy()), matched());
            let clear = Attempt::password(method, b"joe", b"tanstaaftanstaaf");
            assert_eq!(verify(&stored, &clear, &policy()), Ok(Verdict::Mismatch));
        }
    }

    #[test]
    fn disable_crypt_refuses_passwords() {
        let p = Policy::from_env_with(|name| name == "DISABLE_CRYPT");
        assert!(p.disable_crypt);
        let ok = Attempt::password(Method::Login, b"joe", b"correct horse");
        assert_eq!(verify(MD5_HASH, &ok, &p), Ok(Verdict::Mismatch));
    }

    #[test]
    fn rfc2195_through_the_stored_formats() {
        let attempt = Attempt::from_checkpassword(
            Method::CramMd5,
            b"tim",
            RFC2195_CHALLENGE,
            RFC2195_RESPONSE,
        );
        // {CRAM} clear text.
        assert_eq!(
            verify(&stored_cram("tanstaaftanstaaf"), &attempt, &policy()),
            matched()
        );
        // SCRAM with clear text.
        let scram = b"{SCRAM-SHA-1}4096,c2FsdA==,c3RvcmVk,c2VydmVy:abcd:tanstaaftanstaaf,$1$a$b";
        assert_eq!(verify(scram, &attempt, &policy()), matched());
        // Wrong secret.
        assert_eq!(
            verify(&stored_cram("tanstaaftanstaa"), &attempt, &policy()),
            Ok(Verdict::Mismatch)
        );
        // A plain value is used as the key only when allowed (ENABLE_CRAM).
        assert_eq!(
            verify(b"tanstaaftanstaaf", &attempt, &policy()),
            Err(AuthError::NoClearText {
                method: Method::CramMd5
            })
        );
        let allow = Policy {
            cram_from_hash: true,
            ..Policy::default()
        };
        assert_eq!(verify(b"tanstaaftanstaaf", &attempt, &allow), matched());
    }

    #[test]
    fn a_stored_hash_is_no_cram_key_without_enable_cram() {
        // An HMAC keyed with the stored hash itself: whoever read the hash can make it.
        let allow = Policy {
            cram_from_hash: true,
            ..Policy::default()
        };
        for stored in [MD5_HASH.to_vec(), stored_cram("tanstaaftanstaaf")] {
            let key = StoredSecret::parse(&stored).unwrap().crypt_hash().to_vec();
            for alg in CramAlgorithm::ALL {
                let response = alg.response(&key, RFC2195_CHALLENGE);
                for method in [alg.method(), Method::Unspecified] {
                    let attempt =
                        Attempt::challenge_response(method, b"tim", RFC2195_CHALLENGE, &response);
                    let refused = verify(&stored, &attempt, &policy());
                    assert!(!refused.is_ok_and(|v| v.is_match()), "{alg:?} {method}");
                    // With ENABLE_CRAM, a hash-only account takes the hash as its key.
                    let with = verify(&stored, &attempt, &allow);
                    let clear_text_stored = stored.starts_with(b"{CRAM}");
                    assert_eq!(
                        with.is_ok_and(|v| v.is_match()),
                        !clear_text_stored,
                        "{alg:?} {method}"
                    );
                }
            }
            // Without ENABLE_CRAM a hash-only account has no CRAM secret at all.
            if stored == MD5_HASH {
                let any = Attempt::challenge_response(
                    Method::Unspecified,
                    b"tim",
                    RFC2195_CHALLENGE,
                    b"00",
                );
                assert_eq!(
                    verify(&stored, &any, &policy()),
                    Err(AuthError::NoClearText {
                        method: Method::Unspecified
                    })
                );
            }
        }
        // The clear text of a {CRAM} value keys an unspecified method.
        let stored = stored_cram("tanstaaftanstaaf");
        let any = Attempt::challenge_response(
            Method::Unspecified,
            b"tim",
            RFC2195_CHALLENGE,
            RFC2195_RESPONSE,
        );
        assert_eq!(verify(&stored, &any, &policy()), matched());
    }

    #[test]
    fn every_cram_method_against_its_own_hmac_only() {
        let secret = b"tanstaaftanstaaf";
        for alg in CramAlgorithm::ALL {
            let response = alg.response(secret, RFC2195_CHALLENGE);
            for other in CramAlgorithm::ALL {
                let attempt = Attempt::challenge_response(
                    other.method(),
                    b"tim",
                    RFC2195_CHALLENGE,
                    &response,
                );
                let expected = if other == alg {
                    matched()
                } else {
                    Ok(Verdict::Mismatch)
                };
                assert_eq!(check_secret(secret, &attempt, &policy()), expected);
            }
            // An unspecified method tries them all.
            let any = Attempt::challenge_response(
                Method::Unspecified,
                b"tim",
                RFC2195_CHALLENGE,
                &response,
            );
            assert_eq!(check_secret(secret, &any, &policy()), matched());
            // ... except the disabled one.
            let mut p = Policy::default();
            p.disable_when_unspecified(alg.method());
            assert_eq!(check_secret(secret, &any, &p), Ok(Verdict::Mismatch));
            // The variable names drive the same switch.
            let name = alg.method().disable_variable().unwrap();
            let p = Policy::from_env_with(|n| n == name);
            assert_eq!(check_secret(secret, &any, &p), Ok(Verdict::Mismatch));
        }
    }

    #[test]
    fn password_methods_with_a_challenge_never_match() {
        let secret = b"tanstaaftanstaaf";
        for method in [
            Method::Login,
            Method::Plain,
            Method::ScramSha256,
            Method::XOAuth2,
        ] {
            let attempt =
                Attempt::challenge_response(method, b"tim", RFC2195_CHALLENGE, RFC2195_RESPONSE);
            assert_eq!(
                check_secret(secret, &attempt, &policy()),
                Ok(Verdict::Mismatch)
            );
        }
    }

    #[test]
    fn digest_md5_rfc2831_with_rspauth() {
        let attempt = Attempt::from_checkpassword(
            Method::DigestMd5,
            b"chris",
            RFC2831_RESPONSE,
            RFC2831_DIRECTIVES,
        );
        let stored = b"{CRAM}secret,$5$x$y";
        let verdict = verify(stored, &attempt, &policy()).unwrap();
        assert!(verdict.is_match());
        assert_eq!(verdict.rspauth().unwrap().as_bytes(), RFC2831_RSPAUTH);
        // An unspecified method with a challenge is keyed like the CRAM class, with
        // the clear text (IndiMail keyed it with the crypt hash), and tries
        // DIGEST-MD5 too, unless disabled.
        let any = Attempt {
            method: Method::Unspecified,
            ..attempt
        };
        let verdict = verify(stored, &any, &policy()).unwrap();
        assert_eq!(verdict.rspauth().unwrap().as_bytes(), RFC2831_RSPAUTH);
        let verdict = check_secret(b"secret", &any, &policy()).unwrap();
        assert_eq!(verdict.rspauth().unwrap().as_bytes(), RFC2831_RSPAUTH);
        let off = Policy::from_env_with(|n| n == "DISABLE_DIGEST_MD5");
        assert_eq!(check_secret(b"secret", &any, &off), Ok(Verdict::Mismatch));
        // Wrong password.
        let wrong = b"{CRAM}Secret,$5$x$y";
        assert_eq!(verify(wrong, &attempt, &policy()), Ok(Verdict::Mismatch));
        // No clear text stored: not possible without ENABLE_CRAM.
        assert_eq!(
            verify(b"$5$x$y", &attempt, &policy()),
            Err(AuthError::NoClearText {
                method: Method::DigestMd5
            })
        );
    }

    #[test]
    fn empty_secret_never_matches() {
        let attempt = Attempt::password(Method::Login, b"joe", b"");
        assert_eq!(
            check_secret(b"", &attempt, &policy()),
            Ok(Verdict::Mismatch)
        );
        let cram = Attempt::challenge_response(Method::CramMd5, b"joe", b"<c>", b"00");
        assert_eq!(check_secret(b"", &cram, &policy()), Ok(Verdict::Mismatch));
        // {CRAM} with nothing before the comma.
        let mac = CramAlgorithm::Md5.response(b"", b"<c>");
        let cram = Attempt::challenge_response(Method::CramMd5, b"joe", b"<c>", &mac);
        assert_eq!(
            verify(b"{CRAM},$5$x$y", &cram, &policy()),
            Ok(Verdict::Mismatch)
        );
    }

    #[test]
    fn malformed_scram_is_an_error_before_any_comparison() {
        let attempt = Attempt::password(Method::Login, b"joe", b"correct horse");
        assert_eq!(
            verify(b"{SCRAM-SHA-256}4096,salt,stored", &attempt, &policy()),
            Err(AuthError::MalformedScram { found: 3 })
        );
    }

    #[test]
    fn scram_512_login_uses_its_hash() {
        let mut stored = b"{SCRAM-SHA-512}4096,c2FsdA==,c3RvcmVk,c2VydmVy,".to_vec();
        stored.extend_from_slice(MD5_HASH);
        let ok = Attempt::password(Method::Plain, b"joe", b"correct horse");
        assert_eq!(verify(&stored, &ok, &policy()), matched());
    }

    /// No Display or Debug text of this module may carry a byte of a secret.
    #[test]
    fn nothing_formatted_shows_a_secret() {
        const MARK: &str = "Zq7Sekr3t";
        let hash = "$6$rounds=5000$abc$dv7vAygfDghQeO8lNAuLv4y4HAQXw9d6a14dcjFGfTijFc0S6MgzM7g53hZv6MaGDXhNpGxhpXakWuTlqHtzn.";
        let stored_values = [
            format!(
                "{{SCRAM-SHA-256}}4096,{MARK}salt,{MARK}sk,{MARK}svk:{MARK}hex:{MARK}clear,{hash}"
            ),
            format!("{{SCRAM-SHA-1}}4096,{MARK}salt,{MARK}sk,{MARK}svk,{MARK}hash"),
            format!("{{CRAM}}{MARK}clear,{MARK}hash"),
            format!("{{CRAM}}{MARK}clear,{hash}"),
            format!("{MARK}plain"),
            format!("${MARK}$looks-like-a-scheme"),
            format!("$1${MARK}$broken"),
            format!("{{SCRAM-SHA-256}}4096,{MARK}salt,{MARK}sk"),
            hash.to_string(),
        ];
        let secrets = [MARK, "dv7vAygfDghQeO8lNAuLv4y4HAQXw9d6a14dcjF", "abc$"];
        let mut texts = Vec::new();
        for stored in &stored_values {
            match StoredSecret::parse(stored.as_bytes()) {
                Ok(s) => {
                    texts.push(format!("{s:?}"));
                    texts.push(format!("{s:#?}"));
                    if let StoredSecret::Scram(scram) = s {
                        texts.push(format!("{scram:?}"));
                    }
                }
                Err(e) => {
                    texts.push(format!("{e}"));
                    texts.push(format!("{e:?}"));
                }
            }
            for method in Method::ALL {
                let password = format!("{MARK}pw");
                let attempts = [
                    Attempt::password(method, MARK.as_bytes(), password.as_bytes()),
                    Attempt::from_checkpassword(
                        method,
                        MARK.as_bytes(),
                        RFC2831_RESPONSE,
                        RFC2831_DIRECTIVES,
                    ),
                ];
                for attempt in attempts {
                    texts.push(format!("{attempt:?}"));
                    for p in [
                        Policy::default(),
                        Policy {
                            cram_from_hash: true,
                            ..Policy::default()
                        },
                    ] {
                        texts.push(format!("{p:?}"));
                        match verify(stored.as_bytes(), &attempt, &p) {
                            Ok(v) => texts.push(format!("{v:?}")),
                            Err(e) => {
                                texts.push(format!("{e}"));
                                texts.push(format!("{e:?}"));
                            }
                        }
                    }
                }
            }
            match verify_crypt(MARK.as_bytes(), stored.as_bytes()) {
                Ok(v) => texts.push(format!("{v:?}")),
                Err(e) => texts.push(format!("{e} {e:?}")),
            }
        }
        // A DIGEST-MD5 match with its rspauth, and the parsed directives.
        let v = check_secret(
            b"secret",
            &Attempt::from_checkpassword(
                Method::DigestMd5,
                b"chris",
                RFC2831_RESPONSE,
                RFC2831_DIRECTIVES,
            ),
            &Policy::default(),
        )
        .unwrap();
        assert!(v.is_match());
        texts.push(format!("{v:?}"));
        texts.push(format!(
            "{:?}",
            digest_md5::Directives::parse(RFC2831_DIRECTIVES).unwrap()
        ));
        let all = texts.join("\n");
        for secret in secrets {
            assert!(!all.contains(secret), "{secret} leaked in:\n{all}");
        }
        for leak in [
            "ea40f603",
            "d388dad9",
            "OA6MG9tEQGm2hh",
            "secret\"",
            "elwood",
        ] {
            assert!(!all.contains(leak), "{leak} leaked in:\n{all}");
        }
        // Every error variant on its own.
        let errors = [
            AuthError::MalformedScram { found: 5 },
            AuthError::NoClearText {
                method: Method::CramSha256,
            },
            AuthError::UnsupportedScheme("scrypt ($7$)"),
            AuthError::MalformedHash("sha512-crypt ($6$)"),
            AuthError::CostTooHigh("yescrypt ($y$)"),
            AuthError::NotACryptHash,
        ];
        for e in errors {
            let text = format!("{e} {e:?}");
            assert!(!text.contains(MARK));
            assert!(!text.is_empty());
        }
    }

    #[test]
    fn a_challenge_method_without_challenge_is_no_password_check() {
        // openssl passwd -1 -salt saltsalt secret
        let hash = b"$1$saltsalt$9xy1btjgzLYfb7hivXtC//";
        let policy = Policy::default();
        // The right password as a "response" without a challenge.
        for method in [Method::CramMd5, Method::CramSha256, Method::DigestMd5] {
            let attempt = Attempt::challenge_response(method, b"joe", b"", b"secret");
            assert_eq!(
                check_secret(hash, &attempt, &policy).unwrap(),
                Verdict::Mismatch
            );
        }
        // The same bytes as a LOGIN password do match.
        let login = Attempt::password(Method::Login, b"joe", b"secret");
        assert!(check_secret(hash, &login, &policy).unwrap().is_match());
    }
}
