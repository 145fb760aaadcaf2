//! SCRAM-SHA-256 for PostgreSQL clients as a pgwire `AuthMechanism`: the proof may match
//! the user's password or any of the user's unexpired tokens (they share the user's
//! salt). An unknown user gets a decoy salt and fails at the proof, like a wrong password.

use std::sync::Arc;

use bytes::Bytes;
use pgwire::api::ClientInfo;
use pgwire::api::auth::mechanism::{AuthMechanism, AuthState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};

use super::scram::{Candidate, ServerFirst, server_first};
use super::{Identity, SCRAM_ITERATIONS};
use crate::snapshot::{ScramVerifier, Snapshot};

pub struct TokenAwareScram {
    snapshot: Arc<Snapshot>,
    user: String,
    state: Option<ServerFirst>,
}

impl TokenAwareScram {
    pub fn new(snapshot: Arc<Snapshot>, user: &str) -> TokenAwareScram {
        TokenAwareScram {
            snapshot,
            user: user.to_owned(),
            state: None,
        }
    }

    /// The salt the user's credentials share, and every credential as a candidate.
    fn candidates(&self) -> (Vec<u8>, usize, Vec<Candidate<Identity>>) {
        let now = crate::clock::now();
        let password = self
            .snapshot
            .users
            .get(&self.user)
            .and_then(|u| u.verifiers.scram.as_deref())
            .and_then(ScramVerifier::parse);
        let tokens: Vec<(&str, &ScramVerifier)> = self
            .snapshot
            .tokens
            .values()
            .filter(|t| t.user == self.user && t.expires_at.is_none_or(|e| e > now))
            .filter_map(|t| Some((t.id.as_str(), t.scram.as_ref()?)))
            .collect();
        let Some((salt, iterations)) = password
            .as_ref()
            .or(tokens.first().map(|(_, v)| *v))
            .map(|v| (v.salt.clone(), v.iterations))
        else {
            let salt = decoy_salt(&self.snapshot.decoy_key, &self.user);
            return (salt, SCRAM_ITERATIONS, vec![]);
        };
        let identity = |token| Identity::proven(&self.user, token);
        let mut out: Vec<Candidate<Identity>> = password
            .into_iter()
            .map(|v| Candidate {
                stored_key: v.stored_key,
                server_key: v.server_key,
                proves: identity(None),
            })
            .collect();
        for (id, t) in tokens
            .into_iter()
            .filter(|(_, t)| t.salt == salt && t.iterations == iterations)
        {
            out.push(Candidate {
                stored_key: t.stored_key.clone(),
                server_key: t.server_key.clone(),
                proves: identity(Some(id)),
            });
        }
        (salt, iterations, out)
    }
}

/// A salt that is stable per unknown user name, across restarts (derived from the store
/// key), so probing for users learns nothing.
fn decoy_salt(key: &[u8; 32], user: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(key)
        .chain_update(user)
        .finalize()[..16]
        .to_vec()
}

fn failed(user: &str) -> AuthState<Identity> {
    AuthState::Failed(PgWireError::InvalidPassword(user.to_owned()))
}

#[async_trait::async_trait]
impl AuthMechanism<Identity> for TokenAwareScram {
    async fn begin(
        &mut self,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> PgWireResult<AuthState<Identity>> {
        Ok(AuthState::InProgress(Authentication::SASL(vec![
            "SCRAM-SHA-256".to_owned(),
        ])))
    }

    async fn next(
        &mut self,
        _client: &(dyn ClientInfo + Send + Sync),
        message: PasswordMessageFamily,
    ) -> PgWireResult<AuthState<Identity>> {
        match self.state.take() {
            None => {
                let initial = message.into_sasl_initial_response()?;
                if initial.auth_method != "SCRAM-SHA-256" {
                    return Ok(failed(&self.user));
                }
                let data = initial.data.unwrap_or_default();
                let (salt, iterations, _) = self.candidates();
                match server_first(&data, &salt, iterations) {
                    Ok(first) => {
                        let reply = Bytes::copy_from_slice(first.message());
                        self.state = Some(first);
                        Ok(AuthState::InProgress(Authentication::SASLContinue(reply)))
                    }
                    Err(_) => Ok(failed(&self.user)),
                }
            }
            Some(first) => {
                let response = message.into_sasl_response()?;
                let (_, _, candidates) = self.candidates();
                match first.finish(&response.data, &candidates) {
                    Ok((identity, server_final)) => Ok(AuthState::Ok {
                        final_message: Some(Authentication::SASLFinal(Bytes::from(server_final))),
                        identity: Some(identity),
                    }),
                    Err(_) => Ok(failed(&self.user)),
                }
            }
        }
    }
}
