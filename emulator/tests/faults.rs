//! Fault injection, batch-commit concurrency, connection handling and the binary.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{content, rpc, Conn, TOKEN};
use dropbox_emulator::{content_hash, Config, Emulator, Fault, FaultKind};
use serde_json::json;

const START: &str = "/2/files/upload_session/start";
const APPEND: &str = "/2/files/upload_session/append_v2";
const BATCH: &str = "/2/files/upload_session/finish_batch_v2";
const UPLOAD: &str = "/2/files/upload";

fn fault(route: &str, nth: u64, kind: FaultKind) -> Fault {
    Fault {
        route: route.into(),
        nth,
        kind,
    }
}

fn session(emu: &Emulator, data: &[u8], close: bool) -> String {
    content(emu, START, &json!({"close": close}), data).json()["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn lost_append_response_still_changes_state() {
    let emu = Emulator::start(Config::default()).unwrap();
    let id = session(&emu, b"0123", false);
    emu.inject(fault(APPEND, 1, FaultKind::LostResponse));
    let arg = json!({"cursor": {"session_id": id, "offset": 4}});
    let mut conn = Conn::open(&emu);
    assert!(
        conn.content(APPEND, TOKEN, &arg, b"4567").is_err(),
        "no response expected"
    );

    // The retry learns that the bytes did arrive.
    let retry = content(&emu, APPEND, &arg, b"4567");
    assert_eq!(retry.status, 409);
    assert_eq!(
        retry.json()["error"],
        json!({".tag": "incorrect_offset", "correct_offset": 8})
    );
    let close = json!({"cursor": {"session_id": id, "offset": 8}, "close": true});
    assert_eq!(content(&emu, APPEND, &close, b"").status, 200);
    let commit =
        json!({"entries": [{"cursor": {"session_id": id, "offset": 8}, "commit": {"path": "/f"}}]});
    let done = rpc(&emu, BATCH, &commit).json();
    assert_eq!(
        done["entries"][0]["content_hash"],
        content_hash(b"01234567")
    );

    let stats = emu.stats();
    assert_eq!(stats.calls[APPEND], 3);
    assert_eq!(stats.upload_bytes, 4 + 4 + 4);
    let lost: Vec<_> = stats.log.iter().filter(|e| e.route == APPEND).collect();
    assert_eq!(
        (lost[0].status, lost[0].fault.as_deref()),
        (0, Some("LostResponse"))
    );
    assert_eq!((lost[1].status, lost[1].fault.as_deref()), (409, None));
}

#[test]
fn rejecting_faults_do_not_process() {
    let emu = Emulator::start(Config::default()).unwrap();
    emu.inject(fault(
        UPLOAD,
        1,
        FaultKind::RateLimitJson { retry_after: 7 },
    ));
    emu.inject(fault(
        UPLOAD,
        2,
        FaultKind::RateLimitText { retry_after: 3 },
    ));
    emu.inject(fault(UPLOAD, 3, FaultKind::TooManyWriteOperations));
    emu.inject(fault(UPLOAD, 4, FaultKind::ServerError(503)));
    emu.inject(fault(UPLOAD, 5, FaultKind::Reset));
    let arg = json!({"path": "/x"});

    let mut conn = Conn::open(&emu);
    let json_429 = conn.content(UPLOAD, TOKEN, &arg, b"x").unwrap();
    assert_eq!(
        (json_429.status, json_429.header("Retry-After")),
        (429, Some("7"))
    );
    assert_eq!(json_429.header("Content-Type"), Some("application/json"));
    assert_eq!(
        json_429.json(),
        json!({"error_summary": "too_many_requests/..", "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 7}})
    );
    let text_429 = conn.content(UPLOAD, TOKEN, &arg, b"x").unwrap();
    assert_eq!(
        (
            text_429.status,
            text_429.header("Retry-After"),
            text_429.text().as_str()
        ),
        (429, Some("3"), "too_many_requests")
    );
    assert!(text_429
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    let write_429 = conn.content(UPLOAD, TOKEN, &arg, b"x").unwrap();
    assert_eq!(write_429.header("Retry-After"), Some("1"));
    assert_eq!(
        write_429.json()["error"]["reason"][".tag"],
        "too_many_write_operations"
    );
    assert_eq!(write_429.json()["error"]["retry_after"], 1);
    let unavailable = conn.content(UPLOAD, TOKEN, &arg, b"x").unwrap();
    assert_eq!(unavailable.status, 503);
    assert!(
        conn.content(UPLOAD, TOKEN, &arg, b"x").is_err(),
        "reset expected"
    );
    assert!(
        emu.files().is_empty(),
        "faulted requests must not be processed"
    );

    assert_eq!(content(&emu, UPLOAD, &arg, b"x").status, 200);
    let stats = emu.stats();
    assert_eq!(stats.calls[UPLOAD], 6);
    assert_eq!(stats.upload_bytes, 6);
    let faults: Vec<_> = stats
        .log
        .iter()
        .map(|e| (e.status, e.fault.as_deref()))
        .collect();
    assert_eq!(
        faults,
        [
            (429, Some("RateLimitJson")),
            (429, Some("RateLimitText")),
            (429, Some("TooManyWriteOperations")),
            (503, Some("ServerError")),
            (0, Some("Reset")),
            (200, None),
        ]
    );
}

#[test]
fn nth_counts_matching_requests_from_injection() {
    let emu = Emulator::start(Config::default()).unwrap();
    let list = json!({"path": ""});
    rpc(&emu, "/2/files/list_folder", &list);
    emu.inject(fault("*", 3, FaultKind::ServerError(500)));
    emu.inject(fault(
        "/2/files/get_metadata",
        1,
        FaultKind::Latency(Duration::from_millis(50)),
    ));
    assert_eq!(rpc(&emu, "/2/files/list_folder", &list).status, 200);
    let started = Instant::now();
    assert_eq!(
        rpc(&emu, "/2/files/get_metadata", &json!({"path": "/x"})).status,
        409
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(rpc(&emu, "/2/files/list_folder", &list).status, 500);
    assert_eq!(rpc(&emu, "/2/files/list_folder", &list).status, 200);
}

#[test]
fn overlapping_batch_commits_are_detected() {
    let emu = Arc::new(Emulator::start(Config::default()).unwrap());
    let sessions: Vec<String> = (0..2)
        .map(|i| session(&emu, format!("file {i}").as_bytes(), true))
        .collect();
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let (emu, barrier) = (Arc::clone(&emu), Arc::clone(&barrier));
            thread::spawn(move || {
                let body = json!({"entries": [{"cursor": {"session_id": id, "offset": 6}, "commit": {"path": format!("/f{i}")}}]});
                let mut conn = Conn::open(&emu);
                barrier.wait();
                conn.rpc(BATCH, TOKEN, &body).unwrap()
            })
        })
        .collect();
    let mut statuses: Vec<u16> = Vec::new();
    for handle in handles {
        let reply = handle.join().unwrap();
        if reply.status == 429 {
            assert_eq!(reply.header("Retry-After"), Some("1"));
            assert_eq!(
                reply.json()["error"]["reason"][".tag"],
                "too_many_write_operations"
            );
        }
        statuses.push(reply.status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429]);
    assert_eq!(emu.stats().max_concurrent_batch_commits, 2);
    assert_eq!(emu.files().len(), 1);
}

#[test]
fn batch_entry_fault_keeps_session() {
    let emu = Emulator::start(Config::default()).unwrap();
    let a = session(&emu, b"aaa", true);
    let b = session(&emu, b"bbb", true);
    emu.inject(fault(
        BATCH,
        1,
        FaultKind::BatchEntryTooManyWriteOperations { index: 1 },
    ));
    let entry = |id: &str, path: &str| json!({"cursor": {"session_id": id, "offset": 3}, "commit": {"path": path}});
    let reply = rpc(
        &emu,
        BATCH,
        &json!({"entries": [entry(&a, "/a"), entry(&b, "/b")]}),
    )
    .json();
    assert_eq!(reply["entries"][0][".tag"], "success");
    assert_eq!(
        reply["entries"][1],
        json!({".tag": "failure", "failure": {".tag": "too_many_write_operations"}})
    );
    let retry = rpc(&emu, BATCH, &json!({"entries": [entry(&b, "/b")]})).json();
    assert_eq!(retry["entries"][0]["path_display"], "/b");
    assert_eq!(
        emu.stats().log[2].fault.as_deref(),
        Some("BatchEntryTooManyWriteOperations")
    );
}

#[test]
fn connection_handling() {
    let emu = Emulator::start(Config::default()).unwrap();
    let addr = emu.url().trim_start_matches("http://").to_owned();

    // Chunked bodies are refused and the connection closed.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"POST /2/files/upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    assert!(reply.contains("Content-Length: "));

    // Garbage is a 400 too; unknown routes are 404s.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.write_all(b"nonsense\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    let mut conn = Conn::open(&emu);
    assert_eq!(
        conn.rpc("/2/files/delete_v2", TOKEN, &json!({}))
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        conn.send("GET", "/2/files/list_folder", &[], b"")
            .unwrap()
            .status,
        405
    );

    // Connection: close is honoured.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 404 ") && reply.contains("Connection: close"),
        "{reply}"
    );

    // Dropping the emulator closes idle keep-alive connections.
    let mut idle = TcpStream::connect(&addr).unwrap();
    assert_eq!(
        conn.rpc("/2/files/list_folder", TOKEN, &json!({"path": ""}))
            .unwrap()
            .status,
        200
    );
    drop(emu);
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0);
}

#[test]
fn binary_prints_its_url_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dropbox-emulator"))
        .args(["--token", "bin-token"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on http://")
        .expect("banner")
        .to_owned();
    let mut stream = TcpStream::connect(&url).unwrap();
    let body = b"{\"path\": \"\"}";
    let request = format!(
        "POST /2/files/list_folder HTTP/1.1\r\nAuthorization: Bearer bin-token\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
}
