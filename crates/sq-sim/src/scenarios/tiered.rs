//! S08 and S11: three nodes tiering to an object store. S08: the store goes away and comes
//! back; S11: a consumer far behind a trimmed WAL reads from the store.

use super::multi_node::{traffic, THREE};
use super::steps::{consumed, drain, fetch, run, seed};
use super::{LeaderAfter, Scenario};
use crate::rng::SimRng;
use crate::runtime::{Sim, SimConfig};
use sq_client::Outcome;
use sq_core::{PartitionId, Time};
use sq_model::Transition;

/// A store, and a WAL budget of two segments above what a replica keeps once its backlog is
/// uploaded: an outage of most of a second fills it.
fn s08_config(cfg: &mut SimConfig) {
    *cfg = cfg.clone().with_store();
    cfg.max_wal_bytes = cfg.settled_wal_bound() + 2 * cfg.segment_bytes;
}

fn s08_script(rng: &mut SimRng, _: &mut LeaderAfter) -> Vec<Transition> {
    let mut s = vec![run(rng, 100, 150)];
    traffic(rng, &mut s, 40, 6);
    s.push(Transition::StoreOutage { seed: seed(rng) });
    traffic(rng, &mut s, 200, 6);
    s.push(Transition::StoreRestore { seed: seed(rng) });
    traffic(rng, &mut s, 60, 6);
    // Quiet for a while: the backlog uploads, every replica trims.
    s.push(run(rng, 400, 500));
    drain(rng, &mut s, THREE.partitions);
    s
}

fn s08_check(sim: &Sim) -> Result<(), String> {
    let stats = sim.stats();
    let &(from, until) = stats.store_outages.first().ok_or("no store outage")?;
    let at = |t: u64| {
        stats
            .wal_samples
            .iter()
            .take_while(|s| s.0 <= t)
            .last()
            .map_or(0, |s| s.1)
    };
    let during = stats
        .wal_samples
        .iter()
        .filter(|s| (from..until).contains(&s.0))
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    if during <= at(from) {
        return Err(format!(
            "the WAL did not grow during the outage: {} bytes at its start, at most {during} in it",
            at(from)
        ));
    }
    if stats.storage_full == 0 {
        return Err(format!(
            "no producer got StorageFull with a WAL budget of {} bytes (the WAL peaked at {})",
            sim.config().max_wal_bytes,
            stats.wal_peak
        ));
    }
    let bound = sim.config().settled_wal_bound();
    let after = stats
        .wal_samples
        .iter()
        .filter(|s| s.0 > until)
        .map(|s| s.1)
        .min()
        .unwrap_or(u64::MAX);
    if after > bound {
        return Err(format!(
            "after the restore the WAL never shrank below {bound} bytes (at least {after})"
        ));
    }
    sim.acked_on_every_replica()
}

/// When S11's unread traffic runs (simulated ms).
const S11_RECORDS_MS: (u64, u64) = (150, 1150);

/// A store, and fetches of 16 to 64 records, so that the consumer can catch up with a second
/// of traffic in the fetches the script gives it.
fn s11_config(cfg: &mut SimConfig) {
    *cfg = cfg.clone().with_store();
    cfg.max_fetch_records = 16 + (cfg.seed % 49) as u32;
}

fn s11_script(rng: &mut SimRng, _: &mut LeaderAfter) -> Vec<Transition> {
    let mut s = vec![run(rng, 100, 150)];
    // A second of traffic nobody reads: the WAL is trimmed well past offset 0.
    let rounds = (S11_RECORDS_MS.1 - S11_RECORDS_MS.0) / 4;
    // Both partitions in every object: a read must take its own partition's batches only.
    for _ in 0..rounds {
        for p in 0..THREE.producers {
            s.push(Transition::Produce {
                producer: p,
                partition: rng.below(u64::from(THREE.partitions)) as u8,
                records: rng.between(2, 6) as u8,
                seed: seed(rng),
            });
        }
        s.push(run(rng, 2, 6));
    }
    // The slow consumer reads both partitions from their start while the producers go on,
    // slower.
    for _ in 0..300 {
        for partition in 0..THREE.partitions {
            s.push(fetch(rng, 0, partition));
            s.push(run(rng, 3, 6));
        }
        if rng.percent(10) {
            s.push(Transition::Produce {
                producer: rng.below(u64::from(THREE.producers)) as u8,
                partition: rng.below(u64::from(THREE.partitions)) as u8,
                records: 1,
                seed: seed(rng),
            });
        }
    }
    drain(rng, &mut s, THREE.partitions);
    s
}

fn s11_check(sim: &Sim) -> Result<(), String> {
    let stats = sim.stats();
    if stats.trimmed_entries == 0 {
        return Err("no replica trimmed its WAL".into());
    }
    if stats.store.gets == 0 {
        return Err("no fetch was served from the store".into());
    }
    for partition in 0..u32::from(THREE.partitions) {
        let offsets = consumed(sim, PartitionId(partition));
        if offsets.iter().enumerate().any(|(i, &o)| o != i as u64) {
            return Err(format!(
                "the consumer's records of partition {partition} are not offsets 0, 1, 2, … in \
                 order"
            ));
        }
        let head = consumer_head(sim, partition);
        if (offsets.len() as u64) < head {
            return Err(format!(
                "the consumer read {} records of partition {partition}; its head was at {head}",
                offsets.len()
            ));
        }
    }
    sim.acked_on_every_replica()
}

/// The highest watermark of `partition` the slow consumer was told.
fn consumer_head(sim: &Sim, partition: u32) -> u64 {
    let c = sim.consumer_client(0);
    let mut fetching = std::collections::BTreeMap::new();
    let mut head = 0;
    for e in sim.history().iter().filter(|e| e.client == c) {
        match &e.outcome {
            Outcome::Invoke(sq_client::Op::Fetch { partition: p, .. }) => {
                fetching.insert(e.op, p.0);
            }
            Outcome::Fetched { high_watermark, .. } if fetching.get(&e.op) == Some(&partition) => {
                head = head.max(*high_watermark);
            }
            _ => {}
        }
    }
    head
}

/// How many records S11's slow consumer read.
pub fn consumed_records(sim: &Sim) -> u64 {
    (0..u32::from(THREE.partitions))
        .map(|p| consumed(sim, PartitionId(p)).len() as u64)
        .sum()
}

/// The store reads per simulated second while S11's consumer caught up (for the figures):
/// GETs, over the time from its first fetch to its last.
pub fn s11_reads_per_second(sim: &Sim) -> f64 {
    let c = sim.consumer_client(0);
    let times: Vec<Time> = sim
        .history()
        .iter()
        .filter(|e| e.client == c)
        .map(|e| e.time)
        .collect();
    let (Some(first), Some(last)) = (times.first(), times.last()) else {
        return 0.0;
    };
    let secs = (last.nanos() - first.nanos()) as f64 / 1e9;
    sim.stats().store.gets as f64 / secs.max(1e-9)
}

/// S08, S11.
pub(super) static SCENARIOS: [Scenario; 2] = [
    Scenario {
        id: "S08",
        title: "3 nodes + store, store outage: the WAL grows, StorageFull, never loss; it shrinks",
        shape: THREE,
        configure: s08_config,
        script: s08_script,
        check: s08_check,
        pinned_seeds: include_str!("../../../../seeds/S08.seeds"),
    },
    Scenario {
        id: "S11",
        title: "3 nodes + store, a slow consumer behind a trimmed WAL reads both partitions from the store",
        shape: THREE,
        configure: s11_config,
        script: s11_script,
        check: s11_check,
        pinned_seeds: include_str!("../../../../seeds/S11.seeds"),
    },
];
