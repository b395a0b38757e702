//! Fault injection and the admin API's request log.

use idlab::local::faults::Faults;
use serde_json::json;

use crate::lab::Lab;

#[test]
fn injected_throttling_errors_and_drops() {
    let lab = Lab::start();
    let path = format!("{}?api-version=2024-11-01", lab.rg_path("faulty"));
    let set = |f: serde_json::Value| assert_eq!(lab.op("PUT", "/_idlab/faults", Some(&f)).status, 200);
    set(json!({"throttle_rate": 1.0, "retry_after_s": 2, "time_scale": 0.01}));
    let r = lab.op("GET", &path, None);
    assert_eq!((r.status, r.code()), (429, "TooManyRequests"));
    assert_eq!(r.header("retry-after").as_deref(), Some("2"));
    assert_eq!(r.header("retry-after-ms").as_deref(), Some("20"));
    set(json!({"error_500_rate": 1.0}));
    assert_eq!(lab.op("GET", &path, None).status, 500);
    set(json!({"error_503_rate": 1.0}));
    assert_eq!(lab.op("GET", &path, None).status, 503);
    set(json!({"drop_rate": 1.0}));
    let dropped = lab.rt.block_on(async {
        lab.http.get(format!("{}{path}", lab.cloud.info.arm_url)).bearer_auth(&lab.operator).send().await
    });
    let failed = match dropped {
        Err(_) => true,
        Ok(r) => lab.rt.block_on(r.bytes()).is_err(),
    };
    assert!(failed, "a dropped connection must fail on the client");
    // Out-of-range configuration is refused; the admin API is operator-only.
    assert_eq!(lab.op("PUT", "/_idlab/faults", Some(&json!({"drop_rate": 3}))).status, 400);
    set(json!({}));
    let (reader, _) = lab.principal(&[("Reader", &format!("/subscriptions/{}", lab.sub()))]);
    assert_eq!(lab.send(Some(&reader), "GET", "/_idlab/requests", None).status, 403);
}

#[test]
fn the_same_seed_gives_the_same_faults() {
    let run = || {
        let lab = Lab::with(Faults { seed: 42, throttle_rate: 0.5, ..Faults::default() });
        let path = format!("/subscriptions/{}/resourcegroups?api-version=2024-11-01", lab.sub());
        (0..40).map(|_| lab.op("GET", &path, None).status).collect::<Vec<u16>>()
    };
    let a = run();
    assert!(a.contains(&429) && a.contains(&200), "{a:?}");
    assert_eq!(a, run());
}

#[test]
fn request_log_marks_writes() {
    let lab = Lab::start();
    assert_eq!(lab.op("DELETE", "/_idlab/requests", None).status, 200);
    let rg = format!("{}?api-version=2024-11-01", lab.rg_path("logged"));
    lab.op("PUT", &rg, Some(&json!({"location": "eastus"})));
    lab.op("GET", &rg, None);
    lab.op("PUT", &format!("{}?api-version=2099-01-01", lab.rg_path("refused")), Some(&json!({"location": "eastus"})));
    let log = lab.op("GET", "/_idlab/requests", None);
    let entries = log.body["value"].as_array().cloned().unwrap_or_default();
    let arm: Vec<(String, u64, bool)> = entries
        .iter()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.starts_with("/subscriptions")))
        .map(|e| {
            (
                e["method"].as_str().unwrap_or_default().to_string(),
                e["status"].as_u64().unwrap_or(0),
                e["write"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert_eq!(
        arm,
        vec![("PUT".to_string(), 201, true), ("GET".to_string(), 200, false), ("PUT".to_string(), 400, true)]
    );
    assert!(
        entries
            .iter()
            .all(|e| e["principal"].is_string() || e["path"].as_str().is_some_and(|p| p.contains("/oauth2/")))
    );
}
