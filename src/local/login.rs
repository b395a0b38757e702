//! The Entra-style issuer: `POST /{tenant}/oauth2/v2.0/token` (client credentials with a
//! secret, or with a federated client assertion for workload identity) and the v1
//! `/{tenant}/oauth2/token`, plus what custom-cloud clients discover a cloud by: the
//! OpenID configurations (v1 and v2), the signing keys they name as `jwks_uri`
//! (`/{tenant}/discovery/v2.0/keys`, `/{tenant}/discovery/keys`) and
//! `GET /metadata/endpoints` (arm-contract §11).

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::federated::{DEFAULT_AUDIENCE, Record, credentials};
use super::http::{json_response, query_pairs};
use super::shared::{Shared, guid, sha256_hex};
use super::store::{Principal, State as CloudState};
use super::token::{Claims, issuer, scope_audience, sign, v1_audience};

/// Token lifetime for service principals, seconds.
pub const TOKEN_SECONDS: i64 = 3599;

fn aad_error(status: u16, error: &str, code: u32, description: &str) -> Response {
    let ts = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: {} Correlation ID: {} Timestamp: {ts}", guid(), guid()),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": guid(),
            "correlation_id": guid(),
        }),
        &[],
    )
}

/// Claims for a principal's token, as Entra issues them: v1 (`iss`
/// `https://sts.windows.net/{tid}/`, `appid`, `appidacr`, `idp`) for the Microsoft resources
/// that take v1 tokens (ARM, Storage, Key Vault, SQL, Data Lake, Graph), v2 (`iss`
/// `https://login.microsoftonline.com/{tid}/v2.0`, `azp`, `azpacr`) for other audiences. `acr`
/// is how the client authenticated: `1` a secret, `2` a certificate or assertion (managed
/// identities too). `mirid` is a managed identity's resource id (`xms_mirid`).
pub fn claims_for(
    sh: &Shared,
    object_id: &str,
    client_id: &str,
    aud: &str,
    lifetime: i64,
    mirid: Option<String>,
    acr: &str,
) -> Claims {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let tid = sh.info.tenant_id.clone();
    let v1 = v1_audience(aud);
    let iss = issuer(&tid, v1);
    let (appid, azp) = if v1 { (client_id, "") } else { ("", client_id) };
    Claims {
        aud: aud.to_string(),
        idp: if v1 { iss.clone() } else { String::new() },
        iss,
        iat: now,
        nbf: now,
        exp: now + lifetime,
        appid: appid.to_string(),
        appidacr: if v1 { acr.to_string() } else { String::new() },
        azp: azp.to_string(),
        azpacr: if v1 { String::new() } else { acr.to_string() },
        idtyp: "app".into(),
        oid: object_id.to_string(),
        sub: object_id.to_string(),
        tid,
        uti: URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
        ver: if v1 { "1.0" } else { "2.0" }.into(),
        xms_mirid: mirid,
    }
}

/// `POST /{tenant}/oauth2[/v2.0]/token`.
pub async fn token(sh: &Shared, tenant: &str, v2: bool, body: &[u8]) -> Response {
    let form = query_pairs(Some(&String::from_utf8_lossy(body)));
    let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    if !tenant.eq_ignore_ascii_case(&sh.info.tenant_id) && !matches!(tenant, "organizations" | "common") {
        return aad_error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    if get("grant_type") != Some("client_credentials") {
        return aad_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type. Only client_credentials is supported by this issuer.",
        );
    }
    let Some(client_id) = get("client_id") else {
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let aud = if v2 {
        match get("scope") {
            Some(s) if !s.trim().is_empty() => scope_audience(s),
            _ => {
                return aad_error(
                    400,
                    "invalid_scope",
                    1002012,
                    "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
                );
            }
        }
    } else {
        match get("resource") {
            Some(r) => r.to_string(),
            None => {
                return aad_error(
                    400,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'resource'.",
                );
            }
        }
    };
    let assertion = get("client_assertion");
    let principal = {
        let st = sh.store();
        st.state
            .principals
            .values()
            .find(|p| {
                p.client_id.eq_ignore_ascii_case(client_id)
                    && (p.kind == "ServicePrincipal" || assertion.is_some() && is_user_assigned(p))
            })
            .cloned()
    };
    let Some(p) = principal else {
        return aad_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                sh.info.tenant_id
            ),
        );
    };
    if let Some(secret) = get("client_secret") {
        if p.secret_sha256.as_deref() != Some(sha256_hex(secret).as_str()) {
            return aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            );
        }
    } else if let Some(assertion) = assertion {
        if get("client_assertion_type") != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
            return aad_error(400, "invalid_request", 50027, "Invalid client assertion type.");
        }
        let records = {
            let st = sh.store();
            federated_records(&st.state, &p)
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Err(refused) = super::federated::check(assertion, &records, now).await {
            return aad_error(400, "invalid_client", refused.code, &refused.message);
        }
    } else {
        return aad_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let acr = if get("client_secret").is_some() { "1" } else { "2" };
    let mirid = is_user_assigned(&p).then(|| p.resource_id.clone()).flatten();
    let claims = claims_for(sh, &p.object_id, &p.client_id, &aud, TOKEN_SECONDS, mirid, acr);
    let access = sign(&sh.key, &claims);
    let mut body = json!({ "token_type": "Bearer", "expires_in": TOKEN_SECONDS, "ext_expires_in": TOKEN_SECONDS, "access_token": access });
    if !v2 {
        body["expires_on"] = json!(claims.exp.to_string());
        body["not_before"] = json!(claims.nbf.to_string());
        body["resource"] = json!(aud);
        body["expires_in"] = json!(TOKEN_SECONDS.to_string());
        body["ext_expires_in"] = json!(TOKEN_SECONDS.to_string());
    }
    json_response(200, &body, &[("cache-control", "no-store, no-cache".into())])
}

/// Whether `p` is a user-assigned identity (which signs in only with a federated assertion).
fn is_user_assigned(p: &Principal) -> bool {
    p.kind == "ManagedIdentity"
        && p.resource_id.as_deref().is_some_and(|r| r.to_ascii_lowercase().contains("/userassignedidentities/"))
}

/// The federated credentials a principal accepts: an app registration's (made through the
/// admin API, audience `api://AzureADTokenExchange`), or a user-assigned identity's
/// `federatedIdentityCredentials`.
fn federated_records(st: &CloudState, p: &Principal) -> Vec<Record> {
    if is_user_assigned(p) {
        let id = p.resource_id.as_deref().unwrap_or_default();
        return credentials(st, id);
    }
    p.federated
        .iter()
        .map(|(issuer, subject)| Record {
            issuer: issuer.clone(),
            subject: subject.clone(),
            audiences: vec![DEFAULT_AUDIENCE.to_string()],
        })
        .collect()
}

/// The tenant a discovery path names (`common` and `organizations` are this tenant), or
/// Entra's answer for another one.
fn discovery_tenant<'a>(sh: &'a Shared, tenant: &'a str) -> Result<&'a str, Box<Response>> {
    let t = if tenant.eq_ignore_ascii_case("common") || tenant.eq_ignore_ascii_case("organizations") {
        sh.info.tenant_id.as_str()
    } else {
        tenant
    };
    if !t.eq_ignore_ascii_case(&sh.info.tenant_id) {
        return Err(Box::new(aad_error(400, "invalid_tenant", 90002, &format!("Tenant '{tenant}' not found."))));
    }
    Ok(t)
}

/// Whether `segs` (a path's segments) name a tenant's signing keys:
/// `/{tenant}/discovery/v2.0/keys` or `/{tenant}/discovery/keys`.
pub fn is_keys_path(segs: &[&str]) -> bool {
    matches!(segs, [_, d, k] if d.eq_ignore_ascii_case("discovery") && k.eq_ignore_ascii_case("keys"))
        || matches!(segs, [_, d, v, k] if d.eq_ignore_ascii_case("discovery") && v.eq_ignore_ascii_case("v2.0") && k.eq_ignore_ascii_case("keys"))
}

/// `GET /{tenant}/discovery[/v2.0]/keys`: the JWKS of the tenant's token-signing key, in
/// Entra's shape (`keys: [{kty, use, kid, n, e, issuer, …}]`).
pub fn keys(sh: &Shared, tenant: &str) -> Response {
    let t = match discovery_tenant(sh, tenant) {
        Ok(t) => t,
        Err(refused) => return *refused,
    };
    json_response(200, &json!({ "keys": [sh.key.jwk(&issuer(t, false))] }), &[])
}

/// `GET /{tenant}[/v2.0]/.well-known/openid-configuration`.
pub fn openid(sh: &Shared, tenant: &str, v2: bool) -> Response {
    let base = &sh.base_url;
    let t = match discovery_tenant(sh, tenant) {
        Ok(t) => t,
        Err(refused) => return *refused,
    };
    let (token, authorize, jwks) = if v2 {
        (
            format!("{base}/{t}/oauth2/v2.0/token"),
            format!("{base}/{t}/oauth2/v2.0/authorize"),
            format!("{base}/{t}/discovery/v2.0/keys"),
        )
    } else {
        (
            format!("{base}/{t}/oauth2/token"),
            format!("{base}/{t}/oauth2/authorize"),
            format!("{base}/{t}/discovery/keys"),
        )
    };
    json_response(
        200,
        &json!({
            "token_endpoint": token,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": jwks,
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer(t, !v2),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": authorize,
            "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "idlab.local",
            "cloud_graph_host_name": "graph.idlab.local",
            "msgraph_host": "graph.idlab.local",
        }),
        &[],
    )
}

/// `GET /metadata/endpoints`: the cloud's endpoints, for `az cloud register` and Terraform.
pub fn metadata(sh: &Shared) -> Response {
    let base = &sh.base_url;
    json_response(
        200,
        &json!({
            "name": "idlab-local",
            "portal": format!("{base}/"),
            "resourceManager": format!("{base}/"),
            "authentication": {
                "loginEndpoint": format!("{base}/"),
                "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "media": format!("{base}/"),
            "graphAudience": "https://graph.windows.net/",
            "graph": format!("{base}/graph/"),
            "microsoftGraphResourceId": format!("{base}/graph/"),
            "name_local": "idlab",
            "gallery": format!("{base}/"),
            "batch": "https://batch.core.windows.net/",
            "sqlManagement": format!("{base}/"),
            "vmImageAliasDoc": format!("{base}/"),
            "logAnalyticsResourceId": "https://api.loganalytics.io",
            "suffixes": {
                "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
                "acrLoginServer": "azurecr.io",
                "sqlServerHostname": ".database.windows.net",
                "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
                "keyVaultDns": ".vault.azure.net",
                "storage": "core.windows.net",
                "azureFrontDoorEndpointSuffix": "azurefd.net",
                "storageSyncEndpointSuffix": "afs.azure.net",
                "mhsmDns": "managedhsm.azure.net",
                "mysqlServerEndpoint": "mysql.database.azure.com",
                "postgresqlServerEndpoint": "postgres.database.azure.com",
                "mariadbServerEndpoint": "mariadb.database.azure.com",
                "synapseAnalytics": "dev.azuresynapse.net",
                "attestationEndpoint": "attest.azure.net",
            },
        }),
        &[],
    )
}
