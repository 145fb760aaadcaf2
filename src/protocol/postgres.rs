//! PostgreSQL: the client-facing startup (pgwire), the upstream login (postgres-protocol),
//! cancel-key mapping and the relay framing/observation.

pub mod backend;
pub mod front;
pub mod observe;
pub mod params;
