//! The table of Azure built-in roles idlab knows: name, GUID, actions and data actions.
//!
//! A leaf shared by the client side (plan validation, role-definition ids) and the local
//! cloud (RBAC evaluation), so each keeps the other honest. GUIDs are global in Azure.
//! Source: `arm-contract.md` §4.
//!
//! Imports: nothing. No I/O.

/// One built-in role definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    pub name: &'static str,
    pub guid: &'static str,
    pub description: &'static str,
    pub actions: &'static [&'static str],
    pub not_actions: &'static [&'static str],
    pub data_actions: &'static [&'static str],
    pub not_data_actions: &'static [&'static str],
}

/// Every built-in role idlab knows, sorted by name.
pub const BUILT_IN: &[Role] = &[
    Role {
        name: "Contributor",
        guid: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ],
        data_actions: &[],
        not_data_actions: &[],
    },
    Role {
        name: "Key Vault Reader",
        guid: "21090545-7ca7-4776-b22c-e363652d74d2",
        description: "Read metadata of key vaults and its certificates, keys, and secrets.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
            "Microsoft.KeyVault/checkNameAvailability/read",
            "Microsoft.KeyVault/deletedVaults/read",
            "Microsoft.KeyVault/locations/*/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/operations/read",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"],
        not_data_actions: &[],
    },
    Role {
        name: "Key Vault Secrets Officer",
        guid: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        description: "Perform any action on the secrets of a key vault, except manage permissions.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
            "Microsoft.KeyVault/checkNameAvailability/read",
            "Microsoft.KeyVault/deletedVaults/read",
            "Microsoft.KeyVault/locations/*/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/operations/read",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.KeyVault/vaults/secrets/*"],
        not_data_actions: &[],
    },
    Role {
        name: "Key Vault Secrets User",
        guid: "4633458b-17de-408a-b874-0445c86b69e6",
        description: "Read secret contents.",
        actions: &[],
        not_actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
        not_data_actions: &[],
    },
    Role {
        name: "Owner",
        guid: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    Role {
        name: "Reader",
        guid: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        description: "View all resources, but does not allow you to make any changes.",
        actions: &["*/read"],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    Role {
        name: "Reader and Data Access",
        guid: "c12c1c16-33a1-487b-954d-41c89c60f349",
        description: "Lets you view everything but will not let you delete or create a storage account or contained resource. It will also allow read/write access to all data contained in a storage account via access to storage account keys.",
        actions: &[
            "Microsoft.Storage/storageAccounts/listKeys/action",
            "Microsoft.Storage/storageAccounts/ListAccountSas/action",
            "Microsoft.Storage/storageAccounts/read",
        ],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    Role {
        name: "Storage Account Contributor",
        guid: "17d1049b-9a84-46fb-8f53-869881c3d3ab",
        description: "Permits management of storage accounts. Provides access to the account key, which can be used to access data via Shared Key authorization.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Insights/diagnosticSettings/*",
            "Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action",
            "Microsoft.ResourceHealth/availabilityStatuses/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Storage/storageAccounts/*",
            "Microsoft.Support/*",
        ],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
    Role {
        name: "Storage Blob Data Contributor",
        guid: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        description: "Read, write, and delete Azure Storage containers and blobs.",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
        ],
        not_data_actions: &[],
    },
    Role {
        name: "Storage Blob Data Owner",
        guid: "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        description: "Provides full access to Azure Storage blob containers and data, including assigning POSIX access control.",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/*",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
        not_data_actions: &[],
    },
    Role {
        name: "Storage Blob Data Reader",
        guid: "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        description: "Read and list Azure Storage containers and blobs.",
        actions: &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        not_actions: &[],
        data_actions: &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
        not_data_actions: &[],
    },
    Role {
        name: "User Access Administrator",
        guid: "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        description: "Lets you manage user access to Azure resources.",
        actions: &["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
        not_actions: &[],
        data_actions: &[],
        not_data_actions: &[],
    },
];

/// A built-in role by name, compared case-insensitively as Azure does.
///
/// ```
/// assert_eq!(idlab::roles::by_name("reader").map(|r| r.guid),
///            Some("acdd72a7-3385-48ef-bd42-f606fba81ae7"));
/// ```
pub fn by_name(name: &str) -> Option<&'static Role> {
    BUILT_IN.iter().find(|r| r.name.eq_ignore_ascii_case(name))
}

/// A built-in role by definition GUID.
pub fn by_guid(guid: &str) -> Option<&'static Role> {
    BUILT_IN.iter().find(|r| r.guid.eq_ignore_ascii_case(guid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(BUILT_IN.windows(2).all(|w| w[0].name < w[1].name));
        let mut guids: Vec<&str> = BUILT_IN.iter().map(|r| r.guid).collect();
        guids.sort_unstable();
        guids.dedup();
        assert_eq!(guids.len(), BUILT_IN.len());
        assert!(BUILT_IN.iter().all(|r| crate::model::names::is_guid(r.guid)));
    }
}
