//! MySQL client authentication: the `mysql_native_password` and `caching_sha2_password`
//! (fast path) scrambles checked against the stored verifiers, SHA1(SHA1(password)) and
//! SHA256(SHA256(password)).

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{Identity, constant_time_eq};
use crate::snapshot::Snapshot;

/// The scramble a client answered the greeting with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scramble {
    /// `mysql_native_password`: 20 bytes.
    Native,
    /// `caching_sha2_password` fast path: 32 bytes.
    Sha2,
}

/// Checks `response` to `nonce` for `user`; an unknown user or a user without a verifier
/// fails like a wrong password.
pub fn verify_scramble(
    snapshot: &Snapshot,
    user: &str,
    kind: Scramble,
    nonce: &[u8],
    response: &[u8],
) -> Option<Identity> {
    let verifiers = &snapshot.users.get(user)?.verifiers;
    let ok = match kind {
        Scramble::Native => verifiers
            .mysql_native
            .as_deref()
            .is_some_and(|v| verify_native(v, nonce, response)),
        Scramble::Sha2 => verifiers
            .mysql_sha2
            .as_deref()
            .is_some_and(|v| verify_sha2(v, nonce, response)),
    };
    ok.then(|| Identity::proven(user, None))
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Checks a native scramble against SHA1(SHA1(pw)).
pub fn verify_native(verifier: &[u8], nonce: &[u8], response: &[u8]) -> bool {
    if response.len() != 20 {
        return false;
    }
    let mask = Sha1::new()
        .chain_update(nonce)
        .chain_update(verifier)
        .finalize();
    constant_time_eq(&Sha1::digest(xor(response, &mask)), verifier)
}

/// Checks a caching_sha2 fast-path scramble against SHA256(SHA256(pw)).
pub fn verify_sha2(verifier: &[u8], nonce: &[u8], response: &[u8]) -> bool {
    if response.len() != 32 {
        return false;
    }
    let mask = Sha256::new()
        .chain_update(verifier)
        .chain_update(nonce)
        .finalize();
    constant_time_eq(&Sha256::digest(xor(response, &mask)), verifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a client sends: `SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)))`.
    fn native(pw: &str, nonce: &[u8]) -> Vec<u8> {
        let stage1 = Sha1::digest(pw.as_bytes());
        let stage2 = Sha1::digest(stage1);
        xor(
            &stage1,
            &Sha1::new()
                .chain_update(nonce)
                .chain_update(stage2)
                .finalize(),
        )
    }

    /// `SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)`.
    fn sha2(pw: &str, nonce: &[u8]) -> Vec<u8> {
        let stage1 = Sha256::digest(pw.as_bytes());
        let stage2 = Sha256::digest(stage1);
        xor(
            &stage1,
            &Sha256::new()
                .chain_update(stage2)
                .chain_update(nonce)
                .finalize(),
        )
    }

    #[test]
    fn scrambles_verify_against_stored_verifiers() {
        let nonce = [7u8; 20];
        let native_v = crate::auth::mysql_native_verifier("pw");
        assert!(verify_native(&native_v, &nonce, &native("pw", &nonce)));
        assert!(!verify_native(&native_v, &nonce, &native("nope", &nonce)));
        let sha2_v = crate::auth::mysql_sha2_verifier("pw");
        assert!(verify_sha2(&sha2_v, &nonce, &sha2("pw", &nonce)));
        assert!(!verify_sha2(&sha2_v, &nonce, &sha2("nope", &nonce)));
        assert!(!verify_native(&native_v, &nonce, b"short"));
    }
}
