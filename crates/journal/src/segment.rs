//! Record-by-record scanning of one segment file, shared by recovery and the
//! reader so both apply exactly the same validity rules.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::format::{
    read_segment_header, HeaderState, MAX_PAYLOAD_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};

/// Initial size of the read buffer. Large enough that replay does few
/// syscalls, small enough to not matter per reader.
pub(crate) const READ_BUF_LEN: usize = 256 * 1024;

/// Outcome of reading the next record.
pub(crate) enum Step {
    /// A valid record; `payload` indexes the buffer passed to `next_record`.
    Record { seq: u64, payload: Range<usize> },
    /// Clean end of data at a record boundary.
    End { offset: u64 },
    /// The bytes at `offset` are not a complete valid record. Whether that is
    /// a torn tail or damage depends on where the segment sits, so the caller decides.
    Invalid { offset: u64, reason: String },
}

/// Result of opening a segment for scanning.
pub(crate) enum Opened {
    Cursor(SegmentCursor),
    /// The header is incomplete or garbage and the file is no longer than a
    /// header: a segment whose creation was interrupted (or is in progress).
    TornHeader {
        file_len: u64,
    },
}

/// Sequential reader over one segment. The read buffer is owned by the caller
/// and passed in, so it can be reused across segments without reallocation.
pub(crate) struct SegmentCursor {
    /// For error messages and for reporting truncation.
    pub(crate) path: PathBuf,
    /// Read with `pread`, so the cursor never depends on (or disturbs) a file
    /// position shared with a writer, and re-reading after EOF sees new data.
    pub(crate) file: File,
    /// First sequence number, from the header; tells a successor's name.
    pub(crate) first_seq: u64,
    /// The sequence number the next record must carry; records are strictly consecutive.
    pub(crate) next_seq: u64,
    /// File offset of the byte just past the buffered window.
    file_pos: u64,
    /// Start of unconsumed bytes in the caller's buffer.
    start: usize,
    /// End of valid bytes in the caller's buffer.
    end: usize,
}

impl SegmentCursor {
    /// Validates the header of `file` (named for `name_seq`) and positions the
    /// cursor at the first record.
    pub(crate) fn open(path: &Path, file: File, name_seq: u64) -> Result<Opened, JournalError> {
        let file_len = file
            .metadata()
            .map_err(|e| JournalError::io(path, e))?
            .len();
        let first_seq = match read_segment_header(&file, path)? {
            HeaderState::Valid(seq) => seq,
            HeaderState::Short => return Ok(Opened::TornHeader { file_len }),
            HeaderState::Invalid(_) if file_len <= SEGMENT_HEADER_LEN as u64 => {
                return Ok(Opened::TornHeader { file_len })
            }
            HeaderState::Invalid(reason) => return Err(JournalError::corrupt(path, 0, reason)),
            HeaderState::Version(version) => {
                return Err(JournalError::UnsupportedVersion {
                    path: path.to_path_buf(),
                    version,
                })
            }
        };
        if first_seq != name_seq {
            return Err(JournalError::corrupt(
                path,
                0,
                format!(
                    "segment header says first sequence {first_seq}, file name says {name_seq}"
                ),
            ));
        }
        Ok(Opened::Cursor(SegmentCursor {
            path: path.to_path_buf(),
            file,
            first_seq,
            next_seq: first_seq,
            file_pos: SEGMENT_HEADER_LEN as u64,
            start: 0,
            end: 0,
        }))
    }

    /// File offset of the next unconsumed record.
    pub(crate) fn offset(&self) -> u64 {
        self.file_pos - (self.end - self.start) as u64
    }

    /// Forgets buffered bytes past the current record so the next call reads
    /// them from disk again: after EOF or an invalid record, a live writer (or
    /// a recovering one that truncated the tail) may have changed them.
    pub(crate) fn discard_window(&mut self) {
        self.file_pos = self.offset();
        self.start = 0;
        self.end = 0;
    }

    /// Makes at least `need` unconsumed bytes available in `buf`; `Ok(false)`
    /// if the file ends first.
    fn fill(&mut self, buf: &mut Vec<u8>, need: usize) -> Result<bool, JournalError> {
        if self.end - self.start >= need {
            return Ok(true);
        }
        if self.start + need > buf.len() {
            buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if need > buf.len() {
                buf.resize(need.max(buf.len().saturating_mul(2)), 0);
            }
        }
        while self.end - self.start < need {
            match self.file.read_at(&mut buf[self.end..], self.file_pos) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end += n;
                    self.file_pos += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(JournalError::io(&self.path, e)),
            }
        }
        Ok(true)
    }

    /// Reads and validates the next record. An invalid record is not consumed.
    pub(crate) fn next_record(&mut self, buf: &mut Vec<u8>) -> Result<Step, JournalError> {
        let offset = self.offset();
        if !self.fill(buf, RECORD_HEADER_LEN)? {
            let have = self.end - self.start;
            if have == 0 {
                return Ok(Step::End { offset });
            }
            return Ok(Step::Invalid {
                offset,
                reason: format!("incomplete record header ({have} of {RECORD_HEADER_LEN} bytes)"),
            });
        }
        let h = &buf[self.start..self.start + RECORD_HEADER_LEN];
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let stored_crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&h[8..16]);
        let seq = u64::from_le_bytes(seq_bytes);
        if len > MAX_PAYLOAD_LEN {
            return Ok(Step::Invalid {
                offset,
                reason: format!("record length {len} exceeds the {MAX_PAYLOAD_LEN}-byte maximum"),
            });
        }
        if !self.fill(buf, RECORD_HEADER_LEN + len)? {
            let have = self.end - self.start - RECORD_HEADER_LEN;
            return Ok(Step::Invalid {
                offset,
                reason: format!("incomplete record payload ({have} of {len} bytes)"),
            });
        }
        // The checksum covers seq ++ payload, which sit contiguously after len and crc.
        let covered = self.start + 8..self.start + RECORD_HEADER_LEN + len;
        let crc = crc32c::crc32c(&buf[covered]);
        if crc != stored_crc {
            return Ok(Step::Invalid {
                offset,
                reason: format!(
                    "record checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
                ),
            });
        }
        if seq != self.next_seq {
            return Ok(Step::Invalid {
                offset,
                reason: format!("record has sequence {seq}, expected {}", self.next_seq),
            });
        }
        let payload = self.start + RECORD_HEADER_LEN..self.start + RECORD_HEADER_LEN + len;
        self.start = payload.end;
        self.next_seq += 1;
        Ok(Step::Record { seq, payload })
    }
}
