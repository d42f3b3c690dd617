//! Catch-up by snapshot: a follower that lacks entries its leader no longer holds in its WAL
//! (they are in the object store) gets the leader's snapshot, then the rest by appends.
//!
//! The follower keeps its own log after the snapshot's last entry if it holds that entry with
//! the same term (Raft §7: those entries match the leader's, and some may be acknowledged);
//! otherwise its log conflicts or is shorter, and it starts afresh after the snapshot. Entries
//! the snapshot covers are committed, so nothing committed is lost either way: what the
//! follower drops is in the store, or uncommitted.

use crate::base::Base;
use crate::node::{Node, Output};
use crate::status::Role;
use sq_core::{NodeId, PeerMsg, SnapshotRequest, Time};
use sq_storage::{Disk, DiskError, Snapshot, SnapshotError};

impl Node {
    /// Leader: sends follower `to` its snapshot, as one append in flight.
    pub(crate) fn send_snapshot(&mut self, to: NodeId, out: &mut Vec<Output>) {
        self.probes.hit(sq_core::Probe::SnapshotSent);
        let data = self.base.snapshot.encode();
        let last_index = self.base.last_index();
        let len = data.len();
        out.push(Output::Send {
            to,
            msg: PeerMsg::Snapshot(SnapshotRequest {
                term: self.meta.term,
                leader: self.config.id,
                last_index,
                data,
            }),
        });
        if let Some(p) = self.progress.get_mut(&to) {
            p.sent_snapshot(last_index, len);
        }
    }

    /// Follower: a leader's snapshot.
    pub(crate) fn handle_snapshot(
        &mut self,
        now: Time,
        m: SnapshotRequest,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        let leader = m.leader;
        if m.term < self.meta.term {
            return self.answer_append(leader, out);
        }
        if (m.term > self.meta.term || self.role != Role::Follower)
            && !self.become_follower(now, m.term, Some(leader), disk, out)
        {
            return;
        }
        self.leader = Some(leader);
        self.leader_contact = Some(now);
        self.arm_election(now);
        // Damaged on the way: the leader sends it again.
        let Ok(snapshot) = Snapshot::decode(&m.data) else {
            return;
        };
        let at = snapshot.last_index;
        if at <= self.commit_index.max(self.base.last_index()) {
            // Nothing new: this replica holds everything up to there already.
            self.verified = self.verified.max(at.min(self.commit_index));
            return self.answer_append(leader, out);
        }
        // Kept only if durable up to there: a sync that fails later cuts only what follows the
        // snapshot, never what it needs to agree with.
        let keep_log = self.wal.synced_index() >= at
            && self
                .wal
                .header(at)
                .is_some_and(|h| h.term == snapshot.last_term);
        let base = match Base::from_snapshot(snapshot, self.config.partitions) {
            Ok(base) => base,
            Err(e) => return self.fail(format!("installing a snapshot failed: {e}"), out),
        };
        let mut stored = base.snapshot.clone();
        stored.version = self.base.snapshot.version;
        let result = stored.store(disk);
        self.base.snapshot.version = stored.version;
        match result {
            Ok(()) => {}
            // Durable once: a restart would install it, so this process does too.
            Err(e) if e.is_durable() => {}
            // No room: install nothing; the leader sends it again.
            Err(SnapshotError::Disk(DiskError::NoSpace { .. })) => return,
            Err(e) => return self.fail(format!("storing a snapshot failed: {e}"), out),
        }
        let result = if keep_log {
            self.wal.trim_to(disk, at).map(|_| ())
        } else {
            self.reset_log(disk, at + 1)
        };
        if let Err(e) = result {
            return self.fail(
                format!("dropping the log a snapshot replaces failed: {e}"),
                out,
            );
        }
        self.base = Base {
            snapshot: stored,
            ..base
        };
        let manifest = self.base.snapshot.manifest.clone();
        self.tier.set_manifest(manifest, self.config.partitions);
        self.commit_index = self.commit_index.max(at);
        self.verified = if keep_log { self.verified.max(at) } else { at };
        self.probes.hit(sq_core::Probe::SnapshotInstalled);
        self.leader_last = None;
        if let Err(e) = self.rebuild() {
            return self.fail(format!("rebuilding after a snapshot failed: {e}"), out);
        }
        self.answer_append(leader, out);
    }
}
