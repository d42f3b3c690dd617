//! Coverage probes: every rare path marked required below must be reached by the pinned
//! scenario seeds plus the seeds of the short swarm (`tests/swarm.rs`: the model-based tests'
//! own transition strategy, run deterministically). The scenario runs are shared with the
//! scenario tests of this process; the swarm's 400 seeds run again here (about half a second).

use super::run_pinned;
use sq_core::{Probe, Probes};
use sq_sim::scenarios;
use sq_sim::sweep::run_seeds;

/// Probes no run of the suite is required to reach, with the reason.
const NOT_REQUIRED: &[(Probe, &str)] = &[];

#[test]
fn every_required_probe_is_hit() {
    let mut all = Probes::default();
    for s in scenarios::all() {
        for r in run_pinned(s.id) {
            all.add(&r.probes);
        }
    }
    // The short swarm's seeds, as tests/swarm.rs runs them.
    for (nodes, start, seeds) in [(1u8, 1u64 << 40, 300u64), (3, 1 << 41, 100)] {
        let jobs = std::thread::available_parallelism().map_or(1, usize::from);
        for o in run_seeds(start, seeds, jobs, nodes, 200, |_| {}) {
            assert_eq!(o.violation, None, "swarm seed {}", o.seed);
            all.add(&o.probes);
        }
    }
    let table: String = all
        .iter()
        .map(|(p, n)| format!("  {:<32} {n:>8}\n", p.name()))
        .collect();
    let missed: Vec<&str> = all
        .iter()
        .filter(|&(p, n)| n == 0 && !NOT_REQUIRED.iter().any(|(q, _)| *q == p))
        .map(|(p, _)| p.name())
        .collect();
    assert!(
        missed.is_empty(),
        "required probes never hit: {missed:?}\n{table}"
    );
}
