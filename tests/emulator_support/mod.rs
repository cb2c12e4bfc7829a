//! Helpers shared by the emulator's integration tests: a raw HTTP client over std::net (so the
//! tests also control malformed input) and a way to fire many requests at the same moment.
#![allow(dead_code)]

use cmdunit::emulator::http::SENT_HEADER;
use cmdunit::emulator::topology::Topology;
use cmdunit::emulator::{Emulator, EmulatorConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tests that measure time take this lock so they do not share the two cores with each other.
pub fn timing_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn topology(name: &str) -> Topology {
    let path = format!("{}/topologies/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Topology::load(std::path::Path::new(&path)).unwrap()
}

pub fn start(topology: Topology, scale: f64, awake: bool, forwarders: usize) -> Emulator {
    Emulator::start(EmulatorConfig {
        topology,
        time_scale: scale,
        awake,
        forwarders,
        seed: 42,
        ..EmulatorConfig::default()
    })
    .unwrap()
}

pub fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// A parsed answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Send raw bytes on a new connection and read one answer (until Content-Length or EOF).
pub fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(request)?;
    read_answer(&mut s)
}

/// Read one HTTP answer from a stream that carries no other answer after it (any bytes past the
/// answer are lost; use [`Conn`] for pipelined answers).
pub fn read_answer(s: &mut TcpStream) -> std::io::Result<Answer> {
    let mut buf = Vec::new();
    take_answer(s, &mut buf)
}

/// A keep-alive connection that keeps bytes read past one answer for the next.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn answer(&mut self) -> std::io::Result<Answer> {
        take_answer(&mut self.stream, &mut self.buf)
    }
}

/// Take one answer off the front of `buf`, reading more from `s` as needed.
fn take_answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Answer> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let body_end = (end + 4 + len).min(buf.len());
            let body = String::from_utf8_lossy(&buf[end + 4..body_end]).to_string();
            buf.drain(..body_end);
            return Ok(Answer {
                status,
                body,
                headers: head,
            });
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed without an answer",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn get(url_base: &str, path: &str) -> Answer {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    raw(addr(url_base), req.as_bytes()).unwrap()
}

/// One request's fate when many are fired at once.
#[derive(Debug, Clone)]
pub struct Fired {
    pub answer: Result<Answer, String>,
    /// Wall time from the common start to the answer.
    pub elapsed: Duration,
}

/// Open one connection per (addr, path) first, then send every request at the same moment and
/// collect the answers. Returns them in input order.
pub fn fire(targets: Vec<(SocketAddr, String)>) -> Vec<Fired> {
    fire_with(targets, None, Duration::ZERO)
}

/// Like [`fire`], but waits `settle` between opening the connections and sending, so the server
/// has accepted (or refused) every connection before any request is answered.
pub fn fire_settled(targets: Vec<(SocketAddr, String)>, settle: Duration) -> Vec<Fired> {
    fire_with(targets, None, settle)
}

/// Like [`fire`], and each request carries the emulator's clock stamp of the common start, so the
/// emulator takes them all as sent at that model instant however long this busy 2-core host
/// takes to deliver them (the model's "N requests at once").
pub fn fire_stamped(emu: &Emulator, targets: Vec<(SocketAddr, String)>) -> Vec<Fired> {
    fire_with(targets, Some(emu), Duration::ZERO)
}

fn fire_with(
    targets: Vec<(SocketAddr, String)>,
    emu: Option<&Emulator>,
    settle: Duration,
) -> Vec<Fired> {
    cmdunit::emulator::raise_fd_limit();
    let n = targets.len();
    let connected = Arc::new(Barrier::new(n + 1));
    let barrier = Arc::new(Barrier::new(n + 1));
    let start = Arc::new(Mutex::new(None::<(Instant, String)>));
    let mut handles = Vec::with_capacity(n);
    for (addr, path) in targets {
        let barrier = barrier.clone();
        let connected = connected.clone();
        let start = start.clone();
        let h = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let conn = TcpStream::connect(addr);
                connected.wait();
                barrier.wait();
                let (t0, stamp) = start.lock().unwrap().clone().unwrap();
                let answer = (|| {
                    let mut s = conn?;
                    s.set_read_timeout(Some(Duration::from_secs(120)))?;
                    let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
                    if !stamp.is_empty() {
                        req.push_str(&format!("{}: {stamp}\r\n", SENT_HEADER));
                    }
                    req.push_str("\r\n");
                    s.write_all(req.as_bytes())?;
                    read_answer(&mut s)
                })()
                .map_err(|e| e.to_string());
                Fired {
                    answer,
                    elapsed: t0.elapsed(),
                }
            })
            .unwrap();
        handles.push(h);
    }
    connected.wait();
    std::thread::sleep(settle);
    *start.lock().unwrap() = Some((Instant::now(), emu.map(|e| e.stamp()).unwrap_or_default()));
    barrier.wait();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
