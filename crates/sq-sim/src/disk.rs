//! The simulated disk: a directory of files whose writes sit in a page cache until synced.
//!
//! Each file keeps what reads see (the page cache) apart from what is durable. Faults: `NoSpace`
//! past a quota (after writing the prefix that fit, as a real disk does); a process crash, which
//! keeps the page cache (nothing changes here); a power loss, which keeps the durable bytes plus
//! a prefix of the dirty range (so the last write may be torn); I/O errors on an append or a sync,
//! where a failed sync drops dirty pages as Linux may; a countdown after which the disk "dies"
//! mid-operation, so that a crash lands between any two disk calls; latent bit flips in synced
//! data; a misdirected append; a one-shot misread. File creation, rename, truncate and delete
//! are durable at once (there is no directory fsync to model).

use crate::rng::SimRng;
use sq_storage::{Disk, DiskError};
use std::collections::BTreeMap;

/// One file: what reads see (the page cache) and what a power loss now would leave for certain
/// (the durable bytes), kept apart.
#[derive(Clone, Debug, Default)]
struct SimFile {
    /// The page cache: what reads see, synced or not.
    data: Vec<u8>,
    /// The bytes on the medium.
    durable: Vec<u8>,
    /// `data[..clean] == durable[..clean]`; every byte of `data` from `clean` on may be dirty.
    clean: usize,
}

impl SimFile {
    /// Writes `bytes` at `pos` in the page cache (growing the file as needed), marking them dirty.
    fn write_at(&mut self, pos: usize, bytes: &[u8]) {
        let end = pos + bytes.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[pos..end].copy_from_slice(bytes);
        self.clean = self.clean.min(pos);
    }

    /// Makes the page cache durable up to byte `upto` (the whole of it if the file is shorter).
    /// Durable bytes past what is written back are the old ones, so a rewritten range may end
    /// half old, half new: what a crash would leave.
    fn sync_upto(&mut self, upto: usize) {
        let end = upto.min(self.data.len());
        if end <= self.clean {
            return;
        }
        if self.durable.len() < end {
            self.durable.resize(end, 0);
        }
        self.durable[self.clean..end].copy_from_slice(&self.data[self.clean..end]);
        if end == self.data.len() {
            self.durable.truncate(end);
        }
        self.clean = end;
    }

    /// Bytes not yet durable: the dirty range's length.
    fn pending(&self) -> usize {
        self.data.len() - self.clean
    }
}

/// One call the node made, for the trace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DiskCall {
    /// append, sync, read, truncate, delete, rename, list, len.
    pub op: &'static str,
    /// The file.
    pub file: String,
    /// The byte position (read, append: the file length before; truncate: the new length).
    pub at: u64,
    /// Bytes read or written.
    pub len: u64,
    /// `None` if it succeeded, else the error's name.
    pub error: Option<&'static str>,
}

/// How a process or machine dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrashKind {
    /// The process dies; the kernel's page cache survives, so a restarted node reads back every
    /// byte it wrote, synced or not (still not durable: a later power loss may drop them).
    Process,
    /// The machine dies: per file, unsynced bytes are lost, kept, or torn.
    Power,
}

/// A disk call that will fail with an I/O error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoFault {
    /// The next append writes half its bytes, then fails.
    Append,
    /// The next sync fails, and, as Linux may after a failed fsync, the kernel drops the file's
    /// dirty pages: of the unsynced bytes, only the first `keep_per_mille`/1000 stay (in the
    /// cache, still unsynced); the rest are gone from the cache and never become durable, and
    /// the file is that much shorter. Reads see the shorter file at once; a later sync succeeds
    /// and makes only what is left durable. (The other Linux outcome, pages kept readable but
    /// marked clean so they never reach the medium, is not modelled: see the crate's README.)
    Sync {
        /// How much of the unsynced tail survives, per mille (0: all of it is dropped).
        keep_per_mille: u16,
    },
}

/// The next append lands in the wrong place (a misdirected write, as firmware bugs do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Misdirect {
    /// Where it lands: in another file (`true`) or earlier in the same one.
    pub other_file: bool,
    /// Picks the file and the position.
    pub pick: u64,
}

/// Where a misdirected append went, for the harness to excuse the damage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MisdirectedWrite {
    /// The file the caller appended to.
    pub file: String,
    /// Where the bytes should have gone; that range reads as zeros.
    pub at: u64,
    /// The bytes meant for `at`.
    pub bytes: Vec<u8>,
    /// Where they went instead: file and position (`None`: nowhere, the write was lost).
    pub landed: Option<(String, u64, u64)>,
    /// What the file they landed in held (its page cache) just before: the checker finds the
    /// frames they overwrote there.
    pub before: Vec<u8>,
}

/// One node's simulated disk.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    files: BTreeMap<String, SimFile>,
    quota: Option<u64>,
    used: u64,
    calls: Vec<DiskCall>,
    fail_next: Option<IoFault>,
    /// Calls left before the disk dies, and how the process dies then.
    countdown: Option<(u32, CrashKind)>,
    /// Set once the countdown ran out: every call fails until the harness plays the crash.
    died: Option<CrashKind>,
    misdirect: Option<Misdirect>,
    misdirected: Vec<MisdirectedWrite>,
    misread: Option<u64>,
    /// Files whose durable bytes changed since the checker last asked, and whether any changed
    /// other than by growing (`true`: rewritten, truncated, deleted, flipped).
    durable_changes: BTreeMap<String, bool>,
    /// The last durable bytes of files deleted before the checker saw them (a sync and a delete
    /// within one step of a node), so that what they held is not lost to the checks.
    vanished: BTreeMap<String, Vec<u8>>,
}

fn not_found(file: &str) -> DiskError {
    DiskError::NotFound {
        file: file.to_string(),
    }
}

impl SimDisk {
    /// An empty disk with no quota.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// Bytes held in the page cache, synced or not.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Takes the files whose durable bytes changed since the last call: `false` if they only
    /// grew (a sync of appended bytes), `true` if bytes already durable changed or went away.
    /// The checker re-reads just these.
    pub fn take_durable_changes(&mut self) -> BTreeMap<String, bool> {
        std::mem::take(&mut self.durable_changes)
    }

    /// The durable bytes file `file` had when it was deleted, if the checker had not seen them
    /// yet (see [`SimDisk::take_durable_changes`]); forgotten at the next call.
    pub fn take_vanished(&mut self, file: &str) -> Option<Vec<u8>> {
        self.vanished.remove(file)
    }

    /// Forgets the bytes of deleted files the checker did not ask for.
    pub fn clear_vanished(&mut self) {
        self.vanished.clear();
    }

    fn note(&mut self, file: &str, rewritten: bool) {
        *self.durable_changes.entry(file.to_string()).or_default() |= rewritten;
    }

    /// Makes the next call of kind `fault` fail with an I/O error.
    pub fn fail_next(&mut self, fault: IoFault) {
        self.fail_next = Some(fault);
    }

    /// The quota in force, if the disk has filled up (`None`: unlimited).
    pub fn quota(&self) -> Option<u64> {
        self.quota
    }

    /// Makes the disk die at the `calls`-th next call (from 1): that call and every later one
    /// fail with an I/O error and do nothing, until [`SimDisk::take_death`] hands the death to
    /// the harness, which then crashes the node with `kind`. So a crash lands between any two
    /// disk calls of one operation, or in the middle of recovery.
    pub fn crash_after(&mut self, calls: u32, kind: CrashKind) {
        self.countdown = Some((calls.max(1), kind));
    }

    /// Disarms a countdown that has not fired.
    pub fn disarm(&mut self) {
        self.countdown = None;
    }

    /// Whether a countdown is armed and has not fired.
    pub fn crash_armed(&self) -> bool {
        self.countdown.is_some()
    }

    /// If the disk died since the last call, how; and revives it (the process is gone, the
    /// machine restarts). The caller must now play that crash.
    pub fn take_death(&mut self) -> Option<CrashKind> {
        self.died.take()
    }

    /// Makes the next append land in the wrong place.
    pub fn misdirect_next(&mut self, m: Misdirect) {
        self.misdirect = Some(m);
    }

    /// The misdirected writes done since the last call.
    pub fn take_misdirected(&mut self) -> Vec<MisdirectedWrite> {
        std::mem::take(&mut self.misdirected)
    }

    /// Makes the next read return the bytes `shift` (> 0) positions further on in the same file
    /// (wrapping around), a one-shot misread.
    pub fn misread_next(&mut self, shift: u64) {
        self.misread = Some(shift.max(1));
    }

    /// Limits the disk to `quota` bytes (`None`: unlimited).
    pub fn set_quota(&mut self, quota: Option<u64>) {
        self.quota = quota;
    }

    /// Takes the calls recorded since the last time.
    pub fn drain_calls(&mut self) -> std::vec::Drain<'_, DiskCall> {
        self.calls.drain(..)
    }

    fn log(
        &mut self,
        op: &'static str,
        file: &str,
        at: u64,
        len: u64,
        error: Option<&'static str>,
    ) {
        self.calls.push(DiskCall {
            op,
            file: file.to_string(),
            at,
            len,
            error,
        });
    }

    /// Counts one call against an armed crash countdown: `Err` if the disk is dead (this call
    /// is the one that killed it, or a later one), having done nothing.
    fn tick(&mut self, op: &'static str, file: &str) -> Result<(), DiskError> {
        if let Some((left, kind)) = self.countdown {
            if left <= 1 {
                self.countdown = None;
                self.died = Some(kind);
            } else {
                self.countdown = Some((left - 1, kind));
            }
        }
        if self.died.is_some() {
            self.log(op, file, 0, 0, Some("Dead"));
            return Err(DiskError::Io {
                op,
                file: file.to_string(),
            });
        }
        Ok(())
    }

    /// The durable bytes of `file`: what a power loss now would leave for certain.
    pub fn durable(&self, file: &str) -> Option<&[u8]> {
        self.files.get(file).map(|f| &f.durable[..])
    }

    /// What reads of `file` see now (the page cache), synced or not.
    pub fn cached(&self, file: &str) -> Option<&[u8]> {
        self.files.get(file).map(|f| &f.data[..])
    }

    /// The names of all files.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The process crashed (or was killed): the page cache survives, so nothing on the disk
    /// changes; a pending death is cleared.
    pub fn process_crash(&mut self) {
        self.died = None;
    }

    /// A power loss: per file, the durable bytes plus a random part of the dirty range, written
    /// back in order from its start (none, all, or torn mid-way, a third of the time each); what
    /// is left is durable. A pending death is cleared. Returns the bytes lost.
    pub fn power_loss(&mut self, rng: &mut SimRng) -> u64 {
        self.died = None;
        let mut lost = 0;
        for (name, f) in self.files.iter_mut() {
            let pending = f.pending();
            if pending == 0 && f.durable.len() == f.data.len() {
                continue;
            }
            self.durable_changes.insert(name.clone(), true);
            let keep = match rng.below(3) {
                0 => 0,
                1 => pending,
                _ => rng.below(pending as u64 + 1) as usize,
            };
            let cut = f.clean + keep;
            let mut left = f.data[..cut].to_vec();
            if f.durable.len() > cut {
                left.extend_from_slice(&f.durable[cut..]);
            }
            lost += f.data.len().saturating_sub(left.len()) as u64;
            self.used = self.used + left.len() as u64 - f.data.len() as u64;
            f.data = left.clone();
            f.durable = left;
            f.clean = f.data.len();
        }
        lost
    }

    /// A power loss (the name the node tests use): see [`SimDisk::power_loss`].
    pub fn crash(&mut self, rng: &mut SimRng) -> u64 {
        self.power_loss(rng)
    }

    /// Flips bit `bit` (0..8) of byte `pos` of `file`'s durable data (and of the cache, which
    /// holds the same byte): latent corruption.
    pub fn flip_bit(&mut self, file: &str, pos: usize, bit: u8) -> bool {
        match self.files.get_mut(file) {
            Some(f) if pos < f.clean => {
                f.data[pos] ^= 1 << (bit % 8);
                f.durable[pos] ^= 1 << (bit % 8);
                self.note(file, true);
                true
            }
            _ => false,
        }
    }

    /// Plays an armed misdirect on an append of `data` to `file`; `true` if it did.
    fn misdirected_append(&mut self, file: &str, data: &[u8]) -> bool {
        let Some(m) = self.misdirect.take() else {
            return false;
        };
        let f = self.files.entry(file.to_string()).or_default();
        let at = f.data.len();
        // The intended place: freshly allocated blocks that were never written read as zeros.
        f.write_at(at, &vec![0; data.len()]);
        self.used += data.len() as u64;
        let others: Vec<String> = self
            .files
            .iter()
            .filter(|(n, g)| (n.as_str() != file) == m.other_file && !g.data.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        let target = match others.len() {
            0 => None,
            k => Some(others[(m.pick % k as u64) as usize].clone()),
        };
        let landed = target.and_then(|t| {
            let g = self.files.get_mut(&t)?;
            // Land inside what the file already holds (same file: before the intended place).
            let room = if t == file { at } else { g.data.len() };
            if room == 0 {
                return None;
            }
            let pos = (m.pick >> 8) as usize % room;
            let len = data.len().min(g.data.len() - pos);
            let before = g.data.clone();
            g.write_at(pos, &data[..len]);
            Some(((t, pos as u64, len as u64), before))
        });
        let (landed, before) = match landed {
            Some((at, before)) => (Some(at), before),
            None => (None, Vec::new()),
        };
        self.log(
            "append",
            file,
            at as u64,
            data.len() as u64,
            Some("Misdirected"),
        );
        self.misdirected.push(MisdirectedWrite {
            file: file.to_string(),
            at: at as u64,
            bytes: data.to_vec(),
            landed,
            before,
        });
        true
    }
}

impl SimDisk {
    /// An fsync that was issued when `file` held `upto` bytes and completes now: it makes
    /// durable what was written before it was issued, not what was written while it ran (a
    /// real fsync may or may not include those; assuming not is the stricter world). Faults
    /// and the countdown apply as to [`Disk::sync`], which is `sync_upto(file, usize::MAX)`.
    pub fn sync_upto(&mut self, file: &str, upto: usize) -> Result<(), DiskError> {
        self.tick("sync", file)?;
        if let Some(IoFault::Sync { keep_per_mille }) = self.fail_next {
            self.fail_next = None;
            if let Some(f) = self.files.get_mut(file) {
                // The dirty pages the kernel could not write are dropped: they never reach the
                // medium, and reads no longer see them.
                let pending = f.pending();
                let keep = pending * usize::from(keep_per_mille.min(1000)) / 1000;
                let cut = f.clean + keep;
                let dropped = f.data.len() - cut;
                f.data.truncate(cut);
                if f.durable.len() > cut {
                    // Bytes past the cut that were durable (a rewritten range) stay as they were.
                    let tail = f.durable[cut..].to_vec();
                    f.data.extend_from_slice(&tail);
                }
                self.used = self.used + f.data.len() as u64 - (cut + dropped) as u64;
                self.note(file, true);
                self.log("sync", file, cut as u64, dropped as u64, Some("Io"));
            } else {
                self.log("sync", file, 0, 0, Some("Io"));
            }
            return Err(DiskError::Io {
                op: "sync",
                file: file.to_string(),
            });
        }
        let f = self.files.get_mut(file).ok_or_else(|| not_found(file))?;
        // Durable bytes are being replaced, not only appended to.
        let rewritten = f.clean < f.durable.len();
        let grown = f.pending() > 0;
        f.sync_upto(upto);
        let len = f.data.len() as u64;
        if rewritten || grown {
            self.note(file, rewritten);
        }
        self.log("sync", file, len, 0, None);
        Ok(())
    }
}

impl Disk for SimDisk {
    fn list(&mut self) -> Result<Vec<String>, DiskError> {
        self.tick("list", "")?;
        Ok(self.files.keys().cloned().collect())
    }

    fn len(&mut self, file: &str) -> Result<u64, DiskError> {
        self.tick("len", file)?;
        self.files
            .get(file)
            .map(|f| f.data.len() as u64)
            .ok_or_else(|| not_found(file))
    }

    fn read(&mut self, file: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.tick("read", file)?;
        let f = self.files.get(file).ok_or_else(|| not_found(file))?;
        let start = offset as usize;
        let end = start.saturating_add(buf.len());
        if end > f.data.len() {
            let file_len = f.data.len() as u64;
            self.log("read", file, offset, buf.len() as u64, Some("OutOfBounds"));
            return Err(DiskError::OutOfBounds {
                file: file.to_string(),
                offset,
                len: buf.len(),
                file_len,
            });
        }
        match self.misread.take() {
            // A misread: the bytes of another place of the file, as if the wrong sector answered.
            Some(shift) if !f.data.is_empty() => {
                let n = f.data.len();
                for (k, b) in buf.iter_mut().enumerate() {
                    *b = f.data[(start + k + shift as usize) % n];
                }
                self.log("read", file, offset, buf.len() as u64, Some("Misread"));
            }
            _ => {
                buf.copy_from_slice(&f.data[start..end]);
                self.log("read", file, offset, buf.len() as u64, None);
            }
        }
        Ok(())
    }

    fn append(&mut self, file: &str, data: &[u8]) -> Result<(), DiskError> {
        self.tick("append", file)?;
        if self.fail_next == Some(IoFault::Append) {
            self.fail_next = None;
            let f = self.files.entry(file.to_string()).or_default();
            let at = f.data.len();
            let half = data.len() / 2;
            f.write_at(at, &data[..half]);
            self.used += half as u64;
            self.log("append", file, at as u64, half as u64, Some("Io"));
            return Err(DiskError::Io {
                op: "append",
                file: file.to_string(),
            });
        }
        let room = self.quota.map_or(u64::MAX, |q| q.saturating_sub(self.used));
        let fits = (data.len() as u64).min(room) as usize;
        if fits == data.len() && self.misdirected_append(file, data) {
            return Ok(());
        }
        let f = self.files.entry(file.to_string()).or_default();
        let at = f.data.len();
        f.write_at(at, &data[..fits]);
        self.used += fits as u64;
        if fits < data.len() {
            self.log("append", file, at as u64, fits as u64, Some("NoSpace"));
            return Err(DiskError::NoSpace {
                file: file.to_string(),
            });
        }
        self.log("append", file, at as u64, data.len() as u64, None);
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        self.sync_upto(file, usize::MAX)
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError> {
        self.tick("truncate", file)?;
        let f = self.files.get_mut(file).ok_or_else(|| not_found(file))?;
        let len = len as usize;
        if len > f.data.len() {
            return Err(DiskError::OutOfBounds {
                file: file.to_string(),
                offset: len as u64,
                len: 0,
                file_len: f.data.len() as u64,
            });
        }
        let cut = (f.data.len() - len) as u64;
        f.data.truncate(len);
        f.durable.truncate(len);
        f.clean = f.clean.min(len);
        self.used -= cut;
        self.note(file, true);
        self.log("truncate", file, len as u64, cut, None);
        Ok(())
    }

    fn delete(&mut self, file: &str) -> Result<(), DiskError> {
        self.tick("delete", file)?;
        let f = self.files.remove(file).ok_or_else(|| not_found(file))?;
        self.used -= f.data.len() as u64;
        if self.durable_changes.contains_key(file) {
            self.vanished.insert(file.to_string(), f.durable);
        }
        self.note(file, true);
        self.log("delete", file, 0, f.data.len() as u64, None);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.tick("rename", from)?;
        let f = self.files.remove(from).ok_or_else(|| not_found(from))?;
        if let Some(old) = self.files.insert(to.to_string(), f) {
            self.used -= old.data.len() as u64;
        }
        self.note(from, true);
        self.note(to, true);
        self.log("rename", from, 0, 0, None);
        Ok(())
    }
}
