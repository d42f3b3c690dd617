//! Feeding the clients' history to the reference model, event by event.

use super::*;
use crate::invariants::consumer;

/// How many of a client's latest operations the harness remembers for checking late replies.
const OPS_KEPT: u64 = 64;

impl Sim {
    /// Feeds client `c`'s new history events to the reference model.
    pub(super) fn after_client(&mut self, c: u32) -> Result<(), Box<Failure>> {
        let p = u32::from(self.cfg.shape.producers);
        let events = if c < p {
            self.work.producers[c as usize].drain_history()
        } else if let Some(k) = self.member_of(c) {
            self.work.members[k].drain_history()
        } else {
            self.work.consumers[(c - p) as usize].drain_history()
        };
        for e in events {
            self.trace.record(
                self.now,
                What::History {
                    line: history_line(&e),
                },
            );
            self.observe(c, &e).map_err(|v| self.fail(v, None))?;
            if !matches!(e.outcome, Outcome::Invoke(_)) {
                self.work.last_outcome.insert(c, e.outcome.clone());
            }
            if self.cfg.keep_history {
                self.work.history.push(e);
            }
        }
        Ok(())
    }

    pub(super) fn observe(&mut self, c: u32, e: &HistoryEvent) -> Result<(), Violation> {
        let key = (c, e.op);
        if matches!(e.outcome, Outcome::Invoke(_)) {
            // A client has one operation in flight and gives up on it within its attempts, so a
            // late reply (to a retry, or a duplicate) concerns one of its last few operations:
            // keep what the checks need to know of those, not of every operation of a long run.
            if let Some(old) = e.op.checked_sub(OPS_KEPT) {
                self.work.ops.remove(&(c, old));
            }
        }
        if self.member_of(c).is_some() {
            return self.observe_member_event(c, e);
        }
        match (&e.outcome, self.work.ops.get(&key).cloned()) {
            (
                Outcome::Invoke(Op::Produce {
                    partition,
                    producer,
                    seq,
                    records,
                }),
                _,
            ) => {
                self.check
                    .oracle
                    .invoke(partition.0, producer.0, *seq, records);
                self.work.ops.insert(
                    key,
                    OpInfo::Produce {
                        partition: partition.0,
                        producer: producer.0,
                        seq: *seq,
                        count: records.len() as u32,
                        invoked: e.time,
                    },
                );
            }
            (Outcome::Invoke(Op::Fetch { partition, offset }), _) => {
                let expected = self
                    .check
                    .consumer_next
                    .get(&(c, partition.0))
                    .copied()
                    .unwrap_or(0);
                consumer::check_next_fetch(e.client, *partition, expected, *offset)?;
                self.work.ops.insert(
                    key,
                    OpInfo::Fetch {
                        partition: partition.0,
                        offset: *offset,
                    },
                );
            }
            (
                Outcome::Produced { base_offset },
                Some(OpInfo::Produce {
                    partition,
                    producer,
                    seq,
                    count,
                    ..
                }),
            ) => {
                self.stats.acked += 1;
                self.check.oracle.acked(producer, seq, *base_offset)?;
                let batch = AckedBatch {
                    partition,
                    producer,
                    seq,
                    base_offset: *base_offset,
                    count,
                };
                self.check.acked.insert((partition, *base_offset), batch);
            }
            (Outcome::Fail(_), Some(OpInfo::Produce { producer, seq, .. })) => {
                self.stats.failed += 1;
                self.check.oracle.failed(producer, seq)?;
            }
            (Outcome::Info(_), Some(OpInfo::Produce { producer, seq, .. })) => {
                self.stats.indeterminate += 1;
                self.check.oracle.indeterminate(producer, seq);
            }
            (Outcome::Fetched { records, .. }, Some(OpInfo::Fetch { partition, offset })) => {
                self.stats.fetches += 1;
                let recs: Vec<_> = records
                    .iter()
                    .map(|r| (r.offset, r.value.clone()))
                    .collect();
                self.check.oracle.fetched(partition, offset, &recs)?;
                if let Some(last) = records.last() {
                    self.check
                        .consumer_next
                        .insert((c, partition), last.offset + 1);
                }
                if let Some(rb) = self.check.readback.as_mut() {
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
        let Some(&OpInfo::Fetch { partition, .. }) = self.work.ops.get(&(c, req)) else {
            return Ok(());
        };
        if let Some(k) = self.member_of(c) {
            consumer::check_corrupt_excused(
                partition,
                offset,
                next,
                self.check.excused.get(&partition),
            )
            .map_err(|v| self.fail(v, None))?;
            self.member_skips(c, k, partition, offset, next);
            return Ok(());
        }
        consumer::check_corrupt_excused(
            partition,
            offset,
            next,
            self.check.excused.get(&partition),
        )
        .map_err(|v| self.fail(v, None))?;
        if let Some(rb) = self.check.readback.as_mut() {
            rb.records.extend((offset..next).map(|o| (o, None)));
        }
        let p = u32::from(self.cfg.shape.producers);
        self.work.consumers[(c - p) as usize].seek(PartitionId(partition), next);
        self.check.consumer_next.insert((c, partition), next);
        Ok(())
    }
}

impl Sim {
    /// A group consumer's history event: its reads are checked against the log model like any
    /// consumer's, and everything it does is fed to the group model.
    fn observe_member_event(&mut self, c: u32, e: &HistoryEvent) -> Result<(), Violation> {
        let key = (c, e.op);
        match (&e.outcome, self.work.ops.get(&key).cloned()) {
            (Outcome::Invoke(Op::Fetch { partition, offset }), _) => {
                let info = OpInfo::Fetch {
                    partition: partition.0,
                    offset: *offset,
                };
                self.work.ops.insert(key, info);
            }
            (
                Outcome::Invoke(Op::Group(sq_core::GroupRequest::FetchOffset {
                    partition, ..
                })),
                _,
            ) => {
                let info = OpInfo::GroupRead {
                    partition: partition.0,
                };
                self.work.ops.insert(key, info);
            }
            (Outcome::Fetched { records, .. }, Some(OpInfo::Fetch { partition, offset })) => {
                self.stats.fetches += 1;
                let recs: Vec<_> = records
                    .iter()
                    .map(|r| (r.offset, r.value.clone()))
                    .collect();
                self.check.oracle.fetched(partition, offset, &recs)?;
            }
            _ => {}
        }
        self.observe_member(c, e)
    }
}
