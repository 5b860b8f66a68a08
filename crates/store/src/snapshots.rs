//! Engine snapshot files: written atomically (temp file, fsync, rename, fsync
//! of the directory) with a SHA-256 trailer, so a crash or bit rot can never
//! make recovery start from a half-written or damaged state.

use crate::{Result, StoreError};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Index entry of one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Journal sequence the snapshot includes.
    pub seq: u64,
    pub created_ms: i64,
    /// File name inside the snapshot directory.
    pub file: String,
    pub bytes: u64,
    pub devices: u64,
}

pub fn file_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.bin")
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::SnapshotIo {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `body` durably as the snapshot for `seq` in `dir`; returns its size.
pub fn write(dir: &Path, seq: u64, body: &[u8]) -> Result<u64> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(file_name(seq));
    let tmp = dir.join(format!("{}.tmp", file_name(seq)));
    {
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(body).map_err(io(&tmp))?;
        f.write_all(&Sha256::digest(body)).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(body.len() as u64 + 32)
}

/// Reads a snapshot and checks its trailer; returns the body.
pub fn read(dir: &Path, file: &str) -> Result<Vec<u8>> {
    let path = dir.join(file);
    let mut data = fs::read(&path).map_err(io(&path))?;
    if data.len() < 32 {
        return Err(StoreError::Corrupt(format!(
            "{}: too short",
            path.display()
        )));
    }
    let body_len = data.len() - 32;
    let want = Sha256::digest(&data[..body_len]);
    if want.as_slice() != &data[body_len..] {
        return Err(StoreError::Corrupt(format!(
            "{}: checksum mismatch",
            path.display()
        )));
    }
    data.truncate(body_len);
    Ok(data)
}

/// Removes a snapshot file (ignoring one that is already gone).
pub fn remove(dir: &Path, file: &str) -> Result<()> {
    let path: PathBuf = dir.join(file);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&path)(e)),
    }
}
