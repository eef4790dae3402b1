//! The listener, per-connection threads, request dispatch and fault injection.
//!
//! One thread accepts connections; each connection gets its own thread that serves
//! requests until EOF or `Connection: close`. The state lock is never held while
//! reading from or writing to a socket.

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::api::{self, CONTENT_ROUTES, MAX_PAYLOAD};
use crate::http::{self, Incoming, Request, Response};
use crate::oauth;
use crate::state::State;
use crate::{FaultKind, LogEntry};

/// State shared by the emulator handle and all server threads.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Open connections, so that shutdown can close them.
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
    shutting_down: AtomicBool,
}

impl Shared {
    pub fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Locks the state. A panicking handler cannot leave it half-updated in a way that
    /// matters more than stopping the whole emulator would, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connections(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes every open connection.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for stream in self.connections().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Starts the accept loop on its own thread.
pub(crate) fn spawn_acceptor(
    listener: TcpListener,
    shared: Arc<Shared>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("dropbox-emulator-accept".into())
        .spawn(move || accept_loop(&listener, &shared))
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.is_shutting_down() {
            break;
        }
        match incoming {
            Ok(stream) => {
                let shared = Arc::clone(shared);
                // If no thread can be spawned the stream is dropped, closing it.
                let _ = thread::Builder::new()
                    .name("dropbox-emulator-conn".into())
                    .spawn(move || serve_connection(stream, &shared));
            }
            // E.g. out of file descriptors: back off instead of spinning.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    if let Ok(clone) = stream.try_clone() {
        shared.connections().insert(id, clone);
    }
    if !shared.is_shutting_down() {
        let _ = serve_requests(stream, shared);
    }
    shared.connections().remove(&id);
}

/// Serves requests on one connection until it closes.
fn serve_requests(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    loop {
        let request = match http::read_request(&mut reader, &mut writer, MAX_PAYLOAD)? {
            Incoming::Request(request) => request,
            Incoming::Closed => return Ok(()),
            Incoming::Malformed(response) => {
                http::write_response(&mut writer, &response, true)?;
                return writer.shutdown(Shutdown::Both);
            }
        };
        match serve(shared, &request) {
            Some(response) => {
                http::write_response(&mut writer, &response, !request.keep_alive)?;
                if !request.keep_alive {
                    return writer.shutdown(Shutdown::Both);
                }
            }
            // Reset or lost response: close without answering.
            None => return writer.shutdown(Shutdown::Both),
        }
    }
}

/// Counts and logs a request, applies any fault due, and routes it.
/// `None` means the connection must be closed without a response.
fn serve(shared: &Shared, request: &Request) -> Option<Response> {
    let route = request.path.as_str();
    let at = Instant::now();
    let fault = {
        let mut state = shared.lock();
        *state.stats.calls.entry(route.to_owned()).or_default() += 1;
        if CONTENT_ROUTES.contains(&route) {
            state.stats.upload_bytes += request.body_len;
        }
        state.take_fault(route)
    };
    let response = match &fault {
        None => Some(route_request(shared, request, None)),
        Some(FaultKind::RateLimitJson { retry_after }) => {
            Some(api::rate_limited("too_many_requests", *retry_after))
        }
        Some(FaultKind::RateLimitText { retry_after }) => Some(
            Response::text(429, "too_many_requests")
                .with_header("Retry-After", retry_after.to_string()),
        ),
        Some(FaultKind::TooManyWriteOperations) => {
            Some(api::rate_limited("too_many_write_operations", 1))
        }
        Some(FaultKind::ServerError(status)) => Some(Response::text(
            *status,
            format!("emulated server error {status}"),
        )),
        Some(FaultKind::Reset) => None,
        Some(FaultKind::LostResponse) => {
            route_request(shared, request, None);
            None
        }
        Some(FaultKind::Latency(delay)) => {
            thread::sleep(*delay);
            Some(route_request(shared, request, None))
        }
        Some(FaultKind::ListReset) => Some(api::route_error(serde_json::json!({".tag": "reset"}))),
        Some(FaultKind::BatchEntryTooManyWriteOperations { index }) => {
            Some(route_request(shared, request, Some(*index)))
        }
    };
    shared.lock().stats.log.push(LogEntry {
        route: route.to_owned(),
        status: response.as_ref().map_or(0, |r| r.status),
        at,
        fault: fault.map(|f| f.name().to_owned()),
    });
    response
}

fn route_request(shared: &Shared, request: &Request, batch_fault: Option<usize>) -> Response {
    match request.path.as_str() {
        path if path.starts_with("/2/") => api::handle(shared, request, batch_fault),
        "/oauth2/authorize" => oauth::authorize(shared, request),
        "/oauth2/token" => oauth::token(shared, request),
        path => Response::text(404, format!("Not found: {path}")),
    }
}
