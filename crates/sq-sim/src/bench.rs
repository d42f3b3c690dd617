//! The simulator's benchmark workloads. They count events and simulated time; the `sq-sim bench`
//! command measures the wall time around them (the library never reads a clock).

use crate::network::{Addr, Fate, Network};
use crate::queue::EventQueue;
use crate::rng::SimRng;
use crate::runtime::{Sim, SimConfig};
use crate::Failure;
use sq_core::Time;
use sq_model::{ClusterShape, Transition};

/// What a workload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Events processed.
    pub events: u64,
    /// Simulated time covered.
    pub sim_time: Time,
}

/// `clients` clients each send `requests` requests, one at a time, to an echo endpoint through
/// the simulator's network (one-way latency uniform in 100–900 µs) and event queue. An event is
/// one message delivery.
pub fn ping_pong(clients: u32, requests: u64, seed: u64) -> Counts {
    struct Delivery {
        from: Addr,
        to: Addr,
        n: u64,
    }
    let mut rng = SimRng::new(seed);
    let net = Network::new(100 * Time::MICRO, 900 * Time::MICRO);
    let mut queue = EventQueue::new();
    let echo = Addr::Node(0);
    let mut now = Time::ZERO;
    let mut events = 0;
    let send = |queue: &mut EventQueue<Delivery>, rng: &mut SimRng, now, from, to, n| {
        if let Fate::Delivered(at, _) = net.transmit(rng, now, from, to) {
            queue.push(at, Delivery { from, to, n });
        }
    };
    for c in 0..clients {
        send(&mut queue, &mut rng, now, Addr::Client(c), echo, 1);
    }
    while let Some((at, d)) = queue.pop_until(Time(u64::MAX)) {
        now = at;
        events += 1;
        if d.to == echo {
            send(&mut queue, &mut rng, now, echo, d.from, d.n);
        } else if d.n < requests {
            send(&mut queue, &mut rng, now, d.to, echo, d.n + 1);
        }
    }
    Counts {
        events,
        sim_time: now,
    }
}

/// A steady load on one node: three producers and two consumers, each issuing an operation every
/// 2 ms of simulated time for `rounds` rounds, with every invariant checked as usual.
pub fn steady(rounds: u32, seed: u64) -> Result<Counts, Box<Failure>> {
    steady_on(ClusterShape::SINGLE_NODE, rounds, seed)
}

/// The same steady load on a three-node cluster (replication, elections and every cluster
/// check on).
pub fn steady_cluster(rounds: u32, seed: u64) -> Result<Counts, Box<Failure>> {
    let shape = ClusterShape {
        nodes: 3,
        ..ClusterShape::SINGLE_NODE
    };
    steady_on(shape, rounds, seed)
}

/// The same steady load on a three-node cluster that tiers to an object store: uploads,
/// manifest entries, trims, snapshots and store reads on top, and the tiering checks.
pub fn steady_tiered(rounds: u32, seed: u64) -> Result<Counts, Box<Failure>> {
    let shape = ClusterShape {
        nodes: 3,
        ..ClusterShape::SINGLE_NODE
    };
    steady_with(SimConfig::new(shape, seed).with_store(), rounds, seed)
}

fn steady_on(shape: ClusterShape, rounds: u32, seed: u64) -> Result<Counts, Box<Failure>> {
    steady_with(SimConfig::new(shape, seed), rounds, seed)
}

fn steady_with(mut cfg: SimConfig, rounds: u32, seed: u64) -> Result<Counts, Box<Failure>> {
    let shape = cfg.shape;
    // Memory holds what the checks need, not every fetch of a long run.
    cfg.keep_history = false;
    let mut sim = Sim::new(cfg);
    let mut rng = SimRng::new(seed);
    let mut index = 0;
    let mut step = |sim: &mut Sim, t: Transition| {
        index += 1;
        sim.apply(index, &t)
    };
    for _ in 0..rounds {
        for producer in 0..shape.producers {
            let partition = rng.below(u64::from(shape.partitions)) as u8;
            let seed = rng.below(1 << 16) as u16;
            step(
                &mut sim,
                Transition::Produce {
                    producer,
                    partition,
                    records: 4,
                    seed,
                },
            )?;
        }
        for consumer in 0..shape.consumers {
            let seed = rng.below(1 << 16) as u16;
            step(
                &mut sim,
                Transition::Fetch {
                    consumer,
                    partition: consumer % shape.partitions,
                    seed,
                },
            )?;
        }
        step(&mut sim, Transition::Run { ms: 2, seed: 0 })?;
    }
    let report = sim.finish()?;
    Ok(Counts {
        events: report.events,
        sim_time: report.sim_time,
    })
}
