//! The checks of a cluster of several replicas made the moment a node answers: an ack only for a
//! batch synced on a majority, records served only from batches synced on a majority.

use super::*;
use crate::invariants::majority::{self, Replica};

impl Sim {
    /// Invariant 1 for `batches`, each synced on a majority of `images` (copies the harness
    /// damaged after they were synced count).
    pub(super) fn check_acked_replicated(
        &self,
        images: &[&DurableImage],
        batches: &[AckedBatch],
    ) -> Result<(), Box<Failure>> {
        let replicas = self.replicas_over(images);
        for b in batches {
            majority::check_ack_majority(
                &replicas,
                None,
                b.partition,
                (b.producer, b.seq, b.count),
                b.base_offset,
            )
            .map_err(|v| self.fail(v, None))?;
        }
        Ok(())
    }

    /// What the checker sees of every replica.
    pub(super) fn replicas(&self) -> Vec<Replica<'_>> {
        let images: Vec<&DurableImage> = self.check.images.iter().collect();
        self.replicas_over(&images)
    }

    /// What the checker sees of every replica, through `images`.
    fn replicas_over<'a>(&'a self, images: &[&'a DurableImage]) -> Vec<Replica<'a>> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(n, sn)| Replica {
                n: n as u32,
                image: images[n],
                disk: &sn.disk,
                damaged: self.check.damaged_copies.get(n),
                stray: !sn.damaged.is_empty(),
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
        self.check_term_cap(n, status.term)
            .map_err(|v| self.fail(v, Some(n)))?;
        self.check.highest_term = self.check.highest_term.max(status.term);
        // What it reports durable is compared with what its disk holds now.
        self.refresh_images()?;
        // A replica that cut its log to repair damage commits again what it cut: its high
        // watermarks start afresh, as after a restart.
        if status.commit_index < self.check.last_commit[n as usize] {
            self.check.watermarks.reset_node(n);
        }
        self.check.last_commit[n as usize] = status.commit_index;
        if status.role == sq_node::Role::Leader && self.paused_until(n).is_none() {
            // CheckQuorum: counted from the cut, or from the end of its last pause.
            let since = self.check.isolated_since[n as usize]
                .map(|t| t.max(self.nodes[n as usize].paused_until.unwrap_or(Time::ZERO)));
            let bound =
                3 * self.cfg.election_timeout + 2 * (self.cfg.latency.1 + self.check.longest_clog);
            crate::invariants::quorum::check_stranded_leader(n, self.now, since, bound)
                .map_err(|v| self.fail(v, Some(n)))?;
        }
        if status.role == sq_node::Role::Leader {
            // A leader whose storage the harness made lie may hold a damaged copy of a
            // committed entry without knowing it yet: it finds out when it reads it, and the
            // outcome (nothing lost, replicas converge) is checked elsewhere.
            let lied_to = self.check.faulty_disk == Some(n);
            if !self.check.raft.has_leader(status.term) {
                self.check_working_leader_kept(n, status.term)?;
                self.check.leader_since.insert(status.term, (n, self.now));
            }
            if !lied_to && !self.check.raft.has_leader(status.term) {
                // A new leader: what it holds where the last earlier commit lies, from the log
                // it wrote (its page cache: what it will send), read once per term.
                if let Some((index, _, _)) = self.check.raft.must_hold(status.term) {
                    // Below its snapshot, what it holds is in the store (its image has it).
                    let image = &self.check.images[n as usize];
                    let held = if index <= image.base() {
                        image.entry(index)
                    } else {
                        crate::invariants::image::written_entry(&self.nodes[n as usize].disk, index)
                    };
                    self.check
                        .raft
                        .leader_holds(n, status.term, held)
                        .map_err(|v| self.fail(v, Some(n)))?;
                }
            }
            self.check
                .raft
                .leader(n, status.term, status.last_index)
                .map_err(|v| self.fail(v, Some(n)))?;
            self.check
                .raft
                .leader_commit(status.term, status.commit_index, status.last_index)
                .map_err(|v| self.fail(v, Some(n)))?;
            if let Some((since, term)) = self.check.leader_lost {
                if status.term > term {
                    self.check.leader_lost = None;
                    self.stats.failovers.push(self.now.nanos() - since.nanos());
                }
            }
        }
        if let Some(k) = self.check.catching_up.iter().position(|c| c.0 == n) {
            let (_, target, from, since) = self.check.catching_up[k];
            if status.commit_index >= target {
                self.check.catching_up.remove(k);
                let took = self.now.nanos() - since.nanos();
                self.stats
                    .catch_ups
                    .push((n, target.saturating_sub(from), took));
            }
        }
        if !self.nodes[n as usize].damaged.is_empty() {
            return Ok(());
        }
        let upto = status.commit_index.min(status.synced_index);
        let image = &self.check.images[n as usize];
        self.check
            .raft
            .committed(n, status.term, upto, |i| image.entry(i))
            .map_err(|v| self.fail(v, Some(n)))
    }

    /// Leader stickiness: node `n` has just become leader of `term`; no other node may have
    /// been working as leader of an earlier term until now, undisturbed (no crash, restart or
    /// disk error, and links unchanged, for three election timeouts, and leading that long).
    fn check_working_leader_kept(&self, n: u32, term: u64) -> Result<(), Box<Failure>> {
        let settled = 3 * self.cfg.election_timeout;
        // A node that was paused resumes not having heard the leader: it may vote then.
        let resumed = self
            .nodes
            .iter()
            .filter_map(|sn| sn.paused_until)
            .max()
            .unwrap_or(Time::ZERO);
        let quiet_since = self
            .check
            .last_disturbance
            .max(self.check.links.0)
            .max(resumed);
        if self.now.nanos() < quiet_since.nanos() + settled {
            return Ok(());
        }
        let working = self
            .check
            .leader_since
            .range(..term)
            .next_back()
            .map(|(&t, &(l, since))| (l, t, since))
            .filter(|&(l, t, since)| {
                let still = self.node(l).is_some_and(|x| {
                    let s = x.status();
                    s.role == sq_node::Role::Leader && s.term == t
                });
                still && self.now.nanos() >= since.nanos() + settled && self.leader_works(l)
            });
        crate::invariants::quorum::check_leader_kept(n, term, working)
            .map_err(|v| self.fail(v, Some(n)))
    }

    /// The node that leads the highest term among the running nodes, if one does.
    pub fn leader(&self) -> Option<u32> {
        let statuses =
            (0..self.cfg.shape.nodes).filter_map(|n| Some((n, self.node(u32::from(n))?.status())));
        super::partition::leader_of(statuses).map(u32::from)
    }

    /// The run's config.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The checks on a message node `n` sends another: a granted vote leaves only once the
    /// vote is durable in its metadata (read from its disk's durable bytes); an acknowledgement
    /// of entries only once they are durable in its WAL (the checker's image). The replica whose
    /// storage the harness made lie is left out of the second: a misdirected write leaves a
    /// hole where it believes an entry is.
    pub(super) fn check_peer_send(
        &self,
        n: u32,
        to: u32,
        msg: &PeerMsg,
    ) -> Result<(), Box<Failure>> {
        use crate::invariants::quorum::{
            check_replica_ack, check_vote_durable, check_vote_while_led,
        };
        let checked = match msg {
            PeerMsg::VoteReply(v) if v.granted => {
                let heard = self.check.heard_leader[n as usize];
                check_vote_while_led(n, to, self.now, heard, self.cfg.election_timeout)
                    .map_err(|e| self.fail(e, Some(n)))?;
                if v.pre_vote {
                    return Ok(());
                }
                // Stray bytes in a metadata copy leave only the older one readable.
                let sn = &self.nodes[n as usize];
                if sn.damaged.iter().any(|(f, _)| f.starts_with("meta")) {
                    return Ok(());
                }
                let durable = sq_storage::meta::COPIES
                    .iter()
                    .filter_map(|f| sn.disk.durable(f))
                    .filter_map(|b| sq_storage::Meta::decode(b).ok())
                    .max_by_key(|m| m.version);
                check_vote_durable(n, to, v.term, durable)
            }
            PeerMsg::AppendReply(a) if a.success && a.match_index > 0 => {
                if self.check.faulty_disk == Some(n) {
                    return Ok(());
                }
                let durable = self.check.images[n as usize].entry(a.match_index).is_some();
                check_replica_ack(n, to, a.match_index, durable)
            }
            _ => Ok(()),
        };
        checked.map_err(|v| self.fail(v, Some(n)))
    }

    /// Whether every acked batch is durable on every replica, as after a heal every replica
    /// holds the committed log: `Err` names the first that is not.
    pub fn acked_on_every_replica(&self) -> Result<(), String> {
        for b in self.check.acked.values() {
            for (n, image) in self.check.images.iter().enumerate() {
                let held = image
                    .batch_holding(b.partition, b.base_offset)
                    .is_some_and(|f| {
                        let h = f.header.batch;
                        (h.producer, h.seq, h.base_offset, h.count)
                            == (b.producer, b.seq, b.base_offset, b.count)
                    });
                if !held {
                    return Err(format!(
                        "p{} seq {} (partition {} offset {}) is not durable on n{n}",
                        b.producer, b.seq, b.partition, b.base_offset
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether every replica's durable log is the same, entry for entry, to its end (after a
    /// heal: a deposed leader's uncommitted suffix is gone): `Err` names the first difference.
    pub fn replicas_identical(&self) -> Result<(), String> {
        let last = (0..self.nodes.len() as u32)
            .filter_map(|n| Some(self.node(n)?.status().last_index))
            .max()
            .unwrap_or(0);
        for index in 1..=last {
            let entries: Vec<_> = self.check.images.iter().map(|i| i.entry(index)).collect();
            if entries.windows(2).any(|w| w[0] != w[1]) {
                let seen: Vec<String> = entries
                    .iter()
                    .enumerate()
                    .map(|(n, e)| match e {
                        Some((t, id)) => format!("n{n}: term {t} {id}"),
                        None => format!("n{n}: none"),
                    })
                    .collect();
                return Err(format!("index {index} differs: {}", seen.join("; ")));
            }
        }
        Ok(())
    }

    /// How long a replica that lacks `entries` entries may take to catch up once it is back: the
    /// liveness bound, plus one round trip (two network trips and a sync, at their longest) per
    /// window of entries flow control lets through (entries of up to 600 bytes).
    pub fn catch_up_bound(&self, entries: u64) -> u64 {
        let cfg = &self.cfg;
        let round_trip = 2 * cfg.latency.1 + cfg.sync_latency.1 + cfg.heartbeat;
        let per_window = (cfg.max_inflight_bytes as u64 / 600).max(1);
        cfg.liveness_bound() + entries.div_ceil(per_window) * round_trip
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
                    invoked,
                }),
                Reply::Produce(Ok(ok)),
            ) => self
                .check_not_isolated(n, producer, seq, invoked)
                .and_then(|()| {
                    majority::check_ack_majority(
                        &replicas,
                        Some(n),
                        partition,
                        (producer, seq, count),
                        ok.base_offset,
                    )
                }),
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
