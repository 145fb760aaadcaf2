//! Reaching a resource: a TCP connection to its address, with `TCP_NODELAY`. Only a
//! `Permit` opens one, so nothing reaches a database without an access decision.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::access::Permit;

pub mod pool;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn connect(permit: &Permit) -> std::io::Result<TcpStream> {
    let address = &permit.resource().address;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address.as_str()))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connecting to {address} timed out"),
            )
        })??;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}
