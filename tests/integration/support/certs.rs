//! A throwaway certificate authority for TLS tests: a CA, a server certificate for 127.0.0.1 and
//! client certificates, written as PEM files into a temporary folder. Nothing is ever committed.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// PEM files of a test PKI.
pub struct TestPki {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server's certificate (for 127.0.0.1 and localhost).
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// A client certificate signed by the CA.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// A client certificate signed by a CA the broker does not trust.
    pub rogue_cert: PathBuf,
    /// Its key.
    pub rogue_key: PathBuf,
}

fn new_ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (Issuer::new(params, key), cert.pem())
}

fn leaf(dir: &Path, name: &str, sans: &[&str], issuer: &Issuer<'_, KeyPair>) -> (PathBuf, PathBuf) {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

impl TestPki {
    /// The Chromium flag that makes one browser, and only it, trust the server's certificate:
    /// `--ignore-certificate-errors-spki-list` with the SHA-256 of its public key (base64), as
    /// `openssl` computes it.
    pub fn chromium_trust_flag(&self) -> String {
        let script = format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
            self.server_cert.display()
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let spki = String::from_utf8(out.stdout).unwrap();
        format!("--ignore-certificate-errors-spki-list={}", spki.trim())
    }

    /// Generates a fresh PKI.
    pub fn generate() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, ca_pem) = new_ca("switchboard test CA");
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, ca_pem).unwrap();
        let (server_cert, server_key) =
            leaf(dir.path(), "server", &["127.0.0.1", "localhost"], &issuer);
        let (client_cert, client_key) = leaf(dir.path(), "device1", &[], &issuer);
        let (rogue_issuer, _) = new_ca("rogue CA");
        let (rogue_cert, rogue_key) = leaf(dir.path(), "rogue", &[], &rogue_issuer);
        TestPki {
            dir,
            issuer,
            ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
            rogue_cert,
            rogue_key,
        }
    }

    /// Another client certificate signed by the CA, with common name `name`: (certificate, key).
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        leaf(self.dir.path(), name, &[], &self.issuer)
    }
}
