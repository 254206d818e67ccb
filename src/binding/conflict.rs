//! `mergeJsonText` / `diffJsonText`: the three-way JSON merge of
//! `crate::conflict` for JS (through `merge.js`).
//!
//! Invariants:
//! - Values cross as JSON text, one string each way: for big documents that is
//!   much cheaper than napi's member-by-member object conversion.
//! - Only bad input throws (`EINVAL: …`, a programming error of the caller); a
//!   merge never throws, its conflicts are data in the result.

use napi_derive::napi;
use serde_json::Value;

use crate::conflict::{self, Side};

fn parse(name: &str, text: &str) -> napi::Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| napi::Error::from_reason(format!("EINVAL: {name} is not valid JSON: {e}")))
}

fn check_array_key(array_key: &str) -> napi::Result<()> {
    if array_key.is_empty() {
        return Err(napi::Error::from_reason(
            "EINVAL: arrayKey must be a non-empty string",
        ));
    }
    Ok(())
}

fn side(favor: &str) -> napi::Result<Side> {
    match favor {
        "mine" => Ok(Side::Mine),
        "theirs" => Ok(Side::Theirs),
        _ => Err(napi::Error::from_reason(format!(
            "EINVAL: favor must be 'mine' or 'theirs', got {favor:?}"
        ))),
    }
}

fn to_text(value: &impl serde::Serialize) -> napi::Result<String> {
    serde_json::to_string(value).map_err(|e| napi::Error::from_reason(e.to_string()))
}
/// Three-way merge of JSON texts: `base` edited into `mine` here and into
/// `theirs` elsewhere. Arrays whose elements all carry a unique string or
/// number under `arrayKey` merge element by element. Returns the JSON text of
/// `{ merged, conflicts: [{ path, kind, base?, mine?, theirs?, deletedBy? }] }`
/// (a value absent on a side is omitted). At a conflict `merged` keeps the
/// base value, or with `favor` (`'mine'` / `'theirs'`) that side's. Throws
/// `EINVAL: …` for text that is not JSON, an empty `arrayKey` or another
/// `favor`. Use `mergeJson` of `merge.js` instead.
#[napi]
pub fn merge_json_text(
    base: String,
    mine: String,
    theirs: String,
    array_key: String,
    favor: Option<String>,
) -> napi::Result<String> {
    check_array_key(&array_key)?;
    let favor = favor.as_deref().map(side).transpose()?;
    let base = parse("base", &base)?;
    let mine = parse("mine", &mine)?;
    let theirs = parse("theirs", &theirs)?;
    let outcome = match favor {
        None => conflict::merge(&base, &mine, &theirs, &array_key),
        Some(favor) => conflict::merge_favoring(&base, &mine, &theirs, &array_key, favor),
    };
    to_text(&outcome)
}

/// What changed from `before` to `after` (JSON texts), as the JSON text of
/// `[{ path, kind: 'added' | 'removed' | 'changed' | 'reordered', before?, after? }]`,
/// id arrays element by element. Throws `EINVAL: …` like `mergeJsonText`.
/// Use `diffJson` of `merge.js` instead.
#[napi]
pub fn diff_json_text(before: String, after: String, array_key: String) -> napi::Result<String> {
    check_array_key(&array_key)?;
    let before = parse("before", &before)?;
    let after = parse("after", &after)?;
    to_text(&conflict::diff(&before, &after, &array_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_text_round_trips() {
        let text = merge_json_text(
            r#"{"a":1,"b":1}"#.into(),
            r#"{"a":2,"b":1}"#.into(),
            r#"{"a":3,"b":2}"#.into(),
            "id".into(),
            None,
        )
        .unwrap();
        assert_eq!(
            text,
            r#"{"merged":{"a":1,"b":2},"conflicts":[{"path":"$.a","kind":"both-modified","base":1,"mine":2,"theirs":3}]}"#
        );
        let text = merge_json_text(
            "1".into(),
            "2".into(),
            "3".into(),
            "id".into(),
            Some("theirs".into()),
        )
        .unwrap();
        assert_eq!(
            text,
            r#"{"merged":3,"conflicts":[{"path":"$","kind":"both-modified","base":1,"mine":2,"theirs":3}]}"#
        );
        let text = diff_json_text("[1]".into(), "[2]".into(), "id".into()).unwrap();
        assert_eq!(
            text,
            r#"[{"path":"$","kind":"changed","before":[1],"after":[2]}]"#
        );
    }

    #[test]
    fn bad_input_is_einval() {
        let error =
            merge_json_text("{}".into(), "{".into(), "{}".into(), "id".into(), None).unwrap_err();
        assert!(
            error.reason.starts_with("EINVAL: mine is not valid JSON"),
            "{}",
            error.reason
        );
        let error = diff_json_text("{}".into(), "{}".into(), String::new()).unwrap_err();
        assert!(error.reason.starts_with("EINVAL: "), "{}", error.reason);
        let favor = Some("base".into());
        let error = merge_json_text("1".into(), "1".into(), "1".into(), "id".into(), favor);
        assert!(error.unwrap_err().reason.starts_with("EINVAL: favor"));
    }
}
