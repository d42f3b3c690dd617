//! S05–S08: three nodes (S08 with an object store).

use super::run_pinned;

/// S05: normal operation; every acked record on all three, replicas identical.
#[test]
fn s05_normal_operation() {
    run_pinned("S05");
}

/// S06: one node crashes (the leader in most seeds); the other two keep acking after a bounded
/// pause; it rejoins and converges.
#[test]
fn s06_one_node_crashes() {
    let failovers = run_pinned("S06");
    // The leader was the node that crashed in at least half the seeds: a new one was elected.
    let seeds = sq_sim::scenarios::find("S06")
        .and_then(|s| s.seeds().ok())
        .map_or(0, |s| s.len());
    assert!(
        failovers
            .iter()
            .filter(|r| !r.stats.failovers.is_empty())
            .count()
            * 2
            >= seeds,
        "the leader crashed in fewer than half of S06's seeds"
    );
}

/// S07: a 2+1 partition (the old leader alone in most seeds): the majority acks, the minority
/// acks nothing, and after the heal its uncommitted suffix is dropped and it converges.
#[test]
fn s07_partition_two_plus_one() {
    run_pinned("S07");
}

/// S08: a store outage: produce goes on, the WAL grows and nothing is lost; with a small budget
/// producers get a definite StorageFull; after the restore the backlog uploads and the WAL
/// shrinks below a bound.
#[test]
fn s08_store_outage() {
    run_pinned("S08");
}
