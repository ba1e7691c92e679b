//! What the single-agent tests (D-Bus, MQTT, the web page) share: a directory and processes that
//! clean up after themselves, and plain HTTP/1.1 requests to the agent's web page.

// Each test file uses its own part.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

/// A directory of a test, removed when dropped.
pub struct Dir(pub PathBuf);

impl Dir {
    /// A new, empty `daisee-<kind>-<name>-<pid>` in the temporary directory.
    pub fn new(kind: &str, name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("daisee-{kind}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a test directory");
        Self(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A connection to `address` that sent `method` for `path` with `headers` (each ending in CRLF).
pub fn request(address: &str, method: &str, path: &str, headers: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).expect("HTTP");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("HTTP");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{headers}\r\n"
    )
    .expect("HTTP");
    stream
}

/// An HTTP/1.1 request to `address`: the status, the headers (lower-case names) and the body.
pub fn http(address: &str, method: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    exchange(request(
        address,
        method,
        path,
        "Content-Length: 0\r\nConnection: close\r\n",
    ))
}

/// A POST of JSON `body` to `address` with `headers` (each ending in CRLF): the status, the
/// headers and the body of the answer.
pub fn post(
    address: &str,
    path: &str,
    body: &str,
    headers: &str,
) -> (u16, Vec<(String, String)>, String) {
    let headers = format!(
        "{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    let mut stream = request(address, "POST", path, &headers);
    stream.write_all(body.as_bytes()).expect("HTTP");
    exchange(stream)
}

/// The answer on `stream`.
pub fn exchange(mut stream: TcpStream) -> (u16, Vec<(String, String)>, String) {
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("HTTP");
    let (head, body) = answer.split_once("\r\n\r\n").expect("HTTP");
    let mut lines = head.lines();
    let status = lines
        .next()
        .expect("HTTP")
        .split(' ')
        .nth(1)
        .expect("HTTP")
        .parse()
        .expect("HTTP");
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
