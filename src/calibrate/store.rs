//! Saving a calibration and deciding whether a saved one can be reused.
//!
//! A calibration is worth reusing while it is fresh (machines do not change their latency by the
//! minute, but they fall asleep after 30 idle minutes, so wake-up is always measured again) and
//! when it describes the same system: the same machines and the same forwarding units.

use super::Calibration;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// A saved calibration older than this is measured again.
pub const MAX_AGE_S: u64 = 30 * 60;

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
    #[error("cannot write calibration {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

pub fn load(path: &Path) -> Result<Calibration, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| StoreError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| StoreError::Parse {
        path: path.display().to_string(),
        source,
    })
}

pub fn save(cal: &Calibration, path: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let text = serde_json::to_string_pretty(cal).unwrap_or_default();
    std::fs::write(path, text + "\n").map_err(err)
}

/// Why a saved calibration cannot be reused, or `None` when it can. `same_urls` is false when
/// the units' addresses change from run to run (an emulator on ephemeral ports): then the number
/// of units must match instead.
pub fn unusable(saved: &Calibration, current: &Calibration, same_urls: bool) -> Option<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if saved.source == "model" {
        return Some("it was not measured".into());
    }
    if now.saturating_sub(saved.created_unix_s) > MAX_AGE_S {
        return Some(format!("it is older than {} min", MAX_AGE_S / 60));
    }
    if saved.layout() != current.layout() {
        return Some("it describes other machines".into());
    }
    let urls = |c: &Calibration| {
        c.forwarders
            .iter()
            .map(|f| f.url.clone())
            .collect::<Vec<_>>()
    };
    if saved.forwarders.len() != current.forwarders.len()
        || (same_urls && urls(saved) != urls(current))
    {
        return Some("it describes other forwarding units".into());
    }
    None
}

/// The saved parameters on the current units' addresses.
pub fn adopt(saved: &Calibration, current: &Calibration) -> Calibration {
    let mut cal = saved.clone();
    for (f, c) in cal.forwarders.iter_mut().zip(&current.forwarders) {
        f.url = c.url.clone();
    }
    cal
}
