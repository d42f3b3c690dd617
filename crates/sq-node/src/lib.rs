//! sq-node: the replica as a sans-IO state machine.
//!
//! The node never touches real I/O, time or randomness. The caller hands it the current [`Time`],
//! an [`Input`] (a client request or a timer) and the [`Disk`]; it answers with [`Output`]s
//! (replies to send, timers to set). Its quorum is one for now; log entries already carry term and
//! index, so peers slot in as more inputs and outputs.
//!
//! [`Time`]: sq_core::Time
//! [`Disk`]: sq_storage::Disk

mod error;
mod node;
mod partition;
mod producers;
mod timer;

pub use error::NodeError;
pub use node::{Input, Node, NodeConfig, Output};
pub use partition::BatchRef;
pub use timer::Timer;
