//! Tiering: the leader uploads sealed, committed runs of its log to the object store, proposes a
//! manifest entry once the store confirmed the PUT, and every replica trims its WAL below what
//! the applied manifest covers (never past its own commit index), keeping a snapshot of what
//! the trimmed entries meant.
//!
//! What real systems got wrong, and what sq does instead (REPLICATION-NOTES §4):
//! - an object's key carries the uploader's term and the CRC, so a deposed leader's late PUT
//!   never overwrites another leader's object (redpanda#3272);
//! - a manifest entry is proposed only after the PUT is confirmed, and applied only at commit;
//!   an entry whose range does not start right after what is covered is ignored, so a range is
//!   never served from two objects (KAFKA-15168);
//! - an upload completed for an old term is dropped (redpanda#4007);
//! - a new leader lists the store and deletes objects no manifest entry can ever apply
//!   (redpanda#8560, KAFKA-16511);
//! - while the store is down, uploads retry with backoff and the WAL grows; the disk budget
//!   turns into definite `StorageFull` for producers (KAFKA-19952).

use crate::base::Base;
use crate::node::{Node, Output};
use crate::status::Role;
use crate::timer::Timer;
use bytes::Bytes;
use sq_core::codec::{BatchMeta, EntryKind, FrameHeader};
use sq_core::{GroupOp, Time};
use sq_storage::tier::{encode_object, OBJECT_PREFIX};
use sq_storage::{
    Disk, DiskError, ObjectDesc, Snapshot, SnapshotError, StoreError, StoreOk, StoreOp, WalError,
};
use std::collections::BTreeMap;
use std::rc::Rc;

/// How a node tiers its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierConfig {
    /// Whether the cluster has an object store: without one nothing is uploaded or trimmed.
    pub enabled: bool,
    /// The first wait (ns) before a failed upload is tried again; it doubles up to `retry_max`.
    pub retry_min: u64,
    /// See `retry_min`.
    pub retry_max: u64,
    /// How many decoded objects the leader keeps in memory to serve fetches (at least one).
    pub cache_objects: usize,
    /// A leader lists the store for orphans when it starts leading and after this many
    /// applied objects.
    pub list_every: u32,
    /// An object holds the sealed, committed segments waiting to upload, up to about this many
    /// bytes of entries (always at least one segment): a backlog uploads in a few PUTs, not one
    /// PUT and one manifest round per segment.
    pub max_object_bytes: usize,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            enabled: false,
            retry_min: 5 * Time::MILLI,
            retry_max: 200 * Time::MILLI,
            cache_objects: 2,
            list_every: 16,
            max_object_bytes: 1 << 20,
        }
    }
}

/// An upload in flight.
#[derive(Clone, Debug)]
struct Upload {
    token: u64,
    term: u64,
    desc: ObjectDesc,
}

/// A GET in flight, and the fetches waiting for it.
#[derive(Clone, Debug)]
pub(crate) struct StoreRead {
    pub desc: ObjectDesc,
    pub waiters: Vec<crate::store_read::ParkedFetch>,
}

/// A decoded, CRC-checked object.
pub(crate) type Decoded = Rc<Vec<(FrameHeader, Bytes)>>;

/// The tiering state of one replica.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tiering {
    /// The applied manifest: objects in index order, contiguous from index 1.
    pub manifest: Vec<ObjectDesc>,
    /// Per partition: an object's first offset of the partition -> its position in `manifest`.
    pub by_offset: Vec<BTreeMap<u64, usize>>,
    /// Manifest entries in the log, not yet applied: log index -> description.
    pub pending: BTreeMap<u64, ObjectDesc>,
    upload: Option<Upload>,
    /// Leader: the index of the manifest entry it proposed, until it commits.
    proposed: Option<u64>,
    backoff: u64,
    retry_at: Option<Time>,
    /// Leader: the listing in flight, and how many objects were applied since the last one.
    listing: Option<u64>,
    /// Leader: no listing before then (a failed one waits as a failed upload does).
    list_after: Option<Time>,
    listed_term: u64,
    applied_since_listing: u32,
    /// GETs in flight by token.
    pub reads: BTreeMap<u64, StoreRead>,
    /// Recently decoded objects, the newest last.
    pub cache: Vec<(String, Decoded)>,
}

impl Tiering {
    /// The last index the applied manifest covers (0: none).
    pub fn covered(&self) -> u64 {
        self.manifest.last().map_or(0, |d| d.last)
    }

    /// Replaces the applied manifest (from a snapshot).
    pub fn set_manifest(&mut self, manifest: Vec<ObjectDesc>, partitions: u32) {
        self.manifest = Vec::new();
        self.by_offset = vec![BTreeMap::new(); partitions as usize];
        for d in manifest {
            self.push(d);
        }
    }

    fn push(&mut self, d: ObjectDesc) {
        let pos = self.manifest.len();
        for s in &d.spans {
            if let Some(m) = self.by_offset.get_mut(s.partition as usize) {
                m.insert(s.start, pos);
            }
        }
        self.manifest.push(d);
    }

    /// Applies a committed manifest entry: it extends the manifest only if it starts right
    /// after what is covered; anything else (a range another object already covers, a gap) is
    /// an orphan and is ignored, so that no entry is ever served from two objects.
    pub fn apply(&mut self, d: ObjectDesc) -> bool {
        if d.first != self.covered() + 1 {
            return false;
        }
        self.push(d);
        self.applied_since_listing += 1;
        true
    }

    /// Whether `key` is an object of the applied manifest.
    pub fn in_manifest(&self, key: &str, first: u64) -> bool {
        let k = self.manifest.partition_point(|d| d.first < first);
        self.manifest.get(k).is_some_and(|d| d.key() == key)
    }

    /// The object holding `offset` of `partition`, if the manifest has one.
    pub fn object_for(&self, partition: u32, offset: u64) -> Option<&ObjectDesc> {
        let (_, &pos) = self
            .by_offset
            .get(partition as usize)?
            .range(..=offset)
            .next_back()?;
        let d = self.manifest.get(pos)?;
        d.span(partition)
            .is_some_and(|s| (s.start..s.end).contains(&offset))
            .then_some(d)
    }

    /// Forgets a proposed manifest entry past `last` (cut from the log): the object is uploaded
    /// again (under the same key) and proposed anew.
    pub fn forget_proposal_after(&mut self, last: u64) {
        if self.proposed.is_some_and(|p| p > last) {
            self.proposed = None;
        }
    }

    /// A leader that stops leading forgets its uploads (their completions are dropped).
    pub fn lose_office(&mut self) {
        self.upload = None;
        self.proposed = None;
        self.retry_at = None;
        self.listing = None;
    }
}

impl Node {
    /// After every input: trim what the store covers, upload what is ready, look for orphans.
    pub(crate) fn housekeeping(&mut self, now: Time, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        if self.failed.is_some() || !self.config.tier.enabled {
            return;
        }
        self.maybe_trim(disk, out);
        self.maybe_upload(now, disk, out);
        self.maybe_list(now, out);
    }

    pub(crate) fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Leader: uploads the next sealed, committed run of its log, the entries from just after
    /// what the manifest covers to the end of the WAL segment holding the first of them.
    fn maybe_upload(&mut self, now: Time, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        let t = &self.tier;
        if self.role != Role::Leader
            || self.commit_index < self.ready_index
            || t.upload.is_some()
            || t.proposed.is_some()
            || t.retry_at.is_some_and(|at| now < at)
        {
            return;
        }
        let next = t.covered() + 1;
        let bounds = self.wal.segment_bounds();
        let Some(k) = bounds.iter().position(|&(f, l)| f <= next && next <= l) else {
            return;
        };
        let mut last = bounds[k].1;
        if k + 1 == bounds.len() || last > self.commit_index {
            // The segment is still open, or not all committed.
            return;
        }
        let frame_bytes = |from: u64, to: u64| -> usize {
            (from..=to)
                .map(|i| self.wal.header(i).map_or(0, |h| h.frame_len()))
                .sum()
        };
        let mut bytes = frame_bytes(next, last);
        for &(first, l) in &bounds[k + 1..bounds.len() - 1] {
            if l > self.commit_index {
                break;
            }
            let more = frame_bytes(first, l);
            if bytes + more > self.config.tier.max_object_bytes {
                break;
            }
            bytes += more;
            last = l;
        }
        let mut entries = Vec::with_capacity((last - next + 1) as usize);
        for i in next..=last {
            match self.wal.read(disk, i) {
                Ok(e) => entries.push(e),
                Err(WalError::Corrupt { .. }) => return self.damaged(now, i, disk, out),
                Err(e) => {
                    return self.fail(format!("reading entry {i} to upload failed: {e}"), out)
                }
            }
        }
        let (data, desc) = encode_object(self.meta.term, &entries);
        let token = self.token();
        out.push(Output::Store {
            token,
            op: StoreOp::Put {
                key: desc.key(),
                data,
            },
        });
        self.tier.upload = Some(Upload {
            token,
            term: self.meta.term,
            desc,
        });
    }

    /// A store call finished.
    pub(crate) fn stored(
        &mut self,
        now: Time,
        token: u64,
        result: Result<StoreOk, StoreError>,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        if self.failed.is_some() {
            return;
        }
        if self.tier.upload.as_ref().is_some_and(|u| u.token == token) {
            let Some(up) = self.tier.upload.take() else {
                return;
            };
            return self.uploaded(now, up, result, disk, out);
        }
        if self.tier.listing == Some(token) {
            self.tier.listing = None;
            match result {
                Ok(StoreOk::Listed(objects)) => self.delete_orphans(objects, out),
                // Listed again later, whatever happens meanwhile.
                _ => {
                    self.tier.listed_term = 0;
                    self.tier.list_after = Some(now + self.config.tier.retry_max);
                }
            }
            return;
        }
        if let Some(read) = self.tier.reads.remove(&token) {
            self.read_done(read, result, disk, out);
        }
        // A delete's outcome changes nothing: an orphan left behind is found by the next
        // listing, and is never served meanwhile.
    }

    /// The PUT of `up` finished: propose its manifest entry if this node still leads the term
    /// it uploaded in; retry later if it failed.
    fn uploaded(
        &mut self,
        now: Time,
        up: Upload,
        result: Result<StoreOk, StoreError>,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        if self.role != Role::Leader || self.meta.term != up.term {
            // Deposed meanwhile: the object is an orphan the next leader cleans up.
            return;
        }
        match result {
            Ok(StoreOk::Put) => {
                let mut payload = Vec::new();
                up.desc.encode(&mut payload);
                let meta = BatchMeta::default();
                match self.append(now, EntryKind::Manifest, &meta, &payload, disk) {
                    Ok(index) => {
                        self.tier.pending.insert(index, up.desc);
                        self.tier.proposed = Some(index);
                        self.replicate(now, disk, out);
                    }
                    Err(WalError::NoSpace) => self.retry_later(now),
                    Err(e) => self.fail(format!("appending a manifest entry failed: {e}"), out),
                }
            }
            _ => self.retry_later(now),
        }
    }

    fn retry_later(&mut self, now: Time) {
        self.probes.hit(sq_core::Probe::UploadRetried);
        let t = &mut self.tier;
        t.backoff = if t.backoff == 0 {
            self.config.tier.retry_min
        } else {
            (t.backoff * 2).min(self.config.tier.retry_max)
        };
        let at = now + t.backoff;
        t.retry_at = Some(at);
        self.timers.set(Timer::Upload, at);
    }

    /// Applies the manifest entry at `index`, now committed.
    pub(crate) fn apply_manifest(&mut self, index: u64) {
        let Some(desc) = self.tier.pending.remove(&index) else {
            panic!("invariant: manifest entry {index} committed without its description");
        };
        self.tier.apply(desc);
        if self.tier.proposed.is_some_and(|p| p <= index) {
            self.tier.proposed = None;
            self.tier.backoff = 0;
            self.tier.retry_at = None;
        }
    }

    /// Leader: lists the store for orphans once per term it leads, and again every
    /// `list_every` applied objects.
    fn maybe_list(&mut self, now: Time, out: &mut Vec<Output>) {
        let t = &self.tier;
        if self.role != Role::Leader
            || self.commit_index < self.ready_index
            || t.listing.is_some()
            || t.list_after.is_some_and(|at| now < at)
        {
            return;
        }
        if t.listed_term == self.meta.term && t.applied_since_listing < self.config.tier.list_every
        {
            return;
        }
        let token = self.token();
        self.tier.listing = Some(token);
        self.tier.listed_term = self.meta.term;
        self.tier.applied_since_listing = 0;
        out.push(Output::Store {
            token,
            op: StoreOp::List {
                prefix: OBJECT_PREFIX.to_string(),
            },
        });
    }

    /// Deletes listed objects that no manifest entry can ever apply: they end at or before what
    /// is covered and are not the manifest's own. Objects beyond it are left: an entry naming
    /// one may still commit.
    fn delete_orphans(&mut self, objects: Vec<sq_storage::ObjectInfo>, out: &mut Vec<Output>) {
        if self.role != Role::Leader {
            return;
        }
        let covered = self.tier.covered();
        for o in objects {
            let Some((first, last, _, _)) = ObjectDesc::parse_key(&o.key) else {
                continue;
            };
            if last <= covered && !self.tier.in_manifest(&o.key, first) {
                self.probes.hit(sq_core::Probe::OrphanDeleted);
                let token = self.token();
                out.push(Output::Store {
                    token,
                    op: StoreOp::Delete { key: o.key },
                });
            }
        }
    }

    /// Trims the WAL segments that lie wholly at or below what the manifest covers and this
    /// replica has committed, after storing a snapshot of what they meant.
    fn maybe_trim(&mut self, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        let upto = self.tier.covered().min(self.commit_index);
        let bounds = self.wal.segment_bounds();
        let Some(&(_, at)) = bounds[..bounds.len().saturating_sub(1)]
            .iter()
            .take_while(|&&(_, l)| l <= upto)
            .last()
        else {
            return;
        };
        if at <= self.base.last_index() {
            return;
        }
        let mut producers = self.base.producers.clone();
        let mut groups = self.base.groups.clone();
        for i in self.base.last_index() + 1..=at {
            if let Some(h) = self.wal.header(i) {
                producers.apply(h.kind, &h.batch, i);
                if h.kind == EntryKind::Group {
                    match GroupOp::from_meta(&h.batch) {
                        Ok(op) => groups.apply(&op),
                        Err(e) => panic!("invariant: entry {i} was taken in as a group entry: {e}"),
                    }
                }
            }
        }
        let starts: Vec<u64> = self
            .partitions
            .iter()
            .map(|p| {
                p.batches
                    .iter()
                    .find(|b| b.index > at)
                    .map_or(p.next_offset(), |b| b.base_offset)
            })
            .collect();
        let mut snapshot = Snapshot {
            last_index: at,
            last_term: self.term_at(at),
            manifest: self.tier.manifest.clone(),
            state: Base::encode_state(&starts, &producers, &groups),
            version: self.base.snapshot.version,
        };
        let stored = snapshot.store(disk);
        // A failed store may have written a copy of this version: never reuse it.
        self.base.snapshot.version = snapshot.version;
        match stored {
            Ok(()) => {}
            // Durable once: the trim goes on (a restart would find the snapshot).
            Err(e) if e.is_durable() => {}
            // No room for the snapshot: keep the WAL as it is, and try at the next input.
            Err(SnapshotError::Disk(DiskError::NoSpace { .. })) => return,
            Err(e) => return self.fail(format!("storing a snapshot failed: {e}"), out),
        }
        if let Err(e) = self.wal.trim_to(disk, at) {
            return self.fail(format!("trimming the WAL to {at} failed: {e}"), out);
        }
        for p in &mut self.partitions {
            p.trim(at);
        }
        self.base = Base {
            snapshot,
            producers,
            starts,
            groups,
        };
    }
}
