//! Log replication: the leader's side (what to send each follower, when an entry commits) and
//! the follower's (checking, appending and acknowledging what a leader sends).
//!
//! - Appends are pipelined, with at most `max_inflight_bytes` unacknowledged per follower.
//!   Appends presumed lost (no answer for a few heartbeats) are sent again.
//! - A follower acknowledges only entries that are durable in its WAL and that it knows to
//!   match the leader's log (the prefix this leader verified), so an acknowledgement is a
//!   promise that survives a crash.
//! - The leader counts itself only for what its own sync made durable, and commits by majority
//!   only entries of its own term (Raft §5.4.2).
//! - A follower cuts its log only where an entry conflicts with the leader's, never at or below
//!   its commit index, and never because an append is shorter than its log (a delayed append
//!   must not erase newer entries).
//! - Entries travel as CRC-checked frames: a frame that fails its check on arrival is not
//!   written, and an entry that fails its check when read is never sent (the leader repairs
//!   itself instead, see repair.rs).

use crate::node::{Node, Output};
use crate::status::Role;
use crate::timer::Timer;
use bytes::{Bytes, BytesMut};
use sq_core::codec;
use sq_core::{AppendReply, AppendRequest, NodeId, PeerMsg, Time};
use sq_storage::{Disk, WalError};

/// Heartbeat rounds without an answer after which appends in flight are presumed lost.
const QUIET_ROUNDS: u32 = 3;

impl Node {
    /// Leader: sends each follower what it lacks, as far as flow control allows.
    pub(crate) fn replicate(&mut self, now: Time, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        if self.role != Role::Leader || self.single() {
            return;
        }
        for to in self.peers() {
            self.send_entries(now, to, disk, out);
        }
    }

    /// Sends follower `to` appends from its next index while there is room; true if any left.
    fn send_entries(
        &mut self,
        now: Time,
        to: NodeId,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) -> bool {
        let mut sent = false;
        let last = self.wal.last_index();
        loop {
            let Some(p) = self.progress.get(&to) else {
                return sent;
            };
            if p.next > last || !p.has_room(self.config.max_inflight_bytes) {
                return sent;
            }
            if p.next <= self.base.last_index() {
                // The follower lacks entries this leader holds only in the store. A follower
                // that never answered the last snapshot gets heartbeats until it does.
                if !p.may_send_snapshot() {
                    return sent;
                }
                self.send_snapshot(to, out);
                return true;
            }
            let prev_index = p.next - 1;
            let mut entries = Vec::new();
            let mut bytes = 0usize;
            let mut i = p.next;
            while i <= last {
                let len = self.wal.header(i).map_or(0, |h| h.frame_len());
                if !entries.is_empty() && bytes + len > self.config.max_append_bytes {
                    break;
                }
                match self.read_entry(disk, i) {
                    Ok(frame) => {
                        bytes += frame.len();
                        entries.push(frame);
                    }
                    Err(WalError::Corrupt { .. }) => {
                        self.damaged(now, i, disk, out);
                        return sent;
                    }
                    Err(e) => {
                        self.fail(format!("reading entry {i} to replicate failed: {e}"), out);
                        return sent;
                    }
                }
                i += 1;
            }
            let msg = AppendRequest {
                term: self.meta.term,
                leader: self.config.id,
                prev_index,
                prev_term: self.term_at(prev_index),
                entries,
                commit: self.commit_index,
                last_index: last,
            };
            out.push(Output::Send {
                to,
                msg: PeerMsg::Append(msg),
            });
            if let Some(p) = self.progress.get_mut(&to) {
                p.sent(i - 1, bytes);
            }
            sent = true;
        }
    }

    /// Reads entry `index` from the WAL (CRC-checked) as the frame a follower will store.
    fn read_entry(&mut self, disk: &mut dyn Disk, index: u64) -> Result<Bytes, WalError> {
        let (h, payload) = self.wal.read(disk, index)?;
        let mut frame = BytesMut::with_capacity(h.frame_len());
        codec::encode_frame(h.term, h.index, h.kind, &h.batch, &payload, &mut frame);
        Ok(frame.freeze())
    }

    /// Leader: every heartbeat, each follower gets what it lacks, or an empty append that
    /// carries the commit index and keeps it from standing for election.
    pub(crate) fn heartbeat(&mut self, now: Time, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        if self.role != Role::Leader || self.single() {
            return;
        }
        self.timers
            .set(Timer::Heartbeat, now + self.config.heartbeat);
        for to in self.peers() {
            let Some(p) = self.progress.get_mut(&to) else {
                continue;
            };
            if p.waiting() {
                p.quiet_rounds += 1;
                if p.quiet_rounds >= QUIET_ROUNDS {
                    p.rewind();
                }
            }
            if self.send_entries(now, to, disk, out) || self.role != Role::Leader {
                continue;
            }
            // Anchored at what the follower acknowledged, so that it matches whatever else is
            // on its way.
            let Some(p) = self.progress.get(&to) else {
                continue;
            };
            // Never below the leader's snapshot: it knows no term there.
            let prev_index = p.matched.max(self.base.last_index());
            let msg = AppendRequest {
                term: self.meta.term,
                leader: self.config.id,
                prev_index,
                prev_term: self.term_at(prev_index),
                entries: Vec::new(),
                commit: self.commit_index.min(prev_index),
                last_index: self.wal.last_index(),
            };
            out.push(Output::Send {
                to,
                msg: PeerMsg::Append(msg),
            });
        }
    }

    /// Leader: commits the highest index of its own term that a majority holds durably.
    pub(crate) fn maybe_commit(&mut self, out: &mut Vec<Output>) {
        if self.single() {
            // A cluster of one: everything durable is committed.
            return self.commit_to(self.wal.synced_index(), out);
        }
        let mut durable: Vec<u64> = self.progress.values().map(|p| p.matched).collect();
        durable.push(self.wal.synced_index());
        durable.sort_unstable_by(|a, b| b.cmp(a));
        let n = durable[self.majority() - 1];
        if n > self.commit_index && self.term_at(n) == self.meta.term {
            self.commit_to(n, out);
        }
    }

    /// Follower: entries (or a heartbeat) from a leader.
    pub(crate) fn handle_append(
        &mut self,
        now: Time,
        m: AppendRequest,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        let leader = m.leader;
        if m.term < self.meta.term {
            let last = self.wal.last_index();
            return self.answer_append_refused(leader, m.prev_index, last, out);
        }
        if (m.term > self.meta.term || self.role != Role::Follower)
            && !self.become_follower(now, m.term, Some(leader), disk, out)
        {
            return;
        }
        self.leader = Some(leader);
        self.leader_contact = Some(now);
        self.arm_election(now);
        let last = self.wal.last_index();
        if m.prev_index > last {
            return self.answer_append_refused(leader, m.prev_index, last, out);
        }
        // Entries before the WAL's first are in this replica's snapshot: committed, so they
        // match any leader's.
        if m.prev_index >= self.wal.first_index() && self.term_at(m.prev_index) != m.prev_term {
            return self.answer_append_conflict(leader, m.prev_index, out);
        }
        let mut index = m.prev_index;
        let mut appended = false;
        for frame in &m.entries {
            // A frame damaged on the wire is not written; the leader sends it again.
            let Ok((h, payload)) = codec::decode_frame(frame) else {
                break;
            };
            if h.index != index + 1 {
                break;
            }
            if h.index < self.wal.first_index() {
                index = h.index;
                continue;
            }
            if h.index <= self.wal.last_index() {
                if self.term_at(h.index) == h.term {
                    index = h.index;
                    continue;
                }
                assert!(
                    h.index > self.commit_index,
                    "invariant: leader {leader} of term {} sent entry {} of term {} that conflicts \
                     with the committed entry of term {} (commit index {})",
                    m.term,
                    h.index,
                    h.term,
                    self.term_at(h.index),
                    self.commit_index
                );
                self.probes.hit(sq_core::Probe::ConflictTruncated);
                if let Err(e) = self.cut_log(disk, h.index) {
                    return self.fail(format!("cutting a conflicting suffix failed: {e}"), out);
                }
                if let Err(e) = self.rebuild() {
                    return self.fail(format!("rebuilding after a cut failed: {e}"), out);
                }
            }
            match self.wal.append(disk, h.term, h.kind, &h.batch, payload) {
                Ok(_) => {}
                // No room: take what fits; the leader sends the rest again.
                Err(WalError::NoSpace) => break,
                Err(e) => {
                    return self.fail(format!("appending a replicated entry failed: {e}"), out)
                }
            }
            if let Err(e) = self.take_in_replicated(&h, payload) {
                return self.fail(format!("a replicated entry does not fit the log: {e}"), out);
            }
            index = h.index;
            appended = true;
        }
        self.verified = self.verified.max(index);
        self.leader_last = Some((m.term, m.last_index));
        self.commit_to(m.commit.min(self.verified), out);
        if appended || self.wal.synced_index() < self.verified {
            // Acknowledged once durable.
            self.ack_to = Some(leader);
            self.start_sync(out);
        } else {
            self.answer_append(leader, out);
        }
    }

    /// Follower: tells `leader` how far its log is durable and matches it.
    pub(crate) fn answer_append(&mut self, leader: NodeId, out: &mut Vec<Output>) {
        out.push(Output::Send {
            to: leader,
            msg: PeerMsg::AppendReply(AppendReply {
                term: self.meta.term,
                success: true,
                match_index: self.wal.synced_index().min(self.verified),
                last_index: self.wal.last_index(),
                rejected: 0,
                hint: 0,
                lost: false,
            }),
        });
    }

    /// Follower: refuses the append after `rejected`; the leader should look at `hint`.
    fn answer_append_refused(
        &mut self,
        leader: NodeId,
        rejected: u64,
        hint: u64,
        out: &mut Vec<Output>,
    ) {
        self.probes.hit(sq_core::Probe::AppendRefused);
        out.push(Output::Send {
            to: leader,
            msg: PeerMsg::AppendReply(AppendReply {
                term: self.meta.term,
                success: false,
                match_index: 0,
                last_index: self.wal.last_index(),
                rejected,
                hint,
                lost: self.meta.repair_term != 0,
            }),
        });
    }

    /// Follower: the entry at `prev` has another term than the leader's; point the leader
    /// before the whole run of that term, so a divergent suffix is skipped in one round trip.
    fn answer_append_conflict(&mut self, leader: NodeId, prev: u64, out: &mut Vec<Output>) {
        let term = self.term_at(prev);
        let mut first = prev;
        while first > self.wal.first_index() && self.term_at(first - 1) == term {
            first -= 1;
        }
        self.answer_append_refused(leader, prev, first - 1, out);
    }

    /// Leader: a follower's answer.
    pub(crate) fn handle_append_reply(
        &mut self,
        now: Time,
        from: NodeId,
        m: AppendReply,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        if m.term > self.meta.term {
            self.become_follower(now, m.term, None, disk, out);
            return;
        }
        if self.role != Role::Leader || m.term < self.meta.term {
            return;
        }
        self.heard.insert(from, now);
        let last = self.wal.last_index();
        let Some(p) = self.progress.get_mut(&from) else {
            return;
        };
        let snapshot_waited = p.heard();
        if m.success {
            p.acked(m.match_index.min(last));
            self.maybe_commit(out);
        } else if !p.refused(m.rejected, m.last_index, m.hint, m.lost, last) && !snapshot_waited {
            return;
        }
        self.send_entries(now, from, disk, out);
    }

    /// After a sync: a leader may commit more; a follower owes its leader an acknowledgement.
    pub(crate) fn durable(&mut self, now: Time, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        self.check_repaired(disk, out);
        if self.role == Role::Leader {
            self.maybe_commit(out);
            self.replicate(now, disk, out);
        } else if let Some(leader) = self.ack_to {
            if self.wal.synced_index() >= self.wal.last_index() {
                self.ack_to = None;
            }
            self.answer_append(leader, out);
        }
    }
}
