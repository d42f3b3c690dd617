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
    /// Every appended batch, committed or not, contiguous in offsets.
    pub batches: Vec<BatchRef>,
    /// The offset the next committed record gets: everything below is committed.
    pub high_watermark: Offset,
}

impl PartitionLog {
    /// The offset the next appended record gets.
    pub fn next_offset(&self) -> Offset {
        self.batches.last().map_or(0, BatchRef::end)
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
