//! Access: users, their sessions, and the management of API keys.
//!
//! [`AccessStore`] is its own connection (like the alert writer): logins,
//! logouts and key changes come from HTTP handlers and the CLI, never from
//! the sink, and must not wait for its batches. Passwords arrive here
//! already hashed (argon2id PHC strings, made by the server's access
//! module); session secrets and API tokens arrive as secrets and are kept
//! only as their SHA-256 ([`token_hash`]).
//!
//! A `scope` of `Some(tenant)` limits a listing or a change to that tenant's
//! rows (a tenant admin manages only its own); `None` is operator-wide.

use crate::{migrations, token_hash, Result, Role, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::{Path, PathBuf};

/// A user as the API shows it (never the password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// None = operator-wide (above every tenant).
    pub tenant: Option<String>,
    /// Unix ms.
    pub created_ms: i64,
}

/// A user with the PHC string of its password, for verification only.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// A live session with its user as the user is now (a role or tenant change
/// applies to open sessions at once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: User,
    pub csrf: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    /// Absolute end, Unix ms.
    pub expires_ms: i64,
}

/// An API key as its managers see it (the token is shown once, at creation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

pub struct AccessStore {
    conn: Connection,
    path: PathBuf,
}

fn role_of(id: &str, s: &str) -> rusqlite::Result<Role> {
    Role::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("{id}: role {s:?}").into(),
        )
    })
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let name: String = r.get(0)?;
    let role: String = r.get(1)?;
    Ok(User {
        role: role_of(&name, &role)?,
        name,
        tenant: r.get(2)?,
        created_ms: r.get(3)?,
    })
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyInfo> {
    let id: i64 = r.get(0)?;
    let role: String = r.get(2)?;
    Ok(ApiKeyInfo {
        id,
        name: r.get(1)?,
        role: role_of(&format!("api key {id}"), &role)?,
        tenant: r.get(3)?,
        created_ms: r.get(4)?,
        revoked_ms: r.get(5)?,
    })
}

/// `tenant = scope` for a tenant scope, true for operator-wide.
const SCOPE: &str = "(?1 IS NULL OR tenant = ?1)";

impl AccessStore {
    /// Opens the store at `path`, creating and migrating it if needed: the
    /// CLI may add the first user before any server has run.
    pub fn open(path: impl AsRef<Path>) -> Result<AccessStore> {
        let path = path.as_ref().to_path_buf();
        let map = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(map)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(map)?;
        migrations::migrate(&mut conn, &path)?;
        Ok(AccessStore { conn, path })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    // ---- users ----

    /// Adds a user; false (and nothing changes) when the name is taken.
    pub fn add_user(
        &mut self,
        name: &str,
        password_hash: &str,
        role: Role,
        tenant: Option<&str>,
        now_ms: i64,
    ) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "INSERT INTO users(name, password, role, tenant, created, password_changed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(name) DO NOTHING",
                params![name, password_hash, role.as_str(), tenant, now_ms],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }

    /// Users by name, of one tenant (`scope`) or all.
    pub fn users(&self, scope: Option<&str>) -> Result<Vec<User>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT name, role, tenant, created FROM users WHERE {SCOPE} ORDER BY name"
            ))
            .map_err(self.err())?;
        let rows = st.query_map(params![scope], user_row).map_err(self.err())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    pub fn user(&self, name: &str) -> Result<Option<User>> {
        self.conn
            .query_row(
                "SELECT name, role, tenant, created FROM users WHERE name = ?1",
                params![name],
                user_row,
            )
            .optional()
            .map_err(self.err())
    }

    pub fn user_count(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .map_err(self.err())
    }

    /// The user and its password hash, to verify a login.
    pub fn credentials(&self, name: &str) -> Result<Option<Credentials>> {
        self.conn
            .query_row(
                "SELECT name, role, tenant, created, password FROM users WHERE name = ?1",
                params![name],
                |r| {
                    Ok(Credentials {
                        user: user_row(r)?,
                        password_hash: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(self.err())
    }

    /// Replaces a user's password and ends its sessions (whoever held one
    /// may be why the password changes). False when there is no such user.
    pub fn set_password(&mut self, name: &str, password_hash: &str, now_ms: i64) -> Result<bool> {
        let path = self.path.clone();
        let map = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        let n = tx
            .execute(
                "UPDATE users SET password = ?2, password_changed = ?3 WHERE name = ?1",
                params![name, password_hash, now_ms],
            )
            .map_err(map)?;
        tx.execute("DELETE FROM sessions WHERE user = ?1", params![name])
            .map_err(map)?;
        tx.commit().map_err(map)?;
        Ok(n == 1)
    }

    /// Deletes a user of `scope` (or any, operator-wide) with its sessions.
    /// False when there is no such user in the scope.
    pub fn delete_user(&mut self, name: &str, scope: Option<&str>) -> Result<bool> {
        let path = self.path.clone();
        let map = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        let n = tx
            .execute(
                &format!("DELETE FROM users WHERE {SCOPE} AND name = ?2"),
                params![scope, name],
            )
            .map_err(map)?;
        if n == 1 {
            tx.execute("DELETE FROM sessions WHERE user = ?1", params![name])
                .map_err(map)?;
        }
        tx.commit().map_err(map)?;
        Ok(n == 1)
    }

    // ---- sessions ----

    /// Opens a session: `secret` is the cookie's value (kept as its hash).
    pub fn create_session(
        &mut self,
        secret: &str,
        user: &str,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO sessions(id_hash, user, csrf, created, last_seen, expires)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![token_hash(secret).to_vec(), user, csrf, now_ms, expires_ms],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The session whose cookie value is `secret`, expired or not (the
    /// caller judges expiry against its configured timeouts).
    pub fn session(&self, secret: &str) -> Result<Option<SessionRecord>> {
        self.conn
            .query_row(
                "SELECT u.name, u.role, u.tenant, u.created, s.csrf, s.created, s.last_seen, s.expires
                 FROM sessions s JOIN users u ON u.name = s.user WHERE s.id_hash = ?1",
                params![token_hash(secret).to_vec()],
                |r| {
                    Ok(SessionRecord {
                        user: user_row(r)?,
                        csrf: r.get(4)?,
                        created_ms: r.get(5)?,
                        last_seen_ms: r.get(6)?,
                        expires_ms: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(self.err())
    }

    /// Records activity on a session (idle expiry counts from here).
    pub fn touch_session(&mut self, secret: &str, now_ms: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE sessions SET last_seen = max(last_seen, ?2) WHERE id_hash = ?1",
                params![token_hash(secret).to_vec(), now_ms],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Ends a session; false when there was none.
    pub fn delete_session(&mut self, secret: &str) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "DELETE FROM sessions WHERE id_hash = ?1",
                params![token_hash(secret).to_vec()],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }

    /// Deletes sessions past their absolute end or idle longer than
    /// `idle_ms`; returns how many.
    pub fn purge_sessions(&mut self, now_ms: i64, idle_ms: i64) -> Result<usize> {
        self.conn
            .execute(
                "DELETE FROM sessions WHERE expires <= ?1 OR last_seen <= ?1 - ?2",
                params![now_ms, idle_ms],
            )
            .map_err(self.err())
    }

    // ---- API keys ----

    /// Stores a new key by the hash of `token` and returns its id.
    pub fn add_api_key(
        &mut self,
        name: &str,
        token: &str,
        role: Role,
        tenant: Option<&str>,
        now_ms: i64,
    ) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO api_keys(name, token_hash, role, tenant, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, token_hash(token).to_vec(), role.as_str(), tenant, now_ms],
            )
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Keys not revoked, of one tenant (`scope`) or all, by id.
    pub fn api_keys(&self, scope: Option<&str>) -> Result<Vec<ApiKeyInfo>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT id, name, role, tenant, created, revoked FROM api_keys
                 WHERE {SCOPE} AND revoked IS NULL ORDER BY id"
            ))
            .map_err(self.err())?;
        let rows = st.query_map(params![scope], key_row).map_err(self.err())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.err())
    }

    /// One key by id, revoked or not.
    pub fn api_key(&self, id: i64) -> Result<Option<ApiKeyInfo>> {
        self.conn
            .query_row(
                "SELECT id, name, role, tenant, created, revoked FROM api_keys WHERE id = ?1",
                params![id],
                key_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Revokes a key of `scope` (or any, operator-wide); false when there
    /// is no such key in the scope or it was revoked already. The row stays,
    /// so the audit trail's actor still names a known key.
    pub fn revoke_api_key(&mut self, id: i64, scope: Option<&str>, now_ms: i64) -> Result<bool> {
        let n = self
            .conn
            .execute(
                &format!(
                    "UPDATE api_keys SET revoked = ?3 WHERE {SCOPE} AND id = ?2 AND revoked IS NULL"
                ),
                params![scope, id, now_ms],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }
}
