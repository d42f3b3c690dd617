//! The replica state machine.

use crate::error::NodeError;
use crate::partition::{BatchRef, PartitionLog};
use bytes::BytesMut;
use sq_core::codec::{self, BatchMeta, EntryKind, MAX_PAYLOAD_LEN};
use sq_core::{
    ClientId, FetchError, FetchOk, FetchRequest, FetchedRecord, NodeId, PartitionId, ProduceError,
    ProduceOk, ProduceRequest, Reply, Request, Time,
};
use sq_storage::{Disk, FrameLocation, Meta, Recovery, Wal, WalConfig, WalError};
use std::collections::BTreeMap;

/// How a node is set up. The same config must be used across restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's id.
    pub id: NodeId,
    /// How many partitions the cluster has: `0..partitions`.
    pub partitions: u32,
    /// The WAL's layout.
    pub wal: WalConfig,
    /// Appends wait this long (ns) to be synced together (group commit).
    pub flush_delay: u64,
    /// A fetch returns at most this many records, whatever it asks for.
    pub max_fetch_records: u32,
    /// How many recent sequences per producer are remembered for deduplication.
    pub dedup_window: usize,
}

impl NodeConfig {
    /// A config with sensible defaults for node `id` with `partitions` partitions.
    pub fn new(id: NodeId, partitions: u32) -> NodeConfig {
        NodeConfig {
            id,
            partitions,
            wal: WalConfig::default(),
            flush_delay: Time::MILLI,
            max_fetch_records: 100,
            dedup_window: 8,
        }
    }
}

/// Something that happens to the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A client request, tagged with the client's request id.
    Request {
        /// Who sent it.
        from: ClientId,
        /// The client's id for this request; the reply carries it back.
        req: u64,
        /// The request.
        request: Request,
    },
    /// A timer the node set has fired.
    Timer(Timer),
}

/// The node's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// Sync the WAL and commit what was appended since the last sync.
    Flush,
}

/// Something the node wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a reply to a client.
    Reply {
        /// The client.
        to: ClientId,
        /// The request id it sent.
        req: u64,
        /// The answer.
        reply: Reply,
    },
    /// Call back with `Input::Timer(timer)` at `at`.
    SetTimer {
        /// When.
        at: Time,
        /// Which timer.
        timer: Timer,
    },
}

/// A client waiting for an entry to commit.
#[derive(Clone, Copy, Debug)]
struct Waiter {
    to: ClientId,
    req: u64,
    base_offset: u64,
}

/// What the node remembers of one producer on one partition.
#[derive(Clone, Debug, Default)]
struct ProducerState {
    /// seq -> (base offset, log index), the newest `dedup_window` of them.
    recent: BTreeMap<u64, (u64, u64)>,
    /// seq -> the definite error it was refused with, the newest `dedup_window` of them. A later
    /// copy of a refused request (a retry or a duplicate still in the network) gets the same
    /// answer, so a definite error stays definite even once the disk has room again.
    refused: BTreeMap<u64, ProduceError>,
}

impl ProducerState {
    /// The newest sequence seen, appended or refused.
    fn newest(&self) -> Option<u64> {
        let a = self.recent.last_key_value().map(|(s, _)| *s);
        let b = self.refused.last_key_value().map(|(s, _)| *s);
        a.max(b)
    }
}

/// A single sq replica (quorum of one).
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    wal: Wal,
    term: u64,
    commit_index: u64,
    partitions: Vec<PartitionLog>,
    producers: BTreeMap<(u32, u64), ProducerState>,
    waiters: BTreeMap<u64, Vec<Waiter>>,
    flush_armed: bool,
    failed: Option<String>,
    recovery: Recovery,
    scratch: BytesMut,
}

impl Node {
    /// Starts a node on `disk`: recovers the WAL and rebuilds partitions and producer state. On a
    /// first boot it records term 1 durably before it serves anything.
    pub fn open(config: NodeConfig, disk: &mut dyn Disk) -> Result<Node, NodeError> {
        let mut meta = Meta::load(disk)?;
        let (wal, recovery) = Wal::open(disk, config.wal)?;
        // With a quorum of one, the node is the leader of the term it last recorded: no other
        // node can have led since. Only a first boot writes a term, so a node whose disk is full
        // still restarts (and answers StorageFull until space returns).
        if meta.term == 0 {
            meta.term = 1;
            meta.voted_for = u64::from(config.id.0) + 1;
            meta.store(disk)?;
        }
        let mut node = Node {
            config,
            commit_index: wal.synced_index(),
            wal,
            term: meta.term,
            partitions: vec![PartitionLog::default(); config.partitions as usize],
            producers: BTreeMap::new(),
            waiters: BTreeMap::new(),
            flush_armed: false,
            failed: None,
            recovery,
            scratch: BytesMut::new(),
        };
        node.rebuild()?;
        Ok(node)
    }

    /// Rebuilds the partition indexes and the producer table from the WAL's headers.
    fn rebuild(&mut self) -> Result<(), NodeError> {
        let entries: Vec<_> = self
            .wal
            .headers()
            .filter(|(h, _)| h.kind == EntryKind::Batch)
            .map(|(h, _)| *h)
            .collect();
        for h in entries {
            let b = h.batch;
            let Some(part) = self.partitions.get_mut(b.partition as usize) else {
                return Err(NodeError::Inconsistent {
                    index: h.index,
                    detail: format!(
                        "partition {} beyond the configured {}",
                        b.partition, self.config.partitions
                    ),
                });
            };
            if b.base_offset != part.next_offset() {
                return Err(NodeError::Inconsistent {
                    index: h.index,
                    detail: format!(
                        "partition {} batch starts at offset {}, expected {}",
                        b.partition,
                        b.base_offset,
                        part.next_offset()
                    ),
                });
            }
            part.batches.push(BatchRef {
                base_offset: b.base_offset,
                count: b.count,
                index: h.index,
            });
            part.high_watermark = part.next_offset();
            self.remember(b.partition, b.producer, b.seq, b.base_offset, h.index);
        }
        Ok(())
    }

    fn remember(&mut self, partition: u32, producer: u64, seq: u64, base: u64, index: u64) {
        let state = self.producers.entry((partition, producer)).or_default();
        state.recent.insert(seq, (base, index));
        while state.recent.len() > self.config.dedup_window {
            state.recent.pop_first();
        }
    }

    fn refuse(&mut self, partition: u32, producer: u64, seq: u64, error: ProduceError) {
        let state = self.producers.entry((partition, producer)).or_default();
        state.refused.insert(seq, error);
        while state.refused.len() > self.config.dedup_window {
            state.refused.pop_first();
        }
    }

    /// Handles one input at `now`, pushing what must be done onto `out`.
    pub fn handle(&mut self, now: Time, input: Input, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        match input {
            Input::Request { from, req, request } => match request {
                Request::Produce(p) => self.produce(now, from, req, p, disk, out),
                Request::Fetch(f) => {
                    let reply = Reply::Fetch(self.fetch(&f, disk));
                    out.push(Output::Reply {
                        to: from,
                        req,
                        reply,
                    });
                }
            },
            Input::Timer(Timer::Flush) => self.flush(disk, out),
        }
    }

    fn produce(
        &mut self,
        now: Time,
        from: ClientId,
        req: u64,
        p: ProduceRequest,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        let reply = |out: &mut Vec<Output>, r: Result<ProduceOk, ProduceError>| {
            out.push(Output::Reply {
                to: from,
                req,
                reply: Reply::Produce(r),
            })
        };
        if let Some(why) = &self.failed {
            return reply(out, Err(ProduceError::Unavailable(why.clone())));
        }
        let partition = p.partition.0;
        if partition >= self.config.partitions {
            return reply(out, Err(ProduceError::UnknownPartition(p.partition)));
        }
        if p.records.is_empty() {
            return reply(out, Err(ProduceError::EmptyBatch));
        }
        // Idempotence: a sequence already in the log answers with its original offset.
        if let Some(state) = self.producers.get(&(partition, p.producer.0)) {
            if let Some(&(base_offset, index)) = state.recent.get(&p.seq) {
                if index <= self.commit_index {
                    return reply(out, Ok(ProduceOk { base_offset }));
                }
                self.waiters.entry(index).or_default().push(Waiter {
                    to: from,
                    req,
                    base_offset,
                });
                return;
            }
            if let Some(error) = state.refused.get(&p.seq) {
                return reply(out, Err(error.clone()));
            }
            if let Some(last) = state.newest() {
                if p.seq < last {
                    return reply(
                        out,
                        Err(ProduceError::StaleSequence {
                            producer: p.producer,
                            seq: p.seq,
                            last,
                        }),
                    );
                }
            }
        }
        // Sized before encoding: the codec may assume every payload fits a frame.
        let size: usize = p.records.iter().map(|r| 4 + r.len()).sum();
        if size > MAX_PAYLOAD_LEN as usize {
            return reply(out, Err(ProduceError::TooLarge(size)));
        }
        self.scratch.clear();
        codec::encode_records(&p.records, &mut self.scratch);
        let count = u32::try_from(p.records.len()).unwrap_or_else(|_| {
            panic!("invariant: a payload under MAX_PAYLOAD_LEN has < 2^32 records")
        });
        let base_offset = self.partitions[partition as usize].next_offset();
        let meta = BatchMeta {
            partition,
            base_offset,
            count,
            producer: p.producer.0,
            seq: p.seq,
        };
        match self
            .wal
            .append(disk, self.term, EntryKind::Batch, &meta, &self.scratch)
        {
            Ok(index) => {
                self.partitions[partition as usize].batches.push(BatchRef {
                    base_offset,
                    count,
                    index,
                });
                self.remember(partition, p.producer.0, p.seq, base_offset, index);
                self.waiters.entry(index).or_default().push(Waiter {
                    to: from,
                    req,
                    base_offset,
                });
                if !self.flush_armed {
                    self.flush_armed = true;
                    out.push(Output::SetTimer {
                        at: now + self.config.flush_delay,
                        timer: Timer::Flush,
                    });
                }
            }
            Err(WalError::NoSpace) => {
                self.refuse(partition, p.producer.0, p.seq, ProduceError::StorageFull);
                reply(out, Err(ProduceError::StorageFull))
            }
            Err(e) => {
                reply(out, Err(ProduceError::StorageFailed(e.to_string())));
                self.fail(format!("append failed: {e}"), out);
            }
        }
    }

    /// Syncs the WAL, commits everything synced and answers the producers waiting for it.
    fn flush(&mut self, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        self.flush_armed = false;
        if self.failed.is_some() {
            return;
        }
        match self.wal.sync(disk) {
            Ok(synced) => self.commit_to(synced, out),
            Err(e) => self.fail(format!("sync failed: {e}"), out),
        }
    }

    fn commit_to(&mut self, index: u64, out: &mut Vec<Output>) {
        for i in self.commit_index + 1..=index {
            if let Some(h) = self.wal.header(i) {
                if h.kind == EntryKind::Batch {
                    let b = h.batch;
                    self.partitions[b.partition as usize].high_watermark =
                        b.base_offset + u64::from(b.count);
                }
            }
        }
        self.commit_index = self.commit_index.max(index);
        while let Some(entry) = self.waiters.first_entry() {
            if *entry.key() > self.commit_index {
                break;
            }
            for w in entry.remove() {
                out.push(Output::Reply {
                    to: w.to,
                    req: w.req,
                    reply: Reply::Produce(Ok(ProduceOk {
                        base_offset: w.base_offset,
                    })),
                });
            }
        }
    }

    /// Fail-stop: after a disk error the node's memory may not match its disk (fsync errors are
    /// not retryable), so it answers nothing more until it is restarted and recovers.
    fn fail(&mut self, why: String, out: &mut Vec<Output>) {
        for (_, waiters) in std::mem::take(&mut self.waiters) {
            for w in waiters {
                out.push(Output::Reply {
                    to: w.to,
                    req: w.req,
                    reply: Reply::Produce(Err(ProduceError::StorageFailed(why.clone()))),
                });
            }
        }
        self.failed = Some(why);
    }

    fn fetch(&mut self, f: &FetchRequest, disk: &mut dyn Disk) -> Result<FetchOk, FetchError> {
        if let Some(why) = &self.failed {
            return Err(FetchError::StorageFailed(why.clone()));
        }
        let Some(part) = self.partitions.get(f.partition.0 as usize) else {
            return Err(FetchError::UnknownPartition(f.partition));
        };
        let high_watermark = part.high_watermark;
        if f.offset > high_watermark {
            return Err(FetchError::OffsetOutOfRange {
                requested: f.offset,
                log_start: 0,
                high_watermark,
            });
        }
        let max = f.max_records.min(self.config.max_fetch_records) as usize;
        let mut records = Vec::new();
        let mut offset = f.offset;
        let mut k = part.find(offset);
        while let Some(i) = k {
            let batch = self.partitions[f.partition.0 as usize].batches[i];
            if records.len() >= max || batch.base_offset >= high_watermark {
                break;
            }
            let values = match self.read_batch(disk, f.partition, batch) {
                Ok(values) => values,
                Err(e) if records.is_empty() => return Err(e),
                Err(_) => break,
            };
            let skip = (offset - batch.base_offset) as usize;
            for value in values.into_iter().skip(skip) {
                if records.len() >= max {
                    break;
                }
                records.push(FetchedRecord { offset, value });
                offset += 1;
            }
            k = Some(i + 1).filter(|&n| n < self.partitions[f.partition.0 as usize].batches.len());
        }
        Ok(FetchOk {
            records,
            high_watermark,
        })
    }

    /// Reads one committed batch's records from the WAL; every frame is CRC-checked on the way.
    fn read_batch(
        &mut self,
        disk: &mut dyn Disk,
        partition: PartitionId,
        batch: BatchRef,
    ) -> Result<Vec<bytes::Bytes>, FetchError> {
        let corrupt = FetchError::Corrupt {
            offset: batch.base_offset,
            next: batch.end(),
        };
        let (header, payload) = match self.wal.read(disk, batch.index) {
            Ok(r) => r,
            Err(WalError::Corrupt { .. }) => return Err(corrupt),
            Err(e) => return Err(FetchError::StorageFailed(e.to_string())),
        };
        let b = header.batch;
        if header.kind != EntryKind::Batch
            || b.partition != partition.0
            || b.base_offset != batch.base_offset
            || b.count != batch.count
        {
            return Err(corrupt);
        }
        codec::decode_records(&payload, b.count).map_err(|_| corrupt)
    }

    /// What WAL recovery found when this node started.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The node's current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The last committed log index.
    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    /// Why the node stopped serving, if it did.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// The offset the next committed record of `partition` gets.
    pub fn high_watermark(&self, partition: PartitionId) -> Option<u64> {
        self.partitions
            .get(partition.0 as usize)
            .map(|p| p.high_watermark)
    }

    /// Every batch of `partition` in the log, committed or not, in offset order.
    pub fn batches(&self, partition: PartitionId) -> &[BatchRef] {
        self.partitions
            .get(partition.0 as usize)
            .map_or(&[], |p| &p.batches)
    }

    /// Where the entry holding `offset` of `partition` lies on disk (for the simulator's checks).
    pub fn locate(&self, partition: PartitionId, offset: u64) -> Option<(BatchRef, FrameLocation)> {
        let part = self.partitions.get(partition.0 as usize)?;
        let batch = part.batches[part.find(offset)?];
        Some((batch, self.wal.locate(batch.index)?))
    }
}
