//! The end of a run: heal everything, let it settle, read every partition back.

use super::*;

/// How long a healthy, undisturbed cluster may take to answer an operation: a client's retry
/// interval (20 ms), then two network trips (at most 3.5 ms each), a group-commit delay (at
/// most 2 ms) and up to two syncs (at most 6.4 ms each: an append that arrives while a sync is
/// in flight waits for the next one), with room to spare.
pub const LIVENESS_BOUND: u64 = 60 * Time::MILLI;

impl Sim {
    /// The clients with an operation in flight, as "c0", "c4".
    pub fn busy_clients(&self) -> Vec<String> {
        self.in_flight().map(|(c, _)| c.to_string()).collect()
    }

    /// Every client with an operation in flight, and when it was invoked.
    pub fn in_flight(&self) -> impl Iterator<Item = (ClientId, Time)> + '_ {
        let producers = self
            .work
            .producers
            .iter()
            .filter_map(|p| Some((p.client(), p.in_flight_since()?)));
        let consumers = self
            .work
            .consumers
            .iter()
            .filter_map(|c| Some((c.client(), c.in_flight_since()?)));
        let members = self
            .work
            .members
            .iter()
            .filter_map(|m| Some((m.client(), m.in_flight_since()?)));
        producers.chain(consumers).chain(members)
    }

    /// The liveness postcondition, checked after every transition of every run (model-based
    /// cases, swarm seeds, replays and scenarios alike, so a printed replay fails as the test
    /// did): while some majority of nodes is healthy and connected and the network is lossless
    /// (`Sim::majority_healthy`), every operation is answered within
    /// [`SimConfig::liveness_bound`] of its invocation, of that moment, or of the last
    /// disturbance (a disk error, a crash, a restart), whichever is latest.
    pub(super) fn check_liveness(&mut self) -> Result<(), Box<Failure>> {
        let healthy = self.majority_healthy();
        self.check.healthy_since = match (healthy, self.check.healthy_since) {
            (false, _) => None,
            (true, since) => Some(since.unwrap_or(self.now)),
        };
        match self.check.healthy_since {
            Some(since) => self.check_settled(since, self.cfg.liveness_bound()),
            None => Ok(()),
        }
    }

    /// Liveness: every operation in flight has had `bound` ns of a healthy cluster (healthy since
    /// `healthy_since`, and undisturbed since the last disk error, crash or restart the
    /// simulation itself saw) to finish; `Err` names the first that has not.
    pub fn check_settled(&self, healthy_since: Time, bound: u64) -> Result<(), Box<Failure>> {
        let healthy_since = healthy_since.max(self.check.last_disturbance);
        for (client, started) in self.in_flight() {
            let due = started.max(healthy_since) + bound;
            if self.now > due {
                return Err(self.failure(Violation::new(
                    Invariant::Liveness,
                    format!("{client}'s operation invoked at {started}"),
                    format!(
                        "an answer by {due}: the cluster has been healthy since {healthy_since}"
                    ),
                    format!("still in flight at {}", self.now),
                )));
            }
        }
        Ok(())
    }

    /// Lets time run until every client is idle or `limit` has passed.
    fn settle(&mut self, limit: Time) -> Result<(), Box<Failure>> {
        while !self.clients_idle() && self.now < limit {
            self.run_for(10 * Time::MILLI)?;
        }
        Ok(())
    }

    pub(super) fn clients_idle(&self) -> bool {
        self.work.producers.iter().all(Producer::is_idle)
            && self.work.consumers.iter().all(Consumer::is_idle)
            && self.work.members.iter().all(GroupConsumer::is_idle)
    }

    /// Heals everything, lets the cluster settle, reads every partition back from offset 0 and
    /// checks it against the reference model.
    pub fn finish(&mut self) -> Result<RunReport, Box<Failure>> {
        self.transition = None;
        self.fault(
            "heal: restart every node, free every disk, heal the network, restore the store".into(),
        );
        self.store.heal();
        for n in 0..self.nodes.len() as u32 {
            self.nodes[n as usize].disk.set_quota(None);
            self.restart(n)?;
        }
        // Partitions and clogs too; pauses run out.
        self.net.heal();
        self.update_isolation();
        self.end_pauses()?;
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
        self.drain_backlog(limit)?;
        self.check_images()?;
        self.stats.healed_at = Some(self.now);
        // A node that refused to start holds what it held out of reach: with one node, nothing
        // can be probed or read back (the run reports the refusal in its stats).
        if self.nodes.iter().any(|sn| sn.refused.is_some()) {
            return Ok(self.report());
        }
        self.probe(limit)?;
        if self.nodes.iter().any(|sn| sn.refused.is_some()) {
            return Ok(self.report());
        }
        for partition in 0..u32::from(self.cfg.shape.partitions) {
            self.read_back(partition, limit + self.cfg.settle_limit)?;
        }
        self.check_group_offsets(self.now + self.cfg.settle_limit)?;
        self.converge()?;
        Ok(self.report())
    }

    /// With a store: once it is back, the backlog uploads and every WAL shrinks to what a
    /// replica keeps then ([`SimConfig::settled_wal_bound`], under the budget, so producers are
    /// served again) before `limit`.
    fn drain_backlog(&mut self, limit: Time) -> Result<(), Box<Failure>> {
        if self.cfg.store.is_none() {
            return Ok(());
        }
        let budget = self.cfg.settled_wal_bound();
        let over = |sim: &Sim| {
            (0..sim.nodes.len() as u32)
                .filter_map(|n| sim.node(n).map(|node| (n, node.wal_bytes())))
                .find(|&(_, bytes)| bytes > budget)
        };
        while let Some((n, bytes)) = over(self) {
            if self.now >= limit {
                return Err(self.fail(
                    Violation::new(
                        Invariant::Liveness,
                        format!("n{n}'s WAL after the store came back"),
                        format!("at most {budget} bytes by {limit}: the backlog uploaded"),
                        format!("{bytes} bytes"),
                    ),
                    Some(n),
                ));
            }
            self.run_for(10 * Time::MILLI)?;
        }
        Ok(())
    }

    fn report(&self) -> RunReport {
        let mut stats = self.stats.clone();
        for o in &mut stats.store_outages {
            if o.1 == 0 {
                o.1 = self.now.nanos();
            }
        }
        RunReport {
            events: self.trace.len(),
            sim_time: self.now,
            trace_hash: self.trace.hash(),
            stats,
            probes: self.probes(),
        }
    }

    /// A healed cluster must ack a produce: each producer sends one more batch, and each must be
    /// acked (not refused, not left indeterminate) before `limit`.
    ///
    /// A producer gives up on its own after a few attempts (an indeterminate outcome), which
    /// may come sooner than the cluster's liveness bound when the heal left a backlog to
    /// replicate; until that bound has passed since the probe began, it sends another batch.
    fn probe(&mut self, limit: Time) -> Result<(), Box<Failure>> {
        let partitions = u32::from(self.cfg.shape.partitions);
        let due = self.now + self.cfg.liveness_bound();
        for p in 0..u32::from(self.cfg.shape.producers) {
            self.produce(p, p % partitions, 1)?;
        }
        self.settle(limit)?;
        while self.now < due.min(limit) {
            let gave_up: Vec<u32> = (0..u32::from(self.cfg.shape.producers))
                .filter(|p| matches!(self.work.last_outcome.get(p), Some(Outcome::Info(_))))
                .collect();
            if gave_up.is_empty() {
                break;
            }
            for p in gave_up {
                self.produce(p, p % partitions, 1)?;
            }
            self.settle(limit)?;
        }
        // A fault that destroyed records (excused) may have destroyed a producer's sequence
        // state with them: the node then refuses its next sequence once, definitely, and the
        // producer goes on in a new epoch. Such a producer probes once more; nobody else does.
        if self
            .check
            .excused
            .values()
            .any(|offsets| !offsets.is_empty())
        {
            for p in 0..u32::from(self.cfg.shape.producers) {
                if matches!(self.work.last_outcome.get(&p), Some(Outcome::Fail(_))) {
                    self.produce(p, p % partitions, 1)?;
                }
            }
            self.settle(limit)?;
        }
        // The probe itself may hit injected damage that makes the node refuse to start.
        if self.nodes.iter().any(|sn| sn.refused.is_some()) {
            return Ok(());
        }
        for p in 0..self.work.producers.len() {
            let client = self.work.producers[p].client();
            let last = self.work.last_outcome.get(&(p as u32));
            if !matches!(last, Some(Outcome::Produced { .. })) {
                return Err(self.failure(Violation::new(
                    Invariant::Liveness,
                    format!("{client}'s probe produce after the heal"),
                    "acked: the healed cluster serves every producer",
                    match last {
                        Some(o) => format!("{o:?}"),
                        None => "nothing".to_string(),
                    },
                )));
            }
        }
        Ok(())
    }

    /// Reads `partition` back from offset 0 to its end. The reader is stuck only if it makes
    /// no progress for the settle limit: how long the whole read takes grows with the data.
    pub(super) fn read_back(&mut self, partition: u32, limit: Time) -> Result<(), Box<Failure>> {
        // Each partition gets the settle limit from its own start and from each step forward.
        let mut limit = limit.max(self.now + self.cfg.settle_limit);
        let mut read = 0;
        let reader = u32::from(self.cfg.shape.consumers);
        let client = u32::from(self.cfg.shape.producers) + reader;
        self.work.consumers[reader as usize].seek(PartitionId(partition), 0);
        self.check.consumer_next.insert((client, partition), 0);
        self.check.readback = Some(ReadBack {
            records: Vec::new(),
            done: false,
        });
        while !self.check.readback.as_ref().is_some_and(|r| r.done) {
            let progress = self.check.readback.as_ref().map_or(0, |r| r.records.len());
            if progress > read {
                read = progress;
                limit = limit.max(self.now + self.cfg.settle_limit);
            }
            // Injected damage may make the node refuse to start during the read-back itself.
            if self.nodes.iter().any(|sn| sn.refused.is_some()) {
                self.check.readback = None;
                return Ok(());
            }
            if self.now >= limit {
                return Err(self.fail(
                    Violation::new(
                        Invariant::Liveness,
                        format!("read-back of partition {partition}"),
                        "the whole partition reads back once healed",
                        format!(
                            "the reader is stuck at offset {}",
                            self.work.consumers[reader as usize].position(PartitionId(partition))
                        ),
                    ),
                    None,
                ));
            }
            if self.work.consumers[reader as usize].is_idle() {
                self.fetch(reader, partition)?;
            }
            let next = self.queue.peek_time().unwrap_or(self.now).max(self.now);
            self.run_for(next - self.now)?;
        }
        let records = self
            .check
            .readback
            .take()
            .map(|r| r.records)
            .unwrap_or_default();
        let none = BTreeSet::new();
        let excused = self.check.excused.get(&partition).unwrap_or(&none);
        self.check
            .oracle
            .final_check(partition, &records, excused)
            .map_err(|v| self.fail(v, None))
    }
}
