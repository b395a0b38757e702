//! The one integration-test binary (`autotests = false`): every test module is listed here.
#![allow(clippy::disallowed_types)]

mod cli;
mod client_contract;
mod common;
mod diagnostics;
mod engine_e2e;
mod fleet;
mod gen2_e2e;
mod graph;
mod hostile;
mod hostile_clients;
mod keyvault_e2e;
mod lab;
mod layout;
mod local_auth;
mod local_blob;
mod local_contract;
mod local_datalake;
mod local_dfs;
mod local_faults;
mod local_imds;
mod local_keyvault;
mod local_layout;
mod local_persist;
mod local_pipeline;
mod local_security;
mod props;
mod roles;
mod roles_rbac;
mod sas_vectors;
mod schema;
mod sql_e2e;
mod storage_e2e;
mod tokens;
mod tutorials_e2e;
