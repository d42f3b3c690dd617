//! The node's contract, request by request, on a simulated disk: idempotent produce, committed-only
//! fetch, definite StorageFull with nothing appended, recovery after a crash.

use bytes::Bytes;
use pretty_assertions::assert_eq;
use sq_core::{
    ClientId, FetchError, FetchOk, FetchRequest, FetchedRecord, NodeId, PartitionId, ProduceError,
    ProduceOk, ProduceRequest, ProducerId, Reply, Request, Time,
};
use sq_node::{Input, Node, NodeConfig, Output};
use sq_sim::disk::SimDisk;
use sq_sim::rng::SimRng;
use sq_storage::{Disk, DiskError};

struct Fixture {
    node: Node,
    disk: SimDisk,
    now: Time,
}

fn produce_as(epoch: u32, seq: u64, values: &[&str]) -> Request {
    Request::Produce(ProduceRequest {
        partition: PartitionId(0),
        producer: ProducerId(7),
        epoch,
        seq,
        records: values
            .iter()
            .map(|v| Bytes::copy_from_slice(v.as_bytes()))
            .collect(),
    })
}

fn produce(seq: u64, values: &[&str]) -> Request {
    produce_as(0, seq, values)
}

fn fetch(offset: u64) -> Request {
    Request::Fetch(FetchRequest {
        partition: PartitionId(0),
        offset,
        max_records: 10,
    })
}

fn config() -> NodeConfig {
    NodeConfig::new(NodeId(0), 1)
}

impl Fixture {
    fn new() -> Fixture {
        let mut disk = SimDisk::new();
        let node = Node::open(config(), &mut disk, Time::ZERO).expect("opens");
        Fixture {
            node,
            disk,
            now: Time::ZERO,
        }
    }

    /// The node restarted on the same disk after a process crash.
    fn restart(self) -> Fixture {
        let mut disk = self.disk;
        let node = Node::open(config(), &mut disk, Time::ZERO).expect("recovers");
        Fixture {
            node,
            disk,
            now: self.now,
        }
    }

    fn send(&mut self, req: u64, request: Request) -> Vec<Output> {
        let mut out = Vec::new();
        let input = Input::Request {
            from: ClientId(0),
            req,
            request,
        };
        self.node.handle(self.now, input, &mut self.disk, &mut out);
        out
    }

    /// Lets time run to the node's next deadline and fires it.
    fn tick(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(at) = self.node.poll_timeout() {
            self.now = at;
            self.node.handle_timeout(at, &mut self.disk, &mut out);
        }
        out
    }

    /// Completes the syncs asked for in `asked` (with `result` instead of a real sync, if given).
    fn complete(&mut self, asked: &[Output], result: Option<DiskError>) -> Vec<Output> {
        let mut out = Vec::new();
        for o in asked {
            if let Output::Sync { token, file } = o {
                let result = match &result {
                    Some(e) => Err(e.clone()),
                    None => self.disk.sync(file),
                };
                let input = Input::Synced {
                    token: *token,
                    result,
                };
                self.node.handle(self.now, input, &mut self.disk, &mut out);
            }
        }
        out
    }

    /// Group commit: the flush deadline, its sync, and what the node answers once it is done.
    fn flush(&mut self) -> Vec<Output> {
        let asked = self.tick();
        self.complete(&asked, None)
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
    assert_eq!(f.send(1, produce(0, &["a", "b"])), vec![]);
    assert_eq!(f.node.poll_timeout(), Some(Time(Time::MILLI)));
    let asked = f.tick();
    assert_eq!(
        asked,
        vec![Output::Sync {
            token: 0,
            file: "wal-00000000000000000001.log".into()
        }]
    );
    // While the sync is in flight nothing is acked or served.
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
        f.complete(&asked, None),
        vec![reply(1, Reply::Produce(Ok(ProduceOk { base_offset: 0 })))]
    );
    assert_eq!(f.node.poll_timeout(), None);
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
fn storage_full_is_definite_and_stays_so_across_a_restart() {
    let mut f = Fixture::new();
    // Room for the refusal record, not for the batch.
    f.disk.set_quota(Some(f.disk.used() + 80));
    let big = "x".repeat(100);
    assert_eq!(f.send(1, produce(0, &[&big])), vec![]);
    assert_eq!(
        f.flush(),
        vec![reply(1, Reply::Produce(Err(ProduceError::StorageFull)))]
    );
    f.disk.set_quota(None);
    // A late copy of the refused request gets the same answer, even with room now...
    assert_eq!(
        f.send(2, produce(0, &[&big])),
        vec![reply(2, Reply::Produce(Err(ProduceError::StorageFull)))]
    );
    // ... and after a restart, since the refusal is in the log.
    let mut f = f.restart();
    assert_eq!(
        f.send(3, produce(0, &[&big])),
        vec![reply(3, Reply::Produce(Err(ProduceError::StorageFull)))]
    );
    // The producer goes on in a new epoch.
    f.send(4, produce_as(1, 1, &["next"]));
    assert_eq!(
        f.flush(),
        vec![reply(4, Reply::Produce(Ok(ProduceOk { base_offset: 0 })))]
    );
}

#[test]
fn a_refusal_with_no_room_to_record_it_is_indeterminate() {
    let mut f = Fixture::new();
    f.disk.set_quota(Some(f.disk.used()));
    let out = f.send(1, produce(0, &["a"]));
    let [Output::Reply {
        reply: Reply::Produce(Err(e)),
        ..
    }] = out.as_slice()
    else {
        panic!("expected one produce error, got {out:?}");
    };
    assert_eq!(
        e.definiteness(),
        sq_core::Definiteness::Indeterminate,
        "{e}"
    );
    // Once there is room, the retry lands.
    f.disk.set_quota(None);
    f.send(2, produce(0, &["a"]));
    assert_eq!(
        f.flush(),
        vec![reply(2, Reply::Produce(Ok(ProduceOk { base_offset: 0 })))]
    );
}

#[test]
fn sequences_are_checked_both_ways() {
    let mut f = Fixture::new();
    f.send(1, produce(0, &["a"]));
    f.flush();
    // A gap in an epoch is refused definitely, and the refusal fences the epoch...
    f.send(2, produce(u64::MAX, &["gap"]));
    let refused = f.flush();
    assert_eq!(
        refused,
        vec![reply(
            2,
            Reply::Produce(Err(ProduceError::OutOfOrderSequence {
                producer: ProducerId(7),
                epoch: 0,
                seq: u64::MAX,
                expected: 1
            }))
        )]
    );
    assert!(matches!(
        f.send(3, produce(1, &["b"])).as_slice(),
        [Output::Reply {
            reply: Reply::Produce(Err(ProduceError::ProducerFenced { .. })),
            ..
        }]
    ));
    // ... but does not poison the producer: a new epoch goes on, after a restart too.
    let mut f = f.restart();
    f.send(4, produce_as(1, 1, &["b"]));
    assert_eq!(
        f.flush(),
        vec![reply(4, Reply::Produce(Ok(ProduceOk { base_offset: 1 })))]
    );
}

#[test]
fn a_sequence_older_than_the_window_is_indeterminate() {
    let mut f = Fixture::new();
    for seq in 0..10 {
        f.send(seq, produce(seq, &["v"]));
        f.flush();
    }
    let out = f.send(20, produce(0, &["v"]));
    assert_eq!(
        out,
        vec![reply(
            20,
            Reply::Produce(Err(ProduceError::StaleSequence {
                producer: ProducerId(7),
                seq: 0,
                next: 10
            }))
        )]
    );
    assert_eq!(
        ProduceError::StaleSequence {
            producer: ProducerId(7),
            seq: 0,
            next: 10
        }
        .definiteness(),
        sq_core::Definiteness::Indeterminate
    );
}

#[test]
fn a_failed_sync_drops_the_unsynced_entries_and_answers_indeterminate() {
    let mut f = Fixture::new();
    f.send(1, produce(0, &["a"]));
    f.flush();
    f.send(2, produce(1, &["b"]));
    let asked = f.tick();
    let err = DiskError::Io {
        op: "sync",
        file: "wal".into(),
    };
    let out = f.complete(&asked, Some(err));
    assert!(
        matches!(
            out.as_slice(),
            [Output::Reply {
                req: 2,
                reply: Reply::Produce(Err(ProduceError::StorageFailed(_))),
                ..
            }]
        ),
        "{out:?}"
    );
    // The entry is gone from the log: only "a" is there, and a retry appends "b" again at the
    // same offset.
    assert_eq!(
        f.send(9, fetch(0)),
        vec![reply(
            9,
            Reply::Fetch(Ok(FetchOk {
                records: records(0, &["a"]),
                high_watermark: 1
            }))
        )]
    );
    f.send(3, produce(1, &["b"]));
    assert_eq!(
        f.flush(),
        vec![reply(3, Reply::Produce(Ok(ProduceOk { base_offset: 1 })))]
    );
}

#[test]
fn batches_and_fetches_are_bounded() {
    let mut f = Fixture::new();
    let many: Vec<String> = (0..1025).map(|i| i.to_string()).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        f.send(1, produce(0, &many)),
        vec![reply(
            1,
            Reply::Produce(Err(ProduceError::TooManyRecords {
                count: 1025,
                max: 1024
            }))
        )]
    );
    f.send(2, produce_as(1, 1, &many[..1000]));
    f.flush();
    // A fetch from the middle of a batch returns what it asked for, from where it asked.
    let out = f.send(3, fetch(500));
    let [Output::Reply {
        reply: Reply::Fetch(Ok(ok)),
        ..
    }] = out.as_slice()
    else {
        panic!("expected records, got {out:?}");
    };
    let got: Vec<_> = ok.records.iter().map(|r| r.offset).collect();
    assert_eq!(got, (500..510).collect::<Vec<_>>());
    assert_eq!(ok.records[0].value, Bytes::from_static(b"500"));
}

#[test]
fn recovery_keeps_synced_batches_and_offsets_continue() {
    let mut f = Fixture::new();
    f.send(1, produce(0, &["a", "b"]));
    f.flush();
    f.send(2, produce(1, &["lost"]));
    // A sync is asked for but the machine dies before it completes: the unsynced batch may or
    // may not survive, never in part.
    let asked = f.tick();
    assert_eq!(asked.len(), 1);
    f.disk.crash(&mut SimRng::new(3));
    let mut f = f.restart();
    let hw = f.node.high_watermark(PartitionId(0)).expect("partition 0");
    assert!(hw == 2 || hw == 3, "high watermark {hw}");
    f.send(3, produce_as(1, 2, &["c"]));
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

#[test]
fn a_first_boot_records_its_term_and_a_restart_writes_nothing() {
    let f = Fixture::new();
    let mut disk = f.disk;
    assert_eq!(
        sq_storage::Meta::load(&mut disk),
        Ok(sq_storage::Meta {
            term: 1,
            voted_for: 1,
            repair_term: 0,
            repair_index: 0,
            version: 1,
        })
    );
    // A restart on a disk with no room at all: it only reads, and syncs what it read.
    disk.set_quota(Some(disk.used()));
    disk.drain_calls();
    Node::open(config(), &mut disk, Time::ZERO).expect("restarts on a full disk");
    let writes: Vec<_> = disk
        .drain_calls()
        .filter(|c| !matches!(c.op, "read" | "len" | "list" | "sync"))
        .collect();
    assert_eq!(writes, vec![]);
}

#[test]
fn the_limits_are_inclusive() {
    let mut f = Fixture::new();
    let max: Vec<&str> = vec!["r"; 1024];
    f.send(1, produce(0, &max));
    assert_eq!(
        f.flush(),
        vec![reply(1, Reply::Produce(Ok(ProduceOk { base_offset: 0 })))]
    );
    // One record as large as a frame allows (its 4-byte length prefix included), and one byte
    // more.
    let limit = sq_core::codec::MAX_PAYLOAD_LEN as usize - 4;
    let big = "x".repeat(limit);
    f.send(2, produce(1, &[&big]));
    assert_eq!(
        f.flush(),
        vec![reply(
            2,
            Reply::Produce(Ok(ProduceOk { base_offset: 1024 }))
        )]
    );
    let bigger = "x".repeat(limit + 1);
    assert_eq!(
        f.send(3, produce(2, &[&bigger])),
        vec![reply(
            3,
            Reply::Produce(Err(ProduceError::TooLarge(limit + 5)))
        )]
    );
}

#[test]
fn a_later_append_does_not_push_the_group_commit_back() {
    let mut f = Fixture::new();
    f.send(1, produce(0, &["a"]));
    let first = f.node.poll_timeout();
    assert_eq!(first, Some(Time(Time::MILLI)));
    f.now = Time(Time::MILLI / 2);
    f.send(2, produce(1, &["b"]));
    assert_eq!(f.node.poll_timeout(), first);
    assert_eq!(
        f.flush(),
        vec![
            reply(1, Reply::Produce(Ok(ProduceOk { base_offset: 0 }))),
            reply(2, Reply::Produce(Ok(ProduceOk { base_offset: 1 })))
        ]
    );
}

#[test]
fn a_fetch_spans_batches_and_a_restart_reports_a_torn_tail() {
    let mut f = Fixture::new();
    f.send(1, produce(0, &["a", "b"]));
    f.send(2, produce(1, &["c"]));
    f.flush();
    assert_eq!(
        f.send(3, fetch(1)),
        vec![reply(
            3,
            Reply::Fetch(Ok(FetchOk {
                records: records(1, &["b", "c"]),
                high_watermark: 3
            }))
        )]
    );
    // Half a frame at the end of the segment: cut on restart, and said so.
    let file = "wal-00000000000000000001.log";
    f.disk.append(file, &[0x46, 0x57, 0x51]).expect("room");
    let f = f.restart();
    assert_eq!(f.node.recovery().truncated_bytes, 3);
    assert_eq!(f.node.recovery().entries, 2);
}

/// The group requests one node answers: a commit of the committed offset again (a retry) is
/// accepted, only a lower one is refused; a member leaves once (a new generation), and a second
/// leave finds it unknown.
#[test]
fn a_recommit_is_accepted_and_a_member_leaves_once() {
    use sq_core::{GroupError, GroupId, GroupOk, GroupRequest, MemberId};
    let group = GroupId(0);
    let member = MemberId(1);
    let mut f = Fixture::new();
    let replies = |out: Vec<Output>| -> Vec<Output> {
        out.into_iter()
            .filter(|o| matches!(o, Output::Reply { .. }))
            .collect()
    };
    f.send(1, produce(0, &["a", "b", "c"]));
    f.flush();
    let ask = |f: &mut Fixture, req: u64, request: GroupRequest| {
        let mut out = replies(f.send(req, Request::Group(request)));
        out.extend(replies(f.flush()));
        out
    };
    assert_eq!(
        ask(&mut f, 2, GroupRequest::Join { group, member }),
        vec![reply(
            2,
            Reply::Group(Ok(GroupOk::Joined {
                generation: 1,
                partitions: vec![PartitionId(0)],
            }))
        )]
    );
    let commit = |offset| GroupRequest::Commit {
        group,
        member,
        generation: 1,
        partition: PartitionId(0),
        offset,
    };
    let committed = |req| vec![reply(req, Reply::Group(Ok(GroupOk::Committed)))];
    assert_eq!(ask(&mut f, 3, commit(2)), committed(3));
    assert_eq!(ask(&mut f, 4, commit(2)), committed(4));
    assert_eq!(
        ask(&mut f, 5, commit(1)),
        vec![reply(
            5,
            Reply::Group(Err(GroupError::OffsetRegression {
                offset: 1,
                committed: 2
            }))
        )]
    );
    assert_eq!(
        ask(&mut f, 6, GroupRequest::Leave { group, member }),
        vec![reply(6, Reply::Group(Ok(GroupOk::Left)))]
    );
    assert_eq!(
        ask(&mut f, 7, GroupRequest::Leave { group, member }),
        vec![reply(
            7,
            Reply::Group(Err(GroupError::UnknownMember { group, member }))
        )]
    );
    // The leave started generation 2; the next join starts 3.
    let other = MemberId(2);
    assert_eq!(
        ask(
            &mut f,
            8,
            GroupRequest::Join {
                group,
                member: other
            }
        ),
        vec![reply(
            8,
            Reply::Group(Ok(GroupOk::Joined {
                generation: 3,
                partitions: vec![PartitionId(0)],
            }))
        )]
    );
}

/// A leader whose WAL reached its budget records no group entry either: a definite
/// `StorageFull`, nothing appended.
#[test]
fn a_group_request_past_the_wal_budget_is_refused_definitely() {
    use sq_core::{GroupError, GroupId, GroupRequest, MemberId};
    let mut config = config();
    config.max_wal_bytes = 1;
    let mut disk = SimDisk::new();
    let node = Node::open(config, &mut disk, Time::ZERO).expect("opens");
    let mut f = Fixture {
        node,
        disk,
        now: Time::ZERO,
    };
    f.send(1, produce(0, &["a"]));
    f.flush();
    let bytes = f.node.wal_bytes();
    assert!(bytes >= 1, "the WAL holds the batch or its refusal");
    let join = GroupRequest::Join {
        group: GroupId(0),
        member: MemberId(1),
    };
    assert_eq!(
        f.send(2, Request::Group(join)),
        vec![reply(2, Reply::Group(Err(GroupError::StorageFull)))]
    );
    assert_eq!(f.node.wal_bytes(), bytes);
}
