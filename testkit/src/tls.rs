//! Certificates for TLS tests, made by the `openssl` command line: a CA, a
//! server certificate it signed for 127.0.0.1 and localhost, an expired one,
//! a client certificate, and a second CA that signed nothing the servers
//! present (a client trusting it must refuse them).
//!
//! EC P-256 keys: made at once, and accepted by OpenSSL and rustls alike.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a server presents: certificate, key, and the CA it trusts for
/// client certificates.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// A set of test certificates in a directory of their own, removed on drop.
pub struct TestCerts {
    dir: tempfile::TempDir,
}

/// The extensions of the certificates the CA signs.
const CA_CONFIG: &str = "\
[ca]
default_ca = test

[test]
dir = .
database = ca/index.txt
serial = ca/serial
new_certs_dir = ca
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no

[any]
commonName = supplied

[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost

[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
";

/// How long a certificate is valid.
enum Validity {
    Days(u32),
    /// From, to: `YYYYMMDDHHMMSSZ`.
    Between(&'static str, &'static str),
}

impl TestCerts {
    /// Make every certificate; panics with openssl's words if it fails.
    pub fn new() -> TestCerts {
        let dir = tempfile::Builder::new()
            .prefix("indilookup-certs.")
            .tempdir()
            .expect("temporary directory");
        let certs = TestCerts { dir };
        let d = certs.dir.path();
        fs::create_dir(d.join("ca")).unwrap();
        fs::write(d.join("ca/index.txt"), "").unwrap();
        fs::write(d.join("ca/serial"), "1000\n").unwrap();
        fs::write(d.join("ca.cnf"), CA_CONFIG).unwrap();
        certs.self_signed("ca", "indilookup test CA");
        certs.self_signed("other-ca", "indilookup unrelated CA");
        certs.request("server", "localhost");
        certs.sign("server", "server", "server", Validity::Days(3650));
        // The same key and names, valid for one day in 2020.
        certs.sign(
            "server",
            "expired",
            "server",
            Validity::Between("20200101000000Z", "20200102000000Z"),
        );
        fs::copy(d.join("server.key"), d.join("expired.key")).unwrap();
        certs.request("client", "indimail");
        certs.sign("client", "client", "client", Validity::Days(3650));
        certs
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `name.key` and the self-signed CA certificate `name.pem`.
    fn self_signed(&self, name: &str, cn: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "3650",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }

    /// `name.key` and the request `name.csr`.
    fn request(&self, name: &str, cn: &str) {
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ]);
    }

    /// `out.pem` from `csr.csr`, signed by the CA. `openssl ca` rather than
    /// `x509 -req`: OpenSSL 3.0 can set a past validity only there.
    fn sign(&self, csr: &str, out: &str, extensions: &str, validity: Validity) {
        let (csr, out) = (format!("{csr}.csr"), format!("{out}.pem"));
        let mut args = vec![
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            &csr,
            "-out",
            &out,
            "-extensions",
            extensions,
        ];
        let days;
        match validity {
            Validity::Days(d) => {
                days = d.to_string();
                args.extend(["-days", &days]);
            }
            Validity::Between(from, to) => args.extend(["-startdate", from, "-enddate", to]),
        }
        self.openssl(&args);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA that signed the server and client certificates.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn ca_key(&self) -> PathBuf {
        self.dir.path().join("ca.key")
    }

    /// A CA that signed nothing the servers present.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// Valid for ten years, for IP 127.0.0.1 and DNS localhost.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The same names, expired since 2 January 2020.
    pub fn expired_cert(&self) -> PathBuf {
        self.dir.path().join("expired.pem")
    }

    pub fn expired_key(&self) -> PathBuf {
        self.dir.path().join("expired.key")
    }

    /// A client certificate (CN indimail) signed by the CA.
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// A server presenting the valid certificate.
    pub fn server_tls(&self) -> ServerTls {
        ServerTls {
            cert: self.server_cert(),
            key: self.server_key(),
            ca: self.ca(),
        }
    }

    /// A server presenting the expired certificate.
    pub fn expired_tls(&self) -> ServerTls {
        ServerTls {
            cert: self.expired_cert(),
            key: self.expired_key(),
            ca: self.ca(),
        }
    }
}

impl Default for TestCerts {
    fn default() -> TestCerts {
        TestCerts::new()
    }
}
