//! The emulator's API as the original served it: every endpoint and error case, over real HTTP on
//! ephemeral ports.

mod emulator_support;
use emulator_support::*;

#[test]
fn work_endpoints_answer_the_original_json() {
    let emu = start(topology("default"), 0.02, true, 1);
    let fu = &emu.forwarder_urls()[0];
    for (path, region, machine) in [
        ("/work/us/1", Some("us"), Some("Machine 1")),
        ("/work/asia/0", Some("asia"), Some("Machine 0")),
        ("/work/emea", Some("emea"), Some("Machine 0")),
        ("/work", None, None),
    ] {
        let a = get(fu, path);
        assert_eq!(a.status, 200, "{path}: {a:?}");
        assert!(a.headers.to_ascii_lowercase().contains("application/json"));
        // Keys exactly as the original sent them, in sorted order.
        assert!(
            a.body.starts_with("{\"machine\":\"Machine ")
                && a.body.contains(",\"region\":\"")
                && a.body.contains(",\"response_time\":")
                && a.body.contains(",\"work_time\":"),
            "{}",
            a.body
        );
        let j = a.json();
        if let Some(r) = region {
            assert_eq!(j["region"], r);
        }
        if let Some(m) = machine {
            assert_eq!(j["machine"], m);
        }
        assert!(j["response_time"].as_u64().unwrap() > 0);
        assert!((18..=21).contains(&j["work_time"].as_u64().unwrap()), "{j}");
    }
}

#[test]
fn errors_are_json_404_and_405() {
    let emu = start(topology("default"), 0.02, true, 1);
    let fu = &emu.forwarder_urls()[0];
    for path in [
        "/work/mars",
        "/work/us/2",
        "/work/us/abc",
        "/work/us/-1",
        "/work/us/1/extra",
        "/work/",
        "/nope",
        "/stats/x",
    ] {
        let a = get(fu, path);
        assert_eq!(a.status, 404, "{path}: {a:?}");
        assert!(a.json()["error"].is_string(), "{path}");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let req = format!("{method} /work HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        let a = raw(addr(fu), req.as_bytes()).unwrap();
        assert_eq!(a.status, 405, "{method}");
        assert!(a.headers.contains("Allow: GET"));
        assert!(a.json()["error"].is_string());
    }
}

#[test]
fn root_describes_the_service_and_stats_report_machines() {
    let emu = start(topology("default"), 0.02, false, 1);
    let fu = &emu.forwarder_urls()[0];
    let root = get(fu, "/");
    assert_eq!(root.status, 200);
    assert_eq!(root.json()["machines"].as_array().unwrap().len(), 5);

    assert_eq!(get(fu, "/work/emea/0").status, 200);
    let stats = get(fu, "/stats").json();
    let machines = stats["machines"].as_array().unwrap();
    assert_eq!(machines.len(), 5);
    let emea = machines.iter().find(|m| m["machine"] == "emea/0").unwrap();
    assert_eq!(emea["worker"]["served"], 1);
    assert_eq!(emea["worker"]["failed"], 0);
    assert_eq!(emea["worker"]["state"], "awake");
    assert_eq!(emea["worker"]["queue"], 0);
    let asia = machines.iter().find(|m| m["machine"] == "asia/0").unwrap();
    assert_eq!(asia["worker"]["state"], "asleep");
    assert_eq!(stats["served"], 1);
    assert_eq!(stats["in_flight"], 0);
    assert!(stats["connections"]["accepted"].as_u64().unwrap() >= 2);
}

#[test]
fn each_worker_answers_on_its_own_port() {
    let emu = start(topology("default"), 0.02, true, 1);
    let workers = emu.worker_urls();
    assert_eq!(workers.len(), 5);
    for (id, url) in &workers {
        assert!(!emu.forwarder_urls().contains(url));
        let a = get(url, "/work");
        assert_eq!(a.status, 200, "{id}");
        let j = a.json();
        assert_eq!(j["region"], id.region.as_str());
        assert_eq!(j["machine"], format!("Machine {}", id.index));
        assert_eq!(get(url, &id.path()).status, 200);
        assert_eq!(get(url, "/work/elsewhere/7").status, 404);
        let s = get(url, "/stats").json();
        assert_eq!(s["machine"], id.to_string());
        assert_eq!(s["served"], 2);
    }
}

#[test]
fn keep_alive_connections_serve_many_requests() {
    let emu = start(topology("no-delay"), 1.0, true, 1);
    let mut c = Conn::open(addr(&emu.forwarder_urls()[0]));
    for i in 0..50 {
        c.send(b"GET /work/us/0 HTTP/1.1\r\nHost: x\r\n\r\n");
        let a = c.answer().unwrap();
        assert_eq!(a.status, 200, "request {i}");
        assert!(a.headers.contains("keep-alive"));
    }
    // Two pipelined requests in one write are both answered, in order.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.answer().unwrap().status, 200);
    assert_eq!(c.answer().unwrap().status, 404);
    // HTTP/1.0 without keep-alive, and `Connection: close`, end the connection after the answer.
    for request in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        &b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
    ] {
        let mut c = Conn::open(addr(&emu.forwarder_urls()[0]));
        c.send(request);
        assert!(c.answer().unwrap().headers.contains("Connection: close"));
        assert!(c.answer().is_err(), "closed after the answer");
    }
}
