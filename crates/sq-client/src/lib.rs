//! sq-client: a producer and a consumer as sans-IO state machines.
//!
//! They never send anything themselves: each call returns [`ClientOutput`]s (a request to send, a
//! timer to set) and appends to the client's [`History`], which records every operation as
//! invoke, then ok, fail (definite) or info (indeterminate), as Jepsen does.
//!
//! A client sends to the node it believes leads, follows `NotLeader` hints (or tries the next
//! node), and resends the very same request each time, so that an idempotent produce stays one
//! produce whichever leader finally takes it.

mod consumer;
mod group;
mod history;
mod producer;
mod session;

pub use consumer::{Consumer, ConsumerConfig};
pub use group::{GroupConsumer, GroupConsumerConfig};
pub use history::{HistoryEvent, Op, Outcome};
pub use producer::{Producer, ProducerConfig};

use sq_core::{NodeId, Request, Time};
use thiserror::Error;

/// Something a client wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// Send `request` to node `to`, tagged `req`.
    Send {
        /// The node.
        to: NodeId,
        /// The request id; the reply carries it back.
        req: u64,
        /// The request.
        request: Request,
    },
    /// Call `on_timer` at `at`.
    SetTimer {
        /// When.
        at: Time,
    },
}

/// Why a client refused to start an operation. Nothing was sent: definite.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ClientError {
    /// The client already has an operation in flight (it runs one at a time).
    #[error("client busy with operation {0}")]
    Busy(u64),
}

/// A client's history: its events in the order they happened.
pub type History = Vec<HistoryEvent>;
