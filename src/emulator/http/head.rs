//! Reading a request head strictly, as RFC 9112 asks of a server.
//!
//! Why strict: the emulator sits where real clients, proxies and load tools talk to it, and a
//! lenient parser is how request smuggling happens (two parties disagreeing on where a body
//! ends). So a head whose framing is ambiguous is refused with 400 and the connection closed:
//! two different `Content-Length` values, a `Content-Length` that is not plain digits (`+0`, `-1`,
//! `1 2`), an HTTP/1.1 request without exactly one `Host`. Chunked bodies are refused (501): the
//! emulator never needs them. Limits keep a hostile client from costing memory: the head must fit
//! in [`MAX_HEAD`] bytes (else 431), the target in [`MAX_TARGET`] (else 414), a body in
//! [`MAX_BODY`] (else 413). `httparse` does the tokenising; the rules above are checked here.

use super::message::{Request, Response, SENT_HEADER};

/// Largest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Longest request target accepted.
pub const MAX_TARGET: usize = 2048;
/// Largest request body read (and discarded).
pub const MAX_BODY: usize = 64 * 1024;
/// Header lines accepted in one head (more: 431).
pub const MAX_HEADERS: usize = 48;

/// A complete, valid request head.
#[derive(Clone, Debug)]
pub struct ParsedHead {
    pub request: Request,
    /// The connection stays open after the answer.
    pub keep_alive: bool,
    /// Bytes of body that follow the head.
    pub body_len: usize,
    /// An HTTP/1.1 client waits for `100 Continue` before it sends the body.
    pub expect_continue: bool,
}

/// Parse a request head at the start of `buf`: `Ok(None)` while it is incomplete, `Err` with the
/// answer to send (the connection is then closed) if it is invalid.
pub fn parse_head(buf: &[u8]) -> Result<Option<(ParsedHead, usize)>, Response> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            // httparse accepts an arbitrarily long target while it waits for the rest.
            if req.path.is_some_and(|p| p.len() > MAX_TARGET) {
                return Err(Response::fatal(414, "request target too long"));
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
    let http11 = req.version.unwrap_or(1) >= 1;
    let mut keep_alive = http11;
    let mut lengths: Vec<&str> = Vec::new();
    let mut hosts = 0usize;
    let mut expect_continue = false;
    let mut sent_stamp = None;
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            // Only the fields below are read; others may carry any octets.
            if is_framing(h.name) {
                return Err(Response::fatal(400, &format!("bad {} value", h.name)));
            }
            continue;
        };
        let value = value.trim_matches([' ', '\t']);
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.split(',').any(|t| t.trim() == "close") {
                keep_alive = false;
            } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            // A field line may itself be a list ("5, 5") when a proxy merged duplicates.
            lengths.extend(value.split(',').map(|v| v.trim_matches([' ', '\t'])));
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("expect") {
            if !value.eq_ignore_ascii_case("100-continue") {
                return Err(Response::fatal(
                    417,
                    "only Expect: 100-continue is supported",
                ));
            }
            // An HTTP/1.0 client cannot understand 100 Continue: its expectation is ignored.
            expect_continue = http11;
        } else if name.eq_ignore_ascii_case(SENT_HEADER) {
            sent_stamp = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::fatal(
                501,
                "chunked request bodies are not supported",
            ));
        }
    }
    if http11 && hosts == 0 {
        return Err(Response::fatal(400, "HTTP/1.1 request without Host"));
    }
    if hosts > 1 {
        return Err(Response::fatal(400, "more than one Host field"));
    }
    let body_len = body_length(&lengths)?;
    let path = target.split('?').next().unwrap_or("").to_string();
    Ok(Some((
        ParsedHead {
            request: Request {
                method,
                path,
                sent_stamp,
            },
            keep_alive,
            body_len,
            expect_continue,
        },
        consumed,
    )))
}

fn is_framing(name: &str) -> bool {
    ["content-length", "host", "expect", "transfer-encoding"]
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f))
}

/// The body length the `Content-Length` values give: none means 0; every value must be plain
/// digits and all must agree (else 400); past [`MAX_BODY`], 413.
fn body_length(values: &[&str]) -> Result<usize, Response> {
    let Some(first) = values.first() else {
        return Ok(0);
    };
    if values
        .iter()
        .any(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Response::fatal(400, "bad Content-Length"));
    }
    // Compare as numbers ("05" and "5" agree), without overflowing on long digit strings.
    let number = |v: &str| -> String {
        let digits = v.trim_start_matches('0');
        if digits.is_empty() { "0" } else { digits }.to_string()
    };
    let n = number(first);
    if values.iter().any(|v| number(v) != n) {
        return Err(Response::fatal(400, "conflicting Content-Length values"));
    }
    match n.parse::<usize>() {
        Ok(len) if len <= MAX_BODY => Ok(len),
        _ => Err(Response::fatal(413, "request body too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Option<(ParsedHead, usize)>, Response> {
        parse_head(s.as_bytes())
    }

    fn status(s: &str) -> Option<u16> {
        parse(s).err().map(|r| r.status)
    }

    fn head(s: &str) -> ParsedHead {
        match parse(s) {
            Ok(Some((h, _))) => h,
            other => panic!("{s:?} should parse, got {:?}", other.map(|o| o.is_some())),
        }
    }

    #[test]
    fn heads_parse_with_keep_alive_rules() {
        let Ok(Some((h, n))) = parse("GET /work/us/1?x=2 HTTP/1.1\r\nHost: a\r\n\r\nGET") else {
            panic!("should parse")
        };
        assert_eq!(h.request.path, "/work/us/1");
        assert!(h.keep_alive);
        assert_eq!(n, 40);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(matches!(parse("GET / HTTP/1.1\r\nHost"), Ok(None)));
    }

    #[test]
    fn bad_heads_are_rejected_with_the_right_status() {
        assert_eq!(status("NOT HTTP AT ALL\r\n\r\n"), Some(400));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET + 1));
        assert_eq!(status(&long), Some(414));
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n"),
            Some(413)
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(501)
        );
    }

    #[test]
    fn two_content_length_values_are_rejected() {
        for h in [
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: 5, 6",
            "Content-Length: 0\r\nContent-Length: 99999999999999999999999",
        ] {
            let req = format!("POST / HTTP/1.1\r\nHost: a\r\n{h}\r\n\r\n");
            let r = parse(&req).expect_err(&req);
            assert_eq!(r.status, 400, "{h}");
            assert!(r.close, "{h}");
        }
        // The same value twice (or as a merged list) frames the body one way: accepted.
        for h in [
            "Content-Length: 5\r\nContent-Length: 5",
            "Content-Length: 5, 5",
            "Content-Length: 5\r\nContent-Length: 005",
        ] {
            let req = format!("POST / HTTP/1.1\r\nHost: a\r\n{h}\r\n\r\n");
            assert_eq!(head(&req).body_len, 5, "{h}");
        }
    }

    #[test]
    fn content_length_that_is_not_plain_digits_is_rejected() {
        for v in ["+0", "-1", " 1 2", "1 2", "0x10", "1.0", "", "5,", "١"] {
            let req = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {v}\r\n\r\n");
            assert_eq!(status(&req), Some(400), "Content-Length: {v:?}");
        }
        let req = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  12 \r\n\r\n";
        assert_eq!(head(req).body_len, 12, "surrounding whitespace is allowed");
    }

    #[test]
    fn http11_request_without_host_is_rejected() {
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), Some(400));
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Some(400)
        );
        // HTTP/1.0 had no Host requirement.
        assert_eq!(head("GET / HTTP/1.0\r\n\r\n").request.path, "/");
        assert_eq!(head("GET / HTTP/1.1\r\nhost: a\r\n\r\n").request.path, "/");
    }

    #[test]
    fn expect_100_continue_is_recognised_only_where_it_means_something() {
        let req = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
        assert!(head(req).expect_continue);
        let req = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert!(
            !head(req).expect_continue,
            "an HTTP/1.0 expectation is ignored"
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n"),
            Some(417)
        );
    }

    /// What the server must do with any head: wait for more, accept it within the bytes given,
    /// or refuse it with an error status and a close.
    fn check_outcome(bytes: &[u8]) -> Result<(), TestCaseError> {
        match parse_head(bytes) {
            Ok(None) => {}
            Ok(Some((h, consumed))) => {
                prop_assert!(consumed > 0 && consumed <= bytes.len());
                prop_assert!(h.body_len <= MAX_BODY);
                prop_assert!(h.request.path.len() <= MAX_TARGET);
            }
            Err(r) => {
                prop_assert!((400..600).contains(&r.status), "status {}", r.status);
                prop_assert!(r.close);
            }
        }
        Ok(())
    }

    const VALID: &[&str] = &[
        "GET /work/us/1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "PUT /stats HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
        "GET /work HTTP/1.1\r\nHost: x\r\nX-Cmdunit-Sent: 1f 12.5\r\nConnection: close\r\n\r\n",
    ];

    /// A valid request with a few bytes replaced, inserted or removed.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
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

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn random_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            check_outcome(&bytes)?;
        }

        #[test]
        fn mutated_valid_requests_never_panic_the_parser(bytes in mutated()) {
            check_outcome(&bytes)?;
        }
    }
}
