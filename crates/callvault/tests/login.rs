//! Sign-in: second factor required, replays refused, lockout with backoff after failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use callvault_auth::totp::{self, Algorithm};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn lockout_after_repeated_failures() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let fresh = s.client();
    let login = |password: &str, code: Option<String>| {
        fresh
            .post(s.url("/api/v1/auth/login"))
            .json(&json!({ "username": "nurse", "password": password, "totp_code": code }))
            .send()
    };
    // The right password without the code is not enough.
    assert_eq!(login(&nurse.password, None).await.unwrap().status(), 401);
    for _ in 0..4 {
        let r = login("Wrong-Password-123", None).await.unwrap();
        assert_eq!(r.status(), 401);
    }
    // Five failures in all: locked, even for the right password and a valid code…
    let code = totp::code(&nurse.totp, now() + 30, 30, 6, Algorithm::Sha1);
    let locked = login(&nurse.password, Some(code)).await.unwrap();
    assert_eq!(locked.status(), 401);
    let locked: serde_json::Value = locked.json().await.unwrap();
    // …and the answer is the same as for a user who does not exist, so lockout reveals no names.
    let unknown = fresh
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({ "username": "nobody", "password": "Wrong-Password-123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let unknown: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(locked, unknown);
    assert_eq!(locked["error"], "invalid_credentials");
    // The record says what really happened.
    let auditor = s.token(&admin, "auditor", None).await;
    let entries = s
        .audit(&auditor, "action=auth.login&actor=user:nurse")
        .await;
    let results: Vec<_> = entries
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|r| **r == "denied").count(),
        5,
        "{results:?}"
    );
    assert_eq!(results.last(), Some(&"locked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_code_cannot_be_replayed() {
    let s = Server::start();
    let admin = s.admin().await;
    s.tenant(&admin, "region-a").await;
    let nurse = s.user(&admin, "nurse", "listener", Some("region-a")).await;
    let code = totp::code(&nurse.totp, now() + 30, 30, 6, Algorithm::Sha1);
    let login = || {
        s.client()
            .post(s.url("/api/v1/auth/login"))
            .json(&json!({ "username": "nurse", "password": nurse.password, "totp_code": code }))
            .send()
    };
    let first = login().await.unwrap();
    assert_eq!(first.status(), 200);
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "__Host-"] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    assert_eq!(login().await.unwrap().status(), 401, "the same code twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_refused() {
    let s = Server::start();
    let big = "x".repeat(200 * 1024);
    let r = s
        .client()
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({ "username": big, "password": "p" }))
        .send()
        .await
        .unwrap();
    // The whole refusal arrives (the server drains what it will not read), in the API's format.
    let v = ok_json(r, 413).await;
    assert_eq!(v["error"], "body_too_large", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_changes_are_refused() {
    let s = Server::start();
    let admin = s.admin().await;
    let r = admin
        .client
        .post(s.url("/api/v1/tenants"))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({ "id": "evil", "name": "Evil" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = admin
        .client
        .post(s.url("/api/v1/tenants"))
        .header("origin", "https://evil.example")
        .json(&json!({ "id": "evil", "name": "Evil" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let tenants: serde_json::Value = admin
        .client
        .get(s.url("/api/v1/tenants"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenants.as_array().unwrap().len(), 0);
}
