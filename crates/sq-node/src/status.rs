//! What a replica reports about itself, as a metric would: its role, term, leader and log
//! positions. Operators and the simulator's checks read it; nothing in it steers the node.

use sq_core::NodeId;

/// The part a replica plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for pre-votes: would it win an election? Its term has not moved.
    PreCandidate,
    /// Stands for election in its term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// What a replica reports about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The replica.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term (durable).
    pub term: u64,
    /// The leader it follows in this term, if it knows one (itself when it leads).
    pub leader: Option<NodeId>,
    /// The last index it knows committed.
    pub commit_index: u64,
    /// Its last log index.
    pub last_index: u64,
    /// The last index durable in its WAL.
    pub synced_index: u64,
    /// Whether it lost entries to damage and may not vote or stand until a leader has repaired
    /// its log.
    pub repairing: bool,
    /// The last index the applied manifest covers: the object store holds every entry up to
    /// it (0: none).
    pub tiered_upto: u64,
    /// The first index its WAL holds (the entries before are in its snapshot and the store).
    pub wal_start: u64,
    /// The objects in its applied manifest.
    pub objects: usize,
}
