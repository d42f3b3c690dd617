//! The object store's side of the world: a call completes (applied or not, as its fate says),
//! the checks see what changed, and the node that made it hears the answer if it still runs.

use super::*;
use crate::invariants::tiering;
use sq_storage::tier::decode_object;
use sq_storage::{ObjectDesc, StoreOk, StoreOp};

impl Sim {
    /// Completes a call node `node` made; a delete is checked against every snapshot manifest.
    pub(super) fn store_done(
        &mut self,
        node: u32,
        incarnation: u64,
        token: u64,
        op: StoreOp,
        fate: CallFate,
    ) -> Result<(), Box<Failure>> {
        let result = self.store.complete(&op, fate);
        self.stats.store = self.store.stats.clone();
        let outcome = match &result {
            Ok(StoreOk::Got(b)) => format!("ok ({} bytes)", b.len()),
            Ok(StoreOk::Listed(l)) => format!("ok ({} objects)", l.len()),
            Ok(_) => "ok".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        let call = format!("{} {} (#{token}) → {outcome}", op.name(), op.key());
        self.trace.record(self.now, What::Store { node, call });
        if let StoreOp::Delete { key } = &op {
            if self.store.object(key).is_none() {
                let manifests =
                    self.check.images.iter().enumerate().filter_map(|(n, i)| {
                        i.snapshot().map(|s| (n as u32, s.manifest.as_slice()))
                    });
                tiering::check_delete(key, manifests).map_err(|v| self.fail(v, Some(node)))?;
            }
        }
        let sn = &self.nodes[node as usize];
        if sn.incarnation != incarnation || sn.node.is_none() {
            return Ok(());
        }
        self.node_input(node, Input::Stored { token, result })
    }

    /// Applies a store fault transition.
    pub(super) fn store_fault(&mut self, t: &Transition) {
        if self.cfg.store.is_none() {
            return self.fault(format!("{t}: this run has no store"));
        }
        match *t {
            Transition::StoreOutage { .. } => {
                if !self.store.outage {
                    self.stats.store_outages.push((self.now.nanos(), 0));
                }
                self.store.outage = true;
                self.fault("store outage: every call fails".into());
            }
            Transition::StoreRestore { .. } => {
                if let Some(o) = self.stats.store_outages.last_mut().filter(|o| o.1 == 0) {
                    o.1 = self.now.nanos();
                }
                self.store.outage = false;
                self.fault("store restored".into());
            }
            Transition::StoreErrors { rate, .. } => {
                if let Some(f) = self.store.faults.as_mut() {
                    f.server_error = rate;
                    f.throttle = rate;
                    f.timeout = rate / 2;
                }
                self.fault(format!(
                    "store errors: {rate}‰ server errors and throttling"
                ));
            }
            Transition::StoreLostReply { .. } => {
                self.store.lose_next_put = true;
                self.fault("store: the next PUT lands but its caller sees a timeout".into());
            }
            Transition::StoreCorrupt { .. } => self.corrupt_store(),
            _ => {}
        }
        self.disturbed();
    }

    /// Flips a bit of a stored object. The store holds the only copy of what replicas trimmed:
    /// the records it held may read back as corrupt from now on (never as other data), so the
    /// checks excuse them, as they do a node's only copy hit by a fault.
    fn corrupt_store(&mut self) {
        let Some((key, before)) = self.store.flip(&mut self.rng) else {
            return self.fault("store corrupt: no object to flip".into());
        };
        self.stats.corruptions += 1;
        let mut lost = Vec::new();
        if let Some((first, last, term, crc)) = ObjectDesc::parse_key(&key) {
            let desc = ObjectDesc {
                first,
                last,
                term,
                crc,
                len: before.len() as u64,
                spans: Vec::new(),
            };
            for (h, _) in decode_object(&before, &desc).unwrap_or_default() {
                if h.kind == sq_core::EntryKind::Batch {
                    let b = h.batch;
                    lost.push((b.partition, b.base_offset, b.count));
                }
            }
        }
        for &(partition, base, count) in &lost {
            self.check
                .excused
                .entry(partition)
                .or_default()
                .extend(base..base + u64::from(count));
        }
        self.fault(format!(
            "store corrupt: a bit of {key} flipped ({} batches in it)",
            lost.len()
        ));
    }
}
