//! Invariant 5: once everything is healed, every replica converges, within a bound of simulated
//! time, to the same committed log (the same index, term and bytes), the same commit index and
//! the same high watermarks.

use super::*;

impl Sim {
    /// What differs between the replicas now, or `None` once they have converged.
    fn divergence(&self) -> Option<(String, String)> {
        let mut statuses = Vec::new();
        for n in 0..self.nodes.len() as u32 {
            match self.node(n) {
                Some(node) => statuses.push((n, node.status())),
                // A node that refused to start after injected damage is out of the run.
                None if self.refused(n).is_some() => {}
                None => return Some(("every node up".into(), format!("n{n} is down"))),
            }
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
        if let Some((n, _)) = statuses.iter().find(|(_, s)| s.repairing) {
            return Some((
                "every replica repaired".into(),
                format!("n{n} still repairing a damaged log; {}", describe()),
            ));
        }
        let (_, first) = statuses.first()?;
        let commit = first.commit_index;
        if statuses
            .iter()
            .any(|(_, s)| s.commit_index != commit || s.synced_index < commit)
        {
            return Some(("one commit index, durable everywhere".into(), describe()));
        }
        let manifests: Vec<_> = statuses
            .iter()
            .map(|(n, s)| (*n, s.tiered_upto, s.objects))
            .collect();
        if manifests
            .windows(2)
            .any(|w| (w[0].1, w[0].2) != (w[1].1, w[1].2))
        {
            return Some((
                "one manifest: the same objects covering the same entries".into(),
                manifests
                    .iter()
                    .map(|(n, upto, k)| format!("n{n}: {k} objects up to entry {upto}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        for partition in 0..u32::from(self.cfg.shape.partitions) {
            let p = PartitionId(partition);
            let hws: Vec<_> = statuses
                .iter()
                .map(|&(n, _)| self.node(n).and_then(|node| node.high_watermark(p)))
                .collect();
            if hws.windows(2).any(|w| w[0] != w[1]) {
                return Some((
                    format!("one high watermark for partition {partition}"),
                    format!("{hws:?}"),
                ));
            }
        }
        for index in 1..=commit {
            let entries: Vec<_> = statuses
                .iter()
                .map(|&(n, _)| self.check.images[n as usize].entry(index))
                .collect();
            // Intact too: a replica that holds a damaged copy has not been repaired. Below its
            // snapshot a replica's copy is the store's (WAL bytes left there are never read): a
            // flipped object is the store's only copy, lost, and excused at the flip.
            let damaged = statuses.iter().find(|&&(n, _)| {
                let image = &self.check.images[n as usize];
                image.entry_intact(index) == Some(false)
                    && !image.in_store(index)
                    && index > image.base()
            });
            if let Some(&(n, _)) = damaged {
                return Some((
                    format!("an intact copy of committed entry {index} on every replica"),
                    format!("n{n}'s copy fails its payload checksum"),
                ));
            }
            if entries.windows(2).any(|w| w[0] != w[1]) || entries[0].is_none() {
                let seen = entries
                    .iter()
                    .zip(statuses.iter().map(|(n, _)| n))
                    .map(|(e, n)| match e {
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

    /// Invariant 5 as it stands now, without waiting: `Err` if the running replicas differ in
    /// commit index, high watermarks or committed entries (for doctored-state tests; a run
    /// waits for convergence, see [`Sim::finish`]).
    pub fn check_converged(&mut self) -> Result<(), Box<Failure>> {
        self.refresh_images()?;
        match self.divergence() {
            None => Ok(()),
            Some((expected, actual)) => Err(self.fail(
                Violation::new(Invariant::Converged, "the replicas", expected, actual),
                None,
            )),
        }
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
        // Latent damage is found by a replica's scrub, which reads its whole log back in
        // turns: one pass to find it, and the catch-up after the cut.
        let node = self.cfg.node_config(0);
        let last = (0..self.nodes.len() as u32)
            .filter_map(|n| self.node(n).map(|x| x.status().last_index))
            .max()
            .unwrap_or(0);
        let scrub_pass = (last / u64::from(node.scrub_entries.max(1)) + 1) * node.scrub_interval;
        let bound = self.catch_up_bound(lag.max(last)) + scrub_pass;
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
