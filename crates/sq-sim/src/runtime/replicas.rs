//! The checks of a cluster of several replicas made the moment a node answers: an ack only for a
//! batch synced on a majority, records served only from batches synced on a majority.

use super::*;
use crate::invariants::majority::{self, Replica};

impl Sim {
    /// What the checker sees of every replica.
    pub(super) fn replicas(&self) -> Vec<Replica<'_>> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(n, sn)| Replica {
                n: n as u32,
                image: &self.check.images[n],
                disk: &sn.disk,
                damaged: self.check.damaged_copies.get(n),
            })
            .collect()
    }

    /// Raft's safety properties on node `n`, after it acted: one leader per term, a new leader
    /// holds every committed entry, and what it holds committed and durable is the committed
    /// log. A replica whose storage the harness damaged is left out of the last: stray bytes may
    /// hold stale frames.
    pub(super) fn check_raft(&mut self, n: u32) -> Result<(), Box<Failure>> {
        if self.cfg.shape.nodes <= 1 {
            return Ok(());
        }
        let Some(status) = self.node(n).map(Node::status) else {
            return Ok(());
        };
        if status.role == sq_node::Role::Leader {
            self.check
                .raft
                .leader(n, status.term, status.last_index)
                .map_err(|v| self.fail(v, Some(n)))?;
        }
        if !self.nodes[n as usize].damaged.is_empty() {
            return Ok(());
        }
        let upto = status.commit_index.min(status.synced_index);
        let image = &self.check.images[n as usize];
        self.check
            .raft
            .committed(n, upto, |i| image.entry(i))
            .map_err(|v| self.fail(v, Some(n)))
    }

    /// [`Sim::check_reply`] for a cluster of several replicas.
    pub(super) fn check_reply_replicated(
        &self,
        n: u32,
        op: Option<OpInfo>,
        reply: &Reply,
    ) -> Result<(), Box<Failure>> {
        let replicas = self.replicas();
        let checked = match (op, reply) {
            (
                Some(OpInfo::Produce {
                    partition,
                    producer,
                    seq,
                    count,
                }),
                Reply::Produce(Ok(ok)),
            ) => majority::check_ack_majority(
                &replicas,
                n,
                partition,
                (producer, seq, count),
                ok.base_offset,
            ),
            (Some(OpInfo::Fetch { partition, .. }), Reply::Fetch(Ok(ok))) => {
                match (ok.records.first(), ok.records.last()) {
                    (Some(a), Some(b)) => majority::check_served_majority(
                        &replicas,
                        n,
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
}
