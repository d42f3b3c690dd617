//! The replica state machine.

use crate::base::Base;
use crate::error::NodeError;
use crate::groups::GroupTable;
use crate::jitter::Jitter;
use crate::partition::{BatchRef, PartitionLog};
use crate::producers::{ProducerTable, RefusalReason, Verdict};
use crate::progress::Progress;
use crate::status::{Role, Status};
use crate::store_read::ParkedFetch;
use crate::tiering::{TierConfig, Tiering};
use crate::timer::{Timer, TimerTable};
use bytes::BytesMut;
use sq_core::codec::{self, BatchMeta, EntryKind, MAX_PAYLOAD_LEN};
use sq_core::{
    ClientId, FetchError, FetchOk, FetchRequest, FetchedRecord, GroupError, GroupId, GroupOp,
    MemberId, NodeId, PartitionId, PeerMsg, ProduceError, ProduceOk, ProduceRequest, Reply,
    Request, Time,
};
use sq_storage::{
    Disk, DiskError, Meta, ObjectDesc, OnDamage, Recovery, Snapshot, StoreError, StoreOk, StoreOp,
    Wal, WalConfig, WalError,
};
use std::collections::BTreeMap;
use std::collections::BTreeSet;

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
    /// A batch may hold at most this many records, so that no request costs more than this.
    pub max_batch_records: u32,
    /// How many recent sequences per producer are remembered for deduplication.
    pub dedup_window: usize,
    /// How many replicas the cluster has: nodes `0..nodes` (odd; 1 is a cluster of one).
    pub nodes: u32,
    /// Seeds the node's own randomness (election jitter); the same seed gives the same node.
    pub seed: u64,
    /// A follower that hears no leader for this long (ns) plus a random jitter of up to as
    /// much again stands for election; a leader that hears no majority for this long steps down.
    pub election_timeout: u64,
    /// A leader sends entries or a heartbeat to each follower at least this often (ns).
    pub heartbeat: u64,
    /// At most this many bytes of entries in one append message.
    pub max_append_bytes: usize,
    /// At most this many bytes of entries unacknowledged per follower (flow control).
    pub max_inflight_bytes: usize,
    /// A replica of a cluster reads back `scrub_entries` entries of its durable log every
    /// `scrub_interval` ns, round and round, so that latent damage (a bit flip, a lost write)
    /// is found and repaired from a peer before a failure elsewhere needs that copy.
    pub scrub_interval: u64,
    /// See `scrub_interval`.
    pub scrub_entries: u32,
    /// Tiering to the object store.
    pub tier: TierConfig,
    /// A leader whose WAL holds this many bytes answers produces with a definite
    /// `StorageFull` (recorded in the log) until trimming frees room: the disk never fills
    /// with acknowledged data while the store is away. From twice this many bytes on it records
    /// nothing more and answers the indeterminate `DiskFull`, so the WAL stays bounded however
    /// long the store is away.
    pub max_wal_bytes: u64,
    /// A leader expels a group member it has not heard from for this long (ns), which starts
    /// a new generation.
    pub session_timeout: u64,
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
            max_batch_records: 1024,
            dedup_window: 8,
            nodes: 1,
            seed: u64::from(id.0),
            election_timeout: 30 * Time::MILLI,
            heartbeat: 5 * Time::MILLI,
            max_append_bytes: 16 << 10,
            max_inflight_bytes: 64 << 10,
            scrub_interval: 20 * Time::MILLI,
            scrub_entries: 4,
            tier: TierConfig::default(),
            max_wal_bytes: u64::MAX,
            session_timeout: 300 * Time::MILLI,
        }
    }
}

/// Something that happens to the node. Deadlines are not inputs: the node says when it wants
/// to be woken ([`Node::poll_timeout`]) and the caller calls [`Node::handle_timeout`] then.
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
    /// A message from another replica.
    Peer {
        /// The sender.
        from: NodeId,
        /// The message.
        msg: PeerMsg,
    },
    /// A sync the node asked for ([`Output::Sync`]) finished.
    Synced {
        /// The token of the request.
        token: u64,
        /// Whether the disk made the file durable. After an error, the file's unsynced bytes
        /// may be gone although they can still be read (Linux's fsync semantics).
        result: Result<(), DiskError>,
    },
    /// A store call the node asked for ([`Output::Store`]) finished.
    Stored {
        /// The token of the request.
        token: u64,
        /// What the store answered (a timeout or a server error: a write may have happened).
        result: Result<StoreOk, StoreError>,
    },
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
    /// Send a message to another replica.
    Send {
        /// The replica.
        to: NodeId,
        /// The message.
        msg: PeerMsg,
    },
    /// Make everything written to `file` durable, then call back with [`Input::Synced`]. A
    /// sync takes time; the node answers nothing that depends on it until the callback.
    Sync {
        /// Names this request in the callback.
        token: u64,
        /// The file to sync.
        file: String,
    },
    /// Call the object store, then call back with [`Input::Stored`].
    Store {
        /// Names this request in the callback.
        token: u64,
        /// The call.
        op: StoreOp,
    },
}

/// A client waiting for an entry to commit, and what it is told then.
#[derive(Clone, Debug)]
pub(crate) struct Waiter {
    to: ClientId,
    req: u64,
    reply: Reply,
}

/// Tells every client in `waiters` that its outcome is unknown: `error` (indeterminate), or
/// for a group request its counterpart.
pub(crate) fn answer_unknown(
    waiters: BTreeMap<u64, Vec<Waiter>>,
    error: &ProduceError,
    out: &mut Vec<Output>,
) {
    for w in waiters.into_values().flatten() {
        let reply = match w.reply {
            Reply::Group(_) => Reply::Group(Err(match error {
                ProduceError::LeaderChanged => GroupError::LeaderChanged,
                ProduceError::StorageFailed(why) => GroupError::StorageFailed(why.clone()),
                other => GroupError::Unavailable(other.to_string()),
            })),
            _ => Reply::Produce(Err(error.clone())),
        };
        out.push(Output::Reply {
            to: w.to,
            req: w.req,
            reply,
        });
    }
}

/// Tells every producer in `waiters` that its outcome is unknown: `StorageFailed(why)`.
fn answer_failed(waiters: BTreeMap<u64, Vec<Waiter>>, why: &str, out: &mut Vec<Output>) {
    answer_unknown(waiters, &ProduceError::StorageFailed(why.to_string()), out);
}

/// The sync in flight: its token and the last index it covers.
#[derive(Clone, Copy, Debug)]
struct InFlightSync {
    token: u64,
    upto: u64,
}

/// An sq replica: a member of a Raft group of `config.nodes` replicas (a cluster of one leads
/// itself).
#[derive(Debug)]
pub struct Node {
    pub(crate) config: NodeConfig,
    pub(crate) wal: Wal,
    /// Term, vote and repair state, as last stored durably.
    pub(crate) meta: Meta,
    pub(crate) role: Role,
    /// The leader of the current term, if known.
    pub(crate) leader: Option<NodeId>,
    /// When this node last heard from the leader of its term: it refuses votes for an election
    /// timeout after (a live leader must not be deposed by a node that merely lost touch).
    pub(crate) leader_contact: Option<Time>,
    /// Votes (or pre-votes) granted to this node in the current round.
    pub(crate) votes: BTreeSet<NodeId>,
    /// Leader only: each follower's progress.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// Leader only: when each follower last answered (CheckQuorum).
    pub(crate) heard: BTreeMap<NodeId, Time>,
    /// Follower only: the last index known to match the current leader's log.
    pub(crate) verified: u64,
    /// The next entry the scrub reads back.
    pub(crate) scrub_next: u64,
    /// Follower only: the current leader's term and last index, as its latest append said.
    pub(crate) leader_last: Option<(u64, u64)>,
    /// Follower only: the leader owed an acknowledgement once a sync completes.
    pub(crate) ack_to: Option<NodeId>,
    /// Leader only: the index of its term's first entry; until it commits, the leader does not
    /// know the high watermark and serves no fetch.
    pub(crate) ready_index: u64,
    pub(crate) jitter: Jitter,
    pub(crate) commit_index: u64,
    pub(crate) partitions: Vec<PartitionLog>,
    producers: ProducerTable,
    /// Every consumer group as the whole log (uncommitted entries too) leaves it.
    pub(crate) groups: GroupTable,
    /// Leader only: when each group member was last heard from (session expiry).
    pub(crate) sessions: BTreeMap<(GroupId, MemberId), Time>,
    pub(crate) waiters: BTreeMap<u64, Vec<Waiter>>,
    pub(crate) timers: TimerTable,
    sync: Option<InFlightSync>,
    pub(crate) next_token: u64,
    /// What the trimmed entries meant.
    pub(crate) base: Base,
    pub(crate) tier: Tiering,
    pub(crate) failed: Option<String>,
    /// The index of an entry a fetch found damaged, for the caller to repair.
    damage_seen: Option<u64>,
    recovery: Recovery,
    scratch: BytesMut,
    pub(crate) probes: sq_core::Probes,
}

impl Node {
    /// Starts a node on `disk` at `now`: recovers the WAL (syncing what it read back, so that
    /// nothing it serves lives only in the page cache) and rebuilds partitions and producer
    /// state.
    ///
    /// A cluster of one leads the term it last recorded (a first boot records term 1): no other
    /// node can have led since, and everything durable is committed. Damage it cannot bound
    /// makes it refuse to start. A replica of a larger cluster starts as a follower; damage in
    /// its log is recorded durably (it may have lost entries it acknowledged), then the log is
    /// cut before it and repaired from the leader, and until then it neither votes for a log
    /// that could lack those entries nor stands for election.
    pub fn open(config: NodeConfig, disk: &mut dyn Disk, now: Time) -> Result<Node, NodeError> {
        let mut meta = Meta::load(disk)?;
        let single = config.nodes <= 1;
        let base = match Snapshot::load(disk)? {
            Some(s) => Base::from_snapshot(s, config.partitions)?,
            None => Base::empty(config.partitions, config.dedup_window),
        };
        let after = base.last_index();
        let (wal, recovery) = if single {
            Wal::open_after(disk, config.wal, OnDamage::Refuse, after)?
        } else {
            match Wal::open_after(disk, config.wal, OnDamage::Report, after) {
                Ok(opened) => opened,
                Err(WalError::Damaged { .. }) => {
                    // First record that entries may be lost, then lose them: a crash between
                    // the two finds the damage again.
                    // The damaged entries' identities are unknown: any entry of this term or
                    // earlier may have been lost.
                    meta.repair_term = meta.term.max(1);
                    meta.repair_index = u64::MAX;
                    meta.store(disk)?;
                    Wal::open_after(disk, config.wal, OnDamage::Cut, after)?
                }
                Err(e) => return Err(e.into()),
            }
        };
        // A crash between storing a snapshot and dropping the log it replaces leaves a log that
        // ends before the snapshot, or disagrees with it at its last entry: drop it now. A crash
        // in the middle of a trim leaves segments the snapshot covers: trim them now (only once
        // the log is known to agree with the snapshot: the entry at its last index says so).
        let (mut wal, recovery) = (wal, recovery);
        if after > 0 {
            let behind = wal.last_index() < after;
            let conflicts = wal
                .header(after)
                .is_some_and(|h| h.term != base.snapshot.last_term);
            if behind || conflicts {
                wal.reset(disk, after + 1)?;
            } else {
                wal.trim_to(disk, after)?;
            }
        }
        // Only a first boot writes a term, so a node whose disk is full still restarts (and
        // answers StorageFull until space returns).
        if single && meta.term == 0 {
            meta.term = 1;
            meta.voted_for = u64::from(config.id.0) + 1;
            meta.store(disk)?;
        }
        let mut tier = Tiering::default();
        tier.set_manifest(base.snapshot.manifest.clone(), config.partitions);
        let mut node = Node {
            config,
            commit_index: if single {
                wal.synced_index().max(after)
            } else {
                after
            },
            wal,
            meta,
            role: if single { Role::Leader } else { Role::Follower },
            leader: single.then_some(config.id),
            leader_contact: None,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            heard: BTreeMap::new(),
            verified: 0,
            scrub_next: 0,
            leader_last: None,
            ack_to: None,
            ready_index: 0,
            jitter: Jitter::new(config.seed),
            partitions: Vec::new(),
            producers: ProducerTable::new(config.dedup_window),
            groups: GroupTable::default(),
            sessions: BTreeMap::new(),
            waiters: BTreeMap::new(),
            timers: TimerTable::default(),
            sync: None,
            next_token: 0,
            failed: None,
            damage_seen: None,
            recovery,
            scratch: BytesMut::new(),
            base,
            tier,
            probes: sq_core::Probes::default(),
        };
        node.rebuild()?;
        node.load_manifest_entries(disk)?;
        if !single {
            node.arm_election(now);
            node.timers.set(Timer::Scrub, now + config.scrub_interval);
        }
        Ok(node)
    }

    /// Whether this node is a cluster of one.
    pub(crate) fn single(&self) -> bool {
        self.config.nodes <= 1
    }

    /// The term of entry `index` (0 for index 0 and for entries not held; the snapshot's last
    /// entry is known).
    pub(crate) fn term_at(&self, index: u64) -> u64 {
        if index == self.base.last_index() {
            return self.base.snapshot.last_term;
        }
        self.wal.header(index).map_or(0, |h| h.term)
    }

    /// The index and term of the last entry.
    pub(crate) fn last_entry(&self) -> (u64, u64) {
        let last = self.wal.last_index();
        (last, self.term_at(last))
    }

    /// What this node reports about itself.
    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: self.role,
            term: self.meta.term,
            leader: self.leader,
            commit_index: self.commit_index,
            last_index: self.wal.last_index(),
            synced_index: self.wal.synced_index(),
            repairing: self.meta.repair_term != 0,
            tiered_upto: self.tier.covered(),
            wal_start: self.wal.first_index(),
            objects: self.tier.manifest.len(),
        }
    }

    /// The bytes its WAL holds (a walk over its segments: for reports, not for every step).
    pub fn wal_bytes(&self) -> u64 {
        self.wal.bytes()
    }

    /// Rebuilds the partition indexes and the producer table from the snapshot and the WAL
    /// entries after it; forgets manifest entries no longer in the log.
    pub(crate) fn rebuild(&mut self) -> Result<(), NodeError> {
        self.partitions = self
            .base
            .starts
            .iter()
            .map(|&s| PartitionLog::starting_at(s))
            .collect();
        self.producers = self.base.producers.clone();
        self.groups = self.base.groups.clone();
        let after = self.base.last_index();
        let entries: Vec<_> = self
            .wal
            .headers()
            .map(|(h, _)| *h)
            .filter(|h| h.index > after)
            .collect();
        for h in entries {
            self.take_in(h.kind, &h.batch, h.index)?;
        }
        let last = self.wal.last_index();
        self.tier.pending.retain(|&i, _| i > after && i <= last);
        // A proposal cut from the log (a failed sync) will never commit: upload again.
        self.tier.forget_proposal_after(last);
        Ok(())
    }

    /// Reads the descriptions of the manifest entries the WAL holds past the snapshot (at a
    /// start): those already committed (a node alone commits what is durable) are applied, in
    /// order, the others as they commit.
    fn load_manifest_entries(&mut self, disk: &mut dyn Disk) -> Result<(), NodeError> {
        let from = self.base.last_index() + 1;
        let indexes: Vec<u64> = self
            .wal
            .headers()
            .filter(|(h, _)| h.kind == EntryKind::Manifest && h.index >= from)
            .map(|(h, _)| h.index)
            .collect();
        for index in indexes {
            let (_, payload) = self.wal.read(disk, index)?;
            let desc = decode_desc(index, &payload)?;
            if index <= self.commit_index {
                self.tier.apply(desc);
            } else {
                self.tier.pending.insert(index, desc);
            }
        }
        Ok(())
    }

    /// Takes one log entry into the partition index and the producer table.
    fn take_in(&mut self, kind: EntryKind, b: &BatchMeta, index: u64) -> Result<(), NodeError> {
        if kind == EntryKind::Batch {
            let Some(part) = self.partitions.get_mut(b.partition as usize) else {
                return Err(NodeError::Inconsistent {
                    index,
                    detail: format!(
                        "partition {} beyond the configured {}",
                        b.partition, self.config.partitions
                    ),
                });
            };
            if b.base_offset != part.next_offset() {
                return Err(NodeError::Inconsistent {
                    index,
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
                index,
            });
            if index <= self.commit_index {
                part.high_watermark = part.next_offset();
            }
        }
        if kind == EntryKind::Group {
            let op = GroupOp::from_meta(b).map_err(|e| NodeError::Inconsistent {
                index,
                detail: e.to_string(),
            })?;
            self.groups.apply(&op);
        }
        self.producers.apply(kind, b, index);
        Ok(())
    }

    /// A message from another replica. Messages of a cluster of one, or to a stopped node, are
    /// ignored.
    fn peer(
        &mut self,
        now: Time,
        from: NodeId,
        msg: PeerMsg,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        if self.single()
            || self.failed.is_some()
            || from == self.config.id
            || from.0 >= self.config.nodes
        {
            return;
        }
        match msg {
            PeerMsg::Vote(m) => self.handle_vote(now, from, m, disk, out),
            PeerMsg::VoteReply(m) => self.handle_vote_reply(now, from, m, disk, out),
            PeerMsg::Append(m) => self.handle_append(now, m, disk, out),
            PeerMsg::AppendReply(m) => self.handle_append_reply(now, from, m, disk, out),
            PeerMsg::Snapshot(m) => self.handle_snapshot(now, m, disk, out),
        }
    }

    /// Handles one input at `now`, pushing what must be done onto `out`.
    pub fn handle(&mut self, now: Time, input: Input, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        match input {
            Input::Request { from, req, request } => match request {
                Request::Produce(p) => self.produce(now, from, req, p, disk, out),
                Request::Group(g) => self.group_request(now, from, req, g, disk, out),
                Request::Fetch(fetch) => {
                    let parked = ParkedFetch { from, req, fetch };
                    let mut result = self.fetch_now(parked, disk, out);
                    if let Some(index) = self.damage_seen.take() {
                        if !self.single() {
                            // Never served: the leader cuts it and is repaired by the next one.
                            self.damaged(now, index, disk, out);
                            result = Some(Err(FetchError::NotLeader { leader: None }));
                        }
                    }
                    if let Some(result) = result {
                        out.push(Output::Reply {
                            to: from,
                            req,
                            reply: Reply::Fetch(result),
                        });
                    }
                }
            },
            Input::Synced { token, result } => self.synced(now, token, result, disk, out),
            Input::Peer { from, msg } => self.peer(now, from, msg, disk, out),
            Input::Stored { token, result } => self.stored(now, token, result, disk, out),
        }
        self.expire_sessions(now, disk, out);
        self.housekeeping(now, disk, out);
    }

    /// When the node next wants [`Node::handle_timeout`] called, if ever.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.next()
    }

    /// Fires every deadline due at `now`.
    pub fn handle_timeout(&mut self, now: Time, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        for timer in self.timers.expire(now) {
            if self.failed.is_some() {
                return;
            }
            match timer {
                Timer::Flush => self.start_sync(out),
                Timer::Election => self.election_timeout(now, out),
                Timer::Heartbeat => self.heartbeat(now, disk, out),
                Timer::Scrub => self.scrub(now, disk, out),
                // Housekeeping below tries the upload again.
                Timer::Upload => {}
            }
        }
        self.expire_sessions(now, disk, out);
        self.housekeeping(now, disk, out);
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
        if self.role != Role::Leader {
            let leader = self.leader;
            return reply(out, Err(ProduceError::NotLeader { leader }));
        }
        let partition = p.partition.0;
        if partition >= self.config.partitions {
            return reply(out, Err(ProduceError::UnknownPartition(p.partition)));
        }
        if p.records.is_empty() {
            return reply(out, Err(ProduceError::EmptyBatch));
        }
        // Without a budget, no walk over the segments.
        let wal_bytes = if self.config.max_wal_bytes == u64::MAX {
            0
        } else {
            self.wal.bytes()
        };
        let over_budget = wal_bytes >= self.config.max_wal_bytes;
        if p.records.len() > self.config.max_batch_records as usize {
            return reply(
                out,
                Err(ProduceError::TooManyRecords {
                    count: p.records.len(),
                    max: self.config.max_batch_records,
                }),
            );
        }
        // Sized before encoding: the codec may assume every payload fits a frame.
        let size: usize = p.records.iter().map(|r| 4 + r.len()).sum();
        if size > MAX_PAYLOAD_LEN as usize {
            return reply(out, Err(ProduceError::TooLarge(size)));
        }
        let meta = |base_offset: u64, count: u32| BatchMeta {
            partition,
            base_offset,
            count,
            producer: p.producer.0,
            epoch: p.epoch,
            seq: p.seq,
        };
        match self.producers.check(p.producer, p.epoch, p.seq, partition) {
            Verdict::Duplicate(a) => {
                self.probes.hit(if self.term_at(a.index) == self.meta.term {
                    sq_core::Probe::DedupHit
                } else {
                    sq_core::Probe::DedupHitAfterFailover
                });
                let ok = Ok(ProduceOk {
                    base_offset: a.base_offset,
                });
                return self.answer_at(a.index, from, req, Reply::Produce(ok), out);
            }
            Verdict::Refused { error, index } => {
                return self.answer_at(index, from, req, Reply::Produce(Err(error)), out)
            }
            Verdict::Reject(error) => return reply(out, Err(error)),
            // Past twice the budget nothing more is recorded (see below).
            Verdict::Fence if wal_bytes >= self.config.max_wal_bytes.saturating_mul(2) => {
                return reply(out, Err(ProduceError::DiskFull));
            }
            Verdict::Fence => {
                let error = self.producers.out_of_order(p.producer, p.epoch, p.seq);
                let m = meta(0, RefusalReason::OutOfOrder as u32);
                return self.refuse(now, from, req, m, error, disk, out);
            }
            // Twice over budget (the store has been away long enough for the refusal records
            // themselves to fill half of it again): record nothing more, answer as a full disk
            // does (indeterminate: a late copy may still land once there is room).
            Verdict::Append if wal_bytes >= self.config.max_wal_bytes.saturating_mul(2) => {
                return reply(out, Err(ProduceError::DiskFull));
            }
            Verdict::Append if over_budget => {
                // Refused before anything is lost: the WAL waits for the store to take its
                // older segments.
                let m = meta(0, RefusalReason::StorageFull as u32);
                return self.refuse(now, from, req, m, ProduceError::StorageFull, disk, out);
            }
            Verdict::Append => {}
        }
        self.scratch.clear();
        codec::encode_records(&p.records, &mut self.scratch);
        let count = u32::try_from(p.records.len()).unwrap_or_else(|_| {
            panic!("invariant: a batch under max_batch_records has < 2^32 records")
        });
        let base_offset = self.partitions[partition as usize].next_offset();
        let m = meta(base_offset, count);
        let scratch = std::mem::take(&mut self.scratch);
        let appended = self.append(now, EntryKind::Batch, &m, &scratch, disk);
        self.scratch = scratch;
        match appended {
            Ok(index) => {
                let ok = Ok(ProduceOk { base_offset });
                self.answer_at(index, from, req, Reply::Produce(ok), out);
                self.replicate(now, disk, out);
            }
            Err(WalError::NoSpace) => {
                let m = meta(0, RefusalReason::StorageFull as u32);
                self.refuse(now, from, req, m, ProduceError::StorageFull, disk, out);
            }
            Err(e) => {
                reply(out, Err(ProduceError::StorageFailed(e.to_string())));
                self.fail(format!("append failed: {e}"), out);
            }
        }
    }

    /// Records a refusal in the log (its reason in `meta.count`) and answers `error` once that
    /// record is durable, so that the refusal stays definite across restarts. If even the record
    /// finds no room, the answer is the indeterminate `DiskFull`: nothing promises that a copy
    /// never lands.
    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &mut self,
        now: Time,
        from: ClientId,
        req: u64,
        meta: BatchMeta,
        error: ProduceError,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        match self.append(now, EntryKind::Refusal, &meta, &[], disk) {
            Ok(index) => {
                if matches!(error, ProduceError::StorageFull) {
                    self.probes.hit(sq_core::Probe::StorageFullAnswered);
                }
                self.answer_at(index, from, req, Reply::Produce(Err(error)), out);
                self.replicate(now, disk, out);
            }
            Err(WalError::NoSpace) => out.push(Output::Reply {
                to: from,
                req,
                reply: Reply::Produce(Err(ProduceError::DiskFull)),
            }),
            Err(e) => {
                out.push(Output::Reply {
                    to: from,
                    req,
                    reply: Reply::Produce(Err(ProduceError::StorageFailed(e.to_string()))),
                });
                self.fail(format!("append failed: {e}"), out);
            }
        }
    }

    /// Appends one entry of this leader's term, takes it in, and arms the group-commit timer.
    pub(crate) fn append(
        &mut self,
        now: Time,
        kind: EntryKind,
        meta: &BatchMeta,
        payload: &[u8],
        disk: &mut dyn Disk,
    ) -> Result<u64, WalError> {
        let index = self.wal.append(disk, self.meta.term, kind, meta, payload)?;
        if let Err(e) = self.take_in(kind, meta, index) {
            panic!("invariant: an entry the node just built fits its own log: {e}");
        }
        if !self.timers.is_set(Timer::Flush) && self.sync.is_none() {
            self.timers.set(Timer::Flush, now + self.config.flush_delay);
        }
        Ok(index)
    }

    /// Answers `reply` to `(to, req)` once entry `index` is committed (at once if it is).
    pub(crate) fn answer_at(
        &mut self,
        index: u64,
        to: ClientId,
        req: u64,
        reply: Reply,
        out: &mut Vec<Output>,
    ) {
        if index <= self.commit_index {
            out.push(Output::Reply { to, req, reply });
        } else {
            self.waiters
                .entry(index)
                .or_default()
                .push(Waiter { to, req, reply });
        }
    }

    /// Takes in an entry a leader sent, already appended to the WAL at `index`.
    pub(crate) fn take_in_replicated(
        &mut self,
        h: &codec::FrameHeader,
        payload: &[u8],
    ) -> Result<(), NodeError> {
        if h.kind == EntryKind::Manifest {
            let desc = decode_desc(h.index, payload)?;
            self.tier.pending.insert(h.index, desc);
        }
        self.take_in(h.kind, &h.batch, h.index)
    }

    /// Asks for a sync of everything appended, unless one is in flight (its completion asks
    /// for the next).
    pub(crate) fn start_sync(&mut self, out: &mut Vec<Output>) {
        if self.failed.is_some() || self.sync.is_some() {
            return;
        }
        if let Some(request) = self.wal.sync_request() {
            let token = self.next_token;
            self.next_token += 1;
            self.sync = Some(InFlightSync {
                token,
                upto: request.upto,
            });
            out.push(Output::Sync {
                token,
                file: request.file,
            });
        }
    }

    /// A sync finished: count what it made durable, or, if it failed, drop what it may have
    /// lost.
    fn synced(
        &mut self,
        now: Time,
        token: u64,
        result: Result<(), DiskError>,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) {
        let Some(sync) = self.sync.filter(|s| s.token == token) else {
            return;
        };
        self.sync = None;
        if self.failed.is_some() {
            return;
        }
        match result {
            Ok(()) => {
                self.wal.synced(sync.upto);
                self.durable(now, disk, out);
                // Appends that came while the sync was in flight have waited long enough.
                self.start_sync(out);
            }
            Err(e) => self.sync_failed(now, e, disk, out),
        }
    }

    /// After a failed sync the unsynced entries may be gone from the disk although they can
    /// still be read back: cut them from the log, so that what remains is what is durable, and
    /// tell their producers the outcome is unknown. They were never acked.
    fn sync_failed(&mut self, now: Time, e: DiskError, disk: &mut dyn Disk, out: &mut Vec<Output>) {
        let keep = self.wal.synced_index();
        let why = format!("sync failed: {e}");
        self.probes.hit(sq_core::Probe::SyncFailedCut);
        // A leader that cut entries of its own term must not write others at the same indexes
        // in the same term: a follower holding the first would take the second for it
        // (canonical/raft#320). It steps down; a new term starts with new identities.
        if self.role == Role::Leader && !self.single() {
            self.step_down(now, out);
        }
        // The snapshot stands for everything up to its last entry: never cut below it.
        let keep = keep.max(self.base.last_index());
        let cut = if self.wal.last_index() < self.base.last_index() {
            self.reset_log(disk, keep + 1)
        } else {
            self.cut_log(disk, keep + 1)
        };
        if let Err(e) = cut {
            return self.fail(
                format!("{why}; dropping the unsynced entries failed: {e}"),
                out,
            );
        }
        let lost = self.waiters.split_off(&(keep + 1));
        answer_failed(lost, &why, out);
        self.timers.stop(Timer::Flush);
        self.verified = self.verified.min(keep);
        // A leader may have committed entries on its followers' copies before its own sync
        // failed: they are committed still, but this replica no longer holds them.
        self.commit_index = self.commit_index.min(keep);
        if let Err(e) = self.rebuild() {
            self.fail(format!("{why}; rebuilding after it failed: {e}"), out);
        }
    }

    /// Cuts the log from `index` on. A sync in flight was issued for what the log held before:
    /// on completion it vouches for no entry at or past the cut (entries written there since
    /// are other bytes, and not covered by it).
    pub(crate) fn cut_log(&mut self, disk: &mut dyn Disk, index: u64) -> Result<(), WalError> {
        self.wal.truncate_from(disk, index)?;
        if let Some(sync) = self.sync.as_mut() {
            sync.upto = sync.upto.min(index.saturating_sub(1));
        }
        Ok(())
    }

    /// Drops the whole log, which continues at `next` (after an installed snapshot). A sync in
    /// flight vouches for nothing after.
    pub(crate) fn reset_log(&mut self, disk: &mut dyn Disk, next: u64) -> Result<(), WalError> {
        self.wal.reset(disk, next)?;
        if let Some(sync) = self.sync.as_mut() {
            sync.upto = sync.upto.min(next.saturating_sub(1));
        }
        Ok(())
    }

    /// Commits up to `index` (never past the last entry), answering the producers waiting for it
    /// and applying manifest entries.
    pub(crate) fn commit_to(&mut self, index: u64, out: &mut Vec<Output>) {
        let index = index.min(self.wal.last_index());
        for i in self.commit_index + 1..=index {
            if let Some(h) = self.wal.header(i) {
                match h.kind {
                    EntryKind::Batch => {
                        let b = h.batch;
                        self.partitions[b.partition as usize].high_watermark =
                            b.base_offset + u64::from(b.count);
                    }
                    EntryKind::Manifest => self.apply_manifest(i),
                    EntryKind::Noop | EntryKind::Refusal | EntryKind::Group => {}
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
                    reply: w.reply,
                });
            }
        }
    }

    /// Fail-stop: after a disk error the node's memory may not match its disk, so it answers
    /// nothing more until it is restarted and recovers.
    pub(crate) fn fail(&mut self, why: String, out: &mut Vec<Output>) {
        answer_failed(std::mem::take(&mut self.waiters), &why, out);
        self.timers = TimerTable::default();
        self.failed = Some(why);
    }

    /// Answers a fetch now, or parks it until the object it needs is read from the store
    /// (`None`).
    pub(crate) fn fetch_now(
        &mut self,
        parked: ParkedFetch,
        disk: &mut dyn Disk,
        out: &mut Vec<Output>,
    ) -> Option<Result<FetchOk, FetchError>> {
        let f = &parked.fetch;
        let start = match self.check_fetch(f) {
            Ok(part) => part,
            Err(e) => return Some(Err(e)),
        };
        // Only the leader serves, and only once an entry of its term has committed: before,
        // its commit index may lag what earlier leaders committed (Raft thesis §6.4).
        if f.offset < start.0 {
            return self.fetch_from_store(parked, start.1, out);
        }
        Some(self.fetch(&parked.fetch, start.1, disk))
    }

    /// Whether this node may serve `f`: the partition's WAL start and high watermark if so.
    fn check_fetch(&self, f: &FetchRequest) -> Result<(u64, u64), FetchError> {
        if let Some(why) = &self.failed {
            return Err(FetchError::StorageFailed(why.clone()));
        }
        if self.role != Role::Leader {
            return Err(FetchError::NotLeader {
                leader: self.leader,
            });
        }
        if !self.serving() {
            return Err(FetchError::NotReady);
        }
        let Some(part) = self.partitions.get(f.partition.0 as usize) else {
            return Err(FetchError::UnknownPartition(f.partition));
        };
        if f.offset > part.high_watermark {
            return Err(FetchError::OffsetOutOfRange {
                requested: f.offset,
                log_start: 0,
                high_watermark: part.high_watermark,
            });
        }
        Ok((part.start, part.high_watermark))
    }

    /// Serves a fetch that `check_fetch` allowed from the WAL.
    fn fetch(
        &mut self,
        f: &FetchRequest,
        high_watermark: u64,
        disk: &mut dyn Disk,
    ) -> Result<FetchOk, FetchError> {
        let part = &self.partitions[f.partition.0 as usize];
        let max = f.max_records.min(self.config.max_fetch_records);
        let mut records = Vec::new();
        let mut offset = f.offset;
        let mut k = part.find(offset);
        while let Some(i) = k {
            let batch = self.partitions[f.partition.0 as usize].batches[i];
            let room = max.saturating_sub(records.len() as u32);
            if room == 0 || batch.base_offset >= high_watermark {
                break;
            }
            let skip = (offset - batch.base_offset) as u32;
            let values = match self.read_batch(disk, f.partition, batch, skip, room) {
                Ok(values) => values,
                Err(e) if records.is_empty() => return Err(e),
                Err(_) => break,
            };
            for value in values {
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

    /// Reads records `skip..skip + take` of one committed batch from the WAL; every frame is
    /// CRC-checked on the way (and re-read once by the WAL before it is called corrupt).
    fn read_batch(
        &mut self,
        disk: &mut dyn Disk,
        partition: PartitionId,
        batch: BatchRef,
        skip: u32,
        take: u32,
    ) -> Result<Vec<bytes::Bytes>, FetchError> {
        let corrupt = FetchError::Corrupt {
            offset: batch.base_offset,
            next: batch.end(),
        };
        let (header, payload) = match self.wal.read(disk, batch.index) {
            Ok(r) => r,
            Err(WalError::Corrupt { .. }) => {
                self.damage_seen = Some(batch.index);
                return Err(corrupt);
            }
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
        codec::decode_records_range(&payload, b.count, skip, take).map_err(|_| corrupt)
    }

    /// What WAL recovery found when this node started.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
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
}

/// Decodes the object description a manifest entry carries.
pub(crate) fn decode_desc(index: u64, payload: &[u8]) -> Result<ObjectDesc, NodeError> {
    ObjectDesc::decode(&mut &payload[..]).map_err(|e| NodeError::Inconsistent {
        index,
        detail: format!("manifest entry: {e}"),
    })
}
