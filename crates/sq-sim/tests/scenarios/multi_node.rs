//! S05–S07: three nodes.

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
