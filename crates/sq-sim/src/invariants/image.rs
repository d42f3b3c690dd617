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
        pos = at + h.frame_len();
    }
    (out, pos)
}

/// A node's durable batches by (partition, base offset).
pub type BatchIndex = BTreeMap<(u32, u64), ImageFrame>;
