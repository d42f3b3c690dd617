//! Faults between nodes and of their processes: partitions of the node-to-node network, clogged
//! (slow) links, their heal, and process pauses. Clients keep reaching every node throughout.

use super::*;
use sq_model::Cut;
use sq_node::{Role, Status};

/// The node that leads the highest term among `statuses` (of the up nodes), if one leads. Two
/// leaders of one term would break an invariant checked elsewhere; the lower id wins then.
pub(super) fn leader_of(statuses: impl IntoIterator<Item = (u8, Status)>) -> Option<u8> {
    statuses
        .into_iter()
        .filter(|(_, s)| s.role == Role::Leader)
        .max_by_key(|&(n, s)| (s.term, std::cmp::Reverse(n)))
        .map(|(n, _)| n)
}

/// `links` as trace text: `n0<->n2` for a link cut both ways, `n0->n1` for one way.
fn links_text(links: &BTreeSet<(u32, u32)>) -> String {
    let words: Vec<String> = links
        .iter()
        .filter_map(|&(a, b)| match links.contains(&(b, a)) {
            true if a < b => Some(format!("n{a}<->n{b}")),
            true => None,
            false => Some(format!("n{a}->n{b}")),
        })
        .collect();
    match words.is_empty() {
        true => "nothing".to_string(),
        false => words.join(" "),
    }
}

impl Sim {
    /// Replaces the partition in force with `cut`. `isolate-leader` cuts off the node that
    /// leads the highest term among the running nodes, or node 0 if none leads; which one it
    /// was stays readable as [`Sim::isolated_leader`], for checks that pair it with the model.
    pub(super) fn partition_network(&mut self, cut: Cut) {
        let nodes = self.cfg.shape.nodes;
        let mut who = String::new();
        let leader = matches!(cut, Cut::IsolateLeader).then(|| {
            let leader = self.leader().and_then(|n| u8::try_from(n).ok());
            who = match leader {
                Some(l) => format!(" (n{l} leads)"),
                None => " (no node leads: n0)".to_string(),
            };
            leader.unwrap_or(0)
        });
        let links: BTreeSet<(u32, u32)> = cut
            .links(nodes, leader.unwrap_or(0))
            .into_iter()
            .map(|(a, b)| (u32::from(a), u32::from(b)))
            .collect();
        let text = links_text(&links);
        self.net.partition(links, leader.map(u32::from));
        self.disturbed();
        self.fault(format!("partition {cut}{who}: cut {text}"));
    }

    /// Slows the link from node `from` to node `to` by `ms` per message, until healed.
    pub(super) fn clog_link(&mut self, from: u32, to: u32, ms: u16) {
        let extra = u64::from(ms) * Time::MILLI;
        self.net.clog(Addr::Node(from), Addr::Node(to), extra);
        self.disturbed();
        self.fault(format!("clog n{from}->n{to}: +{ms}ms per message"));
    }

    /// Ends the partition and every clog; loss and duplication stay as they are.
    pub(super) fn heal_network(&mut self) {
        self.net.heal_links();
        // The cluster may need an election to serve again: liveness bounds run from here.
        self.disturbed();
        self.fault("heal-net: every node reaches every node, no link is slow".into());
    }

    /// Pauses node `n`'s process for `ms`: events addressed to it wait until the pause ends
    /// (see [`Sim::defer_if_paused`]). A second pause ends when the later of the two would. A
    /// node that is down, or waiting for its supervisor, has no process to pause.
    pub(super) fn pause_node(&mut self, n: u32, ms: u16) {
        let now = self.now;
        let sn = &mut self.nodes[n as usize];
        if sn.node.is_none() {
            return self.fault(format!("pause n{n}: it is down, nothing to pause"));
        }
        let until = now + u64::from(ms) * Time::MILLI;
        let until = sn.paused_at(now).map_or(until, |u| u.max(until));
        sn.paused_until = Some(until);
        sn.paused_incarnation = sn.incarnation;
        self.disturbed();
        self.fault(format!("pause n{n}: it handles nothing until {until}"));
    }

    /// An event for a paused node's process (a delivery, a wake-up, a sync completing) that is
    /// due before the pause ends waits for its end: it is queued again at that instant. Events
    /// are queued again in the order they pop, and the queue orders by (time, sequence), so the
    /// node then handles them in their original order, from its stale state. `None` if the
    /// event was deferred.
    pub(super) fn defer_if_paused(&mut self, event: Event) -> Option<Event> {
        let n = match &event {
            Event::Deliver {
                to: Addr::Node(n), ..
            } => *n,
            Event::NodeWake { node, .. } | Event::SyncDone { node, .. } => *node,
            _ => return Some(event),
        };
        let sn = &mut self.nodes[n as usize];
        let Some(until) = sn.paused_at(self.now) else {
            return Some(event);
        };
        if let Event::NodeWake { .. } = event {
            // Only the wake-up the host expects is honoured: a stale one is dropped as usual,
            // the live one is now expected at the end of the pause.
            if sn.wake != Some(self.now) {
                return Some(event);
            }
            sn.wake = Some(until);
        }
        self.queue.push(until, event);
        None
    }

    /// Lets every pause run out, for the end-of-run heal: what a paused node deferred is then
    /// handled in order, before anything that arrives later (ending a pause early would let
    /// newer messages, and newer syncs, overtake it).
    pub(super) fn end_pauses(&mut self) -> Result<(), Box<Failure>> {
        let now = self.now;
        let last = self.nodes.iter().filter_map(|sn| sn.paused_at(now)).max();
        if let Some(until) = last {
            self.fault(format!("heal: every pause ends by {until}"));
            self.run_for(until - now)?;
        }
        // The pauses' ends are forgotten below: a node that resumed may vote, so the checks
        // that wait for quiet count from here.
        if last.is_some() {
            self.disturbed();
        }
        for sn in &mut self.nodes {
            sn.paused_until = None;
        }
        Ok(())
    }

    /// Until when node `n`'s process is paused, if it is now.
    pub fn paused_until(&self, n: u32) -> Option<Time> {
        self.nodes.get(n as usize)?.paused_at(self.now)
    }

    /// The node the partition in force cut off as the leader, if it is an `isolate-leader` one:
    /// what [`sq_model::ClusterModel::connected_majority`] needs to know about it.
    pub fn isolated_leader(&self) -> Option<u32> {
        self.net.isolated_leader()
    }

    /// Whether no partition, clog or pause is in force: every node reaches every node at the
    /// usual speed and handles what it gets.
    pub fn links_whole(&self) -> bool {
        self.net.cut().is_empty()
            && self.net.clogged().is_empty()
            && (0..self.nodes.len() as u32).all(|n| self.paused_until(n).is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::What;
    use pretty_assertions::assert_eq;

    fn status(n: u32, role: Role, term: u64) -> (u8, Status) {
        let s = Status {
            id: NodeId(n),
            role,
            term,
            leader: None,
            commit_index: 0,
            last_index: 0,
            synced_index: 0,
            repairing: false,
            tiered_upto: 0,
            wal_start: 1,
            objects: 0,
        };
        (n as u8, s)
    }

    #[test]
    fn the_leader_of_the_highest_term_is_isolated_else_node_0() {
        assert_eq!(leader_of([]), None);
        assert_eq!(
            leader_of([status(0, Role::Follower, 4), status(2, Role::Candidate, 5)]),
            None
        );
        assert_eq!(
            leader_of([
                status(0, Role::Leader, 3),
                status(1, Role::Follower, 4),
                status(2, Role::Leader, 4)
            ]),
            Some(2)
        );
    }

    #[test]
    fn links_read_as_pairs() {
        let links = BTreeSet::from([(0, 2), (2, 0), (1, 2)]);
        assert_eq!(links_text(&links), "n0<->n2 n1->n2");
        assert_eq!(links_text(&BTreeSet::new()), "nothing");
    }

    fn sim(nodes: u8) -> Sim {
        let shape = ClusterShape {
            nodes,
            ..ClusterShape::SINGLE_NODE
        };
        let mut cfg = SimConfig::new(shape, 3);
        cfg.trace_capacity = 1 << 16;
        Sim::new(cfg)
    }

    fn run(sim: &mut Sim, i: usize, t: &str) {
        let t: Transition = t.parse().unwrap_or_else(|e| panic!("{t}: {e}"));
        if let Err(f) = sim.apply(i, &t) {
            panic!("{f}");
        }
    }

    /// The deliveries to node `n` in the trace so far, with their times.
    fn deliveries_to(sim: &Sim, n: u32) -> Vec<Time> {
        sim.trace
            .last(usize::MAX)
            .filter(|e| matches!(e.what, What::Deliver { to: Addr::Node(m), .. } if m == n))
            .map(|e| Time(e.time))
            .collect()
    }

    #[test]
    fn a_paused_node_handles_nothing_until_its_pause_ends_then_everything_in_order() {
        let mut sim = sim(1);
        run(&mut sim, 0, "pause node=0 ms=40 seed=1");
        assert_eq!(sim.paused_until(0), Some(Time(40 * Time::MILLI)));
        run(
            &mut sim,
            1,
            "produce producer=0 partition=0 records=2 seed=2",
        );
        run(
            &mut sim,
            2,
            "produce producer=1 partition=1 records=1 seed=3",
        );
        run(&mut sim, 3, "run ms=39 seed=4");
        assert_eq!(deliveries_to(&sim, 0), vec![]);
        assert_eq!(sim.busy_clients(), vec!["c0", "c1"]);
        run(&mut sim, 4, "run ms=30 seed=5");
        // Both requests, and the retries the clients sent at 20 ms, are handled as it resumes.
        let at = deliveries_to(&sim, 0);
        assert_eq!(at[..4], [Time(40 * Time::MILLI); 4]);
        assert!(at.iter().all(|t| *t >= Time(40 * Time::MILLI)), "{at:?}");
        assert_eq!(sim.paused_until(0), None);
        assert_eq!(sim.busy_clients(), Vec::<String>::new());
    }

    #[test]
    fn a_crash_ends_a_pause() {
        let mut sim = sim(1);
        run(&mut sim, 0, "pause node=0 ms=500 seed=1");
        run(&mut sim, 1, "crash node=0 seed=2");
        run(&mut sim, 2, "restart node=0 seed=3");
        assert_eq!(sim.paused_until(0), None);
        run(
            &mut sim,
            3,
            "produce producer=0 partition=0 records=1 seed=4",
        );
        run(&mut sim, 4, "run ms=30 seed=5");
        assert_eq!(sim.busy_clients(), Vec::<String>::new());
    }

    #[test]
    fn pausing_a_down_node_does_nothing() {
        let mut sim = sim(1);
        run(&mut sim, 0, "crash node=0 seed=2");
        run(&mut sim, 1, "pause node=0 ms=500 seed=1");
        assert_eq!(sim.paused_until(0), None);
    }

    #[test]
    fn the_end_of_a_run_waits_out_every_pause() {
        let mut sim = sim(1);
        run(
            &mut sim,
            0,
            "produce producer=0 partition=0 records=1 seed=2",
        );
        run(&mut sim, 1, "pause node=0 ms=300 seed=1");
        match sim.finish() {
            Ok(r) => assert!(r.stats.healed_at >= Some(Time(300 * Time::MILLI))),
            Err(f) => panic!("{f}"),
        }
        assert!(sim.links_whole());
    }

    #[test]
    fn partitions_clogs_and_heals_reach_the_network() {
        let mut sim = sim(3);
        run(&mut sim, 0, "partition split node=1 seed=1");
        assert_eq!(
            Vec::from_iter(sim.net.cut().iter().copied()),
            vec![(0, 1), (1, 0), (1, 2), (2, 1)]
        );
        assert_eq!(sim.isolated_leader(), None);
        // No node reports a leader yet: node 0 is cut off.
        run(&mut sim, 1, "partition isolate-leader seed=2");
        assert_eq!(sim.isolated_leader(), Some(0));
        assert_eq!(sim.net.cut().len(), 4);
        run(&mut sim, 2, "clog from=2 to=0 ms=25 seed=3");
        assert_eq!(
            sim.net.clogged(),
            &BTreeMap::from([((Addr::Node(2), Addr::Node(0)), 25 * Time::MILLI)])
        );
        run(&mut sim, 3, "pause node=2 ms=5 seed=4");
        assert!(!sim.links_whole());
        run(&mut sim, 4, "heal-net seed=5");
        run(&mut sim, 5, "run ms=5 seed=6");
        assert!(sim.links_whole());
        assert_eq!(sim.isolated_leader(), None);
        let faults: Vec<String> = sim
            .trace
            .last(usize::MAX)
            .filter_map(|e| match &e.what {
                What::Fault { what } => Some(what.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            faults,
            vec![
                "partition split node=1: cut n0<->n1 n1<->n2",
                "partition isolate-leader (no node leads: n0): cut n0<->n1 n0<->n2",
                "clog n2->n0: +25ms per message",
                "pause n2: it handles nothing until 0.005000s",
                "heal-net: every node reaches every node, no link is slow",
            ]
        );
    }
}
