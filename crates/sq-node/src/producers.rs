//! The producer table: what idempotence needs to know of each producer, rebuilt from the log.
//!
//! A producer sends one batch at a time, numbered by a sequence that never repeats, and starts a
//! new epoch after any batch that was not acked. Every rule below follows from the log alone, so
//! the table is the same after a restart (and, with replication, on every replica): appended
//! batches and recorded refusals both advance it.

use bytes::{Buf, BufMut};
use sq_core::codec::{BatchMeta, EntryKind};
use sq_core::{ProduceError, ProducerId};
use std::collections::BTreeMap;

/// Why a refusal was recorded in the log: the `count` field of a refusal entry's (checked)
/// header, so that it survives damage to the payload and needs no read to rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefusalReason {
    /// No room for the batch: the sequence is spent, the batch never appended.
    StorageFull = 1,
    /// The sequence skipped ahead: the whole epoch is fenced, so no copy of it lands later.
    OutOfOrder = 2,
}

impl RefusalReason {
    pub(crate) fn from_code(b: u32) -> Option<RefusalReason> {
        match b {
            1 => Some(RefusalReason::StorageFull),
            2 => Some(RefusalReason::OutOfOrder),
            _ => None,
        }
    }
}

/// An appended batch the table still remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Appended {
    pub partition: u32,
    pub base_offset: u64,
    pub index: u64,
}

#[derive(Clone, Debug, Default)]
struct ProducerState {
    /// The newest epoch the log holds an entry of.
    epoch: u32,
    /// Epochs below this are fenced: no request of theirs is ever appended.
    fenced: u32,
    /// Whether any entry of this producer is in the log (epoch 0 is then a real epoch).
    known: bool,
    /// The next sequence that may be appended: every lower one was appended or refused.
    next_seq: u64,
    /// seq -> where it was appended, the newest `window` of them.
    recent: BTreeMap<u64, Appended>,
    /// seq -> (refusal, log index of the refusal entry), the newest `window` of them.
    refused: BTreeMap<u64, (RefusalReason, u64)>,
}

/// What to do with a produce request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A copy of an appended batch: answer with its offset once `index` commits.
    Duplicate(Appended),
    /// A copy of a refused request: answer `error` once the refusal at `index` commits.
    Refused { error: ProduceError, index: u64 },
    /// Refuse at once, recording nothing.
    Reject(ProduceError),
    /// Refuse, recording the refusal (the epoch is fenced) before answering.
    Fence,
    /// Append it.
    Append,
}

/// Every producer's state.
#[derive(Clone, Debug)]
pub(crate) struct ProducerTable {
    window: usize,
    producers: BTreeMap<u64, ProducerState>,
}

impl ProducerTable {
    /// An empty table remembering `window` recent sequences per producer (at least one).
    pub fn new(window: usize) -> ProducerTable {
        ProducerTable {
            window: window.max(1),
            producers: BTreeMap::new(),
        }
    }

    /// Decides what a produce of (`producer`, `epoch`, `seq`) to `partition` gets.
    pub fn check(&self, producer: ProducerId, epoch: u32, seq: u64, partition: u32) -> Verdict {
        let Some(state) = self.producers.get(&producer.0) else {
            // A producer never seen starts at epoch 0, sequence 0, or in a later epoch.
            return if epoch == 0 && seq > 0 {
                Verdict::Fence
            } else {
                Verdict::Append
            };
        };
        if let Some(a) = state.recent.get(&seq) {
            if a.partition == partition {
                return Verdict::Duplicate(*a);
            }
            return Verdict::Reject(ProduceError::OutOfOrderSequence {
                producer,
                epoch,
                seq,
                expected: state.next_seq,
            });
        }
        if let Some(&(reason, index)) = state.refused.get(&seq) {
            let error = match reason {
                RefusalReason::StorageFull => ProduceError::StorageFull,
                RefusalReason::OutOfOrder => ProduceError::ProducerFenced {
                    producer,
                    epoch,
                    current: state.fenced,
                },
            };
            return Verdict::Refused { error, index };
        }
        if seq < state.next_seq {
            // Appended or refused long ago: which, the table no longer knows.
            return Verdict::Reject(ProduceError::StaleSequence {
                producer,
                seq,
                next: state.next_seq,
            });
        }
        if epoch < state.fenced {
            return Verdict::Reject(ProduceError::ProducerFenced {
                producer,
                epoch,
                current: state.fenced,
            });
        }
        if epoch == state.epoch && state.known && seq > state.next_seq {
            return Verdict::Fence;
        }
        Verdict::Append
    }

    /// The error a fenced request gets.
    pub fn out_of_order(&self, producer: ProducerId, epoch: u32, seq: u64) -> ProduceError {
        let expected = self.producers.get(&producer.0).map_or(0, |s| s.next_seq);
        ProduceError::OutOfOrderSequence {
            producer,
            epoch,
            seq,
            expected,
        }
    }

    /// Appends the table's bytes (for a snapshot).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32_le(self.window as u32);
        out.put_u32_le(self.producers.len() as u32);
        for (id, s) in &self.producers {
            out.put_u64_le(*id);
            out.put_u32_le(s.epoch);
            out.put_u32_le(s.fenced);
            out.put_u8(u8::from(s.known));
            out.put_u64_le(s.next_seq);
            out.put_u32_le(s.recent.len() as u32);
            for (seq, a) in &s.recent {
                out.put_u64_le(*seq);
                out.put_u32_le(a.partition);
                out.put_u64_le(a.base_offset);
                out.put_u64_le(a.index);
            }
            out.put_u32_le(s.refused.len() as u32);
            for (seq, (reason, index)) in &s.refused {
                out.put_u64_le(*seq);
                out.put_u8(*reason as u8);
                out.put_u64_le(*index);
            }
        }
    }

    /// Decodes a table written by [`ProducerTable::encode`] from the front of `buf`; `None` if
    /// the bytes are malformed.
    pub fn decode(buf: &mut &[u8]) -> Option<ProducerTable> {
        let need = |b: &&[u8], n: usize| (b.remaining() >= n).then_some(());
        need(buf, 8)?;
        let window = buf.get_u32_le() as usize;
        let n = buf.get_u32_le();
        let mut producers = BTreeMap::new();
        for _ in 0..n {
            need(buf, 8 + 4 + 4 + 1 + 8 + 4)?;
            let id = buf.get_u64_le();
            let mut s = ProducerState {
                epoch: buf.get_u32_le(),
                fenced: buf.get_u32_le(),
                known: buf.get_u8() != 0,
                next_seq: buf.get_u64_le(),
                ..ProducerState::default()
            };
            for _ in 0..buf.get_u32_le() {
                need(buf, 28)?;
                let seq = buf.get_u64_le();
                let a = Appended {
                    partition: buf.get_u32_le(),
                    base_offset: buf.get_u64_le(),
                    index: buf.get_u64_le(),
                };
                s.recent.insert(seq, a);
            }
            need(buf, 4)?;
            for _ in 0..buf.get_u32_le() {
                need(buf, 17)?;
                let seq = buf.get_u64_le();
                let reason = RefusalReason::from_code(u32::from(buf.get_u8()))?;
                s.refused.insert(seq, (reason, buf.get_u64_le()));
            }
            producers.insert(id, s);
        }
        Some(ProducerTable {
            window: window.max(1),
            producers,
        })
    }

    /// Takes in one log entry (appended now, or read back from the log).
    pub fn apply(&mut self, kind: EntryKind, b: &BatchMeta, index: u64) {
        let window = self.window;
        if matches!(
            kind,
            EntryKind::Noop | EntryKind::Manifest | EntryKind::Group
        ) {
            return;
        }
        let state = self.producers.entry(b.producer).or_default();
        match kind {
            EntryKind::Noop | EntryKind::Manifest | EntryKind::Group => {}
            EntryKind::Batch => {
                state.epoch = b.epoch;
                state.fenced = state.fenced.max(b.epoch);
                state.known = true;
                state.next_seq = state.next_seq.max(b.seq.saturating_add(1));
                state.recent.insert(
                    b.seq,
                    Appended {
                        partition: b.partition,
                        base_offset: b.base_offset,
                        index,
                    },
                );
                while state.recent.len() > window {
                    state.recent.pop_first();
                }
            }
            EntryKind::Refusal => {
                match RefusalReason::from_code(b.count) {
                    Some(RefusalReason::StorageFull) => {
                        state.epoch = state.epoch.max(b.epoch);
                        state.fenced = state.fenced.max(b.epoch);
                        state.known = true;
                        state.next_seq = state.next_seq.max(b.seq.saturating_add(1));
                        state
                            .refused
                            .insert(b.seq, (RefusalReason::StorageFull, index));
                    }
                    Some(RefusalReason::OutOfOrder) => {
                        state.fenced = state.fenced.max(b.epoch.saturating_add(1));
                        state
                            .refused
                            .insert(b.seq, (RefusalReason::OutOfOrder, index));
                    }
                    // A reason this version does not know: fence the epoch and spend the
                    // sequence, the strongest reading, so that no copy of the request lands.
                    None => {
                        state.fenced = state.fenced.max(b.epoch.saturating_add(1));
                        state.next_seq = state.next_seq.max(b.seq.saturating_add(1));
                        state
                            .refused
                            .insert(b.seq, (RefusalReason::OutOfOrder, index));
                    }
                }
                while state.refused.len() > window {
                    state.refused.pop_first();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn meta(epoch: u32, seq: u64) -> BatchMeta {
        BatchMeta {
            partition: 0,
            base_offset: seq,
            count: 1,
            producer: 7,
            epoch,
            seq,
        }
    }

    /// The header of a refusal entry for (`epoch`, `seq`): its reason in `count`.
    fn refusal(epoch: u32, seq: u64, reason: RefusalReason) -> BatchMeta {
        BatchMeta {
            count: reason as u32,
            ..meta(epoch, seq)
        }
    }

    const P: ProducerId = ProducerId(7);

    #[test]
    fn sequences_are_checked_both_ways() {
        let mut t = ProducerTable::new(2);
        assert_eq!(t.check(P, 0, 0, 0), Verdict::Append);
        assert_eq!(
            t.check(P, 0, 3, 0),
            Verdict::Fence,
            "a fresh producer starts at 0"
        );
        t.apply(EntryKind::Batch, &meta(0, 0), 1);
        t.apply(EntryKind::Batch, &meta(0, 1), 2);
        t.apply(EntryKind::Batch, &meta(0, 2), 3);
        let dup = Appended {
            partition: 0,
            base_offset: 2,
            index: 3,
        };
        assert_eq!(t.check(P, 0, 2, 0), Verdict::Duplicate(dup));
        assert_eq!(
            t.check(P, 0, 0, 0),
            Verdict::Reject(ProduceError::StaleSequence {
                producer: P,
                seq: 0,
                next: 3
            })
        );
        assert_eq!(t.check(P, 0, u64::MAX, 0), Verdict::Fence);
        assert_eq!(t.check(P, 0, 3, 0), Verdict::Append);
        // A new epoch may start past a gap (the batches in it were never acked).
        assert_eq!(t.check(P, 1, 9, 0), Verdict::Append);
    }

    #[test]
    fn a_window_of_one_remembers_the_newest() {
        let mut t = ProducerTable::new(1);
        t.apply(EntryKind::Batch, &meta(0, 0), 1);
        t.apply(EntryKind::Batch, &meta(0, 1), 2);
        assert!(matches!(t.check(P, 0, 1, 0), Verdict::Duplicate(_)));
        assert!(matches!(
            t.check(P, 0, 0, 0),
            Verdict::Reject(ProduceError::StaleSequence { .. })
        ));
        t.apply(
            EntryKind::Refusal,
            &refusal(0, 2, RefusalReason::StorageFull),
            3,
        );
        assert!(matches!(
            t.check(P, 0, 2, 0),
            Verdict::Refused { index: 3, .. }
        ));
    }

    #[test]
    fn a_table_round_trips_through_its_bytes() {
        let mut t = ProducerTable::new(2);
        t.apply(EntryKind::Batch, &meta(0, 0), 1);
        t.apply(EntryKind::Batch, &meta(0, 1), 2);
        t.apply(
            EntryKind::Refusal,
            &refusal(0, 2, RefusalReason::StorageFull),
            3,
        );
        let mut buf = Vec::new();
        t.encode(&mut buf);
        let back = ProducerTable::decode(&mut buf.as_slice()).expect("decodes");
        for seq in 0..4 {
            assert_eq!(back.check(P, 0, seq, 0), t.check(P, 0, seq, 0), "seq {seq}");
        }
        assert!(ProducerTable::decode(&mut &buf[..buf.len() - 1]).is_none());
    }

    #[test]
    fn refusals_stay_refused_and_fence() {
        let mut t = ProducerTable::new(4);
        t.apply(EntryKind::Batch, &meta(0, 0), 1);
        t.apply(
            EntryKind::Refusal,
            &refusal(0, 1, RefusalReason::StorageFull),
            2,
        );
        assert_eq!(
            t.check(P, 0, 1, 0),
            Verdict::Refused {
                error: ProduceError::StorageFull,
                index: 2
            }
        );
        // The producer moves on in a new epoch; its old epoch is fenced once that lands.
        assert_eq!(t.check(P, 1, 2, 0), Verdict::Append);
        t.apply(EntryKind::Batch, &meta(1, 2), 3);
        assert_eq!(
            t.check(P, 0, 5, 0),
            Verdict::Reject(ProduceError::ProducerFenced {
                producer: P,
                epoch: 0,
                current: 1
            })
        );
        // An out-of-order refusal fences its own epoch.
        t.apply(
            EntryKind::Refusal,
            &refusal(1, 9, RefusalReason::OutOfOrder),
            4,
        );
        assert!(matches!(
            t.check(P, 1, 3, 0),
            Verdict::Reject(ProduceError::ProducerFenced { current: 2, .. })
        ));
        assert_eq!(t.check(P, 2, 3, 0), Verdict::Append);
    }
}
