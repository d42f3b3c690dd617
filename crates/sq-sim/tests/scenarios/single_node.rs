//! S01–S04: one node.

use super::run_pinned;

/// S01: one producer, one consumer; every record consumed once, in order, offsets 0..n.
#[test]
fn s01_single_producer_single_consumer() {
    run_pinned("S01");
}

/// S02: five concurrent producers; unique contiguous offsets, each producer's acks increase.
#[test]
fn s02_concurrent_producers() {
    run_pinned("S02");
}

/// S03: the disk fills during writes; definite StorageFull, the node stays up, works again.
#[test]
fn s03_disk_full() {
    run_pinned("S03");
}

/// S04: crashes with torn tails and lost unsynced writes; recovery keeps every acked record.
#[test]
fn s04_crash_and_restart() {
    run_pinned("S04");
}
