//! The swarm's seeds on every core and across machines: seeds run in parallel on std threads
//! (each seed is its own single-threaded simulation), a shard takes one slice of the seed
//! space, and a JSON summary per shard merges into the summary of the whole range.
//!
//! Nothing reported depends on the number of threads: workers take seeds in increasing order
//! and skip only seeds above a failure already found, so every seed below the lowest failing
//! one runs; results are put back in seed order; the first failure is the lowest failing seed;
//! the combined hash folds the per-seed trace hashes in seed order up to it.

use crate::runtime::SimConfig;
use crate::scenarios;
use crate::swarm::Mix;
use crate::Sim;
use serde::{Deserialize, Serialize};
use sq_core::{Probe, Probes};
use sq_model::Transition;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

/// What one seed did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// The invariant it broke, if it did.
    pub violation: Option<String>,
    /// Trace events.
    pub events: u64,
    /// Simulated time, ns.
    pub sim_ns: u64,
    /// The trace hash (0 for a failing seed).
    pub hash: u64,
    /// Probe counts (a failing seed's are not kept).
    pub probes: Probes,
}

/// The config and script of swarm seed `seed`.
pub fn seed_run(seed: u64, nodes: u8, length: usize) -> (Mix, SimConfig, Vec<Transition>) {
    let shape = scenarios::script_shape(nodes);
    let (mix, script) = crate::swarm::script(seed, shape, length);
    let path = format!("swarm-{seed}.script");
    let mut cfg = mix.config(shape, seed);
    cfg.label = format!("swarm · seed {seed} · {mix:?}");
    cfg.keep_history = false;
    cfg.replay = format!("cargo run --release -p sq-sim -- replay --script {path} --trace");
    (mix, cfg, script)
}

/// Runs swarm seed `seed`.
pub fn run_seed(seed: u64, nodes: u8, length: usize) -> SeedOutcome {
    let (_, cfg, script) = seed_run(seed, nodes, length);
    match Sim::new(cfg).run_script(&script) {
        Ok(r) => SeedOutcome {
            seed,
            violation: None,
            events: r.events,
            sim_ns: r.sim_time.nanos(),
            hash: r.trace_hash,
            probes: r.probes,
        },
        Err(f) => SeedOutcome {
            seed,
            violation: Some(f.violation.invariant.to_string()),
            events: f.event,
            sim_ns: f.time.nanos(),
            hash: 0,
            probes: Probes::default(),
        },
    }
}

/// Seeds `first..first + count` on `jobs` threads. `done` sees each outcome as it comes (in
/// any order: for progress only). Returns the outcomes in seed order, up to and including the
/// lowest failing seed.
pub fn run_seeds(
    first: u64,
    count: u64,
    jobs: usize,
    nodes: u8,
    length: usize,
    mut done: impl FnMut(&SeedOutcome),
) -> Vec<SeedOutcome> {
    let next = AtomicU64::new(0);
    let failed_at = AtomicU64::new(u64::MAX);
    let results = Mutex::new(BTreeMap::new());
    let (tx, rx) = mpsc::channel::<SeedOutcome>();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let (next, failed_at, results) = (&next, &failed_at, &results);
            scope.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= count || k > failed_at.load(Ordering::SeqCst) {
                    return;
                }
                let outcome = run_seed(first + k, nodes, length);
                if outcome.violation.is_some() {
                    failed_at.fetch_min(k, Ordering::SeqCst);
                }
                if let Ok(mut r) = results.lock() {
                    r.insert(k, outcome.clone());
                }
                // The receiver lives until every worker is done.
                let _ = tx.send(outcome);
            });
        }
        drop(tx);
        for outcome in rx {
            done(&outcome);
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for (_, outcome) in results {
        let stop = outcome.violation.is_some();
        out.push(outcome);
        if stop {
            break;
        }
    }
    out
}

/// The slice `index` of `shards` of the seeds `start..start + seeds`: contiguous, as even as
/// can be. Returns (first seed, how many).
pub fn shard_range(start: u64, seeds: u64, index: u64, shards: u64) -> (u64, u64) {
    let from = u128::from(seeds) * u128::from(index) / u128::from(shards);
    let to = u128::from(seeds) * u128::from(index + 1) / u128::from(shards);
    // Both are at most `seeds`, so they fit.
    (start + from as u64, (to - from) as u64)
}

/// FNV-1a over per-seed hashes, in seed order.
fn combine(hashes: impl IntoIterator<Item = u64>) -> u64 {
    let mut h = crate::trace::Fnv64::default();
    for x in hashes {
        h.u64(x);
    }
    h.finish()
}

/// A failing seed, as a summary names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstFailure {
    /// The seed.
    pub seed: u64,
    /// The invariant it broke.
    pub invariant: String,
}

/// What a swarm run (a shard, or a merge of shards) found: deterministic fields only (no wall
/// time), so two runs of the same seeds write the same bytes whatever `--jobs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The cluster size.
    pub nodes: u8,
    /// Transitions per seed.
    pub length: usize,
    /// The first seed of the range this summary covers.
    pub start: u64,
    /// How many seeds the range holds.
    pub seeds: u64,
    /// Seeds that ran and kept every invariant (all before the first failure).
    pub ok: u64,
    /// Trace events of those seeds.
    pub events: u64,
    /// Their simulated time, ns.
    pub sim_time_ns: u64,
    /// `ok` or `violation`.
    pub verdict: String,
    /// The lowest failing seed, if any.
    pub first_failure: Option<FirstFailure>,
    /// FNV-1a over the trace hashes of the seeds that kept every invariant, in seed order.
    pub combined_hash: String,
    /// Probe counts over those seeds, by name.
    pub probes: BTreeMap<String, u64>,
    /// The trace hash of each of those seeds, in seed order from `start` (for the merge).
    pub seed_hashes: Vec<String>,
}

/// The probe counts by name, every probe listed.
pub fn probe_map(p: &Probes) -> BTreeMap<String, u64> {
    p.iter().map(|(k, n)| (k.name().to_string(), n)).collect()
}

impl Summary {
    /// The summary of `outcomes` (in seed order, as [`run_seeds`] returns them) of the range
    /// `start..start + seeds`.
    pub fn of(
        nodes: u8,
        length: usize,
        start: u64,
        seeds: u64,
        outcomes: &[SeedOutcome],
    ) -> Summary {
        let passed: Vec<&SeedOutcome> = outcomes.iter().filter(|o| o.violation.is_none()).collect();
        let mut probes = Probes::default();
        for o in &passed {
            probes.add(&o.probes);
        }
        let first_failure = outcomes.iter().find_map(|o| {
            o.violation.as_ref().map(|v| FirstFailure {
                seed: o.seed,
                invariant: v.clone(),
            })
        });
        Summary {
            nodes,
            length,
            start,
            seeds,
            ok: passed.len() as u64,
            events: passed.iter().map(|o| o.events).fold(0, u64::saturating_add),
            sim_time_ns: passed.iter().map(|o| o.sim_ns).fold(0, u64::saturating_add),
            verdict: if first_failure.is_some() {
                "violation"
            } else {
                "ok"
            }
            .into(),
            first_failure,
            combined_hash: format!("{:016x}", combine(passed.iter().map(|o| o.hash))),
            probes: probe_map(&probes),
            seed_hashes: passed.iter().map(|o| format!("{:016x}", o.hash)).collect(),
        }
    }
}

/// Why summaries do not merge.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no summaries to merge")]
    Empty,
    /// Shards of different runs.
    #[error("summaries of different runs: {0}")]
    Mismatch(String),
    /// The shards leave a gap or overlap.
    #[error("the shards do not tile one range: {0}")]
    Tiling(String),
    /// A summary contradicts itself.
    #[error("a summary is inconsistent: {0}")]
    Inconsistent(String),
}

/// Merges shard summaries into the summary of the whole range they tile: what one run over
/// the whole range would have reported (seeds past the first failure do not count).
pub fn merge(mut parts: Vec<Summary>) -> Result<Summary, MergeError> {
    parts.sort_by_key(|s| s.start);
    let first = parts.first().ok_or(MergeError::Empty)?.clone();
    let mut hashes: Vec<u64> = Vec::new();
    let mut probes: BTreeMap<String, u64> = BTreeMap::new();
    let (mut events, mut sim_ns, mut failure) = (0u64, 0u64, None);
    let mut end = first.start;
    for s in &parts {
        if (s.nodes, s.length) != (first.nodes, first.length) {
            return Err(MergeError::Mismatch(format!(
                "--nodes {} --length {} and --nodes {} --length {}",
                first.nodes, first.length, s.nodes, s.length
            )));
        }
        if s.start != end {
            return Err(MergeError::Tiling(format!(
                "one ends before seed {end}, the next starts at {}",
                s.start
            )));
        }
        end = s.start.saturating_add(s.seeds);
        if failure.is_some() {
            // A run over the whole range stops at the first failure.
            continue;
        }
        for h in &s.seed_hashes {
            let h = u64::from_str_radix(h, 16)
                .map_err(|_| MergeError::Inconsistent(format!("`{h}` is not a hash")))?;
            hashes.push(h);
        }
        if s.seed_hashes.len() as u64 != s.ok {
            return Err(MergeError::Inconsistent(format!(
                "shard from {} lists {} hashes for {} seeds",
                s.start,
                s.seed_hashes.len(),
                s.ok
            )));
        }
        for (k, n) in &s.probes {
            let c = probes.entry(k.clone()).or_default();
            *c = c.saturating_add(*n);
        }
        events = events.saturating_add(s.events);
        sim_ns = sim_ns.saturating_add(s.sim_time_ns);
        failure = s.first_failure.clone();
    }
    Ok(Summary {
        nodes: first.nodes,
        length: first.length,
        start: first.start,
        seeds: end - first.start,
        ok: hashes.len() as u64,
        events,
        sim_time_ns: sim_ns,
        verdict: if failure.is_some() { "violation" } else { "ok" }.into(),
        first_failure: failure,
        combined_hash: format!("{:016x}", combine(hashes.iter().copied())),
        probes,
        seed_hashes: hashes.iter().map(|h| format!("{h:016x}")).collect(),
    })
}

/// The probes a report prints, as a table: name, hits.
pub fn probe_table(probes: &BTreeMap<String, u64>) -> String {
    let mut out = String::from("probe                              hits\n");
    for p in Probe::ALL {
        let n = probes.get(p.name()).copied().unwrap_or(0);
        let note = if n == 0 { "  (never hit)" } else { "" };
        out.push_str(&format!("{:<32} {n:>8}{note}\n", p.name()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn shards_tile_the_range() {
        let parts: Vec<(u64, u64)> = (0..3).map(|i| shard_range(10, 10, i, 3)).collect();
        assert_eq!(parts, vec![(10, 3), (13, 3), (16, 4)]);
    }

    #[test]
    fn results_do_not_depend_on_threads_and_shards_merge_to_the_whole() {
        let whole = run_seeds(0, 6, 1, 1, 20, |_| {});
        let parallel = run_seeds(0, 6, 3, 1, 20, |_| {});
        assert_eq!(whole, parallel);
        let summary = Summary::of(1, 20, 0, 6, &whole);
        let parts: Vec<Summary> = (0..2)
            .map(|i| {
                let (first, n) = shard_range(0, 6, i, 2);
                Summary::of(1, 20, first, n, &run_seeds(first, n, 2, 1, 20, |_| {}))
            })
            .collect();
        assert_eq!(merge(parts), Ok(summary));
    }

    #[test]
    fn a_gap_between_shards_is_refused() {
        let a = Summary::of(1, 20, 0, 2, &run_seeds(0, 2, 1, 1, 20, |_| {}));
        let b = Summary::of(1, 20, 3, 1, &run_seeds(3, 1, 1, 1, 20, |_| {}));
        assert!(matches!(merge(vec![a, b]), Err(MergeError::Tiling(_))));
    }
}
