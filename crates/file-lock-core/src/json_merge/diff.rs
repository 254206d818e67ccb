//! What changed from one document to another, id arrays element by element.
//!
//! Invariant: paths are those of the merge (`types::JsonPath`), so a change and
//! a conflict at the same place name it alike.

use serde_json::Value;

use super::keyed::*;
use super::types::*;

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
