//! Wire protocols: bytes ⇄ messages, handshakes and relay framing. Never imports
//! `access`, `audit` or `admin`; `session` drives these.

pub mod framer;
pub mod postgres;
