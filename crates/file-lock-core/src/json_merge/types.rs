//! What a merge and a diff report: outcomes, conflicts, changes, and the
//! paths that name a place in base, mine, theirs and the result alike.
//!
//! Invariant: a path names an element of an id array by its id, never by
//! index; `canonical_json` gives equal values equal text whatever their key
//! order (ties between the sides are broken by it).

use std::fmt::{self, Write as _};
use std::hash::Hash;

use serde::{Serialize, Serializer};
use serde_json::Value;

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
    pub(super) fn of(value: &Value) -> Option<Id> {
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

    pub(super) fn to_value(&self) -> Value {
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

/// JSON text with object keys sorted at every level: equal values give equal
/// text whatever their key order, so it can break ties between the sides.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

pub(super) fn write_canonical(value: &Value, out: &mut String) {
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

pub(super) fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

pub(super) fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}
