//! A network partition between one process and a server, on loopback: a
//! TCP relay the process connects to instead of the server. While cut, the
//! relay moves no byte in either direction and holds every connection open
//! — no reset, no close, exactly what a blackholed route looks like to the
//! peers: only timeouts and missed heartbeats reveal it. Healed, the bytes
//! held flow again (to whatever the peers have not closed meanwhile).

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A relay to one server that can be cut and healed; stops when dropped.
#[derive(Debug)]
pub struct Partition {
    addr: SocketAddr,
    open: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Partition {
    /// Relay connections on a free loopback port to `server`.
    pub async fn start(server: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (open, watching) = watch::channel(true);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let watching = watching.clone();
                tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(server).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = upstream.into_split();
                    tokio::join!(
                        relay(client_read, server_write, watching.clone()),
                        relay(server_read, client_write, watching),
                    );
                });
            }
        });
        Ok(Self { addr, open, accept })
    }

    /// Where the process should connect instead of the server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop every byte, both ways, on every connection.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Let the bytes flow again.
    pub fn heal(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copy `from` to `to` while the relay is open; while it is cut, hold.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut open: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if open.wait_for(|o| *o).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if open.wait_for(|o| *o).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
