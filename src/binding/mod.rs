//! The Node binding: the only module with `#[napi]`. It converts options,
//! errors and events at the edge and keeps no lock state of its own.
//!
//! Lock failures travel to JS as data (`AcquireOutcome.failure`), so the JS
//! wrapper can build one `Error` with `code`, `filePath`, `waitedMs`,
//! `attempts` and `holder`; only programming errors throw.

mod chunks;
mod conflict;
mod convert;
mod diagnose;
mod manager;
mod numbers;
mod watch;
