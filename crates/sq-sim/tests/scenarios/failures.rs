//! S10, S12: a burst on a lossy network; a node away while the cluster moves on.

use super::run_pinned;

/// S10: at least 5 000 records from 32 producers within one simulated second on a lossy,
/// duplicating network: no loss, no duplicate, contiguous.
#[test]
fn s10_burst_on_a_lossy_network() {
    run_pinned("S10");
}

/// S12: a node away while at least 10 000 records commit; it rejoins and catches up within a
/// bound from its peers' WALs.
#[test]
fn s12_node_rejoins_after_a_long_absence() {
    run_pinned("S12");
}
