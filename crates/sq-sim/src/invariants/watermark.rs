//! A partition's high watermark never decreases, on any node, across restarts: what was committed
//! stays committed.

use sq_model::{Invariant, Violation};
use std::collections::BTreeMap;

/// The highest watermark seen per (node, partition).
#[derive(Clone, Debug, Default)]
pub struct Watermarks {
    seen: BTreeMap<(u32, u32), u64>,
    /// Per (node, partition): from this offset on, batches were lost to an injected fault, so
    /// the watermark may fall back to any point at or above it.
    lost_from: BTreeMap<(u32, u32), u64>,
}

impl Watermarks {
    /// Records that `node` reports `hw` for `partition`, failing if it is below one seen before.
    pub fn observe(&mut self, node: u32, partition: u32, hw: u64) -> Result<(), Violation> {
        let floor = self.lost_from.get(&(node, partition)).copied();
        let seen = self.seen.entry((node, partition)).or_insert(hw);
        if hw < *seen && floor.is_none_or(|f| hw < f) {
            return Err(Violation::new(
                Invariant::HighWatermarkMonotonic,
                format!("partition {partition} on n{node}"),
                format!("a high watermark of at least {seen}"),
                format!("{hw}"),
            ));
        }
        *seen = hw;
        Ok(())
    }

    /// Forgets what `node` reported: a replica of a cluster restarts knowing no commit index
    /// (it learns it from the leader), and one that cut its log for damage commits again what
    /// it cut.
    pub fn reset_node(&mut self, node: u32) {
        self.seen.retain(|&(n, _), _| n != node);
        self.lost_from.retain(|&(n, _), _| n != node);
    }

    /// Lowers what `node` must report for `partition` to at most `offset`: the batches from there
    /// on were lost to an injected fault one node cannot survive (recovery may cut them as a
    /// torn tail), so what was committed there may be committed again.
    pub fn forget(&mut self, node: u32, partition: u32, offset: u64) {
        let floor = self.lost_from.entry((node, partition)).or_insert(offset);
        *floor = (*floor).min(offset);
    }
}
