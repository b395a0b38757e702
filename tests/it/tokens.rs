//! Tokens like Entra's: RS256 with a `kid`, the key published where the OpenID configuration's
//! `jwks_uri` points, checked here by an RSA verification of the test's own (textbook
//! RSASSA-PKCS1-v1_5 with `num-bigint`, not the `ring` the local cloud signs with); `iss`
//! and `aud` as Entra issues them; any other algorithm refused; an older state directory's
//! HS256 tokens refused after the upgrade, which `serve` says once.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use idlab::local::token::{KEY_FILE, SigningKey};
use num_bigint::BigUint;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::lab::Lab;

/// A second fixed key: signatures by it must be refused.
pub fn other_key() -> SigningKey {
    SigningKey::from_pkcs8(include_bytes!("../fixtures/keys/other-signing.key.der")).expect("fixture key")
}

fn b64(part: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(part).expect("base64url")
}

fn json_part(part: &str) -> Value {
    serde_json::from_slice(&b64(part)).expect("a JSON segment")
}

/// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2.2), by hand: `s^e mod n` must be the
/// padded DigestInfo of the signed input.
fn rs256_valid(jwk: &Value, token: &str) -> bool {
    let (input, sig) = token.rsplit_once('.').expect("three segments");
    let n = BigUint::from_bytes_be(&b64(jwk["n"].as_str().expect("n")));
    let e = BigUint::from_bytes_be(&b64(jwk["e"].as_str().expect("e")));
    let k = n.to_bytes_be().len();
    let sig = b64(sig);
    if sig.len() != k {
        return false;
    }
    let m = BigUint::from_bytes_be(&sig).modpow(&e, &n).to_bytes_be();
    const SHA256_DIGEST_INFO: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
        0x20,
    ];
    let t: Vec<u8> = SHA256_DIGEST_INFO.iter().copied().chain(Sha256::digest(input.as_bytes())).collect();
    let mut em = vec![0x00, 0x01];
    em.extend(std::iter::repeat_n(0xff, k - t.len() - 3));
    em.push(0x00);
    em.extend(t);
    // `to_bytes_be` drops the leading zero byte.
    em[1..] == m[..]
}

/// The token re-signed with HS256: the header names HS256 and the signature is an HMAC with
/// `secret` (the classic algorithm-confusion forgery uses the public key as the secret).
fn resigned_hs256(token: &str, secret: &[u8]) -> String {
    let mut parts = token.split('.');
    let head = json_part(parts.next().expect("header"));
    let body = parts.next().expect("body");
    let header = URL_SAFE_NO_PAD.encode(json!({ "typ": "JWT", "alg": "HS256", "kid": head["kid"] }).to_string());
    let input = format!("{header}.{body}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// Discovery → `jwks_uri` → the key set, checked for Entra's shape; (issuer, keys).
fn discover(lab: &Lab, path: &str) -> (String, Vec<Value>) {
    let cfg = lab.send(None, "GET", path, None);
    assert_eq!(cfg.status, 200, "{path}: {}", cfg.body);
    let jwks_uri = cfg.body["jwks_uri"].as_str().expect("jwks_uri").to_string();
    assert!(jwks_uri.starts_with(&lab.cloud.info.authority_url), "{jwks_uri}");
    let jwks = lab.send(None, "GET", &jwks_uri, None);
    assert_eq!(jwks.status, 200, "{jwks_uri}: {}", jwks.body);
    let keys = jwks.body["keys"].as_array().expect("keys").clone();
    assert_eq!(keys.len(), 1, "{}", jwks.body);
    for k in &keys {
        assert_eq!((k["kty"].as_str(), k["use"].as_str()), (Some("RSA"), Some("sig")), "{k}");
        assert!(k.get("d").is_none() && k.get("p").is_none(), "no private part: {k}");
    }
    (cfg.body["issuer"].as_str().expect("issuer").to_string(), keys)
}

/// Check one token as a resource server would: the key named by `kid`, the RS256 signature,
/// `iss` and `aud`. Returns its claims.
fn validate(keys: &[Value], token: &str, iss: &str, aud: &str) -> Value {
    let mut parts = token.split('.');
    let head = json_part(parts.next().expect("header"));
    assert_eq!(head["alg"], "RS256", "{head}");
    let jwk = keys.iter().find(|k| k["kid"] == head["kid"]).expect("the token's kid is published");
    assert!(rs256_valid(jwk, token), "the signature checks out against the published key");
    let claims = json_part(parts.next().expect("body"));
    assert_eq!(claims["iss"], iss, "{claims}");
    assert_eq!(claims["aud"], aud, "{claims}");
    claims
}

#[test]
fn issuer_and_identity_tokens_validate_against_the_published_keys() {
    let lab = Lab::start();
    let tenant = lab.cloud.info.tenant_id.clone();
    let (iss_v1, keys) = discover(&lab, &format!("/{tenant}/.well-known/openid-configuration"));
    let (iss_v2, keys_v2) = discover(&lab, &format!("/{tenant}/v2.0/.well-known/openid-configuration"));
    assert_eq!(iss_v1, format!("https://sts.windows.net/{tenant}/"));
    assert_eq!(iss_v2, format!("https://login.microsoftonline.com/{tenant}/v2.0"));
    assert_eq!(keys, keys_v2, "v1 and v2 publish the same key");
    // `common` resolves to the tenant; the key set is the same at both paths.
    for path in ["/common/discovery/v2.0/keys", &format!("/{tenant}/discovery/keys")] {
        assert_eq!(lab.send(None, "GET", path, None).body["keys"], json!(keys), "{path}");
    }
    let other = lab.send(None, "GET", "/11111111-1111-1111-1111-111111111111/discovery/v2.0/keys", None);
    assert_eq!(other.status, 400, "{}", other.body);
    assert_eq!(other.body["error_codes"], json!([90002]));

    // 1. The token issuer: ARM takes v1 tokens (appid), an application of your own v2 (azp).
    let (arm, oid) = lab.principal_for(
        &[("Reader", &format!("/subscriptions/{}", lab.sub()))],
        "https://management.azure.com/.default",
    );
    let c = validate(&keys, &arm, &iss_v1, "https://management.azure.com");
    assert_eq!(
        (c["ver"].as_str(), c["tid"].as_str(), c["oid"].as_str()),
        (Some("1.0"), Some(tenant.as_str()), Some(oid.as_str()))
    );
    assert_eq!((c["idtyp"].as_str(), c["appidacr"].as_str()), (Some("app"), Some("1")), "{c}");
    assert!(c["appid"].is_string() && c.get("azp").is_none(), "{c}");
    for k in ["iat", "nbf", "exp"] {
        assert!(c[k].is_i64(), "{k}: {c}");
    }
    assert!(c["exp"].as_i64() > c["nbf"].as_i64() && c["nbf"] == c["iat"], "{c}");
    let (own, _) = lab.principal_for(&[], "api://idlab-test-api/.default");
    let c = validate(&keys, &own, &iss_v2, "api://idlab-test-api");
    assert_eq!((c["ver"].as_str(), c["azpacr"].as_str()), (Some("2.0"), Some("1")), "{c}");
    assert!(c["azp"].is_string() && c.get("appid").is_none() && c.get("idp").is_none(), "{c}");
    // The token works where it is meant to.
    let path = format!("/subscriptions/{}/resourcegroups?api-version=2024-11-01", lab.sub());
    assert_eq!(lab.send(Some(&arm), "GET", &path, None).status, 200);

    // 2. A VM's identity endpoint: a v1 storage token naming the VM in xms_mirid.
    let nic = lab.network("tok", "nic");
    let vm_id = format!("{}/providers/Microsoft.Compute/virtualMachines/tokvm", lab.rg_path("tok"));
    let r = lab.op(
        "PUT",
        &format!("{vm_id}?api-version=2025-04-01"),
        Some(&lab.vm_body(&nic, json!({"type": "SystemAssigned"}))),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let principal = r.body["identity"]["principalId"].as_str().expect("principal").to_string();
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com/",
        lab.vm_endpoint(&vm_id)
    );
    let t = lab.imds(&url, &[("Metadata", "true")]);
    assert_eq!(t.status, 200, "{}", t.body);
    let mi = t.body["access_token"].as_str().expect("access_token").to_string();
    let c = validate(&keys, &mi, &iss_v1, "https://storage.azure.com/");
    assert_eq!(c["oid"].as_str(), Some(principal.as_str()), "{c}");
    assert_eq!(c["xms_mirid"].as_str().map(str::to_ascii_lowercase), Some(vm_id.to_ascii_lowercase()), "{c}");
    assert_eq!((c["appidacr"].as_str(), c["idtyp"].as_str()), (Some("2"), Some("app")), "{c}");

    // A token is not valid for another key, nor after a change to its body.
    assert!(!rs256_valid(&other_key().jwk("x"), &arm));
    let (head, rest) = arm.split_once('.').expect("jwt");
    let (_, sig) = rest.split_once('.').expect("jwt");
    let mut claims = json_part(rest.split('.').next().expect("body"));
    claims["oid"] = json!(principal);
    let swapped = format!("{head}.{}.{sig}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    assert!(!rs256_valid(&keys[0], &swapped));
    assert_eq!(lab.send(Some(&swapped), "GET", &path, None).status, 401);
}

#[test]
fn tokens_with_another_algorithm_are_refused() {
    let lab = Lab::start();
    let tenant = lab.cloud.info.tenant_id.clone();
    let (_, keys) = discover(&lab, &format!("/{tenant}/v2.0/.well-known/openid-configuration"));
    let path = format!("/subscriptions/{}/resourcegroups?api-version=2024-11-01", lab.sub());
    let good = lab.operator.clone();
    assert_eq!(lab.send(Some(&good), "GET", &path, None).status, 200);
    let jwks_text = lab.send(None, "GET", &format!("/{tenant}/discovery/v2.0/keys"), None).body.to_string();
    let n = b64(keys[0]["n"].as_str().expect("n"));
    let body = good.split('.').nth(1).expect("body").to_string();
    let unsigned =
        |alg: &str| format!("{}.{body}.", URL_SAFE_NO_PAD.encode(json!({ "typ": "JWT", "alg": alg }).to_string()));
    let forged = [
        ("HS256 keyed with the modulus", resigned_hs256(&good, &n)),
        ("HS256 keyed with the JWKS", resigned_hs256(&good, jwks_text.as_bytes())),
        ("HS256 keyed with a secret", resigned_hs256(&good, b"0123456789abcdef0123456789abcdef")),
        ("alg none", unsigned("none")),
        ("alg RS384 over an RS256 signature", {
            let (_, rest) = good.split_once('.').expect("jwt");
            format!(
                "{}.{rest}",
                URL_SAFE_NO_PAD.encode(json!({ "typ": "JWT", "alg": "RS384", "kid": keys[0]["kid"] }).to_string())
            )
        }),
        ("RS256 by another key", lab.forge(Some(&other_key()), |_| {})),
    ];
    for (name, token) in &forged {
        // ARM: Azure's 401.
        let r = lab.send(Some(token), "GET", &path, None);
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert_eq!(r.code(), "InvalidAuthenticationToken", "{name}: {}", r.body);
        assert!(r.header("www-authenticate").is_some_and(|w| w.starts_with("Bearer authorization_uri=")), "{name}");
    }
    // The admin API (same port, same check) and a data plane (blob, its own XML error).
    let r = lab.send(Some(&forged[0].1), "GET", "/_idlab/vms", None);
    assert_eq!(r.status, 401, "{}", r.body);
    let storage = lab.forge(None, |c| c.aud = "https://storage.azure.com/".into());
    let (_, done) = crate::local_blob::storage_account(&lab, "tokrg", "tokblob", json!({}));
    let blob = done["properties"]["primaryEndpoints"]["blob"].as_str().expect("blob endpoint").to_string();
    let list = format!("{blob}?comp=list");
    let send_blob = |t: &str| {
        lab.rt.block_on(async {
            let r = lab
                .http
                .get(&list)
                .bearer_auth(t)
                .header("x-ms-version", "2021-08-06")
                .send()
                .await
                .expect("blob answers");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    };
    assert_ne!(send_blob(&storage).0, 401, "the RS256 storage token authenticates");
    let (status, text) = send_blob(&resigned_hs256(&storage, &n));
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("<Code>InvalidAuthenticationInfo</Code>"), "{text}");
}

/// `idlab local serve` on `state`: (the JSON line, the stderr lines written before the
/// banner ends). The server is stopped before returning.
fn serve_once(state: &std::path::Path) -> (Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_idlab"))
        .args(["local", "serve", "--port", "0", "--state"])
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("the JSON line");
    let info: Value = serde_json::from_str(&line).expect("JSON");
    // The notices are written before the banner's last line.
    let mut banner = String::new();
    while out.read_line(&mut banner).unwrap_or(0) > 0 && !banner.contains("Press Ctrl-C") {}
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    let _ = child.stderr.take().expect("stderr").read_to_string(&mut err);
    (info, err)
}

#[test]
fn an_older_state_directory_refuses_its_hs256_tokens_and_serve_says_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("state");
    crate::common::seed_key(&state);
    let (info, err) = serve_once(&state);
    assert_eq!(err, "", "a new directory gets no notice");
    // Make it look like a directory of the HMAC era: no RSA key, an HMAC key in the state.
    std::fs::remove_file(state.join(KEY_FILE)).expect("remove the key");
    let legacy = [7u8; 32];
    let journal = state.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).expect("journal");
    let b64key = base64::engine::general_purpose::STANDARD.encode(legacy);
    let old = text.replacen(r#""subscription_name":"#, &format!(r#""signing_key":"{b64key}","subscription_name":"#), 1);
    assert_ne!(old, text, "the state's init line was found");
    std::fs::write(&journal, old).expect("journal");

    let (info2, err) = serve_once(&state);
    assert_eq!(info2["tenant_id"], info["tenant_id"], "the same tenant");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("HS256")
            && lines[0].contains("RS256")
            && lines[0].contains("refused")
            && lines[0].contains(KEY_FILE),
        "{err}"
    );
    assert!(!err.contains(&b64key), "the old key is never shown");
    let der = std::fs::read(state.join(KEY_FILE)).expect("a new key");
    assert_ne!(der.as_slice(), include_bytes!("../fixtures/keys/token-signing.key.der").as_slice());
    assert_eq!(
        SigningKey::from_pkcs8(&der).map(|k| k.jwk("x")["n"].as_str().map(str::len)).ok().flatten(),
        Some(342),
        "2048 bits"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join(KEY_FILE)).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The next start says nothing more.
    let (_, err) = serve_once(&state);
    assert_eq!(err, "");

    // A token the older idlab issued (HS256 with the state's HMAC key) is refused by ARM.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cloud = idlab::local::Cloud::start(idlab::local::Config::new(&state)).expect("start");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let tid = cloud.info.tenant_id.clone();
    let claims = json!({
        "aud": "https://management.azure.com/", "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": now, "nbf": now, "exp": now + 3600, "tid": tid,
        "oid": cloud.info.operator_object_id, "sub": cloud.info.operator_object_id,
        "appid": cloud.info.operator_client_id, "azp": cloud.info.operator_client_id,
        "appidacr": "1", "idtyp": "app", "ver": "1.0", "uti": "old",
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","kid":"idlab-local"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&legacy).expect("key");
    mac.update(input.as_bytes());
    let old_token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    let http = idlab::local::attach::client(&cloud.info).expect("client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let url = format!(
        "{}/subscriptions/{}/resourcegroups?api-version=2024-11-01",
        cloud.info.arm_url, cloud.info.subscription_id
    );
    let (old_status, new_status) = rt.block_on(async {
        let old = http.get(&url).bearer_auth(&old_token).send().await.expect("answer").status().as_u16();
        let fresh = idlab::local::attach::operator_token(&cloud.info, &http).await.expect("a new token");
        let new = http.get(&url).bearer_auth(&fresh).send().await.expect("answer").status().as_u16();
        (old, new)
    });
    assert_eq!((old_status, new_status), (401, 200));
    cloud.stop();
}
