//! Delta debugging (Zeller and Hildebrandt's ddmin) over a failing transition script.
//!
//! Proptest's shrinking keeps transitions that do nothing (a `disk-free` on a disk with room, a
//! `restart` of a running node): it shrinks one value tree at a time. ddmin removes chunks of the
//! script, then single transitions, replaying each candidate in the simulator (about a
//! millisecond each) and keeping the smallest script that still fails with the same invariant.

use crate::runtime::{Sim, SimConfig};
use sq_model::{ClusterModel, Invariant, Transition};

/// The smallest sub-sequence of `input` (1-minimal: removing any one element makes `fails`
/// false) that `fails` accepts, found by ddmin. `fails(input)` should hold.
pub fn ddmin<T: Clone>(input: &[T], mut fails: impl FnMut(&[T]) -> bool) -> Vec<T> {
    let mut current = input.to_vec();
    let mut n = 2usize;
    while current.len() >= 2 {
        let len = current.len();
        let chunk = len.div_ceil(n);
        let ranges: Vec<_> = (0..len)
            .step_by(chunk)
            .map(|s| s..(s + chunk).min(len))
            .collect();
        let mut reduced = false;
        // A chunk alone that still fails.
        for r in &ranges {
            let subset = &current[r.clone()];
            if subset.len() < len && fails(subset) {
                current = subset.to_vec();
                n = 2;
                reduced = true;
                break;
            }
        }
        // Everything but a chunk.
        if !reduced {
            for r in &ranges {
                let complement: Vec<T> = current[..r.start]
                    .iter()
                    .chain(&current[r.end..])
                    .cloned()
                    .collect();
                if fails(&complement) {
                    current = complement;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= len {
                break;
            }
            n = (n * 2).min(len);
        }
    }
    if current.len() == 1 && fails(&[]) {
        current.clear();
    }
    current
}

/// Runs `script` on a fresh simulator built by `config` and returns the invariant it breaks, if
/// any. A script that the cluster model refuses (an id out of range) breaks nothing.
pub fn violated(config: &dyn Fn() -> SimConfig, script: &[Transition]) -> Option<Invariant> {
    let cfg = config();
    let mut model = ClusterModel::new(cfg.shape, cfg.seed);
    if cfg.store.is_some() {
        model = model.with_store();
    }
    if model.check_script(script).is_err() {
        return None;
    }
    Sim::new(cfg)
        .run_script(script)
        .err()
        .map(|f| f.violation.invariant)
}

/// The smallest sub-script of `script` that still breaks `invariant` on simulators built by
/// `config`.
pub fn minimize(
    config: &dyn Fn() -> SimConfig,
    script: &[Transition],
    invariant: Invariant,
) -> Vec<Transition> {
    ddmin(script, |candidate| {
        violated(config, candidate) == Some(invariant)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn ddmin_finds_the_one_minimal_pair() {
        // Fails when both 3 and 7 are present, in that order.
        let input: Vec<u32> = (0..20).collect();
        let mut calls = 0;
        let got = ddmin(&input, |s| {
            calls += 1;
            let a = s.iter().position(|&x| x == 3);
            let b = s.iter().position(|&x| x == 7);
            matches!((a, b), (Some(a), Some(b)) if a < b)
        });
        assert_eq!(got, vec![3, 7]);
        assert!(calls < 100, "{calls} calls");
    }

    #[test]
    fn ddmin_keeps_a_lone_culprit_and_can_empty() {
        let input = vec!['a', 'b', 'c'];
        assert_eq!(ddmin(&input, |s| s.contains(&'b')), vec!['b']);
        assert_eq!(ddmin(&input, |_| true), Vec::<char>::new());
    }
}
