use serde_json::Value;

use super::plan;

// What merge.js `fromChunks` does, on UTF-16 offsets as JS has them.
fn build(units: &[u16], node: &Value) -> Value {
    let text = |from: &Value, to: &Value| {
        String::from_utf16(&units[from.as_u64().unwrap() as usize..to.as_u64().unwrap() as usize])
            .unwrap()
    };
    if let Some([from, to]) = node.as_array().map(Vec::as_slice) {
        return serde_json::from_str(&text(from, to)).unwrap();
    }
    if let Some(items) = node.get("a") {
        let mut out = Vec::new();
        for item in items.as_array().unwrap() {
            match item.as_array().map(Vec::as_slice) {
                Some([from, to, count]) => {
                    let part: Vec<Value> =
                        serde_json::from_str(&format!("[{}]", text(from, to))).unwrap();
                    assert_eq!(part.len() as u64, count.as_u64().unwrap());
                    out.extend(part);
                }
                _ => out.push(build(units, item)),
            }
        }
        return Value::Array(out);
    }
    let mut out = serde_json::Map::new();
    for item in node["o"].as_array().unwrap() {
        match item.as_array().map(Vec::as_slice) {
            Some([Value::String(key), child]) => {
                let key: String = serde_json::from_str(key).unwrap();
                out.insert(key, build(units, child));
            }
            Some([from, to]) => {
                let part: serde_json::Map<String, Value> =
                    serde_json::from_str(&format!("{{{}}}", text(from, to))).unwrap();
                for (key, value) in part {
                    out.insert(key, value);
                }
            }
            _ => panic!("bad item {item}"),
        }
    }
    Value::Object(out)
}

fn check(text: &str, max: usize) -> Value {
    let plan: Value = serde_json::from_str(&plan(text, max).expect("a plan")).unwrap();
    let units: Vec<u16> = text.encode_utf16().collect();
    let whole: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        build(&units, &plan),
        whole,
        "plan {plan} of {text} (max {max})"
    );
    plan
}

#[test]
fn small_texts_are_one_piece_and_big_containers_are_cut() {
    assert_eq!(check(r#"{"a":1}"#, 100), serde_json::json!([0, 7]));
    assert_eq!(check(" 5 ", 1), serde_json::json!([1, 2]));
    let plan = check(r#"{"v":1,"roles":[{"id":"a"},{"id":"b"},{"id":"c"}]}"#, 24);
    assert_eq!(
        plan,
        serde_json::json!({"o": [[1, 6], ["\"roles\"", {"a": [[16, 37, 2], [38, 48, 1]]}]]})
    );
}

#[test]
fn offsets_count_utf16_units_whitespace_escapes_and_empty_containers() {
    let text = "{\n  \"naïve 🔑\": [\"é\", \"🔑🔑\", \"\\u00e9\", \"a\\\"b\\\\\", [], {}, -1.5e3, true, null],\n  \"x\": {\"y\": [1, 2, 3], \"é\": {\"k\": \"日本語\"}}\n}\n";
    for max in [1, 2, 5, 10, 20, 40, 1000] {
        check(text, max);
    }
    check("[]", 1);
    check("{}", 1);
    check("[[[[[1]]]]]", 1);
}

#[test]
fn duplicate_keys_resolve_as_json_parse_does() {
    // The last one wins, in the same piece or a later one.
    for max in [1, 8, 30] {
        check(
            r#"{"a":1,"b":[1,2,3,4,5,6],"a":[7,8,9,10,11,12],"a":3}"#,
            max,
        );
    }
}

#[test]
fn text_that_is_not_json_gets_no_plan() {
    for bad in [
        "",
        "{",
        "[1,",
        "[1 2]",
        r#"{"a" 1}"#,
        "[1]]",
        r#"{"a":1,}"#,
        "]",
        r#""open"#,
    ] {
        assert!(
            plan(bad, 1).is_none() || serde_json::from_str::<Value>(bad).is_ok(),
            "{bad}"
        );
    }
}

#[test]
fn random_documents_rebuild_exactly() {
    let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15_u64);
    fn value(next: &mut dyn FnMut(u64) -> u64, depth: u32) -> Value {
        let strings = ["", "a", "é", "🔑", "日本", "\"q\"", "back\\slash", "\n"];
        match if depth > 4 { next(4) } else { next(7) } {
            0 => Value::from(next(1000) as f64 / 7.0),
            1 => Value::from(strings[next(strings.len() as u64) as usize]),
            2 => Value::Bool(next(2) == 0),
            3 => Value::Null,
            4 | 5 => Value::Array((0..next(8)).map(|_| value(next, depth + 1)).collect()),
            _ => Value::Object(
                (0..next(6))
                    .map(|_| {
                        (
                            strings[next(8) as usize].to_string() + &next(9).to_string(),
                            value(next, depth + 1),
                        )
                    })
                    .collect(),
            ),
        }
    }
    for round in 0..2000 {
        let doc = value(&mut next, 0);
        let text = if round % 2 == 0 {
            serde_json::to_string(&doc)
        } else {
            serde_json::to_string_pretty(&doc)
        }
        .unwrap();
        let max = [1, 3, 16, 64, 256][round % 5];
        check(&text, max);
    }
}
