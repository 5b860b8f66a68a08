//! Users, sessions and API key management in the store: scoping by tenant,
//! sessions kept by hash and ended with their user or password, revoked
//! keys no longer authenticate.

use simguard_store::{AccessStore, Role, Store};

fn open() -> (tempfile::TempDir, AccessStore) {
    let dir = tempfile::tempdir().unwrap();
    let a = AccessStore::open(dir.path().join("simguard.db")).unwrap();
    (dir, a)
}

#[test]
fn users_are_scoped_by_tenant_and_names_are_unique() {
    let (_d, mut a) = open();
    assert!(a.add_user("root", "$h1", Role::Admin, None, 1).unwrap());
    assert!(a
        .add_user("ann", "$h2", Role::Viewer, Some("acme"), 2)
        .unwrap());
    assert!(a
        .add_user("bob", "$h3", Role::Operator, Some("globex"), 3)
        .unwrap());
    assert!(
        !a.add_user("ann", "$other", Role::Admin, None, 4).unwrap(),
        "a taken name is refused"
    );
    assert_eq!(a.credentials("ann").unwrap().unwrap().password_hash, "$h2");
    let names = |v: Vec<simguard_store::User>| v.into_iter().map(|u| u.name).collect::<Vec<_>>();
    assert_eq!(names(a.users(None).unwrap()), ["ann", "bob", "root"]);
    assert_eq!(names(a.users(Some("acme")).unwrap()), ["ann"]);
    // A tenant scope cannot delete another tenant's user.
    assert!(!a.delete_user("bob", Some("acme")).unwrap());
    assert!(a.user("bob").unwrap().is_some());
    assert!(a.delete_user("bob", Some("globex")).unwrap());
    assert!(a.user("bob").unwrap().is_none());
    assert_eq!(a.user_count().unwrap(), 2);
}

#[test]
fn sessions_are_found_by_secret_and_end_with_password_or_user() {
    let (dir, mut a) = open();
    a.add_user("ann", "$h", Role::Operator, Some("acme"), 0)
        .unwrap();
    a.create_session("secret-1", "ann", "csrf-1", 1_000, 10_000)
        .unwrap();
    a.create_session("secret-2", "ann", "csrf-2", 1_000, 10_000)
        .unwrap();
    let s = a.session("secret-1").unwrap().unwrap();
    assert_eq!(s.user.name, "ann");
    assert_eq!(s.user.role, Role::Operator);
    assert_eq!(s.csrf, "csrf-1");
    assert_eq!(
        (s.created_ms, s.last_seen_ms, s.expires_ms),
        (1_000, 1_000, 10_000)
    );
    assert!(a.session("secret-3").unwrap().is_none());
    // Kept by hash: the secret is nowhere in the table.
    let c = rusqlite::Connection::open(dir.path().join("simguard.db")).unwrap();
    let stored: Vec<u8> = c
        .query_row("SELECT id_hash FROM sessions LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert!(!stored.windows(8).any(|w| w == b"secret-1"));

    a.touch_session("secret-1", 5_000).unwrap();
    a.touch_session("secret-1", 4_000).unwrap();
    assert_eq!(a.session("secret-1").unwrap().unwrap().last_seen_ms, 5_000);
    // Idle since 1,000 with a 3,000 idle timeout at 6,000: secret-2 goes.
    assert_eq!(a.purge_sessions(6_000, 3_000).unwrap(), 1);
    assert!(a.session("secret-2").unwrap().is_none());
    assert!(a.delete_session("secret-1").unwrap());
    assert!(!a.delete_session("secret-1").unwrap());

    a.create_session("s3", "ann", "c", 0, 10).unwrap();
    assert!(a.set_password("ann", "$new", 7).unwrap());
    assert!(
        a.session("s3").unwrap().is_none(),
        "a new password ends sessions"
    );
    a.create_session("s4", "ann", "c", 0, 10).unwrap();
    assert!(a.delete_user("ann", None).unwrap());
    assert!(
        a.session("s4").unwrap().is_none(),
        "a deleted user's sessions end"
    );
}

#[test]
fn revoked_keys_do_not_authenticate_and_scopes_hold() {
    let (dir, mut a) = open();
    let k1 = a
        .add_api_key("acme-ci", "tok-1", Role::Operator, Some("acme"), 1)
        .unwrap();
    let k2 = a
        .add_api_key("globex-ci", "tok-2", Role::Viewer, Some("globex"), 2)
        .unwrap();
    assert_eq!(a.api_keys(None).unwrap().len(), 2);
    let acme = a.api_keys(Some("acme")).unwrap();
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0].id, k1);
    let r = Store::open_reader(dir.path().join("simguard.db")).unwrap();
    assert!(r.find_api_key("tok-2").unwrap().is_some());
    assert!(
        !a.revoke_api_key(k2, Some("acme"), 5).unwrap(),
        "not acme's key"
    );
    assert!(a.revoke_api_key(k2, Some("globex"), 5).unwrap());
    assert!(!a.revoke_api_key(k2, None, 6).unwrap(), "revoked already");
    assert!(r.find_api_key("tok-2").unwrap().is_none());
    assert_eq!(a.api_key(k2).unwrap().unwrap().revoked_ms, Some(5));
    assert_eq!(a.api_keys(None).unwrap().len(), 1);
    // Seeding the same token again (SIMGUARD_ADMIN_TOKEN at start) does not
    // bring a revoked key back.
    let mut s = Store::open(dir.path().join("simguard.db")).unwrap();
    s.add_api_key("again", "tok-2", Role::Admin, None, 9)
        .unwrap();
    assert!(r.find_api_key("tok-2").unwrap().is_none());
    assert_eq!(s.api_key_count().unwrap(), 1);
}

#[test]
fn roles_are_ordered() {
    assert!(Role::Admin.at_least(Role::Operator));
    assert!(Role::Operator.at_least(Role::Operator));
    assert!(!Role::Viewer.at_least(Role::Operator));
    assert!(!Role::Operator.at_least(Role::Admin));
}
