//! sq-core: the vocabulary every other sq crate shares.
//!
//! Ids and simulated time, the CRC32-checked frame codec that the WAL and the object-store segment
//! format are made of, the batch body codec, and the client protocol with its typed errors. Nothing
//! here performs I/O or reads a clock.

pub mod codec;
pub mod group;
pub mod group_proto;
pub mod ids;
pub mod peer;
pub mod probe;
pub mod proto;
pub mod time;

pub use codec::{BatchMeta, EntryKind, FrameError, FrameHeader};
pub use group::GroupOp;
pub use group_proto::{GroupError, GroupOk, GroupRequest};
pub use ids::{ClientId, GroupId, MemberId, NodeId, Offset, PartitionId, ProducerId};
pub use peer::{AppendReply, AppendRequest, PeerMsg, SnapshotRequest, VoteReply, VoteRequest};
pub use probe::{Probe, Probes};
pub use proto::{
    Definiteness, FetchError, FetchOk, FetchRequest, FetchedRecord, ProduceError, ProduceOk,
    ProduceRequest, Reply, Request,
};
pub use time::Time;
