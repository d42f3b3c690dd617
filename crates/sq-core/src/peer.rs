//! The replication protocol between nodes (Raft with PreVote): what one replica sends another.
//!
//! Entries travel as the WAL's own frames, CRC and all, so that a follower checks every byte it
//! is sent before it writes it, and stores exactly what the leader holds.

use crate::ids::NodeId;
use bytes::Bytes;
use std::fmt;

/// A message from one replica to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMsg {
    /// A candidate (or pre-candidate) asks for a vote.
    Vote(VoteRequest),
    /// The answer to a [`PeerMsg::Vote`].
    VoteReply(VoteReply),
    /// A leader sends entries (none: a heartbeat) and its commit index.
    Append(AppendRequest),
    /// The answer to a [`PeerMsg::Append`] or a [`PeerMsg::Snapshot`].
    AppendReply(AppendReply),
    /// A leader sends its snapshot to a follower that lacks entries the leader no longer holds
    /// in its WAL (they are in the object store).
    Snapshot(SnapshotRequest),
}

/// A leader's snapshot for a follower to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// The leader's term.
    pub term: u64,
    /// The leader.
    pub leader: NodeId,
    /// The snapshot's last index.
    pub last_index: u64,
    /// The snapshot as stored (sq-storage's `Snapshot` bytes, checksummed).
    pub data: Bytes,
}

/// A request for a vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteRequest {
    /// The term the candidate stands in (for a pre-vote: the term it would stand in).
    pub term: u64,
    /// Who asks.
    pub candidate: NodeId,
    /// The index of the candidate's last entry.
    pub last_index: u64,
    /// The term of the candidate's last entry.
    pub last_term: u64,
    /// A pre-vote changes nothing at the voter: it asks whether a real vote would be granted.
    pub pre_vote: bool,
}

/// The answer to a vote request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteReply {
    /// The voter's term (for a granted pre-vote: the term asked about).
    pub term: u64,
    /// Whether the vote is granted.
    pub granted: bool,
    /// Whether this answers a pre-vote.
    pub pre_vote: bool,
}

/// Entries from a leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    /// The leader's term.
    pub term: u64,
    /// The leader.
    pub leader: NodeId,
    /// The index of the entry just before `entries`.
    pub prev_index: u64,
    /// The term of that entry (0 for index 0).
    pub prev_term: u64,
    /// Encoded WAL frames, consecutive from `prev_index + 1`.
    pub entries: Vec<Bytes>,
    /// The leader's commit index.
    pub commit: u64,
    /// The leader's last index when it sent this: a follower that holds its log that far holds
    /// every entry of the leader's term it could ever have held.
    pub last_index: u64,
}

/// A follower's answer to entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendReply {
    /// The follower's term.
    pub term: u64,
    /// Whether the previous entry matched.
    pub success: bool,
    /// On success, the last index the follower holds durably and knows to match the leader's
    /// log; on failure, 0.
    pub match_index: u64,
    /// The follower's last index.
    pub last_index: u64,
    /// On failure, the previous index of the append refused (so that the leader can tell a
    /// refusal of its latest probe from a stale one); 0 on success. At or below `last_index` the
    /// follower holds another entry there (a conflict); above it, entries are missing before
    /// it (a gap, often only reordering).
    pub rejected: u64,
    /// On failure, where the leader should look for a match: the follower's last index after a
    /// gap, the entry before the conflicting term's first after a conflict.
    pub hint: u64,
    /// The follower cut its log to repair damage since it last acknowledged: it may hold less
    /// than it acknowledged, and the leader must not trust those acknowledgements.
    pub lost: bool,
}

impl PeerMsg {
    /// The term the sender was in.
    pub fn term(&self) -> u64 {
        match self {
            PeerMsg::Vote(m) => m.term,
            PeerMsg::VoteReply(m) => m.term,
            PeerMsg::Append(m) => m.term,
            PeerMsg::AppendReply(m) => m.term,
            PeerMsg::Snapshot(m) => m.term,
        }
    }

    /// The bytes of entries it carries.
    pub fn entry_bytes(&self) -> usize {
        match self {
            PeerMsg::Append(m) => m.entries.iter().map(Bytes::len).sum(),
            PeerMsg::Snapshot(m) => m.data.len(),
            _ => 0,
        }
    }
}

/// One line for traces: `pre-vote? t4 n2 last 7@3`, `append t4 n0 after 7@3 +2 commit 6`.
impl fmt::Display for PeerMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pre = |p: bool| if p { "pre-vote" } else { "vote" };
        match self {
            PeerMsg::Vote(m) => write!(
                f,
                "{}? t{} {} last {}@{}",
                pre(m.pre_vote),
                m.term,
                m.candidate,
                m.last_index,
                m.last_term
            ),
            PeerMsg::VoteReply(m) => write!(
                f,
                "{} {} t{}",
                pre(m.pre_vote),
                if m.granted { "granted" } else { "refused" },
                m.term
            ),
            PeerMsg::Append(m) => write!(
                f,
                "append t{} {} after {}@{} +{} commit {}",
                m.term,
                m.leader,
                m.prev_index,
                m.prev_term,
                m.entries.len(),
                m.commit
            ),
            PeerMsg::AppendReply(m) if m.success => {
                write!(f, "append ok t{} match {}", m.term, m.match_index)
            }
            PeerMsg::AppendReply(m) => write!(
                f,
                "append refused t{} after {} last {} hint {}{}",
                m.term,
                m.rejected,
                m.last_index,
                m.hint,
                if m.lost { " (repairing)" } else { "" }
            ),
            PeerMsg::Snapshot(m) => write!(
                f,
                "snapshot t{} {} upto {} ({} bytes)",
                m.term,
                m.leader,
                m.last_index,
                m.data.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn peer_messages_print_one_line() {
        let vote = PeerMsg::Vote(VoteRequest {
            term: 4,
            candidate: NodeId(2),
            last_index: 7,
            last_term: 3,
            pre_vote: true,
        });
        assert_eq!(vote.to_string(), "pre-vote? t4 n2 last 7@3");
        let append = PeerMsg::Append(AppendRequest {
            term: 4,
            leader: NodeId(0),
            prev_index: 7,
            prev_term: 3,
            entries: vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")],
            commit: 6,
            last_index: 9,
        });
        assert_eq!(append.to_string(), "append t4 n0 after 7@3 +2 commit 6");
        assert_eq!(append.entry_bytes(), 3);
        assert_eq!(append.term(), 4);
    }
}
