//! The WAL's error type.

use crate::disk::DiskError;
use sq_core::{Definiteness, FrameError};
use thiserror::Error;

/// Why a WAL operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WalError {
    /// The disk is full; the append was rolled back and nothing of it is in the log.
    #[error("no space left: the append was rolled back")]
    NoSpace,
    /// The disk failed; what it holds now is unknown.
    #[error("disk error: {0}")]
    Disk(#[from] DiskError),
    /// The entry's frame failed its CRC or header check; it is never served.
    #[error("entry {index} is corrupt: {source}")]
    Corrupt {
        /// The entry's index.
        index: u64,
        /// What the check found.
        source: FrameError,
    },
    /// No entry with this index is in the log.
    #[error("index {index} is outside the log {first}..={last}")]
    OutOfRange {
        /// The index asked for.
        index: u64,
        /// The first index held.
        first: u64,
        /// The last index held (first - 1 when empty).
        last: u64,
    },
    /// Recovery found damage whose extent it cannot bound; it will not guess.
    #[error("WAL unrecoverable at {file}@{pos}: {detail}")]
    Unrecoverable {
        /// The segment file.
        file: String,
        /// The byte position.
        pos: u64,
        /// What was found.
        detail: String,
    },
    /// Recovery found damage (a frame failing a checksum, a frame or segment out of place) and
    /// was asked to report it rather than act: nothing on disk was changed. Entries from `index`
    /// on may have been acknowledged and can no longer be trusted.
    #[error("WAL damaged at {file}@{pos}, index {index}: {detail}")]
    Damaged {
        /// The first index that cannot be trusted.
        index: u64,
        /// The segment file.
        file: String,
        /// The byte position.
        pos: u64,
        /// What was found.
        detail: String,
    },
    /// An earlier failure left memory and disk possibly out of step; reopen the WAL.
    #[error("WAL poisoned by an earlier failure: {0}")]
    Poisoned(String),
}

impl WalError {
    /// Whether the failed operation is known to have left the log unchanged.
    pub fn definiteness(&self) -> Definiteness {
        match self {
            WalError::NoSpace
            | WalError::Corrupt { .. }
            | WalError::OutOfRange { .. }
            | WalError::Unrecoverable { .. }
            | WalError::Damaged { .. } => Definiteness::Definite,
            WalError::Disk(_) | WalError::Poisoned(_) => Definiteness::Indeterminate,
        }
    }
}
