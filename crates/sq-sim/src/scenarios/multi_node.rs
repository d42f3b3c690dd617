//! S05–S07: three nodes.

use super::steps::{drain, fetch, produce, run, seed};
use super::{keep_config, LeaderAfter, Scenario};
use crate::rng::SimRng;
use crate::runtime::Sim;
use sq_client::Outcome;
use sq_core::Time;
use sq_model::{ClusterShape, Cut, Transition};

/// Three nodes, two partitions, three producers, one consumer.
pub(super) const THREE: ClusterShape = ClusterShape {
    nodes: 3,
    partitions: 2,
    producers: 3,
    consumers: 1,
    members: 0,
};

/// Produces from every producer to random partitions for `rounds` rounds of 1–`gap` ms.
pub(super) fn traffic(rng: &mut SimRng, s: &mut Vec<Transition>, rounds: u64, gap: u16) {
    for _ in 0..rounds {
        for p in 0..THREE.producers {
            let partition = rng.below(u64::from(THREE.partitions)) as u8;
            s.push(produce(rng, p, partition));
        }
        s.push(run(rng, 1, gap));
        if rng.percent(20) {
            let partition = rng.below(u64::from(THREE.partitions)) as u8;
            s.push(fetch(rng, 0, partition));
        }
    }
}

fn s05_script(rng: &mut SimRng, _: &mut LeaderAfter) -> Vec<Transition> {
    let mut s = vec![run(rng, 100, 150)];
    let rounds = rng.between(20, 40);
    traffic(rng, &mut s, rounds, 6);
    drain(rng, &mut s, THREE.partitions);
    s
}

fn s05_check(sim: &Sim) -> Result<(), String> {
    if sim.stats().acked == 0 {
        return Err("no produce was acked".into());
    }
    // The heal's convergence check has compared the committed logs byte for byte.
    sim.replicas_identical()?;
    sim.acked_on_every_replica()
}

fn s06_script(rng: &mut SimRng, leader_after: &mut LeaderAfter) -> Vec<Transition> {
    let mut s = vec![run(rng, 100, 150)];
    let rounds = rng.between(10, 20);
    traffic(rng, &mut s, rounds, 6);
    // The leader in three seeds of four, else any node (the leader, a third of the time).
    let node = if rng.below(4) > 0 {
        leader_after(&s).unwrap_or(0)
    } else {
        rng.below(u64::from(THREE.nodes)) as u8
    };
    let crash_seed = seed(rng);
    s.push(if rng.percent(50) {
        Transition::Crash {
            node,
            seed: crash_seed,
        }
    } else {
        Transition::PowerLoss {
            node,
            seed: crash_seed,
        }
    });
    traffic(rng, &mut s, 60, 6);
    s.push(Transition::Restart {
        node,
        seed: seed(rng),
    });
    traffic(rng, &mut s, 15, 6);
    drain(rng, &mut s, THREE.partitions);
    s
}

fn s06_check(sim: &Sim) -> Result<(), String> {
    let crash = sim.stats().last_crash.ok_or("no crash was injected")?;
    let bound = sim.config().liveness_bound();
    let first = sim
        .history()
        .iter()
        .filter(|e| e.time > crash && matches!(e.outcome, Outcome::Produced { .. }))
        .map(|e| e.time)
        .min()
        .ok_or("nothing was acked after the crash")?;
    if first.nanos() - crash.nanos() > bound {
        return Err(format!(
            "the first ack after the crash at {crash} came at {first}, more than {} later",
            Time(bound)
        ));
    }
    if sim.stats().catch_ups.is_empty() {
        return Err("the crashed node never caught up after its restart".into());
    }
    sim.acked_on_every_replica()
}

fn s07_script(rng: &mut SimRng, _: &mut LeaderAfter) -> Vec<Transition> {
    let mut s = vec![run(rng, 100, 150)];
    let rounds = rng.between(10, 20);
    traffic(rng, &mut s, rounds, 6);
    // The old leader alone in three seeds of four, else any node.
    let cut = if rng.below(4) > 0 {
        Cut::IsolateLeader
    } else {
        Cut::Split {
            node: rng.below(u64::from(THREE.nodes)) as u8,
        }
    };
    s.push(Transition::Partition {
        cut,
        seed: seed(rng),
    });
    traffic(rng, &mut s, 60, 6);
    s.push(Transition::HealNet { seed: seed(rng) });
    traffic(rng, &mut s, 15, 6);
    drain(rng, &mut s, THREE.partitions);
    s
}

fn s07_check(sim: &Sim) -> Result<(), String> {
    let &(alone, from, to) = sim
        .stats()
        .isolations
        .first()
        .ok_or("no node was cut off")?;
    let majority_acks = sim
        .history()
        .iter()
        .filter(|e| (from..to).contains(&e.time.nanos()))
        .filter(|e| matches!(e.outcome, Outcome::Produced { .. }))
        .filter(|e| e.node.is_some_and(|n| n.0 != alone))
        .count();
    if majority_acks == 0 {
        return Err(format!(
            "the majority acked nothing while n{alone} was cut off ({}..{})",
            Time(from),
            Time(to)
        ));
    }
    // The minority's acks of produces invoked while it was alone are violations the run checks
    // as they happen; after the heal its uncommitted suffix must be gone.
    sim.replicas_identical()?;
    sim.acked_on_every_replica()
}

/// S05–S07.
pub(super) static SCENARIOS: [Scenario; 3] = [
    Scenario {
        id: "S05",
        title: "3 nodes, normal operation: every acked record on all three, replicas identical",
        shape: THREE,
        configure: keep_config,
        script: s05_script,
        check: s05_check,
        pinned_seeds: include_str!("../../../../seeds/S05.seeds"),
    },
    Scenario {
        id: "S06",
        title: "3 nodes, one crashes (mostly the leader): the others keep acking, it rejoins",
        shape: THREE,
        configure: keep_config,
        script: s06_script,
        check: s06_check,
        pinned_seeds: include_str!("../../../../seeds/S06.seeds"),
    },
    Scenario {
        id: "S07",
        title: "3 nodes, 2+1 partition (mostly the old leader alone): majority acks, minority none",
        shape: THREE,
        configure: keep_config,
        script: s07_script,
        check: s07_check,
        pinned_seeds: include_str!("../../../../seeds/S07.seeds"),
    },
];
