//! MySQL: packets, both handshakes and the relay observers.

pub mod handshake;
pub mod observe;
pub mod packet;
pub mod params;
