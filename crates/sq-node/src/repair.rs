//! Repairing a replica whose own storage lied (protocol-aware recovery, after Alagappan et al.,
//! FAST 2018, reduced to what a three-node log needs).
//!
//! An entry that fails its checksum when read, or damage that recovery finds, may be an entry
//! this replica acknowledged: the leader counted it toward a majority. So the replica may not
//! simply forget it, nor keep behaving as if it held it. It:
//! 1. records durably the (term, index) of the last entry its log may have held (its *horizon*;
//!    when recovery cannot read the damaged identities, the term it was in and an unbounded
//!    index), before it changes anything;
//! 2. cuts its log before the damaged entry (a leader steps down first), so it never serves or
//!    sends it;
//! 3. until its own durable, leader-verified log reaches the horizon again, neither stands for
//!    election nor grants a vote to a candidate whose log ends before the horizon;
//! 4. is repaired by the leader's ordinary catch-up, which resends what it lacks.
//!
//! Why it is safe: Raft's leader completeness rests on every voter comparing the candidate's
//! log with a log that holds every committed entry it acknowledged. The horizon is the last
//! entry of such a log, one this replica really held, so comparing against it is the comparison
//! the replica would have made before the damage, and the candidate it elects holds every entry
//! it had. Acknowledgements stay honest: a follower acknowledges only entries it holds durably
//! now. Liveness needs a majority of undamaged replicas, or a leader that holds the horizon.

use crate::node::{Node, Output};
use crate::status::Role;
use crate::timer::Timer;
use sq_core::Time;
use sq_storage::{Disk, WalError};

impl Node {
    /// Entry `index` failed its checks when read: cut the log before it and repair from the
    /// leader. A cluster of one has no one to repair it; it keeps the hole (never served).
    pub(crate) fn damaged(
        &mut self,
        now: Time,
        index: u64,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        // An entry the snapshot covers is in the store, and never read from here again.
        if self.single() || self.failed.is_some() || index <= self.base.last_index() {
            return;
        }
        let (last_index, last_term) = self.last_entry();
        let before = self.meta;
        let horizon = (self.meta.repair_term, self.meta.repair_index).max((last_term, last_index));
        (self.meta.repair_term, self.meta.repair_index) = horizon;
        if !self.persist(before, disk, out) {
            // No room to record it: the entry stays in the log, never served or sent, until
            // there is.
            return;
        }
        // A leader stops leading; a candidate stops standing (its votes counted a log it no
        // longer has).
        if self.role != Role::Follower {
            self.step_down(now, out);
        }
        self.probes.hit(sq_core::Probe::RepairStarted);
        if let Err(e) = self.cut_log(disk, index) {
            return self.fail(format!("cutting damaged entry {index} failed: {e}"), out);
        }
        self.commit_index = self.commit_index.min(index - 1);
        self.verified = self.verified.min(index - 1);
        self.leader_last = None;
        if let Err(e) = self.rebuild() {
            self.fail(
                format!("rebuilding after cutting damaged entry {index} failed: {e}"),
                out,
            );
        }
    }

    /// Reads back the next few durable entries (CRC-checked), round and round the log: damage
    /// nothing reads for a long time (on a follower, nothing reads its log) is found here.
    pub(crate) fn scrub(&mut self, now: Time, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        self.timers
            .set(Timer::Scrub, now + self.config.scrub_interval);
        let first = self.wal.first_index().max(self.base.last_index() + 1);
        let last = self.wal.synced_index();
        if last < first {
            return;
        }
        let entries = u64::from(self.config.scrub_entries).min(last - first + 1);
        for _ in 0..entries {
            if !(first..=last).contains(&self.scrub_next) {
                self.scrub_next = first;
            }
            let index = self.scrub_next;
            match self.wal.read(disk, index) {
                Ok(_) => self.scrub_next += 1,
                Err(WalError::Corrupt { .. }) => {
                    self.probes.hit(sq_core::Probe::ScrubFoundDamage);
                    return self.damaged(now, index, disk, out);
                }
                Err(e) => return self.fail(format!("scrubbing entry {index} failed: {e}"), out),
            }
        }
    }

    /// Leaves repair once the log that is durable and verified by a leader reaches the horizon.
    /// When the horizon's index is unknown (damage found at a start), also once it holds the
    /// whole log of a leader of the horizon's term (or a later one) as an append of this process
    /// said it was: every entry of that term it could have held came from that leader, whose log
    /// only grows in its term, and every earlier committed entry is in it (nothing sent to the
    /// process before the start reaches it, so the append is from after the damage).
    pub(crate) fn check_repaired(&mut self, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        if self.meta.repair_term == 0 {
            return;
        }
        let upto = self.wal.synced_index().min(self.verified);
        let reached = upto > 0
            && (self.term_at(upto), upto) >= (self.meta.repair_term, self.meta.repair_index);
        let caught_up = self.meta.repair_index == u64::MAX
            && self.leader_last.is_some_and(|(term, last)| {
                term >= self.meta.repair_term && term == self.meta.term && upto >= last
            });
        if !reached && !caught_up {
            return;
        }
        self.probes.hit(sq_core::Probe::RepairDone);
        let before = self.meta;
        self.meta.repair_term = 0;
        self.meta.repair_index = 0;
        self.persist(before, disk, out);
    }
}
