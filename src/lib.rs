//! Portcullis: a database access gateway.
//!
//! A tour, bottom up (each layer imports only those below it; `tests/e2e/architecture.rs`
//! holds the line):
//!
//! - `model` (the vocabulary: users, groups, resources, resource roles, access modes),
//!   `clock`, `tls`, `config` (typed config, validation, secrets).
//! - `protocol`: PostgreSQL and MySQL bytes ⇄ messages, both handshakes, the upstream
//!   logins and the pool's resets — nothing of the gateway above it.
//! - `snapshot` (what decisions read), `auth` (verifiers, tokens; the only maker of an
//!   `Identity`), `access` (the pure decision; the only maker of a `Permit`; who may
//!   kill what; what an API role allows).
//! - `store` (SQLite or a shared PostgreSQL), `seal`, `bootstrap`, `control` (the live
//!   config and snapshot, reload, polling), `audit` (the monitoring log: events, writer,
//!   hash chain), `lockout`, `metrics`.
//! - `guardrail` (what a statement does, parsed; the rules one session works under).
//! - `relay` (the hot path: framing, observing, forwarding) and `upstream` (the one way to
//!   reach a database, with kept connections).
//! - `session`: the login sequence both protocols share (handshake → authenticate →
//!   `access::decide` → admit → `upstream` login → accept → relay → end) and the life of
//!   every session, native or not: exactly one `session_started` and `session_ended`.
//! - `admin` (the HTTP API; its contract is `api`, its OpenAPI document generated from the
//!   handlers), `cli` (the command line, a client of the same contract), `app` (wires it
//!   all, shuts it down).

mod access;
mod admin;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
mod bootstrap;
mod caps;
pub mod cli;
mod clock;
pub mod config;
mod console;
mod control;
mod fsutil;
pub mod guardrail;
mod lockout;
pub mod masking;
mod metrics;
pub mod model;
pub mod notify;
mod oneoff;
pub mod protocol;
pub mod relay;
mod requests;
pub mod runbook;
pub mod seal;
mod session;
mod snapshot;
mod sql;
pub mod store;
pub mod tls;
mod upstream;
