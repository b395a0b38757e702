//! Storage on the ARM side of the local cloud (arm-contract §5): storage accounts (created
//! through a `Location` long-running operation), blob containers, `listKeys`,
//! `ListServiceSas` (service SAS signed with the account key, `sv=2015-04-05` as the RP
//! signs) and `checkNameAvailability`. Account keys live in the stored body under `_idlab`,
//! which no response shows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::http::ArmError;
use super::store::{Op, Resource, State as CloudState};

/// Two fresh account keys.
pub fn new_keys() -> Value {
    let k = || {
        let b: [u8; 64] = rand::random();
        STANDARD.encode(b)
    };
    json!([k(), k()])
}

/// `HMAC-SHA256(base64decode(key), text)`, base64.
pub fn sign(key_b64: &str, text: &str) -> Option<String> {
    let key = STANDARD.decode(key_b64).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(text.as_bytes());
    Some(STANDARD.encode(mac.finalize().into_bytes()))
}

/// The account name of a storage id, and whether the name is valid.
/// The storage account of this name, in any group (names are global).
pub fn account_named<'a>(st: &'a CloudState, name: &str) -> Option<&'a super::store::Resource> {
    st.resources.values().find(|r| {
        r.kind == super::table::STORAGE_ACCOUNTS
            && r.id.rsplit('/').next().is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

fn account_name_ok(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Fill a storage account's server fields; refuse names taken elsewhere.
pub fn prepare_account(
    st: &CloudState,
    id: &str,
    existing: Option<&Value>,
    body: &mut Value,
    bases: (&str, &str),
    created: &str,
) -> Result<(), ArmError> {
    let (blob_base, dfs_base) = bases;
    let name = id.rsplit('/').next().unwrap_or_default().to_string();
    if !account_name_ok(&name) {
        return Err(ArmError::new(
            400,
            "AccountNameInvalid",
            format!(
                "{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only."
            ),
        ));
    }
    if existing.is_none() && account_named(st, &name).is_some() {
        return Err(ArmError::new(
            409,
            "StorageAccountAlreadyExists",
            format!("The storage account named {name} already exists under the subscription."),
        ));
    }
    if !body.is_object() {
        return Err(ArmError::new(400, "InvalidRequestContent", "The request content must be a JSON object."));
    }
    // Before 2016-01-01 the account type was `properties.accountType` (no `sku`;
    // `TestVirtualMachineIdentityUpdate.json` at 2015-06-15).
    if body.get("sku").is_none()
        && let Some(t) = body.pointer("/properties/accountType").and_then(Value::as_str).map(str::to_string)
    {
        body["sku"] = json!({ "name": t });
    }
    if body.pointer("/sku/name").and_then(Value::as_str).is_none() {
        return Err(ArmError::new(
            400,
            "InvalidRequestContent",
            "The request content was invalid: 'sku' is required and must be an object with a 'name'.",
        ));
    }
    if body.get("properties").is_some_and(|p| !p.is_object()) {
        return Err(ArmError::new(
            400,
            "InvalidRequestContent",
            "The request content was invalid: 'properties' must be an object.",
        ));
    }
    if body.get("properties").is_none() {
        body["properties"] = json!({});
    }
    if body.get("kind").is_none() {
        body["kind"] = json!("StorageV2");
    }
    let keys = existing.and_then(|e| e.pointer("/_idlab/keys").cloned()).unwrap_or_else(new_keys);
    let key_time = existing
        .and_then(|e| e.pointer("/properties/keyCreationTime").cloned())
        .unwrap_or_else(|| json!({"key1": created, "key2": created}));
    let creation =
        existing.and_then(|e| e.pointer("/properties/creationTime").cloned()).unwrap_or_else(|| json!(created));
    let hns = body.pointer("/properties/isHnsEnabled").and_then(Value::as_bool).unwrap_or(false);
    let location = body.get("location").cloned().unwrap_or(json!("eastus"));
    let sku_name = body.pointer("/sku/name").and_then(Value::as_str).unwrap_or_default().to_string();
    body["sku"]["tier"] = json!(if sku_name.starts_with("Premium") { "Premium" } else { "Standard" });
    let geo = sku_name.contains("GRS") || sku_name.contains("GZRS");
    let routing = body.pointer("/properties/routingPreference").cloned().unwrap_or(Value::Null);
    let require_infra =
        body.pointer("/properties/encryption/requireInfrastructureEncryption").cloned().unwrap_or(json!(false));
    let p = body
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ArmError::new(400, "InvalidRequestContent", "properties must be an object"))?;
    p.insert("keyCreationTime".into(), key_time);
    p.insert("creationTime".into(), creation);
    p.entry("allowSharedKeyAccess").or_insert(json!(true));
    p.entry("minimumTlsVersion").or_insert(json!("TLS1_2"));
    p.entry("allowBlobPublicAccess").or_insert(json!(false));
    p.entry("supportsHttpsTrafficOnly").or_insert(json!(true));
    p.entry("isHnsEnabled").or_insert(json!(hns));
    p.insert("primaryLocation".into(), location.clone());
    p.insert("statusOfPrimary".into(), json!("available"));
    if geo {
        p.insert("secondaryLocation".into(), json!(paired_region(location.as_str().unwrap_or_default())));
        p.insert("statusOfSecondary".into(), json!("available"));
    } else {
        p.remove("secondaryLocation");
        p.remove("statusOfSecondary");
    }
    p.insert("accountMigrationInProgress".into(), json!(false));
    // Azure answers an empty list (recording storage/TestStorageBlobContainer.json, 2021-06-01).
    p.entry("privateEndpointConnections").or_insert(json!([]));
    p.insert("isSkuConversionBlocked".into(), json!(false));
    p.insert("accessTier".into(), p.get("accessTier").cloned().unwrap_or(json!("Hot")));
    p.insert(
        "encryption".into(),
        json!({"keySource": "Microsoft.Storage", "requireInfrastructureEncryption": require_infra, "services": {"blob": {"enabled": true, "keyType": "Account", "lastEnabledTime": created}, "file": {"enabled": true, "keyType": "Account", "lastEnabledTime": created}}}),
    );
    let acls = p.entry("networkAcls").or_insert(
        json!({"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [], "virtualNetworkRules": []}),
    );
    if let Some(a) = acls.as_object_mut() {
        a.entry("resourceAccessRules").or_insert(json!([]));
    }
    let blob = format!("{blob_base}/{name}/");
    // Data Lake Storage Gen2 has its own listener (`dfs`); the other services share the blob one.
    let dfs = format!("{dfs_base}/{name}/");
    let mut endpoints = json!({"blob": blob, "dfs": dfs, "web": blob, "file": blob, "queue": blob, "table": blob});
    // Routed endpoints are published only when asked for.
    if routing.get("publishMicrosoftEndpoints").and_then(Value::as_bool) == Some(true) {
        endpoints["microsoftEndpoints"] =
            json!({"blob": blob, "dfs": dfs, "web": blob, "file": blob, "queue": blob, "table": blob});
    }
    if routing.get("publishInternetEndpoints").and_then(Value::as_bool) == Some(true) {
        endpoints["internetEndpoints"] = json!({"blob": blob, "dfs": dfs, "web": blob, "file": blob});
    }
    p.insert("primaryEndpoints".into(), endpoints);
    body["_idlab"] = json!({ "keys": keys });
    Ok(())
}

/// A storage account's managed identity (`None`, `SystemAssigned`, `UserAssigned` or
/// `SystemAssigned,UserAssigned`), as the Storage RP fills it: a system-assigned identity
/// gets a principal of the local cloud (`principalId`, `tenantId`), which tokens and role
/// assignments know and which goes with the account; user-assigned identities get their
/// `principalId` and `clientId`. A PUT without `identity` keeps the account's identity.
/// Also `tags: {}` when none were set, as the RP answers (`TestNewAzureStorageAccount.json`).
pub fn account_identity(
    st: &CloudState,
    id: &str,
    existing: Option<&Value>,
    body: &mut Value,
    tenant: &str,
    now: u64,
    extra: &mut Vec<super::store::Op>,
) -> Result<(), ArmError> {
    if let Some(o) = body.as_object_mut() {
        o.entry("tags").or_insert(json!({}));
    }
    let old_pid = existing.and_then(|e| e.pointer("/identity/principalId")).and_then(Value::as_str).map(str::to_string);
    let given = match body.get("identity") {
        Some(i) => i.clone(),
        None => match existing.and_then(|e| e.get("identity")) {
            Some(old) => {
                body["identity"] = old.clone();
                return Ok(());
            }
            None => return Ok(()),
        },
    };
    let t = given.get("type").and_then(Value::as_str).unwrap_or("None").replace(' ', "");
    let (system, user) = match t.to_ascii_lowercase().as_str() {
        "none" => (false, false),
        "systemassigned" => (true, false),
        "userassigned" => (false, true),
        "systemassigned,userassigned" => (true, true),
        _ => {
            return Err(ArmError::new(
                400,
                "InvalidIdentityType",
                format!(
                    "The identity type '{t}' is not valid: use None, SystemAssigned, UserAssigned or 'SystemAssigned,UserAssigned'."
                ),
            ));
        }
    };
    let mut identity = json!({ "type": match (system, user) {
        (true, true) => "SystemAssigned,UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        _ => "None",
    } });
    if system {
        let pid = super::principals::system_principal(st, old_pid.as_deref(), id, now, extra);
        identity["principalId"] = json!(pid);
        identity["tenantId"] = json!(tenant);
    } else if let Some(p) = old_pid {
        extra.push(super::store::Op::DeletePrincipal { object_id: p });
    }
    if user {
        let mut out = serde_json::Map::new();
        for k in given.get("userAssignedIdentities").and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k) {
            let Some(r) = st.resources.get(&k.to_ascii_lowercase()) else {
                return Err(ArmError::new(
                    400,
                    "InvalidRequestContent",
                    format!("The user-assigned identity '{k}' was not found."),
                ));
            };
            out.insert(
                k.clone(),
                json!({ "principalId": r.body.pointer("/properties/principalId"), "clientId": r.body.pointer("/properties/clientId") }),
            );
        }
        identity["userAssignedIdentities"] = Value::Object(out);
    }
    body["identity"] = identity;
    Ok(())
}

/// The region a geo-redundant account replicates to (Azure's documented pairs; others pair with themselves).
fn paired_region(location: &str) -> &str {
    const PAIRS: &[(&str, &str)] = &[
        ("eastus", "westus"),
        ("eastus2", "centralus"),
        ("northcentralus", "southcentralus"),
        ("westus2", "westcentralus"),
        ("westus3", "eastus"),
        ("northeurope", "westeurope"),
        ("uksouth", "ukwest"),
        ("japaneast", "japanwest"),
        ("australiaeast", "australiasoutheast"),
    ];
    let l = location.to_ascii_lowercase().replace(' ', "");
    PAIRS
        .iter()
        .find_map(|(a, b)| {
            if *a == l {
                Some(*b)
            } else if *b == l {
                Some(*a)
            } else {
                None
            }
        })
        .unwrap_or(location)
}

/// `$expand=geoReplicationStats` on a geo-redundant account.
pub fn expand_geo_stats(body: &mut Value, now: &str) {
    let geo = body.pointer("/properties/secondaryLocation").is_some();
    if let (true, Some(p)) = (geo, body.get_mut("properties").and_then(Value::as_object_mut)) {
        p.insert(
            "geoReplicationStats".into(),
            json!({"status": "Live", "lastSyncTime": now, "canFailover": true, "canPlannedFailover": true}),
        );
        p.insert("geoPriorityReplicationStatus".into(), json!({"isBlobEnabled": false}));
    }
}

/// A blob container: the account must exist. Fills what Azure's Storage RP keeps for a
/// container (recording storage/TestStorageBlobContainer.json, 2021-06-01: `deleted`,
/// `remainingRetentionDays`, `defaultEncryptionScope`, `denyEncryptionScopeOverride`,
/// `leaseStatus`, `leaseState`, `legalHold`, `immutableStorageWithVersioning`) and stamps
/// every write with a new `etag` (`"0x…"`, the last-modified time in .NET ticks, as
/// Azure's) and `lastModifiedTime`; Resource Manager and the blob data plane show the same.
pub fn prepare_container(st: &CloudState, id: &str, body: &mut Value, now_ms: u64) -> Result<(), ArmError> {
    let account = id.split("/blobServices/").next().unwrap_or_default();
    if !st.resources.contains_key(&account.to_ascii_lowercase()) {
        return Err(ArmError::new(
            404,
            "ParentResourceNotFound",
            format!(
                "Failed to perform 'write' on resource(s) of type 'blobServices/containers', because the parent resource '{account}' could not be found."
            ),
        ));
    }
    let name = id.rsplit('/').next().unwrap_or_default();
    if !valid_container_name(name) {
        return Err(ArmError::new(
            400,
            "ContainerOperationFailure",
            format!("The specified resource name contains invalid characters: '{name}'."),
        ));
    }
    if let Some(o) = body.as_object_mut() {
        o.remove("location");
        o.insert("etag".into(), json!(container_etag(now_ms)));
        let p = o.entry("properties").or_insert(json!({}));
        if let Some(p) = p.as_object_mut() {
            let fixed = [
                ("deleted", json!(false)),
                ("remainingRetentionDays", json!(0)),
                ("defaultEncryptionScope", json!("$account-encryption-key")),
                ("denyEncryptionScopeOverride", json!(false)),
                ("publicAccess", json!("None")),
                ("leaseStatus", json!("Unlocked")),
                ("leaseState", json!("Available")),
                ("hasImmutabilityPolicy", json!(false)),
                ("hasLegalHold", json!(false)),
                ("legalHold", json!({ "hasLegalHold": false, "tags": [] })),
                ("immutableStorageWithVersioning", json!({ "enabled": false })),
            ];
            for (k, v) in fixed {
                p.entry(k).or_insert(v);
            }
            p.insert("lastModifiedTime".into(), json!(iso_seconds(now_ms)));
        }
    }
    Ok(())
}

/// A container's etag as Azure writes it: `"0x…"`, its last-modified time in .NET ticks
/// (100 ns since 0001-01-01), upper-case hex: the recording's `"0x8D9823A6DEB196D"` is
/// 2021-09-28T04:42:51.347Z, its `lastModifiedTime`.
fn container_etag(now_ms: u64) -> String {
    format!("\"0x{:X}\"", 621_355_968_000_000_000 + now_ms * 10_000)
}

/// `2021-09-28T04:42:51Z`: Azure's `lastModifiedTime` of a container (whole seconds).
fn iso_seconds(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")).ok()
        })
        .unwrap_or_default()
}

/// Which view of a container an answer shows. Azure's Storage RP answers three shapes
/// (recording storage/TestStorageBlobContainer.json; the spec's `BlobContainers_Create`
/// example answers the same `{id, name, type}` to a PUT of `{}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerView {
    /// GET: everything but `immutableStorageWithVersioning`.
    Get,
    /// A list item: no `metadata` and no `legalHold`, with `immutableStorageWithVersioning`.
    Listed,
    /// The answer to a PUT or PATCH: `id`, `name`, `type`, and, when the request set
    /// properties, only `deleted`, `remainingRetentionDays`, `metadata`, `publicAccess`,
    /// `hasImmutabilityPolicy` and `hasLegalHold` (no `etag`: it is in the `ETag` header).
    Written { with_properties: bool },
}

/// A container's body (as `present` shows it) in one of Azure's views.
pub fn container_view(mut body: Value, view: ContainerView) -> Value {
    let Some(o) = body.as_object_mut() else { return body };
    let drop: &[&str] = match view {
        ContainerView::Get => &["immutableStorageWithVersioning"],
        ContainerView::Listed => &["metadata", "legalHold"],
        ContainerView::Written { with_properties } => {
            o.remove("etag");
            if !with_properties {
                o.remove("properties");
                return body;
            }
            &[
                "defaultEncryptionScope",
                "denyEncryptionScopeOverride",
                "leaseStatus",
                "leaseState",
                "lastModifiedTime",
                "legalHold",
                "immutableStorageWithVersioning",
            ]
        }
    };
    if let Some(p) = o.get_mut("properties").and_then(Value::as_object_mut) {
        for k in drop {
            p.remove(*k);
        }
    }
    body
}

/// The `ETag` header of a container's answers (its body's `etag`).
pub fn container_etag_header(body: &Value) -> Vec<(&'static str, String)> {
    body.get("etag").and_then(Value::as_str).map(|e| vec![("etag", e.to_string())]).unwrap_or_default()
}

/// A storage account as an api-version shows it. At 2017-10-01 Azure's answers carried
/// `trustedDirectories`, the account's tenant ids (recordings storage/TestNewAzureStorageAccount.json
/// and TestGetAzureStorageAccountKey.json, February 2018: the create's final poll and every
/// GET), a field no Storage spec declares; its answers at 2015-06-15
/// (compute/TestVirtualMachineIdentityUpdate.json) and 2021-06-01
/// (storage/TestStorageBlobContainer.json) have none, so only 2017-10-01 shows it.
pub fn account_at(body: &mut Value, api_version: &str, tenant: &str) {
    if api_version == "2017-10-01"
        && let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut)
    {
        p.insert("trustedDirectories".into(), json!([tenant]));
    }
}

/// Azure's container names: 3 to 63 lower-case letters, digits and single hyphens, starting
/// and ending with a letter or digit.
pub fn valid_container_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// What a data-plane Create Container writes: the container as Resource Manager shows it
/// (`{account id}/blobServices/default/containers/{name}`), so both views agree, with the
/// request's `x-ms-meta-*` as its `metadata` and `x-ms-blob-public-access` (`container`,
/// `blob`) as its `publicAccess`.
///
/// # Errors
/// The account is gone, the name is not a container name (`InvalidResourceName`), or the
/// access level is not one (`InvalidHeaderValue`): the blob service's codes.
pub fn container_created(
    st: &CloudState,
    id: &str,
    now_ms: u64,
    metadata: &std::collections::BTreeMap<String, String>,
    public_access: Option<&str>,
) -> Result<Resource, ArmError> {
    let name = id.rsplit('/').next().unwrap_or_default();
    let mut properties = json!({});
    if !metadata.is_empty() {
        properties["metadata"] = json!(metadata);
    }
    match public_access.map(str::to_ascii_lowercase).as_deref() {
        None => {}
        Some("container") => properties["publicAccess"] = json!("Container"),
        Some("blob") => properties["publicAccess"] = json!("Blob"),
        Some(_) => {
            return Err(ArmError::new(
                400,
                "InvalidHeaderValue",
                "The value for one of the HTTP headers is not in the correct format.",
            ));
        }
    }
    let mut body = json!({ "id": id, "name": name, "type": super::table::CONTAINERS, "properties": properties });
    // A bad name is the blob service's `InvalidResourceName`.
    prepare_container(st, id, &mut body, now_ms).map_err(|e| match e.code.as_str() {
        "ContainerOperationFailure" => ArmError::new(e.status, "InvalidResourceName", e.message),
        _ => e,
    })?;
    let kind = super::table::CONTAINERS.to_string();
    Ok(Resource { id: id.to_string(), kind, body, etag: 1, created_ms: now_ms, busy_until_ms: 0, effective_ms: None })
}

/// A container's ARM body as the blob service's headers (Blob service REST reference, Get
/// Container Properties): `ETag` and `Last-Modified`, then, with `all`, `x-ms-meta-*`,
/// `x-ms-blob-public-access` when public, the lease, legal-hold, immutability and
/// encryption-scope headers.
pub fn container_headers(body: &Value, all: bool) -> Vec<(String, String)> {
    let p = &body["properties"];
    let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let flag = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(false).to_string();
    let modified =
        time::OffsetDateTime::parse(&text("lastModifiedTime"), &time::format_description::well_known::Rfc3339)
            .ok()
            .and_then(|t| {
                t.format(time::macros::format_description!(
                    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
                ))
                .ok()
            })
            .unwrap_or_default();
    let mut h: Vec<(String, String)> = vec![
        ("etag".into(), body.get("etag").and_then(Value::as_str).unwrap_or_default().into()),
        ("last-modified".into(), modified),
    ];
    if !all {
        return h;
    }
    for (k, v) in [
        ("x-ms-lease-status", text("leaseStatus").to_ascii_lowercase()),
        ("x-ms-lease-state", text("leaseState").to_ascii_lowercase()),
        ("x-ms-has-immutability-policy", flag("hasImmutabilityPolicy")),
        ("x-ms-has-legal-hold", flag("hasLegalHold")),
        ("x-ms-default-encryption-scope", text("defaultEncryptionScope")),
        ("x-ms-deny-encryption-scope-override", flag("denyEncryptionScopeOverride")),
    ] {
        h.push((k.into(), v));
    }
    let access = text("publicAccess").to_ascii_lowercase();
    if access == "container" || access == "blob" {
        h.push(("x-ms-blob-public-access".into(), access));
    }
    for (k, v) in p.get("metadata").and_then(Value::as_object).into_iter().flatten() {
        h.push((format!("x-ms-meta-{k}"), v.as_str().unwrap_or_default().to_string()));
    }
    h
}

/// What a data-plane Delete Container removes: the container, its blobs and its Gen2 paths.
pub fn container_deleted(id: &str, account: &str, container: &str) -> Vec<Op> {
    vec![
        Op::DeleteResource { key: id.to_ascii_lowercase() },
        Op::DeleteBlobs { prefix: format!("{account}/{container}/") },
        super::store::delete_data_paths(account, Some(container)),
    ]
}

/// The account's two keys (base64), as the server keeps them.
pub fn keys_of(account: &Value) -> Vec<String> {
    account
        .pointer("/_idlab/keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `listKeys`.
pub fn list_keys(account: &Value) -> Value {
    let created = account.pointer("/properties/keyCreationTime/key1").cloned().unwrap_or(Value::Null);
    let keys = keys_of(account);
    json!({ "keys": keys.iter().enumerate().map(|(i, k)| json!({"keyName": format!("key{}", i + 1), "value": k, "permissions": "FULL", "creationTime": created})).collect::<Vec<_>>() })
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether SAS permission letters are known and in Azure's order (`racwdxltmeopi`).
pub fn permissions_in_order(sp: &str) -> bool {
    const ORDER: &str = "racwdxltmeopi";
    let mut last = 0;
    sp.chars().all(|c| match ORDER.find(c) {
        Some(i) if i >= last => {
            last = i;
            true
        }
        _ => false,
    })
}

/// `ListServiceSas`: sign with the account key the way the RP does (`sv=2015-04-05`).
///
/// # Errors
/// Missing fields, or Shared Key access turned off on the account.
pub fn service_sas(account: &Value, req: &Value) -> Result<Value, ArmError> {
    if account.pointer("/properties/allowSharedKeyAccess").and_then(Value::as_bool) == Some(false) {
        return Err(ArmError::new(
            400,
            "KeyBasedAuthenticationNotPermitted",
            "Key based authentication is not permitted on this storage account.",
        ));
    }
    let get = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let resource = get("canonicalizedResource");
    let sr = get("signedResource");
    let sp = get("signedPermission");
    let se = get("signedExpiry");
    // A stored access policy (signedIdentifier) may hold the permissions and the expiry.
    let by_policy = !get("signedIdentifier").is_empty();
    if resource.is_empty() || sr.is_empty() || (!by_policy && (sp.is_empty() || se.is_empty())) {
        return Err(ArmError::new(
            400,
            "InvalidValuesForRequestParameters",
            "canonicalizedResource and signedResource are required, and signedPermission and signedExpiry unless signedIdentifier names a stored access policy.",
        ));
    }
    let bad = |m: String| ArmError::new(400, "InvalidValuesForRequestParameters", m);
    if !matches!(sr.as_str(), "b" | "c" | "f" | "s") {
        return Err(bad(format!("Values for request parameters are invalid: signedResource '{sr}'.")));
    }
    if !permissions_in_order(&sp) {
        return Err(bad(format!("Values for request parameters are invalid: signedPermission '{sp}'.")));
    }
    let account_name = account.get("name").and_then(Value::as_str).unwrap_or_default();
    let prefix = format!("/blob/{}", account_name.to_ascii_lowercase());
    let lower = resource.to_ascii_lowercase();
    if !(lower == prefix || lower.starts_with(&format!("{prefix}/"))) {
        return Err(bad(format!(
            "Values for request parameters are invalid: canonicalizedResource '{resource}' is not in account '{account_name}'."
        )));
    }
    let trim = |t: &str| match (t.find('.'), t.ends_with('Z')) {
        (Some(i), true) => format!("{}Z", &t[..i]),
        _ => t.to_string(),
    };
    let (se, st) = (trim(&se), trim(&get("signedStart")));
    let (spr, sip, si) = (get("signedProtocol"), get("signedIp"), get("signedIdentifier"));
    let sv = "2015-04-05";
    // The response-header overrides a read with this SAS answers with (`rscc` … `rsct`).
    let overrides: Vec<(&str, String)> =
        ["rscc", "rscd", "rsce", "rscl", "rsct"].iter().map(|k| (*k, get(k))).collect();
    let mut fields = vec![sp.clone(), st.clone(), se.clone(), resource.clone(), si.clone(), sip.clone(), spr.clone()];
    fields.push(sv.to_string());
    fields.extend(overrides.iter().map(|(_, v)| v.clone()));
    let sts = fields.join("\n");
    let keys = keys_of(account);
    let key = if get("keyToSign") == "key2" { keys.get(1) } else { keys.first() };
    let sig =
        key.and_then(|k| sign(k, &sts)).ok_or_else(|| ArmError::new(500, "InternalServerError", "no account key"))?;
    let mut token = format!("sv={sv}&sr={sr}");
    for (k, v) in [("sp", &sp), ("se", &se), ("st", &st), ("spr", &spr), ("sip", &sip), ("si", &si)]
        .into_iter()
        .chain(overrides.iter().map(|(k, v)| (*k, v)))
    {
        if !v.is_empty() {
            token.push_str(&format!("&{k}={}", enc(v)));
        }
    }
    token.push_str(&format!("&sig={}", enc(&sig)));
    Ok(json!({ "serviceSasToken": token }))
}

/// Whether a storage account name is free (`checkNameAvailability`).
pub fn check_name(st: &CloudState, req: &Value) -> Value {
    let name = req.get("name").and_then(Value::as_str).unwrap_or_default();
    if !account_name_ok(name) {
        return json!({"nameAvailable": false, "reason": "AccountNameInvalid", "message": format!("{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only.")});
    }
    if account_named(st, name).is_some() {
        json!({"nameAvailable": false, "reason": "AlreadyExists", "message": format!("The storage account named {name} is already taken.")})
    } else {
        json!({"nameAvailable": true})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_signing_matches_the_string_to_sign_layout() {
        // A fixed key and request: the signature is HMAC over the 2015-04-05 layout.
        let key = STANDARD.encode([7u8; 64]);
        let account = json!({"name": "acct", "_idlab": {"keys": [key.clone(), key.clone()]}, "properties": {}});
        let req = json!({"canonicalizedResource": "/blob/acct/c", "signedResource": "c", "signedPermission": "rcw", "signedProtocol": "https", "signedExpiry": "2030-01-01T00:00:00.1234567Z"});
        let t = service_sas(&account, &req).expect("sas")["serviceSasToken"].as_str().unwrap_or_default().to_string();
        assert!(t.starts_with("sv=2015-04-05&sr=c&sp=rcw&se=2030-01-01T00%3A00%3A00Z&spr=https&sig="), "{t}");
        let sts = "rcw\n\n2030-01-01T00:00:00Z\n/blob/acct/c\n\n\nhttps\n2015-04-05\n\n\n\n\n";
        let want = enc(&sign(&key, sts).unwrap_or_default());
        assert!(t.ends_with(&want), "{t} vs {want}");
    }
}
