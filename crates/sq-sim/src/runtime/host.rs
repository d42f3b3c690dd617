//! One simulated machine: a node's process (if it runs), its disk, and what the harness tracks
//! of it (its incarnation, its wake-up, the syncs in flight, the damage injected into it).

use super::*;

/// A node's host.
pub(super) struct Host {
    pub config: NodeConfig,
    pub disk: SimDisk,
    pub node: Option<Node>,
    /// Bumped at every death: nothing sent to an earlier incarnation is delivered.
    pub incarnation: u64,
    /// The wake-up queued for the node's next deadline, if any.
    pub wake: Option<Time>,
    /// Syncs the node asked for that have not completed.
    pub syncs_in_flight: u32,
    /// The instant of the node's last wake-up and how many it had then (a spinning node asks
    /// again and again without time passing).
    pub spin: (Time, u32),
    /// The incarnation that died on its own, kept for inspection only (it receives nothing)
    /// while its supervisor's restart is pending: in the model's terms the node is still up.
    pub exited: Option<Node>,
    /// Why the node refused to start, if it did because of injected damage: it stays down.
    pub refused: Option<String>,
    /// Whether the node could not start for lack of room (a replica must record that it is
    /// about to cut a damaged log before it cuts it): it starts when its disk has room.
    pub needs_room: bool,
    /// Byte ranges of WAL files whose headers the harness damaged (header flips, misdirected
    /// writes): a recovery that refuses at a frame overlapping one is excused, no other.
    pub damaged: Vec<(String, std::ops::Range<u64>)>,
    /// Until when the process is paused (it handles nothing before), if it was paused.
    pub paused_until: Option<Time>,
    /// The incarnation that was paused: a crash ends the pause, the restarted process was
    /// never paused.
    pub paused_incarnation: u64,
    /// The coverage probes of the node's processes that died: a crash drops a process's
    /// memory, so its counters are read first and kept here.
    pub banked_probes: sq_core::Probes,
}

impl Host {
    /// A host whose node has just started on `disk`.
    pub fn new(config: NodeConfig, disk: SimDisk, node: Node) -> Host {
        Host {
            config,
            disk,
            node: Some(node),
            incarnation: 0,
            wake: None,
            syncs_in_flight: 0,
            spin: (Time::ZERO, 0),
            exited: None,
            refused: None,
            needs_room: false,
            damaged: Vec::new(),
            paused_until: None,
            paused_incarnation: 0,
            banked_probes: sq_core::Probes::default(),
        }
    }

    /// Keeps the counters of the process (running or exited) about to be dropped.
    pub fn bank_probes(&mut self) {
        for node in self.node.iter().chain(self.exited.iter()) {
            self.banked_probes.add(&node.probes());
        }
    }

    /// Every probe count of this host: its dead processes' and its current one's.
    pub fn probes(&self) -> sq_core::Probes {
        let mut all = self.banked_probes.clone();
        for node in self.node.iter().chain(self.exited.iter()) {
            all.add(&node.probes());
        }
        all
    }

    /// Until when the running process is paused, if it is at `now`.
    pub fn paused_at(&self, now: Time) -> Option<Time> {
        self.paused_until.filter(|&until| {
            until > now && self.node.is_some() && self.incarnation == self.paused_incarnation
        })
    }
}
