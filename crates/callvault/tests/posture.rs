//! Posture from inside: findings through the admin API, as Prometheus gauges, and in the audit
//! record when they change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

async fn medium_gauge(s: &Server, auditor: &str) -> Option<u64> {
    let text = body_text(s.client().get(s.url("/metrics")).bearer_auth(auditor)).await;
    metric(&text, "callvault_posture_findings{severity=\"medium\"}")
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_without_a_second_factor_are_reported_until_they_enrol() {
    let s = Server::start_in(
        tempfile::tempdir().unwrap(),
        &[("CALLVAULT_POSTURE__INTERVAL_SECS", "1")],
    );
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let auditor = s.token(&admin, "auditor", None).await;
    let created = ok_json(
        admin
            .client
            .post(s.url("/api/v1/users"))
            .json(&serde_json::json!({ "username": "nurse", "role": "listener", "tenant": "region-a" }))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;

    let findings: Vec<Value> = admin
        .get_json(&s, "/api/v1/posture")
        .await
        .as_array()
        .unwrap()
        .clone();
    let f = findings
        .iter()
        .find(|f| f["id"] == "users_without_totp")
        .expect("finding reported");
    assert_eq!(f["severity"], "medium");
    assert!(f["fix"].as_str().unwrap().contains("enrol"), "{f}");

    // The periodic check exposes it to monitoring…
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while medium_gauge(&s, &auditor).await != Some(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "gauge never showed the finding"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // …and clears it once the user enrols.
    s.first_sign_in("nurse", created["one_time_password"].as_str().unwrap())
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while medium_gauge(&s, &auditor).await != Some(0) {
        assert!(std::time::Instant::now() < deadline, "gauge never cleared");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let findings = admin.get_json(&s, "/api/v1/posture").await;
    assert!(
        !findings
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "users_without_totp"),
        "{findings}"
    );

    // Each change is on the record.
    let changes = s.audit(&auditor, "action=posture.change").await;
    assert!(changes.len() >= 2, "{changes:?}");
}
