//! The reference state machine: the cluster as the test sees it, never its outcomes.

use crate::transition::Transition;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest_state_machine::ReferenceStateMachine;
use std::fmt;

/// How big the simulated cluster is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterShape {
    /// Replicas.
    pub nodes: u8,
    /// Partitions.
    pub partitions: u8,
    /// Producer clients.
    pub producers: u8,
    /// Consumer clients.
    pub consumers: u8,
}

impl ClusterShape {
    /// One node, two partitions, three producers, two consumers.
    pub const SINGLE_NODE: ClusterShape = ClusterShape {
        nodes: 1,
        partitions: 2,
        producers: 3,
        consumers: 2,
    };
}

/// The most latent corruptions one case injects; more add little and drown the log in holes.
const MAX_CORRUPTIONS: u8 = 3;

/// What the test knows of the cluster: which nodes are up, which disks are full, how bad the
/// network is. The transition strategy uses it to propose only meaningful transitions.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterModel {
    /// The cluster's shape.
    pub shape: ClusterShape,
    /// The run's seed: it picks latencies and everything no transition names.
    pub seed: u64,
    /// Per node: is its process running.
    pub up: Vec<bool>,
    /// Per node: is its disk full.
    pub disk_full: Vec<bool>,
    /// Percent of messages lost.
    pub loss: u8,
    /// Percent of messages duplicated.
    pub dup: u8,
    /// Latent corruptions injected so far (misdirected writes included).
    pub corruptions: u8,
    /// Misdirected writes injected so far.
    pub misdirects: u8,
    /// Whether the runner can tell a node that refuses to start after injected damage (a typed
    /// outcome: it stays down) from a disagreement with this model. Only then are the faults that
    /// can make a node refuse proposed: header flips and misdirected writes. The model-based test
    /// compares each node's up/down state with `up` and cannot yet; swarm runs can.
    pub may_refuse: bool,
}

impl fmt::Debug for ClusterModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[bool]| {
            v.iter()
                .enumerate()
                .filter(|(_, b)| **b)
                .map(|(i, _)| format!("n{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(
            f,
            "cluster seed={} up=[{}] full=[{}] loss={}% dup={}%",
            self.seed,
            list(&self.up),
            list(&self.disk_full),
            self.loss,
            self.dup
        )
    }
}

impl ClusterModel {
    /// A healthy cluster of `shape` for run `seed`.
    pub fn new(shape: ClusterShape, seed: u64) -> ClusterModel {
        ClusterModel {
            shape,
            seed,
            up: vec![true; shape.nodes as usize],
            disk_full: vec![false; shape.nodes as usize],
            loss: 0,
            dup: 0,
            corruptions: 0,
            misdirects: 0,
            may_refuse: false,
        }
    }

    /// The same cluster, with the faults that can make a node refuse to start proposed too.
    pub fn with_refusals(mut self) -> ClusterModel {
        self.may_refuse = true;
        self
    }

    /// Whether `t` can be applied in this state: its ids are in range, and the corruption budget
    /// is not spent. A transition that has become pointless (restart a node that is up, free a
    /// disk that has room) is allowed and does nothing, so the shrinker can delete any single
    /// transition of a pair; [`ClusterModel::transition_strategy`] only proposes meaningful ones.
    pub fn allows(&self, t: &Transition) -> bool {
        let node_ok = |n: u8| n < self.shape.nodes;
        match *t {
            Transition::Produce {
                producer,
                partition,
                records,
                ..
            } => {
                producer < self.shape.producers && partition < self.shape.partitions && records > 0
            }
            Transition::Fetch {
                consumer,
                partition,
                ..
            } => consumer < self.shape.consumers && partition < self.shape.partitions,
            Transition::Run { ms, .. } => ms > 0,
            Transition::CrashDuring {
                node, calls, power, ..
            } => node_ok(node) && (1..=8).contains(&calls) && power <= 1,
            Transition::Crash { node, .. }
            | Transition::PowerLoss { node, .. }
            | Transition::Restart { node, .. }
            | Transition::DiskFull { node, .. }
            | Transition::DiskFree { node, .. }
            | Transition::DiskError { node, .. }
            | Transition::Misread { node, .. } => node_ok(node),
            Transition::Corrupt { node, .. } | Transition::Misdirect { node, .. } => {
                node_ok(node) && self.corruptions < MAX_CORRUPTIONS
            }
            Transition::Network { loss, dup, .. } => loss <= 50 && dup <= 50,
        }
    }

    /// Checks that each transition of `script` can be applied in turn, from this state. `Err`
    /// gives the index of the first that cannot (an id out of range, say).
    pub fn check_script(mut self, script: &[Transition]) -> Result<(), usize> {
        for (i, t) in script.iter().enumerate() {
            if !self.allows(t) {
                return Err(i);
            }
            self.apply(t);
        }
        Ok(())
    }

    /// The state after `t`.
    pub fn apply(&mut self, t: &Transition) {
        match *t {
            Transition::Crash { node, .. } | Transition::PowerLoss { node, .. } => {
                self.up[node as usize] = false
            }
            Transition::Restart { node, .. } => self.up[node as usize] = true,
            Transition::DiskFull { node, .. } => self.disk_full[node as usize] = true,
            Transition::DiskFree { node, .. } => self.disk_full[node as usize] = false,
            Transition::Corrupt { .. } => self.corruptions += 1,
            Transition::Misdirect { .. } => {
                self.corruptions += 1;
                self.misdirects = self.misdirects.saturating_add(1);
            }
            // A crash inside an operation of an up node: its supervisor restarts it. Armed on a
            // down node, it lands in the next restart, which the harness then tries again.
            Transition::CrashDuring { .. } => {}
            // A misread is transient: the node reads again and nothing changes.
            Transition::Misread { .. } => {}
            Transition::Network { loss, dup, .. } => {
                self.loss = loss;
                self.dup = dup;
            }
            // A disk error stops the node; its supervisor restarts it at once.
            Transition::Produce { .. }
            | Transition::Fetch { .. }
            | Transition::Run { .. }
            | Transition::DiskError { .. } => {}
        }
    }

    fn nodes_where(&self, pred: impl Fn(usize) -> bool) -> Vec<u8> {
        (0..self.shape.nodes)
            .filter(|&n| pred(n as usize))
            .collect()
    }

    /// A strategy for the transitions that make sense now, weighted towards operations.
    pub fn transition_strategy(&self) -> BoxedStrategy<Transition> {
        let s = self.shape;
        let seed = any::<u16>();
        let mut options: Vec<(u32, BoxedStrategy<Transition>)> = vec![
            (
                30,
                (0..s.producers, 0..s.partitions, 1u8..=6, seed)
                    .prop_map(|(producer, partition, records, seed)| Transition::Produce {
                        producer,
                        partition,
                        records,
                        seed,
                    })
                    .boxed(),
            ),
            (
                15,
                (0..s.consumers, 0..s.partitions, seed)
                    .prop_map(|(consumer, partition, seed)| Transition::Fetch {
                        consumer,
                        partition,
                        seed,
                    })
                    .boxed(),
            ),
            (
                25,
                (1u16..=60, seed)
                    .prop_map(|(ms, seed)| Transition::Run { ms, seed })
                    .boxed(),
            ),
            (
                3,
                (0u8..=30, 0u8..=20, seed)
                    .prop_map(|(loss, dup, seed)| Transition::Network { loss, dup, seed })
                    .boxed(),
            ),
        ];
        // A crash inside the next few disk calls, of an up node or of the next restart.
        options.push((
            3,
            (
                proptest::sample::select(self.nodes_where(|_| true)),
                1u8..=8,
                0u8..=1,
                seed,
            )
                .prop_map(|(node, calls, power, seed)| Transition::CrashDuring {
                    node,
                    calls,
                    power,
                    seed,
                })
                .boxed(),
        ));
        let mut per_node = |weight: u32, nodes: Vec<u8>, make: fn(u8, u16) -> Transition| {
            if !nodes.is_empty() {
                options.push((
                    weight,
                    (proptest::sample::select(nodes), seed)
                        .prop_map(move |(n, sd)| make(n, sd))
                        .boxed(),
                ));
            }
        };
        per_node(4, self.nodes_where(|n| self.up[n]), |node, seed| {
            Transition::Crash { node, seed }
        });
        // A power loss also hits a crashed node: its page cache may still hold unsynced bytes.
        per_node(2, self.nodes_where(|_| true), |node, seed| {
            Transition::PowerLoss { node, seed }
        });
        per_node(8, self.nodes_where(|n| !self.up[n]), |node, seed| {
            Transition::Restart { node, seed }
        });
        per_node(2, self.nodes_where(|n| !self.disk_full[n]), |node, seed| {
            Transition::DiskFull { node, seed }
        });
        per_node(6, self.nodes_where(|n| self.disk_full[n]), |node, seed| {
            Transition::DiskFree { node, seed }
        });
        per_node(2, self.nodes_where(|n| self.up[n]), |node, seed| {
            Transition::DiskError { node, seed }
        });
        // On a down node the misread lands in the recovery of its next restart.
        per_node(2, self.nodes_where(|_| true), |node, seed| {
            Transition::Misread { node, seed }
        });
        if self.corruptions < MAX_CORRUPTIONS {
            if self.may_refuse {
                per_node(2, self.nodes_where(|_| true), |node, seed| {
                    Transition::Corrupt { node, seed }
                });
                // At most one per case: the damage usually makes the next restart refuse.
                if self.misdirects == 0 {
                    per_node(1, self.nodes_where(|n| self.up[n]), |node, seed| {
                        Transition::Misdirect { node, seed }
                    });
                }
            } else {
                // Payload flips only: a seed that would pick the header is moved off it.
                per_node(2, self.nodes_where(|_| true), |node, seed| {
                    let t = Transition::Corrupt { node, seed };
                    Transition::Corrupt {
                        node,
                        seed: if t.corrupts_header() { seed - 1 } else { seed },
                    }
                });
            }
        }
        Union::new_weighted(options).boxed()
    }
}

/// The reference state machine of a single-node cluster.
pub struct SingleNodeCluster;

impl ReferenceStateMachine for SingleNodeCluster {
    type State = ClusterModel;
    type Transition = Transition;

    /// Header flips and misdirected writes are proposed too: a node that then refuses to
    /// start is a typed outcome of the simulator, which the test accepts.
    fn init_state() -> BoxedStrategy<ClusterModel> {
        any::<u64>()
            .prop_map(|seed| ClusterModel::new(ClusterShape::SINGLE_NODE, seed).with_refusals())
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
