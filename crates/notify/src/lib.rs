//! Notification channels. Each channel takes one rendered [`Message`] and
//! makes one delivery attempt, returning an [`Outcome`]. Retrying, back-off,
//! circuit breaking and bookkeeping belong to the caller (the server's
//! delivery worker), so a channel keeps no per-message state beyond what its
//! protocol needs (an SMPP session, an SMTP connection pool).
//!
//! - `email`: SMTP with STARTTLS/TLS and auth (lettre).
//! - `sms`: SMPP 3.4 transceiver with keep-alive, reconnection and delivery
//!   receipts.
//! - `webhook`: JSON over HTTP, signed in the Standard Webhooks style.

pub mod retry;

use serde::Serialize;

pub mod email;
pub mod sms;
pub mod webhook;

/// One notification, rendered for every channel. Built once by the worker
/// from an alert (or a digest of several) and handed to the channel of the
/// subscription that routed it.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    /// Stable id of what is being notified: `<alert>.<event>` or
    /// `digest.<subscription>.<window>`. The webhook-id header, the SMTP
    /// Message-ID's local part, and what a receiver deduplicates on. The
    /// same on every retry.
    pub id: String,
    /// Versioned event type, e.g. `alert.raised.v1`, `alert.cleared.v1`,
    /// `alert.digest.v1`.
    pub event_type: String,
    /// Unix ms of the event being notified (not of the attempt).
    pub time: i64,
    /// One line: "[MAJOR] scanning on 901700000000001 (meters/acme)". Email
    /// subject; the start of an SMS.
    pub title: String,
    /// Plain-text body: the device, what happened, the evidence in one line,
    /// and a link to the console.
    pub text: String,
    /// HTML body with the same content as `text`.
    pub html: String,
    /// Short text for SMS; the channel shortens or splits it as it must.
    pub sms: String,
    /// The webhook body (serialized as is).
    pub payload: serde_json::Value,
    /// Email addresses (email) or MSISDNs in international form (SMS).
    /// Empty for webhooks: the endpoint is the channel's.
    pub recipients: Vec<String>,
}

/// What one delivery attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The peer took responsibility for it (SMTP 250, submit_sm_resp OK,
    /// HTTP 2xx). `reference` is the peer's id for it when it gives one
    /// (SMSC message ids, comma-separated for a split message), which later
    /// delivery receipts refer to.
    Delivered {
        detail: String,
        reference: Option<String>,
    },
    /// A failure that may pass: connection refused, time-out, 5xx, 429,
    /// SMTP 4xx, SMPP throttling. The worker retries with back-off.
    Retry { detail: String },
    /// A failure that will not pass by retrying the same message: SMTP 5xx
    /// for a recipient, HTTP 4xx other than 408/429, an SMPP error such as
    /// an invalid destination.
    Failed { detail: String },
}

impl Outcome {
    pub fn detail(&self) -> &str {
        match self {
            Outcome::Delivered { detail, .. }
            | Outcome::Retry { detail }
            | Outcome::Failed { detail } => detail,
        }
    }
}

/// An SMS delivery receipt, matched back to a notification by the SMSC's
/// message id (the `reference` of [`Outcome::Delivered`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The SMSC's message id (receipted_message_id TLV, or `id:` in the
    /// short message text).
    pub message_id: String,
    /// SMPP message state in text form: DELIVRD, EXPIRED, UNDELIV, REJECTD…
    pub state: String,
    /// The receipt's `err:` field, if any.
    pub error: Option<String>,
}
