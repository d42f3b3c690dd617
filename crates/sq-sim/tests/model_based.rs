//! The model-based test: proptest-state-machine generates transitions from the reference model
//! (`sq_model::SingleNodeCluster`), applies them to the simulated cluster, checks the
//! postconditions in `apply` and the invariants after every transition, and shrinks any failure
//! to a short script. `PROPTEST_CASES` sets how many cases run (default 512).

use proptest::test_runner::{Config, FileFailurePersistence};
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use sq_model::{ClusterModel, SingleNodeCluster, Transition};
use sq_sim::{Failure, Sim, SimConfig};

/// The system under test: the simulator, and the script applied so far (for the replay file).
struct Sut {
    sim: Sim,
    script: Vec<Transition>,
    seed: u64,
}

struct SimTest;

/// Writes the failing script where `sq-sim replay` can read it, and panics with the diagnostic.
fn fail(sut: &Sut, failure: &Failure) -> ! {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("model-case-{}.script", sut.seed));
    let text: String = sut.script.iter().map(|t| format!("{t}\n")).collect();
    let saved = std::fs::write(&path, &text).is_ok();
    let mut failure = failure.clone();
    failure.replay = if saved {
        format!(
            "cargo run --release -p sq-sim -- replay --script {} --seed {}",
            path.display(),
            sut.seed
        )
    } else {
        format!("(could not write {})", path.display())
    };
    panic!(
        "\n{failure}\nscript ({} transitions):\n{}",
        sut.script.len(),
        sut.script
            .iter()
            .enumerate()
            .map(|(i, t)| format!("  {i:>3}  {t}\n"))
            .collect::<String>()
    );
}

impl StateMachineTest for SimTest {
    type SystemUnderTest = Sut;
    type Reference = SingleNodeCluster;

    fn init_test(ref_state: &ClusterModel) -> Sut {
        let mut cfg = SimConfig::new(ref_state.shape, ref_state.seed);
        cfg.label = format!("model-based case · seed {}", ref_state.seed);
        Sut {
            sim: Sim::new(cfg),
            script: Vec::new(),
            seed: ref_state.seed,
        }
    }

    /// Applies `t`; the simulator checks every invariant and the liveness postcondition
    /// (`sq_sim::LIVENESS_BOUND`) as it goes, so that `sq-sim replay` of a saved case fails the
    /// same way.
    fn apply(mut sut: Sut, _ref_state: &ClusterModel, t: Transition) -> Sut {
        sut.script.push(t);
        if let Err(f) = sut.sim.apply(sut.script.len() - 1, &t) {
            fail(&sut, &f);
        }
        sut
    }

    fn check_invariants(sut: &Sut, ref_state: &ClusterModel) {
        // The model and the simulation agree on which nodes run.
        for (n, up) in ref_state.up.iter().enumerate() {
            assert_eq!(
                sut.sim.node(n as u32).is_some(),
                *up,
                "node n{n} up/down disagrees with the model"
            );
        }
    }

    fn teardown(mut sut: Sut, _ref_state: ClusterModel) {
        if let Err(f) = sut.sim.finish() {
            fail(&sut, &f);
        }
    }
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    Config {
        cases,
        max_shrink_iters: 20_000,
        max_shrink_time: 60_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../proptest-regressions/model_based.txt"
        )))),
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    /// Single node: produce, fetch, run, crash, restart, disk full and free, corruption, lossy net.
    #[test]
    fn single_node_cluster_matches_the_model(sequential 1..80 => SimTest);
}

#[test]
fn the_reference_proposes_only_meaningful_transitions() {
    use proptest::strategy::{Strategy, ValueTree};
    let state = ClusterModel::new(sq_model::ClusterShape::SINGLE_NODE, 1);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..2000 {
        let t = state
            .transition_strategy()
            .new_tree(&mut runner)
            .expect("a transition")
            .current();
        assert!(
            !matches!(t, Transition::Restart { .. } | Transition::DiskFree { .. }),
            "{t} proposed while every node is up with room"
        );
    }
    // Out-of-range ids are refused; pointless ones are allowed (and do nothing) for the shrinker.
    assert!(!SingleNodeCluster::preconditions(
        &state,
        &Transition::Crash { node: 1, seed: 0 }
    ));
    assert!(SingleNodeCluster::preconditions(
        &state,
        &Transition::Restart { node: 0, seed: 0 }
    ));
}
