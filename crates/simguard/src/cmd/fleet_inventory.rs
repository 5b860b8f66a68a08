//! The inventory that goes with a simulated fleet: one tenant and device
//! group per profile, with the group's declared behaviour.

use crate::client::ApiClient;
use anyhow::Result;
use simguard_server::api::DeviceInput;
use simguard_sim::{Profile, SimDevice};

/// (tenant id, tenant name, group id, group name) of a profile; the table lives in
/// the simulator so that its attack labels name the same groups.
pub fn placement(p: Profile) -> (&'static str, &'static str, &'static str, &'static str) {
    let x = simguard_sim::placement(p);
    (x.tenant, x.tenant_name, x.group, x.group_name)
}

/// Creates the tenants and groups, then the provisioned devices of the fleet.
pub async fn provision(api: &ApiClient, fleet: &[SimDevice]) -> Result<usize> {
    provision_with(api, fleet, &[]).await
}

/// The inventory of an attack-lab scenario: as [`provision`], with every
/// group allowed only the countries where the scenario's fleet lives and
/// travels (so that roaming elsewhere is a finding).
pub async fn provision_scenario(
    api: &ApiClient,
    _scenario: &simguard_sim::Scenario,
    fleet: &[SimDevice],
) -> Result<usize> {
    provision_with(api, fleet, &simguard_sim::ALLOWED_COUNTRIES).await
}

/// [`provision`] with the groups' allowed countries (empty: anywhere).
pub async fn provision_with(
    api: &ApiClient,
    fleet: &[SimDevice],
    allowed_countries: &[&str],
) -> Result<usize> {
    for p in Profile::ALL {
        let (tenant, tenant_name, group, group_name) = placement(p);
        api.send(
            reqwest::Method::PUT,
            &format!("/api/v1/tenants/{tenant}"),
            &serde_json::json!({ "name": tenant_name }),
        )
        .await?;
        api.send(
            reqwest::Method::PUT,
            &format!("/api/v1/groups/{group}"),
            &serde_json::json!({
                "tenant": tenant,
                "name": group_name,
                "profile": {
                    "report_interval_secs": p.report_interval_secs(),
                    // Declared volume with headroom over the profile's mean.
                    "max_bytes_per_day": p.expected_bytes_per_day() * 3,
                    "imei_lock": matches!(p, Profile::SmartMeter | Profile::PatientMonitor),
                    "allowed_countries": allowed_countries,
                }
            }),
        )
        .await?;
    }
    // Meters may talk only to their head-ends (HTTPS), NTP and the vendor's
    // firmware server: anything else from a meter is a policy violation.
    let (_, _, meters, _) = placement(Profile::SmartMeter);
    api.send(
        reqwest::Method::PUT,
        &format!("/api/v1/groups/{meters}/policy"),
        &serde_json::json!({
            "default_action": "deny",
            "rules": [
                { "cidr": "198.51.100.10/31", "proto": "tcp", "ports": [[443, 443]], "direction": "both", "action": "allow" },
                { "cidr": "198.51.100.123/32", "proto": "udp", "ports": [[123, 123]], "direction": "both", "action": "allow" },
                { "cidr": format!("{}/32", simguard_sim::FIRMWARE_SERVER), "proto": "tcp", "ports": [[443, 443]], "direction": "both", "action": "allow" }
            ]
        }),
    )
    .await?;
    let devices: Vec<DeviceInput> = fleet
        .iter()
        .filter(|d| d.provisioned)
        .map(|d| {
            let (tenant, _, group, _) = placement(d.profile);
            DeviceInput {
                imsi: d.imsi.clone(),
                iccid: Some(d.iccid.clone()),
                msisdn: Some(d.msisdn.clone()),
                imei: Some(d.imei()),
                tenant: tenant.into(),
                group: group.into(),
                lifecycle: None,
                label: Some(format!("{} #{}", d.profile, d.index)),
            }
        })
        .collect();
    for chunk in devices.chunks(5000) {
        api.send(
            reqwest::Method::POST,
            "/api/v1/devices",
            &serde_json::json!({ "devices": chunk }),
        )
        .await?;
    }
    Ok(devices.len())
}
