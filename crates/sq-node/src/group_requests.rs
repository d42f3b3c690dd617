//! The leader's side of consumer groups: requests in, group entries appended, answers once
//! they commit; members that stop heartbeating are expelled.
//!
//! Every answer that reports group state (a join's generation and partitions, a committed
//! offset) is computed from the log up to the entry the request appended and given once that
//! entry commits: it is then the committed state, whichever leader serves the next request. A
//! fetch-offset appends a read marker for the same reason (a deposed leader that has not heard
//! of its successor cannot answer from its stale state: its marker never commits).

use crate::node::{Node, Output};
use crate::status::Role;
use sq_core::codec::EntryKind;
use sq_core::{ClientId, GroupError, GroupOk, GroupOp, GroupRequest, Probe, Reply, Time};
use sq_storage::{Disk, WalError};

impl Node {
    /// Handles one group request from client `from`.
    pub(crate) fn group_request(
        &mut self,
        now: Time,
        from: ClientId,
        req: u64,
        request: GroupRequest,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        let reply = |out: &mut Vec<Output>, r: Result<GroupOk, GroupError>| {
            out.push(Output::Reply {
                to: from,
                req,
                reply: Reply::Group(r),
            })
        };
        if let Some(why) = &self.failed {
            return reply(out, Err(GroupError::Unavailable(why.clone())));
        }
        if self.role != Role::Leader {
            let leader = self.leader;
            return reply(out, Err(GroupError::NotLeader { leader }));
        }
        let partitions = self.config.partitions;
        let op = match request {
            GroupRequest::Join { group, member } => {
                self.sessions.insert((group, member), now);
                GroupOp::Join { group, member }
            }
            GroupRequest::Heartbeat {
                group,
                member,
                generation,
            } => {
                let answer = self
                    .groups
                    .check_member(group, member, generation)
                    .map(|_| GroupOk::Alive);
                if answer.is_ok() {
                    self.sessions.insert((group, member), now);
                }
                return reply(out, answer);
            }
            GroupRequest::Leave { group, member } => {
                let present = self
                    .groups
                    .get(group)
                    .is_some_and(|g| g.members.contains(&member));
                if !present {
                    return reply(out, Err(GroupError::UnknownMember { group, member }));
                }
                GroupOp::Leave { group, member }
            }
            GroupRequest::Commit {
                group,
                member,
                generation,
                partition,
                offset,
            } => {
                let Some(part) = self.partitions.get(partition.0 as usize) else {
                    return reply(out, Err(GroupError::UnknownPartition(partition)));
                };
                let op = GroupOp::Commit {
                    group,
                    member,
                    generation,
                    partition,
                    offset,
                };
                if let Err(e) = self
                    .groups
                    .check_commit(&op, partitions, part.next_offset())
                {
                    match e {
                        GroupError::OffsetRegression { .. } => {
                            self.probes.hit(Probe::GroupOffsetRegressionRefused)
                        }
                        GroupError::StaleGeneration { .. } | GroupError::UnknownMember { .. } => {
                            self.probes.hit(Probe::GroupCommitStale)
                        }
                        _ => {}
                    }
                    return reply(out, Err(e));
                }
                self.sessions.insert((group, member), now);
                op
            }
            GroupRequest::FetchOffset { group, partition } => {
                if partition.0 >= partitions {
                    return reply(out, Err(GroupError::UnknownPartition(partition)));
                }
                GroupOp::Read { group, partition }
            }
        };
        // Nothing is recorded past the budget: group entries are small, but a WAL the store
        // cannot take must not grow without bound.
        if self.config.max_wal_bytes != u64::MAX && self.wal.bytes() >= self.config.max_wal_bytes {
            return reply(out, Err(GroupError::StorageFull));
        }
        match self.append(now, EntryKind::Group, &op.to_meta(), &[], disk) {
            Ok(index) => {
                let answer = self.group_answer(&op);
                self.answer_at(index, from, req, Reply::Group(answer), out);
                self.replicate(now, disk, out);
            }
            Err(WalError::NoSpace) => reply(out, Err(GroupError::StorageFull)),
            Err(e) => {
                reply(out, Err(GroupError::StorageFailed(e.to_string())));
                self.fail(format!("append failed: {e}"), out);
            }
        }
    }

    /// The answer to `op`, just appended: the group's state after it.
    fn group_answer(&self, op: &GroupOp) -> Result<GroupOk, GroupError> {
        let group = self.groups.get(op.group());
        Ok(match *op {
            GroupOp::Join { member, .. } => GroupOk::Joined {
                generation: group.map_or(0, |g| g.generation),
                partitions: group
                    .map_or_else(Vec::new, |g| g.assignment(member, self.config.partitions)),
            },
            GroupOp::Leave { .. } | GroupOp::Expire { .. } => GroupOk::Left,
            GroupOp::Commit { .. } => GroupOk::Committed,
            GroupOp::Read { partition, .. } => GroupOk::Offset {
                offset: group.and_then(|g| g.offsets.get(&partition.0).copied()),
            },
        })
    }

    /// A leader expels the members it has not heard from for a session timeout. A member it
    /// has not heard from at all since it took office gets a whole timeout from now.
    pub(crate) fn expire_sessions(
        &mut self,
        now: Time,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        if self.role != Role::Leader || self.failed.is_some() {
            return;
        }
        let members: Vec<_> = self.groups.members().collect();
        self.sessions.retain(|k, _| members.contains(k));
        let mut expired = Vec::new();
        for key in members {
            let last = *self.sessions.entry(key).or_insert(now);
            if now.nanos().saturating_sub(last.nanos()) >= self.config.session_timeout {
                expired.push(key);
            }
        }
        if expired.is_empty() {
            return;
        }
        for (group, member) in expired {
            let op = GroupOp::Expire { group, member };
            match self.append(now, EntryKind::Group, &op.to_meta(), &[], disk) {
                Ok(_) => {
                    self.probes.hit(Probe::GroupMemberExpired);
                    self.sessions.remove(&(group, member));
                }
                // No room: try again at the next input.
                Err(WalError::NoSpace) => return,
                Err(e) => return self.fail(format!("append failed: {e}"), out),
            }
        }
        self.replicate(now, disk, out);
    }
}
