//! Console access over real HTTP: login (good and bad passwords, the same
//! answer for an unknown user, the cookie's flags), session expiry (idle
//! and absolute), logout, the back-off of failed logins, CSRF on
//! cookie-authenticated writes (and none for bearer tokens), role checks,
//! and user and API key management scoped to the admin's tenant.

mod access_support;

use access_support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use simguard_store::Role;
use std::time::{Duration, Instant};

const DEV_A: &str = "901700000000101";

async fn provision(c: &Client) {
    let admin = bearer(ADMIN);
    let a = c
        .request(
            Method::PUT,
            "/api/v1/tenants/acme",
            &admin,
            Some(&json!({ "name": "Acme" })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = c
        .request(
            Method::POST,
            "/api/v1/devices",
            &admin,
            Some(&json!({ "devices": [{ "imsi": DEV_A, "tenant": "acme", "group": "acme-meters" }] })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

async fn lifecycle(c: &Client) -> String {
    let a = c
        .get(&format!("/api/v1/devices/{DEV_A}"), &bearer(ADMIN))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()["lifecycle"].as_str().unwrap().to_string()
}

async fn audit_len(c: &Client) -> usize {
    let a = c.get("/api/v1/audit", &bearer(ADMIN)).await;
    a.json()["items"].as_array().unwrap().len()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread")]
async fn login_sets_a_strict_httponly_secure_cookie_and_bad_logins_look_alike() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "ann", Role::Operator, Some("acme"));
    let server = start(dir.path(), "").await;
    let c = Client::of(&server);

    let ok = c.login_answer("ann", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let body = ok.json();
    assert_eq!(body["user"], "ann");
    assert_eq!(body["role"], "operator");
    assert_eq!(body["tenant"], "acme");
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(csrf.len(), 64, "256 bits as hex");
    assert!(body["expires"].as_str().unwrap().ends_with('Z'));
    assert_eq!(ok.headers["cache-control"], "no-store");
    let set = ok.set_cookie().unwrap();
    let cookie = cookie_value(&set);
    assert_eq!(cookie.len(), 64, "a 256-bit secret as hex: {set}");
    assert!(cookie.chars().all(|ch| ch.is_ascii_hexdigit()));
    let attrs: Vec<&str> = set.split(';').map(str::trim).skip(1).collect();
    for want in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(attrs.contains(&want), "{want} missing in {set}");
    }

    // The session works for the API, and reads back with its CSRF token.
    let s = Auth::Session {
        cookie: cookie.clone(),
        csrf: None,
    };
    let me = c.get("/api/v1/session", &s).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json()["csrf_token"], csrf.as_str());
    assert_eq!(me.json()["user"], "ann");
    assert_eq!(c.get("/api/v1/devices", &s).await.status, StatusCode::OK);
    // A bearer caller has no session.
    assert_eq!(
        c.get("/api/v1/session", &bearer(ADMIN)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let forged = Auth::Session {
        cookie: "0".repeat(64),
        csrf: None,
    };
    assert_eq!(
        c.get("/api/v1/devices", &forged).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Wrong password and unknown user: the same answer, no cookie, and
    // about the same time (the unknown user is verified against a dummy
    // hash; without it the answer would come back ~100 times sooner).
    let wrong = c.login_answer("ann", "not the password").await;
    let unknown = c.login_answer("nobody", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text, unknown.text);
    assert_eq!(
        wrong.json()["error"]["message"],
        "wrong username or password"
    );
    assert!(wrong.set_cookie().is_none() && unknown.set_cookie().is_none());
    let (mut t_wrong, mut t_unknown) = (Vec::new(), Vec::new());
    for i in 0..3 {
        let t = Instant::now();
        c.login_answer("ann", &format!("wrong {i}")).await;
        t_wrong.push(t.elapsed());
        let t = Instant::now();
        c.login_answer(&format!("ghost{i}"), "wrong").await;
        t_unknown.push(t.elapsed());
    }
    let (w, u) = (median(t_wrong), median(t_unknown));
    assert!(
        u * 3 >= w && w * 3 >= u,
        "unknown user {u:?} vs wrong password {w:?}"
    );
    // Empty and oversized inputs: the same 401.
    let long = "x".repeat(5000);
    for (user, pw) in [("", "x"), ("ann", long.as_str())] {
        let a = c.login_answer(user, pw).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.text, unknown.text);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_back_off_per_user_known_or_not() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "ann", Role::Viewer, None);
    let server = start(dir.path(), "").await;
    let c = Client::of(&server);
    for name in ["ann", "nobody"] {
        for _ in 0..5 {
            let a = c.login_answer(name, "guess").await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        }
        // Backed off: even the right password is not checked now.
        let a = c.login_answer(name, PASSWORD).await;
        assert_eq!(
            a.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{name}: {}",
            a.text
        );
        assert_eq!(a.json()["error"]["code"], "rate_limited");
        assert_eq!(a.headers["retry-after"], "1");
    }
    // Another user is not held back by ann's failures.
    add_user(dir.path(), "bob", Role::Viewer, None);
    assert_eq!(c.login_answer("bob", PASSWORD).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = c.login_answer("ann", PASSWORD).await;
    assert_eq!(a.status, StatusCode::OK, "after the wait: {}", a.text);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_expire_when_idle_and_at_their_absolute_end() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "ann", Role::Viewer, None);
    let server = start(
        dir.path(),
        "session_idle_timeout_secs = 2\nsession_absolute_timeout_secs = 4",
    )
    .await;
    let c = Client::of(&server);

    // Idle: two seconds without a request end it.
    let s = c.login("ann").await;
    assert_eq!(c.get("/api/v1/session", &s).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let a = c.get("/api/v1/session", &s).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("log in again"));

    // Absolute: kept busy, it still ends 4 s after login.
    let s = c.login("ann").await;
    let t0 = Instant::now();
    let mut ended = None;
    while t0.elapsed() < Duration::from_secs(7) {
        if c.get("/api/v1/devices", &s).await.status == StatusCode::UNAUTHORIZED {
            ended = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ended = ended.expect("the session ended");
    assert!(
        ended >= Duration::from_millis(3000),
        "ended after {ended:?}, before its absolute end"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_session_and_its_event_stream_and_needs_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "ann", Role::Viewer, None);
    let server = start(dir.path(), "").await;
    let c = Client::of(&server);
    let s = c.login("ann").await;
    let other = c.login("ann").await;
    // A live event stream opened with the session ...
    let cookie = match &s {
        Auth::Session { cookie, .. } => cookie.clone(),
        _ => unreachable!(),
    };
    let mut stream = reqwest::Client::new()
        .get(format!("{}/api/v1/events", c.base))
        .header("cookie", format!("simguard_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("ready"));
    let a = c
        .request(
            Method::DELETE,
            "/api/v1/session",
            &without_csrf(&s),
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(c.get("/api/v1/session", &s).await.status, StatusCode::OK);
    let a = c
        .request(Method::DELETE, "/api/v1/session", &s, None, &[])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let cleared = a.set_cookie().unwrap();
    assert!(cleared.starts_with("simguard_session=;") && cleared.contains("Max-Age=0"));
    assert_eq!(
        c.get("/api/v1/session", &s).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.get("/api/v1/devices", &s).await.status,
        StatusCode::UNAUTHORIZED,
        "the old cookie opens nothing"
    );
    assert_eq!(
        c.get("/api/v1/session", &other).await.status,
        StatusCode::OK,
        "another session of the user goes on"
    );
    // ... ends with it.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream outlived its session");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cookie_writes_need_the_csrf_token_and_a_same_origin_bearer_writes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "ann", Role::Operator, Some("acme"));
    add_key(
        dir.path(),
        "acme-ci",
        "acme-op-token",
        Role::Operator,
        Some("acme"),
    );
    let server = start(dir.path(), "").await;
    let c = Client::of(&server);
    provision(&c).await;
    let s = c.login("ann").await;
    let path = format!("/api/v1/devices/{DEV_A}/actions");
    let block = json!({ "action": "block", "reason": "csrf test" });
    let audit0 = audit_len(&c).await;

    let csrf = match &s {
        Auth::Session { csrf, .. } => csrf.clone().unwrap(),
        _ => unreachable!(),
    };
    let cookie = match &s {
        Auth::Session { cookie, .. } => cookie.clone(),
        _ => unreachable!(),
    };
    let wrong = Auth::Session {
        cookie: cookie.clone(),
        csrf: Some(csrf.chars().rev().collect()),
    };
    let evil_origin = [("origin", "http://evil.example")];
    let cross_site = [("sec-fetch-site", "cross-site")];
    for (auth, extra, why) in [
        (without_csrf(&s), &[][..], "no token"),
        (wrong, &[][..], "wrong token"),
        (s.clone(), &evil_origin[..], "foreign Origin"),
        (s.clone(), &cross_site[..], "cross-site fetch"),
    ] {
        let a = c
            .request(Method::POST, &path, &auth, Some(&block), extra)
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{why}: {}", a.text);
        assert_eq!(a.json()["error"]["code"], "csrf", "{why}");
        assert!(
            a.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("CSRF"),
            "{why}: {}",
            a.text
        );
    }
    assert_eq!(lifecycle(&c).await, "active", "nothing changed");
    assert_eq!(audit_len(&c).await, audit0, "nothing audited");

    // With the token (and the server's own Origin): it works.
    let own_origin = format!("http://{}", c.host);
    let a = c
        .request(
            Method::POST,
            &path,
            &s,
            Some(&block),
            &[("origin", own_origin.as_str())],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(lifecycle(&c).await, "blocked");
    assert_eq!(a.json()["action"]["actor"], "user:ann");
    // Reads need no token.
    assert_eq!(
        c.get(&format!("/api/v1/devices/{DEV_A}"), &without_csrf(&s))
            .await
            .status,
        StatusCode::OK
    );
    // A bearer request needs none either, even with a foreign Origin (no
    // browser sends a bearer token by itself).
    let a = c
        .request(
            Method::POST,
            &path,
            &bearer("acme-op-token"),
            Some(&json!({ "action": "unblock", "reason": "bearer" })),
            &evil_origin,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(lifecycle(&c).await, "active");
    // Login itself refuses a foreign Origin (login CSRF).
    let a = c
        .request(
            Method::POST,
            "/api/v1/session",
            &Auth::None,
            Some(&json!({ "username": "ann", "password": PASSWORD })),
            &evil_origin,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.set_cookie().is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_read_operators_act_admins_manage() {
    let dir = tempfile::tempdir().unwrap();
    feed(
        dir.path(),
        vec![finding(1, 0, DEV_A, "acme", "acme-meters")],
    );
    add_user(dir.path(), "vera", Role::Viewer, Some("acme"));
    add_user(dir.path(), "otto", Role::Operator, Some("acme"));
    add_key(
        dir.path(),
        "acme-view",
        "acme-view-token",
        Role::Viewer,
        Some("acme"),
    );
    add_key(
        dir.path(),
        "acme-op",
        "acme-op-token",
        Role::Operator,
        Some("acme"),
    );
    let server = start(dir.path(), "").await;
    let c = Client::of(&server);
    burn_first_seq(&c).await;
    provision(&c).await;
    let alerts = c.get("/api/v1/alerts", &bearer(ADMIN)).await.json();
    let alert = alerts["items"][0]["id"].as_str().unwrap().to_string();

    let viewer_session = c.login("vera").await;
    let operator_session = c.login("otto").await;
    let block = json!({ "action": "block", "reason": "role test" });
    let actions = format!("/api/v1/devices/{DEV_A}/actions");
    let ack = format!("/api/v1/alerts/{alert}/ack");
    for viewer in [viewer_session.clone(), bearer("acme-view-token")] {
        assert_eq!(
            c.get("/api/v1/devices", &viewer).await.status,
            StatusCode::OK
        );
        assert_eq!(
            c.get(&ack.replace("/ack", ""), &viewer).await.status,
            StatusCode::OK
        );
        let a = c
            .request(Method::POST, &actions, &viewer, Some(&block), &[])
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
        assert!(a.text.contains("role operator"), "{}", a.text);
        let a = c.request(Method::POST, &ack, &viewer, None, &[]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    }
    assert_eq!(lifecycle(&c).await, "active");
    let a = c.get(&ack.replace("/ack", ""), &bearer(ADMIN)).await;
    assert_eq!(a.json()["alert"]["acknowledged"], false);

    // Operators act on devices and alerts, but manage nothing.
    let a = c
        .request(Method::POST, &actions, &operator_session, Some(&block), &[])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(lifecycle(&c).await, "blocked");
    let a = c
        .request(Method::POST, &ack, &bearer("acme-op-token"), None, &[])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["alert"]["acknowledged"], true);
    let rule = json!({ "id": "r1", "trigger": { "finding": { "types": ["scanning"] } }, "steps": [{ "action": "notify" }] });
    let admin_only: [(Method, &str, Option<Value>); 6] = [
        (Method::POST, "/api/v1/rules", Some(rule.clone())),
        (
            Method::PUT,
            "/api/v1/groups/acme-meters/policy",
            Some(json!({ "default_action": "allow", "rules": [] })),
        ),
        (
            Method::PUT,
            "/api/v1/groups/acme-meters",
            Some(json!({ "tenant": "acme" })),
        ),
        (Method::GET, "/api/v1/users", None),
        (
            Method::POST,
            "/api/v1/apikeys",
            Some(json!({ "name": "k", "role": "viewer" })),
        ),
        (
            Method::POST,
            "/api/v1/devices",
            Some(
                json!({ "devices": [{ "imsi": DEV_A, "tenant": "acme", "group": "acme-meters" }] }),
            ),
        ),
    ];
    for (m, p, body) in &admin_only {
        for who in [operator_session.clone(), bearer("acme-op-token")] {
            let a = c.request(m.clone(), p, &who, body.as_ref(), &[]).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{m} {p}: {}", a.text);
            assert!(a.text.contains("role admin"), "{m} {p}: {}", a.text);
        }
    }
    // The admin can.
    for (m, p, body) in &admin_only {
        let a = c
            .request(m.clone(), p, &bearer(ADMIN), body.as_ref(), &[])
            .await;
        assert!(a.status.is_success(), "{m} {p}: {}", a.text);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_manage_users_and_keys_of_their_tenant_only() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "acme-admin", Role::Admin, Some("acme"));
    let server = start(dir.path(), "").await;
    let c = Client::of(&server);
    let root = bearer(ADMIN);
    let tenant_admin = c.login("acme-admin").await;

    // An operator-wide admin creates users anywhere, operator-wide too.
    let a = c
        .request(
            Method::POST,
            "/api/v1/users",
            &root,
            Some(&json!({ "name": "gus", "password": PASSWORD, "role": "operator", "tenant": "globex" })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json()["tenant"], "globex");
    assert!(!a.text.contains(PASSWORD) && !a.text.contains("argon2"));
    let a = c
        .request(
            Method::POST,
            "/api/v1/users",
            &root,
            Some(&json!({ "name": "gus", "password": PASSWORD, "role": "viewer" })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    for (body, why) in [
        (
            json!({ "name": "x y", "password": PASSWORD, "role": "viewer" }),
            "name",
        ),
        (
            json!({ "name": "xy", "password": "short", "role": "viewer" }),
            "password",
        ),
        (
            json!({ "name": "xy", "password": PASSWORD, "role": "god" }),
            "role",
        ),
    ] {
        let a = c
            .request(Method::POST, "/api/v1/users", &root, Some(&body), &[])
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{why}: {}", a.text);
        assert!(a.text.contains(why), "{why}: {}", a.text);
    }
    // The new user logs in.
    assert_eq!(c.login_answer("gus", PASSWORD).await.status, StatusCode::OK);

    // A tenant admin: its tenant only, and never operator-wide.
    let a = c
        .request(
            Method::POST,
            "/api/v1/users",
            &tenant_admin,
            Some(&json!({ "name": "ann", "password": PASSWORD, "role": "viewer" })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json()["tenant"], "acme", "defaults to its own tenant");
    let a = c
        .request(
            Method::POST,
            "/api/v1/users",
            &tenant_admin,
            Some(&json!({ "name": "eve", "password": PASSWORD, "role": "admin", "tenant": "globex" })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let users = c.get("/api/v1/users", &tenant_admin).await.json();
    let names: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme-admin", "ann"]);
    let a = c
        .request(
            Method::DELETE,
            "/api/v1/users/gus",
            &tenant_admin,
            None,
            &[],
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "another tenant's user does not exist"
    );
    let a = c
        .request(
            Method::DELETE,
            "/api/v1/users/acme-admin",
            &tenant_admin,
            None,
            &[],
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "not yourself: {}",
        a.text
    );

    // Keys: the token once, it works at once, revoked it stops at once.
    let a = c
        .request(
            Method::POST,
            "/api/v1/apikeys",
            &tenant_admin,
            Some(&json!({ "name": "acme-ci", "role": "viewer" })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let key = a.json();
    let token = key["token"].as_str().unwrap().to_string();
    assert_eq!(key["tenant"], "acme");
    assert_eq!(
        c.get("/api/v1/devices", &bearer(&token)).await.status,
        StatusCode::OK
    );
    let listed = c.get("/api/v1/apikeys", &tenant_admin).await;
    assert!(!listed.text.contains(&token), "the token is never listed");
    assert_eq!(listed.json()["items"].as_array().unwrap().len(), 1);
    let all = c.get("/api/v1/apikeys", &root).await.json();
    assert!(all["items"].as_array().unwrap().len() >= 2, "{all}");
    let root_key = all["items"][0]["id"].as_i64().unwrap();
    let a = c
        .request(
            Method::DELETE,
            &format!("/api/v1/apikeys/{root_key}"),
            &tenant_admin,
            None,
            &[],
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "the operator-wide key is not its to revoke"
    );
    let id = key["id"].as_i64().unwrap();
    let a = c
        .request(
            Method::DELETE,
            &format!("/api/v1/apikeys/{id}"),
            &tenant_admin,
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        c.get("/api/v1/devices", &bearer(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Deleting a user ends its sessions.
    let ann = c.login("ann").await;
    let a = c
        .request(
            Method::DELETE,
            "/api/v1/users/ann",
            &tenant_admin,
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        c.get("/api/v1/session", &ann).await.status,
        StatusCode::UNAUTHORIZED
    );
    server.shutdown().await;
}
