//! One blocking HTTP agent per thread, and the classification of every answer.
//!
//! Why one agent per thread: a ureq agent shared by many threads serialises on its connection
//! pool (rust-notes.md measured ~5–6k requests/s with stalls shared, ~27k/s one per thread). Why
//! these settings: ureq's defaults keep only 3 idle connections per host, treat 4xx/5xx as errors
//! and set no timeouts — all wrong for load work, where an answer's status is data and a hung
//! request must end.
//!
//! One call is one attempt: no retries here (the dispatcher decides where a retry goes, and a
//! hidden retry would falsify the timings). Every attempt ends as a [`WorkAnswer`] or a
//! [`Failure`] with a class; malformed or unexpected bodies are a failure, never a panic.

use crate::endpoint::WorkAnswer;
use std::io::ErrorKind;
use std::time::Duration;
use ureq::Agent;

/// How an attempt failed. `class()` is the name used in requests.csv and summary.json.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    /// No connection to the forwarding unit, or it dropped the connection before answering.
    Connect,
    /// No complete answer within the timeout.
    Timeout,
    /// An answer with a status other than 200.
    Status(u16),
    /// A 200 answer whose body is not the expected JSON.
    BadResponse,
}

impl Failure {
    pub fn class(&self) -> String {
        match self {
            Failure::Connect => "connect".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Status(code) => format!("http_{code}"),
            Failure::BadResponse => "bad_response".into(),
        }
    }

    /// Worth another attempt elsewhere: connection problems, timeouts and 5xx (a 4xx or a
    /// malformed body would fail the same way again).
    pub fn retriable(&self) -> bool {
        match self {
            Failure::Connect | Failure::Timeout => true,
            Failure::Status(code) => *code >= 500,
            Failure::BadResponse => false,
        }
    }
}

/// Settings of one agent.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Whole-attempt timeout on the wall clock.
    pub timeout: Duration,
    /// Connections kept open for reuse (at least the number of requests this agent has in flight;
    /// each agent serves one at a time, but it may talk to several forwarding units).
    pub max_idle: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(60),
            max_idle: 16,
        }
    }
}

/// A blocking HTTP client for `GET /work…`, owned by one thread.
pub struct Client {
    agent: Agent,
}

/// The largest body accepted; the real one is ~80 bytes.
const MAX_BODY: u64 = 64 * 1024;

impl Client {
    pub fn new(cfg: &ClientConfig) -> Client {
        let connect = cfg.timeout.min(Duration::from_secs(10));
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(cfg.max_idle.max(1))
            .max_idle_connections_per_host(cfg.max_idle.max(1))
            .max_redirects(0)
            .timeout_global(Some(cfg.timeout))
            .timeout_connect(Some(connect))
            .no_delay(true)
            .build()
            .into();
        Client { agent }
    }

    /// One attempt at `base` + `path` (e.g. `http://127.0.0.1:5000` + `/work/asia/0`).
    pub fn get_work(&self, base: &str, path: &str) -> Result<WorkAnswer, Failure> {
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        let body = self.get(&url)?;
        parse_answer(&body)
    }

    /// GET a URL and return its body when the status is 200.
    pub fn get(&self, url: &str) -> Result<String, Failure> {
        let mut response = self.agent.get(url).call().map_err(classify)?;
        let status = response.status().as_u16();
        // Read the body to the end even on an error status: only then does the connection go
        // back to the pool.
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string();
        if status != 200 {
            return Err(Failure::Status(status));
        }
        body.map_err(|e| match classify(e) {
            Failure::Timeout => Failure::Timeout,
            Failure::Connect => Failure::Connect,
            _ => Failure::BadResponse,
        })
    }
}

/// The answer body, checked: JSON with the four expected fields and a `"Machine <i>"` name.
pub fn parse_answer(body: &str) -> Result<WorkAnswer, Failure> {
    let answer: WorkAnswer = serde_json::from_str(body).map_err(|_| Failure::BadResponse)?;
    if answer.machine_index().is_none() || answer.region.is_empty() {
        return Err(Failure::BadResponse);
    }
    Ok(answer)
}

fn classify(e: ureq::Error) -> Failure {
    match e {
        ureq::Error::StatusCode(code) => Failure::Status(code),
        ureq::Error::Timeout(_) => Failure::Timeout,
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => Failure::Timeout,
            ErrorKind::InvalidData => Failure::BadResponse,
            _ => Failure::Connect,
        },
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => Failure::Connect,
        ureq::Error::Protocol(_) | ureq::Error::BodyExceedsLimit(_) => Failure::BadResponse,
        _ => Failure::BadResponse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_and_bad_bodies_classified() {
        let ok = parse_answer(
            r#"{"machine": "Machine 1", "region": "us", "response_time": 350, "work_time": 19}"#,
        )
        .unwrap();
        assert_eq!(ok.machine_index(), Some(1));
        for bad in [
            "",
            "not json",
            "{}",
            r#"{"machine": "M", "region": "us", "response_time": 1, "work_time": 1}"#,
            r#"{"machine": "Machine 1", "region": "us", "response_time": -1, "work_time": 1}"#,
            "[1,2,3]",
        ] {
            assert_eq!(parse_answer(bad), Err(Failure::BadResponse), "{bad}");
        }
    }

    #[test]
    fn classes_and_retriability() {
        assert_eq!(Failure::Status(503).class(), "http_503");
        assert!(Failure::Status(503).retriable());
        assert!(!Failure::Status(404).retriable());
        assert!(Failure::Connect.retriable());
        assert!(!Failure::BadResponse.retriable());
    }
}
