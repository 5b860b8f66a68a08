//! Access control: who is calling, and what they may do.
//!
//! Two ways in, one caller: a console user's session cookie, or an API key
//! as `Authorization: Bearer`. Both resolve to a role (viewer, operator,
//! admin) and a tenant (None = operator-wide); the API's extractor
//! (`api::caller`) applies them to every route.
//!
//! - `password.rs`: argon2id hashing and the rules for names and passwords;
//! - `limiter.rs`: back-off of failed logins per username and address;
//! - `session.rs`: cookie secrets, the cookie itself, expiry, and the CSRF
//!   checks (synchronizer token and Origin) of cookie-authenticated writes.

pub mod limiter;
pub mod password;
pub mod session;

use crate::config::HttpConfig;
use parking_lot::Mutex;
use simguard_store::{AccessStore, StoreError};
use std::path::PathBuf;
use std::sync::Arc;

/// Password verifications running at once. Each argon2 verification holds
/// 19 MiB and a core for tens of milliseconds: a flood of logins waits here
/// instead of exhausting memory.
pub const MAX_CONCURRENT_VERIFY: usize = 4;

/// What sessions are configured to be.
#[derive(Clone, Debug)]
pub struct SessionPolicy {
    pub idle_ms: i64,
    pub absolute_ms: i64,
    /// Mark the cookie `Secure`.
    pub secure: bool,
    /// Origins accepted on cookie-authenticated writes besides the request's
    /// own (a console served through a proxy under another name).
    pub allowed_origins: Vec<String>,
}

impl SessionPolicy {
    pub fn from_config(c: &HttpConfig) -> SessionPolicy {
        SessionPolicy {
            idle_ms: c.session_idle_timeout_secs.saturating_mul(1000) as i64,
            absolute_ms: c.session_absolute_timeout_secs.saturating_mul(1000) as i64,
            secure: c.secure_cookie,
            allowed_origins: c
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Activity is recorded at most this often per session (a write per
    /// request would be wasteful); idle expiry is exact to within it.
    pub fn touch_every_ms(&self) -> i64 {
        (self.idle_ms / 10).clamp(0, 60_000)
    }
}

/// The shared access state of the HTTP handlers.
pub struct Access {
    path: PathBuf,
    store: Mutex<Option<AccessStore>>,
    pub policy: SessionPolicy,
    pub limiter: Mutex<limiter::LoginLimiter>,
    pub verify_slots: Arc<tokio::sync::Semaphore>,
    /// A hash of a random password, verified against when the username is
    /// unknown, so that an unknown name costs the same time as a wrong
    /// password.
    pub dummy_hash: String,
}

impl Access {
    pub fn new(store_path: PathBuf, policy: SessionPolicy) -> Result<Access, password::HashError> {
        let dummy = session::random_hex(16);
        Ok(Access {
            path: store_path,
            store: Mutex::new(None),
            policy,
            limiter: Mutex::new(limiter::LoginLimiter::default()),
            verify_slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_VERIFY)),
            dummy_hash: password::hash(&dummy)?,
        })
    }

    /// Runs `f` on the access connection (opened on first use, reopened
    /// after an error).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut AccessStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.store.lock();
        let store = match guard.as_mut() {
            Some(s) => s,
            None => guard.insert(AccessStore::open(&self.path)?),
        };
        let r = f(store);
        if r.is_err() {
            *guard = None;
        }
        r
    }
}
