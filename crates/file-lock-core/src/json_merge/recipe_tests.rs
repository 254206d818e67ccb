use serde_json::{json, Value};

use super::recipe;

// What JS does with a recipe (merge.js `fromRecipe`), here to check it.
fn apply(node: &Value, theirs: Option<&Value>) -> Value {
    if node == &Value::from(1) {
        return theirs.expect("`1` has a counterpart").clone();
    }
    let node = node.as_object().expect("a node is 1 or an object");
    if let Some(value) = node.get("v") {
        return value.clone();
    }
    if let Some(members) = node.get("o") {
        let mut out = serde_json::Map::new();
        for member in members.as_array().unwrap() {
            let key = member[0].as_str().unwrap();
            let was = theirs.and_then(|t| t.get(key));
            out.insert(key.into(), apply(&member[1], was));
        }
        return Value::Object(out);
    }
    let old = theirs.and_then(Value::as_array);
    let mut out = Vec::new();
    for item in node["a"].as_array().unwrap() {
        if let Some([start, end]) = item.as_array().map(Vec::as_slice) {
            let (start, end) = (
                start.as_u64().unwrap() as usize,
                end.as_u64().unwrap() as usize,
            );
            out.extend(old.unwrap()[start..end].iter().cloned());
        } else {
            let was = item
                .get("j")
                .map(|j| &old.unwrap()[j.as_u64().unwrap() as usize]);
            out.push(apply(item, was));
        }
    }
    Value::Array(out)
}

fn round_trip(merged: &Value, theirs: &Value) -> Value {
    let recipe = recipe(merged, theirs, "id");
    assert_eq!(&apply(&recipe, Some(theirs)), merged, "recipe {recipe}");
    recipe
}

#[test]
fn the_same_value_is_one() {
    let doc = json!({"roles": [{"id": "a"}]});
    assert_eq!(round_trip(&doc, &doc), json!(1));
}

#[test]
fn unchanged_elements_are_ranges_of_theirs_and_changed_ones_nodes() {
    let theirs = json!({"version": 1, "roles": [{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c", "n": 3}, {"id": "d", "n": 4}]});
    let merged = json!({"version": 2, "roles": [{"id": "a", "n": 1}, {"id": "b", "n": 20}, {"id": "c", "n": 3}, {"id": "d", "n": 4}, {"id": "e", "n": 5}]});
    assert_eq!(
        round_trip(&merged, &theirs),
        json!({"o": [["version", {"v": 2}], ["roles", {"a": [[0, 1], {"o": [["id", 1], ["n", {"v": 20}]], "j": 1}, [2, 4], {"v": {"id": "e", "n": 5}}]}]]})
    );
}

#[test]
fn elements_moved_by_a_reorder_are_still_shared() {
    let theirs = json!([{"id": 1, "x": [1, 2]}, {"id": 2, "x": [3]}, {"id": 3, "x": []}]);
    let merged = json!([{"id": 3, "x": []}, {"id": 1, "x": [1, 2]}, {"id": 2, "x": [3]}]);
    assert_eq!(round_trip(&merged, &theirs), json!({"a": [[2, 3], [0, 2]]}));
}

#[test]
fn other_kinds_and_duplicate_ids_are_told_whole_or_by_index() {
    let theirs =
        json!({"a": [1, 2, 3], "b": {"x": 1}, "c": [{"id": "z"}, {"id": "z", "k": 1}], "d": "s"});
    let merged = json!({"d": ["now", "an", "array"], "a": [1, 9, 3, 4], "b": [1], "c": [{"id": "z", "k": 1}, {"id": "z"}], "e": null});
    round_trip(&merged, &theirs);
    round_trip(&json!([]), &json!({}));
    round_trip(&json!({"k": {}}), &json!([{"k": 1}]));
}

// Random documents and random changes of them: the recipe always rebuilds the
// merged value exactly.
#[test]
fn random_documents_round_trip() {
    let mut next = crate::test_rng::below(0x2545_f491_4f6c_dd1d_u64);
    fn value(next: &mut dyn FnMut(u64) -> u64, depth: u32) -> Value {
        match if depth > 3 { next(3) } else { next(6) } {
            0 => Value::from(next(5)),
            1 => Value::from(format!("s{}", next(4))),
            2 => Value::Null,
            3 => Value::Array((0..next(5)).map(|_| value(next, depth + 1)).collect()),
            4 => Value::Array(
                (0..next(6))
                    .map(|_| json!({"id": format!("i{}", next(8)), "v": value(next, depth + 1)}))
                    .collect(),
            ),
            _ => Value::Object(
                (0..next(4))
                    .map(|_| (format!("k{}", next(5)), value(next, depth + 1)))
                    .collect(),
            ),
        }
    }
    fn mutate(next: &mut dyn FnMut(u64) -> u64, v: &Value, depth: u32) -> Value {
        if next(4) == 0 {
            return value(next, depth);
        }
        match v {
            Value::Array(items) => {
                let mut items: Vec<Value> =
                    items.iter().map(|x| mutate(next, x, depth + 1)).collect();
                if next(3) == 0 {
                    items.reverse();
                }
                if next(3) == 0 && !items.is_empty() {
                    items.remove(next(items.len() as u64) as usize);
                }
                Value::Array(items)
            }
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, x)| (k.clone(), mutate(next, x, depth + 1)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    for _ in 0..3000 {
        let theirs = value(&mut next, 0);
        let merged = mutate(&mut next, &theirs, 0);
        round_trip(&merged, &theirs);
    }
}
