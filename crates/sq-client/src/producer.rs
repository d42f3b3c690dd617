//! The idempotent producer: one batch in flight, retried with the same sequence until it is
//! acked, definitely refused, or the attempts run out (then it is indeterminate). Sequences never
//! repeat; after any batch that was not acked the producer starts a new epoch, so the node can
//! tell a deliberate gap (the abandoned batch) from one that skips ahead.

use crate::history::{Op, Outcome};
use crate::session::Session;
use crate::{ClientError, ClientOutput, History};
use bytes::Bytes;
use sq_core::{
    ClientId, Definiteness, PartitionId, ProduceRequest, ProducerId, Reply, Request, Time,
};

/// How patient a producer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Resend if no answer came within this many nanoseconds.
    pub retry_after: u64,
    /// Give up (indeterminate) after this many sends without an answer.
    pub max_attempts: u32,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            retry_after: 20 * Time::MILLI,
            max_attempts: 5,
        }
    }
}

/// A producer client.
#[derive(Clone, Debug)]
pub struct Producer {
    producer: ProducerId,
    epoch: u32,
    next_seq: u64,
    session: Session,
}

impl Producer {
    /// A producer named `client` in the history, producing as `producer`.
    pub fn new(client: ClientId, producer: ProducerId, config: ProducerConfig) -> Producer {
        Producer {
            producer,
            epoch: 0,
            next_seq: 0,
            session: Session::new(client, config.retry_after, config.max_attempts),
        }
    }

    /// Whether no produce is in flight.
    pub fn is_idle(&self) -> bool {
        self.session.is_idle()
    }

    /// When the produce in flight was invoked, if one is.
    pub fn in_flight_since(&self) -> Option<Time> {
        self.session.in_flight_since()
    }

    /// The client id.
    pub fn client(&self) -> ClientId {
        self.session.client()
    }

    /// Starts producing `records` to `partition` with the next sequence number.
    pub fn produce(
        &mut self,
        now: Time,
        partition: PartitionId,
        records: Vec<Bytes>,
        out: &mut Vec<ClientOutput>,
    ) -> Result<u64, ClientError> {
        let seq = self.next_seq;
        let invoke = Op::Produce {
            partition,
            producer: self.producer,
            seq,
            records: records.clone(),
        };
        let request = Request::Produce(ProduceRequest {
            partition,
            producer: self.producer,
            epoch: self.epoch,
            seq,
            records,
        });
        let op = self.session.start(now, invoke, request, out)?;
        self.next_seq += 1;
        Ok(op)
    }

    /// Handles a reply to request `req`. Replies to operations no longer in flight are ignored.
    pub fn on_reply(&mut self, now: Time, req: u64, reply: Reply) {
        if self.session.answering(req).is_none() {
            return;
        }
        let Reply::Produce(result) = reply else {
            return;
        };
        let outcome = match result {
            Ok(ok) => Outcome::Produced {
                base_offset: ok.base_offset,
            },
            Err(e) if e.definiteness() == Definiteness::Definite => {
                self.epoch += 1;
                Outcome::Fail(e.to_string())
            }
            // Indeterminate: the batch may be in the log; retrying with the same sequence is safe.
            Err(_) => return,
        };
        self.session.finish(now, outcome);
    }

    /// Handles a timer: resends the batch, or gives up once the attempts are spent (and then
    /// starts a new epoch, as after any batch that was not acked).
    pub fn on_timer(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        let busy = !self.session.is_idle();
        self.session.on_timer(now, out);
        if busy && self.session.is_idle() {
            self.epoch += 1;
        }
    }

    /// Takes the history recorded since the last call.
    pub fn drain_history(&mut self) -> History {
        self.session.drain_history()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use sq_core::{ProduceError, ProduceOk};

    fn producer() -> Producer {
        Producer::new(
            ClientId(0),
            ProducerId(3),
            ProducerConfig {
                retry_after: 10,
                max_attempts: 2,
            },
        )
    }

    fn sent_seqs(out: &[ClientOutput]) -> Vec<(u32, u64)> {
        out.iter()
            .filter_map(|o| match o {
                ClientOutput::Send {
                    request: Request::Produce(p),
                    ..
                } => Some((p.epoch, p.seq)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn retries_keep_the_sequence_then_give_up_indeterminate() {
        let mut p = producer();
        let mut out = Vec::new();
        let op = p.produce(
            Time(0),
            PartitionId(0),
            vec![Bytes::from_static(b"x")],
            &mut out,
        );
        assert_eq!(op, Ok(0));
        p.on_timer(Time(5), &mut out); // not yet due
        p.on_timer(Time(10), &mut out);
        assert_eq!(sent_seqs(&out), vec![(0, 0), (0, 0)]);
        p.on_timer(Time(20), &mut out);
        assert!(p.is_idle());
        let last = p.drain_history().pop().map(|e| e.outcome);
        assert_eq!(
            last,
            Some(Outcome::Info("no answer after 2 attempts".into()))
        );
        // The next batch gets the next sequence, in a new epoch: the last one was not acked.
        out.clear();
        let _ = p.produce(Time(30), PartitionId(0), vec![], &mut out);
        assert_eq!(sent_seqs(&out), vec![(1, 1)]);
    }

    #[test]
    fn definite_errors_fail_and_indeterminate_ones_keep_waiting() {
        let mut p = producer();
        let mut out = Vec::new();
        let _ = p.produce(Time(0), PartitionId(0), vec![], &mut out);
        p.on_reply(
            Time(1),
            0,
            Reply::Produce(Err(ProduceError::Unavailable("x".into()))),
        );
        assert!(!p.is_idle());
        p.on_reply(Time(2), 0, Reply::Produce(Err(ProduceError::StorageFull)));
        assert!(p.is_idle());
        let last = p.drain_history().pop().map(|e| e.outcome);
        assert_eq!(
            last,
            Some(Outcome::Fail("storage full: nothing was appended".into()))
        );
        // A late ack for an operation no longer in flight is ignored.
        p.on_reply(Time(3), 0, Reply::Produce(Ok(ProduceOk { base_offset: 0 })));
        assert_eq!(p.drain_history(), vec![]);
        // After a definite failure, a new epoch; after an ack, the same one.
        out.clear();
        let _ = p.produce(Time(4), PartitionId(0), vec![], &mut out);
        p.on_reply(Time(5), 1, Reply::Produce(Ok(ProduceOk { base_offset: 0 })));
        let _ = p.produce(Time(6), PartitionId(0), vec![], &mut out);
        assert_eq!(sent_seqs(&out), vec![(1, 1), (1, 2)]);
    }
}
