//! The reference log: what must, may and must never be in each partition.

use crate::violation::{Invariant, Violation};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One produced record: the `index`-th record of producer `producer`'s batch `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    /// The producer.
    pub producer: u64,
    /// The batch's sequence number.
    pub seq: u64,
    /// The record's position in its batch.
    pub index: u32,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p{} seq {} record {}",
            self.producer, self.seq, self.index
        )
    }
}

/// Where a produced batch stands, as far as its client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchStatus {
    /// Sent, no answer yet: it may be in the log.
    InFlight,
    /// Acked at `base_offset`: it must be in the log there, forever.
    Acked {
        /// The offset of its first record.
        base_offset: u64,
    },
    /// Definitely failed: it must never be in the log.
    Failed,
    /// The client gave up: it may be in the log.
    Indeterminate,
}

#[derive(Clone, Debug)]
struct Batch {
    partition: u32,
    values: Vec<Bytes>,
    status: BatchStatus,
}

#[derive(Clone, Debug, Default)]
struct Part {
    /// Offsets whose record is known (acked or observed), and which record it is.
    at: BTreeMap<u64, RecordId>,
    /// Where each known record is.
    placed: BTreeMap<RecordId, u64>,
    /// Offsets whose records were lost to an injected fault (see [`LogOracle::forget`]).
    lost: BTreeSet<u64>,
}

/// The reference model of the log.
#[derive(Clone, Debug, Default)]
pub struct LogOracle {
    batches: BTreeMap<(u64, u64), Batch>,
    origins: BTreeMap<Bytes, RecordId>,
    parts: BTreeMap<u32, Part>,
}

fn subject(partition: u32, offset: u64) -> String {
    format!("partition {partition} offset {offset}")
}

impl LogOracle {
    /// An empty log.
    pub fn new() -> LogOracle {
        LogOracle::default()
    }

    /// A produce was invoked. Values must be unique across the run (the harness makes them so).
    pub fn invoke(&mut self, partition: u32, producer: u64, seq: u64, values: &[Bytes]) {
        for (i, v) in values.iter().enumerate() {
            let id = RecordId {
                producer,
                seq,
                index: i as u32,
            };
            if let Some(prev) = self.origins.insert(v.clone(), id) {
                panic!("invariant of the harness: record value of {id} reuses that of {prev}");
            }
        }
        self.batches.insert(
            (producer, seq),
            Batch {
                partition,
                values: values.to_vec(),
                status: BatchStatus::InFlight,
            },
        );
    }

    fn batch(&self, producer: u64, seq: u64) -> &Batch {
        self.batches.get(&(producer, seq)).unwrap_or_else(|| {
            panic!("invariant of the harness: p{producer} seq {seq} was never invoked")
        })
    }

    /// A produce was acked at `base_offset`.
    pub fn acked(&mut self, producer: u64, seq: u64, base_offset: u64) -> Result<(), Violation> {
        let batch = self.batch(producer, seq);
        let partition = batch.partition;
        let count = batch.values.len() as u32;
        match batch.status {
            BatchStatus::Acked { base_offset: prev } if prev != base_offset => {
                return Err(Violation::new(
                    Invariant::AckedOffsetIsReadOffset,
                    format!("p{producer} seq {seq} on partition {partition}"),
                    format!("one ack, at base offset {prev}"),
                    format!("a second ack at base offset {base_offset}"),
                ))
            }
            BatchStatus::Failed => {
                return Err(Violation::new(
                    Invariant::NoPhantoms,
                    format!("p{producer} seq {seq} on partition {partition}"),
                    "no ack: the produce definitely failed",
                    format!("acked at base offset {base_offset}"),
                ))
            }
            _ => {}
        }
        if let Some(b) = self.batches.get_mut(&(producer, seq)) {
            b.status = BatchStatus::Acked { base_offset };
        }
        for index in 0..count {
            let id = RecordId {
                producer,
                seq,
                index,
            };
            self.pin(partition, base_offset + u64::from(index), id)?;
        }
        Ok(())
    }

    /// A produce definitely failed.
    pub fn failed(&mut self, producer: u64, seq: u64) -> Result<(), Violation> {
        let batch = self.batch(producer, seq);
        let partition = batch.partition;
        if let BatchStatus::Acked { base_offset } = batch.status {
            return Err(Violation::new(
                Invariant::AckedDurable,
                format!("p{producer} seq {seq} on partition {partition}"),
                format!("acked at base offset {base_offset}, so never failed"),
                "a definite failure",
            ));
        }
        let id = RecordId {
            producer,
            seq,
            index: 0,
        };
        if let Some(offset) = self.parts.get(&partition).and_then(|p| p.placed.get(&id)) {
            return Err(Violation::new(
                Invariant::NoPhantoms,
                format!("p{producer} seq {seq} on partition {partition}"),
                "a definitely failed produce is never visible",
                format!("it was read at offset {offset}"),
            ));
        }
        if let Some(b) = self.batches.get_mut(&(producer, seq)) {
            b.status = BatchStatus::Failed;
        }
        Ok(())
    }

    /// A produce ended without a definite answer.
    pub fn indeterminate(&mut self, producer: u64, seq: u64) {
        if let Some(b) = self.batches.get_mut(&(producer, seq)) {
            if b.status == BatchStatus::InFlight {
                b.status = BatchStatus::Indeterminate;
            }
        }
    }

    /// Records that `id` is at `offset`, checking it against everything known.
    fn pin(&mut self, partition: u32, offset: u64, id: RecordId) -> Result<(), Violation> {
        let acked_at = match self.batch(id.producer, id.seq).status {
            BatchStatus::Acked { base_offset } => Some(base_offset + u64::from(id.index)),
            _ => None,
        };
        let part = self.parts.entry(partition).or_default();
        if part.lost.contains(&offset) {
            // Whatever is (or was) at an offset lost to an injected fault proves nothing.
            return Ok(());
        }
        if let Some(&known) = part.at.get(&offset) {
            if known != id {
                let known_acked = matches!(
                    self.batches.get(&(known.producer, known.seq)).map(|b| b.status),
                    Some(BatchStatus::Acked { base_offset }) if base_offset + u64::from(known.index) == offset
                );
                let invariant = if known_acked {
                    Invariant::AckedOffsetIsReadOffset
                } else {
                    Invariant::FetchedNeverDisappears
                };
                return Err(Violation::new(
                    invariant,
                    subject(partition, offset),
                    format!("{known} (known at this offset)"),
                    format!("{id}"),
                ));
            }
            return Ok(());
        }
        if let Some(acked) = acked_at {
            if acked != offset {
                return Err(Violation::new(
                    Invariant::AckedOffsetIsReadOffset,
                    format!("{id} on partition {partition}"),
                    format!("at offset {acked}, where it was acked"),
                    format!("at offset {offset}"),
                ));
            }
        }
        if let Some(&other) = part.placed.get(&id) {
            if other != offset {
                return Err(Violation::new(
                    Invariant::NoDuplicates,
                    format!("{id} on partition {partition}"),
                    format!("at offset {other} only"),
                    format!("also at offset {offset}"),
                ));
            }
        }
        // The records of one batch are contiguous and in order.
        if id.index > 0 {
            let first = RecordId { index: 0, ..id };
            if let Some(&o0) = part.placed.get(&first) {
                if o0 + u64::from(id.index) != offset {
                    return Err(Violation::new(
                        Invariant::Contiguous,
                        format!("{id} on partition {partition}"),
                        format!(
                            "at offset {} (its batch starts at {o0})",
                            o0 + u64::from(id.index)
                        ),
                        format!("at offset {offset}"),
                    ));
                }
            }
        }
        part.at.insert(offset, id);
        part.placed.insert(id, offset);
        Ok(())
    }

    /// A fetch of `partition` from `from` returned `records` (offset, value).
    pub fn fetched(
        &mut self,
        partition: u32,
        from: u64,
        records: &[(u64, Bytes)],
    ) -> Result<(), Violation> {
        for (k, (offset, value)) in records.iter().enumerate() {
            let want = from + k as u64;
            if *offset != want {
                return Err(Violation::new(
                    Invariant::Contiguous,
                    format!("fetch of partition {partition} from offset {from}"),
                    format!("record {k} at offset {want}"),
                    format!("offset {offset}"),
                ));
            }
            self.observe(partition, *offset, value)?;
        }
        Ok(())
    }

    fn observe(&mut self, partition: u32, offset: u64, value: &Bytes) -> Result<(), Violation> {
        let Some(&id) = self.origins.get(value) else {
            let known = self.parts.get(&partition).and_then(|p| p.at.get(&offset));
            return Err(match known {
                Some(id) => Violation::new(
                    Invariant::CrcIntegrity,
                    subject(partition, offset),
                    format!("{id} (value {:?})", self.value_of(*id)),
                    format!("bytes that no producer sent: {value:?}"),
                ),
                None => Violation::new(
                    Invariant::NoPhantoms,
                    subject(partition, offset),
                    "a record some producer sent",
                    format!("bytes that no producer sent: {value:?}"),
                ),
            });
        };
        let batch = self.batch(id.producer, id.seq);
        if batch.partition != partition {
            return Err(Violation::new(
                Invariant::NoPhantoms,
                subject(partition, offset),
                format!("a record produced to partition {partition}"),
                format!("{id}, produced to partition {}", batch.partition),
            ));
        }
        if batch.status == BatchStatus::Failed {
            return Err(Violation::new(
                Invariant::NoPhantoms,
                subject(partition, offset),
                "no record of a definitely failed produce",
                format!("{id}, whose produce definitely failed"),
            ));
        }
        self.pin(partition, offset, id)
    }

    fn value_of(&self, id: RecordId) -> Option<&Bytes> {
        self.batches
            .get(&(id.producer, id.seq))
            .and_then(|b| b.values.get(id.index as usize))
    }

    /// Forgets what is known at `offsets` of `partition`: the records there were lost to an
    /// injected fault that one node cannot survive (a misdirected write over the WAL's tail,
    /// which recovery must take for a torn write and cut), so their offsets may be handed out
    /// again. Only the harness's record of the damage it did may call this.
    pub fn forget(&mut self, partition: u32, offsets: std::ops::Range<u64>) {
        let part = self.parts.entry(partition).or_default();
        for offset in offsets {
            part.lost.insert(offset);
            if let Some(id) = part.at.remove(&offset) {
                part.placed.remove(&id);
            }
        }
    }

    /// Every acked batch: (partition, producer, seq, base offset, record count).
    pub fn acked_batches(&self) -> impl Iterator<Item = (u32, u64, u64, u64, u32)> + '_ {
        self.batches
            .iter()
            .filter_map(|(&(producer, seq), b)| match b.status {
                BatchStatus::Acked { base_offset } => Some((
                    b.partition,
                    producer,
                    seq,
                    base_offset,
                    b.values.len() as u32,
                )),
                _ => None,
            })
    }

    /// Checks a full read of `partition` from offset 0 to its end. `None` marks an offset the
    /// node reported corrupt; that is allowed only for offsets in `excused` (hit by an injected
    /// fault beyond the fault model's redundancy).
    pub fn final_check(
        &mut self,
        partition: u32,
        readback: &[(u64, Option<Bytes>)],
        excused: &BTreeSet<u64>,
    ) -> Result<(), Violation> {
        for (k, (offset, value)) in readback.iter().enumerate() {
            if *offset != k as u64 {
                return Err(Violation::new(
                    Invariant::Contiguous,
                    format!("read-back of partition {partition}"),
                    format!("offset {k}"),
                    format!("offset {offset}"),
                ));
            }
            match value {
                Some(v) => self.observe(partition, *offset, v)?,
                None if excused.contains(offset) => {}
                None => {
                    return Err(Violation::new(
                        Invariant::CrcIntegrity,
                        subject(partition, *offset),
                        "a readable record (no fault was injected into it)",
                        "the node reports it corrupt",
                    ))
                }
            }
        }
        let end = readback.len() as u64;
        let part = self.parts.entry(partition).or_default().clone();
        if let Some((&offset, &id)) = part.at.range(end..).next() {
            let acked = matches!(
                self.batch(id.producer, id.seq).status,
                BatchStatus::Acked { .. }
            );
            return Err(Violation::new(
                if acked {
                    Invariant::AckedDurable
                } else {
                    Invariant::FetchedNeverDisappears
                },
                subject(partition, offset),
                format!("{id}, {}", if acked { "acked" } else { "fetched earlier" }),
                format!("the log ends at offset {end}"),
            ));
        }
        // No partial batch: a batch with any record in the log has all of them there.
        let mut seen: BTreeSet<(u64, u64)> = BTreeSet::new();
        for id in part.placed.keys() {
            if !seen.insert((id.producer, id.seq)) {
                continue;
            }
            let count = self.batch(id.producer, id.seq).values.len() as u32;
            for index in 0..count {
                let rid = RecordId { index, ..*id };
                let readable = part.placed.contains_key(&rid);
                // Where the batch starts, from any of its records found (they are contiguous).
                let first = part.placed.get(id).map(|o| o - u64::from(id.index));
                let excused_hole = first.is_some_and(|o| {
                    let at = o + u64::from(index);
                    excused.contains(&at) || part.lost.contains(&at)
                });
                if !readable && !excused_hole {
                    return Err(Violation::new(
                        Invariant::NoPhantoms,
                        format!("p{} seq {} on partition {partition}", id.producer, id.seq),
                        format!("all {count} records of the batch, or none"),
                        format!("record {index} missing"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn v(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn a_lost_acked_record_fails_the_final_check() {
        let mut o = LogOracle::new();
        o.invoke(0, 1, 0, &[v("a")]);
        o.acked(1, 0, 0).expect("first ack");
        let err = o.final_check(0, &[], &BTreeSet::new()).unwrap_err();
        assert_eq!(err.invariant, Invariant::AckedDurable);
    }
}
