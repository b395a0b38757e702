//! Replaying one recording against a fresh local cloud: recorded ids mapped to local ones,
//! what the recorded test made before recording began created first, each exchange sent in
//! order, its long-running operation polled to its end on the local cloud, and the answers
//! compared (`compare`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::compare::{self, Diff, Found, Norm};
use super::recording::{Entry, Exchange, Host, Recording, path_key, strip_host};
use crate::lab::Lab;

/// PASS, FAIL or SKIP (with its reason).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    Fail,
    Skip(String),
}

/// What one exchange came to.
#[derive(Debug)]
pub struct Outcome {
    pub n: usize,
    pub label: String,
    pub family: String,
    pub azure: u16,
    pub local: Option<u16>,
    pub verdict: Verdict,
    pub found: Found,
}

/// A local answer.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.text).ok()
    }
}

const GUID_LEN: usize = 36;

fn is_guid(s: &str) -> bool {
    s.len() == GUID_LEN
        && s.chars()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// Lower-cased path segments, empty ones dropped.
fn segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(str::to_ascii_lowercase).collect()
}

/// Whether the local provider table (or the front door) serves a lower-cased type.
fn served(t: &str) -> bool {
    match t.split_once('/') {
        Some(("microsoft.authorization", rest)) => matches!(rest, "roleassignments" | "roledefinitions"),
        Some(("microsoft.managedidentity", "identities")) => true,
        _ => idlab::local::table::accepted(t).is_some(),
    }
}

/// The types a path addresses, one per `providers` segment: (type, is provider registration).
fn provider_types(segs: &[String]) -> Vec<String> {
    let idx: Vec<usize> = segs.iter().enumerate().filter(|(_, s)| *s == "providers").map(|(i, _)| i).collect();
    let mut out = Vec::new();
    for (k, &q) in idx.iter().enumerate() {
        let end = idx.get(k + 1).copied().unwrap_or(segs.len());
        let rest = &segs[q + 1..end];
        if rest.len() < 2 || (q == 2 && rest.len() == 2 && matches!(rest[1].as_str(), "register" | "unregister")) {
            // The provider list, one namespace, or its registration: the Resources API.
            continue;
        }
        let mut t = rest[0].clone();
        for s in rest.iter().skip(1).step_by(2) {
            t.push('/');
            t.push_str(s);
        }
        out.push(t);
    }
    out
}

/// Why an exchange is skipped: its type or operation is not in the provider table.
pub fn skip_reason(e: &Entry) -> Option<String> {
    match e.host {
        Host::Graph => return graph_skip_reason(e),
        Host::AadGraph => {
            let v = api_version(&e.url).unwrap_or_default();
            return Some(format!(
                "Azure AD Graph (graph.windows.net, api-version {v}): retired, the local cloud serves Microsoft Graph v1.0"
            ));
        }
        Host::DataLake => return None,
        Host::KeyVault => return vault_skip_reason(e),
        Host::Arm => {}
    }
    let segs = segments(&path_key(&e.url));
    let types = provider_types(&segs);
    for (i, t) in types.iter().enumerate() {
        if !served(t) {
            return Some(if i + 1 < types.len() {
                format!("depends on a SKIP: its scope is a {t}, not in the provider table")
            } else {
                format!("{t} is not in the provider table")
            });
        }
    }
    None
}

/// Microsoft Graph v1.0 reads of principals are served by the local Graph (src/local/graph.rs);
/// anything else of Graph is not.
fn graph_skip_reason(e: &Entry) -> Option<String> {
    let key = path_key(&e.url);
    let segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let served = e.method == "GET"
        && segs.first() == Some(&"v1.0")
        && matches!(segs.get(1), Some(&("users" | "groups" | "serviceprincipals" | "directoryobjects")))
        && segs.len() <= 3;
    (!served).then(|| format!("Microsoft Graph {} {key}: not served by the local Graph", e.method))
}

/// The family an exchange belongs to, by namespace.
pub fn family(e: &Entry) -> String {
    match e.host {
        Host::Graph | Host::AadGraph => return "directory".into(),
        Host::DataLake => return "datalake".into(),
        Host::KeyVault => return "keyvault".into(),
        Host::Arm => {}
    }
    let segs = segments(&path_key(&e.url));
    let ns = provider_types(&segs).last().and_then(|t| t.split('/').next().map(str::to_string));
    match ns.as_deref() {
        None | Some("microsoft.resources") => "resources",
        Some("microsoft.authorization") => "authorization",
        Some("microsoft.managedidentity") => "identity",
        Some("microsoft.compute") => "compute",
        Some("microsoft.network") => "network",
        Some("microsoft.keyvault") => "keyvault",
        Some("microsoft.storage") => "storage",
        Some("microsoft.sql") => "sql",
        Some("microsoft.datalakestore") => "datalake",
        Some(other) => other.trim_start_matches("microsoft."),
    }
    .to_string()
}

/// `PUT …/userAssignedIdentities/ps1174 (2015-08-31-preview)`.
pub fn label(e: &Entry) -> String {
    let (path, query) = e.url.split_once('?').unwrap_or((e.url.as_str(), ""));
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let tail = if segs.len() > 2 {
        format!("…/{}", segs[segs.len() - 2..].join("/"))
    } else {
        format!("/{}", segs.join("/"))
    };
    let tail: String = tail.chars().take(70).collect();
    let mut extra = Vec::new();
    for p in query.split('&') {
        if let Some(v) = p.strip_prefix("api-version=") {
            extra.push(v.to_string());
        } else if let Some(v) = p.strip_prefix("op=") {
            extra.push(format!("op={v}"));
        }
    }
    format!("{} {tail} ({})", e.method, extra.join(", "))
}

/// The resource a path addresses when its type is a served table type.
fn resource_path(e: &Entry) -> Option<String> {
    if e.host != Host::Arm {
        return None;
    }
    let key = path_key(&e.url);
    let segs = segments(&key);
    let q = segs.iter().rposition(|s| s == "providers")?;
    let rest = &segs[q + 1..];
    if rest.len() < 3 || rest.len().is_multiple_of(2) {
        return None;
    }
    let t = provider_types(&segs).pop()?;
    idlab::local::table::provider(&t).map(|_| key)
}

/// The `api-version` of a recorded URL.
fn api_version(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|p| p.strip_prefix("api-version=")).map(str::to_string)
}

/// The api-version to make a parent of (lower-cased) type `t` at, among those the local cloud
/// accepts for it: the one the recording uses for `t`, else for a type beneath it, else for
/// another type of its provider; else the newest it accepts (a stable one before a preview).
/// `None` when the local cloud does not serve `t`.
fn parent_version(t: &str, recorded: &BTreeMap<String, String>) -> Option<String> {
    let accepted = idlab::local::table::accepted(t)?;
    let ok = |v: &&String| accepted.iter().any(|a| a.eq_ignore_ascii_case(v));
    let ns = t.split('/').next().unwrap_or_default();
    let below = format!("{t}/");
    recorded
        .get(t)
        .filter(ok)
        .or_else(|| recorded.iter().filter(|(k, _)| k.starts_with(&below)).map(|(_, v)| v).find(ok))
        .or_else(|| recorded.iter().filter(|(k, _)| k.split('/').next() == Some(ns)).map(|(_, v)| v).find(ok))
        .cloned()
        .or_else(|| {
            let stable = accepted.iter().filter(|v| !v.contains("preview")).max();
            stable.or_else(|| accepted.iter().max()).map(|v| v.to_string())
        })
}

/// The replay of one recording.
pub struct Replay<'a> {
    lab: &'a Lab,
    /// (recorded, local), lower case.
    map: Vec<(String, String)>,
    datalake_token: Option<String>,
    /// The operator's token for Microsoft Graph.
    graph_token: Option<String>,
    /// Lower-cased account path of the newest Data Lake Store account written.
    datalake_account: Option<String>,
    /// The vaults' data planes: recorded vault names and the local vault URIs.
    vaults: VaultPlanes,
    pub notes: Vec<String>,
}

impl<'a> Replay<'a> {
    pub fn new(lab: &'a Lab) -> Replay<'a> {
        Replay {
            lab,
            map: Vec::new(),
            datalake_token: None,
            graph_token: None,
            datalake_account: None,
            vaults: VaultPlanes::default(),
            notes: Vec::new(),
        }
    }

    fn mapped(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (r, l) in &self.map {
            out = replace_ci(&out, r, l);
        }
        out
    }

    fn norm(&self) -> Norm {
        Norm { back: self.map.iter().map(|(r, l)| (l.clone(), r.clone())).collect() }
    }

    /// Map the recorded subscription, tenants and principals to local ones, and create what
    /// the test had made before recording began.
    pub fn setup(&mut self, rec: &Recording) {
        let info = &self.lab.cloud.info;
        if let Some(s) = &rec.subscription {
            self.map.push((s.to_ascii_lowercase(), info.subscription_id.to_ascii_lowercase()));
        }
        let live: Vec<&Exchange> = rec.exchanges.iter().filter(|x| skip_reason(&x.entry).is_none()).collect();
        let mut tenants: BTreeSet<String> = rec.tenant.iter().map(|t| t.to_ascii_lowercase()).collect();
        let mut principals: BTreeSet<String> = BTreeSet::new();
        for x in &live {
            if let Ok(body) = serde_json::from_str::<Value>(&x.entry.req_body) {
                collect(&body, &mut |k, v| {
                    let v = v.to_ascii_lowercase();
                    if !is_guid(&v) {
                        return;
                    }
                    match k {
                        "tenantId" => {
                            tenants.insert(v);
                        }
                        "principalId" | "objectId" => {
                            principals.insert(v);
                        }
                        _ => {}
                    }
                });
            }
            let url = super::recording::strip_host(&x.entry.url).replace("%20", " ").to_ascii_lowercase();
            if let Some(i) = url.find("principalid eq '") {
                let g: String = url[i + 16..].chars().take(GUID_LEN).collect();
                if is_guid(&g) {
                    principals.insert(g);
                }
            }
        }
        for t in tenants {
            self.map.push((t, info.tenant_id.to_ascii_lowercase()));
        }
        for p in principals {
            let r =
                self.lab.op("POST", "/_idlab/principals", Some(&json!({ "name": format!("recorded-{}", &p[..8]) })));
            match r.body["object_id"].as_str() {
                Some(oid) => self.map.push((p, oid.to_ascii_lowercase())),
                None => self.notes.push(format!("principal {p} not made: {}", r.body)),
            }
        }
        self.precreate(&live);
        self.vault_setup(rec);
    }

    /// Resource groups used but never made, and resources whose first recorded use is not
    /// their creation, are made first (from the recorded GET body where there is one).
    fn precreate(&mut self, live: &[&Exchange]) {
        let mut groups: BTreeMap<String, String> = BTreeMap::new();
        let mut made_groups: BTreeSet<String> = BTreeSet::new();
        let mut first_use: BTreeMap<String, &Entry> = BTreeMap::new();
        let mut created: BTreeSet<String> = BTreeSet::new();
        let mut get_body: BTreeMap<String, Value> = BTreeMap::new();
        let mut identities: BTreeSet<String> = BTreeSet::new();
        let mut used_groups: BTreeSet<String> = BTreeSet::new();
        // The api-version the recording first sends for each type it addresses.
        let mut recorded_versions: BTreeMap<String, String> = BTreeMap::new();
        for x in live {
            let e = &x.entry;
            let key = path_key(&e.url);
            let segs = segments(&key);
            if e.host == Host::Arm
                && let (Some(t), Some(v)) = (provider_types(&segs).pop(), api_version(&e.url))
            {
                recorded_versions.entry(t).or_insert(v);
            }
            if e.host == Host::Arm && segs.len() >= 4 && segs[0] == "subscriptions" && segs[2] == "resourcegroups" {
                // A group counts as used when Azure answered something in it that needs it.
                if (200..300).contains(&e.status) && !(segs.len() == 4 && e.method == "DELETE") {
                    used_groups.insert(segs[3].clone());
                }
                let orig: Vec<&str> = strip_host(&e.url)
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .collect();
                let name = orig.get(3).map(|s| s.to_string()).unwrap_or_default();
                let loc = e.json().and_then(|b| b["location"].as_str().map(str::to_string));
                groups.entry(segs[3].clone()).or_insert(name);
                if segs.len() == 4 && e.method == "PUT" {
                    made_groups.insert(segs[3].clone());
                }
                if let Some(l) = loc {
                    get_body.entry(format!("rg-location:{}", segs[3])).or_insert(json!(l));
                }
            }
            if let Some(rp) = resource_path(e) {
                first_use.entry(rp.clone()).or_insert(e);
                // A create: 201, or 202 for providers that create asynchronously (a vault's
                // create answers 200, but its first use is then the PUT itself).
                if e.method == "PUT" && (e.status == 201 || e.status == 202) {
                    created.insert(rp.clone());
                }
                if e.method == "GET"
                    && e.status == 200
                    && let Some(b) = e.json()
                {
                    get_body.entry(rp).or_insert(b);
                }
            }
            if let Ok(body) = serde_json::from_str::<Value>(&e.req_body) {
                find_identities(&body, &mut identities);
            }
        }
        for id in &identities {
            let segs = segments(id);
            if segs.len() >= 4 {
                groups
                    .entry(segs[3].clone())
                    .or_insert_with(|| id.split('/').filter(|s| !s.is_empty()).nth(3).unwrap_or_default().to_string());
                used_groups.insert(segs[3].clone());
            }
        }
        let sub = self.lab.sub();
        for (lower, name) in &groups {
            if made_groups.contains(lower) || !used_groups.contains(lower) {
                continue;
            }
            let loc =
                get_body.get(&format!("rg-location:{lower}")).and_then(Value::as_str).unwrap_or("westus").to_string();
            let r = self.lab.op(
                "PUT",
                &format!("/subscriptions/{sub}/resourceGroups/{name}?api-version=2021-04-01"),
                Some(&json!({ "location": loc })),
            );
            if r.status >= 300 {
                self.notes.push(format!("group {name} not made: {}", r.body));
            }
        }
        for id in &identities {
            if created.contains(&path_key(id)) {
                continue;
            }
            let path = self.mapped(id);
            let r =
                self.lab.op("PUT", &format!("{path}?api-version=2023-01-31"), Some(&json!({ "location": "westus" })));
            if r.status >= 300 {
                self.notes.push(format!("identity {id} not made: {}", r.body));
            }
        }
        // Parents of what the recording addresses that existed before it began: never made in
        // it, and not beneath a resource it makes (a storage account's `blobServices/default`
        // comes with the account the recording creates). Each is made at the api-version the
        // recording uses for its type or provider (`parent_version`).
        let made_in_recording = |p: &str| {
            created.contains(p) || first_use.get(p).is_some_and(|e| e.method == "PUT" && (200..300).contains(&e.status))
        };
        let mut parents: BTreeSet<String> = BTreeSet::new();
        for (rp, e) in &first_use {
            let segs: Vec<&str> = rp.split('/').filter(|s| !s.is_empty()).collect();
            let Some(q) = segs.iter().rposition(|s| *s == "providers") else { continue };
            let mut end = segs.len();
            let mut chain = Vec::new();
            while end > q + 3 + 2 {
                end -= 2;
                chain.push(format!("/{}", segs[..end].join("/")));
            }
            // `chain` runs up to the top-level resource; a parent at or beneath one the
            // recording makes is not made first.
            for parent in &chain {
                let made = chain
                    .iter()
                    .filter(|a| *a == parent || parent.starts_with(&format!("{a}/")))
                    .any(|a| made_in_recording(a));
                if !made && (200..300).contains(&e.status) {
                    parents.insert(parent.clone());
                }
            }
        }
        for parent in parents {
            let orig = self.mapped(&parent);
            let Some(t) = provider_types(&segments(&parent)).pop() else { continue };
            let Some(version) = parent_version(&t, &recorded_versions) else {
                self.notes.push(format!("parent {parent} not made: {t} is not served"));
                continue;
            };
            let r =
                self.lab.op("PUT", &format!("{orig}?api-version={version}"), Some(&json!({ "location": "westus" })));
            if r.status >= 300 {
                self.notes.push(format!("parent {parent} not made: {}", r.body));
            }
        }
        for (rp, e) in first_use {
            if created.contains(&rp) || e.method == "PUT" || !(200..300).contains(&e.status) {
                continue;
            }
            let mut body = get_body.get(&rp).cloned().unwrap_or_else(|| json!({ "location": "westus" }));
            if let Some(o) = body.as_object_mut() {
                for k in ["id", "name", "type", "etag"] {
                    o.remove(k);
                }
            }
            let body: Value = serde_json::from_str(&self.mapped(&body.to_string())).unwrap_or(body);
            let version =
                e.url.split("api-version=").nth(1).map(|v| v.split('&').next().unwrap_or(v)).unwrap_or("2021-04-01");
            let path = self.mapped(strip_host(e.url.split('?').next().unwrap_or_default()));
            let r = self.lab.op("PUT", &format!("{path}?api-version={version}"), Some(&body));
            self.settle(&r.headers);
            if r.status >= 300 {
                self.notes.push(format!("{rp} not made first: {} {}", r.status, r.body));
            }
        }
    }

    /// Poll an operation the local cloud announced until it ends (setup only).
    fn settle(&self, headers: &reqwest::header::HeaderMap) {
        if let Some(url) = headers.get("azure-asyncoperation").and_then(|v| v.to_str().ok()) {
            for _ in 0..100 {
                let r = self.lab.op("GET", url, None);
                if r.body["status"] != "InProgress" {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    fn send(&self, token: &str, method: &str, url: &str, ctype: Option<&str>, body: &str) -> Answer {
        self.send_as(Some(token), method, url, ctype, body)
    }

    /// Send with a bearer token, or without one (the first request of Key Vault clients).
    fn send_as(&self, token: Option<&str>, method: &str, url: &str, ctype: Option<&str>, body: &str) -> Answer {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.lab.rt.block_on(async {
            let mut r = self.lab.http.request(m, url);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if !body.is_empty() || method == "PUT" || method == "POST" || method == "PATCH" {
                r = r.header("content-type", ctype.unwrap_or("application/json")).body(body.to_string());
            }
            let resp = r.send().await.expect("request reaches the local cloud");
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let text = resp.text().await.unwrap_or_default();
            Answer { status, headers, text }
        })
    }

    /// Poll a local operation URL until it ends: `Azure-AsyncOperation` (`status` leaves
    /// InProgress) or `Location` (the answer stops being 202).
    fn poll(&self, url: &str, location: bool) -> Answer {
        let mut last = self.send(&self.lab.operator, "GET", url, None, "");
        for _ in 0..200 {
            if !running(&last, location) {
                break;
            }
            let ms = last.header("retry-after-ms").and_then(|v| v.parse::<u64>().ok()).unwrap_or(20).min(100);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            last = self.send(&self.lab.operator, "GET", url, None, "");
        }
        last
    }

    fn datalake_url(&mut self, e: &Entry) -> Option<String> {
        let account = self.datalake_account.clone()?;
        let r = self.lab.op("GET", &format!("{account}?api-version=2016-11-01"), None);
        let endpoint = r.body.pointer("/properties/endpoint").and_then(Value::as_str)?.to_string();
        Some(format!("https://{endpoint}{}", self.mapped(&e.url)))
    }

    /// Replay every exchange in order. An exchange whose recorded operation Azure was still
    /// running when it answered the next ones (`Exchange::overlap`) is held: the replay sends
    /// those next ones while the local operation runs (the lab gives its type a duration long
    /// enough, `faults`), then polls it to its end and compares that end.
    pub fn run_all(&mut self, rec: &Recording) -> Vec<Outcome> {
        let mut skipped = Vec::new();
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut held: Vec<Held> = Vec::new();
        for x in &rec.exchanges {
            let (out, h) = self.run(x, &mut skipped, holds(rec, x));
            outcomes.push(out);
            held.extend(h);
            let (due, later): (Vec<Held>, Vec<Held>) = held.into_iter().partition(|h| h.x.n + h.x.overlap <= x.n);
            held = later;
            for h in due {
                self.finish(h, &mut outcomes);
            }
        }
        for h in held {
            self.finish(h, &mut outcomes);
        }
        outcomes
    }

    /// Poll a held operation to its end and compare the end; a local operation that had
    /// already ended when the exchanges Azure answered during it were sent is a FAIL
    /// (`replay:order`): the replay could not keep the recording's order.
    fn finish(&self, h: Held, outcomes: &mut [Outcome]) {
        let Some(out) = outcomes.iter_mut().find(|o| o.n == h.x.n) else { return };
        let (url, location) = match (&h.asy, &h.loc) {
            (Some(u), _) => (u, false),
            (None, Some(u)) => (u, true),
            (None, None) => return,
        };
        if !running(&self.send(&self.lab.operator, "GET", url, None, ""), location) {
            let detail = format!(
                "Azure answered exchanges {}–{} while this operation ran; the local one had ended before they were all answered",
                h.x.n + 1,
                h.x.n + h.x.overlap
            );
            out.found.diffs.push(Diff { field: "replay:order".into(), detail });
        }
        let asy = h.asy.as_deref().map(|u| self.poll(u, false));
        let loc = h.loc.as_deref().map(|u| self.poll(u, true));
        self.compare_end(&h.x, asy.as_ref(), loc.as_ref(), &mut out.found);
        if !out.found.diffs.is_empty() {
            out.verdict = Verdict::Fail;
        }
    }

    /// Send one exchange and compare the answers; with `hold`, an operation the local cloud
    /// announces is not polled yet but returned, to be finished later (`run_all`).
    fn run(&mut self, x: &Exchange, skipped_paths: &mut Vec<String>, hold: bool) -> (Outcome, Option<Held>) {
        let e = &x.entry;
        let mut out = Outcome {
            n: x.n,
            label: label(e),
            family: family(e),
            azure: e.status,
            local: None,
            verdict: Verdict::Pass,
            found: Found::default(),
        };
        let key = path_key(&e.url);
        let reason = skip_reason(e).or_else(|| {
            skipped_paths
                .iter()
                .find(|p| key.starts_with(p.as_str()))
                .map(|p| format!("depends on a SKIP: {p} was not made"))
        });
        if let Some(r) = reason {
            if e.method == "PUT" {
                skipped_paths.push(key);
            }
            out.verdict = Verdict::Skip(r);
            return (out, None);
        }
        let (url, token) = match e.host {
            Host::KeyVault => {
                self.vault_run(x, &mut out);
                return (out, None);
            }
            Host::DataLake => {
                let Some(url) = self.datalake_url(e) else {
                    out.verdict = Verdict::Skip("depends on a SKIP: no Data Lake Store account was made".into());
                    return (out, None);
                };
                if self.datalake_token.is_none() {
                    self.datalake_token = Some(self.lab.operator_token_for("https://datalake.azure.net//.default"));
                }
                (url, self.datalake_token.clone().unwrap_or_default())
            }
            Host::Graph => {
                if self.graph_token.is_none() {
                    self.graph_token = Some(self.lab.operator_token_for("https://graph.microsoft.com/.default"));
                }
                let url = format!("{}{}", self.lab.cloud.info.arm_url, self.mapped(&e.url));
                (url, self.graph_token.clone().unwrap_or_default())
            }
            _ => (format!("{}{}", self.lab.cloud.info.arm_url, self.mapped(&e.url)), self.lab.operator.clone()),
        };
        let body = self.mapped(&e.req_body);
        let ans = self.send(&token, &e.method, &url, e.req_type.as_deref(), &body);
        out.local = Some(ans.status);
        if e.host == Host::Arm
            && e.method == "PUT"
            && ans.status < 300
            && key.contains("/providers/microsoft.datalakestore/accounts/")
        {
            self.datalake_account = Some(strip_host(url.split('?').next().unwrap_or_default()).to_string());
        }
        if e.host == Host::Arm && e.method == "PUT" && ans.status < 300 {
            self.vault_learn(&key, &ans);
        }
        let asy = ans.header("azure-asyncoperation");
        let loc = if ans.status == 202 { ans.header("location") } else { None };
        let held = hold && ans.status == e.status && (asy.is_some() || loc.is_some());
        let local_async = asy.as_deref().filter(|_| !held).map(|u| self.poll(u, false));
        let local_location = loc.as_deref().filter(|_| !held).map(|u| self.poll(u, true));
        self.compare(x, &ans, local_async.as_ref(), local_location.as_ref(), &mut out.found);
        if !out.found.diffs.is_empty() {
            out.verdict = Verdict::Fail;
        }
        (out, held.then(|| Held { x: x.clone(), asy, loc }))
    }

    fn compare(&self, x: &Exchange, ans: &Answer, asy: Option<&Answer>, loc: Option<&Answer>, found: &mut Found) {
        let e = &x.entry;
        let norm = self.norm();
        let push =
            |found: &mut Found, field: &str, detail: String| found.diffs.push(Diff { field: field.into(), detail });
        if ans.status != e.status {
            push(found, "status", format!("Azure {}, local {}: {}", e.status, ans.status, snippet(&ans.text)));
            return;
        }
        // Retry-After counts where Azure's answer announced an operation (some APIs send it on
        // every answer).
        let lro = e.status == 202 || e.header("azure-asyncoperation").is_some();
        for h in ["azure-asyncoperation", "location", "retry-after"] {
            if e.header(h).is_some() && ans.header(h).is_none() && (h != "retry-after" || lro) {
                push(found, &format!("header:{h}"), "Azure sent it, the local cloud did not".into());
            }
        }
        let azure = e.json();
        let local = ans.json();
        if e.status >= 400
            && let Some(code) = azure.as_ref().and_then(compare::error_code)
        {
            let mine = local.as_ref().and_then(compare::error_code);
            if mine.as_deref() != Some(code.as_str()) {
                push(found, "code", format!("Azure {code}, local {}", mine.unwrap_or_default()));
            }
        }
        match (&azure, &local) {
            (Some(a), Some(l)) => compare::structure(a, l, "body", &norm, found),
            (Some(a), None) if !a.is_null() => {
                push(found, "body", format!("Azure answered JSON, local: {}", snippet(&ans.text)))
            }
            _ => {}
        }
        self.compare_end(x, asy, loc, found);
    }

    /// The operation's end: the last recorded poll of each kind against the local one.
    fn compare_end(&self, x: &Exchange, asy: Option<&Answer>, loc: Option<&Answer>, found: &mut Found) {
        let e = &x.entry;
        let norm = self.norm();
        let push =
            |found: &mut Found, field: &str, detail: String| found.diffs.push(Diff { field: field.into(), detail });
        let async_path = e.header("azure-asyncoperation").map(path_key);
        let loc_path = e.header("location").map(path_key).filter(|p| *p != e.path_key());
        let last_of = |p: &Option<String>| p.as_ref().and_then(|p| x.polls.iter().rev().find(|q| q.path_key() == *p));
        if let (Some(rec), Some(mine)) = (last_of(&async_path), asy)
            && let (Some(a), Some(l)) = (rec.json(), mine.json())
        {
            compare::structure(&a, &l, "poll:body", &norm, found);
        }
        if let (Some(rec), Some(mine)) = (last_of(&loc_path), loc) {
            if rec.status != mine.status {
                push(found, "poll:status", format!("Azure {}, local {}", rec.status, mine.status));
            } else if let (Some(a), Some(l)) = (rec.json(), mine.json()) {
                compare::structure(&a, &l, "poll:body", &norm, found);
            } else if rec.json().is_some_and(|a| !a.is_null()) {
                push(found, "poll:body", format!("Azure answered JSON, local: {}", snippet(&mine.text)));
            }
        }
    }
}

/// An operation the replay holds open while the exchanges Azure answered during it are sent.
struct Held {
    x: Exchange,
    /// The local `Azure-AsyncOperation` and `Location` (of a 202) URLs.
    asy: Option<String>,
    loc: Option<String>,
}

/// Whether a local poll answer says the operation still runs: a `Location` poll answering
/// 202, an `Azure-AsyncOperation` poll whose `status` is not final.
fn running(a: &Answer, location: bool) -> bool {
    if location {
        a.status == 202
    } else {
        a.json().is_some_and(|b| matches!(b["status"].as_str(), Some("InProgress" | "Accepted" | "Running")))
    }
}

/// How long the local cloud runs an operation the replay holds (`faults`): the exchanges sent
/// meanwhile take milliseconds; the margin is for a loaded machine (`finish` fails the
/// exchange if it was not enough).
const HELD_LRO_MS: u64 = 8000;

/// Whether the replay holds `x`'s operation open: Azure answered later exchanges while it ran,
/// and at least one of them is replayed.
fn holds(rec: &Recording, x: &Exchange) -> bool {
    rec.exchanges.iter().skip(x.n).take(x.overlap).any(|y| skip_reason(&y.entry).is_none())
}

/// The ARM type whose operation an exchange starts, lower case (`microsoft.resources/
/// resourcegroups` for a group).
fn operation_type(e: &Entry) -> Option<String> {
    let segs = segments(&path_key(&e.url));
    if segs.len() == 4 && segs[0] == "subscriptions" && segs[2] == "resourcegroups" {
        return Some("microsoft.resources/resourcegroups".into());
    }
    provider_types(&segs).pop()
}

/// The local cloud's configuration for replaying `rec`: the types of the operations the replay
/// holds run `HELD_LRO_MS` (every other operation keeps the default, ending at once).
pub fn faults(rec: &Recording) -> idlab::local::faults::Faults {
    let mut f = idlab::local::faults::Faults::default();
    for x in rec.exchanges.iter().filter(|x| x.entry.host == Host::Arm && holds(rec, x)) {
        if let Some(t) = operation_type(&x.entry) {
            f.per_type.insert(t, idlab::local::faults::TypeFaults { latency_ms: None, lro_ms: Some(HELD_LRO_MS) });
        }
    }
    f
}

fn snippet(s: &str) -> String {
    let s: String = s.chars().take(160).collect();
    if s.is_empty() { "(empty)".into() } else { s }
}

fn replace_ci(hay: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return hay.to_string();
    }
    let lower = hay.to_ascii_lowercase();
    let mut out = String::with_capacity(hay.len());
    let mut i = 0;
    while let Some(j) = lower[i..].find(needle) {
        out.push_str(&hay[i..i + j]);
        out.push_str(with);
        i += j + needle.len();
    }
    out.push_str(&hay[i..]);
    out
}

/// Call `f(key, value)` for every string value in `v` (recursively).
fn collect(v: &Value, f: &mut impl FnMut(&str, &str)) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if let Value::String(s) = x {
                    f(k, s);
                }
                collect(x, f);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, f)),
        _ => {}
    }
}

/// User-assigned identity ids a body refers to (values and `userAssignedIdentities` keys).
fn find_identities(v: &Value, out: &mut BTreeSet<String>) {
    fn check(s: &str, out: &mut BTreeSet<String>) {
        if s.to_ascii_lowercase().contains("/providers/microsoft.managedidentity/userassignedidentities/")
            && s.starts_with("/subscriptions/")
        {
            out.insert(s.to_string());
        }
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                check(k, out);
                if let Value::String(s) = x {
                    check(s, out);
                }
                find_identities(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| find_identities(x, out)),
        _ => {}
    }
}

// Key Vault data plane: the recorded vault host is mapped to the local vault's `vaultUri` (a
// vault the recording made through ARM, or one made first from what the recording shows),
// requests carry a token for the vault audience, except the first unauthenticated request
// Key Vault clients send to learn the challenge; delete and recover are polled to their end.
// Secret values never leave these functions: local answers are compared with their `value`
// redacted.

/// The vaults a replay addresses through their data plane.
#[derive(Default)]
struct VaultPlanes {
    /// Recorded vaults: (lower-cased name, base URL `https://{host}`), in first-use order.
    recorded: Vec<(String, String)>,
    /// Local vault URI without its trailing `/`, by lower-cased vault name.
    local: BTreeMap<String, String>,
    /// The operator's token for `https://vault.azure.net`.
    token: Option<String>,
}

/// The local vault plane serves secrets; keys and certificates are not in it.
fn vault_skip_reason(e: &Entry) -> Option<String> {
    let key = path_key(&e.url);
    match key.split('/').find(|s| !s.is_empty()).unwrap_or_default() {
        "secrets" | "deletedsecrets" => None,
        other => Some(format!("Key Vault {other}: the local vault plane serves secrets only")),
    }
}

/// `https://{host}` of an absolute URL, lower case, with the vault name (the host's first label).
fn vault_base(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?']).next()?.to_ascii_lowercase();
    let name = host.split(['.', ':']).next().filter(|n| !n.is_empty())?.to_string();
    Some((name, format!("{}://{host}", scheme.to_ascii_lowercase())))
}

/// The recorded vault of a data-plane entry: its URL's host, or for host-less recordings the
/// host of the ids in its answer.
fn recorded_vault(e: &Entry) -> Option<(String, String)> {
    vault_base(&e.url).or_else(|| {
        let body = e.json()?;
        ["id", "recoveryId", "kid"].iter().find_map(|k| body.get(*k).and_then(Value::as_str)).and_then(vault_base)
    })
}

/// The path and query of a data-plane URL, the recorder's leading `//` made one `/`.
fn vault_path(url: &str) -> String {
    format!("/{}", strip_host(url).trim_start_matches('/'))
}

/// A JSON answer with a secret's `value` replaced, so no comparison or message shows it.
fn redacted(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut m)) if m.get("value").is_some_and(Value::is_string) => {
            m.insert("value".into(), json!("(redacted)"));
            Value::Object(m).to_string()
        }
        _ => text.to_string(),
    }
}

/// A `WWW-Authenticate` challenge: its scheme and its parameters (name in lower case, value).
fn challenge(h: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let params = rest
        .split(',')
        .filter_map(|p| p.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string()))
        .collect();
    (scheme.to_ascii_lowercase(), params)
}

/// Where two challenges differ in shape: the scheme, the parameter names in order, the
/// `resource` (or `scope`) they name, and an authority that ends with a tenant id.
fn challenge_diff(azure: &str, local: &str) -> Option<String> {
    let (a_scheme, a) = challenge(azure);
    let (l_scheme, l) = challenge(local);
    let names = |p: &[(String, String)]| p.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let value = |p: &[(String, String)], k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let tenant_last =
        |v: Option<String>| v.is_some_and(|v| is_guid(v.trim_end_matches('/').rsplit('/').next().unwrap_or("")));
    if a_scheme != l_scheme {
        return Some(format!("scheme: Azure `{a_scheme}`, local `{l_scheme}`"));
    }
    if names(&a) != names(&l) {
        return Some(format!("parameters: Azure {:?}, local {:?}", names(&a), names(&l)));
    }
    for k in ["resource", "scope"] {
        if value(&a, k) != value(&l, k) {
            return Some(format!("{k}: Azure {:?}, local {:?}", value(&a, k), value(&l, k)));
        }
    }
    for k in ["authorization", "authorization_uri"] {
        if value(&a, k).is_some() && tenant_last(value(&a, k)) != tenant_last(value(&l, k)) {
            return Some(format!("{k} does not end with a tenant id locally: {:?}", value(&l, k)));
        }
    }
    None
}

impl Replay<'_> {
    /// Find the vaults the recording addresses through their data plane; make the ones it
    /// does not create through ARM, as the recording shows them: the retention it reports
    /// (`recoverableDays`), RBAC where Azure's answers name an RBAC assignment (else an access
    /// policy), and data-plane rights for the operator that replays.
    fn vault_setup(&mut self, rec: &Recording) {
        let mut made_by_recording = BTreeSet::new();
        let (mut days, mut rbac) = (None, false);
        for x in &rec.exchanges {
            let e = &x.entry;
            if e.host == Host::Arm && e.method == "PUT" {
                let segs = segments(&path_key(&e.url));
                if let [.., ns, t, name] = segs.as_slice()
                    && ns == "microsoft.keyvault"
                    && t == "vaults"
                {
                    made_by_recording.insert(name.clone());
                }
            }
            for e in std::iter::once(e).chain(&x.polls).filter(|e| e.host == Host::KeyVault) {
                if let Some(v) = recorded_vault(e)
                    && !self.vaults.recorded.contains(&v)
                {
                    self.vaults.recorded.push(v);
                }
                rbac |= e.header("x-ms-keyvault-rbac-assignment-id").is_some();
                days = days.or_else(|| e.json()?.pointer("/attributes/recoverableDays")?.as_u64());
            }
        }
        let todo: Vec<(String, String)> =
            self.vaults.recorded.iter().filter(|(n, _)| !made_by_recording.contains(n)).cloned().collect();
        for (name, base) in todo {
            match self.vault_make(&name, days.filter(|d| (7..=90).contains(d)).unwrap_or(90), rbac) {
                Ok(uri) => {
                    self.map.push((base, uri.to_ascii_lowercase()));
                    self.vaults.local.insert(name, uri);
                }
                Err(why) => self.notes.push(format!("vault {name} not made: {why}")),
            }
        }
    }

    /// Make a vault (and its group) the recording used but did not make; its URI.
    fn vault_make(&self, name: &str, days: u64, rbac: bool) -> Result<String, String> {
        let info = &self.lab.cloud.info;
        let rg = self.lab.rg_path("rg-vault-replay");
        let r = self.lab.op("PUT", &format!("{rg}?api-version=2021-04-01"), Some(&json!({ "location": "westus" })));
        if r.status >= 300 {
            return Err(r.body.to_string());
        }
        let all = ["get", "list", "set", "delete", "recover", "purge", "backup", "restore"];
        let policies = if rbac {
            json!([])
        } else {
            json!([{ "tenantId": info.tenant_id, "objectId": info.operator_object_id, "permissions": { "secrets": all } }])
        };
        let vault = format!("{rg}/providers/Microsoft.KeyVault/vaults/{name}");
        let body = json!({ "location": "westus", "properties": {
            "tenantId": info.tenant_id, "sku": { "family": "A", "name": "standard" }, "accessPolicies": policies,
            "enableRbacAuthorization": rbac, "softDeleteRetentionInDays": days } });
        let r = self.lab.op("PUT", &format!("{vault}?api-version=2023-07-01"), Some(&body));
        let uri = r.body.pointer("/properties/vaultUri").and_then(Value::as_str).map(|u| u.trim_end_matches('/'));
        let Some(uri) = uri.map(str::to_string) else { return Err(format!("{} {}", r.status, r.body)) };
        if rbac {
            // Key Vault Secrets Officer (built-in role b86a8fe4-…) on the vault.
            let role = format!(
                "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
                info.subscription_id
            );
            let body = json!({ "properties": { "roleDefinitionId": role, "principalId": info.operator_object_id } });
            let path = format!(
                "{vault}/providers/Microsoft.Authorization/roleAssignments/7c1e0f52-3b0a-4d7e-9a55-2f6e3c1d9b10?api-version=2022-04-01"
            );
            let r = self.lab.op("PUT", &path, Some(&body));
            if r.status >= 300 {
                return Err(format!("role assignment: {} {}", r.status, r.body));
            }
        }
        Ok(uri)
    }

    /// A vault the recording makes through ARM: its local URI, for its data-plane calls.
    fn vault_learn(&mut self, key: &str, ans: &Answer) {
        let segs = segments(key);
        let [.., ns, t, name] = segs.as_slice() else { return };
        if ns != "microsoft.keyvault" || t != "vaults" {
            return;
        }
        let Some(uri) = ans.json().and_then(|b| b.pointer("/properties/vaultUri")?.as_str().map(str::to_string)) else {
            return;
        };
        let uri = uri.trim_end_matches('/').to_string();
        if let Some((_, base)) = self.vaults.recorded.iter().find(|(n, _)| n == name)
            && !self.map.iter().any(|(r, _)| r == base)
        {
            self.map.push((base.clone(), uri.to_ascii_lowercase()));
        }
        self.vaults.local.insert(name.clone(), uri);
    }

    /// The local URI of the vault a data-plane entry addresses.
    fn vault_uri(&self, e: &Entry) -> Option<String> {
        let name =
            recorded_vault(e).map(|(n, _)| n).or_else(|| self.vaults.recorded.first().map(|(n, _)| n.clone()))?;
        self.vaults.local.get(&name).cloned()
    }

    fn vault_token(&mut self) -> String {
        if self.vaults.token.is_none() {
            self.vaults.token = Some(self.lab.operator_token_for("https://vault.azure.net/.default"));
        }
        self.vaults.token.clone().unwrap_or_default()
    }

    /// Send one data-plane exchange and compare: status, error code and body structure as
    /// for ARM, the challenge's shape on a 401, and the end of a delete or recover poll.
    fn vault_run(&mut self, x: &Exchange, out: &mut Outcome) {
        let e = &x.entry;
        let Some(uri) = self.vault_uri(e) else {
            out.verdict = Verdict::Skip("depends on a SKIP: no local vault for the recorded vault host".into());
            return;
        };
        // The recorded request had no token when Azure answered it with the challenge.
        let token =
            if e.status == 401 && e.header("www-authenticate").is_some() { None } else { Some(self.vault_token()) };
        let url = format!("{uri}{}", self.mapped(&vault_path(&e.url)));
        let body = self.mapped(&e.req_body);
        let ans = self.send_as(token.as_deref(), &e.method, &url, e.req_type.as_deref(), &body);
        let ans = Answer { status: ans.status, text: redacted(&ans.text), headers: ans.headers };
        out.local = Some(ans.status);
        // A secret's version is the service's: later requests name Azure's, so map it.
        let version = |v: Option<Value>| {
            v?.get("id")?.as_str()?.trim_end_matches('/').rsplit('/').next().map(str::to_ascii_lowercase)
        };
        if e.method == "PUT"
            && e.status == 200
            && let (Some(rec), Some(mine)) = (version(e.json()), version(ans.json()))
            && rec.len() == 32
        {
            self.map.push((rec, mine));
        }
        self.compare(x, &ans, None, None, &mut out.found);
        if ans.status == e.status {
            if let Some(want) = e.header("www-authenticate") {
                let diff = match ans.header("www-authenticate") {
                    Some(mine) => challenge_diff(want, &mine),
                    None => Some("Azure sent it, the local cloud did not".into()),
                };
                if let Some(detail) = diff {
                    out.found.diffs.push(Diff { field: "header:www-authenticate".into(), detail });
                }
            }
            if let Some(last) = x.polls.last() {
                self.vault_poll(&uri, last, &mut out.found);
            }
        }
        if !out.found.diffs.is_empty() {
            out.verdict = Verdict::Fail;
        }
    }

    /// Poll the local vault as the client polled Azure (while it answers 404) and compare the
    /// end with Azure's last poll.
    fn vault_poll(&mut self, uri: &str, last: &Entry, found: &mut Found) {
        let url = format!("{uri}{}", self.mapped(&vault_path(&last.url)));
        let token = self.vault_token();
        let mut ans = self.send_as(Some(&token), "GET", &url, None, "");
        for _ in 0..50 {
            if ans.status != 404 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            ans = self.send_as(Some(&token), "GET", &url, None, "");
        }
        if ans.status != last.status {
            let detail = format!("Azure {}, local {}: {}", last.status, ans.status, snippet(&redacted(&ans.text)));
            found.diffs.push(Diff { field: "poll:status".into(), detail });
        } else if let (Some(a), Ok(l)) = (last.json(), serde_json::from_str::<Value>(&redacted(&ans.text))) {
            compare::structure(&a, &l, "poll:body", &self.norm(), found);
        }
    }
}

#[cfg(test)]
mod vault_tests {
    use super::*;

    #[test]
    fn challenges_are_compared_by_shape_and_values_are_redacted() {
        let azure = r#"Bearer authorization="https://login.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#;
        let local = r#"Bearer authorization="https://127.0.0.1:1234/0c6a9b3e-0000-4000-8000-000000000001", resource="https://vault.azure.net""#;
        assert_eq!(challenge_diff(azure, local), None);
        let other = r#"Bearer authorization="https://127.0.0.1:1234/common", resource="https://vault.azure.net""#;
        assert!(challenge_diff(azure, other).is_some_and(|d| d.contains("tenant")));
        let resource = r#"Bearer authorization="https://127.0.0.1:1234/0c6a9b3e-0000-4000-8000-000000000001", resource="https://management.azure.com""#;
        assert!(challenge_diff(azure, resource).is_some_and(|d| d.starts_with("resource")));
        assert!(challenge_diff(azure, r#"Basic realm="x""#).is_some());
        let shown = redacted(r#"{"value":"s3cr3t","id":"https://v/secrets/a/1"}"#);
        assert!(!shown.contains("s3cr3t") && shown.contains("https://v/secrets/a/1"), "{shown}");
        assert_eq!(vault_path("//secrets/a/?api-version=7.0"), "/secrets/a/?api-version=7.0");
        assert_eq!(
            vault_base("https://Tcac.vault.azure.net/secrets/a"),
            Some(("tcac".into(), "https://tcac.vault.azure.net".into()))
        );
    }
}

#[cfg(test)]
mod setup_tests {
    use super::*;

    /// A parent is made at the api-version the recording uses for its type, else for a type
    /// beneath it, else for its provider, else the newest the local cloud accepts; never at
    /// one the local cloud refuses for it (the fixed 2023-01-31 it once used for a blob service).
    #[test]
    fn a_parent_is_made_at_an_api_version_of_the_recording_the_local_cloud_accepts() {
        let rec = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(t, v)| (t.to_string(), v.to_string())).collect()
        };
        let blob = "microsoft.storage/storageaccounts/blobservices";
        let containers = rec(&[("microsoft.storage/storageaccounts/blobservices/containers", "2021-06-01")]);
        assert_eq!(parent_version(blob, &containers).as_deref(), Some("2021-06-01"));
        let provider = rec(&[("microsoft.storage/storageaccounts", "2019-06-01")]);
        assert_eq!(parent_version(blob, &provider).as_deref(), Some("2019-06-01"));
        // A version the local cloud does not accept for the type is passed over.
        let msi = rec(&[("microsoft.managedidentity/userassignedidentities", "2023-01-31")]);
        let newest = parent_version(blob, &msi).expect("blob services are served");
        let accepted = idlab::local::table::accepted(blob).expect("served");
        assert!(accepted.contains(&newest.as_str()) && !newest.contains("preview"), "{newest}");
        assert!(accepted.iter().filter(|v| !v.contains("preview")).all(|v| *v <= newest.as_str()), "{newest}");
        assert_eq!(parent_version("microsoft.web/sites", &msi), None);
    }
}
