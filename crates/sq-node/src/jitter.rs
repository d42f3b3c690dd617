//! The node's own randomness: election jitter from the seed it was given (SplitMix64), so that
//! the same seed gives the same node and nothing reads thread-local or OS randomness.

/// A small, value-stable generator.
#[derive(Clone, Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Jitter {
        Jitter(seed ^ 0x005e_ed0f_e1ec_7104)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if n == 0 {
            0
        } else {
            z % n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn the_same_seed_gives_the_same_draws_and_seeds_differ() {
        let draws = |seed| {
            let mut j = Jitter::new(seed);
            (0..4).map(|_| j.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        assert!(draws(9).iter().all(|&d| d < 1000));
        assert_eq!(Jitter::new(1).below(0), 0);
    }
}
