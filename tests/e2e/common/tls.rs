//! Throwaway TLS certificates (rcgen) for tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

pub struct TestCert {
    _dir: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCert {
    pub fn new() -> TestCert {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (c, k) = (dir.path().join("server.crt"), dir.path().join("server.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        TestCert {
            _dir: dir,
            cert: c,
            key: k,
        }
    }
}
