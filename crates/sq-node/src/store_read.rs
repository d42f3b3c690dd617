//! Fetches below the WAL: the leader reads the object that holds the offset from the store,
//! checks it whole (footer CRC, every frame's CRCs, the run it must hold) before any record of
//! it is served, and keeps a few decoded objects to serve the next fetches from memory.
//!
//! A fetch that needs an object not in memory waits for the GET; fetches for the same object
//! share one. A corrupt object is never served: its fetches get `Corrupt`, and the next fetch
//! reads it again (a misread is not damage).

use crate::node::{Node, Output};
use crate::status::Role;
use crate::tiering::{Decoded, StoreRead};
use sq_core::codec::{self, EntryKind};
use sq_core::{ClientId, FetchError, FetchOk, FetchRequest, FetchedRecord, Reply};
use sq_storage::tier::decode_object;
use sq_storage::{Disk, StoreError, StoreOk, StoreOp};
use std::rc::Rc;

/// A fetch waiting for an object.
#[derive(Clone, Debug)]
pub(crate) struct ParkedFetch {
    pub from: ClientId,
    pub req: u64,
    pub fetch: FetchRequest,
}

impl Node {
    /// Serves a fetch below the partition's WAL start from the store: at once from a decoded
    /// object in memory, or later, once its GET completes (`None` then).
    pub(crate) fn fetch_from_store(
        &mut self,
        parked: ParkedFetch,
        high_watermark: u64,
        out: &mut Vec<Output>,
    ) -> Option<Result<FetchOk, FetchError>> {
        let f = &parked.fetch;
        let Some(desc) = self.tier.object_for(f.partition.0, f.offset).cloned() else {
            return Some(Err(FetchError::StorageFailed(format!(
                "no object in the manifest holds {} offset {}",
                f.partition, f.offset
            ))));
        };
        let key = desc.key();
        if let Some(k) = self.tier.cache.iter().position(|(c, _)| *c == key) {
            // Most recently used last.
            let hit = self.tier.cache.remove(k);
            let served = serve(&hit.1, f, high_watermark, self.config.max_fetch_records);
            self.tier.cache.push(hit);
            return Some(Ok(served));
        }
        if let Some(read) = self.tier.reads.values_mut().find(|r| r.desc == desc) {
            read.waiters.push(parked);
            return None;
        }
        self.probes.hit(sq_core::Probe::ObjectRead);
        let token = self.token();
        out.push(Output::Store {
            token,
            op: StoreOp::Get { key, range: None },
        });
        self.tier.reads.insert(
            token,
            StoreRead {
                desc,
                waiters: vec![parked],
            },
        );
        None
    }

    /// A GET finished: check the object, keep it, and answer the fetches that waited for it.
    pub(crate) fn read_done(
        &mut self,
        read: StoreRead,
        result: Result<StoreOk, StoreError>,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        let decoded = match result {
            Ok(StoreOk::Got(data)) => decode_object(&data, &read.desc).map_err(|e| e.to_string()),
            Ok(other) => Err(format!("unexpected answer to a GET: {other:?}")),
            Err(e) => {
                let why = e.to_string();
                return answer_all(read.waiters, out, |_| {
                    Err(FetchError::StoreUnavailable(why.clone()))
                });
            }
        };
        match decoded {
            Ok(entries) => {
                let cap = self.config.tier.cache_objects.max(1);
                if self.tier.cache.len() >= cap {
                    self.tier.cache.remove(0);
                }
                self.tier.cache.push((read.desc.key(), Rc::new(entries)));
                // Served as any fetch is: by a leader, from the manifest it holds now.
                for w in read.waiters {
                    let reply = self.fetch_now(w.clone(), disk, out);
                    if let Some(result) = reply {
                        out.push(Output::Reply {
                            to: w.from,
                            req: w.req,
                            reply: Reply::Fetch(result),
                        });
                    }
                }
            }
            Err(_) => {
                self.probes.hit(sq_core::Probe::ObjectCorrupt);
                let desc = read.desc;
                answer_all(read.waiters, out, |f| {
                    let next = desc.span(f.partition.0).map_or(f.offset + 1, |s| s.end);
                    Err(FetchError::Corrupt {
                        offset: f.offset,
                        next,
                    })
                })
            }
        }
    }

    /// Whether this node may serve fetches now (a leader whose term has an entry committed).
    pub(crate) fn serving(&self) -> bool {
        self.role == Role::Leader && self.commit_index >= self.ready_index
    }
}

fn answer_all(
    waiters: Vec<ParkedFetch>,
    out: &mut Vec<Output>,
    mut answer: impl FnMut(&FetchRequest) -> Result<FetchOk, FetchError>,
) {
    for w in waiters {
        out.push(Output::Reply {
            to: w.from,
            req: w.req,
            reply: Reply::Fetch(answer(&w.fetch)),
        });
    }
}

/// The records of `f` that `object` holds, from `f.offset` on, at most `max` of them (and the
/// fetch's own maximum), below the high watermark.
fn serve(object: &Decoded, f: &FetchRequest, high_watermark: u64, max: u32) -> FetchOk {
    let max = f.max_records.min(max) as usize;
    let mut records = Vec::new();
    let mut offset = f.offset;
    for (h, payload) in object.iter() {
        let b = h.batch;
        if h.kind != EntryKind::Batch || b.partition != f.partition.0 {
            continue;
        }
        let end = b.base_offset + u64::from(b.count);
        if end <= offset || b.base_offset > offset {
            continue;
        }
        if records.len() >= max || offset >= high_watermark {
            break;
        }
        let skip = (offset - b.base_offset) as u32;
        let room = (max - records.len()) as u32;
        // Checked with the object's CRCs when it was read.
        let Ok(values) = codec::decode_records_range(payload, b.count, skip, room) else {
            break;
        };
        for value in values {
            records.push(FetchedRecord { offset, value });
            offset += 1;
        }
    }
    FetchOk {
        records,
        high_watermark,
    }
}
