//! sq-sim: the deterministic simulator that proves sq correct.
//!
//! One thread, one seed: the real node code runs on [`disk::SimDisk`]s and a
//! [`network::Network`], driven by one [`queue::EventQueue`] in virtual time. Operations and faults
//! are [`sq_model::Transition`]s; every history event goes to the reference model; the
//! [`invariants`] are checked as the run goes; the [`trace`] records (and hashes) every event.

pub mod bench;
pub mod ddmin;
pub mod diagram;
pub mod disk;
pub mod export;
pub mod failure;
pub mod figures;
pub mod invariants;
pub mod network;
pub mod queue;
pub mod rng;
pub mod runtime;
pub mod scenarios;
pub mod store;
pub mod swarm;
pub mod sweep;
pub mod text;
pub mod trace;

pub use failure::Failure;
pub use runtime::{RunReport, RunStats, Sim, SimConfig, LIVENESS_BOUND};
