//! The scenarios: each a seeded transition script in the model's vocabulary, plus what it
//! promises beyond the invariants. The seeds each runs by default are pinned under `seeds/`.

mod seeds;
mod single_node;

pub use seeds::{parse_script_file, parse_seeds, ScriptFile};

use crate::failure::Failure;
use crate::rng::{mix, SimRng};
use crate::runtime::{RunReport, Sim, SimConfig};
use crate::trace::TraceSink;
use sq_model::{ClusterShape, Invariant, ParseError, Transition, Violation};

/// A scenario.
pub struct Scenario {
    /// S01 to S12.
    pub id: &'static str,
    /// One line on what happens.
    pub title: &'static str,
    /// The cluster it runs on.
    pub shape: ClusterShape,
    /// Builds the transition script for one seed.
    pub script: fn(&mut SimRng) -> Vec<Transition>,
    /// What must hold at the end beyond the invariants; `Err` says what did not.
    pub check: fn(&Sim) -> Result<(), String>,
    /// The seeds it runs by default (the text of `seeds/<id>.seeds`).
    pub pinned_seeds: &'static str,
}

/// The config a saved script at `path` replays under, for run `seed`.
pub fn script_config(path: &str, seed: u64) -> SimConfig {
    let mut cfg = SimConfig::new(ClusterShape::SINGLE_NODE, seed);
    cfg.label = format!("script {path} · seed {seed}");
    cfg.replay =
        format!("cargo run --release -p sq-sim -- replay --script {path} --seed {seed} --trace");
    cfg
}

/// Every scenario built so far, in order.
pub fn all() -> Vec<&'static Scenario> {
    single_node::SCENARIOS.iter().collect()
}

/// The scenario `id` (case-insensitive).
pub fn find(id: &str) -> Option<&'static Scenario> {
    all().into_iter().find(|s| s.id.eq_ignore_ascii_case(id))
}

impl Scenario {
    /// The seeds pinned for this scenario.
    pub fn seeds(&self) -> Result<Vec<u64>, ParseError> {
        parse_seeds(self.pinned_seeds)
    }

    /// The script for `seed`.
    pub fn script_for(&self, seed: u64) -> Vec<Transition> {
        (self.script)(&mut SimRng::new(mix(seed, 0x5c3)))
    }

    /// Runs the scenario for `seed`: the script, the heal and read-back, then its own check.
    pub fn run(&self, seed: u64, sink: Option<TraceSink>) -> Result<RunReport, Box<Failure>> {
        let mut cfg = SimConfig::new(self.shape, seed);
        cfg.label = format!("scenario {} · seed {seed}", self.id);
        cfg.replay = format!(
            "cargo run --release -p sq-sim -- run --scenario {} --seed {seed} --trace",
            self.id
        );
        let mut sim = Sim::new(cfg);
        if let Some(sink) = sink {
            sim.set_trace_sink(sink);
        }
        let report = sim.run_script(&self.script_for(seed))?;
        (self.check)(&sim).map_err(|actual| {
            sim.failure(Violation::new(
                Invariant::Scenario,
                format!("scenario {}: {}", self.id, self.title),
                "the scenario's promise holds",
                actual,
            ))
        })?;
        Ok(report)
    }
}
