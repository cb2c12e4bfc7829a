//! HTTP for the emulator, on `std::net`, by concern:
//! - [`message`]: the request and answer types and the clock-stamp headers;
//! - [`head`]: strict request-head parsing (what a client may send);
//! - [`server`]: the thread-per-connection server the forwarding units and workers run;
//! - [`client`]: the forwarding unit's call to a worker;
//! - [`ports`]: listening sockets, and ports held without listening (a machine that is down).
//!
//! The items are re-exported here, so `emulator::http::X` names each of them.

pub mod client;
pub mod head;
pub mod message;
pub mod ports;
pub mod server;

pub use client::{get, parse_base_url, ClientError, ClientResponse, MAX_ANSWER_BODY};
pub use head::{parse_head, ParsedHead, MAX_BODY, MAX_HEAD, MAX_HEADERS, MAX_TARGET};
pub use message::{reason, Handler, Request, Response, REPLIED_HEADER, SENT_HEADER};
pub use ports::{listen, listen_shared, ReservedPort};
pub use server::{ConnStats, Server, Timeouts, CONNECTION_STACK, HEAD_TIMEOUT, IDLE_TIMEOUT};
