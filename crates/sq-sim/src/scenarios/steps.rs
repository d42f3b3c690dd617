//! The steps scenario scripts are made of, and what their checks read back from a run.

use crate::rng::SimRng;
use crate::runtime::Sim;
use sq_client::{Op, Outcome};
use sq_core::{PartitionId, Time};
use sq_model::Transition;
use std::collections::BTreeMap;

pub(super) fn seed(rng: &mut SimRng) -> u16 {
    rng.below(1 << 16) as u16
}

pub(super) fn produce(rng: &mut SimRng, producer: u8, partition: u8) -> Transition {
    Transition::Produce {
        producer,
        partition,
        records: rng.between(1, 4) as u8,
        seed: seed(rng),
    }
}

pub(super) fn fetch(rng: &mut SimRng, consumer: u8, partition: u8) -> Transition {
    Transition::Fetch {
        consumer,
        partition,
        seed: seed(rng),
    }
}

pub(super) fn run(rng: &mut SimRng, lo: u16, hi: u16) -> Transition {
    Transition::Run {
        ms: rng.between(u64::from(lo), u64::from(hi)) as u16,
        seed: seed(rng),
    }
}

/// Let everything in flight finish, then have consumer 0 read `partition` to its end: enough
/// fetches for the longest partition a script writes, even at the smallest fetch cap (1).
pub(super) fn drain(rng: &mut SimRng, script: &mut Vec<Transition>, partitions: u8) {
    script.push(run(rng, 150, 200));
    for _ in 0..160 {
        for p in 0..partitions {
            script.push(fetch(rng, 0, p));
            script.push(run(rng, 15, 20));
        }
    }
}

/// The records consumer 0 received from `partition`, in order, as offsets.
pub(super) fn consumed(sim: &Sim, partition: PartitionId) -> Vec<u64> {
    let c = sim.consumer_client(0);
    let mut ops = BTreeMap::new();
    let mut offsets = Vec::new();
    for e in sim.history().iter().filter(|e| e.client == c) {
        match &e.outcome {
            Outcome::Invoke(Op::Fetch { partition, .. }) => {
                ops.insert(e.op, *partition);
            }
            Outcome::Fetched { records, .. } if ops.get(&e.op) == Some(&partition) => {
                offsets.extend(records.iter().map(|r| r.offset));
            }
            _ => {}
        }
    }
    offsets
}

pub(super) fn last_time(sim: &Sim, pred: impl Fn(&Outcome) -> bool) -> Option<Time> {
    sim.history()
        .iter()
        .filter(|e| pred(&e.outcome))
        .map(|e| e.time)
        .max()
}
