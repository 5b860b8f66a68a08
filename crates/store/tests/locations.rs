//! The cell table and location trails: import, resolution through the
//! store, trail order and retention, and the newest position per device.

use simguard_engine::locate::{self, CellKey, CellQuery, PositionSource};
use simguard_engine::{geo, Cell, CellKind, Digits, Plmn};
use simguard_store::{
    CellRow, LocationChange, LocationRetention, Radio, Store, StoreBatch, StoreReader,
};

fn imsi(s: &str) -> Digits {
    Digits::parse(s).unwrap()
}

fn plmn(s: &str) -> Plmn {
    Plmn::parse(s).unwrap()
}

fn ecgi(p: &str, tac: u32, eci: u64) -> Cell {
    Cell {
        kind: CellKind::Ecgi,
        plmn: plmn(p),
        area: tac,
        id: eci,
    }
}

fn row(radio: Radio, mcc: u16, mnc: u16, area: u32, cell: u64, lat: f64, lon: f64) -> CellRow {
    CellRow {
        radio,
        key: CellKey {
            mcc,
            mnc,
            area,
            cell,
        },
        lat,
        lon,
        range_m: 1200,
        samples: 7,
    }
}

fn cells() -> Vec<CellRow> {
    vec![
        // Two LTE cells of 262-01 and a GSM cell in LAC 1000.
        row(Radio::Lte, 262, 1, 1234, 123_456, 52.5200, 13.4050),
        row(Radio::Lte, 262, 1, 1234, 123_457, 48.1372, 11.5756),
        row(Radio::Gsm, 262, 1, 1000, 4242, 50.1109, 8.6821),
    ]
}

fn resolve(r: &StoreReader, cell: Option<&Cell>, network: Option<Plmn>) -> locate::Position {
    locate::resolve(cell, network, |q| r.find_cell(q).unwrap()).unwrap()
}

#[test]
fn imported_cells_resolve_and_unknown_cells_fall_back_to_the_country() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut s = Store::open(&path).unwrap();
    let mut seen = Vec::new();
    let done = s
        .import_cells(cells(), "towers", 2, |n| seen.push(n))
        .unwrap();
    assert_eq!((done.rows, done.batches), (3, 2));
    assert_eq!((done.cells_before, done.cells_after), (0, 3));
    assert_eq!(seen, vec![2, 3], "progress after each batch");
    // Importing the same cells again replaces them: still three.
    let again = s.import_cells(cells(), "towers", 100, |_| {}).unwrap();
    assert_eq!((again.cells_before, again.cells_after), (3, 3));
    assert_eq!(s.cell_count_from("towers").unwrap(), 3);

    let r = Store::open_reader(&path).unwrap();
    let p = resolve(&r, Some(&ecgi("26201", 1234, 123_456)), Some(plmn("26201")));
    assert_eq!(p.source, PositionSource::Cell);
    assert_eq!((p.lat, p.lon, p.accuracy_m), (52.52, 13.405, 1200));
    // The MNC is compared as a number ("001" = 1, as in OpenCelliD files),
    // and an ECGI without TAC is found in any area.
    let p = resolve(&r, Some(&ecgi("262001", 0, 123_457)), None);
    assert_eq!((p.lat, p.source), (48.1372, PositionSource::Cell));
    // CGI needs the exact LAC.
    let cgi = Cell {
        kind: CellKind::Cgi,
        plmn: plmn("26201"),
        area: 1000,
        id: 4242,
    };
    assert_eq!(resolve(&r, Some(&cgi), None).lat, 50.1109);
    assert_eq!(
        r.find_cell(CellQuery::Exact(CellKey {
            mcc: 262,
            mnc: 1,
            area: 1001,
            cell: 4242
        }))
        .unwrap(),
        None
    );
    // Unknown cell, serving network in France: France's centroid.
    let p = resolve(&r, Some(&ecgi("20801", 1, 2)), Some(plmn("20801")));
    assert_eq!(p.source, PositionSource::Country);
    assert_eq!((p.lat, p.lon), geo::centroid("FR").unwrap());
    assert_eq!(p.accuracy_m, 500_000);
}

fn change(imsi_s: &str, time: i64, cell: Option<Cell>, network: &str) -> LocationChange {
    LocationChange {
        imsi: imsi(imsi_s),
        time,
        network: Some(plmn(network)),
        cell,
    }
}

#[test]
fn trails_are_newest_first_bounded_and_keep_the_newest_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut s = Store::open(&path).unwrap();
    s.import_cells(cells(), "towers", 1000, |_| {}).unwrap();
    s.set_location_retention(LocationRetention { per_device: 3 });
    let a = "901700000000001";
    let b = "901700000000002";
    let mut batch = StoreBatch {
        seq: 5,
        ..Default::default()
    };
    batch.locations = vec![
        change(a, 1_000, Some(ecgi("26201", 1234, 123_456)), "26201"),
        change(a, 2_000, Some(ecgi("26201", 1234, 123_457)), "26201"),
        // Unknown cell: Germany's centroid.
        change(a, 3_000, Some(ecgi("26201", 9, 9)), "26201"),
        change(b, 1_500, None, "20801"),
        // International network, no cell: nothing is known, nothing stored.
        change(b, 2_500, None, "90170"),
    ];
    let applied = s.apply_batch(&batch).unwrap();
    assert_eq!(applied.located, 4);
    let r = Store::open_reader(&path).unwrap();
    let trail = r.locations(imsi(a), 0, i64::MAX, 10).unwrap();
    let times: Vec<i64> = trail.iter().map(|p| p.time).collect();
    assert_eq!(times, vec![3_000, 2_000, 1_000], "newest first");
    assert_eq!(trail[0].position.source, PositionSource::Country);
    assert_eq!(trail[1].position.lat, 48.1372);
    assert_eq!(trail[1].cell, Some(ecgi("26201", 1234, 123_457)));
    assert_eq!(trail[1].network, Some(plmn("26201")));
    assert_eq!(trail[2].position.lat, 52.52);
    // Time window [from, to) and limit.
    let mid = r.locations(imsi(a), 1_500, 3_000, 10).unwrap();
    assert_eq!(mid.len(), 1);
    assert_eq!(mid[0].time, 2_000);
    assert_eq!(r.locations(imsi(a), 0, i64::MAX, 2).unwrap().len(), 2);
    let (t, p) = r.position(imsi(a)).unwrap().unwrap();
    assert_eq!((t, p.source), (3_000, PositionSource::Country));
    let (t, p) = r.position(imsi(b)).unwrap().unwrap();
    assert_eq!((t, (p.lat, p.lon)), (1_500, geo::centroid("FR").unwrap()));

    // A replay of the same batch is skipped whole.
    assert!(!s.apply(&batch).unwrap());
    // Two more points for `a`: only the newest three stay.
    let mut next = StoreBatch {
        seq: 6,
        ..Default::default()
    };
    next.locations = vec![
        change(a, 4_000, Some(ecgi("26201", 1234, 123_456)), "26201"),
        change(a, 5_000, Some(ecgi("26201", 1234, 123_457)), "26201"),
        // Late (older than the newest): stored in the trail, but the
        // current position stays the newest one.
        change(b, 1_000, Some(ecgi("26201", 1234, 123_456)), "26201"),
    ];
    s.apply_batch(&next).unwrap();
    let times: Vec<i64> = r
        .locations(imsi(a), 0, i64::MAX, 10)
        .unwrap()
        .iter()
        .map(|p| p.time)
        .collect();
    assert_eq!(times, vec![5_000, 4_000, 3_000]);
    let (t, p) = r.position(imsi(a)).unwrap().unwrap();
    assert_eq!((t, p.lat), (5_000, 48.1372));
    let (t, p) = r.position(imsi(b)).unwrap().unwrap();
    assert_eq!((t, p.source), (1_500, PositionSource::Country));
    assert_eq!(r.locations(imsi(b), 0, i64::MAX, 10).unwrap().len(), 2);

    let mut map = Vec::new();
    r.map_points(|m| map.push((m.imsi, m.lat))).unwrap();
    map.sort_by_key(|(i, _)| *i);
    assert_eq!(map, vec![(imsi(a), 48.1372), (imsi(b), 46.64)]);
    let some = r.positions(&[imsi(a), imsi("901700000000099")]).unwrap();
    assert_eq!(some.len(), 1);
    assert!(some.contains_key(&imsi(a)));
}

/// Import speed: 1,000,000 cells in key order (as `simguard import cells`
/// hands them over after its sort), into an empty table and then again
/// over the full one (every row an update). Run with
/// `cargo test --release -p simguard-store --test locations -- --ignored --nocapture`.
#[test]
#[ignore]
fn import_speed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path().join("store.db")).unwrap();
    // A fixed linear congruential sequence: random-looking keys, no dependency.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 16
    };
    let n = 1_000_000u64;
    let mut rows: Vec<CellRow> = (0..n)
        .map(|_| {
            let r = next();
            row(
                Radio::Lte,
                [262, 208, 234, 310][(r % 4) as usize],
                (r >> 2) as u16 % 20 + 1,
                (r >> 8) as u32 % 65_000 + 1,
                next() % (1 << 28),
                (next() % 160_000) as f64 / 1000.0 - 80.0,
                (next() % 360_000) as f64 / 1000.0 - 180.0,
            )
        })
        .collect();
    rows.sort_by_key(|r| (r.key.mcc, r.key.mnc, r.key.cell, r.key.area));
    for batch in [100_000, 100_000] {
        let t = std::time::Instant::now();
        let done = s
            .import_cells(rows.iter().copied(), "towers", batch, |_| {})
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "batch {batch}: {} rows in {secs:.2} s = {:.0} rows/s (table {} -> {})",
            done.rows,
            done.rows as f64 / secs,
            done.cells_before,
            done.cells_after
        );
    }
}
