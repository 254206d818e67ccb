//! Three-way merge and diff of JSON documents: a document edited here meets a
//! change another process made on disk (issue "JsonDocument": external changes).
//!
//! Invariants:
//! - The outcome does not depend on which side runs the merge: `merge(b, m, t)`
//!   and `merge(b, t, m)` give the same `merged` and the same conflicts, in the
//!   same order, with mine and theirs swapped. Every tie is broken by content
//!   (canonical JSON text, id lists), never by a side's name.
//! - A conflict never picks a side: `merged` keeps the base value there; for
//!   `both-added`, which has no base, the value whose canonical JSON sorts first.
//!   Only `merge_favoring`, asked to, decides conflicts for one side; it
//!   reports the same conflicts, and favoring mine with the sides swapped is
//!   favoring theirs.
//! - Arrays whose elements are all objects with a string or number id under the
//!   array key, no id twice, are merged element by element by id; any other
//!   array, and every scalar, is one atomic value.
//! - Paths name elements of id arrays by id (`[id="admin"]`), never by index, so
//!   one path means the same element in base, mine, theirs and the result.
//! - Object key order: keys keep the order they have in the documents (the
//!   crate enables serde_json's `preserve_order`); keys added on one side land
//!   after their nearest preceding key, by the same rules as id arrays.
//! - Texts in, text out (`merge_texts`, `diff_texts`, what JS calls): every
//!   text `JSON.stringify` writes is accepted, lone UTF-16 surrogates included
//!   (`"\ud83d"` is legal JSON but no Rust string can hold it): they come back
//!   exactly as they went in. Values nest at most `MAX_DEPTH` levels, checked
//!   on the text before anything recursive runs; deep values are walked on a
//!   thread of our own whose stack fits `MAX_DEPTH` levels, never on the
//!   caller's (the JS thread, of whatever size the embedder gave it).
//! - Numbers in texts are taken as JavaScript takes them: `1.0`, `1e2` and
//!   `100.0` are the integers `1` and `100`, as `JSON.stringify` writes them, so
//!   a file another program wrote merges with values this side stringified
//!   without a number seen as changed.
//!
//! Files: `types.rs` (outcomes, conflicts, changes, paths), `merge.rs`,
//! `diff.rs`, `keyed.rs` (objects and id arrays as keyed members, shared by
//! both), `texts.rs` (texts in and out), `recipe.rs` (a merged value as a
//! recipe against theirs).

mod diff;
mod keyed;
mod merge;
mod recipe;
mod texts;
mod types;

pub use diff::diff;
pub use merge::{merge, merge_favoring};
pub use texts::{
    diff_texts, merge_texts, merge_texts_sharing, TextError, TextErrorKind, MAX_DEPTH,
};
pub use types::{
    canonical_json, Change, ChangeKind, Conflict, ConflictKind, Id, JsonPath, MergeOutcome,
    PathSegment, Side,
};

#[cfg(test)]
mod tests;
