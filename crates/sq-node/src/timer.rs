//! The node's deadlines: one slot per timer, re-armed or cancelled by the node itself. The caller
//! asks for the next deadline ([`TimerTable::next`]) and wakes the node then; nothing outside the
//! node names its timers.

use sq_core::Time;

/// The node's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// Ask for a sync of what was appended since the last one (group commit).
    Flush,
    /// A follower or candidate that heard no leader stands for election; a leader checks that
    /// it heard from a majority since the last time (CheckQuorum).
    Election,
    /// A leader sends entries or a heartbeat to every follower.
    Heartbeat,
    /// A replica reads the next few entries of its log back to find latent damage.
    Scrub,
    /// A leader whose upload failed tries again (backoff).
    Upload,
}

impl Timer {
    const ALL: [Timer; 5] = [
        Timer::Flush,
        Timer::Election,
        Timer::Heartbeat,
        Timer::Scrub,
        Timer::Upload,
    ];

    fn slot(self) -> usize {
        match self {
            Timer::Flush => 0,
            Timer::Election => 1,
            Timer::Heartbeat => 2,
            Timer::Scrub => 3,
            Timer::Upload => 4,
        }
    }
}

/// When each timer fires, if it is armed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimerTable {
    deadlines: [Option<Time>; Timer::ALL.len()],
}

impl TimerTable {
    /// Arms `timer` for `at`, replacing any earlier deadline it had.
    pub fn set(&mut self, timer: Timer, at: Time) {
        self.deadlines[timer.slot()] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.slot()] = None;
    }

    /// Whether `timer` is armed.
    pub fn is_set(&self, timer: Timer) -> bool {
        self.deadlines[timer.slot()].is_some()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Time> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the timers due at `now`, in a fixed order.
    pub fn expire(&mut self, now: Time) -> impl Iterator<Item = Timer> {
        let mut due = Vec::new();
        for t in Timer::ALL {
            if self.deadlines[t.slot()].is_some_and(|at| at <= now) {
                self.deadlines[t.slot()] = None;
                due.push(t);
            }
        }
        due.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn timers_rearm_cancel_and_expire() {
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Flush, Time(50));
        t.set(Timer::Flush, Time(30));
        assert_eq!(t.next(), Some(Time(30)));
        assert_eq!(t.expire(Time(29)).count(), 0);
        assert_eq!(t.expire(Time(30)).collect::<Vec<_>>(), vec![Timer::Flush]);
        assert!(!t.is_set(Timer::Flush));
        t.set(Timer::Flush, Time(40));
        t.stop(Timer::Flush);
        assert_eq!(t.next(), None);
    }
}
