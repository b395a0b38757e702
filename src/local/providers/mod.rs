//! The ARM providers of the local cloud, one file per provider family. Each is reached from
//! the ARM front door (`arm`) through the provider table (`table`); none imports the front
//! door. Shared handler code is in `request` (the provider kit), `lro` and `cascade`.

pub mod authorization;
pub mod blob_service;
pub mod compute;
pub mod disk;
pub mod generic;
pub mod identity;
pub mod keyvault;
pub mod network;
pub mod quota;
pub mod resources;
pub mod sql;
