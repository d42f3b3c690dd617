//! The coverage probes of a run: what the nodes (every process of each, dead ones included),
//! their WALs and the clients counted at their rare paths.

use super::*;

impl Sim {
    /// Every probe count of the run so far.
    pub fn probes(&self) -> sq_core::Probes {
        let mut all = sq_core::Probes::default();
        for host in &self.nodes {
            all.add(&host.probes());
        }
        for p in &self.work.producers {
            all.add(p.probes());
        }
        for c in &self.work.consumers {
            all.add(c.probes());
        }
        for m in &self.work.members {
            all.add(m.probes());
        }
        // Group consumers that crashed: their processes' counts.
        all.add(&self.work.crashed_member_probes);
        all
    }
}
