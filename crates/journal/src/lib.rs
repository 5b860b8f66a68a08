//! Durable event journal for simguard.
//!
//! Every ingested event is appended here and made durable by a group commit
//! before it is acknowledged to the network; after a restart the engine is
//! rebuilt from its latest snapshot plus a replay of this journal.
//!
//! # On-disk format
//!
//! The journal is a directory of segment files named after the sequence
//! number of their first record, `NNNNNNNNNNNNNNNNNNNN.sgj` (20 digits, so
//! names sort numerically). Each segment starts with a 20-byte header:
//!
//! ```text
//! "SGJ1" | u32 version | u64 first_seq | u32 crc32c(previous 16 bytes)
//! ```
//!
//! followed by records, all integers little-endian:
//!
//! ```text
//! u32 payload_len | u32 crc32c(seq ++ payload) | u64 seq | payload
//! ```
//!
//! Sequence numbers start at 1 and are strictly consecutive across segments.
//! Payloads are opaque bytes of at most [`MAX_PAYLOAD_LEN`].
//!
//! # Crash safety
//!
//! A commit writes the batch and fdatasyncs once. A crash can therefore only
//! leave an incomplete or garbled tail in the newest segment, and
//! [`Journal::open`] cuts it off. Anything wrong anywhere else is reported
//! as [`JournalError::Corrupt`] rather than silently dropped. A `LOCK` file
//! held with `flock` keeps a second process from writing the same directory.

mod error;
mod format;
mod journal;
mod lock;
mod reader;
mod segment;

pub use error::JournalError;
pub use format::MAX_PAYLOAD_LEN;
pub use journal::{CommitStats, Journal, JournalOptions, Recovery};
pub use reader::Reader;
