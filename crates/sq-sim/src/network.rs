//! The simulated network: per-message latency, loss, duplication, reordering (by latency),
//! one-way link blocks, partitions between nodes and clogged (slow) links.

use crate::rng::SimRng;
use sq_core::Time;
use std::collections::{BTreeMap, BTreeSet};

/// An endpoint: a node or a client, by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Addr {
    /// A replica.
    Node(u32),
    /// A client process.
    Client(u32),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Node(n) => write!(f, "n{n}"),
            Addr::Client(c) => write!(f, "c{c}"),
        }
    }
}

/// How the network behaves now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// The shortest one-way latency, ns.
    pub latency_min: u64,
    /// The longest one-way latency, ns. Latency is uniform in between, which reorders messages.
    pub latency_max: u64,
    /// Percent of messages lost.
    pub loss: u8,
    /// Percent of messages delivered twice.
    pub dup: u8,
    /// Links that deliver nothing, one way: (from, to).
    blocked: BTreeSet<(Addr, Addr)>,
    /// The partition in force: node-to-node links that deliver nothing, one way. Kept apart
    /// from `blocked` because a new partition replaces the old one and cuts no client.
    cut: BTreeSet<(u32, u32)>,
    /// The node the partition in force cut off as the leader, if it was `isolate-leader`.
    isolated_leader: Option<u32>,
    /// Slow links: extra latency (ns) of every message from one endpoint to another.
    clogged: BTreeMap<(Addr, Addr), u64>,
}

/// What became of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Delivered at the first time, and again at the second if duplicated.
    Delivered(Time, Option<Time>),
    /// Lost at random.
    Lost,
    /// The link is blocked.
    Blocked,
}

impl Network {
    /// A network with one-way latency uniform in `min..=max` ns and no faults.
    pub fn new(latency_min: u64, latency_max: u64) -> Network {
        Network {
            latency_min,
            latency_max,
            loss: 0,
            dup: 0,
            blocked: BTreeSet::new(),
            cut: BTreeSet::new(),
            isolated_leader: None,
            clogged: BTreeMap::new(),
        }
    }

    /// Blocks the link from `from` to `to` (one way; block both ways for a symmetric partition).
    pub fn block(&mut self, from: Addr, to: Addr) {
        self.blocked.insert((from, to));
    }

    /// Replaces the partition in force: node `from`'s messages to node `to` are lost for each
    /// `(from, to)` in `cut`; every other link, and every client's, delivers. `isolated_leader`
    /// records which node an `isolate-leader` partition cut off.
    pub fn partition(&mut self, cut: BTreeSet<(u32, u32)>, isolated_leader: Option<u32>) {
        self.cut = cut;
        self.isolated_leader = isolated_leader;
    }

    /// The node-to-node links the partition in force cuts, one way: (from, to).
    pub fn cut(&self) -> &BTreeSet<(u32, u32)> {
        &self.cut
    }

    /// The node the partition in force cut off as the leader, if it was `isolate-leader`.
    pub fn isolated_leader(&self) -> Option<u32> {
        self.isolated_leader
    }

    /// Slows the link from `from` to `to`: each message takes `extra` ns more (replacing any
    /// earlier clog of that link).
    pub fn clog(&mut self, from: Addr, to: Addr, extra: u64) {
        self.clogged.insert((from, to), extra);
    }

    /// The clogged links and their extra latency, ns.
    pub fn clogged(&self) -> &BTreeMap<(Addr, Addr), u64> {
        &self.clogged
    }

    /// Unblocks and unclogs every link and ends the partition; loss and duplication stay.
    pub fn heal_links(&mut self) {
        self.blocked.clear();
        self.cut.clear();
        self.isolated_leader = None;
        self.clogged.clear();
    }

    /// Heals everything: every link, and loss and duplication.
    pub fn heal(&mut self) {
        self.heal_links();
        self.loss = 0;
        self.dup = 0;
    }

    /// Decides what becomes of a message sent now from `from` to `to`.
    pub fn transmit(&self, rng: &mut SimRng, now: Time, from: Addr, to: Addr) -> Fate {
        if !self.blocked.is_empty() && self.blocked.contains(&(from, to)) {
            return Fate::Blocked;
        }
        if let (Addr::Node(a), Addr::Node(b)) = (from, to) {
            if self.cut.contains(&(a, b)) {
                return Fate::Blocked;
            }
        }
        if rng.percent(self.loss) {
            return Fate::Lost;
        }
        // A clog draws nothing: a run without one makes the same draws as before clogs existed.
        let extra = self.clogged.get(&(from, to)).copied().unwrap_or(0);
        let first = now + rng.between(self.latency_min, self.latency_max) + extra;
        let second = rng
            .percent(self.dup)
            .then(|| now + rng.between(self.latency_min, self.latency_max) + extra);
        Fate::Delivered(first, second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn a_blocked_link_delivers_nothing_one_way_until_healed() {
        let mut net = Network::new(100, 200);
        let mut rng = SimRng::new(1);
        let (a, b) = (Addr::Client(0), Addr::Node(0));
        net.block(a, b);
        assert_eq!(net.transmit(&mut rng, Time::ZERO, a, b), Fate::Blocked);
        assert!(matches!(
            net.transmit(&mut rng, Time::ZERO, b, a),
            Fate::Delivered(t, None) if (100..=200).contains(&t.nanos())
        ));
        net.heal();
        assert!(matches!(
            net.transmit(&mut rng, Time::ZERO, a, b),
            Fate::Delivered(..)
        ));
    }

    /// What node `from`'s message to `to` meets: delivered or blocked.
    fn reaches(net: &Network, from: u32, to: u32) -> bool {
        let mut rng = SimRng::new(7);
        let fate = net.transmit(&mut rng, Time::ZERO, Addr::Node(from), Addr::Node(to));
        matches!(fate, Fate::Delivered(..))
    }

    /// The directed node links that deliver, among three nodes.
    fn open_links(net: &Network) -> Vec<(u32, u32)> {
        (0..3)
            .flat_map(|a| (0..3).filter(move |&b| b != a).map(move |b| (a, b)))
            .filter(|&(a, b)| reaches(net, a, b))
            .collect()
    }

    #[test]
    fn a_partition_cuts_node_links_only_and_replaces_the_last() {
        let mut net = Network::new(100, 200);
        net.partition(BTreeSet::from([(0, 1), (1, 0)]), None);
        assert_eq!(open_links(&net), vec![(0, 2), (1, 2), (2, 0), (2, 1)]);
        // Clients reach every node and hear from it.
        let mut rng = SimRng::new(1);
        for n in 0..3 {
            let (c, node) = (Addr::Client(0), Addr::Node(n));
            assert!(matches!(
                net.transmit(&mut rng, Time::ZERO, c, node),
                Fate::Delivered(..)
            ));
            assert!(matches!(
                net.transmit(&mut rng, Time::ZERO, node, c),
                Fate::Delivered(..)
            ));
        }
        // One way: 2's messages to 0 are lost, 0's to 2 arrive; the old cut is gone.
        net.partition(BTreeSet::from([(2, 0)]), Some(2));
        assert_eq!(
            open_links(&net),
            vec![(0, 1), (0, 2), (1, 0), (1, 2), (2, 1)]
        );
        assert_eq!(net.isolated_leader(), Some(2));
        net.heal_links();
        assert_eq!(open_links(&net).len(), 6);
        assert_eq!(net.isolated_leader(), None);
    }

    #[test]
    fn a_clogged_link_is_slow_one_way_until_healed_and_keeps_loss() {
        let mut net = Network::new(100, 200);
        let (a, b) = (Addr::Node(0), Addr::Node(1));
        net.clog(a, b, 5_000);
        net.dup = 100;
        let mut rng = SimRng::new(3);
        let Fate::Delivered(first, Some(second)) = net.transmit(&mut rng, Time::ZERO, a, b) else {
            panic!("a clogged link delivers");
        };
        assert!((5_100..=5_200).contains(&first.nanos()), "{first}");
        assert!((5_100..=5_200).contains(&second.nanos()), "{second}");
        assert!(matches!(
            net.transmit(&mut rng, Time::ZERO, b, a),
            Fate::Delivered(t, Some(_)) if (100..=200).contains(&t.nanos())
        ));
        net.loss = 10;
        net.heal_links();
        assert_eq!(net.clogged(), &BTreeMap::new());
        assert_eq!((net.loss, net.dup), (10, 100));
        net.loss = 0;
        assert!(matches!(
            net.transmit(&mut SimRng::new(3), Time::ZERO, a, b),
            Fate::Delivered(t, _) if t.nanos() <= 200
        ));
        net.loss = 10;
        net.heal();
        assert_eq!((net.loss, net.dup), (0, 0));
    }
}
