//! The disk as the node sees it: a flat directory of files, every call fallible.

use thiserror::Error;

/// Why a disk call failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DiskError {
    /// The device is full. An append may have written a prefix of its data before failing.
    #[error("no space left on device while writing {file}")]
    NoSpace {
        /// The file being written.
        file: String,
    },
    /// The file does not exist.
    #[error("file {file} not found")]
    NotFound {
        /// The missing file.
        file: String,
    },
    /// A read reached past the end of the file.
    #[error("read of {len} bytes at {offset} is past the end of {file} ({file_len} bytes)")]
    OutOfBounds {
        /// The file read.
        file: String,
        /// Where the read started.
        offset: u64,
        /// How many bytes were asked for.
        len: usize,
        /// The file's length.
        file_len: u64,
    },
    /// The device reported an error; what it did is unknown.
    #[error("I/O error during {op} on {file}")]
    Io {
        /// The operation: append, sync, read, truncate, delete, rename.
        op: &'static str,
        /// The file.
        file: String,
    },
}

/// A node's local disk. Writes are volatile until [`Disk::sync`] returns `Ok` for that file;
/// a crash keeps what was synced and may keep any prefix of what was written after.
pub trait Disk {
    /// The names of all files, sorted.
    fn list(&mut self) -> Result<Vec<String>, DiskError>;
    /// A file's current length (including unsynced bytes).
    fn len(&mut self, file: &str) -> Result<u64, DiskError>;
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read(&mut self, file: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Appends `data`, creating the file if needed. On error a prefix may have been written.
    fn append(&mut self, file: &str, data: &[u8]) -> Result<(), DiskError>;
    /// Makes everything written to `file` so far durable.
    fn sync(&mut self, file: &str) -> Result<(), DiskError>;
    /// Cuts `file` to `len` bytes; durable when it returns.
    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError>;
    /// Removes `file`; durable when it returns.
    fn delete(&mut self, file: &str) -> Result<(), DiskError>;
    /// Atomically replaces `to` with `from`; durable when it returns.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError>;
}
