//! What a PostgreSQL client sends before and during login, decoded the way the gateway's
//! front end decodes it (pgwire's startup and frontend message codecs).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgwire::messages::startup::{SslRequest, Startup};
use pgwire::messages::{DecodeContext, Message, PgWireFrontendMessage};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let _ = SslRequest::decode(&mut buf, &DecodeContext::default());
    let mut buf = BytesMut::from(data);
    let _ = Startup::decode(&mut buf, &DecodeContext::default());
    let mut buf = BytesMut::from(data);
    for _ in 0..64 {
        match PgWireFrontendMessage::decode(&mut buf, &DecodeContext::default()) {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
});
