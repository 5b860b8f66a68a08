//! Configuration: TOML with `SIMGUARD_*` environment overrides.
//!
//! The commented template in `config/simguard.toml` is the single source of
//! defaults: `Config::default_config()` parses it, and `simguard configfile`
//! prints it, so the two can never disagree.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The commented default configuration.
pub const TEMPLATE: &str = include_str!("../config/simguard.toml");

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SIMGUARD_";

/// `SIMGUARD_*` variables that are secrets or command options, not
/// configuration keys.
pub const NOT_CONFIG: &[&str] = &[
    "ADMIN_TOKEN",
    "PASSWORD",
    "DEMO_PASSWORD",
    "CONFIG",
    "URL",
    "TOKEN",
    "SHARED_DATA",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub radius: RadiusConfig,
    pub flows: FlowsConfig,
    pub journal: JournalConfig,
    pub engine: EngineConfig,
    /// Location trails.
    #[serde(default)]
    pub locations: LocationsConfig,
    /// Detection knobs (see the template for each one's meaning).
    #[serde(default)]
    pub detection: simguard_engine::detect::DetectOptions,
    /// Response rules written to the engine at start when they differ from
    /// its own (identified by id: an API edit of one lasts until the next start).
    #[serde(default)]
    pub rules: Vec<crate::api::rules::RuleInput>,
    /// Notification channels and subscriptions.
    #[serde(default)]
    pub notify: crate::notify::NotifyConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: SocketAddr,
    /// A console session ends after this long without a request, seconds.
    #[serde(default = "idle_secs")]
    pub session_idle_timeout_secs: u64,
    /// ... and this long after login whatever happens, seconds.
    #[serde(default = "absolute_secs")]
    pub session_absolute_timeout_secs: u64,
    /// Mark the session cookie `Secure`. Browsers accept Secure cookies from
    /// http://127.0.0.1 and http://localhost (secure contexts), so only a
    /// console reached over plain HTTP under another loopback name needs
    /// false, and false is refused unless `bind` is a loopback address.
    #[serde(default = "yes")]
    pub secure_cookie: bool,
    /// Origins (scheme://host:port) accepted on cookie-authenticated writes
    /// besides the server's own, for a console served through a proxy.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

fn idle_secs() -> u64 {
    1800
}

fn absolute_secs() -> u64 {
    43_200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusConfig {
    pub accounting_bind: SocketAddr,
    pub auth_bind: SocketAddr,
    pub socket_receive_buffer: usize,
    pub duplicate_window_secs: u64,
    /// Admission: reject Access-Requests for SIMs that are not in the
    /// inventory (off: they are admitted, and detection reports them).
    pub reject_unprovisioned: bool,
    /// The RFC 5176 client (CoA and Disconnect to the gateways).
    pub coa: CoaConfig,
    /// What each enforcement state means on the wire, for every client that
    /// does not say otherwise in its own `enforcement`.
    pub enforcement: EnforcementConfig,
    #[serde(default)]
    pub clients: Vec<RadiusClient>,
}

/// How CoA-Request and Disconnect-Request are sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoaConfig {
    /// Local address of the one socket every request leaves from.
    pub source: SocketAddr,
    /// Wait for the first answer, ms; doubled after each retransmission.
    pub timeout_ms: u64,
    /// Transmissions in all (the first one plus retransmissions).
    pub attempts: u32,
    /// Requests waiting for an answer at once; more wait for a slot.
    pub max_in_flight: usize,
}

/// The reply-attribute mapping: which attributes a gateway gets for each
/// enforcement state, in Access-Accept and in CoA-Request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnforcementConfig {
    /// Rate of a throttled device at admission (its lifecycle has no rate), kbit/s.
    pub throttle_kbps: u32,
    pub throttled: StateMapping,
    pub quarantined: StateMapping,
    pub blocked: BlockedMapping,
    /// CoA-Request that lifts a throttle or quarantine.
    pub release: StateMapping,
}

/// Attributes for one state. `{kbps}` and `{bps}` in values are replaced
/// by the throttle rate.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StateMapping {
    /// Filter-Id (RFC 2865 §5.11); empty = none.
    #[serde(default)]
    pub filter_id: String,
    #[serde(default)]
    pub attributes: Vec<AttributeSpec>,
}

/// How a block reaches a gateway that already has a session.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BlockVia {
    /// Disconnect-Request: the session ends (RFC 5176 §3.1).
    #[default]
    Disconnect,
    /// CoA-Request with the blocked mapping's attributes, for gateways that
    /// block by filter rather than tear the session down.
    Coa,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BlockedMapping {
    #[serde(default)]
    pub via: BlockVia,
    /// Sent only when `via = "coa"` (RFC 5176 allows no authorization
    /// attributes in a Disconnect-Request).
    #[serde(default)]
    pub filter_id: String,
    #[serde(default)]
    pub attributes: Vec<AttributeSpec>,
}

/// One extra attribute: standard (no `vendor`) or vendor-specific.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// SMI enterprise number (10415 = 3GPP); absent for a standard attribute.
    #[serde(default)]
    pub vendor: Option<u32>,
    /// Attribute type, or the vendor's sub-attribute type.
    #[serde(rename = "type")]
    pub typ: u8,
    /// The value as text, read according to `format`.
    pub value: String,
    #[serde(default)]
    pub format: AttributeFormat,
    /// Send only in this packet kind; absent = in Access-Accept and CoA-Request.
    #[serde(default)]
    pub only: Option<PacketKind>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AttributeFormat {
    /// UTF-8 text as is.
    #[default]
    String,
    /// 32-bit unsigned big-endian integer.
    Integer,
    /// Octets in hex ("0a0b", an optional 0x prefix).
    Hex,
    /// Dotted IPv4 address.
    Ipv4,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PacketKind {
    Accept,
    Coa,
}

/// A client's own mapping: each part given replaces the default's.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientEnforcement {
    pub throttle_kbps: Option<u32>,
    pub throttled: Option<StateMapping>,
    pub quarantined: Option<StateMapping>,
    pub blocked: Option<BlockedMapping>,
    pub release: Option<StateMapping>,
}

/// One entry of the NAS allow-list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusClient {
    /// Name recorded with every record from this NAS (and used for CoA later).
    pub name: String,
    /// Source addresses allowed, as a CIDR.
    pub address: IpNet,
    pub secret: String,
    /// Drop requests without a valid Message-Authenticator (Blast-RADIUS).
    #[serde(default = "yes")]
    pub require_message_authenticator: bool,
    /// Where CoA/Disconnect requests for this NAS go; default: `address`
    /// when it is a single host.
    #[serde(default)]
    pub coa_address: Option<IpAddr>,
    /// RFC 5176 port of the NAS.
    #[serde(default = "coa_port")]
    pub coa_port: u16,
    /// This NAS's reply-attribute mapping, over `radius.enforcement`.
    #[serde(default)]
    pub enforcement: ClientEnforcement,
}

fn yes() -> bool {
    true
}

fn coa_port() -> u16 {
    3799
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowsConfig {
    pub ipfix_bind: SocketAddr,
    pub netflow_bind: SocketAddr,
    pub socket_receive_buffer: usize,
    pub pending_template_secs: u64,
    /// Flow records gathered into one journal event before it is committed.
    pub commit_records: usize,
    /// ...or the longest a received flow record waits for that, ms.
    pub commit_interval_ms: u64,
    /// Most flow records received and not yet applied by the engine.
    pub max_queued_records: usize,
    /// Threads that apply a large flow batch, partition by partition (0 =
    /// one fewer than the CPUs, at least 1); the results are the same for
    /// any number.
    pub engine_workers: usize,
    #[serde(default)]
    pub exporters: Vec<FlowExporter>,
}

impl FlowsConfig {
    /// `engine_workers`, with 0 resolved to one fewer than the CPUs.
    pub fn engine_workers(&self) -> usize {
        match self.engine_workers {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1))
                .clamp(1, simguard_engine::engine::PARTITIONS),
            n => n,
        }
    }
}

/// One entry of the flow exporter allow-list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowExporter {
    /// Recorded with every flow batch from this exporter.
    #[serde(default)]
    pub name: Option<String>,
    pub address: IpNet,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    pub segment_mib: u64,
    pub fsync: bool,
    pub max_batch: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub default_interim_secs: u32,
    pub missed_interims: u32,
    pub grace_secs: u32,
    pub snapshot_interval_secs: u64,
    pub snapshot_keep: usize,
    pub tick_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationsConfig {
    /// Points kept per device trail (at least 1).
    pub trail_points: u32,
}

impl Default for LocationsConfig {
    fn default() -> Self {
        LocationsConfig {
            trail_points: simguard_store::LocationRetention::default().per_device,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl Config {
    /// The built-in defaults (the template).
    pub fn default_config() -> Result<Config, ConfigError> {
        Self::from_toml(TEMPLATE, "built-in default", std::iter::empty())
    }

    /// Loads `path` (or the template if None), then applies `SIMGUARD_*`
    /// overrides from the process environment.
    pub fn load(path: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (TEMPLATE.to_string(), "built-in default".to_string()),
        };
        Self::from_toml(&text, &origin, std::env::vars())
    }

    /// Parses `text` and applies overrides from `env` (name, value) pairs.
    /// Keys missing from `text` fall back to the template's values.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let invalid = |origin: &str, message: String| ConfigError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let mut base: toml::Table = TEMPLATE
            .parse()
            .map_err(|e: toml::de::Error| invalid("built-in default", e.to_string()))?;
        let user: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| invalid(origin, e.to_string()))?;
        let mut auth_given = user
            .get("radius")
            .and_then(|r| r.get("auth_bind"))
            .is_some();
        merge(&mut base, user);
        let mut overrides = Vec::new();
        for (k, v) in env {
            let Some(path) = k.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if NOT_CONFIG.contains(&path) || path.is_empty() {
                continue;
            }
            let keys: Vec<String> = path.split("__").map(|s| s.to_ascii_lowercase()).collect();
            auth_given |= keys == ["radius", "auth_bind"] || keys == ["radius"];
            set_path(&mut base, &keys, parse_env_value(&v))
                .map_err(|m| invalid(&format!("environment variable {k}"), m))?;
            overrides.push(k);
        }
        if !auth_given {
            auth_follows_ephemeral_accounting(&mut base);
        }
        // A bad value may come from the file or from an override: name both.
        let origin = if overrides.is_empty() {
            origin.to_string()
        } else {
            format!("{origin} with overrides {}", overrides.join(", "))
        };
        let cfg: Config = toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(&origin, e.to_string()))?;
        cfg.validate().map_err(|m| invalid(&origin, m))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        self.detection
            .validate()
            .map_err(|e| format!("detection.{e}"))?;
        crate::api::rules::configured_rules(&self.rules)?;
        self.notify.validate()?;
        crate::coa::Mapping::resolve(&self.radius.enforcement, &ClientEnforcement::default())
            .map_err(|e| format!("radius.enforcement: {e}"))?;
        for (i, c) in self.radius.clients.iter().enumerate() {
            if c.secret.is_empty() {
                return Err(format!("radius.clients[{i}] ({}): secret is empty", c.name));
            }
            if c.name.is_empty() {
                return Err(format!("radius.clients[{i}]: name is empty"));
            }
            if self.radius.clients[..i].iter().any(|o| o.name == c.name) {
                // CoA addresses a NAS by name: two with one name are ambiguous.
                return Err(format!(
                    "radius.clients[{i}]: name {:?} is used twice",
                    c.name
                ));
            }
            crate::coa::Mapping::resolve(&self.radius.enforcement, &c.enforcement)
                .map_err(|e| format!("radius.clients[{i}] ({}).enforcement: {e}", c.name))?;
        }
        let coa = &self.radius.coa;
        if coa.attempts == 0 {
            return Err("radius.coa.attempts: must be at least 1".into());
        }
        if coa.timeout_ms == 0 {
            return Err("radius.coa.timeout_ms: must be at least 1".into());
        }
        if !(1..=256).contains(&coa.max_in_flight) {
            // The RADIUS Identifier is one octet: at most 256 requests to
            // one NAS can be told apart.
            return Err("radius.coa.max_in_flight: must be 1 to 256".into());
        }
        if self.flows.commit_records == 0 {
            return Err("flows.commit_records: must be at least 1".into());
        }
        if self.flows.commit_interval_ms == 0 {
            return Err("flows.commit_interval_ms: must be at least 1".into());
        }
        if self.flows.engine_workers > simguard_engine::engine::PARTITIONS {
            return Err(format!(
                "flows.engine_workers: at most {} (one per partition), or 0 for one fewer than the CPUs",
                simguard_engine::engine::PARTITIONS
            ));
        }
        if self.flows.max_queued_records < self.flows.commit_records {
            return Err(format!(
                "flows.max_queued_records ({}) must be at least flows.commit_records ({})",
                self.flows.max_queued_records, self.flows.commit_records
            ));
        }
        if self.journal.max_batch == 0 {
            return Err("journal.max_batch: must be at least 1".into());
        }
        if self.locations.trail_points == 0 {
            return Err("locations.trail_points: must be at least 1".into());
        }
        if self.engine.missed_interims == 0 {
            return Err("engine.missed_interims: must be at least 1".into());
        }
        let http = &self.http;
        if http.session_idle_timeout_secs == 0 {
            return Err("http.session_idle_timeout_secs: must be at least 1".into());
        }
        if http.session_absolute_timeout_secs < http.session_idle_timeout_secs {
            return Err(format!(
                "http.session_absolute_timeout_secs ({}) must be at least http.session_idle_timeout_secs ({})",
                http.session_absolute_timeout_secs, http.session_idle_timeout_secs
            ));
        }
        if !http.secure_cookie && !http.bind.ip().is_loopback() {
            // A session cookie without Secure over a network is readable by
            // anyone on the path: only a console on loopback may do without.
            return Err(format!(
                "http.secure_cookie = false is allowed only when http.bind is a loopback address (it is {}); put TLS in front and keep it true",
                http.bind
            ));
        }
        for o in &http.allowed_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(format!(
                    "http.allowed_origins: {o:?} is not an origin like \"https://console.example.com\""
                ));
            }
        }
        Ok(())
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.data_dir.join("journal")
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("simguard.db")
    }

    pub fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }
}

/// An instance that asks for an ephemeral accounting port (port 0: tests,
/// `simguard eval`, anything run in-process beside others) and says nothing
/// about `auth_bind` gets an ephemeral auth port too, rather than the
/// template's fixed 1812, which two such instances could not share.
fn auth_follows_ephemeral_accounting(base: &mut toml::Table) {
    let Some(toml::Value::Table(radius)) = base.get_mut("radius") else {
        return;
    };
    let acct = radius
        .get("accounting_bind")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<SocketAddr>().ok());
    if let Some(a) = acct.filter(|a| a.port() == 0) {
        radius.insert(
            "auth_bind".into(),
            toml::Value::String(SocketAddr::new(a.ip(), 0).to_string()),
        );
    }
}

/// Overlays `top` onto `base`: tables merge key by key, anything else
/// (including arrays such as `radius.clients`) replaces.
fn merge(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(t: &mut toml::Table, keys: &[String], v: toml::Value) -> Result<(), String> {
    match keys {
        [] => Err("empty key".into()),
        [k] => {
            t.insert(k.clone(), v);
            Ok(())
        }
        [k, rest @ ..] => match t
            .entry(k.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()))
        {
            toml::Value::Table(inner) => set_path(inner, rest, v),
            _ => Err(format!("{k} is not a section")),
        },
    }
}

fn parse_env_value(v: &str) -> toml::Value {
    let doc = format!("v = {v}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(v.into())),
        Err(_) => toml::Value::String(v.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_a_valid_config_with_the_documented_ports() {
        let c = Config::default_config().unwrap();
        assert_eq!(c.http.bind.port(), 8080);
        assert_eq!(c.radius.accounting_bind.port(), 1813);
        assert_eq!(c.radius.auth_bind.port(), 1812);
        assert!(c.http.bind.ip().is_loopback());
        assert_eq!(c.data_dir, PathBuf::from("./simguard-data"));
        assert_eq!(c.radius.clients.len(), 1);
        assert_eq!(c.flows.ipfix_bind.port(), 4739);
        assert_eq!(c.flows.netflow_bind.port(), 2055);
        assert_eq!(c.flows.exporters.len(), 1);
        assert!(c.radius.clients[0].require_message_authenticator);
        assert_eq!(c.flows.commit_records, 8192);
        assert_eq!(c.flows.commit_interval_ms, 20);
        assert_eq!(c.flows.max_queued_records, 524_288);
        assert_eq!(c.flows.engine_workers, 0);
    }

    #[test]
    fn the_template_documents_the_detection_defaults() {
        // Every knob of [detection] is written out in the template with its
        // default, so the printed configfile tells the truth.
        let c = Config::default_config().unwrap();
        assert_eq!(
            c.detection,
            simguard_engine::detect::DetectOptions::default()
        );
        let text = TEMPLATE;
        for key in [
            "known_service_prefix_v4 = 16",
            "known_service_prefix_v6 = 32",
            "known_service_min_networks = 2",
        ] {
            assert!(text.contains(key), "{key}");
        }
    }

    #[test]
    fn enforcement_keys_have_documented_defaults_and_are_validated() {
        let c = Config::default_config().unwrap();
        assert!(!c.radius.reject_unprovisioned);
        assert_eq!(c.radius.coa.attempts, 4);
        assert_eq!(c.radius.coa.timeout_ms, 1000);
        assert_eq!(c.radius.clients[0].coa_port, 3799);
        assert_eq!(c.radius.clients[0].coa_address, None);
        assert_eq!(c.radius.enforcement.throttle_kbps, 64);
        assert_eq!(
            c.radius.enforcement.throttled.filter_id,
            "simguard-throttle-{kbps}k"
        );
        assert_eq!(c.radius.enforcement.blocked.via, BlockVia::Disconnect);
        // A client's partial mapping, next to the defaults.
        let c = Config::from_toml(
            r#"
[radius.enforcement.quarantined]
filter_id = "walled-garden"
[[radius.clients]]
name = "pgw-1"
address = "10.0.0.0/24"
secret = "s"
coa_address = "10.0.0.7"
coa_port = 1700
[radius.clients.enforcement.throttled]
attributes = [{ vendor = 10415, type = 5, value = "0x0102", format = "hex", only = "coa" }]
"#,
            "x.toml",
            std::iter::empty(),
        )
        .unwrap();
        let cl = &c.radius.clients[0];
        assert_eq!(cl.coa_address, Some("10.0.0.7".parse().unwrap()));
        assert_eq!(cl.coa_port, 1700);
        let t = cl.enforcement.throttled.as_ref().unwrap();
        assert_eq!(t.filter_id, "");
        assert_eq!(t.attributes[0].only, Some(PacketKind::Coa));
        assert_eq!(c.radius.enforcement.quarantined.filter_id, "walled-garden");
        // Defaults the user did not touch survive the merge.
        assert_eq!(c.radius.enforcement.release.filter_id, "simguard-default");
        for (text, key) in [
            ("[radius.coa]\nattempts = 0\n", "radius.coa.attempts"),
            ("[radius.coa]\nmax_in_flight = 257\n", "radius.coa.max_in_flight"),
            (
                "[radius.enforcement.throttled]\nattributes = [{ type = 80, value = \"x\" }]\n",
                "radius.enforcement: throttled",
            ),
            (
                "[[radius.clients]]\nname = \"a\"\naddress = \"10.0.0.1/32\"\nsecret = \"s\"\n[[radius.clients]]\nname = \"a\"\naddress = \"10.0.0.2/32\"\nsecret = \"s\"\n",
                "used twice",
            ),
        ] {
            let e = Config::from_toml(text, "x.toml", std::iter::empty())
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn auth_port_follows_an_ephemeral_accounting_port_unless_given() {
        let c = Config::from_toml(
            "[radius]\naccounting_bind = \"127.0.0.1:0\"\n",
            "x.toml",
            std::iter::empty(),
        )
        .unwrap();
        assert_eq!(c.radius.auth_bind, "127.0.0.1:0".parse().unwrap());
        let c = Config::from_toml(
            "[radius]\naccounting_bind = \"127.0.0.1:0\"\nauth_bind = \"127.0.0.1:1812\"\n",
            "x.toml",
            std::iter::empty(),
        )
        .unwrap();
        assert_eq!(c.radius.auth_bind.port(), 1812);
        let env = vec![
            (
                "SIMGUARD_RADIUS__ACCOUNTING_BIND".to_string(),
                "127.0.0.1:0".to_string(),
            ),
            (
                "SIMGUARD_RADIUS__AUTH_BIND".to_string(),
                "127.0.0.1:1645".to_string(),
            ),
        ];
        let c = Config::from_toml("", "x.toml", env.into_iter()).unwrap();
        assert_eq!(c.radius.auth_bind.port(), 1645);
        let env = vec![(
            "SIMGUARD_RADIUS__ACCOUNTING_BIND".to_string(),
            "127.0.0.1:0".to_string(),
        )];
        let c = Config::from_toml("", "x.toml", env.into_iter()).unwrap();
        assert_eq!(c.radius.auth_bind.port(), 0);
        // A fixed accounting port keeps the fixed auth port.
        assert_eq!(
            Config::default_config().unwrap().radius.auth_bind.port(),
            1812
        );
    }

    #[test]
    fn flow_commit_cadence_is_validated() {
        for (text, key) in [
            ("[flows]\ncommit_records = 0\n", "flows.commit_records"),
            (
                "[flows]\ncommit_interval_ms = 0\n",
                "flows.commit_interval_ms",
            ),
            (
                "[flows]\nmax_queued_records = 100\n",
                "flows.max_queued_records",
            ),
        ] {
            let e = Config::from_toml(text, "x.toml", std::iter::empty())
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let c = Config::from_toml(
            "[flows]\ncommit_records = 1\ncommit_interval_ms = 1\nmax_queued_records = 1\n",
            "x.toml",
            std::iter::empty(),
        )
        .unwrap();
        assert_eq!(
            (
                c.flows.commit_records,
                c.flows.commit_interval_ms,
                c.flows.max_queued_records
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn env_overrides_nested_keys_and_arrays() {
        let env = vec![
            (
                "SIMGUARD_HTTP__BIND".to_string(),
                "127.0.0.1:9999".to_string(),
            ),
            ("SIMGUARD_DATA_DIR".to_string(), "/tmp/x".to_string()),
            ("SIMGUARD_JOURNAL__FSYNC".to_string(), "false".to_string()),
            (
                "SIMGUARD_RADIUS__CLIENTS".to_string(),
                r#"[{ name = "pgw", address = "10.0.0.0/8", secret = "s" }]"#.to_string(),
            ),
            ("SIMGUARD_ADMIN_TOKEN".to_string(), "ignored".to_string()),
            ("SIMGUARD_PASSWORD".to_string(), "ignored".to_string()),
            ("SIMGUARD_DEMO_PASSWORD".to_string(), "ignored".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = Config::from_toml("", "test", env.into_iter()).unwrap();
        assert_eq!(c.http.bind.port(), 9999);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert!(!c.journal.fsync);
        assert_eq!(c.radius.clients[0].name, "pgw");
        assert!(c.radius.clients[0].require_message_authenticator);
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let e = Config::from_toml(
            "[http]\nbind = \"not an address\"\n",
            "x.toml",
            std::iter::empty(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("x.toml"), "{e}");
        assert!(e.contains("bind"), "{e}");
        let e = Config::from_toml("[http]\nbnd = 1\n", "x.toml", std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bnd"), "{e}");
        let e = Config::from_toml("data_dir = \n", "x.toml", std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        let env = vec![("SIMGUARD_HTTP__BIND".to_string(), "nonsense".to_string())];
        let e = Config::from_toml("", "x.toml", env.into_iter())
            .unwrap_err()
            .to_string();
        assert!(e.contains("SIMGUARD_HTTP__BIND"), "{e}");
    }
}
