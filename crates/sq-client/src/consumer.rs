//! The consumer: reads each partition onward from its position, one fetch at a time.

use crate::history::{Op, Outcome};
use crate::session::Session;
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

/// A consumer client. Its position in a partition only moves forward, past what it received.
#[derive(Clone, Debug)]
pub struct Consumer {
    max_records: u32,
    positions: BTreeMap<PartitionId, Offset>,
    session: Session,
}

impl Consumer {
    /// A consumer named `client`, at offset 0 of every partition.
    pub fn new(client: ClientId, config: ConsumerConfig) -> Consumer {
        Consumer {
            max_records: config.max_records,
            positions: BTreeMap::new(),
            session: Session::new(client, config.retry_after, config.max_attempts),
        }
    }

    /// Whether no fetch is in flight.
    pub fn is_idle(&self) -> bool {
        self.session.is_idle()
    }

    /// When the fetch in flight was invoked, if one is.
    pub fn in_flight_since(&self) -> Option<Time> {
        self.session.in_flight_since()
    }

    /// The client id.
    pub fn client(&self) -> ClientId {
        self.session.client()
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
        let offset = self.position(partition);
        let request = Request::Fetch(FetchRequest {
            partition,
            offset,
            max_records: self.max_records,
        });
        self.session
            .start(now, Op::Fetch { partition, offset }, request, out)
    }

    /// Handles a reply to request `req`; on records, the position moves past the last one.
    /// Returns the typed error of a failed fetch, so the caller can act on it (say, skip a
    /// corrupt batch with [`Consumer::seek`]).
    pub fn on_reply(&mut self, now: Time, req: u64, reply: Reply) -> Option<FetchError> {
        let Request::Fetch(request) = &self.session.answering(req)?.request else {
            return None;
        };
        let partition = request.partition;
        let Reply::Fetch(result) = reply else {
            return None;
        };
        match result {
            Ok(ok) => {
                if let Some(last) = ok.records.last() {
                    self.positions
                        .insert(partition, last.offset.saturating_add(1));
                }
                let outcome = Outcome::Fetched {
                    records: ok.records,
                    high_watermark: ok.high_watermark,
                };
                self.session.finish(now, outcome);
                None
            }
            Err(e) => {
                self.session.finish(now, Outcome::Fail(e.to_string()));
                Some(e)
            }
        }
    }

    /// Handles a timer: resends the fetch, or gives up once the attempts are spent.
    pub fn on_timer(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        self.session.on_timer(now, out);
    }

    /// Takes the history recorded since the last call.
    pub fn drain_history(&mut self) -> History {
        self.session.drain_history()
    }
}
