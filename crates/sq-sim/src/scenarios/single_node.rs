//! S01–S04: one node.

use super::steps::{consumed, drain, fetch, last_time, produce, run, seed};
use super::{keep_config, LeaderAfter, Scenario};
use crate::rng::SimRng;
use crate::runtime::Sim;
use sq_client::{Op, Outcome};
use sq_core::PartitionId;
use sq_model::{ClusterShape, Transition};
use std::collections::BTreeMap;

fn s01_script(rng: &mut SimRng, _: &mut LeaderAfter) -> Vec<Transition> {
    let mut s = Vec::new();
    for _ in 0..rng.between(20, 40) {
        s.push(produce(rng, 0, 0));
        s.push(run(rng, 1, 8));
        if rng.percent(40) {
            s.push(fetch(rng, 0, 0));
        }
    }
    drain(rng, &mut s, 1);
    s
}

fn s01_check(sim: &Sim) -> Result<(), String> {
    let got = consumed(sim, PartitionId(0));
    // Everything acked during the script (the heal's probe comes after) was consumed once, in
    // order, from offset 0.
    let healed = sim.stats().healed_at.ok_or("the run never healed")?;
    let mut counts = BTreeMap::new();
    let mut end = 0;
    for e in sim.history().iter().filter(|e| e.time <= healed) {
        match &e.outcome {
            Outcome::Invoke(Op::Produce { records, .. }) => {
                counts.insert((e.client, e.op), records.len() as u64);
            }
            Outcome::Produced { base_offset } => {
                end = end.max(base_offset + counts.get(&(e.client, e.op)).copied().unwrap_or(0));
            }
            _ => {}
        }
    }
    let want: Vec<u64> = (0..got.len() as u64).collect();
    if got != want || (got.len() as u64) < end {
        return Err(format!(
            "consumer read offsets {got:?}; expected each of 0..{end} (at least) once, in order"
        ));
    }
    if end == 0 {
        return Err("no produce was acked".into());
    }
    Ok(())
}

fn s02_script(rng: &mut SimRng, _: &mut LeaderAfter) -> Vec<Transition> {
    let mut s = Vec::new();
    for _ in 0..rng.between(15, 25) {
        for p in 0..5 {
            let partition = rng.below(2) as u8;
            s.push(produce(rng, p, partition));
        }
        s.push(run(rng, 1, 4));
    }
    s.push(run(rng, 100, 150));
    s
}

fn s02_check(sim: &Sim) -> Result<(), String> {
    // Each producer's acks on a partition increase with its sequence.
    let mut partition_of = BTreeMap::new();
    let mut last: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    for e in sim.history() {
        match &e.outcome {
            Outcome::Invoke(Op::Produce { partition, .. }) => {
                partition_of.insert((e.client.0, e.op), partition.0);
            }
            Outcome::Produced { base_offset } => {
                let p = partition_of[&(e.client.0, e.op)];
                if let Some(prev) = last.insert((e.client.0, p), *base_offset) {
                    if prev >= *base_offset {
                        return Err(format!(
                            "{} acked at offset {base_offset} after {prev} on partition {p}",
                            e.client
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    let producers = last
        .keys()
        .map(|(c, _)| c)
        .collect::<std::collections::BTreeSet<_>>();
    if producers.len() < 4 {
        return Err(format!(
            "only {} producers were acked; at least 4 must be",
            producers.len()
        ));
    }
    Ok(())
}

fn s03_script(rng: &mut SimRng, _: &mut LeaderAfter) -> Vec<Transition> {
    let mut s = Vec::new();
    let phase = |rng: &mut SimRng, s: &mut Vec<Transition>, n: u64| {
        for _ in 0..n {
            let producer = rng.below(2) as u8;
            s.push(produce(rng, producer, 0));
            s.push(run(rng, 1, 6));
        }
    };
    let n = rng.between(5, 15);
    phase(rng, &mut s, n);
    s.push(Transition::DiskFull {
        node: 0,
        seed: seed(rng),
    });
    let n = rng.between(5, 10);
    phase(rng, &mut s, n);
    s.push(run(rng, 30, 60));
    s.push(Transition::DiskFree {
        node: 0,
        seed: seed(rng),
    });
    let n = rng.between(5, 10);
    phase(rng, &mut s, n);
    drain(rng, &mut s, 1);
    s
}

fn s03_check(sim: &Sim) -> Result<(), String> {
    // Definite when the node could record the refusal, indeterminate when the disk had no room
    // even for that: either way refused, never acked in part.
    let stats = sim.stats();
    if stats.storage_full + stats.disk_full == 0 {
        return Err("no produce was refused while the disk was full".into());
    }
    let node = sim.node(0).ok_or("node n0 is down")?;
    if let Some(why) = node.failed() {
        return Err(format!("node n0 stopped serving: {why}"));
    }
    // A producer answered the indeterminate DiskFull retries until it gives up (info).
    let full = last_time(sim, |o| match o {
        Outcome::Fail(m) => m.starts_with("storage full"),
        Outcome::Info(_) => true,
        _ => false,
    });
    let ok = last_time(sim, |o| matches!(o, Outcome::Produced { .. }));
    match (full, ok) {
        (Some(f), Some(o)) if o > f => Ok(()),
        // Every refusal was the indeterminate DiskFull and every retry landed once there was room.
        (None, Some(_)) => Ok(()),
        _ => Err(format!(
            "no produce was acked after the last StorageFull (last full {full:?}, last ack {ok:?})"
        )),
    }
}

fn s04_script(rng: &mut SimRng, _: &mut LeaderAfter) -> Vec<Transition> {
    let mut s = Vec::new();
    for _ in 0..rng.between(2, 4) {
        for _ in 0..rng.between(4, 10) {
            let (producer, partition) = (rng.below(3) as u8, rng.below(2) as u8);
            s.push(produce(rng, producer, partition));
            s.push(run(rng, 1, 3));
        }
        // Power loss at a random instant, often between an append and its sync: unsynced bytes
        // lost or torn (a process crash would keep them in the page cache).
        s.push(Transition::PowerLoss {
            node: 0,
            seed: seed(rng),
        });
        s.push(run(rng, 1, 30));
        s.push(Transition::Restart {
            node: 0,
            seed: seed(rng),
        });
    }
    for _ in 0..rng.between(4, 8) {
        let (producer, partition) = (rng.below(3) as u8, rng.below(2) as u8);
        s.push(produce(rng, producer, partition));
        s.push(run(rng, 1, 5));
    }
    drain(rng, &mut s, 2);
    s
}

fn s04_check(sim: &Sim) -> Result<(), String> {
    let crash = sim.stats().last_crash.ok_or("no crash was injected")?;
    let ok = last_time(sim, |o| matches!(o, Outcome::Produced { .. }));
    if ok.is_none_or(|t| t <= crash) {
        return Err(format!(
            "no produce was acked after the last crash at {crash}"
        ));
    }
    Ok(())
}

/// S01–S04.
pub(super) static SCENARIOS: [Scenario; 4] = [
    Scenario {
        id: "S01",
        title: "1 node, one producer, one consumer: every record consumed once, in order",
        shape: ClusterShape {
            nodes: 1,
            partitions: 1,
            producers: 1,
            consumers: 1,
            members: 0,
        },
        configure: keep_config,
        script: s01_script,
        check: s01_check,
        pinned_seeds: include_str!("../../../../seeds/S01.seeds"),
    },
    Scenario {
        id: "S02",
        title: "1 node, 5 concurrent producers: unique contiguous offsets, increasing acks",
        shape: ClusterShape {
            nodes: 1,
            partitions: 2,
            producers: 5,
            consumers: 1,
            members: 0,
        },
        configure: keep_config,
        script: s02_script,
        check: s02_check,
        pinned_seeds: include_str!("../../../../seeds/S02.seeds"),
    },
    Scenario {
        id: "S03",
        title: "1 node, disk fills during writes: definite StorageFull, then service again",
        shape: ClusterShape {
            nodes: 1,
            partitions: 1,
            producers: 2,
            consumers: 1,
            members: 0,
        },
        configure: keep_config,
        script: s03_script,
        check: s03_check,
        pinned_seeds: include_str!("../../../../seeds/S03.seeds"),
    },
    Scenario {
        id: "S04",
        title: "1 node, crashes (torn tail, unsynced loss) and restarts: WAL recovery",
        shape: ClusterShape {
            nodes: 1,
            partitions: 2,
            producers: 3,
            consumers: 1,
            members: 0,
        },
        configure: keep_config,
        script: s04_script,
        check: s04_check,
        pinned_seeds: include_str!("../../../../seeds/S04.seeds"),
    },
];
