//! What the ARM front door knows of each served resource type: its canonical casing and
//! its long-running-operation and etag styles (the api-versions are in `versions`).

use crate::local::keyvault;

/// Canonical casing of the types served here.
pub(crate) fn canonical(type_lower: &str) -> Option<&'static str> {
    Some(match type_lower {
        "microsoft.managedidentity/userassignedidentities" => "Microsoft.ManagedIdentity/userAssignedIdentities",
        "microsoft.compute/virtualmachines" => "Microsoft.Compute/virtualMachines",
        "microsoft.network/virtualnetworks" => "Microsoft.Network/virtualNetworks",
        "microsoft.network/virtualnetworks/subnets" => "Microsoft.Network/virtualNetworks/subnets",
        "microsoft.network/networksecuritygroups" => "Microsoft.Network/networkSecurityGroups",
        "microsoft.network/publicipaddresses" => "Microsoft.Network/publicIPAddresses",
        "microsoft.network/networkinterfaces" => "Microsoft.Network/networkInterfaces",
        "microsoft.storage/storageaccounts" => "Microsoft.Storage/storageAccounts",
        "microsoft.storage/storageaccounts/blobservices/containers" => {
            "Microsoft.Storage/storageAccounts/blobServices/containers"
        }
        "microsoft.sql/servers" => "Microsoft.Sql/servers",
        "microsoft.sql/servers/databases" => "Microsoft.Sql/servers/databases",
        "microsoft.sql/servers/administrators" => "Microsoft.Sql/servers/administrators",
        "microsoft.sql/servers/azureadonlyauthentications" => "Microsoft.Sql/servers/azureADOnlyAuthentications",
        "microsoft.datalakestore/accounts" => crate::local::datalake::TYPE,
        "microsoft.keyvault/vaults" => keyvault::VAULT_TYPE,
        "microsoft.keyvault/vaults/accesspolicies" => "Microsoft.KeyVault/vaults/accessPolicies",
        _ => return None,
    })
}

/// Types whose writes are long-running operations polled through `Azure-AsyncOperation`.
pub(crate) fn is_lro(type_lower: &str) -> bool {
    type_lower.starts_with("microsoft.compute/")
        || type_lower.starts_with("microsoft.network/")
        || type_lower == "microsoft.datalakestore/accounts"
}

/// Types that expose an `etag` and honour `If-Match`.
pub(crate) fn has_etag(type_lower: &str) -> bool {
    type_lower.starts_with("microsoft.compute/") || type_lower.starts_with("microsoft.network/")
}

/// Types whose every write answers 202 and is polled to its end (the SQL resource provider).
pub(crate) fn always_accepted(type_lower: &str) -> bool {
    type_lower.starts_with("microsoft.sql/")
}

pub(crate) fn display_type(type_lower: &str) -> String {
    let other = match type_lower {
        "microsoft.resources/resourcegroups" => Some("Microsoft.Resources/resourceGroups"),
        "microsoft.resources/subscriptions" => Some("Microsoft.Resources/subscriptions"),
        "microsoft.resources/resources" => Some("Microsoft.Resources/resources"),
        "microsoft.authorization/roleassignments" => Some("Microsoft.Authorization/roleAssignments"),
        "microsoft.authorization/roledefinitions" => Some("Microsoft.Authorization/roleDefinitions"),
        "microsoft.managedidentity/identities" => Some("Microsoft.ManagedIdentity/identities"),
        _ => None,
    };
    canonical(type_lower).or(other).map_or_else(|| type_lower.to_string(), str::to_string)
}
