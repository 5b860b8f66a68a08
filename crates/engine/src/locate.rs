//! Where a device is: its serving cell (from User-Location-Info) resolved
//! to a position through a cell table, else its serving network's country.
//!
//! Pure: the cell table is behind a lookup function the caller provides (the
//! store has it in SQLite), so this module decides *what* to look up and
//! what the answer means, and tests need no database.
//!
//! Cell tables follow OpenCelliD's key `(mcc, net, area, cell)`:
//!
//! | ULI type | `area` | `cell` | OpenCelliD radio |
//! |---|---|---|---|
//! | CGI (2G) | LAC | CI (16 bits) | GSM |
//! | SAI (3G) | LAC | SAC | UMTS (see below) |
//! | ECGI (LTE) | TAC | ECI (28 bits: eNodeB << 8 \| cell) | LTE |
//! | NCGI (5G) | TAC | NCI (36 bits) | NR |
//!
//! OpenCelliD lists a UMTS cell by its 28-bit UTRAN cell id (RNC << 16 | CI);
//! an SAI carries a service area code instead, which many networks set to
//! the cell's CI. An SAI is therefore looked up as (LAC, SAC) and resolves
//! when the table has that key (short-CI files, or our own cell plans);
//! otherwise the device falls back to its country.
//!
//! The MNC is compared as a number: OpenCelliD's `net` column drops leading
//! zeros, so "01" and "001" cannot be told apart there.
//!
//! An ECGI or NCGI is unique within its PLMN, so when the ULI carried no TAC
//! (type 129 alone) or the table has the cell under another TAC (TAC
//! re-planning), the cell is looked up by (mcc, mnc, cell) in any area.
//! CGI and SAI identities repeat across location areas and need the LAC.
//!
//! TAI and RAI name an area, not a cell: they fall back to the country.

use crate::geo;
use crate::ids::{Cell, CellKind, Plmn};

/// A cell table's key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CellKey {
    pub mcc: u16,
    /// As a number: OpenCelliD does not keep the MNC's digit count.
    pub mnc: u16,
    /// LAC (2G/3G) or TAC (LTE/5G).
    pub area: u32,
    /// CI, SAC, ECI or NCI.
    pub cell: u64,
}

/// One lookup in the cell table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CellQuery {
    /// Exactly this key.
    Exact(CellKey),
    /// This cell id in any area of the PLMN (`key.area` is ignored); only
    /// for identities that are unique within a PLMN (ECI, NCI).
    AnyArea(CellKey),
}

/// What the cell table says about a cell.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct CellPosition {
    pub lat: f64,
    pub lon: f64,
    /// How far from (lat, lon) the cell serves, m (OpenCelliD's `range`).
    pub range_m: u32,
}

/// How a position was found.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PositionSource {
    /// The serving cell is in the cell table.
    Cell,
    /// Only the serving network's country is known: its centroid.
    Country,
}

impl PositionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PositionSource::Cell => "cell",
            PositionSource::Country => "country",
        }
    }

    pub fn parse(s: &str) -> Option<PositionSource> {
        match s {
            "cell" => Some(PositionSource::Cell),
            "country" => Some(PositionSource::Country),
            _ => None,
        }
    }
}

/// A device's estimated position.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
    /// Radius around (lat, lon) the device is likely within, m.
    pub accuracy_m: u32,
    pub source: PositionSource,
}

/// The smallest accuracy a cell position claims, m. OpenCelliD gives a
/// range of a few metres for cells seen once or twice, but no macro or
/// small cell serves a disc that small, and the measurements behind the
/// position carry GPS error of tens of metres.
pub const MIN_CELL_ACCURACY_M: u32 = 100;

/// The table key of a cell from User-Location-Info, and whether its id is
/// unique within its PLMN (then a lookup in any area is allowed). None for
/// location types that name no cell (TAI, RAI).
pub fn cell_key(cell: &Cell) -> Option<(CellKey, bool)> {
    let unique_in_plmn = match cell.kind {
        CellKind::Cgi | CellKind::Sai => false,
        CellKind::Ecgi | CellKind::Ncgi => true,
        CellKind::Tai | CellKind::Rai => return None,
    };
    Some((
        CellKey {
            mcc: cell.plmn.mcc,
            mnc: cell.plmn.mnc,
            area: cell.area,
            cell: cell.id,
        },
        unique_in_plmn,
    ))
}

/// The lookups to try for a cell, in order (at most two).
pub fn cell_queries(cell: &Cell) -> impl Iterator<Item = CellQuery> {
    let (first, second) = match cell_key(cell) {
        None => (None, None),
        Some((k, true)) if k.area == 0 => (Some(CellQuery::AnyArea(k)), None),
        Some((k, true)) => (Some(CellQuery::Exact(k)), Some(CellQuery::AnyArea(k))),
        Some((k, false)) => (Some(CellQuery::Exact(k)), None),
    };
    first.into_iter().chain(second)
}

/// The country position of a mobile country code: its country's centroid,
/// with the country's radius as accuracy. None for codes of no country
/// (001 test networks, 901 international).
pub fn country_position(mcc: u16) -> Option<Position> {
    let iso = crate::mcc::country(mcc)?.iso;
    let (lat, lon) = geo::centroid(iso)?;
    Some(Position {
        lat,
        lon,
        accuracy_m: (geo::country_radius_km(iso) * 1000.0).round() as u32,
        source: PositionSource::Country,
    })
}

/// Resolves a device's position from its serving cell and network.
///
/// 1. The cell, looked up with `find` (see [`cell_queries`]): its position,
///    with its range as accuracy (at least [`MIN_CELL_ACCURACY_M`]).
/// 2. Else the serving network's country (`network`, the SGSN-MCC-MNC),
///    else the cell's PLMN's country: where the device attached, which for a
///    roaming SIM is not its home country.
/// 3. Else None (a test or international PLMN and no known cell).
pub fn resolve(
    cell: Option<&Cell>,
    network: Option<Plmn>,
    mut find: impl FnMut(CellQuery) -> Option<CellPosition>,
) -> Option<Position> {
    if let Some(c) = cell {
        for q in cell_queries(c) {
            if let Some(p) = find(q) {
                return Some(Position {
                    lat: p.lat,
                    lon: p.lon,
                    accuracy_m: p.range_m.max(MIN_CELL_ACCURACY_M),
                    source: PositionSource::Cell,
                });
            }
        }
    }
    network
        .and_then(|n| country_position(n.mcc))
        .or_else(|| cell.and_then(|c| country_position(c.plmn.mcc)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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

    /// A cell table in a map, answering both kinds of query.
    struct Table(HashMap<CellKey, CellPosition>);

    impl Table {
        fn find(&self, q: CellQuery) -> Option<CellPosition> {
            match q {
                CellQuery::Exact(k) => self.0.get(&k).copied(),
                CellQuery::AnyArea(k) => self
                    .0
                    .iter()
                    .filter(|(t, _)| t.mcc == k.mcc && t.mnc == k.mnc && t.cell == k.cell)
                    .min_by_key(|(t, _)| **t)
                    .map(|(_, p)| *p),
            }
        }
    }

    fn table() -> Table {
        let mut m = HashMap::new();
        // Rogers (302-720), TAC 29100, ECI 9751830 (eNodeB 38093, cell 22).
        m.insert(
            CellKey {
                mcc: 302,
                mnc: 720,
                area: 29100,
                cell: 9_751_830,
            },
            CellPosition {
                lat: 45.4131,
                lon: -75.6977,
                range_m: 850,
            },
        );
        // A GSM cell of 262-01, LAC 1000, CI 4242, seen once (range 1 m).
        m.insert(
            CellKey {
                mcc: 262,
                mnc: 1,
                area: 1000,
                cell: 4242,
            },
            CellPosition {
                lat: 52.52,
                lon: 13.40,
                range_m: 1,
            },
        );
        Table(m)
    }

    #[test]
    fn a_known_ecgi_resolves_to_its_cell() {
        let t = table();
        let p = resolve(
            Some(&ecgi("302720", 29100, 9_751_830)),
            Some(plmn("302720")),
            |q| t.find(q),
        )
        .unwrap();
        assert_eq!(p.source, PositionSource::Cell);
        assert_eq!((p.lat, p.lon, p.accuracy_m), (45.4131, -75.6977, 850));
        // ECGI alone (no TAC) and a re-planned TAC still find it: the ECI is
        // unique in the PLMN.
        for tac in [0, 29101] {
            let p = resolve(Some(&ecgi("302720", tac, 9_751_830)), None, |q| t.find(q)).unwrap();
            assert_eq!((p.lat, p.source), (45.4131, PositionSource::Cell), "{tac}");
        }
        // Another PLMN's identical ECI is another cell.
        let p = resolve(
            Some(&ecgi("302610", 29100, 9_751_830)),
            Some(plmn("302610")),
            |q| t.find(q),
        )
        .unwrap();
        assert_eq!(p.source, PositionSource::Country);
    }

    #[test]
    fn cgi_needs_its_lac_and_a_tiny_range_gets_the_floor() {
        let t = table();
        let cgi = |lac| Cell {
            kind: CellKind::Cgi,
            plmn: plmn("26201"),
            area: lac,
            id: 4242,
        };
        let p = resolve(Some(&cgi(1000)), Some(plmn("26201")), |q| t.find(q)).unwrap();
        assert_eq!(p.source, PositionSource::Cell);
        assert_eq!(p.accuracy_m, MIN_CELL_ACCURACY_M);
        // The same CI in another LAC is another cell: not found.
        let p = resolve(Some(&cgi(1001)), Some(plmn("26201")), |q| t.find(q)).unwrap();
        assert_eq!(p.source, PositionSource::Country);
        assert_eq!(cell_queries(&cgi(1000)).count(), 1);
    }

    #[test]
    fn an_unknown_cell_falls_back_to_the_serving_networks_country() {
        let t = table();
        // A 901-70 SIM roaming in Germany (SGSN-MCC-MNC 262-01) on an unknown
        // cell: Germany's centroid, with the country radius (500 km floor).
        let p = resolve(Some(&ecgi("26201", 1234, 99)), Some(plmn("26201")), |q| {
            t.find(q)
        })
        .unwrap();
        assert_eq!(p.source, PositionSource::Country);
        assert_eq!((p.lat, p.lon), geo::centroid("DE").unwrap());
        assert_eq!(p.accuracy_m, 500_000);
        // Russia's accuracy is its own size: sqrt(17,098,000 km² / pi).
        let p = resolve(None, Some(plmn("25001")), |q| t.find(q)).unwrap();
        assert_eq!((p.lat, p.lon), geo::centroid("RU").unwrap());
        assert_eq!(p.accuracy_m, 2_332_909);
        // Without a serving network, the cell's PLMN tells the country.
        let p = resolve(Some(&ecgi("20404", 1, 2)), None, |q| t.find(q)).unwrap();
        assert_eq!((p.lat, p.lon), geo::centroid("NL").unwrap());
        // International (901) and test (001) networks have no country.
        assert_eq!(
            resolve(Some(&ecgi("90170", 1, 2)), Some(plmn("00101")), |q| t
                .find(q)),
            None
        );
        assert_eq!(resolve(None, None, |q| t.find(q)), None);
    }

    #[test]
    fn area_identities_are_not_looked_up() {
        let tai = Cell {
            kind: CellKind::Tai,
            plmn: plmn("302720"),
            area: 29100,
            id: 0,
        };
        assert_eq!(cell_queries(&tai).count(), 0);
        let mut asked = 0;
        let p = resolve(Some(&tai), None, |_| {
            asked += 1;
            None
        })
        .unwrap();
        assert_eq!(asked, 0);
        assert_eq!(p.source, PositionSource::Country);
        assert_eq!((p.lat, p.lon), geo::centroid("CA").unwrap());
    }
}
