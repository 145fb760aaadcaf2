//! Raw config → typed `Config`, collecting every problem with its key path.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::raw::RawConfig;
use super::*;
use crate::model::{
    Protocol, Resource, ResourceRole, Role, Status, TlsMode, User, check_address, check_name,
};

/// Collects problems while walking the raw config.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Parses `value` with `parse`, recording a problem at `path` on failure.
    fn parse<T>(&mut self, path: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|e| self.add(path, e)).ok()
    }

    fn name(&mut self, path: String, name: &str) {
        if let Err(e) = check_name(name) {
            self.add(path, e);
        }
    }

    fn unique<'a>(&mut self, seen: &mut HashSet<&'a str>, path: String, name: &'a str) {
        if !seen.insert(name) {
            self.add(path, format!("`{name}` is declared twice"));
        }
    }
}

fn addr(p: &mut Problems, path: &str, value: Option<String>) -> Option<SocketAddr> {
    let value = value?;
    p.parse(
        path,
        SocketAddr::from_str(&value)
            .map_err(|_| format!("`{value}` is not an address like 127.0.0.1:15432")),
    )
}

/// A version string drivers can parse: it starts with `major.minor`, printable ASCII.
fn server_version(p: &mut Problems, value: Option<String>) -> Option<String> {
    let value = value?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = value.splitn(3, ['.', '-']);
    let numbered = parts.next().is_some_and(digits) && parts.next().is_some_and(digits);
    let printable = value.len() <= 100 && value.bytes().all(|b| b.is_ascii_graphic());
    p.parse(
        "listen.mysql_server_version",
        (numbered && printable)
            .then_some(value.clone())
            .ok_or_else(|| {
                format!("`{value}` is not a server version like 10.11.6-MariaDB or 8.0.36")
            }),
    )
}

fn enum_or<T: FromStr<Err = String>>(
    p: &mut Problems,
    path: &str,
    value: Option<String>,
    default: T,
) -> T {
    match value {
        None => default,
        Some(v) => p.parse(path, v.parse()).unwrap_or(default),
    }
}

fn duration_or(p: &mut Problems, path: &str, value: Option<String>, default: Duration) -> Duration {
    match value {
        None => default,
        Some(v) => p.parse(path, parse_duration(&v)).unwrap_or(default),
    }
}

fn secret(p: &mut Problems, path: String, source: Option<SecretSource>) -> Option<Secret> {
    let resolved = source?.resolve();
    resolved.map_err(|e| p.add(path, e)).ok()
}

pub fn validate(
    raw: RawConfig,
    unknown: Vec<Problem>,
    source: &Path,
) -> Result<Config, Vec<Problem>> {
    let mut p = Problems(unknown);
    let listen = Listen {
        postgres: addr(&mut p, "listen.postgres", raw.listen.postgres),
        mysql: addr(&mut p, "listen.mysql", raw.listen.mysql),
        admin: addr(&mut p, "listen.admin", raw.listen.admin),
        mysql_server_version: server_version(&mut p, raw.listen.mysql_server_version),
    };
    let store = store(&mut p, raw.store);
    let tls = tls(&mut p, raw.tls.unwrap_or_default(), &store.data_dir);
    let audit = audit(&mut p, raw.audit);
    let limits = limits(&mut p, raw.limits);
    let oneoffs = oneoffs(&mut p, raw.oneoffs);
    let runbooks = RunbooksConfig {
        dir: PathBuf::from(raw.runbooks.dir.unwrap_or_else(|| "runbooks".into())),
    };
    let groups = groups(&mut p, raw.groups);
    let group_names: HashSet<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let users = users(&mut p, &raw.users, &group_names);
    let resources = resources(&mut p, &raw.resources);
    let resource_names: HashSet<&str> = resources.iter().map(|r| r.name.as_str()).collect();
    let resource_roles = resource_roles(&mut p, &raw.resource_roles, &group_names, &resource_names);
    let access_request_rules = rules(
        &mut p,
        &raw.access_request_rules,
        &users,
        &group_names,
        &resource_roles,
    );
    let guardrails = guardrails(&mut p, &raw.guardrails, &group_names, &resource_roles);
    let masking = masking(&mut p, &raw.masking, &group_names, &resource_roles);
    let access_requests = AccessRequestsConfig {
        pending_timeout: duration_or(
            &mut p,
            "access_requests.pending_timeout",
            raw.access_requests.pending_timeout,
            Duration::from_secs(24 * 3600),
        ),
    };
    let notify = notify(&mut p, raw.notify);
    let console = ConsoleConfig {
        idle_timeout: duration_or(
            &mut p,
            "console.idle_timeout",
            raw.console.idle_timeout,
            Duration::from_secs(30 * 60),
        ),
        absolute_timeout: duration_or(
            &mut p,
            "console.absolute_timeout",
            raw.console.absolute_timeout,
            Duration::from_secs(12 * 3600),
        ),
        secure_cookie: raw.console.secure_cookie.unwrap_or(false),
    };
    if !p.0.is_empty() {
        return Err(p.0);
    }
    Ok(Config {
        source: source.to_path_buf(),
        listen,
        tls,
        store,
        audit,
        limits,
        oneoffs,
        runbooks,
        access_requests,
        console,
        notify,
        access_request_rules,
        guardrails,
        masking,
        instance: raw.instance.clone(),
        groups,
        users,
        resources,
        resource_roles,
    })
}

/// The self-signed certificate's files in the data directory.
const SELF_SIGNED_CERT: &str = "tls-cert.pem";
const SELF_SIGNED_KEY: &str = "tls-key.pem";

/// `[tls]` with `cert` and `key`: those files. Without them (or without `[tls]`): a
/// self-signed certificate in the data directory. `enabled = false`: no TLS.
fn tls(p: &mut Problems, t: super::raw::RawTls, data_dir: &Path) -> Option<TlsConfig> {
    if t.enabled == Some(false) {
        return None;
    }
    let file = |p: &mut Problems, key: &str, v: String| {
        if Path::new(&v).is_file() {
            Some(PathBuf::from(v))
        } else {
            p.add(format!("tls.{key}"), format!("file `{v}` does not exist"));
            None
        }
    };
    let (cert, key, self_signed) = match (t.cert, t.key) {
        (None, None) => (
            data_dir.join(SELF_SIGNED_CERT),
            data_dir.join(SELF_SIGNED_KEY),
            true,
        ),
        (cert, key) => {
            let mut one = |name: &str, v: Option<String>| match v {
                Some(v) => file(p, name, v),
                None => {
                    let why = "missing: a PEM file path is required (or neither cert nor key, for a self-signed certificate)";
                    p.add(format!("tls.{name}"), why);
                    None
                }
            };
            let (cert, key) = (one("cert", cert), one("key", key));
            (cert?, key?, false)
        }
    };
    Some(TlsConfig {
        cert,
        key,
        self_signed,
        require: t.require,
        allow_cleartext: t.allow_cleartext,
    })
}

fn store(p: &mut Problems, raw: super::raw::RawStore) -> StoreConfig {
    let url = raw
        .url
        .unwrap_or_else(|| "sqlite://data/portcullis.db".into());
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        p.add(
            "store.url",
            format!("`{url}` is neither sqlite://… nor postgres://…"),
        );
    }
    let store = StoreConfig {
        url,
        data_dir: PathBuf::from(raw.data_dir.unwrap_or_else(|| "data".into())),
        key: raw.key,
        poll_interval: duration_or(
            p,
            "store.poll_interval",
            raw.poll_interval,
            Duration::from_millis(250),
        ),
        max_staleness: duration_or(
            p,
            "store.max_staleness",
            raw.max_staleness,
            Duration::from_secs(60),
        ),
        instance_timeout: duration_or(
            p,
            "store.instance_timeout",
            raw.instance_timeout,
            Duration::from_secs(120),
        ),
    };
    if store.instance_timeout < Duration::from_secs(2) {
        p.add("store.instance_timeout", "must be at least 2s");
    }
    if store.max_staleness <= store.poll_interval {
        p.add(
            "store.max_staleness",
            "must be longer than store.poll_interval (logins would be refused between polls)",
        );
    }
    store
}

fn notify(p: &mut Problems, raw: super::raw::RawNotify) -> NotifyConfig {
    let mut webhooks = Vec::new();
    for (i, w) in raw.webhooks.into_iter().enumerate() {
        let at = |k: &str| format!("notify.webhooks[{i}].{k}");
        let host = w
            .url
            .strip_prefix("http://")
            .or_else(|| w.url.strip_prefix("https://"))
            .and_then(|rest| rest.split(['/', '?']).next())
            .filter(|h| !h.is_empty());
        if host.is_none() {
            p.add(
                at("url"),
                format!("`{}` is not an http:// or https:// URL", w.url),
            );
        }
        webhooks.push(Webhook {
            url: w.url,
            secret: secret(p, at("secret"), w.secret),
        });
    }
    NotifyConfig { webhooks }
}

/// The access request rules, each checked against what the file declares.
fn rules(
    p: &mut Problems,
    raw: &[super::raw::RawRule],
    users: &[UserDecl],
    groups: &HashSet<&str>,
    roles: &[ResourceRoleDecl],
) -> Vec<crate::model::AccessRequestRule> {
    use crate::model::{AccessRequestRule, Known, RequestKind, Status};
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in raw.iter().enumerate() {
        let at = |k: &str| format!("access_request_rules[{i}].{k}");
        p.unique(&mut seen, at("name"), &r.name);
        let kind = p
            .parse(&at("kind"), r.kind.parse::<RequestKind>())
            .unwrap_or(RequestKind::Jit);
        let max = r
            .max_duration
            .as_deref()
            .and_then(|d| p.parse(&at("max_duration"), parse_duration(d)));
        let rule = AccessRequestRule {
            name: r.name.clone(),
            resource_roles: r.resource_roles.clone(),
            kind,
            requester_groups: r.requester_groups.clone(),
            approver_groups: r.approver_groups.clone(),
            min_approvals: r.min_approvals.unwrap_or(1),
            all_approver_groups: r.all_approver_groups.unwrap_or(false),
            max_duration_s: max.map(|d| d.as_secs()),
            reason_required: r.reason_required.unwrap_or(true),
            break_glass_groups: r.break_glass_groups.clone(),
        };
        let approvers = |gs: &[String]| {
            users
                .iter()
                .filter(|u| u.status == Status::Active && u.groups.iter().any(|g| gs.contains(g)))
                .count()
        };
        let known = Known {
            resource_role: &|name| roles.iter().any(|d| d.name == name),
            group: &|g| groups.contains(g),
            approvers: &approvers,
        };
        for (field, message) in rule.problems(&known) {
            p.add(at(field), message);
        }
        out.push(rule);
    }
    for (a, b, role) in crate::model::overlapping(&out) {
        p.add(
            "access_request_rules".to_owned(),
            format!("rules `{a}` and `{b}` are of the same kind on resource role `{role}`"),
        );
    }
    out
}

/// The guardrails, each checked against what the file declares.
fn guardrails(
    p: &mut Problems,
    raw: &[super::raw::RawGuardrail],
    groups: &HashSet<&str>,
    roles: &[ResourceRoleDecl],
) -> Vec<crate::model::Guardrail> {
    use crate::model::{GuardAction, Guardrail, Known, StatementClass};
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in raw.iter().enumerate() {
        let at = |k: &str| format!("guardrails[{i}].{k}");
        p.unique(&mut seen, at("name"), &r.name);
        let action = p
            .parse(&at("action"), r.action.parse::<GuardAction>())
            .unwrap_or(GuardAction::Block);
        let classes = r
            .classes
            .iter()
            .filter_map(|c| p.parse(&at("classes"), c.parse::<StatementClass>()))
            .collect();
        let unparsed = r
            .unparsed
            .as_deref()
            .and_then(|u| p.parse(&at("unparsed"), u.parse()));
        let rule = Guardrail {
            name: r.name.clone(),
            resource_roles: r.resource_roles.clone(),
            action,
            groups: r.groups.clone(),
            except_groups: r.except_groups.clone(),
            classes,
            tables: r.tables.clone(),
            update_without_where: r.update_without_where,
            delete_without_where: r.delete_without_where,
            select_star: r.select_star,
            allow_multi: r.allow_multi.unwrap_or(true),
            unparsed,
        };
        let known = Known {
            resource_role: &|name| roles.iter().any(|d| d.name == name),
            group: &|g| groups.contains(g),
            approvers: &|_| 0,
        };
        for (field, message) in rule.problems(&known) {
            p.add(at(field), message);
        }
        out.push(rule);
    }
    out
}

/// The masking rules, each checked against what the file declares.
fn masking(
    p: &mut Problems,
    raw: &[crate::model::MaskingRule],
    groups: &HashSet<&str>,
    roles: &[ResourceRoleDecl],
) -> Vec<crate::model::MaskingRule> {
    let mut seen = HashSet::new();
    let known = crate::model::Known {
        resource_role: &|name| roles.iter().any(|d| d.name == name),
        group: &|g| groups.contains(g),
        approvers: &|_| 0,
    };
    for (i, rule) in raw.iter().enumerate() {
        let at = |k: &str| format!("masking[{i}].{k}");
        p.unique(&mut seen, at("name"), &rule.name);
        for (field, message) in rule.problems(&known) {
            p.add(at(field), message);
        }
    }
    raw.to_vec()
}

fn oneoffs(p: &mut Problems, raw: super::raw::RawOneoffs) -> OneoffsConfig {
    let max_rows = raw.max_rows.unwrap_or(1_000);
    if max_rows == 0 || max_rows > OneoffsConfig::MAX_ROWS as u64 {
        p.add(
            "oneoffs.max_rows",
            format!(
                "{max_rows} is not between 1 and {}",
                OneoffsConfig::MAX_ROWS
            ),
        );
    }
    let timeout = duration_or(p, "oneoffs.timeout", raw.timeout, Duration::from_secs(30));
    if timeout.is_zero() || timeout > OneoffsConfig::MAX_TIMEOUT {
        p.add("oneoffs.timeout", "must be more than 0s and at most 1h");
    }
    OneoffsConfig {
        max_rows: usize::try_from(max_rows).unwrap_or(1_000),
        timeout,
    }
}

fn nats(p: &mut Problems, raw: super::raw::RawNats) -> crate::config::NatsConfig {
    let bad = |s: &str| {
        s.is_empty()
            || s.chars()
                .any(|c| matches!(c, '*' | '>') || c.is_whitespace())
    };
    let stream = raw.stream.unwrap_or_else(|| "PORTCULLIS_AUDIT".into());
    if bad(&stream) || stream.contains('.') {
        p.add(
            "audit.nats.stream",
            format!("`{stream}` is not a stream name"),
        );
    }
    let subject_prefix = raw
        .subject_prefix
        .unwrap_or_else(|| "portcullis.audit".into());
    if bad(&subject_prefix) || subject_prefix.ends_with('.') || subject_prefix.starts_with('.') {
        p.add(
            "audit.nats.subject_prefix",
            format!("`{subject_prefix}` is not a subject"),
        );
    }
    if !raw.url.starts_with("nats://") && !raw.url.starts_with("tls://") {
        p.add(
            "audit.nats.url",
            format!("`{}` is not nats://host:port or tls://host:port", raw.url),
        );
    }
    crate::config::NatsConfig {
        url: raw.url,
        stream,
        subject_prefix,
        token: secret(p, "audit.nats.token".into(), raw.token),
        max_age: duration_or(
            p,
            "audit.nats.max_age",
            raw.max_age,
            Duration::from_secs(30 * 86_400),
        ),
    }
}

fn audit(p: &mut Problems, raw: super::raw::RawAudit) -> AuditConfig {
    let fsync = match raw.fsync.as_deref() {
        None | Some("interval") => Fsync::Interval,
        Some("always") => Fsync::Always,
        Some("never") => Fsync::Never,
        Some(other) => {
            p.add(
                "audit.fsync",
                format!("`{other}` is not one of always, interval, never"),
            );
            Fsync::Interval
        }
    };
    let on_failure = match raw.on_failure.as_deref() {
        None | Some("block") => OnFailure::Block,
        Some("continue") => OnFailure::Continue,
        Some(other) => {
            p.add(
                "audit.on_failure",
                format!("`{other}` is not one of block, continue"),
            );
            OnFailure::Block
        }
    };
    let durability = match raw.durability.as_deref() {
        None | Some("written") => Durability::Written,
        Some("acknowledged") => Durability::Acknowledged,
        Some(other) => {
            p.add(
                "audit.durability",
                format!("`{other}` is not one of written, acknowledged"),
            );
            Durability::Written
        }
    };
    let audit = AuditConfig {
        dir: PathBuf::from(raw.dir.unwrap_or_else(|| "data/audit".into())),
        fsync,
        durability,
        on_failure,
        rotate_bytes: raw.rotate_bytes.unwrap_or(64 << 20),
        statements: raw.statements.unwrap_or(true),
        checkpoint_interval: duration_or(
            p,
            "audit.checkpoint_interval",
            raw.checkpoint_interval,
            Duration::from_secs(10),
        ),
        checkpoint_events: raw.checkpoint_events.unwrap_or(10_000).max(1),
        signing_key: raw.signing_key,
        nats: raw.nats.map(|n| nats(p, n)),
    };
    if audit.rotate_bytes < 4096 {
        p.add("audit.rotate_bytes", "must be at least 4096");
    }
    audit
}

fn limits(p: &mut Problems, raw: super::raw::RawLimits) -> Limits {
    let limits = Limits {
        login_timeout: duration_or(
            p,
            "limits.login_timeout",
            raw.login_timeout,
            Duration::from_secs(10),
        ),
        max_connections: raw.max_connections.unwrap_or(10_000),
        max_connections_per_address: raw.max_connections_per_address.unwrap_or(1_000),
        max_admin_connections: raw.max_admin_connections.unwrap_or(256),
        admin_idle_timeout: duration_or(
            p,
            "limits.admin_idle_timeout",
            raw.admin_idle_timeout,
            Duration::from_secs(60),
        ),
        failed_logins_per_user: raw.failed_logins_per_user.unwrap_or(10),
        failed_logins_per_address: raw.failed_logins_per_address.unwrap_or(30),
        cancel_requests_per_address: raw.cancel_requests_per_address.unwrap_or(600),
        lockout: duration_or(p, "limits.lockout", raw.lockout, Duration::from_secs(300)),
        idle_upstreams: raw.idle_upstreams.unwrap_or(0),
        idle_upstream_timeout: duration_or(
            p,
            "limits.idle_upstream_timeout",
            raw.idle_upstream_timeout,
            Duration::from_secs(60),
        ),
        threads: raw.threads.unwrap_or(0),
    };
    if limits.threads > 1024 {
        p.add("limits.threads", "must be at most 1024 (0: one per core)");
    }
    for (key, n) in [
        ("limits.max_connections", limits.max_connections),
        (
            "limits.max_connections_per_address",
            limits.max_connections_per_address,
        ),
        ("limits.max_admin_connections", limits.max_admin_connections),
    ] {
        if n == 0 {
            p.add(key, "must be at least 1");
        }
    }
    limits
}

#[cfg(test)]
pub fn limits_for_tests(raw: super::raw::RawLimits) -> Limits {
    limits(&mut Problems::default(), raw)
}

fn groups(p: &mut Problems, raw: Vec<super::raw::RawGroup>) -> Vec<GroupDecl> {
    let groups: Vec<GroupDecl> = raw
        .into_iter()
        .map(|g| GroupDecl { name: g.name })
        .collect();
    let mut seen = HashSet::new();
    let mut folded = HashSet::new();
    for (i, g) in groups.iter().enumerate() {
        p.name(format!("groups[{i}].name"), &g.name);
        p.unique(&mut seen, format!("groups[{i}].name"), &g.name);
        if !folded.insert(g.name.to_lowercase()) && seen.len() == i + 1 {
            p.add(
                format!("groups[{i}].name"),
                format!("`{}` differs from another group only in case", g.name),
            );
        }
    }
    groups
}

/// Each group named in `list` must be declared.
fn check_groups(p: &mut Problems, declared: &HashSet<&str>, path: String, list: &[String]) {
    for (j, g) in list.iter().enumerate() {
        if !declared.contains(g.as_str()) {
            p.add(
                format!("{path}[{j}]"),
                format!("group `{g}` is not declared in [[groups]]"),
            );
        }
    }
}

fn users(p: &mut Problems, raw: &[super::raw::RawUser], groups: &HashSet<&str>) -> Vec<UserDecl> {
    let mut users = Vec::new();
    let mut seen = HashSet::new();
    for (i, u) in raw.iter().enumerate() {
        let at = |k: &str| format!("users[{i}].{k}");
        p.name(at("name"), &u.name);
        p.unique(&mut seen, at("name"), &u.name);
        check_groups(p, groups, at("groups"), &u.groups);
        users.push(UserDecl {
            user: User {
                name: u.name.clone(),
                email: u.email.clone(),
                display_name: u.display_name.clone(),
                status: enum_or(p, &at("status"), u.status.clone(), Status::Active),
                role: enum_or(p, &at("role"), u.role.clone(), Role::Standard),
                groups: u.groups.clone(),
            },
            password: secret(p, at("password"), u.password.clone()),
        });
    }
    users
}

fn resources(p: &mut Problems, raw: &[super::raw::RawResource]) -> Vec<ResourceDecl> {
    let mut resources = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in raw.iter().enumerate() {
        let at = |k: &str| format!("resources[{i}].{k}");
        p.name(at("name"), &r.name);
        p.unique(&mut seen, at("name"), &r.name);
        if let Err(e) = check_address(&r.address) {
            p.add(at("address"), e);
        }
        resources.push(Resource {
            name: r.name.clone(),
            protocol: enum_or(
                p,
                &at("protocol"),
                Some(r.protocol.clone()),
                Protocol::Postgres,
            ),
            address: r.address.clone(),
            tls: enum_or(p, &at("tls"), r.tls.clone(), TlsMode::Prefer),
        });
    }
    resources
}

fn resource_roles(
    p: &mut Problems,
    raw: &[super::raw::RawResourceRole],
    groups: &HashSet<&str>,
    resources: &HashSet<&str>,
) -> Vec<ResourceRoleDecl> {
    let mut roles = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in raw.iter().enumerate() {
        let at = |k: &str| format!("resource_roles[{i}].{k}");
        p.name(at("name"), &r.name);
        p.unique(&mut seen, at("name"), &r.name);
        if !resources.contains(r.resource.as_str()) {
            p.add(
                at("resource"),
                format!("resource `{}` is not declared in [[resources]]", r.resource),
            );
        }
        if r.database.is_empty() {
            p.add(at("database"), "must not be empty");
        }
        if r.user.is_empty() {
            p.add(at("user"), "must not be empty");
        }
        check_groups(p, groups, at("allowed_groups"), &r.allowed_groups);
        if let Err(e) =
            crate::model::check_forward_options(r.forward_options.as_deref().unwrap_or_default())
        {
            p.add(at("forward_options"), e);
        }
        roles.push(ResourceRoleDecl {
            role: ResourceRole {
                name: r.name.clone(),
                resource: r.resource.clone(),
                database: r.database.clone(),
                user: r.user.clone(),
                allowed_groups: r.allowed_groups.clone(),
                access_modes: r.access_modes.unwrap_or_default(),
                forward_options: r.forward_options.clone(),
            },
            password: secret(p, at("password"), r.password.clone()),
        });
    }
    roles
}
