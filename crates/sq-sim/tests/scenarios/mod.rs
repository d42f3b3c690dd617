//! The scenarios S01–S12 over their pinned seeds (`seeds/<id>.seeds`). Every seed runs twice and
//! the two traces must hash the same: the simulation is deterministic.

mod coverage;
mod failures;
mod multi_node;
mod single_node;

use pretty_assertions::assert_eq;
use sq_sim::scenarios;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The reports of each scenario's pinned seeds, computed once per test process: the scenario's
/// own test and the coverage test (`coverage.rs`) share one run.
type Cache = Mutex<BTreeMap<String, Arc<OnceLock<Vec<sq_sim::RunReport>>>>>;

/// Runs scenario `id` over each pinned seed, twice, comparing trace hashes; returns the reports.
/// A second call (from another test of this process) waits for the first and shares its
/// reports.
pub fn run_pinned(id: &str) -> Vec<sq_sim::RunReport> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cell = {
        let mut cache = CACHE
            .get_or_init(Cache::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(cache.entry(id.to_string()).or_default())
    };
    cell.get_or_init(|| run_pinned_once(id)).clone()
}

fn run_pinned_once(id: &str) -> Vec<sq_sim::RunReport> {
    let scenario = scenarios::find(id).unwrap_or_else(|| panic!("no scenario {id}"));
    let seeds = scenario
        .seeds()
        .unwrap_or_else(|e| panic!("seeds/{id}.seeds: {e}"));
    assert!(seeds.len() >= 10, "{id} pins only {} seeds", seeds.len());
    // Seeds on every core (each its own simulation): a test that waits for another's run
    // (the coverage test) then costs little.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let reports = Mutex::new(BTreeMap::new());
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(&seed) = seeds.get(k) else {
                    return;
                };
                let first = scenario.run(seed, None).unwrap_or_else(|f| panic!("\n{f}"));
                let second = scenario.run(seed, None).unwrap_or_else(|f| panic!("\n{f}"));
                assert_eq!(
                    (first.trace_hash, first.events),
                    (second.trace_hash, second.events),
                    "{id} seed {seed}: two runs of one seed gave different traces"
                );
                reports
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(k, first);
            });
        }
    });
    let reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.into_values().collect()
}
