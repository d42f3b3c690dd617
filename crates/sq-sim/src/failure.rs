//! A run that broke an invariant: everything needed to understand it and to replay it.

use sq_core::Time;
use sq_model::Violation;
use std::fmt;

/// An invariant violation with its context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What broke.
    pub violation: Violation,
    /// Which run: "scenario S04 · seed 7", or "model-based case · seed 123".
    pub run: String,
    /// The index of the transition being applied, if any.
    pub transition: Option<usize>,
    /// The number of trace events recorded before the violation.
    pub event: u64,
    /// Simulated time.
    pub time: Time,
    /// The node concerned, if one is.
    pub node: Option<u32>,
    /// The last trace events, oldest first.
    pub last_events: Vec<String>,
    /// The one command that replays this run.
    pub replay: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.violation.invariant)?;
        write!(f, "  {}", self.run)?;
        if let Some(t) = self.transition {
            write!(f, " · transition {t}")?;
        }
        write!(f, " · event {} · t={}", self.event, self.time)?;
        if let Some(n) = self.node {
            write!(f, " · node n{n}")?;
        }
        writeln!(f)?;
        writeln!(f, "  {}", self.violation.subject)?;
        writeln!(f, "  expected: {}", self.violation.expected)?;
        writeln!(f, "  actual:   {}", self.violation.actual)?;
        writeln!(f, "  last events:")?;
        for e in &self.last_events {
            writeln!(f, "    {e}")?;
        }
        write!(f, "  replay: {}", self.replay)
    }
}

impl std::error::Error for Failure {}
