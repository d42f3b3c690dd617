//! Checks on what a node sends, made the moment it sends it: an ack only for a batch already
//! synced (invariant 1 at ack time), records only from synced batches (never uncommitted ones).

use super::durable_image::DurableImage;
use super::image::frames_from;
use crate::disk::SimDisk;
use sq_core::codec::{self, EntryKind, HEADER_LEN};
use sq_model::{Invariant, Violation};
use sq_storage::wal::is_segment_file;
use std::collections::BTreeSet;

/// What node `n`'s durable bytes say about the batch holding `offset` of `partition`: its
/// (CRC-checked) header, and whether its payload passes its CRC. The checker's own image says
/// where it is; when it is not durable, the page cache is searched to say what became of it.
pub(crate) fn durable_batch(
    n: u32,
    image: &DurableImage,
    disk: &SimDisk,
    partition: u32,
    offset: u64,
) -> Result<(codec::BatchMeta, bool), String> {
    if let Some(f) = image.batch_holding(partition, offset) {
        return Ok((f.header.batch, f.intact));
    }
    // The image walks frame after frame; where a misdirected write left a whole stray frame
    // over real ones, that walk can step over a real frame. Look at every place a frame could
    // start before saying it is not durable.
    if let Some(found) = durable_anywhere(disk, partition, offset) {
        return Ok(found);
    }
    Err(match written_not_synced(disk, partition, offset) {
        Some((file, pos, len, synced)) => format!(
            "written to n{n}'s WAL ({file}@{pos}, {len} bytes) but only {synced} bytes of that \
             file are synced"
        ),
        None => format!("n{n}'s WAL holds no batch with that offset"),
    })
}

/// A durable batch frame holding `offset` of `partition`, starting at any position of any
/// segment file (the failure path, and nodes with harness-damaged headers, only: it reads every
/// segment at every frame magic).
fn durable_anywhere(
    disk: &SimDisk,
    partition: u32,
    offset: u64,
) -> Option<(codec::BatchMeta, bool)> {
    let magic = codec::FRAME_MAGIC.to_le_bytes();
    for file in disk.file_names().filter(|f| is_segment_file(f)) {
        let bytes = disk.durable(file)?;
        for q in 0..bytes.len().saturating_sub(HEADER_LEN - 1) {
            if bytes[q..q + 4] != magic {
                continue;
            }
            let Ok(h) = codec::decode_header(&bytes[q..]) else {
                continue;
            };
            let b = h.batch;
            if h.kind == EntryKind::Batch
                && bytes.len() - q >= h.frame_len()
                && b.partition == partition
                && (b.base_offset..b.base_offset + u64::from(b.count)).contains(&offset)
            {
                let intact = codec::check_payload(&h, &bytes[q + HEADER_LEN..]).is_ok();
                return Some((b, intact));
            }
        }
    }
    None
}

/// Where the batch holding `offset` of `partition` lies in the page cache, and how much of its
/// file is durable (the failure path only: it reads every segment).
fn written_not_synced(
    disk: &SimDisk,
    partition: u32,
    offset: u64,
) -> Option<(String, usize, usize, usize)> {
    for file in disk.file_names().filter(|f| is_segment_file(f)) {
        let bytes = disk.cached(file)?;
        for (pos, h) in frames_from(bytes, 0).0 {
            let b = h.batch;
            if h.kind == EntryKind::Batch
                && b.partition == partition
                && (b.base_offset..b.base_offset + u64::from(b.count)).contains(&offset)
            {
                let synced = disk.durable(file).map_or(0, <[u8]>::len);
                return Some((file.to_string(), pos, h.frame_len(), synced));
            }
        }
    }
    None
}

/// An ack of (`producer`, `seq`, `count` records) at `base_offset` is sent only once that batch
/// is synced, intact unless an injected fault has since hit it (its offsets are then `excused`).
/// Where the frame is and what it holds come from the checker's own parse of the disk's synced
/// bytes, independently of the node.
pub fn check_ack_synced(
    n: u32,
    image: &DurableImage,
    disk: &SimDisk,
    partition: u32,
    (producer, seq, count): (u64, u64, u32),
    base_offset: u64,
    excused: &BTreeSet<u64>,
) -> Result<(), Violation> {
    let subject =
        format!("partition {partition} offset {base_offset}, acked to p{producer} (seq {seq})");
    match durable_batch(n, image, disk, partition, base_offset) {
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
    n: u32,
    image: &DurableImage,
    disk: &SimDisk,
    partition: u32,
    offsets: std::ops::Range<u64>,
) -> Result<(), Violation> {
    let mut offset = offsets.start;
    while offset < offsets.end {
        match durable_batch(n, image, disk, partition, offset) {
            Ok((b, _)) => offset = (b.base_offset + u64::from(b.count)).max(offset + 1),
            Err(actual) => {
                return Err(Violation::new(
                    Invariant::OnlyCommittedServed,
                    format!("partition {partition} offset {offset}, served by n{n}"),
                    "only records synced on a majority are served",
                    actual,
                ))
            }
        }
    }
    Ok(())
}

/// The fetch contract: node `n` answered a fetch with `records` records, at most its `cap`;
/// `unready` is the (term, commit index) of a leader that served before its term's first entry
/// committed (its commit index may lag what earlier leaders committed).
pub fn check_fetch_contract(
    n: u32,
    records: usize,
    cap: usize,
    unready: Option<(u64, u64)>,
) -> Result<(), Violation> {
    if records <= cap && unready.is_none() {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::FetchContract,
        format!("a fetch answered by n{n}"),
        format!("at most {cap} records, from a leader that has committed an entry of its term"),
        match unready {
            Some((term, commit)) => format!(
                "served by the leader of term {term} at commit index {commit}, before its term's \
                 first entry committed"
            ),
            None => format!("{records} records"),
        },
    ))
}
