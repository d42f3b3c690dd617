//! sq-storage: the write-ahead log and the node's metadata, over a [`Disk`] whose calls can fail.
//!
//! What is durable is exactly what was synced. The WAL is a series of segment files of frames
//! (see [`sq_core::codec`]); recovery truncates a torn tail, and, as asked ([`OnDamage`]), keeps
//! damaged frames as known holes that are never served and refuses to guess when damage cannot
//! be bounded (a node alone), or reports damage and cuts the log before it (a replica that can be
//! repaired from its peers).
//!
//! Beside the disk, the object store ([`object`]): the segment format uploaded to it
//! ([`tier`]), and the snapshot a replica keeps of what it trimmed ([`snapshot`]).

pub mod disk;
pub mod error;
pub mod meta;
pub mod object;
pub mod snapshot;
pub mod tier;
pub mod wal;

pub use disk::{Disk, DiskError};
pub use error::WalError;
pub use meta::{Meta, MetaError};
pub use object::{ObjectInfo, ObjectStore, StoreError, StoreOk, StoreOp};
pub use snapshot::{Snapshot, SnapshotError};
pub use tier::{ObjectDesc, PartitionSpan, TierError};
pub use wal::{FrameLocation, OnDamage, Recovery, SyncRequest, Wal, WalConfig};
