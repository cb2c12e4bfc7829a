//! Acceptance 4 of issue 2 (the forwarding unit's connection limit) and the "bad input never
//! crashes it" requirement: malformed, huge, slow and vanishing clients get a 4xx or a closed
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
    let big_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "h".repeat(20_000));
    assert_eq!(status_of(&fu, big_header.as_bytes()), Some(431));
    let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
    assert_eq!(status_of(&fu, many.as_bytes()), Some(431));
    assert_eq!(
        status_of(&fu, b"GET / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n"),
        Some(413)
    );
    assert_eq!(
        status_of(&fu, b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n"),
        Some(400)
    );
    assert_eq!(
        status_of(
            &fu,
            b"POST /work HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        Some(501)
    );
    // A body on a request is read and dropped; the connection stays usable.
    let mut c = Conn::open(addr(&fu));
    c.send(b"POST /work HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n");
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
