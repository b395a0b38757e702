//! Subscription limits of the local cloud: `Microsoft.Compute/locations/{location}/usages` and
//! `…/vmSizes`, `Microsoft.Storage/locations/{location}/usages` (the storage spec's
//! `Usages_ListByLocation`) and `Microsoft.Authorization/roleAssignmentsUsageMetrics` (the
//! authorization spec's 2019-08-01-preview `RoleAssignmentMetrics_GetMetricsForSubscription`),
//! and the limits enforced on create (resource groups per subscription, storage
//! accounts per region, role assignments per subscription, regional and per-family vCPUs).
//! The limits and sizes are the rows of `table::quota`; a test lowers the limits through the
//! admin API (`/_idlab/quotas`).

use serde_json::{Value, json};

use crate::local::http::ArmError;
use crate::local::store::State;
use crate::local::table::quota::{Quotas, SIZES, Size};
use crate::local::table::{RESOURCE_GROUPS, ROLE_ASSIGNMENTS, STORAGE_ACCOUNTS, VIRTUAL_MACHINES};

fn find_size(name: &str) -> Option<&'static Size> {
    SIZES.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

fn same_location(a: &str, b: &str) -> bool {
    a.replace(' ', "").eq_ignore_ascii_case(&b.replace(' ', ""))
}

fn location_of(body: &Value) -> &str {
    body.get("location").and_then(Value::as_str).unwrap_or_default()
}

fn vm_size(body: &Value) -> &str {
    body.pointer("/properties/hardwareProfile/vmSize").and_then(Value::as_str).unwrap_or_default()
}

/// vCPUs in use in `location`: in total and per family, from the VMs the cloud holds.
fn vcpus_in_use(
    st: &State,
    location: &str,
    except: Option<&str>,
) -> (u64, std::collections::BTreeMap<&'static str, u64>) {
    let mut total = 0;
    let mut families = std::collections::BTreeMap::new();
    for r in st.resources.values() {
        if r.kind != VIRTUAL_MACHINES
            || !same_location(location_of(&r.body), location)
            || except.is_some_and(|e| e.eq_ignore_ascii_case(&r.id))
        {
            continue;
        }
        if let Some(s) = find_size(vm_size(&r.body)) {
            total += s.cores;
            *families.entry(s.family).or_insert(0) += s.cores;
        }
    }
    (total, families)
}

/// `GET …/providers/Microsoft.Compute/locations/{location}/usages`.
pub(crate) fn usages(st: &State, q: &Quotas, location: &str) -> Value {
    let (total, families) = vcpus_in_use(st, location, None);
    let vms = st
        .resources
        .values()
        .filter(|r| r.kind == VIRTUAL_MACHINES && same_location(location_of(&r.body), location))
        .count();
    let usage = |value: &str, label: &str, current: u64, limit: u64| json!({ "unit": "Count", "currentValue": current, "limit": limit, "name": { "value": value, "localizedValue": label } });
    let mut out = vec![
        usage("cores", "Total Regional vCPUs", total, q.regional_vcpus),
        usage("virtualMachines", "Virtual Machines", vms as u64, 25000),
    ];
    let mut seen: Vec<&str> = Vec::new();
    for s in SIZES {
        if !seen.contains(&s.family) {
            seen.push(s.family);
            out.push(usage(s.family, s.label, families.get(s.family).copied().unwrap_or(0), q.family_vcpus));
        }
    }
    json!({ "value": out })
}

/// `GET …/providers/Microsoft.Compute/locations/{location}/vmSizes`.
pub(crate) fn vm_sizes() -> Value {
    let value: Vec<Value> = SIZES
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "numberOfCores": s.cores,
                "osDiskSizeInMB": 1_047_552,
                "resourceDiskSizeInMB": s.cores * 8192,
                "memoryInMB": s.memory_mb,
                "maxDataDiskCount": s.cores * 2,
            })
        })
        .collect();
    json!({ "value": value })
}

/// The limits on a create (or a VM's resize) through the generic handler, by lower-cased type.
pub(crate) fn check_create(
    st: &State,
    q: &Quotas,
    sub: &str,
    type_lower: &str,
    id: &str,
    create: bool,
    body: &Value,
) -> Result<(), ArmError> {
    match type_lower {
        "microsoft.compute/virtualmachines" => check_vm(st, q, id, body),
        "microsoft.storage/storageaccounts" if create => check_storage(st, q, sub, body),
        _ => Ok(()),
    }
}

/// The answer to a listing the limits serve (`type_lower` is the lower-cased type under
/// `parent`): Compute's `locations/{location}/usages` and `…/vmSizes`, Storage's
/// `locations/{location}/usages`, the subscription's `roleAssignmentsUsageMetrics`; `None` for
/// another collection.
pub(crate) fn listing(st: &State, q: &Quotas, sub: &str, parent: &str, type_lower: &str) -> Option<Value> {
    let location = parent.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    match type_lower {
        "microsoft.compute/locations/usages" => Some(usages(st, q, location)),
        "microsoft.compute/locations/vmsizes" => Some(vm_sizes()),
        "microsoft.storage/locations/usages" => Some(storage_usages(st, q, location)),
        "microsoft.authorization/roleassignmentsusagemetrics" => Some(role_assignment_metrics(st, q, sub)),
        _ => None,
    }
}

fn storage_accounts_in(st: &State, location: &str) -> u64 {
    st.resources
        .values()
        .filter(|r| r.kind == STORAGE_ACCOUNTS && same_location(location_of(&r.body), location))
        .count() as u64
}

/// `GET …/providers/Microsoft.Storage/locations/{location}/usages`: the one entry Azure lists,
/// storage accounts in the region against the limit.
pub(crate) fn storage_usages(st: &State, q: &Quotas, location: &str) -> Value {
    json!({ "value": [{
        "unit": "Count",
        "currentValue": storage_accounts_in(st, location),
        "limit": q.storage_accounts_per_region,
        "name": { "value": "StorageAccounts", "localizedValue": "Storage Accounts" },
    }] })
}

/// `GET /subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignmentsUsageMetrics`.
pub(crate) fn role_assignment_metrics(st: &State, q: &Quotas, sub: &str) -> Value {
    let n = st.resources.values().filter(|r| r.kind == ROLE_ASSIGNMENTS).count() as u64;
    json!({
        "subscriptionId": sub,
        "roleAssignmentsLimit": q.role_assignments,
        "roleAssignmentsCurrentCount": n,
        "roleAssignmentsRemainingCount": q.role_assignments.saturating_sub(n),
    })
}

/// A resource group create beyond the limit: 400 `ResourceGroupQuotaExceeded`.
pub(crate) fn check_group(st: &State, q: &Quotas, sub: &str) -> Result<(), ArmError> {
    let n = st.resources.values().filter(|r| r.kind == RESOURCE_GROUPS).count() as u64;
    if n < q.resource_groups {
        return Ok(());
    }
    Err(ArmError::new(
        400,
        "ResourceGroupQuotaExceeded",
        format!(
            "Creation of this resource group would exceed the quota of {} resource groups in subscription '{sub}'. Please delete some resource groups before retrying.",
            q.resource_groups
        ),
    ))
}

/// A role assignment create beyond the limit: 400 `RoleAssignmentLimitExceeded`.
pub(crate) fn check_role_assignment(st: &State, q: &Quotas, sub: &str) -> Result<(), ArmError> {
    let n = st.resources.values().filter(|r| r.kind == ROLE_ASSIGNMENTS).count() as u64;
    if n < q.role_assignments {
        return Ok(());
    }
    Err(ArmError::new(
        400,
        "RoleAssignmentLimitExceeded",
        format!(
            "No more role assignments can be created in subscription '{sub}': it holds {n}, the limit is {}.",
            q.role_assignments
        ),
    ))
}

/// A storage account create beyond the limit of its region:
/// 400 `MaxStorageAccountsCountPerSubscriptionExceeded`.
pub(crate) fn check_storage(st: &State, q: &Quotas, sub: &str, body: &Value) -> Result<(), ArmError> {
    let location = location_of(body);
    let n = storage_accounts_in(st, location);
    if n < q.storage_accounts_per_region {
        return Ok(());
    }
    Err(ArmError::new(
        400,
        "MaxStorageAccountsCountPerSubscriptionExceeded",
        format!(
            "Subscription {sub} already contains {n} storage accounts in location {location} and the maximum allowed is {}.",
            q.storage_accounts_per_region
        ),
    ))
}

/// A VM create or resize beyond the regional or family vCPUs: 409 `OperationNotAllowed`.
pub(crate) fn check_vm(st: &State, q: &Quotas, id: &str, body: &Value) -> Result<(), ArmError> {
    let Some(s) = find_size(vm_size(body)) else { return Ok(()) };
    let location = location_of(body);
    let (total, families) = vcpus_in_use(st, location, Some(id));
    let family_used = families.get(s.family).copied().unwrap_or(0);
    let over = if total + s.cores > q.regional_vcpus {
        Some(("Total Regional Cores", q.regional_vcpus, total))
    } else if family_used + s.cores > q.family_vcpus {
        Some((s.family, q.family_vcpus, family_used))
    } else {
        None
    };
    let Some((name, limit, used)) = over else { return Ok(()) };
    Err(ArmError::new(
        409,
        "OperationNotAllowed",
        format!(
            "Operation could not be completed as it results in exceeding approved {name} quota. Additional details - Deployment Model: Resource Manager, Location: {location}, Current Limit: {limit}, Current Usage: {used}, Additional Required: {}, (Minimum) New Limit Required: {}.",
            s.cores,
            used + s.cores
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_has_cores_and_a_family_that_usages_lists() {
        let u = usages(&State::default(), &Quotas::default(), "eastus");
        let names: Vec<&str> =
            u["value"].as_array().unwrap().iter().filter_map(|v| v.pointer("/name/value")?.as_str()).collect();
        for s in SIZES {
            assert!(s.cores > 0);
            assert!(names.contains(&s.family), "{}", s.family);
        }
        assert_eq!(u["value"][0]["limit"], 350);
    }
}
