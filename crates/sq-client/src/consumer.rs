//! The consumer: reads each partition onward from its position, one fetch at a time.

use crate::history::{Op, Outcome};
use crate::session::{Limits, Next, Session};
use crate::{ClientError, ClientOutput, History};
use sq_core::{
    ClientId, FetchError, FetchRequest, NodeId, Offset, PartitionId, Reply, Request, Time,
};
use std::collections::BTreeMap;

/// How a consumer reads, and how big the cluster it reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Resend (to the next node) if no answer came within this many nanoseconds.
    pub retry_after: u64,
    /// Give up (info) after this many sends without an answer.
    pub max_attempts: u32,
    /// Give up (fail: a read changes nothing) after this many `NotLeader` or `NotReady`
    /// answers to one fetch: enough to ride out an election, few enough that a cluster with
    /// no leader ends the fetch.
    pub max_redirects: u32,
    /// Records asked for per fetch.
    pub max_records: u32,
    /// How many nodes the cluster has (`NodeId(0)..NodeId(nodes)`).
    pub nodes: u32,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            retry_after: 20 * Time::MILLI,
            max_attempts: 5,
            max_redirects: 64,
            max_records: 50,
            nodes: 1,
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
        let limits = Limits {
            retry_after: config.retry_after,
            max_attempts: config.max_attempts,
            max_redirects: config.max_redirects,
            nodes: config.nodes,
        };
        Consumer {
            max_records: config.max_records,
            positions: BTreeMap::new(),
            session: Session::new(client, limits),
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

    /// Handles node `from`'s reply to request `req`; on records, the position moves past the
    /// last one. `NotLeader` sends the same fetch to the leader it names (or the next node),
    /// `NotReady` and `StoreUnavailable` to the same node again, shortly (the resend is scheduled in `out`). Returns the
    /// typed error of a fetch that ended failed, so the caller can act on it (say, skip a
    /// corrupt batch with [`Consumer::seek`]).
    pub fn on_reply(
        &mut self,
        now: Time,
        from: NodeId,
        req: u64,
        reply: Reply,
        out: &mut Vec<ClientOutput>,
    ) -> Option<FetchError> {
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
                self.session.finish(now, outcome, Some(from));
                None
            }
            Err(e @ FetchError::NotLeader { leader }) => {
                let next = self.session.redirect(now, from, leader, out);
                self.fail_if_spent(now, next, e)
            }
            // Not ready yet, or the store holding the records did not answer: the same node,
            // shortly.
            Err(e @ (FetchError::NotReady | FetchError::StoreUnavailable(_))) => {
                let next = self.session.again(now, from, out);
                self.fail_if_spent(now, next, e)
            }
            Err(e) => {
                self.session
                    .finish(now, Outcome::Fail(e.to_string()), Some(from));
                Some(e)
            }
        }
    }

    /// Ends the fetch as failed when its redirects are spent: definite, since a read changes
    /// nothing, and the caller may simply fetch again.
    fn fail_if_spent(&mut self, now: Time, next: Next, last: FetchError) -> Option<FetchError> {
        let Next::Spent { used } = next else {
            return None;
        };
        let outcome = Outcome::Fail(format!("no records after {used} redirects; last: {last}"));
        self.session.finish(now, outcome, None);
        Some(last)
    }

    /// Handles a timer: sends a scheduled resend, resends a fetch that timed out to the next
    /// node, or gives up once the attempts are spent.
    pub fn on_timer(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        self.session.on_timer(now, out);
    }

    /// How often this consumer reached its rare paths (coverage probes).
    pub fn probes(&self) -> &sq_core::Probes {
        &self.session.probes
    }

    /// Takes the history recorded since the last call.
    pub fn drain_history(&mut self) -> History {
        self.session.drain_history()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HistoryEvent;
    use bytes::Bytes;
    use pretty_assertions::assert_eq;
    use sq_core::{FetchOk, FetchedRecord};

    fn consumer(nodes: u32) -> Consumer {
        Consumer::new(
            ClientId(4),
            ConsumerConfig {
                retry_after: 16,
                max_attempts: 2,
                max_redirects: 2,
                max_records: 10,
                nodes,
            },
        )
    }

    /// Each send as (node, request id, offset).
    fn sends(out: &[ClientOutput]) -> Vec<(NodeId, u64, Offset)> {
        out.iter()
            .filter_map(|o| match o {
                ClientOutput::Send {
                    to,
                    req,
                    request: Request::Fetch(f),
                } => Some((*to, *req, f.offset)),
                _ => None,
            })
            .collect()
    }

    fn fetch_err(e: FetchError) -> Reply {
        Reply::Fetch(Err(e))
    }

    #[test]
    fn not_ready_asks_the_same_node_again_shortly() {
        let mut c = consumer(3);
        let mut out = Vec::new();
        let _ = c.fetch(Time(0), PartitionId(0), &mut out);
        // Client 4 of a three-node cluster starts on n1.
        assert_eq!(sends(&out), vec![(NodeId(1), 0, 0)]);
        out.clear();
        let e = c.on_reply(
            Time(3),
            NodeId(1),
            0,
            fetch_err(FetchError::NotReady),
            &mut out,
        );
        assert_eq!(e, None);
        assert_eq!(out, vec![ClientOutput::SetTimer { at: Time(5) }]);
        c.on_timer(Time(5), &mut out);
        assert_eq!(sends(&out), vec![(NodeId(1), 0, 0)]);
    }

    #[test]
    fn a_redirect_follows_the_hint_and_the_history_names_the_answering_node() {
        let mut c = consumer(3);
        let mut out = Vec::new();
        let _ = c.fetch(Time(0), PartitionId(0), &mut out);
        let hint = FetchError::NotLeader {
            leader: Some(NodeId(2)),
        };
        let e = c.on_reply(Time(1), NodeId(1), 0, fetch_err(hint), &mut out);
        assert_eq!(e, None);
        c.on_timer(Time(3), &mut out);
        let records = vec![FetchedRecord {
            offset: 0,
            value: Bytes::from_static(b"v"),
        }];
        let ok = Reply::Fetch(Ok(FetchOk {
            records: records.clone(),
            high_watermark: 1,
        }));
        let e = c.on_reply(Time(4), NodeId(2), 0, ok, &mut out);
        assert_eq!(e, None);
        assert_eq!(c.position(PartitionId(0)), 1);
        assert_eq!(
            c.drain_history().pop(),
            Some(HistoryEvent {
                time: Time(4),
                client: ClientId(4),
                op: 0,
                node: Some(NodeId(2)),
                outcome: Outcome::Fetched {
                    records,
                    high_watermark: 1
                },
            })
        );
        // The next fetch goes straight to the leader found, from the new position.
        let _ = c.fetch(Time(5), PartitionId(0), &mut out);
        assert_eq!(
            sends(&out),
            vec![(NodeId(1), 0, 0), (NodeId(2), 0, 0), (NodeId(2), 1, 1)]
        );
    }

    #[test]
    fn spent_redirects_fail_the_fetch_definitely() {
        let mut c = consumer(3);
        let mut out = Vec::new();
        let _ = c.fetch(Time(0), PartitionId(0), &mut out);
        let none = || fetch_err(FetchError::NotLeader { leader: None });
        assert_eq!(c.on_reply(Time(1), NodeId(1), 0, none(), &mut out), None);
        c.on_timer(Time(3), &mut out);
        let e = c.on_reply(
            Time(4),
            NodeId(2),
            0,
            fetch_err(FetchError::NotReady),
            &mut out,
        );
        assert_eq!(e, None);
        c.on_timer(Time(6), &mut out);
        assert_eq!(
            sends(&out),
            vec![(NodeId(1), 0, 0), (NodeId(2), 0, 0), (NodeId(2), 0, 0)]
        );
        let e = c.on_reply(Time(7), NodeId(2), 0, none(), &mut out);
        assert_eq!(e, Some(FetchError::NotLeader { leader: None }));
        assert!(c.is_idle());
        assert_eq!(
            c.drain_history().pop().map(|e| (e.node, e.outcome)),
            Some((
                None,
                Outcome::Fail(
                    "no records after 2 redirects; last: not the leader (leader: unknown)".into()
                )
            ))
        );
    }

    #[test]
    fn other_errors_end_the_fetch_and_are_returned() {
        let mut c = consumer(1);
        let mut out = Vec::new();
        let _ = c.fetch(Time(0), PartitionId(0), &mut out);
        let corrupt = FetchError::Corrupt { offset: 0, next: 3 };
        let e = c.on_reply(Time(1), NodeId(0), 0, fetch_err(corrupt.clone()), &mut out);
        assert_eq!(e, Some(corrupt.clone()));
        assert_eq!(
            c.drain_history().pop().map(|e| (e.node, e.outcome)),
            Some((Some(NodeId(0)), Outcome::Fail(corrupt.to_string())))
        );
        // The position stays for the caller to move.
        assert_eq!(c.position(PartitionId(0)), 0);
    }

    #[test]
    fn a_timeout_resends_to_the_next_node_then_gives_up() {
        let mut c = consumer(3);
        let mut out = Vec::new();
        let _ = c.fetch(Time(0), PartitionId(0), &mut out);
        c.on_timer(Time(16), &mut out);
        assert_eq!(sends(&out), vec![(NodeId(1), 0, 0), (NodeId(2), 0, 0)]);
        c.on_timer(Time(32), &mut out);
        assert!(c.is_idle());
        assert_eq!(
            c.drain_history().pop().map(|e| (e.node, e.outcome)),
            Some((None, Outcome::Info("no answer after 2 attempts".into())))
        );
    }
}
