//! A replica's snapshot: what the log said up to the last entry it no longer holds in its WAL.
//!
//! A replica trims its WAL only below a range the object store holds, and first stores what the
//! trimmed entries meant: the index and term of the last of them (for log matching), the
//! manifest (which objects hold which entries), and the node's own state derived from them
//! (opaque here: partition offsets, producer table). It is kept in two copies, each written
//! atomically, as the metadata is; the same bytes travel to a follower that must catch up by
//! snapshot.

use crate::disk::{Disk, DiskError};
use crate::tier::ObjectDesc;
use bytes::{Buf, BufMut, Bytes};
use thiserror::Error;

/// The two copies, in the order they are written.
pub const SNAPSHOT_COPIES: [&str; 2] = ["snapshot", "snapshot.2"];
const SNAPSHOT_TMP: &str = "snapshot.tmp";
const SNAPSHOT_MAGIC: u32 = u32::from_le_bytes(*b"SQSN");

/// The state of the log up to `last_index`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The last log index it covers (0: none).
    pub last_index: u64,
    /// That entry's term.
    pub last_term: u64,
    /// The objects the store holds, in index order, contiguous from index 1.
    pub manifest: Vec<ObjectDesc>,
    /// The node's state after `last_index`, in the node's own encoding.
    pub state: Bytes,
    /// Bumped by every store: of two readable copies, the higher one is the latest.
    pub version: u64,
}

/// Why a snapshot could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// The disk failed.
    #[error("snapshot disk error: {0}")]
    Disk(#[from] DiskError),
    /// Every copy exists but fails its checks.
    #[error("snapshot is corrupt ({0})")]
    Corrupt(String),
    /// The first copy is stored (the snapshot is durable: a restart loads it), the second
    /// failed and still holds the previous version.
    #[error("snapshot stored once; its second copy failed: {0}")]
    SecondCopy(DiskError),
}

impl SnapshotError {
    /// Whether the snapshot was stored durably nonetheless (a restart loads it).
    pub fn is_durable(&self) -> bool {
        matches!(self, SnapshotError::SecondCopy(_))
    }
}

impl Snapshot {
    /// The snapshot's bytes, checksummed.
    pub fn encode(&self) -> Bytes {
        let mut body = Vec::new();
        body.put_u64_le(self.version);
        body.put_u64_le(self.last_index);
        body.put_u64_le(self.last_term);
        body.put_u32_le(self.manifest.len() as u32);
        for d in &self.manifest {
            d.encode(&mut body);
        }
        body.put_u32_le(self.state.len() as u32);
        body.extend_from_slice(&self.state);
        let mut out = Vec::with_capacity(body.len() + 12);
        out.put_u32_le(SNAPSHOT_MAGIC);
        out.put_u32_le(body.len() as u32);
        out.put_u32_le(crc32fast::hash(&body));
        out.extend_from_slice(&body);
        Bytes::from(out)
    }

    /// Decodes bytes written by [`Snapshot::encode`], checking them.
    pub fn decode(buf: &[u8]) -> Result<Snapshot, SnapshotError> {
        let bad = |why: &str| SnapshotError::Corrupt(why.to_string());
        let mut b = buf;
        if b.remaining() < 12 || b.get_u32_le() != SNAPSHOT_MAGIC {
            return Err(bad("bad magic"));
        }
        let len = b.get_u32_le() as usize;
        let crc = b.get_u32_le();
        if b.remaining() != len {
            return Err(bad("length mismatch"));
        }
        if crc32fast::hash(b) != crc {
            return Err(bad("checksum mismatch"));
        }
        if b.remaining() < 8 + 8 + 8 + 4 {
            return Err(bad("truncated"));
        }
        let version = b.get_u64_le();
        let last_index = b.get_u64_le();
        let last_term = b.get_u64_le();
        let n = b.get_u32_le() as usize;
        let mut manifest = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            manifest.push(ObjectDesc::decode(&mut b).map_err(|e| bad(&e.to_string()))?);
        }
        if b.remaining() < 4 {
            return Err(bad("truncated"));
        }
        let state_len = b.get_u32_le() as usize;
        if b.remaining() != state_len {
            return Err(bad("state length mismatch"));
        }
        Ok(Snapshot {
            last_index,
            last_term,
            manifest,
            state: Bytes::copy_from_slice(b),
            version,
        })
    }

    /// Reads the latest readable copy; `None` if none was ever stored.
    pub fn load(disk: &mut dyn Disk) -> Result<Option<Snapshot>, SnapshotError> {
        let mut found: Option<Snapshot> = None;
        let mut corrupt = Vec::new();
        for name in SNAPSHOT_COPIES {
            match Self::load_copy(disk, name) {
                Ok(Some(s)) => {
                    if found.as_ref().is_none_or(|f| s.version > f.version) {
                        found = Some(s);
                    }
                }
                Ok(None) => {}
                Err(SnapshotError::Corrupt(why)) => corrupt.push(format!("{name}: {why}")),
                Err(e) => return Err(e),
            }
        }
        match (found, corrupt.is_empty()) {
            (Some(s), _) => Ok(Some(s)),
            (None, true) => Ok(None),
            (None, false) => Err(SnapshotError::Corrupt(corrupt.join("; "))),
        }
    }

    fn load_copy(disk: &mut dyn Disk, name: &str) -> Result<Option<Snapshot>, SnapshotError> {
        let len = match disk.len(name) {
            Ok(len) => len,
            Err(DiskError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let read = |disk: &mut dyn Disk| -> Result<Snapshot, SnapshotError> {
            let mut buf = vec![0u8; len as usize];
            disk.read(name, 0, &mut buf)?;
            Snapshot::decode(&buf)
        };
        // A copy that fails its checks is read once more: a misread returns another place's
        // bytes once, damage stays.
        match read(disk) {
            Err(SnapshotError::Corrupt(_)) => read(disk),
            other => other,
        }
        .map(Some)
    }

    /// Stores the snapshot as a new version, each copy atomically (temp file, sync, rename).
    /// Once the first copy is stored the snapshot is durable: a failure of the second is
    /// [`SnapshotError::SecondCopy`], and the caller must act as if it had succeeded.
    pub fn store(&mut self, disk: &mut dyn Disk) -> Result<(), SnapshotError> {
        self.version += 1;
        let bytes = self.encode();
        for (k, name) in SNAPSHOT_COPIES.into_iter().enumerate() {
            let write = |disk: &mut dyn Disk| -> Result<(), DiskError> {
                match disk.delete(SNAPSHOT_TMP) {
                    Ok(()) | Err(DiskError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
                disk.append(SNAPSHOT_TMP, &bytes)?;
                disk.sync(SNAPSHOT_TMP)?;
                disk.rename(SNAPSHOT_TMP, name)
            };
            match write(disk) {
                Ok(()) => {}
                Err(e) if k > 0 => return Err(SnapshotError::SecondCopy(e)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn sample() -> Snapshot {
        Snapshot {
            last_index: 40,
            last_term: 3,
            manifest: vec![ObjectDesc {
                first: 1,
                last: 40,
                term: 2,
                crc: 0xdead,
                len: 900,
                spans: vec![],
            }],
            state: Bytes::from_static(b"state"),
            version: 7,
        }
    }

    #[test]
    fn a_snapshot_round_trips_and_every_flip_is_caught() {
        let s = sample();
        let bytes = s.encode();
        assert_eq!(Snapshot::decode(&bytes), Ok(s));
        for bit in 0..bytes.len() * 8 {
            let mut v = bytes.to_vec();
            v[bit / 8] ^= 1 << (bit % 8);
            assert!(Snapshot::decode(&v).is_err(), "bit {bit} went unnoticed");
        }
        assert!(Snapshot::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
