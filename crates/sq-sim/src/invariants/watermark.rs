//! A partition's high watermark never decreases, on any node, across restarts: what was committed
//! stays committed.

use sq_model::{Invariant, Violation};
use std::collections::BTreeMap;

/// The highest watermark seen per (node, partition).
#[derive(Clone, Debug, Default)]
pub struct Watermarks {
    seen: BTreeMap<(u32, u32), u64>,
}

impl Watermarks {
    /// Records that `node` reports `hw` for `partition`, failing if it is below one seen before.
    pub fn observe(&mut self, node: u32, partition: u32, hw: u64) -> Result<(), Violation> {
        let seen = self.seen.entry((node, partition)).or_insert(hw);
        if hw < *seen {
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
}
