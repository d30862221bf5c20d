//! Audit checks of the metadata suite: the hash chain, its pages and filters, checkpoints, and
//! per-day counts.

use super::*;
use callvault_audit::{Checkpoint, Entry, GENESIS, StoredEntry, chain_hash};
use callvault_store::{AuditFilter, DailyActions};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// Everything an adapter must do for `AuditStore`. The chain is global, so these run in this
/// order on a fresh store.
pub async fn suite(store: MetadataStore) {
    check!(store, audit_empty_store_has_no_head);
    check!(store, audit_append_batches_chain_from_genesis);
    check!(store, audit_append_empty_batch_is_noop);
    check!(store, audit_round_trips_every_field);
    check!(store, audit_range_pagination);
    check!(store, audit_query_filters);
    check!(store, audit_checkpoints_sorted_and_unique);
    check!(store, audit_concurrent_appends_form_one_chain);
    check!(store, audit_whole_chain_verifies);
    check!(store, audit_actions_per_day_by_actor);
}

fn entry(actor: &str, action: &str) -> Entry {
    Entry {
        time: OffsetDateTime::now_utc(),
        actor: actor.into(),
        tenant: None,
        action: action.into(),
        target: None,
        purpose: None,
        result: "ok".into(),
        client: None,
        details: None,
    }
}

fn signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[42; 32])
}

async fn head_seq(s: &MetadataStore) -> u64 {
    s.audit_head().await.unwrap().map_or(0, |h| h.seq)
}

/// Reads the whole chain with `audit_range`, in pages of `page`.
async fn read_chain(s: &MetadataStore, page: u32) -> Vec<StoredEntry> {
    let mut out: Vec<StoredEntry> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.seq);
        let batch = s.audit_range(after, page).await.unwrap();
        assert!(
            batch.len() <= page as usize,
            "audit_range returned more than limit"
        );
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

fn assert_contiguous(entries: &[StoredEntry], first: u64, what: &str) {
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e.seq,
            first + i as u64,
            "{what}: seq not contiguous at index {i}"
        );
    }
}

async fn audit_empty_store_has_no_head(s: MetadataStore) {
    assert!(
        s.audit_head().await.unwrap().is_none(),
        "fresh store must have an empty chain"
    );
    assert!(s.audit_range(0, 10).await.unwrap().is_empty());
    assert!(s.checkpoints().await.unwrap().is_empty());
}

async fn audit_append_batches_chain_from_genesis(s: MetadataStore) {
    assert_eq!(head_seq(&s).await, 0, "this check expects an empty chain");
    let mut prev = GENESIS;
    let mut seq = 0;
    for size in [1usize, 3, 100] {
        let batch: Vec<Entry> = (0..size)
            .map(|i| {
                let mut e = entry("system", "test.batch");
                e.details = Some(format!("{{\"batch\":{size},\"i\":{i}}}"));
                e
            })
            .collect();
        let stored = s.append_audit(batch.clone()).await.unwrap();
        assert_eq!(stored.len(), size);
        for (st, e) in stored.iter().zip(&batch) {
            seq += 1;
            assert_eq!(st.seq, seq, "seq contiguous from 1");
            assert_eq!(&st.entry, e, "returned entry is the appended one");
            assert_eq!(st.hash, chain_hash(&prev, seq, e), "hash of seq {seq}");
            prev = st.hash;
        }
        let head = s.audit_head().await.unwrap().unwrap();
        assert_eq!(
            &head,
            stored.last().unwrap(),
            "audit_head after batch of {size}"
        );
    }
    assert_eq!(seq, 104);
    let chain = read_chain(&s, 1000).await;
    assert_contiguous(&chain, 1, "after batches");
    assert_eq!(chain.len(), 104);
}

async fn audit_append_empty_batch_is_noop(s: MetadataStore) {
    let head = s.audit_head().await.unwrap();
    assert!(s.append_audit(Vec::new()).await.unwrap().is_empty());
    assert_eq!(s.audit_head().await.unwrap(), head);
}

async fn audit_round_trips_every_field(s: MetadataStore) {
    let full = Entry {
        // Nanosecond precision and a non-UTC offset: only the instant counts.
        time: time::macros::datetime!(2025-01-02 03:04:05.123456789 +02:00),
        actor: "user:anna.berg".into(),
        tenant: Some("region-skane".into()),
        action: "recording.play".into(),
        target: Some(RecordingId::random().to_string()),
        purpose: Some("complaint: ärende 12 – \"quoted\"".into()),
        result: "denied".into(),
        client: Some("2001:db8::1".into()),
        details: Some("{\"reason\":\"expired\"}".into()),
    };
    // Empty strings are values, distinct from None, and hash differently.
    let empty = Entry {
        tenant: Some(String::new()),
        target: Some(String::new()),
        purpose: Some(String::new()),
        client: Some(String::new()),
        details: Some(String::new()),
        ..entry("", "x")
    };
    let bare = entry("system", "x");
    let stored = s.append_audit(vec![full, empty, bare]).await.unwrap();
    let after = stored[0].seq - 1;
    let read = s.audit_range(after, 3).await.unwrap();
    assert_eq!(read, stored, "entries read back exactly as appended");
    assert_eq!(
        read[0].entry.time.unix_timestamp_nanos(),
        1_735_779_845_123_456_789,
        "nanoseconds kept"
    );
    assert_eq!(
        read[1].entry.details.as_deref(),
        Some(""),
        "Some(\"\") stays Some"
    );
    assert_eq!(read[2].entry.details, None, "None stays None");
}

async fn audit_range_pagination(s: MetadataStore) {
    let head = head_seq(&s).await;
    assert!(head > 10);
    for page in [1u32, 7, 50, 10_000] {
        let chain = read_chain(&s, page).await;
        assert_eq!(chain.len() as u64, head, "page size {page}");
        assert_contiguous(&chain, 1, "audit_range");
    }
    let tail = s.audit_range(head - 5, 100).await.unwrap();
    assert_eq!(tail.len(), 5);
    assert_contiguous(&tail, head - 4, "tail");
    assert!(
        s.audit_range(head, 100).await.unwrap().is_empty(),
        "nothing after head"
    );
    let two = s.audit_range(3, 2).await.unwrap();
    assert_eq!(two.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
}

async fn audit_actions_per_day_by_actor(s: MetadataStore) {
    let tag = rand_hex();
    let action = format!("recording.access.{tag}");
    let (ta, tb) = (format!("ta-{tag}"), format!("tb-{tag}"));
    let mk = |actor: &str, tenant: &str| Entry {
        tenant: Some(tenant.to_owned()),
        ..entry(actor, &action)
    };
    s.append_audit(vec![
        mk("user:ann", &ta),
        mk("user:bo", &ta),
        mk("user:ann", &ta),
        mk("user:ann", &tb),
        entry("user:ann", "recording.play"),
    ])
    .await
    .unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let today = now / 86_400;
    let row = |actor: &str, count| DailyActions {
        day: today,
        actor: actor.into(),
        count,
    };
    let since = now - 3600;
    let ta = TenantId::parse(&ta).unwrap();
    assert_eq!(
        s.actions_per_day(&action, Some(&ta), since).await.unwrap(),
        vec![row("user:ann", 2), row("user:bo", 1)]
    );
    assert_eq!(
        s.actions_per_day(&action, None, since).await.unwrap(),
        vec![row("user:ann", 3), row("user:bo", 1)]
    );
    assert!(
        s.actions_per_day(&action, None, now + 86_400)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn audit_query_filters(s: MetadataStore) {
    let tag = rand_hex();
    let (ta, tb) = (format!("ta-{tag}"), format!("tb-{tag}"));
    let (alice, bob) = (format!("user:alice-{tag}"), format!("user:bob-{tag}"));
    let (play, login) = (format!("recording.play.{tag}"), format!("auth.login.{tag}"));
    let (r1, r2) = (format!("rec-1-{tag}"), format!("rec-2-{tag}"));
    let mk = |actor: &str, tenant: &str, action: &str, target: Option<&str>| Entry {
        tenant: Some(tenant.to_owned()),
        target: target.map(Into::into),
        ..entry(actor, action)
    };
    let batch = vec![
        mk(&alice, &ta, &play, Some(&r1)),
        mk(&alice, &ta, &login, None),
        mk(&bob, &ta, &play, Some(&r1)),
        mk(&bob, &tb, &play, Some(&r2)),
        mk(&alice, &tb, &play, Some(&r2)),
        mk(&bob, &tb, &login, None),
    ];
    let stored = s.append_audit(batch).await.unwrap();
    let seqs = |idx: &[usize]| idx.iter().map(|&i| stored[i].seq).collect::<Vec<_>>();
    let q = |f: AuditFilter| {
        let s = s.clone();
        async move {
            s.audit_query(&AuditFilter { limit: 1000, ..f })
                .await
                .unwrap()
        }
    };
    let got_seqs = |v: Vec<StoredEntry>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();

    let by_tenant = q(AuditFilter {
        tenant: Some(ta.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(got_seqs(by_tenant.clone()), seqs(&[0, 1, 2]), "tenant");
    assert_eq!(by_tenant, stored[..3], "query returns whole entries");
    let by_action = q(AuditFilter {
        action: Some(login.clone()),
        ..Default::default()
    });
    assert_eq!(got_seqs(by_action.await), seqs(&[1, 5]), "action");
    let by_actor = q(AuditFilter {
        actor: Some(bob.clone()),
        ..Default::default()
    });
    assert_eq!(got_seqs(by_actor.await), seqs(&[2, 3, 5]), "actor");
    let by_target = q(AuditFilter {
        target: Some(r2.clone()),
        ..Default::default()
    });
    assert_eq!(got_seqs(by_target.await), seqs(&[3, 4]), "target");
    let combo = q(AuditFilter {
        tenant: Some(tb.clone()),
        action: Some(play.clone()),
        actor: Some(alice.clone()),
        target: Some(r2.clone()),
        ..Default::default()
    });
    assert_eq!(got_seqs(combo.await), seqs(&[4]), "all four");
    let two = q(AuditFilter {
        actor: Some(alice.clone()),
        action: Some(play.clone()),
        ..Default::default()
    });
    assert_eq!(got_seqs(two.await), seqs(&[0, 4]), "actor+action");
    let none = q(AuditFilter {
        tenant: Some(ta.clone()),
        target: Some(r2.clone()),
        ..Default::default()
    });
    assert!(
        none.await.is_empty(),
        "no entry matches tenant a and target r2"
    );
    // after_seq and limit page through a filter.
    let after = q(AuditFilter {
        actor: Some(bob.clone()),
        after_seq: stored[2].seq,
        ..Default::default()
    });
    assert_eq!(got_seqs(after.await), seqs(&[3, 5]), "after_seq");
    let limited = s
        .audit_query(&AuditFilter {
            actor: Some(bob.clone()),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(got_seqs(limited), seqs(&[2, 3]), "limit");
    // No criteria: everything after after_seq, in order.
    let unfiltered = q(AuditFilter {
        after_seq: stored[0].seq - 1,
        ..Default::default()
    });
    assert_eq!(
        got_seqs(unfiltered.await),
        seqs(&[0, 1, 2, 3, 4, 5]),
        "unfiltered"
    );
}

async fn audit_checkpoints_sorted_and_unique(s: MetadataStore) {
    let key = signing_key();
    let chain = read_chain(&s, 1000).await;
    assert!(chain.len() >= 10);
    let at = |i: usize| {
        let e = &chain[i];
        Checkpoint::sign(
            &key,
            e.seq,
            e.hash,
            time::macros::datetime!(2025-01-02 03:04:05.000000007 UTC),
        )
    };
    let (early, mid, late) = (at(0), at(4), at(chain.len() - 1));
    // Inserted out of order, listed by seq.
    for cp in [&late, &early, &mid] {
        s.insert_checkpoint(cp).await.unwrap();
    }
    let listed = s.checkpoints().await.unwrap();
    assert_eq!(
        listed,
        vec![early.clone(), mid.clone(), late.clone()],
        "sorted by seq, intact"
    );
    assert!(listed.iter().all(|cp| cp.verify(&key.verifying_key())));
    let mut dup = at(4);
    dup.time += time::Duration::seconds(1);
    expect_conflict(s.insert_checkpoint(&dup).await, "duplicate checkpoint seq");
    assert_eq!(
        s.checkpoints().await.unwrap(),
        listed,
        "refused checkpoint changes nothing"
    );
    callvault_audit::verify(key.verifying_key(), listed, Vec::new(), chain).unwrap();
}

async fn audit_concurrent_appends_form_one_chain(s: MetadataStore) {
    const TASKS: usize = 8;
    const PER_TASK: usize = 50;
    let before = head_seq(&s).await;
    let tag = rand_hex();
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let s = s.clone();
        let actor = format!("task-{t}-{tag}");
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..PER_TASK {
                let mut e = entry(&actor, "test.concurrent");
                e.details = Some(format!("{{\"i\":{i}}}"));
                let stored = s.append_audit(vec![e]).await.unwrap();
                assert_eq!(stored.len(), 1);
                seqs.push(stored[0].seq);
            }
            seqs
        }));
    }
    let mut all = BTreeSet::new();
    for h in handles {
        let seqs = h.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one task's appends are ordered"
        );
        for q in seqs {
            assert!(all.insert(q), "seq {q} handed out twice");
        }
    }
    let total = (TASKS * PER_TASK) as u64;
    assert_eq!(all.len() as u64, total);
    assert_eq!(all.first(), Some(&(before + 1)));
    assert_eq!(all.last(), Some(&(before + total)));
    assert_eq!(head_seq(&s).await, before + total, "400 entries appended");
    let chain = read_chain(&s, 97).await;
    assert_contiguous(&chain, 1, "after concurrent appends");
    for t in 0..TASKS {
        let actor = format!("task-{t}-{tag}");
        let mine = s
            .audit_query(&AuditFilter {
                actor: Some(actor),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(mine.len(), PER_TASK, "task {t}'s entries all present");
    }
    let cps = s.checkpoints().await.unwrap();
    let report =
        callvault_audit::verify(signing_key().verifying_key(), cps, Vec::new(), chain).unwrap();
    assert_eq!(report.entries, before + total);
}

async fn audit_whole_chain_verifies(s: MetadataStore) {
    let key = signing_key();
    let chain = read_chain(&s, 1000).await;
    let head = s.audit_head().await.unwrap().unwrap();
    assert_eq!(chain.last(), Some(&head));
    // A checkpoint at the head, then the whole record verifies against both.
    let cp = Checkpoint::sign(&key, head.seq, head.hash, OffsetDateTime::now_utc());
    s.insert_checkpoint(&cp).await.unwrap();
    let cps = s.checkpoints().await.unwrap();
    assert_eq!(cps.last(), Some(&cp));
    let report =
        callvault_audit::verify(key.verifying_key(), cps.clone(), cps, chain.clone()).unwrap();
    assert_eq!(report.entries, head.seq);
    assert_eq!(report.head, Some((head.seq, head.hash)));
    // The entries from audit_query with no criteria are the same record.
    let queried = s
        .audit_query(&AuditFilter {
            limit: u32::MAX,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(queried, chain);
}
