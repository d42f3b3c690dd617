//! S10 and S12: a burst on a lossy network, and a node away while the cluster moves on and
//! trims (it rejoins by snapshot). (S09 comes with consumer groups; S11 is in `tiered.rs`.)

use super::steps::{drain, run, seed};
use super::{LeaderAfter, Scenario};
use crate::rng::SimRng;
use crate::runtime::{Sim, SimConfig};
use sq_client::{Op, Outcome};
use sq_core::Time;
use sq_model::{ClusterShape, Transition};
use std::collections::{BTreeMap, BTreeSet};

/// S10's cluster: many producers.
const BURST: ClusterShape = ClusterShape {
    nodes: 3,
    partitions: 3,
    producers: 32,
    consumers: 1,
    members: 0,
};

/// Records per batch in S10 and S12: the batch cap those scenarios set.
const RECORDS: u8 = 8;

/// Batches of eight records, fetches of up to 64 (the final read-back of tens of thousands of
/// records would otherwise take most of the run), and appends of up to 16 KiB with 64 KiB in
/// flight per follower: these scenarios are about throughput, and a follower that lost an
/// append on the lossy, reordering network is probed one append at a time until it matches.
fn big_batches(cfg: &mut SimConfig) {
    cfg.max_batch_records = u32::from(RECORDS);
    cfg.max_fetch_records = 64;
    cfg.max_append_bytes = 16 << 10;
    cfg.max_inflight_bytes = 64 << 10;
}

/// When S10's burst starts and ends (simulated ms): one second.
const BURST_MS: (u64, u64) = (200, 1200);

fn produce_all(rng: &mut SimRng, s: &mut Vec<Transition>, shape: ClusterShape) {
    for producer in 0..shape.producers {
        s.push(Transition::Produce {
            producer,
            partition: rng.below(u64::from(shape.partitions)) as u8,
            records: RECORDS,
            seed: seed(rng),
        });
    }
}

fn s10_script(rng: &mut SimRng, _: &mut LeaderAfter) -> Vec<Transition> {
    // Elect a leader, then make the network lossy and duplicating for the burst.
    let mut s = vec![Transition::Run {
        ms: BURST_MS.0 as u16,
        seed: seed(rng),
    }];
    s.push(Transition::Network {
        loss: rng.between(2, 6) as u8,
        dup: rng.between(2, 6) as u8,
        seed: seed(rng),
    });
    // Every 2 ms each idle producer sends a batch: the busy ones are skipped.
    for _ in 0..(BURST_MS.1 - BURST_MS.0) / 2 {
        produce_all(rng, &mut s, BURST);
        s.push(Transition::Run {
            ms: 2,
            seed: seed(rng),
        });
    }
    drain(rng, &mut s, 0);
    s
}

/// The records acked of produces invoked within the burst, and by how many producers.
fn burst_acked(sim: &Sim) -> (u64, usize) {
    let (from, to) = (BURST_MS.0 * Time::MILLI, BURST_MS.1 * Time::MILLI);
    let mut invoked = BTreeMap::new();
    let mut records = 0;
    let mut producers = BTreeSet::new();
    for e in sim.history() {
        match &e.outcome {
            Outcome::Invoke(Op::Produce { records: r, .. })
                if (from..to).contains(&e.time.nanos()) =>
            {
                invoked.insert((e.client, e.op), r.len() as u64);
            }
            Outcome::Produced { .. } => {
                if let Some(n) = invoked.get(&(e.client, e.op)) {
                    records += n;
                    producers.insert(e.client);
                }
            }
            _ => {}
        }
    }
    (records, producers.len())
}

fn s10_check(sim: &Sim) -> Result<(), String> {
    let (records, producers) = burst_acked(sim);
    if records < 5000 || producers < 8 {
        return Err(format!(
            "{records} records from {producers} producers acked of those sent within the burst \
             second; expected at least 5000 from at least 8"
        ));
    }
    sim.acked_on_every_replica()
}

/// S12's cluster: sixteen producers.
const REJOIN: ClusterShape = ClusterShape {
    nodes: 3,
    partitions: 2,
    producers: 16,
    consumers: 1,
    members: 0,
};

/// S12 tiers its log: the cluster trims while the node is away.
fn big_batches_tiered(cfg: &mut SimConfig) {
    big_batches(cfg);
    *cfg = cfg.clone().with_store();
}

fn s12_script(rng: &mut SimRng, _: &mut LeaderAfter) -> Vec<Transition> {
    let away = rng.below(3) as u8;
    let mut s = vec![run(rng, 100, 150)];
    s.push(Transition::Crash {
        node: away,
        seed: seed(rng),
    });
    // At least 10 000 records committed while it is away: 1 250 batches of eight or more.
    for _ in 0..1100 {
        produce_all(rng, &mut s, REJOIN);
        s.push(Transition::Run {
            ms: 3,
            seed: seed(rng),
        });
    }
    s.push(run(rng, 100, 150));
    s.push(Transition::Restart {
        node: away,
        seed: seed(rng),
    });
    s.push(run(rng, 200, 300));
    drain(rng, &mut s, 0);
    s
}

fn s12_check(sim: &Sim) -> Result<(), String> {
    let acked: u64 = sim
        .history()
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Produced { .. }))
        .count() as u64
        * u64::from(RECORDS);
    if acked < 10_000 {
        return Err(format!("{acked} records acked; expected at least 10 000"));
    }
    let &(n, entries, took) = sim
        .stats()
        .catch_ups
        .iter()
        .find(|c| c.1 > 0)
        .ok_or("the node that was away never caught up")?;
    // In full: the cluster trimmed while the node was away, so it rejoined by snapshot.
    if sim.stats().trimmed_entries == 0 || sim.stats().snapshots_sent == 0 {
        return Err(format!(
            "the cluster trimmed {} entries and sent {} snapshots: the node did not rejoin by \
             snapshot",
            sim.stats().trimmed_entries,
            sim.stats().snapshots_sent
        ));
    }
    let bound = sim.catch_up_bound(entries);
    if took > bound {
        return Err(format!(
            "n{n} took {} to catch up on {entries} entries; the bound is {}",
            Time(took),
            Time(bound)
        ));
    }
    sim.acked_on_every_replica()
}

/// S10, S12.
pub(super) static SCENARIOS: [Scenario; 2] = [
    Scenario {
        id: "S10",
        title: "3 nodes, burst: 5 000 records from 32 producers in one second, lossy network",
        shape: BURST,
        configure: big_batches,
        script: s10_script,
        check: s10_check,
        pinned_seeds: include_str!("../../../../seeds/S10.seeds"),
    },
    Scenario {
        id: "S12",
        title: "3 nodes + store, one away while 10 000 records commit and the WAL is trimmed: it rejoins by snapshot",
        shape: REJOIN,
        configure: big_batches_tiered,
        script: s12_script,
        check: s12_check,
        pinned_seeds: include_str!("../../../../seeds/S12.seeds"),
    },
];
