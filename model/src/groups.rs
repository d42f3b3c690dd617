//! The consumer-group part of the reference model: what a group's committed offsets must be,
//! given what the history has shown.
//!
//! It is fed the group operations of the history in order, and keeps, per (group, partition):
//! the highest offset an acknowledged commit or a read has shown (the floor: it must never be
//! seen lower again), every offset a commit was ever sent with (a committed offset is one of
//! them), and which records were delivered to the group's members. Each check compares with
//! what was known when the operation was *invoked*: what completed later may legitimately be
//! ordered after it.

use crate::violation::{Invariant, Violation};
use std::collections::{BTreeMap, BTreeSet};

/// What was known when an operation was invoked.
#[derive(Clone, Debug)]
enum Pending {
    Commit {
        key: (u32, u32),
        member: u32,
        generation: u64,
        offset: u64,
        floor: u64,
        newest_generation: u64,
    },
    Read {
        key: (u32, u32),
        floor: u64,
    },
    Join {
        group: u32,
        newest_generation: u64,
    },
    Leave {
        group: u32,
    },
}

/// The reference model of consumer groups.
#[derive(Clone, Debug, Default)]
pub struct GroupOracle {
    /// Per (group, partition): the highest committed offset acknowledged or read.
    floor: BTreeMap<(u32, u32), u64>,
    /// Per (group, partition): every offset a commit was sent with.
    sent: BTreeMap<(u32, u32), BTreeSet<u64>>,
    /// Per (group, partition): delivered ranges of offsets, start → end.
    delivered: BTreeMap<(u32, u32), BTreeMap<u64, u64>>,
    /// Per group: the newest generation known to exist: the newest a join was answered with,
    /// or one past the generation of a member whose leave was acknowledged (a membership
    /// change starts a new generation).
    newest_generation: BTreeMap<u32, u64>,
    /// Per client: the group and generation its last acknowledged join answered.
    joined_in: BTreeMap<u32, (u32, u64)>,
    /// Operations in flight, by (client, op).
    pending: BTreeMap<(u32, u64), Pending>,
    /// Set once the only copy of the log was damaged: group entries may be lost with it.
    lossy: bool,
}

impl GroupOracle {
    /// An oracle that has seen nothing.
    pub fn new() -> GroupOracle {
        GroupOracle::default()
    }

    /// Client `client` sent commit `op`: `member` of `group`, in `generation`, commits `offset`
    /// of `partition`.
    #[allow(clippy::too_many_arguments)]
    pub fn invoke_commit(
        &mut self,
        client: u32,
        op: u64,
        group: u32,
        member: u32,
        generation: u64,
        partition: u32,
        offset: u64,
    ) {
        let key = (group, partition);
        self.sent.entry(key).or_default().insert(offset);
        let pending = Pending::Commit {
            key,
            member,
            generation,
            offset,
            floor: self.floor_of(key),
            newest_generation: self.newest_generation.get(&group).copied().unwrap_or(0),
        };
        self.pending.insert((client, op), pending);
    }

    /// Client `client` asked for the committed offset of `partition` (operation `op`).
    pub fn invoke_read(&mut self, client: u32, op: u64, group: u32, partition: u32) {
        let key = (group, partition);
        let floor = self.floor_of(key);
        self.pending
            .insert((client, op), Pending::Read { key, floor });
    }

    /// Client `client` asked to join `group` (operation `op`).
    pub fn invoke_join(&mut self, client: u32, op: u64, group: u32) {
        let newest_generation = self.newest_generation.get(&group).copied().unwrap_or(0);
        self.pending.insert(
            (client, op),
            Pending::Join {
                group,
                newest_generation,
            },
        );
    }

    /// Client `client` asked to leave `group` (operation `op`).
    pub fn invoke_leave(&mut self, client: u32, op: u64, group: u32) {
        self.pending.insert((client, op), Pending::Leave { group });
    }

    /// The leave `op` of `client` was acknowledged: it was a member (a leave is acknowledged
    /// only then), in the generation its last join answered or a later one, so the group has
    /// moved past that generation. A commit sent after this in that generation is stale.
    pub fn left(&mut self, client: u32, op: u64) {
        let Some(Pending::Leave { group }) = self.pending.remove(&(client, op)) else {
            return;
        };
        if let Some(&(g, generation)) = self.joined_in.get(&client) {
            if g == group {
                let newest = self.newest_generation.entry(group).or_default();
                *newest = (*newest).max(generation + 1);
            }
        }
    }

    /// Records `from..to` of `partition` were delivered to a member of `group`.
    pub fn delivered(&mut self, group: u32, partition: u32, from: u64, to: u64) {
        if from >= to {
            return;
        }
        let ranges = self.delivered.entry((group, partition)).or_default();
        let (mut start, mut end) = (from, to);
        // Merge every range that touches this one.
        let touching: Vec<(u64, u64)> = ranges
            .range(..=end)
            .filter(|(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            ranges.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        ranges.insert(start, end);
    }

    /// The only copy of the log was damaged (a single node's disk lied): group entries may be
    /// lost with the records, so what earlier answers showed is no longer promised. The checks
    /// that need no history stay: a committed offset is one some commit carried, and none
    /// passes what was delivered.
    pub fn lose_history(&mut self) {
        self.lossy = true;
    }

    /// Where the records delivered to `group` from offset 0 on without a gap end.
    pub fn delivered_prefix(&self, group: u32, partition: u32) -> u64 {
        self.delivered
            .get(&(group, partition))
            .and_then(|r| r.get(&0))
            .copied()
            .unwrap_or(0)
    }

    fn floor_of(&self, key: (u32, u32)) -> u64 {
        self.floor.get(&key).copied().unwrap_or(0)
    }

    /// The operation ended without a result (failed, or unknown): nothing to check. A commit
    /// that failed may still have landed (an earlier send of it may yet be appended), so the
    /// offsets it was sent with stay possible.
    pub fn ended(&mut self, client: u32, op: u64) {
        self.pending.remove(&(client, op));
    }

    /// The commit `op` of `client` was acknowledged.
    pub fn committed(&mut self, client: u32, op: u64) -> Result<(), Violation> {
        let Some(Pending::Commit {
            key: (group, partition),
            member,
            generation,
            offset,
            floor,
            newest_generation,
        }) = self.pending.remove(&(client, op))
        else {
            return Ok(());
        };
        let subject = format!(
            "c{client}'s commit of g{group} partition {partition} offset {offset} (m{member}, generation {generation})"
        );
        if offset < floor && !self.lossy {
            return Err(Violation::new(
                Invariant::GroupOffsets,
                subject,
                format!("refused: the group had committed {floor} before it was sent"),
                "acknowledged: the committed offset went back",
            ));
        }
        if generation < newest_generation && !self.lossy {
            return Err(Violation::new(
                Invariant::GroupGeneration,
                subject,
                format!(
                    "refused: the group was in generation {newest_generation} before it was sent"
                ),
                format!("acknowledged in the stale generation {generation}"),
            ));
        }
        self.check_delivered(group, partition, offset, &subject)?;
        let f = self.floor.entry((group, partition)).or_default();
        *f = (*f).max(offset);
        Ok(())
    }

    /// The read `op` of `client` answered `offset` (`None`: nothing committed).
    pub fn read(&mut self, client: u32, op: u64, offset: Option<u64>) -> Result<(), Violation> {
        let Some(Pending::Read {
            key: (group, partition),
            floor,
        }) = self.pending.remove(&(client, op))
        else {
            return Ok(());
        };
        let subject = format!("c{client}'s fetch-offset of g{group} partition {partition}");
        let seen = offset.unwrap_or(0);
        if !self.lossy && (seen < floor || (offset.is_none() && floor > 0)) {
            return Err(Violation::new(
                Invariant::GroupOffsets,
                subject,
                format!("at least {floor}: acknowledged or read before this fetch-offset was sent"),
                match offset {
                    Some(o) => format!("{o}"),
                    None => "no committed offset".to_string(),
                },
            ));
        }
        if let Some(o) = offset {
            let sent = self.sent.get(&(group, partition));
            if !sent.is_some_and(|s| s.contains(&o)) {
                return Err(Violation::new(
                    Invariant::GroupOffsets,
                    subject,
                    "an offset some member sent a commit with",
                    format!("{o}, which no commit ever carried"),
                ));
            }
            self.check_delivered(group, partition, o, &subject)?;
            let f = self.floor.entry((group, partition)).or_default();
            *f = (*f).max(o);
        }
        Ok(())
    }

    /// A join of `op` answered `generation`: generations never go back.
    pub fn joined(&mut self, client: u32, op: u64, generation: u64) -> Result<(), Violation> {
        let Some(Pending::Join {
            group,
            newest_generation,
        }) = self.pending.remove(&(client, op))
        else {
            return Ok(());
        };
        if generation < newest_generation && !self.lossy {
            return Err(Violation::new(
                Invariant::GroupGeneration,
                format!("c{client}'s join of g{group}"),
                format!(
                    "a generation of at least {newest_generation}: the group was there before it was sent"
                ),
                format!("generation {generation}"),
            ));
        }
        let g = self.newest_generation.entry(group).or_default();
        *g = (*g).max(generation);
        self.joined_in.insert(client, (group, generation));
        Ok(())
    }

    fn check_delivered(
        &self,
        group: u32,
        partition: u32,
        offset: u64,
        subject: &str,
    ) -> Result<(), Violation> {
        let prefix = self.delivered_prefix(group, partition);
        if offset > prefix {
            return Err(Violation::new(
                Invariant::GroupNoSkip,
                subject.to_string(),
                format!("every record below {offset} delivered to a member of g{group}"),
                format!("records {prefix}..{offset} never delivered to the group"),
            ));
        }
        Ok(())
    }

    /// Every (group, partition) with the highest committed offset acknowledged or read.
    pub fn floors(&self) -> impl Iterator<Item = ((u32, u32), u64)> + '_ {
        self.floor.iter().map(|(&k, &v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn deliveries_merge_into_a_prefix() {
        let mut o = GroupOracle::new();
        o.delivered(0, 1, 5, 9);
        assert_eq!(o.delivered_prefix(0, 1), 0);
        o.delivered(0, 1, 0, 5);
        assert_eq!(o.delivered_prefix(0, 1), 9);
        o.delivered(0, 1, 2, 4);
        o.delivered(0, 1, 9, 12);
        assert_eq!(o.delivered_prefix(0, 1), 12);
    }

    #[test]
    fn a_commit_below_the_floor_fires() {
        let mut o = GroupOracle::new();
        o.delivered(0, 0, 0, 10);
        o.invoke_commit(5, 1, 0, 1, 1, 0, 8);
        assert_eq!(o.committed(5, 1), Ok(()));
        o.invoke_commit(5, 2, 0, 1, 1, 0, 3);
        let v = o.committed(5, 2).unwrap_err();
        assert_eq!(v.invariant, Invariant::GroupOffsets);
    }

    #[test]
    fn a_commit_past_what_was_delivered_fires() {
        let mut o = GroupOracle::new();
        o.delivered(0, 0, 0, 4);
        o.invoke_commit(5, 1, 0, 1, 1, 0, 6);
        let v = o.committed(5, 1).unwrap_err();
        assert_eq!(v.invariant, Invariant::GroupNoSkip);
        assert_eq!(v.actual, "records 4..6 never delivered to the group");
    }

    #[test]
    fn a_stale_generation_commit_fires() {
        let mut o = GroupOracle::new();
        o.delivered(0, 0, 0, 4);
        o.invoke_join(6, 1, 0);
        assert_eq!(o.joined(6, 1, 3), Ok(()));
        o.invoke_commit(5, 1, 0, 1, 2, 0, 2);
        assert_eq!(
            o.committed(5, 1).map_err(|v| v.invariant),
            Err(Invariant::GroupGeneration)
        );
    }

    #[test]
    fn a_lost_or_phantom_committed_offset_fires() {
        let mut o = GroupOracle::new();
        o.delivered(0, 0, 0, 10);
        o.invoke_commit(5, 1, 0, 1, 1, 0, 7);
        assert_eq!(o.committed(5, 1), Ok(()));
        o.invoke_read(5, 2, 0, 0);
        assert_eq!(
            o.read(5, 2, Some(3)).map_err(|v| v.invariant),
            Err(Invariant::GroupOffsets)
        );
        o.invoke_read(5, 3, 0, 0);
        assert_eq!(
            o.read(5, 3, None).map_err(|v| v.invariant),
            Err(Invariant::GroupOffsets)
        );
        o.invoke_read(5, 4, 0, 0);
        assert_eq!(
            o.read(5, 4, Some(9)).map_err(|v| v.actual),
            Err("9, which no commit ever carried".to_string())
        );
        o.invoke_read(5, 5, 0, 0);
        assert_eq!(o.read(5, 5, Some(7)), Ok(()));
    }
}
