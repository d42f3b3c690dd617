//! The node's contract, request by request, on a simulated disk: idempotent produce, committed-only
//! fetch, definite StorageFull with nothing appended, recovery after a crash.

use bytes::Bytes;
use pretty_assertions::assert_eq;
use sq_core::{
    ClientId, FetchError, FetchOk, FetchRequest, FetchedRecord, NodeId, PartitionId, ProduceError,
    ProduceOk, ProduceRequest, ProducerId, Reply, Request, Time,
};
use sq_node::{Input, Node, NodeConfig, Output, Timer};
use sq_sim::disk::SimDisk;
use sq_sim::rng::SimRng;

struct Fixture {
    node: Node,
    disk: SimDisk,
}

fn produce(seq: u64, values: &[&str]) -> Request {
    Request::Produce(ProduceRequest {
        partition: PartitionId(0),
        producer: ProducerId(7),
        seq,
        records: values
            .iter()
            .map(|v| Bytes::copy_from_slice(v.as_bytes()))
            .collect(),
    })
}

fn fetch(offset: u64) -> Request {
    Request::Fetch(FetchRequest {
        partition: PartitionId(0),
        offset,
        max_records: 10,
    })
}

impl Fixture {
    fn new() -> Fixture {
        let mut disk = SimDisk::new();
        let node = Node::open(NodeConfig::new(NodeId(0), 1), &mut disk).expect("opens");
        Fixture { node, disk }
    }

    fn send(&mut self, req: u64, request: Request) -> Vec<Output> {
        let mut out = Vec::new();
        let input = Input::Request {
            from: ClientId(0),
            req,
            request,
        };
        self.node
            .handle(Time::ZERO, input, &mut self.disk, &mut out);
        out
    }

    fn flush(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.node.handle(
            Time::ZERO,
            Input::Timer(Timer::Flush),
            &mut self.disk,
            &mut out,
        );
        out
    }
}

fn reply(req: u64, reply: Reply) -> Output {
    Output::Reply {
        to: ClientId(0),
        req,
        reply,
    }
}

fn records(from: u64, values: &[&str]) -> Vec<FetchedRecord> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| FetchedRecord {
            offset: from + i as u64,
            value: Bytes::copy_from_slice(v.as_bytes()),
        })
        .collect()
}

#[test]
fn ack_waits_for_the_sync_and_uncommitted_records_are_not_served() {
    let mut f = Fixture::new();
    let out = f.send(1, produce(0, &["a", "b"]));
    assert_eq!(
        out,
        vec![Output::SetTimer {
            at: Time(Time::MILLI),
            timer: Timer::Flush
        }]
    );
    let out = f.send(2, fetch(0));
    assert_eq!(
        out,
        vec![reply(
            2,
            Reply::Fetch(Ok(FetchOk {
                records: vec![],
                high_watermark: 0
            }))
        )]
    );
    assert_eq!(
        f.flush(),
        vec![reply(1, Reply::Produce(Ok(ProduceOk { base_offset: 0 })))]
    );
    assert_eq!(
        f.send(3, fetch(0)),
        vec![reply(
            3,
            Reply::Fetch(Ok(FetchOk {
                records: records(0, &["a", "b"]),
                high_watermark: 2
            }))
        )]
    );
}

#[test]
fn a_retried_sequence_returns_the_original_offset_and_appends_nothing() {
    let mut f = Fixture::new();
    f.send(1, produce(0, &["a"]));
    f.flush();
    assert_eq!(
        f.send(2, produce(0, &["a"])),
        vec![reply(2, Reply::Produce(Ok(ProduceOk { base_offset: 0 })))]
    );
    assert_eq!(f.node.high_watermark(PartitionId(0)), Some(1));
    // A late copy of seq 0 after seq 1 is still answered from the dedup window.
    f.send(4, produce(1, &["b"]));
    let late = f.send(3, produce(0, &["a"]));
    assert_eq!(
        late,
        vec![reply(3, Reply::Produce(Ok(ProduceOk { base_offset: 0 })))]
    );
}

#[test]
fn storage_full_is_definite_and_stays_so() {
    let mut f = Fixture::new();
    f.disk.set_quota(Some(f.disk.used() + 10));
    assert_eq!(
        f.send(1, produce(0, &["too big for ten bytes"])),
        vec![reply(1, Reply::Produce(Err(ProduceError::StorageFull)))]
    );
    f.disk.set_quota(None);
    // A late copy of the refused request gets the same answer, even with room now.
    assert_eq!(
        f.send(2, produce(0, &["too big for ten bytes"])),
        vec![reply(2, Reply::Produce(Err(ProduceError::StorageFull)))]
    );
    f.send(3, produce(1, &["next"]));
    assert_eq!(
        f.flush(),
        vec![reply(3, Reply::Produce(Ok(ProduceOk { base_offset: 0 })))]
    );
}

#[test]
fn recovery_keeps_synced_batches_and_offsets_continue() {
    let mut f = Fixture::new();
    f.send(1, produce(0, &["a", "b"]));
    f.flush();
    f.send(2, produce(1, &["lost"]));
    // Crash before the flush: the unsynced batch may or may not survive, never in part.
    f.disk.crash(&mut SimRng::new(3));
    let mut disk = f.disk;
    let node = Node::open(NodeConfig::new(NodeId(0), 1), &mut disk).expect("recovers");
    let mut f = Fixture { node, disk };
    let hw = f.node.high_watermark(PartitionId(0)).expect("partition 0");
    assert!(hw == 2 || hw == 3, "high watermark {hw}");
    f.send(3, produce(2, &["c"]));
    assert_eq!(
        f.flush(),
        vec![reply(3, Reply::Produce(Ok(ProduceOk { base_offset: hw })))]
    );
}

#[test]
fn out_of_range_fetch_is_a_typed_error() {
    let mut f = Fixture::new();
    assert_eq!(
        f.send(1, fetch(5)),
        vec![reply(
            1,
            Reply::Fetch(Err(FetchError::OffsetOutOfRange {
                requested: 5,
                log_start: 0,
                high_watermark: 0
            }))
        )]
    );
}

#[test]
fn an_empty_batch_is_refused_definitely() {
    let mut f = Fixture::new();
    assert_eq!(
        f.send(1, produce(0, &[])),
        vec![reply(1, Reply::Produce(Err(ProduceError::EmptyBatch)))]
    );
    assert_eq!(
        ProduceError::EmptyBatch.definiteness(),
        sq_core::Definiteness::Definite
    );
}
