//! The node's metadata (term and vote), written atomically: temp file, sync, rename.

use crate::disk::{Disk, DiskError};
use bytes::{Buf, BufMut};
use thiserror::Error;

const META_FILE: &str = "meta";
const META_TMP: &str = "meta.tmp";
const META_LEN: usize = 4 + 8 + 8 + 8 + 8;

/// What a replica must remember across crashes before it answers anyone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The latest term this node has seen.
    pub term: u64,
    /// The node voted for in `term`, plus one (0: no vote).
    pub voted_for: u64,
    /// Non-zero while the node repairs a log it cut because of damage: with `repair_index`,
    /// the (term, index) of the last entry its log may have held before (an upper bound; index
    /// `u64::MAX` when unknown). It may have acknowledged entries up to there, so until its own
    /// log reaches that far again it neither stands for election nor votes for a candidate
    /// whose log ends before it.
    pub repair_term: u64,
    /// See `repair_term`.
    pub repair_index: u64,
}

/// Why metadata could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MetaError {
    /// The disk failed.
    #[error("metadata disk error: {0}")]
    Disk(#[from] DiskError),
    /// The metadata file exists but fails its CRC: it was corrupted after it was synced.
    #[error("metadata file is corrupt ({0})")]
    Corrupt(String),
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(META_LEN);
        body.put_u64_le(self.term);
        body.put_u64_le(self.voted_for);
        body.put_u64_le(self.repair_term);
        body.put_u64_le(self.repair_index);
        let mut out = Vec::with_capacity(META_LEN);
        out.put_u32_le(crc32fast::hash(&body));
        out.extend_from_slice(&body);
        out
    }

    /// Reads the metadata; a node that never wrote any has the default.
    pub fn load(disk: &mut dyn Disk) -> Result<Meta, MetaError> {
        let len = match disk.len(META_FILE) {
            Ok(len) => len,
            Err(DiskError::NotFound { .. }) => return Ok(Meta::default()),
            Err(e) => return Err(e.into()),
        };
        if len != META_LEN as u64 {
            return Err(MetaError::Corrupt(format!(
                "{len} bytes, expected {META_LEN}"
            )));
        }
        // A copy that fails its checksum is read once more: a misread returns another place's
        // bytes once, damage stays.
        match Self::read_checked(disk) {
            Err(MetaError::Corrupt(_)) => Self::read_checked(disk),
            other => other,
        }
    }

    fn read_checked(disk: &mut dyn Disk) -> Result<Meta, MetaError> {
        let mut buf = [0u8; META_LEN];
        disk.read(META_FILE, 0, &mut buf)?;
        let mut b = &buf[..];
        let stored = b.get_u32_le();
        if crc32fast::hash(b) != stored {
            return Err(MetaError::Corrupt("checksum mismatch".into()));
        }
        Ok(Meta {
            term: b.get_u64_le(),
            voted_for: b.get_u64_le(),
            repair_term: b.get_u64_le(),
            repair_index: b.get_u64_le(),
        })
    }

    /// Writes the metadata atomically: either the old or the new value survives any crash.
    pub fn store(&self, disk: &mut dyn Disk) -> Result<(), MetaError> {
        match disk.delete(META_TMP) {
            Ok(()) | Err(DiskError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        disk.append(META_TMP, &self.encode())?;
        disk.sync(META_TMP)?;
        disk.rename(META_TMP, META_FILE)?;
        Ok(())
    }
}
