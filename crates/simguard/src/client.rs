//! A small client of simguard's own HTTP API, for the CLI commands that talk
//! to a running server (import, sim --provision, demo).

use anyhow::{anyhow, Context, Result};
use serde::Serialize;

pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base: &str, token: &str) -> Result<ApiClient> {
        Ok(ApiClient {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .context("building the HTTP client")?,
        })
    }

    async fn check(resp: reqwest::Response) -> Result<serde_json::Value> {
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            let msg = body["error"]["message"]
                .as_str()
                .unwrap_or("no message")
                .to_string();
            Err(anyhow!("server answered {status}: {msg}")
                .context(body["error"]["details"].to_string()))
        }
    }

    pub async fn get(&self, path: &str) -> Result<serde_json::Value> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {}{path}", self.base))?;
        Self::check(resp).await
    }

    pub async fn send<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<serde_json::Value> {
        let resp = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("{method} {}{path}", self.base))?;
        Self::check(resp).await
    }
}
