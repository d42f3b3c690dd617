//! Replays every saved counterexample of a fixed bug (`seeds/regressions/*.script`) forever:
//! proptest's saved RNG seeds stop reproducing when a strategy changes, these scripts do not.

use sq_sim::scenarios::{parse_script_file, script_config};
use sq_sim::Sim;
use std::path::Path;

#[test]
fn every_saved_counterexample_now_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let dir = root.join("seeds/regressions");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "script"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scripts under {}", dir.display());
    for path in paths {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = parse_script_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let seed = file.seed.unwrap_or(0);
        let mut model =
            sq_model::ClusterModel::new(sq_sim::scenarios::script_shape(file.nodes), seed);
        if file.store {
            model = model.with_store();
        }
        let fits = model.check_script(&file.transitions);
        assert_eq!(
            fits,
            Ok(()),
            "{}: a transition does not fit the cluster",
            path.display()
        );
        // Printed relative to the workspace, as a user there types it.
        let shown = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let cfg = script_config(&shown, seed, file.nodes, file.store);
        let mut sim = Sim::new(cfg);
        if let Err(f) = sim.run_script(&file.transitions) {
            panic!("\n{f}");
        }
    }
}
