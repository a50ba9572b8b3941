//! A TCP proxy that cuts the line: it forwards connections to a server until the clients
//! have sent `cut_after` bytes in all, then shuts every connection down and closes each
//! new one at once, as a failed link or a dead load balancer would. For fault injection
//! in front of a real server, never instead of one.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::kit::{KitError, Result};

/// A running proxy; it stops accepting when dropped.
pub struct CuttingProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: String,
    cut_after: u64,
    sent: AtomicU64,
    cut: AtomicBool,
    stopped: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
}

impl Shared {
    /// Cuts every connection, now and from now on.
    fn cut_all(&self) {
        self.cut.store(true, Ordering::SeqCst);
        if let Ok(open) = self.open.lock() {
            for s in open.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl CuttingProxy {
    /// Forwards to `upstream` (`127.0.0.1:PORT`) until clients sent `cut_after` bytes.
    pub fn start(upstream: &str, cut_after: u64) -> Result<CuttingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| KitError::Io {
            what: "binding the proxy".into(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| KitError::Io {
                what: "the proxy's port".into(),
                source,
            })?
            .port();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            cut_after,
            sent: AtomicU64::new(0),
            cut: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        std::thread::spawn(move || accept(listener, s));
        Ok(CuttingProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            shared,
        })
    }

    /// Bytes the clients sent through so far.
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::SeqCst)
    }

    /// Whether the line was cut.
    pub fn was_cut(&self) -> bool {
        self.shared.cut.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.cut_all();
        // Wake the accepting thread so that it sees `stopped`.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if shared.cut.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect(&shared.upstream) else {
            continue;
        };
        if let (Ok(c), Ok(s), Ok(mut open)) =
            (client.try_clone(), server.try_clone(), shared.open.lock())
        {
            open.push(c);
            open.push(s);
        }
        let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        let up = shared.clone();
        std::thread::spawn(move || pump(client, server, Some(&up)));
        std::thread::spawn(move || pump(s2, c2, None));
    }
}

/// Copies `from` to `to` until either ends; `counted` counts the bytes (client to server)
/// and cuts the line once they pass the limit.
fn pump(mut from: TcpStream, mut to: TcpStream, counted: Option<&Shared>) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(shared) = counted {
            if shared.cut.load(Ordering::SeqCst) {
                break;
            }
            let total = shared.sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= shared.cut_after {
                shared.cut_all();
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
