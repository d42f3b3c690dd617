//! S09–S12: a consumer group through a consumer crash and a failover; a burst on a lossy
//! network; a slow consumer behind a trimmed WAL; a node away while the cluster moves on and
//! trims.

use super::run_pinned;

/// S09: a group of three consumers; one crashes and is expelled after its session times out,
/// the leader fails over, it comes back; the group resumes at its committed offsets, skips
/// nothing, never sees a commit go back, and commits every acked record by the end.
#[test]
fn s09_consumer_group_survives_a_consumer_crash_and_a_failover() {
    run_pinned("S09");
}

/// S10: at least 5 000 records from 32 producers within one simulated second on a lossy,
/// duplicating network: no loss, no duplicate, contiguous.
#[test]
fn s10_burst_on_a_lossy_network() {
    run_pinned("S10");
}

/// S11: a consumer far behind a trimmed WAL: its fetches are served from the store, contiguous
/// and CRC-checked, and it catches up with the head.
#[test]
fn s11_slow_consumer_reads_from_the_store() {
    run_pinned("S11");
}

/// S12: a node away while at least 10 000 records commit and the cluster trims its WALs; it
/// rejoins by snapshot, the store and the WAL, and catches up within a bound.
#[test]
fn s12_node_rejoins_after_a_long_absence() {
    run_pinned("S12");
}
