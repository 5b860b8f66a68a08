//! `simguard users ...` and `simguard apikeys ...`: manage who gets in, on
//! the store of the data directory (the server may be running or not; SQLite
//! takes the writes of both). Passwords come from SIMGUARD_PASSWORD or
//! standard input, never from the command line (where `ps` and the shell's
//! history would keep them).

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use simguard_server::access::password;
use simguard_server::config::Config;
use simguard_store::{AccessStore, Role};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum UsersCmd {
    /// Add a console user; the password comes from SIMGUARD_PASSWORD or stdin.
    Add {
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: String,
        /// The user's tenant (absent: operator-wide, above every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// TOML configuration (for data_dir).
        #[arg(long, short, env = "SIMGUARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List users.
    List {
        #[arg(long, short, env = "SIMGUARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Set a user's password (from SIMGUARD_PASSWORD or stdin); ends its sessions.
    Passwd {
        name: String,
        #[arg(long, short, env = "SIMGUARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Delete a user and end its sessions.
    Delete {
        name: String,
        #[arg(long, short, env = "SIMGUARD_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum ApiKeysCmd {
    /// Add an API key and print its token (shown only this once).
    Add {
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: String,
        /// The key's tenant (absent: operator-wide).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, short, env = "SIMGUARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List API keys that are not revoked.
    List {
        #[arg(long, short, env = "SIMGUARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Revoke an API key by id: it stops working at once.
    Revoke {
        id: i64,
        #[arg(long, short, env = "SIMGUARD_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn open(config: Option<PathBuf>) -> Result<AccessStore> {
    let cfg = Config::load(config.as_deref())?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    Ok(AccessStore::open(cfg.store_path())?)
}

fn role(r: &str) -> Result<Role> {
    Role::parse(r).ok_or_else(|| anyhow!("--role {r:?}: use admin, operator or viewer"))
}

fn tenant(t: Option<String>) -> Result<Option<String>> {
    if let Some(t) = &t {
        simguard_engine::inventory::validate_slug("tenant", t)
            .map_err(|e| anyhow!("--tenant: {e}"))?;
    }
    Ok(t)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn fmt_tenant(t: &Option<String>) -> &str {
    t.as_deref().unwrap_or("(operator-wide)")
}

/// Reads one line from a terminal without echo (through stty, which every
/// Unix has), or plainly when stty is not there.
fn read_hidden(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    let hidden = stty("-echo");
    let mut line = String::new();
    let r = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        stty("echo");
        eprintln!();
    }
    r.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The new password: SIMGUARD_PASSWORD, else standard input (asked twice
/// on a terminal, the first line otherwise).
fn new_password() -> Result<String> {
    let pw = match std::env::var("SIMGUARD_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ if std::io::stdin().is_terminal() => {
            let a = read_hidden("password: ")?;
            let b = read_hidden("again: ")?;
            if a != b {
                bail!("the two passwords differ");
            }
            a
        }
        _ => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    password::check_new(&pw).map_err(|m| anyhow!(m))?;
    Ok(pw)
}

pub fn users(cmd: UsersCmd) -> Result<()> {
    match cmd {
        UsersCmd::Add {
            name,
            role: r,
            tenant: t,
            config,
        } => {
            password::check_name(&name).map_err(|m| anyhow!(m))?;
            let (r, t) = (role(&r)?, tenant(t)?);
            let mut store = open(config)?;
            if store.user(&name)?.is_some() {
                bail!("a user named {name:?} exists (simguard users passwd {name} changes its password)");
            }
            let hash = password::hash(&new_password()?)?;
            if !store.add_user(&name, &hash, r, t.as_deref(), now_ms())? {
                bail!("a user named {name:?} exists");
            }
            println!("user {name} added: role {}, {}", r.as_str(), fmt_tenant(&t));
        }
        UsersCmd::List { config } => {
            let store = open(config)?;
            println!("{:<32} {:<9} tenant", "name", "role");
            for u in store.users(None)? {
                println!(
                    "{:<32} {:<9} {}",
                    u.name,
                    u.role.as_str(),
                    fmt_tenant(&u.tenant)
                );
            }
        }
        UsersCmd::Passwd { name, config } => {
            let mut store = open(config)?;
            if store.user(&name)?.is_none() {
                bail!("no user {name:?}");
            }
            let hash = password::hash(&new_password()?)?;
            if !store.set_password(&name, &hash, now_ms())? {
                bail!("no user {name:?}");
            }
            println!("password of {name} changed; its sessions have ended");
        }
        UsersCmd::Delete { name, config } => {
            if !open(config)?.delete_user(&name, None)? {
                bail!("no user {name:?}");
            }
            println!("user {name} deleted");
        }
    }
    Ok(())
}

pub fn apikeys(cmd: ApiKeysCmd) -> Result<()> {
    match cmd {
        ApiKeysCmd::Add {
            name,
            role: r,
            tenant: t,
            config,
        } => {
            password::check_name(&name).map_err(|m| anyhow!(m))?;
            let (r, t) = (role(&r)?, tenant(t)?);
            let token = simguard_server::api::apikeys::new_token();
            let id = open(config)?.add_api_key(&name, &token, r, t.as_deref(), now_ms())?;
            eprintln!(
                "API key {id} ({name}) added: role {}, {}. The token, shown only now:",
                r.as_str(),
                fmt_tenant(&t)
            );
            println!("{token}");
        }
        ApiKeysCmd::List { config } => {
            let store = open(config)?;
            println!("{:>5} {:<32} {:<9} tenant", "id", "name", "role");
            for k in store.api_keys(None)? {
                println!(
                    "{:>5} {:<32} {:<9} {}",
                    k.id,
                    k.name,
                    k.role.as_str(),
                    fmt_tenant(&k.tenant)
                );
            }
        }
        ApiKeysCmd::Revoke { id, config } => {
            if !open(config)?.revoke_api_key(id, None, now_ms())? {
                bail!("no API key {id} (or revoked already)");
            }
            println!("API key {id} revoked");
        }
    }
    Ok(())
}
