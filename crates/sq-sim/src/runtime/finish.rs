//! The end of a run: heal everything, let it settle, read every partition back.

use super::*;

impl Sim {
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

    pub(super) fn clients_idle(&self) -> bool {
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

    pub(super) fn read_back(&mut self, partition: u32, limit: Time) -> Result<(), Box<Failure>> {
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
}
