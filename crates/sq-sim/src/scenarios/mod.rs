//! The scenarios: each a seeded transition script in the model's vocabulary, plus what it
//! promises beyond the invariants. The seeds each runs by default are pinned under `seeds/`.

mod failures;
mod multi_node;
mod seeds;
mod single_node;
mod steps;
mod tiered;

pub use seeds::{
    parse_script_file, parse_seeds, script_shape, ScriptFile, ATLAS_OFF_LINE, STORE_LINE,
};
pub use tiered::{consumed_records, s11_reads_per_second};

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
    /// Adjusts the seed's config (most scenarios keep it as drawn).
    pub configure: fn(&mut SimConfig),
    /// Builds the transition script for one seed. The second argument runs a prefix of the
    /// script on this seed's cluster and says which node leads then: a script can aim a fault
    /// at the leader and still be a plain transition list that replays the same way.
    pub script: fn(&mut SimRng, &mut LeaderAfter) -> Vec<Transition>,
    /// What must hold at the end beyond the invariants; `Err` says what did not.
    pub check: fn(&Sim) -> Result<(), String>,
    /// The seeds it runs by default (the text of `seeds/<id>.seeds`).
    pub pinned_seeds: &'static str,
}

/// Runs a prefix of a script on the seed's cluster and says which node leads then.
pub type LeaderAfter<'a> = dyn FnMut(&[Transition]) -> Option<u8> + 'a;

/// Keeps a seed's config as drawn.
pub fn keep_config(_: &mut SimConfig) {}

/// The config a saved script at `path` replays under, for run `seed` on `nodes` nodes, with an
/// object store if `store`.
pub fn script_config(path: &str, seed: u64, nodes: u8, store: bool) -> SimConfig {
    let mut cfg = SimConfig::new(script_shape(nodes), seed);
    if store {
        cfg = cfg.with_store();
    }
    cfg.label = format!("script {path} · seed {seed}");
    cfg.replay =
        format!("cargo run --release -p sq-sim -- replay --script {path} --seed {seed} --trace");
    cfg
}

/// Every scenario built so far, in order.
pub fn all() -> Vec<&'static Scenario> {
    let mut all: Vec<&'static Scenario> = single_node::SCENARIOS
        .iter()
        .chain(multi_node::SCENARIOS.iter())
        .chain(tiered::SCENARIOS.iter())
        .chain(failures::SCENARIOS.iter())
        .collect();
    all.sort_by_key(|s| s.id);
    all
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

    /// The config of run `seed`.
    pub fn config(&self, seed: u64) -> SimConfig {
        let mut cfg = SimConfig::new(self.shape, seed);
        (self.configure)(&mut cfg);
        cfg.label = format!("scenario {} · seed {seed}", self.id);
        cfg.replay = format!(
            "cargo run --release -p sq-sim -- run --scenario {} --seed {seed} --trace",
            self.id
        );
        cfg
    }

    /// The script for `seed`.
    pub fn script_for(&self, seed: u64) -> Vec<Transition> {
        let cfg = self.config(seed);
        let mut leader_after = |prefix: &[Transition]| {
            let mut sim = Sim::new(cfg.clone());
            for (i, t) in prefix.iter().enumerate() {
                sim.apply(i, t).ok()?;
            }
            sim.leader().and_then(|n| u8::try_from(n).ok())
        };
        (self.script)(&mut SimRng::new(mix(seed, 0x5c3)), &mut leader_after)
    }

    /// Runs the scenario for `seed`: the script, the heal and read-back, then its own check.
    pub fn run(&self, seed: u64, sink: Option<TraceSink>) -> Result<RunReport, Box<Failure>> {
        self.run_sim(seed, sink).map(|(report, _)| report)
    }

    /// [`Scenario::run`], handing back the finished simulation too (its history and stats).
    pub fn run_sim(
        &self,
        seed: u64,
        sink: Option<TraceSink>,
    ) -> Result<(RunReport, Sim), Box<Failure>> {
        let (result, sim) = self.run_kept(seed, sink);
        result.map(|report| (report, sim))
    }

    /// [`Scenario::run`], handing back the simulation whatever the outcome (the CLI writes the
    /// history and diagram of a failing run too).
    pub fn run_kept(
        &self,
        seed: u64,
        sink: Option<TraceSink>,
    ) -> (Result<RunReport, Box<Failure>>, Sim) {
        let mut sim = Sim::new(self.config(seed));
        if let Some(sink) = sink {
            sim.set_trace_sink(sink);
        }
        let result = sim.run_script(&self.script_for(seed)).and_then(|report| {
            (self.check)(&sim)
                .map_err(|actual| {
                    sim.failure(Violation::new(
                        Invariant::Scenario,
                        format!("scenario {}: {}", self.id, self.title),
                        "the scenario's promise holds",
                        actual,
                    ))
                })
                .map(|()| report)
        });
        (result, sim)
    }
}
