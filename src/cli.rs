//! The command line (SPEC §3). `serve` and `check-config` run locally; every other
//! command talks to a running gateway's admin API (`--server`, token from
//! `PORTCULLIS_TOKEN`, else the bootstrap token file). Tables by default, `--output json`.

pub mod audit;
pub mod client;
mod commands;
mod oneoffs;
mod requests;
pub mod table;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use commands::{Printed, run_remote};
pub use oneoffs::lint_runbooks;

#[derive(Parser, Debug)]
#[command(name = "portcullis", version, about = "Database access gateway")]
pub struct Cli {
    /// Admin API of the gateway to manage.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_SERVER",
        default_value = "http://127.0.0.1:8009"
    )]
    pub server: String,
    /// Bearer token; defaults to the contents of `data/bootstrap-token` when present.
    #[arg(long, global = true, env = "PORTCULLIS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Csv,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway: listeners, admin API, monitoring log.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a config; print every problem with its key path.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
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
    /// The monitoring log: verify its hash chain, follow it.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Sessions from the index; `sessions show ID` lists its statements, `sessions end ID`
    /// ends a live one.
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
    /// Recorded admin changes, newest first.
    Changes {
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
        #[arg(long, conflicts_with = "pending")]
        mine: bool,
        #[arg(long)]
        pending: bool,
        /// pending | approved | denied | expired | revoked | cancelled | executed
        #[arg(long)]
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
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RequestCmd {
    Show {
        id: String,
    },
    /// Vote for it (approvers; never your own).
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Deny it (any approver; one denial ends it).
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// End a pending or approved request now (admin).
    Revoke {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Withdraw your own request.
    Cancel {
        id: String,
    },
    /// Run your approved command, once.
    Run {
        id: String,
    },
    /// The access request rules.
    Rules,
}

/// A one-off's statements and limits.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
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
    List,
    Show {
        name: String,
    },
    Run {
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
    Lint { dir: Option<PathBuf> },
}

/// Which sessions `portcullis sessions` lists.
#[derive(clap::Args, Debug)]
pub struct SessionsFilter {
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub resource_role: Option<String>,
    /// native | web | runbooks
    #[arg(long)]
    pub mode: Option<String>,
    /// live | ended
    #[arg(long)]
    pub status: Option<String>,
    /// Only sessions started within this long, e.g. 1h, 7d.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    List,
    Show {
        name: String,
    },
    Add {
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long, default_value = "")]
        display_name: String,
        /// Repeat for several groups.
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long, default_value = "standard")]
        role: String,
        #[arg(long, default_value = "active")]
        status: String,
        /// The user's password (prefer --password-stdin outside demos).
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// active | inactive | invited. Inactive users' live sessions end.
    SetStatus {
        name: String,
        status: String,
    },
    /// Replace the user's groups.
    SetGroups {
        name: String,
        groups: Vec<String>,
    },
    SetRole {
        name: String,
        role: String,
    },
    /// Set a new password (read from stdin unless --password). Your own password needs
    /// --current-password unless you are an admin.
    Passwd {
        name: String,
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        current_password: Option<String>,
    },
    Delete {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    List,
    Show { name: String },
    Add { name: String },
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ResourceCmd {
    List,
    Show {
        name: String,
    },
    Add {
        name: String,
        #[arg(long)]
        protocol: String,
        #[arg(long)]
        address: String,
        #[arg(long, default_value = "prefer")]
        tls: String,
    },
    Set {
        name: String,
        #[arg(long)]
        address: Option<String>,
        #[arg(long)]
        tls: Option<String>,
    },
    Delete {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ResourceRoleCmd {
    List,
    Show {
        name: String,
    },
    Add {
        name: String,
        #[arg(long)]
        resource: String,
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
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Comma-separated: native,web,runbooks.
        #[arg(long, default_value = "native")]
        modes: String,
        /// A PostgreSQL startup parameter clients may send (repeat; default: a safe list).
        #[arg(long = "forward-option")]
        forward_options: Vec<String>,
    },
    Set {
        name: String,
        #[arg(long)]
        database: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        modes: Option<String>,
        /// Replace the forwarded startup parameters (repeat).
        #[arg(long = "forward-option")]
        forward_options: Vec<String>,
    },
    Delete {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccessCmd {
    /// Who can reach what: for one resource role, one user, or everything.
    Show {
        resource_role: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
    /// The periodic access review: who can reach each resource role, through which
    /// groups, and when they last used it; unused grants flagged.
    Review {
        /// Flag grants unused for this long.
        #[arg(long, default_value = "90d")]
        unused_for: String,
        #[arg(long)]
        resource_role: Option<String>,
    },
    Grant {
        resource_role: String,
        group: String,
    },
    Revoke {
        resource_role: String,
        group: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token; its value is printed once.
    Create {
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value = "")]
        name: String,
        /// e.g. 30d, 12h; none for no expiry.
        #[arg(long)]
        expires: Option<String>,
    },
    List {
        #[arg(long)]
        user: Option<String>,
    },
    Revoke {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the hash chain end to end; names the first broken line. Reads the files
    /// directly (no server needed). With --public-key, every checkpoint's signature too,
    /// so a rebuilt log is found by someone who holds only the public key.
    Verify {
        /// The log directory; default: `audit.dir` of the config.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// The gateway's checkpoint public key (hex), as `audit public-key` prints it.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Lines allowed after the last checkpoint (default: from `audit.checkpoint_events`).
        #[arg(long)]
        max_unsigned: Option<u64>,
    },
    /// Print the public key that verifies this gateway's checkpoints (hex Ed25519).
    PublicKey {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print new events as they are written (like `tail -f`).
    Tail {
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum LockoutsCmd {
    /// Lift a lockout.
    Clear {
        #[arg(value_parser = ["user", "address"])]
        kind: String,
        subject: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionsCmd {
    /// Show one live session.
    Show { id: String },
    /// End a live session (admin).
    End { id: String },
}
