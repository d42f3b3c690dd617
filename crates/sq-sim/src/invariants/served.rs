//! Checks on what a node sends, made the moment it sends it: an ack only for a batch already
//! synced (invariant 1 at ack time), records only from synced batches (never uncommitted ones).

use crate::disk::SimDisk;
use sq_core::codec::{self, HEADER_LEN};
use sq_core::PartitionId;
use sq_model::{Invariant, Violation};
use sq_node::Node;
use std::collections::BTreeSet;

/// What the durable bytes say about the batch holding `offset` of `partition` on `node`: its
/// (CRC-checked) header, and whether its payload passes its CRC.
fn durable_batch(
    node: &Node,
    disk: &SimDisk,
    partition: u32,
    offset: u64,
) -> Result<(codec::BatchMeta, bool), String> {
    let Some((_, loc)) = node.locate(PartitionId(partition), offset) else {
        return Err(format!("n{} has no batch holding that offset", node.id().0));
    };
    let durable = disk.durable(&loc.file).unwrap_or(&[]);
    let end = (loc.pos + loc.len) as usize;
    if durable.len() < end {
        return Err(format!(
            "written to n{}'s WAL ({}@{}, {} bytes) but only {} bytes of that file are synced",
            node.id().0,
            loc.file,
            loc.pos,
            loc.len,
            durable.len()
        ));
    }
    let frame = &durable[loc.pos as usize..end];
    match codec::decode_header(frame) {
        Ok(h) => Ok((
            h.batch,
            codec::check_payload(&h, &frame[HEADER_LEN..]).is_ok(),
        )),
        Err(e) => Err(format!(
            "the synced frame at {}@{} does not decode: {e}",
            loc.file, loc.pos
        )),
    }
}

/// An ack of (`producer`, `seq`, `count` records) at `base_offset` is sent only once that batch
/// is synced, intact unless an injected fault has since hit it (its offsets are then `excused`).
/// The node says where the frame is; its bytes are read from the disk's synced data and decoded
/// here, independently of the node.
pub fn check_ack_synced(
    node: &Node,
    disk: &SimDisk,
    partition: u32,
    (producer, seq, count): (u64, u64, u32),
    base_offset: u64,
    excused: &BTreeSet<u64>,
) -> Result<(), Violation> {
    let subject =
        format!("partition {partition} offset {base_offset}, acked to p{producer} (seq {seq})");
    match durable_batch(node, disk, partition, base_offset) {
        Ok((b, intact))
            if (b.producer, b.seq, b.base_offset, b.count)
                == (producer, seq, base_offset, count)
                && (intact || excused.contains(&base_offset)) =>
        {
            Ok(())
        }
        Ok((b, _)) => Err(Violation::new(
            Invariant::AckedDurable,
            subject,
            format!("p{producer} seq {seq} ({count} records) synced at offset {base_offset}"),
            format!(
                "p{} seq {} ({} records) synced at offset {}, payload {}",
                b.producer,
                b.seq,
                b.count,
                b.base_offset,
                if b.producer == producer && b.seq == seq {
                    "corrupt"
                } else {
                    "intact"
                }
            ),
        )),
        Err(actual) => Err(Violation::new(
            Invariant::AckedDurable,
            subject,
            "synced on 1 of 1 WALs before the ack is sent",
            actual,
        )),
    }
}

/// Every record served from `partition` in `offsets` comes from a synced (committed) batch.
pub fn check_served_committed(
    node: &Node,
    disk: &SimDisk,
    partition: u32,
    offsets: std::ops::Range<u64>,
) -> Result<(), Violation> {
    let mut offset = offsets.start;
    while offset < offsets.end {
        match durable_batch(node, disk, partition, offset) {
            Ok((b, _)) => offset = (b.base_offset + u64::from(b.count)).max(offset + 1),
            Err(actual) => {
                return Err(Violation::new(
                    Invariant::OnlyCommittedServed,
                    format!(
                        "partition {partition} offset {offset}, served by n{}",
                        node.id().0
                    ),
                    "only records synced on a majority are served",
                    actual,
                ))
            }
        }
    }
    Ok(())
}
