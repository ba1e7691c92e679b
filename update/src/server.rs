//! A feed and bundle server on loopback for tests: HTTP/1.1 GET and HEAD with byte ranges (RAUC
//! streams a bundle by ranges), which can vanish halfway through a body and come back, and
//! counts what it sent. Files are read from disk at each request, so a test may change them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// A running server; it stops with the test process.
#[derive(Debug, Clone)]
pub struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<String, PathBuf>,
    /// Bytes of bodies still to send before the server vanishes.
    budget: Option<u64>,
    gone: bool,
    /// What a request gets while gone: nothing (the connection closed) or this status line.
    gone_answer: Option<&'static str>,
    body_bytes: u64,
    requests: Vec<String>,
}

impl Server {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let server = Server {
            port: listener.local_addr()?.port(),
            state: Arc::default(),
        };
        let state = Arc::clone(&server.state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&state);
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        Ok(server)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves `file` at `path` (`/feed.json`).
    pub fn put(&self, path: &str, file: impl Into<PathBuf>) {
        self.state().files.insert(path.to_owned(), file.into());
    }

    /// Vanishes (every connection dropped, at once or mid-body) once `bytes` more bytes of
    /// bodies have been sent.
    pub fn vanish_after(&self, bytes: u64) {
        let mut state = self.state();
        state.budget = Some(bytes);
        state.gone_answer = None;
    }

    /// Like [`Server::vanish_after`], but once gone it answers `404 Not Found` to every request,
    /// as a mirror that lost the file: clients that retry a vanished server (RAUC retries each
    /// block five times) give up at once.
    pub fn withdraw_after(&self, bytes: u64) {
        let mut state = self.state();
        state.budget = Some(bytes);
        state.gone_answer = Some("404 Not Found");
    }

    /// Whether it has vanished.
    pub fn vanished(&self) -> bool {
        self.state().gone
    }

    /// Comes back, serving as before.
    pub fn come_back(&self) {
        let mut state = self.state();
        state.gone = false;
        state.budget = None;
    }

    /// The bytes of bodies sent so far.
    pub fn body_bytes(&self) -> u64 {
        self.state().body_bytes
    }

    /// Every request so far: method, path and range.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Answers requests on one connection until the client closes it or the server vanishes.
fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let gone = {
            let s = lock(state);
            s.gone.then_some(s.gone_answer)
        };
        let (method, path, range) = request(&line, &mut reader)?;
        match gone {
            Some(None) => return Ok(()),
            Some(Some(status)) => {
                write!(out, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n")?;
                continue;
            }
            None => {}
        }
        lock(state).requests.push(format!(
            "{method} {path} {}",
            range.as_deref().unwrap_or("-")
        ));
        let file = lock(state).files.get(&path).cloned();
        let Some(file) = file.and_then(|f| std::fs::File::open(f).ok()) else {
            out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        };
        let size = file.metadata()?.len();
        let Some((first, last)) = span(range.as_deref(), size) else {
            write!(
                out,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\nContent-Length: 0\r\n\r\n"
            )?;
            continue;
        };
        let length = last + 1 - first;
        let status = if range.is_some() {
            format!("206 Partial Content\r\nContent-Range: bytes {first}-{last}/{size}")
        } else {
            "200 OK".to_owned()
        };
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Length: {length}\r\nAccept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n\r\n"
        )?;
        if method == "GET" {
            send_body(&mut out, file, first, length, state)?;
        }
    }
}

/// The method, path and `Range` of the request whose first line is `line`, its headers read.
fn request(
    line: &str,
    reader: &mut impl BufRead,
) -> std::io::Result<(String, String, Option<String>)> {
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut range = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            return Ok((method, path, range));
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_owned());
        }
    }
}

/// The bytes a `Range` header asks for (one span; the whole file without one).
fn span(range: Option<&str>, size: u64) -> Option<(u64, u64)> {
    let Some(range) = range else {
        return Some((0, size.checked_sub(1)?));
    };
    let (first, last) = range.strip_prefix("bytes=")?.split_once('-')?;
    let (first, last) = match (first.parse::<u64>().ok(), last.parse::<u64>().ok()) {
        (Some(f), Some(l)) => (f, l.min(size.checked_sub(1)?)),
        (Some(f), None) => (f, size.checked_sub(1)?),
        (None, Some(suffix)) => (size.saturating_sub(suffix), size.checked_sub(1)?),
        (None, None) => return None,
    };
    (first <= last).then_some((first, last))
}

/// Sends `length` bytes of `file` from `first`, or vanishes partway when the budget runs out.
fn send_body(
    out: &mut TcpStream,
    mut file: std::fs::File,
    first: u64,
    length: u64,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(first))?;
    let mut left = length;
    let mut buf = [0; 64 * 1024];
    while left > 0 {
        let mut want = left.min(64 * 1024);
        {
            let mut s = lock(state);
            if let Some(budget) = s.budget {
                if budget == 0 {
                    s.gone = true;
                }
                want = want.min(budget);
            }
            if s.gone {
                return Err(std::io::ErrorKind::ConnectionAborted.into());
            }
        }
        let want = usize::try_from(want).unwrap_or(buf.len());
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        out.write_all(&buf[..n])?;
        let mut s = lock(state);
        s.body_bytes += n as u64;
        if let Some(budget) = &mut s.budget {
            *budget -= n as u64;
        }
        left -= n as u64;
    }
    Ok(())
}
