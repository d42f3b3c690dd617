//! What a cluster of several replicas owes its clients, given the network and the nodes' state:
//! while a majority is up, connected, lossless and has room, every operation is answered within
//! the liveness bound; while a node is cut off from every majority, it acks nothing that was
//! produced after it was cut off.

use super::*;

impl Sim {
    /// Whether the links between nodes `a` and `b` deliver both ways at the usual speed.
    fn link_whole(&self, a: u32, b: u32) -> bool {
        let cut = self.net.cut();
        let clogged = self.net.clogged();
        a == b
            || (!cut.contains(&(a, b))
                && !cut.contains(&(b, a))
                && !clogged.contains_key(&(Addr::Node(a), Addr::Node(b)))
                && !clogged.contains_key(&(Addr::Node(b), Addr::Node(a))))
    }

    /// Whether node `n` can serve as a member of a healthy majority: it runs, is not paused,
    /// has room and is not repairing a damaged log.
    fn member_healthy(&self, n: u32) -> bool {
        let sn = &self.nodes[n as usize];
        sn.node
            .as_ref()
            .is_some_and(|node| node.failed().is_none() && !node.status().repairing)
            && sn.disk.quota().is_none()
            && self.paused_until(n).is_none()
    }

    /// Whether node `leader` works: it is healthy, and with other healthy nodes it makes a
    /// majority fully connected among itself at the usual speed, on a network that loses
    /// nothing.
    pub(super) fn leader_works(&self, leader: u32) -> bool {
        if self.net.loss > 0 || !self.member_healthy(leader) {
            return false;
        }
        let nodes = self.nodes.len() as u32;
        let with = (0..nodes)
            .filter(|&m| m == leader || (self.member_healthy(m) && self.link_whole(leader, m)))
            .count() as u32;
        with > nodes / 2
    }

    /// Whether some majority of nodes is healthy and fully connected among itself, and the
    /// network loses nothing, and the store (if there is one) answers every call: then the
    /// cluster must serve (a cluster of one: its node is up with room). A fetch below the WAL
    /// waits for the store, and a WAL that cannot shrink fills its budget.
    pub(super) fn majority_healthy(&self) -> bool {
        if self.net.loss > 0 || !self.store_healthy() {
            return false;
        }
        let nodes = self.nodes.len() as u32;
        if nodes == 1 {
            return self.nodes[0].node.is_some() && self.nodes[0].disk.quota().is_none();
        }
        let majority = nodes / 2 + 1;
        let members: Vec<u32> = (0..nodes).filter(|&n| self.member_healthy(n)).collect();
        // Small clusters: every subset of the healthy members.
        (0u32..1 << members.len()).any(|set| {
            let chosen: Vec<u32> = members
                .iter()
                .enumerate()
                .filter(|(k, _)| set & (1 << k) != 0)
                .map(|(_, &n)| n)
                .collect();
            chosen.len() as u32 >= majority
                && chosen
                    .iter()
                    .all(|&a| chosen.iter().all(|&b| self.link_whole(a, b)))
        })
    }

    /// Whether the store is reachable and answers without errors (a run without one: yes).
    fn store_healthy(&self) -> bool {
        !self.store.outage
            && self.store.faults.is_none_or(|f| {
                f.server_error == 0 && f.throttle == 0 && f.timeout == 0 && f.lost_reply == 0
            })
    }

    /// Whether the partition in force leaves node `n` no majority it can talk to both ways.
    fn isolated(&self, n: u32) -> bool {
        let cut = self.net.cut();
        let nodes = self.nodes.len() as u32;
        let reach = (0..nodes)
            .filter(|&m| m == n || (!cut.contains(&(n, m)) && !cut.contains(&(m, n))))
            .count() as u32;
        reach < nodes / 2 + 1
    }

    /// Notes, after the network changed, since when each node has been cut off.
    pub(super) fn update_isolation(&mut self) {
        if self.nodes.len() <= 1 {
            return;
        }
        let cut = self.net.cut().clone();
        let clogs: Vec<(Addr, Addr, u64)> = self
            .net
            .clogged()
            .iter()
            .map(|(&(a, b), &d)| (a, b, d))
            .collect();
        if (&cut, &clogs) != (&self.check.links.1, &self.check.links.2) {
            self.check.links = (self.now, cut, clogs);
        }
        let highest = self.check.highest_term;
        let clog = self.net.clogged().values().copied().max().unwrap_or(0);
        self.check.longest_clog = self.check.longest_clog.max(clog);
        for n in 0..self.nodes.len() as u32 {
            let isolated = self.isolated(n);
            let cap = &mut self.check.term_cap[n as usize];
            *cap = match (*cap, isolated) {
                (_, false) => None,
                (None, true) => Some(highest + 1),
                (Some(c), true) => Some(c),
            };
            let since = &mut self.check.isolated_since[n as usize];
            *since = match (*since, isolated) {
                (Some(t), false) => {
                    self.stats.isolations.push((n, t.nanos(), self.now.nanos()));
                    None
                }
                (None, false) => None,
                (None, true) => Some(self.now),
                (Some(t), true) => Some(t),
            };
        }
    }

    /// A node cut off from every majority must not raise its term past what the cluster had
    /// when it was cut off (PreVote): it would depose the majority's leader when it returns.
    pub(super) fn check_term_cap(&self, n: u32, term: u64) -> Result<(), Violation> {
        let cap = self.check.term_cap.get(n as usize).copied().flatten();
        crate::invariants::quorum::check_term_cap(n, cap, term)
    }

    /// A node cut off from every majority since before a produce was invoked cannot have
    /// replicated it: its ack is a violation.
    pub(super) fn check_not_isolated(
        &self,
        n: u32,
        producer: u64,
        seq: u64,
        invoked: Time,
    ) -> Result<(), Violation> {
        let since = self.check.isolated_since.get(n as usize).copied().flatten();
        crate::invariants::quorum::check_not_isolated(n, producer, seq, invoked, since)
    }
}
