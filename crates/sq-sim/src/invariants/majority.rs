//! Invariant 1 and the committed-only rule for several replicas, checked the moment a node
//! answers: an ack only for a batch synced on a majority of WALs, records served only from
//! batches synced on a majority. The diagnostic says, node by node, who has it synced, who has
//! it only written, and who lacks it.
//!
//! A copy the harness damaged after it was synced (a bit flip, a misdirected write) still
//! counts: the replica did sync it and the fault is the harness's, one copy per item at most
//! (the fault atlas). What protects the data then is the other copies, which the end-of-run
//! read-back and invariant 5 check.

use super::durable_image::DurableImage;
use super::served::durable_batch;
use crate::disk::SimDisk;
use sq_model::{Invariant, Violation};
use std::collections::BTreeMap;

/// A replica's batches the harness damaged after they were synced, by (partition, base
/// offset): (producer, sequence, records).
pub type DamagedCopies = BTreeMap<(u32, u64), (u64, u64, u32)>;

/// What the checker sees of one replica.
pub struct Replica<'a> {
    /// The node.
    pub n: u32,
    /// Its durable image.
    pub image: &'a DurableImage,
    /// Its disk.
    pub disk: &'a SimDisk,
    /// Batches of its that the harness damaged after they were synced, by (partition, base
    /// offset): (producer, sequence, records).
    pub damaged: Option<&'a DamagedCopies>,
    /// Whether the harness wrote stray bytes into its WAL (a misdirected write): a stray frame
    /// may hide a real one from the image's walk, so a miss is looked for everywhere.
    pub stray: bool,
}

/// Whether `r` holds the batch synced, from the checker's image alone (the fast path: every
/// ack and fetch is checked).
fn holds_fast(r: &Replica<'_>, partition: u32, base_offset: u64, ident: (u64, u64, u32)) -> bool {
    if r.damaged
        .and_then(|d| d.get(&(partition, base_offset)))
        .is_some_and(|&d| d == ident)
    {
        return true;
    }
    r.image
        .batch_holding(partition, base_offset)
        .is_some_and(|f| {
            let b = f.header.batch;
            (b.producer, b.seq, b.count, b.base_offset) == (ident.0, ident.1, ident.2, base_offset)
        })
}

/// Whether `r` holds the batch of `partition` at `base_offset` made of (`producer`, `seq`,
/// `count` records) synced; otherwise what it holds there.
fn holds(
    r: &Replica<'_>,
    partition: u32,
    base_offset: u64,
    (producer, seq, count): (u64, u64, u32),
) -> Result<(), String> {
    let ident = (producer, seq, count);
    if r.damaged
        .and_then(|d| d.get(&(partition, base_offset)))
        .is_some_and(|&d| d == ident)
    {
        return Ok(());
    }
    match durable_batch(r.n, r.image, r.disk, partition, base_offset) {
        Ok((b, _))
            if (b.producer, b.seq, b.count, b.base_offset)
                == (producer, seq, count, base_offset) =>
        {
            Ok(())
        }
        Ok((b, _)) => Err(format!(
            "n{} holds p{} seq {} ×{} at offset {}",
            r.n, b.producer, b.seq, b.count, b.base_offset
        )),
        Err(e) => Err(e),
    }
}

/// Invariant 1: the batch is synced on a majority of `replicas` (at the ack by `acker`, or
/// later when a file that held it changed).
pub fn check_ack_majority(
    replicas: &[Replica<'_>],
    acker: Option<u32>,
    partition: u32,
    batch: (u64, u64, u32),
    base_offset: u64,
) -> Result<(), Violation> {
    let (producer, seq, count) = batch;
    let majority = replicas.len() / 2 + 1;
    let fast = replicas
        .iter()
        .filter(|r| !r.stray && holds_fast(r, partition, base_offset, batch))
        .count();
    if fast >= majority {
        return Ok(());
    }
    let mut synced = Vec::new();
    let mut other = Vec::new();
    for r in replicas {
        match holds(r, partition, base_offset, batch) {
            Ok(()) => synced.push(format!("n{}", r.n)),
            Err(why) => other.push(why),
        }
    }
    if synced.len() >= majority {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::AckedDurable,
        match acker {
            Some(n) => format!(
                "partition {partition} offset {base_offset}, acked by n{n} to p{producer} (seq \
                 {seq}, {count} records)"
            ),
            None => format!(
                "partition {partition} offset {base_offset}, acked to p{producer} (seq {seq}, \
                 {count} records)"
            ),
        },
        match acker {
            Some(_) => format!(
                "synced on {majority} of {} WALs before the ack is sent",
                replicas.len()
            ),
            None => format!("synced on {majority} of {} WALs", replicas.len()),
        },
        format!(
            "synced on {} ({}); {}",
            synced.len(),
            synced.join(", "),
            other.join("; ")
        ),
    ))
}

/// Every record of `partition` in `offsets` that node `server` serves comes from a batch synced
/// on a majority of `replicas` (found through the server's own durable image).
pub fn check_served_majority(
    replicas: &[Replica<'_>],
    server: u32,
    partition: u32,
    offsets: std::ops::Range<u64>,
) -> Result<(), Violation> {
    let majority = replicas.len() / 2 + 1;
    let mut offset = offsets.start;
    while offset < offsets.end {
        // The fast path: a batch the images hold at that offset (the server's first) that a
        // majority's images hold.
        let fast = replicas
            .iter()
            .filter(|r| !r.stray)
            .filter(|r| r.n == server)
            .chain(replicas.iter().filter(|r| !r.stray && r.n != server))
            .filter_map(|r| r.image.batch_holding(partition, offset))
            .map(|f| f.header.batch)
            .find(|b| {
                let ident = (b.producer, b.seq, b.count);
                replicas
                    .iter()
                    .filter(|r| !r.stray && holds_fast(r, partition, b.base_offset, ident))
                    .count()
                    >= majority
            });
        if let Some(b) = fast {
            offset = (b.base_offset + u64::from(b.count)).max(offset + 1);
            continue;
        }
        let subject = format!("partition {partition} offset {offset}, served by n{server}");
        // The batch as the server holds it durably, else as any replica does (a leader commits
        // on its followers' copies too, and may not have synced its own yet); of several, one a
        // majority holds (a deposed leader may hold an uncommitted one at that offset).
        let mut candidates = Vec::new();
        let mut server_why = String::new();
        for r in replicas {
            match durable_batch(r.n, r.image, r.disk, partition, offset) {
                Ok((b, _)) if r.n == server => candidates.insert(0, b),
                Ok((b, _)) => candidates.push(b),
                Err(why) if r.n == server => server_why = why,
                Err(_) => {}
            }
        }
        let held_by = |b: &sq_core::BatchMeta| {
            replicas
                .iter()
                .filter(|r| {
                    holds(r, partition, b.base_offset, (b.producer, b.seq, b.count)).is_ok()
                })
                .count()
        };
        let b = match candidates
            .iter()
            .find(|b| held_by(b) >= majority)
            .or(candidates.first())
        {
            Some(&b) => b,
            None => {
                return Err(Violation::new(
                    Invariant::OnlyCommittedServed,
                    subject,
                    "only records synced on a majority are served",
                    format!("synced on no replica; {server_why}"),
                ))
            }
        };
        let ident = (b.producer, b.seq, b.count);
        let mut synced = Vec::new();
        let mut other = Vec::new();
        for r in replicas {
            match holds(r, partition, b.base_offset, ident) {
                Ok(()) => synced.push(format!("n{}", r.n)),
                Err(why) => other.push(why),
            }
        }
        if synced.len() < majority {
            return Err(Violation::new(
                Invariant::OnlyCommittedServed,
                subject,
                format!("synced on {majority} of {} WALs", replicas.len()),
                format!(
                    "synced on {} ({}); {}",
                    synced.len(),
                    synced.join(", "),
                    other.join("; ")
                ),
            ));
        }
        offset = (b.base_offset + u64::from(b.count)).max(offset + 1);
    }
    Ok(())
}
