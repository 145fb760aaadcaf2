//! A SCRAM-SHA-256 server exchange (RFC 5802/7677, no channel binding) that checks the
//! client's proof against several candidate verifiers sharing one salt: the user's
//! password and each of the user's personal access tokens. That is what lets a token be
//! typed where a PostgreSQL client expects a password, without ever storing the token.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::constant_time_eq;
use crate::snapshot::ScramVerifier;

/// One verifier the proof may match, and what a match proves.
#[derive(Clone, Debug)]
pub struct Candidate<T> {
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub proves: T,
}

/// After the client's first message: what the final message is checked against.
#[derive(Debug)]
pub struct ServerFirst {
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("the proof matches no credential")]
    BadProof,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> Hmac<Sha256> {
    panic!("HMAC-SHA256 accepts any key length")
}

/// The verifier for `secret` with a given salt and iteration count.
pub fn verifier_with_salt(secret: &str, salt: &[u8], iterations: usize) -> ScramVerifier {
    let salted = pgwire::api::auth::sasl::scram::gen_salted_password(secret, salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    ScramVerifier {
        iterations,
        salt: salt.to_vec(),
        stored_key: Sha256::digest(&client_key).to_vec(),
        server_key: hmac(&salted, b"Server Key"),
    }
}

impl ScramVerifier {
    /// PostgreSQL's text form.
    pub fn to_text(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key)
        )
    }
}

/// Reads `client-first-message` (`gs2-header client-first-bare`) and answers with
/// `server-first-message` for the given salt and iterations.
pub fn server_first(
    client_first: &[u8],
    salt: &[u8],
    iterations: usize,
) -> Result<ServerFirst, ScramError> {
    let text = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let (cbind, rest) = text
        .split_once(',')
        .ok_or(ScramError::Malformed("no gs2 header"))?;
    match cbind {
        "n" | "y" => {}
        c if c.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed("bad channel-binding flag")),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(ScramError::Malformed("no gs2 header"))?;
    if !authzid.is_empty() {
        return Err(ScramError::Malformed("authzid is not supported"));
    }
    let client_nonce = bare
        .split(',')
        .find_map(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.len() <= 256)
        .ok_or(ScramError::Malformed("no client nonce"))?;
    let mut server_nonce = [0u8; 18];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut server_nonce);
    let nonce = format!("{client_nonce}{}", STANDARD.encode(server_nonce));
    let server_first = format!("r={nonce},s={},i={iterations}", STANDARD.encode(salt));
    Ok(ServerFirst {
        gs2_header: format!("{cbind},{authzid},"),
        client_first_bare: bare.to_owned(),
        server_first,
        nonce,
    })
}

impl ServerFirst {
    pub fn message(&self) -> &[u8] {
        self.server_first.as_bytes()
    }

    /// Checks `client-final-message` against each candidate; on a match returns what it
    /// proves and the `server-final-message`.
    pub fn finish<T: Clone>(
        &self,
        client_final: &[u8],
        candidates: &[Candidate<T>],
    ) -> Result<(T, Vec<u8>), ScramError> {
        let text =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("no channel binding"))?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce"))?;
        if STANDARD.decode(cbind).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(ScramError::Malformed(
                "channel binding does not match the header",
            ));
        }
        if nonce != self.nonce {
            return Err(ScramError::Malformed("nonce mismatch"));
        }
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        if proof.len() != 32 {
            return Err(ScramError::Malformed("proof has the wrong length"));
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        // Every candidate is checked, so timing does not tell which (or whether one) matched.
        let mut matched = None;
        for c in candidates {
            let signature = hmac(&c.stored_key, auth_message.as_bytes());
            let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
            if constant_time_eq(&Sha256::digest(&client_key), &c.stored_key) && matched.is_none() {
                matched = Some(c);
            }
        }
        let c = matched.ok_or(ScramError::BadProof)?;
        let server_signature = hmac(&c.server_key, auth_message.as_bytes());
        Ok((
            c.proves.clone(),
            format!("v={}", STANDARD.encode(server_signature)).into_bytes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    fn candidates(secrets: &[(&str, &'static str)], salt: &[u8]) -> Vec<Candidate<&'static str>> {
        secrets
            .iter()
            .map(|(s, proves)| {
                let v = verifier_with_salt(s, salt, 4096);
                Candidate {
                    stored_key: v.stored_key,
                    server_key: v.server_key,
                    proves: *proves,
                }
            })
            .collect()
    }

    /// A real client (postgres-protocol's) against our server, for each secret.
    fn exchange(
        client_secret: &str,
        server_secrets: &[(&str, &'static str)],
    ) -> Result<&'static str, ScramError> {
        let salt = b"0123456789abcdef";
        let mut client = ScramSha256::new(client_secret.as_bytes(), ChannelBinding::unsupported());
        let first = server_first(client.message(), salt, 4096)?;
        client
            .update(first.message())
            .expect("client accepts server-first");
        let (proves, server_final) =
            first.finish(client.message(), &candidates(server_secrets, salt))?;
        client
            .finish(&server_final)
            .expect("client verifies the server signature");
        Ok(proves)
    }

    #[test]
    fn password_or_any_token_is_accepted_and_identified() {
        let secrets = [
            ("the-password", "password"),
            ("pcat_token1", "token1"),
            ("pcat_token2", "token2"),
        ];
        assert_eq!(exchange("the-password", &secrets), Ok("password"));
        assert_eq!(exchange("pcat_token2", &secrets), Ok("token2"));
        assert_eq!(exchange("wrong", &secrets), Err(ScramError::BadProof));
        assert_eq!(exchange("anything", &[]), Err(ScramError::BadProof));
    }

    #[test]
    fn verifier_matches_postgres_format() {
        let v = verifier_with_salt("pw", b"salty", 4096);
        let parsed = ScramVerifier::parse(&v.to_text()).expect("parses");
        assert_eq!(parsed, v);
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert!(server_first(b"p=tls-server-end-point,,n=,r=abc", b"s", 4096).is_err());
        assert!(server_first(b"n,,n=,", b"s", 4096).is_err());
        assert!(server_first(&[0xff, 0xfe], b"s", 4096).is_err());
        let first = server_first(b"n,,n=,r=abc", b"s", 4096).expect("ok");
        assert!(first.finish::<()>(b"c=biws,r=abc,p=AAAA", &[]).is_err());
        assert!(first.finish::<()>(b"garbage", &[]).is_err());
    }
}
