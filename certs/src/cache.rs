//! A bounded least-recently-used map, for the minter's leaves.
//!
//! The bound matters because the names come from the job: a build that contacts thousands of
//! hosts, or a hostile step making up names, must not grow Warden's memory without limit.
//! Least-recently-used rather than oldest-first, so the hosts a job keeps talking to (its
//! registry, its git server) stay cached however many one-off names pass through. Recency is a
//! counter, and a `BTreeMap` from counter to key finds the stalest entry in O(log n).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// A map that holds at most `capacity` entries, evicting the least recently used.
#[derive(Debug)]
pub(crate) struct Lru<K, V> {
    capacity: usize,
    clock: u64,
    entries: HashMap<K, (u64, V)>,
    by_use: BTreeMap<u64, K>,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty map that holds at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Lru {
            capacity: capacity.max(1),
            clock: 0,
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    /// The value for `key`, which becomes the most recently used.
    pub(crate) fn get(&mut self, key: &K) -> Option<&V> {
        let now = self.tick();
        let (used, value) = self.entries.get_mut(key)?;
        self.by_use.remove(used);
        self.by_use.insert(now, key.clone());
        *used = now;
        Some(value)
    }

    /// Stores `value` for `key` as the most recently used, first evicting the least recently
    /// used entry if the map is full.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        let now = self.tick();
        if let Some((used, _)) = self.entries.remove(&key) {
            self.by_use.remove(&used);
        } else if self.entries.len() >= self.capacity
            && let Some((_, stalest)) = self.by_use.pop_first()
        {
            self.entries.remove(&stalest);
        }
        self.by_use.insert(now, key.clone());
        self.entries.insert(key, (now, value));
    }

    /// How many entries are held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn tick(&mut self) -> u64 {
        // A u64 counted once per lookup does not wrap in the life of a process.
        self.clock += 1;
        self.clock
    }
}
