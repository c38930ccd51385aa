//! Train/validation split by article, and a seeded streaming shuffle.
//!
//! The split is a pure function of (seed, article id): a 64-bit FNV-1a hash decides,
//! so no article can land on both sides, the decision needs no memory, and the same
//! seed gives the same split on every machine and every run.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitRule {
    pub seed: u64,
    /// Fraction of articles held out, in [0, 1].
    pub validation_fraction: f64,
}

impl SplitRule {
    pub fn split_of(&self, article_id: &str) -> Split {
        let hash = fnv1a(self.seed, article_id.as_bytes());
        // Top 53 bits → uniform in [0, 1).
        let unit = (hash >> 11) as f64 / (1u64 << 53) as f64;
        if unit < self.validation_fraction {
            Split::Validation
        } else {
            Split::Train
        }
    }
}

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Final avalanche (splitmix64) so that nearby ids spread out.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// A shuffle over a stream with bounded memory: items enter a buffer of
/// `capacity`, and each output is a uniformly chosen buffered item. With a capacity
/// at least the stream length this is a full uniform shuffle.
pub struct ShuffleBuffer<T> {
    buffer: Vec<T>,
    capacity: usize,
    rng: StdRng,
}

impl<T> ShuffleBuffer<T> {
    pub fn new(capacity: usize, seed: u64) -> Self {
        Self {
            buffer: Vec::with_capacity(capacity.min(1 << 20)),
            capacity: capacity.max(1),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Adds an item; returns one when the buffer is full.
    pub fn push(&mut self, item: T) -> Option<T> {
        self.buffer.push(item);
        if self.buffer.len() > self.capacity {
            Some(self.pop_random())
        } else {
            None
        }
    }

    /// Empties the buffer in random order (end of stream).
    pub fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.buffer.len());
        while !self.buffer.is_empty() {
            out.push(self.pop_random());
        }
        out
    }

    fn pop_random(&mut self) -> T {
        let i = self.rng.random_range(0..self.buffer.len());
        self.buffer.swap_remove(i)
    }
}

/// Shuffles a whole stream through a buffer of `capacity`.
pub fn shuffled<T>(items: impl IntoIterator<Item = T>, capacity: usize, seed: u64) -> Vec<T> {
    let mut buffer = ShuffleBuffer::new(capacity, seed);
    let mut out: Vec<T> = items
        .into_iter()
        .filter_map(|item| buffer.push(item))
        .collect();
    out.extend(buffer.drain());
    out
}
