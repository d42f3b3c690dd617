//! The simulator's invariant checkers: what can only be seen from outside the node (its disk's
//! durable bytes, the replies it sends). The history-level invariants (no phantom, no duplicate,
//! acked offset is the read offset, ...) live in the reference model, `sq_model::LogOracle`.
//!
//! Each checker is a pure function of the state it is shown, so `tests/invariants.rs` can show it
//! firing on a doctored case.

pub mod consumer;
pub mod durability;
pub mod durable_image;
pub mod group_offsets;
pub mod image;
pub mod majority;
pub mod quorum;
pub mod raft;
pub mod served;
pub mod tiering;
pub mod watermark;
