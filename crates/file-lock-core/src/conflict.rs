//! Three-way merge and diff of JSON documents: a document edited here meets a
//! change another process made on disk (issue "JsonDocument": external changes).
//!
//! Invariants:
//! - The outcome does not depend on which side runs the merge: `merge(b, m, t)`
//!   and `merge(b, t, m)` give the same `merged` and the same conflicts, in the
//!   same order, with mine and theirs swapped. Every tie is broken by content
//!   (canonical JSON text, id lists), never by a side's name.
//! - A conflict never picks a side: `merged` keeps the base value there; for
//!   `both-added`, which has no base, the value whose canonical JSON sorts first.
//!   Only `merge_favoring`, asked to, decides conflicts for one side; it
//!   reports the same conflicts, and favoring mine with the sides swapped is
//!   favoring theirs.
//! - Arrays whose elements are all objects with a string or number id under the
//!   array key, no id twice, are merged element by element by id; any other
//!   array, and every scalar, is one atomic value.
//! - Paths name elements of id arrays by id (`[id="admin"]`), never by index, so
//!   one path means the same element in base, mine, theirs and the result.
//! - Object key order: keys keep the order they have in the documents (the
//!   crate enables serde_json's `preserve_order`); keys added on one side land
//!   after their nearest preceding key, by the same rules as id arrays.
//! - Texts in, text out (`merge_texts`, `diff_texts`, what JS calls): every
//!   text `JSON.stringify` writes is accepted, lone UTF-16 surrogates included
//!   (`"\ud83d"` is legal JSON but no Rust string can hold it): they come back
//!   exactly as they went in. Values nest at most `MAX_DEPTH` levels, checked
//!   on the text before anything recursive runs; deep values are walked on a
//!   thread of our own whose stack fits `MAX_DEPTH` levels, never on the
//!   caller's (the JS thread, of whatever size the embedder gave it).
//! - Numbers in texts are taken as JavaScript takes them: `1.0`, `1e2` and
//!   `100.0` are the integers `1` and `100`, as `JSON.stringify` writes them, so
//!   a file another program wrote merges with values this side stringified
//!   without a number seen as changed.

// Fx hashing: ids and keys come from the documents being merged, not from an
// attacker, and SipHash was a third of the merge time on 5000 roles.
mod recipe;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::fmt::{self, Write as _};
use std::hash::Hash;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// The result of a three-way merge; clean iff `conflicts` is empty.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergeOutcome {
    /// The merged value; at each conflict it holds the base value (see
    /// [`ConflictKind`]), or with `merge_favoring` the favored side's.
    pub merged: Value,
    /// In document order of the merged value, a container's own `order`
    /// conflict before those inside it (with `merge_favoring`, conflicts at
    /// what the favored side deleted come last in their container).
    pub conflicts: Vec<Conflict>,
}

impl MergeOutcome {
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty()
    }
}

/// One place where both sides changed the same thing differently. `base`,
/// `mine` and `theirs` are omitted from the JSON form where the value is
/// absent on that side (the key or element does not exist there).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub path: JsonPath,
    pub kind: ConflictKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mine: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theirs: Option<Value>,
    /// For `delete-modify`: the side that deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<Side>,
}

impl Conflict {
    /// The same conflict as seen by the other side.
    pub fn mirrored(&self) -> Conflict {
        Conflict {
            path: self.path.clone(),
            kind: self.kind,
            base: self.base.clone(),
            mine: self.theirs.clone(),
            theirs: self.mine.clone(),
            deleted_by: self.deleted_by.map(Side::other),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// Both sides changed the value differently; `merged` keeps the base value.
    BothModified,
    /// One side deleted what the other changed; `merged` keeps the base value.
    DeleteModify,
    /// Absent in base, added with different values on both sides (and not two
    /// objects or id arrays, which merge member by member); `merged` holds the
    /// value whose canonical JSON sorts first.
    BothAdded,
    /// Both sides reordered the elements of an id array differently. `base`,
    /// `mine` and `theirs` are the id lists of the three versions; `merged`
    /// keeps the base order, or the favored side's (the other changes to the
    /// array still merge).
    Order,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Mine,
    Theirs,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Mine => Side::Theirs,
            Side::Theirs => Side::Mine,
        }
    }
}

/// One difference between two versions. `before` is omitted from the JSON form
/// for `added`, `after` for `removed`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub path: JsonPath,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    /// A different value, not two objects or two id arrays (those are
    /// reported member by member).
    Changed,
    /// The elements both versions of an id array have are in a different
    /// relative order; `before` and `after` are the two id lists. Reported at
    /// the array's path, before the changes of its elements.
    Reordered,
}

/// An element id: the canonical JSON text of the id value (`"admin"`, `7`), so a
/// string id never equals a number id and ids sort deterministically.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    fn of(value: &Value) -> Option<Id> {
        match value {
            Value::String(s) => Some(Id(quote(s))),
            Value::Number(n) => Some(Id(n.to_string())),
            _ => None,
        }
    }

    /// The id as JSON text: `"admin"` for a string id, `7` for a number.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).expect("an id is the JSON text of a string or number")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    /// A member of an object.
    Key(String),
    /// The element of an id array whose `key` member is `id`.
    Id { key: String, id: Id },
}

/// Where a value sits in a document. Displayed (and serialized) JSONPath-like:
/// `$` is the root, `.name` an identifier-like key, `["odd key"]` any other key,
/// `[id="admin"]` / `[id=7]` the element of an id array with that id (the
/// array key's name in place of `id`, quoted if not identifier-like).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonPath(pub Vec<PathSegment>);

impl JsonPath {
    /// The value at this path in `root`, if there is one.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.0
            .iter()
            .try_fold(root, |value, segment| match segment {
                PathSegment::Key(key) => value.as_object()?.get(key),
                PathSegment::Id { key, id } => value
                    .as_array()?
                    .iter()
                    .find(|element| element.get(key).and_then(Id::of).as_ref() == Some(id)),
            })
    }

    /// Whether `self` is `prefix` or inside it.
    pub fn starts_with(&self, prefix: &JsonPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('$')?;
        for segment in &self.0 {
            match segment {
                PathSegment::Key(key) if is_identifier(key) => write!(f, ".{key}")?,
                PathSegment::Key(key) => write!(f, "[{}]", quote(key))?,
                PathSegment::Id { key, id } if is_identifier(key) => write!(f, "[{key}={}]", id.0)?,
                PathSegment::Id { key, id } => write!(f, "[{}={}]", quote(key), id.0)?,
            }
        }
        Ok(())
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

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

fn run_merge(
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

/// What changed from `before` to `after`, in document order: objects and id
/// arrays member by member, anything else as one `changed` value.
pub fn diff(before: &Value, after: &Value, array_key: &str) -> Vec<Change> {
    let mut differ = Differ {
        array_key,
        path: Vec::new(),
        changes: Vec::new(),
    };
    differ.value(before, after);
    differ.changes
}

// The texts JS hands over, parsed and walked safely: texts.rs.
mod texts;
pub use texts::{
    diff_texts, merge_texts, merge_texts_sharing, TextError, TextErrorKind, MAX_DEPTH,
};

/// JSON text with object keys sorted at every level: equal values give equal
/// text whatever their key order, so it can break ties between the sides.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quote(key));
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// What identifies a member across versions: an object key or an element id.
trait Key: Clone + Eq + Hash + Ord {
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
struct Keyed<'v, K> {
    order: Vec<K>,
    values: HashMap<K, &'v Value>,
}

impl<'v, K: Key> Keyed<'v, K> {
    fn get(&self, key: &K) -> Option<&'v Value> {
        self.values.get(key).copied()
    }

    fn contains(&self, key: &K) -> bool {
        self.values.contains_key(key)
    }

    fn keys_value(&self) -> Value {
        Value::Array(self.order.iter().map(K::to_value).collect())
    }
}

fn members(map: &Map<String, Value>) -> Keyed<'_, &str> {
    Keyed {
        order: map.keys().map(String::as_str).collect(),
        values: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
    }
}

/// `None` unless every element is an object with a string or number under
/// `array_key` and no id repeats: only then can elements be matched by id.
fn elements<'v>(items: &'v [Value], array_key: &str) -> Option<Keyed<'v, Id>> {
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

struct Merger<'k> {
    array_key: &'k str,
    /// The side that wins conflicts; `None`: base (or a content pick) stays.
    favor: Option<Side>,
    /// Where the value being merged sits; only rendered into a conflict.
    path: Vec<PathSegment>,
    conflicts: Vec<Conflict>,
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
fn merge_order<K: Key>(
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

/// The keys of `side` that pass `keep`, in order.
fn only<'s, K: Key>(side: &'s Keyed<'_, K>, keep: impl Fn(&K) -> bool) -> Vec<&'s K> {
    side.order.iter().filter(|k| keep(k)).collect()
}

/// A singly linked list over an arena: O(1) insertion right after any member,
/// so merging big arrays stays linear.
struct Splice<'a, K> {
    keys: Vec<&'a K>,
    next: Vec<Option<usize>>,
    head: Option<usize>,
    last: Option<usize>,
    index: HashMap<&'a K, usize>,
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

struct Differ<'k> {
    array_key: &'k str,
    path: Vec<PathSegment>,
    changes: Vec<Change>,
}

impl Differ<'_> {
    fn value(&mut self, before: &Value, after: &Value) {
        if before == after {
            return;
        }
        match (before, after) {
            (Value::Object(b), Value::Object(a)) => self.keyed(&members(b), &members(a)),
            (Value::Array(b), Value::Array(a)) => {
                match (elements(b, self.array_key), elements(a, self.array_key)) {
                    (Some(b), Some(a)) => self.keyed(&b, &a),
                    _ => self.record(ChangeKind::Changed, Some(before), Some(after)),
                }
            }
            _ => self.record(ChangeKind::Changed, Some(before), Some(after)),
        }
    }

    fn keyed<K: Key>(&mut self, before: &Keyed<'_, K>, after: &Keyed<'_, K>) {
        if K::ORDERED {
            let common_before = only(before, |k| after.contains(k));
            if common_before != only(after, |k| before.contains(k)) {
                self.changes.push(Change {
                    path: JsonPath(self.path.clone()),
                    kind: ChangeKind::Reordered,
                    before: Some(before.keys_value()),
                    after: Some(after.keys_value()),
                });
            }
        }
        for key in &before.order {
            let (b, a) = (before.get(key), after.get(key));
            if b == a {
                continue;
            }
            self.path.push(key.segment(self.array_key));
            match (b, a) {
                (Some(b), Some(a)) => self.value(b, a),
                _ => self.record(ChangeKind::Removed, b, None),
            }
            self.path.pop();
        }
        for key in after.order.iter().filter(|k| !before.contains(k)) {
            self.path.push(key.segment(self.array_key));
            self.record(ChangeKind::Added, None, after.get(key));
            self.path.pop();
        }
    }

    fn record(&mut self, kind: ChangeKind, before: Option<&Value>, after: Option<&Value>) {
        self.changes.push(Change {
            path: JsonPath(self.path.clone()),
            kind,
            before: before.cloned(),
            after: after.cloned(),
        });
    }
}

#[cfg(test)]
mod tests;
