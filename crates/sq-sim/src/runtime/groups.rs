//! The consumer group in the simulation: its members' transitions, what their history tells the
//! group model, and the check of the group's committed offsets at the end of a run.

use super::workload::GROUP;
use super::*;
use crate::invariants::consumer;
use sq_core::{GroupOk, GroupRequest};
use sq_model::GroupAction;

impl Sim {
    /// The first group member's client id.
    pub(super) fn first_member(&self) -> u32 {
        u32::from(self.cfg.shape.producers) + u32::from(self.cfg.shape.consumers) + 1
    }

    /// How many clients the run has: producers, consumers and the harness's reader, the group's
    /// members and the harness's group reader (client ids `0..clients`).
    pub fn clients(&self) -> u32 {
        self.first_member() + self.work.members.len() as u32
    }

    /// The member index of client `c`, if it is a group consumer.
    pub(super) fn member_of(&self, c: u32) -> Option<usize> {
        let k = c.checked_sub(self.first_member())? as usize;
        (k < self.work.members.len()).then_some(k)
    }

    /// Group consumer `k` does `action`.
    pub(super) fn group_action(
        &mut self,
        k: usize,
        action: GroupAction,
    ) -> Result<(), Box<Failure>> {
        let client = self.first_member() + k as u32;
        let now = self.now;
        let mut out = std::mem::take(&mut self.client_out);
        let m = &mut self.work.members[k];
        match action {
            GroupAction::Crash => {
                m.crash(now);
                // Its history up to the crash, then a new process with nothing in memory.
                self.after_client(client)?;
                let counted = self.work.members[k].probes().clone();
                self.work.crashed_member_probes.add(&counted);
                self.work.incarnations[k] += 1;
                self.work.members[k] = GroupConsumer::new(
                    ClientId(client),
                    GROUP,
                    MemberId(k as u32),
                    self.work.incarnations[k],
                    self.work.member_config,
                );
                self.check.member_next.retain(|&(c, _), _| c != client);
                let what = format!("group consumer c{client} crashed; it restarts with nothing");
                self.trace.record(now, What::Fault { what });
            }
            GroupAction::Stall => {
                m.stall();
                let what = format!("group consumer c{client} stalls: no heartbeat until it acts");
                self.trace.record(now, What::Fault { what });
            }
            _ if !m.is_idle() => {}
            GroupAction::Poll => drop(m.poll(now, &mut out)),
            GroupAction::Join => drop(m.join(now, &mut out)),
            GroupAction::Fetch => drop(m.fetch(now, &mut out)),
            GroupAction::Commit => drop(m.commit(now, &mut out)),
            GroupAction::FetchOffset => drop(m.fetch_offset(now, &mut out)),
            GroupAction::Peek => {
                let partition =
                    PartitionId(self.rng.below(u64::from(self.cfg.shape.partitions)) as u32);
                drop(m.fetch_offset_of(now, partition, &mut out))
            }
            GroupAction::Rewind => {
                let back = 1 + self.rng.below(3);
                drop(m.rewind(now, back, &mut out))
            }
            GroupAction::Leave => drop(m.leave(now, &mut out)),
        }
        self.route_client(client, &mut out);
        self.client_out = out;
        self.after_client(client)
    }

    /// Feeds one history event of group consumer `c` to the group model.
    pub(super) fn observe_member(&mut self, c: u32, e: &HistoryEvent) -> Result<(), Violation> {
        let groups = &mut self.check.groups;
        match &e.outcome {
            Outcome::Invoke(Op::Group(request)) => match *request {
                GroupRequest::Join { group, .. } => groups.invoke_join(c, e.op, group.0),
                GroupRequest::Commit {
                    group,
                    member,
                    generation,
                    partition,
                    offset,
                } => groups.invoke_commit(
                    c,
                    e.op,
                    group.0,
                    member.0,
                    generation,
                    partition.0,
                    offset,
                ),
                GroupRequest::FetchOffset { group, partition } => {
                    groups.invoke_read(c, e.op, group.0, partition.0)
                }
                GroupRequest::Leave { group, .. } => groups.invoke_leave(c, e.op, group.0),
                GroupRequest::Heartbeat { .. } => {}
            },
            Outcome::Invoke(Op::Fetch { partition, offset }) => {
                if let Some(&next) = self.check.member_next.get(&(c, partition.0)) {
                    consumer::check_member_resumes(ClientId(c), *partition, next, *offset)?;
                }
            }
            Outcome::Group(GroupOk::Joined { generation, .. }) => {
                groups.joined(c, e.op, *generation)?;
                // Its next read of each partition starts from the committed offset it asks for.
                self.check.member_next.retain(|&(m, _), _| m != c);
            }
            Outcome::Group(GroupOk::Committed) => groups.committed(c, e.op)?,
            Outcome::Group(GroupOk::Offset { offset }) => {
                if let Some(OpInfo::GroupRead { partition }) = self.work.ops.get(&(c, e.op)) {
                    let partition = *partition;
                    let k = self.member_of(c);
                    let assigned = k.is_some_and(|k| {
                        self.work.members[k]
                            .assigned()
                            .contains(&PartitionId(partition))
                    });
                    if assigned {
                        self.check
                            .member_next
                            .insert((c, partition), offset.unwrap_or(0));
                    }
                }
                self.check.groups.read(c, e.op, *offset)?;
            }
            Outcome::Group(GroupOk::Left) => groups.left(c, e.op),
            Outcome::Group(GroupOk::Alive) => {}
            Outcome::Fetched { records, .. } => {
                if let (Some(OpInfo::Fetch { partition, offset }), Some(last)) =
                    (self.work.ops.get(&(c, e.op)), records.last())
                {
                    let (partition, offset) = (*partition, *offset);
                    groups.delivered(GROUP.0, partition, offset, last.offset + 1);
                    if self.check.member_next.contains_key(&(c, partition)) {
                        self.check
                            .member_next
                            .insert((c, partition), last.offset + 1);
                    }
                }
            }
            Outcome::Fail(_) | Outcome::Info(_) => groups.ended(c, e.op),
            Outcome::Invoke(Op::Produce { .. }) | Outcome::Produced { .. } => {}
        }
        Ok(())
    }

    /// A member's fetch was answered `Corrupt` (a flipped object the store held alone, say):
    /// the range counts as delivered (reported, never served), and the member reads on after.
    pub(super) fn member_skips(
        &mut self,
        c: u32,
        k: usize,
        partition: u32,
        offset: u64,
        next: u64,
    ) {
        self.check
            .groups
            .delivered(GROUP.0, partition, offset, next);
        self.work.members[k].seek(PartitionId(partition), next);
        if self.check.member_next.contains_key(&(c, partition)) {
            self.check.member_next.insert((c, partition), next);
        }
    }

    /// After the heal: the group's committed offset of every partition is read (through the
    /// log, by a client that is not a member) and must be at least every commit acknowledged.
    pub(super) fn check_group_offsets(&mut self, limit: Time) -> Result<(), Box<Failure>> {
        // A node that refused to start (excused damage) holds the group's entries out of reach.
        if self.cfg.shape.members == 0 || self.nodes.iter().any(|sn| sn.refused.is_some()) {
            return Ok(());
        }
        let k = usize::from(self.cfg.shape.members);
        let client = self.first_member() + k as u32;
        for partition in 0..u32::from(self.cfg.shape.partitions) {
            let mut out = std::mem::take(&mut self.client_out);
            let now = self.now;
            let _ = self.work.members[k].fetch_offset_of(now, PartitionId(partition), &mut out);
            self.route_client(client, &mut out);
            self.client_out = out;
            self.after_client(client)?;
            while !self.work.members[k].is_idle() && self.now < limit {
                self.run_for(5 * Time::MILLI)?;
            }
            let last = self.work.last_outcome.get(&client);
            if !matches!(last, Some(Outcome::Group(GroupOk::Offset { .. }))) {
                return Err(self.failure(Violation::new(
                    Invariant::Liveness,
                    format!("the group's committed offset of partition {partition} after the heal"),
                    "read: the healed cluster answers fetch-offset",
                    match last {
                        Some(o) => format!("{o:?}"),
                        None => "nothing".to_string(),
                    },
                )));
            }
        }
        Ok(())
    }
}
