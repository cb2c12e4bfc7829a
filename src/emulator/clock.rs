//! Model time on the wall clock.
//!
//! Every duration in the emulator is a *model* millisecond; `--time-scale F` makes one model
//! millisecond last `F` wall milliseconds. The emulator never lets thread scheduling decide when
//! something happens: it computes an absolute deadline in model time (e.g. "this request leaves
//! the machine at 12 345.5 ms") and sleeps until that instant. Deadlines are absolute, so a late
//! wake-up never shifts the requests that follow (no drift).

use crate::timescale::TimeScale;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The shared clock of one emulator: an epoch and a scale.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
    scale: TimeScale,
    /// Tells clocks apart: a time stamp from another clock (another process) means nothing here.
    id: u64,
}

impl Clock {
    /// A clock starting now. `scale` is checked by the caller (its flag or topology); one out of
    /// range runs in real time.
    pub fn new(scale: f64) -> Clock {
        let scale = TimeScale::new(scale).unwrap_or_default();
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock {
            epoch: Instant::now(),
            scale,
            id: nanos ^ ((std::process::id() as u64) << 32) ^ NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A stamp of the present moment that [`Clock::read_stamp`] on the same clock understands.
    pub fn stamp(&self) -> String {
        self.stamp_at(self.now_ms())
    }

    /// A stamp of model time `ms` on this clock.
    pub fn stamp_at(&self, ms: f64) -> String {
        format!("{:x} {ms}", self.id)
    }

    /// The model time in a stamp made by this very clock, if it is one and not in the future.
    pub fn read_stamp(&self, stamp: &str) -> Option<f64> {
        let (id, ms) = stamp.trim().split_once(' ')?;
        if u64::from_str_radix(id, 16).ok()? != self.id {
            return None;
        }
        let ms: f64 = ms.parse().ok()?;
        (ms.is_finite() && ms >= 0.0 && ms <= self.now_ms()).then_some(ms)
    }

    pub fn scale(&self) -> f64 {
        self.scale.factor()
    }

    /// Model milliseconds since the epoch.
    pub fn now_ms(&self) -> f64 {
        self.to_model_ms(self.epoch.elapsed())
    }

    /// A wall-clock duration expressed in model milliseconds.
    pub fn to_model_ms(&self, wall: Duration) -> f64 {
        self.scale.to_model_ms(wall)
    }

    /// A model duration on the wall clock.
    pub fn to_wall(&self, model_ms: f64) -> Duration {
        self.scale.to_wall(model_ms)
    }

    /// The wall-clock instant of a model time.
    pub fn instant_at(&self, model_ms: f64) -> Instant {
        self.epoch + self.to_wall(model_ms)
    }

    /// Sleep until model time `model_ms` (returns at once if it has passed).
    pub fn sleep_until(&self, model_ms: f64) {
        sleep_until(self.instant_at(model_ms));
    }
}

/// Sleep until a wall-clock instant (returns at once if it has passed).
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_and_wall_durations_convert_both_ways() {
        let c = Clock::new(0.1);
        assert_eq!(c.to_wall(1000.0), Duration::from_millis(100));
        assert!((c.to_model_ms(Duration::from_millis(100)) - 1000.0).abs() < 1e-9);
        assert_eq!(c.to_wall(-5.0), Duration::ZERO);
    }

    #[test]
    fn stamps_are_read_only_by_their_own_clock() {
        let a = Clock::new(1.0);
        let b = Clock::new(1.0);
        let s = a.stamp();
        assert!(a.read_stamp(&s).is_some());
        assert_eq!(b.read_stamp(&s), None);
        assert_eq!(a.read_stamp("garbage"), None);
    }

    #[test]
    fn sleeping_until_a_deadline_does_not_drift() {
        // Deadlines are absolute: a sleeper held up past its deadlines catches up at once
        // instead of pushing every later deadline back by the delay. The delay (500 model ms)
        // is made large and the tolerance loose (400 model ms of scheduling slack, 200 wall ms
        // at this scale) so that a loaded machine cannot fail this; a relative sleeper ends 500
        // model ms late and can never pass. (At scale 0.01 with 10 wall ms of slack this failed
        // in CI beside a parallel test run.)
        let c = Clock::new(0.5);
        for i in 1..=5 {
            let deadline = i as f64 * 200.0;
            c.sleep_until(deadline);
            // Never early: the wall clock is monotonic, so this holds under any load.
            assert!(
                c.now_ms() >= deadline,
                "woke at {} before {deadline}",
                c.now_ms()
            );
            if i == 2 {
                std::thread::sleep(c.to_wall(500.0));
            }
        }
        let t = c.now_ms();
        assert!(
            t < 1000.0 + 400.0,
            "five deadlines ending at 1000 model ms ended at {t}"
        );
    }
}
