//! Order statistics of plain samples, and figures as the text outputs print them. One place, so
//! that a median is the same median in the controller, the calibration pass and the report, and
//! a figure reads the same wherever it appears: a makespan in the headline, in the policy table
//! and under a chart is the same string, and "faster" is only ever written when the ratio says
//! so. A leaf: it imports nothing of the crate.

/// Median of unsorted values, interpolated between the two middle ones (NaN when there are none;
/// non-finite values are ignored).
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// The median of `values`, `None` when there is no finite one.
pub fn median_of(values: &[f64]) -> Option<f64> {
    let m = median(values);
    m.is_finite().then_some(m)
}

/// The q-quantile (0–1) of unsorted values, linearly interpolated between neighbours (NaN when
/// there are none; non-finite values are ignored).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// A duration given in milliseconds, in seconds to three significant figures: "0.37 s",
/// "17.4 s", "124 s"; "n/a" when unknown.
pub fn secs(ms: f64) -> String {
    if !ms.is_finite() {
        return "n/a".into();
    }
    let s = ms / 1000.0;
    if s.abs() >= 99.95 {
        format!("{s:.0} s")
    } else if s.abs() >= 9.995 {
        format!("{s:.1} s")
    } else {
        format!("{s:.2} s")
    }
}

/// How a duration `after` compares with `before`: "3.3× faster", "1.4× slower", or "as fast"
/// when they differ by less than 5% (a ratio that would print as 1.0×).
pub fn faster_or_slower(before_ms: f64, after_ms: f64) -> String {
    compare(before_ms / after_ms, "faster", "slower", "as fast")
}

/// `ratio` (new / old, larger is better) in words: "2.5× <up>", "1.3× <down>" or `same` within
/// 5%; "n/a" when the ratio is not a positive number.
pub fn compare(ratio: f64, up: &str, down: &str, same: &str) -> String {
    if !(ratio.is_finite() && ratio > 0.0) {
        return "n/a".into();
    }
    let factor = ratio.max(1.0 / ratio);
    if factor < 1.05 {
        same.to_string()
    } else if ratio > 1.0 {
        format!("{factor:.1}× {up}")
    } else {
        format!("{factor:.1}× {down}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median_of(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median_of(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median_of(&[]), None);
        assert_eq!(median_of(&[f64::NAN]), None);
    }

    #[test]
    fn median_interpolates_and_ignores_nan() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
        assert!(median(&[]).is_nan());
        assert_eq!(quantile(&[0.0, 10.0], 0.9), 9.0);
    }

    #[test]
    fn durations_have_three_significant_figures() {
        assert_eq!(secs(370.0), "0.37 s");
        assert_eq!(secs(17_380.0), "17.4 s");
        assert_eq!(secs(85_900.0), "85.9 s");
        assert_eq!(secs(124_400.0), "124 s");
        assert_eq!(secs(9_999.0), "10.0 s");
        assert_eq!(secs(f64::NAN), "n/a");
    }

    #[test]
    fn a_slower_result_is_called_slower_not_faster() {
        assert_eq!(faster_or_slower(17_400.0, 5_250.0), "3.3× faster");
        assert_eq!(faster_or_slower(5_000.0, 7_500.0), "1.5× slower");
        assert_eq!(faster_or_slower(5_000.0, 5_100.0), "as fast");
        assert_eq!(faster_or_slower(5_000.0, 0.0), "n/a");
    }
}
