//! PostgreSQL: the client-facing startup (pgwire), the upstream login (postgres-protocol),
//! cancel-key mapping and the wire helpers the relay and the pool use.

pub mod backend;
pub mod exec;
pub mod front;
pub mod params;
