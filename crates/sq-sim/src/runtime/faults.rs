//! Faults the harness injects or plays out: process crashes and power losses (injected, or
//! landing inside an operation when a disk countdown runs out), restarts (with a supervisor's
//! retry and back-off), latent corruption of payloads and headers, misdirected writes, and the
//! supervised restart of a node that stopped itself after a disk error.

use super::*;
use crate::disk::MisdirectedWrite;

impl Sim {
    /// Kills node `n`'s process (if it runs, or is waiting for its supervisor) and plays `kind`
    /// on its disk: a process crash keeps the page cache, a power loss drops or tears what was
    /// not synced. A power loss also hits a node that is already down: its page cache is lost.
    pub(super) fn crash(&mut self, n: u32, kind: CrashKind) {
        let sn = &mut self.nodes[n as usize];
        // A start that waits for room is called off: the node is down until restarted.
        let was_up = sn.node.is_some() || sn.exited.is_some() || std::mem::take(&mut sn.needs_room);
        if !was_up && kind == CrashKind::Process {
            return;
        }
        let mid_sync = sn.syncs_in_flight > 0;
        if let Some(s) = sn.node.as_ref().map(Node::status) {
            if s.role == sq_node::Role::Leader && self.cfg.shape.nodes > 1 {
                self.check.leader_lost = Some((self.now, s.term));
            }
        }
        let sn = &mut self.nodes[n as usize];
        sn.wake = None;
        sn.syncs_in_flight = 0;
        if was_up {
            sn.bank_probes();
            sn.node = None;
            sn.exited = None;
            // Nothing sent to the dead incarnation is delivered; a pending supervisor restart
            // is cancelled (the node is down until restarted).
            sn.incarnation += 1;
            self.stats.crashes += 1;
            self.stats.crashes_mid_sync += u64::from(mid_sync);
            self.stats.last_crash = Some(self.now);
        }
        self.disturbed();
        let what = self.play_crash(n, kind);
        self.fault(format!("{what} n{n}"));
    }

    /// Plays `kind` on node `n`'s disk; returns what happened, for the trace.
    fn play_crash(&mut self, n: u32, kind: CrashKind) -> String {
        let disk = &mut self.nodes[n as usize].disk;
        match kind {
            CrashKind::Process => {
                disk.process_crash();
                "process crash (page cache kept) of".to_string()
            }
            CrashKind::Power => {
                let lost = disk.power_loss(&mut self.rng);
                self.stats.power_losses += 1;
                format!("power loss ({lost} unsynced bytes lost) of")
            }
        }
    }

    /// Node `n` died on its own (it stopped after a disk error, or its disk died inside an
    /// operation): the process exits, `kind` is played on its disk, and its supervisor restarts
    /// it after the run's back-off. Replies it sent before dying still arrive.
    pub(super) fn died_on_its_own(
        &mut self,
        n: u32,
        kind: CrashKind,
        why: String,
    ) -> Result<(), Box<Failure>> {
        let sn = &mut self.nodes[n as usize];
        let Some(node) = sn.node.take() else {
            return Ok(());
        };
        sn.exited = Some(node);
        sn.incarnation += 1;
        sn.wake = None;
        let mid_sync = std::mem::take(&mut sn.syncs_in_flight) > 0;
        let incarnation = sn.incarnation;
        self.stats.crashes += 1;
        self.stats.crashes_mid_sync += u64::from(mid_sync);
        self.stats.last_crash = Some(self.now);
        self.disturbed();
        let what = self.play_crash(n, kind);
        let backoff = self.cfg.supervisor_backoff;
        self.fault(format!(
            "n{n} died ({why}): {what} it; its supervisor restarts it in {}",
            Time(backoff)
        ));
        self.queue.push(
            self.now + backoff,
            Event::Supervise {
                node: n,
                incarnation,
            },
        );
        Ok(())
    }

    /// Starts a node that is down. An injected fault may make one attempt fail: an I/O error
    /// (one-shot), or a disk countdown that runs out in the middle of recovery (the crash is then
    /// played on the disk); like a supervisor, the harness tries again. A refusal to start at a
    /// position the harness damaged is a typed outcome: the node stays down for the rest of the
    /// run and the run reports it. Any other failure to open is a broken invariant.
    pub(super) fn restart(&mut self, n: u32) -> Result<(), Box<Failure>> {
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let sn = &mut self.nodes[n as usize];
            if sn.node.is_some() || sn.refused.is_some() {
                return Ok(());
            }
            sn.needs_room = false;
            sn.bank_probes();
            sn.exited = None;
            let opened = Node::open(sn.config, &mut sn.disk, self.now);
            let death = sn.disk.take_death();
            self.flush_disk_calls(n);
            // A misdirected write during recovery (its metadata store) damaged something too.
            self.excuse_misdirected(n);
            if let Some(kind) = death {
                let what = self.play_crash(n, kind);
                self.fault(format!(
                    "restart n{n}: the disk died during recovery; {what} it; trying again"
                ));
                continue;
            }
            let e = match opened {
                Ok(node) => {
                    let r = node.recovery();
                    let what = format!(
                        "restart n{n}: recovered {} entries, cut a torn tail of {} bytes, damaged {:?}{}",
                        r.entries,
                        r.truncated_bytes,
                        r.damaged,
                        r.cut_from.map_or(String::new(), |i| format!(
                            ", cut the log from damaged entry {i} to repair it from the leader"
                        ))
                    );
                    let from = node.status().commit_index;
                    // A node's durable term comes back with it (it may have stored it in a step
                    // it died in, unseen): it raised nothing while it was down.
                    let term = node.status().term;
                    self.check.highest_term = self.check.highest_term.max(term);
                    if let Some(cap) = self.check.term_cap[n as usize].as_mut() {
                        *cap = (*cap).max(term);
                    }
                    self.nodes[n as usize].node = Some(node);
                    self.schedule_wake(n);
                    // A new process has heard no leader.
                    self.check.heard_leader[n as usize] = None;
                    if self.cfg.shape.nodes > 1 {
                        self.check.watermarks.reset_node(n);
                        self.check.last_commit[n as usize] = from;
                        let target = (0..self.nodes.len() as u32)
                            .filter_map(|m| self.node(m).map(|x| x.status().commit_index))
                            .max()
                            .unwrap_or(0);
                        self.check.catching_up.retain(|c| c.0 != n);
                        self.check.catching_up.push((n, target, from, self.now));
                    }
                    self.disturbed();
                    self.fault(what);
                    return Ok(());
                }
                Err(e) => e,
            };
            let no_room = matches!(
                &e,
                NodeError::Meta(MetaError::Disk(DiskError::NoSpace { .. }))
                    | NodeError::Wal(WalError::NoSpace)
                    | NodeError::Wal(WalError::Disk(DiskError::NoSpace { .. }))
            );
            if no_room && self.nodes[n as usize].disk.quota().is_some() {
                self.fault(format!(
                    "n{n} cannot start on its full disk ({e}); it starts once there is room"
                ));
                self.nodes[n as usize].needs_room = true;
                return Ok(());
            }
            if let Some(why) = self.excused_refusal(n, &e) {
                let line = format!("n{n} refused to start: {why}");
                self.fault(line.clone());
                self.stats.refusals.push(line);
                self.nodes[n as usize].refused = Some(why);
                return Ok(());
            }
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

    /// The reason for a refusal to start that injected damage explains: the WAL refused at a
    /// frame whose header overlaps a range the harness damaged. `None` for any other failure.
    /// Metadata that fails its CRC is excused only if the harness wrote stray bytes into it.
    fn excused_refusal(&self, n: u32, e: &NodeError) -> Option<String> {
        let damaged = &self.nodes[n as usize].damaged;
        let hit = match e {
            // The refused frame's header, `pos..pos + HEADER_LEN`, overlaps damaged bytes: a
            // write may land in the middle of a frame and hit the next one's header.
            NodeError::Wal(WalError::Unrecoverable { file, pos, .. }) => damaged
                .iter()
                .any(|(f, r)| f == file && r.start < pos + HEADER_LEN as u64 && *pos < r.end),
            // Both copies unreadable: the harness damaged one, and the other was damaged too
            // or never written (a crash between the two writes of the first store).
            NodeError::Meta(MetaError::Corrupt(_)) => {
                damaged.iter().any(|(f, _)| f.starts_with("meta"))
            }
            // The same for the snapshot's two copies.
            NodeError::Snapshot(sq_storage::SnapshotError::Corrupt(_)) => {
                damaged.iter().any(|(f, _)| f.starts_with("snapshot"))
            }
            _ => false,
        };
        hit.then(|| e.to_string())
    }

    /// The node that damage aimed at node `n` hits. In a cluster, one replica's storage may lie
    /// per run, the first one damaged (TigerBeetle's fault atlas, simplified: at most one bad
    /// copy of any item, and at most one replica repairing at a time, which a majority of good
    /// replicas survives); later damage goes to it too.
    pub(super) fn atlas(&mut self, n: u32) -> u32 {
        if self.cfg.shape.nodes <= 1 || !self.cfg.atlas {
            return n;
        }
        *self.check.faulty_disk.get_or_insert(n)
    }

    /// Flips one bit of a random synced, intact batch frame of node `n`: in its payload, or in
    /// its header if `header`. A header is flipped only in a frame that a synced frame follows
    /// in its segment, or in a sealed segment: recovery must then refuse (damage there is never a
    /// torn tail). Damage to the last frame's header would be cut off as a torn write and its
    /// offsets handed out again, which one node cannot avoid; it is not injected.
    pub(super) fn corrupt(&mut self, n: u32, header: bool) {
        let frames = image::scan(&self.nodes[n as usize].disk);
        let last_file = frames.last().map(|f| f.file.clone());
        let candidates: Vec<_> = frames
            .iter()
            .enumerate()
            .filter(|(k, f)| {
                let followed = frames.get(k + 1).is_some_and(|g| g.file == f.file)
                    || Some(&f.file) != last_file.as_ref();
                // Replicas report damage to a last frame (a torn write leaves a prefix, never
                // a whole frame failing a checksum) and repair it from their peers.
                let repairable = self.cfg.shape.nodes > 1;
                f.intact && f.header.payload_len > 0 && (!header || followed || repairable)
            })
            .map(|(_, f)| f)
            .collect();
        let part = if header { "header" } else { "payload" };
        if candidates.is_empty() {
            return self.fault(format!(
                "corrupt n{n}: no synced record whose {part} to corrupt"
            ));
        }
        let f = candidates[self.rng.below(candidates.len() as u64) as usize];
        let pos = if header {
            f.pos + self.rng.below(HEADER_LEN as u64) as usize
        } else {
            f.pos + HEADER_LEN + self.rng.below(u64::from(f.header.payload_len)) as usize
        };
        let bit = self.rng.below(8) as u8;
        let b = f.header.batch;
        let file = f.file.to_string();
        let frame = f.pos as u64..(f.pos + f.header.frame_len()) as u64;
        self.nodes[n as usize].disk.flip_bit(&file, pos, bit);
        if header {
            self.nodes[n as usize].damaged.push((file.clone(), frame));
        }
        // With one copy of the data, every copy is hit: those offsets may read back as corrupt.
        // A flipped header may also be cut away with the rest of the file if later damage
        // destroys every frame after it, and then its offsets are handed out again.
        if self.cfg.shape.nodes == 1 {
            self.check.groups.lose_history();
            self.lose_to_fault(n, b.partition, b.base_offset, b.count, header);
        } else if f.header.kind == sq_core::codec::EntryKind::Batch {
            self.damaged_copy(n, &b);
        }
        self.stats.corruptions += 1;
        self.fault(format!(
            "corrupt n{n}: {part} bit {bit} of {file}@{pos} (partition {} offsets {}..{})",
            b.partition,
            b.base_offset,
            b.base_offset + u64::from(b.count)
        ));
    }

    /// The records of `partition` at `base..base + count` on node `n`, its only copy, were hit
    /// by an injected fault: they may read back as corrupt, and if `cut` (the frame's header
    /// was hit, so recovery may cut it away) their offsets may be handed out again, so what the
    /// model knew at them, and the watermark above them, are lost to the fault.
    fn lose_to_fault(&mut self, n: u32, partition: u32, base: u64, count: u32, cut: bool) {
        let range = base..base + u64::from(count);
        self.check
            .excused
            .entry(partition)
            .or_default()
            .extend(range.clone());
        if cut {
            self.check.oracle.forget(partition, range);
            self.check.watermarks.forget(n, partition, base);
        }
    }

    /// Batch `b` on node `n`, a replica, was synced and then damaged by the harness: it still
    /// counts as one of the batch's copies (the fault atlas's one bad copy).
    fn damaged_copy(&mut self, n: u32, b: &sq_core::BatchMeta) {
        self.check.damaged_copies[n as usize]
            .insert((b.partition, b.base_offset), (b.producer, b.seq, b.count));
    }

    /// Records the damage of the misdirected writes node `n`'s disk did: the batch whose frame
    /// never reached its place, and every frame the stray bytes landed on, are excused (one node
    /// holds the only copy), and their byte ranges may explain a refusal to start.
    pub(super) fn excuse_misdirected(&mut self, n: u32) {
        let writes = self.nodes[n as usize].disk.take_misdirected();
        for w in writes {
            self.excuse_misdirected_write(n, w);
        }
    }

    fn excuse_misdirected_write(&mut self, n: u32, w: MisdirectedWrite) {
        let mut ranges = vec![(w.file.clone(), w.at..w.at + w.bytes.len() as u64)];
        let mut batches = Vec::new();
        let mut idents = Vec::new();
        if let Ok(h) = sq_core::codec::decode_header(&w.bytes) {
            if h.kind == sq_core::codec::EntryKind::Batch {
                batches.push((h.batch.partition, h.batch.base_offset, h.batch.count));
                idents.push(h.batch);
            }
        }
        if let Some((file, pos, len)) = &w.landed {
            let (start, end) = (*pos, pos + len);
            ranges.push((file.clone(), *pos..pos + len));
            // The frames the stray bytes overwrote, found in what the file held just before
            // (its page cache: a frame unsynced when hit is in no durable image yet).
            for (at, h) in image::frames_from(&w.before, 0).0 {
                let frame = at as u64..(at + h.frame_len()) as u64;
                if frame.start < end && start < frame.end {
                    if h.kind == sq_core::codec::EntryKind::Batch {
                        let b = h.batch;
                        batches.push((b.partition, b.base_offset, b.count));
                        idents.push(b);
                    }
                    ranges.push((file.clone(), frame));
                }
            }
        }
        if self.cfg.shape.nodes == 1 {
            self.check.groups.lose_history();
            // Recovery may take the damage for a torn tail and cut it.
            for &(p, base, count) in &batches {
                self.lose_to_fault(n, p, base, count, true);
            }
        } else {
            for b in &idents {
                self.damaged_copy(n, b);
            }
        }
        self.stats.corruptions += 1;
        self.fault(format!(
            "n{n}: an append to {}@{} ({} bytes) landed at {:?}; damaged batches {batches:?}",
            w.file,
            w.at,
            w.bytes.len(),
            w.landed
        ));
        self.nodes[n as usize].damaged.extend(ranges);
    }

    /// A node that stopped itself after a disk error is a process that exited: its page cache
    /// survives; its supervisor restarts it after the run's back-off, and it recovers from its
    /// disk.
    pub(super) fn supervise(&mut self, n: u32) -> Result<(), Box<Failure>> {
        let Some(why) = self.nodes[n as usize]
            .node
            .as_ref()
            .and_then(Node::failed)
            .map(str::to_string)
        else {
            return Ok(());
        };
        self.died_on_its_own(n, CrashKind::Process, format!("stopped: {why}"))
    }
}
