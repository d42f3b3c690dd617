//! The simulated disk: a directory of files whose writes stay volatile until synced.
//!
//! Faults: `NoSpace` past a quota (after writing the prefix that fit, as a real disk does), a
//! crash that keeps the synced bytes plus any prefix of the unsynced ones (so the last write may
//! be torn), and latent bit flips in synced data.

use crate::rng::SimRng;
use sq_storage::{Disk, DiskError};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
struct SimFile {
    data: Vec<u8>,
    synced: usize,
}

/// One call the node made, for the trace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DiskCall {
    /// append, sync, read, truncate, delete, rename.
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

/// One node's simulated disk.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    files: BTreeMap<String, SimFile>,
    quota: Option<u64>,
    used: u64,
    calls: Vec<DiskCall>,
    rewrites: u64,
    fail_next: Option<IoFault>,
}

/// A disk call that will fail with an I/O error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoFault {
    /// The next append writes half its bytes, then fails.
    Append,
    /// The next sync fails and makes nothing durable.
    Sync,
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

    /// Bytes held, synced or not.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// How many times durable bytes were changed other than by growing: truncate, delete,
    /// rename, bit flip. While it stands still, what was durable is still durable, byte for byte.
    pub fn rewrites(&self) -> u64 {
        self.rewrites
    }

    /// Makes the next call of kind `fault` fail with an I/O error.
    pub fn fail_next(&mut self, fault: IoFault) {
        self.fail_next = Some(fault);
    }

    /// The quota in force, if the disk has filled up (`None`: unlimited).
    pub fn quota(&self) -> Option<u64> {
        self.quota
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

    /// The durable (synced) bytes of `file`: what a crash now would leave for certain.
    pub fn durable(&self, file: &str) -> Option<&[u8]> {
        self.files.get(file).map(|f| &f.data[..f.synced])
    }

    /// The names of all files.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// A process crash: every file keeps its synced bytes and a random prefix of the rest
    /// (none, all, or torn mid-way, a third of the time each). Returns the bytes lost.
    pub fn crash(&mut self, rng: &mut SimRng) -> u64 {
        let mut lost = 0;
        for f in self.files.values_mut() {
            let pending = f.data.len() - f.synced;
            if pending == 0 {
                continue;
            }
            let keep = match rng.below(3) {
                0 => 0,
                1 => pending,
                _ => rng.below(pending as u64 + 1) as usize,
            };
            lost += (pending - keep) as u64;
            f.data.truncate(f.synced + keep);
            f.synced = f.data.len();
        }
        self.used -= lost;
        lost
    }

    /// Flips bit `bit` (0..8) of byte `pos` of `file`'s durable data: latent corruption.
    pub fn flip_bit(&mut self, file: &str, pos: usize, bit: u8) -> bool {
        match self.files.get_mut(file) {
            Some(f) if pos < f.synced => {
                f.data[pos] ^= 1 << (bit % 8);
                self.rewrites += 1;
                true
            }
            _ => false,
        }
    }
}

impl Disk for SimDisk {
    fn list(&mut self) -> Result<Vec<String>, DiskError> {
        Ok(self.files.keys().cloned().collect())
    }

    fn len(&mut self, file: &str) -> Result<u64, DiskError> {
        self.files
            .get(file)
            .map(|f| f.data.len() as u64)
            .ok_or_else(|| not_found(file))
    }

    fn read(&mut self, file: &str, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
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
        buf.copy_from_slice(&f.data[start..end]);
        self.log("read", file, offset, buf.len() as u64, None);
        Ok(())
    }

    fn append(&mut self, file: &str, data: &[u8]) -> Result<(), DiskError> {
        if self.fail_next == Some(IoFault::Append) {
            self.fail_next = None;
            let f = self.files.entry(file.to_string()).or_default();
            let at = f.data.len() as u64;
            let half = data.len() / 2;
            f.data.extend_from_slice(&data[..half]);
            self.used += half as u64;
            self.log("append", file, at, half as u64, Some("Io"));
            return Err(DiskError::Io {
                op: "append",
                file: file.to_string(),
            });
        }
        let room = self.quota.map_or(u64::MAX, |q| q.saturating_sub(self.used));
        let fits = (data.len() as u64).min(room) as usize;
        let f = self.files.entry(file.to_string()).or_default();
        let at = f.data.len() as u64;
        f.data.extend_from_slice(&data[..fits]);
        self.used += fits as u64;
        if fits < data.len() {
            self.log("append", file, at, fits as u64, Some("NoSpace"));
            return Err(DiskError::NoSpace {
                file: file.to_string(),
            });
        }
        self.log("append", file, at, data.len() as u64, None);
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        if self.fail_next == Some(IoFault::Sync) {
            self.fail_next = None;
            self.log("sync", file, 0, 0, Some("Io"));
            return Err(DiskError::Io {
                op: "sync",
                file: file.to_string(),
            });
        }
        let f = self.files.get_mut(file).ok_or_else(|| not_found(file))?;
        f.synced = f.data.len();
        let len = f.synced as u64;
        self.log("sync", file, len, 0, None);
        Ok(())
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError> {
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
        f.synced = f.synced.min(len);
        self.used -= cut;
        self.rewrites += 1;
        self.log("truncate", file, len as u64, cut, None);
        Ok(())
    }

    fn delete(&mut self, file: &str) -> Result<(), DiskError> {
        let f = self.files.remove(file).ok_or_else(|| not_found(file))?;
        self.used -= f.data.len() as u64;
        self.rewrites += 1;
        self.log("delete", file, 0, f.data.len() as u64, None);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let f = self.files.remove(from).ok_or_else(|| not_found(from))?;
        self.rewrites += 1;
        if let Some(old) = self.files.insert(to.to_string(), f) {
            self.used -= old.data.len() as u64;
        }
        self.log("rename", from, 0, 0, None);
        Ok(())
    }
}
