//! What a leader knows of one follower: how far its log matches, what to send next, and how
//! many bytes are on their way (flow control: pipelined appends, bounded bytes in flight).

use std::collections::VecDeque;

/// A follower's progress, as its leader tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The next index to send.
    pub next: u64,
    /// The highest index the follower acknowledged as durable and matching.
    pub matched: u64,
    /// Appends sent and not yet acknowledged: (last index, bytes).
    in_flight: VecDeque<(u64, usize)>,
    /// Their bytes.
    in_flight_bytes: usize,
    /// Heartbeat rounds since the follower last answered while appends were in flight.
    pub quiet_rounds: u32,
}

impl Progress {
    /// A follower of a new leader whose log ends at `last_index`: probe from the end.
    pub fn new(last_index: u64) -> Progress {
        Progress {
            next: last_index + 1,
            matched: 0,
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            quiet_rounds: 0,
        }
    }

    /// Whether another append of entries may be sent now.
    pub fn has_room(&self, max_bytes: usize) -> bool {
        self.in_flight_bytes < max_bytes
    }

    /// An append of entries up to `last` (`bytes` of them) was sent.
    pub fn sent(&mut self, last: u64, bytes: usize) {
        self.next = last + 1;
        self.in_flight.push_back((last, bytes));
        self.in_flight_bytes += bytes;
    }

    /// The follower acknowledged everything up to `index`.
    pub fn acked(&mut self, index: u64) {
        self.quiet_rounds = 0;
        self.matched = self.matched.max(index);
        self.next = self.next.max(self.matched + 1);
        while let Some(&(last, bytes)) = self.in_flight.front() {
            if last > self.matched {
                break;
            }
            self.in_flight.pop_front();
            self.in_flight_bytes -= bytes;
        }
    }

    /// The follower's log does not match at `next - 1`; it ends at `hint`. Sending restarts
    /// from there (never below what it acknowledged), with nothing in flight.
    pub fn refused(&mut self, hint: u64, last_index: u64) {
        self.quiet_rounds = 0;
        self.next = (hint + 1).clamp(self.matched + 1, last_index + 1);
        self.forget_in_flight();
    }

    /// Appends in flight are presumed lost: send again from what was acknowledged.
    pub fn rewind(&mut self) {
        self.next = self.matched + 1;
        self.forget_in_flight();
    }

    fn forget_in_flight(&mut self) {
        self.in_flight.clear();
        self.in_flight_bytes = 0;
    }

    /// Whether appends are in flight.
    pub fn waiting(&self) -> bool {
        !self.in_flight.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn bytes_in_flight_are_bounded_and_released_by_acks() {
        let mut p = Progress::new(10);
        assert_eq!(p.next, 11);
        p.sent(12, 600);
        p.sent(14, 600);
        assert!(!p.has_room(1000));
        p.acked(12);
        assert!(p.has_room(1000));
        assert_eq!((p.matched, p.next), (12, 15));
        p.acked(14);
        assert!(!p.waiting());
    }

    #[test]
    fn a_refusal_restarts_from_the_hint_but_never_below_the_match() {
        let mut p = Progress::new(20);
        p.acked(5);
        p.sent(22, 100);
        p.refused(2, 22);
        assert_eq!((p.next, p.waiting()), (6, false));
        p.refused(9, 22);
        assert_eq!(p.next, 10);
        p.refused(40, 22);
        assert_eq!(p.next, 23);
        p.sent(23, 10);
        p.rewind();
        assert_eq!((p.next, p.waiting()), (6, false));
    }
}
