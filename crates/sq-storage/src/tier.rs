//! The segment format uploaded to the object store, and the manifest's description of it.
//!
//! An object holds a contiguous run of log entries as the WAL's own frames (each with its header
//! and payload CRCs), between a header that names the run and a footer CRC over everything
//! before it: it describes itself and checks itself. Its key is derived from what it holds and
//! who uploaded it, (first index, last index, uploader's term, CRC), so two leaders never write
//! the same key with different bytes (redpanda#3272), and a retry rewrites the same bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use sq_core::codec::{self, EntryKind, FrameHeader, HEADER_LEN};
use thiserror::Error;

/// Every object sq writes lies under this prefix.
pub const OBJECT_PREFIX: &str = "segments/";
const OBJECT_MAGIC: u32 = u32::from_le_bytes(*b"SQOB");
const OBJECT_VERSION: u32 = 1;
const OBJECT_HEADER_LEN: usize = 4 + 4 + 8 + 8 + 8;
const FOOTER_LEN: usize = 4;

/// The offsets of one partition that an object holds: `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionSpan {
    /// The partition.
    pub partition: u32,
    /// Its first offset in the object.
    pub start: u64,
    /// The offset after its last record in the object.
    pub end: u64,
}

/// What the manifest knows of one uploaded object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectDesc {
    /// The first log index it holds.
    pub first: u64,
    /// The last log index it holds.
    pub last: u64,
    /// The term of the leader that uploaded it.
    pub term: u64,
    /// The CRC32 of its bytes before the footer (the footer's value).
    pub crc: u32,
    /// Its length in bytes.
    pub len: u64,
    /// The partitions' offsets it holds, in partition order.
    pub spans: Vec<PartitionSpan>,
}

/// Why an object or a description could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TierError {
    /// The bytes are not what the description says, or fail a checksum: they are never served.
    #[error("object {key} is corrupt: {detail}")]
    Corrupt {
        /// The object's key.
        key: String,
        /// What the check found.
        detail: String,
    },
    /// A description (in a manifest entry or a snapshot) is malformed.
    #[error("malformed object description: {0}")]
    BadDesc(String),
}

impl ObjectDesc {
    /// The object's key: `segments/<first>-<last>-t<term>-<crc>`, so that a listing sorts by
    /// first index.
    pub fn key(&self) -> String {
        format!(
            "{OBJECT_PREFIX}{:020}-{:020}-t{:020}-{:08x}",
            self.first, self.last, self.term, self.crc
        )
    }

    /// Parses a key written by [`ObjectDesc::key`]: (first, last, term, crc).
    pub fn parse_key(key: &str) -> Option<(u64, u64, u64, u32)> {
        let rest = key.strip_prefix(OBJECT_PREFIX)?;
        let mut parts = rest.split('-');
        let first = parts.next()?.parse().ok()?;
        let last = parts.next()?.parse().ok()?;
        let term = parts.next()?.strip_prefix('t')?.parse().ok()?;
        let crc = u32::from_str_radix(parts.next()?, 16).ok()?;
        parts.next().is_none().then_some((first, last, term, crc))
    }

    /// The span of `partition`, if the object holds any of its records.
    pub fn span(&self, partition: u32) -> Option<PartitionSpan> {
        self.spans
            .iter()
            .find(|s| s.partition == partition)
            .copied()
    }

    /// Appends the description's bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64_le(self.first);
        out.put_u64_le(self.last);
        out.put_u64_le(self.term);
        out.put_u32_le(self.crc);
        out.put_u64_le(self.len);
        out.put_u32_le(self.spans.len() as u32);
        for s in &self.spans {
            out.put_u32_le(s.partition);
            out.put_u64_le(s.start);
            out.put_u64_le(s.end);
        }
    }

    /// Decodes one description from the front of `buf`, advancing it.
    pub fn decode(buf: &mut &[u8]) -> Result<ObjectDesc, TierError> {
        let short = || TierError::BadDesc("truncated".into());
        if buf.remaining() < 8 + 8 + 8 + 4 + 8 + 4 {
            return Err(short());
        }
        let first = buf.get_u64_le();
        let last = buf.get_u64_le();
        let term = buf.get_u64_le();
        let crc = buf.get_u32_le();
        let len = buf.get_u64_le();
        let n = buf.get_u32_le() as usize;
        if buf.remaining() < n.saturating_mul(20) {
            return Err(short());
        }
        let mut spans = Vec::with_capacity(n);
        for _ in 0..n {
            spans.push(PartitionSpan {
                partition: buf.get_u32_le(),
                start: buf.get_u64_le(),
                end: buf.get_u64_le(),
            });
        }
        if first == 0 || last < first || spans.iter().any(|s| s.end <= s.start) {
            return Err(TierError::BadDesc(format!(
                "indexes {first}..={last}, spans {spans:?}"
            )));
        }
        Ok(ObjectDesc {
            first,
            last,
            term,
            crc,
            len,
            spans,
        })
    }
}

/// Builds the object holding `entries` (contiguous, in index order, each with its payload),
/// uploaded by a leader of `term`. Returns its bytes and its description.
pub fn encode_object(term: u64, entries: &[(FrameHeader, Bytes)]) -> (Bytes, ObjectDesc) {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        panic!("invariant: an object holds at least one entry");
    };
    let (first, last) = (first.0.index, last.0.index);
    let mut out = BytesMut::new();
    out.put_u32_le(OBJECT_MAGIC);
    out.put_u32_le(OBJECT_VERSION);
    out.put_u64_le(first);
    out.put_u64_le(last);
    out.put_u64_le(term);
    let mut spans: Vec<PartitionSpan> = Vec::new();
    for (k, (h, payload)) in entries.iter().enumerate() {
        assert_eq!(
            h.index,
            first + k as u64,
            "invariant: an object's entries are contiguous"
        );
        codec::encode_frame(h.term, h.index, h.kind, &h.batch, payload, &mut out);
        if h.kind == EntryKind::Batch {
            let b = h.batch;
            let end = b.base_offset + u64::from(b.count);
            match spans.iter_mut().find(|s| s.partition == b.partition) {
                Some(s) => s.end = end,
                None => spans.push(PartitionSpan {
                    partition: b.partition,
                    start: b.base_offset,
                    end,
                }),
            }
        }
    }
    spans.sort();
    let crc = crc32fast::hash(&out);
    out.put_u32_le(crc);
    let desc = ObjectDesc {
        first,
        last,
        term,
        crc,
        len: out.len() as u64,
        spans,
    };
    (out.freeze(), desc)
}

/// Decodes an object read back from the store, checking it against its description: the footer
/// CRC, the header, every frame's CRCs, and that the frames are exactly `first..=last`.
pub fn decode_object(
    data: &Bytes,
    desc: &ObjectDesc,
) -> Result<Vec<(FrameHeader, Bytes)>, TierError> {
    let corrupt = |detail: String| TierError::Corrupt {
        key: desc.key(),
        detail,
    };
    if data.len() as u64 != desc.len || data.len() < OBJECT_HEADER_LEN + FOOTER_LEN {
        return Err(corrupt(format!(
            "{} bytes, expected {}",
            data.len(),
            desc.len
        )));
    }
    let body_len = data.len() - FOOTER_LEN;
    let stored = (&data[body_len..]).get_u32_le();
    let computed = crc32fast::hash(&data[..body_len]);
    if stored != computed || stored != desc.crc {
        return Err(corrupt(format!(
            "checksum {computed:08x}, footer {stored:08x}, manifest {:08x}",
            desc.crc
        )));
    }
    let mut h = &data[..OBJECT_HEADER_LEN];
    let (magic, version) = (h.get_u32_le(), h.get_u32_le());
    let (first, last, term) = (h.get_u64_le(), h.get_u64_le(), h.get_u64_le());
    if magic != OBJECT_MAGIC
        || version != OBJECT_VERSION
        || (first, last, term) != (desc.first, desc.last, desc.term)
    {
        return Err(corrupt(format!(
            "header says {first}..={last} term {term} (version {version})"
        )));
    }
    let mut entries = Vec::with_capacity((last - first + 1) as usize);
    let mut pos = OBJECT_HEADER_LEN;
    while pos < body_len {
        let (header, payload) = codec::decode_frame(&data[pos..body_len])
            .map_err(|e| corrupt(format!("frame at byte {pos}: {e}")))?;
        let expected = first + entries.len() as u64;
        if header.index != expected {
            return Err(corrupt(format!(
                "frame at byte {pos} is index {}, expected {expected}",
                header.index
            )));
        }
        let start = pos + HEADER_LEN;
        entries.push((header, data.slice(start..start + payload.len())));
        pos += header.frame_len();
    }
    if entries.last().map(|(h, _)| h.index) != Some(last) {
        return Err(corrupt(format!(
            "{} frames, expected {}",
            entries.len(),
            last - first + 1
        )));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use sq_core::codec::BatchMeta;

    fn entry(
        index: u64,
        kind: EntryKind,
        partition: u32,
        base: u64,
        payload: &'static [u8],
    ) -> (FrameHeader, Bytes) {
        let batch = BatchMeta {
            partition,
            base_offset: base,
            count: if kind == EntryKind::Batch { 2 } else { 0 },
            ..BatchMeta::default()
        };
        let mut buf = BytesMut::new();
        codec::encode_frame(3, index, kind, &batch, payload, &mut buf);
        let header = codec::decode_header(&buf).expect("just encoded");
        (header, Bytes::from_static(payload))
    }

    fn sample() -> Vec<(FrameHeader, Bytes)> {
        vec![
            entry(5, EntryKind::Batch, 1, 10, b"ab"),
            entry(6, EntryKind::Noop, 0, 0, b""),
            entry(7, EntryKind::Batch, 0, 0, b"cd"),
            entry(8, EntryKind::Batch, 1, 12, b"ef"),
        ]
    }

    #[test]
    fn an_object_round_trips_and_describes_itself() {
        let (bytes, desc) = encode_object(4, &sample());
        assert_eq!((desc.first, desc.last, desc.term), (5, 8, 4));
        assert_eq!(
            desc.spans,
            vec![
                PartitionSpan {
                    partition: 0,
                    start: 0,
                    end: 2
                },
                PartitionSpan {
                    partition: 1,
                    start: 10,
                    end: 14
                },
            ]
        );
        assert_eq!(decode_object(&bytes, &desc), Ok(sample()));
        assert_eq!(
            ObjectDesc::parse_key(&desc.key()),
            Some((5, 8, 4, desc.crc))
        );
        let mut buf = Vec::new();
        desc.encode(&mut buf);
        assert_eq!(ObjectDesc::decode(&mut buf.as_slice()), Ok(desc));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let (bytes, desc) = encode_object(4, &sample());
        for bit in 0..bytes.len() * 8 {
            let mut v = bytes.to_vec();
            v[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(
                    decode_object(&Bytes::from(v), &desc),
                    Err(TierError::Corrupt { .. })
                ),
                "bit {bit} flipped went unnoticed"
            );
        }
    }

    #[test]
    fn another_objects_bytes_are_refused() {
        let (bytes, _) = encode_object(4, &sample());
        let (_, other) = encode_object(5, &sample());
        assert!(matches!(
            decode_object(&bytes, &other),
            Err(TierError::Corrupt { .. })
        ));
        assert!(matches!(
            decode_object(&bytes.slice(..bytes.len() - 1), &other),
            Err(TierError::Corrupt { .. })
        ));
    }

    #[test]
    fn malformed_descriptions_are_refused() {
        assert!(ObjectDesc::decode(&mut &[0u8; 10][..]).is_err());
        let mut buf = Vec::new();
        ObjectDesc {
            first: 9,
            last: 3,
            term: 1,
            crc: 0,
            len: 0,
            spans: vec![],
        }
        .encode(&mut buf);
        assert!(ObjectDesc::decode(&mut buf.as_slice()).is_err());
        assert_eq!(ObjectDesc::parse_key("segments/1-2-t3"), None);
        assert_eq!(ObjectDesc::parse_key("other/1-2-t3-ff"), None);
    }
}
