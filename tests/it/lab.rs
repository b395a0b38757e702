//! A local cloud per test: started in-process on 127.0.0.1 (its own thread and runtime),
//! driven over real HTTPS with a client that trusts its CA only.

use idlab::local::faults::Faults;
use idlab::local::token::{Claims, SigningKey, issuer, sign};
use idlab::local::{Cloud, Config, attach};
use serde_json::{Value, json};

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body.pointer("/error/code").and_then(Value::as_str).unwrap_or_default()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

pub struct Lab {
    pub cloud: Cloud,
    pub _dir: tempfile::TempDir,
    pub rt: tokio::runtime::Runtime,
    pub http: reqwest::Client,
    pub operator: String,
}

impl Lab {
    pub fn start() -> Lab {
        Lab::with(Faults::default())
    }

    pub fn with(faults: Faults) -> Lab {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        crate::common::seed_key(&dir.path().join("state"));
        let mut config = Config::new(dir.path().join("state"));
        config.port = Some(0);
        config.faults = faults;
        let cloud = Cloud::start(config).expect("local cloud starts");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let http = attach::client(&cloud.info).expect("client");
        let secret = cloud.operator_secret().expect("operator secret");
        let mut lab = Lab { cloud, _dir: dir, rt, http, operator: String::new() };
        lab.operator = lab.token_as(&lab.cloud.info.operator_client_id.clone(), &secret);
        lab
    }

    /// Stop the cloud and start it again on the same state directory, rebinding the ports
    /// it recorded.
    pub fn restart(self) -> Lab {
        let Lab { cloud, _dir, rt, operator, .. } = self;
        cloud.stop();
        let cloud = Cloud::start(Config::new(_dir.path().join("state"))).expect("local cloud restarts");
        // A new client: the old one's pooled connections went with the old server.
        let http = attach::client(&cloud.info).expect("client");
        Lab { cloud, _dir, rt, http, operator }
    }

    pub fn sub(&self) -> String {
        self.cloud.info.subscription_id.clone()
    }

    pub fn rg_path(&self, rg: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{rg}", self.sub())
    }

    /// Send a request; `path` may carry its own query. Absolute URLs are used as they are.
    pub fn send(&self, token: Option<&str>, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let url =
            if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.cloud.info.arm_url) };
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.rt.block_on(async {
            let mut r = self.http.request(m, url);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if let Some(b) = body {
                r = r.json(b);
            }
            let resp = r.send().await.expect("request reaches the local cloud");
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Resp { status, headers, body }
        })
    }

    /// As the operator (Owner on the subscription).
    pub fn op(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        self.send(Some(&self.operator.clone()), method, path, body)
    }

    pub fn token_request(&self, tenant: &str, form: &[(&str, &str)]) -> Resp {
        let url = format!("{}/{tenant}/oauth2/v2.0/token", self.cloud.info.authority_url);
        self.rt.block_on(async {
            let resp = self.http.post(url).form(form).send().await.expect("token endpoint answers");
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.json().await.unwrap_or(Value::Null);
            Resp { status, headers, body }
        })
    }

    pub fn token_as(&self, client_id: &str, secret: &str) -> String {
        let r = self.token_request(
            &self.cloud.info.tenant_id.clone(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", "https://management.azure.com/.default"),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["access_token"].as_str().expect("access_token").to_string()
    }

    /// A new service principal with `roles` [(role, scope)] and a management token for it.
    pub fn principal(&self, roles: &[(&str, &str)]) -> (String, String) {
        let roles: Vec<Value> = roles.iter().map(|(r, s)| json!({ "role": r, "scope": s })).collect();
        let r = self.op("POST", "/_idlab/principals", Some(&json!({ "name": "test", "roles": roles })));
        assert_eq!(r.status, 200, "{}", r.body);
        let client = r.body["client_id"].as_str().expect("client_id").to_string();
        let oid = r.body["object_id"].as_str().expect("object_id").to_string();
        let secret = r.body["secret"].as_str().expect("secret").to_string();
        (self.token_as(&client, &secret), oid)
    }

    /// The operator's token for another audience (`scope`, e.g.
    /// `https://vault.azure.net/.default`).
    pub fn operator_token_for(&self, scope: &str) -> String {
        let secret = self.cloud.operator_secret().expect("operator secret");
        let r = self.token_request(
            &self.cloud.info.tenant_id.clone(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &self.cloud.info.operator_client_id.clone()),
                ("client_secret", &secret),
                ("scope", scope),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["access_token"].as_str().expect("access_token").to_string()
    }

    /// A new service principal with `roles` [(role, scope)], and a token for `scope` (e.g.
    /// `https://vault.azure.net/.default`) as it: (token, object id).
    pub fn principal_for(&self, roles: &[(&str, &str)], scope: &str) -> (String, String) {
        let roles: Vec<Value> = roles.iter().map(|(r, s)| json!({ "role": r, "scope": s })).collect();
        let r = self.op("POST", "/_idlab/principals", Some(&json!({ "name": "data-user", "roles": roles })));
        assert_eq!(r.status, 200, "{}", r.body);
        let tok = self.token_request(
            &self.cloud.info.tenant_id.clone(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", r.body["client_id"].as_str().unwrap_or_default()),
                ("client_secret", r.body["secret"].as_str().unwrap_or_default()),
                ("scope", scope),
            ],
        );
        assert_eq!(tok.status, 200, "{}", tok.body);
        let token = tok.body["access_token"].as_str().expect("access_token").to_string();
        (token, r.body["object_id"].as_str().unwrap_or_default().to_string())
    }

    /// A token signed with the cloud's key (or `key`) from valid operator claims (v1, as for
    /// ARM), then altered.
    pub fn forge(&self, key: Option<&SigningKey>, alter: impl FnOnce(&mut Claims)) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let tid = self.cloud.info.tenant_id.clone();
        let mut c = Claims {
            aud: "https://management.azure.com/".into(),
            iss: issuer(&tid, true),
            iat: now,
            nbf: now,
            exp: now + 3600,
            tid,
            oid: self.cloud.info.operator_object_id.clone(),
            sub: self.cloud.info.operator_object_id.clone(),
            appid: self.cloud.info.operator_client_id.clone(),
            appidacr: "1".into(),
            idtyp: "app".into(),
            ver: "1.0".into(),
            uti: "test".into(),
            ..Claims::default()
        };
        alter(&mut c);
        sign(key.unwrap_or(&self.cloud.shared().key), &c)
    }

    /// GET against a plain-HTTP identity endpoint.
    pub fn imds(&self, url: &str, headers: &[(&str, &str)]) -> Resp {
        self.rt.block_on(async {
            let mut r = self.http.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            let resp = r.send().await.expect("identity endpoint answers");
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.json().await.unwrap_or(Value::Null);
            Resp { status, headers, body }
        })
    }

    /// Create a group, a VNet with subnet `default` and a NIC; returns the NIC id.
    pub fn network(&self, rg: &str, nic: &str) -> String {
        let rgp = self.rg_path(rg);
        let r = self.op("PUT", &format!("{rgp}?api-version=2024-11-01"), Some(&json!({ "location": "eastus" })));
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
        let vnet = json!({ "location": "eastus", "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] }, "subnets": [{ "name": "default", "properties": { "addressPrefix": "10.0.0.0/24" } }] } });
        let r = self.op(
            "PUT",
            &format!("{rgp}/providers/Microsoft.Network/virtualNetworks/{nic}-vnet?api-version=2024-07-01"),
            Some(&vnet),
        );
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
        let subnet = format!("{rgp}/providers/Microsoft.Network/virtualNetworks/{nic}-vnet/subnets/default");
        let body = json!({ "location": "eastus", "properties": { "ipConfigurations": [{ "name": "ipconfig1", "properties": { "subnet": { "id": subnet } } }] } });
        let id = format!("{rgp}/providers/Microsoft.Network/networkInterfaces/{nic}");
        let r = self.op("PUT", &format!("{id}?api-version=2024-07-01"), Some(&body));
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
        id
    }

    /// A VM body with the given identity.
    pub fn vm_body(&self, nic: &str, identity: Value) -> Value {
        json!({
            "location": "eastus",
            "identity": identity,
            "properties": {
                "hardwareProfile": { "vmSize": "Standard_B1s" },
                "storageProfile": { "imageReference": { "publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest" }, "osDisk": { "createOption": "FromImage" } },
                "osProfile": { "computerName": "vm", "adminUsername": "azureuser", "adminPassword": "Not-A-Real-Secret-42" },
                "networkProfile": { "networkInterfaces": [{ "id": nic, "properties": { "primary": true } }] }
            }
        })
    }

    /// The identity endpoint of a VM (from the admin API).
    pub fn vm_endpoint(&self, vm_id: &str) -> String {
        let r = self.op("GET", "/_idlab/vms", None);
        r.body["value"]
            .as_array()
            .and_then(|a| a.iter().find(|v| v["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(vm_id))))
            .and_then(|v| v["endpoint"].as_str())
            .expect("the VM has an identity endpoint")
            .to_string()
    }
}
