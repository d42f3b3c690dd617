//! The object store as the node sees it: S3's five calls, every one fallible.
//!
//! The node never calls a store itself: it emits a [`StoreOp`] as an effect and learns the
//! outcome later, as it does for syncs. [`ObjectStore`] is what a store implements (the
//! simulator's in-memory bucket, or an S3 client); [`perform`] runs one op against it.
//!
//! The semantics are S3's: a PUT that returned `Ok` is durable and every later read sees it; a
//! PUT whose caller saw [`StoreError::Timeout`] or a server error may or may not have happened.

use bytes::Bytes;
use sq_core::Definiteness;
use thiserror::Error;

/// One call to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Store `data` under `key`, replacing what was there.
    Put {
        /// The object's key.
        key: String,
        /// Its bytes.
        data: Bytes,
    },
    /// Read an object, whole or the byte range `start..end`.
    Get {
        /// The object's key.
        key: String,
        /// `Some((start, end))` for the bytes `start..end` only.
        range: Option<(u64, u64)>,
    },
    /// An object's length, without its bytes.
    Head {
        /// The object's key.
        key: String,
    },
    /// Every object whose key starts with `prefix`, in key order.
    List {
        /// The prefix.
        prefix: String,
    },
    /// Remove an object (removing one that is not there succeeds, as in S3).
    Delete {
        /// The object's key.
        key: String,
    },
}

impl StoreOp {
    /// The key the op is about (the prefix, for a list).
    pub fn key(&self) -> &str {
        match self {
            StoreOp::Put { key, .. }
            | StoreOp::Get { key, .. }
            | StoreOp::Head { key }
            | StoreOp::Delete { key } => key,
            StoreOp::List { prefix } => prefix,
        }
    }

    /// A short name for traces: `put`, `get`, `head`, `list`, `delete`.
    pub fn name(&self) -> &'static str {
        match self {
            StoreOp::Put { .. } => "put",
            StoreOp::Get { .. } => "get",
            StoreOp::Head { .. } => "head",
            StoreOp::List { .. } => "list",
            StoreOp::Delete { .. } => "delete",
        }
    }
}

/// An object as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Its length in bytes.
    pub len: u64,
}

/// What a successful call returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOk {
    /// The PUT is durable.
    Put,
    /// The bytes read.
    Got(Bytes),
    /// The object's length.
    Head {
        /// Its length in bytes.
        len: u64,
    },
    /// The objects listed, in key order.
    Listed(Vec<ObjectInfo>),
    /// The object is gone.
    Deleted,
}

/// Why a call to the store failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StoreError {
    /// No object has this key.
    #[error("object {key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The range asked for is not inside the object.
    #[error("range {start}..{end} is outside {key} ({len} bytes)")]
    InvalidRange {
        /// The key.
        key: String,
        /// The range's start.
        start: u64,
        /// The range's end.
        end: u64,
        /// The object's length.
        len: u64,
    },
    /// The store asked the caller to slow down (S3's 503 SlowDown): nothing was done.
    #[error("throttled by the store")]
    Throttled,
    /// The store failed (a 5xx): a write may or may not have been done.
    #[error("store error {status}")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// No answer in time: a write may or may not have been done, or be done later.
    #[error("store call timed out")]
    Timeout,
}

impl StoreError {
    /// Whether the failed call is known to have changed nothing in the store.
    pub fn definiteness(&self) -> Definiteness {
        match self {
            StoreError::NotFound { .. }
            | StoreError::InvalidRange { .. }
            | StoreError::Throttled => Definiteness::Definite,
            StoreError::Server { .. } | StoreError::Timeout => Definiteness::Indeterminate,
        }
    }
}

/// An S3-style object store: flat keys, whole-object writes, strongly consistent reads.
pub trait ObjectStore {
    /// Stores `data` under `key`.
    fn put(&mut self, key: &str, data: Bytes) -> Result<(), StoreError>;
    /// Reads `key`, whole or `range` (`start..end`).
    fn get(&mut self, key: &str, range: Option<(u64, u64)>) -> Result<Bytes, StoreError>;
    /// The length of `key`.
    fn head(&mut self, key: &str) -> Result<u64, StoreError>;
    /// Every object under `prefix`, in key order.
    fn list(&mut self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;
    /// Removes `key` (succeeds if it is not there).
    fn delete(&mut self, key: &str) -> Result<(), StoreError>;
}

/// Runs `op` against `store`.
pub fn perform(store: &mut dyn ObjectStore, op: &StoreOp) -> Result<StoreOk, StoreError> {
    match op {
        StoreOp::Put { key, data } => store.put(key, data.clone()).map(|()| StoreOk::Put),
        StoreOp::Get { key, range } => store.get(key, *range).map(StoreOk::Got),
        StoreOp::Head { key } => store.head(key).map(|len| StoreOk::Head { len }),
        StoreOp::List { prefix } => store.list(prefix).map(StoreOk::Listed),
        StoreOp::Delete { key } => store.delete(key).map(|()| StoreOk::Deleted),
    }
}

/// Cuts `range` out of `data` as a ranged GET does, or says why it cannot (for stores to share).
pub fn slice_range(
    key: &str,
    data: &Bytes,
    range: Option<(u64, u64)>,
) -> Result<Bytes, StoreError> {
    let Some((start, end)) = range else {
        return Ok(data.clone());
    };
    let len = data.len() as u64;
    if start > end || end > len {
        return Err(StoreError::InvalidRange {
            key: key.to_string(),
            start,
            end,
            len,
        });
    }
    Ok(data.slice(start as usize..end as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn ranges_are_checked() {
        let data = Bytes::from_static(b"abcdef");
        assert_eq!(
            slice_range("k", &data, Some((1, 3))),
            Ok(Bytes::from_static(b"bc"))
        );
        assert_eq!(slice_range("k", &data, None), Ok(data.clone()));
        assert_eq!(
            slice_range("k", &data, Some((4, 7))),
            Err(StoreError::InvalidRange {
                key: "k".into(),
                start: 4,
                end: 7,
                len: 6
            })
        );
    }

    #[test]
    fn only_writes_that_may_have_happened_are_indeterminate() {
        assert_eq!(StoreError::Throttled.definiteness(), Definiteness::Definite);
        assert_eq!(
            StoreError::Timeout.definiteness(),
            Definiteness::Indeterminate
        );
        assert_eq!(
            StoreError::Server { status: 500 }.definiteness(),
            Definiteness::Indeterminate
        );
    }
}
