//! Talking to the forwarding units: one blocking HTTP agent per thread, and the classification
//! of every answer.
//!
//! Why one agent per thread: a ureq agent shared by many threads serialises on its connection
//! pool (one shared by 20 threads ran at ~5–6k requests/s with stalls, one per thread at ~27k/s
//! on loopback). Why these settings: ureq's defaults keep only 3 idle connections per host,
//! treat 4xx/5xx as errors and set no timeouts — all wrong for load work, where an answer's
//! status is data and a hung request must end.
//!
//! One call is one attempt: no retries here (the dispatcher decides where a retry goes, and a
//! hidden retry would falsify the timings). Every attempt ends as a [`WorkAnswer`] or a
//! [`Failure`] with a class; malformed or unexpected bodies are a failure, never a panic.
//!
//! The dispatcher sees only the [`Transport`] trait, so its retry, ejection and hedging rules
//! are unit-tested over a scripted in-memory transport; [`HttpTransport`] is the real one.

use crate::endpoint::{Layout, Target, WorkAnswer, MAX_ANSWER_MS};
pub use crate::outcome::Failure;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::Mutex;
use std::time::Duration;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::Agent;

/// Makes one [`Caller`] per agent thread.
pub trait Transport: Send + Sync {
    fn caller(&self) -> Box<dyn Caller>;
}

/// One agent's connections: sends one attempt at a time.
pub trait Caller: Send {
    /// `GET` the path of `target` on forwarding unit `forwarder`.
    fn call(&mut self, forwarder: usize, target: Target) -> Result<WorkAnswer, Failure>;
}

/// Settings of one agent.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Whole-attempt timeout on the wall clock.
    pub timeout: Duration,
    /// Connections kept open for reuse (one per forwarding unit the agent talks to is enough:
    /// each agent has one request in flight at a time).
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
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(cfg.max_idle.max(1))
            .max_idle_connections_per_host(cfg.max_idle.max(1))
            .max_redirects(0)
            .timeout_global(Some(cfg.timeout))
            .timeout_connect(Some(connect))
            .no_delay(true)
            .build();
        let agent = Agent::with_parts(
            config,
            DefaultConnector::default(),
            OnceResolver::<DefaultResolver>::default(),
        );
        Client { agent }
    }

    /// One attempt at `base` + `path` (e.g. `http://127.0.0.1:5000` + `/work/asia/0`).
    pub fn get_work(&self, base: &str, path: &str) -> Result<WorkAnswer, Failure> {
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        self.get_work_url(&url)
    }

    /// One attempt at a full URL.
    pub fn get_work_url(&self, url: &str) -> Result<WorkAnswer, Failure> {
        let body = self.get(url)?;
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

/// Resolves each host once per agent. ureq resolves the host of every request — even one that
/// goes out on a kept-alive connection — and, with a timeout set, does so on a thread of its own:
/// a thread created per request, which cost more than the request itself against a fast server.
/// The forwarding units' addresses do not change during a batch, so the first answer is kept.
#[derive(Default)]
struct OnceResolver<R = DefaultResolver> {
    known: Mutex<HashMap<String, ResolvedSocketAddrs>>,
    resolver: R,
}

impl<R> std::fmt::Debug for OnceResolver<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnceResolver")
    }
}

impl<R: Resolver> Resolver for OnceResolver<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = uri
            .authority()
            .map(|a| format!("{:?}{a}", uri.scheme_str()))
            .unwrap_or_default();
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(addrs) = known.get(&key) {
            return Ok(addrs.clone());
        }
        let addrs = self.resolver.resolve(uri, config, timeout)?;
        known.insert(key, addrs.clone());
        Ok(addrs)
    }
}

/// The real transport: ureq over HTTP/1.1 keep-alive, every URL built once before the batch so
/// that an attempt allocates nothing to name its target.
pub struct HttpTransport {
    cfg: ClientConfig,
    /// `urls[forwarder][layout.target_index(target)]`.
    urls: Vec<Vec<String>>,
    layout: Layout,
}

impl HttpTransport {
    pub fn new(forwarders: &[String], layout: &Layout, cfg: ClientConfig) -> HttpTransport {
        let urls = forwarders
            .iter()
            .map(|base| {
                let base = base.trim_end_matches('/');
                (0..layout.target_count())
                    .map(|i| format!("{base}{}", layout.path(layout.target_at(i))))
                    .collect()
            })
            .collect();
        HttpTransport {
            cfg: ClientConfig {
                max_idle: forwarders.len().max(1),
                ..cfg
            },
            urls,
            layout: layout.clone(),
        }
    }
}

impl Transport for HttpTransport {
    fn caller(&self) -> Box<dyn Caller> {
        Box::new(HttpCaller {
            client: Client::new(&self.cfg),
            urls: self.urls.clone(),
            layout: self.layout.clone(),
        })
    }
}

struct HttpCaller {
    client: Client,
    urls: Vec<Vec<String>>,
    layout: Layout,
}

impl Caller for HttpCaller {
    fn call(&mut self, forwarder: usize, target: Target) -> Result<WorkAnswer, Failure> {
        let url = self
            .urls
            .get(forwarder)
            .and_then(|u| u.get(self.layout.target_index(target)))
            .ok_or(Failure::Connect)?;
        self.client.get_work_url(url)
    }
}

/// The answer body, checked: JSON with the four expected fields, a `"Machine <i>"` name and
/// timings within [`MAX_ANSWER_MS`] (a larger one is not a request's timing, and would poison
/// every estimate made from it).
pub fn parse_answer(body: &str) -> Result<WorkAnswer, Failure> {
    let answer: WorkAnswer = serde_json::from_str(body).map_err(|_| Failure::BadResponse)?;
    if answer.machine_index().is_none()
        || answer.region.is_empty()
        || answer.response_time > MAX_ANSWER_MS
        || answer.work_time > MAX_ANSWER_MS
    {
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
    fn timings_beyond_a_day_are_a_bad_response_not_clamped() {
        for rt in ["86400001", "4294967296", "18446744073709551615"] {
            let body = format!(
                r#"{{"machine": "Machine 0", "region": "us", "response_time": {rt}, "work_time": 19}}"#
            );
            assert_eq!(parse_answer(&body), Err(Failure::BadResponse), "{rt}");
        }
        let body = r#"{"machine": "Machine 0", "region": "us", "response_time": 86400000, "work_time": 19}"#;
        assert_eq!(parse_answer(body).map(|a| a.response_time), Ok(86_400_000));
    }

    #[test]
    fn classes_and_retriability() {
        assert_eq!(Failure::Status(503).class(), "http_503");
        assert!(Failure::Status(503).retriable());
        assert!(!Failure::Status(404).retriable());
        assert!(Failure::Connect.retriable());
        assert!(!Failure::BadResponse.retriable());
    }

    /// Counts the lookups it is asked for.
    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl Resolver for Counting {
        fn resolve(
            &self,
            uri: &Uri,
            config: &Config,
            timeout: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            DefaultResolver::default().resolve(uri, config, timeout)
        }
    }

    #[test]
    fn a_host_is_resolved_once_per_agent_not_once_per_request() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let body = r#"{"machine": "Machine 0", "region": "us", "response_time": 1, "work_time": 1}"#;
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    }
                });
            }
        });
        let resolver = OnceResolver::<Counting>::default();
        let counted = std::sync::Arc::new(resolver);
        #[derive(Debug)]
        struct Shared(std::sync::Arc<OnceResolver<Counting>>);
        impl Resolver for Shared {
            fn resolve(
                &self,
                uri: &Uri,
                config: &Config,
                timeout: NextTimeout,
            ) -> Result<ResolvedSocketAddrs, ureq::Error> {
                self.0.resolve(uri, config, timeout)
            }
        }
        let config = Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .build();
        let agent = Agent::with_parts(config, DefaultConnector::default(), Shared(counted.clone()));
        let client = Client { agent };
        for _ in 0..20 {
            assert!(client
                .get_work(&format!("http://{addr}"), "/work/us/0")
                .is_ok());
        }
        assert_eq!(
            counted.resolver.0.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    }

    #[test]
    fn every_target_has_its_prebuilt_url() {
        let layout = Layout::documented();
        let t = HttpTransport::new(
            &["http://a:1/".to_string(), "http://b:2".to_string()],
            &layout,
            ClientConfig::default(),
        );
        assert_eq!(t.urls[0][0], "http://a:1/work");
        assert_eq!(
            t.urls[1][layout.target_index(Target::Region(1))],
            "http://b:2/work/emea"
        );
        assert_eq!(
            t.urls[1][layout.target_index(Target::Machine(4))],
            "http://b:2/work/us/1"
        );
        for i in 0..layout.target_count() {
            assert_eq!(layout.target_index(layout.target_at(i)), i);
        }
    }
}
