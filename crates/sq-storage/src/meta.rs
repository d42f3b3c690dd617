//! The node's metadata (term, vote, repair state), kept in two copies, each written atomically
//! (temp file, sync, rename): a write that lands in the wrong place or a flipped bit can destroy
//! one copy, and the other still says the latest (TigerBeetle keeps its superblock so).

use crate::disk::{Disk, DiskError};
use bytes::{Buf, BufMut};
use thiserror::Error;

/// The two copies, in the order they are written.
pub const COPIES: [&str; 2] = ["meta", "meta.2"];
const META_TMP: &str = "meta.tmp";
const META_LEN: usize = 4 + 8 + 8 + 8 + 8 + 8;

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
    /// Bumped by every store: of two readable copies, the higher one is the latest.
    pub version: u64,
}

/// Why metadata could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MetaError {
    /// The disk failed.
    #[error("metadata disk error: {0}")]
    Disk(#[from] DiskError),
    /// Every copy of the metadata exists but fails its CRC: they were corrupted after they were
    /// synced.
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
        body.put_u64_le(self.version);
        let mut out = Vec::with_capacity(META_LEN);
        out.put_u32_le(crc32fast::hash(&body));
        out.extend_from_slice(&body);
        out
    }

    /// Reads the metadata: the latest readable copy; a node that never wrote any has the
    /// default.
    pub fn load(disk: &mut dyn Disk) -> Result<Meta, MetaError> {
        let mut found = None;
        let mut corrupt = Vec::new();
        for name in COPIES {
            match Self::load_copy(disk, name) {
                Ok(Some(m)) => {
                    if found.is_none_or(|f: Meta| m.version > f.version) {
                        found = Some(m);
                    }
                }
                Ok(None) => {}
                Err(MetaError::Corrupt(why)) => corrupt.push(format!("{name}: {why}")),
                Err(e) => return Err(e),
            }
        }
        match (found, corrupt.is_empty()) {
            (Some(m), _) => Ok(m),
            (None, true) => Ok(Meta::default()),
            (None, false) => Err(MetaError::Corrupt(corrupt.join("; "))),
        }
    }

    /// One copy: `None` if it does not exist.
    fn load_copy(disk: &mut dyn Disk, name: &str) -> Result<Option<Meta>, MetaError> {
        let len = match disk.len(name) {
            Ok(len) => len,
            Err(DiskError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if len != META_LEN as u64 {
            return Err(MetaError::Corrupt(format!(
                "{len} bytes, expected {META_LEN}"
            )));
        }
        // A copy that fails its checksum is read once more: a misread returns another place's
        // bytes once, damage stays.
        match Self::read_checked(disk, name) {
            Err(MetaError::Corrupt(_)) => Self::read_checked(disk, name),
            other => other,
        }
        .map(Some)
    }

    fn read_checked(disk: &mut dyn Disk, name: &str) -> Result<Meta, MetaError> {
        let mut buf = [0u8; META_LEN];
        disk.read(name, 0, &mut buf)?;
        Meta::decode(&buf)
    }

    /// Decodes one copy's bytes (for tools and checkers that read a disk's bytes themselves).
    pub fn decode(buf: &[u8]) -> Result<Meta, MetaError> {
        if buf.len() != META_LEN {
            return Err(MetaError::Corrupt(format!(
                "{} bytes, expected {META_LEN}",
                buf.len()
            )));
        }
        let mut b = buf;
        let stored = b.get_u32_le();
        if crc32fast::hash(b) != stored {
            return Err(MetaError::Corrupt("checksum mismatch".into()));
        }
        Ok(Meta {
            term: b.get_u64_le(),
            voted_for: b.get_u64_le(),
            repair_term: b.get_u64_le(),
            repair_index: b.get_u64_le(),
            version: b.get_u64_le(),
        })
    }

    /// Writes the metadata as a new version, each copy atomically: either the old or the new
    /// value of each copy survives any crash, and a crash between the two leaves the first
    /// copy the latest.
    pub fn store(&mut self, disk: &mut dyn Disk) -> Result<(), MetaError> {
        self.version += 1;
        let bytes = self.encode();
        for name in COPIES {
            match disk.delete(META_TMP) {
                Ok(()) | Err(DiskError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            disk.append(META_TMP, &bytes)?;
            disk.sync(META_TMP)?;
            disk.rename(META_TMP, name)?;
        }
        Ok(())
    }
}
