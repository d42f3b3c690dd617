//! A node's durable image kept up to date as it changes, so that invariants 1 and 2 are checked
//! after every step at a cost that follows what changed, not the size of the log.
//!
//! The disk says which files' durable bytes changed ([`SimDisk::take_durable_changes`]): a file
//! that only grew is parsed from where the last parse stopped; a file rewritten (truncated,
//! flipped, deleted, renamed over) is parsed again from its start, and the batches it held are
//! handed back so that the acked ones among them are checked again. Contiguity (invariant 2) is
//! checked for the changed files against their neighbours in log order, through each partition's
//! per-file spans.

use super::image::{frames_from, BatchIndex, EntryId, ImageFrame};
use crate::disk::SimDisk;
use crate::store::SimStore;
use sq_core::codec::{self, EntryKind, HEADER_LEN};
use sq_model::{Invariant, Violation};
use sq_storage::snapshot::SNAPSHOT_COPIES;
use sq_storage::tier::decode_object;
use sq_storage::wal::is_segment_file;
use sq_storage::{ObjectDesc, Snapshot};
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};
use std::rc::Rc;

/// One segment file's parsed durable bytes.
#[derive(Clone, Debug, Default)]
struct FileScan {
    /// Bytes parsed into whole frames: a parse of a file that only grew resumes here.
    parsed: usize,
    /// Its batch frames in order: (partition, base offset, end offset, position).
    batches: Vec<(u32, u64, u64, usize, u64)>,
    /// The log indexes of all its frames, in order.
    indexes: Vec<u64>,
}

/// A batch as it was: ((partition, base offset), (producer, sequence, records)).
pub type BatchIdent = ((u32, u64), (u64, u64, u32));

/// The durable image of one node's WAL.
#[derive(Clone, Debug, Default)]
pub struct DurableImage {
    files: BTreeMap<String, FileScan>,
    batches: BatchIndex,
    /// Per partition, per file (in log order): the first base offset and the end offset of the
    /// partition's batches in that file.
    spans: BTreeMap<u32, BTreeMap<String, (u64, u64)>>,
    /// Every durable entry by log index: its term, identity and file.
    entries: BTreeMap<u64, (u64, EntryId, Rc<str>, bool)>,
    /// The node's durable snapshot: entries up to its last index live in the store (the image
    /// keeps the ones it saw in the WAL, and loads the others from the store).
    snapshot: Option<Snapshot>,
    /// Whether the last refresh read a new snapshot.
    snapshot_changed: bool,
    /// Per partition, the offsets the store's frames the image holds span.
    store_spans: BTreeMap<u32, (u64, u64)>,
}

/// Where the image keeps entries that left the WAL for the store.
pub const IN_STORE: &str = "(store)";

/// What a refresh changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Batches (partition, base offset) that lay in files re-read from the start or removed:
    /// they may be gone, or changed.
    pub displaced: Vec<(u32, u64)>,
    /// The segment files whose frames changed, in log order (removed ones included).
    pub files: Vec<String>,
    /// Entries that became durable (or durable again): (index, term, identity).
    pub new_entries: Vec<(u64, u64, EntryId)>,
    /// The batches of rewritten or removed files as they were: ((partition, base offset),
    /// (producer, sequence, records)). Some may be durable again where they were.
    pub removed: Vec<BatchIdent>,
    /// Entries that left the WAL because the snapshot covers them (a trim): (index, term,
    /// identity), to be found in the store (invariant 6).
    pub trimmed: Vec<(u64, u64, EntryId)>,
    /// The object descriptions of manifest entries that became durable.
    pub manifests: Vec<(u64, ObjectDesc)>,
}

impl DurableImage {
    /// The batch frames by (partition, base offset).
    pub fn batches(&self) -> &BatchIndex {
        &self.batches
    }

    /// The durable entry at log index `index`: its term and identity.
    pub fn entry(&self, index: u64) -> Option<(u64, EntryId)> {
        self.entries.get(&index).map(|(t, id, _, _)| (*t, *id))
    }

    /// Every durable entry, by log index: (index, term, identity).
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = (u64, u64, EntryId)> + '_ {
        self.entries.iter().map(|(&i, (t, id, _, _))| (i, *t, *id))
    }

    /// Whether the durable entry at `index` passes its payload checksum (its header does, or it
    /// would not be in the image).
    pub fn entry_intact(&self, index: u64) -> Option<bool> {
        self.entries.get(&index).map(|e| e.3)
    }

    /// Whether the image holds entry `index` in the store only (trimmed, or from a snapshot).
    pub fn in_store(&self, index: u64) -> bool {
        self.entries.get(&index).is_some_and(|e| &*e.2 == IN_STORE)
    }

    /// The batch holding `offset` of `partition`, if the image has one.
    pub fn batch_holding(&self, partition: u32, offset: u64) -> Option<&ImageFrame> {
        let (_, f) = self.batches.range(..=(partition, offset)).next_back()?;
        let b = f.header.batch;
        (b.partition == partition && offset < b.base_offset + u64::from(b.count)).then_some(f)
    }

    /// A fresh parse of every segment file of `disk` (for a full check; changes are left for
    /// [`DurableImage::refresh`]).
    pub fn full(disk: &SimDisk, store: &SimStore) -> DurableImage {
        let mut image = DurableImage {
            snapshot: durable_snapshot(disk),
            ..DurableImage::default()
        };
        for file in disk.file_names().filter(|f| is_segment_file(f)) {
            if let Some(bytes) = disk.durable(file) {
                image.parse(file, bytes, &mut Vec::new(), &mut Vec::new());
            }
        }
        image.load_from_store(store, 0);
        image.rebuild_spans();
        image
    }

    /// Takes in what changed on `disk` since the last refresh (entries its snapshot covers that
    /// it never held are read from `store`).
    pub fn refresh(&mut self, disk: &mut SimDisk, store: &SimStore) -> Refreshed {
        let mut out = Refreshed::default();
        let changes = disk.take_durable_changes();
        let before = self.base();
        if changes
            .iter()
            .any(|(f, _)| SNAPSHOT_COPIES.contains(&f.as_str()))
        {
            self.snapshot = durable_snapshot(disk);
        }
        for (file, rewritten) in changes {
            if !is_segment_file(&file) {
                continue;
            }
            // Durable for a moment, then deleted within the same step: what it held counts as
            // removed, so it must be seen first.
            if disk.durable(&file).is_none() {
                if let Some(last) = disk.take_vanished(&file) {
                    self.parse(&file, &last, &mut out.new_entries, &mut out.manifests);
                }
            }
            let bytes = disk.durable(&file);
            if rewritten || bytes.is_none() {
                self.forget_file(&file, &mut out);
            }
            if let Some(bytes) = bytes {
                self.parse(&file, bytes, &mut out.new_entries, &mut out.manifests);
            }
            out.files.push(file);
        }
        disk.clear_vanished();
        let from = out.trimmed.iter().map(|t| t.0 - 1).min().unwrap_or(before);
        if self.base() > before || !out.trimmed.is_empty() {
            self.load_from_store(store, from.min(before));
        }
        out
    }

    /// The partitions' spans afresh: what the snapshot covers (the store's frames), then each
    /// segment's frames after it (those it covers are dead in the WAL, and may even be of a log
    /// the snapshot replaced). Costs the segments' frames, not the whole log.
    fn rebuild_spans(&mut self) {
        let base = self.base();
        self.spans.clear();
        for (&p, &span) in &self.store_spans {
            self.spans
                .entry(p)
                .or_default()
                .insert(IN_STORE.to_string(), span);
        }
        for (file, scan) in &self.files {
            for &(p, start, end, _, _) in scan.batches.iter().filter(|b| b.4 > base) {
                let span = self
                    .spans
                    .entry(p)
                    .or_default()
                    .entry(file.clone())
                    .or_insert((start, end));
                *span = (span.0.min(start), span.1.max(end));
            }
        }
    }

    /// The last index the node's durable snapshot covers (0: none).
    pub fn base(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.last_index)
    }

    /// The node's durable snapshot, if it has one.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Whether the last refresh read a new snapshot.
    pub fn snapshot_changed(&self) -> bool {
        self.snapshot_changed
    }

    /// Entries the snapshot covers that the image does not hold in a WAL segment (trimmed, or
    /// never held: a snapshot installed from a leader), from `after + 1` on: read from the
    /// objects its manifest names, as the store holds them now (as confirmed, and damaged, if
    /// the harness flipped one).
    fn load_from_store(&mut self, store: &SimStore, after: u64) {
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        let base = snapshot.last_index;
        let from = snapshot.manifest.partition_point(|d| d.last <= after);
        let descs: Vec<ObjectDesc> = snapshot.manifest[from..]
            .iter()
            .filter(|d| d.first <= base)
            .cloned()
            .collect();
        let name: Rc<str> = Rc::from(IN_STORE);
        for d in descs {
            // An object flipped in the store still holds what it was confirmed with, damaged,
            // as a flipped frame in a WAL does.
            let key = d.key();
            let now = store.object(&key).and_then(|b| decode_object(b, &d).ok());
            let (entries, intact) = match now {
                Some(entries) => (entries, true),
                None => match store
                    .confirmed(&key)
                    .and_then(|b| decode_object(b, &d).ok())
                {
                    Some(entries) => (entries, false),
                    None => continue,
                },
            };
            for (h, _) in entries
                .into_iter()
                .filter(|(h, _)| h.index > after && h.index <= base)
            {
                let id = EntryId::of(&h);
                // A dead WAL copy that differs (a log a crash kept past the snapshot that
                // replaces it) stays until the file goes, and is checked then.
                if self
                    .entries
                    .get(&h.index)
                    .is_none_or(|e| (e.0, e.1) == (h.term, id))
                {
                    self.entries
                        .insert(h.index, (h.term, id, name.clone(), intact));
                }
                if h.kind == EntryKind::Batch {
                    let b = h.batch;
                    let (start, end) = (b.base_offset, b.base_offset + u64::from(b.count));
                    let span = self.store_spans.entry(b.partition).or_insert((start, end));
                    *span = (span.0.min(start), span.1.max(end));
                    let frame = ImageFrame {
                        file: name.clone(),
                        pos: 0,
                        header: h,
                        intact,
                    };
                    self.batches.insert((b.partition, b.base_offset), frame);
                }
            }
        }
        self.rebuild_spans();
    }

    /// A file was rewritten or removed: its frames are gone. Those the snapshot covers (a trim,
    /// or a log a leader's snapshot replaced) are reported, and the replica's copy of those
    /// indexes is the store's from now on (see [`DurableImage::load_from_store`]).
    fn forget_file(&mut self, file: &str, out: &mut Refreshed) {
        let Some(scan) = self.files.remove(file) else {
            return;
        };
        let base = self.base();
        for (partition, base_offset, _, pos, _) in scan.batches {
            let key = (partition, base_offset);
            if self
                .batches
                .get(&key)
                .is_some_and(|g| &*g.file == file && g.pos == pos)
            {
                if let Some(g) = self.batches.remove(&key) {
                    let b = g.header.batch;
                    if g.header.index > base {
                        out.removed.push((key, (b.producer, b.seq, b.count)));
                    }
                }
            }
            out.displaced.push(key);
        }
        for spans in self.spans.values_mut() {
            spans.remove(file);
        }
        for index in scan.indexes {
            if self.entries.get(&index).is_some_and(|e| &*e.2 == file) {
                if let Some(e) = self.entries.remove(&index) {
                    if index <= base {
                        out.trimmed.push((index, e.0, e.1));
                    }
                }
            }
        }
    }

    /// Parses the frames of `file` from where the last parse stopped. Past bytes that are not
    /// a whole frame it looks for the next one (a header with its magic and a good CRC): damage
    /// in the middle of a file hides nothing that follows it. With none, it stops there (a torn
    /// tail awaiting recovery) and resumes there when the file grows.
    fn parse(
        &mut self,
        file: &str,
        bytes: &[u8],
        new_entries: &mut Vec<(u64, u64, EntryId)>,
        manifests: &mut Vec<(u64, ObjectDesc)>,
    ) {
        let base = self.base();
        let scan = self.files.entry(file.to_string()).or_default();
        let (found, stopped) = frames_from(bytes, scan.parsed);
        let name: Rc<str> = Rc::from(file);
        for (pos, header) in found {
            let id = EntryId::of(&header);
            let intact = codec::check_payload(&header, &bytes[pos + HEADER_LEN..]).is_ok();
            scan.indexes.push(header.index);
            self.entries
                .insert(header.index, (header.term, id, name.clone(), intact));
            new_entries.push((header.index, header.term, id));
            if header.kind == EntryKind::Manifest && intact {
                let payload = &bytes[pos + HEADER_LEN..pos + header.frame_len()];
                if let Ok(desc) = ObjectDesc::decode(&mut &payload[..]) {
                    manifests.push((header.index, desc));
                }
            }
            if header.kind != EntryKind::Batch {
                continue;
            }
            let b = header.batch;
            let end = b.base_offset + u64::from(b.count);
            scan.batches
                .push((b.partition, b.base_offset, end, pos, header.index));
            // A frame the snapshot covers is dead in the WAL (the store holds its entry).
            if header.index > base {
                let span = self
                    .spans
                    .entry(b.partition)
                    .or_default()
                    .entry(file.to_string())
                    .or_insert((b.base_offset, end));
                span.1 = end;
            }
            let frame = ImageFrame {
                file: name.clone(),
                pos,
                header,
                intact,
            };
            self.batches.insert((b.partition, b.base_offset), frame);
        }
        scan.parsed = stopped;
    }

    /// Invariant 2 where `changed` files lie: each partition's batches in them follow on from
    /// the end of that partition in the files before, and the next file with batches of that
    /// partition follows on from them. Unchanged stretches were checked when they changed.
    pub fn check_contiguous(
        &self,
        node: u32,
        changed: &[String],
        partitions: u32,
    ) -> Result<(), Violation> {
        let gap = |p: u32, file: &str, pos: usize, next: u64, found: u64| {
            Violation::new(
                Invariant::Contiguous,
                format!("partition {p} in n{node}'s durable WAL ({file}@{pos})"),
                format!("a batch starting at offset {next}"),
                format!("a batch starting at offset {found}"),
            )
        };
        for file in changed {
            for p in 0..partitions {
                let none = BTreeMap::new();
                let spans = self.spans.get(&p).unwrap_or(&none);
                let mut next = spans
                    .range::<str, _>((Unbounded, Excluded(file.as_str())))
                    .next_back()
                    .map_or(0, |(_, s)| s.1);
                if let Some(scan) = self.files.get(file) {
                    for &(partition, base, end, pos, index) in &scan.batches {
                        if partition != p || index <= self.base() {
                            continue;
                        }
                        if base != next {
                            return Err(gap(p, file, pos, next, base));
                        }
                        next = end;
                    }
                }
                let after = spans
                    .range::<str, _>((Excluded(file.as_str()), Unbounded))
                    .next();
                if let Some((g, &(first, _))) = after {
                    if first != next {
                        let pos = self.files.get(g).map_or(0, |scan| {
                            scan.batches.iter().find(|b| b.0 == p).map_or(0, |b| b.3)
                        });
                        return Err(gap(p, g, pos, next, first));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every segment file the image holds, in log order (for a full check).
    pub fn files(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }
}

/// The latest readable copy of the snapshot among `disk`'s durable bytes.
pub fn durable_snapshot(disk: &SimDisk) -> Option<Snapshot> {
    let copies: Vec<&[u8]> = SNAPSHOT_COPIES
        .iter()
        .filter_map(|f| disk.durable(f))
        .collect();
    // A store writes both copies with the same bytes: decode those once.
    match copies.as_slice() {
        [a, b] if a == b => Snapshot::decode(a).ok(),
        _ => copies
            .iter()
            .filter_map(|b| Snapshot::decode(b).ok())
            .max_by_key(|s| s.version),
    }
}
