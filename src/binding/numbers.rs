//! `inexactNumberTokens` / `spliceNumberTokens`: the number texts of
//! `file_lock_core::document::number_text` for JS (through `exact-numbers.js`).
//!
//! Invariants:
//! - Texts cross as UTF-16 (napi copies a string's units; UTF-8 would make V8
//!   transcode, 3-5x slower for text past U+00FF) and results come back as
//!   one string (or null): the common case, a document whose numbers are all
//!   exact, costs napi's copy and one pass over it.
//! - Only bad input throws (`EINVAL`, a programming error of the caller).

use napi::bindgen_prelude::AsyncTask;
use napi::bindgen_prelude::Utf16String;
use napi_derive::napi;

use super::coded::{off_thread, Coded, OffThread};

use file_lock_core::document::number_text::{self, TextError};

fn invalid(error: TextError) -> Coded {
    Coded::invalid(error.to_string())
}

/// The number tokens of the JSON `text` that a JS number does not hold
/// exactly (see `number_text`), as the JSON text `[[path, token], …]` with
/// keys spelled as in `text`; null when there are none. Throws `EINVAL`
/// for text that is not JSON where its paths had to be followed (the pass
/// that finds none checks no grammar: `text` is what JSON.parse accepted).
/// Use `exact-numbers.js` instead.
#[napi]
pub fn inexact_number_tokens(text: Utf16String) -> napi::Result<Option<String>, String> {
    // UTF-16: V8 copies a string's units as they are; UTF-8 would transcode.
    number_text::inexact_numbers_utf16_json(&text).map_err(|e| invalid(e).into())
}

/// `inexactNumberTokens` on the thread pool, for big texts (the scan of
/// 50 MB is a pass the JS thread need not make). Rejects like it throws.
// (Called from JS only: unused in `cargo test`.)
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<string | null>")]
pub fn inexact_number_tokens_async(
    text: String,
) -> napi::Result<AsyncTask<OffThread<Option<String>>>, String> {
    // UTF-8 here: a one-byte JS string widened to UTF-16 costs the JS thread
    // far more than its transcoding (the paths are the same either way).
    Ok(off_thread(move || {
        number_text::inexact_numbers_json(&text).map_err(invalid)
    }))
}

/// `text` with number tokens put at paths: `keep` is the JSON text of
/// `[[path, token, expected, required], …]` (keys as `JSON.stringify(key)`);
/// a token replaces the scalar at its path when that scalar is spelled
/// `expected`. Throws `EINVAL` when a required one finds no place, a token
/// is not a JSON number, or either text is malformed. Use `exact-numbers.js`
/// instead.
#[napi]
pub fn splice_number_tokens(text: Utf16String, keep: String) -> napi::Result<Utf16String, String> {
    let replacements = number_text::parse_replacements(&keep).map_err(invalid)?;
    // UTF-16 both ways: copies, where UTF-8 would transcode twice.
    number_text::splice_utf16(&text, &replacements)
        .map(Utf16String::from)
        .map_err(|e| invalid(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_errors_cross_as_documented() {
        let utf16 = |text: &str| Utf16String::from(text.to_owned());
        assert_eq!(inexact_number_tokens(utf16(r#"{"a": 1}"#)).unwrap(), None);
        assert_eq!(
            inexact_number_tokens(utf16(r#"{"a": 1e400}"#)).unwrap(),
            Some(r#"[[["a"],"1e400"]]"#.to_owned())
        );
        let spliced = splice_number_tokens(
            utf16(r#"{"a": null}"#),
            r#"[[["\"a\""], "1e400", "null", false]]"#.into(),
        )
        .unwrap();
        assert_eq!(spliced.to_string(), r#"{"a": 1e400}"#);
        for error in [
            inexact_number_tokens(utf16(r#"{"a": 1e400"#)).unwrap_err(),
            splice_number_tokens(utf16("{}"), "nope".into()).unwrap_err(),
            splice_number_tokens(utf16("{}"), r#"[[["\"a\""], "1", "\"1\"", true]]"#.into())
                .unwrap_err(),
        ] {
            assert_eq!(error.status, "EINVAL", "{}", error.reason);
        }
    }
}
