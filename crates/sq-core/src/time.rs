//! Simulated time. Nothing in sq reads a clock: the current `Time` is always handed in.

use std::fmt;
use std::ops::{Add, Sub};

/// A point in simulated time, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

impl Time {
    /// The start of every run.
    pub const ZERO: Time = Time(0);
    /// One microsecond, in nanoseconds.
    pub const MICRO: u64 = 1_000;
    /// One millisecond, in nanoseconds.
    pub const MILLI: u64 = 1_000_000;
    /// One second, in nanoseconds.
    pub const SECOND: u64 = 1_000_000_000;

    /// Nanoseconds since the start.
    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the start, for reports.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / Self::SECOND as f64
    }

    /// This time plus `nanos`, saturating rather than wrapping.
    pub const fn plus(self, nanos: u64) -> Time {
        Time(self.0.saturating_add(nanos))
    }
}

impl Add<u64> for Time {
    type Output = Time;
    fn add(self, nanos: u64) -> Time {
        self.plus(nanos)
    }
}

impl Sub for Time {
    type Output = u64;
    fn sub(self, earlier: Time) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Time {
    /// Seconds with microsecond precision, as in `t=2.301000s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.0 / Self::SECOND,
            (self.0 % Self::SECOND) / Self::MICRO
        )
    }
}
