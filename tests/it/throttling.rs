//! ARM throttling in the local cloud (the fault file's `throttling` section), with the bucket
//! clock frozen and driven by the test through `POST /_idlab/clock`; and the ARM client's
//! pacing against it (an apply with small buckets).

use idlab::local::faults::{Faults, Rate, Throttling};
use serde_json::{Value, json};

use crate::lab::{Lab, Resp};

fn frozen() -> Faults {
    Faults {
        throttling: Throttling { enabled: true, frozen_clock: true, ..Throttling::default() },
        ..Faults::default()
    }
}

fn advance(lab: &Lab, ms: u64) {
    let r = lab.op("POST", "/_idlab/clock", Some(&json!({ "advance_ms": ms })));
    assert_eq!(r.status, 200, "{}", r.body);
}

fn remaining(r: &Resp, kind: &str) -> Option<u64> {
    r.header(&format!("x-ms-ratelimit-remaining-subscription-{kind}")).and_then(|v| v.parse().ok())
}

/// Send `size` requests in a burst: the operation's header counts down from size − 1 to 0;
/// the next is refused as `code` with `Retry-After`; after the clock moves by k tokens'
/// worth, exactly k more pass.
fn burst(lab: &Lab, kind: &str, size: u64, ms_per_token: u64, code: &str, send: &dyn Fn(u64) -> Resp) {
    for n in 0..size {
        let r = send(n);
        assert_ne!(r.status, 429, "{kind} #{}: {}", n + 1, r.body);
        if code == "TooManyRequests" {
            assert_eq!(remaining(&r, kind), Some(size - 1 - n), "{kind} #{}", n + 1);
        }
    }
    let refused = send(size);
    assert_eq!((refused.status, refused.code()), (429, code), "{kind} #{}: {}", size + 1, refused.body);
    let after: u64 = refused.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After in seconds");
    assert_eq!(after, ms_per_token.div_ceil(1000), "{kind}: Retry-After");
    if code == "TooManyRequests" {
        assert_eq!(remaining(&refused, kind), Some(0));
    }
    for k in [1u64, 3, 7] {
        advance(lab, k * ms_per_token);
        for i in 0..k {
            let r = send(size + 1 + i);
            assert_ne!(r.status, 429, "{kind}: token {} of {k} after the clock moved: {}", i + 1, r.body);
        }
        let r = send(size + 1 + k);
        assert_eq!((r.status, r.code()), (429, code), "{kind}: only {k} tokens came back");
    }
}

#[test]
fn reads_count_down_and_refill_at_25_a_second() {
    let lab = Lab::with(frozen());
    let path = format!("/subscriptions/{}/resourcegroups?api-version=2024-11-01", lab.sub());
    burst(&lab, "reads", 250, 40, "TooManyRequests", &|_| lab.op("GET", &path, None));
    // Another principal has its own bucket; the operator's stays empty.
    let (reader, _) = lab.principal(&[("Reader", &format!("/subscriptions/{}", lab.sub()))]);
    let r = lab.send(Some(&reader), "GET", &path, None);
    assert_eq!((r.status, remaining(&r, "reads")), (200, Some(249)), "{}", r.body);
    assert_eq!(lab.op("GET", &path, None).status, 429);
    // The clock endpoint reports the virtual time it was moved to: 40 + 120 + 280 ms.
    assert_eq!(lab.op("GET", "/_idlab/clock", None).body["clock_ms"], json!(440));
}

#[test]
fn writes_and_deletes_hold_200_and_refill_at_10_a_second() {
    let lab = Lab::with(frozen());
    let rg = format!("{}?api-version=2024-11-01", lab.rg_path("throttled"));
    let body = json!({"location": "eastus"});
    burst(&lab, "writes", 200, 100, "TooManyRequests", &|_| lab.op("PUT", &rg, Some(&body)));
    // Deletes have their own bucket, full while writes are empty.
    let gone = |n: u64| format!("{}?api-version=2024-11-01", lab.rg_path(&format!("gone{n}")));
    burst(&lab, "deletes", 200, 100, "TooManyRequests", &|n| lab.op("DELETE", &gone(n), None));
}

#[test]
fn role_assignment_writes_are_limited_to_120_a_minute() {
    let lab = Lab::with(frozen());
    let (_, oid) = lab.principal(&[]);
    let rg = lab.rg_path("roles");
    assert_eq!(
        lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status,
        201
    );
    let reader = idlab::roles::by_name("Reader").expect("Reader").guid;
    let def = format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{reader}", lab.sub());
    let body =
        json!({"properties": {"roleDefinitionId": def, "principalId": oid, "principalType": "ServicePrincipal"}});
    let id = format!(
        "{rg}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    // 120 a minute: one token every 500 ms. The same assignment written again is a write too.
    burst(&lab, "writes", 120, 500, "ResourceRequestsThrottled", &|_| lab.op("PUT", &id, Some(&body)));
    let log = lab.op("GET", "/_idlab/requests", None);
    let statuses: Vec<u64> = log.body["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.contains("roleAssignments")))
        .filter_map(|e| e["status"].as_u64())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 4, "{statuses:?}");
    // Other writes still pass: the provider's limit is not ARM's bucket.
    let r = lab.op(
        "PUT",
        &format!("{}?api-version=2024-11-01", lab.rg_path("other")),
        Some(&json!({"location": "eastus"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let message =
        lab.op("PUT", &id, Some(&body)).body.pointer("/error/message").and_then(Value::as_str).map(str::to_string);
    assert!(message.is_some_and(|m| m.contains("'120'") && m.contains("00:01:00")));
}

#[test]
fn throttling_is_off_by_default_and_the_fault_file_sets_sizes() {
    let lab = Lab::start();
    let path = format!("/subscriptions/{}/resourcegroups?api-version=2024-11-01", lab.sub());
    for _ in 0..300 {
        assert_eq!(lab.op("GET", &path, None).status, 200);
    }
    let small = Throttling {
        enabled: true,
        frozen_clock: true,
        reads: Rate { size: 3, per_second: Some(25), per_minute: None },
        ..Throttling::default()
    };
    let set = lab.op(
        "PUT",
        "/_idlab/faults",
        Some(&serde_json::to_value(Faults { throttling: small, ..Faults::default() }).expect("json")),
    );
    assert_eq!(set.status, 200, "{}", set.body);
    let statuses: Vec<u16> = (0..4).map(|_| lab.op("GET", &path, None).status).collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    let parsed = Faults::parse("throttling:\n  enabled: true\n  writes: { size: 5, per_minute: 30 }\n").expect("valid");
    assert_eq!((parsed.throttling.writes.size, parsed.throttling.writes.per_minute()), (5, 30));
    assert_eq!(parsed.throttling.reads.per_minute(), 25 * 60);
    assert!(Faults::parse("throttling: { reads: { size: 0, per_second: 1 } }").is_err());
    assert!(Faults::parse("throttling: { reads: { size: 1, per_second: 1, per_minute: 60 } }").is_err());
    assert!(Faults::parse("throttling: { bogus: 1 }").is_err());
}

/// A plan of a resource group and `n` identities in it.
fn identities(n: usize) -> String {
    let mut s = String::from(
        "name: paced\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: paced-rg\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "  id{i}:\n    type: user_assigned_identity\n    name: paced-{i}\n    resource_group: ${{rg}}\n"
        ));
    }
    s
}

/// The 429 answers in the local cloud's request log.
fn logged_429s(s: &crate::common::Served) -> u64 {
    let log = s.op("GET", "/_idlab/requests", None);
    log["value"].as_array().map_or(0, |v| v.iter().filter(|e| e["status"] == 429).count() as u64)
}

#[test]
fn the_client_paces_an_apply_and_a_destroy_under_small_buckets() {
    // Buckets far smaller than the plan's requests (41 writes, 40 deletes, ~50 reads for the destroy) at
    // Azure's refill rates: without pacing, most requests over the sizes would be 429s.
    let s = crate::common::Served::with_faults(Some(
        "throttling:\n  enabled: true\n  reads: { size: 20, per_second: 25 }\n  writes: { size: 10, per_second: 10 }\n  deletes: { size: 10, per_second: 10 }\n",
    ));
    let dir = tempfile::tempdir().expect("tmp");
    let plan = dir.path().join("paced.yaml");
    std::fs::write(&plan, identities(40)).expect("plan");
    let plan = plan.display().to_string();
    let r = s.idlab(&["apply", &plan, "--auto-approve", "--format", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let created = r.stdout.lines().filter(|l| l.contains("\"outcome\":\"created\"")).count();
    assert_eq!(created, 41, "{}", r.stdout);
    let event: Value = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "requests")
        .expect("a requests event");
    let requests = event["requests"].as_u64().expect("requests");
    let throttled = event["throttled"].as_u64().expect("throttled");
    // The client counted every 429 the cloud gave; they are few; requests waited for tokens.
    assert_eq!(throttled, logged_429s(&s), "{event}");
    // The 41 writes, and the group's read and the ownership listings (what a group read as
    // absent holds is not read).
    assert!(requests >= 41 + 5 && throttled * 10 <= requests, "{event}");
    assert!(event["pacing_wait_s"].as_f64().is_some_and(|w| w > 0.0), "{event}");
    // Destroy reports in its text summary.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", &plan, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r.stderr.lines().find(|l| l.starts_with("Requests: ")).expect("the requests line").to_string();
    let throttled: u64 =
        line.split(", ").nth(1).and_then(|p| p.split(' ').next()).and_then(|n| n.parse().ok()).expect("count");
    assert_eq!(throttled, logged_429s(&s), "{line}");
    assert!(throttled <= 5, "{line}");
}
