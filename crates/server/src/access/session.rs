//! Session cookies and the CSRF defences of cookie-authenticated writes.
//!
//! The cookie carries a random 256-bit secret; the store keeps only its
//! SHA-256. Each session also has a random CSRF token (synchronizer token
//! pattern): the console reads it from the login answer (or `GET
//! /api/v1/session`) and sends it back as `x-csrf-token` on every write. A
//! page of another site can make the browser send the cookie (where
//! SameSite does not stop it) but can never read the token.

use super::SessionPolicy;
use axum::http::{header, HeaderMap, HeaderValue};
use simguard_store::SessionRecord;
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "simguard_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// `bytes` random bytes from the OS, as hex.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A new session secret (256 bits).
pub fn new_secret() -> String {
    random_hex(32)
}

/// The session cookie's value in the request, if any.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session: HttpOnly (scripts never see it),
/// SameSite=Strict (no other site's page sends it), Secure unless the
/// configuration serves the console over plain HTTP on loopback.
pub fn set_cookie(secret: &str, policy: &SessionPolicy) -> Option<HeaderValue> {
    let secure = if policy.secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={secret}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        policy.absolute_ms / 1000
    ))
    .ok()
}

/// `Set-Cookie` that deletes the cookie (logout).
pub fn clear_cookie(policy: &SessionPolicy) -> HeaderValue {
    let secure = if policy.secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("simguard_session=; Path=/; Max-Age=0"))
}

/// Whether a stored session is still good at `now_ms`: before its absolute
/// end and not idle longer than the idle timeout.
pub fn is_live(s: &SessionRecord, now_ms: i64, policy: &SessionPolicy) -> bool {
    now_ms < s.expires_ms && now_ms - s.last_seen_ms < policy.idle_ms
}

/// Constant-time equality of two tokens (the length is not secret).
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Why a cookie-authenticated write was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum CsrfError {
    MissingToken,
    WrongToken,
    CrossOrigin(String),
    CrossSite(String),
}

impl std::fmt::Display for CsrfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CsrfError::MissingToken => write!(
                f,
                "CSRF check failed: a request authenticated by the session cookie that changes something must send the session's token in the {CSRF_HEADER} header (csrf_token of POST or GET /api/v1/session)"
            ),
            CsrfError::WrongToken => write!(
                f,
                "CSRF check failed: the {CSRF_HEADER} header does not match this session's token; read it again from GET /api/v1/session"
            ),
            CsrfError::CrossOrigin(o) => write!(
                f,
                "CSRF check failed: Origin {o:?} is not this server's origin (add it to http.allowed_origins if the console is served from there)"
            ),
            CsrfError::CrossSite(s) => write!(
                f,
                "CSRF check failed: the browser marked this request Sec-Fetch-Site: {s}"
            ),
        }
    }
}

/// Whether `origin` is the request's own origin (its `Host`, over http or
/// https: a TLS proxy in front keeps the name) or one the configuration allows.
pub fn same_origin(origin: &str, headers: &HeaderMap, policy: &SessionPolicy) -> bool {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if policy.allowed_origins.contains(&origin) {
        return true;
    }
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        // "null" (sandboxed frames, some redirects) and anything odd.
        return false;
    };
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| host.trim().eq_ignore_ascii_case(authority))
}

/// The CSRF checks of a cookie-authenticated state-changing request: the
/// Origin (when the browser sends one) is this server's, the browser did not
/// mark it cross-site, and the token header equals the session's.
pub fn check_csrf(
    headers: &HeaderMap,
    session_csrf: &str,
    policy: &SessionPolicy,
) -> Result<(), CsrfError> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if matches!(site, "cross-site" | "same-site") {
            return Err(CsrfError::CrossSite(site.to_string()));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let o = origin.to_str().unwrap_or("(not text)");
        if !same_origin(o, headers, policy) {
            return Err(CsrfError::CrossOrigin(o.to_string()));
        }
    }
    let token = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(CsrfError::MissingToken)?;
    if tokens_equal(token.trim(), session_csrf) {
        Ok(())
    } else {
        Err(CsrfError::WrongToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SessionPolicy {
        SessionPolicy {
            idle_ms: 1000,
            absolute_ms: 10_000,
            secure: true,
            allowed_origins: vec!["https://console.example".into()],
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; simguard_session=abc ; b=2")]);
        assert_eq!(cookie(&h).as_deref(), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "simguard_session=xyz")]);
        assert_eq!(cookie(&h).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers(&[("cookie", "simguard_sessionx=1")])), None);
        assert_eq!(cookie(&headers(&[("cookie", "simguard_session=")])), None);
    }

    #[test]
    fn cookie_flags() {
        let c = set_cookie("s3", &policy()).unwrap();
        assert_eq!(
            c.to_str().unwrap(),
            "simguard_session=s3; Path=/; Max-Age=10; HttpOnly; SameSite=Strict; Secure"
        );
        let mut p = policy();
        p.secure = false;
        assert!(!set_cookie("s3", &p)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Secure"));
        assert!(clear_cookie(&policy())
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
    }

    #[test]
    fn csrf_needs_the_token_and_a_same_origin() {
        let p = policy();
        let ok = [("host", "127.0.0.1:8080"), ("x-csrf-token", "tok")];
        assert_eq!(check_csrf(&headers(&ok), "tok", &p), Ok(()));
        assert_eq!(
            check_csrf(&headers(&[("host", "127.0.0.1:8080")]), "tok", &p),
            Err(CsrfError::MissingToken)
        );
        assert_eq!(
            check_csrf(&headers(&[("x-csrf-token", "tOk")]), "tok", &p),
            Err(CsrfError::WrongToken)
        );
        assert_eq!(
            check_csrf(&headers(&[("x-csrf-token", "to")]), "tok", &p),
            Err(CsrfError::WrongToken)
        );
        let same = [
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("x-csrf-token", "tok"),
        ];
        assert_eq!(check_csrf(&headers(&same), "tok", &p), Ok(()));
        let evil = [
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
            ("x-csrf-token", "tok"),
        ];
        assert!(matches!(
            check_csrf(&headers(&evil), "tok", &p),
            Err(CsrfError::CrossOrigin(_))
        ));
        let other_port = [
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:9999"),
            ("x-csrf-token", "tok"),
        ];
        assert!(check_csrf(&headers(&other_port), "tok", &p).is_err());
        let null = [("host", "h"), ("origin", "null"), ("x-csrf-token", "tok")];
        assert!(check_csrf(&headers(&null), "tok", &p).is_err());
        let allowed = [
            ("host", "10.0.0.5:8080"),
            ("origin", "https://Console.example/"),
            ("x-csrf-token", "tok"),
        ];
        assert_eq!(check_csrf(&headers(&allowed), "tok", &p), Ok(()));
        let cross = [("sec-fetch-site", "cross-site"), ("x-csrf-token", "tok")];
        assert!(matches!(
            check_csrf(&headers(&cross), "tok", &p),
            Err(CsrfError::CrossSite(_))
        ));
    }

    #[test]
    fn expiry_is_idle_or_absolute() {
        let p = policy();
        let s = SessionRecord {
            user: simguard_store::User {
                name: "ann".into(),
                role: simguard_store::Role::Viewer,
                tenant: None,
                created_ms: 0,
            },
            csrf: "c".into(),
            created_ms: 0,
            last_seen_ms: 5000,
            expires_ms: 10_000,
        };
        assert!(is_live(&s, 5999, &p));
        assert!(!is_live(&s, 6000, &p), "idle");
        let s = SessionRecord {
            last_seen_ms: 9500,
            ..s
        };
        assert!(!is_live(&s, 10_000, &p), "absolute");
    }
}
