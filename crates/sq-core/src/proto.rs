//! The client protocol: requests a producer or consumer sends to a node, and the replies.
//!
//! Every error says whether it is *definite* (the operation did not happen and never will) or
//! *indeterminate* (it may have happened, or may still). The client history records the two
//! differently, as Jepsen does: `fail` versus `info`.

use crate::group_proto::{GroupError, GroupOk, GroupRequest};
use crate::ids::{NodeId, Offset, PartitionId, ProducerId};
use bytes::Bytes;
use thiserror::Error;

/// Whether a failed operation is known not to have taken effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Definiteness {
    /// It did not happen and never will.
    Definite,
    /// It may have happened, or may still happen.
    Indeterminate,
}

/// Append records to a partition, idempotently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceRequest {
    /// The partition to append to.
    pub partition: PartitionId,
    /// The idempotent producer.
    pub producer: ProducerId,
    /// The producer's epoch. A producer starts a new epoch (at sequence 0) after any produce
    /// that was not acked, so that a sequence it gave up on can never land later.
    pub epoch: u32,
    /// The producer's sequence number within its epoch: a retry carries the same one.
    pub seq: u64,
    /// The records, given offsets `base_offset..base_offset + len` if acked.
    pub records: Vec<Bytes>,
}

/// Read committed records of a partition from an offset on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    /// The partition to read.
    pub partition: PartitionId,
    /// The first offset wanted.
    pub offset: Offset,
    /// At most this many records are returned.
    pub max_records: u32,
}

/// A request from a client to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Append records.
    Produce(ProduceRequest),
    /// Read records.
    Fetch(FetchRequest),
    /// A consumer-group operation.
    Group(GroupRequest),
}

/// A produce was acked: its records are committed at `base_offset..`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProduceOk {
    /// The offset of the batch's first record.
    pub base_offset: Offset,
}

/// One record as served to a consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Its offset in the partition.
    pub offset: Offset,
    /// Its value, exactly as produced.
    pub value: Bytes,
}

/// Committed records from the requested offset on, contiguous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOk {
    /// The records, offsets `request.offset..` without gaps; empty at the end of the log.
    pub records: Vec<FetchedRecord>,
    /// The offset the next committed record will get.
    pub high_watermark: Offset,
}

/// Why a produce was not acked.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProduceError {
    /// The node's disk has no room; nothing of the batch was appended, and the refusal is
    /// recorded in the log, so no copy of this request is ever appended later.
    #[error("storage full: nothing was appended")]
    StorageFull,
    /// No such partition.
    #[error("{0} does not exist")]
    UnknownPartition(PartitionId),
    /// The sequence is older than the producer's next one but no longer remembered: it was
    /// appended (or refused) long ago, and its outcome is not known any more.
    #[error("sequence {seq} of {producer} is older than its next sequence {next}: outcome no longer known")]
    StaleSequence {
        /// The producer.
        producer: ProducerId,
        /// The sequence sent.
        seq: u64,
        /// The next sequence the node expects of it.
        next: u64,
    },
    /// The sequence skips ahead of the one the node expects: it is refused, and a correct
    /// producer never sends a later sequence of an epoch before the earlier one was acked.
    #[error("sequence {seq} of {producer} epoch {epoch} is out of order: expected {expected}")]
    OutOfOrderSequence {
        /// The producer.
        producer: ProducerId,
        /// The epoch sent.
        epoch: u32,
        /// The sequence sent.
        seq: u64,
        /// The sequence the node expects next in that epoch.
        expected: u64,
    },
    /// The producer has since started a newer epoch (recorded in the log): this request can
    /// never be appended.
    #[error("{producer} epoch {epoch} is fenced by its epoch {current}")]
    ProducerFenced {
        /// The producer.
        producer: ProducerId,
        /// The epoch sent.
        epoch: u32,
        /// The epoch recorded in the log.
        current: u32,
    },
    /// The batch holds more records than one batch may.
    #[error("batch of {count} records exceeds the limit of {max}")]
    TooManyRecords {
        /// Records in the batch.
        count: usize,
        /// The limit.
        max: u32,
    },
    /// The batch holds no record: there is nothing to give an offset to.
    #[error("a batch must hold at least one record")]
    EmptyBatch,
    /// The batch is larger than a frame may be.
    #[error("batch of {0} bytes is too large")]
    TooLarge(usize),
    /// The disk is so full that not even the refusal could be recorded: nothing was appended
    /// now, but a copy of this request may still land once there is room.
    #[error("disk full: nothing appended now, and the refusal could not be recorded")]
    DiskFull,
    /// The node could not make the batch durable; it may or may not be in the log.
    #[error("storage failed while appending: {0}")]
    StorageFailed(String),
    /// The node is recovering or shutting down; it may still commit the batch.
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// The node is not the leader: nothing was appended. `leader` is the node it believes
    /// leads, if it knows one.
    #[error("not the leader (leader: {})", leader.map_or("unknown".to_string(), |n| n.to_string()))]
    NotLeader {
        /// The leader this node last heard from in its current term.
        leader: Option<NodeId>,
    },
    /// The node was leader when it appended the batch and lost office before it committed:
    /// a later leader may still commit it.
    #[error("leadership changed before the batch committed; it may still commit")]
    LeaderChanged,
}

impl ProduceError {
    /// Whether the produce is known not to have taken effect.
    pub fn definiteness(&self) -> Definiteness {
        match self {
            ProduceError::StorageFull
            | ProduceError::UnknownPartition(_)
            | ProduceError::OutOfOrderSequence { .. }
            | ProduceError::ProducerFenced { .. }
            | ProduceError::TooManyRecords { .. }
            | ProduceError::EmptyBatch
            | ProduceError::TooLarge(_)
            | ProduceError::NotLeader { .. } => Definiteness::Definite,
            ProduceError::StaleSequence { .. }
            | ProduceError::DiskFull
            | ProduceError::StorageFailed(_)
            | ProduceError::Unavailable(_)
            | ProduceError::LeaderChanged => Definiteness::Indeterminate,
        }
    }
}

/// Why a fetch returned no records.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FetchError {
    /// The offset is outside `log_start..=high_watermark`.
    #[error("offset {requested} out of range {log_start}..={high_watermark}")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: Offset,
        /// The first offset still readable.
        log_start: Offset,
        /// The offset the next committed record will get.
        high_watermark: Offset,
    },
    /// No such partition.
    #[error("{0} does not exist")]
    UnknownPartition(PartitionId),
    /// The record at `offset` failed its CRC check and is not served; `next` is readable again.
    #[error("record at offset {offset} is corrupt on this node; next readable offset {next}")]
    Corrupt {
        /// The first corrupt offset.
        offset: Offset,
        /// The first offset after the corrupt batch.
        next: Offset,
    },
    /// The node could not read its storage.
    #[error("storage failed while reading: {0}")]
    StorageFailed(String),
    /// The node is not the leader; fetches are served by the leader only. `leader` is the node
    /// it believes leads, if it knows one.
    #[error("not the leader (leader: {})", leader.map_or("unknown".to_string(), |n| n.to_string()))]
    NotLeader {
        /// The leader this node last heard from in its current term.
        leader: Option<NodeId>,
    },
    /// The node leads but has not yet committed an entry of its term, so it does not know the
    /// high watermark yet (Raft thesis §6.4); ask again shortly.
    #[error("leader not ready: no entry of its term committed yet")]
    NotReady,
    /// The records asked for live in the object store, which did not answer; ask again later.
    #[error("object store unavailable: {0}")]
    StoreUnavailable(String),
}

impl FetchError {
    /// A read changes nothing, so every fetch error is definite: nothing was consumed.
    pub fn definiteness(&self) -> Definiteness {
        Definiteness::Definite
    }
}

/// A node's answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The answer to a produce.
    Produce(Result<ProduceOk, ProduceError>),
    /// The answer to a fetch.
    Fetch(Result<FetchOk, FetchError>),
    /// The answer to a group request.
    Group(Result<GroupOk, GroupError>),
}

/// One line for traces and logs, the only description of a request there is: `produce p1 e0
/// seq 4 → partition 0 ×3` or `fetch partition 1 from 7 max 10`. Record values are left out.
impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Produce(p) => write!(
                f,
                "produce {} e{} seq {} → {} ×{}",
                p.producer,
                p.epoch,
                p.seq,
                p.partition,
                p.records.len()
            ),
            Request::Fetch(r) => write!(
                f,
                "fetch {} from {} max {}",
                r.partition, r.offset, r.max_records
            ),
            Request::Group(g) => write!(f, "{g}"),
        }
    }
}

/// One line for traces and logs: `produced at 41`, `fetched 3 records (41..44) hw=50`, or the
/// error's own message after `produce refused:` / `fetch failed:`.
impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Produce(Ok(ok)) => write!(f, "produced at {}", ok.base_offset),
            Reply::Produce(Err(e)) => write!(f, "produce refused: {e}"),
            Reply::Fetch(Ok(ok)) => match (ok.records.first(), ok.records.last()) {
                (Some(a), Some(b)) => write!(
                    f,
                    "fetched {} records ({}..{}) hw={}",
                    ok.records.len(),
                    a.offset,
                    b.offset + 1,
                    ok.high_watermark
                ),
                _ => write!(f, "fetched 0 records hw={}", ok.high_watermark),
            },
            Reply::Fetch(Err(e)) => write!(f, "fetch failed: {e}"),
            Reply::Group(Ok(ok)) => write!(f, "{ok}"),
            Reply::Group(Err(e)) => write!(f, "group request refused: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn requests_and_replies_print_one_line() {
        let produce = Request::Produce(ProduceRequest {
            partition: PartitionId(0),
            producer: ProducerId(1),
            epoch: 2,
            seq: 4,
            records: vec![Bytes::from_static(b"a"); 3],
        });
        assert_eq!(produce.to_string(), "produce p1 e2 seq 4 → partition 0 ×3");
        let fetched = Reply::Fetch(Ok(FetchOk {
            records: vec![
                FetchedRecord {
                    offset: 7,
                    value: Bytes::new(),
                },
                FetchedRecord {
                    offset: 8,
                    value: Bytes::new(),
                },
            ],
            high_watermark: 9,
        }));
        assert_eq!(fetched.to_string(), "fetched 2 records (7..9) hw=9");
        let refused = Reply::Produce(Err(ProduceError::StorageFull));
        assert_eq!(
            refused.to_string(),
            "produce refused: storage full: nothing was appended"
        );
    }
}
