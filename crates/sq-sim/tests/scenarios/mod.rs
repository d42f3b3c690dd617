//! The scenarios S01–S12 over their pinned seeds (`seeds/<id>.seeds`). Every seed runs twice and
//! the two traces must hash the same: the simulation is deterministic.

mod failures;
mod multi_node;
mod single_node;

use pretty_assertions::assert_eq;
use sq_sim::scenarios;

/// Runs scenario `id` over each pinned seed, twice, comparing trace hashes; returns the reports.
pub fn run_pinned(id: &str) -> Vec<sq_sim::RunReport> {
    let scenario = scenarios::find(id).unwrap_or_else(|| panic!("no scenario {id}"));
    let seeds = scenario
        .seeds()
        .unwrap_or_else(|e| panic!("seeds/{id}.seeds: {e}"));
    assert!(seeds.len() >= 10, "{id} pins only {} seeds", seeds.len());
    let mut reports = Vec::new();
    for seed in seeds {
        let first = scenario.run(seed, None).unwrap_or_else(|f| panic!("\n{f}"));
        let second = scenario.run(seed, None).unwrap_or_else(|f| panic!("\n{f}"));
        assert_eq!(
            (first.trace_hash, first.events),
            (second.trace_hash, second.events),
            "{id} seed {seed}: two runs of one seed gave different traces"
        );
        reports.push(first);
    }
    reports
}
