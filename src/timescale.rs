//! Model time and wall time, converted in one place.
//!
//! Every figure cmdunit reports is in *model* milliseconds: what the system's own clock would
//! say. Against a real system the two are the same; against the emulator run at time scale F
//! every model duration takes F times as long on the wall clock, so wall = model × F and
//! model = wall / F. Keeping the conversion (and its clamps) in one type means a duration can
//! never be converted twice or with a different rounding in two modules.

use std::time::{Duration, Instant};

/// The longest wall duration cmdunit ever waits for (a day): larger values are clamped, so a
/// huge model time cannot overflow `Duration` or `Instant`.
pub const MAX_WALL: Duration = Duration::from_secs(86_400);

/// The largest time scale accepted (a thousand times slower than real time).
pub const MAX_SCALE: f64 = 1000.0;

/// Wall time = model time × `factor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeScale {
    factor: f64,
}

impl Default for TimeScale {
    fn default() -> Self {
        TimeScale::REAL
    }
}

impl TimeScale {
    /// Real time: model and wall are the same.
    pub const REAL: TimeScale = TimeScale { factor: 1.0 };

    /// A scale from a factor in (0, [`MAX_SCALE`]]; anything else is refused with a message.
    pub fn new(factor: f64) -> Result<TimeScale, String> {
        if factor.is_finite() && factor > 0.0 && factor <= MAX_SCALE {
            Ok(TimeScale { factor })
        } else {
            Err(format!(
                "--time-scale must be > 0 and at most {MAX_SCALE}, got {factor}"
            ))
        }
    }

    pub fn factor(&self) -> f64 {
        self.factor
    }

    pub fn is_real(&self) -> bool {
        self.factor == 1.0
    }

    /// The wall duration of `model_ms` model milliseconds (negative and NaN → zero; clamped to
    /// [`MAX_WALL`]).
    pub fn to_wall(&self, model_ms: f64) -> Duration {
        let secs = model_ms * self.factor / 1000.0;
        if secs.is_nan() || secs <= 0.0 {
            Duration::ZERO
        } else if secs >= MAX_WALL.as_secs_f64() {
            MAX_WALL
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// Model milliseconds in a wall duration.
    pub fn to_model_ms(&self, wall: Duration) -> f64 {
        wall.as_secs_f64() * 1000.0 / self.factor
    }

    /// Model milliseconds since `t0`.
    pub fn since(&self, t0: Instant) -> f64 {
        self.to_model_ms(t0.elapsed())
    }

    /// The instant `model_ms` after `t0`.
    pub fn instant(&self, t0: Instant, model_ms: f64) -> Instant {
        t0 + self.to_wall(model_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip_and_clamp() {
        let s = TimeScale::new(0.5).unwrap();
        assert_eq!(s.to_wall(1000.0), Duration::from_millis(500));
        assert!((s.to_model_ms(Duration::from_millis(500)) - 1000.0).abs() < 1e-9);
        assert_eq!(s.to_wall(-5.0), Duration::ZERO);
        assert_eq!(s.to_wall(f64::NAN), Duration::ZERO);
        assert_eq!(s.to_wall(1e300), MAX_WALL);
        assert_eq!(s.to_wall(f64::INFINITY), MAX_WALL);
    }

    #[test]
    fn only_sane_factors_are_accepted() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e9] {
            assert!(TimeScale::new(bad).is_err(), "{bad}");
        }
        assert!(TimeScale::new(0.01).is_ok());
    }
}
