//! simguard's deterministic engine.
//!
//! Journal events go in ([`Event`]), per-device state and [`Output`]s come
//! out. No I/O, no clocks, no randomness: time comes from the events, so the
//! same journal always yields the same state, which is what recovery
//! (snapshot + replay), backtests and tests rely on.

pub mod admission;
pub mod detect;
pub mod device;
pub mod engine;
pub mod event;
pub mod finding;
pub mod geo;
pub mod ids;
pub mod inventory;
pub mod iptable;
pub mod locate;
pub mod mcc;
pub mod policy;
mod prefetch;
pub mod rules;
pub mod time;
pub mod traffic;

pub use device::{Device, OfflineReason, Session};
pub use engine::{
    Engine, EngineError, EngineOptions, EngineStats, FlowOptions, IpTenure, ViolationView,
};
pub use event::{AcctRecord, AcctStatus, Event, FlowBatch, FlowRecord, NasReset};
pub use finding::{Detector, Evidence, Fact, Finding, FindingKind, RecordRef, Severity, Subject};
pub use ids::{Cell, CellKind, Digits, Plmn, TimeZone};
pub use inventory::{DeclaredProfile, DeviceRecord, Group, Lifecycle, Tenant};
pub use policy::{Cidr, FirewallPolicy, PolicyAction, PolicyDirection, PolicyRule, Verdict};
use std::sync::Arc;
pub use traffic::{
    DestKey, DistinctSketch, FlowDirection, RecentFlow, TopCounter, TrafficProfile, Violation,
    WindowView,
};

/// What applying an event produced, for the adapters: the store rolls up
/// usage, metrics count, and later issues turn these into findings and actions.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Output {
    /// Octets to add to a device's hourly usage.
    Usage {
        imsi: Digits,
        /// Start of the hour, Unix ms.
        hour: i64,
        up: u64,
        down: u64,
    },
    /// An IMSI not in the inventory was seen for the first time.
    Unprovisioned {
        imsi: Digits,
        time: i64,
    },
    CameOnline {
        imsi: Digits,
        time: i64,
    },
    WentOffline {
        imsi: Digits,
        time: i64,
        reason: OfflineReason,
    },
    /// The inventory record of a device was created or changed.
    DeviceChanged {
        imsi: Digits,
    },
    TenantChanged {
        id: String,
    },
    GroupChanged {
        id: String,
    },
    LifecycleChanged {
        imsi: Digits,
        time: i64,
        from: Lifecycle,
        to: Lifecycle,
        actor: String,
        reason: String,
    },
    /// A flow no device held either address of at the flow's time.
    UnattributedFlow {
        /// The time it was looked up at (its start, else its end).
        time: i64,
        flow: FlowRecord,
    },
    /// An attributed flow that the device's group policy denies.
    PolicyViolation {
        imsi: Digits,
        /// The time it was attributed at (its start, else its end).
        time: i64,
        /// The evidence.
        flow: FlowRecord,
        direction: FlowDirection,
        /// Index of the deny rule; None when the policy's default denied.
        rule: Option<usize>,
        /// The group whose policy it is.
        group: Arc<str>,
    },
    /// A group's firewall policy was set.
    PolicyChanged {
        group: String,
    },
    /// Detection found something (see [`finding`]).
    Finding(Box<Finding>),
    /// A rule or a person decided an action (see [`rules`]).
    Action(Box<rules::Action>),
    /// The network's answer to an enforced action.
    ActionResult(Box<rules::ActionResult>),
    /// A response rule was created, replaced or deleted.
    RuleChanged {
        id: String,
    },
    /// The period in which a device exceeded a usage limit has ended: the
    /// counter of the new period starts from 0, under the limit, so the
    /// condition is over (the store auto-clears the alert it raised). Once
    /// per device, limit and period in which the limit was exceeded; it
    /// comes out of the first event whose time (accounting or tick) reaches
    /// `period_end`, before that event's own outputs.
    UsageBackUnder {
        imsi: Digits,
        limit: rules::UsageLimit,
        /// End of the period in which the limit was exceeded, Unix ms.
        period_end: i64,
        /// Event time at which it was noticed (>= `period_end`).
        time: i64,
    },
    /// A device's serving network or cell changed (or was first reported):
    /// a point of its location trail. Only records at least as new as the
    /// device's location make one (a late record does not move it back).
    Located {
        imsi: Digits,
        time: i64,
        network: Option<Plmn>,
        cell: Option<Cell>,
    },
}
