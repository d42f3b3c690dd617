//! Coverage probes: named counters at the rare paths of the node, the WAL and the clients, kept
//! like metrics by whoever owns the path. A test harness reads them to learn which rare paths a
//! run reached; the code that counts knows nothing of who reads.

/// A rare path worth knowing that a run reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Probe {
    /// WAL recovery cut a torn tail (a frame cut short after the last sync).
    TornTailCut,
    /// A running replica found a damaged entry and started its repair (horizon stored, log
    /// cut). Damage recovery finds at a start is not counted here (it leaves repair all the
    /// same: [`Probe::RepairDone`]).
    RepairStarted,
    /// A replica in repair reached its horizon again and left repair.
    RepairDone,
    /// The scrub found a damaged entry nothing else read.
    ScrubFoundDamage,
    /// A follower cut a suffix that conflicts with its leader's log.
    ConflictTruncated,
    /// A follower refused an append whose previous entry it lacks or holds otherwise.
    AppendRefused,
    /// A node refused a pre-vote.
    PreVoteRefused,
    /// A leader that had not heard from a majority stepped down (CheckQuorum).
    CheckQuorumStepDown,
    /// A sync failed and the node cut the unsynced entries from its log.
    SyncFailedCut,
    /// A leader sent its snapshot to a follower that lacked what it trimmed.
    SnapshotSent,
    /// A follower installed a leader's snapshot.
    SnapshotInstalled,
    /// A produce was a copy of a batch appended in the leader's own term: the original offset.
    DedupHit,
    /// A produce was a copy of a batch appended in an earlier term (by an earlier leader).
    DedupHitAfterFailover,
    /// A produce was refused with a definite `StorageFull`, the refusal recorded in the log (a
    /// late copy answered from the record again is not counted).
    StorageFullAnswered,
    /// An upload to the object store failed and was scheduled again.
    UploadRetried,
    /// A fetch below the WAL asked the object store for an object.
    ObjectRead,
    /// An object read from the store failed its checks.
    ObjectCorrupt,
    /// A leader deleted an object no manifest entry can apply.
    OrphanDeleted,
    /// A client followed a `NotLeader` hint or rotated to another node.
    ClientRedirected,
    /// A client sent a request again, to the next node, after a timeout.
    ClientResentAfterTimeout,
    /// A producer started a new epoch after a batch that was not acked.
    ProducerNewEpoch,
    /// A leader expelled a group member whose session timed out.
    GroupMemberExpired,
    /// A leader refused a group commit from a stale generation or a member not in the group.
    GroupCommitStale,
    /// A leader refused a group commit below the committed offset.
    GroupOffsetRegressionRefused,
    /// A group consumer learnt its generation is no longer current and will rejoin.
    GroupConsumerRejoins,
}

impl Probe {
    /// Every probe, in order.
    pub const ALL: [Probe; 25] = [
        Probe::TornTailCut,
        Probe::RepairStarted,
        Probe::RepairDone,
        Probe::ScrubFoundDamage,
        Probe::ConflictTruncated,
        Probe::AppendRefused,
        Probe::PreVoteRefused,
        Probe::CheckQuorumStepDown,
        Probe::SyncFailedCut,
        Probe::SnapshotSent,
        Probe::SnapshotInstalled,
        Probe::DedupHit,
        Probe::DedupHitAfterFailover,
        Probe::StorageFullAnswered,
        Probe::UploadRetried,
        Probe::ObjectRead,
        Probe::ObjectCorrupt,
        Probe::OrphanDeleted,
        Probe::ClientRedirected,
        Probe::ClientResentAfterTimeout,
        Probe::ProducerNewEpoch,
        Probe::GroupMemberExpired,
        Probe::GroupCommitStale,
        Probe::GroupOffsetRegressionRefused,
        Probe::GroupConsumerRejoins,
    ];

    /// Its name, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            Probe::TornTailCut => "wal.torn_tail_cut",
            Probe::RepairStarted => "node.repair_started",
            Probe::RepairDone => "node.repair_done",
            Probe::ScrubFoundDamage => "node.scrub_found_damage",
            Probe::ConflictTruncated => "node.conflict_truncated",
            Probe::AppendRefused => "node.append_refused",
            Probe::PreVoteRefused => "node.prevote_refused",
            Probe::CheckQuorumStepDown => "node.checkquorum_step_down",
            Probe::SyncFailedCut => "node.sync_failed_cut",
            Probe::SnapshotSent => "node.snapshot_sent",
            Probe::SnapshotInstalled => "node.snapshot_installed",
            Probe::DedupHit => "node.dedup_hit",
            Probe::DedupHitAfterFailover => "node.dedup_hit_after_failover",
            Probe::StorageFullAnswered => "node.storage_full_answered",
            Probe::UploadRetried => "node.upload_retried",
            Probe::ObjectRead => "node.object_read",
            Probe::ObjectCorrupt => "node.object_corrupt",
            Probe::OrphanDeleted => "node.orphan_deleted",
            Probe::ClientRedirected => "client.redirected",
            Probe::ClientResentAfterTimeout => "client.resent_after_timeout",
            Probe::ProducerNewEpoch => "client.producer_new_epoch",
            Probe::GroupMemberExpired => "node.group_member_expired",
            Probe::GroupCommitStale => "node.group_commit_stale",
            Probe::GroupOffsetRegressionRefused => "node.group_offset_regression_refused",
            Probe::GroupConsumerRejoins => "client.group_rejoins",
        }
    }

    /// The probe named `name`.
    pub fn from_name(name: &str) -> Option<Probe> {
        Probe::ALL.into_iter().find(|p| p.name() == name)
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// How often each probe was hit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probes {
    counts: [u64; Probe::ALL.len()],
}

impl Probes {
    /// Counts one hit of `probe`.
    pub fn hit(&mut self, probe: Probe) {
        let c = &mut self.counts[probe.slot()];
        *c = c.saturating_add(1);
    }

    /// Hits of `probe` so far.
    pub fn get(&self, probe: Probe) -> u64 {
        self.counts[probe.slot()]
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Probes) {
        for (c, o) in self.counts.iter_mut().zip(other.counts) {
            *c = c.saturating_add(o);
        }
    }

    /// Every probe with its count, in [`Probe::ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = (Probe, u64)> + '_ {
        Probe::ALL.into_iter().map(|p| (p, self.get(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn every_probe_has_its_own_slot_and_name() {
        for (i, p) in Probe::ALL.into_iter().enumerate() {
            assert_eq!(p.slot(), i);
            assert_eq!(Probe::from_name(p.name()), Some(p));
        }
    }

    #[test]
    fn counts_add_up() {
        let mut a = Probes::default();
        a.hit(Probe::PreVoteRefused);
        a.hit(Probe::PreVoteRefused);
        let mut b = Probes::default();
        b.hit(Probe::PreVoteRefused);
        b.hit(Probe::ObjectRead);
        a.add(&b);
        assert_eq!(
            (a.get(Probe::PreVoteRefused), a.get(Probe::ObjectRead)),
            (3, 1)
        );
    }
}
