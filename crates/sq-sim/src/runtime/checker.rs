//! What the checks remember, outside the world: the reference model, the checker's own images of
//! the disks, the acked batches, the watermarks seen, what injected faults excuse, and when the
//! cluster was last disturbed. The world feeds it; it never reaches into a node.

use super::*;
use crate::invariants::raft::RaftChecker;

/// The final read-back of one partition.
pub(super) struct ReadBack {
    pub records: Vec<(u64, Option<Bytes>)>,
    pub done: bool,
}

/// When the node-to-node links last changed, the cut links and the clogged ones then.
pub(super) type Links = (Time, BTreeSet<(u32, u32)>, Vec<(Addr, Addr, u64)>);

/// The checker's state.
pub(super) struct Checker {
    pub oracle: LogOracle,
    /// Per (consumer, partition): the offset its next fetch must start at.
    pub consumer_next: BTreeMap<(u32, u32), u64>,
    /// Per partition: offsets hit by an injected corruption on every copy.
    pub excused: BTreeMap<u32, BTreeSet<u64>>,
    pub readback: Option<ReadBack>,
    /// The highest watermark each node has reported per partition.
    pub watermarks: Watermarks,
    /// Per node: the checker's own parse of its disk's durable bytes, kept up to date.
    pub images: Vec<DurableImage>,
    /// Every acked batch by (partition, base offset), for invariant 1.
    pub acked: BTreeMap<(u32, u64), AckedBatch>,
    /// When something last happened that costs clients time; see [`Sim::disturbed`].
    pub last_disturbance: Time,
    /// Since when every node has been up, every disk has had room and the network has been
    /// lossless, if that is so now.
    pub healthy_since: Option<Time>,
    /// Per node: its batches the harness damaged after they were synced, by (partition, base
    /// offset): (producer, sequence, records). They still count as synced copies.
    pub damaged_copies: Vec<crate::invariants::majority::DamagedCopies>,
    /// The one replica of a cluster whose storage may lie in this run (the fault atlas: one bad
    /// copy of any item at most), once damage has been injected.
    pub faulty_disk: Option<u32>,
    /// Raft's safety properties.
    pub raft: RaftChecker,
    /// When a leader crashed, until a leader of a later term is seen (for the failover figure).
    pub leader_lost: Option<(Time, u64)>,
    /// Restarted replicas catching up: (node, commit index to reach, its commit index then,
    /// since when).
    pub catching_up: Vec<(u32, u64, u64, Time)>,
    /// Per node: since when the partition in force has cut it off from every majority.
    pub isolated_since: Vec<Option<Time>>,
    /// Per node, while it is cut off from every majority: the highest term it may reach (the
    /// cluster's highest when it was cut off, plus one for a pre-vote already granted).
    pub term_cap: Vec<Option<u64>>,
    /// The highest term any node has reported (its own durable term included).
    pub highest_term: u64,
    /// The longest extra delay any clogged link has had in this run, ns: a message sent before
    /// a partition may arrive that much later.
    pub longest_clog: u64,
    /// When the node-to-node links last changed (a partition, a clog, a heal), and what they
    /// were then: cut links and clogged ones.
    pub links: Links,
    /// Per node: the leader whose append it last took, that leader's term, and when.
    pub heard_leader: Vec<Option<(u32, u64, Time)>>,
    /// When each term's leader was first seen leading.
    pub leader_since: BTreeMap<u64, (u32, Time)>,
    /// Per node: the commit index it last reported (a replica that cut a damaged log reports
    /// less, and its high watermarks start afresh).
    pub last_commit: Vec<u64>,
    /// The consumer groups' reference model.
    pub groups: GroupOracle,
    /// Per (group member client, partition): where its next fetch must start (its position
    /// after a fetch-offset told it the committed offset, then after each fetch).
    pub member_next: BTreeMap<(u32, u32), u64>,
    /// Snapshots sent that their follower has not answered since: (leader, term, follower).
    pub snapshots_unanswered: BTreeSet<(u32, u64, u32)>,
}

impl Checker {
    /// A checker for `nodes` nodes that has seen nothing yet.
    pub fn new(nodes: usize) -> Checker {
        Checker {
            oracle: LogOracle::new(),
            consumer_next: BTreeMap::new(),
            excused: BTreeMap::new(),
            readback: None,
            watermarks: Watermarks::default(),
            images: vec![DurableImage::default(); nodes],
            acked: BTreeMap::new(),
            last_disturbance: Time::ZERO,
            healthy_since: Some(Time::ZERO),
            damaged_copies: vec![BTreeMap::new(); nodes],
            faulty_disk: None,
            raft: RaftChecker::default(),
            leader_lost: None,
            catching_up: Vec::new(),
            isolated_since: vec![None; nodes],
            last_commit: vec![0; nodes],
            term_cap: vec![None; nodes],
            highest_term: 0,
            longest_clog: 0,
            links: (Time::ZERO, BTreeSet::new(), Vec::new()),
            leader_since: BTreeMap::new(),
            heard_leader: vec![None; nodes],
            groups: GroupOracle::new(),
            member_next: BTreeMap::new(),
            snapshots_unanswered: BTreeSet::new(),
        }
    }
}
