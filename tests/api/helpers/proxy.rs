//! A TCP proxy that can stop forwarding, to play a network partition between server and database.

use std::sync::Arc;

/// A TCP proxy in front of the database that can "freeze": it keeps every connection open but
/// stops forwarding bytes, as a network partition does (the server is up, nobody answers).
pub struct FreezableProxy {
    frozen: Arc<std::sync::atomic::AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl FreezableProxy {
    /// Proxies to the host and port of `url` and returns the proxy with `url` rewritten to it.
    pub async fn start(url: &str) -> (FreezableProxy, String) {
        let (scheme, rest) = url.split_once('@').expect("URL with a user");
        let (upstream, path) = rest.split_once('/').expect("URL with a database");
        let upstream = upstream.to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = frozen.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = flag.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, flag.clone()),
                        pipe(server_read, client_write, flag),
                    );
                });
            }
        });
        let proxied = format!("{scheme}@{addr}/{path}");
        (FreezableProxy { frozen, accept }, proxied)
    }

    pub fn freeze(&self, frozen: bool) {
        self.frozen
            .store(frozen, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.freeze(false);
        self.accept.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Frozen: hold the bytes until thawed (the test always thaws, or its runtime ends).
        while frozen.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
