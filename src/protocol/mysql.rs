//! MySQL: packets, both handshakes, binary-protocol values.

pub mod exec;
pub mod handshake;
pub mod packet;
pub mod params;
pub mod upstream;
