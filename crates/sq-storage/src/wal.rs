//! The write-ahead log: segment files of frames, an in-memory index of where each entry is.

use crate::disk::{Disk, DiskError};
use crate::error::WalError;
use bytes::{Bytes, BytesMut};
use sq_core::codec::{self, BatchMeta, EntryKind, FrameError, FrameHeader, HEADER_LEN};

const SEGMENT_PREFIX: &str = "wal-";
const SEGMENT_SUFFIX: &str = ".log";

/// How the WAL lays out its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// A segment is sealed and a new one started once it holds at least this many bytes.
    pub segment_bytes: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes: 64 << 10,
        }
    }
}

/// Where an entry's frame lies on disk (for the simulator's checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameLocation {
    /// The segment file.
    pub file: String,
    /// The frame's first byte.
    pub pos: u64,
    /// The frame's length, header included.
    pub len: u64,
}

/// A sync the WAL needs: the file, and the last index it makes durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    /// The segment file to sync.
    pub file: String,
    /// Every entry up to this index is durable once the sync succeeds.
    pub upto: u64,
}

/// What recovery does with damage: a frame that fails a checksum (payload, or a header that is
/// not merely cut short at the end of the log), a frame or segment out of place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDamage {
    /// A node alone: keep payload-damaged frames as holes never served (their identity is in
    /// their checked header), cut unreadable bytes at the end of the last segment as a torn
    /// write, and refuse to start ([`WalError::Unrecoverable`]) on damage it cannot bound.
    Refuse,
    /// Change nothing and answer [`WalError::Damaged`] at the first damage, so that the caller
    /// can record that it is about to lose entries before it does ([`OnDamage::Cut`]). Only a
    /// frame cut short at the end of the log counts as a torn write: a torn write leaves a prefix
    /// of what was written, so a complete frame that fails a checksum was damaged after it
    /// landed, and may have been acknowledged.
    Report,
    /// Cut the log at the first damage, as [`OnDamage::Report`] finds it: later segments are
    /// deleted (the last first), the damaged one is cut before the damaged frame.
    Cut,
}

/// Damage found in one segment.
#[derive(Clone, Debug)]
struct Damage {
    index: u64,
    pos: u64,
    detail: String,
}

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Entries recovered, damaged ones included.
    pub entries: u64,
    /// Bytes cut from the tail of the last segment: a torn write after the last sync.
    pub truncated_bytes: u64,
    /// Indexes whose frames failed their payload CRC: kept in place, never served.
    pub damaged: Vec<u64>,
    /// With [`OnDamage::Cut`]: the index from which the log was cut because of damage.
    pub cut_from: Option<u64>,
}

#[derive(Clone, Debug)]
struct Segment {
    name: String,
    first_index: u64,
    len: u64,
}

/// What a scan of one segment's bytes found.
#[derive(Debug, Default)]
struct Scan {
    slots: Vec<Slot>,
    damaged: Vec<u64>,
    /// The length of the valid prefix: what follows is a torn tail, or damage.
    keep: usize,
    /// Damage that ends the scan (not with [`OnDamage::Refuse`], which refuses instead).
    damage: Option<Damage>,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    header: FrameHeader,
    pos: u64,
    damaged: bool,
}

/// The log. Indexes start at 1 and are contiguous; index `i` is `slots[i - first_index]`.
#[derive(Clone, Debug)]
pub struct Wal {
    config: WalConfig,
    segments: Vec<Segment>,
    slots: Vec<Slot>,
    first_index: u64,
    synced_index: u64,
    poisoned: Option<String>,
    scratch: BytesMut,
    probes: sq_core::Probes,
}

fn segment_name(first_index: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_index:020}{SEGMENT_SUFFIX}")
}

/// The first index of a segment file, if `name` is exactly what [`segment_name`] writes for an
/// index in `1..2^63` (so that index arithmetic can never overflow). Other files are not ours.
fn parse_segment_name(name: &str) -> Option<u64> {
    let index: u64 = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?
        .parse()
        .ok()?;
    ((1..1 << 63).contains(&index) && segment_name(index) == name).then_some(index)
}

/// The position of the first checked frame header at or after `from`, if any.
fn next_valid_header(data: &[u8], from: usize) -> Option<usize> {
    let magic = codec::FRAME_MAGIC.to_le_bytes();
    (from..data.len().saturating_sub(HEADER_LEN - 1))
        .find(|&q| data[q..q + 4] == magic && codec::decode_header(&data[q..]).is_ok())
}

/// True for the names of WAL segment files.
pub fn is_segment_file(name: &str) -> bool {
    parse_segment_name(name).is_some()
}

impl Wal {
    /// Opens the WAL on `disk`, recovering whatever segments are there, and syncs what it keeps,
    /// so that every entry the returned WAL holds is durable.
    pub fn open(disk: &mut dyn Disk, config: WalConfig) -> Result<(Wal, Recovery), WalError> {
        Wal::open_with(disk, config, OnDamage::Refuse)
    }

    /// Opens the WAL as [`Wal::open`] does, handling damage as `on_damage` says.
    pub fn open_with(
        disk: &mut dyn Disk,
        config: WalConfig,
        on_damage: OnDamage,
    ) -> Result<(Wal, Recovery), WalError> {
        Wal::open_after(disk, config, on_damage, 0)
    }

    /// Opens the WAL of a replica whose snapshot covers every entry up to `base`: the log
    /// continues from `base + 1`. Segments that end before `base` (a trim, or the drop of a log
    /// a snapshot replaced, that a crash cut short) are deleted unread, the first first: damage
    /// in them is damage to nothing. The segment holding `base` is kept, so that the caller can
    /// check the log against the snapshot before it trims it ([`Wal::trim_to`]) or drops the log
    /// ([`Wal::reset`]). An empty log starts at `base + 1`; a first segment that starts after
    /// `base + 1` is a hole, handled as `on_damage` says.
    pub fn open_after(
        disk: &mut dyn Disk,
        config: WalConfig,
        on_damage: OnDamage,
        base: u64,
    ) -> Result<(Wal, Recovery), WalError> {
        let mut names: Vec<(u64, String)> = disk
            .list()?
            .into_iter()
            .filter_map(|n| parse_segment_name(&n).map(|i| (i, n)))
            .collect();
        names.sort();
        // A segment ends before `base` when the next one starts at or below it.
        while names.len() > 1 && names[1].0 <= base {
            disk.delete(&names[0].1)?;
            names.remove(0);
        }
        let first_index = match names.first() {
            Some((i, _)) if *i <= base.saturating_add(1) => *i,
            _ => base + 1,
        };
        let mut wal = Wal {
            config,
            segments: Vec::new(),
            slots: Vec::new(),
            first_index,
            synced_index: 0,
            poisoned: None,
            scratch: BytesMut::new(),
            probes: sq_core::Probes::default(),
        };
        let mut report = Recovery::default();
        let count = names.len();
        for k in 0..count {
            let (first_index, name) = names[k].clone();
            let is_last = k + 1 == count;
            let expected = wal.next_index();
            let (len, damage) = if first_index != expected {
                let detail = format!("segment starts at index {first_index}, expected {expected}");
                if on_damage == OnDamage::Refuse {
                    return Err(WalError::Unrecoverable {
                        file: name,
                        pos: 0,
                        detail,
                    });
                }
                let d = Damage {
                    index: expected,
                    pos: 0,
                    detail,
                };
                (0, Some(d))
            } else {
                wal.recover_segment(disk, &name, is_last, on_damage, &mut report)?
            };
            if let Some(d) = damage {
                if on_damage == OnDamage::Report {
                    return Err(WalError::Damaged {
                        index: d.index,
                        file: name,
                        pos: d.pos,
                        detail: d.detail,
                    });
                }
                // Cut: the later segments go first, the last of them first, so that a crash
                // midway leaves a shorter log, never one with a hole; then the damaged one is cut.
                for (_, later) in names[k + 1..].iter().rev() {
                    disk.delete(later)?;
                }
                if first_index != expected {
                    disk.delete(&name)?;
                } else {
                    disk.truncate(&name, d.pos)?;
                    wal.segments.push(Segment {
                        name,
                        first_index,
                        len: d.pos,
                    });
                }
                report.cut_from = Some(d.index);
                break;
            }
            wal.segments.push(Segment {
                name,
                first_index,
                len,
            });
        }
        // Frames that survived a crash in the page cache are not durable yet: make them so
        // before anyone relies on them.
        wal.sync_now(disk)?;
        report.entries = wal.slots.len() as u64;
        Ok((wal, report))
    }

    /// Scans one segment, appending its slots; returns the length kept. A scan that finds
    /// anything but clean frames to the end (a tail to cut, a damaged frame, a reason to refuse)
    /// reads the file again first: a misread returns another place's bytes once, so the file is
    /// re-read until two reads agree, and only then is anything cut, kept as damaged or refused.
    fn recover_segment(
        &mut self,
        disk: &mut dyn Disk,
        name: &str,
        is_last: bool,
        on_damage: OnDamage,
        report: &mut Recovery,
    ) -> Result<(u64, Option<Damage>), WalError> {
        const MAX_READS: u32 = 4;
        let read = |disk: &mut dyn Disk| -> Result<Vec<u8>, WalError> {
            let mut data = vec![0u8; disk.len(name)? as usize];
            disk.read(name, 0, &mut data)?;
            Ok(data)
        };
        let mut data = read(disk)?;
        let mut scan = self.scan_segment(&data, name, is_last, on_damage);
        let mut reads = 1;
        while reads < MAX_READS
            && !scan
                .as_ref()
                .is_ok_and(|s| s.keep == data.len() && s.damaged.is_empty() && s.damage.is_none())
        {
            let again = read(disk)?;
            reads += 1;
            if again == data {
                break;
            }
            data = again;
            scan = self.scan_segment(&data, name, is_last, on_damage);
        }
        let scan = scan?;
        report.damaged.extend(&scan.damaged);
        self.slots.extend(scan.slots);
        if scan.damage.is_some() {
            // The caller reports or cuts; nothing is changed here.
            return Ok((scan.keep as u64, scan.damage));
        }
        if scan.keep < data.len() {
            report.truncated_bytes += (data.len() - scan.keep) as u64;
            self.probes.hit(sq_core::Probe::TornTailCut);
            disk.truncate(name, scan.keep as u64)?;
        }
        Ok((scan.keep as u64, None))
    }

    /// Scans the bytes of one segment whose first entry is the next index: the frames it holds,
    /// which of them fail their payload CRC, and how much of it to keep.
    fn scan_segment(
        &self,
        data: &[u8],
        name: &str,
        is_last: bool,
        on_damage: OnDamage,
    ) -> Result<Scan, WalError> {
        let refuse = on_damage == OnDamage::Refuse;
        let mut scan = Scan::default();
        let mut pos = 0usize;
        while pos < data.len() {
            let rest = &data[pos..];
            let expected = self.next_index() + scan.slots.len() as u64;
            // Without refusing, damage ends the scan where it is.
            let damaged = |scan: &mut Scan, detail: String| {
                scan.damage = Some(Damage {
                    index: expected,
                    pos: pos as u64,
                    detail,
                });
            };
            let header = match codec::decode_header(rest) {
                Ok(h) if rest.len() >= h.frame_len() => h,
                // A checked header whose frame runs past the end: the last write, torn.
                Ok(_) if is_last => break,
                // A header cut short at the end of the log: the last write, torn.
                Err(FrameError::Truncated { .. }) if is_last && !refuse => break,
                // Anything else unreadable is damage: a torn write leaves a prefix.
                Err(e) if !refuse => {
                    damaged(&mut scan, format!("frame header unreadable: {e}"));
                    break;
                }
                Ok(h) if !refuse => {
                    let detail = format!(
                        "frame of index {} is cut short in a sealed segment",
                        h.index
                    );
                    damaged(&mut scan, detail);
                    break;
                }
                // Garbage at the end of the last segment is a torn write after the last sync,
                // unless a valid frame follows it: then synced data was damaged, and the entries
                // in between (their partitions and offsets unknown) cannot be rebuilt. Refuse
                // rather than silently drop what follows.
                Err(
                    FrameError::Truncated { .. }
                    | FrameError::BadMagic { .. }
                    | FrameError::HeaderChecksum { .. },
                ) if is_last => match next_valid_header(data, pos + 1) {
                    None => break,
                    Some(q) => {
                        return Err(WalError::Unrecoverable {
                            file: name.to_string(),
                            pos: pos as u64,
                            detail: format!(
                                "unreadable frame header followed by a valid frame at {q}: \
                                 synced data is corrupt, not torn"
                            ),
                        })
                    }
                },
                Ok(h) => {
                    return Err(WalError::Unrecoverable {
                        file: name.to_string(),
                        pos: pos as u64,
                        detail: format!(
                            "frame of index {} is cut short in a sealed segment",
                            h.index
                        ),
                    })
                }
                // Includes a header that passes its CRC but names an unknown kind or too large
                // a payload: never a torn write.
                Err(e) => {
                    return Err(WalError::Unrecoverable {
                        file: name.to_string(),
                        pos: pos as u64,
                        detail: format!("frame header unreadable: {e}"),
                    })
                }
            };
            if header.index != expected && !refuse {
                damaged(
                    &mut scan,
                    format!("frame has index {}, expected {expected}", header.index),
                );
                break;
            }
            if header.index != expected {
                return Err(WalError::Unrecoverable {
                    file: name.to_string(),
                    pos: pos as u64,
                    detail: format!("frame has index {}, expected {expected}", header.index),
                });
            }
            let damaged_payload = codec::check_payload(&header, &rest[HEADER_LEN..]).is_err();
            if damaged_payload && !refuse {
                damaged(
                    &mut scan,
                    format!("payload of index {} fails its CRC", header.index),
                );
                break;
            }
            if damaged_payload {
                scan.damaged.push(header.index);
            }
            scan.slots.push(Slot {
                header,
                pos: pos as u64,
                damaged: damaged_payload,
            });
            pos += header.frame_len();
        }
        scan.keep = pos;
        Ok(scan)
    }

    /// The index the next append gets.
    pub fn next_index(&self) -> u64 {
        self.first_index + self.slots.len() as u64
    }

    /// The first index held.
    pub fn first_index(&self) -> u64 {
        self.first_index
    }

    /// The last index held, or `first_index - 1` when empty.
    pub fn last_index(&self) -> u64 {
        self.next_index() - 1
    }

    /// The last index known to be durable.
    pub fn synced_index(&self) -> u64 {
        self.synced_index
    }

    /// The checked header of entry `index`, from memory.
    pub fn header(&self, index: u64) -> Option<&FrameHeader> {
        self.slot(index).map(|s| &s.header)
    }

    fn slot(&self, index: u64) -> Option<&Slot> {
        index
            .checked_sub(self.first_index)
            .and_then(|i| self.slots.get(i as usize))
    }

    fn segment_of(&self, index: u64) -> Option<&Segment> {
        let k = self
            .segments
            .partition_point(|s| s.first_index <= index)
            .checked_sub(1)?;
        self.segments.get(k)
    }

    /// Where entry `index`'s frame is on disk.
    pub fn locate(&self, index: u64) -> Option<FrameLocation> {
        let slot = self.slot(index)?;
        let seg = self.segment_of(index)?;
        Some(FrameLocation {
            file: seg.name.clone(),
            pos: slot.pos,
            len: slot.header.frame_len() as u64,
        })
    }

    fn check_poisoned(&self) -> Result<(), WalError> {
        match &self.poisoned {
            Some(why) => Err(WalError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// Appends one entry (not yet durable: see [`Wal::sync`]). Returns its index.
    /// A batch entry carries its batch header in `batch` (zeros for other kinds).
    pub fn append(
        &mut self,
        disk: &mut dyn Disk,
        term: u64,
        kind: EntryKind,
        batch: &BatchMeta,
        payload: &[u8],
    ) -> Result<u64, WalError> {
        self.check_poisoned()?;
        let index = self.next_index();
        // A segment is sealed only once everything in it is durable, so that only the last
        // segment can ever hold unsynced bytes and recovery may treat damage anywhere else as
        // real damage. A full segment whose sync is still in flight grows a little past its size.
        let needs_roll = self.segments.last().is_none_or(|s| {
            s.len >= self.config.segment_bytes
                && s.len > 0
                && self.synced_index == self.last_index()
        });
        if needs_roll {
            self.segments.push(Segment {
                name: segment_name(index),
                first_index: index,
                len: 0,
            });
        }
        self.scratch.clear();
        codec::encode_frame(term, index, kind, batch, payload, &mut self.scratch);
        let seg = self
            .segments
            .last_mut()
            .unwrap_or_else(|| panic!("invariant: a segment was pushed above"));
        match disk.append(&seg.name, &self.scratch) {
            Ok(()) => {
                let header = codec::decode_header(&self.scratch)
                    .unwrap_or_else(|e| panic!("invariant: a frame just encoded decodes: {e}"));
                self.slots.push(Slot {
                    header,
                    pos: seg.len,
                    damaged: false,
                });
                seg.len += self.scratch.len() as u64;
                Ok(index)
            }
            Err(err) => {
                // Roll back whatever prefix reached the file, so no partial frame ever exists.
                let (name, len) = (seg.name.clone(), seg.len);
                let undo = if len == 0 {
                    self.segments.pop();
                    match disk.delete(&name) {
                        Err(DiskError::NotFound { .. }) => Ok(()),
                        other => other,
                    }
                } else {
                    disk.truncate(&name, len)
                };
                if let Err(undo_err) = undo {
                    self.poisoned = Some(format!(
                        "rolling back a failed append to {name} failed: {undo_err}"
                    ));
                    return Err(WalError::Poisoned(format!("{err}; then {undo_err}")));
                }
                match err {
                    DiskError::NoSpace { .. } => Err(WalError::NoSpace),
                    other => Err(WalError::Disk(other)),
                }
            }
        }
    }

    /// Syncs every appended entry at once (recovery only: a running node asks for syncs with
    /// [`Wal::sync_request`] and learns of them with [`Wal::synced`]).
    fn sync_now(&mut self, disk: &mut dyn Disk) -> Result<(), WalError> {
        if let Some(seg) = self.segments.last() {
            disk.sync(&seg.name)?;
        }
        self.synced_index = self.last_index();
        Ok(())
    }

    /// What must be synced to make every appended entry durable: the file, and the last index
    /// that a successful sync of it covers. `None` when everything is durable already.
    pub fn sync_request(&self) -> Option<SyncRequest> {
        if self.poisoned.is_some() || self.synced_index >= self.last_index() {
            return None;
        }
        let seg = self.segments.last()?;
        Some(SyncRequest {
            file: seg.name.clone(),
            upto: self.last_index(),
        })
    }

    /// A sync asked for by [`Wal::sync_request`] succeeded: entries up to `upto` are durable
    /// (those since truncated excepted).
    pub fn synced(&mut self, upto: u64) {
        self.synced_index = self.synced_index.max(upto.min(self.last_index()));
    }

    /// Removes every entry from `index` on (they were never synced, or conflict with a leader's
    /// log): later segments are deleted, the one holding `index` is cut before it. Durable when
    /// it returns. On a disk error the WAL is poisoned and must be reopened.
    /// How often this WAL reached its rare paths (coverage probes).
    pub fn probes(&self) -> &sq_core::Probes {
        &self.probes
    }

    pub fn truncate_from(&mut self, disk: &mut dyn Disk, index: u64) -> Result<(), WalError> {
        self.check_poisoned()?;
        let index = index.max(self.first_index);
        if index > self.last_index() {
            return Ok(());
        }
        // The first index of the earliest segment deleted: entries from there on are gone with
        // their files.
        let mut deleted_from = self.next_index();
        // The last segment goes first: a crash between two deletes leaves a shorter log, never
        // one with a hole in it.
        while let Some(seg) = self.segments.last() {
            if index > seg.first_index || (index == seg.first_index && self.segments.len() == 1) {
                break;
            }
            let (name, first) = (seg.name.clone(), seg.first_index);
            if let Err(e) = disk.delete(&name) {
                self.poisoned = Some(format!("deleting {name} failed: {e}"));
                return Err(WalError::Disk(e));
            }
            deleted_from = first;
            self.segments.pop();
        }
        let keep = (index - self.first_index) as usize;
        if let (Some(seg), true) = (self.segments.last_mut(), index < deleted_from) {
            let cut = self.slots[keep].pos;
            if cut < seg.len {
                if let Err(e) = disk.truncate(&seg.name, cut) {
                    self.poisoned = Some(format!("truncating {} failed: {e}", seg.name));
                    return Err(WalError::Disk(e));
                }
                seg.len = cut;
            }
        }
        self.slots.truncate(keep);
        self.synced_index = self.synced_index.min(self.last_index());
        Ok(())
    }

    /// Reads entry `index` from disk, checking both CRCs and that the frame is the one expected.
    pub fn read(
        &mut self,
        disk: &mut dyn Disk,
        index: u64,
    ) -> Result<(FrameHeader, Bytes), WalError> {
        self.check_poisoned()?;
        let slot = *self.slot(index).ok_or(WalError::OutOfRange {
            index,
            first: self.first_index,
            last: self.last_index(),
        })?;
        let file = self
            .segment_of(index)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| panic!("invariant: every slot lies in a segment"));
        if slot.damaged {
            return Err(WalError::Corrupt {
                index,
                source: FrameError::PayloadChecksum {
                    index,
                    stored: slot.header.payload_crc,
                    computed: 0,
                },
            });
        }
        // A frame that fails its checks is read once more before it is reported corrupt: a
        // misread returns another place's bytes once; damage stays.
        match Self::read_frame(disk, &file, &slot, index) {
            Err(WalError::Corrupt { .. }) => Self::read_frame(disk, &file, &slot, index),
            other => other,
        }
    }

    fn read_frame(
        disk: &mut dyn Disk,
        file: &str,
        slot: &Slot,
        index: u64,
    ) -> Result<(FrameHeader, Bytes), WalError> {
        let mut buf = vec![0u8; slot.header.frame_len()];
        disk.read(file, slot.pos, &mut buf)?;
        let (header, payload) =
            codec::decode_frame(&buf).map_err(|source| WalError::Corrupt { index, source })?;
        if header != slot.header {
            return Err(WalError::Corrupt {
                index,
                source: FrameError::HeaderChecksum {
                    stored: slot.header.payload_crc,
                    computed: header.payload_crc,
                },
            });
        }
        let start = HEADER_LEN;
        let payload_len = payload.len();
        Ok((header, Bytes::from(buf).slice(start..start + payload_len)))
    }

    /// The bytes the WAL's segment files hold.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Each segment's first and last index, in order (the last one is open for appends).
    pub fn segment_bounds(&self) -> Vec<(u64, u64)> {
        let next = self.next_index();
        self.segments
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let end = self.segments.get(k + 1).map_or(next, |n| n.first_index);
                (s.first_index, end - 1)
            })
            .collect()
    }

    /// Deletes the segments, first first, whose entries all lie at or below `upto`, except the
    /// last segment (open for appends). Returns the first index held after. Durable when it
    /// returns; on a disk error the WAL is poisoned and must be reopened.
    pub fn trim_to(&mut self, disk: &mut dyn Disk, upto: u64) -> Result<u64, WalError> {
        self.check_poisoned()?;
        while self.segments.len() > 1 && self.segments[1].first_index <= upto.saturating_add(1) {
            let seg = self.segments.remove(0);
            if let Err(e) = disk.delete(&seg.name) {
                self.poisoned = Some(format!("deleting {} failed: {e}", seg.name));
                return Err(WalError::Disk(e));
            }
            let next_first = self.segments[0].first_index;
            self.slots.drain(..(next_first - self.first_index) as usize);
            self.first_index = next_first;
        }
        Ok(self.first_index)
    }

    /// Deletes every segment (the last first) and starts the log afresh at `next`: a replica
    /// that takes a leader's snapshot in place of a log that does not match it. Durable when it
    /// returns; on a disk error the WAL is poisoned and must be reopened.
    pub fn reset(&mut self, disk: &mut dyn Disk, next: u64) -> Result<(), WalError> {
        self.check_poisoned()?;
        while let Some(seg) = self.segments.pop() {
            if let Err(e) = disk.delete(&seg.name) {
                self.poisoned = Some(format!("deleting {} failed: {e}", seg.name));
                return Err(WalError::Disk(e));
            }
        }
        self.slots.clear();
        self.first_index = next.max(1);
        self.synced_index = self.first_index - 1;
        Ok(())
    }

    /// The headers of all entries, in index order, with their damage flag.
    pub fn headers(&self) -> impl Iterator<Item = (&FrameHeader, bool)> + '_ {
        self.slots.iter().map(|s| (&s.header, s.damaged))
    }
}
