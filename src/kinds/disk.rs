//! A VM's OS disk, as a plan sets it (`virtual_machine.os_disk`): its storage type and whether
//! it goes with the VM. Azure makes the disk from the image (`createOption: FromImage`); the
//! VM's body carries these settings (ComputeRP 2025-04-01 `OSDisk`).
//!
//! Imports: nothing of idlab. Pure.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The OS disk's settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OsDiskSpec {
    /// Storage type (default `Standard_LRS`); changing it replaces the VM.
    #[serde(default, rename = "type")]
    pub storage_type: Option<DiskType>,
    /// Delete the disk with the VM (default true; false is Azure's own default, `Detach`,
    /// which the portal's and New-AzVM's VMs get: destroy then deletes it after the VM).
    #[serde(default)]
    pub delete_with_vm: Option<bool>,
}

/// The storage types an OS disk can have (ComputeRP `StorageAccountTypes`, less the data-disk
/// only `PremiumV2_LRS` and `UltraSSD_LRS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum DiskType {
    #[serde(rename = "Standard_LRS")]
    StandardLrs,
    #[serde(rename = "StandardSSD_LRS")]
    StandardSsdLrs,
    #[serde(rename = "StandardSSD_ZRS")]
    StandardSsdZrs,
    #[serde(rename = "Premium_LRS")]
    PremiumLrs,
    #[serde(rename = "Premium_ZRS")]
    PremiumZrs,
}

impl DiskType {
    /// Its name in ARM.
    pub fn arm(self) -> &'static str {
        match self {
            DiskType::StandardLrs => "Standard_LRS",
            DiskType::StandardSsdLrs => "StandardSSD_LRS",
            DiskType::StandardSsdZrs => "StandardSSD_ZRS",
            DiskType::PremiumLrs => "Premium_LRS",
            DiskType::PremiumZrs => "Premium_ZRS",
        }
    }

    /// The type named `s` in ARM (any case).
    pub fn from_arm(s: &str) -> Option<DiskType> {
        [
            DiskType::StandardLrs,
            DiskType::StandardSsdLrs,
            DiskType::StandardSsdZrs,
            DiskType::PremiumLrs,
            DiskType::PremiumZrs,
        ]
        .into_iter()
        .find(|t| t.arm().eq_ignore_ascii_case(s))
    }
}
