//! Shared by the hostile-input and signal tests: the built binary run with a wall-clock limit
//! (killed, and the test failed, if it does not end), its peak memory, and the checks every
//! run's outcome must pass whatever the system did (one outcome per job, the right exit code,
//! one `error:` line, never a panic).
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A fresh temporary folder.
pub fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cmdunit-hostile-{}-{}-{name}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a finished run of the binary left.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
    /// Peak resident memory, KiB (the largest `VmHWM` seen while it ran).
    pub max_rss_kib: u64,
}

/// A running `cmdunit`, its output read by two threads so that it never blocks on a pipe.
pub struct Running {
    pub child: Child,
    pub started: Instant,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
}

/// The binary with the test's own cache folder and no forwarding unit from the environment.
pub fn command(args: &[&str], cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cmdunit"));
    c.args(args)
        .env_remove("CMDUNIT_FORWARDER")
        .env("XDG_CACHE_HOME", cache)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

pub fn spawn(args: &[&str], cache: &Path) -> Running {
    let mut child = command(args, cache).spawn().unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    Running {
        child,
        started: Instant::now(),
        out,
        err,
    }
}

impl Running {
    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: a signal to our own child, which is not reaped before `finish`.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({sig})");
    }

    /// Has it exited? (Without reaping it.)
    pub fn exited(&self) -> bool {
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child with WNOWAIT leaves it to be reaped by `finish`.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is set by waitid when a child changed state (0 otherwise).
        rc == 0 && unsafe { info.si_pid() } != 0
    }

    /// Waits for the end, at most `limit` after the start: past it the run is killed and the
    /// test fails (a hang is the defect).
    pub fn finish(self, limit: Duration) -> Ran {
        let pid = self.pid();
        let mut status: libc::c_int = 0;
        let mut max_rss_kib = 0;
        loop {
            // Read before reaping: a reaped process has no memory figures left. (`ru_maxrss`
            // would also count the test process's own pages from before the exec.)
            max_rss_kib = max_rss_kib.max(peak_rss_kib(pid));
            // SAFETY: reaping our own child; std's Child is never waited afterwards.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if rc == pid {
                break;
            }
            assert!(rc == 0, "waitpid failed");
            if self.started.elapsed() > limit {
                // SAFETY: as above.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                let err = self.err.join().unwrap_or_default();
                panic!("the run did not end within {limit:?} (killed); stderr: {err}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let wall = self.started.elapsed();
        let stdout = self.out.join().unwrap_or_default();
        let stderr = self.err.join().unwrap_or_default();
        Ran {
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
            stdout,
            stderr,
            wall,
            max_rss_kib,
        }
    }
}

/// `VmHWM` of a running process, KiB (0 once it has exited).
pub fn peak_rss_kib(pid: libc::pid_t) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the binary to its end (or fails the test after `limit`).
pub fn run(args: &[&str], cache: &Path, limit: Duration) -> Ran {
    spawn(args, cache).finish(limit)
}

/// No panic, and at most one line on stderr, which is an `error:` line when the run failed.
pub fn check_stderr(r: &Ran) {
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("RUST_BACKTRACE"),
        "a panic: {}",
        r.stderr
    );
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    match r.code {
        Some(0) => assert!(lines.is_empty(), "stderr of a quiet good run: {}", r.stderr),
        _ => {
            assert_eq!(lines.len(), 1, "one line on stderr, got: {}", r.stderr);
            assert!(lines[0].starts_with("error: "), "{}", r.stderr);
        }
    }
}

/// The run's summary: stdout's JSON, else the folder's summary.json.
pub fn summary(r: &Ran, out: &Path) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|_| {
        let text = std::fs::read_to_string(out.join("summary.json"))
            .unwrap_or_else(|e| panic!("no summary printed nor written ({e}): {}", r.stderr));
        serde_json::from_str(&text).unwrap()
    })
}

/// Every job ended exactly once: `ok + failed == n`.
pub fn check_counts(v: &serde_json::Value, n: u64) -> (u64, u64) {
    let ok = v["ok"].as_u64().unwrap();
    let failed = v["failed"].as_u64().unwrap();
    assert_eq!(ok + failed, n, "ok + failed == N: {v}");
    let by_class: u64 = v["failures"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(by_class, failed, "every failure has a class: {v}");
    (ok, failed)
}

/// A run that ended by itself: every job's outcome reached requests.csv (none `unrecorded`,
/// which only a killed run may have).
pub fn check_live_counts(v: &serde_json::Value, n: u64) -> (u64, u64) {
    assert!(
        v["failures"].get("unrecorded").is_none(),
        "outcomes lost on the way to requests.csv: {v}"
    );
    check_counts(v, n)
}

/// requests.csv: (header, rows), asserting every line is a whole row.
pub fn rows(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = std::fs::read(dir.join("requests.csv")).unwrap();
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "requests.csv ends in a torn row"
    );
    let text = String::from_utf8(bytes).expect("requests.csv is UTF-8");
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    for r in &rows {
        assert_eq!(r.len(), header.len(), "a torn row: {r:?}");
        assert!(r[0].parse::<u32>().is_ok(), "a torn row: {r:?}");
    }
    (header, rows)
}

pub fn column<'a>(header: &[String], rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let i = header.iter().position(|h| h == name).unwrap();
    rows.iter().map(|r| r[i].as_str()).collect()
}
