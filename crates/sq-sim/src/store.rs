//! The simulated object store: one bucket per cluster, S3's semantics, and its faults.
//!
//! Every call takes a drawn latency and then completes: the op is applied to the bucket (or not)
//! at completion and the answer goes back to the caller, whether the caller still lives or not
//! (a node that crashed mid-upload leaves its PUT to land on its own). Faults, drawn per call
//! with the seed's rates: a server error (5xx; a write may or may not have happened),
//! throttling (nothing happened), a timeout (nothing happened), a lost reply (the write happened,
//! the caller sees a timeout), and an outage during which every call fails. A latent bit flip
//! damages a stored object in place. The bucket remembers which PUTs it confirmed to their
//! caller, and with what bytes, for the checks of invariants 1 and 6.

use crate::rng::SimRng;
use bytes::Bytes;
use sq_storage::object::{slice_range, ObjectInfo, ObjectStore, StoreError, StoreOk, StoreOp};
use std::collections::{BTreeMap, BTreeSet};

/// The store's fault rates and latency, drawn per seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreFaults {
    /// Latency bounds of a call, ns.
    pub latency: (u64, u64),
    /// Per mille of calls answered with a server error.
    pub server_error: u16,
    /// Per mille of calls throttled.
    pub throttle: u16,
    /// Per mille of calls that time out without effect.
    pub timeout: u16,
    /// Per mille of writes that happen while their caller sees a timeout.
    pub lost_reply: u16,
}

impl StoreFaults {
    /// A store that never fails, with the given latency.
    pub fn reliable(latency: (u64, u64)) -> StoreFaults {
        StoreFaults {
            latency,
            server_error: 0,
            throttle: 0,
            timeout: 0,
            lost_reply: 0,
        }
    }

    /// A store whose latency is drawn from `rng` for a seed, answering every call: error rates
    /// come and go with the run's transitions (`store-errors`).
    pub fn draw(rng: &mut SimRng) -> StoreFaults {
        let min = rng.between(200, 3000) * sq_core::Time::MICRO;
        StoreFaults::reliable((min, min + rng.between(100, 10_000) * sq_core::Time::MICRO))
    }
}

/// How a call will end, drawn when it is issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallFate {
    /// It is performed and answered.
    Answered,
    /// It fails with this error; `applied`: a write happened anyway.
    Failed {
        /// What the caller is told.
        error: StoreError,
        /// Whether a write took effect anyway.
        applied: bool,
    },
}

/// Counts of what the store did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// PUTs confirmed.
    pub puts: u64,
    /// GETs answered with data.
    pub gets: u64,
    /// Bytes returned by GETs.
    pub get_bytes: u64,
    /// Listings answered.
    pub lists: u64,
    /// Deletes performed.
    pub deletes: u64,
    /// Calls that failed (errors, timeouts, outages).
    pub failures: u64,
    /// Writes that happened while their caller saw a timeout.
    pub lost_replies: u64,
}

/// The bucket.
#[derive(Clone, Debug, Default)]
pub struct SimStore {
    objects: BTreeMap<String, Bytes>,
    confirmed: BTreeMap<String, Bytes>,
    flipped: BTreeSet<String>,
    /// Whether the store is unreachable: every call completing now fails.
    pub outage: bool,
    /// Whether the next PUT that would be answered happens while its caller sees a timeout.
    pub lose_next_put: bool,
    /// The fault rates.
    pub faults: Option<StoreFaults>,
    /// What it did.
    pub stats: StoreStats,
    /// Whether any object was ever flipped in this run (an image may lack what it held).
    ever_flipped: bool,
}

impl SimStore {
    /// An empty bucket with `faults`.
    pub fn new(faults: StoreFaults) -> SimStore {
        SimStore {
            faults: Some(faults),
            ..SimStore::default()
        }
    }

    /// Ends the outage and every error rate (the end of a run's fault phase). Flipped objects
    /// stay flipped.
    pub fn heal(&mut self) {
        self.outage = false;
        self.lose_next_put = false;
        if let Some(f) = self.faults.as_mut() {
            *f = StoreFaults::reliable(f.latency);
        }
    }

    /// Draws how long `op` takes and how it ends.
    pub fn issue(&self, rng: &mut SimRng, op: &StoreOp) -> (u64, CallFate) {
        let f = self.faults.unwrap_or(StoreFaults::reliable((0, 0)));
        let delay = rng.between(f.latency.0, f.latency.1);
        let write = matches!(op, StoreOp::Put { .. } | StoreOp::Delete { .. });
        let fate = if rng.per_mille(f.server_error) {
            CallFate::Failed {
                error: StoreError::Server { status: 500 },
                applied: write && rng.percent(50),
            }
        } else if rng.per_mille(f.throttle) {
            CallFate::Failed {
                error: StoreError::Throttled,
                applied: false,
            }
        } else if rng.per_mille(f.timeout) {
            CallFate::Failed {
                error: StoreError::Timeout,
                applied: false,
            }
        } else if write && rng.per_mille(f.lost_reply) {
            CallFate::Failed {
                error: StoreError::Timeout,
                applied: true,
            }
        } else {
            CallFate::Answered
        };
        (delay, fate)
    }

    /// Completes `op` as `fate` says (an outage fails it unapplied): applies it, and returns
    /// what the caller is told.
    pub fn complete(&mut self, op: &StoreOp, fate: CallFate) -> Result<StoreOk, StoreError> {
        if self.outage {
            self.stats.failures += 1;
            return Err(StoreError::Server { status: 503 });
        }
        let fate = match (fate, op) {
            (CallFate::Answered, StoreOp::Put { .. }) if self.lose_next_put => {
                self.lose_next_put = false;
                CallFate::Failed {
                    error: StoreError::Timeout,
                    applied: true,
                }
            }
            (fate, _) => fate,
        };
        match fate {
            CallFate::Answered => {
                let result = sq_storage::object::perform(self, op);
                if let (StoreOp::Put { key, data }, Ok(_)) = (op, &result) {
                    self.confirmed.insert(key.clone(), data.clone());
                }
                if result.is_err() {
                    self.stats.failures += 1;
                }
                result
            }
            CallFate::Failed { error, applied } => {
                self.stats.failures += 1;
                if applied {
                    self.stats.lost_replies += 1;
                    let _ = sq_storage::object::perform(self, op);
                }
                Err(error)
            }
        }
    }

    /// Flips one bit of a stored object picked by `rng` (a latent fault of the store's disks):
    /// the object's key and its bytes before, if there was one.
    pub fn flip(&mut self, rng: &mut SimRng) -> Option<(String, Bytes)> {
        if self.objects.is_empty() {
            return None;
        }
        let k = rng.below(self.objects.len() as u64) as usize;
        let (key, data) = self.objects.iter().nth(k)?;
        let key = key.clone();
        let before = data.clone();
        let mut v = data.to_vec();
        if v.is_empty() {
            return None;
        }
        let bit = rng.below(v.len() as u64 * 8);
        v[(bit / 8) as usize] ^= 1 << (bit % 8);
        self.objects.insert(key.clone(), Bytes::from(v));
        self.flipped.insert(key.clone());
        self.ever_flipped = true;
        Some((key, before))
    }

    /// The bytes the store holds under `key` now.
    pub fn object(&self, key: &str) -> Option<&Bytes> {
        self.objects.get(key)
    }

    /// The bytes of `key`'s PUT as the store confirmed it to its caller, if it did.
    pub fn confirmed(&self, key: &str) -> Option<&Bytes> {
        self.confirmed.get(key)
    }

    /// Whether a bit of any object was ever flipped in this run.
    pub fn ever_flipped(&self) -> bool {
        self.ever_flipped
    }

    /// Whether a bit of `key` was flipped.
    pub fn is_flipped(&self, key: &str) -> bool {
        self.flipped.contains(key)
    }

    /// Every key held, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.objects.keys()
    }
}

impl ObjectStore for SimStore {
    fn put(&mut self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.flipped.remove(key);
        self.objects.insert(key.to_string(), data);
        self.stats.puts += 1;
        Ok(())
    }

    fn get(&mut self, key: &str, range: Option<(u64, u64)>) -> Result<Bytes, StoreError> {
        let data = self.objects.get(key).ok_or_else(|| StoreError::NotFound {
            key: key.to_string(),
        })?;
        let got = slice_range(key, data, range)?;
        self.stats.gets += 1;
        self.stats.get_bytes += got.len() as u64;
        Ok(got)
    }

    fn head(&mut self, key: &str) -> Result<u64, StoreError> {
        self.objects
            .get(key)
            .map(|d| d.len() as u64)
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
            })
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.stats.lists += 1;
        Ok(self
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, d)| ObjectInfo {
                key: k.clone(),
                len: d.len() as u64,
            })
            .collect())
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.objects.remove(key);
        self.flipped.remove(key);
        self.stats.deletes += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn a_bucket_has_s3s_semantics() {
        let mut s = SimStore::new(StoreFaults::reliable((1, 1)));
        let put = StoreOp::Put {
            key: "a/1".into(),
            data: Bytes::from_static(b"hello"),
        };
        assert_eq!(s.complete(&put, CallFate::Answered), Ok(StoreOk::Put));
        assert_eq!(s.confirmed("a/1"), Some(&Bytes::from_static(b"hello")));
        let get = StoreOp::Get {
            key: "a/1".into(),
            range: Some((1, 3)),
        };
        assert_eq!(
            s.complete(&get, CallFate::Answered),
            Ok(StoreOk::Got(Bytes::from_static(b"el")))
        );
        let list = StoreOp::List {
            prefix: "a/".into(),
        };
        assert_eq!(
            s.complete(&list, CallFate::Answered),
            Ok(StoreOk::Listed(vec![ObjectInfo {
                key: "a/1".into(),
                len: 5
            }]))
        );
        let del = StoreOp::Delete { key: "a/1".into() };
        assert_eq!(s.complete(&del, CallFate::Answered), Ok(StoreOk::Deleted));
        assert!(matches!(
            s.complete(&get, CallFate::Answered),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn a_lost_reply_writes_and_an_outage_does_not() {
        let mut s = SimStore::new(StoreFaults::reliable((1, 1)));
        let put = StoreOp::Put {
            key: "k".into(),
            data: Bytes::from_static(b"x"),
        };
        let lost = CallFate::Failed {
            error: StoreError::Timeout,
            applied: true,
        };
        assert_eq!(s.complete(&put, lost), Err(StoreError::Timeout));
        assert_eq!(s.object("k"), Some(&Bytes::from_static(b"x")));
        assert_eq!(s.confirmed("k"), None, "the caller never heard of it");
        s.outage = true;
        let put2 = StoreOp::Put {
            key: "k2".into(),
            data: Bytes::from_static(b"y"),
        };
        assert!(s.complete(&put2, CallFate::Answered).is_err());
        assert_eq!(s.object("k2"), None);
    }

    #[test]
    fn a_flip_changes_one_bit_of_a_stored_object() {
        let mut s = SimStore::new(StoreFaults::reliable((1, 1)));
        s.put("k", Bytes::from_static(b"abcd")).expect("put");
        let mut rng = SimRng::new(3);
        let (key, before) = s.flip(&mut rng).expect("an object to flip");
        assert_eq!((key.as_str(), &before[..]), ("k", &b"abcd"[..]));
        let now = s.object("k").expect("still there");
        let diff: u32 = now
            .iter()
            .zip(b"abcd")
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(diff, 1);
        assert!(s.is_flipped("k"));
    }
}
