//! The snapshot: everything an access decision and an authentication read, published
//! whole by the control plane and swapped on change. Plain data, built by the store, read
//! by `auth` and `access`; no I/O here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::Secret;
use crate::model::{AccessRequestRule, Guardrail, Resource, ResourceRole, User, carries};

/// Password verifiers of one user (never the password).
#[derive(Clone, Debug, Default)]
pub struct Verifiers {
    /// `SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`, PostgreSQL's format.
    pub scram: Option<String>,
    /// SHA1(SHA1(password)) for `mysql_native_password`.
    pub mysql_native: Option<Vec<u8>>,
    /// SHA256(SHA256(password)) for the `caching_sha2_password` fast path.
    pub mysql_sha2: Option<Vec<u8>>,
}

/// A user with its verifiers.
#[derive(Clone, Debug)]
pub struct UserEntry {
    pub user: User,
    pub verifiers: Verifiers,
    pub managed: bool,
}
carries!(UserEntry => user: User);

#[derive(Clone, Debug)]
pub struct ResourceEntry {
    pub resource: Resource,
    pub managed: bool,
}
carries!(ResourceEntry => resource: Resource);

/// A resource role with the upstream secret sessions log in with.
#[derive(Clone, Debug)]
pub struct ResourceRoleEntry {
    pub role: ResourceRole,
    pub secret: Option<Secret>,
    pub managed: bool,
}
carries!(ResourceRoleEntry => role: ResourceRole);

/// A personal access token as sessions see it: found by the SHA-256 of its value.
#[derive(Clone, Debug)]
pub struct TokenEntry {
    pub id: String,
    pub user: String,
    pub expires_at: Option<i64>,
    /// The token's SCRAM verifier, with its user's salt.
    pub scram: Option<ScramVerifier>,
}

/// Everything a decision reads, published whole and swapped on change.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub revision: i64,
    pub users: HashMap<String, Arc<UserEntry>>,
    pub groups: HashSet<String>,
    pub resources: HashMap<String, Arc<ResourceEntry>>,
    pub resource_roles: HashMap<String, Arc<ResourceRoleEntry>>,
    /// Keyed by the hex SHA-256 of the token value.
    pub tokens: HashMap<String, TokenEntry>,
    /// Access request rules by name.
    pub rules: HashMap<String, Arc<AccessRequestRule>>,
    /// Guardrails in the order they are evaluated: the config's, then the API's, each by
    /// name.
    pub guardrails: Vec<Arc<Guardrail>>,
    /// Masking rules, config's first.
    pub masking: Vec<Arc<crate::model::MaskingRule>>,
    /// Approved just-in-time grants: (user, resource role) → when the latest ends (unix
    /// seconds).
    pub grants: HashMap<(String, String), i64>,
    /// Derives the decoy SCRAM salt an unknown user name gets: persistent (from the store
    /// key), so a restart does not tell known names from unknown ones.
    pub decoy_key: [u8; 32],
    /// The base of masking's `hash` keys (derived from the store key).
    pub masking_key: [u8; 32],
}

/// A parsed `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: usize,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramVerifier {
    pub fn parse(text: &str) -> Option<ScramVerifier> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iter, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some(ScramVerifier {
            iterations: iter.parse().ok()?,
            salt: STANDARD.decode(salt).ok()?,
            stored_key: STANDARD.decode(stored).ok()?,
            server_key: STANDARD.decode(server).ok()?,
        })
    }
}
