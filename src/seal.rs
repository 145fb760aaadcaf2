//! Encryption at rest for secrets in the store (upstream passwords, MySQL verifiers):
//! ChaCha20-Poly1305 with a 32-byte key from the config or a key file generated on first
//! start. Sealed text: `v1:` + base64(nonce ‖ ciphertext).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

use crate::config::{Secret, SecretSource};

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("store key: {0}")]
    Key(String),
    #[error("a sealed value does not decrypt with this store key (wrong key or damaged data)")]
    Open,
}

/// Seals and opens secrets with the store key.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    /// The store key, kept to derive keys for other uses (`derive`).
    derived: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

impl Sealer {
    pub fn from_key(key: &[u8; 32]) -> Sealer {
        Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
            derived: *key,
        }
    }

    /// A key for `label`, derived from the store key (SHA-256 of the key, a separator and
    /// the label): the same across restarts, and telling nothing of the store key.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::new()
            .chain_update(self.derived)
            .chain_update([0u8])
            .chain_update(label.as_bytes())
            .finalize()
            .into()
    }

    /// The key from `[store] key`, else `data_dir/store.key`, generated (with a warning)
    /// when absent.
    pub fn load(source: Option<&SecretSource>, data_dir: &Path) -> Result<Sealer, SealError> {
        let text = match source {
            Some(src) => src.resolve().map_err(SealError::Key)?,
            None => {
                let path = data_dir.join("store.key");
                if !path.exists() {
                    let mut key = [0u8; 32];
                    rand::thread_rng().fill_bytes(&mut key);
                    crate::fsutil::write_private(&path, STANDARD.encode(key).as_bytes()).map_err(
                        |e| SealError::Key(format!("cannot write {}: {e}", path.display())),
                    )?;
                    tracing::warn!(path = %path.display(), "generated a new store key; back it up, secrets in the store cannot be read without it");
                }
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| SealError::Key(format!("cannot read {}: {e}", path.display())))?;
                Secret::new(text.trim().to_owned())
            }
        };
        let bytes = STANDARD
            .decode(text.expose())
            .map_err(|_| SealError::Key("not base64".into()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SealError::Key("must be 32 bytes, base64-encoded".into()))?;
        Ok(Sealer::from_key(&key))
    }

    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        // Encryption with a fresh nonce and an in-memory buffer cannot fail.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("v1:{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed.strip_prefix("v1:").ok_or(SealError::Open)?;
        let bytes = STANDARD.decode(body).map_err(|_| SealError::Open)?;
        if bytes.len() < 12 {
            return Err(SealError::Open);
        }
        let (nonce, ct) = bytes.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_detects_tampering() {
        let s = Sealer::from_key(&[7u8; 32]);
        let sealed = s.seal(b"upstream-pw");
        assert!(!sealed.contains("upstream-pw"));
        assert_eq!(s.open(&sealed).expect("opens"), b"upstream-pw");
        let other = Sealer::from_key(&[8u8; 32]);
        assert!(other.open(&sealed).is_err());
        assert!(s.open("v1:AAAA").is_err());
    }

    #[test]
    fn key_file_is_generated_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Sealer::load(None, dir.path()).expect("generates");
        let b = Sealer::load(None, dir.path()).expect("reads");
        assert_eq!(b.open(&a.seal(b"x")).expect("same key"), b"x");
    }
}
