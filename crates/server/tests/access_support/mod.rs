//! Helpers of the access tests: an in-process server, users added straight
//! into its store, a raw HTTP client that handles the session cookie by
//! hand (so the tests see exactly what a browser would be sent), and
//! findings fed through the store sink.
#![allow(dead_code)]

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use simguard_engine::{
    Digits, Engine, EngineOptions, Evidence, Finding, FindingKind, Output, Severity, Subject,
};
use simguard_server::access::password;
use simguard_server::config::Config;
use simguard_server::pipeline::SinkState;
use simguard_server::{Server, StartOptions};
use simguard_store::{AccessStore, Role, Store};
use std::path::Path;

pub const ADMIN: &str = "access-test-admin-token";
pub const PASSWORD: &str = "correct horse battery";
/// 2026-11-22T00:00:00Z
pub const T0: i64 = 1_795_305_600_000;

pub fn config(dir: &Path, http_extra: &str) -> Config {
    config_with(dir, http_extra, "")
}

/// [`config`] with more TOML at the end (a `[notify]` section).
pub fn config_with(dir: &Path, http_extra: &str, tail: &str) -> Config {
    let toml = format!(
        r#"
data_dir = "{}"
[http]
bind = "127.0.0.1:0"
{http_extra}
[radius]
accounting_bind = "127.0.0.1:0"
[flows]
ipfix_bind = "127.0.0.1:0"
netflow_bind = "127.0.0.1:0"
[engine]
tick_ms = 0
{tail}
"#,
        dir.display()
    );
    Config::from_toml(&toml, "access test", std::iter::empty()).expect("test config")
}

pub async fn start(dir: &Path, http_extra: &str) -> Server {
    start_with(config(dir, http_extra)).await
}

pub async fn start_with(cfg: Config) -> Server {
    Server::start(
        cfg,
        StartOptions {
            admin_token: Some(ADMIN.into()),
        },
    )
    .await
    .expect("server starts")
}

/// Adds a user straight into the store (as `simguard users add` does).
pub fn add_user(dir: &Path, name: &str, role: Role, tenant: Option<&str>) {
    let mut a = AccessStore::open(dir.join("simguard.db")).unwrap();
    let h = password::hash(PASSWORD).unwrap();
    assert!(a.add_user(name, &h, role, tenant, 0).unwrap());
}

/// Adds an API key straight into the store.
pub fn add_key(dir: &Path, name: &str, token: &str, role: Role, tenant: Option<&str>) {
    let mut a = AccessStore::open(dir.join("simguard.db")).unwrap();
    a.add_api_key(name, token, role, tenant, 0).unwrap();
}

pub fn finding(seq: u64, idx: usize, imsi: &str, tenant: &str, group: &str) -> Finding {
    Finding {
        id: Finding::make_id(seq, idx),
        kind: FindingKind::Scanning,
        subject: Subject::Device(Digits::parse(imsi).unwrap()),
        tenant: Some(tenant.into()),
        group: Some(group.into()),
        severity: Severity::Major,
        time: T0 + idx as i64 * 1000,
        onset: T0,
        confidence: 80,
        evidence: Evidence {
            summary: format!("scanning from {imsi} of {tenant}"),
            ..Evidence::default()
        },
    }
}

/// Writes findings (and the alerts the sink makes of them) into the store
/// before the server starts, as journal sequence 1: the sink then skips
/// the outputs of the server's own sequence 1, which the tests must make
/// harmless with [`burn_first_seq`].
pub fn feed(dir: &Path, findings: Vec<Finding>) {
    feed_routed(dir, findings, &config(dir, ""));
}

/// [`feed`] with the configuration's notification routing (its alerts get
/// their notifications, as the server's sink would route them).
pub fn feed_routed(dir: &Path, findings: Vec<Finding>, cfg: &Config) {
    let outputs = findings
        .into_iter()
        .map(|f| Output::Finding(Box::new(f)))
        .collect();
    feed_outputs(dir, outputs, cfg);
}

/// [`feed_routed`] with any engine outputs (findings, location changes ...).
pub fn feed_outputs(dir: &Path, outputs: Vec<Output>, cfg: &Config) {
    let mut store = Store::open(dir.join("simguard.db")).unwrap();
    store.set_routing(std::sync::Arc::new(cfg.notify.routing()));
    let engine = Engine::new(EngineOptions::default());
    let mut sink = SinkState::new(store.applied_seq().unwrap());
    for o in outputs {
        sink.absorb(1, &o);
    }
    sink.advance(1);
    sink.flush(&mut store, &engine).unwrap();
}

/// What a request answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn set_cookie(&self) -> Option<String> {
        self.headers
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// How a request authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Bearer(String),
    /// Cookie value and CSRF token (sent on writes when `Some`).
    Session {
        cookie: String,
        csrf: Option<String>,
    },
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub host: String,
    http: reqwest::Client,
}

impl Client {
    pub fn of(server: &Server) -> Client {
        Client {
            base: format!("http://{}", server.http_addr),
            host: server.http_addr.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        match auth {
            Auth::None => {}
            Auth::Bearer(t) => r = r.bearer_auth(t),
            Auth::Session { cookie, csrf } => {
                r = r.header("cookie", format!("simguard_session={cookie}"));
                if let Some(c) = csrf {
                    r = r.header("x-csrf-token", c);
                }
            }
        }
        for (k, v) in extra {
            r = r.header(*k, HeaderValue::from_str(v).unwrap());
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Answer {
            status: resp.status(),
            headers: resp.headers().clone(),
            text: resp.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> Answer {
        self.request(Method::GET, path, auth, None, &[]).await
    }

    pub async fn login_answer(&self, user: &str, password: &str) -> Answer {
        self.request(
            Method::POST,
            "/api/v1/session",
            &Auth::None,
            Some(&serde_json::json!({ "username": user, "password": password })),
            &[],
        )
        .await
    }

    /// Logs in (must succeed): the session with its CSRF token.
    pub async fn login(&self, user: &str) -> Auth {
        let a = self.login_answer(user, PASSWORD).await;
        assert_eq!(a.status, StatusCode::OK, "login {user}: {}", a.text);
        Auth::Session {
            cookie: cookie_value(&a.set_cookie().expect("a Set-Cookie")),
            csrf: Some(a.json()["csrf_token"].as_str().unwrap().to_string()),
        }
    }
}

/// The value of `simguard_session=...` in a Set-Cookie header.
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.trim().strip_prefix("simguard_session="))
        .expect("the simguard_session cookie")
        .to_string()
}

pub fn bearer(t: &str) -> Auth {
    Auth::Bearer(t.to_string())
}

/// The same session without its CSRF token.
pub fn without_csrf(a: &Auth) -> Auth {
    match a {
        Auth::Session { cookie, .. } => Auth::Session {
            cookie: cookie.clone(),
            csrf: None,
        },
        other => other.clone(),
    }
}

/// The server's first journal record, after [`feed`]: a tenant that nothing
/// refers to (its store row is the one the sink skips; a device of a
/// tenant without its row would fail the sink's every batch).
pub async fn burn_first_seq(c: &Client) {
    let a = c
        .request(
            Method::PUT,
            "/api/v1/tenants/scratch",
            &Auth::Bearer(ADMIN.into()),
            Some(&serde_json::json!({ "name": "scratch" })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}
