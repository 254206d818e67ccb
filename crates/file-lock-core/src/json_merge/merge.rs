//! The three-way merge: base edited into mine here and into theirs elsewhere.
//!
//! Invariant: the outcome does not depend on which side runs it (every tie
//! broken by content); a conflict keeps the base value unless a side is
//! favored.

// Fx hashing: ids and keys come from the documents being merged, not from an
// attacker, and SipHash was a third of the merge time on 5000 roles.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use serde_json::{Map, Value};

use super::keyed::*;
use super::types::*;

/// Three-way merge of `base` with the two edited versions `mine` and `theirs`.
/// `array_key` names the id member of the elements of id arrays (`"id"`).
pub fn merge(base: &Value, mine: &Value, theirs: &Value, array_key: &str) -> MergeOutcome {
    run_merge(base, mine, theirs, array_key, None)
}

/// `merge`, with every conflict decided for `favor`: its value (its deletion,
/// its order of an id array) wins where both sides changed the same thing;
/// everything else merges as with `merge`. `conflicts` still lists what was
/// decided that way. For "keep mine" / "keep theirs" after a conflict.
pub fn merge_favoring(
    base: &Value,
    mine: &Value,
    theirs: &Value,
    array_key: &str,
    favor: Side,
) -> MergeOutcome {
    run_merge(base, mine, theirs, array_key, Some(favor))
}

pub(super) fn run_merge(
    base: &Value,
    mine: &Value,
    theirs: &Value,
    array_key: &str,
    favor: Option<Side>,
) -> MergeOutcome {
    let mut merger = Merger {
        array_key,
        favor,
        path: Vec::new(),
        conflicts: Vec::new(),
    };
    let merged = merger
        .value(Some(base), Some(mine), Some(theirs))
        .expect("with all three present, the merge keeps a value");
    MergeOutcome {
        merged,
        conflicts: merger.conflicts,
    }
}

pub(super) struct Merger<'k> {
    pub(super) array_key: &'k str,
    /// The side that wins conflicts; `None`: base (or a content pick) stays.
    pub(super) favor: Option<Side>,
    /// Where the value being merged sits; only rendered into a conflict.
    pub(super) path: Vec<PathSegment>,
    pub(super) conflicts: Vec<Conflict>,
}

impl Merger<'_> {
    /// Merges one value; `None` (in and out) is an absent value: a key or
    /// element that was deleted or never there.
    fn value(
        &mut self,
        base: Option<&Value>,
        mine: Option<&Value>,
        theirs: Option<&Value>,
    ) -> Option<Value> {
        if mine == theirs {
            mine.cloned()
        } else if mine == base {
            theirs.cloned()
        } else if theirs == base {
            mine.cloned()
        } else {
            self.both_changed(base, mine, theirs)
        }
    }

    /// Both sides changed the value, and not the same way.
    fn both_changed(
        &mut self,
        base: Option<&Value>,
        mine: Option<&Value>,
        theirs: Option<&Value>,
    ) -> Option<Value> {
        let (Some(m), Some(t)) = (mine, theirs) else {
            // One side deleted; the other changed it (had it kept it as in
            // base, the deletion would have won above).
            let deleted_by = if mine.is_none() {
                Side::Mine
            } else {
                Side::Theirs
            };
            self.conflict(
                ConflictKind::DeleteModify,
                base,
                mine,
                theirs,
                Some(deleted_by),
            );
            return self.favored(mine, theirs).unwrap_or(base).cloned();
        };
        let array_key = self.array_key;
        match (base, m, t) {
            // Absent in base: both added it, so merge against an empty object.
            (None | Some(Value::Object(_)), Value::Object(m), Value::Object(t)) => {
                let empty = Map::new();
                let b = base.and_then(Value::as_object).unwrap_or(&empty);
                let merged = self.keyed(&members(b), &members(m), &members(t));
                return Some(Value::Object(
                    merged.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                ));
            }
            (None | Some(Value::Array(_)), Value::Array(m), Value::Array(t)) => {
                let b = base
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice);
                if let (Some(b), Some(m), Some(t)) = (
                    elements(b, array_key),
                    elements(m, array_key),
                    elements(t, array_key),
                ) {
                    let merged = self.keyed(&b, &m, &t);
                    return Some(Value::Array(merged.into_iter().map(|(_, v)| v).collect()));
                }
            }
            _ => {}
        }
        let kind = match base {
            Some(_) => ConflictKind::BothModified,
            None => ConflictKind::BothAdded,
        };
        self.conflict(kind, base, mine, theirs, None);
        match (self.favored(mine, theirs), base) {
            (Some(favored), _) => favored.cloned(),
            (None, Some(b)) => Some(b.clone()),
            // Both added: the same pick whichever side runs the merge.
            (None, None) if canonical_json(m) <= canonical_json(t) => Some(m.clone()),
            (None, None) => Some(t.clone()),
        }
    }

    /// The favored side's value (`Some(None)`: it deleted), if a side is favored.
    fn favored<'v>(
        &self,
        mine: Option<&'v Value>,
        theirs: Option<&'v Value>,
    ) -> Option<Option<&'v Value>> {
        self.favor.map(|side| match side {
            Side::Mine => mine,
            Side::Theirs => theirs,
        })
    }

    /// Merges an object or an id array member by member, then orders the
    /// result with `merge_order`.
    fn keyed<K: Key>(
        &mut self,
        base: &Keyed<'_, K>,
        mine: &Keyed<'_, K>,
        theirs: &Keyed<'_, K>,
    ) -> Vec<(K, Value)> {
        let start = self.conflicts.len();
        // How many conflicts each member added, to put them in result order below.
        let mut spans: Vec<(K, usize)> = Vec::new();
        let mut merged: HashMap<K, Value> = HashMap::with_capacity_and_hasher(
            mine.order.len().max(theirs.order.len()),
            Default::default(),
        );
        let mut seen: HashSet<&K> =
            HashSet::with_capacity_and_hasher(base.order.len(), Default::default());
        for key in base.order.iter().chain(&mine.order).chain(&theirs.order) {
            if !seen.insert(key) {
                continue;
            }
            let (b, m, t) = (base.get(key), mine.get(key), theirs.get(key));
            let before = self.conflicts.len();
            // The cheap cases inline: most members of a big document are one of them.
            let value = if m == t {
                m.cloned()
            } else if m == b {
                t.cloned()
            } else if t == b {
                m.cloned()
            } else {
                self.path.push(key.segment(self.array_key));
                let value = self.both_changed(b, m, t);
                self.path.pop();
                value
            };
            if self.conflicts.len() > before {
                spans.push((key.clone(), self.conflicts.len() - before));
            }
            if let Some(value) = value {
                merged.insert(key.clone(), value);
            }
        }

        let (order, clash) =
            merge_order(base, mine, theirs, self.favor, |k| merged.contains_key(k));
        let order_conflict = (K::ORDERED && clash).then(|| Conflict {
            path: JsonPath(self.path.clone()),
            kind: ConflictKind::Order,
            base: Some(base.keys_value()),
            mine: Some(mine.keys_value()),
            theirs: Some(theirs.keys_value()),
            deleted_by: None,
        });
        // Members were merged in base-mine-theirs order, which is not symmetric;
        // the result order is, so conflicts follow it.
        if spans.len() > 1 || order_conflict.is_some() {
            let rank: HashMap<&K, usize> = order.iter().enumerate().map(|(i, k)| (k, i)).collect();
            let mut tail = self.conflicts.split_off(start).into_iter();
            let mut chunks: Vec<(usize, Vec<Conflict>)> = spans
                .iter()
                .map(|(key, n)| {
                    let rank = rank.get(key).copied().unwrap_or(usize::MAX);
                    (rank, tail.by_ref().take(*n).collect())
                })
                .collect();
            chunks.sort_by_key(|(rank, _)| *rank);
            self.conflicts.extend(order_conflict);
            for (_, chunk) in chunks {
                self.conflicts.extend(chunk);
            }
        }
        order
            .into_iter()
            .filter_map(|k| merged.remove(&k).map(|v| (k, v)))
            .collect()
    }

    fn conflict(
        &mut self,
        kind: ConflictKind,
        base: Option<&Value>,
        mine: Option<&Value>,
        theirs: Option<&Value>,
        deleted_by: Option<Side>,
    ) {
        self.conflicts.push(Conflict {
            path: JsonPath(self.path.clone()),
            kind,
            base: base.cloned(),
            mine: mine.cloned(),
            theirs: theirs.cloned(),
            deleted_by,
        });
    }
}

/// The order of the merged members (`survives`: the key is in the result) and
/// whether both sides reordered differently.
///
/// A side reordered if the members all three versions have are in another
/// relative order there than in base. The primary list is the side that
/// reordered, if only one did; the list that sorts first, if neither did or
/// both did the same way; if they reordered differently (a clash), base, or
/// the favored side's list if a side is favored. The result is the primary
/// list without the members that did not survive, plus the other lists'
/// members (for a clash without favor both sides', the list that sorts first
/// first), each inserted right after its nearest preceding member in its own
/// list that is already in the result, or at the start if none is. Every
/// choice depends on content (or on the favored side) only, so swapping the
/// sides gives the same order.
pub(super) fn merge_order<K: Key>(
    base: &Keyed<'_, K>,
    mine: &Keyed<'_, K>,
    theirs: &Keyed<'_, K>,
    favor: Option<Side>,
    survives: impl Fn(&K) -> bool,
) -> (Vec<K>, bool) {
    let in_all = |k: &K| base.contains(k) && mine.contains(k) && theirs.contains(k);
    let (common_base, common_mine, common_theirs) =
        (only(base, in_all), only(mine, in_all), only(theirs, in_all));
    let mine_moved = common_mine != common_base;
    let theirs_moved = common_theirs != common_base;
    let (first, second) = if mine.order <= theirs.order {
        (mine, theirs)
    } else {
        (theirs, mine)
    };
    let (primary, others, clash) = match (mine_moved, theirs_moved, favor) {
        (true, false, _) => (mine, [Some(theirs), None], false),
        (false, true, _) => (theirs, [Some(mine), None], false),
        (true, true, _) if common_mine == common_theirs => (first, [Some(second), None], false),
        (true, true, None) => (base, [Some(first), Some(second)], true),
        (true, true, Some(Side::Mine)) => (mine, [Some(theirs), None], true),
        (true, true, Some(Side::Theirs)) => (theirs, [Some(mine), None], true),
        (false, false, _) => (first, [Some(second), None], false),
    };

    let mut list = Splice::default();
    for key in primary.order.iter().filter(|k| survives(k)) {
        list.insert_after(list.last, key);
    }
    for other in others.into_iter().flatten() {
        // Every surviving member before this one in `other` is already in
        // the list by now (from the primary list or inserted earlier here).
        let mut previous = None;
        for key in other.order.iter().filter(|k| survives(k)) {
            previous = Some(match list.index.get(key) {
                Some(&at) => at,
                None => list.insert_after(previous, key),
            });
        }
    }
    (list.into_keys(), clash)
}

/// A singly linked list over an arena: O(1) insertion right after any member,
/// so merging big arrays stays linear.
pub(super) struct Splice<'a, K> {
    pub(super) keys: Vec<&'a K>,
    pub(super) next: Vec<Option<usize>>,
    pub(super) head: Option<usize>,
    pub(super) last: Option<usize>,
    pub(super) index: HashMap<&'a K, usize>,
}

impl<K> Default for Splice<'_, K> {
    fn default() -> Self {
        Splice {
            keys: Vec::new(),
            next: Vec::new(),
            head: None,
            last: None,
            index: HashMap::default(),
        }
    }
}

impl<'a, K: Key> Splice<'a, K> {
    /// Inserts `key` after the member at `after` (at the start for `None`).
    fn insert_after(&mut self, after: Option<usize>, key: &'a K) -> usize {
        let at = self.keys.len();
        self.keys.push(key);
        self.index.insert(key, at);
        match after {
            None => {
                self.next.push(self.head);
                self.head = Some(at);
            }
            Some(before) => {
                self.next.push(self.next[before]);
                self.next[before] = Some(at);
            }
        }
        if self.next[at].is_none() {
            self.last = Some(at);
        }
        at
    }

    fn into_keys(self) -> Vec<K> {
        let mut out = Vec::with_capacity(self.keys.len());
        let mut at = self.head;
        while let Some(i) = at {
            out.push(self.keys[i].clone());
            at = self.next[i];
        }
        out
    }
}
