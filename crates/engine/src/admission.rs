//! Admission control: whether a SIM may open a session (RADIUS
//! Access-Request), decided from the inventory and the group's declared
//! profile as the engine holds them now.
//!
//! A pure function of the engine's state and the request: it reads, never
//! changes, and is not journaled (an admission is a question, not an event;
//! the session it allows shows up in accounting).

use crate::engine::Engine;
use crate::ids::{Digits, Plmn};
use crate::inventory::{imei_body, Lifecycle};
use std::fmt;

/// What the gateway told us about the session it wants to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionRequest {
    pub imsi: Digits,
    /// 3GPP-IMEISV (or an IMEI), as digits.
    pub imei: Option<Digits>,
    /// 3GPP-SGSN-MCC-MNC: the serving network.
    pub network: Option<Plmn>,
    /// 3GPP-RAT-Type.
    pub rat: Option<u8>,
}

/// Knobs of the decision that come from configuration, not from the inventory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmissionPolicy {
    /// Reject SIMs that are not in the inventory (else they are admitted,
    /// and detection reports them as unprovisioned).
    pub reject_unprovisioned: bool,
}

/// What an admitted session gets: the enforcement state the gateway must apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grant {
    /// A provisioned, active SIM: no restriction.
    Active,
    /// Rate-limited.
    Throttled,
    /// Only the group's allow-list gets through.
    Quarantined,
    /// Not in the inventory, admitted because `reject_unprovisioned` is off.
    Unprovisioned,
}

impl Grant {
    pub const ALL: [Grant; 4] = [
        Grant::Active,
        Grant::Throttled,
        Grant::Quarantined,
        Grant::Unprovisioned,
    ];

    /// Stable label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Active => "active",
            Grant::Throttled => "throttled",
            Grant::Quarantined => "quarantined",
            Grant::Unprovisioned => "unprovisioned",
        }
    }
}

/// Why a session is refused. The `Display` text is what the gateway gets in
/// Reply-Message, so it names the rule but never the bound IMEI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    Blocked,
    Retired,
    Unprovisioned,
    /// The reported IMEI's first 14 digits differ from the bound IMEI's.
    ImeiMismatch {
        seen: Digits,
    },
    /// The group locks the IMEI but the request carries none to check.
    ImeiMissing,
    /// The serving network is not one of the group's allowed networks.
    NetworkNotAllowed {
        network: Plmn,
    },
    /// The serving network's country is not one of the group's allowed
    /// countries (`country` is None when the MCC belongs to no country).
    CountryNotAllowed {
        network: Plmn,
        country: Option<&'static str>,
    },
    /// The group restricts networks or countries but the request does not
    /// say where the device is.
    NetworkUnknown,
    RatNotAllowed {
        rat: u8,
    },
    /// The group restricts RAT types but the request carries none.
    RatUnknown,
}

impl RejectReason {
    /// Every label, for pre-registering metrics.
    pub const LABELS: [&'static str; 10] = [
        "blocked",
        "retired",
        "unprovisioned",
        "imei_mismatch",
        "imei_missing",
        "network_not_allowed",
        "country_not_allowed",
        "network_unknown",
        "rat_not_allowed",
        "rat_unknown",
    ];

    /// Stable label for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::Blocked => "blocked",
            RejectReason::Retired => "retired",
            RejectReason::Unprovisioned => "unprovisioned",
            RejectReason::ImeiMismatch { .. } => "imei_mismatch",
            RejectReason::ImeiMissing => "imei_missing",
            RejectReason::NetworkNotAllowed { .. } => "network_not_allowed",
            RejectReason::CountryNotAllowed { .. } => "country_not_allowed",
            RejectReason::NetworkUnknown => "network_unknown",
            RejectReason::RatNotAllowed { .. } => "rat_not_allowed",
            RejectReason::RatUnknown => "rat_unknown",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::Blocked => f.write_str("SIM is blocked"),
            RejectReason::Retired => f.write_str("SIM is retired"),
            RejectReason::Unprovisioned => f.write_str("SIM is not provisioned"),
            RejectReason::ImeiMismatch { seen } => {
                write!(f, "IMEI lock: device {seen} is not the SIM's bound device")
            }
            RejectReason::ImeiMissing => {
                f.write_str("IMEI lock: the request carries no IMEISV to check")
            }
            RejectReason::NetworkNotAllowed { network } => {
                write!(f, "serving network {network} is not allowed for this SIM")
            }
            RejectReason::CountryNotAllowed { network, country } => match country {
                Some(c) => write!(
                    f,
                    "serving network {network} is in {c}, a country not allowed for this SIM"
                ),
                None => write!(
                    f,
                    "serving network {network} belongs to no country allowed for this SIM"
                ),
            },
            RejectReason::NetworkUnknown => f.write_str(
                "the request does not name the serving network, and this SIM may use only some",
            ),
            RejectReason::RatNotAllowed { rat } => {
                write!(f, "radio access type {rat} is not allowed for this SIM")
            }
            RejectReason::RatUnknown => f.write_str(
                "the request does not name the radio access type, and this SIM may use only some",
            ),
        }
    }
}

/// The answer to an Access-Request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Accept(Grant),
    Reject(RejectReason),
}

impl Decision {
    pub fn is_accept(&self) -> bool {
        matches!(self, Decision::Accept(_))
    }
}

/// Decides an Access-Request from the engine's current state.
///
/// Order (the first rule that applies wins):
/// 1. not in the inventory: reject if `reject_unprovisioned`, else admit as unprovisioned;
/// 2. lifecycle blocked or retired: reject;
/// 3. group `imei_lock` with a bound IMEI: the reported IMEI(SV)'s first 14
///    digits must equal the bound IMEI's (a request without one is rejected);
/// 4. group allowed networks / countries: the serving network must be in
///    both lists that are non-empty (a request without one is rejected);
/// 5. group allowed RAT types, likewise;
/// 6. admit with the lifecycle's grant (active, throttled, quarantined).
///
/// A device whose group is unknown to the engine passes 3-5: there is no
/// declared profile to hold it to.
pub fn decide(engine: &Engine, req: &AdmissionRequest, policy: AdmissionPolicy) -> Decision {
    let Some(prov) = engine
        .device(req.imsi)
        .and_then(|d| d.provisioning.as_ref())
    else {
        return if policy.reject_unprovisioned {
            Decision::Reject(RejectReason::Unprovisioned)
        } else {
            Decision::Accept(Grant::Unprovisioned)
        };
    };
    let grant = match prov.lifecycle {
        Lifecycle::Blocked => return Decision::Reject(RejectReason::Blocked),
        Lifecycle::Retired => return Decision::Reject(RejectReason::Retired),
        Lifecycle::Active => Grant::Active,
        Lifecycle::Throttled => Grant::Throttled,
        Lifecycle::Quarantined => Grant::Quarantined,
    };
    let Some(group) = engine.group(engine.syms().resolve(prov.group)) else {
        return Decision::Accept(grant);
    };
    let p = &group.profile;

    if let (true, Some(bound)) = (p.imei_lock, prov.bound_imei) {
        let Some(seen) = req.imei else {
            return Decision::Reject(RejectReason::ImeiMissing);
        };
        // A reported IMEI shorter than 14 digits cannot be the bound one.
        let same = match (imei_body(seen), imei_body(bound)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        if !same {
            return Decision::Reject(RejectReason::ImeiMismatch { seen });
        }
    }

    if !p.allowed_networks.is_empty() || !p.allowed_countries.is_empty() {
        let Some(network) = req.network else {
            return Decision::Reject(RejectReason::NetworkUnknown);
        };
        if !p.allowed_networks.is_empty() && !p.allowed_networks.contains(&network) {
            return Decision::Reject(RejectReason::NetworkNotAllowed { network });
        }
        if !p.allowed_countries.is_empty() {
            let country = network.country();
            let allowed = country.is_some_and(|c| {
                p.allowed_countries
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(c))
            });
            if !allowed {
                return Decision::Reject(RejectReason::CountryNotAllowed { network, country });
            }
        }
    }

    if !p.allowed_rats.is_empty() {
        let Some(rat) = req.rat else {
            return Decision::Reject(RejectReason::RatUnknown);
        };
        if !p.allowed_rats.contains(&rat) {
            return Decision::Reject(RejectReason::RatNotAllowed { rat });
        }
    }

    Decision::Accept(grant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineOptions;
    use crate::event::Event;
    use crate::inventory::{DeclaredProfile, DeviceRecord, Group, Tenant};

    fn d(s: &str) -> Digits {
        Digits::parse(s).unwrap()
    }

    fn plmn(s: &str) -> Plmn {
        Plmn::parse(s).unwrap()
    }

    const LOCKED: &str = "901700000000001";
    const OPEN: &str = "901700000000002";
    const BOUND_IMEI: &str = "352099001761481";

    /// A tenant, a locked group restricted to Germany's 262-01/262-02 on
    /// LTE-M/NB-IoT, an open group, and one device per (group, lifecycle).
    fn engine(lifecycle: Lifecycle) -> Engine {
        let mut e = Engine::new(EngineOptions::default());
        let mut out = Vec::new();
        let events = [
            Event::UpsertTenant(Tenant {
                id: "acme".into(),
                name: "Acme".into(),
            }),
            Event::UpsertGroup(Group {
                id: "meters".into(),
                tenant: "acme".into(),
                name: "Meters".into(),
                profile: DeclaredProfile {
                    allowed_countries: vec!["de".into()],
                    allowed_networks: vec![plmn("26201"), plmn("26202"), plmn("23415")],
                    allowed_rats: vec![8, 9],
                    imei_lock: true,
                    ..DeclaredProfile::default()
                },
                disabled_detectors: Vec::new(),
            }),
            Event::UpsertGroup(Group {
                id: "open".into(),
                tenant: "acme".into(),
                name: "Open".into(),
                profile: DeclaredProfile::default(),
                disabled_detectors: Vec::new(),
            }),
            Event::UpsertDevices(vec![
                DeviceRecord {
                    imsi: d(LOCKED),
                    iccid: None,
                    msisdn: None,
                    bound_imei: Some(d(BOUND_IMEI)),
                    tenant: "acme".into(),
                    group: "meters".into(),
                    lifecycle,
                    label: None,
                },
                DeviceRecord {
                    imsi: d(OPEN),
                    iccid: None,
                    msisdn: None,
                    bound_imei: Some(d(BOUND_IMEI)),
                    tenant: "acme".into(),
                    group: "open".into(),
                    lifecycle,
                    label: None,
                },
            ]),
        ];
        for (i, ev) in events.iter().enumerate() {
            e.apply(i as u64 + 1, ev, &mut out);
        }
        e
    }

    /// A request that passes every rule of the locked group.
    fn good(imsi: &str) -> AdmissionRequest {
        AdmissionRequest {
            imsi: d(imsi),
            imei: Some(d("3520990017614823")),
            network: Some(plmn("26201")),
            rat: Some(8),
        }
    }

    const OPEN_POLICY: AdmissionPolicy = AdmissionPolicy {
        reject_unprovisioned: false,
    };

    #[test]
    fn lifecycle_decides_when_the_profile_is_met() {
        for (state, want) in [
            (Lifecycle::Active, Decision::Accept(Grant::Active)),
            (Lifecycle::Throttled, Decision::Accept(Grant::Throttled)),
            (Lifecycle::Quarantined, Decision::Accept(Grant::Quarantined)),
            (Lifecycle::Blocked, Decision::Reject(RejectReason::Blocked)),
            (Lifecycle::Retired, Decision::Reject(RejectReason::Retired)),
        ] {
            let e = engine(state);
            assert_eq!(decide(&e, &good(LOCKED), OPEN_POLICY), want, "{state}");
            assert_eq!(decide(&e, &good(OPEN), OPEN_POLICY), want, "{state}");
        }
    }

    #[test]
    fn blocked_is_rejected_before_the_profile_is_looked_at() {
        let e = engine(Lifecycle::Blocked);
        let mut r = good(LOCKED);
        r.imei = Some(d("4901542032375181"));
        r.network = Some(plmn("310410"));
        assert_eq!(
            decide(&e, &r, OPEN_POLICY),
            Decision::Reject(RejectReason::Blocked)
        );
    }

    #[test]
    fn unprovisioned_follows_the_policy() {
        let e = engine(Lifecycle::Active);
        let r = good("901700000009999");
        assert_eq!(
            decide(&e, &r, OPEN_POLICY),
            Decision::Accept(Grant::Unprovisioned)
        );
        let strict = AdmissionPolicy {
            reject_unprovisioned: true,
        };
        assert_eq!(
            decide(&e, &r, strict),
            Decision::Reject(RejectReason::Unprovisioned)
        );
        // A provisioned SIM is unaffected by the policy.
        assert_eq!(
            decide(&e, &good(LOCKED), strict),
            Decision::Accept(Grant::Active)
        );
    }

    #[test]
    fn imei_lock_compares_the_first_14_digits() {
        let e = engine(Lifecycle::Throttled);
        let with = |imei: Option<&str>| {
            let mut r = good(LOCKED);
            r.imei = imei.map(d);
            decide(&e, &r, OPEN_POLICY)
        };
        // Same device, any software version, IMEI with or without check digit.
        assert_eq!(
            with(Some("3520990017614899")),
            Decision::Accept(Grant::Throttled)
        );
        assert_eq!(
            with(Some("352099001761481")),
            Decision::Accept(Grant::Throttled)
        );
        assert_eq!(
            with(Some("35209900176148")),
            Decision::Accept(Grant::Throttled)
        );
        // Another device: the 14th digit differs.
        assert_eq!(
            with(Some("3520990017614923")),
            Decision::Reject(RejectReason::ImeiMismatch {
                seen: d("3520990017614923")
            })
        );
        assert_eq!(
            with(Some("3520990017")),
            Decision::Reject(RejectReason::ImeiMismatch {
                seen: d("3520990017")
            })
        );
        assert_eq!(with(None), Decision::Reject(RejectReason::ImeiMissing));
        // Without the group's lock the bound IMEI is not enforced.
        let mut r = good(OPEN);
        r.imei = Some(d("4901542032375181"));
        assert_eq!(
            decide(&e, &r, OPEN_POLICY),
            Decision::Accept(Grant::Throttled)
        );
        r.imei = None;
        assert_eq!(
            decide(&e, &r, OPEN_POLICY),
            Decision::Accept(Grant::Throttled)
        );
    }

    #[test]
    fn serving_network_must_be_allowed_by_network_and_country() {
        let e = engine(Lifecycle::Active);
        let on = |net: Option<&str>| {
            let mut r = good(LOCKED);
            r.network = net.map(plmn);
            decide(&e, &r, OPEN_POLICY)
        };
        assert_eq!(on(Some("26202")), Decision::Accept(Grant::Active));
        // MNC digits matter: 262-001 is not 262-01.
        assert_eq!(
            on(Some("262001")),
            Decision::Reject(RejectReason::NetworkNotAllowed {
                network: plmn("262001")
            })
        );
        assert_eq!(
            on(Some("20801")),
            Decision::Reject(RejectReason::NetworkNotAllowed {
                network: plmn("20801")
            })
        );
        // In the network list but not in the country list (UK, not DE).
        assert_eq!(
            on(Some("23415")),
            Decision::Reject(RejectReason::CountryNotAllowed {
                network: plmn("23415"),
                country: Some("GB")
            })
        );
        assert_eq!(on(None), Decision::Reject(RejectReason::NetworkUnknown));
        // An open group admits any network, or none.
        let mut r = good(OPEN);
        r.network = Some(plmn("310410"));
        assert_eq!(decide(&e, &r, OPEN_POLICY), Decision::Accept(Grant::Active));
        r.network = None;
        assert_eq!(decide(&e, &r, OPEN_POLICY), Decision::Accept(Grant::Active));
    }

    #[test]
    fn rat_must_be_allowed() {
        let e = engine(Lifecycle::Quarantined);
        let mut r = good(LOCKED);
        r.rat = Some(9);
        assert_eq!(
            decide(&e, &r, OPEN_POLICY),
            Decision::Accept(Grant::Quarantined)
        );
        r.rat = Some(6);
        assert_eq!(
            decide(&e, &r, OPEN_POLICY),
            Decision::Reject(RejectReason::RatNotAllowed { rat: 6 })
        );
        r.rat = None;
        assert_eq!(
            decide(&e, &r, OPEN_POLICY),
            Decision::Reject(RejectReason::RatUnknown)
        );
    }

    #[test]
    fn reply_text_names_the_rule_and_not_the_bound_imei() {
        let t = RejectReason::ImeiMismatch {
            seen: d("3520990017614923"),
        }
        .to_string();
        assert!(
            t.contains("IMEI lock") && t.contains("3520990017614923"),
            "{t}"
        );
        assert!(!t.contains(BOUND_IMEI), "{t}");
        let t = RejectReason::CountryNotAllowed {
            network: plmn("23415"),
            country: Some("GB"),
        }
        .to_string();
        assert!(t.contains("234-15") && t.contains("GB"), "{t}");
        for r in [
            RejectReason::Blocked,
            RejectReason::RatUnknown,
            RejectReason::NetworkUnknown,
        ] {
            assert!(RejectReason::LABELS.contains(&r.as_str()));
            assert!(r.to_string().len() <= 253);
        }
    }
}
