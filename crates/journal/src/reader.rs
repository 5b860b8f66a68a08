use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::format::{list_segments, segment_path};
use crate::segment::{Opened, SegmentCursor, Step, READ_BUF_LEN};

/// Streams records from a journal directory in sequence order.
///
/// It takes no lock, so it can run while a [`Journal`](crate::Journal) is
/// writing: it sees whatever the writer has handed to the kernel, i.e. every
/// committed record and possibly records of a commit whose fsync is still
/// running (stop at [`Journal::durable_seq`](crate::Journal::durable_seq) if
/// that matters). Uncommitted appends are never visible. An incomplete or invalid
/// record at the end of the newest segment just ends the stream for now;
/// calling [`next`](Reader::next) again later picks up records appended
/// since, including across segment rolls. The same damage in an older
/// segment is reported as [`JournalError::Corrupt`].
pub struct Reader {
    /// The journal directory; successors are looked up here by name as the writer rolls.
    dir: PathBuf,
    /// Records below this are skipped, so replay can start after a snapshot.
    from_seq: u64,
    /// The segment being read; `None` until the directory holds a usable segment.
    cursor: Option<SegmentCursor>,
    /// The successor of the current segment, once seen. Its existence proves
    /// the current segment is complete, which turns a bad tail from "not
    /// written yet" into damage.
    successor: Option<SegmentCursor>,
    /// Newest segment listed when the cursor was positioned; a missing
    /// successor before it means a segment was lost, not that it is yet to come.
    newest_listed: u64,
    /// One buffer for every record and segment, so reading does not allocate per record.
    buf: Vec<u8>,
}

// Hand-written so that logging a reader does not dump its buffer.
impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("dir", &self.dir)
            .field("segment", &self.cursor.as_ref().map(|c| &c.path))
            .field("next_seq", &self.next_seq())
            .finish()
    }
}

impl Reader {
    /// Positions a reader at the first record with sequence `>= from_seq`,
    /// skipping whole segments that end before it.
    ///
    /// Fails with [`JournalError::Pruned`] if records at `from_seq` were
    /// already deleted by [`Journal::prune_before`](crate::Journal::prune_before).
    /// An empty or not-yet-written journal is not an error: the reader yields
    /// nothing until segments appear.
    pub fn open(dir: impl AsRef<Path>, from_seq: u64) -> Result<Reader, JournalError> {
        let mut reader = Reader {
            dir: dir.as_ref().to_path_buf(),
            from_seq: from_seq.max(1),
            cursor: None,
            successor: None,
            newest_listed: 0,
            buf: vec![0; READ_BUF_LEN],
        };
        reader.position()?;
        Ok(reader)
    }

    /// The sequence number the next returned record will have, if it exists.
    pub fn next_seq(&self) -> u64 {
        match &self.cursor {
            Some(c) => c.next_seq.max(self.from_seq),
            None => self.from_seq,
        }
    }

    /// Finds the segment holding `from_seq`. Returns false if there is none yet.
    fn position(&mut self) -> Result<bool, JournalError> {
        if !self.dir.is_dir() {
            return Err(JournalError::io(
                &self.dir,
                io::Error::new(io::ErrorKind::NotFound, "journal directory does not exist"),
            ));
        }
        let segments = list_segments(&self.dir)?;
        let (Some(oldest), Some(newest)) = (segments.first(), segments.last()) else {
            return Ok(false);
        };
        if oldest.first_seq > self.from_seq {
            return Err(JournalError::Pruned {
                dir: self.dir.clone(),
                requested: self.from_seq,
                first_available: oldest.first_seq,
            });
        }
        self.newest_listed = newest.first_seq;
        let Some(start) = segments.iter().rev().find(|s| s.first_seq <= self.from_seq) else {
            return Ok(false);
        };
        match open_segment(&start.path, start.first_seq)? {
            Some(cursor) => {
                self.cursor = Some(cursor);
                Ok(true)
            }
            // The newest segment is still being created; try again on the next call.
            None if start.first_seq == newest.first_seq => Ok(false),
            None => Err(JournalError::corrupt(
                &start.path,
                0,
                "segment header is missing or incomplete but newer segments exist",
            )),
        }
    }

    /// The next record, or `None` if nothing more is on disk right now.
    #[allow(clippy::should_implement_trait)] // lending: the payload borrows the reader's buffer
    pub fn next(&mut self) -> Result<Option<(u64, &[u8])>, JournalError> {
        loop {
            let Some(cursor) = self.cursor.as_mut() else {
                if self.position()? {
                    continue;
                }
                return Ok(None);
            };
            let step = cursor.next_record(&mut self.buf)?;
            let (offset, invalid) = match step {
                Step::Record { seq, payload } => {
                    if seq < self.from_seq {
                        continue;
                    }
                    return Ok(Some((seq, &self.buf[payload])));
                }
                Step::End { offset } => (offset, None),
                Step::Invalid { offset, reason } => (offset, Some(reason)),
            };
            if let Some(next) = self.successor.take() {
                // The current segment was already complete when we last
                // re-read it, so this is its real end.
                if let Some(reason) = invalid {
                    return Err(JournalError::corrupt(&cursor.path, offset, reason));
                }
                self.cursor = Some(next);
                continue;
            }
            let next_seq = cursor.next_seq;
            if next_seq == cursor.first_seq {
                // The writer never rolls away from an empty segment, so one
                // followed by newer segments has lost its records.
                if self.newest_listed > cursor.first_seq {
                    let reason = invalid.unwrap_or_else(|| "segment has no records".into());
                    return Err(JournalError::corrupt(&cursor.path, offset, reason));
                }
                cursor.discard_window();
                return Ok(None);
            }
            let next_path = segment_path(&self.dir, next_seq);
            match open_segment(&next_path, next_seq)? {
                Some(next) => {
                    // The writer only creates a successor after the current
                    // segment is fully written, so re-read our tail once: what
                    // looked incomplete may have been completed meanwhile.
                    cursor.discard_window();
                    self.successor = Some(next);
                }
                None => {
                    if self.newest_listed > cursor.first_seq {
                        // Not the newest segment, so its end is final.
                        if let Some(reason) = invalid {
                            return Err(JournalError::corrupt(&cursor.path, offset, reason));
                        }
                        return Err(JournalError::corrupt(
                            &next_path,
                            0,
                            format!(
                                "segment is missing: {} ends before sequence {next_seq} \
                                 but a newer segment starting at {} exists",
                                cursor.path.display(),
                                self.newest_listed
                            ),
                        ));
                    }
                    cursor.discard_window();
                    return Ok(None);
                }
            }
        }
    }
}

/// Opens a segment for reading; `None` if it does not exist or its header is
/// not complete yet.
fn open_segment(path: &Path, name_seq: u64) -> Result<Option<SegmentCursor>, JournalError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io(path, e)),
    };
    match SegmentCursor::open(path, file, name_seq)? {
        Opened::Cursor(c) => Ok(Some(c)),
        Opened::TornHeader { .. } => Ok(None),
    }
}
