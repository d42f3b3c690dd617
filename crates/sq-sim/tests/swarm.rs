//! A short swarm search on every `cargo test`: a few hundred seeds, each with its own fault mix
//! and a 200-transition script from the model's strategy (the same as `sq-sim swarm`), so that
//! rare paths and the edges of the per-seed limits are reached on every run, not only in long
//! searches. `SQ_SWARM_SEEDS` sets how many (default 300 on one node, 100 on three).

use sq_model::ClusterShape;
use sq_sim::ddmin::minimize;
use sq_sim::swarm::script;
use sq_sim::Sim;

/// Runs `default_seeds` swarm seeds (or `SQ_SWARM_SEEDS`) of 200 transitions on `shape`,
/// from `start`, panicking with the smallest failing script.
fn swarm(shape: ClusterShape, start: u64, default_seeds: u64) {
    let seeds: u64 = std::env::var("SQ_SWARM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_seeds);
    for seed in start..start + seeds {
        let (mix, transitions) = script(seed, shape, 200);
        let config = || {
            let mut cfg = mix.config(shape, seed);
            cfg.label = format!("swarm test · seed {seed} · {mix:?}");
            cfg.keep_history = false;
            cfg
        };
        if let Err(f) = Sim::new(config()).run_script(&transitions) {
            let smallest = minimize(&config, &transitions, f.violation.invariant);
            let f = Sim::new(config()).run_script(&smallest).err().unwrap_or(f);
            panic!(
                "\n{f}\nminimal failing case ({} transitions, ddmin from {}; save it under these \
                 header lines and replay it with `sq-sim replay --script FILE`):\n{}{}",
                smallest.len(),
                transitions.len(),
                mix.script_header(seed, shape.nodes),
                smallest
                    .iter()
                    .map(|t| format!("  {t}\n"))
                    .collect::<String>()
            );
        }
    }
}

/// One node, 300 seeds (seeds of their own, away from those `sq-sim swarm` starts at).
#[test]
fn a_short_swarm_finds_nothing() {
    swarm(ClusterShape::SINGLE_NODE, 1 << 40, 300);
}

/// Three nodes, 100 seeds: partitions, clogs and pauses join the mix.
#[test]
fn a_short_three_node_swarm_finds_nothing() {
    swarm(ClusterShape::THREE_NODES, 1 << 41, 100);
}
