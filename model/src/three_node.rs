//! The reference state machine of a three-node cluster: the same model and vocabulary as one
//! node, with partitions, clogged links, pauses and node-to-node faults proposed too.

use crate::cluster::{ClusterModel, ClusterShape};
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
    };
}

/// The reference state machine of a three-node cluster.
pub struct ThreeNodeCluster;

impl ReferenceStateMachine for ThreeNodeCluster {
    type State = ClusterModel;
    type Transition = Transition;

    /// Header flips and misdirected writes are proposed: a replica repairs what they damage
    /// from its peers (one replica's storage may lie per run, as the simulator's fault atlas
    /// keeps it).
    fn init_state() -> BoxedStrategy<ClusterModel> {
        any::<u64>()
            .prop_map(|seed| ClusterModel::new(ClusterShape::THREE_NODES, seed).with_refusals())
            .boxed()
    }

    fn transitions(state: &ClusterModel) -> BoxedStrategy<Transition> {
        state.transition_strategy()
    }

    fn apply(mut state: ClusterModel, t: &Transition) -> ClusterModel {
        state.apply(t);
        state
    }

    fn preconditions(state: &ClusterModel, t: &Transition) -> bool {
        state.allows(t)
    }
}
