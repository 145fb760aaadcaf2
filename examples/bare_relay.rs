//! The floor for any userspace hop: `copy_bidirectional` between a client and a fixed
//! upstream, nothing else. Used by `benches/run.py` beside Portcullis and PgBouncer.
//!
//! Usage: bare_relay LISTEN_ADDR UPSTREAM_ADDR [per-core]
//!
//! `per-core` runs each connection on one of N single-threaded runtimes (one per core, no
//! work stealing) instead of tokio's default multi-threaded scheduler — the experiment
//! behind `runtime.per_core` in the gateway (docs/performance.md).

use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_relay LISTEN_ADDR UPSTREAM_ADDR [per-core]");
        std::process::exit(2);
    };
    let per_core = args.next().as_deref() == Some("per-core");
    let main = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cores = if per_core {
        portcullis::cores::Cores::start(0)?.into()
    } else {
        None
    };
    main.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        loop {
            let (client, _) = listener.accept().await?;
            let upstream = upstream.clone();
            let session = |mut client: TcpStream| async move {
                let _ = client.set_nodelay(true);
                if let Ok(mut server) = TcpStream::connect(&upstream).await {
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            };
            match &cores {
                Some(cores) => cores.spawn(client, session),
                None => {
                    tokio::spawn(session(client));
                }
            }
        }
    })
}
