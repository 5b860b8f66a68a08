//! `simguard serve`: run until SIGINT/SIGTERM, then shut down gracefully.

use anyhow::Result;
use simguard_server::config::Config;
use simguard_server::{Server, StartOptions};
use std::path::PathBuf;

/// Resolves when the process is asked to stop.
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

pub fn admin_token_from_env() -> Option<String> {
    std::env::var("SIMGUARD_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
}

pub async fn run(config: Option<PathBuf>) -> Result<()> {
    let cfg = Config::load(config.as_deref())?;
    let server = Server::start(
        cfg,
        StartOptions {
            admin_token: admin_token_from_env(),
        },
    )
    .await?;
    eprintln!("simguard serving");
    eprintln!("  RADIUS accounting  udp://{}", server.acct_addr);
    eprintln!(
        "  API                http://{}/api/v1/devices",
        server.http_addr
    );
    eprintln!("  metrics            http://{}/metrics", server.http_addr);
    if let Some(t) = &server.generated_token {
        eprintln!("  no API key was configured; generated admin token (shown once): {t}");
    }
    stop_signal().await;
    eprintln!("shutting down");
    server.shutdown().await;
    Ok(())
}
