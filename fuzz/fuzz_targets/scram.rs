//! The SCRAM-SHA-256 server on arbitrary client-first and client-final messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::auth::scram::{Candidate, server_first, verifier_with_salt};

fuzz_target!(|data: &[u8]| {
    let cut = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (first, rest) = data.split_at(cut);
    let last = rest.get(1..).unwrap_or_default();
    let salt = b"fuzz-salt-16byte";
    let Ok(server) = server_first(first, salt, 16) else {
        return;
    };
    let _ = server.message();
    let v = verifier_with_salt("password", salt, 16);
    let candidates = [Candidate {
        stored_key: v.stored_key.clone(),
        server_key: v.server_key.clone(),
        proves: (),
    }];
    let _ = server.finish(last, &candidates);
});
