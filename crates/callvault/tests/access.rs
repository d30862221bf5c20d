//! Denial tested as carefully as grant: every route refuses the unauthenticated, and a role ×
//! route matrix checks each role gets exactly what the route table says — no more, no less.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use callvault_core::Role;
use callvault_media::{Codec, testgen};
use callvault_server::routes::{Access, table};
use common::*;
use serde_json::json;

/// A concrete URL for a route path: parameters become well-formed but unknown ids.
fn request(c: &reqwest::Client, s: &Server, method: &str, path: &str) -> reqwest::RequestBuilder {
    let url = s.url(&callvault_server::routes::example_path(path));
    match method {
        "get" => c.get(url),
        "post" => c.post(url).json(&json!({})),
        "delete" => c.delete(url),
        "put" => c.put(url).body(vec![0u8; 16]),
        other => panic!("route table uses method {other}; teach this test"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_denies_the_unauthenticated() {
    let s = Server::start();
    let c = s.client();
    let routes = table();
    let public: Vec<_> = routes
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| r.path)
        .collect();
    // Adding a public route must be a conscious decision: it has to be added here too.
    assert_eq!(
        public,
        ["/healthz", "/api/v1/openapi.json", "/api/v1/auth/login"]
    );
    for r in routes.iter().filter(|r| r.access != Access::Public) {
        let resp = request(&c, &s, r.method, r.path).send().await.unwrap();
        assert_eq!(
            resp.status(),
            401,
            "{} {} answered without credentials",
            r.method,
            r.path
        );
        // A garbage bearer token or session cookie is no better.
        let resp = request(&c, &s, r.method, r.path)
            .bearer_auth("cvt_garbage")
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            401,
            "{} {} with a bad token",
            r.method,
            r.path
        );
        let resp = request(&c, &s, r.method, r.path)
            .header(
                "cookie",
                "__Host-callvault=cvs_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            401,
            "{} {} with a forged session",
            r.method,
            r.path
        );
    }
    // The public ones reveal nothing but what they are for.
    let h = c
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(h, r#"{"status":"ok"}"#);
    // And the OpenAPI document lists every route of the table.
    let doc: serde_json::Value = c
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for r in &routes {
        assert!(
            doc["paths"][r.path][r.method].is_object(),
            "{} {} missing from OpenAPI",
            r.method,
            r.path
        );
    }
}

enum Cred {
    Session(User),
    Token(String),
}

impl Cred {
    fn client(&self, s: &Server) -> reqwest::Client {
        match self {
            Cred::Session(u) => u.client.clone(),
            Cred::Token(_) => s.client(),
        }
    }
    fn apply(&self, b: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Cred::Session(_) => b,
            Cred::Token(t) => b.bearer_auth(t),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn role_matrix_grants_and_denies_exactly_as_the_table_says() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let principals: Vec<(Role, &str, Cred)> = vec![
        (
            Role::Recorder,
            "recorder token",
            Cred::Token(s.token(&admin, "recorder", Some("region-a")).await),
        ),
        (
            Role::Listener,
            "listener",
            Cred::Session(s.user(&admin, "lisa", "listener", Some("region-a")).await),
        ),
        (
            Role::PrivacyOfficer,
            "privacy officer",
            Cred::Session(
                s.user(&admin, "peter", "privacy_officer", Some("region-a"))
                    .await,
            ),
        ),
        (
            Role::Auditor,
            "auditor",
            Cred::Session(s.user(&admin, "aud", "auditor", None).await),
        ),
        (
            Role::Auditor,
            "auditor token",
            Cred::Token(s.token(&admin, "auditor", None).await),
        ),
        (Role::Admin, "admin", Cred::Session(admin)),
    ];
    let mut routes: Vec<_> = table()
        .into_iter()
        .filter(|r| matches!(r.access, Access::Roles(_)))
        .collect();
    // Signing out ends the session, so it goes last.
    routes.sort_by_key(|r| r.path == "/api/v1/auth/logout");
    let mut checked = 0;
    for (role, who, cred) in &principals {
        let c = cred.client(&s);
        for r in &routes {
            let Access::Roles(allowed) = r.access else {
                unreachable!()
            };
            let status = cred
                .apply(request(&c, &s, r.method, r.path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            if allowed.contains(role) {
                assert!(
                    status != 401 && status != 403,
                    "{who} was refused {} {} ({status})",
                    r.method,
                    r.path
                );
            } else {
                assert_eq!(status, 403, "{who} was not refused {} {}", r.method, r.path);
            }
            checked += 1;
        }
    }
    assert!(
        checked >= principals.len() * 20,
        "matrix too small: {checked}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_tenant_access_is_denied() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    s.tenant(&admin, "region-b").await;
    let rec_a = s.token(&admin, "recorder", Some("region-a")).await;
    let anna = s.user(&admin, "anna", "listener", Some("region-a")).await;
    let bert = s.user(&admin, "bert", "listener", Some("region-b")).await;
    let audio = testgen::wav(Codec::Mulaw, 1, 8000, 8000, 7);
    let id = s.upload_ok(&rec_a, &audio, meta("+46701111111")).await;

    // Tenant B's listener finds nothing and cannot tell the recording exists.
    let page = ok_json(
        bert.client
            .post(s.url("/api/v1/recordings/search"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let page = ok_json(
        bert.client
            .post(s.url("/api/v1/recordings/search"))
            .json(&json!({ "caller_number": "+46701111111" }))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let r = bert
        .client
        .get(s.url(&format!("/api/v1/recordings/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = bert
        .client
        .post(s.url(&format!("/api/v1/recordings/{id}/access")))
        .json(&json!({ "purpose_code": "complaint", "purpose_text": "checking a complaint about this call" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A grant is bound to the user it was issued to.
    let url = anna.grant(&s, &id).await;
    assert_eq!(
        bert.client.get(s.url(&url)).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        anna.client.get(s.url(&url)).send().await.unwrap().status(),
        200
    );
    // A recorder cannot read back what it sent.
    let r = s
        .client()
        .get(s.url(&url))
        .bearer_auth(&rec_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A purpose is required, and must say something.
    let r = anna
        .client
        .post(s.url(&format!("/api/v1/recordings/{id}/access")))
        .json(&json!({ "purpose_code": "complaint", "purpose_text": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// A presented credential is never ignored: a bad Authorization header next to a valid session
/// cookie is refused, not quietly replaced by the cookie (found by schemathesis' ignored-auth check).
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_authorization_header_is_not_rescued_by_a_session_cookie() {
    let s = Server::start();
    let admin = s.admin().await;
    let ok = admin
        .client
        .get(s.url("/api/v1/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    for bad in [
        "Bearer cvt_not-a-real-token",
        "Basic YWRtaW46YWRtaW4=",
        "garbage",
    ] {
        let r = admin
            .client
            .get(s.url("/api/v1/users"))
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{bad}");
    }
}
