//! The durable image of a node's WAL, parsed directly from the simulated disk's synced bytes with
//! the frame codec: independent of the node's own recovery code.

use crate::disk::SimDisk;
use sq_core::codec::{self, FrameHeader, HEADER_LEN};
use sq_storage::wal::is_segment_file;
use std::collections::BTreeMap;
use std::rc::Rc;

/// One frame found in the durable bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFrame {
    /// Its segment file (shared by every frame of the file).
    pub file: Rc<str>,
    /// Its first byte.
    pub pos: usize,
    /// Its (CRC-checked) header.
    pub header: FrameHeader,
    /// Whether its payload passes its CRC.
    pub intact: bool,
}

/// Every whole frame of every WAL segment in the synced bytes of `disk`, in log order (a torn
/// tail awaiting recovery is left out; see [`frames_from`] for what follows damage).
pub fn scan(disk: &SimDisk) -> Vec<ImageFrame> {
    let mut frames = Vec::new();
    for file in disk.file_names().filter(|f| is_segment_file(f)) {
        let Some(bytes) = disk.durable(file) else {
            continue;
        };
        let name: Rc<str> = Rc::from(file);
        for (pos, header) in frames_from(bytes, 0).0 {
            frames.push(ImageFrame {
                file: name.clone(),
                pos,
                intact: codec::check_payload(&header, &bytes[pos + HEADER_LEN..]).is_ok(),
                header,
            });
        }
    }
    frames
}

/// Every whole frame in `bytes` from `from` on, with its position, in order, and where the
/// walk stopped (the end of the last whole frame: a torn tail starts there). Past bytes that are
/// not a whole frame it looks for the next one (a header with its magic and a good CRC), so
/// damage in the middle hides nothing after it.
pub fn frames_from(bytes: &[u8], from: usize) -> (Vec<(usize, FrameHeader)>, usize) {
    let whole = |at: usize| {
        codec::decode_header(&bytes[at..])
            .ok()
            .filter(|h| bytes.len() - at >= h.frame_len())
    };
    let magic = codec::FRAME_MAGIC.to_le_bytes();
    let mut out = Vec::new();
    let mut pos = from;
    while pos < bytes.len() {
        let found = whole(pos).map(|h| (pos, h)).or_else(|| {
            (pos + 1..bytes.len().saturating_sub(HEADER_LEN - 1))
                .filter(|&q| bytes[q..q + 4] == magic)
                .find_map(|q| whole(q).map(|h| (q, h)))
        });
        let Some((at, h)) = found else {
            break;
        };
        out.push((at, h));
        // A frame whose payload fails its checksum is kept (damage is recorded as damage), but
        // its length is not trusted to skip what follows: a misdirected write leaves a stale
        // header whose span later frames were written into (a cut, then appends).
        let intact = codec::decode_frame(&bytes[at..at + h.frame_len()]).is_ok();
        pos = if intact {
            at + h.frame_len()
        } else {
            at + HEADER_LEN
        };
    }
    (out, pos)
}

/// What a log entry is, apart from its place (index) and term: two replicas holding entries with
/// the same index and term must hold the same one (Raft's log matching), byte for byte, which
/// the payload's checksum stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryId {
    /// Its kind.
    pub kind: sq_core::EntryKind,
    /// Its batch header (zero for other kinds).
    pub batch: sq_core::BatchMeta,
    /// Its payload's length.
    pub payload_len: u32,
    /// Its payload's checksum, as its header records it.
    pub payload_crc: u32,
}

impl EntryId {
    /// The identity of the entry `h` heads.
    pub fn of(h: &FrameHeader) -> EntryId {
        EntryId {
            kind: h.kind,
            batch: h.batch,
            payload_len: h.payload_len,
            payload_crc: h.payload_crc,
        }
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.batch;
        match self.kind {
            sq_core::EntryKind::Batch => write!(
                f,
                "batch p{} seq {} → partition {} offsets {}..{} (crc {:08x})",
                b.producer,
                b.seq,
                b.partition,
                b.base_offset,
                b.base_offset + u64::from(b.count),
                self.payload_crc
            ),
            sq_core::EntryKind::Refusal => write!(f, "refusal p{} seq {}", b.producer, b.seq),
            sq_core::EntryKind::Noop => write!(f, "no-op"),
            sq_core::EntryKind::Manifest => {
                write!(f, "manifest entry (crc {:08x})", self.payload_crc)
            }
            sq_core::EntryKind::Group => match sq_core::GroupOp::from_meta(&b) {
                Ok(op) => write!(f, "group entry: {op}"),
                Err(e) => write!(f, "group entry: {e}"),
            },
        }
    }
}

/// The entry at log index `index` in what `disk`'s WAL holds as written (its page cache,
/// synced or not): its term and identity. Reads every segment: for rare checks only.
pub fn written_entry(disk: &SimDisk, index: u64) -> Option<(u64, EntryId)> {
    disk.file_names()
        .filter(|f| sq_storage::wal::is_segment_file(f))
        .filter_map(|f| disk.cached(f))
        .flat_map(|bytes| frames_from(bytes, 0).0)
        .filter(|(_, h)| h.index == index)
        .last()
        .map(|(_, h)| (h.term, EntryId::of(&h)))
}

/// A node's durable batches by (partition, base offset).
pub type BatchIndex = BTreeMap<(u32, u64), ImageFrame>;
