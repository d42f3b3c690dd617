//! The group consumer: joins a consumer group, reads the partitions it is assigned from the
//! group's committed offset on, commits as it goes, heartbeats, and rejoins when its generation
//! is no longer current.
//!
//! Delivery is at least once: after a rejoin the consumer reads again from the committed
//! offset, so records it had read but not committed are delivered again; none is skipped. Each
//! operation is one call (join, fetch, commit, fetch-offset, leave) and is recorded in the
//! history; heartbeats are not operations (they change nothing) and are not recorded.

use crate::history::{Op, Outcome};
use crate::session::{Limits, Next, Session};
use crate::{ClientError, ClientOutput, History};
use sq_core::{
    ClientId, FetchError, FetchRequest, GroupError, GroupId, GroupOk, GroupRequest, MemberId,
    NodeId, Offset, PartitionId, Reply, Request, Time,
};
use std::collections::BTreeMap;

/// Heartbeats carry request ids from here on, apart from operation ids.
const HEARTBEAT_REQ: u64 = 1 << 62;

/// How a group consumer reads and heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConsumerConfig {
    /// Resend (to the next node) if no answer came within this many nanoseconds.
    pub retry_after: u64,
    /// Give up after this many sends without an answer.
    pub max_attempts: u32,
    /// Give up after this many `NotLeader` or `NotReady` answers to one operation.
    pub max_redirects: u32,
    /// Records asked for per fetch.
    pub max_records: u32,
    /// How many nodes the cluster has.
    pub nodes: u32,
    /// A heartbeat goes out this often (ns) while the consumer is in a generation.
    pub heartbeat_every: u64,
}

impl Default for GroupConsumerConfig {
    fn default() -> Self {
        GroupConsumerConfig {
            retry_after: 20 * Time::MILLI,
            max_attempts: 5,
            max_redirects: 64,
            max_records: 50,
            nodes: 1,
            heartbeat_every: 40 * Time::MILLI,
        }
    }
}

/// A member of a consumer group.
#[derive(Clone, Debug)]
pub struct GroupConsumer {
    group: GroupId,
    member: MemberId,
    config: GroupConsumerConfig,
    session: Session,
    /// The generation joined, while the consumer believes it current.
    generation: Option<u64>,
    /// The partitions assigned in that generation.
    assigned: Vec<PartitionId>,
    /// Where reading goes on, per assigned partition, once the committed offset is known.
    positions: BTreeMap<PartitionId, Offset>,
    /// The group's committed offset as this consumer last learnt it.
    committed: BTreeMap<PartitionId, Offset>,
    /// Round robin over the assigned partitions.
    turn: usize,
    next_heartbeat: Option<Time>,
    heartbeat_req: u64,
    /// A heartbeat sent and not answered yet.
    heartbeat_out: bool,
    /// A stalled consumer (a long pause in its process) sends no heartbeat until it acts again.
    stalled: bool,
}

impl GroupConsumer {
    /// Member `member` of `group`, as client `client`, in its `incarnation`-th process (request
    /// ids of different processes never collide).
    pub fn new(
        client: ClientId,
        group: GroupId,
        member: MemberId,
        incarnation: u32,
        config: GroupConsumerConfig,
    ) -> GroupConsumer {
        let limits = Limits {
            retry_after: config.retry_after,
            max_attempts: config.max_attempts,
            max_redirects: config.max_redirects,
            nodes: config.nodes,
        };
        let first = u64::from(incarnation) << 40;
        GroupConsumer {
            group,
            member,
            config,
            session: Session::starting_at(client, limits, first),
            generation: None,
            assigned: Vec::new(),
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            turn: 0,
            next_heartbeat: None,
            heartbeat_req: HEARTBEAT_REQ + first,
            heartbeat_out: false,
            stalled: false,
        }
    }

    /// The client id.
    pub fn client(&self) -> ClientId {
        self.session.client()
    }

    /// Whether no operation is in flight.
    pub fn is_idle(&self) -> bool {
        self.session.is_idle()
    }

    /// When the operation in flight was invoked, if one is.
    pub fn in_flight_since(&self) -> Option<Time> {
        self.session.in_flight_since()
    }

    /// The generation this consumer believes it is in.
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// The partitions assigned to it.
    pub fn assigned(&self) -> &[PartitionId] {
        &self.assigned
    }

    /// Where it reads `partition` next, if it knows.
    pub fn position(&self, partition: PartitionId) -> Option<Offset> {
        self.positions.get(&partition).copied()
    }

    /// Moves its position in `partition` past a corrupt range the node reported.
    pub fn seek(&mut self, partition: PartitionId, offset: Offset) {
        self.positions.insert(partition, offset);
    }

    /// Stops heartbeating until the next operation (a long stall of the consumer's process):
    /// the leader expels it once its session times out.
    pub fn stall(&mut self) {
        self.stalled = true;
    }

    fn start(
        &mut self,
        now: Time,
        request: GroupRequest,
        out: &mut Vec<ClientOutput>,
    ) -> Result<Option<u64>, ClientError> {
        self.resume(now, out);
        let op = Op::Group(request.clone());
        self.session
            .start(now, op, Request::Group(request), out)
            .map(Some)
    }

    /// A stalled consumer acts again: heartbeats resume.
    fn resume(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        if self.stalled {
            self.stalled = false;
            if self.generation.is_some() {
                self.schedule_heartbeat(now, out);
            }
        }
    }

    /// Joins (or rejoins) the group.
    pub fn join(
        &mut self,
        now: Time,
        out: &mut Vec<ClientOutput>,
    ) -> Result<Option<u64>, ClientError> {
        let (group, member) = (self.group, self.member);
        self.start(now, GroupRequest::Join { group, member }, out)
    }

    /// Leaves the group.
    pub fn leave(
        &mut self,
        now: Time,
        out: &mut Vec<ClientOutput>,
    ) -> Result<Option<u64>, ClientError> {
        let (group, member) = (self.group, self.member);
        self.start(now, GroupRequest::Leave { group, member }, out)
    }

    /// The next assigned partition, round robin (`None`: nothing assigned).
    fn next_partition(&mut self) -> Option<PartitionId> {
        let n = self.assigned.len();
        let p = *self.assigned.get(self.turn % n.max(1))?;
        self.turn = self.turn.wrapping_add(1);
        Some(p)
    }

    /// Reads the next assigned partition: from its position, or, where the position is not
    /// known yet (after a join), asks for the committed offset first. Joins first if not in a
    /// generation. `None`: nothing assigned, nothing started.
    pub fn fetch(
        &mut self,
        now: Time,
        out: &mut Vec<ClientOutput>,
    ) -> Result<Option<u64>, ClientError> {
        if self.generation.is_none() {
            return self.join(now, out);
        }
        let Some(partition) = self.next_partition() else {
            return Ok(None);
        };
        let Some(&offset) = self.positions.get(&partition) else {
            return self.fetch_offset_of(now, partition, out);
        };
        self.resume(now, out);
        let request = Request::Fetch(FetchRequest {
            partition,
            offset,
            max_records: self.config.max_records,
        });
        self.session
            .start(now, Op::Fetch { partition, offset }, request, out)
            .map(Some)
    }

    /// The consumer loop's next step, one operation: join if in no generation, else ask for the
    /// committed offset of a partition whose position it does not know, else commit where it
    /// has read past the committed offset, else read the next partition.
    pub fn poll(
        &mut self,
        now: Time,
        out: &mut Vec<ClientOutput>,
    ) -> Result<Option<u64>, ClientError> {
        if self.generation.is_none() {
            return self.join(now, out);
        }
        let unknown = self
            .assigned
            .iter()
            .copied()
            .find(|p| !self.positions.contains_key(p));
        if let Some(partition) = unknown {
            return self.fetch_offset_of(now, partition, out);
        }
        let ahead = self.assigned.iter().any(|p| {
            self.positions.get(p).copied().unwrap_or(0)
                > self.committed.get(p).copied().unwrap_or(0)
        });
        if ahead {
            return self.commit(now, out);
        }
        self.fetch(now, out)
    }

    /// Asks for the committed offset of the next assigned partition (joins first if not in a
    /// generation).
    pub fn fetch_offset(
        &mut self,
        now: Time,
        out: &mut Vec<ClientOutput>,
    ) -> Result<Option<u64>, ClientError> {
        if self.generation.is_none() {
            return self.join(now, out);
        }
        match self.next_partition() {
            Some(partition) => self.fetch_offset_of(now, partition, out),
            None => Ok(None),
        }
    }

    /// Asks for the committed offset of `partition`, assigned or not.
    pub fn fetch_offset_of(
        &mut self,
        now: Time,
        partition: PartitionId,
        out: &mut Vec<ClientOutput>,
    ) -> Result<Option<u64>, ClientError> {
        let group = self.group;
        self.start(now, GroupRequest::FetchOffset { group, partition }, out)
    }

    /// Commits how far it has read in an assigned partition where that is past what the group
    /// committed (joins first if not in a generation). `None`: nothing to commit.
    pub fn commit(
        &mut self,
        now: Time,
        out: &mut Vec<ClientOutput>,
    ) -> Result<Option<u64>, ClientError> {
        let Some(generation) = self.generation else {
            return self.join(now, out);
        };
        let ahead = self.assigned.iter().find_map(|p| {
            let pos = *self.positions.get(p)?;
            (pos > self.committed.get(p).copied().unwrap_or(0)).then_some((*p, pos))
        });
        let Some((partition, offset)) = ahead else {
            return Ok(None);
        };
        let request = GroupRequest::Commit {
            group: self.group,
            member: self.member,
            generation,
            partition,
            offset,
        };
        self.start(now, request, out)
    }

    /// Commits `back` offsets before what it last learnt the group committed in its next
    /// assigned partition (a consumer that wants to read again from earlier). sq's committed
    /// offsets never go back, so the node must refuse it. `None`: nothing assigned.
    pub fn rewind(
        &mut self,
        now: Time,
        back: u64,
        out: &mut Vec<ClientOutput>,
    ) -> Result<Option<u64>, ClientError> {
        let Some(generation) = self.generation else {
            return self.join(now, out);
        };
        let Some(partition) = self.next_partition() else {
            return Ok(None);
        };
        let committed = self.committed.get(&partition).copied().unwrap_or(0);
        let request = GroupRequest::Commit {
            group: self.group,
            member: self.member,
            generation,
            partition,
            offset: committed.saturating_sub(back),
        };
        self.start(now, request, out)
    }

    fn schedule_heartbeat(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        let at = now + self.config.heartbeat_every;
        self.next_heartbeat = Some(at);
        out.push(ClientOutput::SetTimer { at });
    }

    /// Handles node `from`'s reply to request `req`. Returns the typed error of a fetch that
    /// ended failed, so the caller can act on it (skip a corrupt batch with
    /// [`GroupConsumer::seek`]).
    pub fn on_reply(
        &mut self,
        now: Time,
        from: NodeId,
        req: u64,
        reply: Reply,
        out: &mut Vec<ClientOutput>,
    ) -> Option<FetchError> {
        if req >= HEARTBEAT_REQ {
            self.on_heartbeat_reply(req, from, reply);
            return None;
        }
        let request = self.session.answering(req)?.request.clone();
        match (request, reply) {
            (Request::Fetch(f), Reply::Fetch(result)) => self.on_fetch(now, from, f, result, out),
            (Request::Group(g), Reply::Group(result)) => {
                self.on_group(now, from, g, result, out);
                None
            }
            _ => None,
        }
    }

    fn on_heartbeat_reply(&mut self, req: u64, from: NodeId, reply: Reply) {
        if req != self.heartbeat_req {
            return;
        }
        self.heartbeat_out = false;
        match reply {
            Reply::Group(Err(GroupError::NotLeader { leader })) => {
                let to = leader.unwrap_or_else(|| self.session.after(from));
                self.session.set_target(to);
            }
            Reply::Group(Err(e)) if e.needs_rejoin() => self.must_rejoin(),
            _ => {}
        }
    }

    /// Its generation is no longer current (a refusal said so): it rejoins at its next
    /// operation.
    fn must_rejoin(&mut self) {
        self.session
            .probes
            .hit(sq_core::Probe::GroupConsumerRejoins);
        self.forget_generation();
    }

    fn forget_generation(&mut self) {
        self.generation = None;
        self.assigned.clear();
        self.positions.clear();
        self.committed.clear();
        self.next_heartbeat = None;
    }

    fn on_fetch(
        &mut self,
        now: Time,
        from: NodeId,
        f: FetchRequest,
        result: Result<sq_core::FetchOk, FetchError>,
        out: &mut Vec<ClientOutput>,
    ) -> Option<FetchError> {
        match result {
            Ok(ok) => {
                // A rejoin in between reset the position: the records are delivered all the
                // same, but the position is the committed offset's.
                if let (Some(last), Some(pos)) =
                    (ok.records.last(), self.positions.get_mut(&f.partition))
                {
                    if *pos == f.offset {
                        *pos = last.offset.saturating_add(1);
                    }
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
                self.fail_if_spent(now, next, &e.to_string());
                None
            }
            Err(e @ (FetchError::NotReady | FetchError::StoreUnavailable(_))) => {
                let next = self.session.again(now, from, out);
                self.fail_if_spent(now, next, &e.to_string());
                None
            }
            Err(e) => {
                self.session
                    .finish(now, Outcome::Fail(e.to_string()), Some(from));
                Some(e)
            }
        }
    }

    fn on_group(
        &mut self,
        now: Time,
        from: NodeId,
        request: GroupRequest,
        result: Result<GroupOk, GroupError>,
        out: &mut Vec<ClientOutput>,
    ) {
        match result {
            Ok(ok) => {
                self.took_effect(now, &request, &ok, out);
                self.session.finish(now, Outcome::Group(ok), Some(from));
            }
            Err(e @ GroupError::NotLeader { leader }) => {
                let next = self.session.redirect(now, from, leader, out);
                self.fail_if_spent(now, next, &e.to_string());
            }
            Err(e) if e.definiteness() == sq_core::Definiteness::Indeterminate => {
                let next = self.session.indeterminate(now, from, out);
                if let Next::Spent { used } = next {
                    let outcome = Outcome::Info(format!("no answer after {used} sends; last: {e}"));
                    self.session.finish(now, outcome, None);
                }
            }
            Err(e) => {
                if e.needs_rejoin() {
                    self.must_rejoin();
                }
                self.session
                    .finish(now, Outcome::Fail(e.to_string()), Some(from));
            }
        }
    }

    /// What an acknowledged group operation changes in the consumer.
    fn took_effect(
        &mut self,
        now: Time,
        request: &GroupRequest,
        ok: &GroupOk,
        out: &mut Vec<ClientOutput>,
    ) {
        match (request, ok) {
            (
                GroupRequest::Join { .. },
                GroupOk::Joined {
                    generation,
                    partitions,
                },
            ) => {
                // A new generation may reassign partitions: read each from the committed
                // offset again.
                self.forget_generation();
                self.generation = Some(*generation);
                self.assigned = partitions.clone();
                if !self.stalled {
                    self.schedule_heartbeat(now, out);
                }
            }
            (GroupRequest::Leave { .. }, _) => self.forget_generation(),
            (
                GroupRequest::Commit {
                    partition, offset, ..
                },
                GroupOk::Committed,
            ) => {
                self.committed.insert(*partition, *offset);
            }
            (GroupRequest::FetchOffset { partition, .. }, GroupOk::Offset { offset })
                if self.assigned.contains(partition) =>
            {
                let at = offset.unwrap_or(0);
                self.positions.insert(*partition, at);
                self.committed.insert(*partition, at);
            }
            _ => {}
        }
    }

    /// Ends the operation when its redirects are spent: indeterminate if an earlier send of it
    /// went unanswered (it may have taken effect), else definite.
    fn fail_if_spent(&mut self, now: Time, next: Next, last: &str) {
        let Next::Spent { used } = next else {
            return;
        };
        let why = format!("gave up after {used} redirects; last: {last}");
        let outcome = if self.session.uncertain() {
            Outcome::Info(why)
        } else {
            Outcome::Fail(why)
        };
        self.session.finish(now, outcome, None);
    }

    /// Handles a timer: the operation's resend or timeout, and the heartbeat when it is due.
    pub fn on_timer(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        self.session.on_timer(now, out);
        if self.next_heartbeat.is_none_or(|t| now < t) {
            return;
        }
        let Some(generation) = self.generation.filter(|_| !self.stalled) else {
            self.next_heartbeat = None;
            return;
        };
        // The last heartbeat went unanswered: its node may be down, try the next.
        if self.heartbeat_out {
            let next = self.session.after(self.session.target());
            self.session.set_target(next);
        }
        self.heartbeat_req += 1;
        self.heartbeat_out = true;
        out.push(ClientOutput::Send {
            to: self.session.target(),
            req: self.heartbeat_req,
            request: Request::Group(GroupRequest::Heartbeat {
                group: self.group,
                member: self.member,
                generation,
            }),
        });
        self.schedule_heartbeat(now, out);
    }

    /// The consumer's process dies: the operation in flight ends unknown (it may still take
    /// effect). The caller replaces the consumer with a new process.
    pub fn crash(&mut self, now: Time) {
        self.session
            .finish(now, Outcome::Info("the consumer crashed".into()), None);
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
