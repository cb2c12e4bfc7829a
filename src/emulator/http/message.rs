//! What crosses the wire between a client and the emulator's servers: the parsed request, the
//! answer, and the two clock-stamp headers. Kept apart from the server so that handlers (the
//! forwarding unit, the workers) depend on these types only, not on how connections are run.

use std::io::{self, Write};

/// Header carrying the sender's clock stamp: when a client on the emulator's clock sent the
/// request (see [`crate::emulator::clock::Clock::stamp`]).
pub const SENT_HEADER: &str = "X-Cmdunit-Sent";

/// Header a worker puts on its answer: the model instant the answer is back at the caller, on the
/// worker's clock. A forwarding unit on the same clock takes it as the moment the answer arrived,
/// so host lag in reading it does not shift the model.
pub const REPLIED_HEADER: &str = "X-Cmdunit-Replied";

/// A parsed request: only what the emulator routes on.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The [`SENT_HEADER`] value: when the caller sent it, on the caller's clock.
    pub sent_stamp: Option<String>,
}

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
    pub fn fatal(status: u16, message: &str) -> Response {
        let mut r = Response::error(status, message);
        r.close = true;
        r
    }

    /// Write the answer; `keep_alive` says which `Connection` header it carries.
    pub fn write_to(&self, out: &mut impl Write, keep_alive: bool) -> io::Result<()> {
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
        100 => "Continue",
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
