//! `mergeJsonText` / `diffJsonText`: the three-way JSON merge of
//! `file_lock_core::json_merge` for JS (through `lib/merge.js`).
//!
//! Invariants:
//! - Values cross as JSON text, one string each way: for big documents that is
//!   much cheaper than napi's member-by-member object conversion.
//! - Every text `JSON.stringify` writes is accepted, lone UTF-16 surrogates
//!   included, up to `json_merge::MAX_DEPTH` levels of nesting
//!   (`json_merge::merge_texts`).
//! - Big documents are merged off the JS thread: `mergeJsonTextAsync` /
//!   `diffJsonTextAsync` do the same work on the thread pool and resolve with
//!   the same text (a 50 MB merge takes seconds: an Electron main process must
//!   not freeze for it).
//! - Only bad input throws (`EINVAL`, a programming error of the caller,
//!   naming the input and, for nesting, the limit); a merge never throws, its
//!   conflicts are data in the result.

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;

use super::coded::{off_thread, Coded, OffThread};

use file_lock_core::json_merge::{self, Side, TextError, TextErrorKind};

/// How deeply values may nest (arrays and objects inside each other) in
/// `mergeJsonText` / `diffJsonText`, and in the whole package: documents,
/// `set`/`update`/`edit` values, `defaultValue`. `json_merge::MAX_DEPTH`.
#[napi]
pub const MAX_JSON_DEPTH: u32 = 1000;

const _: () = assert!(MAX_JSON_DEPTH as usize == json_merge::MAX_DEPTH);

/// `EINVAL` naming the refused text (`EAGAIN` when no thread could be
/// started for a deep value).
fn refused(names: &[&str], error: TextError) -> Coded {
    let code = match error.kind {
        TextErrorKind::Thread(_) => "EAGAIN",
        _ => "EINVAL",
    };
    let name = error
        .input
        .and_then(|i| names.get(i))
        .copied()
        .unwrap_or("the value");
    Coded::new(code, format!("{name} {}", error.kind))
}

fn check_array_key(array_key: &str) -> Result<(), Coded> {
    if array_key.is_empty() {
        return Err(Coded::invalid("arrayKey must be a non-empty string"));
    }
    Ok(())
}

fn side(favor: &str) -> Result<Side, Coded> {
    match favor {
        "mine" => Ok(Side::Mine),
        "theirs" => Ok(Side::Theirs),
        _ => Err(Coded::invalid(format!(
            "favor must be 'mine' or 'theirs', got {favor:?}"
        ))),
    }
}

/// Three-way merge of JSON texts: `base` edited into `mine` here and into
/// `theirs` elsewhere. Arrays whose elements all carry a unique string or
/// number under `arrayKey` merge element by element. Returns the JSON text of
/// `{ merged, conflicts: [{ path, kind, base?, mine?, theirs?, deletedBy? }] }`
/// (a value absent on a side is omitted). At a conflict `merged` keeps the
/// base value, or with `favor` (`'mine'` / `'theirs'`) that side's. Lone
/// surrogate escapes (`"\ud83d"`) come back as they went in. Throws `EINVAL`
/// for text that is not JSON or nests more than 1000 levels, an empty
/// `arrayKey` or another `favor`. Use `mergeJson` of `merge.js` instead.
#[napi]
pub fn merge_json_text(
    base: String,
    mine: String,
    theirs: String,
    array_key: String,
    favor: Option<String>,
) -> napi::Result<String, String> {
    check_array_key(&array_key)?;
    let favor = favor.as_deref().map(side).transpose()?;
    json_merge::merge_texts([&base, &mine, &theirs], &array_key, favor)
        .map_err(|e| refused(&["base", "mine", "theirs"], e).into())
}

/// What changed from `before` to `after` (JSON texts), as the JSON text of
/// `[{ path, kind: 'added' | 'removed' | 'changed' | 'reordered', before?, after? }]`,
/// id arrays element by element. Throws `EINVAL` like `mergeJsonText`.
/// Use `diffJson` of `merge.js` instead.
#[napi]
pub fn diff_json_text(
    before: String,
    after: String,
    array_key: String,
) -> napi::Result<String, String> {
    check_array_key(&array_key)?;
    json_merge::diff_texts([&before, &after], &array_key)
        .map_err(|e| refused(&["before", "after"], e).into())
}

/// `mergeJsonText` on the thread pool: resolves with the same text, rejects
/// with the same `EINVAL` errors. With `sharing`, `merged` is a recipe
/// against `theirs` (`json_merge::merge_texts_sharing`; merge.js builds it).
// (Called from JS only: unused in `cargo test`.)
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<string>")]
pub fn merge_json_text_async(
    base: String,
    mine: String,
    theirs: String,
    array_key: String,
    favor: Option<String>,
    sharing: Option<bool>,
) -> napi::Result<AsyncTask<OffThread<String>>, String> {
    check_array_key(&array_key)?;
    let favor = favor.as_deref().map(side).transpose()?;
    let merge = if sharing == Some(true) {
        json_merge::merge_texts_sharing
    } else {
        json_merge::merge_texts
    };
    Ok(off_thread(move || {
        merge([&base, &mine, &theirs], &array_key, favor)
            .map_err(|e| refused(&["base", "mine", "theirs"], e))
    }))
}

/// `diffJsonText` on the thread pool.
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<string>")]
pub fn diff_json_text_async(
    before: String,
    after: String,
    array_key: String,
) -> napi::Result<AsyncTask<OffThread<String>>, String> {
    check_array_key(&array_key)?;
    Ok(off_thread(move || {
        json_merge::diff_texts([&before, &after], &array_key)
            .map_err(|e| refused(&["before", "after"], e))
    }))
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
            error.status == "EINVAL" && error.reason.starts_with("mine is not valid JSON"),
            "{}",
            error.reason
        );
        let error = diff_json_text("{}".into(), "{}".into(), String::new()).unwrap_err();
        assert_eq!(error.status, "EINVAL", "{}", error.reason);
        let deep = format!("{}{}", "[".repeat(1001), "]".repeat(1001));
        let error = merge_json_text("[]".into(), "[]".into(), deep, "id".into(), None).unwrap_err();
        assert_eq!(
            error.reason,
            "theirs is nested more than 1000 levels deep (arrays and objects inside each other; the limit is 1000)"
        );
        let lone = diff_json_text(r#""\ud800""#.into(), r#""\udfff""#.into(), "id".into());
        assert_eq!(
            lone.unwrap(),
            r#"[{"path":"$","kind":"changed","before":"\ud800","after":"\udfff"}]"#
        );
        let favor = Some("base".into());
        let error = merge_json_text("1".into(), "1".into(), "1".into(), "id".into(), favor);
        let error = error.unwrap_err();
        assert_eq!(error.status, "EINVAL");
        assert!(error.reason.starts_with("favor"));
    }
}
