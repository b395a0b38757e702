//! The pre-flight quota check of a fleet apply: before any write, whether the subscription can
//! hold what the instances create. Each limit is read where Azure exposes it, else Azure's
//! documented default ("Azure subscription and service limits", Microsoft Learn):
//!
//! - resource groups per subscription: 980, documented (no API exposes it); in use from the
//!   listing of groups;
//! - storage accounts per region: `Microsoft.Storage/locations/{location}/usages` (the
//!   `StorageAccounts` entry: `currentValue` and `limit`), else 250 and a listing;
//! - role assignments per subscription: `Microsoft.Authorization/roleAssignmentsUsageMetrics`
//!   (`roleAssignmentsCurrentCount` and `roleAssignmentsLimit`), else 4,000 and a listing;
//! - vCPUs per region and per family: `Microsoft.Compute/locations/{location}/usages` (`cores`
//!   and the entry of each size's family, `standardBSFamily`), with `vmSizes` for the cores of
//!   each size; skipped where no `usages` is served.
//!
//! Imports: arm, kinds (the demand of a declaration). No printing.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::arm::{Client, Error};
use crate::kinds::instance::Demand;

/// Azure's documented limits, used where no API answers with the subscription's own.
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
const STORAGE_API: &str = "2023-05-01";
/// The only version of the role-assignment usage metrics (a preview, as Azure serves it).
const METRICS_API: &str = "2019-08-01-preview";

/// What a usage read answered: (in use, limit), or `None` when the cloud does not serve it
/// (an error other than a refusal to list is still an error).
fn usage_of(list: &[Value], name: &str) -> Option<(u64, u64)> {
    let u = list
        .iter()
        .find(|u| u.pointer("/name/value").and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(name)))?;
    Some((u.get("currentValue").and_then(Value::as_u64)?, u.get("limit").and_then(Value::as_u64)?))
}

/// Whether a read failed because the cloud does not serve it (Azure's answer for an unknown
/// route or version), so the documented default applies.
fn unserved(e: &Error) -> bool {
    matches!(e.status, Some(400 | 404))
}

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
        let mut listed: Option<Vec<Value>> = None;
        for (location, wanted) in accounts {
            let path = format!("/subscriptions/{sub}/providers/Microsoft.Storage/locations/{location}/usages");
            let served = match client.list(&path, STORAGE_API).await {
                Ok(list) => usage_of(&list, "StorageAccounts"),
                Err(e) if unserved(&e) => None,
                Err(e) => return Err(e),
            };
            let (used, max) = match served {
                Some(u) => u,
                None => {
                    if listed.is_none() {
                        let filter = "$filter=resourceType%20eq%20'Microsoft.Storage/storageAccounts'";
                        listed =
                            Some(client.list(&format!("/subscriptions/{sub}/resources?{filter}"), "2024-11-01").await?);
                    }
                    let used = listed
                        .iter()
                        .flatten()
                        .filter(|r| {
                            r.get("location").and_then(Value::as_str).is_some_and(|l| l.eq_ignore_ascii_case(&location))
                        })
                        .count() as u64;
                    (used, limits.storage_accounts_per_region)
                }
            };
            push(&mut out, "Storage accounts per region per subscription", &location, used, wanted, max);
        }
    }
    let assignments = count(&|d| *d == Demand::RoleAssignment);
    if assignments > 0 {
        let metrics = format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignmentsUsageMetrics");
        let served = match client.get(&metrics, METRICS_API).await {
            Ok(Some(m)) => m
                .get("roleAssignmentsCurrentCount")
                .and_then(Value::as_u64)
                .zip(m.get("roleAssignmentsLimit").and_then(Value::as_u64)),
            Ok(None) => None,
            Err(e) if unserved(&e) => None,
            Err(e) => return Err(e),
        };
        let (used, max) = match served {
            Some(u) => u,
            None => {
                let path = format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments");
                (client.list(&path, "2022-04-01").await?.len() as u64, limits.role_assignments)
            }
        };
        push(&mut out, "Role assignments per subscription", "subscription", used, assignments, max);
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
