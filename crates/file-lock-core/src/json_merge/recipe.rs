//! A merge's result told as what it shares with `theirs`: the version on
//! disk, which the caller (JS) already holds as a value. Building the merged
//! value from this recipe copies only the containers that differ and reuses
//! everything else, where parsing the merged text would build all of it again
//! (for a 50 MB document: a parse of 50 MB on the JS thread, and a second
//! copy in memory).
//!
//! Invariants:
//! - Applying the recipe to `theirs` gives exactly `merged`, whatever
//!   counterpart was chosen for an element: a choice only decides how much is
//!   shared (`apply` in the tests checks it on random documents).
//! - A recipe node is one of: `1`, the counterpart in theirs as it is;
//!   `{"v": value}`, this value; `{"o": [[key, node], …]}`, an object with
//!   these members in this order, each told against theirs' member of that
//!   key; `{"a": [item, …]}`, an array, an item being `[start, end]` (theirs'
//!   elements `start..end` as they are) or a node told against theirs' element
//!   `j` (`{"j": j, "o" | "a": …}`) or `{"v": value}`.
//! - Elements are matched by id (`array_key`, string or number, unique in
//!   theirs), else by index: an element moved by a reorder is still shared.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::Id;

/// `merged` as a recipe against `theirs` (see the module's invariants).
pub fn recipe(merged: &Value, theirs: &Value, array_key: &str) -> Value {
    if merged == theirs {
        return Value::from(1);
    }
    against(merged, theirs, array_key)
}

// `merged` (not equal to `theirs`) as a node against `theirs`.
fn against(merged: &Value, theirs: &Value, array_key: &str) -> Value {
    match (merged, theirs) {
        (Value::Object(mine), Value::Object(old)) => {
            let members = mine
                .iter()
                .map(|(key, value)| {
                    let node = match old.get(key) {
                        Some(was) if was == value => Value::from(1),
                        Some(was) => against(value, was, array_key),
                        None => raw(value),
                    };
                    Value::Array(vec![Value::String(key.clone()), node])
                })
                .collect();
            tagged("o", Value::Array(members))
        }
        (Value::Array(items), Value::Array(old)) => {
            let by_id = ids_of(old, array_key);
            let mut out = Vec::new();
            let mut run: Option<(usize, usize)> = None;
            for (i, value) in items.iter().enumerate() {
                let j = by_id
                    .get(&id_of(value, array_key))
                    .copied()
                    .or_else(|| (i < old.len()).then_some(i));
                match j {
                    Some(j) if &old[j] == value => {
                        run = match run {
                            Some((start, end)) if end == j => Some((start, j + 1)),
                            other => {
                                flush(&mut out, other);
                                Some((j, j + 1))
                            }
                        };
                        continue;
                    }
                    _ => flush(&mut out, run.take()),
                }
                out.push(match j {
                    Some(j) if same_kind(value, &old[j]) => {
                        let mut node = against(value, &old[j], array_key);
                        node.as_object_mut()
                            .expect("a node against a container is an object")
                            .insert("j".into(), Value::from(j));
                        node
                    }
                    _ => raw(value),
                });
            }
            flush(&mut out, run);
            tagged("a", Value::Array(out))
        }
        _ => raw(merged),
    }
}

fn flush(out: &mut Vec<Value>, run: Option<(usize, usize)>) {
    if let Some((start, end)) = run {
        out.push(Value::Array(vec![Value::from(start), Value::from(end)]));
    }
}

fn tagged(tag: &str, value: Value) -> Value {
    let mut node = Map::new();
    node.insert(tag.into(), value);
    Value::Object(node)
}

fn raw(value: &Value) -> Value {
    tagged("v", value.clone())
}

fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    )
}

// The id of an element: its `array_key` member, a string or a number.
fn id_of(value: &Value, array_key: &str) -> Option<Id> {
    value.as_object()?.get(array_key).and_then(Id::of)
}

// Where each id is in `items`; an id found twice names neither element.
fn ids_of(items: &[Value], array_key: &str) -> HashMap<Option<Id>, usize> {
    let mut at = HashMap::new();
    let mut twice = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(id) = id_of(item, array_key) {
            if at.insert(Some(id.clone()), i).is_some() {
                twice.push(id);
            }
        }
    }
    for id in twice {
        at.remove(&Some(id));
    }
    at
}

#[cfg(test)]
#[path = "recipe_tests.rs"]
mod tests;
