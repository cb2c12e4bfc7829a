//! Saving what was learned about a system, and deciding whether a saved file can be used.
//!
//! Two places hold calibrations: a file the user names (`--calibration FILE`, or the output of
//! `cmdunit calibrate`), and the user's cache (`$XDG_CACHE_HOME/cmdunit/`, else
//! `~/.cache/cmdunit/`), where every batch leaves what it learned, keyed by the forwarding units'
//! URLs and the machines, so that the next batch against the same system starts from it.
//!
//! A saved file is input like any other: it is checked where it enters (its version, a creation
//! time not in the future, every figure finite and within its documented range) and refused with
//! a reason otherwise — a bad file is never used as it is. A saved calibration is only a seed:
//! the batch corrects it from its own answers.

use super::{Calibration, VERSION};
use crate::endpoint::{Layout, MAX_MACHINES};
use std::path::{Path, PathBuf};

/// A saved calibration older than this is not used (a day: machines do not move, but systems
/// are redeployed).
pub const MAX_AGE_S: u64 = 24 * 3600;
/// The largest duration a calibration may hold, ms (a day).
pub const MAX_MS: f64 = 86_400_000.0;
/// The largest concurrency a machine may be given.
pub const MAX_CONCURRENCY: u32 = 1024;
/// The largest connection limit a unit may be given.
pub const MAX_CONNECTION_LIMIT: usize = 1 << 20;
/// Clock skew tolerated on a file's creation time, seconds.
const FUTURE_SKEW_S: u64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read calibration {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot parse calibration {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("calibration {path} is not usable: {why}")]
    Invalid { path: String, why: String },
    #[error("cannot write calibration {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Reads and checks a calibration file.
pub fn load(path: &Path) -> Result<Calibration, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| StoreError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let cal: Calibration = serde_json::from_str(&text).map_err(|source| StoreError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    validate(&cal).map_err(|why| StoreError::Invalid {
        path: path.display().to_string(),
        why,
    })?;
    Ok(cal)
}

/// Writes a calibration atomically.
pub fn save(cal: &Calibration, path: &Path) -> Result<(), StoreError> {
    let text = serde_json::to_string_pretty(cal).unwrap_or_default() + "\n";
    crate::files::write_atomic(path, text.as_bytes()).map_err(|source| StoreError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Why a calibration cannot be trusted as input, or Ok.
pub fn validate(cal: &Calibration) -> Result<(), String> {
    if cal.version != VERSION {
        return Err(format!(
            "version {} (this cmdunit reads version {VERSION})",
            cal.version
        ));
    }
    if cal.created_unix_s > super::unix_now() + FUTURE_SKEW_S {
        return Err("its creation time is in the future".into());
    }
    if cal.machines.len() > MAX_MACHINES {
        return Err(format!("more than {MAX_MACHINES} machines"));
    }
    let ms = |what: &str, v: f64| {
        if v.is_finite() && (0.0..=MAX_MS).contains(&v) {
            Ok(())
        } else {
            Err(format!("{what} = {v} (must be between 0 and {MAX_MS} ms)"))
        }
    };
    for f in &cal.forwarders {
        ms("a forwarding unit's service_ms", f.service_ms)?;
        ms("a forwarding unit's overhead_ms", f.overhead_ms)?;
        if f.connection_limit > MAX_CONNECTION_LIMIT {
            return Err(format!(
                "connection_limit = {} (at most {MAX_CONNECTION_LIMIT})",
                f.connection_limit
            ));
        }
    }
    for m in &cal.machines {
        ms(&format!("{}'s latency_ms", m.id), m.latency_ms)?;
        ms(&format!("{}'s service_ms", m.id), m.service_ms)?;
        if let Some(w) = m.wake_ms {
            ms(&format!("{}'s wake_ms", m.id), w)?;
        }
        if m.concurrency == 0 || m.concurrency > MAX_CONCURRENCY {
            return Err(format!(
                "{}'s concurrency = {} (must be 1 to {MAX_CONCURRENCY})",
                m.id, m.concurrency
            ));
        }
    }
    Ok(())
}

/// Why a saved calibration does not describe this system now, or `None` when it does.
pub fn unusable(saved: &Calibration, layout: &Layout, urls: &[String]) -> Option<String> {
    let now = super::unix_now();
    if now.saturating_sub(saved.created_unix_s) > MAX_AGE_S {
        return Some(format!("it is older than {} h", MAX_AGE_S / 3600));
    }
    if &saved.layout() != layout {
        return Some("it describes other machines".into());
    }
    if saved.forwarders.len() != urls.len() {
        return Some("it describes another number of forwarding units".into());
    }
    None
}

/// The saved parameters on the current units' addresses.
pub fn adopt(saved: &Calibration, urls: &[String]) -> Calibration {
    let mut cal = saved.clone();
    for (f, url) in cal.forwarders.iter_mut().zip(urls) {
        f.url = url.clone();
    }
    cal
}

/// The user's cache folder for cmdunit: `$XDG_CACHE_HOME/cmdunit`, else `$HOME/.cache/cmdunit`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("cmdunit"))
}

/// The cache file for a system named by `key` (its units' URLs and machines; see
/// [`system_key`]).
pub fn cache_file(key: &str) -> Option<PathBuf> {
    Some(cache_dir()?.join(format!("system-{:016x}.json", fnv1a(key.as_bytes()))))
}

/// A stable name of a system: its forwarding units and machines.
pub fn system_key(units: &[String], layout: &Layout) -> String {
    let machines: Vec<String> = layout.machines.iter().map(|m| m.to_string()).collect();
    format!("{}|{}", units.join(","), machines.join(","))
}

/// FNV-1a, 64 bits: a stable file name from a key (not a security hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Calibration {
        let mut c = super::super::test_model(1, 17.0);
        c.created_unix_s = super::super::unix_now();
        c
    }

    #[test]
    fn a_good_calibration_passes() {
        assert_eq!(validate(&good()), Ok(()));
    }

    #[test]
    fn saved_calibrations_with_bad_figures_are_refused() {
        type Break = Box<dyn Fn(&mut Calibration)>;
        let cases: Vec<(&str, Break)> = vec![
            (
                "negative latency",
                Box::new(|c| c.machines[0].latency_ms = -5.0),
            ),
            (
                "negative service",
                Box::new(|c| c.machines[1].service_ms = -1.0),
            ),
            (
                "huge unit service",
                Box::new(|c| c.forwarders[0].service_ms = 1e300),
            ),
            (
                "latency 1e18",
                Box::new(|c| c.machines[0].latency_ms = 1e18),
            ),
            (
                "NaN overhead",
                Box::new(|c| c.forwarders[0].overhead_ms = f64::NAN),
            ),
            ("version 99", Box::new(|c| c.version = 99)),
            (
                "from the future",
                Box::new(|c| c.created_unix_s = u64::MAX / 2),
            ),
            (
                "concurrency 4294967295",
                Box::new(|c| c.machines[0].concurrency = u32::MAX),
            ),
            ("concurrency 0", Box::new(|c| c.machines[0].concurrency = 0)),
        ];
        for (what, break_it) in cases {
            let mut c = good();
            break_it(&mut c);
            assert!(validate(&c).is_err(), "{what} was accepted");
        }
    }

    #[test]
    fn a_bad_file_is_refused_with_its_reason() {
        let dir = std::env::temp_dir().join(format!("cmdunit-store-{}", std::process::id()));
        let path = dir.join("c.json");
        let mut c = good();
        c.machines[2].latency_ms = -1.0;
        save(&c, &path).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("emea/0's latency_ms"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn cache_keys_are_stable_and_distinct() {
        let l = Layout::documented();
        let a = system_key(&["http://a:1".into()], &l);
        let b = system_key(&["http://a:2".into()], &l);
        assert_eq!(fnv1a(a.as_bytes()), fnv1a(a.as_bytes()));
        assert_ne!(fnv1a(a.as_bytes()), fnv1a(b.as_bytes()));
    }
}
