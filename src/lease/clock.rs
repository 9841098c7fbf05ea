//! The lease clock: `CLOCK_BOOTTIME`, which is monotonic, keeps counting while the machine
//! sleeps (a suspended laptop or a paused VM must not extend a lease), and is the same for every
//! process on the host, so the daemon and its guard process can pass deadlines as numbers.

use std::fmt;
use std::ops::Add;
use std::time::Duration;

/// A moment on the lease clock (time since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stamp(Duration);

impl Stamp {
    pub fn now() -> Stamp {
        // CLOCK_BOOTTIME exists on every Linux since 2.6.39 (rustix reads it through the vDSO).
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        Stamp(Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32))
    }

    pub fn from_nanos(n: u64) -> Stamp {
        Stamp(Duration::from_nanos(n))
    }

    pub fn as_nanos(self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn since(self, earlier: Stamp) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    pub fn saturating_sub(self, d: Duration) -> Stamp {
        Stamp(self.0.saturating_sub(d))
    }
}

impl Add<Duration> for Stamp {
    type Output = Stamp;
    fn add(self, d: Duration) -> Stamp {
        Stamp(self.0.saturating_add(d))
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.0.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_forward_and_round_trips_as_nanos() {
        let a = Stamp::now();
        std::thread::sleep(Duration::from_millis(2));
        let b = Stamp::now();
        assert!(b.since(a) >= Duration::from_millis(2));
        assert_eq!(a.since(b), Duration::ZERO);
        assert_eq!(Stamp::from_nanos(b.as_nanos()), b);
        assert_eq!((a + Duration::from_secs(1)).since(a), Duration::from_secs(1));
    }
}
