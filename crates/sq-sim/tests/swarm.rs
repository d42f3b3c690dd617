//! A short swarm search on every `cargo test`: a few hundred seeds, each with its own fault mix
//! and a 200-transition script from the model's strategy (the same as `sq-sim swarm`), so that
//! rare paths and the edges of the per-seed limits are reached on every run, not only in long
//! searches. `SQ_SWARM_SEEDS` sets how many (default 300 on one node, 100 on three).

use sq_model::ClusterShape;
use sq_sim::ddmin::minimize;
use sq_sim::swarm::script;
use sq_sim::Sim;
use std::path::{Path, PathBuf};

/// `path` relative to the workspace root, as a user types it there.
fn relative(path: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    path.strip_prefix(&root)
        .map_or(path.to_path_buf(), Path::to_path_buf)
}

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
            // Saved where `sq-sim replay` (and its `--html`) reads it, as the model-based test
            // saves its cases.
            let text: String = std::iter::once(mix.script_header(seed, shape.nodes))
                .chain(smallest.iter().map(|t| format!("{t}\n")))
                .collect();
            let path =
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("swarm-test-{seed}.script"));
            let mut cfg = config();
            cfg.replay = match std::fs::write(&path, &text) {
                Ok(()) => format!(
                    "cargo run --release -p sq-sim -- replay --script {} --trace",
                    relative(&path).display()
                ),
                Err(e) => format!("(could not write {}: {e})", path.display()),
            };
            let f = Sim::new(cfg).run_script(&smallest).err().unwrap_or(f);
            panic!(
                "\n{f}\nminimal failing case ({} transitions, ddmin from {}):\n{text}",
                smallest.len(),
                transitions.len(),
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
