//! Lifecycle checks of the metadata suite: recording policies, retention rules (longest wins),
//! legal holds, crypto-shredding erasure, two-person erasure approval, tenant statistics.

use super::*;
use callvault_store::{
    ErasureCause, ErasureRequest, Grant, HoldScope, LegalHold, RecordingPolicy, RetentionRule,
    RuleScope,
};
use std::collections::BTreeSet;

const DAY: i64 = 86_400;

/// Everything an adapter must do for `LifecycleStore`.
pub async fn suite(store: MetadataStore) {
    check!(store, policies_upsert_and_list);
    check!(store, retention_rules_upsert_and_list);
    check!(store, expiry_longest_rule_wins_and_unruled_are_kept);
    check!(store, expired_pages_walk_each_row_once);
    check!(
        store,
        holds_of_each_kind_spare_recordings_until_lifted_or_over
    );
    check!(
        store,
        erase_shreds_row_grants_and_queues_blob_but_spares_held
    );
    check!(store, erasure_needs_a_second_officer);
    check!(store, tenant_stats_count_classes_holds_and_erasures);
    check!(
        store,
        caller_hash_backfill_finds_and_fills_only_missing_hashes
    );
}

async fn caller_hash_backfill_finds_and_fills_only_missing_hashes(s: MetadataStore) {
    let t = new_tenant(&s, "backfill").await;
    let missing = Recording {
        caller_enc: Some(vec![1, 2, 3]),
        ..rec(&t, T0, None, None)
    };
    let hashed = Recording {
        caller_enc: Some(vec![4, 5, 6]),
        caller_hash: Some(h32()),
        ..rec(&t, T0, None, None)
    };
    let no_number = rec(&t, T0, None, None);
    s.insert_recordings(&[missing.clone(), hashed.clone(), no_number])
        .await
        .unwrap();
    let found = s.recordings_without_caller_hash(&t, 100).await.unwrap();
    assert_eq!(found, vec![missing.clone()]);
    let h = h32();
    s.set_caller_hash(&t, &missing.id, &h).await.unwrap();
    assert!(
        s.recordings_without_caller_hash(&t, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.get_recording(&t, &missing.id).await.unwrap().caller_hash,
        Some(h)
    );
    expect_not_found(
        s.set_caller_hash(&t, &hashed.id, &h).await,
        "a hash is never overwritten",
    );
    assert_eq!(s.get_recording(&t, &hashed.id).await.unwrap(), hashed);
}

fn policy(t: &TenantId, queue: &str, class: &str) -> RecordingPolicy {
    RecordingPolicy {
        tenant: t.clone(),
        queue: queue.into(),
        record: true,
        parties: "both".into(),
        retention_class: class.into(),
        updated_by: "user:po".into(),
        updated_at: T0,
    }
}

fn rule(t: &TenantId, scope: RuleScope, value: &str, days: i64) -> RetentionRule {
    RetentionRule {
        tenant: t.clone(),
        scope,
        value: value.into(),
        days,
        updated_by: "user:po".into(),
        updated_at: T0,
    }
}

fn hold(t: &TenantId, scope: HoldScope, until: Option<i64>) -> LegalHold {
    LegalHold {
        id: uniq("hold"),
        tenant: t.clone(),
        scope,
        reason: "litigation 2026-17".into(),
        created_by: "user:po".into(),
        created_at: T0,
        until,
        lifted_by: None,
        lifted_at: None,
    }
}

fn rec(t: &TenantId, started_at: i64, queue: Option<&str>, class: Option<&str>) -> Recording {
    Recording {
        queue: queue.map(Into::into),
        retention_class: class.map(Into::into),
        ..recording(t, started_at)
    }
}

async fn expired_ids(s: &MetadataStore, t: &TenantId, now: i64) -> BTreeSet<RecordingId> {
    s.expired_recordings(t, now, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

async fn policies_upsert_and_list(s: MetadataStore) {
    let t = new_tenant(&s, "policy").await;
    assert!(s.recording_policies(&t).await.unwrap().is_empty());
    s.put_recording_policy(&policy(&t, "triage", "short"))
        .await
        .unwrap();
    s.put_recording_policy(&policy(&t, "", "standard"))
        .await
        .unwrap();
    let changed = RecordingPolicy {
        record: false,
        parties: "caller".into(),
        updated_at: T0 + 5,
        ..policy(&t, "triage", "long")
    };
    s.put_recording_policy(&changed).await.unwrap();
    assert_eq!(
        s.recording_policies(&t).await.unwrap(),
        vec![policy(&t, "", "standard"), changed],
        "default first, the second put replaced the first"
    );
    let other = new_tenant(&s, "policy").await;
    assert!(s.recording_policies(&other).await.unwrap().is_empty());
}

async fn retention_rules_upsert_and_list(s: MetadataStore) {
    let t = new_tenant(&s, "rules").await;
    s.put_retention_rule(&rule(&t, RuleScope::Tenant, "", 30))
        .await
        .unwrap();
    s.put_retention_rule(&rule(&t, RuleScope::Queue, "triage", 90))
        .await
        .unwrap();
    s.put_retention_rule(&rule(&t, RuleScope::Tenant, "", 60))
        .await
        .unwrap();
    assert_eq!(
        s.retention_rules(&t).await.unwrap(),
        vec![
            rule(&t, RuleScope::Queue, "triage", 90),
            rule(&t, RuleScope::Tenant, "", 60)
        ]
    );
}

async fn expiry_longest_rule_wins_and_unruled_are_kept(s: MetadataStore) {
    let t = new_tenant(&s, "expiry").await;
    let unruled = new_tenant(&s, "expiry").await;
    s.put_retention_rule(&rule(&t, RuleScope::Tenant, "", 30))
        .await
        .unwrap();
    s.put_retention_rule(&rule(&t, RuleScope::Queue, "triage", 90))
        .await
        .unwrap();
    s.put_retention_rule(&rule(&t, RuleScope::Class, "complaint", 365))
        .await
        .unwrap();
    let now = T0 + 100 * DAY;
    let plain = rec(&t, T0, None, None); // 30 days: expired
    let fresh = rec(&t, now - 10 * DAY, None, None); // 30 days: not yet
    let triage = rec(&t, T0 + 20 * DAY, Some("triage"), None); // 90 days: 120 > 100, kept
    let triage_old = rec(&t, T0, Some("triage"), Some("standard")); // 90: expired
    let complaint = rec(&t, T0, Some("triage"), Some("complaint")); // 365 wins: kept
    let boundary = rec(&t, now - 30 * DAY, None, None); // exactly 30 days: expired
    let elsewhere = rec(&unruled, T0 - 1000 * DAY, None, None); // no rule at all: kept
    s.insert_recordings(&[
        plain.clone(),
        fresh,
        triage,
        triage_old.clone(),
        complaint,
        boundary.clone(),
        elsewhere,
    ])
    .await
    .unwrap();
    assert_eq!(
        expired_ids(&s, &t, now).await,
        BTreeSet::from([plain.id, triage_old.id, boundary.id])
    );
    assert!(expired_ids(&s, &unruled, now).await.is_empty());
}

async fn expired_pages_walk_each_row_once(s: MetadataStore) {
    let t = new_tenant(&s, "expiredpages").await;
    s.put_retention_rule(&rule(&t, RuleScope::Tenant, "", 1))
        .await
        .unwrap();
    // Ties on started_at are broken by id.
    let rows: Vec<Recording> = (0..7).map(|i| rec(&t, T0 + (i / 3), None, None)).collect();
    s.insert_recordings(&rows).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .expired_recordings(&t, T0 + 10 * DAY, after, 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some((last.started_at, last.id));
        seen.extend(page.iter().map(|e| e.id));
    }
    let mut want: Vec<_> = rows
        .iter()
        .map(|r| (r.started_at, r.id.to_string()))
        .collect();
    want.sort();
    let seen: Vec<String> = seen.iter().map(ToString::to_string).collect();
    assert_eq!(seen, want.into_iter().map(|w| w.1).collect::<Vec<_>>());
}

async fn holds_of_each_kind_spare_recordings_until_lifted_or_over(s: MetadataStore) {
    let t = new_tenant(&s, "holds").await;
    s.put_retention_rule(&rule(&t, RuleScope::Tenant, "", 1))
        .await
        .unwrap();
    let caller = h32();
    let by_id = rec(&t, T0, None, None);
    let by_caller = Recording {
        caller_hash: Some(caller),
        ..rec(&t, T0, None, None)
    };
    let by_search = Recording {
        agent_id: Some("nurse-7".into()),
        ..rec(&t, T0 + 50, Some("triage"), None)
    };
    let outside_search = rec(&t, T0 + 50, Some("other"), None); // queue differs
    let outside_window = Recording {
        agent_id: Some("nurse-7".into()),
        ..rec(&t, T0 + 500, Some("triage"), None) // after `to`
    };
    let free = rec(&t, T0, None, None);
    s.insert_recordings(&[
        by_id.clone(),
        by_caller.clone(),
        by_search.clone(),
        outside_search.clone(),
        outside_window.clone(),
        free.clone(),
    ])
    .await
    .unwrap();
    let now = T0 + 10 * DAY;
    let h1 = hold(&t, HoldScope::Recording(by_id.id), None);
    let h2 = hold(&t, HoldScope::Caller(caller), Some(now + DAY));
    let h3 = hold(
        &t,
        HoldScope::Search {
            queue: Some("triage".into()),
            agent_id: Some("nurse-7".into()),
            from: Some(T0),
            to: Some(T0 + 100),
        },
        None,
    );
    for h in [&h1, &h2, &h3] {
        s.create_hold(h).await.unwrap();
    }
    assert_eq!(s.holds(&t).await.unwrap().len(), 3);
    assert_eq!(
        expired_ids(&s, &t, now).await,
        BTreeSet::from([outside_search.id, outside_window.id, free.id])
    );
    for (r, held) in [
        (&by_id, true),
        (&by_caller, true),
        (&by_search, true),
        (&free, false),
    ] {
        assert_eq!(s.is_held(&t, &r.id, now).await.unwrap(), held, "{:?}", r.id);
    }
    // A hold ends at its `until`, or when lifted; lifting twice is NotFound.
    assert!(!s.is_held(&t, &by_caller.id, now + 2 * DAY).await.unwrap());
    s.lift_hold(&t, &h1.id, "user:po2", now).await.unwrap();
    expect_not_found(s.lift_hold(&t, &h1.id, "user:po2", now).await, "lift twice");
    let other = new_tenant(&s, "holds").await;
    expect_not_found(
        s.lift_hold(&other, &h3.id, "user:x", now).await,
        "other tenant's hold",
    );
    assert!(!s.is_held(&t, &by_id.id, now).await.unwrap());
    let lifted = s.holds(&t).await.unwrap();
    let l1 = lifted.iter().find(|h| h.id == h1.id).unwrap();
    assert_eq!(
        (l1.lifted_by.as_deref(), l1.lifted_at),
        (Some("user:po2"), Some(now))
    );
    assert_eq!(
        lifted.iter().find(|h| h.id == h3.id).unwrap(),
        &h3,
        "round trip"
    );
}

async fn erase_shreds_row_grants_and_queues_blob_but_spares_held(s: MetadataStore) {
    let t = new_tenant(&s, "erase").await;
    let u = new_user(&s, Some(&t), "listener").await;
    let gone = rec(&t, T0, None, None);
    let held = rec(&t, T0, None, None);
    s.insert_recordings(&[gone.clone(), held.clone()])
        .await
        .unwrap();
    let g = Grant {
        hash: h32(),
        recording: gone.id,
        tenant: t.clone(),
        user_id: u.id,
        purpose: "quality".into(),
        expires_at: T0 + 900,
    };
    s.create_grant(&g).await.unwrap();
    s.create_hold(&hold(&t, HoldScope::Recording(held.id), None))
        .await
        .unwrap();
    let other = new_tenant(&s, "erase").await;
    let erased = s
        .erase_recordings(&other, &[gone.id], T0, ErasureCause::Request)
        .await
        .unwrap();
    assert!(erased.is_empty(), "another tenant's id erases nothing");
    let erased = s
        .erase_recordings(&t, &[gone.id, held.id], T0 + 1, ErasureCause::Request)
        .await
        .unwrap();
    assert_eq!(
        erased.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![gone.id]
    );
    assert_eq!(erased[0].blob, gone.blob);
    expect_not_found(s.get_recording(&t, &gone.id).await, "erased recording");
    expect_not_found(s.get_grant(&g.hash).await, "grant of an erased recording");
    s.get_recording(&t, &held.id).await.unwrap();
    let pending = s.pending_blob_deletions(100_000).await.unwrap();
    assert!(pending.contains(&gone.blob) && !pending.contains(&held.blob));
    // Idempotent: erasing again finds nothing.
    assert!(
        s.erase_recordings(&t, &[gone.id], T0 + 2, ErasureCause::Request)
            .await
            .unwrap()
            .is_empty()
    );
    s.blob_deletions_done(&[gone.blob]).await.unwrap();
    assert!(
        !s.pending_blob_deletions(100_000)
            .await
            .unwrap()
            .contains(&gone.blob)
    );
    let stats = s.tenant_stats(&t, T0, T0 + 10).await.unwrap();
    assert_eq!(stats.erased_in_period, 1);
}

async fn erasure_needs_a_second_officer(s: MetadataStore) {
    let t = new_tenant(&s, "erasereq").await;
    let r = ErasureRequest {
        id: uniq("er"),
        tenant: t.clone(),
        caller_hash: h32(),
        reason: "art. 17 request 2026-3".into(),
        requested_by: "user:po1".into(),
        requested_at: T0,
        approved_by: None,
        approved_at: None,
    };
    s.create_erasure_request(&r).await.unwrap();
    assert_eq!(s.get_erasure_request(&t, &r.id).await.unwrap(), r);
    let later = ErasureRequest {
        id: uniq("er"),
        requested_at: T0 + 1,
        ..r.clone()
    };
    s.create_erasure_request(&later).await.unwrap();
    assert_eq!(
        s.erasure_requests(&t).await.unwrap(),
        vec![r.clone(), later]
    );
    expect_conflict(
        s.approve_erasure_request(&t, &r.id, "user:po1", T0 + 1)
            .await,
        "self-approval",
    );
    let other = new_tenant(&s, "erasereq").await;
    expect_not_found(
        s.approve_erasure_request(&other, &r.id, "user:po2", T0 + 1)
            .await,
        "other tenant",
    );
    s.approve_erasure_request(&t, &r.id, "user:po2", T0 + 2)
        .await
        .unwrap();
    expect_conflict(
        s.approve_erasure_request(&t, &r.id, "user:po3", T0 + 3)
            .await,
        "second approval",
    );
    let got = s.get_erasure_request(&t, &r.id).await.unwrap();
    assert_eq!(
        (got.approved_by.as_deref(), got.approved_at),
        (Some("user:po2"), Some(T0 + 2))
    );
    expect_not_found(
        s.get_erasure_request(&t, "er-none").await,
        "unknown request",
    );
}

async fn tenant_stats_count_classes_holds_and_erasures(s: MetadataStore) {
    let t = new_tenant(&s, "stats").await;
    assert_eq!(s.tenant_stats(&t, 0, T0).await.unwrap(), Default::default());
    let rows = [
        rec(&t, T0 + 5, None, Some("standard")),
        rec(&t, T0 + 1, None, Some("standard")),
        rec(&t, T0 + 9, None, Some("complaint")),
        rec(&t, T0 + 3, None, None),
    ];
    s.insert_recordings(&rows).await.unwrap();
    s.create_hold(&hold(&t, HoldScope::Recording(rows[0].id), None))
        .await
        .unwrap();
    s.create_hold(&hold(&t, HoldScope::Caller(h32()), Some(T0 + 50)))
        .await
        .unwrap();
    let stats = s.tenant_stats(&t, T0, T0 + 100).await.unwrap();
    assert_eq!(
        stats.by_class,
        vec![
            (None, 1),
            (Some("complaint".into()), 1),
            (Some("standard".into()), 2)
        ]
    );
    assert_eq!(stats.oldest_started_at, Some(T0 + 1));
    assert_eq!(stats.active_holds, 1, "the second hold ended at T0 + 50");
    assert_eq!(stats.erased_in_period, 0);
}
