//! `simguard users` and `simguard apikeys` on a data directory: passwords
//! from SIMGUARD_PASSWORD or stdin (never argv), stored as argon2id; keys
//! printed once and revoked; tenant and role checked.

mod common;

use common::*;
use simguard_server::access::password;
use simguard_store::{AccessStore, Role, Store};
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

fn run(data: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut c = simguard();
    c.args(args)
        .env("SIMGUARD_DATA_DIR", data)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn simguard");
    if let Some(text) = stdin {
        let mut i = child.stdin.take().unwrap();
        i.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn users_are_added_listed_and_given_new_passwords() {
    let tmp = tempdir("access-cli");
    let data = tmp.path().join("data");
    let pw_env = [("SIMGUARD_PASSWORD", "first password")];
    let o = run(
        &data,
        &[
            "users", "add", "ann", "--role", "operator", "--tenant", "acme",
        ],
        &pw_env,
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    // From stdin, when the variable is not set.
    let o = run(
        &data,
        &["users", "add", "root", "--role", "admin"],
        &[],
        Some("root password\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let a = AccessStore::open(data.join("simguard.db")).unwrap();
    let ann = a.credentials("ann").unwrap().unwrap();
    assert_eq!(ann.user.role, Role::Operator);
    assert_eq!(ann.user.tenant.as_deref(), Some("acme"));
    assert!(ann.password_hash.starts_with("$argon2id$"));
    assert!(password::verify("first password", &ann.password_hash));
    let root = a.credentials("root").unwrap().unwrap();
    assert_eq!(root.user.tenant, None);
    assert!(password::verify("root password", &root.password_hash));

    let o = run(&data, &["users", "list"], &[], None);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("ann") && out.contains("operator") && out.contains("acme"),
        "{out}"
    );
    assert!(out.contains("(operator-wide)"), "{out}");
    assert!(!out.contains("argon2"), "{out}");

    // Refused: a taken name, a bad role, a short password, an empty stdin.
    for (args, env, stdin, why) in [
        (
            vec!["users", "add", "ann", "--role", "viewer"],
            &pw_env[..],
            None,
            "exists",
        ),
        (
            vec!["users", "add", "bob", "--role", "god"],
            &pw_env[..],
            None,
            "--role",
        ),
        (
            vec!["users", "add", "bob", "--role", "viewer"],
            &[("SIMGUARD_PASSWORD", "short")][..],
            None,
            "at least 8",
        ),
        (
            vec!["users", "add", "bob", "--role", "viewer"],
            &[][..],
            Some(""),
            "at least 8",
        ),
    ] {
        let o = run(&data, &args, env, stdin);
        assert!(!o.status.success(), "{why}: {}", text(&o));
        assert!(text(&o).contains(why), "{why}: {}", text(&o));
    }

    let o = run(
        &data,
        &["users", "passwd", "ann"],
        &[],
        Some("second password\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let ann = a.credentials("ann").unwrap().unwrap();
    assert!(password::verify("second password", &ann.password_hash));
    assert!(!password::verify("first password", &ann.password_hash));
    let o = run(&data, &["users", "delete", "ann"], &[], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(a.user("ann").unwrap().is_none());
}

#[test]
fn api_keys_are_printed_once_listed_and_revoked() {
    let tmp = tempdir("apikeys-cli");
    let data = tmp.path().join("data");
    let o = run(
        &data,
        &[
            "apikeys", "add", "ci", "--role", "viewer", "--tenant", "acme",
        ],
        &[],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(token.starts_with("sg_") && token.len() == 67, "{token}");
    let r = Store::open_reader(data.join("simguard.db")).unwrap();
    let key = r.find_api_key(&token).unwrap().expect("the key works");
    assert_eq!(key.role, Role::Viewer);
    assert_eq!(key.tenant.as_deref(), Some("acme"));
    let o = run(&data, &["apikeys", "list"], &[], None);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("ci") && out.contains("acme"), "{out}");
    assert!(!out.contains(&token), "the token is shown only once");
    let o = run(
        &data,
        &["apikeys", "revoke", &key.id.to_string()],
        &[],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(r.find_api_key(&token).unwrap().is_none());
    let o = run(
        &data,
        &["apikeys", "revoke", &key.id.to_string()],
        &[],
        None,
    );
    assert!(!o.status.success(), "revoked already");
}
