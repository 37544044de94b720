//! Raw HTTP/1.1 for the registry tests: one request on its own connection, read to the end
//! (or to where the connection broke), and the head parsing the fault proxy shares.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An HTTP response read to the end of the connection (or until it broke).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The header fields, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body bytes that arrived (fewer than `Content-Length` if the connection was cut).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header field of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, if given.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }
}

/// Sends one request with `Connection: close` and reads the answer until the server closes
/// the connection; an error only if nothing like an HTTP status line came back.
pub fn http_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    // A cut connection ends the read with what arrived.
    let mut buf = [0u8; 64 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let end = find(&raw, b"\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "no HTTP response head from {host}: {:?}",
                String::from_utf8_lossy(&raw)
            ),
        )
    })?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = parse_status_line(lines.next().unwrap_or_default()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("status of {head:?}"),
        )
    })?;
    let headers = lines.filter_map(parse_header).collect();
    let mut body = raw[end + 4..].to_vec();
    if method == "HEAD" {
        body.clear();
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.1 200 OK` → 200.
pub(super) fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|p| p.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// `Name: value` → (`name`, `value`).
pub(super) fn parse_header(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once(':')?;
    Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
}
