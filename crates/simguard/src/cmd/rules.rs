//! `simguard rules backtest RULE --since 7d`: what a response rule would
//! have done over the server's recorded history. RULE is the id of a rule on
//! the server, or `@file.json` for a rule not saved yet (the JSON form of
//! POST /api/v1/rules). The server replays its journal with only that rule,
//! in dry-run; nothing is journaled and no action is taken.

use crate::client::ApiClient;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::Value;
use std::fmt::Write as _;

#[derive(Subcommand)]
pub enum RulesCmd {
    /// Replay the recorded history with one rule in dry-run and report which
    /// devices it would have acted on, when, how and why.
    Backtest {
        /// A rule id on the server, or @FILE.json with a rule's JSON.
        rule: String,
        /// How far back to report: 90m, 24h, 7d, 2w.
        #[arg(long, default_value = "7d")]
        since: String,
        /// Server API base URL.
        #[arg(long, env = "SIMGUARD_URL", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// API token (operator or admin).
        #[arg(long, env = "SIMGUARD_TOKEN")]
        token: Option<String>,
        /// Print the server's JSON report instead of the summary.
        #[arg(long)]
        json: bool,
        /// Actions listed in the summary (the counts cover all).
        #[arg(long, default_value_t = 50)]
        show: usize,
    },
}

pub async fn run(cmd: RulesCmd) -> Result<()> {
    match cmd {
        RulesCmd::Backtest {
            rule,
            since,
            server,
            token,
            json,
            show,
        } => {
            let Some(token) = token else {
                bail!("an API token is needed: --token or SIMGUARD_TOKEN");
            };
            let client = ApiClient::new(&server, &token)?;
            let since_q = encode(&since);
            let report = match rule.strip_prefix('@') {
                Some(file) => {
                    let text = std::fs::read_to_string(file)
                        .with_context(|| format!("cannot read {file}"))?;
                    let body: Value = serde_json::from_str(&text)
                        .with_context(|| format!("{file} is not JSON"))?;
                    client
                        .send(
                            reqwest::Method::POST,
                            &format!("/api/v1/rules/backtest?since={since_q}"),
                            &body,
                        )
                        .await?
                }
                None => {
                    client
                        .send(
                            reqwest::Method::POST,
                            &format!("/api/v1/rules/{}/backtest?since={since_q}", encode(&rule)),
                            &Value::Null,
                        )
                        .await?
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", summary(&report, show));
            }
            Ok(())
        }
    }
}

/// Percent-encodes a path or query component.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The report for a person: totals, counts per action and step, the devices
/// and the first `show` actions.
pub fn summary(r: &Value, show: usize) -> String {
    let mut o = String::new();
    let str_of = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let _ = writeln!(
        o,
        "rule {} (dry-run) from {} to {}: {} actions on {} devices ({} journal records replayed; nothing was done)",
        str_of(&r["rule"]["id"]),
        str_of(&r["from"]),
        str_of(&r["until"]),
        n(&r["total_actions"]),
        n(&r["device_count"]),
        n(&r["replayed"]),
    );
    let counts = |v: &Value| -> String {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, c)| format!("{k} {}", c.as_u64().unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    if n(&r["total_actions"]) > 0 {
        let _ = writeln!(o, "by action: {}", counts(&r["by_action"]));
        let _ = writeln!(o, "by step:   {}", counts(&r["by_step"]));
    }
    let empty = Vec::new();
    let devices = r["devices"].as_array().unwrap_or(&empty);
    if !devices.is_empty() {
        let _ = writeln!(o, "devices:");
        for d in devices.iter().take(show) {
            let _ = writeln!(
                o,
                "  {}  {} actions, {} .. {}, up to step {}  ({}/{})",
                str_of(&d["imsi"]),
                n(&d["actions"]),
                str_of(&d["first"]),
                str_of(&d["last"]),
                n(&d["max_step"]),
                str_of(&d["tenant"]),
                str_of(&d["group"]),
            );
        }
        if devices.len() > show {
            let _ = writeln!(o, "  ... {} more (--show, --json)", devices.len() - show);
        }
    }
    let actions = r["actions"].as_array().unwrap_or(&empty);
    if !actions.is_empty() {
        let _ = writeln!(o, "actions:");
        for a in actions.iter().take(show) {
            let what = match a["kbps"].as_u64() {
                Some(k) => format!("{} {k} kbit/s", str_of(&a["action"])),
                None => str_of(&a["action"]),
            };
            let finding = a["finding"]
                .as_str()
                .map(|f| format!(" [finding {f}]"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {}  {}  {} (step {})  {}{}",
                str_of(&a["time"]),
                str_of(&a["imsi"]),
                what,
                n(&a["step"]),
                str_of(&a["reason"]),
                finding,
            );
        }
        if actions.len() > show {
            let _ = writeln!(o, "  ... {} more (--show, --json)", actions.len() - show);
        }
    }
    if r["truncated"].as_bool() == Some(true) {
        let _ = writeln!(
            o,
            "(the server's lists were cut at 10,000; the counts are complete)"
        );
    }
    o
}
