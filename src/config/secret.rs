//! Secrets in the config: `"literal"` (dev only), `{ env = "NAME" }` or `{ file = "PATH" }`.
//! A `Secret` never prints its value: `Debug` and `Display` are redacted.

use std::fmt;

use serde::Deserialize;

/// Where a secret comes from, as written in the config file.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretSource {
    Literal(String),
    Env { env: String },
    File { file: String },
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Literal(_) => f.write_str("SecretSource::Literal(<redacted>)"),
            SecretSource::Env { env } => write!(f, "SecretSource::Env({env})"),
            SecretSource::File { file } => write!(f, "SecretSource::File({file})"),
        }
    }
}

impl SecretSource {
    /// Reads the secret's value. The error names where it looked, never a value.
    pub fn resolve(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Literal(value) => Ok(Secret::new(value.clone())),
            SecretSource::Env { env } => std::env::var(env)
                .map(Secret::new)
                .map_err(|_| format!("environment variable `{env}` is not set")),
            SecretSource::File { file } => std::fs::read_to_string(file)
                .map(|s| Secret::new(s.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|e| format!("cannot read secret file `{file}`: {e}")),
        }
    }
}

/// A secret value held in memory. Redacted in every formatted output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The only way to read the value; grep for it to audit secret use.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        let src = SecretSource::Literal("hunter2".into());
        assert!(!format!("{src:?}").contains("hunter2"));
    }
}
