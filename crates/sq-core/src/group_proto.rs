//! The consumer-group protocol: join, heartbeat, leave, commit and fetch-offset, and the
//! answers. Every error says whether it is definite, as the produce and fetch errors do.

use crate::ids::{GroupId, MemberId, NodeId, Offset, PartitionId};
use crate::proto::Definiteness;
use thiserror::Error;

/// A request about a consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRequest {
    /// Join `group` (or rejoin it): the answer is the generation and the member's partitions.
    Join {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
    },
    /// The member is alive; the answer says whether its generation is still current.
    Heartbeat {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
        /// The generation the member believes current.
        generation: u64,
    },
    /// Leave `group`: a new generation without the member.
    Leave {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
    },
    /// Commit `offset` (the next record to consume) of `partition` for `group`.
    Commit {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
        /// The generation the member joined in.
        generation: u64,
        /// The partition.
        partition: PartitionId,
        /// The next offset to consume.
        offset: Offset,
    },
    /// The group's committed offset of `partition`.
    FetchOffset {
        /// The group.
        group: GroupId,
        /// The partition.
        partition: PartitionId,
    },
}

/// What a group request achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupOk {
    /// The member is in the group in `generation`, owning `partitions`.
    Joined {
        /// The generation.
        generation: u64,
        /// The partitions assigned to the member in it (possibly none).
        partitions: Vec<PartitionId>,
    },
    /// The heartbeat was taken: the member's generation is current.
    Alive,
    /// The member left.
    Left,
    /// The offset is committed.
    Committed,
    /// The committed offset (`None`: the group never committed this partition).
    Offset {
        /// The committed offset.
        offset: Option<Offset>,
    },
}

/// Why a group request did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GroupError {
    /// The member is not in the group (it never joined, left, or was expelled): rejoin.
    #[error("{member} is not a member of {group}")]
    UnknownMember {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
    },
    /// The member's generation is not the group's current one: rejoin.
    #[error("generation {sent} is stale: {group} is in generation {current}")]
    StaleGeneration {
        /// The group.
        group: GroupId,
        /// The generation sent.
        sent: u64,
        /// The group's current generation.
        current: u64,
    },
    /// The partition is not assigned to the member in its generation.
    #[error("{partition} is not assigned to {member}")]
    NotAssigned {
        /// The member.
        member: MemberId,
        /// The partition.
        partition: PartitionId,
    },
    /// The offset is below the group's committed offset: committed offsets never go back.
    #[error("offset {offset} is below the committed offset {committed}")]
    OffsetRegression {
        /// The offset sent.
        offset: Offset,
        /// The committed offset.
        committed: Offset,
    },
    /// The offset is past the partition's end.
    #[error("offset {offset} is past the end {end} of the partition")]
    OffsetOutOfRange {
        /// The offset sent.
        offset: Offset,
        /// The offset the next record of the partition gets.
        end: Offset,
    },
    /// No such partition.
    #[error("{0} does not exist")]
    UnknownPartition(PartitionId),
    /// The node has no room to record the operation: nothing was recorded.
    #[error("storage full: nothing was recorded")]
    StorageFull,
    /// The node is not the leader: nothing was recorded.
    #[error("not the leader (leader: {})", leader.map_or("unknown".to_string(), |n| n.to_string()))]
    NotLeader {
        /// The leader this node last heard from in its current term.
        leader: Option<NodeId>,
    },
    /// The node could not make the operation durable; it may or may not be in the log.
    #[error("storage failed while recording: {0}")]
    StorageFailed(String),
    /// The node is recovering or shutting down; it may still commit the operation.
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// The node lost office before the operation committed; a later leader may commit it.
    #[error("leadership changed before the operation committed; it may still commit")]
    LeaderChanged,
}

impl GroupError {
    /// Whether the operation is known not to have taken effect.
    pub fn definiteness(&self) -> Definiteness {
        match self {
            GroupError::UnknownMember { .. }
            | GroupError::StaleGeneration { .. }
            | GroupError::NotAssigned { .. }
            | GroupError::OffsetRegression { .. }
            | GroupError::OffsetOutOfRange { .. }
            | GroupError::UnknownPartition(_)
            | GroupError::StorageFull
            | GroupError::NotLeader { .. } => Definiteness::Definite,
            GroupError::StorageFailed(_)
            | GroupError::Unavailable(_)
            | GroupError::LeaderChanged => Definiteness::Indeterminate,
        }
    }

    /// Whether the member must rejoin before its next commit can succeed.
    pub fn needs_rejoin(&self) -> bool {
        matches!(
            self,
            GroupError::UnknownMember { .. }
                | GroupError::StaleGeneration { .. }
                | GroupError::NotAssigned { .. }
        )
    }
}

impl std::fmt::Display for GroupRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupRequest::Join { group, member } => write!(f, "join {group} as {member}"),
            GroupRequest::Heartbeat {
                group,
                member,
                generation,
            } => write!(f, "heartbeat {group} {member} gen {generation}"),
            GroupRequest::Leave { group, member } => write!(f, "leave {group} as {member}"),
            GroupRequest::Commit {
                group,
                member,
                generation,
                partition,
                offset,
            } => write!(
                f,
                "commit {group} {member} gen {generation} {partition} @ {offset}"
            ),
            GroupRequest::FetchOffset { group, partition } => {
                write!(f, "fetch-offset {group} {partition}")
            }
        }
    }
}

impl std::fmt::Display for GroupOk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupOk::Joined {
                generation,
                partitions,
            } => {
                let ps: Vec<String> = partitions.iter().map(|p| p.0.to_string()).collect();
                write!(f, "joined gen {generation} partitions [{}]", ps.join(","))
            }
            GroupOk::Alive => write!(f, "alive"),
            GroupOk::Left => write!(f, "left"),
            GroupOk::Committed => write!(f, "committed"),
            GroupOk::Offset { offset: Some(o) } => write!(f, "committed offset {o}"),
            GroupOk::Offset { offset: None } => write!(f, "no committed offset"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn rejoin_errors_are_definite() {
        let stale = GroupError::StaleGeneration {
            group: GroupId(0),
            sent: 1,
            current: 2,
        };
        assert!(stale.needs_rejoin());
        assert_eq!(stale.definiteness(), Definiteness::Definite);
        assert_eq!(
            stale.to_string(),
            "generation 1 is stale: g0 is in generation 2"
        );
        assert!(!GroupError::LeaderChanged.needs_rejoin());
        assert_eq!(
            GroupError::LeaderChanged.definiteness(),
            Definiteness::Indeterminate
        );
    }
}
