//! A short swarm search on every `cargo test`: a few hundred seeds, each with its own fault mix
//! and a 200-transition script from the model's strategy (the same as `sq-sim swarm`), so that
//! rare paths and the edges of the per-seed limits are reached on every run, not only in long
//! searches. `SQ_SWARM_SEEDS` sets how many (default 300).

use sq_model::ClusterShape;
use sq_sim::ddmin::minimize;
use sq_sim::swarm::script;
use sq_sim::{Sim, SimConfig};

#[test]
fn a_short_swarm_finds_nothing() {
    let seeds: u64 = std::env::var("SQ_SWARM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    // Seeds of their own, away from the ones `sq-sim swarm` starts at by default.
    let start = 1 << 40;
    for seed in start..start + seeds {
        let (mix, transitions) = script(seed, ClusterShape::SINGLE_NODE, 200);
        let config = || {
            let mut cfg = SimConfig::new(ClusterShape::SINGLE_NODE, seed);
            cfg.label = format!("swarm test · seed {seed} · {mix:?}");
            cfg.keep_history = false;
            cfg
        };
        if let Err(f) = Sim::new(config()).run_script(&transitions) {
            let smallest = minimize(&config, &transitions, f.violation.invariant);
            let f = Sim::new(config()).run_script(&smallest).err().unwrap_or(f);
            panic!(
                "\n{f}\nminimal failing case ({} transitions, ddmin from {}; save it with a \
                 `# seed: {seed}` line and replay it with `sq-sim replay --script FILE`):\n{}",
                smallest.len(),
                transitions.len(),
                smallest
                    .iter()
                    .map(|t| format!("  {t}\n"))
                    .collect::<String>()
            );
        }
    }
}
