//! Consumer-group operations as the replicated log carries them.
//!
//! A group's state (its generation, members and committed offsets) is a pure function of the
//! group entries in the log, so every replica rebuilds it, and a new leader knows every group
//! (Kafka keeps the same state in `__consumer_offsets`). An operation is written into the
//! fields of the frame header ([`BatchMeta`]), CRC-checked with it; the payload is empty.

use crate::codec::BatchMeta;
use crate::ids::{GroupId, MemberId, Offset, PartitionId};
use std::fmt;

/// One group operation, as appended by the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupOp {
    /// `member` joins `group` (a member already in it rejoins: nothing changes).
    Join {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
    },
    /// `member` leaves `group`.
    Leave {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
    },
    /// The leader expelled `member`: no heartbeat within the session timeout.
    Expire {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
    },
    /// `member`, in `generation`, commits `offset` (the next record to consume) of `partition`.
    Commit {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
        /// The generation the member committed in.
        generation: u64,
        /// The partition.
        partition: PartitionId,
        /// The next offset to consume.
        offset: Offset,
    },
    /// A read of `group`'s committed offset of `partition`: changes nothing; the answer is the
    /// state at this entry, given once it commits, so a read never sees a stale leader's state.
    Read {
        /// The group.
        group: GroupId,
        /// The partition.
        partition: PartitionId,
    },
}

/// Why header fields are not a group operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown group operation code {0}")]
pub struct UnknownGroupOp(pub u32);

impl GroupOp {
    /// The group the operation is about.
    pub fn group(&self) -> GroupId {
        match *self {
            GroupOp::Join { group, .. }
            | GroupOp::Leave { group, .. }
            | GroupOp::Expire { group, .. }
            | GroupOp::Commit { group, .. }
            | GroupOp::Read { group, .. } => group,
        }
    }

    /// The header fields that carry the operation: `count` is its code, `epoch` the group,
    /// `producer` the member, `seq` the generation, `partition` and `base_offset` the offset
    /// committed.
    pub fn to_meta(&self) -> BatchMeta {
        let (code, group, member, generation, partition, offset) = match *self {
            GroupOp::Join { group, member } => (1, group, member.0, 0, 0, 0),
            GroupOp::Leave { group, member } => (2, group, member.0, 0, 0, 0),
            GroupOp::Expire { group, member } => (3, group, member.0, 0, 0, 0),
            GroupOp::Commit {
                group,
                member,
                generation,
                partition,
                offset,
            } => (4, group, member.0, generation, partition.0, offset),
            GroupOp::Read { group, partition } => (5, group, 0, 0, partition.0, 0),
        };
        BatchMeta {
            partition,
            base_offset: offset,
            count: code,
            producer: u64::from(member),
            epoch: group.0,
            seq: generation,
        }
    }

    /// The operation [`GroupOp::to_meta`] wrote into `m`.
    pub fn from_meta(m: &BatchMeta) -> Result<GroupOp, UnknownGroupOp> {
        let group = GroupId(m.epoch);
        // Members are u32; a wider value is not one this codec wrote.
        let member = u32::try_from(m.producer)
            .map(MemberId)
            .map_err(|_| UnknownGroupOp(m.count))?;
        Ok(match m.count {
            1 => GroupOp::Join { group, member },
            2 => GroupOp::Leave { group, member },
            3 => GroupOp::Expire { group, member },
            4 => GroupOp::Commit {
                group,
                member,
                generation: m.seq,
                partition: PartitionId(m.partition),
                offset: m.base_offset,
            },
            5 => GroupOp::Read {
                group,
                partition: PartitionId(m.partition),
            },
            code => return Err(UnknownGroupOp(code)),
        })
    }
}

/// One line for traces: `join g0 m1`, `commit g0 m1 gen 3 partition 0 @ 12`.
impl fmt::Display for GroupOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GroupOp::Join { group, member } => write!(f, "join {group} {member}"),
            GroupOp::Leave { group, member } => write!(f, "leave {group} {member}"),
            GroupOp::Expire { group, member } => write!(f, "expire {group} {member}"),
            GroupOp::Commit {
                group,
                member,
                generation,
                partition,
                offset,
            } => write!(
                f,
                "commit {group} {member} gen {generation} {partition} @ {offset}"
            ),
            GroupOp::Read { group, partition } => write!(f, "read-offset {group} {partition}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn every_operation_round_trips_through_the_header() {
        let (g, m) = (GroupId(7), MemberId(3));
        let ops = [
            GroupOp::Join {
                group: g,
                member: m,
            },
            GroupOp::Leave {
                group: g,
                member: m,
            },
            GroupOp::Expire {
                group: g,
                member: m,
            },
            GroupOp::Commit {
                group: g,
                member: m,
                generation: 9,
                partition: PartitionId(2),
                offset: 41,
            },
            GroupOp::Read {
                group: g,
                partition: PartitionId(1),
            },
        ];
        for op in ops {
            assert_eq!(GroupOp::from_meta(&op.to_meta()), Ok(op));
        }
        let bad = BatchMeta {
            count: 9,
            ..BatchMeta::default()
        };
        assert_eq!(GroupOp::from_meta(&bad), Err(UnknownGroupOp(9)));
    }
}
