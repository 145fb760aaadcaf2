//! The MySQL relay hot path (framer, COM_* and result-set observation, KILL parsing) on
//! arbitrary client and server bytes, through the real `relay` function.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::relay::mysql::pair;
use portcullis_fuzz::{relay_bytes, split};

fuzz_target!(|data: &[u8]| {
    let (client, server) = split(data);
    let (c, s) = pair(Box::new(|id| (id % 2 == 0).then_some(id + 1)));
    relay_bytes(client, server, c, s);
});
