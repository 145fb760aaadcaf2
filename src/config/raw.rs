//! The config as written: every leaf loose (strings). Unknown keys are collected with their
//! paths (not stopped at), so `check-config` reports them beside every other problem;
//! `validate` turns this into the typed `Config`.

use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, Problem, SecretSource};
use crate::model::AccessModes;

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    #[serde(default)]
    pub listen: RawListen,
    pub tls: Option<RawTls>,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub oneoffs: RawOneoffs,
    #[serde(default)]
    pub access_requests: RawAccessRequests,
    #[serde(default)]
    pub console: RawConsole,
    #[serde(default)]
    pub notify: RawNotify,
    #[serde(default)]
    pub access_request_rules: Vec<RawRule>,
    #[serde(default)]
    pub guardrails: Vec<RawGuardrail>,
    #[serde(default)]
    pub masking: Vec<crate::model::MaskingRule>,
    pub instance: Option<String>,
    #[serde(default)]
    pub runbooks: RawRunbooks,
    #[serde(default)]
    pub groups: Vec<RawGroup>,
    #[serde(default)]
    pub users: Vec<RawUser>,
    #[serde(default)]
    pub resources: Vec<RawResource>,
    #[serde(default)]
    pub resource_roles: Vec<RawResourceRole>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawListen {
    pub postgres: Option<String>,
    pub mysql: Option<String>,
    pub admin: Option<String>,
    pub mysql_server_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTls {
    /// `false` turns TLS off on the client listeners.
    pub enabled: Option<bool>,
    pub cert: Option<String>,
    pub key: Option<String>,
    #[serde(default)]
    pub require: bool,
    #[serde(default)]
    pub allow_cleartext: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStore {
    pub url: Option<String>,
    pub data_dir: Option<String>,
    pub key: Option<SecretSource>,
    pub poll_interval: Option<String>,
    pub max_staleness: Option<String>,
    pub instance_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAudit {
    pub dir: Option<String>,
    pub fsync: Option<String>,
    pub durability: Option<String>,
    pub on_failure: Option<String>,
    pub rotate_bytes: Option<u64>,
    pub statements: Option<bool>,
    pub checkpoint_interval: Option<String>,
    pub checkpoint_events: Option<u64>,
    pub signing_key: Option<SecretSource>,
    pub nats: Option<RawNats>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNats {
    pub url: String,
    pub stream: Option<String>,
    pub subject_prefix: Option<String>,
    pub token: Option<SecretSource>,
    pub max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawOneoffs {
    pub max_rows: Option<u64>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawConsole {
    pub idle_timeout: Option<String>,
    pub absolute_timeout: Option<String>,
    pub secure_cookie: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAccessRequests {
    pub pending_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawNotify {
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
}

#[derive(Debug, Deserialize)]
pub struct RawWebhook {
    pub url: String,
    pub secret: Option<SecretSource>,
}

#[derive(Debug, Deserialize)]
pub struct RawRule {
    pub name: String,
    #[serde(default)]
    pub resource_roles: Vec<String>,
    pub kind: String,
    #[serde(default)]
    pub requester_groups: Vec<String>,
    #[serde(default)]
    pub approver_groups: Vec<String>,
    pub min_approvals: Option<u32>,
    pub all_approver_groups: Option<bool>,
    pub max_duration: Option<String>,
    pub reason_required: Option<bool>,
    #[serde(default)]
    pub break_glass_groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawGuardrail {
    pub name: String,
    #[serde(default)]
    pub resource_roles: Vec<String>,
    pub action: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub except_groups: Vec<String>,
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub update_without_where: bool,
    #[serde(default)]
    pub delete_without_where: bool,
    #[serde(default)]
    pub select_star: bool,
    pub allow_multi: Option<bool>,
    pub unparsed: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRunbooks {
    pub dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLimits {
    pub login_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub max_admin_connections: Option<usize>,
    pub admin_idle_timeout: Option<String>,
    pub failed_logins_per_user: Option<u32>,
    pub failed_logins_per_address: Option<u32>,
    pub cancel_requests_per_address: Option<u32>,
    pub idle_upstreams: Option<usize>,
    pub idle_upstream_timeout: Option<String>,
    pub lockout: Option<String>,
    pub threads: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub struct RawGroup {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct RawUser {
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    pub status: Option<String>,
    pub role: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub password: Option<SecretSource>,
}

#[derive(Debug, Deserialize)]
pub struct RawResource {
    pub name: String,
    pub protocol: String,
    pub address: String,
    pub tls: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawResourceRole {
    pub name: String,
    pub resource: String,
    pub database: String,
    pub user: String,
    pub password: Option<SecretSource>,
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    pub access_modes: Option<AccessModes>,
    pub forward_options: Option<Vec<String>>,
}

/// The raw form and the unknown keys found in it.
pub type Read = (RawConfig, Vec<Problem>);

/// Reads the file and the `PORTCULLIS__…` environment into the raw form.
pub fn read(path: &Path) -> Result<Read, ConfigError> {
    let fail = |message: String| ConfigError::Read {
        path: path.display().to_string(),
        message,
    };
    if !path.is_file() {
        return Err(fail("no such file".into()));
    }
    let built = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("PORTCULLIS")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .map_err(|e| fail(e.to_string()))?;
    typed(built).map_err(fail)
}

/// Parses TOML text alone (no environment overrides): for tests and fuzzing.
pub fn parse(text: &str) -> Result<Read, ConfigError> {
    let fail = |message: String| ConfigError::Read {
        path: "<text>".into(),
        message,
    };
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    typed(built).map_err(fail)
}

/// The raw form, noting every key it does not know (`users.0.nmae` → `users[0].nmae`).
fn typed(built: config::Config) -> Result<Read, String> {
    let tree: serde_json::Value = built.try_deserialize().map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    let raw = serde_ignored::deserialize(tree, |path| {
        let mut at = String::new();
        for part in path.to_string().split('.') {
            match part.parse::<usize>() {
                Ok(i) => at.push_str(&format!("[{i}]")),
                Err(_) if at.is_empty() => at.push_str(part),
                Err(_) => {
                    at.push('.');
                    at.push_str(part);
                }
            }
        }
        let key = at.rsplit(['.', ']']).next().unwrap_or_default().to_owned();
        unknown.push(Problem {
            path: at,
            message: format!("unknown field `{key}`"),
        });
    })
    .map_err(|e| e.to_string())?;
    Ok((raw, unknown))
}
