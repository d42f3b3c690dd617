//! The reference state machine of a three-node cluster: the same model and vocabulary as one
//! node, with partitions, clogged links, pauses and node-to-node faults proposed too.

use crate::cluster::{cluster_reference, ClusterModel, ClusterShape};
use crate::transition::Transition;
use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;

impl ClusterShape {
    /// Three nodes, two partitions, three producers, two consumers.
    pub const THREE_NODES: ClusterShape = ClusterShape {
        nodes: 3,
        partitions: 2,
        producers: 3,
        consumers: 2,
        members: 2,
    };
}

/// The reference state machine of a three-node cluster.
pub struct ThreeNodeCluster;

cluster_reference!(ThreeNodeCluster, ClusterShape::THREE_NODES);

/// The reference state machine of a three-node cluster that tiers its log to an object store.
pub struct TieredCluster;

cluster_reference!(
    TieredCluster,
    ClusterShape::THREE_NODES,
    ClusterModel::with_store
);

/// The reference state machine of a three-node cluster whose test is about its consumer group:
/// the same faults, with the group's members acting most of the time.
pub struct GroupCluster;

cluster_reference!(
    GroupCluster,
    ClusterShape::THREE_NODES,
    ClusterModel::with_group_focus
);
