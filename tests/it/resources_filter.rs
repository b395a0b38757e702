//! `/resources` `$filter` as ARM takes it, lists paged with `nextLink`, and idlab's own client
//! following every `nextLink` (plan, list and destroy with a page size of 1).

use serde_json::{Value, json};

use crate::common::Served;
use crate::lab::Lab;

const IDS: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
const NSGS: &str = "Microsoft.Network/networkSecurityGroups";

/// Two groups: `rg-a` with identities `alpha` (tag env=dev) and `beta` (env=prod) and an NSG
/// `alpha-nsg`; `rg-b` with an identity `alpha` (no tags).
fn seed(lab: &Lab) {
    for g in ["rg-a", "rg-b"] {
        let r = lab.op(
            "PUT",
            &format!("{}?api-version=2024-11-01", lab.rg_path(g)),
            Some(&json!({ "location": "eastus" })),
        );
        assert!(r.status < 300, "{}", r.body);
    }
    for (g, t, name, tags) in [
        ("rg-a", IDS, "alpha", json!({ "env": "dev" })),
        ("rg-a", IDS, "beta", json!({ "env": "prod" })),
        ("rg-a", NSGS, "alpha-nsg", json!({})),
        ("rg-b", IDS, "alpha", json!({})),
    ] {
        let v = if t == IDS { "2024-11-30" } else { "2024-07-01" };
        let path = format!("{}/providers/{t}/{name}?api-version={v}", lab.rg_path(g));
        let r = lab.op("PUT", &path, Some(&json!({ "location": "eastus", "tags": tags })));
        assert!(r.status < 300, "{}", r.body);
    }
}

/// (group, name) of what a filtered subscription list answers (all pages), sorted.
fn listed(lab: &Lab, filter: &str) -> Result<Vec<(String, String)>, (u16, String)> {
    let mut next = format!("/subscriptions/{}/resources?api-version=2021-04-01&$filter={filter}", lab.sub());
    let mut out = Vec::new();
    loop {
        let r = lab.op("GET", &next, None);
        if r.status != 200 {
            return Err((r.status, r.code().to_string()));
        }
        for v in r.body["value"].as_array().into_iter().flatten() {
            let id = v["id"].as_str().unwrap_or_default();
            let group = id.split('/').nth(4).unwrap_or_default().to_string();
            out.push((group, v["name"].as_str().unwrap_or_default().to_string()));
        }
        match r.body["nextLink"].as_str() {
            Some(n) => next = n.to_string(),
            None => break,
        }
    }
    out.sort();
    Ok(out)
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| ((*a).to_string(), (*b).to_string())).collect()
}

#[test]
fn filters_arm_takes_and_the_ones_it_refuses() {
    let lab = Lab::start();
    seed(&lab);
    let ok = |f: &str| listed(&lab, f).unwrap_or_else(|e| panic!("{f}: {e:?}"));
    // What `az keyvault set-policy` without -g sends: type and name, joined by `and`.
    assert_eq!(
        ok(&format!("resourceType%20eq%20'{IDS}'%20and%20name%20eq%20'alpha'")),
        pairs(&[("rg-a", "alpha"), ("rg-b", "alpha")])
    );
    assert_eq!(ok("name%20eq%20'ALPHA'%20and%20resourceGroup%20eq%20'rg-b'"), pairs(&[("rg-b", "alpha")]));
    assert_eq!(
        ok("resourceGroup%20eq%20'rg-a'%20and%20name%20ne%20'beta'"),
        pairs(&[("rg-a", "alpha"), ("rg-a", "alpha-nsg")])
    );
    assert_eq!(ok(&format!("resourceType%20eq%20'{NSGS}'")), pairs(&[("rg-a", "alpha-nsg")]));
    assert_eq!(
        ok("substringof('nsg',%20name)%20or%20substringof('bet',%20name)"),
        pairs(&[("rg-a", "alpha-nsg"), ("rg-a", "beta")])
    );
    assert_eq!(
        ok(&format!("substringof('alp',%20name)%20and%20resourceType%20eq%20'{IDS}'")),
        pairs(&[("rg-a", "alpha"), ("rg-b", "alpha")])
    );
    assert_eq!(ok("tagName%20eq%20'env'"), pairs(&[("rg-a", "alpha"), ("rg-a", "beta")]));
    assert_eq!(ok("startswith(tagName,%20'en')"), pairs(&[("rg-a", "alpha"), ("rg-a", "beta")]));
    assert_eq!(ok("tagName%20eq%20'env'%20and%20tagValue%20eq%20'prod'"), pairs(&[("rg-a", "beta")]));
    // Filtered by tag name and value, ARM leaves the tags out of the answer.
    let r = lab.op(
        "GET",
        &format!("/subscriptions/{}/resources?api-version=2021-04-01&$filter=tagName%20eq%20'env'%20and%20tagValue%20eq%20'prod'", lab.sub()),
        None,
    );
    assert!(r.body["value"][0].get("tags").is_none(), "{}", r.body);
    let r = lab.op(
        "GET",
        &format!("/subscriptions/{}/resources?api-version=2021-04-01&$filter=tagName%20eq%20'env'", lab.sub()),
        None,
    );
    assert!(r.body["value"][0]["tags"].is_object(), "{}", r.body);
    // What ARM refuses: tags with anything else, a tag value alone, `or` outside substringof,
    // substringof with a name, unknown properties and operators.
    for bad in [
        "tagName%20eq%20'env'%20and%20name%20eq%20'alpha'",
        "tagValue%20eq%20'prod'",
        "name%20eq%20'alpha'%20or%20name%20eq%20'beta'",
        "substringof('a',%20name)%20and%20name%20eq%20'alpha'",
        "sku%20eq%20'x'",
        "name%20gt%20'a'",
        "name%20eq%20'unterminated",
    ] {
        assert_eq!(listed(&lab, bad), Err((400, "InvalidFilterInQueryString".to_string())), "{bad}");
    }
}

#[test]
fn lists_page_with_next_link_at_the_page_size_set_through_the_admin_api() {
    let lab = Lab::start();
    seed(&lab);
    let all = listed(&lab, &format!("resourceType%20eq%20'{IDS}'")).expect("list");
    assert_eq!(all.len(), 3);
    let r = lab.op("GET", "/_idlab/paging", None);
    assert_eq!(r.body["page_size"], 1000, "ARM's page size by default: {}", r.body);
    assert_eq!(lab.op("PUT", "/_idlab/paging", Some(&json!({ "page_size": 2 }))).status, 200);
    let first = lab.op(
        "GET",
        &format!("/subscriptions/{}/resources?api-version=2021-04-01&$filter=resourceType%20eq%20'{IDS}'", lab.sub()),
        None,
    );
    assert_eq!(first.body["value"].as_array().map(Vec::len), Some(2), "{}", first.body);
    let next = first.body["nextLink"].as_str().expect("a nextLink after a full page");
    assert!(next.contains("%24skiptoken=") && next.contains("%24filter="), "{next}");
    let second = lab.op("GET", next, None);
    assert_eq!(second.body["value"].as_array().map(Vec::len), Some(1), "{}", second.body);
    assert!(second.body.get("nextLink").is_none(), "{}", second.body);
    // Every page together is the whole list, and so for groups.
    assert_eq!(listed(&lab, &format!("resourceType%20eq%20'{IDS}'")).expect("list"), all);
    let groups = lab.op("GET", &format!("/subscriptions/{}/resourcegroups?api-version=2024-11-01", lab.sub()), None);
    assert_eq!(groups.body["value"].as_array().map(Vec::len), Some(2), "{}", groups.body);
    assert!(groups.body["nextLink"].is_null(), "{}", groups.body);
    assert_eq!(lab.op("PUT", "/_idlab/paging", Some(&json!({ "page_size": 1 }))).status, 200);
    let groups = lab.op("GET", &format!("/subscriptions/{}/resourcegroups?api-version=2024-11-01", lab.sub()), None);
    assert!(groups.body["nextLink"].is_string(), "{}", groups.body);
    let bad = lab.op("PUT", "/_idlab/paging", Some(&json!({ "page_size": 0 })));
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[test]
fn idlab_follows_next_link_in_plan_list_and_destroy() {
    let s = Served::start();
    let page = s.op("PUT", "/_idlab/paging", Some(json!({ "page_size": 1 })));
    assert_eq!(page["page_size"], 1, "{page}");
    let plan = "plans/arm-user-assigned.yaml";
    let a = s.idlab(&["apply", plan, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    s.replans_clean(plan);
    // `list` counts every owned resource, across pages of one.
    let l = s.idlab(&["list", "--format", "json"]);
    assert_eq!(l.code, 0, "{}", l.stderr);
    let v: Value = serde_json::from_str(l.stdout.trim()).expect("json");
    let env = v["environments"].as_array().and_then(|e| e.first()).cloned().unwrap_or_default();
    let sub = s.subscription();
    // Every page of a list, as the operator.
    let count_all = |first: &str| {
        let mut next = s.op("GET", first, None);
        let (mut count, mut pages) = (0, 1);
        loop {
            count += next["value"].as_array().map_or(0, Vec::len);
            let Some(n) = next["nextLink"].as_str().map(str::to_string) else { break };
            let path = n.split_once("/subscriptions/").map(|(_, p)| format!("/subscriptions/{p}")).unwrap_or_default();
            next = s.op("GET", &path, None);
            pages += 1;
        }
        (count, pages)
    };
    let tagged = "$filter=tagName%20eq%20'idlab-plan'";
    let (resources, pages) = count_all(&format!("/subscriptions/{sub}/resources?api-version=2021-04-01&{tagged}"));
    let (groups, _) = count_all(&format!("/subscriptions/{sub}/resourcegroups?api-version=2024-11-01&{tagged}"));
    assert_eq!(pages, resources, "pages of one");
    let count = resources + groups;
    assert!(count > 1, "{count}");
    assert_eq!(env["resources"], count, "{v}");
    // destroy removes everything, found page by page.
    let d = s.idlab(&["destroy", plan, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    let left = s.op("GET", &format!("/subscriptions/{sub}/resources?api-version=2021-04-01"), None);
    assert_eq!(left["value"], json!([]), "{left}");
}
