//! A fault-injecting HTTP/1.1 proxy to put between a client and a plain-HTTP registry: cut,
//! spoilt, truncated, refused (429, 500) or stalled responses, and a record of every request
//! (with its `Range`), so that a test can see how a client recovered.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::http::{parse_header, parse_status_line};

/// What a [`FaultProxy`] does to the requests its rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: every request passes.
    None,
    /// Sends the response head and this many body bytes, then closes the connection.
    CutAfter(u64),
    /// Sends the whole body with one byte changed, the length kept: in a gzip body the
    /// low byte of the header's MTIME (decompressed contents unchanged, only the blob digest
    /// tells), in anything else the middle byte.
    WrongBytes,
    /// Sends the head (the full `Content-Length`) and the body less its last quarter (at
    /// least one byte less), then closes.
    Truncate,
    /// Answers `429 Too Many Requests` with `Retry-After` without asking the registry.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_secs: u64,
    },
    /// Answers `500` (a distribution `UNKNOWN` error) to this many matching requests, then
    /// lets them pass.
    ServerError {
        /// How many.
        times: usize,
    },
    /// Sends the head and this many body bytes, then holds the connection open until
    /// [`FaultProxy::release`] or [`FaultProxy::stop`], then closes it.
    Stall {
        /// Body bytes sent before stalling.
        after_bytes: u64,
    },
}

/// Which requests a fault applies to, and how many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// The method (`GET`).
    pub method: String,
    /// A substring of the request target (`/blobs/sha256:`, or one blob's digest).
    pub path_contains: String,
    /// The fault.
    pub fault: Fault,
    /// How many matching requests get it (then they pass).
    pub times: usize,
}

impl FaultRule {
    /// `fault` on the first `method` request whose target contains `path_contains` (the
    /// first `times` for [`Fault::ServerError`]; none for [`Fault::None`]).
    pub fn new(method: &str, path_contains: &str, fault: Fault) -> FaultRule {
        let times = match fault {
            Fault::None => 0,
            Fault::ServerError { times } => times,
            _ => 1,
        };
        FaultRule {
            method: method.to_owned(),
            path_contains: path_contains.to_owned(),
            fault,
            times,
        }
    }

    /// Applies the fault to this many matching requests instead (`usize::MAX`: all).
    pub fn times(mut self, times: usize) -> FaultRule {
        self.times = times;
        self
    }
}

/// A request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// The `Range` header, if any (`bytes=1000-`).
    pub range: Option<String>,
    /// The status the client got (the registry's, or the fault's 429/500, or 502 when the
    /// registry could not be reached).
    pub status: u16,
    /// Whether the fault was applied to it.
    pub faulted: bool,
    /// When it arrived, from the proxy's start.
    pub at: Duration,
}

impl Seen {
    /// The first byte a `Range: bytes=N-` header asks for.
    pub fn range_start(&self) -> Option<u64> {
        let spec = self.range.as_deref()?.strip_prefix("bytes=")?;
        spec.split('-').next()?.trim().parse().ok()
    }
}

struct ProxyState {
    upstream: String,
    rule: FaultRule,
    started: Instant,
    remaining: Mutex<usize>,
    seen: Mutex<Vec<Seen>>,
    stopping: AtomicBool,
    released: (Mutex<bool>, Condvar),
    connections: Mutex<Vec<TcpStream>>,
}

/// An HTTP/1.1 proxy on a free 127.0.0.1 port in front of a plain-HTTP registry: each request
/// is read (head and body), sent on with `Connection: close`, and its response streamed back,
/// then the connection is closed; the [`FaultRule`]'s requests get its fault. Clients address
/// it as the registry (`proxy.reference("x:1")`): the `Host` header passes unchanged, so the
/// registry's upload `Location`s point back at the proxy.
pub struct FaultProxy {
    port: u16,
    state: Arc<ProxyState>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`127.0.0.1:PORT`) applying `fault` to the first `GET` of a
    /// blob (`/blobs/sha256:`); see [`FaultProxy::start_with`] to aim it.
    pub fn start(upstream: &str, fault: Fault) -> FaultProxy {
        FaultProxy::start_with(upstream, FaultRule::new("GET", "/blobs/sha256:", fault))
    }

    /// A proxy to `upstream` with this rule.
    pub fn start_with(upstream: &str, rule: FaultRule) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            remaining: Mutex::new(rule.times),
            rule,
            started: Instant::now(),
            seen: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            released: (Mutex::new(false), Condvar::new()),
            connections: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(clone) = conn.try_clone() {
                    shared.connections.lock().unwrap().push(clone);
                }
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(conn, &state);
                });
            }
        });
        FaultProxy {
            port,
            state,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PROXYPORT/REPO:TAG`.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    /// Every request so far, in the order they arrived.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The requests the fault was applied to.
    pub fn faulted(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.faulted).collect()
    }

    /// Waits until the fault has been applied once (for [`Fault::Stall`]: its bytes sent).
    pub fn wait_for_fault(&self, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if !self.faulted().is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Lets stalled connections close.
    pub fn release(&self) {
        let (lock, cvar) = &self.state.released;
        *lock.lock().unwrap() = true;
        cvar.notify_all();
    }

    /// Stops listening and closes every connection: the next request is refused.
    pub fn stop(&mut self) {
        if self.state.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        self.release();
        // Wake the accept loop, which then drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for conn in self.state.connections.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ProxyState {
    /// The fault for this request, if the rule matches it and has uses left.
    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        if method != self.rule.method || !path.contains(&self.rule.path_contains) {
            return None;
        }
        let mut remaining = self.remaining.lock().unwrap();
        if *remaining == 0 || self.rule.fault == Fault::None {
            return None;
        }
        *remaining -= 1;
        Some(self.rule.fault.clone())
    }

    fn record(&self, method: &str, path: &str, range: Option<String>, status: u16, faulted: bool) {
        self.seen.lock().unwrap().push(Seen {
            method: method.to_owned(),
            path: path.to_owned(),
            range,
            status,
            faulted,
            at: self.started.elapsed(),
        });
    }

    fn stall(&self) {
        let (lock, cvar) = &self.released;
        let mut released = lock.lock().unwrap();
        while !*released && !self.stopping.load(Ordering::SeqCst) {
            released = cvar
                .wait_timeout(released, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }
}

/// Reads a message head (up to the empty line) as lines without their CRLF.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        total += n;
        if total > 256 << 10 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// Reads a request body: `Content-Length` bytes, or a chunked body decoded.
fn read_body(reader: &mut impl BufRead, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            if size == 0 {
                read_head(reader)?; // trailers and the final CRLF
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    }
    if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(body)
}

/// A response made here (429, 500, 502), distribution's error body, closing.
fn answer(conn: &mut TcpStream, status: u16, reason: &str, extra: &str) -> std::io::Result<()> {
    let code = match status {
        429 => "TOOMANYREQUESTS",
        _ => "UNKNOWN",
    };
    let body = format!("{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"{reason}\"}}]}}");
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()?;
    let _ = conn.shutdown(Shutdown::Both);
    Ok(())
}

/// One client connection: one request, forwarded, its response streamed back, closed.
fn serve(mut conn: TcpStream, state: &ProxyState) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let head = read_head(&mut reader)?;
    let request_line = head.first().cloned().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = head[1..].iter().filter_map(|l| parse_header(l)).collect();
    let body = read_body(&mut reader, &headers)?;
    let range = headers
        .iter()
        .find(|(n, _)| n == "range")
        .map(|(_, v)| v.clone());

    let fault = state.take_fault(&method, &path);
    match fault {
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            state.record(&method, &path, range, 429, true);
            let extra = format!("Retry-After: {retry_after_secs}\r\n");
            return answer(&mut conn, 429, "Too Many Requests", &extra);
        }
        Some(Fault::ServerError { .. }) => {
            state.record(&method, &path, range, 500, true);
            return answer(&mut conn, 500, "Internal Server Error", "");
        }
        _ => {}
    }

    let mut upstream = match TcpStream::connect(&state.upstream) {
        Ok(s) => s,
        Err(_) => {
            state.record(&method, &path, range, 502, false);
            return answer(&mut conn, 502, "Bad Gateway", "");
        }
    };
    // The head as sent, less what describes this hop; the body re-framed by length.
    let mut out = format!("{request_line}\r\n");
    let hop = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "content-length",
        "expect",
        "te",
        "upgrade",
    ];
    for line in &head[1..] {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !hop.contains(&name.as_str()) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    let had_body = headers
        .iter()
        .any(|(n, _)| n == "content-length" || n == "transfer-encoding");
    if had_body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    upstream.write_all(out.as_bytes())?;
    upstream.write_all(&body)?;
    upstream.flush()?;

    let mut from = BufReader::new(upstream);
    let response_head = read_head(&mut from)?;
    let status = response_head
        .first()
        .and_then(|l| parse_status_line(l))
        .unwrap_or(0);
    let content_length = response_head[1..]
        .iter()
        .filter_map(|l| parse_header(l))
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let mut raw_head = response_head.join("\r\n");
    raw_head.push_str("\r\n\r\n");

    // Faults on the body need its length and a body to spoil.
    let body_fault = match (&fault, content_length) {
        (Some(f), Some(len)) if method != "HEAD" && len > 0 && (200..300).contains(&status) => {
            match f {
                // A body no longer than the cut would come through whole.
                Fault::CutAfter(n) | Fault::Stall { after_bytes: n } if len <= *n => None,
                _ => Some((f.clone(), len)),
            }
        }
        _ => None,
    };
    if body_fault.is_none() && fault.is_some() {
        // The rule matched a response with nothing to spoil: give the use back.
        *state.remaining.lock().unwrap() += 1;
    }
    state.record(&method, &path, range, status, body_fault.is_some());
    conn.write_all(raw_head.as_bytes())?;
    let Some((fault, len)) = body_fault else {
        std::io::copy(&mut from, &mut conn)?;
        conn.flush()?;
        let _ = conn.shutdown(Shutdown::Both);
        return Ok(());
    };
    match fault {
        Fault::CutAfter(n) => {
            std::io::copy(&mut (&mut from).take(n.min(len)), &mut conn)?;
        }
        Fault::Truncate => {
            let keep = len - (len / 4).max(1);
            std::io::copy(&mut (&mut from).take(keep), &mut conn)?;
        }
        Fault::Stall { after_bytes } => {
            std::io::copy(&mut (&mut from).take(after_bytes.min(len)), &mut conn)?;
            conn.flush()?;
            state.stall();
        }
        Fault::WrongBytes => {
            let mut body = Vec::new();
            (&mut from).take(len).read_to_end(&mut body)?;
            let at = if body.starts_with(&[0x1f, 0x8b]) && body.len() > 4 {
                4
            } else {
                body.len() / 2
            };
            body[at] ^= 0xff;
            conn.write_all(&body)?;
        }
        Fault::None | Fault::TooManyRequests { .. } | Fault::ServerError { .. } => {
            unreachable!("answered above")
        }
    }
    conn.flush()?;
    let _ = conn.shutdown(Shutdown::Both);
    Ok(())
}
