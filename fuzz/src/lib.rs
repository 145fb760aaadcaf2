//! Shared pieces of the fuzz targets.

use portcullis::relay::Outcome;
use portcullis::relay::{ClientSide, Counters, Ends, ServerSide, Sink, relay};

/// Splits one input into client and server bytes at a point its first two bytes choose.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return (data, &[]);
    };
    let cut = usize::from(u16::from_le_bytes(*head)) % (rest.len() + 1);
    rest.split_at(cut)
}

struct Discard;

impl Sink for Discard {
    fn outcome(&mut self, _: Outcome) {}
}

/// Runs the real relay over in-memory streams until both inputs are consumed.
pub fn relay_bytes<C: ClientSide, S: ServerSide>(client: &[u8], server: &[u8], mut c: C, mut s: S) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // The first bytes arrive with the login (as pgwire's read buffer would hold them);
        // the rest come from the sockets in reads of the relay's own sizes.
        let (client_first, client_rest) = client.split_at(client.len() / 3);
        let (upstream_first, upstream_rest) = server.split_at(server.len() / 3);
        let ends = Ends {
            client_r: client_rest,
            client_w: tokio::io::sink(),
            up_r: upstream_rest,
            up_w: tokio::io::sink(),
            client_first,
            upstream_first,
        };
        let mut counters = Counters::default();
        let _ = relay(
            ends,
            &mut c,
            &mut s,
            std::future::pending(),
            &mut Discard,
            &mut counters,
        )
        .await;
    });
}
