//! The consumer: reads each partition onward from its position, one fetch at a time.

use crate::history::{HistoryEvent, Op, Outcome};
use crate::{ClientError, ClientOutput, History};
use sq_core::{ClientId, FetchError, FetchRequest, Offset, PartitionId, Reply, Request, Time};
use std::collections::BTreeMap;

/// How a consumer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Resend if no answer came within this many nanoseconds.
    pub retry_after: u64,
    /// Give up (info) after this many sends without an answer.
    pub max_attempts: u32,
    /// Records asked for per fetch.
    pub max_records: u32,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            retry_after: 20 * Time::MILLI,
            max_attempts: 5,
            max_records: 50,
        }
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    op: u64,
    request: FetchRequest,
    attempts: u32,
    deadline: Time,
}

/// A consumer client. Its position in a partition only moves forward, past what it received.
#[derive(Clone, Debug)]
pub struct Consumer {
    client: ClientId,
    config: ConsumerConfig,
    positions: BTreeMap<PartitionId, Offset>,
    next_op: u64,
    in_flight: Option<InFlight>,
    history: History,
}

impl Consumer {
    /// A consumer named `client`, at offset 0 of every partition.
    pub fn new(client: ClientId, config: ConsumerConfig) -> Consumer {
        Consumer {
            client,
            config,
            positions: BTreeMap::new(),
            next_op: 0,
            in_flight: None,
            history: Vec::new(),
        }
    }

    /// Whether no fetch is in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_none()
    }

    /// The client id.
    pub fn client(&self) -> ClientId {
        self.client
    }

    /// The next offset this consumer will fetch from `partition`.
    pub fn position(&self, partition: PartitionId) -> Offset {
        self.positions.get(&partition).copied().unwrap_or(0)
    }

    /// Moves the position in `partition` to `offset` (to skip a corrupt batch, or rewind).
    pub fn seek(&mut self, partition: PartitionId, offset: Offset) {
        self.positions.insert(partition, offset);
    }

    /// Starts a fetch of `partition` from the current position.
    pub fn fetch(
        &mut self,
        now: Time,
        partition: PartitionId,
        out: &mut Vec<ClientOutput>,
    ) -> Result<u64, ClientError> {
        if let Some(f) = &self.in_flight {
            return Err(ClientError::Busy(f.op));
        }
        let op = self.next_op;
        self.next_op += 1;
        let offset = self.position(partition);
        self.record(now, op, Outcome::Invoke(Op::Fetch { partition, offset }));
        self.in_flight = Some(InFlight {
            op,
            request: FetchRequest {
                partition,
                offset,
                max_records: self.config.max_records,
            },
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
            request: Request::Fetch(f.request.clone()),
        });
        out.push(ClientOutput::SetTimer { at: f.deadline });
    }

    /// Handles a reply to request `req`; on records, the position moves past the last one.
    /// Returns the typed error of a failed fetch, so the caller can act on it (say, skip a
    /// corrupt batch with [`Consumer::seek`]).
    pub fn on_reply(&mut self, now: Time, req: u64, reply: Reply) -> Option<FetchError> {
        let f = self.in_flight.as_ref()?;
        if f.op != req {
            return None;
        }
        let Reply::Fetch(result) = reply else {
            return None;
        };
        let (op, partition) = (f.op, f.request.partition);
        self.in_flight = None;
        match result {
            Ok(ok) => {
                if let Some(last) = ok.records.last() {
                    self.positions.insert(partition, last.offset + 1);
                }
                self.record(
                    now,
                    op,
                    Outcome::Fetched {
                        records: ok.records,
                        high_watermark: ok.high_watermark,
                    },
                );
                None
            }
            Err(e) => {
                self.record(now, op, Outcome::Fail(e.to_string()));
                Some(e)
            }
        }
    }

    /// Handles a timer: resends the fetch, or gives up once the attempts are spent.
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
