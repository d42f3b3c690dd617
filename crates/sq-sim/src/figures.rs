//! The cluster's figures, measured on the pinned scenario seeds in simulated time: how long a
//! leader failover takes (S06), how long a produce takes to be acked (S05), how fast a replica
//! that was away catches up (S12), how the WAL grows and shrinks around a store outage (S08),
//! and how fast a slow consumer reads from the store (S11).

use crate::failure::Failure;
use crate::scenarios;
use sq_client::Outcome;
use sq_core::Time;
use std::collections::BTreeMap;

/// What was measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// S06: from the crash of a leader to the next leader, ms, sorted.
    pub failover_ms: Vec<f64>,
    /// S05: from a produce's invocation to its ack, ms, sorted.
    pub produce_ms: Vec<f64>,
    /// S12: (entries caught up, simulated seconds it took), one per seed.
    pub catch_ups: Vec<(u64, f64)>,
    /// S08, one per seed: (the largest WAL before the outage, the largest during it, the
    /// smallest after the restore, the budget), bytes.
    pub outages: Vec<(u64, u64, u64, u64)>,
    /// S08, one per seed: `StorageFull` answers.
    pub storage_full: Vec<u64>,
    /// S11, one per seed: (store GETs per simulated second while the consumer caught up, GETs,
    /// records read).
    pub store_reads: Vec<(f64, u64, u64)>,
}

/// The value at quantile `q` (0..=1) of sorted `v`, if any.
pub fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let k = ((v.len() - 1) as f64 * q).round() as usize;
    v.get(k).copied()
}

fn ms(ns: u64) -> f64 {
    ns as f64 / Time::MILLI as f64
}

/// Runs S05, S06 and S12 over their pinned seeds and collects the figures.
pub fn measure() -> Result<Figures, Box<Failure>> {
    let mut f = Figures::default();
    let pinned = |id: &str| {
        let s = scenarios::find(id).unwrap_or_else(|| panic!("invariant: scenario {id} exists"));
        let seeds = s
            .seeds()
            .unwrap_or_else(|e| panic!("invariant: the pinned seeds of {id} parse: {e}"));
        (s, seeds)
    };
    let (s05, seeds) = pinned("S05");
    for seed in seeds {
        let (_, sim) = s05.run_sim(seed, None)?;
        let mut invoked = BTreeMap::new();
        for e in sim.history() {
            match e.outcome {
                Outcome::Invoke(_) => {
                    invoked.insert((e.client, e.op), e.time);
                }
                Outcome::Produced { .. } => {
                    if let Some(t) = invoked.get(&(e.client, e.op)) {
                        f.produce_ms.push(ms(e.time.nanos() - t.nanos()));
                    }
                }
                _ => {}
            }
        }
    }
    let (s06, seeds) = pinned("S06");
    for seed in seeds {
        let (report, _) = s06.run_sim(seed, None)?;
        f.failover_ms
            .extend(report.stats.failovers.iter().map(|&ns| ms(ns)));
    }
    let (s12, seeds) = pinned("S12");
    for seed in seeds {
        let (report, _) = s12.run_sim(seed, None)?;
        if let Some(&(_, entries, took)) = report.stats.catch_ups.iter().find(|c| c.1 > 0) {
            f.catch_ups
                .push((entries, took as f64 / Time::SECOND as f64));
        }
    }
    let (s08, seeds) = pinned("S08");
    for seed in seeds {
        let (report, _) = s08.run_sim(seed, None)?;
        let st = &report.stats;
        let Some(&(from, until)) = st.store_outages.first() else {
            continue;
        };
        let largest = |r: std::ops::Range<u64>| {
            st.wal_samples
                .iter()
                .filter(|s| r.contains(&s.0))
                .map(|s| s.1)
                .max()
                .unwrap_or(0)
        };
        let after = st
            .wal_samples
            .iter()
            .filter(|s| s.0 > until)
            .map(|s| s.1)
            .min()
            .unwrap_or(0);
        let budget = s08.config(seed).max_wal_bytes;
        f.outages
            .push((largest(0..from), largest(from..until), after, budget));
        f.storage_full.push(st.storage_full);
    }
    let (s11, seeds) = pinned("S11");
    for seed in seeds {
        let (report, sim) = s11.run_sim(seed, None)?;
        let records = scenarios::consumed_records(&sim);
        f.store_reads.push((
            scenarios::s11_reads_per_second(&sim),
            report.stats.store.gets,
            records,
        ));
    }
    f.failover_ms.sort_by(f64::total_cmp);
    f.produce_ms.sort_by(f64::total_cmp);
    Ok(f)
}
