//! Faults the harness injects or plays out: crashes, restarts (with a supervisor's retry), latent
//! corruption, and the restart of a node that stopped itself after a disk error.

use super::*;

impl Sim {
    pub(super) fn crash(&mut self, n: u32) {
        let sn = &mut self.nodes[n as usize];
        if sn.node.is_none() {
            return;
        }
        sn.node = None;
        sn.incarnation += 1;
        sn.wake = None;
        if sn.syncs_in_flight > 0 {
            self.stats.crashes_mid_sync += 1;
        }
        sn.syncs_in_flight = 0;
        let lost = sn.disk.crash(&mut self.rng);
        self.stats.crashes += 1;
        self.stats.last_crash = Some(self.now);
        self.disturbed();
        self.fault(format!("crash n{n}: {lost} unsynced bytes lost"));
    }

    /// Starts a crashed node. An injected I/O error may make one attempt fail (the fault is
    /// one-shot); like a supervisor, the harness then tries again. Any other failure to open is
    /// a broken invariant.
    pub(super) fn restart(&mut self, n: u32) -> Result<(), Box<Failure>> {
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let sn = &mut self.nodes[n as usize];
            if sn.node.is_some() {
                return Ok(());
            }
            let opened = Node::open(sn.config, &mut sn.disk);
            self.flush_disk_calls(n);
            let e = match opened {
                Ok(node) => {
                    let r = node.recovery();
                    let what = format!(
                        "restart n{n}: recovered {} entries, cut a torn tail of {} bytes, damaged {:?}",
                        r.entries, r.truncated_bytes, r.damaged
                    );
                    self.nodes[n as usize].node = Some(node);
                    self.disturbed();
                    self.fault(what);
                    return Ok(());
                }
                Err(e) => e,
            };
            let injected = matches!(
                &e,
                NodeError::Wal(WalError::Disk(DiskError::Io { .. }))
                    | NodeError::Meta(MetaError::Disk(DiskError::Io { .. }))
            );
            if !injected || attempt == ATTEMPTS {
                return Err(self.fail(
                    Violation::new(
                        Invariant::Recovery,
                        format!("restart of n{n}"),
                        "the node recovers its WAL",
                        e.to_string(),
                    ),
                    Some(n),
                ));
            }
            self.fault(format!("restart n{n} failed ({e}); trying again"));
        }
        Ok(())
    }

    /// Flips one bit in the payload of a random synced, intact batch frame of node `n`.
    pub(super) fn corrupt(&mut self, n: u32) {
        let frames = image::scan(&self.nodes[n as usize].disk);
        let candidates: Vec<_> = frames
            .iter()
            .filter(|f| f.intact && f.header.payload_len > 0)
            .collect();
        if candidates.is_empty() {
            return self.fault(format!("corrupt n{n}: no synced record to corrupt"));
        }
        let f = candidates[self.rng.below(candidates.len() as u64) as usize];
        let pos = f.pos + HEADER_LEN + self.rng.below(u64::from(f.header.payload_len)) as usize;
        let bit = self.rng.below(8) as u8;
        let b = f.header.batch;
        let file = f.file.clone();
        self.nodes[n as usize].disk.flip_bit(&file, pos, bit);
        // With one copy of the data, every copy is hit: those offsets may read back as corrupt.
        if self.cfg.shape.nodes == 1 {
            let excused = self.excused.entry(b.partition).or_default();
            excused.extend(b.base_offset..b.base_offset + u64::from(b.count));
        }
        self.stats.corruptions += 1;
        self.fault(format!(
            "corrupt n{n}: bit {bit} of {file}@{pos} (partition {} offsets {}..{})",
            b.partition,
            b.base_offset,
            b.base_offset + u64::from(b.count)
        ));
    }

    /// A node that stopped itself after a disk error is a process that exited: its supervisor
    /// restarts it at once, and it recovers from its disk. Unsynced writes count as lost, since
    /// after a failed fsync the page cache's state is unknown.
    pub(super) fn supervise(&mut self, n: u32) -> Result<(), Box<Failure>> {
        let Some(why) = self.node(n).and_then(Node::failed).map(str::to_string) else {
            return Ok(());
        };
        self.fault(format!("n{n} stopped ({why}); its supervisor restarts it"));
        self.crash(n);
        self.restart(n)
    }
}
