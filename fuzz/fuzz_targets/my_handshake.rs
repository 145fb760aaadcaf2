//! The MySQL handshake: a client's HandshakeResponse41 (with every capability mask), an
//! SSL request, and a server's greeting as the upstream login reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::protocol::mysql::handshake::{is_ssl_request, parse_response, parse_server_hello};

fuzz_target!(|data: &[u8]| {
    let caps = data
        .get(..4)
        .map_or(u32::MAX, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let body = data.get(4..).unwrap_or_default();
    let _ = is_ssl_request(body);
    let _ = parse_response(body, caps);
    let _ = parse_response(body, u32::MAX);
    let _ = parse_server_hello(body);
});
