//! The simulated network: per-message latency, loss, duplication, reordering (by latency), and
//! one-way link blocks for partitions.

use crate::rng::SimRng;
use sq_core::Time;
use std::collections::BTreeSet;

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
        }
    }

    /// Blocks the link from `from` to `to` (one way; block both ways for a symmetric partition).
    pub fn block(&mut self, from: Addr, to: Addr) {
        self.blocked.insert((from, to));
    }

    /// Unblocks every link.
    pub fn heal(&mut self) {
        self.blocked.clear();
        self.loss = 0;
        self.dup = 0;
    }

    /// Decides what becomes of a message sent now from `from` to `to`.
    pub fn transmit(&self, rng: &mut SimRng, now: Time, from: Addr, to: Addr) -> Fate {
        if !self.blocked.is_empty() && self.blocked.contains(&(from, to)) {
            return Fate::Blocked;
        }
        if rng.percent(self.loss) {
            return Fate::Lost;
        }
        let first = now + rng.between(self.latency_min, self.latency_max);
        let second = rng
            .percent(self.dup)
            .then(|| now + rng.between(self.latency_min, self.latency_max));
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
}
