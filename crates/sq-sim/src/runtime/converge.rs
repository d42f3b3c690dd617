//! Invariant 5: once everything is healed, every replica converges, within a bound of simulated
//! time, to the same committed log (the same index, term and bytes), the same commit index and
//! the same high watermarks.

use super::*;

impl Sim {
    /// What differs between the replicas now, or `None` once they have converged.
    fn divergence(&self) -> Option<(String, String)> {
        let mut statuses = Vec::new();
        for n in 0..self.nodes.len() as u32 {
            let node = self.node(n)?;
            statuses.push((n, node.status()));
        }
        let describe = || {
            statuses
                .iter()
                .map(|(n, s)| {
                    format!(
                        "n{n}: {:?} t{} commit {} last {} synced {}",
                        s.role, s.term, s.commit_index, s.last_index, s.synced_index
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let (_, first) = statuses.first()?;
        let commit = first.commit_index;
        if statuses
            .iter()
            .any(|(_, s)| s.commit_index != commit || s.synced_index < commit)
        {
            return Some(("one commit index, durable everywhere".into(), describe()));
        }
        for partition in 0..u32::from(self.cfg.shape.partitions) {
            let p = PartitionId(partition);
            let hws: Vec<_> = (0..self.nodes.len() as u32)
                .map(|n| self.node(n).and_then(|node| node.high_watermark(p)))
                .collect();
            if hws.windows(2).any(|w| w[0] != w[1]) {
                return Some((
                    format!("one high watermark for partition {partition}"),
                    format!("{hws:?}"),
                ));
            }
        }
        for index in 1..=commit {
            let entries: Vec<_> = (0..self.nodes.len())
                .map(|n| self.check.images[n].entry(index))
                .collect();
            if entries.windows(2).any(|w| w[0] != w[1]) || entries[0].is_none() {
                let seen = entries
                    .iter()
                    .enumerate()
                    .map(|(n, e)| match e {
                        Some((t, id)) => format!("n{n}: term {t} {id}"),
                        None => format!("n{n}: none durable"),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                return Some((format!("one committed entry at index {index}"), seen));
            }
        }
        None
    }

    /// Runs the healed cluster until its replicas converge, failing if they have not within
    /// the liveness bound.
    pub(super) fn converge(&mut self) -> Result<(), Box<Failure>> {
        if self.cfg.shape.nodes <= 1 {
            return Ok(());
        }
        // A replica far behind gets the time flow control needs to bring it up.
        let commits: Vec<u64> = (0..self.nodes.len() as u32)
            .filter_map(|n| self.node(n).map(|x| x.status().commit_index))
            .collect();
        let lag = commits.iter().max().unwrap_or(&0) - commits.iter().min().unwrap_or(&0);
        let bound = self.catch_up_bound(lag);
        let due = self.now + bound;
        loop {
            self.refresh_images()?;
            let Some((expected, actual)) = self.divergence() else {
                return Ok(());
            };
            if self.now >= due {
                return Err(self.fail(
                    Violation::new(
                        Invariant::Converged,
                        format!(
                            "the replicas, {} after the heal",
                            Time(self.cfg.liveness_bound())
                        ),
                        expected,
                        actual,
                    ),
                    None,
                ));
            }
            self.run_for(self.cfg.heartbeat)?;
        }
    }
}
