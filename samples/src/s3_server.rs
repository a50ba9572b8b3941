//! An S3-compatible server for tests and benchmarks: moto's (`pip install
//! 'moto[server]'`, which `samples/kit/ensure.sh` does), on a free loopback port, with
//! one bucket; killed on drop. It serves ranged reads and multipart uploads as S3 does.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::kit::{KitError, Result};

/// A running server.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket made at start.
    pub bucket: String,
}

/// For end-to-end tests: `true` when moto's server can run here; otherwise says why the
/// test is skipped, except under `CI=true`, where it fails.
pub fn available_or_skip(test: &str) -> bool {
    let found = Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|source| KitError::Io {
            what: "running moto_server (pip install 'moto[server]')".into(),
            source,
        })
        .map(|_| ());
    crate::kit::usable_or_skip(test, found)
}

/// One HTTP request without a body; the status code.
fn request(addr: &str, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:?}")))
}

/// One HTTP GET; the body (`Connection: close`, read to the end).
fn get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(format!(
            "GET {path}: {}",
            text.lines().next().unwrap_or("no answer")
        ))),
    }
}

impl S3Server {
    /// The multipart uploads of the bucket that were started and neither completed nor
    /// aborted (S3's ListMultipartUploads), by key.
    pub fn pending_uploads(&self) -> std::io::Result<Vec<String>> {
        let addr = self.endpoint.trim_start_matches("http://");
        let body = get(addr, &format!("/{}?uploads", self.bucket))?;
        Ok(body
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(String::from)
            .collect())
    }

    /// `host:port` of the server.
    pub fn address(&self) -> &str {
        self.endpoint.trim_start_matches("http://")
    }

    /// Starts a server and makes `bucket` in it.
    pub fn start(bucket: &str) -> Result<S3Server> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| KitError::Io { what, source }
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("finding a free port"))?
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("starting moto_server"))?;
        let addr = format!("127.0.0.1:{port}");
        let server = S3Server {
            child,
            endpoint: format!("http://{addr}"),
            bucket: bucket.to_string(),
        };
        let start = Instant::now();
        while request(&addr, "GET", "/").is_err() {
            if start.elapsed() > Duration::from_secs(120) {
                return Err(KitError::Timeout(format!(
                    "moto_server did not answer on {addr} in 120 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        match request(&addr, "PUT", &format!("/{bucket}")) {
            Ok(200) => Ok(server),
            Ok(code) => Err(KitError::Missing(format!(
                "making bucket {bucket}: HTTP {code}"
            ))),
            Err(source) => Err(KitError::Io {
                what: format!("making bucket {bucket}"),
                source,
            }),
        }
    }

    /// The environment a client needs for this server (the standard AWS variables).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "coroner-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "coroner-test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
