//! The frame codec: every WAL entry (and, later, every object-store segment entry) is one frame.
//!
//! ```text
//! magic u32 | payload_len u32 | term u64 | index u64 | kind u8
//! | partition u32 | base_offset u64 | count u32 | producer u64 | epoch u32 | seq u64
//!                                                            (the batch header)
//! | payload_crc u32 | header_crc u32 | payload (payload_len bytes)
//! ```
//!
//! All integers are little-endian. The header has a CRC32 of its own, so that a reader can trust
//! the length and the batch header (partition, offsets, producer, sequence) even when the payload
//! is damaged: a frame whose payload fails its CRC is still known to be *that* entry, and recovery
//! keeps its place in the log (and its offsets and idempotency state) instead of losing everything
//! after it. A batch's payload is its records (see [`encode_records`]).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// The first four bytes of every frame: "SQWF".
pub const FRAME_MAGIC: u32 = 0x5351_5746;
/// The size of a frame header in bytes.
pub const HEADER_LEN: usize = 4 + 4 + 8 + 8 + 1 + 4 + 8 + 4 + 8 + 4 + 8 + 4 + 4;
/// The largest payload a frame may carry; a larger length field is treated as corruption.
pub const MAX_PAYLOAD_LEN: u32 = 16 << 20;

/// What a log entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// A produced batch of records for one partition.
    Batch,
    /// A produce the node refused for lack of space, recorded so that the refusal stays
    /// definite: the batch header names the producer, epoch and sequence; count is 0 and the
    /// payload is empty.
    Refusal,
    /// The entry a leader appends when it takes office, so that entries of earlier terms can
    /// commit (Raft §5.4.2). The batch header is zero and the payload empty.
    Noop,
    /// An object the store confirmed holds a run of entries: the payload is the object's
    /// description (sq-storage's `ObjectDesc`); applied at commit, it lets replicas trim their
    /// WALs below it. The batch header is zero.
    Manifest,
    /// A consumer-group operation (join, leave, expiry, offset commit, or a read marker): the
    /// operation lives in the header's fields (see `group::GroupOp`), so that every replica
    /// rebuilds group state from headers alone, as it does partitions. The payload is empty.
    Group,
}

impl EntryKind {
    fn to_byte(self) -> u8 {
        match self {
            EntryKind::Batch => 1,
            EntryKind::Refusal => 2,
            EntryKind::Noop => 3,
            EntryKind::Manifest => 4,
            EntryKind::Group => 5,
        }
    }

    fn from_byte(b: u8) -> Option<EntryKind> {
        match b {
            1 => Some(EntryKind::Batch),
            2 => Some(EntryKind::Refusal),
            3 => Some(EntryKind::Noop),
            4 => Some(EntryKind::Manifest),
            5 => Some(EntryKind::Group),
            _ => None,
        }
    }
}

/// The header of a batch entry: which records it holds and who produced them.
/// All zero for entries that are not batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BatchMeta {
    /// The partition.
    pub partition: u32,
    /// The offset of the first record.
    pub base_offset: u64,
    /// How many records.
    pub count: u32,
    /// The idempotent producer.
    pub producer: u64,
    /// The producer's epoch: it starts a new one after any produce that was not acked.
    pub epoch: u32,
    /// The producer's sequence number within its epoch.
    pub seq: u64,
}

/// The decoded, CRC-checked header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// The term of the leader that appended the entry.
    pub term: u64,
    /// The entry's position in the replicated log, from 1.
    pub index: u64,
    /// What the payload is.
    pub kind: EntryKind,
    /// For a batch, its header (zeros otherwise).
    pub batch: BatchMeta,
    /// The payload's length in bytes.
    pub payload_len: u32,
    /// The CRC32 of the payload.
    pub payload_crc: u32,
}

impl FrameHeader {
    /// The whole frame's length: header plus payload.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }
}

/// Why bytes are not a valid frame. Every variant is definite: the bytes are what they are.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Fewer bytes than the header or the payload needs: a torn write, or a short read.
    #[error("frame truncated: needs {needed} bytes, {available} available")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The first four bytes are not the frame magic.
    #[error("bad frame magic {found:#010x}")]
    BadMagic {
        /// What was found instead.
        found: u32,
    },
    /// The header's CRC32 does not match its bytes.
    #[error("frame header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderChecksum {
        /// The CRC stored in the header.
        stored: u32,
        /// The CRC of the bytes read.
        computed: u32,
    },
    /// The header is intact but names an entry kind this version does not know.
    #[error("unknown entry kind {0}")]
    UnknownKind(u8),
    /// The header is intact but its payload length exceeds the limit.
    #[error("frame payload of {0} bytes exceeds the limit")]
    TooLarge(u32),
    /// The payload's CRC32 does not match: the entry is known, its content is corrupt.
    #[error("frame payload checksum mismatch at index {index}: stored {stored:#010x}, computed {computed:#010x}")]
    PayloadChecksum {
        /// The index from the (intact) header.
        index: u64,
        /// The CRC stored in the header.
        stored: u32,
        /// The CRC of the payload read.
        computed: u32,
    },
}

/// Why a payload is not a valid batch body.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BatchError {
    /// The body ends before the structure it announces.
    #[error("batch body truncated at byte {at}")]
    Truncated {
        /// Where the body ran out.
        at: usize,
    },
    /// Bytes are left over after the last record.
    #[error("batch body has {0} trailing bytes")]
    TrailingBytes(usize),
}

/// Appends one frame (header and payload) to `out`.
pub fn encode_frame(
    term: u64,
    index: u64,
    kind: EntryKind,
    batch: &BatchMeta,
    payload: &[u8],
    out: &mut BytesMut,
) {
    let payload_len = u32::try_from(payload.len())
        .ok()
        .filter(|len| *len <= MAX_PAYLOAD_LEN)
        .unwrap_or_else(|| panic!("invariant: callers bound payloads to MAX_PAYLOAD_LEN"));
    out.reserve(HEADER_LEN + payload.len());
    let start = out.len();
    out.put_u32_le(FRAME_MAGIC);
    out.put_u32_le(payload_len);
    out.put_u64_le(term);
    out.put_u64_le(index);
    out.put_u8(kind.to_byte());
    out.put_u32_le(batch.partition);
    out.put_u64_le(batch.base_offset);
    out.put_u32_le(batch.count);
    out.put_u64_le(batch.producer);
    out.put_u32_le(batch.epoch);
    out.put_u64_le(batch.seq);
    out.put_u32_le(crc32fast::hash(payload));
    let header_crc = crc32fast::hash(&out[start..]);
    out.put_u32_le(header_crc);
    out.put_slice(payload);
}

/// Decodes and checks a frame header from the start of `buf` (which may hold more).
pub fn decode_header(buf: &[u8]) -> Result<FrameHeader, FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN,
            available: buf.len(),
        });
    }
    let mut b = &buf[..HEADER_LEN];
    let magic = b.get_u32_le();
    if magic != FRAME_MAGIC {
        return Err(FrameError::BadMagic { found: magic });
    }
    let payload_len = b.get_u32_le();
    let term = b.get_u64_le();
    let index = b.get_u64_le();
    let kind_byte = b.get_u8();
    let batch = BatchMeta {
        partition: b.get_u32_le(),
        base_offset: b.get_u64_le(),
        count: b.get_u32_le(),
        producer: b.get_u64_le(),
        epoch: b.get_u32_le(),
        seq: b.get_u64_le(),
    };
    let payload_crc = b.get_u32_le();
    let stored = b.get_u32_le();
    let computed = crc32fast::hash(&buf[..HEADER_LEN - 4]);
    if stored != computed {
        return Err(FrameError::HeaderChecksum { stored, computed });
    }
    let kind = EntryKind::from_byte(kind_byte).ok_or(FrameError::UnknownKind(kind_byte))?;
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(FrameError::TooLarge(payload_len));
    }
    Ok(FrameHeader {
        term,
        index,
        kind,
        batch,
        payload_len,
        payload_crc,
    })
}

/// Checks a payload against its (already checked) header.
pub fn check_payload(header: &FrameHeader, payload: &[u8]) -> Result<(), FrameError> {
    if payload.len() < header.payload_len as usize {
        return Err(FrameError::Truncated {
            needed: header.frame_len(),
            available: HEADER_LEN + payload.len(),
        });
    }
    let computed = crc32fast::hash(&payload[..header.payload_len as usize]);
    if computed != header.payload_crc {
        return Err(FrameError::PayloadChecksum {
            index: header.index,
            stored: header.payload_crc,
            computed,
        });
    }
    Ok(())
}

/// Decodes one whole frame from the start of `buf`, checking both CRCs.
/// Returns the header and the payload bytes.
pub fn decode_frame(buf: &[u8]) -> Result<(FrameHeader, &[u8]), FrameError> {
    let header = decode_header(buf)?;
    let payload = &buf[HEADER_LEN..];
    check_payload(&header, payload)?;
    Ok((header, &payload[..header.payload_len as usize]))
}

/// Appends a batch's records: `(len u32 | bytes)*`.
pub fn encode_records(records: &[Bytes], out: &mut BytesMut) {
    out.reserve(records.iter().map(|r| 4 + r.len()).sum::<usize>());
    for r in records {
        let len = u32::try_from(r.len())
            .unwrap_or_else(|_| panic!("invariant: record length bounded by MAX_PAYLOAD_LEN"));
        out.put_u32_le(len);
        out.put_slice(r);
    }
}

/// Decodes exactly `count` records from a batch payload. The records share `payload`'s buffer.
pub fn decode_records(payload: &Bytes, count: u32) -> Result<Vec<Bytes>, BatchError> {
    decode_records_range(payload, count, 0, count)
}

/// Checks that `payload` holds exactly `count` records and returns records `skip..skip + take`
/// of them (fewer at the end). Only the returned records are sliced out; the others are stepped
/// over by their length prefix, so a reader pays for what it gets plus one hop per record.
pub fn decode_records_range(
    payload: &Bytes,
    count: u32,
    skip: u32,
    take: u32,
) -> Result<Vec<Bytes>, BatchError> {
    let mut b = &payload[..];
    let wanted = skip..skip.saturating_add(take);
    let mut records = Vec::with_capacity(take.min(count.saturating_sub(skip)).min(1024) as usize);
    for i in 0..count {
        let at = payload.len() - b.len();
        if b.len() < 4 {
            return Err(BatchError::Truncated { at });
        }
        let len = b.get_u32_le() as usize;
        if b.len() < len {
            return Err(BatchError::Truncated { at: at + 4 });
        }
        if wanted.contains(&i) {
            let start = payload.len() - b.len();
            records.push(payload.slice(start..start + len));
        }
        b.advance(len);
    }
    if !b.is_empty() {
        return Err(BatchError::TrailingBytes(b.len()));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    fn frame(payload: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        let meta = BatchMeta {
            partition: 2,
            base_offset: 40,
            count: 1,
            producer: 5,
            epoch: 1,
            seq: 9,
        };
        encode_frame(3, 7, EntryKind::Batch, &meta, payload, &mut out);
        out
    }

    #[test]
    fn round_trip() {
        let buf = frame(b"hello");
        let (h, p) = decode_frame(&buf).expect("valid frame");
        assert_eq!((h.term, h.index, h.kind), (3, 7, EntryKind::Batch));
        assert_eq!(
            (h.batch.partition, h.batch.base_offset, h.batch.count),
            (2, 40, 1)
        );
        assert_eq!((h.batch.producer, h.batch.seq), (5, 9));
        assert_eq!(p, b"hello");
    }

    #[test]
    fn payload_flip_is_reported_with_the_index() {
        let mut buf = frame(b"hello");
        buf[HEADER_LEN + 1] ^= 0x10;
        assert!(matches!(
            decode_frame(&buf),
            Err(FrameError::PayloadChecksum { index: 7, .. })
        ));
    }

    #[test]
    fn header_flip_is_reported() {
        let mut buf = frame(b"hello");
        buf[10] ^= 0x01;
        assert!(matches!(
            decode_frame(&buf),
            Err(FrameError::HeaderChecksum { .. })
        ));
    }

    #[test]
    fn records_round_trip() {
        let recs = vec![
            Bytes::from_static(b"a"),
            Bytes::from_static(b""),
            Bytes::from_static(b"ccc"),
        ];
        let mut out = BytesMut::new();
        encode_records(&recs, &mut out);
        let out = out.freeze();
        assert_eq!(decode_records(&out, 3), Ok(recs));
        assert_eq!(decode_records(&out, 2), Err(BatchError::TrailingBytes(7)));
        assert_eq!(
            decode_records_range(&out, 3, 1, 5),
            Ok(vec![Bytes::from_static(b""), Bytes::from_static(b"ccc")])
        );
        assert_eq!(
            decode_records_range(&out, 3, 0, 1),
            Ok(vec![Bytes::from_static(b"a")])
        );
        assert_eq!(decode_records_range(&out, 3, 3, 1), Ok(vec![]));
        assert_eq!(
            decode_records_range(&out, 4, 0, 1),
            Err(BatchError::Truncated { at: 16 })
        );
    }

    #[test]
    fn payload_length_limit_is_inclusive() {
        let mut buf = frame(b"");
        // Claim exactly the limit, then one more, with the header CRC recomputed.
        let claim = |buf: &mut BytesMut, len: u32| {
            buf[4..8].copy_from_slice(&len.to_le_bytes());
            let crc = crc32fast::hash(&buf[..HEADER_LEN - 4]);
            buf[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        };
        claim(&mut buf, MAX_PAYLOAD_LEN);
        assert_eq!(
            decode_header(&buf).map(|h| h.payload_len),
            Ok(MAX_PAYLOAD_LEN)
        );
        claim(&mut buf, MAX_PAYLOAD_LEN + 1);
        assert_eq!(
            decode_header(&buf),
            Err(FrameError::TooLarge(MAX_PAYLOAD_LEN + 1))
        );
    }

    #[test]
    fn a_short_payload_says_how_short() {
        let buf = frame(b"hello");
        let h = decode_header(&buf).expect("header");
        assert_eq!(
            check_payload(&h, &buf[HEADER_LEN..HEADER_LEN + 2]),
            Err(FrameError::Truncated {
                needed: HEADER_LEN + 5,
                available: HEADER_LEN + 2
            })
        );
    }

    #[test]
    fn record_ranges_at_the_edges() {
        let recs = vec![
            Bytes::from_static(b"ab"),
            Bytes::from_static(b"cdef"),
            Bytes::from_static(b""),
        ];
        let mut out = BytesMut::new();
        encode_records(&recs, &mut out);
        let out = out.freeze();
        // A trailing empty record is a whole record.
        assert_eq!(decode_records(&out, 3), Ok(recs.clone()));
        assert_eq!(
            decode_records_range(&out, 3, 1, 1),
            Ok(vec![recs[1].clone()])
        );
        // Cut inside the second record's length prefix, then inside its bytes: the error says
        // where each time.
        assert_eq!(
            decode_records_range(&out.slice(..9), 3, 0, 3),
            Err(BatchError::Truncated { at: 6 })
        );
        assert_eq!(
            decode_records_range(&out.slice(..12), 3, 0, 3),
            Err(BatchError::Truncated { at: 10 })
        );
    }

    proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../proptest-regressions/codec.txt"
        )))),
        ..ProptestConfig::default()
    })]

        /// No byte sequence makes the decoders panic.
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), count in 0u32..50) {
            let _ = decode_frame(&bytes);
            let _ = decode_records(&Bytes::from(bytes), count);
        }

        /// Any single bit flip in a frame is detected.
        #[test]
        fn every_single_bit_flip_is_detected(payload in proptest::collection::vec(any::<u8>(), 0..64), bit in 0usize..1000) {
            let mut buf = frame(&payload);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode_frame(&buf).is_err());
        }
    }
}
