//! The pre-flight quota check of a fleet apply: before any write, whether the subscription can
//! hold what the instances create. Limits are the ones Azure documents ("Azure subscription
//! and service limits", Microsoft Learn): 980 resource groups per subscription, 250 storage
//! accounts per region per subscription, 4,000 role assignments per subscription; vCPUs per
//! region from `Microsoft.Compute/locations/{location}/usages` (the `cores` entry, total
//! regional vCPUs) and the entry of each size's family (`standardBSFamily`), with `vmSizes` for
//! the cores of each size. Current counts come from one
//! listing each.
//!
//! Imports: arm, kinds (the demand of a declaration). No printing.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::arm::{Client, Error};
use crate::kinds::instance::Demand;

/// Azure's documented limits, overridable for tests through `IDLAB_QUOTA_LIMITS`
/// (`resource_groups=3,storage_accounts=250,role_assignments=4000`; documented as test-only).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub resource_groups: u64,
    pub storage_accounts_per_region: u64,
    pub role_assignments: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { resource_groups: 980, storage_accounts_per_region: 250, role_assignments: 4000 }
    }
}

impl Limits {
    /// The documented limits, with the test-only overrides of `IDLAB_QUOTA_LIMITS`.
    pub fn from_env() -> Limits {
        let mut l = Limits::default();
        for pair in std::env::var("IDLAB_QUOTA_LIMITS").unwrap_or_default().split(',') {
            let Some((k, v)) = pair.split_once('=') else { continue };
            let Ok(v) = v.trim().parse::<u64>() else { continue };
            match k.trim() {
                "resource_groups" => l.resource_groups = v,
                "storage_accounts" => l.storage_accounts_per_region = v,
                "role_assignments" => l.role_assignments = v,
                _ => {}
            }
        }
        l
    }
}

/// One limit the fleet does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The limit, as Azure names it.
    pub limit: String,
    /// Where it applies: the subscription or a region.
    pub scope: String,
    pub used: u64,
    pub wanted: u64,
    pub max: u64,
}

const COMPUTE_API: &str = "2024-07-01";

/// Check `demands` (everything the fleet creates) against the subscription's limits.
///
/// # Errors
/// A listing failed.
pub async fn check(client: &Client, sub: &str, demands: &[Demand], limits: &Limits) -> Result<Vec<Shortfall>, Error> {
    let mut out = Vec::new();
    let count = |f: &dyn Fn(&Demand) -> bool| demands.iter().filter(|d| f(d)).count() as u64;
    let groups = count(&|d| *d == Demand::ResourceGroup);
    if groups > 0 {
        let used = client.list(&format!("/subscriptions/{sub}/resourcegroups"), "2024-11-01").await?.len() as u64;
        push(&mut out, "Resource groups per subscription", "subscription", used, groups, limits.resource_groups);
    }
    let mut accounts: BTreeMap<String, u64> = BTreeMap::new();
    for d in demands {
        if let Demand::StorageAccount { location } = d {
            *accounts.entry(location.to_ascii_lowercase()).or_default() += 1;
        }
    }
    if !accounts.is_empty() {
        let filter = "$filter=resourceType%20eq%20'Microsoft.Storage/storageAccounts'";
        let all = client.list(&format!("/subscriptions/{sub}/resources?{filter}"), "2021-04-01").await?;
        for (location, wanted) in accounts {
            let used = all
                .iter()
                .filter(|r| {
                    r.get("location").and_then(Value::as_str).is_some_and(|l| l.eq_ignore_ascii_case(&location))
                })
                .count() as u64;
            push(
                &mut out,
                "Storage accounts per region per subscription",
                &location,
                used,
                wanted,
                limits.storage_accounts_per_region,
            );
        }
    }
    let assignments = count(&|d| *d == Demand::RoleAssignment);
    if assignments > 0 {
        let path = format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments");
        let used = client.list(&path, "2022-04-01").await?.len() as u64;
        push(&mut out, "Role assignments per subscription", "subscription", used, assignments, limits.role_assignments);
    }
    let mut vms: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for d in demands {
        if let Demand::Vm { location, size } = d {
            vms.entry(location.to_ascii_lowercase()).or_default().push(size);
        }
    }
    for (location, sizes) in vms {
        let base = format!("/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}");
        // A cloud that serves no usages (the local cloud) has no vCPU quota to check.
        let (Ok(usages), Ok(catalogue)) = (
            client.list(&format!("{base}/usages"), COMPUTE_API).await,
            client.list(&format!("{base}/vmSizes"), COMPUTE_API).await,
        ) else {
            continue;
        };
        let cores = |size: &str| {
            catalogue
                .iter()
                .find(|s| s.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(size)))
                .and_then(|s| s.get("numberOfCores").and_then(Value::as_u64))
                .unwrap_or(0)
        };
        let wanted: u64 = sizes.iter().map(|s| cores(s)).sum();
        let usage = |name: &str| {
            usages.iter().find(|u| {
                u.pointer("/name/value").and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(name))
            })
        };
        let mut check = |u: &Value, wanted: u64| {
            let used = u.get("currentValue").and_then(Value::as_u64).unwrap_or(0);
            let max = u.get("limit").and_then(Value::as_u64).unwrap_or(u64::MAX);
            let label = u
                .pointer("/name/localizedValue")
                .or_else(|| u.pointer("/name/value"))
                .and_then(Value::as_str)
                .unwrap_or("vCPUs");
            push(&mut out, label, &location, used, wanted, max);
        };
        if let Some(total) = usage("cores") {
            check(total, wanted);
        }
        let mut families: BTreeMap<String, u64> = BTreeMap::new();
        for s in &sizes {
            *families.entry(family(s)).or_default() += cores(s);
        }
        for (f, wanted) in families {
            if let Some(u) = usage(&f) {
                check(u, wanted);
            }
        }
    }
    Ok(out)
}

/// The usage name of a size's vCPU quota, from the size's name as Azure forms it:
/// `Standard_D2s_v3` → `standardDSv3Family`, `Standard_B2ms` → `standardBSFamily`,
/// `Standard_DS3_v2` → `standardDSv2Family`, `Standard_D2ads_v5` → `standardDADSv5Family`.
fn family(size: &str) -> String {
    let rest = size.strip_prefix("Standard_").or_else(|| size.strip_prefix("standard_")).unwrap_or(size);
    let (core, version) = rest.split_once('_').unwrap_or((rest, ""));
    let series: String = core.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_uppercase();
    let mut features: String = core
        .chars()
        .skip_while(|c| c.is_ascii_alphabetic())
        .skip_while(char::is_ascii_digit)
        .filter(|c| matches!(c.to_ascii_lowercase(), 'a' | 'd' | 's'))
        .collect::<String>()
        .to_ascii_uppercase();
    if series.ends_with('S') && features == "S" {
        features.clear();
    }
    format!("standard{series}{features}{version}Family")
}

fn push(out: &mut Vec<Shortfall>, limit: &str, scope: &str, used: u64, wanted: u64, max: u64) {
    if used.saturating_add(wanted) > max {
        out.push(Shortfall { limit: limit.into(), scope: scope.into(), used, wanted, max });
    }
}

#[cfg(test)]
mod tests {
    use super::family;

    #[test]
    fn a_size_names_its_family_quota_as_azure_does() {
        assert_eq!(family("Standard_B2s"), "standardBSFamily");
        assert_eq!(family("Standard_B2ms"), "standardBSFamily");
        assert_eq!(family("Standard_D2s_v3"), "standardDSv3Family");
        assert_eq!(family("Standard_DS3_v2"), "standardDSv2Family");
        assert_eq!(family("Standard_D1_v2"), "standardDv2Family");
        assert_eq!(family("Standard_D2ads_v5"), "standardDADSv5Family");
    }
}
