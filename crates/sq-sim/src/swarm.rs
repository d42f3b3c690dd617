//! Swarm testing: a long randomized search over many seeds. Each seed draws its own fault mix,
//! switching whole fault families off for some seeds (Groce et al., "Swarm Testing"), and its
//! script is drawn from the reference model's own transition strategy, so the search speaks the
//! same vocabulary and keeps the same preconditions as the model-based test.

use crate::rng::{mix, SimRng};
use crate::runtime::SimConfig;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sq_model::{ClusterModel, ClusterShape, Transition};

/// The fault families a seed may switch off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Process crashes (and the restarts they need).
    pub crashes: bool,
    /// Power losses.
    pub power_loss: bool,
    /// Crashes that land inside an operation or a recovery.
    pub crash_during: bool,
    /// Full disks.
    pub disk_full: bool,
    /// I/O errors on writes and syncs.
    pub disk_errors: bool,
    /// Latent bit flips.
    pub corruption: bool,
    /// Misdirected writes.
    pub misdirect: bool,
    /// Misreads (one read returns another place's bytes).
    pub misread: bool,
    /// Loss and duplication.
    pub network: bool,
    /// Partitions between nodes (and their heal). Off for a single node.
    pub partitions: bool,
    /// Slow links between nodes (and their heal). Off for a single node.
    pub clogs: bool,
    /// Process pauses. Off for a single node.
    pub pauses: bool,
    /// Whether the cluster tiers to an object store at all.
    pub store: bool,
    /// Store outages, error rates, lost PUT replies and flipped objects (with a store).
    pub store_faults: bool,
}

impl Mix {
    /// The mix for `seed` on `shape`: each family on with probability 2/3 (misdirected writes:
    /// 1/3); the families that need more than one node are off for a single node, and so is the
    /// store where the seed damages disks.
    pub fn for_shape(seed: u64, shape: ClusterShape) -> Mix {
        let mut mix = Mix::for_seed(seed);
        let cluster = shape.nodes > 1;
        mix.partitions &= cluster;
        mix.clogs &= cluster;
        mix.pauses &= cluster;
        // A node alone keeps a damaged entry as a hole it cannot upload, so it cannot tier past
        // it: a node alone tiers only in seeds that damage nothing.
        mix.store &= cluster || !(mix.corruption || mix.misdirect);
        mix
    }

    /// The mix for `seed`: each family on with probability 2/3 (misdirected writes: 1/3).
    pub fn for_seed(seed: u64) -> Mix {
        let mut rng = SimRng::new(mix(seed, 0x5a4d));
        let mut on = || rng.below(3) > 0;
        Mix {
            crashes: on(),
            disk_full: on(),
            disk_errors: on(),
            corruption: on(),
            network: on(),
            // Drawn after the older families, so their draws per seed stay as they were.
            power_loss: on(),
            crash_during: on(),
            // On for a third of the seeds only: a misdirected write almost always makes the next
            // restart refuse, and a single node that refused ends what the run can check.
            misdirect: !on(),
            misread: on(),
            // Drawn last, likewise.
            partitions: on(),
            clogs: on(),
            pauses: on(),
            // Drawn last, likewise: a store for two thirds of the seeds, and its faults for two
            // thirds of those.
            store: on(),
            store_faults: on(),
        }
    }

    /// The run's config: `SimConfig::new`, with an object store if the mix has one.
    pub fn config(&self, shape: ClusterShape, seed: u64) -> SimConfig {
        let cfg = SimConfig::new(shape, seed);
        if self.store {
            cfg.with_store()
        } else {
            cfg
        }
    }

    /// The header lines of a saved script of this mix: its seed, nodes, store, and the mix.
    pub fn script_header(&self, seed: u64, nodes: u8) -> String {
        let store = if self.store {
            format!("{}\n", crate::scenarios::STORE_LINE)
        } else {
            String::new()
        };
        format!("# seed: {seed}\n# nodes: {nodes}\n{store}# {self:?}\n")
    }

    fn allows(&self, t: &Transition) -> bool {
        match t {
            Transition::Crash { .. } => self.crashes,
            Transition::PowerLoss { .. } => self.power_loss,
            Transition::CrashDuring { .. } => self.crash_during,
            Transition::Misdirect { .. } => self.misdirect,
            Transition::Misread { .. } => self.misread,
            Transition::DiskFull { .. } => self.disk_full,
            Transition::DiskError { .. } => self.disk_errors,
            Transition::Corrupt { .. } => self.corruption,
            Transition::Network { .. } => self.network,
            Transition::Partition { .. } => self.partitions,
            Transition::Clog { .. } => self.clogs,
            Transition::HealNet { .. } => self.partitions || self.clogs,
            Transition::Pause { .. } => self.pauses,
            Transition::StoreOutage { .. }
            | Transition::StoreRestore { .. }
            | Transition::StoreErrors { .. }
            | Transition::StoreLostReply { .. }
            | Transition::StoreCorrupt { .. } => self.store && self.store_faults,
            _ => true,
        }
    }
}

/// A script of `len` transitions for `seed` on `shape`, drawn from the model's strategy.
pub fn script(seed: u64, shape: ClusterShape, len: usize) -> (Mix, Vec<Transition>) {
    let swarm = Mix::for_shape(seed, shape);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&mix(seed, 0x5c21).to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &key),
    );
    // A swarm run reports a node that refuses to start after injected damage as a typed outcome.
    let mut state = ClusterModel::new(shape, seed).with_refusals();
    if swarm.store {
        state = state.with_store();
    }
    // `len` may come from a command line: reserve a bounded amount, let the vector grow.
    let mut out = Vec::with_capacity(len.min(1024));
    // Draws that a switched-off family rejects are retried; the bound only guards the loop.
    let mut draws = 0usize;
    while out.len() < len && draws < len.saturating_mul(20) {
        draws += 1;
        let Ok(tree) = state.transition_strategy().new_tree(&mut runner) else {
            continue;
        };
        let t = tree.current();
        if swarm.allows(&t) && state.allows(&t) {
            state.apply(&t);
            out.push(t);
        }
    }
    (swarm, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    const THREE: ClusterShape = ClusterShape {
        nodes: 3,
        ..ClusterShape::SINGLE_NODE
    };

    #[test]
    fn the_new_families_leave_a_single_node_alone() {
        for seed in 0..50 {
            let one = Mix::for_shape(seed, ClusterShape::SINGLE_NODE);
            assert_eq!(
                (one.partitions, one.clogs, one.pauses),
                (false, false, false)
            );
            let three = Mix::for_shape(seed, THREE);
            // The older families draw as they did.
            let old = |m: Mix| {
                (
                    m.crashes,
                    m.power_loss,
                    m.crash_during,
                    m.disk_full,
                    m.network,
                )
            };
            assert_eq!(old(one), old(three));
        }
    }

    #[test]
    fn a_swarm_tiers_and_breaks_the_store_for_some_seeds() {
        let mixes: Vec<Mix> = (0..40).map(|seed| Mix::for_shape(seed, THREE)).collect();
        assert!(mixes.iter().any(|m| m.store) && mixes.iter().any(|m| !m.store));
        let scripts: Vec<Transition> = (0..40)
            .filter(|&seed| Mix::for_shape(seed, THREE).store)
            .flat_map(|seed| script(seed, THREE, 200).1)
            .collect();
        assert!(scripts
            .iter()
            .any(|t| matches!(t, Transition::StoreOutage { .. })));
        let without: Vec<Transition> = (0..40)
            .filter(|&seed| !Mix::for_shape(seed, THREE).store)
            .flat_map(|seed| script(seed, THREE, 200).1)
            .collect();
        assert!(!without
            .iter()
            .any(|t| matches!(t, Transition::StoreOutage { .. })));
    }

    #[test]
    fn a_cluster_swarm_partitions_clogs_and_pauses() {
        let scripts: Vec<Transition> = (0..20)
            .flat_map(|seed| script(seed, THREE, 200).1)
            .collect();
        let has = |f: fn(&Transition) -> bool| scripts.iter().any(f);
        assert!(has(|t| matches!(t, Transition::Partition { .. })));
        assert!(has(|t| matches!(t, Transition::Clog { .. })));
        assert!(has(|t| matches!(t, Transition::HealNet { .. })));
        assert!(has(|t| matches!(t, Transition::Pause { .. })));
    }
}
