//! A partition's view of the log: which entries hold which offsets.

use sq_core::Offset;

/// One batch of a partition: its offsets and the log entry that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchRef {
    /// The offset of its first record.
    pub base_offset: Offset,
    /// How many records it holds.
    pub count: u32,
    /// The log index of its entry.
    pub index: u64,
}

impl BatchRef {
    /// The offset after its last record.
    pub fn end(&self) -> Offset {
        self.base_offset + u64::from(self.count)
    }
}

/// The batches of one partition, in offset order, and how far they are committed.
#[derive(Clone, Debug, Default)]
pub(crate) struct PartitionLog {
    /// The first offset the WAL holds: everything below lives in the object store.
    pub start: Offset,
    /// Every appended batch the WAL holds, committed or not, contiguous in offsets from
    /// `start`.
    pub batches: Vec<BatchRef>,
    /// The offset the next committed record gets: everything below is committed.
    pub high_watermark: Offset,
}

impl PartitionLog {
    /// A partition whose WAL part starts at `start` (all of it committed before).
    pub fn starting_at(start: Offset) -> PartitionLog {
        PartitionLog {
            start,
            batches: Vec::new(),
            high_watermark: start,
        }
    }

    /// Forgets the batches held by entries up to `index` (trimmed from the WAL).
    pub fn trim(&mut self, index: u64) {
        let k = self.batches.partition_point(|b| b.index <= index);
        if k > 0 {
            self.start = self.batches[k - 1].end();
            self.batches.drain(..k);
        }
    }

    /// The offset the next appended record gets.
    pub fn next_offset(&self) -> Offset {
        self.batches.last().map_or(self.start, BatchRef::end)
    }

    /// The position in `batches` of the batch holding `offset`.
    pub fn find(&self, offset: Offset) -> Option<usize> {
        let k = self
            .batches
            .partition_point(|b| b.base_offset <= offset)
            .checked_sub(1)?;
        (offset < self.batches[k].end()).then_some(k)
    }
}
