//! The node's coverage probes, read like metrics by whoever holds the node.

use crate::Node;
use sq_core::Probes;

impl Node {
    /// How often this process reached the rare paths of the node and of its WAL (coverage
    /// probes). A restart starts from zero: a new process has new counters.
    pub fn probes(&self) -> Probes {
        let mut all = self.probes.clone();
        all.add(self.wal.probes());
        all
    }
}
