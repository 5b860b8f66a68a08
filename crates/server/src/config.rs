//! Configuration: TOML with `SIMGUARD_*` environment overrides.
//!
//! The commented template in `config/simguard.toml` is the single source of
//! defaults: `Config::default_config()` parses it, and `simguard configfile`
//! prints it, so the two can never disagree.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The commented default configuration.
pub const TEMPLATE: &str = include_str!("../config/simguard.toml");

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SIMGUARD_";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub radius: RadiusConfig,
    pub flows: FlowsConfig,
    pub journal: JournalConfig,
    pub engine: EngineConfig,
    /// Detection knobs (see the template for each one's meaning).
    #[serde(default)]
    pub detection: simguard_engine::detect::DetectOptions,
    /// Response rules written to the engine at start when they differ from
    /// its own (identified by id: an API edit of one lasts until the next start).
    #[serde(default)]
    pub rules: Vec<crate::api::rules::RuleInput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusConfig {
    pub accounting_bind: SocketAddr,
    pub auth_bind: SocketAddr,
    pub socket_receive_buffer: usize,
    pub duplicate_window_secs: u64,
    #[serde(default)]
    pub clients: Vec<RadiusClient>,
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
}

fn yes() -> bool {
    true
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
    #[serde(default)]
    pub exporters: Vec<FlowExporter>,
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
        merge(&mut base, user);
        let mut overrides = Vec::new();
        for (k, v) in env {
            let Some(path) = k.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if path == "ADMIN_TOKEN" || path.is_empty() {
                continue;
            }
            let keys: Vec<String> = path.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut base, &keys, parse_env_value(&v))
                .map_err(|m| invalid(&format!("environment variable {k}"), m))?;
            overrides.push(k);
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
        for (i, c) in self.radius.clients.iter().enumerate() {
            if c.secret.is_empty() {
                return Err(format!("radius.clients[{i}] ({}): secret is empty", c.name));
            }
            if c.name.is_empty() {
                return Err(format!("radius.clients[{i}]: name is empty"));
            }
        }
        if self.flows.commit_records == 0 {
            return Err("flows.commit_records: must be at least 1".into());
        }
        if self.flows.commit_interval_ms == 0 {
            return Err("flows.commit_interval_ms: must be at least 1".into());
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
        if self.engine.missed_interims == 0 {
            return Err("engine.missed_interims: must be at least 1".into());
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
