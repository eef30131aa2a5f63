//! The leaf cache's bound and eviction order.

use crate::cache::Lru;

#[test]
fn holds_at_most_its_capacity() {
    let mut lru = Lru::new(3);
    for i in 0..10 {
        lru.insert(i, i * 10);
        assert!(lru.len() <= 3);
    }
    assert_eq!(lru.len(), 3);
    assert_eq!(lru.get(&9), Some(&90));
    assert_eq!(lru.get(&6), None);
}

#[test]
fn evicts_the_least_recently_used() {
    let mut lru = Lru::new(3);
    lru.insert("a", 1);
    lru.insert("b", 2);
    lru.insert("c", 3);
    // "a" is the oldest entry, but the most recently used.
    assert_eq!(lru.get(&"a"), Some(&1));
    lru.insert("d", 4);
    assert_eq!(lru.get(&"b"), None);
    assert_eq!(lru.get(&"a"), Some(&1));
    assert_eq!(lru.get(&"c"), Some(&3));
    assert_eq!(lru.get(&"d"), Some(&4));
}

#[test]
fn replacing_a_value_does_not_evict() {
    let mut lru = Lru::new(2);
    lru.insert("a", 1);
    lru.insert("b", 2);
    lru.insert("a", 10);
    assert_eq!(lru.len(), 2);
    assert_eq!(lru.get(&"a"), Some(&10));
    assert_eq!(lru.get(&"b"), Some(&2));
}

#[test]
fn a_zero_capacity_still_holds_one() {
    let mut lru = Lru::new(0);
    lru.insert("a", 1);
    assert_eq!(lru.get(&"a"), Some(&1));
    lru.insert("b", 2);
    assert_eq!(lru.len(), 1);
    assert_eq!(lru.get(&"b"), Some(&2));
}
