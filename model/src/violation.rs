//! What a broken invariant looks like.

use std::fmt;

/// The invariants sq must keep. The first six are the seed ticket's; the rest come from Jepsen's
/// queue checker and Raft's safety properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// 1: an acked record is durable (synced on a majority) and is read back at its offset.
    AckedDurable,
    /// 2: per partition, offsets are contiguous from the log start; fetches neither skip nor rewind.
    Contiguous,
    /// 3: every record served was CRC-checked: no client receives a record other than the one
    /// produced at that offset.
    CrcIntegrity,
    /// One producer sequence at one offset only.
    NoDuplicates,
    /// Every record read was produced, and not by a produce that definitely failed.
    NoPhantoms,
    /// The offset a record was acked at is the offset it is read at.
    AckedOffsetIsReadOffset,
    /// A record once fetched never disappears or changes.
    FetchedNeverDisappears,
    /// Uncommitted records are never served.
    OnlyCommittedServed,
    /// A partition's high watermark never decreases.
    HighWatermarkMonotonic,
    /// Once everything is healed, every client finishes and the log reads back.
    Liveness,
    /// A node recovers from every crash the fault model allows.
    Recovery,
    /// What a scenario promises beyond the invariants (S01: every record consumed once, ...).
    Scenario,
    /// 5: once the network heals, every replica holds the same committed log, commit index and
    /// high watermarks.
    Converged,
    /// At most one leader per term.
    OneLeaderPerTerm,
    /// Entries with the same index and term on two replicas are the same entry.
    LogMatching,
    /// A leader holds every entry committed before its term.
    LeaderCompleteness,
    /// An entry once committed never changes, on any replica.
    CommittedPrefixStable,
    /// A leader commits by counting replicas only entries of its own term (Raft §5.4.2): its
    /// commit index moves only once an entry of its term is on a majority.
    CommitOwnTerm,
    /// A vote leaves only once the term and the vote are durable.
    VoteDurable,
    /// A leader cut off from every majority steps down within a bound (CheckQuorum).
    StrandedLeaderStepsDown,
    /// A working leader (in a healthy, fully connected majority, nothing disturbed for a while)
    /// is not deposed: a node that hears it refuses to vote (leader stickiness).
    WorkingLeaderKept,
    /// A replica acknowledges only entries durable in its WAL.
    ReplicaAckDurable,
    /// A node cut off from every majority does not raise its term past the cluster's (PreVote):
    /// when it returns, it cannot depose a working leader.
    NoTermInflation,
    /// 6: the WAL is trimmed only below what confirmed objects hold: every trimmed entry is in
    /// an object the store confirmed, whose bytes decode (CRC-checked) to exactly that entry,
    /// and no replica trims past its own commit index.
    TrimmedInStore,
    /// A manifest entry names an object only once the store confirmed its PUT.
    ManifestAfterConfirm,
    /// An object a manifest names is never deleted from the store.
    ManifestObjectKept,
    /// A manifest's objects hold each entry once: contiguous from index 1, none overlapping,
    /// so no range is served from two objects.
    ManifestChain,
    /// A fetch answers at most the records the node's cap allows, and a leader serves only once
    /// an entry of its own term has committed (before, its commit index may lag).
    FetchContract,
    /// A group's committed offset never goes back, and an acked commit is never lost.
    GroupOffsets,
    /// No record below a group's committed offset went undelivered to the group.
    GroupNoSkip,
    /// A group's generations never go back, and a commit is accepted only from the current one.
    GroupGeneration,
}

impl Invariant {
    /// The seed ticket's number for the first six; `None` for the others.
    pub fn number(self) -> Option<u8> {
        match self {
            Invariant::AckedDurable => Some(1),
            Invariant::Contiguous => Some(2),
            Invariant::CrcIntegrity => Some(3),
            Invariant::Converged => Some(5),
            Invariant::TrimmedInStore => Some(6),
            Invariant::GroupOffsets | Invariant::GroupNoSkip => Some(4),
            _ => None,
        }
    }

    /// A short statement of the invariant.
    pub fn statement(self) -> &'static str {
        match self {
            Invariant::AckedDurable => "no acked record is ever lost",
            Invariant::Contiguous => "offsets are contiguous, without gaps",
            Invariant::CrcIntegrity => "every record served is the one produced at that offset",
            Invariant::NoDuplicates => "one producer sequence at one offset only",
            Invariant::NoPhantoms => "no phantom records",
            Invariant::AckedOffsetIsReadOffset => "the acked offset is the read offset",
            Invariant::FetchedNeverDisappears => "a fetched record never disappears",
            Invariant::OnlyCommittedServed => "uncommitted records are never served",
            Invariant::HighWatermarkMonotonic => "a high watermark never decreases",
            Invariant::Liveness => "no stuck client once healed",
            Invariant::Recovery => "a node recovers from every crash",
            Invariant::Scenario => "the scenario's own expectation holds",
            Invariant::Converged => "after the heal, replicas converge",
            Invariant::OneLeaderPerTerm => "at most one leader per term",
            Invariant::LogMatching => "same index and term, same entry",
            Invariant::LeaderCompleteness => "a leader holds every committed entry",
            Invariant::CommittedPrefixStable => "the committed prefix never changes",
            Invariant::NoTermInflation => "a cut-off node does not inflate its term",
            Invariant::CommitOwnTerm => "a leader commits only through an entry of its term",
            Invariant::VoteDurable => "a vote is durable before it is sent",
            Invariant::StrandedLeaderStepsDown => "a stranded leader steps down",
            Invariant::WorkingLeaderKept => "a working leader is not deposed",
            Invariant::ReplicaAckDurable => "a replica acknowledges only durable entries",
            Invariant::TrimmedInStore => {
                "the WAL is trimmed only below what the object store confirmed"
            }
            Invariant::ManifestAfterConfirm => {
                "a manifest entry names only an object the store confirmed"
            }
            Invariant::ManifestObjectKept => "an object a manifest names is never deleted",
            Invariant::ManifestChain => "a manifest's objects hold each entry once, in order",
            Invariant::FetchContract => "a fetch is answered within the fetch contract",
            Invariant::GroupOffsets => {
                "consumer group offsets never regress, and an acked commit is never lost"
            }
            Invariant::GroupNoSkip => "a consumer group skips no record",
            Invariant::GroupGeneration => {
                "generations never go back, and a commit is accepted only from the current one"
            }
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number() {
            Some(n) => write!(f, "invariant {n} violated: {}", self.statement()),
            None => write!(f, "invariant violated: {}", self.statement()),
        }
    }
}

/// A broken invariant: what was expected and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// The subject, e.g. `partition 0 offset 41, acked to p1 (seq 12)`.
    pub subject: String,
    /// What must have been.
    pub expected: String,
    /// What was.
    pub actual: String,
}

impl Violation {
    /// A violation of `invariant` about `subject`.
    pub fn new(
        invariant: Invariant,
        subject: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Violation {
        Violation {
            invariant,
            subject: subject.into(),
            expected: expected.into(),
            actual: actual.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.invariant)?;
        writeln!(f, "  {}", self.subject)?;
        writeln!(f, "  expected: {}", self.expected)?;
        write!(f, "  actual:   {}", self.actual)
    }
}
