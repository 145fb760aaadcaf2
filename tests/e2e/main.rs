//! End-to-end tests: the gateway in-process (or as its binary) against the real
//! PostgreSQL, MariaDB and NATS of the machine, driven by real clients. One test binary,
//! so the crate is linked once; modules by area.
#![allow(clippy::unwrap_used)]

mod access_requests;
mod admin_api;
mod architecture;
mod audit_failure;
mod audit_log;
mod common;
mod config_fixtures;
mod console;
mod crash;
mod faults;
mod first_hour;
mod framer_props;
mod guardrails;
mod identity;
mod jdbc;
mod live_changes;
mod lockout;
mod masking;
mod mysql_access;
mod mysql_async_client;
mod mysql_upstream;
mod mysql_upstream_reuse;
mod mysql_upstream_sha2;
mod nats;
mod node;
mod oneoffs;
mod postgres_access;
mod postgres_clients;
mod postgres_upstream_auth;
mod runbooks;
mod secrets;
mod security_access;
mod security_log;
mod shutdown;
mod slowloris;
mod store;
mod threads;
mod transparent_my;
mod transparent_pg;
mod upstream_reuse;
