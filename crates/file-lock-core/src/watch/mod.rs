//! Watching files for changes made by anyone: other processes, editors,
//! sync tools. `file_watch` reports one file's changes; `hub` is the one OS
//! watcher (and the two threads) every watch of the process shares;
//! `own_writes` tells which changes this process made itself; `limits` names
//! the OS limit a watch that cannot be set up ran into.

pub mod file_watch;
mod hub;
pub mod limits;
pub mod own_writes;

pub use file_watch::{ChangeKind, FileChange, FileWatch, WatchOptions};
pub use limits::WatchError;

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
    Ok(crate::paths::canonical(parent)?.join(name))
}
