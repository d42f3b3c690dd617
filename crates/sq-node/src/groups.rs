//! Consumer groups: the state the group entries of the log build, and the checks a leader makes
//! before it appends one.
//!
//! The table is a pure function of the group entries (`GroupOp`) up to some index: every
//! replica builds it from its log (and its snapshot), so a new leader knows every group and
//! every committed offset. The leader checks a request against the table of its whole log,
//! uncommitted entries included: an entry it appends is checked against every entry before it,
//! and once it commits, those are the committed log. So a committed offset never goes back in
//! the committed log, and no commit of a stale generation is ever in it.

use bytes::{Buf, BufMut};
use sq_core::{GroupError, GroupId, GroupOp, MemberId, Offset, PartitionId};
use std::collections::{BTreeMap, BTreeSet};

/// One group's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Group {
    /// Bumped by every change of membership.
    pub generation: u64,
    /// The members of the current generation.
    pub members: BTreeSet<MemberId>,
    /// Per partition, the committed offset (the next record to consume).
    pub offsets: BTreeMap<u32, Offset>,
}

impl Group {
    /// The partitions `member` owns among `0..partitions`: round robin over the members in
    /// order, so every partition has exactly one owner while the group has members.
    pub fn assignment(&self, member: MemberId, partitions: u32) -> Vec<PartitionId> {
        let Some(k) = self.members.iter().position(|&m| m == member) else {
            return Vec::new();
        };
        let n = self.members.len() as u32;
        (0..partitions)
            .filter(|p| p % n == k as u32)
            .map(PartitionId)
            .collect()
    }
}

/// Every group's state after some log index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupTable {
    groups: BTreeMap<u32, Group>,
}

impl GroupTable {
    /// The group's state, if it ever had an entry.
    pub fn get(&self, group: GroupId) -> Option<&Group> {
        self.groups.get(&group.0)
    }

    /// Every (group, member) of every current generation.
    pub fn members(&self) -> impl Iterator<Item = (GroupId, MemberId)> + '_ {
        self.groups
            .iter()
            .flat_map(|(&g, s)| s.members.iter().map(move |&m| (GroupId(g), m)))
    }

    /// Takes in one group entry.
    pub fn apply(&mut self, op: &GroupOp) {
        let g = self.groups.entry(op.group().0).or_default();
        match *op {
            GroupOp::Join { member, .. } => {
                if g.members.insert(member) {
                    g.generation += 1;
                }
            }
            GroupOp::Leave { member, .. } | GroupOp::Expire { member, .. } => {
                if g.members.remove(&member) {
                    g.generation += 1;
                }
            }
            GroupOp::Commit {
                partition, offset, ..
            } => {
                g.offsets.insert(partition.0, offset);
            }
            GroupOp::Read { .. } => {}
        }
    }

    /// Whether `member` is in `group`'s current generation `generation`: the member's error
    /// otherwise (it must rejoin).
    pub fn check_member(
        &self,
        group: GroupId,
        member: MemberId,
        generation: u64,
    ) -> Result<&Group, GroupError> {
        let g = self
            .get(group)
            .filter(|g| g.members.contains(&member))
            .ok_or(GroupError::UnknownMember { group, member })?;
        if g.generation != generation {
            return Err(GroupError::StaleGeneration {
                group,
                sent: generation,
                current: g.generation,
            });
        }
        Ok(g)
    }

    /// Whether a commit may be appended: the member is in the current generation, owns the
    /// partition, and the offset neither goes back nor passes `end` (the partition's next
    /// offset).
    pub fn check_commit(
        &self,
        op: &GroupOp,
        partitions: u32,
        end: Offset,
    ) -> Result<(), GroupError> {
        let GroupOp::Commit {
            group,
            member,
            generation,
            partition,
            offset,
        } = *op
        else {
            panic!("invariant: check_commit is called with a commit, not {op}");
        };
        let g = self.check_member(group, member, generation)?;
        if !g.assignment(member, partitions).contains(&partition) {
            return Err(GroupError::NotAssigned { member, partition });
        }
        if let Some(&committed) = g.offsets.get(&partition.0) {
            if offset < committed {
                return Err(GroupError::OffsetRegression { offset, committed });
            }
        }
        if offset > end {
            return Err(GroupError::OffsetOutOfRange { offset, end });
        }
        Ok(())
    }

    /// Appends the table's bytes (for a snapshot).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32_le(self.groups.len() as u32);
        for (id, g) in &self.groups {
            out.put_u32_le(*id);
            out.put_u64_le(g.generation);
            out.put_u32_le(g.members.len() as u32);
            for m in &g.members {
                out.put_u32_le(m.0);
            }
            out.put_u32_le(g.offsets.len() as u32);
            for (p, o) in &g.offsets {
                out.put_u32_le(*p);
                out.put_u64_le(*o);
            }
        }
    }

    /// Decodes a table written by [`GroupTable::encode`] from the front of `buf`; `None` if the
    /// bytes are malformed.
    pub fn decode(buf: &mut &[u8]) -> Option<GroupTable> {
        let need = |b: &&[u8], n: usize| (b.remaining() >= n).then_some(());
        need(buf, 4)?;
        let mut groups = BTreeMap::new();
        for _ in 0..buf.get_u32_le() {
            need(buf, 4 + 8 + 4)?;
            let id = buf.get_u32_le();
            let mut g = Group {
                generation: buf.get_u64_le(),
                ..Group::default()
            };
            for _ in 0..buf.get_u32_le() {
                need(buf, 4)?;
                g.members.insert(MemberId(buf.get_u32_le()));
            }
            need(buf, 4)?;
            for _ in 0..buf.get_u32_le() {
                need(buf, 12)?;
                let p = buf.get_u32_le();
                g.offsets.insert(p, buf.get_u64_le());
            }
            groups.insert(id, g);
        }
        Some(GroupTable { groups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const G: GroupId = GroupId(0);

    fn join(t: &mut GroupTable, m: u32) {
        t.apply(&GroupOp::Join {
            group: G,
            member: MemberId(m),
        });
    }

    fn commit(m: u32, generation: u64, p: u32, offset: u64) -> GroupOp {
        GroupOp::Commit {
            group: G,
            member: MemberId(m),
            generation,
            partition: PartitionId(p),
            offset,
        }
    }

    #[test]
    fn membership_changes_bump_the_generation_and_rejoins_do_not() {
        let mut t = GroupTable::default();
        join(&mut t, 1);
        join(&mut t, 2);
        join(&mut t, 1);
        let g = t.get(G).cloned().unwrap_or_default();
        assert_eq!(g.generation, 2);
        assert_eq!(
            g.assignment(MemberId(1), 3),
            vec![PartitionId(0), PartitionId(2)]
        );
        assert_eq!(g.assignment(MemberId(2), 3), vec![PartitionId(1)]);
        assert_eq!(g.assignment(MemberId(9), 3), vec![]);
        t.apply(&GroupOp::Expire {
            group: G,
            member: MemberId(2),
        });
        assert_eq!(t.get(G).map(|g| g.generation), Some(3));
    }

    #[test]
    fn commits_are_checked_for_generation_owner_and_order() {
        let mut t = GroupTable::default();
        join(&mut t, 1);
        join(&mut t, 2);
        assert_eq!(t.check_commit(&commit(1, 2, 0, 5), 2, 10), Ok(()));
        t.apply(&commit(1, 2, 0, 5));
        assert_eq!(
            t.check_commit(&commit(1, 1, 0, 6), 2, 10),
            Err(GroupError::StaleGeneration {
                group: G,
                sent: 1,
                current: 2
            })
        );
        assert_eq!(
            t.check_commit(&commit(2, 2, 0, 6), 2, 10),
            Err(GroupError::NotAssigned {
                member: MemberId(2),
                partition: PartitionId(0)
            })
        );
        assert_eq!(
            t.check_commit(&commit(1, 2, 0, 4), 2, 10),
            Err(GroupError::OffsetRegression {
                offset: 4,
                committed: 5
            })
        );
        assert_eq!(
            t.check_commit(&commit(1, 2, 0, 11), 2, 10),
            Err(GroupError::OffsetOutOfRange {
                offset: 11,
                end: 10
            })
        );
        assert_eq!(
            t.check_commit(&commit(3, 2, 0, 6), 2, 10),
            Err(GroupError::UnknownMember {
                group: G,
                member: MemberId(3)
            })
        );
    }

    #[test]
    fn a_table_round_trips_through_its_bytes() {
        let mut t = GroupTable::default();
        join(&mut t, 1);
        t.apply(&commit(1, 1, 0, 7));
        let mut bytes = Vec::new();
        t.encode(&mut bytes);
        assert_eq!(GroupTable::decode(&mut &bytes[..]), Some(t));
        // Every shorter prefix is refused, never read past its end.
        for len in 0..bytes.len() {
            assert_eq!(GroupTable::decode(&mut &bytes[..len]), None, "{len} bytes");
        }
    }
}
