//! The invariant checks the harness runs: at each reply, after each transition, at the end.

use super::*;
use crate::invariants::durable_image::Refreshed;
use crate::invariants::tiering;
use sq_core::GroupOk;

impl Sim {
    /// The checks made the moment a node answers, before the answer can be seen: an ack only
    /// for a batch already durable, records only from durable batches. The checker's durable
    /// image is brought up to date first (its own invariant checks included).
    pub(super) fn check_reply(
        &mut self,
        n: u32,
        client: u32,
        req: u64,
        reply: &Reply,
    ) -> Result<(), Box<Failure>> {
        let op = self.work.ops.get(&(client, req)).cloned();
        let checks = matches!(
            (&op, reply),
            (Some(OpInfo::Produce { .. }), Reply::Produce(Ok(_)))
                | (Some(OpInfo::Fetch { .. }), Reply::Fetch(Ok(_)))
                | (
                    Some(OpInfo::GroupRead { .. }),
                    Reply::Group(Ok(GroupOk::Offset { offset: Some(_) }))
                )
        );
        if !checks {
            return Ok(());
        }
        self.refresh_images()?;
        if let (
            Some(OpInfo::GroupRead { partition }),
            Reply::Group(Ok(GroupOk::Offset {
                offset: Some(offset),
            })),
        ) = (&op, reply)
        {
            let excuses = crate::invariants::group_offsets::Excuses {
                faulty_disk: self.check.faulty_disk,
                store_flipped: self.store.ever_flipped(),
            };
            return crate::invariants::group_offsets::check_offset_committed(
                &self.replicas(),
                excuses,
                n,
                client,
                (super::workload::GROUP.0, *partition),
                *offset,
            )
            .map_err(|v| self.fail(v, Some(n)));
        }
        if let Reply::Fetch(Ok(ok)) = reply {
            self.check_fetch_contract(n, ok.records.len())?;
        }
        if self.cfg.shape.nodes > 1 {
            return self.check_reply_replicated(n, op, reply);
        }
        let sn = &self.nodes[n as usize];
        let image = &self.check.images[n as usize];
        let none = BTreeSet::new();
        let checked = match (op, reply) {
            // A batch whose frame the harness damaged beyond its payload (a header flip, a
            // misdirected write) cannot be read back to check; its offsets are excused.
            (Some(OpInfo::Produce { partition, .. }), Reply::Produce(Ok(ok)))
                if !sn.damaged.is_empty()
                    && self
                        .check
                        .excused
                        .get(&partition)
                        .is_some_and(|e| e.contains(&ok.base_offset)) =>
            {
                Ok(())
            }
            (
                Some(OpInfo::Produce {
                    partition,
                    producer,
                    seq,
                    count,
                    ..
                }),
                Reply::Produce(Ok(ok)),
            ) => served::check_ack_synced(
                n,
                image,
                &sn.disk,
                partition,
                (producer, seq, count),
                ok.base_offset,
                self.check.excused.get(&partition).unwrap_or(&none),
            ),
            (Some(OpInfo::Fetch { partition, .. }), Reply::Fetch(Ok(ok))) => {
                match (ok.records.first(), ok.records.last()) {
                    (Some(a), Some(b)) => served::check_served_committed(
                        n,
                        image,
                        &sn.disk,
                        partition,
                        a.offset..b.offset + 1,
                    ),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        };
        checked.map_err(|v| self.fail(v, Some(n)))
    }

    /// Every up node's high watermarks, against the highest each reported before.
    pub(super) fn check_watermarks(&mut self) -> Result<(), Box<Failure>> {
        for n in 0..self.nodes.len() as u32 {
            if self.node(n).is_some_and(|node| node.status().repairing) {
                self.check.watermarks.reset_node(n);
                continue;
            }
            for p in 0..u32::from(self.cfg.shape.partitions) {
                let Some(hw) = self
                    .node(n)
                    .and_then(|node| node.high_watermark(PartitionId(p)))
                else {
                    continue;
                };
                if let Err(v) = self.check.watermarks.observe(n, p, hw) {
                    return Err(self.fail(v, Some(n)));
                }
            }
        }
        Ok(())
    }

    /// Brings every node's durable image up to date with what changed on its disk, and checks
    /// invariants 1 and 2 where it changed: contiguity around the changed files, and every
    /// acked batch that lay in a file that was rewritten or removed. Batches acked since were
    /// checked durable the moment their ack was sent, and growth removes nothing; so this
    /// checks as much as a full check, at a cost that follows the change.
    ///
    /// A node whose WAL headers the harness damaged (a header flip, a misdirected write) is
    /// left out: the image parser stops at the first unreadable header, so its image says
    /// nothing of what follows. What such a node serves is still checked, at each reply and at
    /// the final read-back.
    pub(super) fn refresh_images(&mut self) -> Result<(), Box<Failure>> {
        let partitions = u32::from(self.cfg.shape.partitions);
        let mut displaced = BTreeSet::new();
        for n in 0..self.nodes.len() {
            let sn = &mut self.nodes[n];
            let refreshed = self.check.images[n].refresh(&mut sn.disk, &self.store);
            self.check_tiering(n as u32, &refreshed)?;
            // A cluster of one never changes term: after a cut tail it writes new entries at the
            // same index and term, as it may. Log matching is a property of replicas.
            let replicated = self.cfg.shape.nodes > 1;
            for &(index, term, id) in refreshed.new_entries.iter().filter(|_| replicated) {
                self.check
                    .raft
                    .durable(n as u32, index, term, id)
                    .map_err(|v| self.fail(v, Some(n as u32)))?;
            }
            // The replica whose storage the harness made lie cuts its log before the damage
            // to repair it; what it cut that was acked stays one of its copies until it holds
            // it again (the fault atlas allows one bad copy of an item, the cut included).
            // (An ack may still be on its way: every batch it held counts, acked or not.)
            if self.check.faulty_disk == Some(n as u32) {
                for &(key, ident) in &refreshed.removed {
                    let held = self.check.images[n]
                        .batch_holding(key.0, key.1)
                        .is_some_and(|f| {
                            let b = f.header.batch;
                            (b.producer, b.seq, b.count) == ident
                        });
                    if !held {
                        self.check.damaged_copies[n].insert(key, ident);
                    }
                }
            }
            let sn = &self.nodes[n];
            if !sn.damaged.is_empty() || refreshed.files.is_empty() {
                continue;
            }
            self.check.images[n]
                .check_contiguous(n as u32, &refreshed.files, partitions)
                .map_err(|v| self.fail(v, Some(n as u32)))?;
            displaced.extend(refreshed.displaced);
        }
        let batches: Vec<_> = displaced
            .into_iter()
            .filter_map(|key| self.check.acked.get(&key).copied())
            .collect();
        self.check_acked(&self.check.images.iter().collect::<Vec<_>>(), &batches)
    }

    /// A fetch node `n` answers with `records` records: at most its cap, and (a replica of a
    /// cluster) only as a leader whose term has committed its first entry.
    fn check_fetch_contract(&self, n: u32, records: usize) -> Result<(), Box<Failure>> {
        let cap = self.cfg.max_fetch_records as usize;
        // Seen after the node's step: a leader that stepped down in it (a damage cut lowers its
        // commit index) may have served while it was ready, earlier in that step. One that still
        // leads has not lowered its commit index.
        let unready = self.node(n).map(Node::status).and_then(|s| {
            let ready = self.cfg.shape.nodes <= 1
                || s.role != sq_node::Role::Leader
                || self.check.raft.leader_ready(s.term, s.commit_index);
            (!ready).then_some((s.term, s.commit_index))
        });
        served::check_fetch_contract(n, records, cap, unready).map_err(|v| self.fail(v, Some(n)))
    }

    /// Invariant 6 for what node `n` trimmed, and the store's confirmation of every manifest
    /// entry that became durable on it.
    fn check_tiering(&mut self, n: u32, refreshed: &Refreshed) -> Result<(), Box<Failure>> {
        self.stats.trimmed_entries += refreshed.trimmed.len() as u64;
        for (index, desc) in &refreshed.manifests {
            tiering::check_manifest_confirmed(n, *index, desc, &self.store)
                .map_err(|v| self.fail(v, Some(n)))?;
        }
        let image = &self.check.images[n as usize];
        if let Some(snapshot) = image.snapshot().filter(|_| image.snapshot_changed()) {
            tiering::check_manifest_chain(n, &snapshot.manifest)
                .map_err(|v| self.fail(v, Some(n)))?;
        }
        if refreshed.trimmed.is_empty() {
            return Ok(());
        }
        let manifest = image.snapshot().map_or(&[][..], |s| &s.manifest[..]);
        let commit = self.nodes[n as usize]
            .node
            .as_ref()
            .map_or(u64::MAX, |node| node.status().commit_index);
        let committed = |i: u64| self.check.raft.committed_entry(i);
        tiering::check_trimmed(
            n,
            &refreshed.trimmed,
            manifest,
            commit,
            &self.store,
            &committed,
        )
        .map_err(|v| self.fail(v, Some(n)))
    }

    /// Invariant 1 for `batches` on `images` (the nodes with no harness-damaged headers).
    fn check_acked(
        &self,
        images: &[&DurableImage],
        batches: &[AckedBatch],
    ) -> Result<(), Box<Failure>> {
        if self.cfg.shape.nodes > 1 {
            return self.check_acked_replicated(images, batches);
        }
        let indexes: Vec<_> = images
            .iter()
            .zip(&self.nodes)
            .filter(|(_, sn)| sn.damaged.is_empty())
            .map(|(image, _)| image.batches())
            .collect();
        if indexes.is_empty() {
            return Ok(());
        }
        let none = BTreeSet::new();
        for batch in batches {
            let excused = self.check.excused.get(&batch.partition).unwrap_or(&none);
            durability::check_acked_durable(&indexes, batch, excused)
                .map_err(|v| self.fail(v, None))?;
        }
        Ok(())
    }

    /// Invariants 1 and 2 on every node's durable image, parsed afresh in full: at the end of a
    /// run, and for doctored-state tests. The incremental images are brought up to date first,
    /// so that what they learnt of the latest changes (copies a lying disk's replica cut) counts.
    pub fn check_images(&mut self) -> Result<(), Box<Failure>> {
        self.refresh_images()?;
        let partitions = u32::from(self.cfg.shape.partitions);
        let mut images = Vec::new();
        for (n, sn) in self.nodes.iter().enumerate() {
            let image = DurableImage::full(&sn.disk, &self.store);
            if sn.damaged.is_empty() {
                image
                    .check_contiguous(n as u32, &image.files(), partitions)
                    .map_err(|v| self.fail(v, Some(n as u32)))?;
            }
            images.push(image);
        }
        let batches: Vec<_> = self.check.acked.values().copied().collect();
        self.check_acked(&images.iter().collect::<Vec<_>>(), &batches)
    }
}
