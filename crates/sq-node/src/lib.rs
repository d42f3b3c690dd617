//! sq-node: the replica as a sans-IO state machine.
//!
//! The node never touches real I/O, time or randomness. The caller hands it the current [`Time`],
//! an [`Input`] (a client request, a message from another replica, or the completion of a sync
//! it asked for) and the [`Disk`]; it answers with [`Output`]s (replies and messages to send,
//! syncs to run) and says when it next wants to be woken ([`Node::poll_timeout`]). Appends and
//! reads go through the disk at once (the page cache); durability is an effect whose completion
//! comes back later, and nothing that depends on it leaves before.
//!
//! A cluster of `nodes` replicas runs Raft (`election.rs`, `replicate.rs`, `progress.rs`) with
//! PreVote, CheckQuorum and leader stickiness; a replica whose own storage lied repairs itself
//! from the leader (`repair.rs`). A cluster of one leads itself, as before.
//!
//! [`Time`]: sq_core::Time
//! [`Disk`]: sq_storage::Disk

mod base;
mod catch_up;
mod election;
mod error;
mod group_requests;
mod groups;
mod jitter;
mod node;
mod partition;
mod probes;
mod producers;
mod progress;
mod repair;
mod replicate;
mod status;
mod store_read;
mod tiering;
mod timer;

pub use error::NodeError;
pub use node::{Input, Node, NodeConfig, Output};
pub use status::{Role, Status};
pub use tiering::TierConfig;
pub use timer::Timer;
