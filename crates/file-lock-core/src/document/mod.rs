//! The file side of JSON documents (lib/document/ is the rest): the atomic
//! durable replace they write through, the number texts JS cannot hold
//! exactly, where a big text can be cut to be parsed in pieces, and the audit
//! events a document records.
//!
//! Invariant: nothing here takes a lock; the caller holds it (the lock engine
//! never imports this module).

pub mod atomic_write;
mod events;
pub use events::DocumentEvent;
pub mod json_chunks;
pub mod number_text;
pub mod version;
