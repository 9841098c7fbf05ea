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

/// A one-shot alarm at a [`Stamp`]: a timerfd on `CLOCK_BOOTTIME` with an absolute expiry. A
/// thread blocked in [`wait`](Self::wait) wakes at that moment on the lease clock even when the
/// machine was suspended in between, where a timeout (counted on `CLOCK_MONOTONIC`, which stops
/// while suspended) would run on for the time the machine slept.
pub struct BootAlarm {
    fd: std::os::fd::OwnedFd,
    closed: std::sync::atomic::AtomicBool,
}

impl BootAlarm {
    pub fn new() -> std::io::Result<BootAlarm> {
        use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
        let fd = timerfd_create(TimerfdClockId::Boottime, TimerfdFlags::CLOEXEC)?;
        Ok(BootAlarm { fd, closed: std::sync::atomic::AtomicBool::new(false) })
    }

    /// Rings at `at` (at once if it has passed); `None` disarms it.
    pub fn set(&self, at: Option<Stamp>) -> std::io::Result<()> {
        use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        // An absolute expiry of 0 would disarm the timer: 1 ns is long past.
        let value = at.map_or(zero, |t| {
            let t = t.0.max(Duration::from_nanos(1));
            Timespec { tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX), tv_nsec: t.subsec_nanos().into() }
        });
        timerfd_settime(&self.fd, TimerfdTimerFlags::ABSTIME, &Itimerspec { it_interval: zero, it_value: value })?;
        Ok(())
    }

    /// Blocks until the alarm rings; false once [`close`](Self::close) was called.
    pub fn wait(&self) -> bool {
        let mut buf = [0u8; 8];
        loop {
            if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                return false;
            }
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(_) => return !self.closed.load(std::sync::atomic::Ordering::Acquire),
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return false,
            }
        }
    }

    /// Wakes the waiting thread for good.
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        let _ = self.set(Some(Stamp::from_nanos(1)));
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

    /// The alarm rings at its stamp, not before; a later setting replaces an earlier one; a passed
    /// stamp rings at once; closing wakes the waiter for good.
    #[test]
    fn the_alarm_rings_at_its_stamp_and_closes() {
        let alarm = std::sync::Arc::new(BootAlarm::new().expect("timerfd"));
        let t0 = Stamp::now();
        alarm.set(Some(t0 + Duration::from_millis(10))).expect("set");
        alarm.set(Some(t0 + Duration::from_millis(40))).expect("set");
        assert!(alarm.wait());
        assert!(Stamp::now().since(t0) >= Duration::from_millis(40));
        alarm.set(Some(t0)).expect("set");
        assert!(alarm.wait(), "a passed stamp rings at once");
        alarm.set(None).expect("disarm");
        let waiter = {
            let alarm = std::sync::Arc::clone(&alarm);
            std::thread::spawn(move || alarm.wait())
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "a disarmed alarm does not ring");
        alarm.close();
        assert!(!waiter.join().expect("waiter"), "closed");
    }
}
