//! Automatic response: rules that turn findings, usage and connectivity
//! events into actions (notify, throttle, quarantine, block, set the
//! lifecycle), with a cooldown, an escalation ladder and expiry.
//!
//! Rules live in the journal (`Event::UpsertRule`), and the engine decides
//! actions inside `apply`, so the same journal always gives the same actions
//! with the same ids: a replay re-decides nothing differently and a backtest
//! is a replay with the rule in dry-run. Sending what an action means to the
//! network (CoA, Disconnect) is the enforcement adapter's job; its answer
//! comes back as `Event::ActionResult` for the audit trail.

use crate::finding::{FindingKind, Severity};
use crate::ids::Digits;
use crate::inventory::{validate_slug, FieldError, Lifecycle};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Most rules (bounds the work per event).
pub const MAX_RULES: usize = 256;
/// Most steps in an escalation ladder.
pub const MAX_STEPS: usize = 8;

/// Whether a rule acts or only records what it would have done.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub enum RuleMode {
    #[default]
    Enforce,
    DryRun,
}

impl RuleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleMode::Enforce => "enforce",
            RuleMode::DryRun => "dry-run",
        }
    }

    pub fn parse(s: &str) -> Option<RuleMode> {
        match s.trim() {
            "enforce" => Some(RuleMode::Enforce),
            "dry-run" | "dry_run" | "dryrun" => Some(RuleMode::DryRun),
            _ => None,
        }
    }
}

/// Which devices a rule applies to (all set fields must match).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct RuleScope {
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub imsi: Option<Digits>,
}

/// Usage periods a threshold can be set on.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum UsagePeriod {
    /// Bytes sent (uplink) in the current UTC day.
    Day,
    /// Bytes up and down in the current calendar month (UTC).
    Month,
}

/// Connectivity events a rule can fire on.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ConnectivityEvent {
    CameOnline,
    WentOffline,
    CountryChanged,
    ImeiChanged,
}

impl ConnectivityEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectivityEvent::CameOnline => "came_online",
            ConnectivityEvent::WentOffline => "went_offline",
            ConnectivityEvent::CountryChanged => "country_changed",
            ConnectivityEvent::ImeiChanged => "imei_changed",
        }
    }
}

/// What makes a rule fire.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Trigger {
    /// A finding of one of `types` (empty: any) at `min_severity` or above.
    Finding {
        types: Vec<FindingKind>,
        min_severity: Severity,
    },
    /// Usage in the period crossed `max_bytes`.
    Usage {
        period: UsagePeriod,
        max_bytes: u64,
    },
    Connectivity {
        event: ConnectivityEvent,
    },
}

/// What an action does.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ActionKind {
    /// Tell people (the alerts layer delivers it); changes nothing.
    Notify,
    /// Limit the device's rate.
    Throttle {
        kbps: u32,
    },
    /// Only the group's allow-list gets through.
    Quarantine,
    /// No service: the session is disconnected and admission rejects.
    Block,
    /// Set the lifecycle state directly.
    SetLifecycle {
        state: Lifecycle,
    },
    /// Undo a throttle, a quarantine or a block (back to active).
    Unthrottle,
    Release,
    Unblock,
}

impl ActionKind {
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Notify => "notify",
            ActionKind::Throttle { .. } => "throttle",
            ActionKind::Quarantine => "quarantine",
            ActionKind::Block => "block",
            ActionKind::SetLifecycle { .. } => "set_lifecycle",
            ActionKind::Unthrottle => "unthrottle",
            ActionKind::Release => "release",
            ActionKind::Unblock => "unblock",
        }
    }

    /// The lifecycle state the action leads to, given the current one
    /// (None: it does not change the lifecycle).
    pub fn target(&self, current: Lifecycle) -> Option<Lifecycle> {
        match self {
            ActionKind::Notify => None,
            ActionKind::Throttle { .. } => Some(Lifecycle::Throttled),
            ActionKind::Quarantine => Some(Lifecycle::Quarantined),
            ActionKind::Block => Some(Lifecycle::Blocked),
            ActionKind::SetLifecycle { state } => Some(*state),
            ActionKind::Unthrottle => {
                (current == Lifecycle::Throttled).then_some(Lifecycle::Active)
            }
            ActionKind::Release => (current == Lifecycle::Quarantined).then_some(Lifecycle::Active),
            ActionKind::Unblock => (current == Lifecycle::Blocked).then_some(Lifecycle::Active),
        }
    }

    /// The action that undoes this one when it expires.
    pub fn reversal(&self) -> Option<ActionKind> {
        match self {
            ActionKind::Throttle { .. } => Some(ActionKind::Unthrottle),
            ActionKind::Quarantine => Some(ActionKind::Release),
            ActionKind::Block => Some(ActionKind::Unblock),
            _ => None,
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionKind::Throttle { kbps } => write!(f, "throttle to {kbps} kbit/s"),
            ActionKind::SetLifecycle { state } => write!(f, "set lifecycle {state}"),
            other => f.write_str(other.name()),
        }
    }
}

/// How severe an enforcement state is, so that escalation never steps down.
pub fn strength(l: Lifecycle) -> u8 {
    match l {
        Lifecycle::Active => 0,
        Lifecycle::Throttled => 1,
        Lifecycle::Quarantined => 2,
        Lifecycle::Blocked => 3,
        Lifecycle::Retired => 4,
    }
}

/// One rung of the escalation ladder.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Step {
    pub action: ActionKind,
    /// Undo the action after this long (None: until a person does).
    pub expire_secs: Option<u32>,
}

/// A response rule.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Rule {
    /// Stable slug.
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub mode: RuleMode,
    pub scope: RuleScope,
    pub trigger: Trigger,
    /// The n-th firing within `escalation_window_secs` takes step n (the
    /// last step repeats).
    pub steps: Vec<Step>,
    /// At most one action of this rule per device per this long.
    pub cooldown_secs: u32,
    /// Firings further apart than this start the ladder again.
    pub escalation_window_secs: u32,
}

impl Rule {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_slug("id", &self.id)?;
        let err = |field: &'static str, m: &str| FieldError {
            field,
            message: m.to_string(),
        };
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(err("steps", "a rule needs 1 to 8 steps"));
        }
        for s in &self.steps {
            if let ActionKind::Throttle { kbps } = s.action {
                if kbps == 0 {
                    return Err(err("steps", "throttle needs a positive kbps"));
                }
            }
            if s.expire_secs == Some(0) {
                return Err(err("steps", "expire_secs must be positive"));
            }
        }
        if let Trigger::Usage { max_bytes: 0, .. } = self.trigger {
            return Err(err("trigger", "max_bytes must be positive"));
        }
        Ok(())
    }

    /// Whether the device (tenant, group, IMSI) is in scope.
    pub fn in_scope(&self, tenant: Option<&str>, group: Option<&str>, imsi: Digits) -> bool {
        self.scope
            .tenant
            .as_deref()
            .is_none_or(|t| Some(t) == tenant)
            && self.scope.group.as_deref().is_none_or(|g| Some(g) == group)
            && self.scope.imsi.is_none_or(|i| i == imsi)
    }
}

/// What made a rule fire, for matching and for the audit trail.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Signal {
    Finding {
        id: u64,
        kind: FindingKind,
        severity: Severity,
        summary: String,
    },
    Usage {
        period: UsagePeriod,
        bytes: u64,
        before: u64,
        /// End of the period `bytes` counts (Unix ms): where the counter
        /// starts again from 0, so the usage is back under any limit.
        period_end: i64,
    },
    Connectivity {
        event: ConnectivityEvent,
        detail: String,
    },
}

/// A usage limit that a device exceeded in a period, named for the alert it
/// raised: see [`crate::Output::UsageBackUnder`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum UsageLimit {
    /// The usage trigger of the response rule with this id (its `notify`
    /// steps raise the alert `rule:<id>`).
    Rule(String),
    /// A per-period volume finding of detection (`declared_volume`).
    Finding(FindingKind),
}

impl Signal {
    pub fn matches(&self, t: &Trigger) -> bool {
        match (self, t) {
            (
                Signal::Finding { kind, severity, .. },
                Trigger::Finding {
                    types,
                    min_severity,
                },
            ) => (types.is_empty() || types.contains(kind)) && severity >= min_severity,
            (
                Signal::Usage {
                    period,
                    bytes,
                    before,
                    ..
                },
                Trigger::Usage {
                    period: p,
                    max_bytes,
                },
            ) => period == p && *before <= *max_bytes && *bytes > *max_bytes,
            (Signal::Connectivity { event, .. }, Trigger::Connectivity { event: e }) => event == e,
            _ => false,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Signal::Finding {
                kind,
                severity,
                summary,
                ..
            } => format!("{} ({}): {summary}", kind.as_str(), severity.as_str()),
            Signal::Usage { period, bytes, .. } => format!(
                "usage {} {} bytes this {}",
                if *period == UsagePeriod::Day {
                    "sent"
                } else {
                    "of"
                },
                bytes,
                if *period == UsagePeriod::Day {
                    "day"
                } else {
                    "month"
                }
            ),
            Signal::Connectivity { event, detail } => format!("{}: {detail}", event.as_str()),
        }
    }

    pub fn finding(&self) -> Option<u64> {
        match self {
            Signal::Finding { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// A decided action (an entry of the audit trail).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Action {
    /// Deterministic: (journal seq << 8) | index, like findings.
    pub id: u64,
    pub time: i64,
    pub imsi: Digits,
    pub tenant: Option<String>,
    pub group: Option<String>,
    /// "rule:<id>", "rule:<id> (expiry)" or "user:<name>".
    pub actor: String,
    pub rule: Option<String>,
    pub kind: ActionKind,
    pub mode: RuleMode,
    /// Why, in one line (the finding's summary, the usage, the person's reason).
    pub reason: String,
    /// The finding behind it, if any.
    pub finding: Option<u64>,
    /// Lifecycle before and after (equal for notify and dry runs).
    pub from: Option<Lifecycle>,
    pub to: Option<Lifecycle>,
    /// When it undoes itself, Unix ms.
    pub expires: Option<i64>,
    /// Escalation step taken (0-based).
    pub step: u8,
    /// Whether the network must be told (CoA/Disconnect): enforce mode and
    /// a change of lifecycle.
    pub enforce: bool,
}

/// What the network answered to an enforced action.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ActionResult {
    /// The action's id.
    pub action: u64,
    pub time: i64,
    pub imsi: Digits,
    /// "ack", "nak", "session_gone", "timeout", "no_session", "error".
    pub result: String,
    /// Error-Cause, NAS name, round trip...
    pub detail: String,
    pub attempts: u32,
    /// What was sent, human-readable ("Disconnect-Request to pgw-1 ...").
    pub sent: Vec<String>,
}

/// Per device and rule: where the device is on the ladder.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct RuleState {
    pub last_action: i64,
    pub window_start: i64,
    pub count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_match_triggers() {
        let f = Signal::Finding {
            id: 1,
            kind: FindingKind::Scanning,
            severity: Severity::Critical,
            summary: "x".into(),
        };
        let t = Trigger::Finding {
            types: vec![FindingKind::Scanning],
            min_severity: Severity::Major,
        };
        assert!(f.matches(&t));
        let t2 = Trigger::Finding {
            types: vec![FindingKind::Ddos],
            min_severity: Severity::Warning,
        };
        assert!(!f.matches(&t2));
        let any = Trigger::Finding {
            types: vec![],
            min_severity: Severity::Critical,
        };
        assert!(f.matches(&any));
        let u = Signal::Usage {
            period: UsagePeriod::Day,
            bytes: 2_000,
            before: 900,
            period_end: 86_400_000,
        };
        assert!(u.matches(&Trigger::Usage {
            period: UsagePeriod::Day,
            max_bytes: 1_000
        }));
        assert!(
            !u.matches(&Trigger::Usage {
                period: UsagePeriod::Day,
                max_bytes: 500
            }),
            "crossed before this record"
        );
        assert!(!u.matches(&Trigger::Usage {
            period: UsagePeriod::Month,
            max_bytes: 1_000
        }));
    }

    #[test]
    fn reversals_and_targets() {
        assert_eq!(
            ActionKind::Block.target(Lifecycle::Active),
            Some(Lifecycle::Blocked)
        );
        assert_eq!(ActionKind::Unblock.target(Lifecycle::Throttled), None);
        assert_eq!(
            ActionKind::Unblock.target(Lifecycle::Blocked),
            Some(Lifecycle::Active)
        );
        assert_eq!(
            ActionKind::Throttle { kbps: 64 }.reversal(),
            Some(ActionKind::Unthrottle)
        );
        assert_eq!(ActionKind::Notify.target(Lifecycle::Active), None);
        assert!(strength(Lifecycle::Blocked) > strength(Lifecycle::Throttled));
    }
}
