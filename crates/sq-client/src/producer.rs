//! The idempotent producer: one batch in flight, retried with the same sequence until it is
//! acked, definitely refused, or the attempts run out (then it is indeterminate). Sequences never
//! repeat; after any batch that was not acked the producer starts a new epoch, so the node can
//! tell a deliberate gap (the abandoned batch) from one that skips ahead.

use crate::history::{Op, Outcome};
use crate::session::{Limits, Next, Session};
use crate::{ClientError, ClientOutput, History};
use bytes::Bytes;
use sq_core::{
    ClientId, Definiteness, NodeId, PartitionId, ProduceError, ProduceRequest, ProducerId, Reply,
    Request, Time,
};

/// How patient a producer is, and how big the cluster it talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Resend (to the next node) if no answer came within this many nanoseconds.
    pub retry_after: u64,
    /// Give up (indeterminate) after this many sends without a definite answer: timeouts, and
    /// indeterminate errors.
    pub max_attempts: u32,
    /// Give up (indeterminate) after this many `NotLeader` redirects of one batch: enough to
    /// ride out an election, few enough that a cluster with no leader ends the batch.
    pub max_redirects: u32,
    /// How many nodes the cluster has (`NodeId(0)..NodeId(nodes)`).
    pub nodes: u32,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            retry_after: 20 * Time::MILLI,
            max_attempts: 5,
            max_redirects: 64,
            nodes: 1,
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
        let limits = Limits {
            retry_after: config.retry_after,
            max_attempts: config.max_attempts,
            max_redirects: config.max_redirects,
            nodes: config.nodes,
        };
        Producer {
            producer,
            epoch: 0,
            next_seq: 0,
            session: Session::new(client, limits),
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

    /// Handles node `from`'s reply to request `req`. Replies to operations no longer in flight
    /// are ignored. A `NotLeader` answer sends the same request (same sequence and epoch) to the
    /// leader it names, or to the next node; an indeterminate one sends it to the next node;
    /// either resend is scheduled in `out`.
    pub fn on_reply(
        &mut self,
        now: Time,
        from: NodeId,
        req: u64,
        reply: Reply,
        out: &mut Vec<ClientOutput>,
    ) {
        if self.session.answering(req).is_none() {
            return;
        }
        let Reply::Produce(result) = reply else {
            return;
        };
        match result {
            Ok(ok) => {
                let outcome = Outcome::Produced {
                    base_offset: ok.base_offset,
                };
                self.session.finish(now, outcome, Some(from));
            }
            // Definite, but only for this node: the batch must still be offered to the leader,
            // so this is never the batch's outcome (nor a reason for a new epoch).
            Err(ProduceError::NotLeader { leader }) => {
                let next = self.session.redirect(now, from, leader, out);
                let e = ProduceError::NotLeader { leader };
                self.give_up_if_spent(now, next, "redirects", &e);
            }
            Err(e) if e.definiteness() == Definiteness::Definite => {
                self.new_epoch();
                self.session
                    .finish(now, Outcome::Fail(e.to_string()), Some(from));
            }
            // Indeterminate: the batch may be in the log; retrying with the same sequence is safe.
            Err(e) => {
                let next = self.session.indeterminate(now, from, out);
                self.give_up_if_spent(now, next, "attempts", &e);
            }
        }
    }

    /// Ends the batch as indeterminate when the budget `what` is spent: an earlier send may
    /// have landed. Like any batch that was not acked, it closes the epoch.
    fn give_up_if_spent(&mut self, now: Time, next: Next, what: &str, last: &ProduceError) {
        if let Next::Spent { used } = next {
            let outcome = Outcome::Info(format!("no ack after {used} {what}; last: {last}"));
            self.session.finish(now, outcome, None);
            self.new_epoch();
        }
    }

    /// Handles a timer: sends a scheduled resend, resends a batch that timed out to the next
    /// node, or gives up once the attempts are spent (and then starts a new epoch, as after any
    /// batch that was not acked).
    pub fn on_timer(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        let busy = !self.session.is_idle();
        self.session.on_timer(now, out);
        if busy && self.session.is_idle() {
            self.new_epoch();
        }
    }

    /// Closes the epoch after a batch that was not acked.
    fn new_epoch(&mut self) {
        self.epoch += 1;
        self.session.probes.hit(sq_core::Probe::ProducerNewEpoch);
    }

    /// How often this producer reached its rare paths (coverage probes).
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
    use pretty_assertions::assert_eq;
    use sq_core::ProduceOk;

    fn producer(nodes: u32) -> Producer {
        Producer::new(
            ClientId(0),
            ProducerId(3),
            ProducerConfig {
                retry_after: 16,
                max_attempts: 2,
                max_redirects: 2,
                nodes,
            },
        )
    }

    /// Each send as (node, request id, epoch, sequence).
    fn sends(out: &[ClientOutput]) -> Vec<(NodeId, u64, u32, u64)> {
        out.iter()
            .filter_map(|o| match o {
                ClientOutput::Send {
                    to,
                    req,
                    request: Request::Produce(p),
                } => Some((*to, *req, p.epoch, p.seq)),
                _ => None,
            })
            .collect()
    }

    fn sent_seqs(out: &[ClientOutput]) -> Vec<(u32, u64)> {
        sends(out).into_iter().map(|(_, _, e, s)| (e, s)).collect()
    }

    fn not_leader(leader: Option<u32>) -> Reply {
        Reply::Produce(Err(ProduceError::NotLeader {
            leader: leader.map(NodeId),
        }))
    }

    fn acked(base_offset: u64) -> Reply {
        Reply::Produce(Ok(ProduceOk { base_offset }))
    }

    fn last(p: &mut Producer) -> Option<HistoryEvent> {
        p.drain_history().pop()
    }

    #[test]
    fn retries_keep_the_sequence_then_give_up_indeterminate() {
        let mut p = producer(1);
        let mut out = Vec::new();
        let op = p.produce(
            Time(0),
            PartitionId(0),
            vec![Bytes::from_static(b"x")],
            &mut out,
        );
        assert_eq!(op, Ok(0));
        p.on_timer(Time(5), &mut out); // not yet due
        p.on_timer(Time(16), &mut out);
        assert_eq!(sent_seqs(&out), vec![(0, 0), (0, 0)]);
        p.on_timer(Time(32), &mut out);
        assert!(p.is_idle());
        let last = p.drain_history().pop().map(|e| e.outcome);
        assert_eq!(
            last,
            Some(Outcome::Info("no answer after 2 attempts".into()))
        );
        // The next batch gets the next sequence, in a new epoch: the last one was not acked.
        out.clear();
        let _ = p.produce(Time(40), PartitionId(0), vec![], &mut out);
        assert_eq!(sent_seqs(&out), vec![(1, 1)]);
    }

    #[test]
    fn definite_errors_fail_and_indeterminate_ones_keep_waiting() {
        let mut p = producer(1);
        let mut out = Vec::new();
        let _ = p.produce(Time(0), PartitionId(0), vec![], &mut out);
        out.clear();
        let unavailable = Reply::Produce(Err(ProduceError::Unavailable("x".into())));
        p.on_reply(Time(1), NodeId(0), 0, unavailable, &mut out);
        // A single node has nowhere else to ask: the producer waits for its timeout, as before.
        assert!(!p.is_idle());
        assert_eq!(out, vec![]);
        let full = Reply::Produce(Err(ProduceError::StorageFull));
        p.on_reply(Time(2), NodeId(0), 0, full, &mut out);
        assert!(p.is_idle());
        assert_eq!(
            last(&mut p),
            Some(HistoryEvent {
                time: Time(2),
                client: ClientId(0),
                op: 0,
                node: Some(NodeId(0)),
                outcome: Outcome::Fail("storage full: nothing was appended".into()),
            })
        );
        // A late ack for an operation no longer in flight is ignored.
        p.on_reply(Time(3), NodeId(0), 0, acked(0), &mut out);
        assert_eq!(p.drain_history(), vec![]);
        // After a definite failure, a new epoch; after an ack, the same one.
        out.clear();
        let _ = p.produce(Time(4), PartitionId(0), vec![], &mut out);
        p.on_reply(Time(5), NodeId(0), 1, acked(0), &mut out);
        let _ = p.produce(Time(6), PartitionId(0), vec![], &mut out);
        assert_eq!(sent_seqs(&out), vec![(1, 1), (1, 2)]);
    }

    #[test]
    fn clients_start_on_different_nodes() {
        let config = ProducerConfig {
            nodes: 3,
            ..ProducerConfig::default()
        };
        let mut out = Vec::new();
        for c in 0..4 {
            let mut p = Producer::new(ClientId(c), ProducerId(u64::from(c)), config);
            let _ = p.produce(Time(0), PartitionId(0), vec![], &mut out);
        }
        let to: Vec<NodeId> = sends(&out).into_iter().map(|s| s.0).collect();
        assert_eq!(to, vec![NodeId(0), NodeId(1), NodeId(2), NodeId(0)]);
    }

    #[test]
    fn a_redirect_resends_the_same_request_to_the_hinted_leader_shortly() {
        let mut p = producer(3);
        let mut out = Vec::new();
        let _ = p.produce(Time(0), PartitionId(0), vec![], &mut out);
        assert_eq!(sends(&out), vec![(NodeId(0), 0, 0, 0)]);
        out.clear();
        p.on_reply(Time(3), NodeId(0), 0, not_leader(Some(2)), &mut out);
        // Not at once: after retry_after / 8.
        assert_eq!(out, vec![ClientOutput::SetTimer { at: Time(5) }]);
        out.clear();
        p.on_timer(Time(5), &mut out);
        // Same request id, epoch and sequence: idempotence across leaders rests on it.
        assert_eq!(sends(&out), vec![(NodeId(2), 0, 0, 0)]);
        // Without a hint, the next node round the cluster.
        out.clear();
        p.on_reply(Time(6), NodeId(2), 0, not_leader(None), &mut out);
        p.on_timer(Time(8), &mut out);
        assert_eq!(sends(&out), vec![(NodeId(0), 0, 0, 0)]);
        // The ack names the node that gave it; a NotLeader was never the outcome.
        p.on_reply(Time(9), NodeId(0), 0, acked(7), &mut out);
        let history: Vec<(Option<NodeId>, Outcome)> = p
            .drain_history()
            .into_iter()
            .map(|e| (e.node, e.outcome))
            .collect();
        assert_eq!(history.len(), 2);
        assert_eq!(
            history.last(),
            Some(&(Some(NodeId(0)), Outcome::Produced { base_offset: 7 }))
        );
        // Redirects start no new epoch, and the found leader gets the next batch.
        out.clear();
        let _ = p.produce(Time(10), PartitionId(0), vec![], &mut out);
        assert_eq!(sends(&out), vec![(NodeId(0), 1, 0, 1)]);
    }

    #[test]
    fn a_timeout_resends_to_the_next_node() {
        let mut p = producer(3);
        let mut out = Vec::new();
        let _ = p.produce(Time(0), PartitionId(0), vec![], &mut out);
        p.on_timer(Time(16), &mut out);
        assert_eq!(
            sends(&out),
            vec![(NodeId(0), 0, 0, 0), (NodeId(1), 0, 0, 0)]
        );
    }

    #[test]
    fn redirects_spend_their_own_budget_then_end_the_batch_indeterminate() {
        let mut p = producer(3);
        let mut out = Vec::new();
        let _ = p.produce(Time(0), PartitionId(0), vec![], &mut out);
        // A timeout spends one of the two attempts...
        p.on_timer(Time(16), &mut out);
        // ...and redirects spend none of them: two are allowed, then a third ends the batch.
        p.on_reply(Time(17), NodeId(1), 0, not_leader(None), &mut out);
        p.on_timer(Time(19), &mut out);
        p.on_reply(Time(20), NodeId(2), 0, not_leader(Some(1)), &mut out);
        p.on_timer(Time(22), &mut out);
        assert_eq!(
            sends(&out).into_iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![NodeId(0), NodeId(1), NodeId(2), NodeId(1)]
        );
        assert!(!p.is_idle());
        p.on_reply(Time(23), NodeId(1), 0, not_leader(None), &mut out);
        assert!(p.is_idle());
        assert_eq!(
            last(&mut p),
            Some(HistoryEvent {
                time: Time(23),
                client: ClientId(0),
                op: 0,
                node: None,
                outcome: Outcome::Info(
                    "no ack after 2 redirects; last: not the leader (leader: unknown)".into()
                ),
            })
        );
        // Not acked: a new epoch, as after any give-up.
        out.clear();
        let _ = p.produce(Time(30), PartitionId(0), vec![], &mut out);
        assert_eq!(sent_seqs(&out), vec![(1, 1)]);
    }

    #[test]
    fn an_indeterminate_answer_resends_to_the_next_node_shortly_within_the_attempts() {
        let mut p = producer(3);
        let mut out = Vec::new();
        let _ = p.produce(Time(0), PartitionId(0), vec![], &mut out);
        let changed = || Reply::Produce(Err(ProduceError::LeaderChanged));
        p.on_reply(Time(4), NodeId(0), 0, changed(), &mut out);
        p.on_timer(Time(6), &mut out);
        assert_eq!(
            sends(&out),
            vec![(NodeId(0), 0, 0, 0), (NodeId(1), 0, 0, 0)]
        );
        p.on_reply(Time(7), NodeId(1), 0, changed(), &mut out);
        assert_eq!(
            last(&mut p).map(|e| (e.node, e.outcome)),
            Some((
                None,
                Outcome::Info(
                    "no ack after 2 attempts; last: leadership changed before the batch \
                     committed; it may still commit"
                        .into()
                )
            ))
        );
    }

    #[test]
    fn a_late_answer_from_another_node_does_not_steer() {
        let mut p = producer(3);
        let mut out = Vec::new();
        let _ = p.produce(Time(0), PartitionId(0), vec![], &mut out);
        p.on_timer(Time(16), &mut out); // now waiting on n1
        out.clear();
        // n0's late answer to the first send: n1 is already asked, so nothing changes.
        p.on_reply(Time(17), NodeId(0), 0, not_leader(Some(2)), &mut out);
        assert_eq!(out, vec![]);
        assert!(!p.is_idle());
        // An ack ends the batch whichever node gives it.
        p.on_reply(Time(18), NodeId(0), 0, acked(1), &mut out);
        assert_eq!(last(&mut p).map(|e| e.node), Some(Some(NodeId(0))));
    }
}
