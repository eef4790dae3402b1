//! A tiny blocking HTTP/1.1 client over `TcpStream`, enough to drive the emulator.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use dropbox_emulator::Emulator;
use serde_json::Value;

pub const TOKEN: &str = "emulator-token";

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `.tag` chain of `error_summary`, e.g. `"path/conflict/file/.."`.
    pub fn summary(&self) -> String {
        self.json()["error_summary"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// One keep-alive connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(emulator: &Emulator) -> Conn {
        let addr = emulator.url().trim_start_matches("http://").to_owned();
        let stream = TcpStream::connect(addr).expect("connect");
        Conn {
            reader: BufReader::new(stream),
        }
    }

    /// Sends one request; `Err` if the server closed the connection without a response.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> io::Result<Reply> {
        let mut out = format!("{method} {path} HTTP/1.1\r\nHost: emulator\r\n").into_bytes();
        for (name, value) in headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        self.reader.get_mut().write_all(&out)?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed without a response",
            ));
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').expect("header line");
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().expect("content-length"))
            .expect("responses carry Content-Length");
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// An RPC call with a JSON body.
    pub fn rpc(&mut self, route: &str, token: &str, body: &Value) -> io::Result<Reply> {
        let auth = format!("Bearer {token}");
        let body = body.to_string();
        self.send(
            "POST",
            route,
            &[
                ("Authorization", auth.as_bytes()),
                ("Content-Type", b"application/json"),
            ],
            body.as_bytes(),
        )
    }

    /// A content-upload call with the argument in `Dropbox-API-Arg`, escaped to ASCII.
    pub fn content(
        &mut self,
        route: &str,
        token: &str,
        arg: &Value,
        body: &[u8],
    ) -> io::Result<Reply> {
        let auth = format!("Bearer {token}");
        let arg = ascii_json(arg);
        self.send(
            "POST",
            route,
            &[
                ("Authorization", auth.as_bytes()),
                ("Dropbox-API-Arg", arg.as_bytes()),
                ("Content-Type", b"application/octet-stream"),
            ],
            body,
        )
    }
}

/// JSON with every character from 0x7F up escaped as `\uXXXX` (UTF-16 units).
pub fn ascii_json(value: &Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if (c as u32) < 0x7f {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// One-shot RPC call on a fresh connection.
pub fn rpc(emulator: &Emulator, route: &str, body: &Value) -> Reply {
    Conn::open(emulator).rpc(route, TOKEN, body).expect("rpc")
}

/// One-shot content call on a fresh connection.
pub fn content(emulator: &Emulator, route: &str, arg: &Value, body: &[u8]) -> Reply {
    Conn::open(emulator)
        .content(route, TOKEN, arg, body)
        .expect("content call")
}
