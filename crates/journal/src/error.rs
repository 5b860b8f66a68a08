use std::io;
use std::path::{Path, PathBuf};

use crate::format::MAX_PAYLOAD_LEN;

/// Everything that can go wrong in the journal. Messages name the file and,
/// where it matters, the byte offset, so an operator can act on them without
/// reading code.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An operating-system call failed on a journal file or directory.
    #[error("journal I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the failing call was made on.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },

    /// A segment contains bytes that cannot be a torn tail: a bad record in a
    /// segment that is not the last one, a damaged segment header, or a gap
    /// between segments. The journal refuses to guess which records are
    /// trustworthy.
    #[error(
        "journal segment {} is corrupt at byte offset {offset}: {reason}. \
         Only the tail of the newest segment can be torn by a crash, so this is damage: \
         restore the data directory from a backup, or move this segment and every newer one \
         aside to start from the last good record",
        path.display()
    )]
    Corrupt {
        /// The damaged segment file.
        path: PathBuf,
        /// Byte offset within the file of the first bad byte range (record or header start).
        offset: u64,
        /// What exactly failed validation.
        reason: String,
    },

    /// The segment was written by a newer (or unknown) on-disk format.
    #[error(
        "journal segment {} has format version {version}, this build only reads version {}; \
         run a simguard release that supports it",
        path.display(),
        crate::format::SEGMENT_VERSION
    )]
    UnsupportedVersion {
        /// The segment whose header carries the unknown version.
        path: PathBuf,
        /// The version found in the header.
        version: u32,
    },

    /// Another process holds the journal's directory lock.
    #[error(
        "journal directory {} is locked: another simguard process is already running on this \
         data dir (its pid is in {}/LOCK); stop it or use a different data dir",
        dir.display(),
        dir.display()
    )]
    Locked {
        /// The data directory whose `LOCK` file is held.
        dir: PathBuf,
    },

    /// A payload exceeds the per-record limit.
    #[error("journal record payload is {len} bytes, the maximum is {MAX_PAYLOAD_LEN} bytes")]
    TooLarge {
        /// The rejected payload's length.
        len: usize,
    },

    /// An earlier commit failed in a way that leaves the on-disk state unknown
    /// (fsync failure), so the journal refuses further writes.
    #[error(
        "journal in {} is unusable after an earlier failed commit (fsync or rollback failed); \
         drop it and reopen the journal to recover the durable prefix from disk",
        dir.display()
    )]
    Poisoned {
        /// The journal's directory.
        dir: PathBuf,
    },

    /// An `append_with` closure removed bytes from the journal buffer instead
    /// of only pushing, so earlier buffered records may be damaged.
    #[error(
        "append_with closure shrank the journal buffer from {expected_at_least} to {actual} bytes; \
         it must only push bytes. The journal in {} is poisoned: drop it and reopen",
        dir.display()
    )]
    BufferShrunk {
        /// The journal's directory.
        dir: PathBuf,
        /// The buffer length before the closure ran (plus the record header).
        expected_at_least: usize,
        /// The buffer length after the closure returned.
        actual: usize,
    },

    /// A reader asked for records that were already pruned away.
    #[error(
        "journal in {} starts at sequence {first_available} but records from {requested} were \
         requested; they were pruned (the snapshot used for replay is older than the journal \
         retention)",
        dir.display()
    )]
    Pruned {
        /// The journal's directory.
        dir: PathBuf,
        /// The first sequence number the caller asked for.
        requested: u64,
        /// The oldest sequence number still on disk.
        first_available: u64,
    },
}

impl JournalError {
    pub(crate) fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        JournalError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl AsRef<Path>, offset: u64, reason: impl Into<String>) -> Self {
        JournalError::Corrupt {
            path: path.as_ref().to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }
}
