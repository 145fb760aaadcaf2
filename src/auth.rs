//! Credentials: password verifiers (SCRAM-SHA-256 for PostgreSQL, SHA1(SHA1) and
//! SHA256(SHA256) for MySQL) and personal access tokens (random, shown once, stored as
//! SHA-256). Constant-time comparison for everything compared against a secret.
//!
//! This module is the only maker of an `Identity`: every check that proves a credential
//! (SCRAM for PostgreSQL clients, the MySQL scrambles, cleartext over TLS, API tokens)
//! lives here and returns one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};

pub mod mysql;
pub mod pg_scram;
pub mod scram;

use crate::snapshot::{ScramVerifier, Snapshot, Verifiers};

/// A user proven by a password or a token. Made only in this module, after a credential
/// was checked; `access::decide` takes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    user: String,
    /// The id of the personal access token that proved it, if not the password.
    token: Option<String>,
}

impl Identity {
    fn proven(user: &str, token: Option<&str>) -> Identity {
        Identity {
            user: user.to_owned(),
            token: token.map(str::to_owned),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The id of the token that proved it, when a personal access token did.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// For tests of the decision table, which decide for made-up users.
    #[cfg(test)]
    pub(crate) fn for_tests(user: &str) -> Identity {
        Identity::proven(user, None)
    }
}

/// Prefix that makes a token recognisable (and greppable by secret scanners).
pub const TOKEN_PREFIX: &str = "pcat_";

/// Salt length of new SCRAM verifiers, as PostgreSQL.
pub const SCRAM_SALT_LEN: usize = 16;
pub const SCRAM_ITERATIONS: usize = 4096;

/// A fresh random SCRAM salt.
pub fn new_scram_salt() -> Vec<u8> {
    let mut salt = vec![0u8; SCRAM_SALT_LEN];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

impl Verifiers {
    /// Derives every verifier from a password; the password itself is not kept.
    /// `salt` keeps a user's SCRAM salt stable across password changes (token
    /// verifiers share it); `None` draws a new one.
    pub fn from_password(password: &str, salt: Option<&[u8]>) -> Verifiers {
        let salt = salt.map_or_else(new_scram_salt, <[u8]>::to_vec);
        Verifiers {
            scram: Some(scram::verifier_with_salt(password, &salt, SCRAM_ITERATIONS).to_text()),
            mysql_native: Some(mysql_native_verifier(password).to_vec()),
            mysql_sha2: Some(mysql_sha2_verifier(password).to_vec()),
        }
    }
}

/// SHA1(SHA1(password)), what `mysql_native_password` checks a scramble against.
pub fn mysql_native_verifier(password: &str) -> [u8; 20] {
    Sha1::digest(Sha1::digest(password.as_bytes())).into()
}

/// SHA256(SHA256(password)), what the `caching_sha2_password` fast path checks against.
pub fn mysql_sha2_verifier(password: &str) -> [u8; 32] {
    Sha256::digest(Sha256::digest(password.as_bytes())).into()
}

/// Checks a cleartext password, or a personal access token, for `user` (TLS-only paths:
/// PostgreSQL cleartext auth, MySQL `mysql_clear_password`).
pub fn verify_cleartext(snapshot: &Snapshot, user: &str, presented: &str) -> Option<Identity> {
    if looks_like_token(presented) {
        return verify_token(snapshot, presented).filter(|id| id.user == user);
    }
    let stored = snapshot
        .users
        .get(user)
        .and_then(|u| u.verifiers.scram.as_deref())
        .and_then(ScramVerifier::parse);
    // An unknown user costs the same key derivation as a known one: no timing tells
    // whether the user exists.
    let (salt, iterations) = stored
        .as_ref()
        .map_or((DECOY_SALT.as_slice(), SCRAM_ITERATIONS), |v| {
            (v.salt.as_slice(), v.iterations)
        });
    let derived = scram::verifier_with_salt(presented, salt, iterations);
    let v = stored?;
    constant_time_eq(&derived.stored_key, &v.stored_key).then(|| Identity::proven(user, None))
}

/// Why `presented` does not prove `user` — for the monitoring log's auditors, never the
/// client: unknown or inactive user, an unknown, revoked, expired or another user's token,
/// no password set, a wrong password. `None` when the secret itself was never at hand (a
/// SCRAM or scramble proof, which cannot tell a password from a token).
pub fn refusal(snapshot: &Snapshot, user: &str, presented: Option<&str>) -> &'static str {
    let Some(u) = snapshot.users.get(user) else {
        return "unknown user";
    };
    if u.status != crate::model::Status::Active {
        return "inactive user";
    }
    match presented {
        Some(p) if looks_like_token(p) => match snapshot.tokens.get(&token_hash(p.trim())) {
            None => "unknown or revoked token",
            Some(t) if t.user != user => "another user's token",
            Some(t) if t.expires_at.is_some_and(|e| e <= crate::clock::now()) => "expired token",
            Some(_) => "token not accepted",
        },
        Some(_) if u.verifiers.scram.is_none() => "no password set",
        Some(_) => "wrong password",
        None => "wrong password or token",
    }
}

/// Whether the credential behind `identity` still holds: a token not revoked or expired
/// since (a password proof holds while the user exists; access is `access`'s question).
pub fn still_valid(snapshot: &Snapshot, identity: &Identity) -> bool {
    match identity.token() {
        None => snapshot.users.contains_key(identity.user()),
        Some(id) => snapshot
            .tokens
            .values()
            .any(|t| t.id == id && t.expires_at.is_none_or(|e| e > crate::clock::now())),
    }
}

/// Whether `presented` is `user`'s password (never a token).
pub fn verify_password(snapshot: &Snapshot, user: &str, presented: &str) -> bool {
    !looks_like_token(presented) && verify_cleartext(snapshot, user, presented).is_some()
}

/// The owner of an unexpired token (API bearer tokens, tokens as passwords). Whether the
/// owner may do anything is `access`'s question.
pub fn verify_token(snapshot: &Snapshot, presented: &str) -> Option<Identity> {
    let token = snapshot.tokens.get(&token_hash(presented.trim()))?;
    let fresh = token.expires_at.is_none_or(|e| e > crate::clock::now());
    fresh.then(|| Identity::proven(&token.user, Some(&token.id)))
}

/// The salt of the key derivation an unknown user's cleartext password goes through.
const DECOY_SALT: [u8; 16] = *b"portcullis-decoy";

/// Equal-length comparison that does not stop at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new token value: the prefix and 32 random bytes, URL-safe.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What the store keeps of a token: hex SHA-256 (tokens are high-entropy, so no KDF).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a presented password looks like a token rather than a password.
pub fn looks_like_token(password: &str) -> bool {
    password.starts_with(TOKEN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_verifier_round_trips() {
        let v = Verifiers::from_password("s3cret", None);
        let text = v.scram.expect("scram verifier");
        let parsed = ScramVerifier::parse(&text).expect("parses");
        assert_eq!(parsed.iterations, 4096);
        assert_eq!(parsed.stored_key.len(), 32);
        assert!(ScramVerifier::parse("md5abc").is_none());
    }

    #[test]
    fn mysql_verifiers_match_known_values() {
        // SELECT PASSWORD('password') in MariaDB = *2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19
        assert_eq!(
            hex::encode_upper(mysql_native_verifier("password")),
            "2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
        assert_eq!(mysql_sha2_verifier("x").len(), 32);
    }

    #[test]
    fn tokens_are_unique_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(looks_like_token(&a));
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
