//! Watching one file for changes made by anyone: other processes, editors,
//! sync tools. `file_watch` reports changes; `own_writes` tells which of
//! them this process made itself.

pub mod file_watch;
pub mod own_writes;

pub use file_watch::{ChangeKind, FileChange, FileWatch, WatchOptions};

use std::io;
use std::path::{Path, PathBuf};

/// The watched identity of `raw`: its parent directory resolved (symlinks,
/// `..`) plus its file name. Writers and watchers key by the same function,
/// so a write is recognised as our own whatever spelling of the path was used.
pub fn watched_path(raw: &Path) -> io::Result<PathBuf> {
    let name = raw
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let parent = match raw.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok(std::fs::canonicalize(parent)?.join(name))
}
