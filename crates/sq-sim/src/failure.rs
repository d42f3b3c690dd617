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
        write!(f, "  replay: {}", self.replay)?;
        if let Some(diagram) = diagram_command(&self.replay) {
            write!(f, "\n  diagram: {diagram}")?;
        }
        Ok(())
    }
}

/// The command that writes the space-time diagram of the run `replay` replays: the same run
/// with `--html FILE` instead of `--trace`, the file named after the script (`X.script` gives
/// `X.html`) or the scenario and seed. `None` for a replay line that is not an `sq-sim` command.
pub fn diagram_command(replay: &str) -> Option<String> {
    let (cmd, _) = replay.split_once(" --trace")?;
    if !cmd.contains("sq-sim -- ") {
        return None;
    }
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let after = |flag: &str| {
        words
            .iter()
            .position(|w| *w == flag)
            .and_then(|i| words.get(i + 1))
    };
    let file = match (after("--script"), after("--scenario"), after("--seed")) {
        (Some(script), _, _) => {
            let stem = script.strip_suffix(".script").unwrap_or(script);
            format!("{stem}.html")
        }
        (None, Some(scenario), Some(seed)) => format!("target/{scenario}-seed-{seed}.html"),
        _ => return None,
    };
    Some(format!("{cmd} --html {file}"))
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn the_diagram_command_follows_the_replay_command() {
        assert_eq!(
            diagram_command("cargo run --release -p sq-sim -- replay --script target/tmp/model-case-7.script --trace"),
            Some("cargo run --release -p sq-sim -- replay --script target/tmp/model-case-7.script --html target/tmp/model-case-7.html".into())
        );
        assert_eq!(
            diagram_command("cargo run --release -p sq-sim -- run --scenario S04 --seed 7 --trace"),
            Some("cargo run --release -p sq-sim -- run --scenario S04 --seed 7 --html target/S04-seed-7.html".into())
        );
        assert_eq!(diagram_command("seed 7"), None);
    }
}
