//! Why a node could not start.

use sq_core::Definiteness;
use sq_storage::{MetaError, SnapshotError, WalError};
use thiserror::Error;

/// Why [`crate::Node::open`] failed. A node that fails to open stays down; nothing was served.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NodeError {
    /// The metadata could not be read or written.
    #[error("metadata: {0}")]
    Meta(#[from] MetaError),
    /// The WAL could not be recovered.
    #[error("WAL recovery: {0}")]
    Wal(#[from] WalError),
    /// The snapshot could not be read.
    #[error("snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The WAL holds entries that contradict each other (offsets that do not follow on).
    #[error("WAL entry {index} is inconsistent: {detail}")]
    Inconsistent {
        /// The entry's index.
        index: u64,
        /// What does not fit.
        detail: String,
    },
}

impl NodeError {
    /// Opening either happened or did not: a failed open changed nothing a client saw.
    pub fn definiteness(&self) -> Definiteness {
        Definiteness::Definite
    }
}
