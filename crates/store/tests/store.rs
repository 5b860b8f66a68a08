use simguard_engine::{Digits, Group, Lifecycle, Tenant};
use simguard_store::{snapshots, DeviceRow, Role, Store, StoreBatch, StoreError};

fn imsi(s: &str) -> Digits {
    Digits::parse(s).unwrap()
}

fn batch(seq: u64) -> StoreBatch {
    let mut b = StoreBatch {
        seq,
        ..Default::default()
    };
    b.tenants.push(Tenant {
        id: "acme".into(),
        name: "Acme".into(),
    });
    b.groups.push(Group {
        id: "meters".into(),
        tenant: "acme".into(),
        name: "Meters".into(),
        profile: Default::default(),
        disabled_detectors: Vec::new(),
    });
    b.devices.push(DeviceRow {
        imsi: imsi("901700000000001"),
        iccid: Some("89490170000000000012".into()),
        msisdn: Digits::parse("491700000001"),
        bound_imei: None,
        tenant: "acme".into(),
        group: "meters".into(),
        lifecycle: Lifecycle::Active,
        label: Some("meter 1".into()),
    });
    b.add_usage(imsi("901700000000001"), 3_600_000, 100, 200);
    b.add_usage(imsi("901700000000001"), 3_600_000, 1, 2);
    b.add_usage(imsi("901700000000001"), 7_200_000, 5, 5);
    b
}

#[test]
fn batches_apply_once_and_usage_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.applied_seq().unwrap(), 0);
    assert!(s.apply(&batch(10)).unwrap());
    // The same batch again (a replay after a crash) is skipped whole.
    assert!(!s.apply(&batch(10)).unwrap());
    assert!(!s.apply(&batch(7)).unwrap());
    assert!(s.apply(&batch(11)).unwrap());
    assert_eq!(s.applied_seq().unwrap(), 11);

    let r = Store::open_reader(&path).unwrap();
    let u = r.usage(imsi("901700000000001"), 0, i64::MAX).unwrap();
    assert_eq!(u.len(), 2);
    assert_eq!((u[0].hour, u[0].up, u[0].down), (3_600_000, 202, 404));
    assert_eq!((u[1].hour, u[1].up, u[1].down), (7_200_000, 10, 10));
    let only_first = r.usage(imsi("901700000000001"), 0, 7_200_000).unwrap();
    assert_eq!(only_first.len(), 1);
    drop(s);
    // Reopening re-runs no migration and keeps data.
    let s = Store::open(&path).unwrap();
    assert_eq!(s.applied_seq().unwrap(), 11);
}

#[test]
fn api_keys_are_found_by_token_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut s = Store::open(&path).unwrap();
    s.add_api_key("admin", "s3cret-token", Role::Admin, None, 0)
        .unwrap();
    s.add_api_key("admin", "s3cret-token", Role::Admin, None, 0)
        .unwrap();
    assert_eq!(s.api_key_count().unwrap(), 1);
    let r = Store::open_reader(&path).unwrap();
    let k = r.find_api_key("s3cret-token").unwrap().unwrap();
    assert_eq!(k.role, Role::Admin);
    assert_eq!(k.tenant, None);
    assert!(r.find_api_key("s3cret-tokeN").unwrap().is_none());
}

#[test]
fn snapshot_files_round_trip_and_detect_damage() {
    let dir = tempfile::tempdir().unwrap();
    let body = b"SGS1 some engine state".repeat(100);
    let n = snapshots::write(dir.path(), 42, &body).unwrap();
    assert_eq!(n, body.len() as u64 + 32);
    let f = snapshots::file_name(42);
    assert_eq!(snapshots::read(dir.path(), &f).unwrap(), body);
    // Flip one byte: the checksum catches it.
    let p = dir.path().join(&f);
    let mut data = std::fs::read(&p).unwrap();
    data[10] ^= 1;
    std::fs::write(&p, &data).unwrap();
    assert!(matches!(
        snapshots::read(dir.path(), &f),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(Store::open(&path).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}
