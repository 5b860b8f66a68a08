//! Flow routes: a device's traffic profile, recent flows and policy
//! violations, unattributed flows, and the firewall policy of a group.

use super::error::ApiError;
use super::{parse_imsi_path, submit, Caller, UpsertResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use simguard_engine::event::FlowRecord;
use simguard_engine::policy::{Cidr, FirewallPolicy, PolicyAction, PolicyDirection, PolicyRule};
use simguard_engine::time::rfc3339;
use simguard_engine::traffic::FlowDirection;
use simguard_engine::{Device, Engine, Event};
use simguard_store::Role;
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct FlowView {
    pub start: String,
    pub end: String,
    pub src: String,
    pub dst: String,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub proto: u8,
    pub tcp_flags: u8,
    /// Octets and packets, scaled by `sampling`.
    pub bytes: u64,
    pub packets: u64,
    pub sampling: u32,
    /// up (device to remote) or down; absent for unattributed flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
}

fn flow_view(f: &FlowRecord, dir: Option<FlowDirection>) -> FlowView {
    FlowView {
        start: rfc3339(f.start),
        end: rfc3339(f.end),
        src: f.src.to_string(),
        dst: f.dst.to_string(),
        src_port: f.src_port,
        dst_port: f.dst_port,
        proto: f.proto,
        tcp_flags: f.tcp_flags,
        bytes: f.bytes,
        packets: f.packets,
        sampling: f.sampling,
        direction: dir.map(FlowDirection::as_str),
    }
}

#[derive(Serialize, ToSchema)]
pub struct DestinationView {
    pub address: String,
    pub port: u16,
    pub proto: u8,
    /// Space-Saving count: never below the true bytes, at most `error` above.
    pub bytes: u64,
    pub error: u64,
    pub packets: u64,
    pub flows: u64,
}

#[derive(Serialize, ToSchema)]
pub struct WindowJson {
    /// Start of the hour.
    pub hour: String,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub packets: u64,
    pub flows: u32,
    /// Estimates from a 128-bit linear-counting sketch.
    pub distinct_remote_addrs: u32,
    pub distinct_remote_ports: u32,
    pub tcp_attempts: u32,
    pub tcp_unanswered: u32,
}

#[derive(Serialize, ToSchema)]
pub struct TrafficView {
    pub imsi: String,
    pub flows: u64,
    pub first_flow: Option<String>,
    pub last_flow: Option<String>,
    /// Heaviest destinations by bytes (at most 16).
    pub top_destinations: Vec<DestinationView>,
    /// The last 24 hourly windows with traffic, oldest first.
    pub windows: Vec<WindowJson>,
    /// Share of the device's TCP connection attempts never answered, over the windows.
    pub never_answered_share: Option<f64>,
    pub policy_violations: u64,
}

fn visible<'e>(e: &'e Engine, caller: &Caller, imsi: &str) -> Result<&'e Device, ApiError> {
    let imsi = parse_imsi_path(imsi)?;
    e.device(imsi)
        .filter(|d| caller.sees(d.provisioning.as_ref().map(|p| e.syms().resolve(p.tenant))))
        .ok_or_else(|| ApiError::not_found(format!("no device with IMSI {imsi}")))
}

/// A device's traffic profile from its flows.
#[utoipa::path(get, path = "/api/v1/devices/{imsi}/traffic", params(("imsi" = String, Path)), responses((status = 200, body = TrafficView), (status = 404, body = super::error::ErrorBody)))]
pub async fn traffic(
    State(s): State<AppState>,
    caller: Caller,
    Path(imsi): Path<String>,
) -> Result<Json<TrafficView>, ApiError> {
    let e = s.engine.read();
    let d = visible(&e, &caller, &imsi)?;
    let view = match e.traffic(d.imsi) {
        None => TrafficView {
            imsi: d.imsi.to_string(),
            flows: 0,
            first_flow: None,
            last_flow: None,
            top_destinations: Vec::new(),
            windows: Vec::new(),
            never_answered_share: None,
            policy_violations: 0,
        },
        Some(t) => TrafficView {
            imsi: d.imsi.to_string(),
            flows: t.flows(),
            first_flow: t.first_flow().map(rfc3339),
            last_flow: t.last_flow().map(rfc3339),
            top_destinations: t
                .top_destinations()
                .into_iter()
                .map(|c| DestinationView {
                    address: c.key.addr.to_string(),
                    port: c.key.port,
                    proto: c.key.proto,
                    bytes: c.bytes,
                    error: c.error,
                    packets: c.packets,
                    flows: c.flows,
                })
                .collect(),
            windows: t
                .windows()
                .into_iter()
                .map(|w| WindowJson {
                    hour: rfc3339(w.hour),
                    bytes_up: w.bytes_up,
                    bytes_down: w.bytes_down,
                    packets: w.packets,
                    flows: w.flows,
                    distinct_remote_addrs: w.distinct_remote_addrs,
                    distinct_remote_ports: w.distinct_remote_ports,
                    tcp_attempts: w.tcp_attempts,
                    tcp_unanswered: w.tcp_unanswered,
                })
                .collect(),
            never_answered_share: t.never_answered_share(),
            policy_violations: t.violation_count(),
        },
    };
    Ok(Json(view))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (1-1000, default 100).
    pub limit: Option<usize>,
    /// Items to skip (newest first).
    pub offset: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct FlowPage {
    pub items: Vec<FlowView>,
    /// Items available in total (the device keeps its 32 most recent flows).
    pub total: usize,
    pub next_offset: Option<usize>,
}

fn page<T>(items: Vec<T>, q: &PageQuery) -> Result<(Vec<T>, usize, Option<usize>), ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let offset = q.offset.unwrap_or(0);
    let total = items.len();
    let out: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
    let next = (offset + out.len() < total).then_some(offset + out.len());
    Ok((out, total, next))
}

/// A device's most recent attributed flows, newest first.
#[utoipa::path(get, path = "/api/v1/devices/{imsi}/flows", params(("imsi" = String, Path), PageQuery), responses((status = 200, body = FlowPage)))]
pub async fn device_flows(
    State(s): State<AppState>,
    caller: Caller,
    Path(imsi): Path<String>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FlowPage>, ApiError> {
    let Query(q) = q?;
    let e = s.engine.read();
    let d = visible(&e, &caller, &imsi)?;
    // The engine yields newest first already.
    let all: Vec<FlowView> = e
        .recent_flows(d.imsi)
        .map(|r| flow_view(&r.flow, Some(r.direction)))
        .collect();
    let (items, total, next_offset) = page(all, &q)?;
    Ok(Json(FlowPage {
        items,
        total,
        next_offset,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ViolationJson {
    pub time: String,
    pub group: String,
    /// Index of the deny rule in the group's policy; null when the default action denied.
    pub rule: Option<usize>,
    /// The flow, as evidence.
    pub flow: FlowView,
}

/// A device's most recent firewall-policy violations, newest first.
#[utoipa::path(get, path = "/api/v1/devices/{imsi}/violations", params(("imsi" = String, Path)), responses((status = 200, body = [ViolationJson])))]
pub async fn device_violations(
    State(s): State<AppState>,
    caller: Caller,
    Path(imsi): Path<String>,
) -> Result<Json<Vec<ViolationJson>>, ApiError> {
    let e = s.engine.read();
    let d = visible(&e, &caller, &imsi)?;
    // The engine yields newest first already.
    let list: Vec<ViolationJson> = e
        .violations(d.imsi)
        .map(|v| ViolationJson {
            time: rfc3339(v.time),
            group: v.group.to_string(),
            rule: v.rule,
            flow: flow_view(v.flow, Some(v.direction)),
        })
        .collect();
    Ok(Json(list))
}

/// Recent flows whose addresses no device held at the flow's time (misconfigured APNs, spoofing).
#[utoipa::path(get, path = "/api/v1/flows/unattributed", params(PageQuery), responses((status = 200, body = FlowPage)))]
pub async fn unattributed(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FlowPage>, ApiError> {
    caller.require_operator_wide_read()?;
    let Query(q) = q?;
    let e = s.engine.read();
    // The engine yields newest first already.
    let all: Vec<FlowView> = e.unattributed().map(|f| flow_view(f, None)).collect();
    let (items, total, next_offset) = page(all, &q)?;
    Ok(Json(FlowPage {
        items,
        total,
        next_offset,
    }))
}

// ---- policy ----

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleJson {
    /// Remote network, e.g. "198.51.100.0/24" (a bare address means /32 or /128).
    pub cidr: String,
    /// IP protocol: a number or "tcp", "udp", "icmp"; absent = any.
    pub proto: Option<serde_json::Value>,
    /// Remote port ranges: [[443, 443], [8000, 8100]]; empty = any.
    #[serde(default)]
    pub ports: Vec<(u16, u16)>,
    /// outbound (device to remote), inbound or both (default).
    pub direction: Option<String>,
    /// allow (default) or deny.
    pub action: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyJson {
    /// allow or deny: what happens to flows no rule matches.
    pub default_action: String,
    /// First match wins.
    #[serde(default)]
    pub rules: Vec<RuleJson>,
}

fn policy_json(p: &FirewallPolicy) -> PolicyJson {
    PolicyJson {
        default_action: p.default_action.as_str().into(),
        rules: p
            .rules
            .iter()
            .map(|r| RuleJson {
                cidr: r.cidr.to_string(),
                proto: r.proto.map(serde_json::Value::from),
                ports: r.ports.clone(),
                direction: Some(r.direction.as_str().into()),
                action: Some(r.action.as_str().into()),
            })
            .collect(),
    }
}

fn action(s: &str, field: &str) -> Result<PolicyAction, ApiError> {
    match s {
        "allow" => Ok(PolicyAction::Allow),
        "deny" => Ok(PolicyAction::Deny),
        _ => Err(ApiError::invalid(format!(
            "{field}: {s:?} is not allow or deny"
        ))),
    }
}

fn parse_policy(p: &PolicyJson) -> Result<FirewallPolicy, ApiError> {
    let default_action = action(&p.default_action, "default_action")?;
    if p.rules.len() > simguard_engine::policy::MAX_POLICY_RULES {
        return Err(ApiError::invalid(format!(
            "rules: at most {}",
            simguard_engine::policy::MAX_POLICY_RULES
        )));
    }
    let mut rules = Vec::with_capacity(p.rules.len());
    for (i, r) in p.rules.iter().enumerate() {
        let cidr: Cidr = r
            .cidr
            .parse()
            .map_err(|e| ApiError::invalid(format!("rules[{i}].cidr: {e}")))?;
        // "198.51.100.10/24" is most likely a typo for a host or a network:
        // say so rather than silently widen it to 198.51.100.0/24.
        if let Some((addr, _)) = r.cidr.split_once('/') {
            if addr
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a != cidr.addr())
            {
                return Err(ApiError::invalid(format!(
                    "rules[{i}].cidr: {:?} has host bits set; write {cidr} for the network or {addr} for the host",
                    r.cidr
                )));
            }
        }
        let proto = match &r.proto {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => Some(
                n.as_u64()
                    .and_then(|v| u8::try_from(v).ok())
                    .ok_or_else(|| {
                        ApiError::invalid(format!("rules[{i}].proto: {n} is not 0-255"))
                    })?,
            ),
            Some(serde_json::Value::String(s)) => Some(match s.to_ascii_lowercase().as_str() {
                "tcp" => 6,
                "udp" => 17,
                "icmp" => 1,
                "icmpv6" => 58,
                "gre" => 47,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "rules[{i}].proto: {s:?} is not tcp, udp, icmp, icmpv6, gre or a number"
                    )))
                }
            }),
            Some(v) => {
                return Err(ApiError::invalid(format!(
                    "rules[{i}].proto: {v} is not a protocol"
                )))
            }
        };
        if r.ports.len() > simguard_engine::policy::MAX_PORT_RANGES {
            return Err(ApiError::invalid(format!(
                "rules[{i}].ports: at most {} ranges",
                simguard_engine::policy::MAX_PORT_RANGES
            )));
        }
        if let Some((a, b)) = r.ports.iter().find(|(a, b)| a > b) {
            return Err(ApiError::invalid(format!(
                "rules[{i}].ports: range [{a}, {b}] is reversed"
            )));
        }
        let direction = match r.direction.as_deref().unwrap_or("both") {
            "outbound" => PolicyDirection::Outbound,
            "inbound" => PolicyDirection::Inbound,
            "both" => PolicyDirection::Both,
            d => {
                return Err(ApiError::invalid(format!(
                    "rules[{i}].direction: {d:?} is not outbound, inbound or both"
                )))
            }
        };
        rules.push(PolicyRule {
            cidr,
            proto,
            ports: r.ports.clone(),
            direction,
            action: action(
                r.action.as_deref().unwrap_or("allow"),
                &format!("rules[{i}].action"),
            )?,
        });
    }
    Ok(FirewallPolicy {
        default_action,
        rules,
    })
}

fn visible_group(e: &Engine, caller: &Caller, id: &str) -> Result<(), ApiError> {
    match e.group(id) {
        Some(g) if caller.sees(Some(&g.tenant)) => Ok(()),
        _ => Err(ApiError::not_found(format!("no group {id:?}"))),
    }
}

/// A group's firewall policy (a group without one allows everything).
#[utoipa::path(get, path = "/api/v1/groups/{id}/policy", params(("id" = String, Path)), responses((status = 200, body = PolicyJson), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PolicyJson>, ApiError> {
    let e = s.engine.read();
    visible_group(&e, &caller, &id)?;
    Ok(Json(match e.policy(&id) {
        Some(p) => policy_json(p),
        None => PolicyJson {
            default_action: "allow".into(),
            rules: Vec::new(),
        },
    }))
}

/// Replaces a group's firewall policy. Every later flow of its devices that the policy denies is a violation.
#[utoipa::path(put, path = "/api/v1/groups/{id}/policy", params(("id" = String, Path)), request_body = PolicyJson, responses((status = 200, body = UpsertResult), (status = 400, body = super::error::ErrorBody)))]
pub async fn put_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<PolicyJson>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<UpsertResult>, ApiError> {
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    {
        let e = s.engine.read();
        visible_group(&e, &caller, &id)?;
    }
    let policy = parse_policy(&body)?;
    let seq = submit(&s, vec![Event::SetPolicy { group: id, policy }]).await?;
    Ok(Json(UpsertResult { upserted: 1, seq }))
}
