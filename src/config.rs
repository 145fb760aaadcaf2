//! Typed configuration (SPEC §4): TOML through the `config` crate with
//! `PORTCULLIS__SECTION__KEY` overrides. The file is read into a loose `raw` form, then
//! `validate` checks every leaf and collects every problem with its key path; nothing is
//! patched. The result is immutable; reload builds a new one and swaps it.

mod raw;
mod secret;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use secret::{Secret, SecretSource};

use crate::model::{Resource, ResourceRole, User, carries};

/// Default config path when neither `--config` nor `PORTCULLIS_CONFIG` is given.
pub const DEFAULT_PATH: &str = "config/portcullis.toml";

#[derive(Clone, Debug)]
pub struct Config {
    /// The file this was read from; named in 409 errors for objects it owns.
    pub source: PathBuf,
    pub listen: Listen,
    pub tls: Option<TlsConfig>,
    pub store: StoreConfig,
    pub audit: AuditConfig,
    pub limits: Limits,
    pub oneoffs: OneoffsConfig,
    pub runbooks: RunbooksConfig,
    pub access_requests: AccessRequestsConfig,
    pub console: ConsoleConfig,
    pub notify: NotifyConfig,
    pub access_request_rules: Vec<crate::model::AccessRequestRule>,
    /// This instance's id in events and the session index (default: the host name and a
    /// listener port, kept in `store.data_dir/instance-id`).
    pub instance: Option<String>,
    pub guardrails: Vec<crate::model::Guardrail>,
    pub masking: Vec<crate::model::MaskingRule>,
    pub groups: Vec<GroupDecl>,
    pub users: Vec<UserDecl>,
    pub resources: Vec<ResourceDecl>,
    pub resource_roles: Vec<ResourceRoleDecl>,
}

#[derive(Clone, Debug, Default)]
pub struct Listen {
    pub postgres: Option<SocketAddr>,
    pub mysql: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// The server version the MySQL listener's greeting announces, when the MySQL
    /// resources behind it run different versions (otherwise theirs, learned).
    pub mysql_server_version: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// No `cert`/`key` configured: a self-signed certificate the gateway made into its
    /// data directory at first start (kept across restarts).
    pub self_signed: bool,
    /// Refuse password authentication on plain connections.
    pub require: bool,
    /// Accept cleartext password authentication (only ever over TLS).
    pub allow_cleartext: bool,
}

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub url: String,
    /// Where the bootstrap token and a generated store key live.
    pub data_dir: PathBuf,
    /// Key encrypting secrets at rest; generated into `data_dir` when absent.
    pub key: Option<SecretSource>,
    /// How often an instance checks the shared store for changes made elsewhere.
    pub poll_interval: Duration,
    /// How long new logins may follow the last snapshot while the store cannot be
    /// reached; past it they are refused (live sessions go on).
    pub max_staleness: Duration,
    /// An instance not seen this long has its open sessions ended by a peer.
    pub instance_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    Always,
    Interval,
    Never,
}

/// When a statement's completion reaches the client, relative to its `query` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// As soon as the server sends it; the event follows (a `kill -9` may lose the last
    /// few events of statements clients saw complete).
    Written,
    /// Only once its event is in the file (and synced, with `fsync = "always"`).
    Acknowledged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    Block,
    Continue,
}

#[derive(Clone, Debug)]
pub struct AuditConfig {
    pub dir: PathBuf,
    pub fsync: Fsync,
    pub durability: Durability,
    pub on_failure: OnFailure,
    pub rotate_bytes: u64,
    /// Per-statement `query` events (default on). Off logs only sessions, logins and
    /// changes; it exists to measure what per-statement monitoring costs.
    pub statements: bool,
    /// A signed checkpoint at least this often while events are written.
    pub checkpoint_interval: Duration,
    /// ... and at least every this many events.
    pub checkpoint_events: u64,
    /// The checkpoint signing key (hex Ed25519 seed); default: generated into
    /// `store.data_dir/audit-signing.key`.
    pub signing_key: Option<SecretSource>,
    /// Shipping to NATS JetStream, when configured.
    pub nats: Option<NatsConfig>,
}

/// `[audit.nats]`: where the monitoring log is shipped (`audit::ship`).
#[derive(Clone, Debug)]
pub struct NatsConfig {
    pub url: String,
    /// The JetStream stream (made at start when absent, with `max_age`).
    pub stream: String,
    /// Each instance publishes to `<subject_prefix>.<instance>`.
    pub subject_prefix: String,
    pub token: Option<Secret>,
    pub max_age: Duration,
}

/// One-offs (`web` mode): the defaults a request may lower or raise.
#[derive(Clone, Debug)]
pub struct OneoffsConfig {
    /// Rows kept per statement unless the request says otherwise (at most `MAX_ROWS`).
    pub max_rows: usize,
    /// How long a statement may run unless the request says otherwise.
    pub timeout: Duration,
}

impl OneoffsConfig {
    /// The most rows any request may ask for.
    pub const MAX_ROWS: usize = 100_000;
    /// The longest timeout any request may ask for.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
}

/// Access requests: how long one may wait for a decision (and an approved command for
/// its run).
#[derive(Clone, Debug)]
pub struct AccessRequestsConfig {
    pub pending_timeout: Duration,
}

/// The web console's sign-ins.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// Signed out after this long without a request.
    pub idle_timeout: Duration,
    /// Signed out this long after signing in, whatever happens.
    pub absolute_timeout: Duration,
    /// Mark the cookie `Secure` (behind a TLS-terminating proxy).
    pub secure_cookie: bool,
}

/// Where access-request changes are announced.
#[derive(Clone, Debug, Default)]
pub struct NotifyConfig {
    pub webhooks: Vec<Webhook>,
}

/// A JSON POST on every request change, signed with HMAC-SHA-256 of the body under
/// `secret` (header `X-Portcullis-Signature: sha256=HEX`).
#[derive(Clone, Debug)]
pub struct Webhook {
    pub url: String,
    pub secret: Option<Secret>,
}

/// Where the runbook files are (one `.sql` file per runbook).
#[derive(Clone, Debug)]
pub struct RunbooksConfig {
    pub dir: PathBuf,
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub login_timeout: Duration,
    /// Client connections each database listener (PostgreSQL, MySQL) holds at once.
    pub max_connections: usize,
    /// Connections one client address may hold on each listener.
    pub max_connections_per_address: usize,
    /// Connections the admin API holds at once.
    pub max_admin_connections: usize,
    /// An admin API connection with no traffic this long is closed.
    pub admin_idle_timeout: Duration,
    /// Failed logins a minute a user name may have before it is locked out (0: no limit).
    pub failed_logins_per_user: u32,
    /// Failed logins a minute a client address may have before it is locked out.
    pub failed_logins_per_address: u32,
    /// How long a lockout lasts.
    pub lockout: Duration,
    /// PostgreSQL cancel requests a minute one client address may send (0: no limit);
    /// past it they are dropped.
    pub cancel_requests_per_address: u32,
    /// PostgreSQL upstream connections kept logged in per resource role (and client
    /// parameters) after their session ends, reset and handed to the next session; 0 (the
    /// default) logs in anew for every session.
    pub idle_upstreams: usize,
    /// How long a kept upstream connection may wait before it is closed.
    pub idle_upstream_timeout: Duration,
    /// Threads that run sessions: 0 (the default) one per core; 1 everything on one
    /// thread, as PgBouncer runs (the least CPU a statement); read at start only.
    pub threads: usize,
}

#[cfg(test)]
impl Limits {
    /// The defaults, for tests that set a few fields.
    pub fn for_tests() -> Limits {
        let raw = raw::RawLimits::default();
        validate::limits_for_tests(raw)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDecl {
    pub name: String,
}

/// A declared user and, optionally, its password.
#[derive(Clone, Debug)]
pub struct UserDecl {
    pub user: User,
    pub password: Option<Secret>,
}
carries!(UserDecl => user: User);

/// A declared resource.
pub type ResourceDecl = Resource;

/// A declared resource role and its upstream password.
#[derive(Clone, Debug)]
pub struct ResourceRoleDecl {
    pub role: ResourceRole,
    pub password: Option<Secret>,
}
carries!(ResourceRoleDecl => role: ResourceRole);

/// One problem in a config, located by its key path (`resource_roles[0].resource`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {message}")]
    Read { path: String, message: String },
    #[error("config {path} has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        path: String,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Reads, overrides from the environment, and validates. Every problem is reported.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (raw, unknown) = raw::read(path)?;
        validate::validate(raw, unknown, path).map_err(|problems| ConfigError::Invalid {
            path: path.display().to_string(),
            problems,
        })
    }

    /// Validates TOML text as if read from `source` (no environment overrides).
    pub fn from_toml(text: &str, source: &Path) -> Result<Config, ConfigError> {
        let (raw, unknown) = raw::parse(text)?;
        validate::validate(raw, unknown, source).map_err(|problems| ConfigError::Invalid {
            path: source.display().to_string(),
            problems,
        })
    }

    /// The config path from the flag, then `PORTCULLIS_CONFIG`, then the default.
    pub fn path_from(flag: Option<PathBuf>) -> PathBuf {
        flag.or_else(|| std::env::var_os("PORTCULLIS_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
    }
}

/// Parses `"30s"`, `"500ms"`, `"5m"`, `"1h"`, `"30d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 500ms, 5m, 1h or 7d"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => {
            return Err(format!(
                "`{text}` is not a duration like 30s, 500ms, 5m, 1h or 7d"
            ));
        }
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn masking_rules_are_checked_against_the_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("portcullis.toml");
        let text = "[[masking]]\nname = \"m\"\nresource_roles = [\"nope\"]\ncolumns = [\"email\"]\nmethod = \"hash\"\nkeep_last = 2\nexcept_groups = [\"ghosts\"]\n";
        std::fs::write(&path, text).expect("written");
        let err = Config::load(&path).expect_err("a bad rule").to_string();
        for said in [
            "masking[0].resource_roles",
            "masking[0].columns",
            "masking[0].keep_last",
            "masking[0].except_groups",
        ] {
            assert!(err.contains(said), "{said}: {err}");
        }
    }
}
