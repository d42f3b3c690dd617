//! The client history: each operation as invoke, then ok, fail or info.

use bytes::Bytes;
use sq_core::{
    ClientId, FetchedRecord, GroupOk, GroupRequest, NodeId, Offset, PartitionId, ProducerId, Time,
};

/// What an operation asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Append `records` to `partition` as (`producer`, `seq`).
    Produce {
        /// The partition.
        partition: PartitionId,
        /// The idempotent producer.
        producer: ProducerId,
        /// Its sequence number.
        seq: u64,
        /// The records.
        records: Vec<Bytes>,
    },
    /// Read `partition` from `offset` on.
    Fetch {
        /// The partition.
        partition: PartitionId,
        /// The first offset wanted.
        offset: Offset,
    },
    /// A consumer-group request (join, leave, commit, fetch-offset), as sent.
    Group(GroupRequest),
}

/// How an operation ended, or that it began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The operation was sent.
    Invoke(Op),
    /// A produce was acked at `base_offset`.
    Produced {
        /// The first record's offset.
        base_offset: Offset,
    },
    /// A fetch returned these records.
    Fetched {
        /// The records, contiguous from the requested offset.
        records: Vec<FetchedRecord>,
        /// The partition's high watermark then.
        high_watermark: Offset,
    },
    /// A group request succeeded with this answer.
    Group(GroupOk),
    /// It definitely did not happen.
    Fail(String),
    /// It may or may not have happened.
    Info(String),
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEvent {
    /// When it happened.
    pub time: Time,
    /// Which client.
    pub client: ClientId,
    /// The operation's id, unique per client; invoke and completion share it.
    pub op: u64,
    /// The node whose reply completed the operation; `None` for an invocation and for a
    /// give-up. With several nodes a request may be sent to each in turn, so a checker needs to
    /// know which one's word it is.
    pub node: Option<NodeId>,
    /// What happened.
    pub outcome: Outcome,
}
