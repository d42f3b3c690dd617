//! What a replica keeps of the entries it no longer holds in its WAL: its snapshot, and the
//! state the snapshot encodes (each partition's first offset after it, the producer table).

use crate::error::NodeError;
use crate::groups::GroupTable;
use crate::producers::ProducerTable;
use bytes::{Buf, BufMut, Bytes};
use sq_storage::Snapshot;

/// The log up to the snapshot's last index, as the node uses it.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    /// The snapshot as last stored (or installed); `last_index` 0 when there is none.
    pub snapshot: Snapshot,
    /// The producer table after the snapshot's last entry.
    pub producers: ProducerTable,
    /// Per partition, the offset the first record after the snapshot gets.
    pub starts: Vec<u64>,
    /// The consumer groups after the snapshot's last entry.
    pub groups: GroupTable,
}

impl Base {
    /// No snapshot: the log starts at index 1, every partition at offset 0.
    pub fn empty(partitions: u32, window: usize) -> Base {
        Base {
            snapshot: Snapshot::default(),
            producers: ProducerTable::new(window),
            starts: vec![0; partitions as usize],
            groups: GroupTable::default(),
        }
    }

    /// The snapshot's last index (0: none).
    pub fn last_index(&self) -> u64 {
        self.snapshot.last_index
    }

    /// The state bytes of a snapshot: partition starts, the producer table, the groups.
    pub fn encode_state(starts: &[u64], producers: &ProducerTable, groups: &GroupTable) -> Bytes {
        let mut out = Vec::new();
        out.put_u32_le(starts.len() as u32);
        for s in starts {
            out.put_u64_le(*s);
        }
        producers.encode(&mut out);
        groups.encode(&mut out);
        Bytes::from(out)
    }

    /// The base a stored or received snapshot describes, for a node with `partitions`.
    pub fn from_snapshot(snapshot: Snapshot, partitions: u32) -> Result<Base, NodeError> {
        let bad = |detail: &str| NodeError::Inconsistent {
            index: snapshot.last_index,
            detail: format!("snapshot state: {detail}"),
        };
        let mut b: &[u8] = &snapshot.state;
        if b.remaining() < 4 {
            return Err(bad("truncated"));
        }
        let n = b.get_u32_le();
        if n != partitions || b.remaining() < 8 * n as usize {
            return Err(bad(&format!(
                "{n} partitions, expected {partitions}, or truncated"
            )));
        }
        let starts = (0..n).map(|_| b.get_u64_le()).collect();
        let producers = ProducerTable::decode(&mut b).ok_or_else(|| bad("producer table"))?;
        let groups = GroupTable::decode(&mut b).ok_or_else(|| bad("group table"))?;
        if b.has_remaining() {
            return Err(bad("trailing bytes"));
        }
        Ok(Base {
            snapshot,
            producers,
            starts,
            groups,
        })
    }
}
