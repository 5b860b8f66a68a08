// The shapes of the API this console reads (crates/server/src/api). Only
// the fields the console uses are spelled out.

export type Severity = 'warning' | 'minor' | 'major' | 'critical';
export type Status = 'online' | 'offline' | 'never_seen';

export interface Network {
  plmn: string;
  mcc: string;
  mnc: string;
  country: string | null;
  country_name: string | null;
}

export interface Cell {
  type: string;
  plmn: string;
  lac: number | null;
  tac: number | null;
  ci: number | null;
  eci: number | null;
  enb: number | null;
  [k: string]: unknown;
}

export interface SessionView {
  session_id: string;
  nas: string;
  apn: string | null;
  framed_ip: string | null;
  charging_id: number | null;
  start: string;
  last_update: string;
  interim_interval_secs: number;
  up_octets: number;
  down_octets: number;
}

export interface Position {
  lat: number;
  lon: number;
  accuracy_m: number | null;
  source: string | null;
  time: string | number | null;
}

export interface Device {
  imsi: string;
  provisioned: boolean;
  iccid: string | null;
  msisdn: string | null;
  bound_imei: string | null;
  tenant: string | null;
  group: string | null;
  label: string | null;
  lifecycle: string | null;
  status: Status;
  offline_reason: string | null;
  imeisv: string | null;
  tac: string | null;
  msisdn_seen: string | null;
  first_seen: string | null;
  last_seen: string | null;
  online_until: string | null;
  network: Network | null;
  rat: { code: number; name: string } | null;
  cell: Cell | null;
  time_zone: { offset_minutes: number; dst_hours: number } | null;
  sessions: SessionView[];
  usage: {
    period: string;
    period_up_octets: number;
    period_down_octets: number;
    period_sessions: number;
    total_up_octets: number;
    total_down_octets: number;
  };
  /** From the geolocation work: null when nothing is known. */
  position?: Position | null;
}

export interface DeviceSummary {
  total: number;
  by_status: Record<Status, number>;
  by_lifecycle: Record<string, number>;
  by_country: { country: string | null; name: string | null; count: number }[];
  by_rat: { code: number | null; name: string | null; count: number }[];
  by_tenant: Record<string, number>;
  engine_time: string;
  engine_time_ms: number;
}

export interface DeviceColumns {
  count: number;
  engine_time_ms: number;
  dict: {
    tenant: string[];
    group: string[];
    lifecycle: string[];
    status: Status[];
    country: { code: string; name: string | null; lat: number | null; lon: number | null }[];
    rat: string[];
    alert: Severity[];
  };
  imsi: string[];
  label: (string | null)[];
  msisdn: (string | null)[];
  tenant: number[];
  group: number[];
  lifecycle: number[];
  status: number[];
  country: number[];
  rat: number[];
  alert: number[];
  last_seen: (number | null)[];
  usage: number[];
}

export interface Fact {
  name: string;
  observed: string;
  expected: string | null;
}

export interface Finding {
  id: string;
  type: string;
  detector: string;
  subject: { type: string; id: string };
  imsi: string | null;
  tenant: string | null;
  group: string | null;
  severity: Severity;
  time: string;
  time_ms: number;
  onset: string;
  confidence: number;
  summary: string;
  evidence: {
    baseline: string;
    facts: Fact[];
    records: { seq: number; time: string; what: string; detail: string }[];
    flows: {
      start: string;
      src: string;
      dst: string;
      src_port: number;
      dst_port: number;
      proto: number;
      bytes: number;
      packets: number;
    }[];
  };
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Alert {
  id: string;
  type: string;
  subject: { type: string; id: string };
  imsi: string | null;
  tenant: string | null;
  group: string | null;
  severity: Severity;
  state: 'active' | 'cleared';
  acknowledged: boolean;
  start: string;
  start_ms: number;
  last: string;
  last_ms: number;
  end: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  cleared_at: string | null;
  cleared_by: string | null;
  count: number;
  finding: string | null;
  summary: string;
}

export interface AlertComment {
  id: number;
  time: string;
  author: string;
  text: string;
}

export interface AlertSummary {
  active: Record<Severity, number>;
  active_unacknowledged: Record<Severity, number>;
  active_total: number;
  cleared_total: number;
}

export interface ActionResult {
  seq: number;
  time: string;
  time_ms: number;
  result: string;
  detail: string;
  attempts: number;
  sent: string[];
}

export interface AuditAction {
  id: string;
  time: string;
  time_ms: number;
  imsi: string;
  tenant: string | null;
  group: string | null;
  actor: string;
  rule: string | null;
  action: string;
  kbps: number | null;
  state: string | null;
  mode: string;
  reason: string;
  finding: string | null;
  from: string | null;
  to: string | null;
  expires: string | null;
  step: number;
  enforce: boolean;
  results: ActionResult[];
}

/** The network's answer to an action on the live stream (`action_result`):
 *  the audit trail's result with its action's id, device, tenant and group. */
export interface LiveActionResult extends ActionResult {
  action: string;
  imsi: string;
  tenant: string | null;
  group: string | null;
}

export interface Status_ {
  version: string;
  engine_seq: number;
  store_seq: number;
  engine_time: string;
  engine_time_ms: number;
  devices: number;
  unprovisioned_seen: number;
  accounting: Record<string, number>;
  flows: Record<string, number>;
  uptime_secs: number;
}

export interface RuleStep {
  action: string;
  kbps?: number;
  state?: string;
  expire_secs?: number;
}

export type RuleTrigger =
  | { finding: { types?: string[]; min_severity?: string | null } }
  | { usage: { period: string; max_bytes: number } }
  | { connectivity: { event: string } };

export interface Rule {
  id: string;
  name?: string | null;
  enabled?: boolean | null;
  mode?: string | null;
  scope?: { tenant?: string | null; group?: string | null; imsi?: string | null } | null;
  trigger: RuleTrigger;
  steps: RuleStep[];
  cooldown_secs?: number | null;
  escalation_window_secs?: number | null;
}

export interface Backtest {
  rule: Rule;
  from: string;
  until: string;
  replayed: number;
  journal_seq: number;
  total_actions: number;
  by_action: Record<string, number>;
  by_step: Record<string, number>;
  device_count: number;
  devices: { imsi: string; tenant: string | null; group: string | null; actions: number; first: string; last: string; max_step: number }[];
  actions: (AuditAction & { would_set: string | null })[];
  truncated: boolean;
}

export interface Traffic {
  imsi: string;
  flows: number;
  first_flow: string | null;
  last_flow: string | null;
  top_destinations: { address: string; port: number; proto: number; bytes: number; error: number; packets: number; flows: number }[];
  windows: { hour: string; bytes_up: number; bytes_down: number; flows: number; distinct_remote_addrs: number; tcp_attempts: number; tcp_unanswered: number }[];
  never_answered_share: number | null;
  policy_violations: number;
}

export interface Usage {
  imsi: string;
  from: string;
  to: string;
  hours: { hour: string; up_octets: number; down_octets: number }[];
  total_up_octets: number;
  total_down_octets: number;
}

export interface Baseline {
  imsi: string;
  reports: number;
  warmup_reports: number;
  uplink_per_report: { p50: number; p90: number } | null;
  interval_secs: number | null;
  uplink_per_hour: { p50: number; p90: number } | null;
  uplink_today: number;
  declared: {
    group: string;
    max_bytes_per_day: number | null;
    report_interval_secs: number | null;
    active_hours: [number, number] | null;
  } | null;
}

export interface Group {
  id: string;
  tenant: string;
  name: string;
  profile: {
    max_bytes_per_day: number | null;
    report_interval_secs: number | null;
    active_hours: [number, number] | null;
    allowed_countries: string[];
  };
}

export interface Tenant {
  id: string;
  name: string;
}

export interface Me {
  user: string;
  role: string;
  tenant: string | null;
  csrf_token?: string;
  expires?: string | number;
}

export interface Notification {
  id: string;
  message_id: string;
  event: string;
  subscription: string;
  channel: string;
  recipient: string | null;
  status: string;
  created: string;
  last_error: string | null;
  attempts: { n: number; time: string; latency_ms: number; result: string; detail: string }[];
}
