//! The model-based tests: proptest-state-machine generates transitions from the reference model
//! (`sq_model::SingleNodeCluster`, `sq_model::ThreeNodeCluster`), applies them to the simulated cluster, checks the
//! postconditions in `apply` and the invariants after every transition, and shrinks any failure
//! to a short script. A ddmin pass then cuts what proptest's shrinking leaves behind, and the
//! smallest script that still breaks the same invariant is printed and saved for `sq-sim
//! replay`. `PROPTEST_CASES` sets how many cases run (default 512).

use proptest::test_runner::{Config, FileFailurePersistence, TestError, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use sq_model::{
    ClusterModel, ClusterShape, GroupCluster, SingleNodeCluster, ThreeNodeCluster, TieredCluster,
    Transition,
};
use sq_sim::ddmin::{minimize, violated};
use sq_sim::{Sim, SimConfig};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// The system under test: the simulator.
struct Sut {
    sim: Sim,
}

/// The test of the simulated cluster against reference `R`.
struct SimTest<R>(PhantomData<R>);

/// What a reference state machine says of the cluster it models.
trait Reference: ReferenceStateMachine<State = ClusterModel, Transition = Transition> {
    /// The cluster's shape.
    const SHAPE: ClusterShape;
    /// Whether the cluster tiers to an object store.
    const STORE: bool = false;
}

impl Reference for SingleNodeCluster {
    const SHAPE: ClusterShape = ClusterShape::SINGLE_NODE;
}

impl Reference for ThreeNodeCluster {
    const SHAPE: ClusterShape = ClusterShape::THREE_NODES;
}

impl Reference for GroupCluster {
    const SHAPE: ClusterShape = ClusterShape::THREE_NODES;
    const STORE: bool = true;
}

impl Reference for TieredCluster {
    const SHAPE: ClusterShape = ClusterShape::THREE_NODES;
    const STORE: bool = true;
}

fn sim_config(shape: ClusterShape, store: bool, seed: u64) -> SimConfig {
    let mut cfg = SimConfig::new(shape, seed);
    if store {
        cfg = cfg.with_store();
    }
    cfg.label = format!("model-based case · seed {seed}");
    cfg.keep_history = false;
    cfg
}

/// `path` relative to the workspace root, as a user types it there.
fn relative(path: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    path.strip_prefix(&root)
        .map_or(path.to_path_buf(), Path::to_path_buf)
}

/// Runs ddmin over the case proptest shrank to, saves the smallest script that breaks the same
/// invariant where `sq-sim replay` reads it, and panics with its diagnostic.
fn report(shape: ClusterShape, store: bool, seed: u64, shrunk: &[Transition], why: &str) -> ! {
    let config = || sim_config(shape, store, seed);
    let Some(invariant) = violated(&config, shrunk) else {
        panic!(
            "\n{why}\nminimal failing case ({} transitions):\n{}",
            shrunk.len(),
            listing(shrunk)
        );
    };
    let smallest = minimize(&config, shrunk, invariant);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("model-case-{seed}.script"));
    let store_line = if store {
        format!("{}\n", sq_sim::scenarios::STORE_LINE)
    } else {
        String::new()
    };
    let header = format!("# seed: {seed}\n# nodes: {}\n{store_line}", shape.nodes);
    let text: String = std::iter::once(header)
        .chain(smallest.iter().map(|t| format!("{t}\n")))
        .collect();
    let mut cfg = config();
    cfg.replay = match std::fs::write(&path, &text) {
        Ok(()) => format!(
            "cargo run --release -p sq-sim -- replay --script {} --trace",
            relative(&path).display()
        ),
        Err(e) => format!("(could not write {}: {e})", relative(&path).display()),
    };
    let failure = match Sim::new(cfg).run_script(&smallest) {
        Err(f) => f.to_string(),
        Ok(_) => unreachable!("invariant: ddmin keeps only scripts that fail"),
    };
    panic!(
        "\n{failure}\nminimal failing case ({} transitions; proptest shrank to {}, ddmin to {}):\n{}",
        smallest.len(),
        shrunk.len(),
        smallest.len(),
        listing(&smallest)
    );
}

fn listing(script: &[Transition]) -> String {
    script
        .iter()
        .enumerate()
        .map(|(i, t)| format!("  {i:>3}  {t}\n"))
        .collect()
}

impl<R: Reference> StateMachineTest for SimTest<R> {
    type SystemUnderTest = Sut;
    type Reference = R;

    fn init_test(ref_state: &ClusterModel) -> Sut {
        Sut {
            sim: Sim::new(sim_config(R::SHAPE, R::STORE, ref_state.seed)),
        }
    }

    /// Applies `t`; the simulator checks every invariant and the liveness postcondition
    /// (`SimConfig::liveness_bound`) as it goes, so that `sq-sim replay` of a saved case fails
    /// the same way.
    fn apply(mut sut: Sut, _ref_state: &ClusterModel, t: Transition) -> Sut {
        let index = sut.sim.transitions_applied();
        if let Err(f) = sut.sim.apply(index, &t) {
            panic!("\n{f}");
        }
        sut
    }

    fn check_invariants(sut: &Sut, ref_state: &ClusterModel) {
        // The model and the simulation agree on which nodes run. A node the model thinks up may
        // be waiting for its supervisor (it died on its own) or have refused to start after
        // injected damage (a typed outcome the simulator checks); a node the model thinks down
        // never runs.
        for (n, up) in ref_state.up.iter().enumerate() {
            let n = n as u32;
            let running = sut.sim.node(n).is_some();
            let explained = sut.sim.awaiting_supervisor(n)
                || sut.sim.refused(n).is_some()
                || sut.sim.waiting_for_room(n);
            assert!(
                if *up { running || explained } else { !running },
                "node n{n} up/down disagrees with the model (model: up={up}, running={running})"
            );
        }
    }

    fn teardown(mut sut: Sut, _ref_state: ClusterModel) {
        if let Err(f) = sut.sim.finish() {
            panic!("\n{f}");
        }
    }
}

/// The runner's config: `default_cases` unless `PROPTEST_CASES` says otherwise, failures kept in
/// `proptest-regressions/<file>`.
fn config(default_cases: u32, file: &'static str) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../proptest-regressions")
        .join(file);
    Config {
        cases,
        max_shrink_iters: 20_000,
        max_shrink_time: 60_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(Box::leak(
            path.to_string_lossy().into_owned().into_boxed_str(),
        )))),
        ..Config::default()
    }
}

/// Runs the model-based test against reference `R`.
fn check_against<R: Reference>(default_cases: u32, file: &'static str) {
    check_long::<R>(default_cases, file, 1..80);
}

/// Runs the model-based test against reference `R`, with scripts of `length` transitions.
fn check_long<R: Reference>(
    default_cases: u32,
    file: &'static str,
    length: std::ops::Range<usize>,
) {
    let mut runner = TestRunner::new(config(default_cases, file));
    let strategy = R::sequential_strategy(length);
    let result = runner.run(&strategy, |(initial, transitions, seen)| {
        SimTest::<R>::test_sequential(config(default_cases, file), initial, transitions, seen);
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, (initial, transitions, _))) => report(
            R::SHAPE,
            R::STORE,
            initial.seed,
            &transitions,
            why.message(),
        ),
        Err(TestError::Abort(why)) => panic!("the model-based test gave up: {why}"),
    }
}

/// Single node: produce, fetch, run, crash, restart, disk full and free, disk errors,
/// corruption, a lossy network.
#[test]
fn single_node_cluster_matches_the_model() {
    check_against::<SingleNodeCluster>(512, "model_based.txt");
}

/// Three nodes: the same, plus partitions of every kind (2+1, the leader alone, 1+1+1,
/// one-way, partial), clogged links, heals and pauses, on any node.
#[test]
fn three_node_cluster_matches_the_model() {
    check_against::<ThreeNodeCluster>(512, "three_node_cluster.txt");
}

/// Three nodes tiering to an object store: the same, plus store outages and restores, error
/// rates, a PUT whose reply is lost, and a flipped object.
#[test]
fn tiered_cluster_matches_the_model() {
    check_against::<TieredCluster>(256, "tiered_cluster.txt");
}

/// Three nodes with the same faults, the consumer group's members acting most of the time:
/// joins, fetches, commits, fetch-offsets, leaves, consumer crashes and stalls. The cluster
/// tiers to the store, so group state must also survive trims, snapshots and restarts from
/// them.
#[test]
fn consumer_group_matches_the_model() {
    // A member's loop takes several operations before its first commit: longer scripts.
    check_long::<GroupCluster>(128, "consumer_group.txt", 40..240);
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
