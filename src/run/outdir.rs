//! Where a run's files go when the user names no folder: `results/runs/<UTC stamp>-<policy>-n<N>`,
//! never an existing folder.

use std::path::PathBuf;

/// A new folder name under `results/runs/` for a batch of `n` with `policy`.
pub fn default_out_dir(n: u64, policy: &str) -> PathBuf {
    let stamp = utc_stamp(crate::calibrate::unix_now());
    let base = PathBuf::from("results/runs");
    let mut dir = base.join(format!("{stamp}-{policy}-n{n}"));
    let mut k = 2;
    while dir.exists() {
        dir = base.join(format!("{stamp}-{policy}-n{n}-{k}"));
        k += 1;
    }
    dir
}

/// `YYYYMMDD-HHMMSS` (UTC) of a Unix time: the civil date from days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`), so no date crate is needed for one folder name.
pub fn utc_stamp(unix_s: u64) -> String {
    let (days, rem) = ((unix_s / 86_400) as i64, unix_s % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc_stamp;

    #[test]
    fn stamps_are_civil_utc_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_796_169_600 + 3661), "20261202-010101");
    }
}
