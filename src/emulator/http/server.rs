//! A small HTTP/1.1 server on `std::net`, enough for the emulator and no more.
//!
//! Why not a framework: the emulator must hold a thousand mostly idle connections cheaply, decide
//! *when* each answer leaves by itself (sleeping until a model deadline), and never lose a wake-up
//! with pooled keep-alive clients (tiny_http 0.12 loses some: with pooled keep-alive clients,
//! requests went unanswered in most runs). One thread per connection with a small stack does all
//! three: a sleeping request costs a parked thread, not a timer wheel.
//!
//! Defences against bad clients, besides the strict head parsing of [`super::head`]: a started
//! head (or body) must complete within [`HEAD_TIMEOUT`] (else the connection is closed), an idle
//! keep-alive connection is closed after [`IDLE_TIMEOUT`], and a client that sent
//! `Expect: 100-continue` is told to go on at once rather than left waiting for a timeout.
//! Nothing a client sends can panic the server; a failed connection only ends its own thread.

use super::head::{parse_head, ParsedHead, MAX_HEAD};
use super::message::{Handler, Response};
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// One request head read off a connection, or why there is none.
enum Head {
    Request(ParsedHead),
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
        let head = match read_head(stream, &mut buf, shared) {
            Head::Request(head) => head,
            Head::Gone => return,
            Head::Reject(response) => {
                shared.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                let _ = response.write_to(&mut &*stream, false);
                return;
            }
        };
        // The client holds the body back until told to go on (RFC 9110 10.1.1). With no body
        // to wait for, the final answer is the only one it needs.
        if head.expect_continue && head.body_len > buf.len() {
            let go_on = b"HTTP/1.1 100 Continue\r\n\r\n";
            if (&*stream).write_all(go_on).is_err() {
                return;
            }
        }
        if !discard_body(stream, &mut buf, head.body_len, t.head) {
            return;
        }
        let response = shared.handler.handle(&head.request);
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let keep = head.keep_alive && !response.close;
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
                    return Head::Request(head);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::http::{client::get, ports::listen, Request};

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
}
