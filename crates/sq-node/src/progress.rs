//! What a leader knows of one follower: how far its log matches, what to send next, and how
//! many bytes are on their way (flow control: pipelined appends, bounded bytes in flight).
//!
//! Like etcd's raft, a follower is either *probed* (one append in flight until one matches:
//! after a leader change, a refusal or a loss) or *replicated to* (appends pipelined up to the
//! byte bound). A refusal that answers anything but the latest probe, or an append the
//! follower already acknowledged past, is stale and changes nothing: with a reordering network
//! every pipelined append after a lost one is refused, and acting on each would resend the
//! whole window each time.

use std::collections::{BTreeSet, VecDeque};

/// A follower's progress, as its leader tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The previous index of the probe in flight, when probing; `None` when replicating.
    probe: Option<Option<u64>>,
    /// The next index to send.
    pub next: u64,
    /// The highest index the follower acknowledged as durable and matching.
    pub matched: u64,
    /// Appends sent and not yet acknowledged: (last index, bytes).
    in_flight: VecDeque<(u64, usize)>,
    /// Their bytes.
    in_flight_bytes: usize,
    /// Heartbeat rounds since the follower's acknowledged index last moved while appends were
    /// in flight.
    pub quiet_rounds: u32,
    /// While replicating: the previous indexes of appends in flight the follower refused for a
    /// gap (they overtook an earlier one). Each is lost: once the follower acknowledges up to
    /// its previous index, it is sent again at once instead of after a few quiet rounds.
    overtaken: BTreeSet<u64>,
    /// A snapshot was sent and the follower has answered nothing since: it is not sent again
    /// until the follower answers something (a heartbeat will do), so a follower that is down
    /// costs a heartbeat a round, not a snapshot.
    snapshot_unanswered: bool,
}

impl Progress {
    /// A follower of a new leader whose log ends at `last_index`: probe from the end.
    pub fn new(last_index: u64) -> Progress {
        Progress {
            probe: Some(None),
            next: last_index + 1,
            matched: 0,
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            quiet_rounds: 0,
            overtaken: BTreeSet::new(),
            snapshot_unanswered: false,
        }
    }

    /// Whether a snapshot may be sent: none is waiting for the follower's first word since.
    pub fn may_send_snapshot(&self) -> bool {
        !self.snapshot_unanswered
    }

    /// A snapshot covering entries up to `last` (`bytes` long) was sent.
    pub fn sent_snapshot(&mut self, last: u64, bytes: usize) {
        self.snapshot_unanswered = true;
        self.sent(last, bytes);
    }

    /// The follower answered something. Returns whether a snapshot was waiting for that, so
    /// that the leader may send it again at once if it still lacks it.
    pub fn heard(&mut self) -> bool {
        std::mem::take(&mut self.snapshot_unanswered)
    }

    /// Whether another append of entries may be sent now.
    pub fn has_room(&self, max_bytes: usize) -> bool {
        match self.probe {
            Some(probe) => probe.is_none(),
            None => self.in_flight_bytes < max_bytes,
        }
    }

    /// An append of entries up to `last` (`bytes` of them) was sent.
    pub fn sent(&mut self, last: u64, bytes: usize) {
        if let Some(probe) = self.probe.as_mut() {
            *probe = Some(self.next - 1);
        }
        self.next = last + 1;
        self.in_flight.push_back((last, bytes));
        self.in_flight_bytes += bytes;
    }

    /// The follower acknowledged everything up to `index`. Only progress counts against the
    /// presumption that appends in flight were lost: a follower answers heartbeats too.
    pub fn acked(&mut self, index: u64) {
        if index > self.matched {
            self.quiet_rounds = 0;
        }
        // A success: the logs match up to `index`, so appends can follow one another again.
        self.probe = None;
        self.matched = self.matched.max(index);
        self.next = self.next.max(self.matched + 1);
        while let Some(&(last, bytes)) = self.in_flight.front() {
            if last > self.matched {
                break;
            }
            self.in_flight.pop_front();
            self.in_flight_bytes -= bytes;
        }
        if self.overtaken.is_empty() {
            return;
        }
        // The append after what is acknowledged was refused: it and what followed it are lost.
        if self.overtaken.contains(&self.matched) {
            self.next = self.matched + 1;
            self.forget_in_flight();
        }
        let matched = self.matched;
        self.overtaken.retain(|&prev| prev > matched);
    }

    /// The follower refused the append after `rejected`; it ends at `follower_last` and says
    /// to look after `hint`; `lost` if it cut its log since it acknowledged. Unless the refusal
    /// is stale, probing restarts after the hint (never below what it acknowledged, unless it
    /// lost that), with nothing in flight. Returns whether it acted on it.
    ///
    /// While replicating, a gap (entries missing before the append) is not acted on: the
    /// appends before it are usually only overtaken on the network, and one that was lost is
    /// sent again when the follower stops making progress ([`Progress::rewind`]).
    pub fn refused(
        &mut self,
        rejected: u64,
        follower_last: u64,
        hint: u64,
        lost: bool,
        last_index: u64,
    ) -> bool {
        let lost = lost && hint < self.matched;
        let answers = lost
            || match self.probe {
                Some(probe) => probe == Some(rejected),
                None => rejected > self.matched && rejected <= follower_last,
            };
        if !answers {
            if self.probe.is_none() && rejected > self.matched && rejected < self.next {
                self.overtaken.insert(rejected);
            }
            return false;
        }
        if lost {
            self.matched = self.matched.min(hint);
        }
        self.probe = Some(None);
        self.next = (hint + 1).clamp(self.matched + 1, last_index + 1);
        self.forget_in_flight();
        true
    }

    /// Appends in flight are presumed lost: probe again from what was acknowledged.
    pub fn rewind(&mut self) {
        self.probe = Some(None);
        self.next = self.matched + 1;
        self.forget_in_flight();
    }

    fn forget_in_flight(&mut self) {
        self.in_flight.clear();
        self.in_flight_bytes = 0;
        self.overtaken.clear();
    }

    /// Whether appends are in flight (a probe included).
    pub fn waiting(&self) -> bool {
        !self.in_flight.is_empty() || self.probe.is_some_and(|p| p.is_some())
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
        // Probing: one append at a time until one matches.
        p.sent(10, 100);
        assert!(!p.has_room(1000));
        p.acked(10);
        assert!(p.has_room(1000));
        p.sent(12, 600);
        p.sent(14, 600);
        assert!(!p.has_room(1000));
        p.acked(12);
        assert!(p.has_room(1000));
        assert_eq!((p.matched, p.next), (12, 15));
        // Exactly the 600 bytes of the append after 12 are in flight: a bound of 600 is full.
        assert!(!p.has_room(600));
        assert!(p.has_room(601));
        p.acked(14);
        assert!(!p.waiting());
    }

    #[test]
    fn acks_that_do_not_advance_leave_lost_appends_to_be_sent_again() {
        let mut p = Progress::new(10);
        p.acked(10);
        p.sent(12, 500);
        // Heartbeats keep being answered at the old index while the append was lost.
        for _ in 0..3 {
            p.acked(10);
            p.quiet_rounds += 1;
        }
        assert_eq!(p.quiet_rounds, 3);
        p.acked(11);
        assert_eq!(p.quiet_rounds, 0);
    }

    #[test]
    fn a_refusal_restarts_from_the_hint_but_never_below_the_match() {
        let mut p = Progress::new(20);
        p.acked(5);
        p.sent(22, 100);
        // A conflict at 20 (the follower holds another entry there), its term starting after
        // 12: probe after 12.
        assert!(p.refused(20, 25, 12, false, 22));
        assert_eq!((p.next, p.waiting()), (13, false));
        // The probe after 12 is refused, the follower ending at 9: probe after 9.
        p.sent(14, 10);
        assert!(p.refused(12, 9, 9, false, 22));
        assert_eq!(p.next, 10);
        // A hint past the leader's log: probe at its end.
        p.sent(11, 10);
        assert!(p.refused(9, 40, 40, false, 22));
        assert_eq!(p.next, 23);
        // A hint below what it acknowledged: never below the match.
        p.sent(23, 10);
        assert!(p.refused(22, 3, 3, false, 23));
        assert_eq!((p.next, p.matched), (6, 5));
        p.sent(7, 10);
        p.rewind();
        assert_eq!((p.next, p.waiting()), (6, false));
    }

    #[test]
    fn a_follower_that_lost_acknowledged_entries_is_probed_from_where_it_ends() {
        let mut p = Progress::new(20);
        p.acked(15);
        p.sent(20, 100);
        // It cut its damaged log at 8.
        assert!(p.refused(15, 8, 8, true, 20));
        assert_eq!((p.matched, p.next), (8, 9));
    }

    #[test]
    fn stale_refusals_and_gaps_change_nothing() {
        let mut p = Progress::new(30);
        p.acked(30);
        p.sent(32, 100);
        p.sent(34, 100);
        // The append after 32 arrived before the one after 30: a gap, left to the network.
        assert!(!p.refused(32, 30, 30, false, 34));
        assert_eq!((p.next, p.waiting()), (35, true));
        // The first was lost: no progress for a few rounds, and probing starts after 30.
        p.rewind();
        assert_eq!((p.next, p.waiting()), (31, false));
        p.sent(34, 200);
        // A refusal of anything but the probe after 30 is stale.
        assert!(!p.refused(32, 30, 30, false, 34));
        assert!(!p.refused(12, 10, 10, false, 34));
        assert_eq!((p.next, p.matched), (35, 30));
        // The probe's own refusal is acted on.
        assert!(p.refused(30, 29, 29, false, 34));
        assert_eq!((p.next, p.waiting()), (31, false));
    }

    #[test]
    fn a_snapshot_goes_again_only_after_the_follower_answers() {
        let mut p = Progress::new(40);
        assert!(p.may_send_snapshot());
        p.sent_snapshot(40, 5000);
        assert!(!p.may_send_snapshot());
        // Presumed lost after a few quiet rounds; a follower that answered nothing gets
        // heartbeats, not the snapshot again.
        p.rewind();
        assert!(!p.may_send_snapshot());
        // It answers (a refused heartbeat will do): the snapshot may go again, once.
        assert!(p.heard());
        assert!(p.may_send_snapshot());
        assert!(!p.heard());
        p.sent_snapshot(40, 5000);
        p.acked(40);
        assert!(p.heard());
        assert_eq!((p.matched, p.next, p.waiting()), (40, 41, false));
    }

    #[test]
    fn an_overtaken_append_is_sent_again_once_the_one_before_it_is_acknowledged() {
        let mut p = Progress::new(10);
        p.acked(10);
        p.sent(12, 100);
        p.sent(14, 100);
        p.sent(16, 100);
        // The append after 14 arrives first: refused for a gap, left to the network.
        assert!(!p.refused(14, 10, 10, false, 16));
        assert_eq!((p.next, p.waiting()), (17, true));
        // The one after 12 arrives: nothing to resend yet.
        p.acked(12);
        assert_eq!((p.next, p.waiting()), (17, true));
        // The one after 10 arrives late and is acknowledged up to 14: the append after 14 was
        // refused, so it goes again now.
        p.acked(14);
        assert_eq!((p.next, p.matched, p.waiting()), (15, 14, false));
        assert!(p.has_room(1000));
        // Sent again; a heartbeat's acknowledgement of 14 does not send it a third time.
        p.sent(16, 100);
        p.acked(14);
        assert_eq!((p.next, p.waiting()), (17, true));
        // Acknowledged past a refused append (a duplicate copy of it arrived): nothing to do.
        p.sent(18, 100);
        assert!(!p.refused(16, 14, 14, false, 18));
        p.acked(18);
        assert_eq!((p.next, p.matched, p.waiting()), (19, 18, false));
    }

    #[test]
    fn an_acknowledgement_past_what_was_sent_moves_the_next_index_past_it() {
        let mut p = Progress::new(10);
        p.acked(10);
        // The follower held entries up to 13 already (from an earlier leader's appends).
        p.acked(13);
        assert_eq!((p.matched, p.next), (13, 14));
    }

    #[test]
    fn stale_refusals_are_not_taken_for_overtaken_appends() {
        // A refusal of the append after what was acknowledged is stale (the follower holds it):
        // a heartbeat's acknowledgement there later sends nothing again.
        let mut p = Progress::new(10);
        p.acked(10);
        p.sent(12, 100);
        p.sent(14, 100);
        assert!(!p.refused(10, 14, 14, false, 14));
        p.acked(10);
        assert_eq!((p.next, p.waiting()), (15, true));
        // While probing, a refusal of anything but the probe is stale too.
        let mut p = Progress::new(10);
        p.sent(12, 100);
        assert!(!p.refused(11, 9, 9, false, 12));
        p.acked(11);
        assert_eq!((p.next, p.waiting()), (13, true));
        // A refusal of an append after the next index comes from an earlier round.
        for rejected in [13, 20] {
            let mut p = Progress::new(10);
            p.acked(10);
            p.sent(12, 100);
            assert!(!p.refused(rejected, 10, 10, false, 12));
            p.sent(16, 100);
            p.sent(20, 100);
            p.sent(22, 100);
            p.acked(rejected);
            assert_eq!((p.next, p.waiting()), (23, true), "after {rejected}");
        }
    }
}
