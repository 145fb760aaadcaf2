//! The PostgreSQL relay hot path (framer + observers, both directions) on arbitrary
//! client and server bytes, through the real `relay` function.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::relay::postgres::sides::pair;
use portcullis_fuzz::{relay_bytes, split};

fuzz_target!(|data: &[u8]| {
    let (client, server) = split(data);
    let (c, s) = pair();
    relay_bytes(client, server, c, s);
});
