//! The provider table: every ARM resource type the local cloud serves, listed once, with
//! the methods it answers, its long-running-operation style, whether it has an etag and
//! which handler serves it. The front door (`arm`) and the generic handlers
//! (`providers::generic`) read it; the api-versions each type accepts are in `versions`,
//! keyed by the same type. A type not listed answers 404 `InvalidResourceType` (or 400
//! `NoRegisteredProviderFound` when its namespace is not served at all).

/// How writes of a type complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lro {
    /// Synchronous: 200 or 201 (a storage account's create is the one `Location` 202).
    None,
    /// `Azure-AsyncOperation` (compute, network, Data Lake Store).
    AsyncOperation,
    /// Every write answers 202 and is polled to its end (the SQL resource provider).
    Accepted,
}

/// Which handler serves a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `providers::generic`: create, read, update, delete of a tracked or proxy resource,
    /// with the family's preparation of the body.
    Generic,
    /// `providers::network::subnet`: a view of its virtual network.
    Subnet,
    /// `providers::sql::sql_server_setting`: a view of its server.
    SqlSetting,
    /// `providers::keyvault::access_policies`: an update of its vault.
    AccessPolicies,
    /// `providers::blob_service`: an account's blob service (`default`), a view of its account.
    BlobService,
}

/// One served resource type.
#[derive(Debug)]
pub struct Provider {
    /// The canonical casing (`Microsoft.Network/virtualNetworks`).
    pub type_name: &'static str,
    pub methods: &'static [&'static str],
    /// The api-versions it accepts (every one Azure publishes for it).
    pub versions: fn() -> &'static [&'static str],
    pub lro: Lro,
    /// Exposes an `etag` and honours `If-Match` / `If-None-Match`.
    pub etag: bool,
    pub handler: Handler,
}

pub mod names;
pub mod quota;
pub mod versions;

pub(crate) use versions::CAN_DELEGATE;
pub use versions::listing;

const CRUD: &[&str] = &["GET", "PUT", "PATCH", "DELETE"];

/// A view of its parent (subnets, SQL settings, access policies): fewer methods.
const VIEW: &[&str] = &["GET", "PUT", "DELETE"];

/// Type names the rest of the local cloud refers to (served types and the front door's
/// own routes); the entries below use the same constants.
pub const SUBSCRIPTIONS: &str = "Microsoft.Resources/subscriptions";
pub const TENANTS: &str = "Microsoft.Resources/tenants";
/// Resource providers (`/subscriptions/{s}/providers`) and their registration.
pub const PROVIDERS: &str = "Microsoft.Resources/providers";
pub const RESOURCE_GROUPS: &str = "Microsoft.Resources/resourceGroups";
pub const RESOURCES: &str = "Microsoft.Resources/resources";
pub const ROLE_ASSIGNMENTS: &str = "Microsoft.Authorization/roleAssignments";
pub const ROLE_DEFINITIONS: &str = "Microsoft.Authorization/roleDefinitions";
pub const IDENTITIES: &str = "Microsoft.ManagedIdentity/identities";
pub const FEDERATED_CREDENTIALS: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials";
pub const VIRTUAL_MACHINES: &str = "Microsoft.Compute/virtualMachines";
pub const DISKS: &str = "Microsoft.Compute/disks";
pub const VM_EXTENSIONS: &str = "Microsoft.Compute/virtualMachines/extensions";
pub const STORAGE_ACCOUNTS: &str = "Microsoft.Storage/storageAccounts";
pub const BLOB_SERVICES: &str = "Microsoft.Storage/storageAccounts/blobServices";
pub const CONTAINERS: &str = "Microsoft.Storage/storageAccounts/blobServices/containers";
pub const SQL_SERVERS: &str = "Microsoft.Sql/servers";
pub const SQL_ADMINISTRATORS: &str = "Microsoft.Sql/servers/administrators";
pub const SQL_ENTRA_ONLY: &str = "Microsoft.Sql/servers/azureADOnlyAuthentications";
pub const DATA_LAKE_STORES: &str = "Microsoft.DataLakeStore/accounts";
pub const VAULTS: &str = "Microsoft.KeyVault/vaults";
pub const DELETED_VAULTS: &str = "Microsoft.KeyVault/deletedVaults";
pub const LOCATION_DELETED_VAULTS: &str = "Microsoft.KeyVault/locations/deletedVaults";
/// What a resource group's actions start with (`…/read`, `…/write`, `…/delete`).
pub const RESOURCE_GROUP_ACTIONS: &str = "Microsoft.Resources/subscriptions/resourceGroups";

type Versions = fn() -> &'static [&'static str];

const fn entry(type_name: &'static str, versions: Versions, lro: Lro, etag: bool, handler: Handler) -> Provider {
    with(type_name, CRUD, versions, lro, etag, handler)
}

const fn with(
    type_name: &'static str,
    methods: &'static [&'static str],
    versions: Versions,
    lro: Lro,
    etag: bool,
    handler: Handler,
) -> Provider {
    Provider { type_name, methods, versions, lro, etag, handler }
}

/// The served types.
pub const TABLE: &[Provider] = &[
    entry("Microsoft.ManagedIdentity/userAssignedIdentities", || versions::MSI, Lro::None, false, Handler::Generic),
    with(FEDERATED_CREDENTIALS, VIEW, || versions::FEDERATED, Lro::None, false, Handler::Generic),
    entry(VIRTUAL_MACHINES, || versions::COMPUTE, Lro::AsyncOperation, true, Handler::Generic),
    entry(DISKS, || versions::DISKS, Lro::AsyncOperation, false, Handler::Generic),
    entry(VM_EXTENSIONS, || versions::COMPUTE, Lro::AsyncOperation, false, Handler::Generic),
    entry("Microsoft.Network/virtualNetworks", || versions::NETWORK, Lro::AsyncOperation, true, Handler::Generic),
    with(
        "Microsoft.Network/virtualNetworks/subnets",
        VIEW,
        || versions::NETWORK,
        Lro::AsyncOperation,
        true,
        Handler::Subnet,
    ),
    entry("Microsoft.Network/networkSecurityGroups", || versions::NETWORK, Lro::AsyncOperation, true, Handler::Generic),
    entry("Microsoft.Network/publicIPAddresses", || versions::NETWORK, Lro::AsyncOperation, true, Handler::Generic),
    entry("Microsoft.Network/networkInterfaces", || versions::NETWORK, Lro::AsyncOperation, true, Handler::Generic),
    entry(STORAGE_ACCOUNTS, || versions::STORAGE, Lro::None, false, Handler::Generic),
    with(BLOB_SERVICES, &["GET", "PUT"], || versions::STORAGE, Lro::None, false, Handler::BlobService),
    entry(
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        || versions::STORAGE,
        Lro::None,
        false,
        Handler::Generic,
    ),
    entry(
        "Microsoft.Sql/servers",
        || versions::sql("microsoft.sql/servers").unwrap_or_default(),
        Lro::Accepted,
        false,
        Handler::Generic,
    ),
    entry(
        "Microsoft.Sql/servers/databases",
        || versions::sql("microsoft.sql/servers/databases").unwrap_or_default(),
        Lro::Accepted,
        false,
        Handler::Generic,
    ),
    with(
        "Microsoft.Sql/servers/administrators",
        VIEW,
        || versions::sql("microsoft.sql/servers/administrators").unwrap_or_default(),
        Lro::Accepted,
        false,
        Handler::SqlSetting,
    ),
    with(
        "Microsoft.Sql/servers/azureADOnlyAuthentications",
        VIEW,
        || versions::sql("microsoft.sql/servers/azureadonlyauthentications").unwrap_or_default(),
        Lro::Accepted,
        false,
        Handler::SqlSetting,
    ),
    entry(
        "Microsoft.DataLakeStore/accounts",
        || versions::DATA_LAKE_STORE,
        Lro::AsyncOperation,
        false,
        Handler::Generic,
    ),
    entry(VAULTS, || versions::KEYVAULT, Lro::None, false, Handler::Generic),
    with(
        "Microsoft.KeyVault/vaults/accessPolicies",
        &["PUT"],
        || &versions::KEYVAULT[1..],
        Lro::None,
        false,
        Handler::AccessPolicies,
    ),
];

/// The accepted versions for a (lower-cased) type, or `None` for a type the local cloud does
/// not serve.
pub fn accepted(type_lower: &str) -> Option<&'static [&'static str]> {
    if let Some(p) = provider(type_lower) {
        return Some((p.versions)());
    }
    // The front door's own routes, collections and actions.
    Some(match type_lower {
        "microsoft.resources/resourcegroups"
        | "microsoft.resources/resources"
        | "microsoft.resources/tags"
        | "microsoft.resources/providers" => versions::RESOURCES,
        "microsoft.resources/subscriptions" | "microsoft.resources/tenants" => versions::SUBSCRIPTIONS,
        "microsoft.managedidentity/identities" => versions::MSI,
        "microsoft.network/virtualnetworks/checkipaddressavailability" => versions::NETWORK,
        "microsoft.datalakestore/accounts/enablekeyvault" => versions::DATA_LAKE_STORE,
        "microsoft.compute/locations/operations" | "microsoft.compute/virtualmachines/runcommand" => versions::COMPUTE,
        // Usages and VM sizes (the Compute spec's `locations/{location}/usages` and `vmSizes`).
        "microsoft.compute/locations/usages" | "microsoft.compute/locations/vmsizes" => versions::COMPUTE,
        "microsoft.authorization/roleassignments" => versions::ROLE_ASSIGNMENTS,
        // The limits (providers::quota): the storage spec's and the authorization spec's.
        "microsoft.storage/locations/usages" => versions::STORAGE,
        "microsoft.authorization/roleassignmentsusagemetrics" => &["2019-08-01-preview"],
        "microsoft.authorization/roledefinitions" => versions::ROLE_DEFINITIONS,
        "microsoft.storage/checknameavailability"
        | "microsoft.storage/storageaccounts/listkeys"
        | "microsoft.storage/storageaccounts/listservicesas" => versions::STORAGE,
        t if t.starts_with("microsoft.sql/") => return versions::sql(t),
        "microsoft.keyvault/checknameavailability" => versions::KEYVAULT,
        // Deleted vaults and access-policy updates first appear in 2016-10-01.
        "microsoft.keyvault/deletedvaults"
        | "microsoft.keyvault/locations/deletedvaults"
        | "microsoft.keyvault/locations/deletedvaults/purge" => &versions::KEYVAULT[1..],
        _ => return None,
    })
}

/// The action a POST to `…/providers/{type}` (lower case) requires at its parent; `None`
/// when it requires none (storage's and Key Vault's name checks) or is not served.
pub(crate) fn post_action(type_lower: &str) -> Option<&'static str> {
    match type_lower {
        "microsoft.sql/checknameavailability" => Some("Microsoft.Sql/checkNameAvailability/action"),
        "microsoft.keyvault/locations/deletedvaults/purge" => {
            Some("Microsoft.KeyVault/locations/deletedVaults/purge/action")
        }
        "microsoft.compute/virtualmachines/runcommand" => Some("Microsoft.Compute/virtualMachines/runCommand/action"),
        "microsoft.datalakestore/accounts/enablekeyvault" => {
            Some("Microsoft.DataLakeStore/accounts/enableKeyVault/action")
        }
        _ if type_lower.starts_with("microsoft.storage/storageaccounts/") => {
            match type_lower.rsplit('/').next().unwrap_or_default() {
                "listkeys" => Some("Microsoft.Storage/storageAccounts/listkeys/action"),
                "listservicesas" => Some("Microsoft.Storage/storageAccounts/ListServiceSas/action"),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The entry of a type, in any casing.
pub fn provider(type_name: &str) -> Option<&'static Provider> {
    TABLE.iter().find(|p| p.type_name.eq_ignore_ascii_case(type_name))
}

/// Canonical casing of the types served here.
pub(crate) fn canonical(type_lower: &str) -> Option<&'static str> {
    provider(type_lower).map(|p| p.type_name)
}

/// Types whose writes are long-running operations polled through `Azure-AsyncOperation`.
pub(crate) fn is_lro(type_lower: &str) -> bool {
    provider(type_lower).is_some_and(|p| p.lro == Lro::AsyncOperation)
}

/// Types whose long-running delete ends its `Location` poll with 204 and no body: Network's
/// (its `operationResults`, recording TestVirtualNetworkCRUD.json).
pub(crate) fn delete_ends_with_no_content(type_lower: &str) -> bool {
    type_lower.starts_with("microsoft.network/")
}

/// Types whose delete of an existing resource always answers 202 with `Azure-AsyncOperation`,
/// `Location` and `Retry-After`, even when it ends at once: Network's (every recorded delete,
/// `TestNetworkInterfaceCRUD.json` and the others) and a virtual machine's
/// (`compute/TestVMForceDelete.json`: 202, both headers, `Retry-After: 10`; the
/// `Azure-AsyncOperation` poll ends `Succeeded`, the `Location` poll 200 with no body).
pub(crate) fn delete_always_accepted(type_lower: &str) -> bool {
    type_lower.starts_with("microsoft.network/") || type_lower == "microsoft.compute/virtualmachines"
}

/// Types that expose an `etag` and honour `If-Match`.
pub(crate) fn has_etag(type_lower: &str) -> bool {
    provider(type_lower).is_some_and(|p| p.etag)
}

/// Types whose every write answers 202 and is polled to its end (the SQL resource provider).
pub(crate) fn always_accepted(type_lower: &str) -> bool {
    provider(type_lower).is_some_and(|p| p.lro == Lro::Accepted)
}

/// The canonical casing of a type for messages: a served type, one of the front door's own
/// routes, or the type as given.
pub(crate) fn display_type(type_lower: &str) -> String {
    let other = match type_lower {
        "microsoft.resources/resourcegroups" => Some(RESOURCE_GROUPS),
        "microsoft.resources/subscriptions" => Some(SUBSCRIPTIONS),
        "microsoft.resources/resources" => Some(RESOURCES),
        "microsoft.authorization/roleassignments" => Some(ROLE_ASSIGNMENTS),
        "microsoft.authorization/roledefinitions" => Some(ROLE_DEFINITIONS),
        "microsoft.managedidentity/identities" => Some(IDENTITIES),
        _ => None,
    };
    canonical(type_lower).or(other).map_or_else(|| type_lower.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_sets_follow_the_contract() {
        let servers = accepted("microsoft.sql/servers").unwrap_or_default();
        assert!(servers.contains(&"2023-08-01") && servers.contains(&"2015-05-01-preview"));
        let dbs = accepted("microsoft.sql/servers/databases").unwrap_or_default();
        assert!(dbs.contains(&"2017-10-01-preview") && !dbs.contains(&"2015-05-01-preview"));
        let admins = accepted("microsoft.sql/servers/administrators").unwrap_or_default();
        assert!(admins.contains(&"2018-06-01-preview") && admins.contains(&"2014-04-01"));
        let only = accepted("microsoft.sql/servers/azureadonlyauthentications").unwrap_or_default();
        assert!(only.contains(&"2020-02-02-preview") && only.contains(&"2023-08-01"));
        assert!(!only.contains(&"2019-06-01-preview") && !only.contains(&"2014-04-01"));
        assert!(accepted("microsoft.sql/servers/firewallrules").is_none());
    }
}
