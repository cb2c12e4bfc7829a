//! The system a batch runs against: forwarding units given by URL, or an emulator started here.
//!
//! Which machines exist is asked of the system itself: a forwarding unit that describes itself
//! at `GET /` (as the emulator does) names them; otherwise the service's documented layout is
//! used, and `--machines` overrides both. Nothing else about the system is read here: the
//! controller learns it. The one exception is the lower bound of an emulated run, which is
//! computed from the emulator's true parameters ([`true_model`]) so that a run's efficiency is
//! measured against a bound that is one.

use super::RunError;
use crate::calibrate::Calibration;
use crate::client::{Client, ClientConfig};
use crate::emulator::topology::Topology;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::endpoint::{Layout, MachineId};
use crate::outcome::Failure;
use crate::timescale::TimeScale;

/// Start the embedded emulator for the batch.
#[derive(Clone, Debug)]
pub struct EmulateConfig {
    pub topology: Topology,
    pub forwarders: usize,
    pub awake: bool,
}

/// The system under test, ready for a batch.
pub struct System {
    pub urls: Vec<String>,
    pub layout: Layout,
    pub emulator: Option<Emulator>,
    /// The emulator's true parameters (emulated runs only).
    pub truth: Option<Calibration>,
    /// Names the system in the user's cache.
    pub cache_key: String,
    /// The topology's name (emulated runs only).
    pub topology: Option<String>,
}

/// Starts the emulator (if asked) and finds the machines.
pub fn open(
    urls: &[String],
    emulate: Option<&EmulateConfig>,
    machines: Option<&Layout>,
    scale: TimeScale,
    seed: u64,
    timeout_ms: f64,
) -> Result<System, RunError> {
    if let Some(e) = emulate {
        let emu = Emulator::start(EmulatorConfig {
            topology: e.topology.clone(),
            forwarders: e.forwarders.max(1),
            time_scale: scale.factor(),
            seed,
            awake: e.awake,
            ..EmulatorConfig::default()
        })?;
        let urls = emu.forwarder_urls();
        let layout = machines.cloned().unwrap_or_else(|| e.topology.layout());
        let truth = true_model(&e.topology, &urls);
        return Ok(System {
            cache_key: format!(
                "emulate:{}:{}:{}",
                e.topology.name,
                e.forwarders.max(1),
                crate::calibrate::store::system_key(&[], &layout)
            ),
            urls,
            layout,
            emulator: Some(emu),
            truth: Some(truth),
            topology: Some(e.topology.name.clone()),
        });
    }
    if urls.is_empty() {
        return Err(RunError::Usage("no forwarding unit given".into()));
    }
    let layout = match machines {
        Some(l) => {
            reachable(urls, scale, timeout_ms)?;
            l.clone()
        }
        None => describe(urls, scale, timeout_ms)?.unwrap_or_else(Layout::documented),
    };
    Ok(System {
        cache_key: crate::calibrate::store::system_key(urls, &layout),
        urls: urls.to_vec(),
        layout,
        emulator: None,
        truth: None,
        topology: None,
    })
}

/// Asks the units for `GET /` until one answers; returns the machines it names, if any. Fails
/// only when no unit accepts a connection at all (a dropped connection is tried again; a unit
/// that accepts and then says nothing in time is reached — the batch will classify it).
fn describe(
    urls: &[String],
    scale: TimeScale,
    timeout_ms: f64,
) -> Result<Option<Layout>, RunError> {
    let client = Client::new(&ClientConfig {
        timeout: scale.to_wall(timeout_ms.min(10_000.0)),
        max_idle: 1,
    });
    let mut reached = false;
    for url in urls {
        for _ in 0..3 {
            match client.get(&format!("{url}/")) {
                Ok(body) => {
                    if let Some(layout) = machines_of(&body) {
                        return Ok(Some(layout));
                    }
                    reached = true;
                    break;
                }
                Err(Failure::Connect) => continue,
                Err(_) => {
                    reached = true;
                    break;
                }
            }
        }
        if reached {
            break;
        }
    }
    if reached {
        Ok(None)
    } else {
        Err(RunError::Unreachable(urls.join(", ")))
    }
}

fn reachable(urls: &[String], scale: TimeScale, timeout_ms: f64) -> Result<(), RunError> {
    describe(urls, scale, timeout_ms).map(|_| ())
}

/// The machines a self-description names (`{"machines": ["asia/0", ...]}`), if it is one.
fn machines_of(body: &str) -> Option<Layout> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let names = v.get("machines")?.as_array()?;
    let ids: Option<Vec<MachineId>> = names
        .iter()
        .map(|n| MachineId::parse(n.as_str()?).ok())
        .collect();
    Layout::parse(
        &ids?
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(","),
    )
    .ok()
}

/// What an emulated system's parameters imply, with every duration at its mean: the bound of
/// an emulated run. Only the lower bound reads it, never the controller.
pub fn true_model(t: &Topology, urls: &[String]) -> Calibration {
    let mut cal = Calibration::empty(&t.layout(), urls);
    cal.source = "model".into();
    for f in &mut cal.forwarders {
        f.up = true;
        f.service_ms = t.forwarder.handling_ms;
        f.overhead_ms = t.forwarder.overhead_ms;
        f.connection_limit = t.forwarder.connection_limit;
    }
    for (m, spec) in cal.machines.iter_mut().zip(&t.machines) {
        m.up = !spec.fault.down;
        m.latency_ms = spec.latency_ms + spec.jitter_ms / 2.0;
        m.service_ms = spec.mean_service_ms();
        m.concurrency = spec.concurrency;
    }
    cal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_description_names_the_machines() {
        let l =
            machines_of(r#"{"machines": ["asia/0", "us/1"], "regions": ["asia", "us"]}"#).unwrap();
        assert_eq!(l.machines.len(), 2);
        assert_eq!(l.regions, vec!["asia", "us"]);
        assert!(machines_of("<html>").is_none());
        assert!(machines_of(r#"{"machines": ["asia"]}"#).is_none());
        assert!(machines_of(r#"{"machines": []}"#).is_none());
    }

    #[test]
    fn the_true_model_of_the_default_topology_gives_the_worked_bound() {
        let t = Topology::default();
        let cal = true_model(&t, &["http://f".to_string()]);
        let b = crate::bound::lower_bound(1000, &cal);
        // 1000 passes of 17 ms, then the shortest trip: emea 290 + 20 + 22 + 13 = 17,345 ms; the
        // last jobs cannot all go to emea, and the layers together say 6 ms more.
        assert!((b.forwarders_ms - 17_345.0).abs() < 1e-6, "{b:?}");
        assert!((b.lower_bound_ms - 17_351.0).abs() < 1e-6, "{b:?}");
    }
}
