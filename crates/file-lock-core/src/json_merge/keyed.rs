//! Objects and id arrays seen the same way, as members under keys (a key
//! name, or an element's id), for the merge and the diff.
//!
//! Invariant: an array is keyed only when every element is an object with a
//! string or number id under the array key and no id repeats; otherwise it is
//! one atomic value.

// Fx hashing: ids and keys come from the documents being merged, not from an
// attacker, and SipHash was a third of the merge time on 5000 roles.
use rustc_hash::FxHashMap as HashMap;
use std::hash::Hash;

use serde_json::{Map, Value};

use super::types::*;

/// What identifies a member across versions: an object key or an element id.
pub(super) trait Key: Clone + Eq + Hash + Ord {
    /// Whether the order of members means something (and can conflict).
    const ORDERED: bool;
    fn segment(&self, array_key: &str) -> PathSegment;
    fn to_value(&self) -> Value;
}

impl Key for &str {
    const ORDERED: bool = false;

    fn segment(&self, _: &str) -> PathSegment {
        PathSegment::Key((*self).to_owned())
    }

    fn to_value(&self) -> Value {
        Value::String((*self).to_owned())
    }
}

impl Key for Id {
    const ORDERED: bool = true;

    fn segment(&self, array_key: &str) -> PathSegment {
        PathSegment::Id {
            key: array_key.to_owned(),
            id: self.clone(),
        }
    }

    fn to_value(&self) -> Value {
        Id::to_value(self)
    }
}

/// The members of an object or the elements of an id array: their keys in
/// document order and the value under each key.
pub(super) struct Keyed<'v, K> {
    pub(super) order: Vec<K>,
    pub(super) values: HashMap<K, &'v Value>,
}

impl<'v, K: Key> Keyed<'v, K> {
    pub(super) fn get(&self, key: &K) -> Option<&'v Value> {
        self.values.get(key).copied()
    }

    pub(super) fn contains(&self, key: &K) -> bool {
        self.values.contains_key(key)
    }

    pub(super) fn keys_value(&self) -> Value {
        Value::Array(self.order.iter().map(K::to_value).collect())
    }
}

pub(super) fn members(map: &Map<String, Value>) -> Keyed<'_, &str> {
    Keyed {
        order: map.keys().map(String::as_str).collect(),
        values: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
    }
}

/// `None` unless every element is an object with a string or number under
/// `array_key` and no id repeats: only then can elements be matched by id.
pub(super) fn elements<'v>(items: &'v [Value], array_key: &str) -> Option<Keyed<'v, Id>> {
    let mut order = Vec::with_capacity(items.len());
    let mut values = HashMap::with_capacity_and_hasher(items.len(), Default::default());
    for item in items {
        let id = Id::of(item.as_object()?.get(array_key)?)?;
        if values.insert(id.clone(), item).is_some() {
            return None;
        }
        order.push(id);
    }
    Some(Keyed { order, values })
}

/// The keys of `side` that pass `keep`, in order.
pub(super) fn only<'s, K: Key>(side: &'s Keyed<'_, K>, keep: impl Fn(&K) -> bool) -> Vec<&'s K> {
    side.order.iter().filter(|k| keep(k)).collect()
}
