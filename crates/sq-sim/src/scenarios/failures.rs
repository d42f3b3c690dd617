//! S09, S10 and S12: a consumer group through a consumer crash and a leader failover, a burst
//! on a lossy network, and a node away while the cluster moves on and trims (it rejoins by
//! snapshot). (S11 is in `tiered.rs`.)

use super::steps::{drain, run, seed};
use super::{keep_config, LeaderAfter, Scenario};
use crate::rng::SimRng;
use crate::runtime::{Sim, SimConfig};
use sq_client::{Op, Outcome};
use sq_core::{GroupOk, GroupRequest, Time};
use sq_model::{ClusterShape, GroupAction, Transition};
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
    // A long absence: 10 000 records, unless the store set a slower pace (a seed may draw a
    // slow store and small objects: the WAL budget then turns producers away with a definite
    // StorageFull, and the cluster moves on only as fast as its backlog uploads).
    if acked < 10_000 && sim.stats().storage_full == 0 {
        return Err(format!(
            "{acked} records acked and no StorageFull answered; expected at least 10 000"
        ));
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
    // A node that is away answers nothing: each leader sends it one snapshot, then heartbeats
    // until it answers, never a snapshot every round.
    if sim.stats().snapshots_unanswered > 0 {
        return Err(format!(
            "{} of {} snapshots were sent again to a follower that had not answered the last \
             one",
            sim.stats().snapshots_unanswered,
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

/// S09's cluster: four producers, a group of three consumers.
const GROUPED: ClusterShape = ClusterShape {
    nodes: 3,
    partitions: 3,
    producers: 4,
    consumers: 1,
    members: 3,
};

fn group(member: u8, action: GroupAction, rng: &mut SimRng) -> Transition {
    Transition::Group {
        member,
        action,
        seed: seed(rng),
    }
}

/// `n` rounds of 5 ms: producers send small batches every other round (if `produce`), each
/// member in `members` reads, and commits every other round.
fn group_rounds(rng: &mut SimRng, s: &mut Vec<Transition>, n: u32, members: &[u8], produce: bool) {
    for i in 0..n {
        if produce && i % 2 == 0 {
            for producer in 0..GROUPED.producers {
                s.push(Transition::Produce {
                    producer,
                    partition: rng.below(u64::from(GROUPED.partitions)) as u8,
                    records: rng.between(1, 2) as u8,
                    seed: seed(rng),
                });
            }
        }
        for &m in members {
            s.push(group(m, GroupAction::Fetch, rng));
        }
        s.push(run(rng, 2, 3));
        if i % 2 == 1 {
            for &m in members {
                s.push(group(m, GroupAction::Commit, rng));
            }
        }
        s.push(run(rng, 2, 3));
    }
}

fn s09_script(rng: &mut SimRng, leader_after: &mut LeaderAfter) -> Vec<Transition> {
    let mut s = vec![run(rng, 60, 80)];
    for m in 0..GROUPED.members {
        s.push(group(m, GroupAction::Join, rng));
    }
    s.push(run(rng, 20, 30));
    let all: Vec<u8> = (0..GROUPED.members).collect();
    group_rounds(rng, &mut s, 40, &all, true);
    // A consumer crashes and stays away past the longest session timeout (400 ms): the
    // leader expels it, and the others rejoin and take over its partitions from the
    // committed offsets.
    let crashed = rng.below(u64::from(GROUPED.members)) as u8;
    s.push(group(crashed, GroupAction::Crash, rng));
    let others: Vec<u8> = all.iter().copied().filter(|&m| m != crashed).collect();
    group_rounds(rng, &mut s, 20, &others, true);
    // The leader fails over while it is away.
    let leader = leader_after(&s).unwrap_or(0);
    s.push(Transition::Crash {
        node: leader,
        seed: seed(rng),
    });
    // Past the longest session timeout again, counted from the new leader's election (a new
    // leader gives every member a whole timeout from when it takes office).
    group_rounds(rng, &mut s, 110, &others, true);
    s.push(Transition::Restart {
        node: leader,
        seed: seed(rng),
    });
    // It comes back: one more generation.
    s.push(group(crashed, GroupAction::Join, rng));
    group_rounds(rng, &mut s, 40, &all, true);
    // Each member, once idle, tries to commit an offset before the committed one: refused.
    s.push(run(rng, 40, 50));
    for &m in &all {
        s.push(group(m, GroupAction::Rewind, rng));
    }
    s.push(run(rng, 20, 30));
    // No more records: the group reads and commits up to the end. A fetch may bring a single
    // record (the node's per-seed cap) and a member does one operation at a time (a fetch
    // waits for its commit), so the drain has two rounds for every record the busiest partition
    // was sent, as if the group had read none yet, and some to spare.
    let mut sent = BTreeMap::new();
    for t in &s {
        if let Transition::Produce {
            partition, records, ..
        } = t
        {
            *sent.entry(*partition).or_insert(0u32) += u32::from(*records);
        }
    }
    let most = sent.values().copied().max().unwrap_or(0);
    group_rounds(rng, &mut s, 2 * most + 20, &all, false);
    s
}

/// Per partition, the end of what was acked of the script's produces (not the end-of-run
/// probes, which come after the group stopped reading), and the group's committed offset read
/// at the end.
fn s09_ends(sim: &Sim) -> (BTreeMap<u32, u64>, BTreeMap<u32, Option<u64>>) {
    let healed = sim.stats().healed_at.unwrap_or(Time(u64::MAX));
    let mut invoked = BTreeMap::new();
    let mut acked = BTreeMap::new();
    let mut read = BTreeMap::new();
    for e in sim.history() {
        match &e.outcome {
            Outcome::Invoke(Op::Produce {
                partition, records, ..
            }) if e.time < healed => {
                invoked.insert((e.client, e.op), (partition.0, records.len() as u64));
            }
            Outcome::Invoke(Op::Group(GroupRequest::FetchOffset { partition, .. })) => {
                invoked.insert((e.client, e.op), (partition.0, 0));
            }
            Outcome::Produced { base_offset } => {
                if let Some(&(p, n)) = invoked.get(&(e.client, e.op)) {
                    let end = acked.entry(p).or_insert(0);
                    *end = (*end).max(base_offset + n);
                }
            }
            // The last fetch-offset of each partition is the end-of-run check's.
            Outcome::Group(GroupOk::Offset { offset }) => {
                if let Some(&(p, _)) = invoked.get(&(e.client, e.op)) {
                    read.insert(p, *offset);
                }
            }
            _ => {}
        }
    }
    (acked, read)
}

fn s09_check(sim: &Sim) -> Result<(), String> {
    let crash = sim.stats().last_crash.ok_or("the leader never crashed")?;
    let commits = |after: bool| {
        sim.history()
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Group(GroupOk::Committed)))
            .filter(|e| (e.time > crash) == after)
            .count()
    };
    if commits(false) == 0 || commits(true) == 0 {
        return Err(format!(
            "{} commits acked before the failover and {} after; expected some of each",
            commits(false),
            commits(true)
        ));
    }
    // Three joins, the crashed consumer's expiry, its return: five generations at least.
    let newest = sim
        .history()
        .iter()
        .filter_map(|e| match e.outcome {
            Outcome::Group(GroupOk::Joined { generation, .. }) => Some(generation),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    if newest < 5 {
        return Err(format!(
            "the newest generation joined is {newest}; expected at least 5 (the crashed \
             consumer expelled, then back)"
        ));
    }
    let refused = sim
        .history()
        .iter()
        .filter(
            |e| matches!(&e.outcome, Outcome::Fail(m) if m.contains("below the committed offset")),
        )
        .count();
    if refused == 0 {
        return Err(
            "no commit below the committed offset was refused: the rewinds never \
                    reached a leader, or were accepted"
                .to_string(),
        );
    }
    let (acked, read) = s09_ends(sim);
    for (p, end) in acked {
        let committed = read.get(&p).copied().flatten().unwrap_or(0);
        if committed < end {
            return Err(format!(
                "partition {p}: the group committed up to {committed}; every acked record \
                 (up to {end}) should have been consumed and committed"
            ));
        }
    }
    Ok(())
}

/// S09, S10, S12.
pub(super) static SCENARIOS: [Scenario; 3] = [
    Scenario {
        id: "S09",
        title: "3 nodes, a consumer group: a consumer crashes and is expelled, the leader fails over; the group resumes at its committed offsets",
        shape: GROUPED,
        configure: keep_config,
        script: s09_script,
        check: s09_check,
        pinned_seeds: include_str!("../../../../seeds/S09.seeds"),
    },
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
