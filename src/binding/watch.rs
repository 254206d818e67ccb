//! `watch()` at the edge: options in, changes out through a weak thread-safe
//! function (the JS `Watcher` decides whether it keeps Node alive). Every
//! `NativeWatch` shares the process's one OS watcher (`watch::hub`); one that
//! cannot be set up fails with a stable code (`EWATCHLIMIT` for an OS limit).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use parking_lot::Mutex;

use file_lock_core::lock::LockError;
use file_lock_core::watch::{self, FileWatch, WatchError, WatchOptions};

use super::coded::to_napi_error;

/// One change of a watched file, or a failure to look at it.
#[napi(object)]
pub struct NativeChange {
    /// `modified`, `created` or `deleted`; absent when `error` is set.
    pub kind: Option<String>,
    /// False when the file holds content this process wrote.
    pub external: Option<bool>,
    pub size: Option<f64>,
    pub mtime_ms: Option<f64>,
    /// The OS reported an overflow: the change was found by re-reading.
    pub rescan: Option<bool>,
    /// The engine's code when the file could not be read (`EACCES`, `EIO`…).
    pub error_code: Option<String>,
    /// What went wrong, with `errorCode`.
    pub error: Option<String>,
}

#[napi(object)]
pub struct NativeWatchOptions {
    /// A burst of events is over after this many ms without one.
    pub debounce_ms: Option<u32>,
    /// ... or this many ms after its first event.
    pub max_delay_ms: Option<u32>,
    /// Stat interval when polling (network shares, or `forcePoll`).
    pub poll_interval_ms: Option<u32>,
    pub force_poll: Option<bool>,
}

pub type ChangeCallback = ThreadsafeFunction<NativeChange, (), NativeChange, Status, false, true>;

/// A running watch of one file.
#[napi]
pub struct NativeWatch {
    inner: Mutex<Option<FileWatch>>,
    file_path: String,
    mode: &'static str,
    network: Option<String>,
}

#[napi]
impl NativeWatch {
    /// The watched path (directory resolved).
    #[napi(getter)]
    pub fn file_path(&self) -> String {
        self.file_path.clone()
    }

    /// `events` (OS notifications) or `polling` (network shares).
    #[napi(getter)]
    pub fn mode(&self) -> String {
        self.mode.to_string()
    }

    /// The share's file system when the file is on a network drive.
    #[napi(getter)]
    pub fn network(&self) -> Option<String> {
        self.network.clone()
    }

    /// Stops watching; no change is reported after this returns. Idempotent.
    #[napi]
    pub fn close(&self) {
        if let Some(mut watch) = self.inner.lock().take() {
            watch.close();
        }
    }
}

/// Watches `path` (its directory, filtered by name) and calls `onChange` for
/// each settled change; see `NativeWatch` and `watch::FileWatch`. Needs no
/// lock manager: every watch shares the process's one OS watcher.
#[napi(
    ts_args_type = "path: string, options: NativeWatchOptions | undefined | null, onChange: (change: NativeChange) => void"
)]
pub fn watch_file(
    path: String,
    options: Option<NativeWatchOptions>,
    on_change: ChangeCallback,
) -> napi::Result<NativeWatch, String> {
    let invalid = |reason: &str| {
        to_napi_error(LockError::InvalidPath {
            path: path.clone().into(),
            reason: reason.into(),
        })
    };
    if path.is_empty() {
        return Err(invalid("the path is empty"));
    }
    if path.contains('\0') {
        return Err(invalid("the path contains a NUL character"));
    }
    let target = watch::watched_path(Path::new(&path))
        .map_err(|e| to_napi_error(LockError::io(&path, "resolve the directory of", e)))?;
    if target.is_dir() {
        return Err(invalid("the path is a directory, not a file"));
    }
    let mut core = WatchOptions::default();
    if let Some(o) = options {
        let ms = |v: u32| Duration::from_millis(v as u64);
        if let Some(v) = o.debounce_ms {
            core.debounce = ms(v);
        }
        if let Some(v) = o.max_delay_ms {
            core.max_delay = ms(v);
        }
        if let Some(v) = o.poll_interval_ms {
            core.poll_interval = ms(v.max(1));
        }
        core.force_poll = o.force_poll.unwrap_or(false);
    }
    let on_change = Arc::new(on_change);
    let on_error = on_change.clone();
    let watched = target.clone();
    let file_watch = FileWatch::start(
        &target,
        core,
        move |change| {
            on_change.call(
                NativeChange {
                    kind: Some(change.kind.name().to_string()),
                    external: Some(change.external),
                    size: change.size.map(|s| s as f64),
                    mtime_ms: change.mtime_ms,
                    rescan: Some(change.rescan),
                    error_code: None,
                    error: None,
                },
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        },
        move |error| {
            let error = LockError::io(&watched, "read", error);
            on_error.call(
                NativeChange {
                    kind: None,
                    external: None,
                    size: None,
                    mtime_ms: None,
                    rescan: None,
                    error_code: Some(error.code().to_string()),
                    error: Some(error.to_string()),
                },
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        },
    )
    .map_err(|e| match e {
        // A stable code of its own, and a message naming the limit.
        WatchError::Limit(reason) => napi::Error::new(
            watch::limits::LIMIT_CODE.to_string(),
            format!("cannot watch {path}: {reason}"),
        ),
        WatchError::Io(e) => to_napi_error(LockError::io(&path, "watch", e)),
    })?;
    Ok(NativeWatch {
        mode: match file_watch.mode() {
            watch::file_watch::WatchMode::Events => "events",
            watch::file_watch::WatchMode::Polling => "polling",
        },
        network: file_watch.network().map(str::to_string),
        file_path: target.to_string_lossy().into_owned(),
        inner: Mutex::new(Some(file_watch)),
    })
}
