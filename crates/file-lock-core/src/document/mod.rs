//! The file side of JSON documents (document.js is the rest): the atomic
//! durable replace they write through, the number texts JS cannot hold
//! exactly, and where a big text can be cut to be parsed in pieces.

pub mod atomic_write;
mod events;
pub use events::DocumentEvent;
pub mod json_chunks;
pub mod number_text;
