//! Raft's safety properties, checked on what the replicas report (their status, as a metric
//! would say it) and on the checker's own images of their disks: at most one leader per term,
//! log matching (the same index and term is the same entry, on every replica, byte for byte),
//! leader completeness (a new leader holds every entry committed before), and a committed
//! prefix that never changes. Each costs what changed since it last ran.

use super::image::EntryId;
use sq_model::{Invariant, Violation};
use std::collections::BTreeMap;

/// What the checks remember.
#[derive(Clone, Debug, Default)]
pub struct RaftChecker {
    /// The leader of each term seen.
    leaders: BTreeMap<u64, u32>,
    /// Every durable entry seen on any replica, by (index, term), and the first node seen with it.
    entries: BTreeMap<(u64, u64), (EntryId, u32)>,
    /// The committed log as first seen durable and committed on a replica: index → (term, id).
    committed: BTreeMap<u64, (u64, EntryId)>,
    /// Per term of a reporting replica: the highest index it reported committed in that term.
    /// An entry reported committed by a replica in term `t` was committed in term `t` or
    /// earlier, so every leader of a later term must hold it.
    committed_by_term: BTreeMap<u64, u64>,
    /// Per node: the committed indexes already checked against `committed`.
    checked: BTreeMap<u32, u64>,
    /// Per term: its leader's commit index when it took office, and the index of the entry it
    /// began its term with.
    took_office: BTreeMap<u64, (u64, u64)>,
}

impl RaftChecker {
    /// The last entry committed in a term before `term`, as first seen: every leader of
    /// `term` must hold it.
    pub fn must_hold(&self, term: u64) -> Option<(u64, u64, EntryId)> {
        let index = self
            .committed_by_term
            .range(..term)
            .map(|(_, &i)| i)
            .max()?;
        let &(t, id) = self.committed.get(&index)?;
        Some((index, t, id))
    }

    /// Leader completeness, on the entry `held` that the new leader `node` of `term` holds at
    /// [`RaftChecker::must_hold`]'s index (from its written log: what it will replicate).
    pub fn leader_holds(
        &self,
        node: u32,
        term: u64,
        held: Option<(u64, EntryId)>,
    ) -> Result<(), Violation> {
        match self.must_hold(term) {
            Some((index, t, id)) if held != Some((t, id)) => Err(Violation::new(
                Invariant::LeaderCompleteness,
                format!("n{node}, new leader of term {term}"),
                format!("a log holding committed entry {index} (term {t}: {id})"),
                match held {
                    Some((ht, hid)) => format!("term {ht}: {hid} at index {index}"),
                    None => format!("no entry at index {index}"),
                },
            )),
            _ => Ok(()),
        }
    }

    /// The leader of `term` reports commit index `commit` and a log ending at `last_index`.
    /// The first report, made as it takes office, gives the index of its term's first entry
    /// (its no-op): its commit index may not move until it reaches that one, because before
    /// that it could only have moved by counting replicas of an earlier term's entries.
    pub fn leader_commit(
        &mut self,
        term: u64,
        commit: u64,
        last_index: u64,
    ) -> Result<(), Violation> {
        let &mut (start, first_own) = self.took_office.entry(term).or_insert((commit, last_index));
        if commit > start && commit < first_own {
            return Err(Violation::new(
                Invariant::CommitOwnTerm,
                format!("the leader of term {term}"),
                format!(
                    "its commit index at {start} until the entry it began its term with, at \
                     {first_own}, is on a majority"
                ),
                format!("commit index {commit}: it counted replicas of an earlier term's entry"),
            ));
        }
        Ok(())
    }

    /// Whether the leader of `term`, at commit index `commit`, has committed the entry it began
    /// its term with (true when the checks never saw it take office).
    pub fn leader_ready(&self, term: u64, commit: u64) -> bool {
        self.took_office
            .get(&term)
            .is_none_or(|&(_, first_own)| commit >= first_own)
    }

    /// Whether `term` has a leader on record yet.
    pub fn has_leader(&self, term: u64) -> bool {
        self.leaders.contains_key(&term)
    }

    /// A node reports that it leads `term`; its log ends at `last_index`.
    pub fn leader(&mut self, node: u32, term: u64, last_index: u64) -> Result<(), Violation> {
        match self.leaders.get(&term) {
            Some(&other) if other != node => Err(Violation::new(
                Invariant::OneLeaderPerTerm,
                format!("term {term}"),
                format!("one leader: n{other}"),
                format!("n{other} and n{node} both lead it"),
            )),
            Some(_) => Ok(()),
            None => {
                self.leaders.insert(term, node);
                // Leader completeness: everything committed in earlier terms is in its log. (A
                // leader of an older term may still be elected late, by a delayed vote, while
                // a later term commits more: those it need not hold.)
                let must_hold = self
                    .committed_by_term
                    .range(..term)
                    .map(|(_, &i)| i)
                    .max()
                    .unwrap_or(0);
                match self.committed.get(&must_hold) {
                    Some(&(t, id)) if must_hold > last_index => Err(Violation::new(
                        Invariant::LeaderCompleteness,
                        format!("n{node}, new leader of term {term}"),
                        format!("a log holding committed entry {must_hold} (term {t}: {id})"),
                        format!("a log ending at index {last_index}"),
                    )),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Node `node`'s durable WAL now holds `id` at `index` in `term`.
    pub fn durable(
        &mut self,
        node: u32,
        index: u64,
        term: u64,
        id: EntryId,
    ) -> Result<(), Violation> {
        match self.entries.get(&(index, term)) {
            Some(&(seen, first)) if seen != id => Err(Violation::new(
                Invariant::LogMatching,
                format!("index {index} term {term}"),
                format!("the entry n{first} holds there: {seen}"),
                format!("n{node} holds {id}"),
            )),
            Some(_) => Ok(()),
            None => {
                self.entries.insert((index, term), (id, node));
                Ok(())
            }
        }
    }

    /// Node `node`, in term `term`, reports entries up to `upto` committed and durable; `entry`
    /// reads its durable image. Each committed index is compared with what was first seen
    /// committed there; a replica that reports less than before (it restarted, or cut a damaged
    /// log) is checked again from there as it catches up.
    pub fn committed(
        &mut self,
        node: u32,
        term: u64,
        upto: u64,
        entry: impl Fn(u64) -> Option<(u64, EntryId)>,
    ) -> Result<(), Violation> {
        let by_term = self.committed_by_term.entry(term).or_insert(0);
        *by_term = (*by_term).max(upto);
        let checked = self.checked.entry(node).or_insert(0);
        *checked = (*checked).min(upto);
        while *checked < upto {
            let index = *checked + 1;
            let Some((term, id)) = entry(index) else {
                // Not durable in the image (yet): checked when it is.
                return Ok(());
            };
            match self.committed.get(&index) {
                Some(&(t, seen)) if (t, seen) != (term, id) => {
                    return Err(Violation::new(
                        Invariant::CommittedPrefixStable,
                        format!("committed index {index} on n{node}"),
                        format!("term {t}: {seen}"),
                        format!("term {term}: {id}"),
                    ))
                }
                Some(_) => {}
                None => {
                    self.committed.insert(index, (term, id));
                }
            }
            *checked = index;
        }
        Ok(())
    }

    /// The committed log as seen: its last index.
    pub fn committed_upto(&self) -> u64 {
        self.committed.last_key_value().map_or(0, |(i, _)| *i)
    }

    /// The committed entry at `index`, as first seen.
    pub fn committed_entry(&self, index: u64) -> Option<(u64, EntryId)> {
        self.committed.get(&index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use sq_core::{BatchMeta, EntryKind};

    fn id(crc: u32) -> EntryId {
        EntryId {
            kind: EntryKind::Batch,
            batch: BatchMeta::default(),
            payload_len: 4,
            payload_crc: crc,
        }
    }

    #[test]
    fn two_leaders_in_a_term_fire() {
        let mut c = RaftChecker::default();
        assert_eq!(c.leader(0, 3, 0), Ok(()));
        assert_eq!(c.leader(0, 3, 5), Ok(()));
        let v = c.leader(2, 3, 5).expect_err("fires");
        assert_eq!(v.invariant, Invariant::OneLeaderPerTerm);
    }

    #[test]
    fn the_same_index_and_term_with_other_bytes_fires() {
        let mut c = RaftChecker::default();
        assert_eq!(c.durable(0, 4, 2, id(1)), Ok(()));
        assert_eq!(c.durable(1, 4, 2, id(1)), Ok(()));
        assert_eq!(c.durable(1, 4, 3, id(9)), Ok(()));
        let v = c.durable(2, 4, 2, id(7)).expect_err("fires");
        assert_eq!(v.invariant, Invariant::LogMatching);
    }

    #[test]
    fn a_changed_committed_entry_and_an_incomplete_leader_fire() {
        let mut c = RaftChecker::default();
        let log = |i: u64| Some((1, id(i as u32)));
        assert_eq!(c.committed(0, 1, 3, log), Ok(()));
        assert_eq!(c.committed_upto(), 3);
        let other = |i: u64| Some((if i == 3 { 2 } else { 1 }, id(i as u32)));
        let v = c.committed(1, 1, 3, other).expect_err("fires");
        assert_eq!(v.invariant, Invariant::CommittedPrefixStable);
        let v = c.leader(2, 5, 2).expect_err("fires");
        assert_eq!(v.invariant, Invariant::LeaderCompleteness);
    }
}
