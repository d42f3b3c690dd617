//! sq-model: the reference model of sq, an independent specification.
//!
//! - [`LogOracle`]: an obviously correct in-memory replicated log. It knows what must be present
//!   (acked records), what may be (in-flight or indeterminate produces) and what must never be
//!   (definitely failed or never produced). Fed an observation, it refines itself or returns a
//!   [`Violation`] saying what was expected and what was seen.
//! - [`Transition`]: the one vocabulary of operations and faults that proptest generates, the
//!   scenarios script and the CLI replays.
//! - [`ClusterModel`]: the proptest [`ReferenceStateMachine`](proptest_state_machine::ReferenceStateMachine)
//!   state (which nodes are up, which disks full); it never sees outcomes.
//!
//! This crate depends on `sq-core` only and shares no logic with the node: a bug copied into both
//! would hide.

mod cluster;
mod groups;
mod oracle;
mod three_node;
mod transition;
mod violation;

pub use cluster::{ClusterModel, ClusterShape, SingleNodeCluster};
pub use groups::GroupOracle;
pub use oracle::{BatchStatus, LogOracle, RecordId};
pub use three_node::{GroupCluster, ThreeNodeCluster, TieredCluster};
pub use transition::{parse_script, Cut, GroupAction, ParseError, Transition};
pub use violation::{Invariant, Violation};
