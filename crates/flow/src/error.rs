/// Why a datagram (or a persisted state) was rejected. Nothing was changed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FlowError {
    /// Shorter than the header (or than what the header announces).
    #[error("datagram too short: {got} bytes, need {need}")]
    TooShort { need: usize, got: usize },
    /// Not 5, 9 or 10.
    #[error("unsupported export version {0}")]
    BadVersion(u16),
    /// The header's length (IPFIX) or record count (v5) disagrees with the datagram.
    #[error("length mismatch: header says {declared} bytes, datagram has {actual}")]
    BadLength { declared: usize, actual: usize },
    /// A set header is shorter than 4 bytes or the set overruns the message.
    #[error("bad set at offset {offset}: {reason}")]
    BadSet { offset: usize, reason: &'static str },
    /// A template record is inconsistent (overruns its set, bad id, bad counts).
    #[error("bad template {id}: {reason}")]
    BadTemplate { id: u16, reason: &'static str },
    /// A data record does not fit its set (variable-length field overrun).
    #[error("bad record of template {template}: {reason}")]
    BadRecord { template: u16, reason: &'static str },
    /// [`Collector::import_state`](crate::Collector::import_state) input is not a
    /// state this crate exported.
    #[error("bad persisted state: {0}")]
    BadState(&'static str),
}

impl FlowError {
    /// Stable snake_case label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            FlowError::TooShort { .. } => "too_short",
            FlowError::BadVersion(_) => "bad_version",
            FlowError::BadLength { .. } => "bad_length",
            FlowError::BadSet { .. } => "bad_set",
            FlowError::BadTemplate { .. } => "bad_template",
            FlowError::BadRecord { .. } => "bad_record",
            FlowError::BadState(_) => "bad_state",
        }
    }
}
