//! Tests of the three-way merge and diff (`json_merge/`): hand-made cases,
//! symmetry, random documents, deep values, texts as JS writes them.

use serde_json::{json, Map, Value};

use super::keyed::elements;
use super::*;
use crate::test_rng::XorShiftStar as Rng;

/// Merges both ways round and checks the outcome is symmetric.
fn merged(base: Value, mine: Value, theirs: Value) -> MergeOutcome {
    merged_by(base, mine, theirs, "id")
}

fn merged_by(base: Value, mine: Value, theirs: Value, key: &str) -> MergeOutcome {
    let outcome = merge(&base, &mine, &theirs, key);
    let swapped = merge(&base, &theirs, &mine, key);
    assert_eq!(outcome.merged, swapped.merged, "merged depends on the side");
    let mirrored: Vec<_> = swapped.conflicts.iter().map(Conflict::mirrored).collect();
    assert_eq!(outcome.conflicts, mirrored, "conflicts depend on the side");
    outcome
}

/// The JSON form of the conflicts, as JS sees it.
fn conflicts(outcome: &MergeOutcome) -> Value {
    serde_json::to_value(&outcome.conflicts).unwrap()
}

fn roles() -> Value {
    json!({
        "version": 1,
        "roles": [
            { "id": "admin", "name": "Admin", "permissions": ["read", "write", "delete"] },
            { "id": "editor", "name": "Editor", "permissions": ["read", "write"] },
            { "id": "viewer", "name": "Viewer", "permissions": ["read"] }
        ]
    })
}

/// `roles()` with `edit` applied to it.
fn edited(edit: impl FnOnce(&mut Value)) -> Value {
    let mut value = roles();
    edit(&mut value);
    value
}

/// The role list of a `roles()` document, to edit.
fn roles_mut(doc: &mut Value) -> &mut Vec<Value> {
    doc["roles"].as_array_mut().unwrap()
}

/// Adds a guest role (no permissions) after the others.
fn add_guest(doc: &mut Value) {
    roles_mut(doc).push(json!({ "id": "guest", "name": "Guest", "permissions": [] }));
}

fn role<'v>(doc: &'v mut Value, id: &str) -> &'v mut Value {
    roles_mut(doc).iter_mut().find(|r| r["id"] == id).unwrap()
}

fn remove_role(doc: &mut Value, id: &str) {
    roles_mut(doc).retain(|r| r["id"] != id);
}

fn ids(doc: &Value) -> Vec<&str> {
    doc["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[test]
fn one_side_unchanged_takes_the_other() {
    let theirs = edited(|d| d["version"] = json!(2));
    let outcome = merged(roles(), roles(), theirs.clone());
    assert_eq!(outcome.merged, theirs);
    assert!(outcome.is_clean());
}

#[test]
fn identical_edits_are_not_conflicts() {
    let both = edited(|d| {
        role(d, "admin")["name"] = json!("Administrator");
        d.as_object_mut().unwrap().remove("version");
        remove_role(d, "viewer");
    });
    let outcome = merged(roles(), both.clone(), both.clone());
    assert_eq!(outcome.merged, both);
    assert!(outcome.is_clean());

    // Same edit inside otherwise different edits.
    let mine = edited(|d| {
        role(d, "admin")["name"] = json!("Administrator");
        remove_role(d, "viewer");
    });
    let theirs = edited(|d| {
        role(d, "admin")["name"] = json!("Administrator");
        remove_role(d, "viewer");
        d["version"] = json!(2);
    });
    let outcome = merged(roles(), mine, theirs.clone());
    assert_eq!(outcome.merged, theirs);
    assert!(outcome.is_clean());
}

#[test]
fn disjoint_field_edits_of_one_role_merge() {
    let mine = edited(|d| role(d, "editor")["name"] = json!("Writer"));
    let theirs = edited(|d| {
        role(d, "editor")["permissions"] = json!(["read", "write", "publish"]);
        d["version"] = json!(2);
    });
    let outcome = merged(roles(), mine, theirs);
    assert_eq!(
        outcome.merged,
        edited(|d| {
            role(d, "editor")["name"] = json!("Writer");
            role(d, "editor")["permissions"] = json!(["read", "write", "publish"]);
            d["version"] = json!(2);
        })
    );
    assert!(outcome.is_clean());
}

#[test]
fn adds_of_different_ids_merge_in_place() {
    let mine = edited(|d| {
        let roles = d["roles"].as_array_mut().unwrap();
        roles.insert(
            1,
            json!({ "id": "owner", "name": "Owner", "permissions": [] }),
        );
    });
    let theirs = edited(|d| {
        let roles = d["roles"].as_array_mut().unwrap();
        roles.push(json!({ "id": "guest", "name": "Guest", "permissions": [] }));
        roles.insert(
            0,
            json!({ "id": "root", "name": "Root", "permissions": [] }),
        );
    });
    let outcome = merged(roles(), mine, theirs);
    assert!(outcome.is_clean());
    assert_eq!(
        ids(&outcome.merged),
        ["root", "admin", "owner", "editor", "viewer", "guest"]
    );
    assert_eq!(
        outcome.merged["roles"][2],
        json!({ "id": "owner", "name": "Owner", "permissions": [] })
    );
}

#[test]
fn reorder_on_one_side_keeps_edits_of_the_other() {
    let mine = edited(|d| d["roles"].as_array_mut().unwrap().reverse());
    let theirs = edited(|d| {
        role(d, "admin")["name"] = json!("Administrator");
        remove_role(d, "editor");
        add_guest(d);
    });
    let outcome = merged(roles(), mine, theirs);
    assert!(outcome.is_clean());
    // Mine's order (reversed), the guest after its predecessor in theirs (viewer).
    assert_eq!(ids(&outcome.merged), ["viewer", "guest", "admin"]);
    assert_eq!(outcome.merged["roles"][2]["name"], "Administrator");
}

#[test]
fn same_field_changed_differently_keeps_base() {
    let mine = edited(|d| {
        role(d, "admin")["name"] = json!("Administrator");
        d["version"] = json!(2);
    });
    let theirs = edited(|d| role(d, "admin")["name"] = json!("Superuser"));
    let outcome = merged(roles(), mine, theirs);
    assert_eq!(outcome.merged, edited(|d| d["version"] = json!(2)));
    assert_eq!(
        conflicts(&outcome),
        json!([{
            "path": "$.roles[id=\"admin\"].name",
            "kind": "both-modified",
            "base": "Admin",
            "mine": "Administrator",
            "theirs": "Superuser"
        }])
    );
}

#[test]
fn delete_against_modify_keeps_base_and_names_the_deleter() {
    let mine = edited(|d| remove_role(d, "editor"));
    let theirs = edited(|d| role(d, "editor")["name"] = json!("Writer"));
    let outcome = merged(roles(), mine.clone(), theirs.clone());
    assert_eq!(outcome.merged, roles());
    let expected = json!([{
        "path": "$.roles[id=\"editor\"]",
        "kind": "delete-modify",
        "base": { "id": "editor", "name": "Editor", "permissions": ["read", "write"] },
        "theirs": { "id": "editor", "name": "Writer", "permissions": ["read", "write"] },
        "deletedBy": "mine"
    }]);
    assert_eq!(conflicts(&outcome), expected);

    // The other direction, on an object member.
    let mine = edited(|d| d["version"] = json!(2));
    let theirs = edited(|d| {
        d.as_object_mut().unwrap().remove("version");
    });
    let outcome = merged(roles(), mine, theirs);
    assert_eq!(outcome.merged, roles());
    assert_eq!(
        conflicts(&outcome),
        json!([{
            "path": "$.version",
            "kind": "delete-modify",
            "base": 1,
            "mine": 2,
            "deletedBy": "theirs"
        }])
    );
}

#[test]
fn delete_against_unchanged_deletes() {
    let mine = edited(|d| remove_role(d, "editor"));
    let theirs = edited(|d| role(d, "admin")["name"] = json!("Administrator"));
    let outcome = merged(roles(), mine, theirs);
    assert!(outcome.is_clean());
    assert_eq!(ids(&outcome.merged), ["admin", "viewer"]);
    assert_eq!(outcome.merged["roles"][0]["name"], "Administrator");
}

#[test]
fn nested_objects_merge_member_by_member() {
    let base = json!({ "ui": { "theme": { "dark": false, "accent": "blue" }, "lang": "en" } });
    let mine = json!({ "ui": { "theme": { "dark": true, "accent": "blue" }, "lang": "en" } });
    let theirs =
        json!({ "ui": { "theme": { "dark": false, "accent": "red", "font": 12 }, "lang": "de" } });
    let outcome = merged(base, mine, theirs);
    assert!(outcome.is_clean());
    assert_eq!(
        outcome.merged,
        json!({ "ui": { "theme": { "dark": true, "accent": "red", "font": 12 }, "lang": "de" } })
    );
}

#[test]
fn plain_arrays_are_atomic() {
    let base = json!({ "tags": ["a", "b"], "matrix": [[1], [2]] });
    // One side changes: clean.
    let outcome = merged(
        base.clone(),
        json!({ "tags": ["a", "b", "c"], "matrix": [[1], [2]] }),
        base.clone(),
    );
    assert!(outcome.is_clean());
    assert_eq!(outcome.merged["tags"], json!(["a", "b", "c"]));
    // Both change differently, even "compatibly": conflict, base kept.
    let outcome = merged(
        base.clone(),
        json!({ "tags": ["a", "b", "c"], "matrix": [[1], [2]] }),
        json!({ "tags": ["z", "a", "b"], "matrix": [[1], [2]] }),
    );
    assert_eq!(outcome.merged, base);
    assert_eq!(
        conflicts(&outcome),
        json!([{
            "path": "$.tags",
            "kind": "both-modified",
            "base": ["a", "b"],
            "mine": ["a", "b", "c"],
            "theirs": ["z", "a", "b"]
        }])
    );
}

#[test]
fn arrays_with_repeated_or_missing_ids_are_atomic() {
    let base = json!([{ "id": 1, "v": 0 }, { "id": 2, "v": 0 }]);
    let dup = json!([{ "id": 1, "v": 0 }, { "id": 1, "v": 1 }]);
    let missing = json!([{ "id": 1, "v": 0 }, { "v": 2 }]);
    let outcome = merged(base.clone(), dup, missing);
    assert_eq!(outcome.merged, base);
    assert_eq!(outcome.conflicts[0].kind, ConflictKind::BothModified);
    assert_eq!(outcome.conflicts[0].path.to_string(), "$");
}

#[test]
fn both_added_same_id_merges_fields_and_conflicts_on_differences() {
    let mine = edited(|d| {
        d["roles"].as_array_mut().unwrap().push(
            json!({ "id": "guest", "name": "Visitor", "permissions": ["read"], "color": "grey" }),
        )
    });
    let theirs = edited(|d| {
        d["roles"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "id": "guest", "name": "Guest", "permissions": ["read"] }))
    });
    let outcome = merged(roles(), mine, theirs);
    assert_eq!(
        outcome.merged["roles"][3],
        // "Guest" < "Visitor": the symmetric pick.
        json!({ "id": "guest", "name": "Guest", "permissions": ["read"], "color": "grey" })
    );
    assert_eq!(
        conflicts(&outcome),
        json!([{
            "path": "$.roles[id=\"guest\"].name",
            "kind": "both-added",
            "mine": "Visitor",
            "theirs": "Guest"
        }])
    );

    let outcome = merged(json!({}), json!({ "n": 2 }), json!({ "n": 10 }));
    assert_eq!(outcome.merged, json!({ "n": 10 })); // "10" < "2" as text
    assert_eq!(
        conflicts(&outcome),
        json!([{ "path": "$.n", "kind": "both-added", "mine": 2, "theirs": 10 }])
    );
}

#[test]
fn both_added_id_arrays_merge_by_id() {
    let outcome = merged(
        json!({}),
        json!({ "list": [{ "id": 1 }, { "id": 2 }] }),
        json!({ "list": [{ "id": 1 }, { "id": 3 }] }),
    );
    assert!(outcome.is_clean());
    assert_eq!(
        outcome.merged,
        json!({ "list": [{ "id": 1 }, { "id": 3 }, { "id": 2 }] })
    );
}

#[test]
fn both_reordering_differently_is_an_order_conflict() {
    let mine = edited(|d| {
        d["roles"].as_array_mut().unwrap().swap(0, 1);
        role(d, "viewer")["name"] = json!("Reader");
    });
    let theirs = edited(|d| {
        d["roles"].as_array_mut().unwrap().swap(1, 2);
        add_guest(d);
    });
    let outcome = merged(roles(), mine, theirs);
    // Base order, with the edit and the addition still merged (the guest
    // after its predecessor in theirs, the editor).
    assert_eq!(ids(&outcome.merged), ["admin", "editor", "guest", "viewer"]);
    assert_eq!(outcome.merged["roles"][3]["name"], "Reader");
    assert_eq!(
        conflicts(&outcome),
        json!([{
            "path": "$.roles",
            "kind": "order",
            "base": ["admin", "editor", "viewer"],
            "mine": ["editor", "admin", "viewer"],
            "theirs": ["admin", "viewer", "editor", "guest"]
        }])
    );
}

#[test]
fn order_clash_places_both_sides_additions_symmetrically() {
    let base = json!([{ "id": "a" }, { "id": "b" }, { "id": "c" }]);
    // Both reorder differently and both add right after "a".
    let mine = json!([{ "id": "a" }, { "id": "x" }, { "id": "c" }, { "id": "b" }]);
    let theirs = json!([{ "id": "a" }, { "id": "y" }, { "id": "b" }, { "id": "c" }]);
    let theirs = json!([theirs[2], theirs[0], theirs[1], theirs[3]]);
    let outcome = merged(base, mine, theirs);
    // Base order. Mine's id list sorts first (it starts with "a", theirs with
    // "b"), so mine's x is inserted first, then theirs' y right after a.
    assert_eq!(
        outcome.merged,
        json!([{ "id": "a" }, { "id": "y" }, { "id": "x" }, { "id": "b" }, { "id": "c" }])
    );
    assert_eq!(outcome.conflicts.len(), 1);
    assert_eq!(outcome.conflicts[0].kind, ConflictKind::Order);
}

#[test]
fn favoring_a_side_decides_each_conflict_for_it() {
    let mine = edited(|d| {
        d["roles"].as_array_mut().unwrap().swap(0, 1); // [editor, admin, viewer]
        role(d, "admin")["name"] = json!("Administrator");
        d.as_object_mut().unwrap().remove("version");
    });
    let theirs = edited(|d| {
        d["roles"].as_array_mut().unwrap().reverse(); // [viewer, editor, admin]
        role(d, "admin")["name"] = json!("Superuser");
        role(d, "viewer")["permissions"] = json!([]);
        d["version"] = json!(2);
    });
    let plain = merged(roles(), mine.clone(), theirs.clone());
    let kinds = |o: &MergeOutcome| {
        let mut kinds: Vec<_> = o
            .conflicts
            .iter()
            .map(|c| (c.path.to_string(), c.kind))
            .collect();
        kinds.sort_by(|a, b| a.0.cmp(&b.0));
        kinds
    };
    assert_eq!(
        kinds(&plain),
        [
            ("$.roles".to_owned(), ConflictKind::Order),
            (
                r#"$.roles[id="admin"].name"#.to_owned(),
                ConflictKind::BothModified
            ),
            ("$.version".to_owned(), ConflictKind::DeleteModify),
        ]
    );
    let admin = |name: &str| json!({ "id": "admin", "name": name, "permissions": ["read", "write", "delete"] });
    let editor = json!({ "id": "editor", "name": "Editor", "permissions": ["read", "write"] });
    let viewer = json!({ "id": "viewer", "name": "Viewer", "permissions": [] });

    let for_mine = merge_favoring(&roles(), &mine, &theirs, "id", Side::Mine);
    assert_eq!(kinds(&for_mine), kinds(&plain));
    assert_eq!(
        for_mine.merged,
        json!({ "roles": [editor, admin("Administrator"), viewer] })
    );
    let for_theirs = merge_favoring(&roles(), &mine, &theirs, "id", Side::Theirs);
    assert_eq!(kinds(&for_theirs), kinds(&plain));
    assert_eq!(
        for_theirs.merged,
        json!({ "version": 2, "roles": [viewer, editor, admin("Superuser")] })
    );
    // Favoring mine with the sides swapped is favoring theirs.
    let swapped = merge_favoring(&roles(), &theirs, &mine, "id", Side::Mine);
    assert_eq!(swapped.merged, for_theirs.merged);
}

#[test]
fn both_reordering_the_same_way_is_clean() {
    let mine = edited(|d| {
        d["roles"].as_array_mut().unwrap().reverse();
        role(d, "viewer")["name"] = json!("Reader");
    });
    let theirs = edited(|d| {
        d["roles"].as_array_mut().unwrap().reverse();
        role(d, "admin")["name"] = json!("Root");
    });
    let outcome = merged(roles(), mine, theirs);
    assert!(outcome.is_clean());
    assert_eq!(ids(&outcome.merged), ["viewer", "editor", "admin"]);
    assert_eq!(outcome.merged["roles"][0]["name"], "Reader");
    assert_eq!(outcome.merged["roles"][2]["name"], "Root");
}

#[test]
fn additions_go_after_their_nearest_surviving_predecessor() {
    let base = json!([{ "id": "a" }, { "id": "b" }, { "id": "c" }]);
    // Theirs adds x after b, which mine deleted: x goes after a.
    let outcome = merged(
        base.clone(),
        json!([{ "id": "a" }, { "id": "c" }]),
        json!([{ "id": "a" }, { "id": "b" }, { "id": "x" }, { "id": "y" }, { "id": "c" }]),
    );
    assert!(outcome.is_clean());
    assert_eq!(
        outcome.merged,
        json!([{ "id": "a" }, { "id": "x" }, { "id": "y" }, { "id": "c" }])
    );
    // No surviving predecessor: at the start.
    let outcome = merged(
        base,
        json!([{ "id": "b" }, { "id": "c" }]),
        json!([{ "id": "x" }, { "id": "a" }, { "id": "b" }, { "id": "c" }]),
    );
    assert_eq!(
        outcome.merged,
        json!([{ "id": "x" }, { "id": "b" }, { "id": "c" }])
    );
}

#[test]
fn paths_quote_odd_keys_and_use_the_array_key() {
    let base = json!({ "odd key": { "list": [{ "_k": 7, "v": 1 }] } });
    let mine = json!({ "odd key": { "list": [{ "_k": 7, "v": 2 }] } });
    let theirs = json!({ "odd key": { "list": [{ "_k": 7, "v": 3 }] } });
    let outcome = merged_by(base.clone(), mine.clone(), theirs.clone(), "_k");
    assert_eq!(
        outcome.conflicts[0].path.to_string(),
        "$[\"odd key\"].list[_k=7].v"
    );
    let outcome = merged_by(
        json!({ "l": [{ "my key": "x\"y", "v": 1 }] }),
        json!({ "l": [{ "my key": "x\"y", "v": 2 }] }),
        json!({ "l": [{ "my key": "x\"y", "v": 3 }] }),
        "my key",
    );
    assert_eq!(
        outcome.conflicts[0].path.to_string(),
        r#"$.l["my key"="x\"y"].v"#
    );
    // With another array key, `id` arrays are plain arrays.
    let outcome = merged_by(
        json!([{ "id": 1, "v": 1 }]),
        json!([{ "id": 1, "v": 2 }]),
        json!([{ "id": 1, "w": 2 }]),
        "key",
    );
    assert_eq!(outcome.conflicts[0].path.to_string(), "$");
    // String and number ids are different ids.
    let outcome = merged(json!([]), json!([{ "id": 1 }]), json!([{ "id": "1" }]));
    assert!(outcome.is_clean());
    assert_eq!(outcome.merged.as_array().unwrap().len(), 2);
}

#[test]
fn conflicts_come_in_document_order() {
    let base = json!([{ "id": "a", "v": 0 }, { "id": "b", "v": 0 }, { "id": "c", "v": 0 }]);
    let mine = json!([{ "id": "c", "v": 1 }, { "id": "b", "v": 1 }, { "id": "a", "v": 1 }]);
    let theirs = json!([{ "id": "c", "v": 2 }, { "id": "b", "v": 2 }, { "id": "a", "v": 2 }]);
    let outcome = merged(base, mine, theirs);
    let paths: Vec<_> = outcome
        .conflicts
        .iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(
        paths,
        [r#"$[id="c"].v"#, r#"$[id="b"].v"#, r#"$[id="a"].v"#]
    );
}

#[test]
fn type_changes_are_atomic() {
    let outcome = merged(
        json!({ "a": { "x": 1 } }),
        json!({ "a": [1] }),
        json!({ "a": { "x": 2 } }),
    );
    assert_eq!(outcome.merged, json!({ "a": { "x": 1 } }));
    assert_eq!(outcome.conflicts[0].kind, ConflictKind::BothModified);
    // Base not an object: two objects do not merge member by member.
    let outcome = merged(json!(1), json!({ "x": 1 }), json!({ "y": 1 }));
    assert_eq!(outcome.merged, json!(1));
    assert_eq!(outcome.conflicts[0].path.to_string(), "$");
}

#[test]
fn diff_reports_members_and_elements() {
    let after = edited(|d| {
        role(d, "admin")["name"] = json!("Administrator");
        remove_role(d, "viewer");
        add_guest(d);
        d["version"] = json!(2);
        d["odd key"] = json!(true);
    });
    let changes = serde_json::to_value(diff(&roles(), &after, "id")).unwrap();
    assert_eq!(
        changes,
        json!([
            { "path": "$.version", "kind": "changed", "before": 1, "after": 2 },
            { "path": "$.roles[id=\"admin\"].name", "kind": "changed", "before": "Admin", "after": "Administrator" },
            { "path": "$.roles[id=\"viewer\"]", "kind": "removed",
              "before": { "id": "viewer", "name": "Viewer", "permissions": ["read"] } },
            { "path": "$.roles[id=\"guest\"]", "kind": "added",
              "after": { "id": "guest", "name": "Guest", "permissions": [] } },
            { "path": "$[\"odd key\"]", "kind": "added", "after": true }
        ])
    );
    assert!(diff(&roles(), &roles(), "id").is_empty());
}

#[test]
fn diff_reports_a_reorder_once_at_the_array() {
    let after = edited(|d| {
        d["roles"].as_array_mut().unwrap().swap(0, 2);
        role(d, "editor")["permissions"] = json!(["read"]);
    });
    let changes = serde_json::to_value(diff(&roles(), &after, "id")).unwrap();
    assert_eq!(
        changes,
        json!([
            { "path": "$.roles", "kind": "reordered",
              "before": ["admin", "editor", "viewer"], "after": ["viewer", "editor", "admin"] },
            { "path": "$.roles[id=\"editor\"].permissions", "kind": "changed",
              "before": ["read", "write"], "after": ["read"] }
        ])
    );
    // Additions and removals alone are no reorder.
    let after = json!([{ "id": 0 }, { "id": 1 }, { "id": 3 }]);
    let changes = diff(
        &json!([{ "id": 1 }, { "id": 2 }, { "id": 3 }]),
        &after,
        "id",
    );
    let kinds: Vec<_> = changes
        .iter()
        .map(|c| (c.path.to_string(), c.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("$[id=2]".to_owned(), ChangeKind::Removed),
            ("$[id=0]".to_owned(), ChangeKind::Added)
        ]
    );
    // Different types, plain arrays: one change.
    let changes = diff(&json!({ "a": [1, 2] }), &json!({ "a": [2, 1] }), "id");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, ChangeKind::Changed);
    let changes = diff(&json!(1), &json!("1"), "id");
    assert_eq!(changes[0].path.to_string(), "$");
}

#[test]
fn lookup_follows_paths() {
    let doc = roles();
    let path = &diff(
        &doc,
        &edited(|d| role(d, "editor")["name"] = json!("W")),
        "id",
    )[0]
    .path;
    assert_eq!(path.lookup(&doc), Some(&json!("Editor")));
    assert_eq!(JsonPath::default().lookup(&doc), Some(&doc));
}

#[test]
fn canonical_json_sorts_keys() {
    let value: Value = serde_json::from_str(r#"{"b":[1,{"d":null,"c":"x"}],"a":1.5}"#).unwrap();
    assert_eq!(
        canonical_json(&value),
        r#"{"a":1.5,"b":[1,{"c":"x","d":null}]}"#
    );
}

// Small key and id spaces, so both sides often touch the same things.
const KEYS: [&str; 6] = ["a", "b", "c", "name", "odd key", "perm"];

fn random_id(rng: &mut Rng) -> Value {
    match rng.index(7) {
        0 => json!("admin"),
        1 => json!("editor"),
        2 => json!("viewer"),
        3 => json!("guest"),
        n => json!(n),
    }
}

fn scalar(rng: &mut Rng) -> Value {
    match rng.index(7) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.index(3)),
        3 => json!(1.5),
        4 => json!("x"),
        5 => json!("y"),
        _ => json!(""),
    }
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    if depth == 0 {
        return scalar(rng);
    }
    match rng.index(6) {
        0 | 1 => scalar(rng),
        2 => random_object(rng, depth - 1),
        3 | 4 => id_array(rng, depth - 1),
        _ => Value::Array((0..rng.index(3)).map(|_| scalar(rng)).collect()),
    }
}

fn random_object(rng: &mut Rng, depth: usize) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.index(4) {
        map.insert(rng.pick(&KEYS).to_string(), random_value(rng, depth));
    }
    Value::Object(map)
}

fn element(rng: &mut Rng, depth: usize, id: Value) -> Value {
    let mut element = random_object(rng, depth);
    element["id"] = id;
    element
}

fn id_array(rng: &mut Rng, depth: usize) -> Value {
    let mut items: Vec<Value> = Vec::new();
    for _ in 0..rng.index(7) {
        let id = random_id(rng);
        if !items.iter().any(|e| e["id"] == id) {
            items.push(element(rng, depth, id));
        }
    }
    Value::Array(items)
}

/// One random edit somewhere in `value`; `in_element` protects the id of an
/// id-array element (changing it is a remove plus an add, tested anyway
/// through whole-value replacements).
fn random_edit(rng: &mut Rng, value: &mut Value, in_element: bool) {
    if rng.chance(8) {
        *value = random_value(rng, 2);
        return;
    }
    let id_array = value
        .as_array()
        .is_some_and(|items| !items.is_empty() && elements(items, "id").is_some());
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map
                .keys()
                .filter(|k| !(in_element && *k == "id"))
                .cloned()
                .collect();
            match rng.index(4) {
                0 | 1 if !keys.is_empty() => {
                    let key = rng.pick(&keys).clone();
                    random_edit(rng, map.get_mut(&key).unwrap(), false);
                }
                2 if !keys.is_empty() => {
                    map.remove(rng.pick(&keys).as_str());
                }
                _ => {
                    map.insert(rng.pick(&KEYS).to_string(), random_value(rng, 2));
                }
            }
        }
        Value::Array(items) if id_array => match rng.index(5) {
            0 | 1 => {
                let i = rng.index(items.len());
                random_edit(rng, &mut items[i], true);
            }
            2 => {
                items.remove(rng.index(items.len()));
            }
            3 => {
                let id = random_id(rng);
                if !items.iter().any(|e| e["id"] == id) {
                    let at = rng.index(items.len() + 1);
                    items.insert(at, element(rng, 1, id));
                }
            }
            _ if rng.chance(30) => items.reverse(),
            _ => {
                let moved = items.remove(rng.index(items.len()));
                items.insert(rng.index(items.len() + 1), moved);
            }
        },
        Value::Array(items) => {
            if items.is_empty() || rng.chance(50) {
                items.push(scalar(rng));
            } else {
                items.pop();
            }
        }
        _ => *value = scalar(rng),
    }
}

/// Up to `max` edits; half of them on the roles array, so that both sides
/// often add, remove, move and edit roles at once.
fn random_edits(rng: &mut Rng, base: &Value, max: usize) -> Value {
    let mut value = base.clone();
    for _ in 0..rng.index(max + 1) {
        match value.get_mut("roles") {
            Some(roles) if rng.chance(50) => random_edit(rng, roles, false),
            _ => random_edit(rng, &mut value, false),
        }
    }
    value
}

fn overlaps(a: &JsonPath, b: &JsonPath) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Every change of `side` that the other side did not touch at, above or
/// below its path is in the merged value as on `side`.
fn check_untouched_changes_reflected(base: &Value, side: &Value, other: &Value, merged: &Value) {
    let others = diff(base, other, "id");
    for change in diff(base, side, "id") {
        if others.iter().any(|o| overlaps(&o.path, &change.path)) {
            continue;
        }
        assert_eq!(
            change.path.lookup(merged),
            change.path.lookup(side),
            "change at {} lost",
            change.path
        );
    }
}

fn sorted(conflicts: &[Conflict]) -> Vec<Conflict> {
    let mut sorted = conflicts.to_vec();
    sorted.sort_by_cached_key(|c| (c.path.to_string(), format!("{:?}", c.kind)));
    sorted
}

/// `merge_favoring` reports the conflicts of `merge`, puts the favored
/// side's value at each, is `merge` when that is clean, and is symmetric.
fn check_favoring(base: &Value, mine: &Value, theirs: &Value, plain: &MergeOutcome, context: &str) {
    for favor in [Side::Mine, Side::Theirs] {
        let outcome = merge_favoring(base, mine, theirs, "id", favor);
        let swapped = merge_favoring(base, theirs, mine, "id", favor.other());
        assert_eq!(outcome.merged, swapped.merged, "{favor:?} {context}");
        let mirrored: Vec<_> = swapped.conflicts.iter().map(Conflict::mirrored).collect();
        assert_eq!(outcome.conflicts, mirrored, "{favor:?} {context}");
        assert_eq!(
            sorted(&outcome.conflicts),
            sorted(&plain.conflicts),
            "{favor:?} {context}"
        );
        if plain.is_clean() {
            assert_eq!(outcome.merged, plain.merged, "{context}");
        }
        for conflict in outcome
            .conflicts
            .iter()
            .filter(|c| c.kind != ConflictKind::Order)
        {
            let expected = match favor {
                Side::Mine => conflict.mine.as_ref(),
                Side::Theirs => conflict.theirs.as_ref(),
            };
            assert_eq!(
                conflict.path.lookup(&outcome.merged),
                expected,
                "{favor:?} {context}"
            );
        }
        check_untouched_changes_reflected(base, mine, theirs, &outcome.merged);
        check_untouched_changes_reflected(base, theirs, mine, &outcome.merged);
    }
}

#[test]
fn property_random_documents_and_edits() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut clean, mut conflicted) = (0, 0);
    let mut kinds: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for case in 0..4000 {
        let mut base = random_object(&mut rng, 3);
        base["roles"] = id_array(&mut rng, 2);
        let mut mine = random_edits(&mut rng, &base, 3);
        let mut theirs = if rng.chance(15) {
            random_edits(&mut rng, &mine, 1)
        } else {
            random_edits(&mut rng, &base, 3)
        };
        // Reorders on both sides are what the order rules are about.
        for side in [&mut mine, &mut theirs] {
            if let Some(Value::Array(roles)) = side.get_mut("roles") {
                if roles.len() > 1 && rng.chance(30) {
                    let moved = roles.remove(rng.index(roles.len()));
                    roles.insert(rng.index(roles.len() + 1), moved);
                }
            }
        }
        let context = format!("case {case}\nbase {base}\nmine {mine}\ntheirs {theirs}");

        for x in [&mine, &theirs] {
            let same = merge(&base, x, x, "id");
            assert_eq!((&same.merged, same.is_clean()), (x, true), "{context}");
            let only_theirs = merge(&base, &base, x, "id");
            assert_eq!(
                (&only_theirs.merged, only_theirs.is_clean()),
                (x, true),
                "{context}"
            );
            let only_mine = merge(&base, x, &base, "id");
            assert_eq!(
                (&only_mine.merged, only_mine.is_clean()),
                (x, true),
                "{context}"
            );
        }

        let outcome = merge(&base, &mine, &theirs, "id");
        let swapped = merge(&base, &theirs, &mine, "id");
        assert_eq!(outcome.merged, swapped.merged, "{context}");
        let mirrored: Vec<_> = swapped.conflicts.iter().map(Conflict::mirrored).collect();
        assert_eq!(outcome.conflicts, mirrored, "{context}");

        for conflict in &outcome.conflicts {
            *kinds.entry(format!("{:?}", conflict.kind)).or_default() += 1;
            let expected = match conflict.kind {
                ConflictKind::Order => continue,
                ConflictKind::BothAdded => {
                    let (m, t) = (conflict.mine.as_ref(), conflict.theirs.as_ref());
                    let (m, t) = (m.unwrap(), t.unwrap());
                    Some(if canonical_json(m) <= canonical_json(t) {
                        m
                    } else {
                        t
                    })
                }
                _ => conflict.base.as_ref(),
            };
            assert_eq!(conflict.path.lookup(&outcome.merged), expected, "{context}");
        }
        check_untouched_changes_reflected(&base, &mine, &theirs, &outcome.merged);
        check_untouched_changes_reflected(&base, &theirs, &mine, &outcome.merged);
        check_favoring(&base, &mine, &theirs, &outcome, &context);

        if outcome.is_clean() {
            clean += 1;
        } else {
            conflicted += 1;
        }
    }
    // The generator exercises every outcome.
    eprintln!("clean {clean}, conflicted {conflicted}, conflicts {kinds:?}");
    assert!(
        clean > 1000 && conflicted > 300,
        "clean {clean}, conflicted {conflicted}"
    );
    assert!(
        kinds.len() == 4 && kinds.values().all(|&n| n > 15),
        "{kinds:?}"
    );
}
