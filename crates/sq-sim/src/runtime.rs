//! The harness: one thread, one seed, one event queue. It runs the real node on simulated disks
//! and a simulated network, drives the clients, applies transitions (operations and faults), feeds
//! every history event to the reference model and checks the invariants as it goes.

use crate::disk::{CrashKind, IoFault, Misdirect, SimDisk};
use crate::failure::Failure;
use crate::invariants::durability::{self, AckedBatch};
use crate::invariants::durable_image::DurableImage;
use crate::invariants::watermark::Watermarks;
use crate::invariants::{image, served};
use crate::network::{Addr, Fate, Network};
use crate::queue::EventQueue;
use crate::rng::{mix, SimRng};
use crate::store::{CallFate, SimStore, StoreFaults};
use crate::trace::{Msg, Trace, TraceSink, What};
use bytes::Bytes;
use sq_client::{
    ClientOutput, Consumer, ConsumerConfig, GroupConsumer, GroupConsumerConfig, HistoryEvent, Op,
    Outcome, Producer, ProducerConfig,
};
use sq_core::codec::HEADER_LEN;
use sq_core::{
    ClientId, FetchError, GroupId, MemberId, NodeId, PartitionId, PeerMsg, ProduceError,
    ProducerId, Reply, Request, Time,
};
use sq_model::{ClusterShape, GroupOracle, Invariant, LogOracle, Transition, Violation};
use sq_node::{Input, Node, NodeConfig, NodeError, Output};
use sq_storage::{DiskError, MetaError, WalConfig, WalError};
use std::collections::{BTreeMap, BTreeSet};

mod checker;
mod checks;
mod converge;
mod coverage;
mod events;
mod faults;
mod finish;
mod groups;
mod host;
mod observe;
mod partition;
mod quorum;
mod replicas;
mod store_calls;
mod wire;
mod workload;

use checker::{Checker, ReadBack};
use host::Host;
use workload::Workload;

pub use finish::LIVENESS_BOUND;

use wire::{history_line, msg_of, record_value};

/// How a run is set up.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The cluster's shape.
    pub shape: ClusterShape,
    /// The run's seed.
    pub seed: u64,
    /// One-way latency bounds, ns.
    pub latency: (u64, u64),
    /// WAL segment size: small, so runs cross segment boundaries.
    pub segment_bytes: u64,
    /// How long (ns) a sync takes, bounds: a crash can land while one is in flight.
    pub sync_latency: (u64, u64),
    /// The node's group-commit delay, ns.
    pub flush_delay: u64,
    /// The node's deduplication window: sequences remembered per producer.
    pub dedup_window: usize,
    /// The node's cap on records per fetch.
    pub max_fetch_records: u32,
    /// The node's cap on records per batch.
    pub max_batch_records: u32,
    /// The producers' patience.
    pub producer: ProducerConfig,
    /// The consumers' patience.
    pub consumer: ConsumerConfig,
    pub member: GroupConsumerConfig,
    pub session_timeout: u64,
    /// How many trace events are kept for diagnostics.
    pub trace_capacity: usize,
    /// How long (ns) the healed cluster gets to settle before a stuck client is a violation.
    pub settle_limit: u64,
    /// Whether to keep the whole client history (scenario checks read it); without it, memory
    /// holds only what the checks need (the model's view of every record), not every fetch.
    pub keep_history: bool,
    /// What this run is, for diagnostics: "scenario S04 · seed 7".
    pub label: String,
    /// The command that replays this run.
    pub replay: String,
    /// How long (ns) a node that died on its own (a disk error, a crash inside an operation)
    /// stays down before its supervisor restarts it.
    pub supervisor_backoff: u64,
    /// The nodes' election timeout, ns (each adds its own jitter of up to as much again).
    pub election_timeout: u64,
    /// The leaders' heartbeat interval, ns.
    pub heartbeat: u64,
    /// The most bytes of entries in one append message.
    pub max_append_bytes: usize,
    /// The most bytes of entries in flight per follower.
    pub max_inflight_bytes: usize,
    /// The object store and its faults: `None` runs without one (nothing is tiered).
    pub store: Option<StoreFaults>,
    /// The leaders' WAL budget in bytes: past it, produces get a definite `StorageFull`.
    pub max_wal_bytes: u64,
    /// About how many bytes of entries one uploaded object holds (at least a segment).
    pub max_object_bytes: usize,
    /// Whether damage follows the fault atlas (one replica's storage may lie per run). Off
    /// (`# atlas: off` in a script) it lands where aimed, beyond what a quorum is promised to
    /// survive: a way to show a real loss, never used by the suite's searches.
    pub atlas: bool,
}

impl SimConfig {
    /// The defaults for `shape` and `seed`; the seed also picks the network's latency range.
    pub fn new(shape: ClusterShape, seed: u64) -> SimConfig {
        let mut rng = SimRng::new(mix(seed, 0x1a7e));
        let min = rng.between(50, 500) * Time::MICRO;
        let max = min + rng.between(100, 3000) * Time::MICRO;
        SimConfig {
            shape,
            seed,
            latency: (min, max),
            // Small limits, drawn per seed, so that a typical run crosses every edge: segment
            // rolls, the end of the dedup window, the fetch cap, the batch cap.
            segment_bytes: 256 + rng.below(4096),
            sync_latency: {
                // Real fsyncs take from tens of microseconds to several milliseconds; a long
                // one leaves room for a crash while it is in flight.
                let min = rng.between(20, 400) * Time::MICRO;
                (min, min + rng.between(10, 6000) * Time::MICRO)
            },
            flush_delay: rng.between(50, 2000) * Time::MICRO,
            dedup_window: rng.between(1, 8) as usize,
            max_fetch_records: rng.between(1, 16) as u32,
            max_batch_records: rng.between(4, 8) as u32,
            producer: ProducerConfig::default(),
            consumer: ConsumerConfig::default(),
            trace_capacity: 256,
            settle_limit: 10 * Time::SECOND,
            keep_history: true,
            label: format!("seed {seed}"),
            replay: format!("seed {seed}"),
            // Drawn last, so the draws above keep their values. Kept under the producers' first
            // retry interval, so that a supervised restart looks like a brief outage.
            supervisor_backoff: rng.between(1, 18) * Time::MILLI,
            // Long enough for a round trip and a sync, several heartbeats apart.
            election_timeout: rng.between(20, 40) * Time::MILLI,
            heartbeat: rng.between(3, 5) * Time::MILLI,
            // Small, so appends are split and flow control holds them back in a typical run.
            max_append_bytes: rng.between(150, 2000) as usize,
            max_inflight_bytes: rng.between(300, 8000) as usize,
            store: None,
            max_wal_bytes: u64::MAX,
            max_object_bytes: 1 << 20,
            member: GroupConsumerConfig::default(),
            // Drawn apart from the rest, so the draws above keep their values: from a few
            // heartbeats to many, so that expiry is reached in some seeds and rare in others.
            session_timeout: SimRng::new(mix(seed, 0x6e55)).between(100, 400) * Time::MILLI,
            atlas: true,
        }
    }

    /// Attaches an object store with its latency drawn for this seed (tiering on), and a WAL
    /// budget drawn small enough that a store outage reaches it in a typical run: a few
    /// segments above what a replica keeps once its backlog is uploaded.
    pub fn with_store(mut self) -> SimConfig {
        let mut rng = SimRng::new(mix(self.seed, 0x5703e));
        self.store = Some(StoreFaults::draw(&mut rng));
        self.max_wal_bytes = self.settled_wal_bound() + self.segment_bytes * rng.between(2, 16);
        // From one segment per object (every upload a single segment) to several.
        self.max_object_bytes = (self.segment_bytes * rng.between(1, 8)) as usize;
        self
    }

    /// The most a replica's WAL holds once the store took its backlog: the open segment and
    /// the sealed ones not yet uploaded or trimmed (a manifest entry commits a round trip after
    /// its PUT; a follower's segments straddle the leader's), each at most a segment and a
    /// frame, and one window of appends (a segment is sealed only once all of it is durable, so
    /// a follower's open segment takes a whole window of entries appended between two syncs).
    pub fn settled_wal_bound(&self) -> u64 {
        4 * (self.segment_bytes + 1024) + self.max_inflight_bytes as u64
    }

    /// How long a healthy, undisturbed cluster may take to answer an operation: see
    /// [`LIVENESS_BOUND`]; a cluster of several nodes may first have to elect a leader (up to
    /// two election timeouts before a follower stands, a round trip each for pre-votes, votes
    /// and the leader's first entry, and a lost election or two) and its clients to find it.
    pub fn liveness_bound(&self) -> u64 {
        if self.shape.nodes <= 1 {
            LIVENESS_BOUND
        } else {
            LIVENESS_BOUND + 6 * self.election_timeout + 100 * Time::MILLI
        }
    }

    /// The node config of node `n` in this run.
    pub fn node_config(&self, n: u32) -> NodeConfig {
        let mut config = NodeConfig::new(NodeId(n), u32::from(self.shape.partitions));
        config.wal = WalConfig {
            segment_bytes: self.segment_bytes,
        };
        config.flush_delay = self.flush_delay;
        config.dedup_window = self.dedup_window;
        config.max_fetch_records = self.max_fetch_records;
        config.max_batch_records = self.max_batch_records;
        config.nodes = u32::from(self.shape.nodes);
        config.seed = mix(self.seed, 0x0de0 + u64::from(n));
        config.election_timeout = self.election_timeout;
        config.heartbeat = self.heartbeat;
        config.max_append_bytes = self.max_append_bytes;
        config.max_inflight_bytes = self.max_inflight_bytes;
        config.tier.enabled = self.store.is_some();
        config.tier.max_object_bytes = self.max_object_bytes;
        config.max_wal_bytes = self.max_wal_bytes;
        config.session_timeout = self.session_timeout;
        config
    }
}

/// What a finished run did, for reports and scenario checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Produces invoked.
    pub produces: u64,
    /// Produces acked.
    pub acked: u64,
    /// Produces that definitely failed.
    pub failed: u64,
    /// Produces that ended indeterminate.
    pub indeterminate: u64,
    /// `StorageFull` answers seen by producers.
    pub storage_full: u64,
    /// `DiskFull` answers (no room even to record a refusal) seen by producers.
    pub disk_full: u64,
    /// Fetches that returned records.
    pub fetches: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Corruptions injected (bit flips and misdirected writes).
    pub corruptions: u64,
    /// Crashes that landed while the node had a sync in flight.
    pub crashes_mid_sync: u64,
    /// Power losses, injected or landing inside an operation.
    pub power_losses: u64,
    /// Restarts by a supervisor after a node died on its own.
    pub supervised_restarts: u64,
    /// Nodes that refused to start because of injected damage, with the reason: "n0 refused to
    /// start: …". Such a node stays down for the rest of the run, and the end-of-run probe and
    /// read-back skip what it held.
    pub refusals: Vec<String>,
    /// When the last crash was injected.
    pub last_crash: Option<Time>,
    /// When the end-of-run heal had settled (before the probe produces and the read-back).
    pub healed_at: Option<Time>,
    /// Leader failovers: how long (ns) from the crash of a leader until a new leader was seen.
    pub failovers: Vec<u64>,
    /// Catch-ups of restarted replicas: (node, entries it lacked, ns until its commit index
    /// reached the cluster's at its restart).
    pub catch_ups: Vec<(u32, u64, u64)>,
    /// Nodes a partition cut off from every majority: (node, from, until) in ns.
    pub isolations: Vec<(u32, u64, u64)>,
    /// Log entries replicas trimmed from their WALs (each replica counted).
    pub trimmed_entries: u64,
    /// Snapshots leaders sent to followers that lacked what they had trimmed.
    pub snapshots_sent: u64,
    /// Snapshots a leader sent again to a follower that had answered nothing of its term since
    /// the last one (down or cut off: a heartbeat would have told whether it listens). Each is
    /// a snapshot's worth of bandwidth wasted.
    pub snapshots_unanswered: u64,
    /// The largest WAL any node held, bytes.
    pub wal_peak: u64,
    /// After each transition: (time ns, the largest WAL of any running node, bytes).
    pub wal_samples: Vec<(u64, u64)>,
    /// Store outages: (from, until) in ns; `until` is the end of the run for one never
    /// restored by a transition.
    pub store_outages: Vec<(u64, u64)>,
    /// What the object store did.
    pub store: crate::store::StoreStats,
}

/// The outcome of a run that kept every invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// Trace events recorded.
    pub events: u64,
    /// Simulated time at the end.
    pub sim_time: Time,
    /// The hash of the whole trace.
    pub trace_hash: u64,
    /// Counts.
    pub stats: RunStats,
    /// How often the nodes, their WALs and the clients reached their rare paths.
    pub probes: sq_core::Probes,
}

enum Payload {
    Request { req: u64, request: Request },
    Reply { req: u64, reply: Reply },
    Peer(PeerMsg),
}

/// A message on the wire: what it carries, and its description for the trace, made once when
/// it is sent and shared by every copy delivered.
struct Envelope {
    payload: Payload,
    msg: Msg,
}

enum Event {
    /// `epoch`: the incarnation of the node at either end when sent. A restarted node has new
    /// connections, so nothing sent to or by its previous incarnation is delivered.
    Deliver {
        from: Addr,
        to: Addr,
        epoch: u64,
        envelope: std::rc::Rc<Envelope>,
    },
    /// The node's next deadline (as it was when queued).
    NodeWake {
        node: u32,
        incarnation: u64,
    },
    /// A sync the node asked for completes: the disk makes durable the first `upto` bytes of
    /// `file`, what it held when the sync was issued.
    SyncDone {
        node: u32,
        incarnation: u64,
        token: u64,
        file: String,
        upto: usize,
    },
    ClientTimer {
        client: u32,
    },
    /// A supervisor restarts node `node` if it is still the incarnation `incarnation` that died.
    Supervise {
        node: u32,
        incarnation: u64,
    },
    /// A call node `node` made to the store completes (whether or not the node still runs).
    StoreDone {
        node: u32,
        incarnation: u64,
        token: u64,
        op: sq_storage::StoreOp,
        fate: CallFate,
    },
}

/// What the harness remembers of an operation a client invoked.
#[derive(Clone, Debug)]
enum OpInfo {
    Produce {
        partition: u32,
        producer: u64,
        seq: u64,
        count: u32,
        invoked: Time,
    },
    Fetch {
        partition: u32,
        offset: u64,
    },
    /// A group member's (or the group reader's) fetch-offset.
    GroupRead {
        partition: u32,
    },
}

/// The simulated cluster and everything around it, by owner: the world (the hosts, the network,
/// the clock and queue), the workload (the clients and what they did), and the checker (what
/// the checks remember), which the world feeds with what happens.
pub struct Sim {
    cfg: SimConfig,
    rng: SimRng,
    now: Time,
    queue: EventQueue<Event>,
    net: Network,
    nodes: Vec<Host>,
    work: Workload,
    check: Checker,
    trace: Trace,
    transition: Option<usize>,
    stats: RunStats,
    node_out: Vec<Output>,
    client_out: Vec<ClientOutput>,
    store: SimStore,
}

impl Sim {
    /// A fresh cluster: every node up on an empty disk, every client idle.
    pub fn new(cfg: SimConfig) -> Sim {
        let shape = cfg.shape;
        let mut nodes = Vec::new();
        for n in 0..u32::from(shape.nodes) {
            let config = cfg.node_config(n);
            let mut disk = SimDisk::new();
            let node = Node::open(config, &mut disk, Time::ZERO)
                .unwrap_or_else(|e| panic!("invariant: a node opens on an empty disk: {e}"));
            nodes.push(Host::new(config, disk, node));
        }
        let mut sim = Sim {
            rng: SimRng::new(cfg.seed),
            now: Time::ZERO,
            queue: EventQueue::new(),
            net: Network::new(cfg.latency.0, cfg.latency.1),
            nodes,
            work: Workload::new(&cfg),
            check: Checker::new(usize::from(shape.nodes)),
            trace: Trace::new(cfg.trace_capacity),
            transition: None,
            stats: RunStats::default(),
            node_out: Vec::new(),
            client_out: Vec::new(),
            store: cfg.store.map(SimStore::new).unwrap_or_default(),
            cfg,
        };
        for n in 0..u32::from(shape.nodes) {
            sim.flush_disk_calls(n);
            // A replica's election timer runs from the start.
            sim.schedule_wake(n);
        }
        sim
    }

    /// Sends every trace event to `sink` as well (the CLI's `--trace`).
    pub fn set_trace_sink(&mut self, sink: TraceSink) {
        self.trace.set_sink(sink);
    }

    /// The current simulated time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The whole client history so far (empty unless [`SimConfig::keep_history`]).
    pub fn history(&self) -> &[HistoryEvent] {
        &self.work.history
    }

    /// How many transitions have been applied: the index the next one gets.
    pub fn transitions_applied(&self) -> usize {
        self.transition.map_or(0, |t| t + 1)
    }

    /// Counts so far.
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// The client id of consumer `j` (producers come first).
    pub fn consumer_client(&self, j: u32) -> ClientId {
        ClientId(u32::from(self.cfg.shape.producers) + j)
    }

    /// The node `n`, if it is up. A node that died on its own and whose supervisor will restart
    /// it counts as up, as in the model: its stopped incarnation is returned (it serves nothing).
    pub fn node(&self, n: u32) -> Option<&Node> {
        self.nodes.get(n as usize).and_then(|s| s.node.as_ref())
    }

    /// Whether node `n` died on its own and its supervisor's restart is pending.
    pub fn awaiting_supervisor(&self, n: u32) -> bool {
        self.nodes
            .get(n as usize)
            .is_some_and(|s| s.exited.is_some())
    }

    /// Whether node `n` waits for room on its disk to start.
    pub fn waiting_for_room(&self, n: u32) -> bool {
        self.nodes.get(n as usize).is_some_and(|s| s.needs_room)
    }

    /// Why node `n` refused to start, if it did because of injected damage.
    pub fn refused(&self, n: u32) -> Option<&str> {
        self.nodes
            .get(n as usize)
            .and_then(|s| s.refused.as_deref())
    }

    /// Node `n`'s disk, for doctored-state tests of the checkers: changing it bypasses the node.
    pub fn disk_mut(&mut self, n: u32) -> &mut SimDisk {
        &mut self.nodes[n as usize].disk
    }

    /// A failure for `violation` at this point of the run, with its diagnostics.
    pub fn failure(&self, violation: Violation) -> Box<Failure> {
        self.fail(violation, None)
    }

    fn fail(&self, violation: Violation, node: Option<u32>) -> Box<Failure> {
        Box::new(Failure {
            violation,
            run: self.cfg.label.clone(),
            transition: self.transition,
            event: self.trace.len(),
            time: self.now,
            node,
            last_events: self.trace.last(50).map(|e| e.to_string()).collect(),
            replay: self.cfg.replay.clone(),
        })
    }

    fn flush_disk_calls(&mut self, n: u32) {
        let mut failed = false;
        for call in self.nodes[n as usize].disk.drain_calls() {
            failed |= call.error.is_some();
            self.trace.record(self.now, What::Disk { node: n, call });
        }
        if failed {
            self.disturbed();
        }
    }

    /// Notes that something happened that costs clients time (a disk error, a crash, a
    /// restart, a disk filling up): liveness bounds run from the latest such moment.
    pub(crate) fn disturbed(&mut self) {
        self.check.last_disturbance = self.now;
    }

    /// Applies transition number `index` of a script.
    pub fn apply(&mut self, index: usize, t: &Transition) -> Result<(), Box<Failure>> {
        self.transition = Some(index);
        // Each transition draws from its own seed, so removing one leaves the others' draws alone.
        self.rng = SimRng::new(mix(self.cfg.seed, u64::from(t.seed())));
        self.trace.record(
            self.now,
            What::Transition {
                index,
                text: t.to_string(),
            },
        );
        match *t {
            Transition::Produce {
                producer,
                partition,
                records,
                ..
            } => self.produce(u32::from(producer), u32::from(partition), records)?,
            Transition::Fetch {
                consumer,
                partition,
                ..
            } => self.fetch(u32::from(consumer), u32::from(partition))?,
            Transition::Run { ms, .. } => self.run_for(u64::from(ms) * Time::MILLI)?,
            Transition::Group { member, action, .. } => {
                self.group_action(usize::from(member), action)?
            }
            Transition::Crash { node, seed } => {
                self.await_sync(u32::from(node), seed)?;
                self.crash(u32::from(node), CrashKind::Process);
            }
            Transition::PowerLoss { node, seed } => {
                self.await_sync(u32::from(node), seed)?;
                self.crash(u32::from(node), CrashKind::Power);
            }
            Transition::CrashDuring {
                node, calls, power, ..
            } => {
                let kind = if power == 1 {
                    CrashKind::Power
                } else {
                    CrashKind::Process
                };
                self.nodes[node as usize]
                    .disk
                    .crash_after(u32::from(calls), kind);
                self.fault(format!(
                    "disk of n{node} dies at its call {calls} from now, then a {kind:?} crash"
                ));
            }
            Transition::Misdirect { node, seed } => {
                let node = self.atlas(u32::from(node));
                let m = Misdirect {
                    other_file: seed % 2 == 1,
                    pick: self.rng.next_u64(),
                };
                self.nodes[node as usize].disk.misdirect_next(m);
                self.fault(format!(
                    "disk of n{node}: the next append is misdirected ({m:?})"
                ));
            }
            Transition::Misread { node, .. } => {
                let shift = 1 + self.rng.below(512);
                self.nodes[node as usize].disk.misread_next(shift);
                self.fault(format!(
                    "disk of n{node}: the next read returns the bytes {shift} further on"
                ));
            }
            Transition::Restart { node, .. } => self.restart(u32::from(node))?,
            Transition::DiskFull { node, .. } => {
                // The disk fills from elsewhere up to a point drawn here: a third of the time
                // too close to hold even a refusal record, otherwise room for a refusal record or one small batch.
                let headroom = match self.rng.below(3) {
                    0 => self.rng.below(HEADER_LEN as u64),
                    _ => self.rng.between(HEADER_LEN as u64, 2 * HEADER_LEN as u64),
                };
                let disk = &mut self.nodes[node as usize].disk;
                let quota = disk.used() + headroom;
                disk.set_quota(Some(quota));
                self.disturbed();
                self.fault(format!("disk of n{node} full at {quota} bytes"));
            }
            Transition::DiskFree { node, .. } => {
                self.nodes[node as usize].disk.set_quota(None);
                self.disturbed();
                self.fault(format!("disk of n{node} has room again"));
                if std::mem::take(&mut self.nodes[node as usize].needs_room) {
                    self.restart(u32::from(node))?;
                }
            }
            Transition::DiskError { node, seed } => {
                let fault = if seed % 2 == 0 {
                    IoFault::Append
                } else {
                    // Half the time every unsynced byte is dropped, else a random suffix.
                    let keep_per_mille = if self.rng.below(2) == 0 {
                        0
                    } else {
                        self.rng.below(1001) as u16
                    };
                    IoFault::Sync { keep_per_mille }
                };
                self.nodes[node as usize].disk.fail_next(fault);
                self.fault(format!(
                    "disk of n{node}: the next {fault:?} fails with an I/O error"
                ));
            }
            Transition::Corrupt { node, .. } => {
                let node = self.atlas(u32::from(node));
                self.corrupt(node, t.corrupts_header())
            }
            Transition::Network { loss, dup, .. } => {
                self.net.loss = loss;
                self.net.dup = dup;
                self.fault(format!("network loss {loss}% dup {dup}%"));
            }
            Transition::Partition { cut, .. } => self.partition_network(cut),
            Transition::Clog { from, to, ms, .. } => {
                self.clog_link(u32::from(from), u32::from(to), ms)
            }
            Transition::HealNet { .. } => self.heal_network(),
            Transition::Pause { node, ms, .. } => self.pause_node(u32::from(node), ms),
            Transition::StoreOutage { .. }
            | Transition::StoreRestore { .. }
            | Transition::StoreErrors { .. }
            | Transition::StoreLostReply { .. }
            | Transition::StoreCorrupt { .. } => self.store_fault(t),
        }
        self.update_isolation();
        self.sample_wal();
        self.check_watermarks()?;
        self.refresh_images()?;
        for n in 0..self.nodes.len() as u32 {
            self.check_raft(n)?;
        }
        self.check_liveness()
    }

    /// Records the largest WAL of any running node now (runs with a store only: a walk over
    /// every node's segments).
    fn sample_wal(&mut self) {
        if self.cfg.store.is_none() {
            return;
        }
        let largest = (0..self.nodes.len() as u32)
            .filter_map(|n| self.node(n).map(|node| node.wal_bytes()))
            .max()
            .unwrap_or(0);
        self.stats.wal_peak = self.stats.wal_peak.max(largest);
        self.stats.wal_samples.push((self.now.nanos(), largest));
    }

    /// With an odd `seed`, lets time run (at most 5 ms) until node `n` has a sync in flight,
    /// so that the crash that follows lands between a write and its sync completing: a crash
    /// at a transition's boundary rarely does.
    fn await_sync(&mut self, n: u32, seed: u16) -> Result<(), Box<Failure>> {
        if seed.is_multiple_of(2) || self.nodes[n as usize].node.is_none() {
            return Ok(());
        }
        let deadline = self.now + 5 * Time::MILLI;
        while self.nodes[n as usize].syncs_in_flight == 0 && self.step(deadline)? {}
        Ok(())
    }

    pub(super) fn fault(&mut self, what: String) {
        self.trace.record(self.now, What::Fault { what });
    }

    fn produce(&mut self, producer: u32, partition: u32, records: u8) -> Result<(), Box<Failure>> {
        let p = &mut self.work.producers[producer as usize];
        if !p.is_idle() {
            return Ok(());
        }
        let batch = self.stats.produces;
        let values = (0..usize::from(records))
            .map(|i| record_value(&mut self.rng, u64::from(producer), batch, i))
            .collect();
        let mut out = std::mem::take(&mut self.client_out);
        // Cannot be Busy: the producer was checked idle above.
        let _ = p.produce(self.now, PartitionId(partition), values, &mut out);
        self.stats.produces += 1;
        self.route_client(producer, &mut out);
        self.client_out = out;
        self.after_client(producer)
    }

    fn fetch(&mut self, consumer: u32, partition: u32) -> Result<(), Box<Failure>> {
        let c = &mut self.work.consumers[consumer as usize];
        if !c.is_idle() {
            return Ok(());
        }
        let mut out = std::mem::take(&mut self.client_out);
        let _ = c.fetch(self.now, PartitionId(partition), &mut out);
        let client = self.cfg.shape.producers as u32 + consumer;
        self.route_client(client, &mut out);
        self.client_out = out;
        self.after_client(client)
    }

    /// Runs the event loop for `duration` ns of simulated time.
    pub fn run_for(&mut self, duration: u64) -> Result<(), Box<Failure>> {
        let deadline = self.now + duration;
        while self.step(deadline)? {}
        self.now = deadline;
        Ok(())
    }

    /// Handles the next event due by `deadline`; `false` if there is none.
    fn step(&mut self, deadline: Time) -> Result<bool, Box<Failure>> {
        let Some((at, event)) = self.queue.pop_until(deadline) else {
            return Ok(false);
        };
        self.now = at;
        self.dispatch(event)?;
        Ok(true)
    }

    /// Runs a whole script, then heals and checks the end state.
    pub fn run_script(&mut self, script: &[Transition]) -> Result<RunReport, Box<Failure>> {
        for (i, t) in script.iter().enumerate() {
            self.apply(i, t)?;
        }
        self.finish()
    }
}
