//! The command line (SPEC §3). `serve`, `check-config`, `runbooks lint` and the offline
//! `audit` commands run locally; every other command talks to a running gateway's admin
//! API (`--server`, the token `portcullis login` saved or `PORTCULLIS_TOKEN`). Tables by
//! default, `--output json|csv`.

pub mod audit;
pub mod client;
mod commands;
pub mod login;
mod oneoffs;
mod requests;
pub mod table;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use commands::{Printed, run_remote};
pub use oneoffs::lint_runbooks;

const GLOBAL: &str = "Global options";

#[derive(Parser, Debug)]
#[command(
    name = "portcullis",
    version,
    about = "Database access gateway: people reach PostgreSQL and MySQL through it, under access control, every statement in a tamper-evident log",
    after_help = "Start with `portcullis serve`, then `portcullis login --user admin --with-token < data/bootstrap-token` (or your own user and password); `portcullis COMMAND --help` says what each command takes."
)]
pub struct Cli {
    /// The gateway's admin API [default: the one you logged in to, else http://127.0.0.1:8009]
    #[arg(long, global = true, env = "PORTCULLIS_SERVER", help_heading = GLOBAL)]
    pub server: Option<String>,
    /// A personal access token [default: the one `portcullis login` saved]
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_TOKEN",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    pub token: Option<String>,
    /// How results are printed
    #[arg(long, global = true, value_enum, default_value_t = Output::Table, help_heading = GLOBAL)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns, for people
    Table,
    /// The API's JSON, for scripts
    Json,
    /// Comma-separated values, for spreadsheets
    Csv,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway: listeners, admin API and web console, monitoring log.
    Serve {
        /// The config file [default: $PORTCULLIS_CONFIG, else config/portcullis.toml]
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a config; print every problem with its key path.
    CheckConfig {
        /// The config file [default: $PORTCULLIS_CONFIG, else config/portcullis.toml]
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Log in to a gateway: asks for your password (or, with --with-token, a token) and
    /// saves a personal access token in your config directory for the other commands.
    Login {
        /// Your Portcullis user name [default: $USER]
        #[arg(long)]
        user: Option<String>,
        /// Read a personal access token instead of a password.
        #[arg(long)]
        with_token: bool,
        /// How long the saved token lasts, e.g. 12h, 30d.
        #[arg(long, default_value = "30d")]
        expires: String,
    },
    /// Log out: revoke the token `login` made and forget it.
    Logout,
    /// Users: people and service accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Groups: the unit of access control.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Resources: upstream database servers.
    #[command(subcommand)]
    Resource(ResourceCmd),
    /// Resource roles: named ways to reach a resource.
    #[command(subcommand, name = "resource-role")]
    ResourceRole(ResourceRoleCmd),
    /// Access control: which groups may use a resource role; who can reach what.
    #[command(subcommand)]
    Access(AccessCmd),
    /// Personal access tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The monitoring log: verify it, read its refusals and admin changes, follow it.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Sessions, live and ended, newest first; `sessions show ID` lists one's statements,
    /// `sessions end ID` ends a live one.
    Sessions {
        #[command(subcommand)]
        action: Option<SessionsCmd>,
        #[command(flatten)]
        filter: SessionsFilter,
    },
    /// Users and client addresses locked out after repeated failed logins;
    /// `lockouts clear user NAME` or `lockouts clear address IP` lifts one (admin).
    Lockouts {
        #[command(subcommand)]
        action: Option<LockoutsCmd>,
    },
    /// Guardrails: what sessions may do on a resource role (docs/guardrails.md); alone,
    /// lists them in the order they are evaluated.
    Guardrails {
        #[command(subcommand)]
        action: Option<GuardrailsCmd>,
    },
    /// Recorded admin changes, newest first.
    Changes {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Ask the gateway to re-read its config file.
    Reload,
    /// Run one-off statements on a resource role (`web` mode): `-e SQL`, `-f FILE`, or
    /// stdin. Exits non-zero when a statement fails.
    Exec(ExecArgs),
    /// Runbooks: list the ones you may run, show one, run one (`runbooks` mode).
    #[command(subcommand)]
    Runbook(RunbookCmd),
    /// Runbook files: `runbooks lint [DIR]` checks every file (locally; usable in CI).
    #[command(subcommand)]
    Runbooks(RunbooksCmd),
    /// Access requests: `request ROLE --for 2h --reason …` asks for just-in-time access;
    /// `request approve|deny|revoke|cancel|run|show ID`; `request rules`.
    Request(RequestArgs),
    /// Access requests: all you may see (default), `--mine`, or `--pending` (waiting for
    /// your vote).
    Requests {
        /// Only your own requests.
        #[arg(long, conflicts_with = "pending")]
        mine: bool,
        /// Only requests waiting for your vote.
        #[arg(long)]
        pending: bool,
        /// Only requests in this state.
        #[arg(long, value_parser = ["pending", "approved", "denied", "expired", "revoked", "cancelled", "executed"])]
        status: Option<String>,
    },
}

/// `portcullis request ROLE …` or `portcullis request ACTION ID`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RequestArgs {
    #[command(subcommand)]
    pub action: Option<RequestCmd>,
    /// The resource role to ask just-in-time access to.
    pub resource_role: Option<String>,
    /// How long, e.g. 2h (default: the rule's longest).
    #[arg(long = "for")]
    pub duration: Option<String>,
    /// Why, for the approvers.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RequestCmd {
    /// One request with its votes.
    Show {
        /// The request's id.
        id: String,
    },
    /// Vote for it (approvers; never your own).
    Approve {
        /// The request's id.
        id: String,
        /// A note for the requester and the log.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Deny it (any approver; one denial ends it).
    Deny {
        /// The request's id.
        id: String,
        /// Why, for the requester and the log.
        #[arg(long)]
        reason: String,
    },
    /// End a pending or approved request now (admin).
    Revoke {
        /// The request's id.
        id: String,
        /// Why, for the requester and the log.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Withdraw your own request.
    Cancel {
        /// The request's id.
        id: String,
    },
    /// Run your approved command, once.
    Run {
        /// The request's id.
        id: String,
    },
    /// The access request rules.
    Rules,
}

/// A one-off's statements and limits.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// The resource role to run on (it must allow the `web` mode).
    pub resource_role: String,
    /// The statement(s) to run.
    #[arg(short = 'e', long = "execute", conflicts_with = "file")]
    pub sql: Option<String>,
    /// A file of statements.
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// A value for `$1`, `$2`… (PostgreSQL) or `?` (MySQL), in order (repeat).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Why, for the approvers (resource roles that hold commands for approval).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub limits: RunLimits,
}

/// What a run may take.
#[derive(clap::Args, Debug)]
pub struct RunLimits {
    /// Rows kept per statement (default: the gateway's `oneoffs.max_rows`).
    #[arg(long)]
    pub max_rows: Option<usize>,
    /// How long a statement may run before it is cancelled, e.g. 30s.
    #[arg(long)]
    pub timeout: Option<String>,
    /// The session's application name.
    #[arg(long)]
    pub app: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RunbookCmd {
    /// The runbooks you may run, with their resource roles.
    List,
    /// One runbook: its parameters and statements.
    Show {
        /// The runbook's name (its file name without `.sql`).
        name: String,
    },
    /// Run a runbook with its parameters (bound by the server, never spliced).
    Run {
        /// The runbook's name.
        name: String,
        /// The resource role to run it on.
        #[arg(long = "role")]
        resource_role: String,
        /// A parameter, `name=value` (repeat).
        #[arg(long = "param")]
        params: Vec<String>,
        /// Why, for the approvers (resource roles that hold commands for approval).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        limits: RunLimits,
    },
}

#[derive(Subcommand, Debug)]
pub enum RunbooksCmd {
    /// Check every runbook file of DIR (default `runbooks`); each problem as
    /// `file:line: message`, non-zero exit on any.
    Lint {
        /// The runbooks directory [default: runbooks].
        dir: Option<PathBuf>,
        /// Also check each statement against this config's guardrails, on every resource
        /// role the runbook may run on.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Which sessions `portcullis sessions` lists.
#[derive(clap::Args, Debug)]
pub struct SessionsFilter {
    /// Only this user's sessions.
    #[arg(long)]
    pub user: Option<String>,
    /// Only sessions on this resource role.
    #[arg(long)]
    pub resource_role: Option<String>,
    /// Only sessions in this access mode.
    #[arg(long, value_parser = ["native", "web", "runbooks"])]
    pub mode: Option<String>,
    /// Only live or only ended sessions.
    #[arg(long, value_parser = ["live", "ended"])]
    pub status: Option<String>,
    /// Only sessions started within this long, e.g. 1h, 7d.
    #[arg(long)]
    pub since: Option<String>,
    /// Only sessions with a statement containing this text (searched in the log).
    #[arg(long)]
    pub search: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Every user with status, role and groups.
    List,
    /// One user.
    Show {
        /// The user's name.
        name: String,
    },
    /// Create a user.
    Add {
        /// The user's name (what they log in with).
        name: String,
        /// Their email address.
        #[arg(long, default_value = "")]
        email: String,
        /// Their name as people read it.
        #[arg(long, default_value = "")]
        display_name: String,
        /// A group to join (repeat for several).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// What they may do with the admin API and console.
        #[arg(long, default_value = "standard", value_parser = ROLES)]
        role: String,
        /// Whether they may log in.
        #[arg(long, default_value = "active", value_parser = STATUSES)]
        status: String,
        /// The user's password (prefer --password-stdin outside demos).
        #[arg(long)]
        password: Option<String>,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's email or display name.
    Set {
        /// The user's name.
        name: String,
        /// A new email address.
        #[arg(long)]
        email: Option<String>,
        /// A new display name.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Set whether a user may log in. Inactive users' live sessions end.
    SetStatus {
        /// The user's name.
        name: String,
        /// The new status.
        #[arg(value_parser = STATUSES)]
        status: String,
    },
    /// Replace the user's groups.
    SetGroups {
        /// The user's name.
        name: String,
        /// The groups (none: no group).
        groups: Vec<String>,
    },
    /// Set what a user may do with the admin API and console.
    SetRole {
        /// The user's name.
        name: String,
        /// The new role.
        #[arg(value_parser = ROLES)]
        role: String,
    },
    /// Set a new password (read from stdin unless --password). Your own password needs
    /// --current-password unless you are an admin.
    Passwd {
        /// The user's name.
        name: String,
        /// The new password.
        #[arg(long)]
        password: Option<String>,
        /// Your current password (changing your own, as a non-admin).
        #[arg(long)]
        current_password: Option<String>,
    },
    /// Delete a user, their tokens and memberships; their live sessions end.
    Delete {
        /// The user's name.
        name: String,
    },
}

const ROLES: [&str; 3] = ["admin", "auditor", "standard"];
const STATUSES: [&str; 3] = ["active", "inactive", "invited"];

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Every group with its members and grants.
    List,
    /// One group: its members and the resource roles it is granted.
    Show {
        /// The group's name.
        name: String,
    },
    /// Create a group.
    Add {
        /// The group's name.
        name: String,
    },
    /// Rename a group; members and grants move with it.
    Rename {
        /// The group's name now.
        name: String,
        /// Its new name.
        new_name: String,
    },
    /// Delete a group. One with members or grants is refused, saying what would go,
    /// unless --force.
    Delete {
        /// The group's name.
        name: String,
        /// Delete it although it has members or grants.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ResourceCmd {
    /// Every resource.
    List,
    /// One resource.
    Show {
        /// The resource's name.
        name: String,
    },
    /// Add a database server.
    Add {
        /// The resource's name.
        name: String,
        /// The server's wire protocol.
        #[arg(long, value_parser = ["postgres", "mysql"])]
        protocol: String,
        /// host:port of the server.
        #[arg(long)]
        address: String,
        /// TLS from the gateway to the server.
        #[arg(long, default_value = "prefer", value_parser = TLS_MODES)]
        tls: String,
    },
    /// Change a resource's address or TLS mode.
    Set {
        /// The resource's name.
        name: String,
        /// A new host:port.
        #[arg(long)]
        address: Option<String>,
        /// A new TLS mode.
        #[arg(long, value_parser = TLS_MODES)]
        tls: Option<String>,
    },
    /// Delete a resource. One that resource roles use is refused, naming them, unless
    /// --force (which deletes them too).
    Delete {
        /// The resource's name.
        name: String,
        /// Delete it and its resource roles.
        #[arg(long)]
        force: bool,
    },
}

const TLS_MODES: [&str; 4] = ["disable", "prefer", "require", "verify-full"];

#[derive(Subcommand, Debug)]
pub enum ResourceRoleCmd {
    /// Every resource role with its groups and access modes.
    List,
    /// One resource role.
    Show {
        /// The resource role's name.
        name: String,
    },
    /// Add a resource role: a database and upstream user on a resource.
    Add {
        /// The resource role's name (what clients name as the database).
        name: String,
        /// The resource it is on.
        #[arg(long)]
        resource: String,
        /// The upstream database.
        #[arg(long)]
        database: String,
        /// The upstream database user.
        #[arg(long)]
        user: String,
        /// The upstream password (prefer --password-env outside demos).
        #[arg(long)]
        password: Option<String>,
        /// Read the upstream password from this environment variable.
        #[arg(long)]
        password_env: Option<String>,
        /// A group allowed to use it (repeat for several).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Access modes, comma-separated: native, web, runbooks.
        #[arg(long, default_value = "native")]
        modes: String,
        /// A PostgreSQL startup parameter clients may send (repeat; default: a safe list).
        #[arg(long = "forward-option")]
        forward_options: Vec<String>,
    },
    /// Change a resource role.
    Set {
        /// The resource role's name.
        name: String,
        /// A new upstream database.
        #[arg(long)]
        database: Option<String>,
        /// A new upstream user.
        #[arg(long)]
        user: Option<String>,
        /// A new upstream password.
        #[arg(long)]
        password: Option<String>,
        /// Access modes, comma-separated: native, web, runbooks.
        #[arg(long)]
        modes: Option<String>,
        /// Replace the forwarded startup parameters (repeat).
        #[arg(long = "forward-option")]
        forward_options: Vec<String>,
    },
    /// Delete a resource role. One granted to groups or with live sessions is refused,
    /// saying what would go, unless --force.
    Delete {
        /// The resource role's name.
        name: String,
        /// Delete it although groups are granted it (their live sessions end).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccessCmd {
    /// Who can reach what: for one resource role, one user, or everything.
    Show {
        /// Only this resource role.
        resource_role: Option<String>,
        /// Only what this user can reach.
        #[arg(long)]
        user: Option<String>,
    },
    /// The periodic access review: who can reach each resource role, through which
    /// groups, and when they last used it; unused grants flagged.
    Review {
        /// Flag grants unused for this long.
        #[arg(long, default_value = "90d")]
        unused_for: String,
        /// Only this resource role.
        #[arg(long)]
        resource_role: Option<String>,
    },
    /// Allow a group to use a resource role.
    Grant {
        /// The resource role.
        resource_role: String,
        /// The group.
        group: String,
    },
    /// Take a resource role away from a group; its members' live sessions that relied
    /// on it end.
    Revoke {
        /// The resource role.
        resource_role: String,
        /// The group.
        group: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token; its value is printed once.
    Create {
        /// Whose token [default: yours; another user's needs the admin role]
        #[arg(long)]
        user: Option<String>,
        /// A name to recognise it by.
        #[arg(long, default_value = "")]
        name: String,
        /// e.g. 30d, 12h; none for no expiry.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Tokens' names, expiry and last use (never their values).
    List {
        /// Whose tokens [default: yours; readers may name anyone].
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token.
    Revoke {
        /// The token's id (from `token list`).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the hash chain end to end and name the first broken line: the gateway's own
    /// log through the API (auditor or admin; checkpoint signatures and the store's
    /// anchor too), or an offline copy with --dir (add --public-key for the signatures,
    /// so a rebuilt log is found by someone who holds only the public key).
    Verify {
        /// Verify this log directory locally instead of asking the gateway.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Verify the log of this config's `audit.dir` locally.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The gateway's checkpoint public key (hex), as `audit public-key` prints it.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Lines allowed after the last checkpoint (default: from `audit.checkpoint_events`).
        #[arg(long)]
        max_unsigned: Option<u64>,
        /// Verify the copy shipped to NATS JetStream at this URL instead: each instance's
        /// chain in the stream.
        #[arg(long, value_name = "URL")]
        nats: Option<String>,
        /// The JetStream stream (with --nats).
        #[arg(long, default_value = "PORTCULLIS_AUDIT")]
        stream: String,
        /// The subjects' prefix (with --nats).
        #[arg(long, default_value = "portcullis.audit")]
        subject_prefix: String,
        /// NATS token (with --nats).
        #[arg(long, env = "PORTCULLIS_NATS_TOKEN", hide_env_values = true)]
        nats_token: Option<String>,
    },
    /// Print the public key that verifies this gateway's checkpoints (hex Ed25519).
    PublicKey {
        /// The gateway's config file (its data directory holds the key).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print new events as they are written (like `tail -f`; reads the files).
    Tail {
        /// The log directory [default: `audit.dir` of the config].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The gateway's config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Refusals and admin changes from the log, through the API (auditor or admin).
    Events {
        /// Comma-separated kinds [default: auth_failed,access_denied,admin_change].
        #[arg(long)]
        kind: Option<String>,
        /// Only events of this user (or admin changes by them).
        #[arg(long)]
        user: Option<String>,
        /// Only events within this long, e.g. 1h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// At most this many, the newest.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum GuardrailsCmd {
    /// One guardrail, every field.
    Show { name: String },
    /// Create a guardrail (admin) from a JSON file with the API's fields, e.g.
    /// {"name": "no-ddl", "resource_roles": ["orders-rw"], "action": "block",
    /// "classes": ["ddl"]}.
    Add {
        /// The JSON file (`-`: standard input).
        #[arg(long)]
        file: PathBuf,
    },
    /// Delete a guardrail (admin; not one the config declares).
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum LockoutsCmd {
    /// Lift a lockout.
    Clear {
        /// What is locked out.
        #[arg(value_parser = ["user", "address"])]
        kind: String,
        /// The user name or client address.
        subject: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionsCmd {
    /// One session, live or ended, with its statements.
    Show {
        /// The session's id.
        id: String,
        /// Mark the statements containing this text.
        #[arg(long)]
        search: Option<String>,
    },
    /// End a live session (admin).
    End {
        /// The session's id.
        id: String,
    },
}
