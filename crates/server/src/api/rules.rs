//! Response rules over the API: list, create, read, replace, delete, and
//! backtest over the recorded journal.
//!
//! Rules live in the engine and change through the journal
//! (`Event::UpsertRule` / `DeleteRule`), like every other write. The JSON
//! form ([`RuleInput`]) is what people write, here and in the `[[rules]]`
//! array of the configuration file; it is also what the API returns.

use super::audit::{action_view, ActionView};
use super::error::{ApiError, ErrorBody, FieldProblem};
use super::{submit, Caller};
use crate::backtest::{self, BacktestReport, BacktestRequest};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use simguard_engine::inventory::{self, Lifecycle};
use simguard_engine::rules::{
    ActionKind, ConnectivityEvent, Rule, RuleMode, RuleScope, Step, Trigger, UsagePeriod,
    MAX_RULES, MAX_STEPS,
};
use simguard_engine::time::rfc3339;
use simguard_engine::{Engine, Event, FindingKind, Severity};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Default of `cooldown_secs`: one action per device and rule per 10 minutes.
pub const DEFAULT_COOLDOWN_SECS: u32 = 600;
/// Default of `escalation_window_secs`: the ladder restarts after a quiet day.
pub const DEFAULT_ESCALATION_WINDOW_SECS: u32 = 86_400;

// ---- the JSON form ----

/// Which devices a rule applies to; every field set must match.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScopeInput {
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub imsi: Option<String>,
}

/// What makes a rule fire: exactly one of `finding`, `usage`, `connectivity`.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerInput {
    /// A finding of one of `types` (empty or absent: any type) at
    /// `min_severity` (warning, minor, major, critical; default warning) or above.
    Finding {
        #[serde(default)]
        types: Vec<String>,
        #[serde(default)]
        min_severity: Option<String>,
    },
    /// The device's usage crossed `max_bytes` in the period: "day" (bytes
    /// sent, UTC day) or "month" (up and down, calendar month).
    Usage { period: String, max_bytes: u64 },
    /// came_online, went_offline, country_changed or imei_changed.
    Connectivity { event: String },
}

/// One rung of the escalation ladder.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    /// notify, throttle, quarantine, block or set_lifecycle.
    pub action: String,
    /// Rate of throttle, kbit/s (required for throttle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kbps: Option<u32>,
    /// Lifecycle state of set_lifecycle (required for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Undo a throttle, quarantine or block after this many seconds
    /// (absent: until a person does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_secs: Option<u32>,
}

/// A response rule as people write it.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// Stable slug (1-64 of a-z, 0-9, '-', '_'). In PUT, the path's id.
    #[serde(default)]
    pub id: String,
    /// Display name (default: the id).
    #[serde(default)]
    pub name: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// "enforce" or "dry-run" (default dry-run: a new rule records what it
    /// would do until someone switches it to enforce).
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub scope: Option<ScopeInput>,
    pub trigger: TriggerInput,
    /// 1 to 8 steps: the n-th firing within the escalation window takes
    /// step n (the last one repeats).
    pub steps: Vec<StepInput>,
    /// At most one action of this rule per device per this long (default 600).
    #[serde(default)]
    pub cooldown_secs: Option<u32>,
    /// Firings further apart than this start the ladder again (default 86400).
    #[serde(default)]
    pub escalation_window_secs: Option<u32>,
}

/// A problem with one field of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// JSON path of the field: "steps[1].kbps", "trigger.finding.types[0]".
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl From<RuleProblem> for ApiError {
    fn from(p: RuleProblem) -> ApiError {
        let mut e = ApiError::invalid(p.to_string());
        e.details = vec![FieldProblem {
            index: 0,
            field: p.field,
            message: p.message,
        }];
        e
    }
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> RuleProblem {
    RuleProblem {
        field: field.into(),
        message: message.into(),
    }
}

/// Ids that would collide with routes under /api/v1/rules/.
const RESERVED_IDS: [&str; 1] = ["backtest"];

const STEP_ACTIONS: &str = "notify, throttle, quarantine, block, set_lifecycle";

impl RuleInput {
    /// Validates every field and builds the engine's rule. The error names
    /// the field by its JSON path.
    pub fn to_rule(&self) -> Result<Rule, RuleProblem> {
        let id = self.id.trim().to_string();
        inventory::validate_slug("id", &id).map_err(|e| problem("id", e.message))?;
        if RESERVED_IDS.contains(&id.as_str()) {
            return Err(problem("id", format!("{id:?} is reserved")));
        }
        let name = match self.name.as_deref().map(str::trim) {
            None | Some("") => id.clone(),
            Some(n) if n.chars().count() > 200 => {
                return Err(problem("name", "at most 200 characters"))
            }
            Some(n) => n.to_string(),
        };
        let mode = match self.mode.as_deref() {
            None => RuleMode::DryRun,
            Some(m) => RuleMode::parse(m).ok_or_else(|| {
                problem("mode", format!("{m:?} is not \"enforce\" or \"dry-run\""))
            })?,
        };
        let scope = self.scope.clone().unwrap_or_default();
        let slug =
            |field: &'static str, v: &Option<String>| -> Result<Option<String>, RuleProblem> {
                v.as_deref()
                    .map(|s| {
                        inventory::validate_slug(field, s.trim())
                            .map(|()| s.trim().to_string())
                            .map_err(|e| problem(format!("scope.{field}"), e.message))
                    })
                    .transpose()
            };
        let scope = RuleScope {
            tenant: slug("tenant", &scope.tenant)?,
            group: slug("group", &scope.group)?,
            imsi: scope
                .imsi
                .as_deref()
                .map(|i| inventory::parse_imsi(i).map_err(|e| problem("scope.imsi", e.message)))
                .transpose()?,
        };
        let trigger = match &self.trigger {
            TriggerInput::Finding {
                types,
                min_severity,
            } => {
                let mut kinds = Vec::with_capacity(types.len());
                for (i, t) in types.iter().enumerate() {
                    let k = t.parse::<FindingKind>().map_err(|e| {
                        let all: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
                        problem(
                            format!("trigger.finding.types[{i}]"),
                            format!("{e}; known: {}", all.join(", ")),
                        )
                    })?;
                    if !kinds.contains(&k) {
                        kinds.push(k);
                    }
                }
                let min_severity = match min_severity.as_deref() {
                    None => Severity::Warning,
                    Some(s) => s
                        .parse::<Severity>()
                        .map_err(|e| problem("trigger.finding.min_severity", e))?,
                };
                Trigger::Finding {
                    types: kinds,
                    min_severity,
                }
            }
            TriggerInput::Usage { period, max_bytes } => {
                let period = match period.trim() {
                    "day" => UsagePeriod::Day,
                    "month" => UsagePeriod::Month,
                    other => {
                        return Err(problem(
                            "trigger.usage.period",
                            format!("{other:?} is not \"day\" or \"month\""),
                        ))
                    }
                };
                if *max_bytes == 0 {
                    return Err(problem("trigger.usage.max_bytes", "must be positive"));
                }
                Trigger::Usage {
                    period,
                    max_bytes: *max_bytes,
                }
            }
            TriggerInput::Connectivity { event } => {
                let all = [
                    ConnectivityEvent::CameOnline,
                    ConnectivityEvent::WentOffline,
                    ConnectivityEvent::CountryChanged,
                    ConnectivityEvent::ImeiChanged,
                ];
                let event = all
                    .into_iter()
                    .find(|e| e.as_str() == event.trim())
                    .ok_or_else(|| {
                        problem(
                            "trigger.connectivity.event",
                            format!("{event:?} is not one of came_online, went_offline, country_changed, imei_changed"),
                        )
                    })?;
                Trigger::Connectivity { event }
            }
        };
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(problem(
                "steps",
                format!("a rule needs 1 to {MAX_STEPS} steps"),
            ));
        }
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, s) in self.steps.iter().enumerate() {
            let f = |name: &str| format!("steps[{i}].{name}");
            let action = match s.action.trim() {
                "notify" => ActionKind::Notify,
                "throttle" => ActionKind::Throttle {
                    kbps: match s.kbps {
                        Some(k) if k > 0 => k,
                        _ => return Err(problem(f("kbps"), "throttle needs a positive kbps")),
                    },
                },
                "quarantine" => ActionKind::Quarantine,
                "block" => ActionKind::Block,
                "set_lifecycle" => ActionKind::SetLifecycle {
                    state: s
                        .state
                        .as_deref()
                        .ok_or_else(|| problem(f("state"), "set_lifecycle needs a state"))?
                        .parse::<Lifecycle>()
                        .map_err(|e| problem(f("state"), e))?,
                },
                other => {
                    return Err(problem(
                        f("action"),
                        format!("{other:?} is not one of {STEP_ACTIONS}"),
                    ))
                }
            };
            if s.kbps.is_some() && !matches!(action, ActionKind::Throttle { .. }) {
                return Err(problem(f("kbps"), "kbps applies to throttle only"));
            }
            if s.state.is_some() && !matches!(action, ActionKind::SetLifecycle { .. }) {
                return Err(problem(f("state"), "state applies to set_lifecycle only"));
            }
            match s.expire_secs {
                Some(0) => return Err(problem(f("expire_secs"), "must be positive")),
                Some(_) if action.reversal().is_none() => {
                    return Err(problem(
                        f("expire_secs"),
                        "only throttle, quarantine and block expire",
                    ))
                }
                _ => {}
            }
            steps.push(Step {
                action,
                expire_secs: s.expire_secs,
            });
        }
        let rule = Rule {
            id,
            name,
            enabled: self.enabled.unwrap_or(true),
            mode,
            scope,
            trigger,
            steps,
            cooldown_secs: self.cooldown_secs.unwrap_or(DEFAULT_COOLDOWN_SECS),
            escalation_window_secs: self
                .escalation_window_secs
                .unwrap_or(DEFAULT_ESCALATION_WINDOW_SECS),
        };
        // The engine's own checks (it ignores a rule that fails them).
        rule.validate().map_err(|e| problem(e.field, e.message))?;
        Ok(rule)
    }

    /// The JSON form of an engine rule (every field set).
    pub fn from_rule(r: &Rule) -> RuleInput {
        RuleInput {
            id: r.id.clone(),
            name: Some(r.name.clone()),
            enabled: Some(r.enabled),
            mode: Some(r.mode.as_str().to_string()),
            scope: Some(ScopeInput {
                tenant: r.scope.tenant.clone(),
                group: r.scope.group.clone(),
                imsi: r.scope.imsi.map(|i| i.to_string()),
            }),
            trigger: match &r.trigger {
                Trigger::Finding {
                    types,
                    min_severity,
                } => TriggerInput::Finding {
                    types: types.iter().map(|k| k.as_str().to_string()).collect(),
                    min_severity: Some(min_severity.as_str().to_string()),
                },
                Trigger::Usage { period, max_bytes } => TriggerInput::Usage {
                    period: match period {
                        UsagePeriod::Day => "day",
                        UsagePeriod::Month => "month",
                    }
                    .to_string(),
                    max_bytes: *max_bytes,
                },
                Trigger::Connectivity { event } => TriggerInput::Connectivity {
                    event: event.as_str().to_string(),
                },
            },
            steps: r
                .steps
                .iter()
                .map(|s| StepInput {
                    action: s.action.name().to_string(),
                    kbps: match s.action {
                        ActionKind::Throttle { kbps } => Some(kbps),
                        _ => None,
                    },
                    state: match s.action {
                        ActionKind::SetLifecycle { state } => Some(state.as_str().to_string()),
                        _ => None,
                    },
                    expire_secs: s.expire_secs,
                })
                .collect(),
            cooldown_secs: Some(r.cooldown_secs),
            escalation_window_secs: Some(r.escalation_window_secs),
        }
    }
}

/// Validates the configuration's `[[rules]]`; the error names the rule by
/// index and the field by its path ("rules[2].steps[0].kbps: ...").
pub fn configured_rules(inputs: &[RuleInput]) -> Result<Vec<Rule>, String> {
    let mut rules: Vec<Rule> = Vec::with_capacity(inputs.len());
    for (i, r) in inputs.iter().enumerate() {
        let rule = r.to_rule().map_err(|p| format!("rules[{i}].{p}"))?;
        if rules.iter().any(|o| o.id == rule.id) {
            return Err(format!("rules[{i}].id: {:?} is used twice", rule.id));
        }
        rules.push(rule);
    }
    if rules.len() > MAX_RULES {
        return Err(format!("rules: at most {MAX_RULES} rules"));
    }
    Ok(rules)
}

/// The configured rules that the engine does not have as written: each
/// becomes an `UpsertRule`. Config rules are identified by id, so an API
/// edit of one is overwritten at the next start.
pub fn config_rule_events(rules: &[Rule], engine: &Engine) -> Vec<Event> {
    rules
        .iter()
        .filter(|r| engine.rule(&r.id) != Some(*r))
        .cloned()
        .map(Event::UpsertRule)
        .collect()
}

/// At start, after recovery: journals the configured rules that differ
/// from the engine's and applies them (before any traffic is taken in), so
/// that replays and backtests see them where they were set. Returns how
/// many were written.
pub fn journal_config_rules(
    inputs: &[RuleInput],
    journal: &mut simguard_journal::Journal,
    engine: &mut Engine,
    sink: &mut crate::pipeline::SinkState,
) -> Result<usize, crate::ServerError> {
    let invalid = |message: String| crate::config::ConfigError::Invalid {
        origin: "rules".into(),
        message,
    };
    let rules = configured_rules(inputs).map_err(invalid)?;
    let mut appended = Vec::new();
    for ev in config_rule_events(&rules, engine) {
        let mut buf = Vec::new();
        ev.encode_into(&mut buf)
            .map_err(|e| invalid(format!("a rule cannot be encoded: {e}")))?;
        appended.push((journal.append(&buf)?, ev));
    }
    if appended.is_empty() {
        return Ok(0);
    }
    journal.commit()?;
    let mut out = Vec::new();
    for (seq, ev) in &appended {
        engine.apply(*seq, ev, &mut out);
        for o in out.drain(..) {
            sink.absorb(*seq, &o);
        }
        sink.advance(*seq);
    }
    tracing::info!(
        rules = appended.len(),
        "rules from the configuration written"
    );
    Ok(appended.len())
}

// ---- views ----

#[derive(Serialize, ToSchema)]
pub struct RuleList {
    /// By id.
    pub items: Vec<RuleInput>,
}

#[derive(Serialize, ToSchema)]
pub struct RuleWrite {
    pub rule: RuleInput,
    /// Journal sequence of the change.
    pub seq: u64,
}

#[derive(Serialize, ToSchema)]
pub struct RuleDeleted {
    pub id: String,
    pub seq: u64,
}

/// Whether the caller may see and change the rule: tenant keys only their
/// tenant's rules.
fn visible(caller: &Caller, r: &Rule) -> bool {
    match &caller.tenant {
        None => true,
        Some(t) => r.scope.tenant.as_deref() == Some(t.as_str()),
    }
}

/// A rule from a request body, checked against the caller: a tenant's key
/// writes rules scoped to its tenant (an absent scope.tenant becomes it).
fn rule_for(caller: &Caller, mut input: RuleInput) -> Result<Rule, ApiError> {
    if let Some(t) = &caller.tenant {
        let scope = input.scope.get_or_insert_with(ScopeInput::default);
        match scope.tenant.as_deref() {
            None => scope.tenant = Some(t.clone()),
            Some(x) if x.trim() == t => {}
            Some(x) => {
                let mut e = ApiError::forbidden(format!(
                    "scope.tenant: this caller can only write rules of tenant {t:?}, not {x:?}"
                ));
                e.details = vec![FieldProblem {
                    index: 0,
                    field: "scope.tenant".into(),
                    message: format!("must be {t:?}"),
                }];
                return Err(e);
            }
        }
    }
    Ok(input.to_rule()?)
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no rule {id:?}"))
}

// ---- routes ----

/// Response rules the caller can see (a tenant's key: its tenant's), by id.
#[utoipa::path(get, path = "/api/v1/rules", responses((status = 200, body = RuleList)))]
pub async fn list_rules(State(s): State<AppState>, caller: Caller) -> Json<RuleList> {
    let e = s.engine.read();
    Json(RuleList {
        items: e
            .rules()
            .filter(|r| visible(&caller, r))
            .map(RuleInput::from_rule)
            .collect(),
    })
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/rules/{id}", params(("id" = String, Path)), responses((status = 200, body = RuleInput), (status = 404, body = ErrorBody)))]
pub async fn get_rule(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RuleInput>, ApiError> {
    let e = s.engine.read();
    e.rule(&id)
        .filter(|r| visible(&caller, r))
        .map(|r| Json(RuleInput::from_rule(r)))
        .ok_or_else(|| not_found(&id))
}

async fn write(s: &AppState, rule: Rule) -> Result<RuleWrite, ApiError> {
    {
        let e = s.engine.read();
        if e.rule(&rule.id).is_none() && e.rules().count() >= MAX_RULES {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("at most {MAX_RULES} rules; delete one first"),
            ));
        }
    }
    let seq = submit(s, vec![Event::UpsertRule(rule.clone())]).await?;
    // The engine applies only what passes its checks, which the API ran
    // already; a concurrent write may have filled the last slot.
    let e = s.engine.read();
    match e.rule(&rule.id) {
        Some(r) if *r == rule => Ok(RuleWrite {
            rule: RuleInput::from_rule(r),
            seq,
        }),
        _ => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the rule was not applied (rule limit reached, or changed concurrently); read it and retry",
        )),
    }
}

/// Creates a rule (409 if the id exists). Admins only; a tenant's admin
/// only rules scoped to its tenant.
#[utoipa::path(post, path = "/api/v1/rules", request_body = RuleInput, responses((status = 201, body = RuleWrite), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_rule(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<RuleInput>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<RuleWrite>), ApiError> {
    caller.require(simguard_store::Role::Admin)?;
    let Json(body) = body?;
    let rule = rule_for(&caller, body)?;
    if s.engine.read().rule(&rule.id).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "rule {:?} exists; PUT /api/v1/rules/{} replaces it",
                rule.id, rule.id
            ),
        ));
    }
    Ok((StatusCode::CREATED, Json(write(&s, rule).await?)))
}

/// Creates or replaces a rule; switching `mode` between dry-run and enforce
/// is a PUT. Rules from the configuration file are written again at the
/// next start, so an API edit of one lasts until then.
#[utoipa::path(put, path = "/api/v1/rules/{id}", params(("id" = String, Path)), request_body = RuleInput, responses((status = 200, body = RuleWrite), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put_rule(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<RuleInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<RuleWrite>, ApiError> {
    caller.require(simguard_store::Role::Admin)?;
    let Json(mut body) = body?;
    if body.id.trim().is_empty() {
        body.id = id.clone();
    } else if body.id.trim() != id {
        return Err(problem(
            "id",
            format!("{:?} differs from the path's {id:?}", body.id),
        )
        .into());
    }
    if let Some(old) = s.engine.read().rule(&id) {
        // Another tenant's rule does not exist for this caller.
        if !visible(&caller, old) {
            return Err(not_found(&id));
        }
    }
    let rule = rule_for(&caller, body)?;
    Ok(Json(write(&s, rule).await?))
}

/// Deletes a rule. A rule from the configuration file comes back at the next start.
#[utoipa::path(delete, path = "/api/v1/rules/{id}", params(("id" = String, Path)), responses((status = 200, body = RuleDeleted), (status = 404, body = ErrorBody)))]
pub async fn delete_rule(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RuleDeleted>, ApiError> {
    caller.require(simguard_store::Role::Admin)?;
    let exists = s
        .engine
        .read()
        .rule(&id)
        .is_some_and(|r| visible(&caller, r));
    if !exists {
        return Err(not_found(&id));
    }
    let seq = submit(&s, vec![Event::DeleteRule { id: id.clone() }]).await?;
    Ok(Json(RuleDeleted { id, seq }))
}

// ---- backtest ----

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct BacktestQuery {
    /// How far back to report, from the engine's current time: 90m, 24h, 7d,
    /// 2w or seconds (default 7d). The whole journal is replayed either way,
    /// so that the rule sees the state and baselines it would have seen.
    pub since: Option<String>,
}

/// Parses "7d", "24h", "90m", "30s", "2w" or plain seconds into ms.
pub fn parse_since(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || format!("since: {s:?} is not a duration like 30m, 24h, 7d or 2w");
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(secs * 1000).ok_or_else(bad)
}

#[derive(Serialize, ToSchema)]
pub struct BacktestDevice {
    pub imsi: String,
    pub tenant: Option<String>,
    pub group: Option<String>,
    /// Actions the rule would have taken on it in the window.
    pub actions: u64,
    pub first: String,
    pub last: String,
    /// Highest escalation step reached (0-based).
    pub max_step: u8,
}

/// One action the rule would have taken.
#[derive(Serialize, ToSchema)]
pub struct BacktestAction {
    #[serde(flatten)]
    pub action: ActionView,
    /// The lifecycle state it would have set (null for notify, or when the
    /// device was already there or stronger).
    pub would_set: Option<&'static str>,
}

/// What the rule would have done. Nothing was journaled, stored or sent.
#[derive(Serialize, ToSchema)]
pub struct BacktestView {
    /// The rule as tested (always dry-run).
    pub rule: RuleInput,
    /// The window: actions at or after `from`, up to the end of the journal.
    pub from: String,
    pub from_ms: i64,
    pub until: String,
    pub until_ms: i64,
    /// Journal records replayed (the journal's own rule changes are skipped)
    /// and the last sequence replayed.
    pub replayed: u64,
    pub journal_seq: u64,
    /// Actions in the window, all counted.
    pub total_actions: u64,
    pub by_action: BTreeMap<String, u64>,
    /// By escalation step ("0", "1", ...).
    pub by_step: BTreeMap<String, u64>,
    /// Distinct devices acted on.
    pub device_count: u64,
    /// The devices (at most 10,000), by IMSI.
    pub devices: Vec<BacktestDevice>,
    /// The actions (the first 10,000), oldest first, with the ids of the
    /// findings behind them as the live server has them.
    pub actions: Vec<BacktestAction>,
    /// Whether the lists were cut at their bound (the counts are complete).
    pub truncated: bool,
}

fn backtest_view(rule: &Rule, from: i64, r: &BacktestReport) -> BacktestView {
    let mut tested = rule.clone();
    tested.mode = RuleMode::DryRun;
    BacktestView {
        rule: RuleInput::from_rule(&tested),
        from: rfc3339(from),
        from_ms: from,
        until: rfc3339(r.clock),
        until_ms: r.clock,
        replayed: r.replayed,
        journal_seq: r.until_seq,
        total_actions: r.total,
        by_action: r
            .by_action
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        by_step: r.by_step.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        device_count: r.device_count,
        devices: r
            .devices
            .iter()
            .map(|d| BacktestDevice {
                imsi: d.imsi.to_string(),
                tenant: d.tenant.clone(),
                group: d.group.clone(),
                actions: d.actions,
                first: rfc3339(d.first),
                last: rfc3339(d.last),
                max_step: d.max_step,
            })
            .collect(),
        actions: r
            .actions
            .iter()
            .map(|a| BacktestAction {
                action: action_view(a),
                would_set: a
                    .from
                    .and_then(|l| a.kind.target(l).filter(|t| *t != l))
                    .map(|l| l.as_str()),
            })
            .collect(),
        truncated: r.truncated(),
    }
}

/// One backtest at a time per process: each replays the whole journal into
/// a second engine (memory and a core for as long as it runs).
static BACKTESTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Where the journal is: `data_dir/journal`, beside the store
/// (`data_dir/simguard.db`, see `Config::journal_dir` and `store_path`).
fn journal_dir(s: &AppState) -> std::path::PathBuf {
    s.store_path
        .parent()
        .map(|d| d.join("journal"))
        .unwrap_or_else(|| std::path::PathBuf::from("journal"))
}

async fn run_backtest(
    s: &AppState,
    rule: Rule,
    since: &Option<String>,
) -> Result<BacktestView, ApiError> {
    let window = parse_since(since.as_deref().unwrap_or("7d")).map_err(|m| {
        let mut e = ApiError::invalid(m.clone());
        e.details = vec![FieldProblem {
            index: 0,
            field: "since".into(),
            message: m,
        }];
        e
    })?;
    let _permit = BACKTESTS
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("backtests are shut down"))?;
    let (options, until_seq, now) = {
        let e = s.engine.read();
        (*e.options(), e.seq(), e.clock())
    };
    let from = now.saturating_sub(window);
    let req = BacktestRequest {
        rule: rule.clone(),
        journal_dir: journal_dir(s),
        options,
        until_seq,
        from,
    };
    let t0 = std::time::Instant::now();
    let report = tokio::task::spawn_blocking(move || backtest::run(&req))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    tracing::info!(
        rule = %rule.id,
        replayed = report.replayed,
        actions = report.total,
        devices = report.device_count,
        ms = t0.elapsed().as_millis() as u64,
        "rule backtest"
    );
    Ok(backtest_view(&rule, from, &report))
}

/// Backtest of a saved rule: the recorded journal replayed into a fresh
/// engine with only this rule, in dry-run. Reports which devices it would
/// have acted on, when, how and why; takes no action and writes nothing.
#[utoipa::path(post, path = "/api/v1/rules/{id}/backtest", params(("id" = String, Path), BacktestQuery), responses((status = 200, body = BacktestView), (status = 404, body = ErrorBody)))]
pub async fn backtest_saved(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Result<Query<BacktestQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BacktestView>, ApiError> {
    caller.require(simguard_store::Role::Operator)?;
    let Query(q) = q?;
    let rule = s
        .engine
        .read()
        .rule(&id)
        .filter(|r| visible(&caller, r))
        .cloned()
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(run_backtest(&s, rule, &q.since).await?))
}

/// Backtest of a rule not saved yet (the body is a rule, as for POST /api/v1/rules).
#[utoipa::path(post, path = "/api/v1/rules/backtest", params(BacktestQuery), request_body = RuleInput, responses((status = 200, body = BacktestView), (status = 400, body = ErrorBody)))]
pub async fn backtest_draft(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<BacktestQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Json<RuleInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<BacktestView>, ApiError> {
    caller.require(simguard_store::Role::Operator)?;
    let Query(q) = q?;
    let Json(body) = body?;
    let rule = rule_for(&caller, body)?;
    Ok(Json(run_backtest(&s, rule, &q.since).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> RuleInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_json_form_round_trips_and_defaults() {
        let r = input(serde_json::json!({
            "id": "block-scanners",
            "name": "Block scanners",
            "mode": "enforce",
            "scope": {"tenant": "acme", "group": "meters"},
            "trigger": {"finding": {"types": ["scanning", "ddos"], "min_severity": "major"}},
            "steps": [{"action": "throttle", "kbps": 64, "expire_secs": 3600}, {"action": "block"}],
            "cooldown_secs": 60,
            "escalation_window_secs": 3600
        }))
        .to_rule()
        .unwrap();
        assert_eq!(r.mode, RuleMode::Enforce);
        assert_eq!(r.steps[0].action, ActionKind::Throttle { kbps: 64 });
        assert_eq!(RuleInput::from_rule(&r).to_rule().unwrap(), r);
        let d = input(serde_json::json!({
            "id": "x", "trigger": {"usage": {"period": "day", "max_bytes": 10}},
            "steps": [{"action": "notify"}]
        }))
        .to_rule()
        .unwrap();
        assert_eq!(d.mode, RuleMode::DryRun, "dry-run unless said otherwise");
        assert!(d.enabled);
        assert_eq!(d.name, "x");
        assert_eq!(d.cooldown_secs, DEFAULT_COOLDOWN_SECS);
    }

    #[test]
    fn errors_name_the_field() {
        let base = serde_json::json!({
            "id": "r", "trigger": {"connectivity": {"event": "came_online"}},
            "steps": [{"action": "notify"}]
        });
        for (patch, field) in [
            (serde_json::json!({"id": "Bad Id"}), "id"),
            (serde_json::json!({"id": "backtest"}), "id"),
            (serde_json::json!({"mode": "sometimes"}), "mode"),
            (serde_json::json!({"scope": {"imsi": "12"}}), "scope.imsi"),
            (
                serde_json::json!({"scope": {"tenant": "A B"}}),
                "scope.tenant",
            ),
            (
                serde_json::json!({"trigger": {"finding": {"types": ["nope"]}}}),
                "trigger.finding.types[0]",
            ),
            (
                serde_json::json!({"trigger": {"finding": {"min_severity": "huge"}}}),
                "trigger.finding.min_severity",
            ),
            (
                serde_json::json!({"trigger": {"usage": {"period": "year", "max_bytes": 1}}}),
                "trigger.usage.period",
            ),
            (
                serde_json::json!({"trigger": {"usage": {"period": "day", "max_bytes": 0}}}),
                "trigger.usage.max_bytes",
            ),
            (
                serde_json::json!({"trigger": {"connectivity": {"event": "sneezed"}}}),
                "trigger.connectivity.event",
            ),
            (serde_json::json!({"steps": []}), "steps"),
            (
                serde_json::json!({"steps": [{"action": "notify"}, {"action": "throttle"}]}),
                "steps[1].kbps",
            ),
            (
                serde_json::json!({"steps": [{"action": "explode"}]}),
                "steps[0].action",
            ),
            (
                serde_json::json!({"steps": [{"action": "block", "kbps": 5}]}),
                "steps[0].kbps",
            ),
            (
                serde_json::json!({"steps": [{"action": "set_lifecycle"}]}),
                "steps[0].state",
            ),
            (
                serde_json::json!({"steps": [{"action": "set_lifecycle", "state": "asleep"}]}),
                "steps[0].state",
            ),
            (
                serde_json::json!({"steps": [{"action": "notify", "expire_secs": 5}]}),
                "steps[0].expire_secs",
            ),
            (
                serde_json::json!({"steps": [{"action": "block", "expire_secs": 0}]}),
                "steps[0].expire_secs",
            ),
        ] {
            let mut v = base.clone();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            let e = input(v).to_rule().unwrap_err();
            assert_eq!(e.field, field, "{patch}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_since("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_since("90m"), Ok(90 * 60_000));
        assert_eq!(parse_since("2w"), Ok(14 * 86_400_000));
        assert_eq!(parse_since("3600"), Ok(3_600_000));
        for bad in ["", "d", "0d", "-1d", "7y", "1.5h"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configured_rules_are_checked_by_index() {
        let ok = input(serde_json::json!({
            "id": "a", "trigger": {"connectivity": {"event": "went_offline"}},
            "steps": [{"action": "notify"}]
        }));
        let bad = RuleInput {
            steps: vec![],
            ..ok.clone()
        };
        assert_eq!(
            configured_rules(std::slice::from_ref(&ok)).unwrap().len(),
            1
        );
        let e = configured_rules(&[ok.clone(), bad]).unwrap_err();
        assert!(e.starts_with("rules[1].steps:"), "{e}");
        let e = configured_rules(&[ok.clone(), ok]).unwrap_err();
        assert!(e.contains("used twice"), "{e}");
    }
}
