//! The one HTTP call the forwarding unit makes: `GET` a worker over a new connection.
//!
//! Why its own client rather than the crate's: the original forwarding unit opened a new
//! connection to the worker for every request, and the emulator must do the same to cost what it
//! cost; it must also read the worker's clock stamp, and stop reading the moment the answer is
//! complete (waiting for the server's close would add one more wake-up to every measured
//! `response_time`). A worker may be anything at the end of a URL (`--role forwarder`), so the
//! answer is read defensively: bounded in size, never trusted to frame itself sanely.

use super::head::MAX_HEAD;
use super::message::REPLIED_HEADER;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest answer body read from a worker (its JSON is under a hundred bytes).
pub const MAX_ANSWER_BODY: usize = 1024 * 1024;

/// A response as read by [`get`].
#[derive(Clone, Debug)]
pub struct ClientResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// The [`REPLIED_HEADER`] value, if the server sent one.
    pub replied_stamp: Option<String>,
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
    let malformed = ClientError::Malformed { addr };
    let mut raw = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        let n = (&stream).read(&mut chunk).map_err(io_err)?;
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > MAX_HEAD + MAX_ANSWER_BODY {
            return Err(malformed);
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&raw) {
            Ok(httparse::Status::Complete(head)) => {
                let value = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(str::trim)
                };
                let length = match value("content-length") {
                    None => None,
                    Some(v) => match v.parse::<usize>() {
                        Ok(len) if len <= MAX_ANSWER_BODY => Some(len),
                        _ => return Err(malformed),
                    },
                };
                let complete = match length {
                    Some(len) => raw.len() >= head + len,
                    None => n == 0,
                };
                if complete {
                    let end = length.map_or(raw.len(), |len| head + len);
                    return Ok(ClientResponse {
                        status: resp.code.unwrap_or(0),
                        body: raw[head..end].to_vec(),
                        replied_stamp: value(REPLIED_HEADER).map(str::to_string),
                    });
                }
                if n == 0 {
                    return Err(malformed);
                }
            }
            Ok(httparse::Status::Partial) if n > 0 && raw.len() < MAX_HEAD => {}
            _ => return Err(malformed),
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
    use std::net::TcpListener;

    #[test]
    fn base_urls_parse() {
        assert_eq!(
            parse_base_url("http://127.0.0.1:5000/"),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        assert_eq!(parse_base_url("https://127.0.0.1:5000"), None);
        assert_eq!(parse_base_url("http://127.0.0.1:5000/x"), None);
    }

    /// What `get` makes of one canned answer.
    fn answer_to(canned: &'static [u8]) -> Result<ClientResponse, ClientError> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(canned);
        });
        let r = get(addr, "/work", &[], Duration::from_secs(5));
        server.join().unwrap();
        r
    }

    #[test]
    fn a_worker_answer_is_read_with_its_stamp() {
        let r = answer_to(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Cmdunit-Replied: ab 12.5\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"{}"[..]));
        assert_eq!(r.replied_stamp.as_deref(), Some("ab 12.5"));
    }

    #[test]
    fn an_absurd_content_length_in_an_answer_is_malformed_not_a_panic() {
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n{}";
        assert!(matches!(
            answer_to(huge),
            Err(ClientError::Malformed { .. })
        ));
        let bad = b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}";
        assert!(matches!(answer_to(bad), Err(ClientError::Malformed { .. })));
    }
}
