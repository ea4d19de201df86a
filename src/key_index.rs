//! Positions in a list, found by a key the list's entries already hold.
//!
//! A `HashMap<String, usize>` beside a list of 150,000 pods holds a second copy of every name,
//! and a lookup by `(namespace, name)` had to build owned strings to ask. This index holds only
//! positions: the key is read from the list itself, when the index is built and when it is asked.

use std::hash::{BuildHasher, Hash, RandomState};

use hashbrown::HashTable;

#[derive(Debug, Clone, Default)]
pub struct KeyIndex {
    table: HashTable<usize>,
    state: RandomState,
}

impl KeyIndex {
    /// Indexes positions `0..len` by `key(i)`. Each key maps to its first position in list order,
    /// as a search from the start would find it.
    pub fn of<K: Hash + Eq>(len: usize, key: impl Fn(usize) -> K) -> KeyIndex {
        let state = RandomState::new();
        let mut table = HashTable::with_capacity(len);
        for i in 0..len {
            let k = key(i);
            let hash = state.hash_one(&k);
            if table.find(hash, |&j| key(j) == k).is_none() {
                table.insert_unique(hash, i, |&j| state.hash_one(key(j)));
            }
        }
        KeyIndex { table, state }
    }

    /// Adds position `i`, whose key `key(i)` the index does not hold yet.
    pub fn insert_new<K: Hash + Eq>(&mut self, i: usize, key: impl Fn(usize) -> K) {
        let state = &self.state;
        let hash = state.hash_one(key(i));
        debug_assert!(self.table.find(hash, |&j| key(j) == key(i)).is_none());
        self.table.insert_unique(hash, i, |&j| state.hash_one(key(j)));
    }

    /// The first position whose key is `k`; `key` must be the function the index was made with.
    pub fn get<K: Hash + Eq>(&self, k: &K, key: impl Fn(usize) -> K) -> Option<usize> {
        let hash = self.state.hash_one(k);
        self.table.find(hash, |&j| key(j) == *k).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::KeyIndex;

    #[test]
    fn finds_the_first_position_of_each_key_and_nothing_else() {
        let names = ["a", "b", "a", "c", "b"];
        let key = |i: usize| names[i];
        let index = KeyIndex::of(names.len(), key);
        assert_eq!(index.get(&"a", key), Some(0));
        assert_eq!(index.get(&"b", key), Some(1));
        assert_eq!(index.get(&"c", key), Some(3));
        assert_eq!(index.get(&"d", key), None);
    }

    #[test]
    fn positions_added_later_are_found() {
        let mut names = vec!["a"];
        let mut index = KeyIndex::of(names.len(), |i| names[i]);
        for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            names.push(name);
            index.insert_new(names.len() - 1, |i| names[i]);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index.get(name, |j| names[j]), Some(i));
        }
        assert_eq!(index.get(&"z", |j| names[j]), None);
    }

    #[test]
    fn pairs_are_keys_too() {
        let pods = [("prod", "web"), ("dev", "web"), ("prod", "db")];
        let key = |i: usize| pods[i];
        let index = KeyIndex::of(pods.len(), key);
        assert_eq!(index.get(&("dev", "web"), key), Some(1));
        assert_eq!(index.get(&("dev", "db"), key), None);
    }
}
