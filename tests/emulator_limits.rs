//! The forwarding unit's connection limit (1024, where the 2021 one fell over) and "bad input
//! never crashes it": malformed, ambiguous, huge, slow and vanishing clients get a 4xx or a closed
//! connection, and the server keeps serving.

mod emulator_support;
use emulator_support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn connections_past_the_limit_are_closed_while_the_rest_are_served() {
    let _serial = timing_lock();
    let t = topology("default");
    let limit = t.forwarder.connection_limit;
    assert_eq!(limit, 1024);
    let emu = start(t, 0.05, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    let machines = ["asia/0", "asia/1", "emea/0", "us/0", "us/1"];
    let n = 1200;
    let targets = (0..n)
        .map(|i| (addr(&fu), format!("/work/{}", machines[i % 5])))
        .collect();
    // All connections open first (the server accepts or closes each), then all send.
    let fired = fire_settled(targets, Duration::from_secs(1));
    let ok = fired
        .iter()
        .filter(|f| matches!(&f.answer, Ok(a) if a.status == 200))
        .count();
    let dropped = fired.iter().filter(|f| f.answer.is_err()).count();
    assert_eq!(
        ok + dropped,
        n,
        "every connection is either served or dropped"
    );
    // Exactly those within the limit are served; the others were closed at once.
    assert_eq!(ok, limit, "served");
    assert_eq!(dropped, n - limit, "dropped");
    // The process survives and serves again.
    assert_eq!(get(&fu, "/work/emea/0").status, 200);
    let stats = get(&fu, "/stats").json();
    assert!(
        stats["connections"]["refused"].as_u64().unwrap() >= dropped as u64,
        "{stats}"
    );
}

/// Write raw bytes on a fresh connection and return the status answered, or None if the server
/// closed without answering.
fn status_of(fu: &str, bytes: &[u8]) -> Option<u16> {
    match raw(addr(fu), bytes) {
        Ok(a) => Some(a.status),
        Err(_) => None,
    }
}

#[test]
fn malformed_and_oversized_requests_get_4xx_and_the_server_keeps_serving() {
    let emu = start(topology("no-delay"), 1.0, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    assert_eq!(status_of(&fu, b"HELLO\r\n\r\n"), Some(400));
    assert_eq!(
        status_of(&fu, b"\x00\x01\x02\xff\xfe garbage\r\n\r\n"),
        Some(400)
    );
    assert_eq!(status_of(&fu, b"GET /work HTTP/9.9\r\n\r\n"), Some(400));
    let long_url = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "w".repeat(10_000));
    assert_eq!(status_of(&fu, long_url.as_bytes()), Some(414));
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "h".repeat(20_000)
    );
    assert_eq!(status_of(&fu, big_header.as_bytes()), Some(431));
    let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_eq!(status_of(&fu, many.as_bytes()), Some(431));
    assert_eq!(
        status_of(
            &fu,
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n"
        ),
        Some(413)
    );
    assert_eq!(
        status_of(
            &fu,
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"
        ),
        Some(400)
    );
    assert_eq!(
        status_of(
            &fu,
            b"POST /work HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        Some(501)
    );
    // A body on a request is read and dropped; the connection stays usable.
    let mut c = Conn::open(addr(&fu));
    c.send(b"POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.answer().unwrap().status, 405);
    assert_eq!(c.answer().unwrap().status, 200);

    assert_eq!(get(&fu, "/work/us/0").status, 200);
    let stats = get(&fu, "/stats").json();
    assert!(
        stats["connections"]["bad_requests"].as_u64().unwrap() >= 8,
        "{stats}"
    );
}

#[test]
fn slow_and_vanishing_clients_do_not_stop_the_others() {
    let emu = start(topology("default"), 0.05, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    // A client that sends half a head and stays silent.
    let mut slow = TcpStream::connect(addr(&fu)).unwrap();
    slow.write_all(b"GET /work/us/0 HTT").unwrap();
    // Clients that connect and leave, or send a request and leave before the answer.
    for _ in 0..20 {
        drop(TcpStream::connect(addr(&fu)).unwrap());
        let mut s = TcpStream::connect(addr(&fu)).unwrap();
        s.write_all(b"GET /work/asia/0 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        drop(s);
    }
    // A client that half-closes after its request still gets its answer.
    let mut s = TcpStream::connect(addr(&fu)).unwrap();
    s.write_all(b"GET /work/emea/0 HTTP/1.0\r\n\r\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Everyone else is still served, and the silent client is still connected, unanswered.
    for _ in 0..5 {
        assert_eq!(get(&fu, "/work/us/1").status, 200);
    }
    slow.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(slow.read(&mut buf).is_err(), "no answer to half a request");
    // The forwarding unit finished the abandoned requests' work without crashing.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(&fu, "/").status, 200);
}

/// Send `bytes` on a fresh connection (without closing it) and read until the server closes it;
/// returns what it sent. A server that neither answers nor closes within `limit` fails the test.
fn until_closed(fu: &str, bytes: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(addr(fu)).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no close within {limit:?} ({e}); got {out:?}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn two_content_length_values_are_rejected() {
    let emu = start(topology("no-delay"), 1.0, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    // Which length frames the body decides whether "GET /" is a second request: smuggling. The
    // server answers 400 and closes, so nothing after the head is ever taken as a request.
    for lengths in [
        "Content-Length: 5\r\nContent-Length: 25",
        "Content-Length: 5, 25",
    ] {
        let req = format!(
            "POST /work HTTP/1.1\r\nHost: x\r\n{lengths}\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        let out = until_closed(&fu, req.as_bytes(), Duration::from_secs(5));
        assert!(out.starts_with("HTTP/1.1 400 "), "{lengths}: {out}");
        assert!(out.contains("Connection: close"), "{out}");
        assert_eq!(
            out.matches("HTTP/1.1 ").count(),
            1,
            "one answer only: {out}"
        );
    }
    assert_eq!(get(&fu, "/").status, 200);
}

#[test]
fn content_length_that_is_not_plain_digits_is_rejected() {
    let emu = start(topology("no-delay"), 1.0, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    for value in ["+0", "-1", " 1 2", "0x5", "5.0"] {
        let req = format!("POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n");
        assert_eq!(status_of(&fu, req.as_bytes()), Some(400), "{value:?}");
    }
}

#[test]
fn http11_request_without_host_is_rejected() {
    let emu = start(topology("no-delay"), 1.0, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    assert_eq!(status_of(&fu, b"GET / HTTP/1.1\r\n\r\n"), Some(400));
    assert_eq!(
        status_of(&fu, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        Some(400)
    );
    // HTTP/1.0 never required it.
    assert_eq!(status_of(&fu, b"GET / HTTP/1.0\r\n\r\n"), Some(200));
}

#[test]
fn expect_100_continue_is_answered_at_once_not_after_a_timeout() {
    let emu = start(topology("no-delay"), 1.0, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    // The server's head timeout is 10 s: an answer within 2 s shows it did not wait for it.
    let quick = Duration::from_secs(2);
    let mut c = Conn::open(addr(&fu));
    c.stream.set_read_timeout(Some(quick)).unwrap();
    c.send(b"POST /work HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let go_on = c.answer().expect("100 Continue before the body");
    assert!(
        go_on.headers.starts_with("HTTP/1.1 100 Continue"),
        "{go_on:?}"
    );
    c.send(b"hello");
    assert_eq!(c.answer().unwrap().status, 405, "then the final answer");
    // No body to wait for: the final answer straight away, and no 100 before it.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
    let a = c.answer().expect("an answer at once");
    assert_eq!(a.status, 200, "{a:?}");
}

/// A valid request with a few bytes replaced, inserted or removed.
fn mutated() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    const VALID: &[&str] = &[
        "GET /work/us/1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /stats HTTP/1.1\r\nHost: x\r\n\r\n",
        "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
        "GET /work HTTP/1.1\r\nHost: x\r\nX-Cmdunit-Sent: 1f 12.5\r\nConnection: close\r\n\r\n",
    ];
    let edits = proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8);
    (0..VALID.len(), edits).prop_map(|(i, edits)| {
        let mut b = VALID[i].as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at % (b.len() + 1);
            match kind {
                0 if at < b.len() => b[at] = byte,
                1 => b.insert(at, byte),
                _ if at < b.len() => {
                    b.remove(at);
                }
                _ => b.push(byte),
            }
        }
        b
    })
}

#[test]
fn any_bytes_end_in_a_status_line_or_a_close() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let emu = start(topology("no-delay"), 1.0, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    // Each case: the bytes, then a half-close; whatever the server sent before closing must be
    // HTTP answers (possibly none), and it must close, not hang.
    let check = |bytes: Vec<u8>| -> Result<(), TestCaseError> {
        let mut s = TcpStream::connect(addr(&fu)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => return Err(TestCaseError::fail(format!("no close: {e}"))),
            }
        }
        let text = String::from_utf8_lossy(&out);
        let status_line = text.len() >= 13
            && text.starts_with("HTTP/1.1 ")
            && text[9..12].bytes().all(|b| b.is_ascii_digit())
            && &text[12..13] == " ";
        prop_assert!(out.is_empty() || status_line, "{text:?}");
        Ok(())
    };
    let config = Config {
        cases: 150,
        failure_persistence: None,
        ..Config::default()
    };
    let random = proptest::collection::vec(any::<u8>(), 0..400);
    TestRunner::new(config.clone())
        .run(&random, check)
        .unwrap_or_else(|e| panic!("random bytes: {e}"));
    TestRunner::new(config)
        .run(&mutated(), check)
        .unwrap_or_else(|e| panic!("mutated requests: {e}"));
    assert_eq!(get(&fu, "/").status, 200, "still serving");
}
