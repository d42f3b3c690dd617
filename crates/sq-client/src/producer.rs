//! The idempotent producer: one batch in flight, retried with the same sequence until it is
//! acked, definitely refused, or the attempts run out (then it is indeterminate).

use crate::history::{HistoryEvent, Op, Outcome};
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

#[derive(Clone, Debug)]
struct InFlight {
    op: u64,
    request: ProduceRequest,
    attempts: u32,
    deadline: Time,
}

/// A producer client.
#[derive(Clone, Debug)]
pub struct Producer {
    client: ClientId,
    producer: ProducerId,
    config: ProducerConfig,
    next_seq: u64,
    next_op: u64,
    in_flight: Option<InFlight>,
    history: History,
}

impl Producer {
    /// A producer named `client` in the history, producing as `producer`.
    pub fn new(client: ClientId, producer: ProducerId, config: ProducerConfig) -> Producer {
        Producer {
            client,
            producer,
            config,
            next_seq: 0,
            next_op: 0,
            in_flight: None,
            history: Vec::new(),
        }
    }

    /// Whether no produce is in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_none()
    }

    /// The client id.
    pub fn client(&self) -> ClientId {
        self.client
    }

    /// Starts producing `records` to `partition` with the next sequence number.
    pub fn produce(
        &mut self,
        now: Time,
        partition: PartitionId,
        records: Vec<Bytes>,
        out: &mut Vec<ClientOutput>,
    ) -> Result<u64, ClientError> {
        if let Some(f) = &self.in_flight {
            return Err(ClientError::Busy(f.op));
        }
        let op = self.next_op;
        self.next_op += 1;
        let request = ProduceRequest {
            partition,
            producer: self.producer,
            seq: self.next_seq,
            records,
        };
        self.next_seq += 1;
        self.record(
            now,
            op,
            Outcome::Invoke(Op::Produce {
                partition,
                producer: self.producer,
                seq: request.seq,
                records: request.records.clone(),
            }),
        );
        self.in_flight = Some(InFlight {
            op,
            request,
            attempts: 0,
            deadline: now,
        });
        self.send(now, out);
        Ok(op)
    }

    fn send(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        f.attempts += 1;
        f.deadline = now + self.config.retry_after;
        out.push(ClientOutput::Send {
            req: f.op,
            request: Request::Produce(f.request.clone()),
        });
        out.push(ClientOutput::SetTimer { at: f.deadline });
    }

    /// Handles a reply to request `req`. Replies to operations no longer in flight are ignored.
    pub fn on_reply(&mut self, now: Time, req: u64, reply: Reply) {
        let Some(f) = &self.in_flight else { return };
        if f.op != req {
            return;
        }
        let Reply::Produce(result) = reply else {
            return;
        };
        let outcome = match result {
            Ok(ok) => Outcome::Produced {
                base_offset: ok.base_offset,
            },
            Err(e) if e.definiteness() == Definiteness::Definite => Outcome::Fail(e.to_string()),
            // Indeterminate: the batch may be in the log; retrying with the same sequence is safe.
            Err(_) => return,
        };
        let op = f.op;
        self.in_flight = None;
        self.record(now, op, outcome);
    }

    /// Handles a timer: resends the batch, or gives up once the attempts are spent.
    pub fn on_timer(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        let Some(f) = &self.in_flight else { return };
        if now < f.deadline {
            return;
        }
        if f.attempts >= self.config.max_attempts {
            let (op, attempts) = (f.op, f.attempts);
            self.in_flight = None;
            self.record(
                now,
                op,
                Outcome::Info(format!("no answer after {attempts} attempts")),
            );
            return;
        }
        self.send(now, out);
    }

    fn record(&mut self, time: Time, op: u64, outcome: Outcome) {
        self.history.push(HistoryEvent {
            time,
            client: self.client,
            op,
            outcome,
        });
    }

    /// Takes the history recorded since the last call.
    pub fn drain_history(&mut self) -> History {
        std::mem::take(&mut self.history)
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

    fn sent_seqs(out: &[ClientOutput]) -> Vec<u64> {
        out.iter()
            .filter_map(|o| match o {
                ClientOutput::Send {
                    request: Request::Produce(p),
                    ..
                } => Some(p.seq),
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
        assert_eq!(sent_seqs(&out), vec![0, 0]);
        p.on_timer(Time(20), &mut out);
        assert!(p.is_idle());
        let last = p.drain_history().pop().map(|e| e.outcome);
        assert_eq!(
            last,
            Some(Outcome::Info("no answer after 2 attempts".into()))
        );
        // The next batch gets the next sequence.
        out.clear();
        let _ = p.produce(Time(30), PartitionId(0), vec![], &mut out);
        assert_eq!(sent_seqs(&out), vec![1]);
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
    }
}
