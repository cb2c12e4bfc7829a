//! A forwarding unit that misbehaves on purpose, against the built binary: whatever the unit
//! does (garbage, silence, floods, resets, absurd numbers, dying mid-batch), `cmdunit N` ends in
//! bounded time, gives every job exactly one outcome, classifies the failures, exits with the
//! right code and one `error:` line, and never panics. Input the user gives (flags, calibration
//! files) is checked where it enters: exit 2, one line.
//!
//! The unit is an in-process `std::net` server on 127.0.0.1 (a thread per connection) whose
//! every answer is chosen by a closure of the request: one closure per hostile behaviour.

mod hostile_support;

use hostile_support::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the unit does with one request.
enum Act {
    /// A complete answer with this status and body (keep-alive).
    Answer(u16, String),
    /// These bytes, then the connection is closed.
    Raw(Vec<u8>),
    /// The connection is reset (RST) without an answer.
    Reset,
    /// Nothing, ever: the connection stays open until the client leaves.
    Stall,
    /// A valid answer, one byte every `Duration`.
    Trickle(Duration),
    /// A 200 announcing a 1 GB body, then streaming it.
    HugeBody,
    /// A status line, then header lines forever.
    EndlessHeaders,
    /// A 301 to the path itself.
    RedirectToSelf,
    /// Waits, then does the other thing.
    After(Duration, Box<Act>),
    /// The unit dies: it stops accepting connections and resets every open one.
    Die,
}

/// One request as the unit saw it.
struct Req {
    /// Requests seen before this one (`GET /` included).
    k: u64,
    /// Requests for `/work…` seen before this one.
    work: u64,
    path: String,
}

type Behaviour = Arc<dyn Fn(&Req) -> Act + Send + Sync>;

struct Unit {
    url: String,
}

impl Unit {
    fn start(behaviour: impl Fn(&Req) -> Act + Send + Sync + 'static) -> Unit {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let behaviour: Behaviour = Arc::new(behaviour);
        let seen = Arc::new(AtomicU64::new(0));
        let work = Arc::new(AtomicU64::new(0));
        let dead = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            // Polled, so that a dead unit can close its socket: connections are then refused.
            while !dead.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (b, seen, work, dead) =
                            (behaviour.clone(), seen.clone(), work.clone(), dead.clone());
                        std::thread::spawn(move || serve(s, &b, &seen, &work, &dead));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Unit { url }
    }
}

/// A valid answer from the machine the path names (asia/0 for `/work` and a region).
fn good_body(path: &str) -> String {
    let mut parts = path
        .trim_start_matches("/work")
        .trim_matches('/')
        .split('/');
    let region = parts.next().filter(|r| !r.is_empty()).unwrap_or("asia");
    let machine = parts.next().unwrap_or("0");
    format!(
        r#"{{"machine": "Machine {machine}", "region": "{region}", "response_time": 350, "work_time": 19}}"#
    )
}

fn answer_bytes(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

fn serve(
    mut s: TcpStream,
    behaviour: &Behaviour,
    seen: &AtomicU64,
    work: &AtomicU64,
    dead: &AtomicBool,
) {
    let _ = s.set_nonblocking(false);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // One request head (GET has no body).
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > 64 * 1024 {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        if dead.load(Ordering::SeqCst) {
            return reset(s);
        }
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let req = Req {
            k: seen.fetch_add(1, Ordering::SeqCst),
            work: if path.starts_with("/work") {
                work.fetch_add(1, Ordering::SeqCst)
            } else {
                u64::MAX
            },
            path,
        };
        let mut act = behaviour(&req);
        while let Act::After(d, next) = act {
            std::thread::sleep(d);
            act = *next;
        }
        match act {
            Act::Answer(status, body) => {
                if s.write_all(&answer_bytes(status, &body)).is_err() {
                    return;
                }
            }
            Act::Raw(bytes) => {
                let _ = s.write_all(&bytes);
                return;
            }
            Act::Reset => return reset(s),
            Act::Stall => {
                while let Ok(n) = s.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                }
                return;
            }
            Act::Trickle(every) => {
                for b in answer_bytes(200, &good_body(&req.path)) {
                    if s.write_all(&[b]).is_err() {
                        return;
                    }
                    std::thread::sleep(every);
                }
            }
            Act::HugeBody => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n";
                if s.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let zeros = vec![b'0'; 64 * 1024];
                for _ in 0..(1_000_000_000 / zeros.len()) {
                    if s.write_all(&zeros).is_err() {
                        return;
                    }
                }
                return;
            }
            Act::EndlessHeaders => {
                if s.write_all(b"HTTP/1.1 200 OK\r\n").is_err() {
                    return;
                }
                for i in 0u64.. {
                    if write!(s, "X-Filler-{i}: aaaaaaaaaaaaaaaaaaaaaaaa\r\n").is_err() {
                        return;
                    }
                    if i % 1000 == 999 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            Act::RedirectToSelf => {
                let r = format!(
                    "HTTP/1.1 301 Moved Permanently\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n",
                    req.path
                );
                if s.write_all(r.as_bytes()).is_err() {
                    return;
                }
            }
            Act::Die => {
                dead.store(true, Ordering::SeqCst);
                return reset(s);
            }
            Act::After(..) => unreachable!(),
        }
    }
}

/// What every case starts from: a folder for the run and one for the cache.
struct Case {
    out: PathBuf,
    cache: PathBuf,
}

impl Case {
    fn new(name: &str) -> Case {
        let root = tmp_dir(name);
        Case {
            out: root.join("run"),
            cache: root.join("cache"),
        }
    }

    /// `cmdunit N -f URL` quietly, JSON on stdout, no charts, with `extra` flags.
    fn run(&self, n: u64, url: &str, extra: &[&str], limit: Duration) -> Ran {
        let n = n.to_string();
        let mut args = vec![
            n.as_str(),
            "-f",
            url,
            "--no-charts",
            "-q",
            "--format",
            "json",
            "--out",
            self.out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let r = run(&args, &self.cache, limit);
        check_stderr(&r);
        r
    }

    /// A run that must end with a summary: its exit code checked, `ok + failed == n`.
    fn batch(&self, n: u64, url: &str, extra: &[&str], code: i32) -> serde_json::Value {
        self.batch_ran(n, url, extra, code).1
    }

    /// [`Case::batch`], with the run itself (its wall time and memory).
    fn batch_ran(&self, n: u64, url: &str, extra: &[&str], code: i32) -> (Ran, serde_json::Value) {
        let r = self.run(n, url, extra, LIMIT);
        assert_eq!(r.code, Some(code), "exit code; stderr: {}", r.stderr);
        let v = summary(&r, &self.out);
        check_live_counts(&v, n);
        if code == 1 {
            assert!(
                r.stderr.contains("did not succeed") || r.stderr.contains("cannot reach"),
                "{}",
                r.stderr
            );
        }
        (r, v)
    }
}

/// No case may take longer (each is designed to take a few seconds).
const LIMIT: Duration = Duration::from_secs(40);

fn failures(v: &serde_json::Value, class: &str) -> u64 {
    v["failures"][class].as_u64().unwrap_or(0)
}

/// A unit whose every `/work` answer is `body` (and `GET /` a 404: the documented machines).
fn answering(body: &'static str) -> Unit {
    Unit::start(move |r| {
        if r.path == "/" {
            Act::Answer(404, String::new())
        } else {
            Act::Answer(200, body.to_string())
        }
    })
}

fn healthy() -> Unit {
    Unit::start(|r| {
        if r.path == "/" {
            Act::Answer(404, String::new())
        } else {
            Act::Answer(200, good_body(&r.path))
        }
    })
}

// --- The defects of the audit, case by case. ---

#[test]
fn a_response_time_of_u64_max_is_a_bad_response_in_bounded_time() {
    for (name, rt, wt) in [
        ("u64-max", "18446744073709551615", "19"),
        ("1e17", "100000000000000000", "19"),
        ("1e17-float", "1e17", "19"),
        ("work-u64-max", "350", "18446744073709551615"),
        ("1e300", "1e300", "1e300"),
    ] {
        let body: &'static str = Box::leak(
            format!(r#"{{"machine": "Machine 0", "region": "asia", "response_time": {rt}, "work_time": {wt}}}"#)
                .into_boxed_str(),
        );
        let unit = answering(body);
        let case = Case::new(name);
        let v = case.batch(20, &unit.url, &["--timeout", "2"], 1);
        assert_eq!(failures(&v, "bad_response"), 20, "{name}: {v}");
    }
}

#[test]
fn a_response_time_above_u32_max_is_not_recorded_clamped() {
    let unit = answering(
        r#"{"machine": "Machine 1", "region": "us", "response_time": 5000000000, "work_time": 19}"#,
    );
    let case = Case::new("u32-max");
    let v = case.batch(10, &unit.url, &["--timeout", "2", "-p", "machine-rr"], 1);
    assert_eq!(failures(&v, "bad_response"), 10, "{v}");
    let (header, rows) = rows(&case.out);
    assert_eq!(rows.len(), 10);
    for rt in column(&header, &rows, "response_time") {
        assert!(rt != "4294967295", "clamped: {rt}");
    }
    assert_eq!(v["response_time_ms"]["max"], 0.0, "{v}");
}

#[test]
fn a_unit_that_resets_two_connections_in_a_row_is_not_lost() {
    // The first two `/work` requests are reset; everything after is answered.
    let unit = Unit::start(|r| match r.path.as_str() {
        "/" => Act::Answer(404, String::new()),
        _ if r.work < 2 => Act::Reset,
        p => Act::Answer(200, good_body(p)),
    });
    let case = Case::new("two-resets");
    let v = case.batch(50, &unit.url, &["--timeout", "2"], 0);
    assert_eq!(v["ok"], 50, "{v}");
    assert_eq!(v["forwarders_lost"].as_array().unwrap().len(), 0, "{v}");
    // The same, when the resets hit the very first connections (the unit's self-description).
    let unit = Unit::start(|r| match r.k {
        0 | 1 => Act::Reset,
        _ if r.path == "/" => Act::Answer(404, String::new()),
        _ => Act::Answer(200, good_body(&r.path)),
    });
    let case = Case::new("two-resets-first");
    let v = case.batch(50, &unit.url, &["--timeout", "2"], 0);
    assert_eq!(v["ok"], 50, "{v}");
}

#[test]
fn a_unit_that_resets_every_connection_ends_in_classified_connect_failures() {
    // It describes itself, then resets every `/work`: suspended, probed, lost.
    let unit = Unit::start(|r| {
        if r.path == "/" {
            Act::Answer(404, String::new())
        } else {
            Act::Reset
        }
    });
    let case = Case::new("all-resets");
    let v = case.batch(30, &unit.url, &["--timeout", "2"], 1);
    assert_eq!(failures(&v, "connect"), 30, "{v}");
    assert_eq!(v["forwarders_lost"].as_array().unwrap().len(), 1, "{v}");
    // Nothing answers at all: said so, before any batch.
    let unit = Unit::start(|_| Act::Reset);
    let case = Case::new("resets-everything");
    let r = case.run(30, &unit.url, &["--timeout", "2"], LIMIT);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("cannot reach"), "{}", r.stderr);
}

#[test]
fn an_answer_naming_a_machine_not_in_the_system_is_a_bad_response() {
    for (name, body) in [
        (
            "mars",
            r#"{"machine": "Machine 0", "region": "mars", "response_time": 350, "work_time": 19}"#,
        ),
        (
            "machine-9",
            r#"{"machine": "Machine 9", "region": "asia", "response_time": 350, "work_time": 19}"#,
        ),
    ] {
        let unit = answering(body);
        let case = Case::new(name);
        let v = case.batch(15, &unit.url, &["--timeout", "2"], 1);
        assert_eq!(failures(&v, "bad_response"), 15, "{name}: {v}");
        assert!(
            v["per_machine"]
                .as_object()
                .unwrap()
                .values()
                .all(|c| c == 0),
            "{name}: {v}"
        );
    }
}

#[test]
fn a_timeout_of_1e300_is_a_usage_error_not_a_panic() {
    let unit = healthy();
    for bad in ["1e300", "inf", "NaN", "0", "-1", "3601"] {
        let case = Case::new("timeout-flag");
        let r = case.run(10, &unit.url, &["--timeout", bad], LIMIT);
        assert_eq!(r.code, Some(2), "--timeout {bad}: {}", r.stderr);
        assert!(r.stderr.contains("--timeout"), "{}", r.stderr);
    }
}

#[test]
fn an_empty_or_broken_forwarder_url_is_a_usage_error() {
    for bad in ["", "http://[::1", " ", "http://", "http://h:0"] {
        let case = Case::new("bad-url");
        let r = case.run(10, bad, &[], LIMIT);
        assert_eq!(r.code, Some(2), "-f {bad:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("forwarding unit URL"),
            "-f {bad:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn an_empty_forwarder_in_the_environment_is_a_usage_error() {
    let case = Case::new("empty-env");
    let mut c = command(
        &["10", "-q", "--out", case.out.to_str().unwrap()],
        &case.cache,
    );
    let o = c.env("CMDUNIT_FORWARDER", "").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("forwarding unit URL"), "{err}");
}

#[test]
fn a_self_description_is_checked_before_it_is_believed() {
    let describing = |machines: String| {
        let machines: &'static str = Box::leak(machines.into_boxed_str());
        Unit::start(move |r| {
            if r.path == "/" {
                Act::Answer(200, format!(r#"{{"machines": {machines}}}"#))
            } else {
                Act::Answer(200, good_body(&r.path))
            }
        })
    };
    // Not machine names, or the same one twice: the documented five are used instead.
    for bad in [
        r#"["../../etc", "asia/0"]"#.to_string(),
        r#"["asia/0", "asia/0"]"#.to_string(),
        r#"["asia/99999999999"]"#.to_string(),
        "[]".to_string(),
    ] {
        let unit = describing(bad.clone());
        let case = Case::new("bad-description");
        let v = case.batch(10, &unit.url, &["--timeout", "2"], 0);
        assert_eq!(v["per_machine"].as_object().unwrap().len(), 5, "{bad}: {v}");
    }
    // Many machines is a system like any other.
    let many: Vec<String> = (0..2000).map(|i| format!("\"r{}/{}\"", i % 7, i)).collect();
    let unit = describing(format!("[{}]", many.join(",")));
    let case = Case::new("many-machines");
    let v = case.batch(40, &unit.url, &["--timeout", "2"], 0);
    assert_eq!(v["per_machine"].as_object().unwrap().len(), 2000, "{v}");
}

/// A unit whose machines are asleep: the first request to a machine wakes it, and every
/// request to it waits until `wake` after that (then it answers at once).
fn asleep(wake: Duration) -> Unit {
    let woken: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>> =
        Default::default();
    Unit::start(move |r| {
        if r.path == "/" {
            return Act::Answer(404, String::new());
        }
        let awake_at = *woken
            .lock()
            .unwrap()
            .entry(r.path.clone())
            .or_insert_with(|| std::time::Instant::now() + wake);
        Act::After(
            awake_at.saturating_duration_since(std::time::Instant::now()),
            Box::new(Act::Answer(200, good_body(&r.path))),
        )
    })
}

#[test]
fn the_timeout_flag_governs_how_long_a_sleeping_machine_may_take() {
    // At this time scale a machine that takes 1.2 s to wake takes 120 s of model time: more
    // than any fixed minute. With a timeout of 200 s it is waited for, both by the calibration
    // pass of a policy that plans from a model and by the batch itself; with 30 s it is not.
    let scale = ["--time-scale", "0.01"];
    for policy in ["least-outstanding", "machine-rr"] {
        let unit = asleep(Duration::from_millis(1200));
        let case = Case::new("asleep-patient");
        let mut args = vec!["--timeout", "200", "-p", policy];
        args.extend(scale);
        let v = case.batch(10, &unit.url, &args, 0);
        assert_eq!(v["ok"], 10, "{policy}: {v}");
    }
    // Impatient: the calibration finds no machine awake; the batch times out.
    let unit = asleep(Duration::from_millis(1200));
    let case = Case::new("asleep-impatient-probe");
    let r = case.run(
        10,
        &unit.url,
        &[
            "--timeout",
            "30",
            "-p",
            "least-outstanding",
            "--time-scale",
            "0.01",
        ],
        LIMIT,
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("no machine"), "{}", r.stderr);
    let unit = asleep(Duration::from_millis(1200));
    let case = Case::new("asleep-impatient");
    let r = case.run(
        10,
        &unit.url,
        &[
            "--timeout",
            "30",
            "-p",
            "machine-rr",
            "--time-scale",
            "0.01",
            "--retries",
            "0",
        ],
        LIMIT,
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let v = summary(&r, &case.out);
    check_live_counts(&v, 10);
    assert_eq!(failures(&v, "timeout"), 10, "{v}");
}

#[test]
fn answers_are_on_file_within_a_second_even_while_every_agent_waits() {
    // The first five `/work` requests are answered at once, the rest never: every agent ends up
    // blocked. A kill two seconds in must find the five answers in requests.csv.
    let unit = Unit::start(|r| match r.path.as_str() {
        "/" => Act::Answer(404, String::new()),
        p if r.work < 5 => Act::Answer(200, good_body(p)),
        _ => Act::Stall,
    });
    let case = Case::new("kill-while-blocked");
    let run = spawn(
        &[
            "10",
            "-f",
            &unit.url,
            "-p",
            "machine-rr",
            "--max-in-flight",
            "5",
            "--timeout",
            "60",
            "--no-charts",
            "-q",
            "--out",
            case.out.to_str().unwrap(),
        ],
        &case.cache,
    );
    std::thread::sleep(Duration::from_millis(2000));
    assert!(!run.exited());
    run.signal(libc::SIGKILL);
    let r = run.finish(Duration::from_secs(10));
    assert_eq!(r.signal, Some(libc::SIGKILL));
    let (header, rows) = rows(&case.out);
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(column(&header, &rows, "outcome").iter().all(|o| *o == "ok"));
}

// --- Hostile units whose handling already held: kept so that it keeps holding. ---

#[test]
fn bad_json_is_a_bad_response() {
    let unit = Unit::start(|r| {
        let bodies = [
            "not json",
            r#"{"machine": "Machine 0"}"#,
            r#"{"machine": "Machine 0", "region": "asia", "response_time": -3, "work_time": 1}"#,
            r#"{"machine": "Mach"#,
            "[1, 2]",
            "",
        ];
        match r.path.as_str() {
            "/" => Act::Answer(200, "{\"machines\": 7}".into()),
            _ => Act::Answer(200, bodies[(r.k as usize) % bodies.len()].into()),
        }
    });
    let case = Case::new("bad-json");
    let v = case.batch(24, &unit.url, &["--timeout", "2"], 1);
    assert_eq!(failures(&v, "bad_response"), 24, "{v}");
}

#[test]
fn an_answer_that_is_not_http_is_a_bad_response() {
    let unit = Unit::start(|_| Act::Raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()));
    let case = Case::new("not-http");
    let v = case.batch(10, &unit.url, &["--timeout", "2"], 1);
    assert_eq!(failures(&v, "bad_response"), 10, "{v}");
}

#[test]
fn an_answer_cut_short_ends_every_job_once() {
    // A 200 announcing 500 bytes of body, then the connection closes after 20.
    let unit = Unit::start(|r| {
        if r.path == "/" {
            return Act::Answer(404, String::new());
        }
        let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n".to_vec();
        bytes.extend_from_slice(&good_body(&r.path).as_bytes()[..20]);
        Act::Raw(bytes)
    });
    let case = Case::new("cut-short");
    let v = case.batch(20, &unit.url, &["--timeout", "2"], 1);
    assert_eq!(v["ok"], 0, "{v}");
}

#[test]
fn a_huge_body_is_cut_off_as_a_bad_response() {
    let unit = Unit::start(|_| Act::HugeBody);
    let case = Case::new("huge-body");
    let (r, v) = case.batch_ran(8, &unit.url, &["--timeout", "3"], 1);
    assert_eq!(failures(&v, "bad_response"), 8, "{v}");
    assert!(r.max_rss_kib < 200 * 1024, "{} KiB", r.max_rss_kib);
}

#[test]
fn endless_headers_are_cut_off() {
    let unit = Unit::start(|_| Act::EndlessHeaders);
    let case = Case::new("endless-headers");
    let (r, v) = case.batch_ran(8, &unit.url, &["--timeout", "2"], 1);
    assert_eq!(failures(&v, "bad_response"), 8, "{v}");
    assert!(r.max_rss_kib < 200 * 1024, "{} KiB", r.max_rss_kib);
}

#[test]
fn a_stalled_unit_ends_in_timeouts_within_the_timeout() {
    let unit = Unit::start(|_| Act::Stall);
    let case = Case::new("stall");
    let (r, v) = case.batch_ran(10, &unit.url, &["--timeout", "0.3"], 1);
    assert_eq!(failures(&v, "timeout"), 10, "{v}");
    assert!(r.wall < Duration::from_secs(15), "{:?}", r.wall);
}

#[test]
fn a_trickling_unit_ends_in_timeouts() {
    // One byte every 100 ms: a whole answer would take ~15 s.
    let unit = Unit::start(|_| Act::Trickle(Duration::from_millis(100)));
    let case = Case::new("trickle");
    let (r, v) = case.batch_ran(6, &unit.url, &["--timeout", "0.5"], 1);
    assert_eq!(failures(&v, "timeout"), 6, "{v}");
    assert!(r.wall < Duration::from_secs(15), "{:?}", r.wall);
}

#[test]
fn a_redirect_loop_is_not_followed() {
    let unit = Unit::start(|_| Act::RedirectToSelf);
    let case = Case::new("redirect");
    let v = case.batch(12, &unit.url, &["--timeout", "2"], 1);
    assert_eq!(failures(&v, "http_301"), 12, "{v}");
}

#[test]
fn a_503_storm_spends_the_retry_budget_and_ends() {
    let unit = Unit::start(|r| {
        if r.path == "/" {
            Act::Answer(404, String::new())
        } else {
            Act::Answer(503, "overloaded".into())
        }
    });
    let case = Case::new("503");
    let n = 40;
    let v = case.batch(n, &unit.url, &["--timeout", "2"], 1);
    assert_eq!(failures(&v, "http_503"), n, "{v}");
    // Budget: 20% of N; moves off ejected machines are bounded per job.
    assert!(v["retries"].as_u64().unwrap() <= n / 5, "{v}");
}

#[test]
fn a_429_storm_is_classified_and_not_retried() {
    let unit = Unit::start(|r| {
        if r.path == "/" {
            Act::Answer(404, String::new())
        } else {
            Act::Answer(429, "slow down".into())
        }
    });
    let case = Case::new("429");
    let v = case.batch(30, &unit.url, &["--timeout", "2"], 1);
    assert_eq!(failures(&v, "http_429"), 30, "{v}");
    assert_eq!(v["retries"], 0, "{v}");
}

#[test]
fn a_unit_dying_mid_batch_ends_the_rest_as_connect_failures() {
    let unit = Unit::start(|r| match r.path.as_str() {
        "/" => Act::Answer(404, String::new()),
        p if r.work < 20 => Act::Answer(200, good_body(p)),
        _ => Act::Die,
    });
    let case = Case::new("dying");
    let n = 100;
    let v = case.batch(n, &unit.url, &["--timeout", "2", "-p", "machine-rr"], 1);
    // At most the 20 it answered (fewer if some of them were second copies of a job).
    let ok = v["ok"].as_u64().unwrap();
    assert!((1..=20).contains(&ok), "{v}");
    assert_eq!(failures(&v, "connect"), n - ok, "{v}");
    assert_eq!(v["forwarders_lost"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn a_unit_dying_in_a_batch_of_4294967295_ends_in_bounded_time_and_memory() {
    let unit = Unit::start(|r| match r.path.as_str() {
        "/" => Act::Answer(404, String::new()),
        p if r.work < 200 => Act::Answer(200, good_body(p)),
        _ => Act::Die,
    });
    let case = Case::new("dying-max");
    let n = u64::from(u32::MAX);
    let r = case.run(n, &unit.url, &["--timeout", "2"], LIMIT);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let v = summary(&r, &case.out);
    let (ok, _) = check_live_counts(&v, n);
    assert!((1..=200).contains(&ok), "{v}");
    // The jobs never sent are one range, not rows.
    let ns = &v["not_sent"];
    assert_eq!(ns["outcome"], "connect", "{v}");
    assert!(ns["count"].as_u64().unwrap() > n - 10_000, "{v}");
    let (_, rows) = rows(&case.out);
    assert_eq!(rows.len() as u64 + ns["count"].as_u64().unwrap(), n);
    assert!(r.max_rss_kib < 200 * 1024, "{} KiB", r.max_rss_kib);
}

// --- Saved calibrations are input: checked where they enter. ---

/// A calibration of the documented machines through `url`, made now, edited by `edit`.
fn calibration_file(dir: &Path, url: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let layout = cmdunit::endpoint::Layout::documented();
    let mut cal = cmdunit::calibrate::Calibration::empty(&layout, &[url.to_string()]);
    cal.source = "probed".into();
    for f in &mut cal.forwarders {
        f.up = true;
        f.service_ms = 1.0;
        f.overhead_ms = 1.0;
    }
    for m in &mut cal.machines {
        m.up = true;
        m.latency_ms = 5.0;
        m.service_ms = 2.0;
    }
    let mut v = serde_json::to_value(&cal).unwrap();
    edit(&mut v);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("calibration.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path
}

type Edit = fn(&mut serde_json::Value);

fn bad_calibrations() -> Vec<(&'static str, Edit, &'static str)> {
    vec![
        (
            "latency 1e18",
            |v| v["machines"][0]["latency_ms"] = 1e18.into(),
            "latency_ms",
        ),
        (
            "negative latency",
            |v| v["machines"][1]["latency_ms"] = (-5.0).into(),
            "latency_ms",
        ),
        (
            "negative service",
            |v| v["machines"][2]["service_ms"] = (-1.0).into(),
            "service_ms",
        ),
        (
            "service 1e300",
            |v| v["machines"][3]["service_ms"] = 1e300.into(),
            "service_ms",
        ),
        (
            "unit service 1e300",
            |v| v["forwarders"][0]["service_ms"] = 1e300.into(),
            "service_ms",
        ),
        ("version 99", |v| v["version"] = 99.into(), "version"),
        (
            "made in the future",
            |v| {
                v["created_unix_s"] = (cmdunit::calibrate::unix_now() + 86_400).into();
            },
            "future",
        ),
        (
            "concurrency 4294967295",
            |v| v["machines"][0]["concurrency"] = u32::MAX.into(),
            "concurrency",
        ),
    ]
}

#[test]
fn a_bad_calibration_file_is_refused_with_one_line_and_exit_2() {
    let unit = healthy();
    for (what, edit, says) in bad_calibrations() {
        for policy in ["auto", "per-region-queues"] {
            let case = Case::new("bad-calibration");
            let file = calibration_file(&case.cache.join("files"), &unit.url, edit);
            let r = case.run(
                20,
                &unit.url,
                &["--calibration", file.to_str().unwrap(), "-p", policy],
                Duration::from_secs(20),
            );
            assert_eq!(r.code, Some(2), "{what} ({policy}): {}", r.stderr);
            assert!(
                r.stderr.contains(says) && r.stderr.contains("calibration"),
                "{what}: {}",
                r.stderr
            );
        }
    }
}

#[test]
fn a_bad_calibration_file_is_refused_by_bound() {
    for (what, edit, says) in bad_calibrations() {
        let dir = tmp_dir("bound-calibration");
        let file = calibration_file(&dir, "http://127.0.0.1:9", edit);
        let r = run(
            &["bound", "1000", "--calibration", file.to_str().unwrap()],
            &dir,
            Duration::from_secs(20),
        );
        check_stderr(&r);
        assert_eq!(r.code, Some(2), "{what}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{what}: {}", r.stderr);
    }
}

#[test]
fn a_bad_calibration_in_the_cache_is_never_used() {
    let unit = healthy();
    for (what, edit, _) in bad_calibrations() {
        let case = Case::new("bad-cache");
        // Where a batch against this unit looks for what the last one learned.
        let key = cmdunit::calibrate::store::system_key(
            std::slice::from_ref(&unit.url),
            &cmdunit::endpoint::Layout::documented(),
        );
        let name = cmdunit::calibrate::store::cache_file(&key).unwrap();
        let dir = case.cache.join("cmdunit");
        let file = calibration_file(&dir, &unit.url, edit);
        std::fs::rename(&file, dir.join(name.file_name().unwrap())).unwrap();
        let v = case.batch(20, &unit.url, &["--timeout", "2"], 0);
        assert_eq!(v["ok"], 20, "{what}: {v}");
        assert_ne!(v["calibration_source"], "cache", "{what}: {v}");
    }
    // Not quiet: the reason is told.
    let case = Case::new("bad-cache-told");
    let key = cmdunit::calibrate::store::system_key(
        std::slice::from_ref(&unit.url),
        &cmdunit::endpoint::Layout::documented(),
    );
    let name = cmdunit::calibrate::store::cache_file(&key).unwrap();
    let dir = case.cache.join("cmdunit");
    let file = calibration_file(&dir, &unit.url, |v| v["version"] = 99.into());
    std::fs::rename(&file, dir.join(name.file_name().unwrap())).unwrap();
    let r = run(
        &[
            "20",
            "-f",
            &unit.url,
            "--no-charts",
            "--out",
            case.out.to_str().unwrap(),
        ],
        &case.cache,
        LIMIT,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("not using the cache") && r.stderr.contains("version 99"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_good_calibration_in_the_cache_is_used() {
    // The counterpart of the test above: the same file unbroken is read.
    let unit = healthy();
    let case = Case::new("good-cache");
    let key = cmdunit::calibrate::store::system_key(
        std::slice::from_ref(&unit.url),
        &cmdunit::endpoint::Layout::documented(),
    );
    let name = cmdunit::calibrate::store::cache_file(&key).unwrap();
    let dir = case.cache.join("cmdunit");
    let file = calibration_file(&dir, &unit.url, |_| {});
    std::fs::rename(&file, dir.join(name.file_name().unwrap())).unwrap();
    let v = case.batch(20, &unit.url, &["--timeout", "2"], 0);
    assert_eq!(v["calibration_source"], "cache", "{v}");
}

// --- The command line states its ranges; `summarize` refuses what is not a run folder. ---

#[test]
fn help_states_the_ranges_of_numeric_flags() {
    let dir = tmp_dir("help");
    let r = run(&["--help"], &dir, Duration::from_secs(20));
    assert_eq!(r.code, Some(0));
    let help = r.stdout.replace('\n', " ");
    let help: String = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for range in [
        "(1 to 4294967295)",
        "(more than 0, at most 3600)",
        "more than 0, at most 1000",
        "1 to 64)",
        "1 to 16384)",
        "0 or more",
    ] {
        assert!(help.contains(range), "--help does not say {range}: {help}");
    }
}

#[test]
fn summarize_of_a_folder_that_is_not_a_run_exits_2_with_one_line() {
    let dir = tmp_dir("not-a-run");
    std::fs::write(dir.join("notes.txt"), "hello").unwrap();
    let missing = dir.join("missing");
    let broken = tmp_dir("broken-run");
    std::fs::write(broken.join("run.json"), "{not json").unwrap();
    for d in [&dir, &missing, &broken] {
        let r = run(
            &["summarize", d.to_str().unwrap()],
            &dir,
            Duration::from_secs(20),
        );
        check_stderr(&r);
        assert_eq!(r.code, Some(2), "{}: {}", d.display(), r.stderr);
    }
}
