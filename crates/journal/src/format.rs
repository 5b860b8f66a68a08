//! On-disk layout: file names, the segment header and the record header.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::JournalError;

/// Identifies a simguard journal segment, so a stray file is never parsed as one.
pub(crate) const SEGMENT_MAGIC: [u8; 4] = *b"SGJ1";
/// Bumped on any incompatible layout change.
pub(crate) const SEGMENT_VERSION: u32 = 1;
/// magic + version + first seq + header crc.
pub(crate) const SEGMENT_HEADER_LEN: usize = 4 + 4 + 8 + 4;
/// payload_len + crc + seq.
pub(crate) const RECORD_HEADER_LEN: usize = 4 + 4 + 8;
/// Largest accepted payload. Bounds the memory a corrupt length field can make
/// a reader allocate, and keeps one event from monopolising a group commit.
pub const MAX_PAYLOAD_LEN: usize = 16 * 1024 * 1024;

const SEGMENT_SUFFIX: &str = ".sgj";
const SEQ_DIGITS: usize = 20;

pub(crate) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"))
}

/// Parses `NNNNNNNNNNNNNNNNNNNN.sgj`; anything else in the directory (the
/// LOCK file, an operator's notes, a moved-aside segment) is not a segment.
pub(crate) fn parse_segment_name(name: &OsStr) -> Option<u64> {
    let name = name.to_str()?;
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Sequence numbers start at 1, so a segment named 0 cannot be ours.
    digits.parse().ok().filter(|&seq| seq > 0)
}

pub(crate) fn encode_segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..4].copy_from_slice(&SEGMENT_MAGIC);
    h[4..8].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[8..16].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What is at the start of a segment file.
pub(crate) enum HeaderState {
    /// A complete, valid header for the first sequence number carried inside.
    Valid(u64),
    /// Fewer than `SEGMENT_HEADER_LEN` bytes: the file was being created when
    /// the process died (or is being created right now by a live writer).
    Short,
    /// Enough bytes, but they are not a valid header.
    Invalid(String),
    /// A valid header from a format version this build does not know.
    Version(u32),
}

pub(crate) fn read_segment_header(file: &File, path: &Path) -> Result<HeaderState, JournalError> {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    let n = read_full_at(file, &mut h, 0).map_err(|e| JournalError::io(path, e))?;
    if n < SEGMENT_HEADER_LEN {
        return Ok(HeaderState::Short);
    }
    let stored_crc = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
    let crc = crc32c::crc32c(&h[0..16]);
    if stored_crc != crc {
        return Ok(HeaderState::Invalid(format!(
            "segment header checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
        )));
    }
    if h[0..4] != SEGMENT_MAGIC {
        return Ok(HeaderState::Invalid(format!(
            "bad segment magic {:02x?}, expected {:02x?}",
            &h[0..4],
            SEGMENT_MAGIC
        )));
    }
    let version = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if version != SEGMENT_VERSION {
        return Ok(HeaderState::Version(version));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&h[8..16]);
    Ok(HeaderState::Valid(u64::from_le_bytes(seq)))
}

/// Reads until `buf` is full or end of file; returns the bytes read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A segment file found in the directory.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFile {
    /// Sequence number of the segment's first record, from the file name;
    /// what ordering and pruning are decided on without opening the file.
    pub(crate) first_seq: u64,
    /// Full path, for opening and for error messages.
    pub(crate) path: PathBuf,
}

/// All segments in `dir`, oldest first.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, JournalError> {
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io(dir, e))?;
        if let Some(first_seq) = parse_segment_name(&entry.file_name()) {
            segments.push(SegmentFile {
                first_seq,
                path: entry.path(),
            });
        }
    }
    segments.sort_by_key(|s| s.first_seq);
    Ok(segments)
}

/// Makes creations and deletions of directory entries durable; without it a
/// freshly rolled segment can vanish in a crash even though its data was fsynced.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_reject_strays() {
        let p = segment_path(Path::new("/d"), 42);
        assert_eq!(p, Path::new("/d/00000000000000000042.sgj"));
        assert_eq!(
            parse_segment_name(p.file_name().unwrap_or_default()),
            Some(42)
        );
        let max = segment_path(Path::new("/d"), u64::MAX);
        assert_eq!(
            parse_segment_name(max.file_name().unwrap_or_default()),
            Some(u64::MAX)
        );
        for stray in [
            "LOCK",
            "42.sgj",
            "00000000000000000042.sgj.bak",
            "0000000000000000004x.sgj",
            "99999999999999999999.sgj", // overflows u64
            "00000000000000000000.sgj", // sequence numbers start at 1
        ] {
            assert_eq!(parse_segment_name(OsStr::new(stray)), None, "{stray}");
        }
    }

    #[test]
    fn header_crc_covers_every_field() {
        let h = encode_segment_header(7);
        for i in 0..16 {
            let mut bad = h;
            bad[i] ^= 0x01;
            let crc = crc32c::crc32c(&bad[0..16]);
            assert_ne!(
                crc.to_le_bytes(),
                [bad[16], bad[17], bad[18], bad[19]],
                "byte {i}"
            );
        }
    }
}
