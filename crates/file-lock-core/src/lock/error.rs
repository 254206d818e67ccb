//! Errors of the lock engine, each with a stable code that the binding exposes
//! as `error.code`.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::holder_record::Holder;

#[derive(Debug)]
pub enum LockError {
    /// The path cannot name a lockable file (empty, a directory, bad characters…).
    InvalidPath { path: PathBuf, reason: String },
    /// Every attempt ran out of time.
    Timeout {
        path: PathBuf,
        waited: Duration,
        attempts: u32,
        holder: Option<Box<Holder>>,
        /// The share's file system when the file is on a network drive.
        network: Option<String>,
    },
    /// The caller cancelled the wait.
    Aborted { path: PathBuf },
    /// The manager was closed before or while the request waited.
    Closed,
    /// The operating system refused an operation on the sidecar or its directory.
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
}

impl LockError {
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        LockError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// The stable, documented code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            LockError::InvalidPath { .. } => "EINVAL",
            LockError::Timeout { .. } => "ELOCKTIMEOUT",
            LockError::Aborted { .. } => "ABORT_ERR",
            LockError::Closed => "ECLOSED",
            LockError::Io { source, .. } => errno_code(source),
        }
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::InvalidPath { path, reason } => {
                write!(f, "cannot lock {}: {reason}", path.display())
            }
            LockError::Timeout {
                path,
                waited,
                attempts,
                holder,
                network,
            } => {
                if let Some(share) = network {
                    write!(f, "{} is on a network drive ({share}); ", file_name(path))?;
                }
                write!(
                    f,
                    "timed out after {} ms and {attempts} attempt(s) waiting for the lock on {}",
                    waited.as_millis(),
                    path.display()
                )?;
                if let Some(holder) = holder {
                    write!(f, " (held by {})", holder.description)?;
                }
                Ok(())
            }
            LockError::Aborted { path } => {
                write!(f, "the wait for the lock on {} was aborted", path.display())
            }
            LockError::Closed => write!(f, "the lock manager is closed"),
            LockError::Io { path, op, source } => {
                write!(f, "{op} failed for {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The last component of a path, for messages.
pub fn file_name(path: &std::path::Path) -> std::borrow::Cow<'_, str> {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
}

/// Node-style errno names (`ENOENT`, `EACCES`, …) for the errors a lock can meet.
fn errno_code(error: &io::Error) -> &'static str {
    let inner = error.get_ref();
    if inner.is_some_and(|e| e.is::<super::sidecar::ForeignOwner>()) {
        return "ELOCKFOREIGN";
    }
    #[cfg(unix)]
    if let Some(raw) = error.raw_os_error() {
        let code = match raw {
            libc::ENOENT => "ENOENT",
            libc::EACCES => "EACCES",
            libc::EPERM => "EPERM",
            libc::EROFS => "EROFS",
            libc::EISDIR => "EISDIR",
            libc::ENOTDIR => "ENOTDIR",
            libc::ELOOP => "ELOOP",
            libc::ENOLCK => "ENOLCK",
            libc::ENOSYS => "ENOSYS",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::ENOSPC => "ENOSPC",
            libc::EIO => "EIO",
            libc::EMFILE => "EMFILE",
            libc::ENFILE => "ENFILE",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::EDQUOT => "EDQUOT",
            _ => "",
        };
        if !code.is_empty() {
            return code;
        }
    }
    match error.kind() {
        io::ErrorKind::NotFound => "ENOENT",
        io::ErrorKind::PermissionDenied => "EACCES",
        io::ErrorKind::ReadOnlyFilesystem => "EROFS",
        io::ErrorKind::IsADirectory => "EISDIR",
        io::ErrorKind::NotADirectory => "ENOTDIR",
        io::ErrorKind::Unsupported => "ENOTSUP",
        io::ErrorKind::StorageFull => "ENOSPC",
        _ => "EIO",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_carry_node_style_codes() {
        let missing = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(LockError::io("/x", "open", missing).code(), "ENOENT");
        #[cfg(unix)]
        assert_eq!(
            LockError::io("/x", "flock", io::Error::from_raw_os_error(libc::ENOLCK)).code(),
            "ENOLCK"
        );
    }

    #[test]
    fn timeout_message_names_the_file_and_attempts() {
        let e = LockError::Timeout {
            path: "/data/roles.json".into(),
            waited: Duration::from_millis(1500),
            attempts: 3,
            holder: None,
            network: Some("nfs".into()),
        };
        assert_eq!(e.code(), "ELOCKTIMEOUT");
        let text = e.to_string();
        assert!(
            text.contains("1500 ms") && text.contains("3 attempt") && text.contains("roles.json")
        );
        assert!(text.starts_with("roles.json is on a network drive (nfs); "));
    }
}
