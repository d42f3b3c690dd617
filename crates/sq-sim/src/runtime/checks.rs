//! The invariant checks the harness runs: at each reply, after each transition, at the end.

use super::*;

impl Sim {
    /// The checks made the moment a node answers, before the answer can be seen.
    pub(super) fn check_reply(
        &self,
        n: u32,
        client: u32,
        req: u64,
        reply: &Reply,
    ) -> Result<(), Box<Failure>> {
        let sn = &self.nodes[n as usize];
        let Some(node) = sn.node.as_ref() else {
            return Ok(());
        };
        let checked = match (self.ops.get(&(client, req)), reply) {
            // A batch whose frame the harness damaged beyond its payload (a header flip, a
            // misdirected write) cannot be read back to check; its offsets are excused.
            (Some(&OpInfo::Produce { partition, .. }), Reply::Produce(Ok(ok)))
                if !sn.damaged.is_empty()
                    && self
                        .excused
                        .get(&partition)
                        .is_some_and(|e| e.contains(&ok.base_offset)) =>
            {
                Ok(())
            }
            (
                Some(&OpInfo::Produce {
                    partition,
                    producer,
                    seq,
                    count,
                }),
                Reply::Produce(Ok(ok)),
            ) => served::check_ack_synced(
                node,
                &sn.disk,
                partition,
                (producer, seq, count),
                ok.base_offset,
                self.excused.get(&partition).unwrap_or(&BTreeSet::new()),
            ),
            (Some(&OpInfo::Fetch { partition, .. }), Reply::Fetch(Ok(ok))) => {
                match (ok.records.first(), ok.records.last()) {
                    (Some(a), Some(b)) => served::check_served_committed(
                        node,
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
            for p in 0..u32::from(self.cfg.shape.partitions) {
                let Some(hw) = self
                    .node(n)
                    .and_then(|node| node.high_watermark(PartitionId(p)))
                else {
                    continue;
                };
                if let Err(v) = self.watermarks.observe(n, p, hw) {
                    return Err(self.fail(v, Some(n)));
                }
            }
        }
        Ok(())
    }

    /// Checks the durable images in full when some disk's durable bytes changed other than by
    /// growing since the last full check. Otherwise every byte checked then is still there, and
    /// each batch acked since was checked durable at the moment its ack was sent.
    pub(super) fn check_images_if_rewritten(&mut self) -> Result<(), Box<Failure>> {
        let now: Vec<_> = self
            .nodes
            .iter()
            .map(|sn| Some(sn.disk.rewrites()))
            .collect();
        if now == self.checked_rewrites {
            return Ok(());
        }
        self.check_images()?;
        self.checked_rewrites = now;
        Ok(())
    }

    /// Invariants 1 and 2 on every node's durable image, in full. A node whose WAL headers the
    /// harness damaged (a header flip, a misdirected write) is left out: the image parser stops
    /// at the first unreadable header, so its image says nothing of what follows. What such a
    /// node serves is still checked, at each reply and at the final read-back.
    pub fn check_images(&self) -> Result<(), Box<Failure>> {
        let mut images = Vec::new();
        for (n, sn) in self.nodes.iter().enumerate() {
            if !sn.damaged.is_empty() {
                continue;
            }
            let frames = image::scan(&sn.disk);
            durability::check_contiguous(n as u32, &frames, u32::from(self.cfg.shape.partitions))
                .map_err(|v| self.fail(v, Some(n as u32)))?;
            images.push(image::index(&frames));
        }
        if images.is_empty() {
            return Ok(());
        }
        let none = BTreeSet::new();
        for (partition, producer, seq, base_offset, count) in self.oracle.acked_batches() {
            let batch = AckedBatch {
                partition,
                producer,
                seq,
                base_offset,
                count,
            };
            let excused = self.excused.get(&partition).unwrap_or(&none);
            durability::check_acked_durable(&images, &batch, excused)
                .map_err(|v| self.fail(v, None))?;
        }
        Ok(())
    }
}
