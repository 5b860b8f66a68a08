//! Backtest of a response rule: what would it have done over recorded history?
//!
//! The recorded journal is replayed, read-only, into a fresh [`Engine`] with
//! the server's engine options and only the tested rule installed, forced to
//! dry-run. Because rules are decided inside `Engine::apply`, the replay
//! decides exactly what the rule would have decided live (on the same
//! findings, with the same ids). Nothing is journaled, stored or sent.
//!
//! Two details make "only the tested rule" hold:
//! - the journal's own rule events (`UpsertRule`, `DeleteRule`) are skipped,
//!   so no other rule exists and the tested one is never replaced;
//! - the tested rule is installed by applying its `UpsertRule` at sequence
//!   1, which means every journal record is applied one sequence later than
//!   recorded. Ids are `(seq << 8) | index`, so the report shifts them back
//!   ([`unshift`]): finding ids are the ones the live server has. An
//!   action's id carries the journal record the live one would have (its
//!   index may differ: live, other rules may have acted in the same record).
//!
//! The journal [`Reader`] takes no lock (the live server holds the writer's
//! `flock`), and the replay stops at the sequence the live engine had
//! applied when the backtest began, so it never reads a record whose commit
//! is still in flight.

use simguard_engine::rules::{Action, Rule, RuleMode};
use simguard_engine::{Digits, Engine, EngineOptions, Event, Output};
use simguard_journal::{JournalError, Reader};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// Most actions listed in a report (the counts cover all of them).
pub const MAX_LISTED_ACTIONS: usize = 10_000;
/// Most devices listed in a report (the count covers all of them).
pub const MAX_LISTED_DEVICES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("reading the journal: {0}")]
    Journal(#[from] JournalError),
    #[error("journal record {seq} cannot be decoded: {message}")]
    Decode { seq: u64, message: String },
}

/// What to replay.
#[derive(Clone, Debug)]
pub struct BacktestRequest {
    /// The rule to test; it runs in dry-run whatever its mode, and enabled.
    pub rule: Rule,
    pub journal_dir: PathBuf,
    /// The live server's engine options (liveness, flows, detection).
    pub options: EngineOptions,
    /// Replay records up to this sequence (the live engine's applied one).
    pub until_seq: u64,
    /// Report actions at or after this event time, Unix ms.
    pub from: i64,
}

/// One device the rule would have acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceHits {
    pub imsi: Digits,
    pub tenant: Option<String>,
    pub group: Option<String>,
    pub actions: u64,
    pub first: i64,
    pub last: i64,
    /// Highest escalation step reached (0-based).
    pub max_step: u8,
}

/// What the rule would have done.
#[derive(Clone, Debug, Default)]
pub struct BacktestReport {
    /// Journal records replayed (rule events skipped are not counted).
    pub replayed: u64,
    /// The last sequence replayed.
    pub until_seq: u64,
    /// Engine (event) time at the end of the replay.
    pub clock: i64,
    /// Every action in the window, counted.
    pub total: u64,
    pub by_action: BTreeMap<&'static str, u64>,
    /// By escalation step (0-based).
    pub by_step: BTreeMap<u8, u64>,
    /// The first [`MAX_LISTED_ACTIONS`] actions in the window, oldest first,
    /// with the live server's finding ids.
    pub actions: Vec<Action>,
    /// Devices acted on, by IMSI (the first [`MAX_LISTED_DEVICES`]).
    pub devices: Vec<DeviceHits>,
    /// How many distinct devices, listed or not.
    pub device_count: u64,
}

impl BacktestReport {
    pub fn truncated(&self) -> bool {
        self.total > self.actions.len() as u64 || self.device_count > self.devices.len() as u64
    }
}

/// The live id of an id made by the shifted replay (see the module docs).
pub fn unshift(id: u64) -> u64 {
    id.saturating_sub(1 << 8)
}

/// Replays the journal with only `req.rule`, in dry-run. Blocking (file
/// reads and the engine); run it on a blocking thread.
pub fn run(req: &BacktestRequest) -> Result<BacktestReport, BacktestError> {
    let mut rule = req.rule.clone();
    rule.mode = RuleMode::DryRun;
    rule.enabled = true;
    let rule_id = rule.id.clone();
    let mut engine = Engine::new(req.options);
    let mut out = Vec::new();
    engine.apply(1, &Event::UpsertRule(rule), &mut out);
    out.clear();

    let mut report = BacktestReport::default();
    let mut devices: BTreeMap<Digits, DeviceHits> = BTreeMap::new();
    let mut distinct: HashSet<Digits> = HashSet::new();
    let mut reader = Reader::open(&req.journal_dir, 1)?;
    while let Some((seq, payload)) = reader.next()? {
        if seq > req.until_seq {
            break;
        }
        let ev = Event::decode(payload).map_err(|e| BacktestError::Decode {
            seq,
            message: e.to_string(),
        })?;
        if matches!(ev, Event::UpsertRule(_) | Event::DeleteRule { .. }) {
            continue;
        }
        engine.apply(seq + 1, &ev, &mut out);
        report.replayed += 1;
        report.until_seq = seq;
        for o in out.drain(..) {
            let Output::Action(a) = o else { continue };
            // People's actions in the journal replay as they happened (they
            // shape the device's state) but are not the rule's doing.
            if a.rule.as_deref() != Some(rule_id.as_str()) || a.time < req.from {
                continue;
            }
            let mut a = *a;
            a.id = unshift(a.id);
            a.finding = a.finding.map(unshift);
            report.total += 1;
            *report.by_action.entry(a.kind.name()).or_default() += 1;
            *report.by_step.entry(a.step).or_default() += 1;
            if distinct.insert(a.imsi) && devices.len() < MAX_LISTED_DEVICES {
                devices.insert(
                    a.imsi,
                    DeviceHits {
                        imsi: a.imsi,
                        tenant: a.tenant.clone(),
                        group: a.group.clone(),
                        actions: 0,
                        first: a.time,
                        last: a.time,
                        max_step: 0,
                    },
                );
            }
            if let Some(d) = devices.get_mut(&a.imsi) {
                d.actions += 1;
                d.first = d.first.min(a.time);
                d.last = d.last.max(a.time);
                d.max_step = d.max_step.max(a.step);
            }
            if report.actions.len() < MAX_LISTED_ACTIONS {
                report.actions.push(a);
            }
        }
    }
    report.clock = engine.clock();
    report.device_count = distinct.len() as u64;
    report.devices = devices.into_values().collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simguard_engine::rules::{ActionKind, RuleScope, Step, Trigger};
    use simguard_engine::{DeviceRecord, FindingKind, Group, Lifecycle, Severity, Tenant};
    use simguard_journal::{Journal, JournalOptions};

    fn record(imsi: &str) -> DeviceRecord {
        DeviceRecord {
            imsi: Digits::parse(imsi).unwrap(),
            iccid: None,
            msisdn: None,
            bound_imei: None,
            tenant: "acme".into(),
            group: "meters".into(),
            lifecycle: Lifecycle::Active,
            label: None,
        }
    }

    fn rule(id: &str, mode: RuleMode) -> Rule {
        Rule {
            id: id.into(),
            name: id.into(),
            enabled: true,
            mode,
            scope: RuleScope::default(),
            trigger: Trigger::Finding {
                types: vec![FindingKind::Unprovisioned, FindingKind::SimSwap],
                min_severity: Severity::Warning,
            },
            steps: vec![Step {
                action: ActionKind::Block,
                expire_secs: None,
            }],
            cooldown_secs: 60,
            escalation_window_secs: 3600,
        }
    }

    /// Journals `events` and returns the live engine's outputs for them.
    fn journal(dir: &std::path::Path, events: &[Event]) -> (Engine, Vec<(u64, Output)>) {
        let (mut j, _) = Journal::open(dir, JournalOptions::default()).unwrap();
        let mut live = Engine::new(EngineOptions::default());
        let mut outs = Vec::new();
        for ev in events {
            let mut buf = Vec::new();
            ev.encode_into(&mut buf).unwrap();
            let seq = j.append(&buf).unwrap();
            let mut out = Vec::new();
            live.apply(seq, ev, &mut out);
            outs.extend(out.into_iter().map(|o| (seq, o)));
        }
        j.commit().unwrap();
        (live, outs)
    }

    fn start(imsi: &str, time: i64) -> Event {
        Event::Accounting(simguard_engine::AcctRecord {
            time,
            received: time,
            nas: "pgw-1".into(),
            status: simguard_engine::AcctStatus::Start,
            session_id: format!("s-{imsi}"),
            imsi: Digits::parse(imsi).unwrap(),
            imeisv: None,
            msisdn: None,
            apn: None,
            framed_ip: None,
            up_octets: 0,
            down_octets: 0,
            up_packets: 0,
            down_packets: 0,
            session_time: None,
            terminate_cause: None,
            interim_interval: None,
            charging_id: None,
            network: None,
            rat: None,
            cell: None,
            time_zone: None,
        })
    }

    const T0: i64 = 1_795_305_600_000;

    fn actions(outs: &[(u64, Output)]) -> Vec<Action> {
        outs.iter()
            .filter_map(|(_, o)| match o {
                Output::Action(a) => Some((**a).clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_replay_reports_the_live_ids_and_only_the_tested_rule() {
        let dir = tempfile::tempdir().unwrap();
        let events = vec![
            Event::UpsertTenant(Tenant {
                id: "acme".into(),
                name: "Acme".into(),
            }),
            Event::UpsertGroup(Group {
                id: "meters".into(),
                tenant: "acme".into(),
                name: "Meters".into(),
                profile: Default::default(),
                disabled_detectors: Vec::new(),
            }),
            Event::UpsertDevices(vec![record("901700000000001")]),
            // The live rule, in dry-run: the backtest of the same rule must
            // decide exactly what it decided.
            Event::UpsertRule(rule("x", RuleMode::DryRun)),
            // Another live rule that the backtest must not run.
            Event::UpsertRule(Rule {
                trigger: Trigger::Finding {
                    types: vec![],
                    min_severity: Severity::Warning,
                },
                ..rule("other", RuleMode::Enforce)
            }),
            start("901700000000001", T0),
            // Unprovisioned IMSIs: a finding each, so the rule fires.
            start("901709999999991", T0 + 1_000),
            start("901709999999992", T0 + 120_000),
            Event::Tick { time: T0 + 200_000 },
        ];
        let (_live, outs) = journal(dir.path(), &events);
        let live_x: Vec<Action> = actions(&outs)
            .into_iter()
            .filter(|a| a.rule.as_deref() == Some("x"))
            .collect();
        assert_eq!(live_x.len(), 2, "{outs:#?}");
        assert!(live_x.iter().all(|a| a.finding.is_some()));

        let req = BacktestRequest {
            rule: rule("x", RuleMode::Enforce),
            journal_dir: dir.path().to_path_buf(),
            options: EngineOptions::default(),
            until_seq: u64::MAX,
            from: 0,
        };
        let report = run(&req).unwrap();
        assert_eq!(report.replayed, 7, "the two rule events are not replayed");
        assert_eq!(report.until_seq, 9);
        // Same decisions on the same findings. Action ids differ: live, the
        // other rule acted first in the same record and took index 1.
        let no_ids = |v: &[Action]| -> Vec<Action> {
            v.iter()
                .cloned()
                .map(|a| Action { id: a.id >> 8, ..a })
                .collect()
        };
        assert_eq!(
            no_ids(&report.actions),
            no_ids(&live_x),
            "same decisions, dry-run"
        );
        assert_ne!(report.actions[0].id, live_x[0].id);
        assert_eq!(report.total, 2);
        assert_eq!(report.by_action.get("block"), Some(&2));
        assert_eq!(report.device_count, 2);
        assert_eq!(
            report
                .devices
                .iter()
                .map(|d| d.imsi.to_string())
                .collect::<Vec<_>>(),
            vec!["901709999999991", "901709999999992"]
        );
        assert!(!report.truncated());

        // The window: only actions at or after `from`.
        let late = run(&BacktestRequest {
            from: T0 + 60_000,
            ..req.clone()
        })
        .unwrap();
        assert_eq!(no_ids(&late.actions), no_ids(&live_x[1..]));
        // And the sequence bound: records after `until_seq` are not read.
        let early = run(&BacktestRequest {
            until_seq: 7,
            ..req
        })
        .unwrap();
        assert_eq!(no_ids(&early.actions), no_ids(&live_x[..1]));
        assert_eq!(early.until_seq, 7);
    }

    #[test]
    fn unshift_undoes_the_one_sequence_offset() {
        let live = simguard_engine::Finding::make_id(41, 3);
        let shifted = simguard_engine::Finding::make_id(42, 3);
        assert_eq!(unshift(shifted), live);
    }
}
