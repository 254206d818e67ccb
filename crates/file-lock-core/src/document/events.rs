//! What a JSON document records in the audit trail besides its locks: the
//! names JS may pass (`recordDocumentEvent`), nothing else. The lock engine
//! writes them (`LockManager::record_audit`) without knowing what they mean.

/// What a JSON document records in the audit trail besides its locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentEvent {
    Recovered,
    /// A backup could not be written (best effort: the operation went on).
    BackupFailed,
    ExternalChange,
    Merged,
    Conflict,
    ConflictResolved,
    /// A durable write had a plain fsync: the file system refused F_FULLFSYNC (Apple).
    WeakFlush,
}

impl DocumentEvent {
    pub fn name(self) -> &'static str {
        match self {
            DocumentEvent::Recovered => "recovered",
            DocumentEvent::BackupFailed => "backup-failed",
            DocumentEvent::ExternalChange => "external-change",
            DocumentEvent::Merged => "merged",
            DocumentEvent::Conflict => "conflict",
            DocumentEvent::ConflictResolved => "conflict-resolved",
            DocumentEvent::WeakFlush => "weak-flush",
        }
    }

    pub fn from_name(name: &str) -> Option<DocumentEvent> {
        [
            DocumentEvent::Recovered,
            DocumentEvent::BackupFailed,
            DocumentEvent::ExternalChange,
            DocumentEvent::Merged,
            DocumentEvent::Conflict,
            DocumentEvent::ConflictResolved,
            DocumentEvent::WeakFlush,
        ]
        .into_iter()
        .find(|e| e.name() == name)
    }
}
