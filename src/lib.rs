//! Portcullis: a database access gateway.
//!
//! Data flow: a client connects to a protocol listener (`protocol::postgres`,
//! `protocol::mysql`); `session` runs the one login sequence (handshake → authenticate →
//! `access::decide` → `upstream` login → accept → `relay`); every step emits session events
//! to `audit`. The control plane (`store`, `snapshot`, `admin`) keeps users, groups,
//! resources and resource roles, and publishes an immutable snapshot that sessions read.

pub mod access;
pub mod admin;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod fsutil;
pub mod lockout;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod relay;
pub mod seal;
pub mod session;
pub mod snapshot;
pub mod store;
pub mod tls;
pub mod upstream;
