//! Feeding the clients' history to the reference model, event by event.

use super::*;

impl Sim {
    /// Feeds client `c`'s new history events to the reference model.
    pub(super) fn after_client(&mut self, c: u32) -> Result<(), Box<Failure>> {
        let p = u32::from(self.cfg.shape.producers);
        let events = if c < p {
            self.producers[c as usize].drain_history()
        } else {
            self.consumers[(c - p) as usize].drain_history()
        };
        for e in events {
            self.trace.record(
                self.now,
                What::History {
                    line: history_line(&e),
                },
            );
            self.observe(c, &e).map_err(|v| self.fail(v, None))?;
            self.history.push(e);
        }
        Ok(())
    }

    pub(super) fn observe(&mut self, c: u32, e: &HistoryEvent) -> Result<(), Violation> {
        let key = (c, e.op);
        match (&e.outcome, self.ops.get(&key).cloned()) {
            (
                Outcome::Invoke(Op::Produce {
                    partition,
                    producer,
                    seq,
                    records,
                }),
                _,
            ) => {
                self.oracle.invoke(partition.0, producer.0, *seq, records);
                self.ops.insert(
                    key,
                    OpInfo::Produce {
                        partition: partition.0,
                        producer: producer.0,
                        seq: *seq,
                    },
                );
            }
            (Outcome::Invoke(Op::Fetch { partition, offset }), _) => {
                let expected = self
                    .consumer_next
                    .get(&(c, partition.0))
                    .copied()
                    .unwrap_or(0);
                if *offset != expected {
                    return Err(Violation::new(
                        Invariant::Contiguous,
                        format!("{} fetching {partition}", e.client),
                        format!("the next fetch starts at offset {expected}, where the last ended"),
                        format!("it starts at offset {offset}"),
                    ));
                }
                self.ops.insert(
                    key,
                    OpInfo::Fetch {
                        partition: partition.0,
                        offset: *offset,
                    },
                );
            }
            (Outcome::Produced { base_offset }, Some(OpInfo::Produce { producer, seq, .. })) => {
                self.stats.acked += 1;
                self.oracle.acked(producer, seq, *base_offset)?;
            }
            (Outcome::Fail(_), Some(OpInfo::Produce { producer, seq, .. })) => {
                self.stats.failed += 1;
                self.oracle.failed(producer, seq)?;
            }
            (Outcome::Info(_), Some(OpInfo::Produce { producer, seq, .. })) => {
                self.stats.indeterminate += 1;
                self.oracle.indeterminate(producer, seq);
            }
            (Outcome::Fetched { records, .. }, Some(OpInfo::Fetch { partition, offset })) => {
                self.stats.fetches += 1;
                let recs: Vec<_> = records
                    .iter()
                    .map(|r| (r.offset, r.value.clone()))
                    .collect();
                self.oracle.fetched(partition, offset, &recs)?;
                if let Some(last) = records.last() {
                    self.consumer_next.insert((c, partition), last.offset + 1);
                }
                if let Some(rb) = self.readback.as_mut() {
                    if c == u32::from(self.cfg.shape.producers)
                        + u32::from(self.cfg.shape.consumers)
                    {
                        rb.done = records.is_empty();
                        rb.records
                            .extend(recs.into_iter().map(|(o, v)| (o, Some(v))));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A consumer was told a batch is corrupt: allowed only where a fault was injected; it then
    /// moves past the batch.
    pub(super) fn skip_corrupt(
        &mut self,
        c: u32,
        req: u64,
        offset: u64,
        next: u64,
    ) -> Result<(), Box<Failure>> {
        let Some(&OpInfo::Fetch { partition, .. }) = self.ops.get(&(c, req)) else {
            return Ok(());
        };
        let excused = self.excused.get(&partition);
        if !excused.is_some_and(|e| (offset..next).all(|o| e.contains(&o))) {
            return Err(self.fail(
                Violation::new(
                    Invariant::CrcIntegrity,
                    format!("partition {partition} offsets {offset}..{next}"),
                    "readable records: no fault was injected into them",
                    "the node reports them corrupt",
                ),
                None,
            ));
        }
        if let Some(rb) = self.readback.as_mut() {
            rb.records.extend((offset..next).map(|o| (o, None)));
        }
        let p = u32::from(self.cfg.shape.producers);
        self.consumers[(c - p) as usize].seek(PartitionId(partition), next);
        self.consumer_next.insert((c, partition), next);
        Ok(())
    }
}
