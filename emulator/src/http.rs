//! A minimal HTTP/1.1 server side: request parsing and response writing.
//!
//! Only what the emulator needs: a request line, headers (names compared
//! case-insensitively, values kept as raw bytes so non-ASCII can be detected) and a
//! body delimited by `Content-Length`. Chunked request bodies are refused, which our
//! client never sends. Responses always carry `Content-Length`.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use serde_json::Value;

/// Longest accepted request or header line, in bytes.
const MAX_LINE: u64 = 16 * 1024;
/// Most header lines accepted in one request.
const MAX_HEADERS: usize = 128;

/// One parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The target path without the query string.
    pub path: String,
    /// The raw query string (without `?`), possibly empty.
    pub query: String,
    /// Header names lower-cased, values raw and trimmed.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, empty when `body_too_large`.
    pub body: Vec<u8>,
    /// The body length announced (and read) from the wire.
    pub body_len: u64,
    /// The body exceeded the size limit and was discarded while being read.
    pub body_too_large: bool,
    /// Whether the connection may serve another request afterwards.
    pub keep_alive: bool,
}

impl Request {
    /// The raw value of the first header called `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// A response to be written.
#[derive(Clone, Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: value.to_string().into_bytes(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: text.into().into_bytes(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// What reading from a connection produced.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A complete request.
    Request(Request),
    /// The peer closed the connection (possibly mid-request).
    Closed,
    /// The request cannot be parsed; send this and close.
    Malformed(Response),
}

fn malformed(msg: &str) -> Incoming {
    Incoming::Malformed(Response::text(400, msg))
}

/// Reads one line of at most `MAX_LINE` bytes into `line`: `Some(true)` for a complete
/// line, `Some(false)` if it is too long, `None` if the peer closed before it ended.
fn read_line(reader: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    line.clear();
    let n = reader.by_ref().take(MAX_LINE).read_until(b'\n', line)?;
    if line.ends_with(b"\n") {
        Ok(Some(true))
    } else if n as u64 == MAX_LINE {
        Ok(Some(false))
    } else {
        Ok(None)
    }
}

fn trim_bytes(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Reads the next request from `reader`.
///
/// Bodies longer than `max_body` are read and discarded (their length is still
/// reported) so that the connection stays usable. `writer` is used only for the
/// interim `100 Continue` response.
pub(crate) fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    max_body: u64,
) -> io::Result<Incoming> {
    let mut line = Vec::new();
    // Request line, tolerating stray empty lines between requests.
    loop {
        match read_line(reader, &mut line)? {
            None => return Ok(Incoming::Closed),
            Some(false) => return Ok(malformed("request line too long")),
            Some(true) if trim_bytes(&line).is_empty() => continue,
            Some(true) => break,
        }
    }
    let Ok(request_line) = std::str::from_utf8(trim_bytes(&line)) else {
        return Ok(malformed("request line is not UTF-8"));
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(malformed("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Ok(malformed("malformed request line"));
    }
    let (method, target, http11) = (method.to_owned(), target.to_owned(), version == "HTTP/1.1");

    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        match read_line(reader, &mut line)? {
            None => return Ok(Incoming::Closed),
            Some(false) => return Ok(malformed("header line too long")),
            Some(true) => {}
        }
        let trimmed = trim_bytes(&line);
        if trimmed.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Ok(malformed("too many headers"));
        }
        let Some(colon) = trimmed.iter().position(|&b| b == b':') else {
            return Ok(malformed("malformed header line"));
        };
        let Ok(name) = std::str::from_utf8(trim_bytes(&trimmed[..colon])) else {
            return Ok(malformed("malformed header name"));
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Ok(malformed("malformed header name"));
        }
        headers.push((
            name.to_ascii_lowercase(),
            trim_bytes(&trimmed[colon + 1..]).to_vec(),
        ));
    }

    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    let keep_alive = if http11 {
        !has_token("connection", "close")
    } else {
        has_token("connection", "keep-alive")
    };
    if header("transfer-encoding").is_some() {
        return Ok(malformed(
            "Transfer-Encoding is not supported by the emulator; send Content-Length",
        ));
    }
    let body_len = match header("content-length") {
        None => 0,
        Some(v) => match std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        {
            Some(n) => n,
            None => return Ok(malformed("invalid Content-Length")),
        },
    };
    if body_len > 0 && has_token("expect", "100-continue") {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }

    let mut body = Vec::new();
    let body_too_large = body_len > max_body;
    let received = if body_too_large {
        io::copy(&mut reader.by_ref().take(body_len), &mut io::sink())?
    } else {
        body.reserve_exact(usize::try_from(body_len).unwrap_or(0));
        reader.by_ref().take(body_len).read_to_end(&mut body)? as u64
    };
    if received < body_len {
        return Ok(Incoming::Closed);
    }

    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Ok(Incoming::Request(Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body,
        body_len,
        body_too_large,
        keep_alive,
    }))
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes `response` with a `Content-Length`, adding `Connection: close` if `close`.
pub(crate) fn write_response(
    writer: &mut TcpStream,
    response: &Response,
    close: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        response.status,
        reason_phrase(response.status),
        response.content_type,
        response.body.len()
    );
    for (name, value) in &response.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&response.body);
    writer.write_all(&out)?;
    writer.flush()
}

/// Parses `application/x-www-form-urlencoded` data (also used for query strings).
pub(crate) fn parse_form(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (as space); invalid escapes are kept literally.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(
            parse_form("a=1&b=x+y%2Fz&c&d=%zz%4"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y/z".into()),
                ("c".into(), String::new()),
                ("d".into(), "%zz%4".into()),
            ]
        );
    }

    #[test]
    fn trimming() {
        assert_eq!(trim_bytes(b"  a b \r\n"), b"a b");
        assert_eq!(trim_bytes(b" \r\n"), b"");
    }
}
