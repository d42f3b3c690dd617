//! The object store's side of the world: a call completes (applied or not, as its fate says),
//! the checks see what changed, and the node that made it hears the answer if it still runs.

use super::*;
use crate::invariants::tiering;
use sq_storage::{StoreOk, StoreOp};

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
}
