//! Cross-checks the embedded E.212 table (`simguard_engine::mcc`) against the
//! third-party MCC-MNC table in the shared test data
//! (`$SIMGUARD_SHARED_DATA/mcc-mnc/mcc-mnc-table.csv`, default
//! `<repo>/../shared/data`). The data is only read here, never embedded.
//!
//! Every row whose MCC is a country (i.e. not 001, not the international /
//! shared 9xx codes except 995) must map to `Some` country whose ISO code is
//! the row's ISO upper-cased. Known, documented disagreements are tolerated
//! (see [`KNOWN`]); any other disagreement counts, and fewer than 2% of the
//! distinct country MCCs may have one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use simguard_engine::mcc;

/// Known disagreements: (MCC, ISO as written in the CSV, lower case), why.
const KNOWN: &[(u16, &str, &str)] = &[
    // Crown dependencies have no MCC of their own: their networks use the
    // UK's 234/235, which the table maps to GB.
    (234, "gg", "Guernsey uses the UK MCC"),
    (234, "je", "Jersey uses the UK MCC"),
    (234, "im", "Isle of Man uses the UK MCC"),
    (235, "gg", "Guernsey uses the UK MCC"),
    (235, "je", "Jersey uses the UK MCC"),
    (235, "im", "Isle of Man uses the UK MCC"),
    // 289 is used in Abkhazia but is not an ITU assignment: the table
    // returns None rather than Georgia.
    (289, "ge", "Abkhazia, not an ITU assignment"),
    // US territories whose operators hold US (310-316) codes.
    (310, "gu", "Guam operator on a US MCC"),
    (311, "gu", "Guam operator on a US MCC"),
    (310, "mp", "Northern Mariana Islands operator on a US MCC"),
    (311, "mp", "Northern Mariana Islands operator on a US MCC"),
    (310, "as", "American Samoa operator on a US MCC"),
    (310, "vi", "US Virgin Islands operator on a US MCC"),
    (310, "pr", "Puerto Rico operator on a US MCC"),
    (311, "pr", "Puerto Rico operator on a US MCC"),
    // Palestinian operators use Israel's 425.
    (425, "ps", "Palestine uses the Israeli MCC"),
    // Shared French / Dutch overseas MCCs map to the principal territory.
    (340, "mq", "French Antilles MCC 340 -> GP"),
    (340, "gf", "French Antilles MCC 340 -> GP"),
    (340, "bl", "French Antilles MCC 340 -> GP"),
    (340, "mf", "French Antilles MCC 340 -> GP"),
    (647, "yt", "Mayotte uses Réunion's MCC 647 -> RE"),
    (362, "sx", "Sint Maarten uses MCC 362 -> CW"),
    (362, "bq", "Caribbean Netherlands uses MCC 362 -> CW"),
    (
        362,
        "an",
        "former Netherlands Antilles (withdrawn ISO code)",
    ),
    // Data error in the CSV: 376 is Turks and Caicos; one Digicel TCI row is
    // tagged as the US Virgin Islands.
    (376, "vi", "mislabelled Turks and Caicos row"),
];

fn data_dir() -> PathBuf {
    match std::env::var_os("SIMGUARD_SHARED_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
    }
}

/// Splits one CSV record, honouring double-quoted fields (with `""` as an
/// escaped quote). Records do not span lines in this file.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => fields.push(std::mem::take(&mut field)),
            _ => field.push(ch),
        }
    }
    assert!(!in_quotes, "unterminated quoted field in {line:?}");
    fields.push(field);
    fields
}

#[test]
fn split_csv_handles_quotes() {
    assert_eq!(split_csv("a,b,,c"), ["a", "b", "", "c"]);
    assert_eq!(split_csv(r#"1,"x, y",z"#), ["1", "x, y", "z"]);
    assert_eq!(split_csv(r#""say ""hi""",2"#), [r#"say "hi""#, "2"]);
}

/// A code that is a country (not the test code 001, not an international /
/// shared / trial / internal 9xx code; 995 is a territory).
fn is_country_mcc(mcc: u16) -> bool {
    (200..900).contains(&mcc) || mcc == 995
}

#[test]
fn table_agrees_with_shared_mcc_mnc_data() {
    let path = data_dir().join("mcc-mnc/mcc-mnc-table.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set SIMGUARD_SHARED_DATA to the shared data directory",
            path.display()
        )
    });
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text.lines();
    let header = split_csv(lines.next().expect("empty CSV"));
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .unwrap_or_else(|| panic!("no {name:?} column in {header:?}"))
    };
    let (mcc_col, iso_col) = (col("MCC"), col("ISO"));

    let mut rows = 0usize;
    let mut country_mccs = BTreeSet::new();
    // (MCC, CSV ISO) -> what the table says.
    let mut disagreements: BTreeMap<(u16, String), Option<&'static str>> = BTreeMap::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv(line);
        let mcc: u16 = fields[mcc_col]
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("line {}: bad MCC {:?}: {e}", n + 2, fields[mcc_col]));
        if !is_country_mcc(mcc) {
            continue;
        }
        rows += 1;
        country_mccs.insert(mcc);
        let iso = fields[iso_col].trim().to_ascii_lowercase();
        let ours = mcc::country(mcc);
        if ours.map(|c| c.iso.to_ascii_lowercase()) != Some(iso.clone()) {
            disagreements.insert((mcc, iso), ours.map(|c| c.iso));
        }
    }
    assert!(
        rows > 1000,
        "only {rows} country rows in {}",
        path.display()
    );

    let mut unexplained = BTreeSet::new();
    println!(
        "{} disagreement(s) with {}:",
        disagreements.len(),
        path.display()
    );
    for ((mcc, iso), ours) in &disagreements {
        let known = KNOWN.iter().find(|(m, i, _)| m == mcc && i == iso);
        let why = match known {
            Some((_, _, why)) => format!("known: {why}"),
            None => {
                unexplained.insert(*mcc);
                "UNEXPECTED".to_string()
            }
        };
        println!("  MCC {mcc}: csv {iso:?}, table {ours:?} ({why})");
    }

    let ratio = unexplained.len() as f64 / country_mccs.len() as f64;
    println!(
        "{} distinct country MCCs in the CSV, {} with unexplained disagreements ({:.2}%)",
        country_mccs.len(),
        unexplained.len(),
        ratio * 100.0
    );
    assert!(
        ratio < 0.02,
        "{} of {} MCCs disagree with the shared data: {unexplained:?}",
        unexplained.len(),
        country_mccs.len()
    );

    let ours = (0..=999u16).filter(|&m| mcc::country(m).is_some()).count();
    assert!(ours >= 220, "table has only {ours} MCCs");
    // Every country MCC in the CSV is either in the table or a known gap.
    for mcc in &country_mccs {
        if mcc::country(*mcc).is_none() {
            assert!(
                KNOWN.iter().any(|(m, _, _)| m == mcc),
                "MCC {mcc} missing from the table"
            );
        }
    }
}

#[test]
fn reverse_lookups_are_consistent() {
    for mcc in 0..=999u16 {
        if let Some(c) = mcc::country(mcc) {
            assert!(mcc::mccs_of(c.iso).contains(&mcc), "{mcc} {}", c.iso);
            assert!(mcc::mccs_of(&c.iso.to_ascii_lowercase()).contains(&mcc));
            assert_eq!(mcc::country_name(c.iso), Some(c.name));
        }
    }
    assert_eq!(mcc::mccs_of("US"), &[310, 311, 312, 313, 314, 315, 316]);
    assert!(mcc::mccs_of("nowhere").is_empty());
}
