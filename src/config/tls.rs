//! The TLS settings every MySQL connection gets: IndiMail's `MYSQL_OPT_SSL_*`
//! variables merged with the option file's `ssl-*` keys.
//!
//! Precedence follows libmariadb: it reads the option file when connecting, after
//! IndiMail's `mysql_options` calls, so a key present in the option file wins over the
//! variable, and the variable applies where the file says nothing.
//!
//! The client is rustls, so some OpenSSL-era settings cannot be honoured. Rather than
//! silently weaken a set-up, those that matter for security are refused at start-up
//! (certificate revocation lists, a CA directory, a version list without TLSv1.2 or
//! TLSv1.3); a cipher list, which rustls has no use for, is ignored with a warning.
//! The server certificate is verified unless verification is turned off explicitly
//! (libmariadb's default is not to verify).

use std::path::PathBuf;

use super::env::{nonempty, nonempty_os, parse_decimal, Env};
use super::option_file::OptionFile;
use super::ConfigError;

/// The TLS settings of every MySQL connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file of the CAs that may sign the server certificate; `None` = the
    /// system's roots.
    pub ca: Option<PathBuf>,
    /// Refused at load (a CA directory); always `None` in a loaded value.
    pub capath: Option<PathBuf>,
    /// Client certificate (PEM), given together with `key`.
    pub cert: Option<PathBuf>,
    /// Client key (PEM), given together with `cert`.
    pub key: Option<PathBuf>,
    /// Refused at load; always `None` in a loaded value.
    pub crl: Option<PathBuf>,
    /// Refused at load; always `None` in a loaded value.
    pub crlpath: Option<PathBuf>,
    /// OpenSSL cipher list: ignored (see [`TlsSettings::warnings`]).
    pub cipher: Option<String>,
    /// Allowed versions, e.g. `TLSv1.2,TLSv1.3`; `None` = both.
    pub tls_version: Option<String>,
    /// Verify the server certificate and name (default true).
    pub verify_cert: bool,
    /// TLS on every connection, even those whose host line or record does not ask.
    pub enforce: bool,
    /// Where `cipher` came from, for the warning.
    cipher_origin: String,
    /// Where verification was turned off, for the warning.
    verify_origin: String,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            ca: None,
            capath: None,
            cert: None,
            key: None,
            crl: None,
            crlpath: None,
            cipher: None,
            tls_version: None,
            verify_cert: true,
            enforce: false,
            cipher_origin: String::new(),
            verify_origin: String::new(),
        }
    }
}

/// A value with the name of where it came from: a variable, or `<file>:<line>: key`.
struct Sourced<T> {
    value: T,
    origin: String,
}

/// The option file's value of `key` if it has one, else the variable's.
fn pick<T>(
    file: &OptionFile,
    key: &str,
    from_file: Option<T>,
    var: &str,
    from_env: Option<T>,
) -> Option<Sourced<T>> {
    match from_file {
        Some(value) => Some(Sourced {
            value,
            origin: format!("{}: {key}", file.origin(key).unwrap_or("option file")),
        }),
        None => from_env.map(|value| Sourced {
            value,
            origin: var.to_string(),
        }),
    }
}

fn env_path(env: &Env, var: &str) -> Option<PathBuf> {
    nonempty_os(env, var).map(PathBuf::from)
}

/// An integer switch as IndiMail reads it (non-zero = on), strictly.
fn env_switch(env: &Env, var: &str) -> Result<Option<bool>, ConfigError> {
    match nonempty(env, var)? {
        None => Ok(None),
        Some(v) => parse_decimal(v)
            .map(|n| Some(n != 0))
            .ok_or_else(|| ConfigError::invalid_var(var, v, "0 (off) or 1 (on)")),
    }
}

fn refused(origin: &str, reason: &str) -> ConfigError {
    ConfigError::Setting {
        origin: origin.to_string(),
        reason: reason.to_string(),
    }
}

/// The TLS versions of a version list: (TLSv1.2 allowed, TLSv1.3 allowed), or the
/// token that is not a TLS version.
fn parse_versions(list: &str) -> Result<(bool, bool), String> {
    let mut allowed = (false, false);
    for token in list
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
    {
        match token.to_ascii_lowercase().as_str() {
            "tlsv1" | "tlsv1.0" | "tlsv1.1" => {}
            "tlsv1.2" => allowed.0 = true,
            "tlsv1.3" => allowed.1 = true,
            _ => return Err(token.to_string()),
        }
    }
    Ok(allowed)
}

impl TlsSettings {
    /// Merge the variables `MYSQL_OPT_SSL_CA`, `_CAPATH`, `_CERT`, `_KEY`, `_CRL`,
    /// `_CRLPATH`, `_CIPHER`, `MYSQL_OPT_TLS_VERSION`, `MYSQL_OPT_SSL_VERIFY_CERT`
    /// (integer, 0 = do not verify) and `MYSQL_OPT_SSL_ENFORCE` (non-zero = TLS
    /// always) with the option file, whose keys win, and refuse what the TLS client
    /// cannot honour safely.
    ///
    /// `enforce` comes from the file's `ssl-enforce`, else its `ssl`, else the variable.
    pub fn load(env: &Env, file: &OptionFile) -> Result<TlsSettings, ConfigError> {
        let path = |key: &str, from_file: &Option<PathBuf>, var: &str| {
            pick(file, key, from_file.clone(), var, env_path(env, var))
        };
        let ca = path("ssl-ca", &file.ssl_ca, "MYSQL_OPT_SSL_CA");
        let capath = path("ssl-capath", &file.ssl_capath, "MYSQL_OPT_SSL_CAPATH");
        let cert = path("ssl-cert", &file.ssl_cert, "MYSQL_OPT_SSL_CERT");
        let key = path("ssl-key", &file.ssl_key, "MYSQL_OPT_SSL_KEY");
        let crl = path("ssl-crl", &file.ssl_crl, "MYSQL_OPT_SSL_CRL");
        let crlpath = path("ssl-crlpath", &file.ssl_crlpath, "MYSQL_OPT_SSL_CRLPATH");
        let env_text = |var: &str| -> Result<Option<String>, ConfigError> {
            Ok(nonempty(env, var)?.map(str::to_string))
        };
        let cipher = pick(
            file,
            "ssl-cipher",
            file.ssl_cipher.clone(),
            "MYSQL_OPT_SSL_CIPHER",
            env_text("MYSQL_OPT_SSL_CIPHER")?,
        );
        let tls_version = pick(
            file,
            "tls-version",
            file.tls_version.clone(),
            "MYSQL_OPT_TLS_VERSION",
            env_text("MYSQL_OPT_TLS_VERSION")?,
        );
        let verify = pick(
            file,
            "ssl-verify-server-cert",
            file.ssl_verify_server_cert,
            "MYSQL_OPT_SSL_VERIFY_CERT",
            env_switch(env, "MYSQL_OPT_SSL_VERIFY_CERT")?,
        );
        let enforce = match (file.ssl_enforce, file.ssl) {
            (Some(on), _) | (None, Some(on)) => on,
            (None, None) => env_switch(env, "MYSQL_OPT_SSL_ENFORCE")?.unwrap_or(false),
        };

        if let Some(s) = crl.as_ref().or(crlpath.as_ref()) {
            return Err(refused(
                &s.origin,
                "certificate revocation lists are not supported by this build's TLS client; \
                 remove MYSQL_OPT_SSL_CRL and MYSQL_OPT_SSL_CRLPATH (ssl-crl and ssl-crlpath \
                 in the option file)",
            ));
        }
        if let Some(s) = &capath {
            return Err(refused(
                &s.origin,
                "a directory of CA certificates is not supported by this build's TLS client; \
                 put the CA certificates in one PEM file and name it with MYSQL_OPT_SSL_CA \
                 (ssl-ca in the option file)",
            ));
        }
        match (&cert, &key) {
            (Some(c), None) => {
                return Err(refused(
                    &c.origin,
                    "a client certificate without its key; set MYSQL_OPT_SSL_KEY (ssl-key in \
                     the option file) too",
                ))
            }
            (None, Some(k)) => {
                return Err(refused(
                    &k.origin,
                    "a client key without its certificate; set MYSQL_OPT_SSL_CERT (ssl-cert in \
                     the option file) too",
                ))
            }
            _ => {}
        }
        if let Some(v) = &tls_version {
            match parse_versions(&v.value) {
                Err(token) => {
                    return Err(refused(
                        &v.origin,
                        &format!(
                            "{token:?} is not a TLS version (TLSv1.2 or TLSv1.3, separated by \
                             commas)"
                        ),
                    ))
                }
                Ok((false, false)) => {
                    return Err(refused(
                        &v.origin,
                        &format!(
                            "{:?} allows neither TLSv1.2 nor TLSv1.3, the only versions this \
                             build's TLS client speaks",
                            v.value
                        ),
                    ))
                }
                Ok(_) => {}
            }
        }
        let (verify_cert, verify_origin) = match verify {
            Some(Sourced { value, origin }) => (value, origin),
            None => (true, String::new()),
        };
        let (cipher, cipher_origin) = match cipher {
            Some(Sourced { value, origin }) => (Some(value), origin),
            None => (None, String::new()),
        };
        Ok(TlsSettings {
            ca: ca.map(|s| s.value),
            capath: None,
            cert: cert.map(|s| s.value),
            key: key.map(|s| s.value),
            crl: None,
            crlpath: None,
            cipher,
            tls_version: tls_version.map(|s| s.value),
            verify_cert,
            enforce,
            cipher_origin,
            verify_origin,
        })
    }

    /// Whether TLSv1.2 may be used.
    pub fn allows_tls12(&self) -> bool {
        self.versions().0
    }

    /// Whether TLSv1.3 may be used.
    pub fn allows_tls13(&self) -> bool {
        self.versions().1
    }

    fn versions(&self) -> (bool, bool) {
        match &self.tls_version {
            None => (true, true),
            Some(v) => parse_versions(v).unwrap_or((true, true)),
        }
    }

    /// What the operator should know at start-up: an ignored cipher list, and
    /// verification turned off.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(cipher) = &self.cipher {
            warnings.push(format!(
                "{}={cipher}: OpenSSL cipher names are ignored; the TLS client (rustls) chooses \
                 among its own safe cipher suites",
                self.cipher_origin
            ));
        }
        if !self.verify_cert {
            warnings.push(format!(
                "{}=0: the server certificate is not verified; anyone on the path can pose as \
                 the database",
                self.verify_origin
            ));
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use std::path::Path;

    const CNF: &str = "/etc/indimail/indimail.cnf";

    fn file(text: &str) -> OptionFile {
        OptionFile::parse(text.as_bytes(), Path::new(CNF), "inlookup").unwrap()
    }

    fn load(vars: &[(&str, &str)], cnf: &str) -> Result<TlsSettings, String> {
        TlsSettings::load(&env(vars), &file(cnf)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_verify_and_do_not_enforce() {
        let t = load(&[], "").unwrap();
        assert_eq!(t, TlsSettings::default());
        assert!(t.verify_cert && !t.enforce);
        assert!(t.allows_tls12() && t.allows_tls13());
        assert!(t.warnings().is_empty());
    }

    #[test]
    fn variables_alone() {
        let t = load(
            &[
                ("MYSQL_OPT_SSL_CA", "/env/ca.pem"),
                ("MYSQL_OPT_SSL_CERT", "/env/cert.pem"),
                ("MYSQL_OPT_SSL_KEY", "/env/key.pem"),
                ("MYSQL_OPT_TLS_VERSION", "TLSv1.3"),
                ("MYSQL_OPT_SSL_ENFORCE", "1"),
                ("MYSQL_OPT_SSL_VERIFY_CERT", "1"),
            ],
            "",
        )
        .unwrap();
        assert_eq!(t.ca, Some(PathBuf::from("/env/ca.pem")));
        assert_eq!(t.cert, Some(PathBuf::from("/env/cert.pem")));
        assert_eq!(t.key, Some(PathBuf::from("/env/key.pem")));
        assert!(t.enforce && t.verify_cert);
        assert!(!t.allows_tls12() && t.allows_tls13());
    }

    /// The option file wins over the variables, key by key (libmariadb reads it
    /// after mysql_options).
    #[test]
    fn option_file_wins_over_variables() {
        let vars = [
            ("MYSQL_OPT_SSL_CA", "/env/ca.pem"),
            ("MYSQL_OPT_SSL_CERT", "/env/cert.pem"),
            ("MYSQL_OPT_SSL_KEY", "/env/key.pem"),
            ("MYSQL_OPT_SSL_VERIFY_CERT", "1"),
            ("MYSQL_OPT_SSL_ENFORCE", "0"),
        ];
        let t = load(
            &vars,
            "[client]\nssl-ca = /file/ca.pem\nssl-verify-server-cert = 0\nssl-enforce = 1\n",
        )
        .unwrap();
        assert_eq!(t.ca, Some(PathBuf::from("/file/ca.pem")));
        assert_eq!(t.cert, Some(PathBuf::from("/env/cert.pem")));
        assert!(!t.verify_cert);
        assert!(t.enforce);
        assert_eq!(
            t.warnings(),
            vec![format!(
                "{CNF}:3: ssl-verify-server-cert=0: the server certificate is not verified; \
                 anyone on the path can pose as the database"
            )]
        );
        // `ssl` counts as enforce when ssl-enforce is absent; the variable otherwise.
        assert!(load(&[], "[inlookup]\nssl\n").unwrap().enforce);
        assert!(
            !load(&[("MYSQL_OPT_SSL_ENFORCE", "1")], "[client]\nssl=0\n")
                .unwrap()
                .enforce
        );
        assert!(load(&[("MYSQL_OPT_SSL_ENFORCE", "2")], "").unwrap().enforce);
        // An empty key in the file unsets it, so the variable applies again.
        let t = load(&vars, "[client]\nssl-ca = /file/ca.pem\nssl-ca =\n").unwrap();
        assert_eq!(t.ca, Some(PathBuf::from("/env/ca.pem")));
    }

    #[test]
    fn verification_off_by_variable_warns() {
        let t = load(&[("MYSQL_OPT_SSL_VERIFY_CERT", "0")], "").unwrap();
        assert!(!t.verify_cert);
        assert_eq!(
            t.warnings(),
            vec![
                "MYSQL_OPT_SSL_VERIFY_CERT=0: the server certificate is not verified; anyone \
                  on the path can pose as the database"
            ]
        );
        assert_eq!(
            load(&[("MYSQL_OPT_SSL_VERIFY_CERT", "no")], "").unwrap_err(),
            "MYSQL_OPT_SSL_VERIFY_CERT: \"no\" is not 0 (off) or 1 (on)"
        );
        assert_eq!(
            load(&[("MYSQL_OPT_SSL_ENFORCE", "yes")], "").unwrap_err(),
            "MYSQL_OPT_SSL_ENFORCE: \"yes\" is not 0 (off) or 1 (on)"
        );
    }

    #[test]
    fn cipher_is_ignored_with_a_warning() {
        let t = load(&[("MYSQL_OPT_SSL_CIPHER", "DHE-RSA-AES256-SHA")], "").unwrap();
        assert_eq!(
            t.warnings(),
            vec![
                "MYSQL_OPT_SSL_CIPHER=DHE-RSA-AES256-SHA: OpenSSL cipher names are ignored; \
                  the TLS client (rustls) chooses among its own safe cipher suites"
            ]
        );
        let t = load(&[], "[client]\ntls-cipher = AES256\n").unwrap();
        assert_eq!(
            t.warnings(),
            vec![format!(
                "{CNF}:2: ssl-cipher=AES256: OpenSSL cipher names are ignored; the TLS client \
                 (rustls) chooses among its own safe cipher suites"
            )]
        );
    }

    #[test]
    fn versions() {
        for (list, tls12, tls13) in [
            ("TLSv1.2,TLSv1.3", true, true),
            ("TLSv1.2", true, false),
            ("tlsv1.1, TLSv1.3", false, true),
            ("TLSv1.1 TLSv1.2", true, false),
        ] {
            let t = load(&[("MYSQL_OPT_TLS_VERSION", list)], "").unwrap();
            assert_eq!(
                (t.allows_tls12(), t.allows_tls13()),
                (tls12, tls13),
                "{list}"
            );
        }
        assert_eq!(
            load(&[("MYSQL_OPT_TLS_VERSION", "TLSv1.1")], "").unwrap_err(),
            "MYSQL_OPT_TLS_VERSION: \"TLSv1.1\" allows neither TLSv1.2 nor TLSv1.3, the only \
             versions this build's TLS client speaks"
        );
        assert_eq!(
            load(&[], "[client]\ntls-version = TLSv1,TLSv1.1\n").unwrap_err(),
            format!(
                "{CNF}:2: tls-version: \"TLSv1,TLSv1.1\" allows neither TLSv1.2 nor TLSv1.3, the \
                 only versions this build's TLS client speaks"
            )
        );
        assert_eq!(
            load(&[("MYSQL_OPT_TLS_VERSION", "TLSv1.2,SSLv3")], "").unwrap_err(),
            "MYSQL_OPT_TLS_VERSION: \"SSLv3\" is not a TLS version (TLSv1.2 or TLSv1.3, \
             separated by commas)"
        );
    }

    #[test]
    fn refused_settings() {
        assert_eq!(
            load(&[("MYSQL_OPT_SSL_CERT", "/c.pem")], "").unwrap_err(),
            "MYSQL_OPT_SSL_CERT: a client certificate without its key; set MYSQL_OPT_SSL_KEY \
             (ssl-key in the option file) too"
        );
        assert_eq!(
            load(&[], "[client]\nssl-key = /k.pem\n").unwrap_err(),
            format!(
                "{CNF}:2: ssl-key: a client key without its certificate; set MYSQL_OPT_SSL_CERT \
                 (ssl-cert in the option file) too"
            )
        );
        let crl = "certificate revocation lists are not supported by this build's TLS client; \
                   remove MYSQL_OPT_SSL_CRL and MYSQL_OPT_SSL_CRLPATH (ssl-crl and ssl-crlpath \
                   in the option file)";
        assert_eq!(
            load(&[("MYSQL_OPT_SSL_CRL", "/crl.pem")], "").unwrap_err(),
            format!("MYSQL_OPT_SSL_CRL: {crl}")
        );
        assert_eq!(
            load(&[], "[client]\n\ntls-crlpath = /crl\n").unwrap_err(),
            format!("{CNF}:3: ssl-crlpath: {crl}")
        );
        assert_eq!(
            load(&[("MYSQL_OPT_SSL_CAPATH", "/etc/ssl/certs")], "").unwrap_err(),
            "MYSQL_OPT_SSL_CAPATH: a directory of CA certificates is not supported by this \
             build's TLS client; put the CA certificates in one PEM file and name it with \
             MYSQL_OPT_SSL_CA (ssl-ca in the option file)"
        );
        // Empty variables count as unset.
        assert!(load(&[("MYSQL_OPT_SSL_CRL", ""), ("MYSQL_OPT_SSL_CERT", "")], "").is_ok());
    }
}
