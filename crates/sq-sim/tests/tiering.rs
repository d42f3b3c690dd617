//! A replica's tiering, message by message, on a simulated disk: what it trims after taking a
//! leader's snapshot whose manifest covers more than the snapshot itself.

use bytes::{BufMut, Bytes, BytesMut};
use pretty_assertions::assert_eq;
use sq_core::codec::{encode_frame, BatchMeta, EntryKind};
use sq_core::{AppendRequest, NodeId, PeerMsg, SnapshotRequest, Time};
use sq_node::{Input, Node, NodeConfig, Output};
use sq_sim::disk::SimDisk;
use sq_storage::{ObjectDesc, Snapshot, WalConfig};

const LEADER: NodeId = NodeId(0);

/// Node 1 of three, tiering on, with segments of a few entries each.
fn follower() -> (Node, SimDisk) {
    let mut config = NodeConfig::new(NodeId(1), 1);
    config.nodes = 3;
    config.tier.enabled = true;
    config.wal = WalConfig { segment_bytes: 150 };
    let mut disk = SimDisk::new();
    let node = Node::open(config, &mut disk, Time::ZERO).expect("opens");
    (node, disk)
}

/// Entry `index` of term 1: a no-op at 1, then one record of producer 7 (sequence and offset
/// `index - 2`) on partition 0.
fn frame(index: u64) -> Bytes {
    let (kind, batch) = if index == 1 {
        (EntryKind::Noop, BatchMeta::default())
    } else {
        let n = index - 2;
        let batch = BatchMeta {
            partition: 0,
            base_offset: n,
            count: 1,
            producer: 7,
            epoch: 0,
            seq: n,
        };
        (EntryKind::Batch, batch)
    };
    let mut payload = BytesMut::new();
    if kind == EntryKind::Batch {
        sq_core::codec::encode_records(&[Bytes::from(format!("record {index}"))], &mut payload);
    }
    let mut out = BytesMut::new();
    encode_frame(1, index, kind, &batch, &payload, &mut out);
    out.freeze()
}

/// Hands `input` to the node and completes every sync it asks for at once.
fn step(node: &mut Node, disk: &mut SimDisk, input: Input) -> Vec<Output> {
    let mut out = Vec::new();
    node.handle(Time::ZERO, input, disk, &mut out);
    let mut all = Vec::new();
    while let Some(o) = out.pop() {
        if let Output::Sync { token, .. } = o {
            node.handle(
                Time::ZERO,
                Input::Synced {
                    token,
                    result: Ok(()),
                },
                disk,
                &mut out,
            );
        } else {
            all.push(o);
        }
    }
    all
}

/// The leader's entry `index`, appended after `index - 1`, with commit index `commit`.
fn append(index: u64, commit: u64) -> Input {
    Input::Peer {
        from: LEADER,
        msg: PeerMsg::Append(AppendRequest {
            term: 1,
            leader: LEADER,
            prev_index: index - 1,
            prev_term: if index > 1 { 1 } else { 0 },
            entries: vec![frame(index)],
            commit,
            last_index: index,
        }),
    }
}

/// The snapshot's state bytes as a node writes them: per partition the next offset, then the
/// producer table (window; per producer: id, epoch, fenced epoch, known, next sequence, its
/// recent sequences with partition, offset and index, its refusals), then the consumer groups
/// (none).
fn state_after(index: u64) -> Bytes {
    let mut b = Vec::new();
    b.put_u32_le(1);
    b.put_u64_le(index - 1);
    b.put_u32_le(8);
    b.put_u32_le(1);
    b.put_u64_le(7);
    b.put_u32_le(0);
    b.put_u32_le(0);
    b.put_u8(1);
    b.put_u64_le(index - 1);
    let recent: Vec<u64> = (index.saturating_sub(7).max(2)..=index).collect();
    b.put_u32_le(recent.len() as u32);
    for i in recent {
        b.put_u64_le(i - 2);
        b.put_u32_le(0);
        b.put_u64_le(i - 2);
        b.put_u64_le(i);
    }
    b.put_u32_le(0);
    b.put_u32_le(0);
    Bytes::from(b)
}

/// A replica that takes a leader's snapshot keeps its log after the snapshot when it matches
/// there; the manifest may cover more of that log than the replica knows committed (the
/// leader trimmed up to its own segment's end, objects end where earlier leaders' segments
/// did), and the replica must not trim past its commit index for that.
#[test]
fn a_snapshot_whose_manifest_covers_more_trims_nothing_past_the_commit_index() {
    let (mut node, mut disk) = follower();
    for index in 1..=13 {
        step(&mut node, &mut disk, append(index, 0));
    }
    let before = node.status();
    assert_eq!(
        (before.commit_index, before.last_index, before.wal_start),
        (0, 13, 1)
    );
    let snapshot = Snapshot {
        last_index: 4,
        last_term: 1,
        manifest: vec![ObjectDesc {
            first: 1,
            last: 11,
            term: 1,
            crc: 0,
            len: 0,
            spans: Vec::new(),
        }],
        state: state_after(4),
        version: 1,
    };
    let install = Input::Peer {
        from: LEADER,
        msg: PeerMsg::Snapshot(SnapshotRequest {
            term: 1,
            leader: LEADER,
            last_index: 4,
            data: snapshot.encode(),
        }),
    };
    step(&mut node, &mut disk, install);
    let after = node.status();
    assert_eq!(node.failed(), None);
    assert_eq!(
        (after.commit_index, after.last_index, after.tiered_upto),
        (4, 13, 11),
        "the snapshot is taken, the log after it kept"
    );
    assert!(
        after.wal_start <= after.commit_index + 1,
        "n1 trimmed its WAL to start at {} past its commit index {}",
        after.wal_start,
        after.commit_index
    );
    // Once the leader says entries up to 12 are committed, the covered ones go.
    step(&mut node, &mut disk, append(14, 12));
    let later = node.status();
    assert!(
        later.wal_start > 5 && later.wal_start <= 12,
        "after the commit index moves, the WAL is trimmed below the covered entries: starts at {}",
        later.wal_start
    );
}

/// Hands `input` to the node and leaves the syncs it asks for pending: their tokens.
fn step_unsynced(node: &mut Node, disk: &mut SimDisk, input: Input) -> Vec<u64> {
    let mut out = Vec::new();
    node.handle(Time::ZERO, input, disk, &mut out);
    out.iter()
        .filter_map(|o| match o {
            Output::Sync { token, .. } => Some(*token),
            _ => None,
        })
        .collect()
}

/// A follower whose log past a snapshot's last entry is not yet durable takes the snapshot in
/// place of that log: a sync failing afterwards cuts only what followed, never below the
/// snapshot, and the follower goes on from there (the review found a follower that kept such a
/// log, cut it below its snapshot when the sync failed, and could not catch up until a
/// restart).
#[test]
fn a_snapshot_over_an_unsynced_log_survives_a_failed_sync() {
    let (mut node, mut disk) = follower();
    for index in 1..=3 {
        step(&mut node, &mut disk, append(index, 0));
    }
    let mut pending = Vec::new();
    for index in 4..=8 {
        pending.extend(step_unsynced(&mut node, &mut disk, append(index, 0)));
    }
    assert_eq!(node.status().synced_index, 3);
    let snapshot = Snapshot {
        last_index: 6,
        last_term: 1,
        manifest: vec![ObjectDesc {
            first: 1,
            last: 6,
            term: 1,
            crc: 0,
            len: 0,
            spans: Vec::new(),
        }],
        state: state_after(6),
        version: 1,
    };
    let install = Input::Peer {
        from: LEADER,
        msg: PeerMsg::Snapshot(SnapshotRequest {
            term: 1,
            leader: LEADER,
            last_index: 6,
            data: snapshot.encode(),
        }),
    };
    pending.extend(step_unsynced(&mut node, &mut disk, install));
    for token in pending {
        let failed = Input::Synced {
            token,
            result: Err(sq_storage::DiskError::Io {
                op: "sync",
                file: "wal".into(),
            }),
        };
        step(&mut node, &mut disk, failed);
    }
    let after = node.status();
    assert_eq!(node.failed(), None);
    assert!(
        after.commit_index >= 6 && after.last_index >= 6,
        "the snapshot stands: commit {} last {}",
        after.commit_index,
        after.last_index
    );
    // The leader's next entries land after the snapshot.
    step(&mut node, &mut disk, append(7, 6));
    step(&mut node, &mut disk, append(8, 7));
    assert_eq!(
        (node.status().last_index, node.status().commit_index),
        (8, 7)
    );
}

/// A node alone uploads again when a failed sync cut the manifest entry it had proposed (the
/// review found one that waited for that entry to commit, forever).
#[test]
fn a_proposal_cut_by_a_failed_sync_is_uploaded_again() {
    use sq_core::{ClientId, PartitionId, ProduceRequest, ProducerId, Request};
    use sq_storage::{StoreOk, StoreOp};
    let mut config = NodeConfig::new(NodeId(0), 1);
    config.tier.enabled = true;
    // One segment per object, so that the upload after the cut is the same object.
    config.tier.max_object_bytes = 1;
    config.wal = WalConfig { segment_bytes: 150 };
    let mut disk = SimDisk::new();
    let mut node = Node::open(config, &mut disk, Time::ZERO).expect("opens");
    let mut puts = Vec::new();
    // Handles `input`, then fires the node's deadlines (its group commit) once, completing every
    // sync (failing them if `fail_syncs`); returns the PUTs it asked for.
    let handle = |node: &mut Node, disk: &mut SimDisk, input: Input, fail_syncs: bool| {
        let mut out = Vec::new();
        node.handle(Time::ZERO, input, disk, &mut out);
        if let Some(at) = node.poll_timeout().filter(|&t| t <= Time(Time::MILLI * 2)) {
            node.handle_timeout(at, disk, &mut out);
        }
        let mut stored = Vec::new();
        while let Some(o) = out.pop() {
            match o {
                Output::Sync { token, .. } => {
                    let result = if fail_syncs {
                        Err(sq_storage::DiskError::Io {
                            op: "sync",
                            file: "wal".into(),
                        })
                    } else {
                        Ok(())
                    };
                    node.handle(Time::ZERO, Input::Synced { token, result }, disk, &mut out);
                }
                Output::Store {
                    token,
                    op: StoreOp::Put { key, .. },
                } => stored.push((token, key)),
                _ => {}
            }
        }
        stored
    };
    for seq in 0..12 {
        let request = Request::Produce(ProduceRequest {
            partition: PartitionId(0),
            producer: ProducerId(7),
            epoch: 0,
            seq,
            records: vec![Bytes::from(format!("record {seq}"))],
        });
        let input = Input::Request {
            from: ClientId(0),
            req: seq,
            request,
        };
        puts.extend(handle(&mut node, &mut disk, input, false));
    }
    let (token, key) = puts.first().cloned().expect("a sealed segment is uploaded");
    // The store confirms; the manifest entry's sync fails, and the entry is cut.
    let confirmed = Input::Stored {
        token,
        result: Ok(StoreOk::Put),
    };
    let again = handle(&mut node, &mut disk, confirmed, true);
    assert_eq!(node.failed(), None);
    assert_eq!(node.status().tiered_upto, 0, "the entry never committed");
    // The next input uploads the same object again (same key: same bytes, same term).
    let more = if again.is_empty() {
        let tick = Input::Stored {
            token: u64::MAX,
            result: Ok(StoreOk::Deleted),
        };
        handle(&mut node, &mut disk, tick, false)
    } else {
        again
    };
    assert_eq!(more.first().map(|p| p.1.clone()), Some(key));
}
