//! The reference state machine: the cluster as the test sees it, never its outcomes.

use crate::transition::{Cut, GroupAction, Transition};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest_state_machine::ReferenceStateMachine;
use std::collections::{BTreeMap, BTreeSet};
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
    /// Members of the one consumer group (group consumer clients).
    pub members: u8,
}

impl ClusterShape {
    /// One node, two partitions, three producers, two consumers.
    pub const SINGLE_NODE: ClusterShape = ClusterShape {
        nodes: 1,
        partitions: 2,
        producers: 3,
        consumers: 2,
        members: 2,
    };
}

/// The most latent corruptions one case injects; more add little and drown the log in holes.
const MAX_CORRUPTIONS: u8 = 3;

/// The most flips of stored objects one case injects: each loses what only that object holds.
const MAX_STORE_CORRUPTIONS: u8 = 1;

/// What the test knows of the cluster: which nodes are up, which disks are full, how bad the
/// network is, how it is split, which nodes are paused. The transition strategy uses it to
/// propose only meaningful transitions.
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
    /// The partition in force, if any (a new one replaces it; `heal-net` ends it).
    pub partition: Option<Cut>,
    /// Slow links: extra milliseconds per message from one node to another.
    pub clogs: BTreeMap<(u8, u8), u16>,
    /// The time the `run` transitions have let pass, ms. The simulator's clock is at least this
    /// far on (other transitions take time too), so a pause the model sees as over is over.
    pub elapsed_ms: u64,
    /// Per node: until when (in `elapsed_ms`) its process is paused, if it is.
    pub paused_until_ms: Vec<Option<u64>>,
    /// Whether the cluster tiers its log to an object store (store faults are proposed then).
    pub store: bool,
    /// Whether the store is unreachable.
    pub store_down: bool,
    /// The store's error rate, per mille.
    pub store_errors: u16,
    /// Latent flips injected into stored objects so far.
    pub store_corruptions: u8,
    /// How often group consumers act, against the other transitions' weights (about 100).
    pub group_weight: u32,
    /// How often time passes (`run`), against the other transitions' weights.
    pub run_weight: u32,
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
        )?;
        // Only what is in force, so a single-node state prints as it always did.
        if let Some(cut) = self.partition {
            write!(f, " partition=[{cut}]")?;
        }
        for ((from, to), ms) in &self.clogs {
            write!(f, " clog=n{from}->n{to}+{ms}ms")?;
        }
        for (n, until) in self.paused_until_ms.iter().enumerate() {
            if let Some(until) = until {
                write!(f, " paused=n{n}..{until}ms")?;
            }
        }
        if self.store {
            let state = if self.store_down { "down" } else { "up" };
            write!(f, " store={state} errors={}‰", self.store_errors)?;
        }
        Ok(())
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
            partition: None,
            clogs: BTreeMap::new(),
            elapsed_ms: 0,
            paused_until_ms: vec![None; shape.nodes as usize],
            store: false,
            store_down: false,
            store_errors: 0,
            store_corruptions: 0,
            group_weight: 12,
            run_weight: 25,
        }
    }

    /// A cluster whose test is about its consumer group: group consumers act most of the time,
    /// so that a member commits after another's join changed the generation, or after a
    /// failover, in a typical case.
    pub fn with_group_focus(mut self) -> ClusterModel {
        // A member's next operation waits for its last: time must pass between them.
        self.group_weight = 120;
        self.run_weight = 120;
        self
    }

    /// The same cluster with an object store: store outages, errors, lost replies and flips are
    /// proposed too.
    pub fn with_store(mut self) -> ClusterModel {
        self.store = true;
        self
    }

    /// The same cluster, with the faults that can make a node refuse to start proposed too.
    pub fn with_refusals(mut self) -> ClusterModel {
        self.may_refuse = true;
        self
    }

    /// Whether `t` can be applied in this state: its ids are in range, and the corruption budget
    /// is not spent; network faults and pauses need more than one node. A transition that has
    /// become pointless (restart a node that is up, free a disk that has room, heal a network
    /// that is whole, pause a node that is down) is allowed and does nothing, so the shrinker
    /// can delete any single transition of a pair; [`ClusterModel::transition_strategy`] only
    /// proposes meaningful ones.
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
            Transition::Partition { cut, .. } => {
                self.shape.nodes > 1 && cut.valid(self.shape.nodes)
            }
            Transition::Clog { from, to, ms, .. } => {
                self.shape.nodes > 1 && node_ok(from) && node_ok(to) && from != to && ms > 0
            }
            Transition::HealNet { .. } => self.shape.nodes > 1,
            Transition::Pause { node, ms, .. } => self.shape.nodes > 1 && node_ok(node) && ms > 0,
            Transition::StoreOutage { .. }
            | Transition::StoreRestore { .. }
            | Transition::StoreLostReply { .. } => self.store,
            Transition::StoreErrors { rate, .. } => self.store && rate <= 300,
            Transition::StoreCorrupt { .. } => {
                self.store && self.store_corruptions < MAX_STORE_CORRUPTIONS
            }
            Transition::Group { member, .. } => member < self.shape.members,
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
            // A crash ends a pause: the restarted process was never paused.
            Transition::Crash { node, .. } | Transition::PowerLoss { node, .. } => {
                self.up[node as usize] = false;
                self.paused_until_ms[node as usize] = None;
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
            Transition::Partition { cut, .. } => self.partition = Some(cut),
            Transition::Clog { from, to, ms, .. } => {
                self.clogs.insert((from, to), ms);
            }
            Transition::HealNet { .. } => {
                self.partition = None;
                self.clogs.clear();
            }
            // A second pause of a paused node ends when the later of the two would.
            Transition::Pause { node, ms, .. } => {
                if self.up[node as usize] {
                    let until = self.elapsed_ms + u64::from(ms);
                    let p = &mut self.paused_until_ms[node as usize];
                    *p = Some(p.map_or(until, |u| u.max(until)));
                }
            }
            Transition::Run { ms, .. } => {
                self.elapsed_ms += u64::from(ms);
                let now = self.elapsed_ms;
                for p in &mut self.paused_until_ms {
                    if p.is_some_and(|until| until <= now) {
                        *p = None;
                    }
                }
            }
            Transition::StoreOutage { .. } => self.store_down = true,
            Transition::StoreRestore { .. } => self.store_down = false,
            Transition::StoreErrors { rate, .. } => self.store_errors = rate,
            Transition::StoreCorrupt { .. } => self.store_corruptions += 1,
            // A disk error stops the node; its supervisor restarts it at once.
            Transition::StoreLostReply { .. }
            | Transition::Group { .. }
            | Transition::Produce { .. }
            | Transition::Fetch { .. }
            | Transition::DiskError { .. } => {}
        }
    }

    /// Whether node `n` is up and not paused, as far as the model knows.
    fn live(&self, n: u8) -> bool {
        self.up[n as usize] && self.paused_until_ms[n as usize].is_none()
    }

    /// The up, unpaused nodes that form a majority and all reach each other both ways (clogged
    /// links are slow, not cut), if such a set exists: the largest, and of those the one with
    /// the lowest ids. Liveness checks ask it whether the cluster must make progress.
    ///
    /// `isolated_leader` is the node a `partition isolate-leader` cut off, as the harness
    /// resolved it (the model never sees who leads); it is ignored under other partitions.
    /// Unknown (`None`) under `isolate-leader`, any node may be the one, and the answer is the
    /// set that every choice gives (`None` unless they all agree). A pause counts until the
    /// model's own clock says it ended: the simulator's is never behind it, so a node this sees
    /// paused may have resumed, never the other way round. Exhaustive: meant for a few nodes.
    pub fn connected_majority(&self, isolated_leader: Option<u8>) -> Option<Vec<u8>> {
        let candidates: Vec<u8> = match (self.partition, isolated_leader) {
            (Some(Cut::IsolateLeader), None) => (0..self.shape.nodes).collect(),
            (_, leader) => vec![leader.unwrap_or(0)],
        };
        let answers: BTreeSet<Option<Vec<u8>>> = candidates
            .into_iter()
            .map(|leader| self.majority_given(leader))
            .collect();
        match answers.len() {
            1 => answers.into_iter().next().flatten(),
            _ => None,
        }
    }

    /// [`ClusterModel::connected_majority`] with the isolated leader known.
    fn majority_given(&self, leader: u8) -> Option<Vec<u8>> {
        let nodes = self.shape.nodes;
        let cut = self
            .partition
            .map(|c| c.links(nodes, leader))
            .unwrap_or_default();
        let live = self.nodes_where(|n| self.live(n as u8));
        let connected = |a: u8, b: u8| !cut.contains(&(a, b)) && !cut.contains(&(b, a));
        let need = usize::from(nodes) / 2 + 1;
        // Every subset of the live nodes, as a bit mask over `live`.
        let mut best: Option<Vec<u8>> = None;
        for mask in 0u64..(1u64 << live.len().min(63)) {
            let set: Vec<u8> = live
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, &n)| n)
                .collect();
            let clique = set
                .iter()
                .enumerate()
                .all(|(i, &a)| set[i + 1..].iter().all(|&b| connected(a, b)));
            let better = match &best {
                None => true,
                Some(b) => set.len() > b.len() || (set.len() == b.len() && set < *b),
            };
            if clique && set.len() >= need && better {
                best = Some(set);
            }
        }
        best
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
                self.run_weight,
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
        if s.members > 0 && self.group_weight > 0 {
            // Mostly the consumer's own loop (fetch, commit), now and then a rejoin, a read of
            // the committed offset, a leave, a crash or a stall.
            let weighted = [
                (GroupAction::Poll, 12),
                (GroupAction::Fetch, 2),
                (GroupAction::Commit, 2),
                (GroupAction::Join, 1),
                (GroupAction::FetchOffset, 1),
                (GroupAction::Peek, 2),
                (GroupAction::Rewind, 1),
                (GroupAction::Leave, 1),
                (GroupAction::Crash, 1),
                (GroupAction::Stall, 1),
            ];
            let action = proptest::sample::select(
                weighted
                    .iter()
                    .flat_map(|&(a, n)| std::iter::repeat_n(a, n))
                    .collect::<Vec<_>>(),
            );
            options.push((
                self.group_weight,
                (0..s.members, action, seed)
                    .prop_map(|(member, action, seed)| Transition::Group {
                        member,
                        action,
                        seed,
                    })
                    .boxed(),
            ));
        }
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
        if s.nodes > 1 {
            self.network_faults(&mut options);
        }
        if self.store {
            self.store_faults(&mut options);
        }
        Union::new_weighted(options).boxed()
    }

    /// Store outages and restores, error rates, lost replies and flips, for a cluster with a
    /// store.
    fn store_faults(&self, options: &mut Vec<(u32, BoxedStrategy<Transition>)>) {
        let seed = any::<u16>();
        if self.store_down {
            options.push((
                6,
                seed.prop_map(|seed| Transition::StoreRestore { seed })
                    .boxed(),
            ));
        } else {
            options.push((
                2,
                seed.prop_map(|seed| Transition::StoreOutage { seed })
                    .boxed(),
            ));
        }
        options.push((
            2,
            (prop_oneof![Just(0u16), 1u16..=300], seed)
                .prop_map(|(rate, seed)| Transition::StoreErrors { rate, seed })
                .boxed(),
        ));
        options.push((
            2,
            seed.prop_map(|seed| Transition::StoreLostReply { seed })
                .boxed(),
        ));
        if self.store_corruptions < MAX_STORE_CORRUPTIONS {
            options.push((
                1,
                seed.prop_map(|seed| Transition::StoreCorrupt { seed })
                    .boxed(),
            ));
        }
    }

    /// Partitions, clogs, heals and pauses, for a cluster of more than one node (a single-node
    /// strategy proposes exactly what it did before they existed, so saved seeds keep meaning).
    fn network_faults(&self, options: &mut Vec<(u32, BoxedStrategy<Transition>)>) {
        let n = self.shape.nodes;
        let seed = any::<u16>();
        // Two distinct nodes: the second is a non-zero step from the first, around the ring.
        let pair = (0..n, 1..n).prop_map(move |(a, d)| {
            let b = (u16::from(a) + u16::from(d)) % u16::from(n);
            (a, b as u8)
        });
        let cut = prop_oneof![
            3 => (0..n).prop_map(|node| Cut::Split { node }),
            3 => Just(Cut::IsolateLeader),
            1 => Just(Cut::AllApart),
            2 => pair.clone().prop_map(|(from, to)| Cut::OneWay { from, to }),
            2 => pair.clone().prop_map(|(a, b)| Cut::Partial { a, b }),
        ];
        options.push((
            3,
            (cut, seed)
                .prop_map(|(cut, seed)| Transition::Partition { cut, seed })
                .boxed(),
        ));
        options.push((
            2,
            (pair, 1u16..=100, seed)
                .prop_map(|((from, to), ms, seed)| Transition::Clog { from, to, ms, seed })
                .boxed(),
        ));
        if self.partition.is_some() || !self.clogs.is_empty() {
            options.push((
                6,
                seed.prop_map(|seed| Transition::HealNet { seed }).boxed(),
            ));
        }
        let up = self.nodes_where(|k| self.up[k]);
        if !up.is_empty() {
            // Up to well past an election timeout, so that a paused leader is replaced.
            options.push((
                2,
                (proptest::sample::select(up), 1u16..=150, seed)
                    .prop_map(|(node, ms, seed)| Transition::Pause { node, ms, seed })
                    .boxed(),
            ));
        }
    }
}

/// Implements [`ReferenceStateMachine`] for `$name`, a cluster of `$shape`: the same model,
/// vocabulary and preconditions for every size. Header flips and misdirected writes are
/// proposed too: a single node that then refuses to start is a typed outcome of the simulator,
/// which the test accepts, and a replica repairs what they damage from its peers.
macro_rules! cluster_reference {
    ($name:ident, $shape:expr) => {
        cluster_reference!($name, $shape, |m: ClusterModel| m);
    };
    ($name:ident, $shape:expr, $adjust:expr) => {
        impl ReferenceStateMachine for $name {
            type State = ClusterModel;
            type Transition = Transition;

            fn init_state() -> BoxedStrategy<ClusterModel> {
                any::<u64>()
                    .prop_map(|seed| $adjust(ClusterModel::new($shape, seed).with_refusals()))
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
    };
}

pub(crate) use cluster_reference;

/// The reference state machine of a single-node cluster.
pub struct SingleNodeCluster;

cluster_reference!(SingleNodeCluster, ClusterShape::SINGLE_NODE);

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    const THREE: ClusterShape = ClusterShape {
        nodes: 3,
        partitions: 1,
        producers: 1,
        consumers: 1,
        members: 0,
    };

    fn after(script: &[Transition]) -> ClusterModel {
        let mut m = ClusterModel::new(THREE, 1);
        for t in script {
            assert!(m.allows(t), "{t} not allowed in {m:?}");
            m.apply(t);
        }
        m
    }

    fn cut(cut: Cut) -> Transition {
        Transition::Partition { cut, seed: 0 }
    }

    #[test]
    fn a_whole_network_has_every_node_in_its_majority() {
        assert_eq!(after(&[]).connected_majority(None), Some(vec![0, 1, 2]));
        // A slow link still delivers.
        let clogged = after(&[Transition::Clog {
            from: 0,
            to: 1,
            ms: 50,
            seed: 0,
        }]);
        assert_eq!(clogged.connected_majority(None), Some(vec![0, 1, 2]));
    }

    #[test]
    fn a_split_leaves_the_other_side_as_the_majority() {
        let m = after(&[cut(Cut::Split { node: 2 })]);
        assert_eq!(m.connected_majority(None), Some(vec![0, 1]));
        // With a node of the majority side down, nothing is left.
        let m = after(&[
            cut(Cut::Split { node: 2 }),
            Transition::Crash { node: 0, seed: 0 },
        ]);
        assert_eq!(m.connected_majority(None), None);
    }

    #[test]
    fn isolating_the_leader_needs_to_know_which_node_leads() {
        let m = after(&[cut(Cut::IsolateLeader)]);
        assert_eq!(m.connected_majority(Some(1)), Some(vec![0, 2]));
        assert_eq!(m.connected_majority(Some(0)), Some(vec![1, 2]));
        // Unknown, each choice gives another majority.
        assert_eq!(m.connected_majority(None), None);
    }

    #[test]
    fn all_apart_leaves_no_majority() {
        assert_eq!(after(&[cut(Cut::AllApart)]).connected_majority(None), None);
    }

    #[test]
    fn a_one_way_cut_breaks_the_pair_it_cuts() {
        let m = after(&[cut(Cut::OneWay { from: 0, to: 1 })]);
        assert_eq!(m.connected_majority(None), Some(vec![0, 2]));
        let m = after(&[cut(Cut::OneWay { from: 2, to: 0 })]);
        assert_eq!(m.connected_majority(None), Some(vec![0, 1]));
    }

    #[test]
    fn a_partial_partition_leaves_majorities_through_the_middle_node() {
        let m = after(&[cut(Cut::Partial { a: 0, b: 1 })]);
        assert_eq!(m.connected_majority(None), Some(vec![0, 2]));
        let m = after(&[
            cut(Cut::Partial { a: 0, b: 1 }),
            Transition::Crash { node: 2, seed: 0 },
        ]);
        assert_eq!(m.connected_majority(None), None);
    }

    #[test]
    fn a_new_partition_replaces_the_old_and_heal_net_ends_both_kinds_of_fault() {
        let m = after(&[cut(Cut::AllApart), cut(Cut::Split { node: 0 })]);
        assert_eq!(m.connected_majority(None), Some(vec![1, 2]));
        let m = after(&[
            cut(Cut::AllApart),
            Transition::Clog {
                from: 1,
                to: 2,
                ms: 9,
                seed: 0,
            },
            Transition::HealNet { seed: 0 },
        ]);
        assert_eq!(m, after(&[]));
    }

    #[test]
    fn a_paused_node_is_out_until_its_pause_ends_or_it_crashes() {
        let pause = Transition::Pause {
            node: 1,
            ms: 50,
            seed: 0,
        };
        let split = cut(Cut::Split { node: 2 });
        let run = |ms| Transition::Run { ms, seed: 0 };
        let m = after(&[split, pause, run(49)]);
        assert_eq!(m.paused_until_ms, vec![None, Some(50), None]);
        assert_eq!(m.connected_majority(None), None);
        let m = after(&[split, pause, run(49), run(1)]);
        assert_eq!(m.connected_majority(None), Some(vec![0, 1]));
        let m = after(&[pause, Transition::Crash { node: 1, seed: 0 }]);
        assert_eq!(m.paused_until_ms, vec![None; 3]);
        // A down node is not paused (the transition does nothing).
        let m = after(&[Transition::Crash { node: 1, seed: 0 }, pause]);
        assert_eq!(m.paused_until_ms, vec![None; 3]);
    }

    #[test]
    fn network_faults_need_more_than_one_node_and_ids_in_range() {
        let one = ClusterModel::new(ClusterShape::SINGLE_NODE, 1);
        for t in [
            cut(Cut::AllApart),
            Transition::HealNet { seed: 0 },
            Transition::Pause {
                node: 0,
                ms: 5,
                seed: 0,
            },
        ] {
            assert!(!one.allows(&t), "{t}");
        }
        let three = after(&[]);
        assert!(!three.allows(&cut(Cut::Split { node: 3 })));
        assert!(!three.allows(&cut(Cut::Partial { a: 2, b: 2 })));
        assert!(!three.allows(&Transition::Clog {
            from: 1,
            to: 1,
            ms: 5,
            seed: 0
        }));
        assert!(!three.allows(&Transition::Pause {
            node: 0,
            ms: 0,
            seed: 0
        }));
        // Pointless, allowed: the shrinker may have deleted the partition before it.
        assert!(three.allows(&Transition::HealNet { seed: 0 }));
    }

    fn draws(m: &ClusterModel, count: usize) -> Vec<Transition> {
        let mut runner = TestRunner::deterministic();
        (0..count)
            .filter_map(|_| m.transition_strategy().new_tree(&mut runner).ok())
            .map(|t| t.current())
            .collect()
    }

    #[test]
    fn the_strategy_proposes_network_faults_only_to_a_cluster() {
        let network = |t: &Transition| {
            matches!(
                t,
                Transition::Partition { .. }
                    | Transition::Clog { .. }
                    | Transition::HealNet { .. }
                    | Transition::Pause { .. }
            )
        };
        let one = ClusterModel::new(ClusterShape::SINGLE_NODE, 1);
        assert!(!draws(&one, 2000).iter().any(network));
        let whole = draws(&after(&[]), 2000);
        assert!(whole.iter().any(network));
        // Nothing to heal: no heal is proposed; once cut, it is.
        assert!(!whole
            .iter()
            .any(|t| matches!(t, Transition::HealNet { .. })));
        let cut = draws(&after(&[cut(Cut::AllApart)]), 2000);
        assert!(cut.iter().any(|t| matches!(t, Transition::HealNet { .. })));
        let m = after(&[]);
        assert!(whole.iter().all(|t| m.allows(t)));
    }
}
