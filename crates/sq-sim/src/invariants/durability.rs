//! Invariant 1 on the durable images: every acked batch is synced on a majority of WALs.
//! (Invariant 2, contiguity, is checked by [`super::durable_image::DurableImage`].)

use super::image::BatchIndex;
use sq_model::{Invariant, Violation};
use std::collections::BTreeSet;

/// An acked batch as the history knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckedBatch {
    /// Partition.
    pub partition: u32,
    /// Producer.
    pub producer: u64,
    /// Sequence.
    pub seq: u64,
    /// Base offset it was acked at.
    pub base_offset: u64,
    /// Records.
    pub count: u32,
}

/// Invariant 1: `batch` is in the durable image of a majority of `images` (one per node). A copy
/// whose payload was hit by an injected flip counts only if the batch's offsets are `excused`.
pub fn check_acked_durable(
    images: &[&BatchIndex],
    batch: &AckedBatch,
    excused: &BTreeSet<u64>,
) -> Result<(), Violation> {
    let majority = images.len() / 2 + 1;
    let mut found = 0;
    let mut seen = Vec::new();
    for (n, index) in images.iter().enumerate() {
        match index.get(&(batch.partition, batch.base_offset)) {
            Some(f) => {
                let b = f.header.batch;
                let same = (b.producer, b.seq, b.count) == (batch.producer, batch.seq, batch.count);
                if same && (f.intact || excused.contains(&batch.base_offset)) {
                    found += 1;
                } else {
                    seen.push(format!(
                        "n{n} holds p{} seq {} ×{} there{}",
                        b.producer,
                        b.seq,
                        b.count,
                        if f.intact { "" } else { " (payload corrupt)" }
                    ));
                }
            }
            None => seen.push(format!("n{n} has no durable batch at that offset")),
        }
    }
    if found >= majority {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::AckedDurable,
        format!(
            "partition {} offset {}, acked to p{} (seq {}, {} records)",
            batch.partition, batch.base_offset, batch.producer, batch.seq, batch.count
        ),
        format!("synced on {majority} of {} WALs", images.len()),
        format!("synced on {found}: {}", seen.join("; ")),
    ))
}
