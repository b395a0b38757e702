//! The rows of the local cloud's subscription limits: the enforced [`Quotas`] (Azure's
//! documented defaults: "Azure subscription and service limits"; vCPUs: the Enterprise
//! Agreement default of 350 per region and per family) and the VM sizes `vmSizes` lists, each
//! with its vCPUs and the usage name of its family's quota. `providers::quota` serves and
//! enforces them.

use serde::{Deserialize, Serialize};

/// The subscription's role-assignment usage metrics (served by `providers::quota`).
pub const ROLE_ASSIGNMENT_METRICS: &str = "Microsoft.Authorization/roleAssignmentsUsageMetrics";
/// The enforced limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    pub resource_groups: u64,
    pub storage_accounts_per_region: u64,
    pub role_assignments: u64,
    /// Total regional vCPUs (`cores`), per region.
    pub regional_vcpus: u64,
    /// vCPUs of each VM family, per region.
    pub family_vcpus: u64,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            resource_groups: 980,
            storage_accounts_per_region: 250,
            role_assignments: 4000,
            regional_vcpus: 350,
            family_vcpus: 350,
        }
    }
}

/// A VM size: name, vCPUs, memory (MB), family (the usage name of its quota), family label.
pub struct Size {
    pub name: &'static str,
    pub cores: u64,
    pub memory_mb: u64,
    pub family: &'static str,
    pub label: &'static str,
}

const fn size(name: &'static str, cores: u64, memory_mb: u64, family: &'static str, label: &'static str) -> Size {
    Size { name, cores, memory_mb, family, label }
}

const BS: &str = "standardBSFamily";
const DSV3: &str = "standardDSv3Family";
const DSV5: &str = "standardDSv5Family";
const DV2: &str = "standardDv2Family";
const DSV2: &str = "standardDSv2Family";

/// The sizes the kinds and tutorials use, and a few common ones.
pub const SIZES: &[Size] = &[
    size("Standard_B1s", 1, 1024, BS, "Standard BS Family vCPUs"),
    size("Standard_B1ms", 1, 2048, BS, "Standard BS Family vCPUs"),
    size("Standard_B2s", 2, 4096, BS, "Standard BS Family vCPUs"),
    size("Standard_B2ms", 2, 8192, BS, "Standard BS Family vCPUs"),
    size("Standard_B4ms", 4, 16384, BS, "Standard BS Family vCPUs"),
    size("Standard_D1_v2", 1, 3584, DV2, "Standard Dv2 Family vCPUs"),
    size("Standard_D2_v2", 2, 7168, DV2, "Standard Dv2 Family vCPUs"),
    size("Standard_DS1_v2", 1, 3584, DSV2, "Standard DSv2 Family vCPUs"),
    size("Standard_DS2_v2", 2, 7168, DSV2, "Standard DSv2 Family vCPUs"),
    size("Standard_DS3_v2", 4, 14336, DSV2, "Standard DSv2 Family vCPUs"),
    size("Standard_D2s_v3", 2, 8192, DSV3, "Standard DSv3 Family vCPUs"),
    size("Standard_D4s_v3", 4, 16384, DSV3, "Standard DSv3 Family vCPUs"),
    size("Standard_D2s_v5", 2, 8192, DSV5, "Standard DSv5 Family vCPUs"),
    size("Standard_D4s_v5", 4, 16384, DSV5, "Standard DSv5 Family vCPUs"),
];
