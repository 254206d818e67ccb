//! The JSON document layer (issue "JsonDocument"): so far, the atomic durable
//! file replacement it will write through.

pub mod atomic_write;
pub mod json_chunks;
pub mod number_text;
