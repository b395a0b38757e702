//! Reading a recording (both formats) into exchanges: entries put back in wall-clock order
//! by their `Date` header, long-running-operation polls and retry repeats folded into the
//! exchange they belong to.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

/// Where a recorded request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Arm,
    /// Microsoft Graph (`/v1.0/…`).
    Graph,
    /// The retired Azure AD Graph (`api-version=1.6`, `1.42-previewInternal`).
    AadGraph,
    /// A Data Lake Store account's WebHDFS endpoint.
    DataLake,
    /// A vault's data plane (`{vault}.vault.azure.net`; host-less `/secrets/…` in the older
    /// SessionRecords).
    KeyVault,
}

/// One recorded request and its answer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub method: String,
    /// Host-less path and query, as recorded.
    pub url: String,
    pub host: Host,
    pub req_body: String,
    pub req_type: Option<String>,
    pub status: u16,
    /// Response headers, names in lower case, first value.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Seconds since the epoch from the `Date` response header.
    pub date: Option<i64>,
}

impl Entry {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The path in lower case without query, `//` collapsed.
    pub fn path_key(&self) -> String {
        path_key(&self.url)
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// An exchange: one request and its answer, with the polls that followed it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// 1-based, in replay order.
    pub n: usize,
    pub entry: Entry,
    pub polls: Vec<Entry>,
    /// How many of the exchanges after this one Azure answered while this one's operation
    /// still ran (their `Date` is not after that of the last recorded poll that still reported
    /// it running): the replay sends them while the local operation runs, and polls it to its
    /// end after them.
    pub overlap: usize,
}

impl Exchange {
    /// The `Date` of the last recorded poll that still reported the operation running
    /// (`Location` answering 202, `Azure-AsyncOperation` answering a running `status`).
    fn last_running_poll(&self) -> Option<i64> {
        self.polls
            .iter()
            .filter(|p| {
                p.status == 202
                    || p.json().is_some_and(|b| {
                        matches!(b["status"].as_str(), Some("InProgress" | "Accepted" | "Running" | "Deleting"))
                    })
            })
            .filter_map(|p| p.date)
            .max()
    }
}

/// A loaded recording.
#[derive(Debug)]
pub struct Recording {
    pub subscription: Option<String>,
    pub tenant: Option<String>,
    pub exchanges: Vec<Exchange>,
}

/// A host-less path in lower case, without query or scheme and host, `//` collapsed.
pub fn path_key(url: &str) -> String {
    let no_host = strip_host(url);
    let p = no_host.split('?').next().unwrap_or_default().to_ascii_lowercase();
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out.trim_end_matches('/').to_string()
}

/// `https://host/path?q` → `/path?q`.
pub fn strip_host(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}

fn host_of(url: &str) -> Host {
    if is_vault_url(url) {
        return Host::KeyVault;
    }
    let lower = url.to_ascii_lowercase();
    let query = lower.split_once('?').map(|(_, q)| q).unwrap_or_default();
    if lower.starts_with("/v1.0/") || lower.starts_with("/beta/") {
        Host::Graph
    } else if query.split('&').any(|p| p == "api-version=1.6" || p.starts_with("api-version=1.42")) {
        Host::AadGraph
    } else if lower.starts_with("/webhdfs/") || lower.starts_with("/webhdfsext/") {
        Host::DataLake
    } else {
        Host::Arm
    }
}

/// A vault data-plane URL: an absolute one on a `vault.azure.net` (or test `vault-int`) host,
/// or a host-less path of the secrets, keys or certificates collections.
pub fn is_vault_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if let Some((_, rest)) = lower.split_once("://") {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        return host.split(':').next().is_some_and(|h| h.ends_with(".vault.azure.net") || h.contains(".vault-int."));
    }
    let first = lower.split('?').next().unwrap_or_default().split('/').find(|s| !s.is_empty()).unwrap_or_default();
    matches!(first, "secrets" | "deletedsecrets" | "keys" | "deletedkeys" | "certificates" | "deletedcertificates")
}

/// The path a vault data-plane operation's client polls until it ends: deleting a secret is
/// polled on its `deletedsecrets/{name}`, recovering it on `secrets/{name}` (the SDKs' delete
/// and recover operations; the service answers 404 until the change is done).
fn vault_poll_target(e: &Entry) -> Option<String> {
    if e.host != Host::KeyVault || !(200..300).contains(&e.status) {
        return None;
    }
    let key = e.path_key();
    let segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    match (e.method.as_str(), segs.as_slice()) {
        ("DELETE", ["secrets", name]) => Some(format!("/deletedsecrets/{name}")),
        ("POST", ["deletedsecrets", name, "recover"]) => Some(format!("/secrets/{name}")),
        _ => None,
    }
}

fn headers(v: Option<&Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in v.and_then(Value::as_object).into_iter().flatten() {
        let first = match v {
            Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or_default().to_string(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        out.push((k.to_ascii_lowercase(), first));
    }
    out
}

/// `Tue, 11 Sep 2018 21:21:24 GMT` → seconds since the epoch.
pub fn http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (day, month, year, hms) = (parts.get(1)?, parts.get(2)?, parts.get(3)?, parts.get(4)?);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(month))? as u8 + 1;
    let date =
        time::Date::from_calendar_date(year.parse().ok()?, time::Month::try_from(m).ok()?, day.parse().ok()?).ok()?;
    let mut t = hms.split(':').map(|x| x.parse::<u8>().ok());
    let tm = time::Time::from_hms(t.next()??, t.next()??, t.next()??).ok()?;
    Some(time::PrimitiveDateTime::new(date, tm).assume_utc().unix_timestamp())
}

fn body_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn content_type(h: Option<&Value>) -> Option<String> {
    headers(h).into_iter().find(|(k, _)| k == "content-type").map(|(_, v)| v)
}

/// The entries of a recording file, in file order.
fn entries(doc: &Value) -> Vec<Entry> {
    let mut out = Vec::new();
    if let Some(list) = doc.get("Entries").and_then(Value::as_array) {
        for e in list {
            let url = e["RequestUri"].as_str().unwrap_or_default().to_string();
            let hs = headers(e.get("ResponseHeaders"));
            let date = hs.iter().find(|(k, _)| k == "date").and_then(|(_, v)| http_date(v));
            out.push(Entry {
                method: e["RequestMethod"].as_str().unwrap_or("GET").to_string(),
                host: host_of(&url),
                url,
                req_body: body_text(e.get("RequestBody")),
                req_type: content_type(e.get("RequestHeaders")),
                status: e["StatusCode"].as_u64().unwrap_or(0) as u16,
                headers: hs,
                body: body_text(e.get("ResponseBody")),
                date,
            });
        }
    } else if let Some(map) = doc.as_object() {
        // AutoRest: one key per call, in call order.
        for v in map.values() {
            let rq = &v["Request"];
            let rs = &v["Response"];
            let url = strip_host(rq["RequestUri"].as_str().unwrap_or_default()).to_string();
            let mut hs = headers(rs.get("Headers"));
            hs.extend(headers(rs.get("ContentHeaders")));
            let date = hs.iter().find(|(k, _)| k == "date").and_then(|(_, v)| http_date(v));
            out.push(Entry {
                method: rq["Method"].as_str().unwrap_or("GET").to_string(),
                host: host_of(&url),
                url,
                req_body: body_text(rq.get("Content")),
                req_type: content_type(rq.get("ContentHeaders")),
                status: rs["StatusCode"].as_u64().unwrap_or(0) as u16,
                headers: hs,
                body: body_text(rs.get("Content")),
                date,
            });
        }
    }
    out
}

/// Put entries back in wall-clock order: a stable sort on the `Date` header (an entry
/// without one keeps the time of the entry before it).
fn wall_clock(mut list: Vec<Entry>) -> Vec<Entry> {
    let mut last = 0;
    let mut keyed: Vec<(i64, usize, Entry)> = Vec::new();
    for (i, e) in list.drain(..).enumerate() {
        let t = e.date.unwrap_or(last);
        last = t;
        keyed.push((t, i, e));
    }
    keyed.sort_by_key(|(t, i, _)| (*t, *i));
    let mut out: Vec<Entry> = Vec::with_capacity(keyed.len());
    let mut exists: HashMap<String, bool> = HashMap::new();
    let mut i = 0;
    while i < keyed.len() {
        let j = keyed[i..].iter().position(|(t, _, _)| *t != keyed[i].0).map_or(keyed.len(), |k| i + k);
        let block: Vec<Entry> = keyed[i..j].iter().map(|(_, _, e)| e.clone()).collect();
        out.extend(consistent(block, &mut exists));
        i = j;
    }
    out
}

/// The recorder grouped entries by request (method and URI), keeping each group's own order:
/// within one second, order them so each answer agrees with what exists (a 404 read before
/// the PUT that made the resource, a 2xx read after it, a read that shows a write's answer
/// after that write), keeping each group's order.
fn consistent(mut block: Vec<Entry>, exists: &mut HashMap<String, bool>) -> Vec<Entry> {
    let mut out = Vec::with_capacity(block.len());
    while !block.is_empty() {
        let fits = |k: usize, e: &Entry| {
            let first_of_group = !block[..k].iter().any(|b| b.method == e.method && b.url == e.url);
            let read = e.method == "GET" || e.method == "HEAD";
            let want = match (read, e.status) {
                (true, 404) => Some(false),
                (true, 200..=299) => Some(true),
                _ => None,
            };
            // A read that answers exactly what a write of the same second answered shows
            // that write: it follows it.
            let shows_pending_write = read
                && e.json().is_some_and(|b| {
                    block.iter().any(|w| {
                        matches!(w.method.as_str(), "PUT" | "PATCH")
                            && w.path_key() == e.path_key()
                            && w.json().is_some_and(|wb| wb == b)
                    })
                });
            first_of_group
                && !shows_pending_write
                && want.is_none_or(|w| exists.get(&e.path_key()).is_none_or(|x| *x == w))
        };
        let pick = (0..block.len()).find(|&k| fits(k, &block[k])).unwrap_or(0);
        let e = block.remove(pick);
        let ok = (200..300).contains(&e.status);
        match e.method.as_str() {
            "PUT" if ok => {
                exists.insert(e.path_key(), true);
            }
            "DELETE" if ok => {
                exists.insert(e.path_key(), false);
            }
            "GET" | "HEAD" if ok || e.status == 404 => {
                exists.insert(e.path_key(), ok);
            }
            _ => {}
        }
        out.push(e);
    }
    out
}

/// Operation URLs announced by any answer: `Azure-AsyncOperation`, and a `Location` that is
/// not the resource itself.
fn operation_paths(list: &[Entry]) -> HashSet<String> {
    let mut ops = HashSet::new();
    for e in list {
        if let Some(a) = e.header("azure-asyncoperation") {
            ops.insert(path_key(a));
        }
        if let Some(l) = e.header("location")
            && (e.status == 202 || path_key(l) != e.path_key())
        {
            ops.insert(path_key(l));
        }
    }
    ops
}

/// A path that only an operation poll uses (for polls whose announcing answer the recorder
/// did not keep).
fn looks_like_poll(path: &str) -> bool {
    let segs: Vec<&str> = path.split('/').collect();
    segs.iter().any(|s| {
        matches!(*s, "operations" | "operationresults" | "asyncoperations")
            || s.ends_with("azureasyncoperation")
            || s.ends_with("operationresults")
    }) && segs.iter().any(|s| *s == "locations" || *s == "operationresults" || s.ends_with("operationresults"))
}

/// Whether `e` repeats `prev` because `prev` was refused for now (throttled or failed).
fn retry_of(prev: &Entry, e: &Entry) -> bool {
    (prev.status == 429 || prev.status == 408 || prev.status >= 500)
        && prev.method == e.method
        && prev.url == e.url
        && prev.req_body == e.req_body
}

pub fn load(root: &Path, name: &str) -> Recording {
    let text = std::fs::read_to_string(root.join(name)).expect("recording readable");
    let doc: Value = serde_json::from_str(&text).expect("recording is JSON");
    let list = wall_clock(entries(&doc));
    let subscription = doc
        .pointer("/Variables/SubscriptionId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| list.iter().find_map(|e| id_after(&e.url, "/subscriptions/")));
    let tenant = doc.pointer("/Variables/TenantId").and_then(Value::as_str).map(str::to_string);
    let ops = operation_paths(&list);
    let mut exchanges: Vec<Exchange> = Vec::new();
    // A vault operation being polled: its exchange, its target path, whether a 404 was seen.
    let mut vault_poll: Option<(usize, String, bool)> = None;
    for e in list {
        let key = e.path_key();
        if let Some((n, target, seen_404)) = vault_poll.clone()
            && e.host == Host::KeyVault
            && e.method == "GET"
            && key == target
            && (e.status == 404 || seen_404)
        {
            // 404s while the change is under way, then the first answer that is not one
            // (other reads may come between them: the test's own checks).
            vault_poll = (e.status == 404).then_some((n, target, true));
            exchanges[n - 1].polls.push(e);
            continue;
        }
        if e.method != "GET" {
            vault_poll = None;
        }
        let is_poll = e.method == "GET" && e.host == Host::Arm && (ops.contains(&key) || looks_like_poll(&key));
        if is_poll {
            // The newest exchange that announced this URL, else the newest one.
            let owner = exchanges.iter_mut().rev().find(|x| {
                ["azure-asyncoperation", "location"]
                    .iter()
                    .any(|h| x.entry.header(h).is_some_and(|u| path_key(u) == key))
                    || x.polls.iter().any(|p| p.path_key() == key)
            });
            if let Some(x) = owner {
                x.polls.push(e);
                continue;
            }
            if let Some(x) = exchanges.last_mut() {
                x.polls.push(e);
                continue;
            }
        }
        if let Some(prev) = exchanges.last_mut()
            && retry_of(&prev.entry, &e)
        {
            prev.entry = e;
            continue;
        }
        if let Some(t) = vault_poll_target(&e) {
            vault_poll = Some((exchanges.len() + 1, t, false));
        }
        exchanges.push(Exchange { n: exchanges.len() + 1, entry: e, polls: Vec::new(), overlap: 0 });
    }
    overlaps(&mut exchanges);
    Recording { subscription, tenant, exchanges }
}

/// Mark each exchange with the later exchanges Azure answered while its operation ran: the
/// ones that follow it in wall-clock order up to the last poll that still reported it running.
fn overlaps(exchanges: &mut [Exchange]) {
    for i in 0..exchanges.len() {
        let Some(until) = exchanges[i].last_running_poll() else { continue };
        exchanges[i].overlap =
            exchanges[i + 1..].iter().take_while(|x| x.entry.date.is_some_and(|d| d <= until)).count();
    }
}

/// The GUID after `prefix` in `url` (case-insensitive).
pub fn id_after(url: &str, prefix: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let i = lower.find(prefix)? + prefix.len();
    let s: String = url[i..].chars().take_while(|c| c.is_ascii_hexdigit() || *c == '-').collect();
    (s.len() == 36).then_some(s)
}

/// Every recording under `root`, sorted (`identity/TestCrud.json`).
pub fn all(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root).expect("recordings folder").flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).expect("family folder").flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                out.push(format!("{}/{name}", dir.file_name().to_string_lossy()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_paths() {
        assert_eq!(http_date("Thu, 01 Jan 1970 00:01:01 GMT"), Some(61));
        assert_eq!(path_key("https://management.azure.com//subscriptions/A/x?api-version=1"), "/subscriptions/a/x");
        assert!(looks_like_poll("/subscriptions/s/providers/microsoft.network/locations/westus/operations/g"));
        assert!(!looks_like_poll("/subscriptions/s/resourcegroups/operations"));
        assert!(is_vault_url("https://v1.vault.azure.net/secrets/a?api-version=7.4"));
        assert!(is_vault_url("//deletedsecrets/a?api-version=7.0"));
        assert!(!is_vault_url("/subscriptions/s/providers/Microsoft.KeyVault/vaults/v"));
        assert!(!is_vault_url("https://management.azure.com/subscriptions/s"));
    }
}

#[cfg(test)]
mod overlap_tests {
    use super::*;

    fn entry(method: &str, url: &str, status: u16, date: i64, body: &str) -> Entry {
        Entry {
            method: method.into(),
            url: url.into(),
            host: Host::Arm,
            req_body: String::new(),
            req_type: None,
            status,
            headers: Vec::new(),
            body: body.into(),
            date: Some(date),
        }
    }

    /// Exchanges Azure answered before the last poll that still reported an operation running
    /// overlap it; one answered after, or after a final poll only, does not.
    #[test]
    fn exchanges_answered_while_an_operation_ran_overlap_it() {
        let x = |n, e| Exchange { n, entry: e, polls: Vec::new(), overlap: 0 };
        let mut del = x(1, entry("DELETE", "/subscriptions/s/resourcegroups/g", 202, 100, ""));
        del.polls = vec![
            entry("GET", "/subscriptions/s/operationresults/o", 202, 100, ""),
            entry("GET", "/subscriptions/s/operationresults/o", 202, 130, ""),
            entry("GET", "/subscriptions/s/operationresults/o", 200, 160, ""),
        ];
        let mut put = x(2, entry("PUT", "/subscriptions/s/resourcegroups/g/providers/a/b/c", 201, 101, ""));
        put.polls = vec![entry("GET", "/op", 200, 140, r#"{"status":"Succeeded"}"#)];
        let mut list =
            vec![del, put, x(3, entry("GET", "/subscriptions/s/resourcegroups/g/providers/a/b/c", 200, 130, "{}"))];
        list.push(x(4, entry("GET", "/subscriptions/s/resourcegroups/g/providers/a/b/c", 404, 161, "")));
        overlaps(&mut list);
        assert_eq!(list.iter().map(|x| x.overlap).collect::<Vec<_>>(), vec![2, 0, 0, 0]);
    }
}
