//! Signed checkpoints: the hash chain shows an edit, but whoever can write the files can
//! rebuild the whole chain. An Ed25519 key kept outside the log directory signs, every few
//! seconds or events, the chain head (seq and hash); someone who holds only the public key
//! can then tell a rebuilt or rewritten log from the real one (`audit verify
//! --public-key`).
//!
//! The key is `audit.signing_key` (a secret: `{ env = … }`, `{ file = … }`), else
//! `data_dir/audit-signing.key`, generated at first start (0600). The public key is
//! written beside it as `audit-signing.pub` (hex) and served at `/api/audit/public-key`.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::config::SecretSource;

const KEY_FILE: &str = "audit-signing.key";
pub const PUBLIC_KEY_FILE: &str = "audit-signing.pub";

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("audit signing key: {0}")]
    Key(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The gateway's checkpoint signer.
pub struct CheckpointSigner {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointSigner({})", self.key_id())
    }
}

/// What a checkpoint signs: the instance and the chain head it covers.
fn message(instance: &str, seq: u64, hash: &str) -> Vec<u8> {
    format!("portcullis checkpoint v1\n{instance}\n{seq}\n{hash}").into_bytes()
}

/// The public key's short name: the first 8 bytes of its SHA-256, hex.
pub fn key_id(public: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(public.as_bytes())[..8])
}

impl CheckpointSigner {
    /// The configured key, else the one in `data_dir`, generated when absent; the public
    /// key is (re)written beside it.
    pub fn load(source: Option<&SecretSource>, data_dir: &Path) -> Result<Self, SigningError> {
        let seed = match source {
            Some(s) => decode(s.resolve().map_err(SigningError::Key)?.expose())?,
            None => {
                let path = data_dir.join(KEY_FILE);
                match std::fs::read_to_string(&path) {
                    Ok(text) => decode(text.trim())?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let seed: [u8; 32] = rand::random();
                        write(&path, hex::encode(seed).as_bytes())?;
                        tracing::warn!(path = %path.display(), "generated the monitoring log's checkpoint signing key; keep it out of the log directory and give auditors the public key");
                        seed
                    }
                    Err(e) => return Err(SigningError::Key(format!("{}: {e}", path.display()))),
                }
            }
        };
        let signer = CheckpointSigner {
            key: SigningKey::from_bytes(&seed),
        };
        let public = data_dir.join(PUBLIC_KEY_FILE);
        write(&public, signer.public_hex().as_bytes())?;
        Ok(signer)
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    /// The hex signature of the chain head (`seq`, `hash`) of `instance`.
    pub fn sign(&self, instance: &str, seq: u64, hash: &str) -> String {
        hex::encode(self.key.sign(&message(instance, seq, hash)).to_bytes())
    }
}

/// Reads a public key written by the gateway (hex).
pub fn public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("not a 32-byte hex Ed25519 public key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| e.to_string())
}

/// Whether `signature` (hex) is the key's signature of that chain head.
pub fn verify(
    public: &VerifyingKey,
    instance: &str,
    seq: u64,
    hash: &str,
    signature: &str,
) -> bool {
    let Some(bytes) = hex::decode(signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
    else {
        return false;
    };
    public
        .verify(
            &message(instance, seq, hash),
            &Signature::from_bytes(&bytes),
        )
        .is_ok()
}

fn decode(text: &str) -> Result<[u8; 32], SigningError> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SigningError::Key("not 64 hex digits (a 32-byte Ed25519 seed)".into()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), SigningError> {
    crate::fsutil::write_private(path, bytes).map_err(|source| SigningError::Write {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_only_for_what_was_signed() {
        let dir = tempfile::tempdir().expect("dir");
        let s = CheckpointSigner::load(None, dir.path()).expect("key");
        let again = CheckpointSigner::load(None, dir.path()).expect("same key");
        assert_eq!(s.public_hex(), again.public_hex());
        let public =
            public_key(&std::fs::read_to_string(dir.path().join(PUBLIC_KEY_FILE)).expect("pub"))
                .expect("parses");
        let sig = s.sign("i1", 10, "ab");
        assert!(verify(&public, "i1", 10, "ab", &sig));
        assert!(!verify(&public, "i1", 11, "ab", &sig));
        assert!(!verify(&public, "i2", 10, "ab", &sig));
        assert!(!verify(&public, "i1", 10, "ac", &sig));
        assert!(!verify(&public, "i1", 10, "ab", "00"));
    }
}
