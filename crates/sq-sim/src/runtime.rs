//! The harness: one thread, one seed, one event queue. It runs the real node on simulated disks
//! and a simulated network, drives the clients, applies transitions (operations and faults), feeds
//! every history event to the reference model and checks the invariants as it goes.

use crate::disk::{IoFault, SimDisk};
use crate::failure::Failure;
use crate::invariants::durability::{self, AckedBatch};
use crate::invariants::watermark::Watermarks;
use crate::invariants::{image, served};
use crate::network::{Addr, Fate, Network};
use crate::queue::EventQueue;
use crate::rng::{mix, SimRng};
use crate::trace::{Msg, Trace, TraceSink, What};
use bytes::Bytes;
use sq_client::{
    ClientOutput, Consumer, ConsumerConfig, HistoryEvent, Op, Outcome, Producer, ProducerConfig,
};
use sq_core::codec::HEADER_LEN;
use sq_core::{
    ClientId, FetchError, NodeId, PartitionId, ProduceError, ProducerId, Reply, Request, Time,
};
use sq_model::{ClusterShape, Invariant, LogOracle, Transition, Violation};
use sq_node::{Input, Node, NodeConfig, NodeError, Output, Timer};
use sq_storage::{DiskError, MetaError, WalConfig, WalError};
use std::collections::{BTreeMap, BTreeSet};

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
    /// The producers' patience.
    pub producer: ProducerConfig,
    /// The consumers' patience.
    pub consumer: ConsumerConfig,
    /// How many trace events are kept for diagnostics.
    pub trace_capacity: usize,
    /// How long (ns) the healed cluster gets to settle before a stuck client is a violation.
    pub settle_limit: u64,
    /// What this run is, for diagnostics: "scenario S04 · seed 7".
    pub label: String,
    /// The command that replays this run.
    pub replay: String,
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
            segment_bytes: 2048 + rng.below(4096),
            producer: ProducerConfig::default(),
            consumer: ConsumerConfig::default(),
            trace_capacity: 256,
            settle_limit: 10 * Time::SECOND,
            label: format!("seed {seed}"),
            replay: format!("seed {seed}"),
        }
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
    /// Fetches that returned records.
    pub fetches: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Corruptions injected.
    pub corruptions: u64,
    /// When the last crash was injected.
    pub last_crash: Option<Time>,
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
}

struct SimNode {
    config: NodeConfig,
    disk: SimDisk,
    node: Option<Node>,
    incarnation: u64,
}

enum Payload {
    Request { req: u64, request: Request },
    Reply { req: u64, reply: Reply },
}

enum Event {
    /// `epoch`: the receiving node's incarnation when sent. A restarted node has new connections,
    /// so what was sent to its previous incarnation is never delivered to it.
    Deliver {
        from: Addr,
        to: Addr,
        epoch: u64,
        payload: std::rc::Rc<Payload>,
    },
    NodeTimer {
        node: u32,
        incarnation: u64,
        timer: Timer,
    },
    ClientTimer {
        client: u32,
    },
}

/// What the harness remembers of an operation a client invoked.
#[derive(Clone, Debug)]
enum OpInfo {
    Produce {
        partition: u32,
        producer: u64,
        seq: u64,
    },
    Fetch {
        partition: u32,
        offset: u64,
    },
}

/// The simulated cluster and everything around it.
pub struct Sim {
    cfg: SimConfig,
    rng: SimRng,
    now: Time,
    queue: EventQueue<Event>,
    net: Network,
    nodes: Vec<SimNode>,
    producers: Vec<Producer>,
    /// Consumers; the last one is the harness's own reader for the final read-back.
    consumers: Vec<Consumer>,
    oracle: LogOracle,
    history: Vec<HistoryEvent>,
    trace: Trace,
    transition: Option<usize>,
    ops: BTreeMap<(u32, u64), OpInfo>,
    /// Per (consumer, partition): the offset its next fetch must start at.
    consumer_next: BTreeMap<(u32, u32), u64>,
    /// Per partition: offsets hit by an injected corruption on every copy.
    excused: BTreeMap<u32, BTreeSet<u64>>,
    readback: Option<ReadBack>,
    /// The highest watermark each node has reported per partition.
    watermarks: Watermarks,
    /// Per node: the disk's rewrite count when its durable image was last checked in full.
    checked_rewrites: Vec<Option<u64>>,
    stats: RunStats,
    node_out: Vec<Output>,
    client_out: Vec<ClientOutput>,
}

struct ReadBack {
    records: Vec<(u64, Option<Bytes>)>,
    done: bool,
}

/// A unique, self-describing record value: who produced it, then random padding.
fn record_value(rng: &mut SimRng, producer: u64, seq: u64, index: usize) -> Bytes {
    let mut v = format!("p{producer}/s{seq}/r{index}|").into_bytes();
    let pad = rng.below(48) as usize;
    v.extend((0..pad).map(|_| b'a' + rng.below(26) as u8));
    Bytes::from(v)
}

fn msg_of(payload: &Payload) -> Msg {
    match payload {
        Payload::Request {
            request: Request::Produce(p),
            ..
        } => Msg::Produce {
            partition: p.partition.0,
            producer: p.producer.0,
            seq: p.seq,
            records: p.records.len() as u32,
        },
        Payload::Request {
            request: Request::Fetch(f),
            ..
        } => Msg::Fetch {
            partition: f.partition.0,
            offset: f.offset,
        },
        Payload::Reply {
            reply: Reply::Produce(r),
            ..
        } => match r {
            Ok(ok) => Msg::ProduceOk {
                base_offset: ok.base_offset,
            },
            Err(e) => Msg::ProduceErr {
                error: e.to_string(),
            },
        },
        Payload::Reply {
            reply: Reply::Fetch(r),
            ..
        } => match r {
            Ok(ok) => Msg::FetchOk {
                records: ok.records.len() as u32,
                high_watermark: ok.high_watermark,
            },
            Err(e) => Msg::FetchErr {
                error: e.to_string(),
            },
        },
    }
}

fn history_line(e: &HistoryEvent) -> String {
    let what = match &e.outcome {
        Outcome::Invoke(Op::Produce {
            partition,
            producer,
            seq,
            records,
        }) => format!(
            "invoke produce {producer} seq {seq} → {partition} ×{}",
            records.len()
        ),
        Outcome::Invoke(Op::Fetch { partition, offset }) => {
            format!("invoke fetch {partition} from {offset}")
        }
        Outcome::Produced { base_offset } => format!("ok base_offset={base_offset}"),
        Outcome::Fetched {
            records,
            high_watermark,
        } => format!("ok {} records, hw={high_watermark}", records.len()),
        Outcome::Fail(m) => format!("fail {m}"),
        Outcome::Info(m) => format!("info {m}"),
    };
    format!("{} op {} {what}", e.client, e.op)
}

impl Sim {
    /// A fresh cluster: every node up on an empty disk, every client idle.
    pub fn new(cfg: SimConfig) -> Sim {
        let shape = cfg.shape;
        let mut nodes = Vec::new();
        for n in 0..u32::from(shape.nodes) {
            let mut config = NodeConfig::new(NodeId(n), u32::from(shape.partitions));
            config.wal = WalConfig {
                segment_bytes: cfg.segment_bytes,
            };
            let mut disk = SimDisk::new();
            let node = Node::open(config, &mut disk)
                .unwrap_or_else(|e| panic!("invariant: a node opens on an empty disk: {e}"));
            nodes.push(SimNode {
                config,
                disk,
                node: Some(node),
                incarnation: 0,
            });
        }
        let p = u32::from(shape.producers);
        let producers = (0..p)
            .map(|i| Producer::new(ClientId(i), ProducerId(u64::from(i)), cfg.producer))
            .collect();
        let consumers = (0..=u32::from(shape.consumers))
            .map(|j| Consumer::new(ClientId(p + j), cfg.consumer))
            .collect();
        let mut sim = Sim {
            rng: SimRng::new(cfg.seed),
            now: Time::ZERO,
            queue: EventQueue::new(),
            net: Network::new(cfg.latency.0, cfg.latency.1),
            nodes,
            producers,
            consumers,
            oracle: LogOracle::new(),
            history: Vec::new(),
            trace: Trace::new(cfg.trace_capacity),
            transition: None,
            ops: BTreeMap::new(),
            consumer_next: BTreeMap::new(),
            excused: BTreeMap::new(),
            readback: None,
            checked_rewrites: vec![None; usize::from(shape.nodes)],
            watermarks: Watermarks::default(),
            stats: RunStats::default(),
            node_out: Vec::new(),
            client_out: Vec::new(),
            cfg,
        };
        sim.flush_disk_calls(0);
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

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The whole client history so far.
    pub fn history(&self) -> &[HistoryEvent] {
        &self.history
    }

    /// Counts so far.
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// The client id of consumer `j` (producers come first).
    pub fn consumer_client(&self, j: u32) -> ClientId {
        ClientId(u32::from(self.cfg.shape.producers) + j)
    }

    /// The node `n`, if it is up.
    pub fn node(&self, n: u32) -> Option<&Node> {
        self.nodes.get(n as usize).and_then(|s| s.node.as_ref())
    }

    /// Node `n`'s disk, for doctored-state tests of the checkers: changing it bypasses the node.
    pub fn disk_mut(&mut self, n: u32) -> &mut SimDisk {
        &mut self.nodes[n as usize].disk
    }

    /// The reference model, for doctored-state tests of the checkers.
    pub fn oracle_mut(&mut self) -> &mut LogOracle {
        &mut self.oracle
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
        let calls: Vec<_> = self.nodes[n as usize].disk.drain_calls().collect();
        for c in calls {
            self.trace.record(self.now, What::Disk(c));
        }
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
            Transition::Crash { node, .. } => self.crash(u32::from(node)),
            Transition::Restart { node, .. } => self.restart(u32::from(node))?,
            Transition::DiskFull { node, .. } => {
                let disk = &mut self.nodes[node as usize].disk;
                let used = disk.used();
                disk.set_quota(Some(used));
                self.fault(format!("disk of n{node} full at {used} bytes"));
            }
            Transition::DiskFree { node, .. } => {
                self.nodes[node as usize].disk.set_quota(None);
                self.fault(format!("disk of n{node} has room again"));
            }
            Transition::DiskError { node, seed } => {
                let fault = if seed % 2 == 0 {
                    IoFault::Append
                } else {
                    IoFault::Sync
                };
                self.nodes[node as usize].disk.fail_next(fault);
                self.fault(format!(
                    "disk of n{node}: the next {fault:?} fails with an I/O error"
                ));
            }
            Transition::Corrupt { node, .. } => self.corrupt(u32::from(node)),
            Transition::Network { loss, dup, .. } => {
                self.net.loss = loss;
                self.net.dup = dup;
                self.fault(format!("network loss {loss}% dup {dup}%"));
            }
        }
        self.check_watermarks()?;
        self.check_images_if_rewritten()
    }

    /// Every up node's high watermarks, against the highest each reported before.
    fn check_watermarks(&mut self) -> Result<(), Box<Failure>> {
        for n in 0..self.nodes.len() as u32 {
            for p in 0..u32::from(self.cfg.shape.partitions) {
                let Some(hw) = self
                    .node(n)
                    .and_then(|node| node.high_watermark(PartitionId(p)))
                else {
                    continue;
                };
                if let Err(v) = self.watermarks.observe(n, p, hw) {
                    return Err(self.fail(v, Some(n)));
                }
            }
        }
        Ok(())
    }

    /// Checks the durable images in full when some disk's durable bytes changed other than by
    /// growing since the last full check. Otherwise every byte checked then is still there, and
    /// each batch acked since was checked durable at the moment its ack was sent.
    fn check_images_if_rewritten(&mut self) -> Result<(), Box<Failure>> {
        let now: Vec<_> = self
            .nodes
            .iter()
            .map(|sn| Some(sn.disk.rewrites()))
            .collect();
        if now == self.checked_rewrites {
            return Ok(());
        }
        self.check_images()?;
        self.checked_rewrites = now;
        Ok(())
    }

    fn fault(&mut self, what: String) {
        self.trace.record(self.now, What::Fault { what });
    }

    fn produce(&mut self, producer: u32, partition: u32, records: u8) -> Result<(), Box<Failure>> {
        let p = &mut self.producers[producer as usize];
        if !p.is_idle() {
            return Ok(());
        }
        let seq = self.stats.produces;
        let values = (0..usize::from(records))
            .map(|i| record_value(&mut self.rng, u64::from(producer), seq, i))
            .collect();
        let mut out = std::mem::take(&mut self.client_out);
        // The producer numbers its batches itself; the value names the harness's own counter.
        let _ = p.produce(self.now, PartitionId(partition), values, &mut out);
        self.stats.produces += 1;
        self.route_client(producer, &mut out);
        self.client_out = out;
        self.after_client(producer)
    }

    fn fetch(&mut self, consumer: u32, partition: u32) -> Result<(), Box<Failure>> {
        let c = &mut self.consumers[consumer as usize];
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

    fn crash(&mut self, n: u32) {
        let sn = &mut self.nodes[n as usize];
        if sn.node.is_none() {
            return;
        }
        sn.node = None;
        sn.incarnation += 1;
        let lost = sn.disk.crash(&mut self.rng);
        self.stats.crashes += 1;
        self.stats.last_crash = Some(self.now);
        self.fault(format!("crash n{n}: {lost} unsynced bytes lost"));
    }

    /// Starts a crashed node. An injected I/O error may make one attempt fail (the fault is
    /// one-shot); like a supervisor, the harness then tries again. Any other failure to open is
    /// a broken invariant.
    fn restart(&mut self, n: u32) -> Result<(), Box<Failure>> {
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let sn = &mut self.nodes[n as usize];
            if sn.node.is_some() {
                return Ok(());
            }
            let opened = Node::open(sn.config, &mut sn.disk);
            self.flush_disk_calls(n);
            let e = match opened {
                Ok(node) => {
                    let r = node.recovery();
                    let what = format!(
                        "restart n{n}: recovered {} entries, cut a torn tail of {} bytes, damaged {:?}",
                        r.entries, r.truncated_bytes, r.damaged
                    );
                    self.nodes[n as usize].node = Some(node);
                    self.fault(what);
                    return Ok(());
                }
                Err(e) => e,
            };
            let injected = matches!(
                &e,
                NodeError::Wal(WalError::Disk(DiskError::Io { .. }))
                    | NodeError::Meta(MetaError::Disk(DiskError::Io { .. }))
            );
            if !injected || attempt == ATTEMPTS {
                return Err(self.fail(
                    Violation::new(
                        Invariant::Recovery,
                        format!("restart of n{n}"),
                        "the node recovers its WAL",
                        e.to_string(),
                    ),
                    Some(n),
                ));
            }
            self.fault(format!("restart n{n} failed ({e}); trying again"));
        }
        Ok(())
    }

    /// Flips one bit in the payload of a random synced, intact batch frame of node `n`.
    fn corrupt(&mut self, n: u32) {
        let frames = image::scan(&self.nodes[n as usize].disk);
        let candidates: Vec<_> = frames
            .iter()
            .filter(|f| f.intact && f.header.payload_len > 0)
            .collect();
        if candidates.is_empty() {
            return self.fault(format!("corrupt n{n}: no synced record to corrupt"));
        }
        let f = candidates[self.rng.below(candidates.len() as u64) as usize];
        let pos = f.pos + HEADER_LEN + self.rng.below(u64::from(f.header.payload_len)) as usize;
        let bit = self.rng.below(8) as u8;
        let b = f.header.batch;
        let file = f.file.clone();
        self.nodes[n as usize].disk.flip_bit(&file, pos, bit);
        // With one copy of the data, every copy is hit: those offsets may read back as corrupt.
        if self.cfg.shape.nodes == 1 {
            let excused = self.excused.entry(b.partition).or_default();
            excused.extend(b.base_offset..b.base_offset + u64::from(b.count));
        }
        self.stats.corruptions += 1;
        self.fault(format!(
            "corrupt n{n}: bit {bit} of {file}@{pos} (partition {} offsets {}..{})",
            b.partition,
            b.base_offset,
            b.base_offset + u64::from(b.count)
        ));
    }

    /// Runs the event loop for `duration` ns of simulated time.
    pub fn run_for(&mut self, duration: u64) -> Result<(), Box<Failure>> {
        let deadline = self.now + duration;
        while let Some((at, event)) = self.queue.pop_until(deadline) {
            self.now = at;
            self.dispatch(event)?;
        }
        self.now = deadline;
        Ok(())
    }

    fn dispatch(&mut self, event: Event) -> Result<(), Box<Failure>> {
        match event {
            Event::Deliver {
                from,
                to,
                epoch,
                payload,
            } => match to {
                Addr::Node(n) => self.deliver_to_node(from, n, epoch, &payload),
                Addr::Client(c) => self.deliver_to_client(from, c, &payload),
            },
            Event::NodeTimer {
                node,
                incarnation,
                timer,
            } => {
                let sn = &self.nodes[node as usize];
                if sn.incarnation != incarnation || sn.node.is_none() {
                    return Ok(());
                }
                self.trace.record(
                    self.now,
                    What::Timer {
                        at: Addr::Node(node),
                        name: "flush",
                    },
                );
                self.node_input(node, Input::Timer(timer))
            }
            Event::ClientTimer { client } => {
                let mut out = std::mem::take(&mut self.client_out);
                let p = u32::from(self.cfg.shape.producers);
                if client < p {
                    self.producers[client as usize].on_timer(self.now, &mut out);
                } else {
                    self.consumers[(client - p) as usize].on_timer(self.now, &mut out);
                }
                self.route_client(client, &mut out);
                self.client_out = out;
                self.after_client(client)
            }
        }
    }

    fn deliver_to_node(
        &mut self,
        from: Addr,
        n: u32,
        epoch: u64,
        payload: &Payload,
    ) -> Result<(), Box<Failure>> {
        let sn = &self.nodes[n as usize];
        let dropped = if sn.node.is_none() {
            Some("node down")
        } else if sn.incarnation != epoch {
            Some("connection reset: the node restarted since this was sent")
        } else {
            None
        };
        if let Some(why) = dropped {
            self.trace.record(
                self.now,
                What::Drop {
                    to: Addr::Node(n),
                    why,
                },
            );
            return Ok(());
        }
        self.trace.record(
            self.now,
            What::Deliver {
                from,
                to: Addr::Node(n),
                msg: msg_of(payload),
            },
        );
        let (Addr::Client(c), Payload::Request { req, request }) = (from, payload) else {
            return Ok(());
        };
        let input = Input::Request {
            from: ClientId(c),
            req: *req,
            request: request.clone(),
        };
        self.node_input(n, input)
    }

    fn node_input(&mut self, n: u32, input: Input) -> Result<(), Box<Failure>> {
        let mut out = std::mem::take(&mut self.node_out);
        let sn = &mut self.nodes[n as usize];
        if let Some(node) = sn.node.as_mut() {
            node.handle(self.now, input, &mut sn.disk, &mut out);
        }
        self.flush_disk_calls(n);
        let mut result = Ok(());
        for o in out.drain(..) {
            match o {
                Output::SetTimer { at, timer } => {
                    let incarnation = self.nodes[n as usize].incarnation;
                    self.queue.push(
                        at,
                        Event::NodeTimer {
                            node: n,
                            incarnation,
                            timer,
                        },
                    );
                }
                Output::Reply { to, req, reply } => {
                    if result.is_ok() {
                        result = self.check_reply(n, to.0, req, &reply);
                    }
                    if let (Ok(()), Reply::Fetch(Ok(ok)), Some(OpInfo::Fetch { partition, .. })) =
                        (&result, &reply, self.ops.get(&(to.0, req)))
                    {
                        result = self
                            .watermarks
                            .observe(n, *partition, ok.high_watermark)
                            .map_err(|v| self.fail(v, Some(n)));
                    }
                    let payload = Payload::Reply { req, reply };
                    self.send(Addr::Node(n), Addr::Client(to.0), payload);
                }
            }
        }
        self.node_out = out;
        result?;
        self.supervise(n)
    }

    /// A node that stopped itself after a disk error is a process that exited: its supervisor
    /// restarts it at once, and it recovers from its disk. Unsynced writes count as lost, since
    /// after a failed fsync the page cache's state is unknown.
    fn supervise(&mut self, n: u32) -> Result<(), Box<Failure>> {
        let Some(why) = self.node(n).and_then(Node::failed).map(str::to_string) else {
            return Ok(());
        };
        self.fault(format!("n{n} stopped ({why}); its supervisor restarts it"));
        self.crash(n);
        self.restart(n)
    }

    /// The checks made the moment a node answers, before the answer can be seen.
    fn check_reply(
        &self,
        n: u32,
        client: u32,
        req: u64,
        reply: &Reply,
    ) -> Result<(), Box<Failure>> {
        let sn = &self.nodes[n as usize];
        let Some(node) = sn.node.as_ref() else {
            return Ok(());
        };
        let checked = match (self.ops.get(&(client, req)), reply) {
            (
                Some(&OpInfo::Produce {
                    partition,
                    producer,
                    seq,
                }),
                Reply::Produce(Ok(ok)),
            ) => served::check_ack_synced(
                node,
                &sn.disk,
                partition,
                (producer, seq),
                ok.base_offset,
                self.excused.get(&partition).unwrap_or(&BTreeSet::new()),
            ),
            (Some(&OpInfo::Fetch { partition, .. }), Reply::Fetch(Ok(ok))) => {
                match (ok.records.first(), ok.records.last()) {
                    (Some(a), Some(b)) => served::check_served_committed(
                        node,
                        &sn.disk,
                        partition,
                        a.offset..b.offset + 1,
                    ),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        };
        checked.map_err(|v| self.fail(v, Some(n)))
    }

    fn deliver_to_client(
        &mut self,
        from: Addr,
        c: u32,
        payload: &Payload,
    ) -> Result<(), Box<Failure>> {
        self.trace.record(
            self.now,
            What::Deliver {
                from,
                to: Addr::Client(c),
                msg: msg_of(payload),
            },
        );
        let Payload::Reply { req, reply } = payload else {
            return Ok(());
        };
        let p = u32::from(self.cfg.shape.producers);
        if c < p {
            if matches!(reply, Reply::Produce(Err(ProduceError::StorageFull))) {
                self.stats.storage_full += 1;
            }
            self.producers[c as usize].on_reply(self.now, *req, reply.clone());
        } else if let Some(FetchError::Corrupt { offset, next }) =
            self.consumers[(c - p) as usize].on_reply(self.now, *req, reply.clone())
        {
            self.skip_corrupt(c, *req, offset, next)?;
        }
        self.after_client(c)
    }

    /// A consumer was told a batch is corrupt: allowed only where a fault was injected; it then
    /// moves past the batch.
    fn skip_corrupt(
        &mut self,
        c: u32,
        req: u64,
        offset: u64,
        next: u64,
    ) -> Result<(), Box<Failure>> {
        let Some(&OpInfo::Fetch { partition, .. }) = self.ops.get(&(c, req)) else {
            return Ok(());
        };
        let excused = self.excused.get(&partition);
        if !excused.is_some_and(|e| (offset..next).all(|o| e.contains(&o))) {
            return Err(self.fail(
                Violation::new(
                    Invariant::CrcIntegrity,
                    format!("partition {partition} offsets {offset}..{next}"),
                    "readable records: no fault was injected into them",
                    "the node reports them corrupt",
                ),
                None,
            ));
        }
        if let Some(rb) = self.readback.as_mut() {
            rb.records.extend((offset..next).map(|o| (o, None)));
        }
        let p = u32::from(self.cfg.shape.producers);
        self.consumers[(c - p) as usize].seek(PartitionId(partition), next);
        self.consumer_next.insert((c, partition), next);
        Ok(())
    }

    fn route_client(&mut self, client: u32, out: &mut Vec<ClientOutput>) {
        for o in out.drain(..) {
            match o {
                ClientOutput::Send { req, request } => self.send(
                    Addr::Client(client),
                    Addr::Node(0),
                    Payload::Request { req, request },
                ),
                ClientOutput::SetTimer { at } => self.queue.push(at, Event::ClientTimer { client }),
            }
        }
    }

    fn send(&mut self, from: Addr, to: Addr, payload: Payload) {
        let fate = self.net.transmit(&mut self.rng, self.now, from, to);
        let copies = match fate {
            Fate::Delivered(_, Some(_)) => 2,
            Fate::Delivered(_, None) => 1,
            Fate::Lost | Fate::Blocked => 0,
        };
        self.trace.record(
            self.now,
            What::Send {
                from,
                to,
                msg: msg_of(&payload),
                copies,
            },
        );
        if let Fate::Delivered(first, second) = fate {
            let epoch = match to {
                Addr::Node(n) => self.nodes[n as usize].incarnation,
                Addr::Client(_) => 0,
            };
            let payload = std::rc::Rc::new(payload);
            if let Some(at) = second {
                self.queue.push(
                    at,
                    Event::Deliver {
                        from,
                        to,
                        epoch,
                        payload: payload.clone(),
                    },
                );
            }
            self.queue.push(
                first,
                Event::Deliver {
                    from,
                    to,
                    epoch,
                    payload,
                },
            );
        }
    }

    /// Feeds client `c`'s new history events to the reference model.
    fn after_client(&mut self, c: u32) -> Result<(), Box<Failure>> {
        let p = u32::from(self.cfg.shape.producers);
        let events = if c < p {
            self.producers[c as usize].drain_history()
        } else {
            self.consumers[(c - p) as usize].drain_history()
        };
        for e in events {
            self.trace.record(
                self.now,
                What::History {
                    line: history_line(&e),
                },
            );
            self.observe(c, &e).map_err(|v| self.fail(v, None))?;
            self.history.push(e);
        }
        Ok(())
    }

    fn observe(&mut self, c: u32, e: &HistoryEvent) -> Result<(), Violation> {
        let key = (c, e.op);
        match (&e.outcome, self.ops.get(&key).cloned()) {
            (
                Outcome::Invoke(Op::Produce {
                    partition,
                    producer,
                    seq,
                    records,
                }),
                _,
            ) => {
                self.oracle.invoke(partition.0, producer.0, *seq, records);
                self.ops.insert(
                    key,
                    OpInfo::Produce {
                        partition: partition.0,
                        producer: producer.0,
                        seq: *seq,
                    },
                );
            }
            (Outcome::Invoke(Op::Fetch { partition, offset }), _) => {
                let expected = self
                    .consumer_next
                    .get(&(c, partition.0))
                    .copied()
                    .unwrap_or(0);
                if *offset != expected {
                    return Err(Violation::new(
                        Invariant::Contiguous,
                        format!("{} fetching {partition}", e.client),
                        format!("the next fetch starts at offset {expected}, where the last ended"),
                        format!("it starts at offset {offset}"),
                    ));
                }
                self.ops.insert(
                    key,
                    OpInfo::Fetch {
                        partition: partition.0,
                        offset: *offset,
                    },
                );
            }
            (Outcome::Produced { base_offset }, Some(OpInfo::Produce { producer, seq, .. })) => {
                self.stats.acked += 1;
                self.oracle.acked(producer, seq, *base_offset)?;
            }
            (Outcome::Fail(_), Some(OpInfo::Produce { producer, seq, .. })) => {
                self.stats.failed += 1;
                self.oracle.failed(producer, seq)?;
            }
            (Outcome::Info(_), Some(OpInfo::Produce { producer, seq, .. })) => {
                self.stats.indeterminate += 1;
                self.oracle.indeterminate(producer, seq);
            }
            (Outcome::Fetched { records, .. }, Some(OpInfo::Fetch { partition, offset })) => {
                self.stats.fetches += 1;
                let recs: Vec<_> = records
                    .iter()
                    .map(|r| (r.offset, r.value.clone()))
                    .collect();
                self.oracle.fetched(partition, offset, &recs)?;
                if let Some(last) = records.last() {
                    self.consumer_next.insert((c, partition), last.offset + 1);
                }
                if let Some(rb) = self.readback.as_mut() {
                    if c == u32::from(self.cfg.shape.producers)
                        + u32::from(self.cfg.shape.consumers)
                    {
                        rb.done = records.is_empty();
                        rb.records
                            .extend(recs.into_iter().map(|(o, v)| (o, Some(v))));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Invariants 1 and 2 on every node's durable image, in full.
    pub fn check_images(&self) -> Result<(), Box<Failure>> {
        let mut images = Vec::new();
        for (n, sn) in self.nodes.iter().enumerate() {
            let frames = image::scan(&sn.disk);
            durability::check_contiguous(n as u32, &frames, u32::from(self.cfg.shape.partitions))
                .map_err(|v| self.fail(v, Some(n as u32)))?;
            images.push(image::index(&frames));
        }
        let none = BTreeSet::new();
        for (partition, producer, seq, base_offset, count) in self.oracle.acked_batches() {
            let batch = AckedBatch {
                partition,
                producer,
                seq,
                base_offset,
                count,
            };
            let excused = self.excused.get(&partition).unwrap_or(&none);
            durability::check_acked_durable(&images, &batch, excused)
                .map_err(|v| self.fail(v, None))?;
        }
        Ok(())
    }

    /// The clients with an operation in flight, as "c0", "c4".
    pub fn busy_clients(&self) -> Vec<String> {
        let producers = self
            .producers
            .iter()
            .filter(|p| !p.is_idle())
            .map(|p| p.client());
        let consumers = self
            .consumers
            .iter()
            .filter(|c| !c.is_idle())
            .map(|c| c.client());
        producers.chain(consumers).map(|c| c.to_string()).collect()
    }

    fn clients_idle(&self) -> bool {
        self.producers.iter().all(Producer::is_idle) && self.consumers.iter().all(Consumer::is_idle)
    }

    /// Heals everything, lets the cluster settle, reads every partition back from offset 0 and
    /// checks it against the reference model.
    pub fn finish(&mut self) -> Result<RunReport, Box<Failure>> {
        self.transition = None;
        self.fault("heal: restart every node, free every disk, heal the network".into());
        for n in 0..self.nodes.len() as u32 {
            self.nodes[n as usize].disk.set_quota(None);
            self.restart(n)?;
        }
        self.net.heal();
        let limit = self.now + self.cfg.settle_limit;
        while !self.clients_idle() {
            if self.now >= limit {
                return Err(self.fail(
                    Violation::new(
                        Invariant::Liveness,
                        "clients after healing",
                        format!("every client idle within {}", Time(self.cfg.settle_limit)),
                        "some client still has an operation in flight",
                    ),
                    None,
                ));
            }
            self.run_for(10 * Time::MILLI)?;
        }
        self.check_images()?;
        for partition in 0..u32::from(self.cfg.shape.partitions) {
            self.read_back(partition, limit + self.cfg.settle_limit)?;
        }
        Ok(RunReport {
            events: self.trace.len(),
            sim_time: self.now,
            trace_hash: self.trace.hash(),
            stats: self.stats.clone(),
        })
    }

    fn read_back(&mut self, partition: u32, limit: Time) -> Result<(), Box<Failure>> {
        let reader = u32::from(self.cfg.shape.consumers);
        let client = u32::from(self.cfg.shape.producers) + reader;
        self.consumers[reader as usize].seek(PartitionId(partition), 0);
        self.consumer_next.insert((client, partition), 0);
        self.readback = Some(ReadBack {
            records: Vec::new(),
            done: false,
        });
        while !self.readback.as_ref().is_some_and(|r| r.done) {
            if self.now >= limit {
                return Err(self.fail(
                    Violation::new(
                        Invariant::Liveness,
                        format!("read-back of partition {partition}"),
                        "the whole partition reads back once healed",
                        format!(
                            "the reader is stuck at offset {}",
                            self.consumers[reader as usize].position(PartitionId(partition))
                        ),
                    ),
                    None,
                ));
            }
            if self.consumers[reader as usize].is_idle() {
                self.fetch(reader, partition)?;
            }
            let next = self.queue.peek_time().unwrap_or(self.now).max(self.now);
            self.run_for(next - self.now)?;
        }
        let records = self.readback.take().map(|r| r.records).unwrap_or_default();
        let none = BTreeSet::new();
        let excused = self.excused.get(&partition).unwrap_or(&none);
        self.oracle
            .final_check(partition, &records, excused)
            .map_err(|v| self.fail(v, None))
    }

    /// Runs a whole script, then heals and checks the end state.
    pub fn run_script(&mut self, script: &[Transition]) -> Result<RunReport, Box<Failure>> {
        for (i, t) in script.iter().enumerate() {
            self.apply(i, t)?;
        }
        self.finish()
    }
}
