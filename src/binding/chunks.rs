//! `jsonChunksAsync`: where a big JSON text can be cut for JS to parse it a
//! piece at a time (`file_lock_core::document::json_chunks`), worked out on the
//! thread pool.

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;

use super::coded::{off_thread, OffThread};
use file_lock_core::document::json_chunks;

/// The plan for parsing `text` in pieces of at most `max` UTF-16 units, as
/// JSON text (see `json_chunks`); null when `text` is not JSON (parse it whole
/// for the error). Use `parseInPieces` of `json-values.js` instead.
// (Called from JS only: unused in `cargo test`.)
#[cfg_attr(test, allow(dead_code))]
#[napi(ts_return_type = "Promise<string | null>")]
pub fn json_chunks_async(
    text: String,
    max: u32,
) -> napi::Result<AsyncTask<OffThread<Option<String>>>, String> {
    Ok(off_thread(move || {
        Ok(json_chunks::plan(&text, max as usize))
    }))
}
