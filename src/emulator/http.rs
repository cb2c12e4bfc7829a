//! A small HTTP/1.1 server and client on `std::net`, enough for the emulator and no more.
//!
//! Why not a framework: the emulator must hold a thousand mostly idle connections cheaply, decide
//! *when* each answer leaves by itself (sleeping until a model deadline), and never lose a wake-up
//! with pooled keep-alive clients (tiny_http 0.12 does, see `rust-notes.md`). One thread per
//! connection with a small stack does all three: a sleeping request costs a parked thread, not a
//! timer wheel. `httparse` parses the request head; everything else is a few lines here.
//!
//! Defences against bad clients: the head must fit in [`MAX_HEAD`] bytes (else 431), the target in
//! [`MAX_TARGET`] (else 414), a started head must complete within [`HEAD_TIMEOUT`] (else the
//! connection is closed), bodies are read and discarded up to [`MAX_BODY`] (else 413), chunked
//! bodies are refused (501), anything unparsable gets 400 and a close. Nothing a client sends can
//! panic the server; a failed connection only ends its own thread.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Longest request target accepted.
pub const MAX_TARGET: usize = 2048;
/// Largest request body read (and discarded).
pub const MAX_BODY: usize = 64 * 1024;
/// A request head that has started must be complete within this (wall) time.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle keep-alive connection is closed after this (wall) time.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the server waits on clients (wall time).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// A request head (or body) that has started must be complete within this.
    pub head: Duration,
    /// An idle keep-alive connection is closed after this.
    pub idle: Duration,
    /// A blocked read wakes this often to check the above and whether the server stopped.
    pub poll: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            head: HEAD_TIMEOUT,
            idle: IDLE_TIMEOUT,
            poll: Duration::from_secs(1),
        }
    }
}

/// Stack of each connection thread: small, so a thousand connections stay cheap.
pub const CONNECTION_STACK: usize = 128 * 1024;
/// Listen backlog: a burst of a few thousand simultaneous connects must not hit SYN retries
/// (a one-second retry is fifty model seconds at time scale 0.02).
const BACKLOG: i32 = 4096;

/// A parsed request: only what the emulator routes on.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The `X-Cmdunit-Sent` header: when the caller sent it, on the caller's clock (see
    /// [`crate::emulator::clock::Clock::stamp`]).
    pub sent_stamp: Option<String>,
}

/// Header carrying the sender's clock stamp from a forwarding unit to a worker.
pub const SENT_HEADER: &str = "X-Cmdunit-Sent";

/// An answer. The server adds Content-Length and Connection.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub extra_headers: Vec<(&'static str, String)>,
    /// Close the connection after this answer.
    pub close: bool,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::json_bytes(status, value.to_string().into_bytes())
    }

    pub fn json_bytes(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: "application/json",
            body,
            extra_headers: Vec::new(),
            close: false,
        }
    }

    /// A JSON error body `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "error": message }))
    }

    /// Answer sent when the connection cannot go on: the server then closes it.
    fn fatal(status: u16, message: &str) -> Response {
        let mut r = Response::error(status, message);
        r.close = true;
        r
    }

    fn write_to(&self, out: &mut impl Write, keep_alive: bool) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.extra_headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        let mut buf = head.into_bytes();
        buf.extend_from_slice(&self.body);
        out.write_all(&buf)?;
        out.flush()
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// What a server does with each request. Runs on the connection's own thread, so it may sleep.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: &Request) -> Response;
}

/// Connection counters of one server.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Connections accepted and served by a thread.
    pub accepted: AtomicU64,
    /// Connections closed at once because the limit was reached (or no thread could be started).
    pub refused: AtomicU64,
    /// Connections open now.
    pub open: AtomicUsize,
    /// Requests answered (any status).
    pub requests: AtomicU64,
    /// Requests rejected as malformed or too large.
    pub bad_requests: AtomicU64,
}

/// Open connections, by id, so that stopping a server can cut them. An entry is removed (under
/// the lock) before its socket is closed, so a listed descriptor is always still open.
type Registry = Mutex<HashMap<u64, RawFd>>;

/// Connection threads waiting for a new connection. Invariant (under `count`'s lock): `count` =
/// threads waiting - connections queued in the channel, so `count > 0` means a waiting thread
/// will take what is sent.
struct IdleThreads {
    count: Mutex<usize>,
    tx: crossbeam_channel::Sender<(u64, TcpStream)>,
    rx: crossbeam_channel::Receiver<(u64, TcpStream)>,
}

/// How long a connection thread waits for another connection before it exits. Starting a thread
/// costs more than serving a request, and a worker gets a new connection per forwarded request.
const IDLE_THREAD_LINGER: Duration = Duration::from_secs(5);

struct Shared {
    handler: Arc<dyn Handler>,
    idle: IdleThreads,
    stats: Arc<ConnStats>,
    registry: Registry,
    stopped: AtomicBool,
    connection_limit: usize,
    timeouts: Timeouts,
}

/// A running server: an accept thread and one thread per connection.
pub struct Server {
    addr: SocketAddr,
    listener_fd: RawFd,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

/// Bind a listening socket with a backlog large enough for bursts of connects.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    // Calling listen() again on a listening socket only changes its backlog (std uses 128).
    // SAFETY: plain syscall on a descriptor we own.
    unsafe {
        libc::listen(listener.as_raw_fd(), BACKLOG);
    }
    Ok(listener)
}

/// A port bound but not listening: connections to it are refused, and nobody else can take it.
/// This is how a machine that is "down" looks.
pub struct ReservedPort {
    fd: RawFd,
    pub addr: SocketAddr,
}

impl ReservedPort {
    pub fn bind(addr: SocketAddr) -> io::Result<ReservedPort> {
        // SAFETY: socket/bind/getsockname on a descriptor we create and own; the sockaddr
        // structures are fully initialised and their sizes passed exactly.
        unsafe {
            let family = if addr.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let close_with = |e: io::Error| {
                libc::close(fd);
                Err(e)
            };
            let mut storage: libc::sockaddr_storage = std::mem::zeroed();
            let len = match addr {
                SocketAddr::V4(a) => {
                    let sin = &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in);
                    sin.sin_family = libc::AF_INET as libc::sa_family_t;
                    sin.sin_port = a.port().to_be();
                    sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                    std::mem::size_of::<libc::sockaddr_in>()
                }
                SocketAddr::V6(a) => {
                    let sin6 = &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6);
                    sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                    sin6.sin6_port = a.port().to_be();
                    sin6.sin6_addr.s6_addr = a.ip().octets();
                    std::mem::size_of::<libc::sockaddr_in6>()
                }
            } as libc::socklen_t;
            if libc::bind(fd, &storage as *const _ as *const libc::sockaddr, len) != 0 {
                return close_with(io::Error::last_os_error());
            }
            let mut bound: libc::sockaddr_storage = std::mem::zeroed();
            let mut blen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if libc::getsockname(fd, &mut bound as *mut _ as *mut libc::sockaddr, &mut blen) != 0 {
                return close_with(io::Error::last_os_error());
            }
            let port = if addr.is_ipv4() {
                u16::from_be((*(&bound as *const _ as *const libc::sockaddr_in)).sin_port)
            } else {
                u16::from_be((*(&bound as *const _ as *const libc::sockaddr_in6)).sin6_port)
            };
            Ok(ReservedPort {
                fd,
                addr: SocketAddr::new(addr.ip(), port),
            })
        }
    }
}

impl Drop for ReservedPort {
    fn drop(&mut self) {
        // SAFETY: we own fd and close it once.
        unsafe {
            libc::close(self.fd);
        }
    }
}

impl Server {
    /// Serve `listener` with `handler`, accepting at most `connection_limit` connections at once;
    /// connections past the limit are closed without an answer.
    pub fn start(
        listener: TcpListener,
        handler: Arc<dyn Handler>,
        connection_limit: usize,
        name: &str,
    ) -> io::Result<Server> {
        Server::start_with(
            listener,
            handler,
            connection_limit,
            name,
            Timeouts::default(),
        )
    }

    /// [`Server::start`] with other client timeouts.
    pub fn start_with(
        listener: TcpListener,
        handler: Arc<dyn Handler>,
        connection_limit: usize,
        name: &str,
        timeouts: Timeouts,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let listener_fd = listener.as_raw_fd();
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            handler,
            idle: IdleThreads {
                count: Mutex::new(0),
                tx,
                rx,
            },
            stats: Arc::new(ConnStats::default()),
            registry: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
            connection_limit,
            timeouts,
        });
        let s = shared.clone();
        let accept_thread = std::thread::Builder::new()
            .name(format!("accept {name}"))
            .spawn(move || accept_loop(listener, s))?;
        Ok(Server {
            addr,
            listener_fd,
            shared,
            accept_thread: Some(accept_thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> Arc<ConnStats> {
        self.shared.stats.clone()
    }

    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::SeqCst)
    }

    /// Stop accepting (new connections are refused) and cut every open connection.
    pub fn stop(&mut self) {
        let Some(thread) = self.accept_thread.take() else {
            return;
        };
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the blocked accept() (EINVAL on Linux); the accept thread then drops the listener.
        // SAFETY: the listener is owned by the accept thread, which is still running (we have
        // not joined it), so the descriptor is open.
        unsafe {
            libc::shutdown(self.listener_fd, libc::SHUT_RDWR);
        }
        let _ = thread.join();
        cut_all(&self.shared.registry);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn cut_all(registry: &Registry) {
    let map = registry.lock().unwrap_or_else(|e| e.into_inner());
    for fd in map.values() {
        // SAFETY: listed descriptors are open (see Registry).
        unsafe {
            libc::shutdown(*fd, libc::SHUT_RDWR);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id: u64 = 0;
    loop {
        let accepted = listener.accept();
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (or a transient error): back off instead of spinning.
                let pause = match e.raw_os_error() {
                    Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) => 10,
                    _ => 1,
                };
                std::thread::sleep(Duration::from_millis(pause));
                continue;
            }
        };
        let stats = &shared.stats;
        if stats.open.load(Ordering::SeqCst) >= shared.connection_limit {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        next_id += 1;
        let id = next_id;
        stats.open.fetch_add(1, Ordering::SeqCst);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        lock(&shared.registry).insert(id, stream.as_raw_fd());
        // A connection thread that is waiting for work takes it; otherwise start one.
        {
            let mut idle = lock(&shared.idle.count);
            if *idle > 0 {
                *idle -= 1;
                let _ = shared.idle.tx.send((id, stream));
                continue;
            }
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(CONNECTION_STACK)
            .spawn(move || connection_thread(id, stream, &s));
        if spawned.is_err() {
            // No thread for it (the closure, and so the stream, is dropped: it closes).
            lock(&shared.registry).remove(&id);
            stats.open.fetch_sub(1, Ordering::SeqCst);
            stats.accepted.fetch_sub(1, Ordering::Relaxed);
            stats.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Serve connections: the first one given, then any handed over while this thread is idle.
fn connection_thread(id: u64, stream: TcpStream, shared: &Shared) {
    let mut job = Some((id, stream));
    while let Some((id, stream)) = job.take() {
        serve_connection(&stream, shared);
        // Deregister before the socket closes (see Registry).
        lock(&shared.registry).remove(&id);
        shared.stats.open.fetch_sub(1, Ordering::SeqCst);
        drop(stream);
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        *lock(&shared.idle.count) += 1;
        job = match shared.idle.rx.recv_timeout(IDLE_THREAD_LINGER) {
            Ok(next) => Some(next),
            Err(_) => {
                // Leaving: unless a connection was handed over meanwhile (the acceptor counted
                // on an idle thread under this lock), give up this thread's idle slot.
                let mut idle = lock(&shared.idle.count);
                match shared.idle.rx.try_recv() {
                    Ok(next) => Some(next),
                    Err(_) => {
                        *idle -= 1;
                        None
                    }
                }
            }
        };
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One parsed request head, or why there is none.
enum Head {
    Request {
        request: Request,
        keep_alive: bool,
        body_len: usize,
    },
    /// The client closed or went silent: close without answering.
    Gone,
    /// Malformed or too large: answer and close.
    Reject(Response),
}

fn serve_connection(stream: &TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let t = shared.timeouts;
    let _ = stream.set_read_timeout(Some(t.poll));
    let _ = stream.set_write_timeout(Some(t.head));
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let head = read_head(stream, &mut buf, shared);
        let (request, keep_alive, body_len) = match head {
            Head::Request {
                request,
                keep_alive,
                body_len,
            } => (request, keep_alive, body_len),
            Head::Gone => return,
            Head::Reject(response) => {
                shared.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                let _ = response.write_to(&mut &*stream, false);
                return;
            }
        };
        if !discard_body(stream, &mut buf, body_len, t.head) {
            return;
        }
        let response = shared.handler.handle(&request);
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let keep = keep_alive && !response.close;
        if response.write_to(&mut &*stream, keep).is_err() || !keep {
            return;
        }
    }
}

/// Read until `buf` holds a complete request head, then parse and remove it from `buf`.
fn read_head(stream: &TcpStream, buf: &mut Vec<u8>, shared: &Shared) -> Head {
    let mut started: Option<Instant> = if buf.is_empty() {
        None
    } else {
        Some(Instant::now())
    };
    let idle_since = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        if !buf.is_empty() {
            match parse_head(buf) {
                Ok(Some((head, consumed))) => {
                    buf.drain(..consumed);
                    return head;
                }
                Ok(None) => {}
                Err(response) => return Head::Reject(response),
            }
            if buf.len() >= MAX_HEAD {
                return Head::Reject(Response::fatal(431, "request head too large"));
            }
        }
        match (&*stream).read(&mut chunk) {
            Ok(0) => return Head::Gone,
            Ok(n) => {
                if started.is_none() {
                    started = Some(Instant::now());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if shared.stopped.load(Ordering::SeqCst) {
                    return Head::Gone;
                }
                match started {
                    Some(t) if t.elapsed() > shared.timeouts.head => return Head::Gone,
                    None if idle_since.elapsed() > shared.timeouts.idle => return Head::Gone,
                    _ => {}
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Head::Gone,
        }
    }
}

/// Parse a request head at the start of `buf`: `Ok(None)` if incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, Response> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            // httparse accepts an arbitrarily long target while it waits for the rest.
            if let Some(path) = req.path {
                if path.len() > MAX_TARGET {
                    return Err(Response::fatal(414, "request target too long"));
                }
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Response::fatal(431, "too many header fields"))
        }
        Err(_) => return Err(Response::fatal(400, "malformed request")),
    };
    let method = req.method.unwrap_or("").to_string();
    let target = req.path.unwrap_or("");
    if target.len() > MAX_TARGET {
        return Err(Response::fatal(414, "request target too long"));
    }
    let version = req.version.unwrap_or(1);
    let mut keep_alive = version >= 1;
    let mut body_len = 0usize;
    let mut sent_stamp = None;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                keep_alive = false;
            } else if v.contains("keep-alive") {
                keep_alive = true;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            body_len = match value.parse::<usize>() {
                Ok(n) if n <= MAX_BODY => n,
                Ok(_) => return Err(Response::fatal(413, "request body too large")),
                Err(_) => return Err(Response::fatal(400, "bad Content-Length")),
            };
        } else if h.name.eq_ignore_ascii_case(SENT_HEADER) {
            sent_stamp = Some(value.to_string());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::fatal(
                501,
                "chunked request bodies are not supported",
            ));
        }
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    Ok(Some((
        Head::Request {
            request: Request {
                method,
                path,
                sent_stamp,
            },
            keep_alive,
            body_len,
        },
        consumed,
    )))
}

/// Read and drop a request body of `len` bytes (part of it may already be in `buf`).
fn discard_body(stream: &TcpStream, buf: &mut Vec<u8>, len: usize, limit: Duration) -> bool {
    let from_buf = len.min(buf.len());
    buf.drain(..from_buf);
    let mut left = len - from_buf;
    let mut chunk = [0u8; 4096];
    let started = Instant::now();
    while left > 0 {
        match (&*stream).read(&mut chunk[..left.min(4096)]) {
            Ok(0) => return false,
            Ok(n) => left -= n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if started.elapsed() > limit {
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// A response as read by [`get`].
#[derive(Clone, Debug)]
pub struct ClientResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("request to {addr} failed: {source}")]
    Io { addr: SocketAddr, source: io::Error },
    #[error("malformed response from {addr}")]
    Malformed { addr: SocketAddr },
}

/// One `GET` over a new connection (HTTP/1.0, the server closes after answering), the way the
/// original forwarding unit called its workers.
pub fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<ClientResponse, ClientError> {
    let stream = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(10)))
        .map_err(|source| ClientError::Connect { addr, source })?;
    let io_err = |source| ClientError::Io { addr, source };
    let _ = stream.set_nodelay(true);
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    (&stream).write_all(request.as_bytes()).map_err(io_err)?;
    // Read until the answer is complete (by Content-Length, else end of stream): waiting for
    // the server's close would add one more wake-up to every measured response time.
    let mut raw = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        let n = (&stream).read(&mut chunk).map_err(io_err)?;
        raw.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let parsed = resp.parse(&raw);
        match parsed {
            Ok(httparse::Status::Complete(head)) => {
                let length = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    });
                let complete = match length {
                    Some(len) => raw.len() >= head + len,
                    None => n == 0,
                };
                if complete {
                    let end = length.map_or(raw.len(), |len| head + len);
                    return Ok(ClientResponse {
                        status: resp.code.unwrap_or(0),
                        body: raw[head..end].to_vec(),
                    });
                }
                if n == 0 {
                    return Err(ClientError::Malformed { addr });
                }
            }
            Ok(httparse::Status::Partial) if n > 0 && raw.len() < MAX_HEAD => {}
            _ => return Err(ClientError::Malformed { addr }),
        }
    }
}

/// Parse `http://host:port` (a trailing slash is allowed) into a socket address.
pub fn parse_base_url(url: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let rest = url.trim().strip_prefix("http://")?;
    let hostport = rest.trim_end_matches('/');
    if hostport.contains('/') {
        return None;
    }
    hostport.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<(Head, usize)>, Response> {
        parse_head(s.as_bytes())
    }

    #[test]
    fn heads_parse_with_keep_alive_rules() {
        let Ok(Some((
            Head::Request {
                request,
                keep_alive,
                ..
            },
            n,
        ))) = parse("GET /work/us/1?x=2 HTTP/1.1\r\nHost: a\r\n\r\nGET")
        else {
            panic!("should parse")
        };
        assert_eq!(request.path, "/work/us/1");
        assert!(keep_alive);
        assert_eq!(n, 40);
        let Ok(Some((Head::Request { keep_alive, .. }, _))) = parse("GET / HTTP/1.0\r\n\r\n")
        else {
            panic!()
        };
        assert!(!keep_alive);
        assert!(matches!(parse("GET / HTTP/1.1\r\nHost"), Ok(None)));
    }

    #[test]
    fn bad_heads_are_rejected_with_the_right_status() {
        let status = |s: &str| parse(s).err().map(|r| r.status);
        assert_eq!(status("NOT HTTP AT ALL\r\n\r\n"), Some(400));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET + 1));
        assert_eq!(status(&long), Some(414));
        assert_eq!(
            status("GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
            Some(413)
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(501)
        );
    }

    struct Hello;
    impl Handler for Hello {
        fn handle(&self, _: &Request) -> Response {
            Response::json(200, &serde_json::json!({"hello": true}))
        }
    }

    #[test]
    fn slow_and_silent_clients_are_closed_after_their_timeouts() {
        let timeouts = Timeouts {
            head: Duration::from_millis(300),
            idle: Duration::from_millis(600),
            poll: Duration::from_millis(50),
        };
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let server = Server::start_with(listener, Arc::new(Hello), 100, "t", timeouts).unwrap();
        let started = Instant::now();
        // Slowloris: a head that never completes, one byte at a time.
        let mut slow = TcpStream::connect(server.addr()).unwrap();
        let mut silent = TcpStream::connect(server.addr()).unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let closed_at = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            for b in b"GET / HTTP/1.1\r\nX-Slow: " {
                if slow.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let r = slow.read(&mut buf);
            (r.map_err(|e| e.kind()), started.elapsed())
        });
        // Meanwhile others are served.
        let ok = get(server.addr(), "/", &[], Duration::from_secs(5)).unwrap();
        assert_eq!(ok.status, 200);
        let (read, at) = closed_at.join().unwrap();
        assert!(
            matches!(read, Ok(0) | Err(ErrorKind::ConnectionReset)),
            "{read:?}"
        );
        assert!(at < Duration::from_secs(3), "closed after {at:?}");
        // The silent one is closed once idle too long.
        let mut buf = [0u8; 8];
        assert!(matches!(silent.read(&mut buf), Ok(0)));
        assert!(started.elapsed() >= Duration::from_millis(600));
    }

    #[test]
    fn base_urls_parse() {
        assert_eq!(
            parse_base_url("http://127.0.0.1:5000/"),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        assert_eq!(parse_base_url("https://127.0.0.1:5000"), None);
        assert_eq!(parse_base_url("http://127.0.0.1:5000/x"), None);
    }
}
