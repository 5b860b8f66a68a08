use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::error::JournalError;
use crate::format::{
    encode_segment_header, list_segments, segment_path, sync_dir, MAX_PAYLOAD_LEN,
    RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::lock::DirLock;
use crate::reader::Reader;
use crate::segment::{Opened, SegmentCursor, Step, READ_BUF_LEN};

/// Cuts the commit buffer back to `len` when dropped, unless `len` was
/// disarmed to `usize::MAX`.
struct TruncateOnUnwind<'a> {
    /// The commit buffer being appended to.
    buf: &'a mut Vec<u8>,
    /// Length before the record being appended.
    len: usize,
}

impl Drop for TruncateOnUnwind<'_> {
    fn drop(&mut self) {
        self.buf.truncate(self.len);
    }
}

/// Commit buffer capacity kept between commits.
const RETAINED_BUF_BYTES: usize = 32 * 1024 * 1024;

/// How a [`Journal`] writes.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// A segment is closed and a new one started once it has reached this
    /// size. Smaller segments make pruning finer-grained; larger ones mean
    /// fewer files and fewer rolls (each roll costs two extra fsyncs).
    pub segment_bytes: u64,
    /// Whether commits fsync. Only benchmarks and tests may turn this off:
    /// without it an acknowledged event can be lost in a power failure.
    pub fsync: bool,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_bytes: 64 * 1024 * 1024,
            fsync: true,
        }
    }
}

/// What [`Journal::open`] found and repaired.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Segment files in the journal after recovery.
    pub segments: usize,
    /// Valid records found across all segments.
    pub records: u64,
    /// Sequence number of the last valid record (0 if none).
    pub last_seq: u64,
    /// Bytes cut off the newest segment (or the size of a torn segment file that was removed).
    pub truncated_bytes: u64,
    /// The segment that was cut and the offset it was cut at, if recovery
    /// changed anything on disk. Offset 0 means the whole file was removed
    /// because its header was never completely written.
    pub truncated_at: Option<(PathBuf, u64)>,
}

/// What one [`Journal::commit`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitStats {
    /// Records made durable (0 for a no-op commit).
    pub records: u64,
    /// Record bytes written, headers included.
    pub bytes: u64,
    /// Time spent in fdatasync (and, on a roll, in the new segment's fsyncs).
    pub fsync: Duration,
    /// First sequence number made durable (0 for a no-op commit).
    pub first_seq: u64,
    /// Last sequence number made durable (0 for a no-op commit).
    pub last_seq: u64,
}

/// A point in the commit buffer where a new segment must start, decided at
/// append time so no segment grows past `segment_bytes` by more than one record.
#[derive(Debug, Clone, Copy)]
struct Split {
    /// Byte offset in the commit buffer of the first record of the new segment.
    offset: usize,
    /// Its sequence number, which names the new segment file.
    first_seq: u64,
}

/// A closed segment; tracked so pruning needs no directory listing.
#[derive(Debug)]
struct Sealed {
    /// First sequence number; the next segment's first bounds this one's range.
    first_seq: u64,
    /// The file to delete when pruned.
    path: PathBuf,
}

/// Test-only fault injection, to exercise commit error paths that real
/// disks rarely produce on demand.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The next record write writes half its bytes and then fails.
    Write,
    /// The next fdatasync of the active segment fails.
    Sync,
    /// The next segment creation fails before touching the disk.
    Roll,
}

/// The single writer of a journal directory.
///
/// Records are buffered by [`append`](Journal::append) and made durable in
/// groups by [`commit`](Journal::commit): one `write` and one `fdatasync` per
/// commit, whatever the number of records (plus two fsyncs when the commit
/// crosses into a new segment). Dropping the journal discards uncommitted
/// records, exactly like a crash would.
///
/// # Commit failures
///
/// If writing fails (for example the disk is full), the segment is cut back
/// to its last durable length and the journal stays usable: the records stay
/// pending and `commit` can be retried once the cause is fixed.
///
/// If fdatasync fails, the kernel may already have dropped the dirty pages,
/// so a retried fsync could report success for data that is gone. The journal
/// is then *poisoned*: every later `append`/`commit` returns
/// [`JournalError::Poisoned`], and the caller must drop it and reopen, which
/// recovers whatever really is on disk. Either way [`durable_seq`](Journal::durable_seq)
/// only ever covers records whose fsync succeeded, so the caller never
/// acknowledges a record that is not durable.
pub struct Journal {
    /// The journal directory; new segment names and error messages are built from it.
    dir: PathBuf,
    /// Segment size and fsync policy.
    opts: JournalOptions,
    /// Keeps any other process from writing this directory while we live.
    lock: DirLock,
    /// The segment records are written to, with explicit offsets (`pwrite`),
    /// so rolling back a failed write needs no seek bookkeeping.
    active: File,
    /// Path of `active`, for errors and for sealing it on a roll.
    active_path: PathBuf,
    /// First sequence number of `active`; bounds the range of the newest sealed segment.
    active_first_seq: u64,
    /// Bytes of `active` that were written successfully, i.e. where the next
    /// write goes and what a failed write is rolled back to.
    active_len: u64,
    /// Closed segments, oldest first, for `prune_before`.
    sealed: VecDeque<Sealed>,
    /// Encoded records awaiting commit, reused across commits so appends do
    /// not allocate once it has grown to the working batch size.
    buf: Vec<u8>,
    /// Where in `buf` new segments start.
    splits: Vec<Split>,
    /// Sequence number of the last appended record.
    last_seq: u64,
    /// Sequence number of the last record whose commit (fsync) succeeded.
    durable_seq: u64,
    /// Set when the on-disk state became unknown; see the type docs.
    poisoned: bool,
    /// Injected failure for the next matching operation.
    #[cfg(test)]
    fault: Option<Fault>,
}

impl Journal {
    /// Opens (creating if missing) the journal in `dir`, takes its lock, and
    /// recovers: every segment but the newest must be intact; the newest is
    /// cut back to its last complete valid record.
    pub fn open(
        dir: impl AsRef<Path>,
        opts: JournalOptions,
    ) -> Result<(Journal, Recovery), JournalError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| JournalError::io(&dir, e))?;
            if opts.fsync {
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    sync_dir(parent)?;
                }
            }
        }
        let lock = DirLock::acquire(&dir)?;
        let mut segments = list_segments(&dir)?;
        let mut recovery = Recovery::default();

        // The creation of the newest segment may have been interrupted before
        // its header was durable. It cannot hold records (the header is synced
        // before any record is written), so it is dropped.
        let mut next_seq_hint = 1;
        if let Some(newest) = segments.last() {
            let file = File::open(&newest.path).map_err(|e| JournalError::io(&newest.path, e))?;
            if let Opened::TornHeader { file_len } =
                SegmentCursor::open(&newest.path, file, newest.first_seq)?
            {
                warn!(
                    path = %newest.path.display(),
                    bytes = file_len,
                    "journal: removing segment whose creation was interrupted by a crash"
                );
                fs::remove_file(&newest.path).map_err(|e| JournalError::io(&newest.path, e))?;
                if opts.fsync {
                    sync_dir(&dir)?;
                }
                recovery.truncated_bytes = file_len;
                recovery.truncated_at = Some((newest.path.clone(), 0));
                next_seq_hint = newest.first_seq;
                segments.pop();
            }
        }

        let mut buf = vec![0u8; READ_BUF_LEN];
        let mut sealed = VecDeque::new();
        let mut expected: Option<u64> = None;
        let mut active = None;
        let count = segments.len();
        for (i, seg) in segments.into_iter().enumerate() {
            let is_newest = i + 1 == count;
            let file = OpenOptions::new()
                .read(true)
                .write(is_newest)
                .open(&seg.path)
                .map_err(|e| JournalError::io(&seg.path, e))?;
            let mut cursor = match SegmentCursor::open(&seg.path, file, seg.first_seq)? {
                Opened::Cursor(c) => c,
                Opened::TornHeader { .. } => {
                    return Err(JournalError::corrupt(
                        &seg.path,
                        0,
                        "segment header is missing or incomplete but newer segments exist",
                    ))
                }
            };
            if let Some(expected) = expected {
                if seg.first_seq != expected {
                    return Err(JournalError::corrupt(
                        &seg.path,
                        0,
                        format!(
                            "segment starts at sequence {} but the previous segment ends at {}",
                            seg.first_seq,
                            expected - 1
                        ),
                    ));
                }
            }
            let valid_len = loop {
                match cursor.next_record(&mut buf)? {
                    Step::Record { .. } => recovery.records += 1,
                    Step::End { offset } => break offset,
                    Step::Invalid { offset, reason } if !is_newest => {
                        return Err(JournalError::corrupt(&seg.path, offset, reason))
                    }
                    Step::Invalid { offset, reason } => {
                        let file_len = cursor
                            .file
                            .metadata()
                            .map_err(|e| JournalError::io(&seg.path, e))?
                            .len();
                        cursor
                            .file
                            .set_len(offset)
                            .map_err(|e| JournalError::io(&seg.path, e))?;
                        if opts.fsync {
                            cursor
                                .file
                                .sync_all()
                                .map_err(|e| JournalError::io(&seg.path, e))?;
                        }
                        let cut = file_len - offset;
                        warn!(
                            path = %seg.path.display(),
                            offset,
                            bytes = cut,
                            reason = %reason,
                            "journal: truncated torn tail left by a crash"
                        );
                        recovery.truncated_bytes += cut;
                        recovery.truncated_at = Some((seg.path.clone(), offset));
                        break offset;
                    }
                }
            };
            expected = Some(cursor.next_seq);
            if is_newest {
                active = Some((seg, cursor.file, valid_len));
            } else {
                sealed.push_back(Sealed {
                    first_seq: seg.first_seq,
                    path: seg.path,
                });
            }
        }

        let next_seq = expected.unwrap_or(next_seq_hint);
        let last_seq = next_seq - 1;
        let (active_file, active_path, active_first_seq, active_len) = match active {
            Some((seg, file, len)) => (file, seg.path, seg.first_seq, len),
            None => {
                let path = segment_path(&dir, next_seq);
                let file = create_segment(&dir, &path, next_seq, opts.fsync)?;
                (file, path, next_seq, SEGMENT_HEADER_LEN as u64)
            }
        };
        recovery.segments = sealed.len() + 1;
        recovery.last_seq = last_seq;
        if let Some((path, offset)) = &recovery.truncated_at {
            warn!(
                dir = %dir.display(),
                segments = recovery.segments,
                records = recovery.records,
                last_seq,
                truncated_bytes = recovery.truncated_bytes,
                truncated_path = %path.display(),
                truncated_offset = offset,
                "journal: recovered after cutting a torn tail (the previous process crashed mid-commit; \
                 only unacknowledged records were lost)"
            );
        } else {
            info!(
                dir = %dir.display(),
                segments = recovery.segments,
                records = recovery.records,
                last_seq,
                "journal: recovered"
            );
        }

        let journal = Journal {
            dir,
            opts,
            lock,
            active: active_file,
            active_path,
            active_first_seq,
            active_len,
            sealed,
            buf: Vec::new(),
            splits: Vec::new(),
            last_seq,
            durable_seq: last_seq,
            poisoned: false,
            #[cfg(test)]
            fault: None,
        };
        Ok((journal, recovery))
    }

    /// Buffers one record and returns its sequence number. Not durable until
    /// the next successful [`commit`](Journal::commit).
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, JournalError> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(JournalError::TooLarge { len: payload.len() });
        }
        self.append_with(|buf| buf.extend_from_slice(payload))
    }

    /// Buffers one record whose payload `f` encodes directly into the commit
    /// buffer, saving a copy. The buffer already holds earlier records: `f`
    /// must only push bytes. If it shrinks the buffer the journal is poisoned
    /// and [`JournalError::BufferShrunk`] is returned. A payload over
    /// [`MAX_PAYLOAD_LEN`](crate::MAX_PAYLOAD_LEN) is removed again and
    /// rejected with [`JournalError::TooLarge`]; no sequence number is used up.
    pub fn append_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> Result<u64, JournalError> {
        self.check_usable()?;
        let seq = self.last_seq + 1;
        let starts_segment = self.tail_segment_full();
        let start = self.buf.len();
        let payload_start = start + RECORD_HEADER_LEN;
        self.buf.resize(payload_start, 0);
        {
            // If `f` panics and the caller catches it, the placeholder header
            // must not stay behind as a garbage record in the next commit.
            let mut guard = TruncateOnUnwind {
                buf: &mut self.buf,
                len: start,
            };
            f(guard.buf);
            guard.len = usize::MAX;
        }
        if self.buf.len() < payload_start {
            self.poisoned = true;
            return Err(JournalError::BufferShrunk {
                dir: self.dir.clone(),
                expected_at_least: payload_start,
                actual: self.buf.len(),
            });
        }
        let len = self.buf.len() - payload_start;
        if len > MAX_PAYLOAD_LEN {
            self.buf.truncate(start);
            return Err(JournalError::TooLarge { len });
        }
        self.buf[start + 8..payload_start].copy_from_slice(&seq.to_le_bytes());
        let crc = crc32c::crc32c(&self.buf[start + 8..]);
        self.buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        if starts_segment {
            self.splits.push(Split {
                offset: start,
                first_seq: seq,
            });
        }
        self.last_seq = seq;
        Ok(seq)
    }

    /// Whether the segment the next record would land in has reached
    /// `segment_bytes` and already holds a record, so the next record starts a new one.
    fn tail_segment_full(&self) -> bool {
        let (bytes, has_records) = match self.splits.last() {
            Some(split) => (
                SEGMENT_HEADER_LEN as u64 + (self.buf.len() - split.offset) as u64,
                true,
            ),
            None => (
                self.active_len + self.buf.len() as u64,
                self.active_len > SEGMENT_HEADER_LEN as u64 || !self.buf.is_empty(),
            ),
        };
        has_records && bytes >= self.opts.segment_bytes
    }

    /// Writes every pending record and fdatasyncs once, then reports what
    /// became durable. A no-op returning zeroed stats if nothing is pending.
    /// See the type docs for what an error leaves behind.
    pub fn commit(&mut self) -> Result<CommitStats, JournalError> {
        self.check_usable()?;
        if self.pending() == 0 {
            return Ok(CommitStats::default());
        }
        let mut stats = CommitStats {
            records: self.pending(),
            first_seq: self.durable_seq + 1,
            last_seq: self.last_seq,
            ..CommitStats::default()
        };
        let mut done_bytes = 0;
        let mut done_splits = 0;
        let result = self.commit_chunks(&mut done_bytes, &mut done_splits, &mut stats);
        if done_bytes == self.buf.len() && done_splits == self.splits.len() {
            self.buf.clear();
            self.splits.clear();
            // One freak burst should not pin its memory forever; normal
            // batches stay below this and keep reusing the allocation.
            if self.buf.capacity() > RETAINED_BUF_BYTES {
                self.buf.shrink_to(RETAINED_BUF_BYTES);
            }
        } else {
            // Partial progress (only possible across a roll): keep exactly the
            // records that are not durable, so a retry writes each record once.
            self.buf.drain(..done_bytes);
            self.splits.drain(..done_splits);
            for split in &mut self.splits {
                split.offset -= done_bytes;
            }
        }
        result.map(|()| stats)
    }

    /// Writes the buffer one segment's worth at a time; `done_bytes` and
    /// `done_splits` report progress that is durable even if this fails.
    fn commit_chunks(
        &mut self,
        done_bytes: &mut usize,
        done_splits: &mut usize,
        stats: &mut CommitStats,
    ) -> Result<(), JournalError> {
        let mut chunk_start = 0;
        for k in 0..=self.splits.len() {
            let (chunk_end, chunk_last_seq) = match self.splits.get(k) {
                Some(split) => (split.offset, split.first_seq - 1),
                None => (self.buf.len(), self.last_seq),
            };
            if chunk_end > chunk_start {
                self.write_chunk(chunk_start, chunk_end)?;
                stats.fsync += self.sync_active()?;
                stats.bytes += (chunk_end - chunk_start) as u64;
                self.durable_seq = chunk_last_seq;
                *done_bytes = chunk_end;
            }
            if let Some(split) = self.splits.get(k).copied() {
                let started = Instant::now();
                self.roll(split.first_seq)?;
                if self.opts.fsync {
                    stats.fsync += started.elapsed();
                }
                *done_splits = k + 1;
            }
            chunk_start = chunk_end;
        }
        Ok(())
    }

    /// Appends `buf[from..to]` to the active segment, undoing a partial write on failure.
    fn write_chunk(&mut self, from: usize, to: usize) -> Result<(), JournalError> {
        let bytes = &self.buf[from..to];
        #[cfg(test)]
        let result = if self.fault == Some(Fault::Write) {
            self.fault = None;
            let half = &bytes[..bytes.len() / 2];
            self.active
                .write_all_at(half, self.active_len)
                .and(Err(io::Error::other("injected write failure")))
        } else {
            self.active.write_all_at(bytes, self.active_len)
        };
        #[cfg(not(test))]
        let result = self.active.write_all_at(bytes, self.active_len);
        match result {
            Ok(()) => {
                self.active_len += bytes.len() as u64;
                Ok(())
            }
            Err(source) => {
                // Cut off whatever part of the write landed, so a retry
                // appends at a record boundary. If even that fails, the file
                // state is unknown.
                if let Err(e) = self.active.set_len(self.active_len) {
                    warn!(
                        path = %self.active_path.display(),
                        error = %e,
                        "journal: cannot roll back a failed write; poisoning"
                    );
                    self.poisoned = true;
                }
                Err(JournalError::io(&self.active_path, source))
            }
        }
    }

    /// fdatasyncs the active segment; a failure poisons the journal.
    fn sync_active(&mut self) -> Result<Duration, JournalError> {
        if !self.opts.fsync {
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        #[cfg(test)]
        let result = if self.fault == Some(Fault::Sync) {
            self.fault = None;
            Err(io::Error::other("injected fsync failure"))
        } else {
            self.active.sync_data()
        };
        #[cfg(not(test))]
        let result = self.active.sync_data();
        let elapsed = started.elapsed();
        result.map_err(|e| {
            self.poisoned = true;
            JournalError::io(&self.active_path, e)
        })?;
        Ok(elapsed)
    }

    /// Seals the active segment and starts a new one at `first_seq`. A
    /// failure to create the file leaves the journal usable; a failure to
    /// make it durable poisons it.
    fn roll(&mut self, first_seq: u64) -> Result<(), JournalError> {
        let path = segment_path(&self.dir, first_seq);
        #[cfg(test)]
        if self.fault == Some(Fault::Roll) {
            self.fault = None;
            return Err(JournalError::io(
                &path,
                io::Error::other("injected roll failure"),
            ));
        }
        // Nothing is durable yet if creating the file fails, so that is retryable.
        let file = create_segment_file(&path, first_seq)?;
        if self.opts.fsync {
            // After a failed fsync the header's fate is unknown; see the type docs.
            if let Err(e) = make_segment_durable(&self.dir, &path, &file) {
                self.poisoned = true;
                return Err(e);
            }
        }
        debug!(path = %path.display(), first_seq, "journal: rolled to a new segment");
        let old_path = std::mem::replace(&mut self.active_path, path);
        self.sealed.push_back(Sealed {
            first_seq: self.active_first_seq,
            path: old_path,
        });
        self.active = file;
        self.active_first_seq = first_seq;
        self.active_len = SEGMENT_HEADER_LEN as u64;
        Ok(())
    }

    fn check_usable(&self) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Records appended but not yet committed.
    pub fn pending(&self) -> u64 {
        self.last_seq - self.durable_seq
    }

    /// Sequence number of the last appended record (0 if none ever).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Sequence number of the last record known durable; everything up to it
    /// may be acknowledged.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether an earlier failure made the journal refuse writes (see the type docs).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Deletes every closed segment whose records all have sequence numbers
    /// below `seq` (typically the first sequence not covered by a snapshot).
    /// The active segment is never deleted. Returns the number of segments deleted.
    pub fn prune_before(&mut self, seq: u64) -> Result<usize, JournalError> {
        let mut deleted = 0;
        while let Some(oldest) = self.sealed.front() {
            let next_first = self
                .sealed
                .get(1)
                .map_or(self.active_first_seq, |s| s.first_seq);
            // The oldest segment holds [oldest.first_seq, next_first - 1].
            if next_first > seq {
                break;
            }
            match fs::remove_file(&oldest.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(JournalError::io(&oldest.path, e)),
            }
            self.sealed.pop_front();
            deleted += 1;
        }
        if deleted > 0 {
            if self.opts.fsync {
                sync_dir(&self.dir)?;
            }
            info!(
                dir = %self.dir.display(),
                deleted,
                before = seq,
                "journal: pruned old segments"
            );
        }
        Ok(deleted)
    }

    /// Calls `f` for every record on disk in `dir` with sequence `>= from_seq`,
    /// in order, and returns how many it visited. Works while a writer has the
    /// journal open (see [`Reader`]). The payload slice is only valid for the
    /// duration of the call.
    pub fn replay<E: From<JournalError>>(
        dir: impl AsRef<Path>,
        from_seq: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut reader = Reader::open(dir, from_seq)?;
        let mut visited = 0;
        while let Some((seq, payload)) = reader.next()? {
            f(seq, payload)?;
            visited += 1;
        }
        Ok(visited)
    }

    /// Path of the directory lock file.
    pub fn lock_path(&self) -> &Path {
        self.lock.path()
    }

    #[cfg(test)]
    pub(crate) fn inject_fault(&mut self, fault: Fault) {
        self.fault = Some(fault);
    }
}

// Hand-written so that logging a journal does not dump its commit buffer.
impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("active", &self.active_path)
            .field("active_len", &self.active_len)
            .field("sealed_segments", &self.sealed.len())
            .field("last_seq", &self.last_seq)
            .field("durable_seq", &self.durable_seq)
            .field("pending_bytes", &self.buf.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.pending() > 0 {
            debug!(
                dir = %self.dir.display(),
                pending = self.pending(),
                "journal: dropped with uncommitted records; they are discarded"
            );
        }
    }
}

/// Creates a segment holding only its header and makes it durable, directory entry included.
fn create_segment(
    dir: &Path,
    path: &Path,
    first_seq: u64,
    fsync: bool,
) -> Result<File, JournalError> {
    let file = create_segment_file(path, first_seq)?;
    if fsync {
        make_segment_durable(dir, path, &file)?;
    }
    Ok(file)
}

fn create_segment_file(path: &Path, first_seq: u64) -> Result<File, JournalError> {
    // Truncating is safe: a file with this name can only be the debris of an
    // earlier failed roll, never one holding records (those all sort before it).
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| JournalError::io(path, e))?;
    file.write_all_at(&encode_segment_header(first_seq), 0)
        .map_err(|e| JournalError::io(path, e))?;
    Ok(file)
}

/// The header must be durable before any record is written after it:
/// recovery relies on a segment with records always having a valid header.
fn make_segment_durable(dir: &Path, path: &Path, file: &File) -> Result<(), JournalError> {
    file.sync_all().map_err(|e| JournalError::io(path, e))?;
    sync_dir(dir)
}

// The server hands the journal to a dedicated writer thread.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Journal>();
    assert_send::<Reader>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::list_segments;

    fn opts(segment_bytes: u64) -> JournalOptions {
        JournalOptions {
            segment_bytes,
            fsync: true,
        }
    }

    fn replay(dir: &Path) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        Journal::replay(dir, 1, |seq, p| {
            out.push((seq, p.to_vec()));
            Ok::<_, JournalError>(())
        })
        .unwrap();
        out
    }

    fn payload(seq: u64) -> Vec<u8> {
        vec![seq as u8; 40 + (seq % 5) as usize]
    }

    fn expected(to: u64) -> Vec<(u64, Vec<u8>)> {
        (1..=to).map(|s| (s, payload(s))).collect()
    }

    #[test]
    fn failed_write_rolls_back_and_commit_can_be_retried() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), opts(1 << 20)).unwrap();
        for s in 1..=3 {
            j.append(&payload(s)).unwrap();
        }
        j.commit().unwrap();
        let len_before = fs::metadata(&j.active_path).unwrap().len();
        for s in 4..=10 {
            j.append(&payload(s)).unwrap();
        }
        j.inject_fault(Fault::Write);
        let err = j.commit().unwrap_err();
        assert!(matches!(err, JournalError::Io { ref path, .. } if path == &j.active_path));
        assert!(!j.is_poisoned());
        assert_eq!((j.durable_seq(), j.pending(), j.last_seq()), (3, 7, 10));
        // The half-written batch was cut off again.
        assert_eq!(fs::metadata(&j.active_path).unwrap().len(), len_before);
        assert_eq!(replay(tmp.path()), expected(3));

        // More records may arrive before the retry; all go out exactly once.
        j.append(&payload(11)).unwrap();
        let stats = j.commit().unwrap();
        assert_eq!((stats.records, stats.first_seq, stats.last_seq), (8, 4, 11));
        assert_eq!(j.durable_seq(), 11);
        drop(j);
        let (_j, rec) = Journal::open(tmp.path(), opts(1 << 20)).unwrap();
        assert_eq!((rec.last_seq, rec.truncated_bytes), (11, 0));
        assert_eq!(replay(tmp.path()), expected(11));
    }

    #[test]
    fn failed_fsync_poisons_until_reopened() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), opts(1 << 20)).unwrap();
        for s in 1..=5 {
            j.append(&payload(s)).unwrap();
        }
        j.commit().unwrap();
        for s in 6..=9 {
            j.append(&payload(s)).unwrap();
        }
        j.inject_fault(Fault::Sync);
        assert!(matches!(j.commit(), Err(JournalError::Io { .. })));
        assert!(j.is_poisoned());
        // Nothing past the failed fsync is reported durable.
        assert_eq!(j.durable_seq(), 5);
        assert!(matches!(j.append(b"x"), Err(JournalError::Poisoned { .. })));
        let err = j.commit().unwrap_err();
        assert!(matches!(err, JournalError::Poisoned { .. }));
        assert!(err.to_string().contains("reopen"), "{err}");
        drop(j);

        // Reopening recovers what is on disk: all acknowledged records, plus
        // (here, since the injected failure did not lose the page cache) the batch.
        let (mut j, rec) = Journal::open(tmp.path(), opts(1 << 20)).unwrap();
        assert!(rec.last_seq >= 5);
        assert_eq!(replay(tmp.path()), expected(rec.last_seq));
        assert_eq!(j.append(b"y").unwrap(), rec.last_seq + 1);
        j.commit().unwrap();
    }

    #[test]
    fn failed_roll_keeps_the_durable_prefix_and_can_be_retried() {
        let tmp = tempfile::tempdir().unwrap();
        let seg = 300;
        let (mut j, _) = Journal::open(tmp.path(), opts(seg)).unwrap();
        // One batch big enough to span several segments.
        for s in 1..=20 {
            j.append(&payload(s)).unwrap();
        }
        assert!(j.splits.len() >= 2, "batch should need rolls");
        let first_split = j.splits[0];
        j.inject_fault(Fault::Roll);
        assert!(j.commit().is_err());
        assert!(!j.is_poisoned());
        // The part before the roll was written and synced; the rest is pending.
        assert_eq!(j.durable_seq(), first_split.first_seq - 1);
        assert_eq!(j.pending(), 20 - j.durable_seq());
        assert_eq!(j.splits[0].offset, 0);
        assert_eq!(replay(tmp.path()), expected(j.durable_seq()));

        let stats = j.commit().unwrap();
        assert_eq!(
            (stats.first_seq, stats.last_seq),
            (first_split.first_seq, 20)
        );
        drop(j);
        let (_j, rec) = Journal::open(tmp.path(), opts(seg)).unwrap();
        assert_eq!(rec.last_seq, 20);
        assert!(rec.segments >= 3);
        assert_eq!(replay(tmp.path()), expected(20));
        // Each segment stays within its size budget (plus at most one record).
        for s in list_segments(tmp.path()).unwrap() {
            let len = fs::metadata(&s.path).unwrap().len();
            assert!(len < seg + 16 + 45, "{} is {len} bytes", s.path.display());
        }
    }

    #[test]
    fn panicking_encoder_leaves_no_garbage_record() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), opts(1 << 20)).unwrap();
        j.append(b"abc").unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = j.append_with(|buf| {
                buf.extend_from_slice(b"partial");
                panic!("encoder bug");
            });
        }));
        assert!(caught.is_err());
        assert_eq!(j.append(b"def").unwrap(), 2);
        j.commit().unwrap();
        drop(j);
        assert_eq!(
            replay(tmp.path()),
            vec![(1, b"abc".to_vec()), (2, b"def".to_vec())]
        );
    }

    #[test]
    fn closure_that_shrinks_the_buffer_poisons() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(tmp.path(), opts(1 << 20)).unwrap();
        j.append(b"abc").unwrap();
        let err = j.append_with(|buf| buf.truncate(2)).unwrap_err();
        assert!(matches!(err, JournalError::BufferShrunk { .. }));
        assert!(j.is_poisoned());
        assert!(matches!(j.commit(), Err(JournalError::Poisoned { .. })));
    }
}
