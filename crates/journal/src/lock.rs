use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::JournalError;

/// Exclusive `flock` on `DIR/LOCK`, held for as long as this value lives.
///
/// `flock` rather than a pid file: the kernel releases it when the process
/// dies, however it dies, so a crash never leaves a stale lock behind.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// The locked file. Closing it (on drop) is what releases the lock.
    _file: File,
    /// Kept for diagnostics.
    path: PathBuf,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, JournalError> {
        let path = dir.join("LOCK");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| JournalError::io(&path, e))?;
        loop {
            // SAFETY: the descriptor comes from `file`, which is open and
            // outlives this call; flock reads no memory of ours.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) => {
                    return Err(JournalError::Locked {
                        dir: dir.to_path_buf(),
                    })
                }
                _ => return Err(JournalError::io(&path, err)),
            }
        }
        // Only for humans wondering who holds the lock; the lock itself is the flock.
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all(pid.as_bytes()))
            .map_err(|e| JournalError::io(&path, e))?;
        Ok(DirLock { _file: file, path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
