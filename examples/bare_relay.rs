//! The floor for any userspace hop: `copy_bidirectional` between a client and a fixed
//! upstream, nothing else. Used by `benches/run.py` beside Portcullis and PgBouncer.
//!
//! Usage: bare_relay LISTEN_ADDR UPSTREAM_ADDR

use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_relay LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let main = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    main.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        loop {
            let (mut client, _) = listener.accept().await?;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                if let Ok(mut server) = TcpStream::connect(&upstream).await {
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    })
}
