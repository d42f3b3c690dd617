//! Every invariant checker shown to fire on a doctored case: a check that cannot fail is a defect.
//! Each test builds a state or history that breaks exactly one invariant and asserts on the
//! structured violation the checker returns.

use bytes::{Bytes, BytesMut};
use pretty_assertions::assert_eq;
use sq_core::codec::{encode_frame, BatchMeta, EntryKind};
use sq_core::{ClientId, NodeId, PartitionId, ProduceRequest, ProducerId, Request, Time};
use sq_model::{ClusterShape, Invariant, LogOracle, Transition, Violation};
use sq_node::{Input, Node, NodeConfig};
use sq_sim::disk::SimDisk;
use sq_sim::invariants::durability::{check_acked_durable, AckedBatch};
use sq_sim::invariants::durable_image::DurableImage;
use sq_sim::invariants::served;
use sq_sim::store::SimStore;
use sq_sim::{Sim, SimConfig};
use sq_storage::Disk;
use std::collections::BTreeSet;

fn v(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A node that has appended one batch (p1 seq 0, offsets 0..2) but not yet synced it.
fn node_with_unsynced_batch() -> (Node, SimDisk) {
    let mut disk = SimDisk::new();
    let mut node = Node::open(NodeConfig::new(NodeId(0), 1), &mut disk, Time::ZERO).expect("opens");
    let request = Request::Produce(ProduceRequest {
        partition: PartitionId(0),
        producer: ProducerId(1),
        epoch: 0,
        seq: 0,
        records: vec![v("a"), v("b")],
    });
    let mut out = Vec::new();
    node.handle(
        Time::ZERO,
        Input::Request {
            from: ClientId(0),
            req: 0,
            request,
        },
        &mut disk,
        &mut out,
    );
    (node, disk)
}

#[test]
fn ack_before_sync_fires_invariant_1() {
    let (_node, disk) = node_with_unsynced_batch();
    let image = DurableImage::full(&disk, &SimStore::default());
    let err =
        served::check_ack_synced(0, &image, &disk, 0, (1, 0, 2), 0, &BTreeSet::new()).unwrap_err();
    assert_eq!(err.invariant, Invariant::AckedDurable);
    assert_eq!(err.subject, "partition 0 offset 0, acked to p1 (seq 0)");
    assert!(
        err.actual.contains("only 0 bytes of that file are synced"),
        "{}",
        err.actual
    );
}

#[test]
fn serving_an_unsynced_record_fires_only_committed_served() {
    let (_node, disk) = node_with_unsynced_batch();
    let image = DurableImage::full(&disk, &SimStore::default());
    let err = served::check_served_committed(0, &image, &disk, 0, 0..2).unwrap_err();
    assert_eq!(err.invariant, Invariant::OnlyCommittedServed);
}

/// Writes one frame per (kind, header) as entries 1, 2, … of term 1 to a synced segment.
fn disk_with_frames(
    frames: impl IntoIterator<Item = (EntryKind, BatchMeta, &'static [u8])>,
) -> SimDisk {
    let mut disk = SimDisk::new();
    let mut buf = BytesMut::new();
    for (i, (kind, meta, payload)) in frames.into_iter().enumerate() {
        encode_frame(1, i as u64 + 1, kind, &meta, payload, &mut buf);
    }
    let file = "wal-00000000000000000001.log";
    disk.append(file, &buf).expect("no quota");
    disk.sync(file).expect("sync");
    disk
}

/// Writes batch frames (partition 0, the given (base, count)) to a synced segment.
fn disk_with_batches(batches: &[(u64, u32)]) -> SimDisk {
    disk_with_frames(
        batches
            .iter()
            .enumerate()
            .map(|(i, &(base_offset, count))| {
                let meta = BatchMeta {
                    partition: 0,
                    base_offset,
                    count,
                    producer: 1,
                    epoch: 0,
                    seq: i as u64,
                };
                (EntryKind::Batch, meta, &b"payload"[..])
            }),
    )
}

#[test]
fn a_gap_in_the_durable_log_fires_invariant_2() {
    let image = DurableImage::full(&disk_with_batches(&[(0, 2), (5, 1)]), &SimStore::default());
    let err = image.check_contiguous(0, &image.files(), 1).unwrap_err();
    assert_eq!(
        (err.invariant, err.expected.as_str(), err.actual.as_str()),
        (
            Invariant::Contiguous,
            "a batch starting at offset 2",
            "a batch starting at offset 5"
        )
    );
    let image = DurableImage::full(&disk_with_batches(&[(0, 2), (2, 1)]), &SimStore::default());
    assert_eq!(image.check_contiguous(0, &image.files(), 1), Ok(()));
}

/// The incremental image: a file that grows is parsed from where it stopped, and a gap in what
/// it grows by fires; so does a segment whose first batch does not follow on from the last one.
#[test]
fn a_gap_found_by_the_incremental_image_fires_invariant_2() {
    let mut disk = disk_with_batches(&[(0, 2)]);
    let mut image = DurableImage::default();
    let r = image.refresh(&mut disk, &SimStore::default());
    assert_eq!(image.check_contiguous(0, &r.files, 1), Ok(()));
    // The same file grows by a batch that skips offsets 2..4.
    let mut buf = BytesMut::new();
    let meta = |base_offset, seq| BatchMeta {
        partition: 0,
        base_offset,
        count: 1,
        producer: 1,
        epoch: 0,
        seq,
    };
    encode_frame(1, 2, EntryKind::Batch, &meta(4, 1), b"p", &mut buf);
    let file = "wal-00000000000000000001.log";
    disk.append(file, &buf).expect("no quota");
    disk.sync(file).expect("sync");
    let r = image.refresh(&mut disk, &SimStore::default());
    assert_eq!(r.files, vec![file.to_string()]);
    let err = image.check_contiguous(0, &r.files, 1).unwrap_err();
    assert_eq!(
        (err.invariant, err.actual.as_str()),
        (Invariant::Contiguous, "a batch starting at offset 4")
    );
    // A next segment that does not follow on from the first.
    let mut disk = disk_with_batches(&[(0, 2)]);
    let mut image = DurableImage::default();
    image.refresh(&mut disk, &SimStore::default());
    let mut buf = BytesMut::new();
    encode_frame(1, 2, EntryKind::Batch, &meta(3, 1), b"p", &mut buf);
    let next = "wal-00000000000000000002.log";
    disk.append(next, &buf).expect("no quota");
    disk.sync(next).expect("sync");
    let r = image.refresh(&mut disk, &SimStore::default());
    let err = image.check_contiguous(0, &r.files, 1).unwrap_err();
    assert_eq!(
        (err.expected.as_str(), err.actual.as_str()),
        (
            "a batch starting at offset 2",
            "a batch starting at offset 3"
        )
    );
}

/// Transitions 0 and 1: producer 0 sends two records to partition 0, and they are acked.
fn ack_one_batch(sim: &mut Sim) {
    let script = [
        Transition::Produce {
            producer: 0,
            partition: 0,
            records: 2,
            seed: 1,
        },
        Transition::Run { ms: 30, seed: 2 },
    ];
    for (i, t) in script.iter().enumerate() {
        sim.apply(i, t).expect("a healthy run");
    }
    assert_eq!(sim.stats().acked, 1);
}

/// An acked batch destroyed behind the node's back is caught after the very next transition,
/// by the incremental image (the file it lay in was rewritten), not only at the end.
#[test]
fn a_rewritten_file_that_held_an_acked_batch_fires_invariant_1_at_once() {
    let mut sim = Sim::new(SimConfig::new(ClusterShape::SINGLE_NODE, 7));
    ack_one_batch(&mut sim);
    sim.disk_mut(0)
        .truncate("wal-00000000000000000001.log", 0)
        .expect("doctor the disk");
    let failure = sim
        .apply(2, &Transition::Run { ms: 1, seed: 3 })
        .unwrap_err();
    assert_eq!(failure.violation.invariant, Invariant::AckedDurable);
    assert_eq!(failure.transition, Some(2));
}

#[test]
fn an_acked_batch_missing_from_the_image_fires_invariant_1() {
    let image = DurableImage::full(&disk_with_batches(&[(0, 2)]), &SimStore::default());
    let images = vec![image.batches()];
    let acked = |base_offset, seq| AckedBatch {
        partition: 0,
        producer: 1,
        seq,
        base_offset,
        count: if base_offset == 0 { 2 } else { 1 },
    };
    assert_eq!(
        check_acked_durable(&images, &acked(0, 0), &BTreeSet::new()),
        Ok(())
    );
    let err = check_acked_durable(&images, &acked(2, 1), &BTreeSet::new()).unwrap_err();
    assert_eq!(
        err,
        Violation::new(
            Invariant::AckedDurable,
            "partition 0 offset 2, acked to p1 (seq 1, 1 records)",
            "synced on 1 of 1 WALs",
            "synced on 0: n0 has no durable batch at that offset",
        )
    );
}

#[test]
fn a_wrong_record_at_an_acked_offset_fires_invariant_3() {
    let mut o = LogOracle::new();
    o.invoke(0, 1, 0, &[v("a")]);
    o.acked(1, 0, 0).expect("ack");
    let err = o.fetched(0, 0, &[(0, v("garbage"))]).unwrap_err();
    assert_eq!(err.invariant, Invariant::CrcIntegrity);
    // A record reported corrupt where no fault was injected fails the final read-back too.
    let err = o
        .final_check(0, &[(0, None)], &BTreeSet::new())
        .unwrap_err();
    assert_eq!(err.invariant, Invariant::CrcIntegrity);
}

#[test]
fn a_record_at_two_offsets_fires_no_duplicates() {
    let mut o = LogOracle::new();
    o.invoke(0, 1, 0, &[v("a")]);
    o.invoke(0, 1, 1, &[v("b")]);
    o.fetched(0, 0, &[(0, v("a")), (1, v("b"))])
        .expect("first read");
    let err = o.fetched(0, 2, &[(2, v("a"))]).unwrap_err();
    assert_eq!(err.invariant, Invariant::NoDuplicates);
}

#[test]
fn unknown_or_failed_records_fire_no_phantoms() {
    let mut o = LogOracle::new();
    let err = o.fetched(0, 0, &[(0, v("never produced"))]).unwrap_err();
    assert_eq!(err.invariant, Invariant::NoPhantoms);
    o.invoke(0, 1, 0, &[v("a")]);
    o.failed(1, 0).expect("definite failure");
    let err = o.fetched(0, 0, &[(0, v("a"))]).unwrap_err();
    assert_eq!(err.invariant, Invariant::NoPhantoms);
}

#[test]
fn a_record_read_elsewhere_than_acked_fires_acked_offset_is_read_offset() {
    let mut o = LogOracle::new();
    o.invoke(0, 1, 0, &[v("a")]);
    o.invoke(0, 2, 0, &[v("b")]);
    o.acked(1, 0, 1).expect("ack at 1");
    let err = o.fetched(0, 0, &[(0, v("a"))]).unwrap_err();
    assert_eq!(err.invariant, Invariant::AckedOffsetIsReadOffset);
}

#[test]
fn a_fetched_record_that_vanishes_fires_fetched_never_disappears() {
    let mut o = LogOracle::new();
    o.invoke(0, 1, 0, &[v("a")]);
    o.invoke(0, 2, 0, &[v("b")]);
    o.fetched(0, 0, &[(0, v("a"))]).expect("read, never acked");
    let err = o.fetched(0, 0, &[(0, v("b"))]).unwrap_err();
    assert_eq!(err.invariant, Invariant::FetchedNeverDisappears);
    let err = o.final_check(0, &[], &BTreeSet::new()).unwrap_err();
    assert_eq!(err.invariant, Invariant::FetchedNeverDisappears);
}

#[test]
fn a_fetch_that_skips_fires_invariant_2() {
    let mut o = LogOracle::new();
    o.invoke(0, 1, 0, &[v("a"), v("b")]);
    let err = o.fetched(0, 0, &[(0, v("a")), (2, v("b"))]).unwrap_err();
    assert_eq!(err.invariant, Invariant::Contiguous);
}

/// The whole diagnostic: an acked record destroyed behind the node's back is caught with the
/// invariant, the run, the time, expected versus actual, the last events and the replay command.
#[test]
fn a_doctored_disk_gives_the_full_diagnostic() {
    let mut cfg = SimConfig::new(ClusterShape::SINGLE_NODE, 7);
    cfg.label = "doctored case · seed 7".into();
    cfg.replay = "cargo run --release -p sq-sim -- run --scenario S04 --seed 7 --trace".into();
    let mut sim = Sim::new(cfg);
    ack_one_batch(&mut sim);
    let segment = "wal-00000000000000000001.log";
    sim.disk_mut(0)
        .truncate(segment, 0)
        .expect("doctor the disk");
    let failure = sim.check_images().unwrap_err();
    assert_eq!(failure.violation.invariant, Invariant::AckedDurable);
    assert_eq!(failure.transition, Some(1));
    let text = failure.to_string();
    for needle in [
        "invariant 1 violated: no acked record is ever lost",
        "doctored case · seed 7 · transition 1 · event",
        "t=0.030000s",
        "partition 0 offset 0, acked to p0 (seq 0, 2 records)",
        "expected: synced on 1 of 1 WALs",
        "actual:   synced on 0: n0 has no durable batch at that offset",
        "last events:",
        "produced at 0",
        "replay: cargo run --release -p sq-sim -- run --scenario S04 --seed 7 --trace",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn a_falling_high_watermark_fires() {
    let mut w = sq_sim::invariants::watermark::Watermarks::default();
    assert_eq!(w.observe(0, 0, 5), Ok(()));
    assert_eq!(w.observe(0, 0, 5), Ok(()));
    let err = w.observe(0, 0, 4).unwrap_err();
    assert_eq!(
        err,
        Violation::new(
            Invariant::HighWatermarkMonotonic,
            "partition 0 on n0",
            "a high watermark of at least 5",
            "4",
        )
    );
}

#[test]
fn a_consumer_fetch_that_skips_ahead_fires_invariant_2() {
    use sq_sim::invariants::consumer::check_next_fetch;
    assert_eq!(check_next_fetch(ClientId(3), PartitionId(0), 7, 7), Ok(()));
    let err = check_next_fetch(ClientId(3), PartitionId(0), 7, 9).unwrap_err();
    assert_eq!(
        (err.invariant, err.actual.as_str()),
        (Invariant::Contiguous, "it starts at offset 9")
    );
}

#[test]
fn a_corrupt_report_without_an_injected_fault_fires_invariant_3() {
    use sq_sim::invariants::consumer::check_corrupt_excused;
    let hit: BTreeSet<u64> = (4..6).collect();
    assert_eq!(check_corrupt_excused(0, 4, 6, Some(&hit)), Ok(()));
    let err = check_corrupt_excused(0, 4, 7, Some(&hit)).unwrap_err();
    assert_eq!(err.invariant, Invariant::CrcIntegrity);
    assert_eq!(
        check_corrupt_excused(0, 0, 1, None).map_err(|v| v.invariant),
        Err(Invariant::CrcIntegrity)
    );
}

#[test]
fn a_partly_visible_batch_fires_no_phantoms() {
    let mut o = LogOracle::new();
    o.invoke(0, 1, 0, &[v("a"), v("b")]);
    let err = o
        .final_check(0, &[(0, Some(v("a")))], &BTreeSet::new())
        .unwrap_err();
    assert_eq!(
        (err.invariant, err.actual.as_str()),
        (Invariant::NoPhantoms, "record 1 missing")
    );
}

/// A slow network: every message takes 50 ms.
fn slow_sim() -> Sim {
    let mut cfg = SimConfig::new(ClusterShape::SINGLE_NODE, 3);
    cfg.latency = (50 * Time::MILLI, 50 * Time::MILLI);
    cfg.settle_limit = 10 * Time::MILLI;
    Sim::new(cfg)
}

fn produce_one() -> Transition {
    Transition::Produce {
        producer: 0,
        partition: 0,
        records: 1,
        seed: 1,
    }
}

#[test]
fn an_operation_unanswered_in_a_healthy_cluster_fires_liveness() {
    let mut sim = slow_sim();
    sim.apply(0, &produce_one()).expect("sent");
    sim.apply(1, &Transition::Run { ms: 5, seed: 0 })
        .expect("runs");
    assert!(sim.check_settled(Time::ZERO, 10 * Time::MILLI).is_ok());
    let err = sim.check_settled(Time::ZERO, Time::MILLI).unwrap_err();
    assert_eq!(err.violation.invariant, Invariant::Liveness);
    // And at the end: a cluster that cannot settle within the limit fails the run.
    let err = sim.finish().unwrap_err();
    assert_eq!(err.violation.invariant, Invariant::Liveness);
}

#[test]
fn a_node_that_cannot_recover_fires_recovery() {
    let mut sim = Sim::new(SimConfig::new(ClusterShape::SINGLE_NODE, 5));
    let script = [
        produce_one(),
        Transition::Run { ms: 30, seed: 2 },
        produce_one(),
        Transition::Run { ms: 30, seed: 3 },
        Transition::Crash { node: 0, seed: 4 },
    ];
    for (i, t) in script.iter().enumerate() {
        sim.apply(i, t).expect("a healthy run");
    }
    // Damage the first frame's header: synced data with a valid frame after it.
    assert!(sim
        .disk_mut(0)
        .flip_bit("wal-00000000000000000001.log", 10, 1));
    let err = sim
        .apply(5, &Transition::Restart { node: 0, seed: 0 })
        .unwrap_err();
    assert_eq!(err.violation.invariant, Invariant::Recovery);
    assert!(
        err.violation
            .actual
            .contains("synced data is corrupt, not torn"),
        "{}",
        err.violation.actual
    );
}

/// Three batches acked and synced on n0, then the node crashed: its WAL has frames followed by
/// synced frames, so a damaged header makes recovery refuse.
fn sim_with_three_acked_batches_then(fault: Transition) -> Sim {
    let mut sim = Sim::new(SimConfig::new(ClusterShape::SINGLE_NODE, 5));
    let mut script = Vec::new();
    for _ in 0..3 {
        script.push(produce_one());
        script.push(Transition::Run { ms: 30, seed: 2 });
    }
    script.push(fault);
    script.push(Transition::Crash { node: 0, seed: 4 });
    for (i, t) in script.iter().enumerate() {
        sim.apply(i, t).expect("a healthy run");
    }
    sim
}

/// A refusal to start at bytes the harness damaged (here a header flip it injected) is a typed
/// outcome, reported by the run; the same refusal at bytes nobody injected damage into stays a
/// `Recovery` violation (`a_node_that_cannot_recover_fires_recovery`).
#[test]
fn a_refusal_at_injected_header_damage_is_a_typed_outcome() {
    let header_flip = Transition::Corrupt { node: 0, seed: 7 };
    assert!(header_flip.corrupts_header());
    let mut sim = sim_with_three_acked_batches_then(header_flip);
    sim.apply(8, &Transition::Restart { node: 0, seed: 0 })
        .expect("an excused refusal is not a violation");
    let why = sim.refused(0).expect("n0 refused to start");
    assert!(why.contains("synced data is corrupt, not torn"), "{why}");
    assert!(sim.node(0).is_none(), "a node that refused stays down");
    let report = sim.finish().expect("the run ends with a typed outcome");
    assert_eq!(report.stats.refusals.len(), 1);
    assert!(
        report.stats.refusals[0].starts_with("n0 refused to start: "),
        "{:?}",
        report.stats.refusals
    );
}

/// The excuse is exact: damage the harness injected elsewhere (a payload flip) does not excuse a
/// refusal at a header nobody damaged through the harness.
#[test]
fn a_refusal_elsewhere_than_the_injected_damage_fires_recovery() {
    // Seed 0 picks a payload.
    let mut sim = sim_with_three_acked_batches_then(Transition::Corrupt { node: 0, seed: 0 });
    assert!(sim
        .disk_mut(0)
        .flip_bit("wal-00000000000000000001.log", 10, 1));
    let err = sim
        .apply(8, &Transition::Restart { node: 0, seed: 0 })
        .unwrap_err();
    assert_eq!(err.violation.invariant, Invariant::Recovery);
    assert_eq!(sim.refused(0), None);
}

/// A high watermark may fall back only to where batches were lost to an injected fault.
#[test]
fn a_watermark_below_the_excused_loss_still_fires() {
    let mut w = sq_sim::invariants::watermark::Watermarks::default();
    w.observe(0, 0, 10).expect("first");
    w.forget(0, 0, 7);
    w.observe(0, 0, 7)
        .expect("down to the lost batches: excused");
    w.observe(0, 0, 9).expect("rises again");
    let err = w.observe(0, 0, 6).unwrap_err();
    assert_eq!(err.invariant, Invariant::HighWatermarkMonotonic);
    // Another partition is not excused.
    w.observe(0, 1, 5).expect("first");
    assert!(w.observe(0, 1, 4).is_err());
}

/// Offsets lost to an injected fault may be handed out again; any other offset may not.
#[test]
fn a_reused_offset_outside_the_lost_ones_still_fires() {
    let mut o = LogOracle::new();
    o.invoke(0, 1, 0, &[v("a")]);
    o.invoke(0, 1, 1, &[v("b")]);
    o.invoke(0, 2, 0, &[v("c")]);
    o.invoke(0, 2, 1, &[v("d")]);
    o.acked(1, 0, 0).expect("a at 0");
    o.acked(1, 1, 1).expect("b at 1");
    o.forget(0, 1..2);
    o.fetched(0, 1, &[(1, v("c"))])
        .expect("offset 1 was lost to the fault: it may hold another record");
    let err = o.fetched(0, 0, &[(0, v("d"))]).unwrap_err();
    assert_eq!(err.invariant, Invariant::AckedOffsetIsReadOffset);
}

/// A node that stops after a failed append answers the producer with `StorageFailed` before it
/// dies; that reply still reaches the client (it was on the wire), after the node died. (A failed
/// sync no longer stops the node: it drops the unsynced entries and goes on.)
#[test]
fn a_reply_sent_before_the_node_died_still_arrives() {
    let mut sim = Sim::new(SimConfig::new(ClusterShape::SINGLE_NODE, 5));
    let lines = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = lines.clone();
    sim.set_trace_sink(Box::new(move |e| sink.borrow_mut().push(e.to_string())));
    let script = [
        Transition::DiskError { node: 0, seed: 0 },
        produce_one(),
        Transition::Run { ms: 5, seed: 2 },
    ];
    for (i, t) in script.iter().enumerate() {
        sim.apply(i, t).expect("a healthy run");
    }
    let lines = lines.borrow();
    let died = lines
        .iter()
        .position(|l| l.contains("n0 died"))
        .expect("the node died");
    let arrived = lines
        .iter()
        .position(|l| l.contains("c0 <- n0 produce refused") && l.contains("storage failed"))
        .expect("the reply arrived");
    assert!(died < arrived, "{lines:#?}");
    assert!(
        sim.awaiting_supervisor(0) || sim.node(0).is_some(),
        "its supervisor restarts it"
    );
    assert_eq!(sim.stats().crashes, 1);
}

/// Liveness is measured from the end of the last supervised outage (which the model cannot know
/// of), and still fires once an operation outlives its bound from there.
#[test]
fn an_operation_unanswered_after_a_supervised_restart_fires_liveness() {
    let mut sim = slow_sim();
    let script = [
        Transition::DiskError { node: 0, seed: 0 },
        produce_one(),
        Transition::Run { ms: 80, seed: 2 },
    ];
    for (i, t) in script.iter().enumerate() {
        sim.apply(i, t).expect("runs");
    }
    assert_eq!(sim.stats().supervised_restarts, 1);
    assert!(sim.check_settled(Time::ZERO, 30 * Time::MILLI).is_ok());
    let err = sim.check_settled(Time::ZERO, Time::MILLI).unwrap_err();
    assert_eq!(err.violation.invariant, Invariant::Liveness);
}

// ---- Several replicas: invariant 1 and committed-only serving by majority, Raft's safety
// properties, invariant 5.

/// Replicas over `disks`, with nothing damaged by the harness.
fn replicas<'a>(
    disks: &'a [SimDisk],
    images: &'a [DurableImage],
) -> Vec<sq_sim::invariants::majority::Replica<'a>> {
    disks
        .iter()
        .zip(images)
        .enumerate()
        .map(|(n, (disk, image))| sq_sim::invariants::majority::Replica {
            n: n as u32,
            image,
            disk,
            damaged: None,
            stray: false,
        })
        .collect()
}

#[test]
fn an_ack_synced_on_one_of_three_fires_invariant_1_naming_each_node() {
    use sq_sim::invariants::majority::check_ack_majority;
    let disks = [disk_with_batches(&[(0, 2)]), SimDisk::new(), SimDisk::new()];
    let images: Vec<_> = disks
        .iter()
        .map(|d| DurableImage::full(d, &SimStore::default()))
        .collect();
    let err = check_ack_majority(&replicas(&disks, &images), Some(0), 0, (1, 0, 2), 0).unwrap_err();
    assert_eq!(err.invariant, Invariant::AckedDurable);
    assert_eq!(err.expected, "synced on 2 of 3 WALs before the ack is sent");
    assert!(
        err.actual.starts_with("synced on 1 (n0); "),
        "{}",
        err.actual
    );
    assert!(
        err.actual.contains("n1's WAL holds no batch"),
        "{}",
        err.actual
    );
    // Synced on two of three: an ack may leave.
    let disks = [
        disk_with_batches(&[(0, 2)]),
        disk_with_batches(&[(0, 2)]),
        SimDisk::new(),
    ];
    let images: Vec<_> = disks
        .iter()
        .map(|d| DurableImage::full(d, &SimStore::default()))
        .collect();
    assert_eq!(
        check_ack_majority(&replicas(&disks, &images), Some(0), 0, (1, 0, 2), 0),
        Ok(())
    );
}

#[test]
fn serving_a_record_synced_on_one_of_three_fires_only_committed_served() {
    use sq_sim::invariants::majority::check_served_majority;
    let disks = [
        SimDisk::new(),
        disk_with_batches(&[(0, 2), (2, 1)]),
        SimDisk::new(),
    ];
    let images: Vec<_> = disks
        .iter()
        .map(|d| DurableImage::full(d, &SimStore::default()))
        .collect();
    let err = check_served_majority(&replicas(&disks, &images), 1, 0, 0..3).unwrap_err();
    assert_eq!(err.invariant, Invariant::OnlyCommittedServed);
    assert_eq!(err.subject, "partition 0 offset 0, served by n1");
}

/// A disk whose WAL holds group commits of partition 0, one entry each, at these offsets.
fn disk_with_group_commits(offsets: &[u64]) -> SimDisk {
    disk_with_frames(offsets.iter().map(|&offset| {
        let op = sq_core::GroupOp::Commit {
            group: sq_core::GroupId(0),
            member: sq_core::MemberId(1),
            generation: 1,
            partition: sq_core::PartitionId(0),
            offset,
        };
        (EntryKind::Group, op.to_meta(), &b""[..])
    }))
}

#[test]
fn a_committed_offset_answered_before_its_commit_is_on_a_majority_fires_invariant_4() {
    use sq_sim::invariants::group_offsets::{check_offset_committed, Excuses};
    // The leader appended (and synced) the commit of 5; no follower holds it yet.
    let disks = [
        disk_with_group_commits(&[3, 5]),
        disk_with_group_commits(&[3]),
        SimDisk::new(),
    ];
    let images: Vec<_> = disks
        .iter()
        .map(|d| DurableImage::full(d, &SimStore::default()))
        .collect();
    let replicas = replicas(&disks, &images);
    let check =
        |offset| check_offset_committed(&replicas, Excuses::default(), 0, 7, (0, 0), offset);
    assert_eq!(check(3), Ok(()));
    let err = check(5).unwrap_err();
    assert_eq!(
        (err.invariant, err.expected.as_str(), err.actual.as_str()),
        (
            Invariant::GroupOffsets,
            "an offset a commit entry durable on 2 replicas carries (committed)",
            "5, carried only by entry 2 (term 1) durable on n0"
        )
    );
    assert_eq!(
        check(9).map_err(|v| v.actual),
        Err("9, which no durable commit entry carries".to_string())
    );
    // A replica whose storage lies counts as holding it: its image may have lost the frame.
    let lied = Excuses {
        faulty_disk: Some(1),
        store_flipped: false,
    };
    assert_eq!(
        check_offset_committed(&replicas, lied, 0, 7, (0, 0), 5),
        Ok(())
    );
}

fn entry(crc: u32) -> sq_sim::invariants::image::EntryId {
    sq_sim::invariants::image::EntryId {
        kind: EntryKind::Batch,
        batch: BatchMeta::default(),
        payload_len: 8,
        payload_crc: crc,
    }
}

#[test]
fn two_leaders_of_one_term_fire() {
    let mut raft = sq_sim::invariants::raft::RaftChecker::default();
    assert_eq!(raft.leader(1, 4, 10), Ok(()));
    let err = raft.leader(2, 4, 10).unwrap_err();
    assert_eq!(err.invariant, Invariant::OneLeaderPerTerm);
    assert_eq!(err.actual, "n1 and n2 both lead it");
}

#[test]
fn one_index_and_term_holding_two_entries_fires_log_matching() {
    let mut raft = sq_sim::invariants::raft::RaftChecker::default();
    assert_eq!(raft.durable(0, 7, 2, entry(1)), Ok(()));
    let err = raft.durable(1, 7, 2, entry(2)).unwrap_err();
    assert_eq!(err.invariant, Invariant::LogMatching);
    assert_eq!(err.subject, "index 7 term 2");
}

#[test]
fn a_leader_without_a_committed_entry_fires_leader_completeness() {
    let mut raft = sq_sim::invariants::raft::RaftChecker::default();
    assert_eq!(
        raft.committed(0, 2, 5, |i| Some((1, entry(i as u32)))),
        Ok(())
    );
    // A leader of an older term elected late (a delayed vote) need not hold it.
    assert_eq!(raft.leader(1, 2, 4), Ok(()));
    let err = raft.leader(2, 3, 4).unwrap_err();
    assert_eq!(err.invariant, Invariant::LeaderCompleteness);
    assert_eq!(err.actual, "a log ending at index 4");
}

#[test]
fn a_committed_entry_that_changes_fires_committed_prefix_stable() {
    let mut raft = sq_sim::invariants::raft::RaftChecker::default();
    assert_eq!(
        raft.committed(0, 1, 3, |i| Some((1, entry(i as u32)))),
        Ok(())
    );
    // Another replica holds something else at committed index 2.
    let err = raft
        .committed(1, 1, 3, |i| {
            Some((1, entry(if i == 2 { 99 } else { i as u32 })))
        })
        .unwrap_err();
    assert_eq!(err.invariant, Invariant::CommittedPrefixStable);
    assert_eq!(err.subject, "committed index 2 on n1");
}

#[test]
fn a_replica_whose_log_lacks_committed_entries_fires_invariant_5() {
    let shape = ClusterShape {
        nodes: 3,
        partitions: 1,
        producers: 1,
        consumers: 1,
        members: 0,
    };
    let mut sim = Sim::new(SimConfig::new(shape, 9));
    sim.apply(0, &Transition::Run { ms: 200, seed: 0 })
        .expect("elects a leader");
    assert!(sim.check_converged().is_ok());
    // Behind the node's back, n2's WAL loses everything: it believes it holds what it held.
    let files: Vec<String> = sim.disk_mut(2).file_names().map(str::to_string).collect();
    for f in files.iter().filter(|f| f.starts_with("wal-")) {
        sim.disk_mut(2).truncate(f, 0).expect("truncates");
    }
    let err = sim.check_converged().unwrap_err();
    assert_eq!(err.violation.invariant, Invariant::Converged);
    assert!(
        err.violation.actual.contains("n2: none durable"),
        "{}",
        err.violation.actual
    );
    // The node's scrub finds the loss, and the leader repairs it: the run converges.
    assert!(sim.finish().is_ok());
}

#[test]
fn a_leader_that_commits_before_its_own_entry_fires_commit_own_term() {
    let mut raft = sq_sim::invariants::raft::RaftChecker::default();
    // It takes office at commit 4 and begins its term at index 6.
    assert_eq!(raft.leader_commit(3, 4, 6), Ok(()));
    assert_eq!(raft.leader_commit(3, 4, 9), Ok(()));
    let err = raft.leader_commit(3, 5, 9).unwrap_err();
    assert_eq!(err.invariant, Invariant::CommitOwnTerm);
    // Once its own entry is on a majority, the commit index may move.
    let mut raft = sq_sim::invariants::raft::RaftChecker::default();
    assert_eq!(raft.leader_commit(3, 4, 6), Ok(()));
    assert_eq!(raft.leader_commit(3, 6, 9), Ok(()));
}

#[test]
fn a_vote_sent_before_it_is_durable_fires_vote_durable() {
    use sq_sim::invariants::quorum::check_vote_durable;
    let durable = sq_storage::Meta {
        term: 5,
        voted_for: 0,
        ..sq_storage::Meta::default()
    };
    let err = check_vote_durable(0, 2, 5, Some(durable)).unwrap_err();
    assert_eq!(err.invariant, Invariant::VoteDurable);
    assert_eq!(err.actual, "durable: term 5, vote none");
    let voted = sq_storage::Meta {
        voted_for: 3,
        ..durable
    };
    assert_eq!(check_vote_durable(0, 2, 5, Some(voted)), Ok(()));
    assert!(check_vote_durable(0, 2, 5, None).is_err());
}

#[test]
fn an_acknowledgement_of_an_unsynced_entry_fires_replica_ack_durable() {
    use sq_sim::invariants::quorum::check_replica_ack;
    let err = check_replica_ack(1, 0, 7, false).unwrap_err();
    assert_eq!(err.invariant, Invariant::ReplicaAckDurable);
    assert_eq!(err.subject, "n1's acknowledgement of index 7 to n0");
    assert_eq!(check_replica_ack(1, 0, 7, true), Ok(()));
}

#[test]
fn an_ack_from_a_cut_off_node_fires_and_a_late_one_does_not() {
    use sq_sim::invariants::quorum::check_not_isolated;
    let err = check_not_isolated(2, 1, 4, Time(50), Some(Time(40))).unwrap_err();
    assert_eq!(err.invariant, Invariant::AckedDurable);
    // Produced before it was cut off: it may have committed then.
    assert_eq!(
        check_not_isolated(2, 1, 4, Time(30), Some(Time(40))),
        Ok(())
    );
    assert_eq!(check_not_isolated(2, 1, 4, Time(50), None), Ok(()));
}

#[test]
fn a_cut_off_node_that_raises_its_term_fires_no_term_inflation() {
    use sq_sim::invariants::quorum::check_term_cap;
    let err = check_term_cap(0, Some(4), 5).unwrap_err();
    assert_eq!(err.invariant, Invariant::NoTermInflation);
    assert_eq!(check_term_cap(0, Some(4), 4), Ok(()));
    assert_eq!(check_term_cap(0, None, 9), Ok(()));
}

#[test]
fn a_leader_still_leading_long_after_it_was_cut_off_fires() {
    use sq_sim::invariants::quorum::check_stranded_leader;
    let err = check_stranded_leader(1, Time(200), Some(Time(100)), 50).unwrap_err();
    assert_eq!(err.invariant, Invariant::StrandedLeaderStepsDown);
    assert_eq!(
        check_stranded_leader(1, Time(140), Some(Time(100)), 50),
        Ok(())
    );
    assert_eq!(check_stranded_leader(1, Time(900), None, 50), Ok(()));
}

#[test]
fn a_working_leader_deposed_fires_working_leader_kept() {
    use sq_sim::invariants::quorum::check_leader_kept;
    let err = check_leader_kept(2, 5, Some((0, 4, Time(10)))).unwrap_err();
    assert_eq!(err.invariant, Invariant::WorkingLeaderKept);
    assert_eq!(err.actual, "n2 elected leader of term 5");
    assert_eq!(check_leader_kept(2, 5, None), Ok(()));
}

#[test]
fn a_vote_granted_while_hearing_a_leader_fires_working_leader_kept() {
    use sq_sim::invariants::quorum::check_vote_while_led;
    let err = check_vote_while_led(1, 2, Time(30), Some((0, 4, Time(20))), 25).unwrap_err();
    assert_eq!(err.invariant, Invariant::WorkingLeaderKept);
    assert_eq!(
        check_vote_while_led(1, 2, Time(50), Some((0, 4, Time(20))), 25),
        Ok(())
    );
    assert_eq!(check_vote_while_led(1, 2, Time(50), None, 25), Ok(()));
}

/// Entries 1..=3 of term 2 (two batches and a no-op), as a replica's WAL held them.
fn tiered_entries() -> Vec<(sq_core::FrameHeader, Bytes)> {
    let mut out = Vec::new();
    for (index, kind, base) in [
        (1, EntryKind::Batch, 0),
        (2, EntryKind::Noop, 0),
        (3, EntryKind::Batch, 1),
    ] {
        let batch = BatchMeta {
            partition: 0,
            base_offset: base,
            count: u32::from(kind == EntryKind::Batch),
            producer: 1,
            epoch: 0,
            seq: base,
        };
        let payload = v(&format!("entry {index}"));
        let mut buf = BytesMut::new();
        encode_frame(2, index, kind, &batch, &payload, &mut buf);
        let header = sq_core::codec::decode_header(&buf).expect("just encoded");
        out.push((header, payload));
    }
    out
}

/// A store holding the object of `tiered_entries`, its PUT confirmed (`confirmed`) or landed
/// with its reply lost; the object's description; what a replica trimmed of it.
fn store_with_object(
    confirmed: bool,
) -> (
    SimStore,
    sq_storage::ObjectDesc,
    Vec<(u64, u64, sq_sim::invariants::image::EntryId)>,
) {
    use sq_sim::store::CallFate;
    let entries = tiered_entries();
    let (data, desc) = sq_storage::tier::encode_object(2, &entries);
    let mut store = SimStore::default();
    let fate = if confirmed {
        CallFate::Answered
    } else {
        CallFate::Failed {
            error: sq_storage::StoreError::Timeout,
            applied: true,
        }
    };
    let put = sq_storage::StoreOp::Put {
        key: desc.key(),
        data,
    };
    let _ = store.complete(&put, fate);
    let trimmed = entries
        .iter()
        .map(|(h, _)| (h.index, h.term, sq_sim::invariants::image::EntryId::of(h)))
        .collect();
    (store, desc, trimmed)
}

#[test]
fn trims_the_store_does_not_back_fire_invariant_6() {
    use sq_sim::invariants::tiering::check_trimmed;
    let none = |_: u64| None;
    let (store, desc, trimmed) = store_with_object(true);
    let manifest = vec![desc.clone()];
    assert_eq!(
        check_trimmed(1, &trimmed, &manifest, 3, &store, &none),
        Ok(())
    );
    // Past the replica's commit index.
    let err = check_trimmed(1, &trimmed, &manifest, 2, &store, &none).unwrap_err();
    assert_eq!(err.invariant, Invariant::TrimmedInStore);
    assert_eq!(err.expected, "trimmed at or below n1's commit index 2");
    assert_eq!(err.actual, "trimmed past it");
    // Below a range no object of the manifest holds.
    let err = check_trimmed(1, &trimmed, &[], 3, &store, &none).unwrap_err();
    assert_eq!(err.invariant, Invariant::TrimmedInStore);
    assert_eq!(err.actual, "no object of n1's manifest (0 objects) does");
    // The PUT landed, but its uploader never heard so: not confirmed.
    let (lost, desc, _) = store_with_object(false);
    let err = check_trimmed(1, &trimmed, &[desc], 3, &lost, &none).unwrap_err();
    assert_eq!(err.invariant, Invariant::TrimmedInStore);
    assert_eq!(err.actual, "the store holds it but never confirmed its PUT");
}

#[test]
fn a_trimmed_entry_the_object_holds_otherwise_fires_invariant_6() {
    use sq_sim::invariants::tiering::check_trimmed;
    let (store, desc, mut trimmed) = store_with_object(true);
    // The replica trimmed another entry at index 3 than the object holds, and it was the
    // committed one.
    trimmed[2].2.payload_crc ^= 1;
    let committed_copy = (trimmed[2].1, trimmed[2].2);
    let committed = move |i: u64| (i == 3).then_some(committed_copy);
    let err = check_trimmed(
        1,
        &trimmed,
        std::slice::from_ref(&desc),
        3,
        &store,
        &committed,
    )
    .unwrap_err();
    assert_eq!(err.invariant, Invariant::TrimmedInStore);
    assert_eq!(err.expected, format!("{} holds the same entry", desc.key()));
    // A conflicting entry nobody committed may be dropped for the object's.
    let none = |_: u64| None;
    assert_eq!(
        check_trimmed(1, &trimmed, &[desc], 3, &store, &none),
        Ok(())
    );
}

#[test]
fn a_trim_below_an_object_that_does_not_decode_fires_invariant_6() {
    use sq_sim::invariants::tiering::check_trimmed;
    use sq_storage::ObjectStore;
    let (mut store, desc, trimmed) = store_with_object(true);
    // Overwritten with other bytes behind the store's back (not a flip the harness excuses).
    let mut bytes = store.object(&desc.key()).expect("stored").to_vec();
    bytes[40] ^= 0x10;
    let _ = store.put(&desc.key(), Bytes::from(bytes));
    let none = |_: u64| None;
    let err =
        check_trimmed(1, &trimmed, std::slice::from_ref(&desc), 3, &store, &none).unwrap_err();
    assert_eq!(err.invariant, Invariant::TrimmedInStore);
    assert_eq!(err.expected, format!("{} decodes, CRC-checked", desc.key()));
}

#[test]
fn a_manifest_entry_before_its_put_is_confirmed_fires() {
    use sq_sim::invariants::tiering::check_manifest_confirmed;
    let (store, desc, _) = store_with_object(true);
    assert_eq!(check_manifest_confirmed(0, 9, &desc, &store), Ok(()));
    let (lost, desc, _) = store_with_object(false);
    let err = check_manifest_confirmed(0, 9, &desc, &lost).unwrap_err();
    assert_eq!(err.invariant, Invariant::ManifestAfterConfirm);
    assert_eq!(
        err.subject,
        format!("n0's manifest entry 9 naming {}", desc.key())
    );
    let err = check_manifest_confirmed(0, 9, &desc, &SimStore::default()).unwrap_err();
    assert_eq!(err.actual, "the store holds no such object");
}

#[test]
fn deleting_an_object_a_manifest_names_fires() {
    use sq_sim::invariants::tiering::check_delete;
    let (_, desc, _) = store_with_object(true);
    let manifest = vec![desc.clone()];
    assert_eq!(
        check_delete("segments/orphan", [(2, manifest.as_slice())]),
        Ok(())
    );
    let err = check_delete(&desc.key(), [(2, manifest.as_slice())]).unwrap_err();
    assert_eq!(err.invariant, Invariant::ManifestObjectKept);
    assert_eq!(err.actual, "deleted, and n2's snapshot manifest names it");
}

#[test]
fn a_manifest_with_overlapping_objects_fires() {
    use sq_sim::invariants::tiering::check_manifest_chain;
    let (_, desc, _) = store_with_object(true);
    assert_eq!(check_manifest_chain(0, std::slice::from_ref(&desc)), Ok(()));
    // A second object of the same range under another key (another leader's upload).
    let again = sq_storage::ObjectDesc {
        term: 3,
        ..desc.clone()
    };
    let err = check_manifest_chain(0, &[desc, again.clone()]).unwrap_err();
    assert_eq!(err.invariant, Invariant::ManifestChain);
    assert_eq!(err.expected, "an object starting at entry 4");
    assert_eq!(err.actual, format!("{} holds entries 1..=3", again.key()));
}

#[test]
fn an_oversized_or_early_fetch_fires_the_fetch_contract() {
    use sq_sim::invariants::served::check_fetch_contract;
    assert_eq!(check_fetch_contract(0, 4, 4, None), Ok(()));
    let err = check_fetch_contract(0, 5, 4, None).unwrap_err();
    assert_eq!(err.invariant, Invariant::FetchContract);
    assert_eq!(err.actual, "5 records");
    let err = check_fetch_contract(1, 1, 4, Some((3, 7))).unwrap_err();
    assert_eq!(
        err.actual,
        "served by the leader of term 3 at commit index 7, before its term's first entry committed"
    );
}

/// Invariant 4's group checks, each fed a doctored history.
mod groups {
    use pretty_assertions::assert_eq;
    use sq_core::{ClientId, PartitionId};
    use sq_model::{GroupOracle, Invariant, Violation};
    use sq_sim::invariants::consumer::check_member_resumes;

    /// A group whose members were delivered partition 0 up to `upto`.
    fn delivered(upto: u64) -> GroupOracle {
        let mut o = GroupOracle::new();
        o.delivered(0, 0, 0, upto);
        o
    }

    #[test]
    fn a_commit_below_the_committed_offset_accepted_fires_invariant_4() {
        let mut o = delivered(10);
        o.invoke_commit(7, 1, 0, 0, 1, 0, 9);
        assert_eq!(o.committed(7, 1), Ok(()));
        o.invoke_commit(8, 1, 0, 1, 1, 0, 4);
        let v = o.committed(8, 1).unwrap_err();
        assert_eq!(
            (v.invariant, v.expected.as_str()),
            (
                Invariant::GroupOffsets,
                "refused: the group had committed 9 before it was sent"
            )
        );
    }

    #[test]
    fn an_acked_commit_lost_after_a_failover_fires_invariant_4() {
        let mut o = delivered(10);
        o.invoke_commit(7, 1, 0, 0, 1, 0, 6);
        assert_eq!(o.committed(7, 1), Ok(()));
        o.invoke_read(9, 1, 0, 0);
        let v = o.read(9, 1, None).unwrap_err();
        assert_eq!(
            (v.invariant, v.actual.as_str()),
            (Invariant::GroupOffsets, "no committed offset")
        );
        // A read that completed raises the floor for later reads: never lower again.
        o.invoke_read(9, 2, 0, 0);
        assert_eq!(o.read(9, 2, Some(6)), Ok(()));
        o.invoke_commit(7, 2, 0, 0, 1, 0, 8);
        o.ended(7, 2);
        o.invoke_read(9, 3, 0, 0);
        assert_eq!(o.read(9, 3, Some(8)), Ok(()));
        o.invoke_read(9, 4, 0, 0);
        assert_eq!(
            o.read(9, 4, Some(6)).map_err(|v| v.invariant),
            Err(Invariant::GroupOffsets)
        );
    }

    #[test]
    fn a_commit_from_a_stale_generation_accepted_fires() {
        let mut o = delivered(10);
        o.invoke_join(7, 1, 0);
        assert_eq!(o.joined(7, 1, 4), Ok(()));
        o.invoke_commit(8, 1, 0, 1, 3, 0, 5);
        let v = o.committed(8, 1).unwrap_err();
        assert_eq!(
            (v.invariant, v.actual.as_str()),
            (
                Invariant::GroupGeneration,
                "acknowledged in the stale generation 3"
            )
        );
    }

    #[test]
    fn a_commit_in_the_generation_a_member_left_fires() {
        let mut o = delivered(10);
        o.invoke_join(7, 1, 0);
        assert_eq!(o.joined(7, 1, 2), Ok(()));
        o.invoke_leave(7, 2, 0);
        o.left(7, 2);
        // A leave that starts no new generation: another member's commit in generation 2.
        o.invoke_commit(8, 1, 0, 1, 2, 0, 5);
        let v = o.committed(8, 1).unwrap_err();
        assert_eq!(
            (v.invariant, v.expected.as_str(), v.actual.as_str()),
            (
                Invariant::GroupGeneration,
                "refused: the group was in generation 3 before it was sent",
                "acknowledged in the stale generation 2"
            )
        );
        // A join sent after the leave answers a newer generation.
        o.invoke_join(9, 1, 0);
        assert_eq!(
            o.joined(9, 1, 2).map_err(|v| v.invariant),
            Err(Invariant::GroupGeneration)
        );
    }

    #[test]
    fn a_commit_past_what_the_group_was_delivered_fires() {
        let mut o = delivered(5);
        o.invoke_commit(7, 1, 0, 0, 1, 0, 9);
        let v = o.committed(7, 1).unwrap_err();
        assert_eq!(
            (v.invariant, v.actual.as_str()),
            (
                Invariant::GroupNoSkip,
                "records 5..9 never delivered to the group"
            )
        );
    }

    #[test]
    fn a_member_that_resumes_past_the_committed_offset_fires() {
        assert_eq!(
            check_member_resumes(ClientId(7), PartitionId(1), 4, 4),
            Ok(())
        );
        let v = check_member_resumes(ClientId(7), PartitionId(1), 4, 12).unwrap_err();
        assert_eq!(
            v,
            Violation::new(
                Invariant::GroupNoSkip,
                "c7's fetch of partition 1",
                "from 4: where the group's committed offset or its last fetch left it",
                "from 12",
            )
        );
    }
}
