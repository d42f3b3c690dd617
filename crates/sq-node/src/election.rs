//! Elections: PreVote, votes, CheckQuorum, and the changes of role they cause.
//!
//! - A follower that hears no leader for its randomized election timeout first asks for
//!   pre-votes (its term does not move), and stands only if a majority would vote for it, so a
//!   node cut off from the majority cannot push everyone's term up (Raft thesis §9.6).
//! - A node that heard from a live leader within the election timeout refuses pre-votes and
//!   votes, without adopting the asker's term; a leader refuses too. With CheckQuorum this keeps
//!   a partial partition (two nodes that cannot reach each other, both reaching the third) from
//!   deposing a working leader again and again (cockroachdb#104042).
//! - A leader that has not heard from a majority within an election timeout steps down
//!   (CheckQuorum), so a stranded leader stops taking writes it cannot commit.
//! - Term and vote are stored durably before any answer leaves (the store syncs).
//! - A node repairing a damaged log neither stands nor votes for a log shorter than the one it
//!   may have had (see [`sq_storage::Meta::repair_term`]).

use crate::node::{answer_unknown, Node, Output};
use crate::progress::Progress;
use crate::status::Role;
use crate::timer::Timer;
use sq_core::codec::{BatchMeta, EntryKind};
use sq_core::{NodeId, PeerMsg, ProduceError, Time, VoteReply, VoteRequest};
use sq_storage::{Disk, DiskError, Meta, MetaError, WalError};

impl Node {
    /// How many replicas make a majority.
    pub(crate) fn majority(&self) -> usize {
        self.config.nodes as usize / 2 + 1
    }

    /// Every other replica.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        (0..self.config.nodes)
            .map(NodeId)
            .filter(|&n| n != self.config.id)
            .collect()
    }

    /// Arms the election timer: the timeout plus a jitter of up to as much again.
    pub(crate) fn arm_election(&mut self, now: Time) {
        let t = self.config.election_timeout;
        let at = now + t + self.jitter.below(t.max(1));
        self.timers.set(Timer::Election, at);
    }

    /// Stores term, vote and repair state durably, as changed from `before`. On a full disk the
    /// old file is intact: the change is undone in memory too and the caller acts as if the
    /// message never came (it answers nothing). On any other error the node stops.
    pub(crate) fn persist(
        &mut self,
        before: Meta,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) -> bool {
        match self.meta.store(disk) {
            Ok(()) => true,
            Err(MetaError::Disk(DiskError::NoSpace { .. })) => {
                self.meta = before;
                false
            }
            Err(e) => {
                // What is durable is unknown; memory keeps what it knew for sure, and the node
                // stops (its restart reads what the disk holds).
                self.meta = before;
                self.fail(format!("storing term and vote failed: {e}"), out);
                false
            }
        }
    }

    /// The election timer fired: a leader checks its quorum, anyone else asks for pre-votes.
    pub(crate) fn election_timeout(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.single() {
            return;
        }
        if self.role == Role::Leader {
            let timeout = self.config.election_timeout;
            let since = Time(now.nanos().saturating_sub(timeout));
            let heard = 1 + self.heard.values().filter(|&&t| t >= since).count();
            if heard < self.majority() {
                self.probes.hit(sq_core::Probe::CheckQuorumStepDown);
                self.step_down(now, out);
            } else {
                self.timers.set(Timer::Election, now + timeout);
            }
            return;
        }
        self.arm_election(now);
        if self.meta.repair_term != 0 {
            // It may have lost entries it acknowledged: it waits for a leader to repair it.
            return;
        }
        self.role = Role::PreCandidate;
        self.leader = None;
        self.leader_contact = None;
        self.votes = [self.config.id].into();
        let (last_index, last_term) = self.last_entry();
        let ask = VoteRequest {
            term: self.meta.term + 1,
            candidate: self.config.id,
            last_index,
            last_term,
            pre_vote: true,
        };
        self.broadcast(PeerMsg::Vote(ask), out);
    }

    fn broadcast(&self, msg: PeerMsg, out: &mut Vec<Output>) {
        for to in self.peers() {
            out.push(Output::Send {
                to,
                msg: msg.clone(),
            });
        }
    }

    /// A majority would vote for it: stand in the next term, voting for itself durably first.
    /// Not while it repairs a damaged log (it may have found the damage after it asked).
    fn stand(&mut self, now: Time, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        if self.meta.repair_term != 0 {
            return;
        }
        let before = self.meta;
        self.meta.term += 1;
        self.meta.voted_for = u64::from(self.config.id.0) + 1;
        if !self.persist(before, disk, out) {
            return;
        }
        self.role = Role::Candidate;
        self.leader = None;
        self.verified = 0;
        self.votes = [self.config.id].into();
        self.arm_election(now);
        let (last_index, last_term) = self.last_entry();
        let ask = VoteRequest {
            term: self.meta.term,
            candidate: self.config.id,
            last_index,
            last_term,
            pre_vote: false,
        };
        self.broadcast(PeerMsg::Vote(ask), out);
    }

    /// Whether this node has a live leader: itself, or one it heard from within an election
    /// timeout.
    fn has_live_leader(&self, now: Time) -> bool {
        self.role == Role::Leader
            || self
                .leader_contact
                .is_some_and(|t| now < t + self.config.election_timeout)
    }

    /// Whether a candidate's log is at least as up to date as this node's, and as the log it
    /// may have had before damage cut it.
    fn log_ok(&self, m: &VoteRequest) -> bool {
        let (last_index, last_term) = self.last_entry();
        let theirs = (m.last_term, m.last_index);
        theirs >= (last_term, last_index)
            && (self.meta.repair_term == 0
                || theirs >= (self.meta.repair_term, self.meta.repair_index))
    }

    /// A vote or pre-vote request.
    pub(crate) fn handle_vote(
        &mut self,
        now: Time,
        from: NodeId,
        m: VoteRequest,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        let reply = |out: &mut Vec<Output>, term: u64, granted: bool| {
            out.push(Output::Send {
                to: from,
                msg: PeerMsg::VoteReply(VoteReply {
                    term,
                    granted,
                    pre_vote: m.pre_vote,
                }),
            })
        };
        if m.pre_vote {
            let granted = m.term > self.meta.term && self.log_ok(&m) && !self.has_live_leader(now);
            let term = if granted { m.term } else { self.meta.term };
            if !granted {
                self.probes.hit(sq_core::Probe::PreVoteRefused);
            }
            return reply(out, term, granted);
        }
        if self.has_live_leader(now) {
            return reply(out, self.meta.term, false);
        }
        if m.term > self.meta.term && !self.become_follower(now, m.term, None, disk, out) {
            return;
        }
        let free = self.meta.voted_for == 0 || self.meta.voted_for == u64::from(from.0) + 1;
        let granted = m.term == self.meta.term && free && self.log_ok(&m);
        if granted {
            if self.meta.voted_for == 0 {
                let before = self.meta;
                self.meta.voted_for = u64::from(from.0) + 1;
                if !self.persist(before, disk, out) {
                    return;
                }
            }
            self.arm_election(now);
        }
        reply(out, self.meta.term, granted);
    }

    /// An answer to this node's vote or pre-vote request.
    pub(crate) fn handle_vote_reply(
        &mut self,
        now: Time,
        from: NodeId,
        m: VoteReply,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        if m.pre_vote {
            if m.granted && self.role == Role::PreCandidate && m.term == self.meta.term + 1 {
                self.votes.insert(from);
                if self.votes.len() >= self.majority() {
                    self.stand(now, disk, out);
                }
            } else if !m.granted && m.term > self.meta.term {
                self.become_follower(now, m.term, None, disk, out);
            }
            return;
        }
        if m.term > self.meta.term {
            self.become_follower(now, m.term, None, disk, out);
            return;
        }
        if m.granted && self.role == Role::Candidate && m.term == self.meta.term {
            self.votes.insert(from);
            if self.votes.len() >= self.majority() && self.meta.repair_term == 0 {
                self.become_leader(now, disk, out);
            }
        }
    }

    /// Follows `leader` in `term` (storing a newer term durably first); false if the node had
    /// to stop because the store failed.
    pub(crate) fn become_follower(
        &mut self,
        now: Time,
        term: u64,
        leader: Option<NodeId>,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) -> bool {
        if term > self.meta.term {
            let before = self.meta;
            self.meta.term = term;
            self.meta.voted_for = 0;
            if !self.persist(before, disk, out) {
                return false;
            }
            self.verified = 0;
        }
        if self.role == Role::Leader {
            self.lose_office(out);
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.arm_election(now);
        true
    }

    /// A leader stops leading without a new term (CheckQuorum, a failed sync, damage).
    pub(crate) fn step_down(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.role == Role::Leader {
            self.lose_office(out);
        }
        self.role = Role::Follower;
        self.leader = None;
        self.leader_contact = None;
        self.votes.clear();
        self.arm_election(now);
    }

    /// What a leader forgets when it stops leading; its waiting producers learn that their
    /// batches may still commit under another leader.
    fn lose_office(&mut self, out: &mut Vec<Output>) {
        let waiting = std::mem::take(&mut self.waiters);
        answer_unknown(waiting, &ProduceError::LeaderChanged, out);
        self.progress.clear();
        self.heard.clear();
        self.ready_index = 0;
        self.sessions.clear();
        self.timers.stop(Timer::Heartbeat);
        self.tier.lose_office();
    }

    /// Won the election: lead, starting the term with a no-op entry so that entries of earlier
    /// terms can commit with it (Raft §5.4.2).
    fn become_leader(&mut self, now: Time, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.votes.clear();
        let last = self.wal.last_index();
        self.progress = self
            .peers()
            .into_iter()
            .map(|p| (p, Progress::new(last)))
            .collect();
        // Every follower gets one election timeout from now to answer before CheckQuorum.
        self.heard = self.peers().into_iter().map(|p| (p, now)).collect();
        self.timers
            .set(Timer::Election, now + self.config.election_timeout);
        match self.append(now, EntryKind::Noop, &BatchMeta::default(), &[], disk) {
            Ok(index) => self.ready_index = index,
            // Another node may have room to lead.
            Err(WalError::NoSpace) => return self.step_down(now, out),
            Err(e) => return self.fail(format!("appending the term's no-op failed: {e}"), out),
        }
        self.heartbeat(now, disk, out);
    }
}
