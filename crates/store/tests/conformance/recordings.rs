//! Recording checks of the metadata suite: rows, all-or-nothing batches, search (every criterion,
//! keyset pages, tenant scope), counts, waveform peaks, per-day counts, playback grants and
//! the other parties of a call.

use super::*;
use callvault_store::{DailyRecordings, ErasureCause, Grant, Party, RecordingFilter};
use std::collections::BTreeSet;

/// Everything an adapter must do for `RecordingStore`.
pub async fn suite(store: MetadataStore) {
    check!(store, recording_round_trip);
    check!(store, recording_get_is_tenant_scoped);
    check!(store, recording_duplicate_is_conflict);
    check!(store, recording_batch_insert_is_all_or_nothing);
    check!(store, recording_search_by_each_criterion);
    check!(store, recording_search_time_range_is_half_open);
    check!(store, recording_search_all_filter_combinations);
    check!(store, recording_search_limit);
    check!(store, recording_search_pagination_walks_each_row_once);
    check!(store, recording_search_never_returns_other_tenants);
    check!(store, recording_count);
    check!(store, recording_peaks_round_trip_tenant_scoped);
    check!(store, recordings_per_day_by_ingest_day);
    check!(store, grant_create_and_get);
    check!(store, grant_unknown_is_not_found);
    check!(store, grant_duplicate_is_conflict);
    check!(store, parties_find_their_recordings_and_go_with_them);
}

async fn recording_round_trip(s: MetadataStore) {
    let t = new_tenant(&s, "rec").await;
    let mut full = recording(&t, 1_700_000_000);
    full.direction = Direction::Outbound;
    full.caller_hash = Some(h32());
    full.caller_enc = Some(vec![7; 200]);
    full.agent_id = Some("agent-7".into());
    full.queue = Some("support".into());
    full.external_call_id = Some("abc@pbx".into());
    full.channels = 1;
    full.sample_rate = 8_000;
    full.duration_ms = u64::from(u32::MAX) + 1;
    full.size = 5 * 1024 * 1024 * 1024;
    let bare = recording(&t, 1_700_000_001);
    for r in [&full, &bare] {
        s.insert_recording(r).await.unwrap();
        assert_eq!(&s.get_recording(&t, &r.id).await.unwrap(), r);
    }
    // A rotated key is usable for new recordings, and the old key for old ones.
    s.rotate_key(&key(&t, 2)).await.unwrap();
    let mut newer = recording(&t, 1_700_000_002);
    newer.key_id = 2;
    newer.direction = Direction::Internal;
    s.insert_recording(&newer).await.unwrap();
    assert_eq!(s.get_recording(&t, &newer.id).await.unwrap(), newer);
}

async fn recording_get_is_tenant_scoped(s: MetadataStore) {
    let a = new_tenant(&s, "scope-a").await;
    let b = new_tenant(&s, "scope-b").await;
    let r = recording(&a, 1_700_000_000);
    s.insert_recording(&r).await.unwrap();
    assert_eq!(s.get_recording(&a, &r.id).await.unwrap(), r);
    expect_not_found(s.get_recording(&b, &r.id).await, "other tenant's recording");
    expect_not_found(
        s.get_recording(&a, &RecordingId::random()).await,
        "unknown recording",
    );
    let ghost = TenantId::parse(&uniq("ghost")).unwrap();
    expect_not_found(s.get_recording(&ghost, &r.id).await, "unknown tenant");
}

async fn recording_duplicate_is_conflict(s: MetadataStore) {
    let t = new_tenant(&s, "recdup").await;
    let r = recording(&t, 1_700_000_000);
    s.insert_recording(&r).await.unwrap();
    let mut same_id = recording(&t, 1_700_000_001);
    same_id.id = r.id;
    expect_conflict(s.insert_recording(&same_id).await, "duplicate recording id");
    let mut same_blob = recording(&t, 1_700_000_001);
    same_blob.blob = r.blob;
    expect_conflict(
        s.insert_recording(&same_blob).await,
        "two recordings in one blob",
    );
    expect_not_found(
        s.get_recording(&t, &same_blob.id).await,
        "refused recording",
    );
    assert_eq!(s.get_recording(&t, &r.id).await.unwrap(), r);
}

async fn recording_batch_insert_is_all_or_nothing(s: MetadataStore) {
    let t = new_tenant(&s, "recbatch").await;
    let all = |rows: &[Recording]| {
        let s = s.clone();
        let t = t.clone();
        let ids: Vec<RecordingId> = rows.iter().map(|r| r.id).collect();
        async move {
            let mut found = Vec::new();
            for id in ids {
                found.push(s.get_recording(&t, &id).await);
            }
            found
        }
    };
    // A duplicate id inside the batch, last: the rows before it must not stay behind.
    let mut bad: Vec<Recording> = (0..5).map(|i| recording(&t, T0 + i)).collect();
    let mut dup = recording(&t, T0 + 5);
    dup.id = bad[1].id;
    bad.push(dup);
    expect_conflict(s.insert_recordings(&bad).await, "batch with a duplicate id");
    for (i, r) in all(&bad[..5]).await.into_iter().enumerate() {
        expect_not_found(r, &format!("row {i} of a refused batch"));
    }
    // A batch whose last row reuses the blob of a stored row is refused whole too.
    let stored = recording(&t, T0 + 10);
    s.insert_recording(&stored).await.unwrap();
    let mut bad: Vec<Recording> = (0..3).map(|i| recording(&t, T0 + 20 + i)).collect();
    bad[2].blob = stored.blob;
    expect_conflict(
        s.insert_recordings(&bad).await,
        "batch reusing a stored blob",
    );
    for (i, r) in all(&bad).await.into_iter().enumerate() {
        expect_not_found(r, &format!("row {i} of a batch refused on a stored blob"));
    }
    // The same rows, made unique, go in together; so does an empty batch (a no-op).
    let good: Vec<Recording> = (0..2500).map(|i| recording(&t, T0 + 100 + i)).collect();
    let before = s.count_recordings().await.unwrap();
    s.insert_recordings(&good).await.unwrap();
    s.insert_recordings(&[]).await.unwrap();
    assert_eq!(s.count_recordings().await.unwrap(), before + 2500);
    for (r, got) in good.iter().zip(all(&good[..10]).await) {
        assert_eq!(&got.unwrap(), r);
    }
    assert_eq!(
        s.get_recording(&t, &good[2499].id).await.unwrap(),
        good[2499]
    );
}

/// A search fixture: two tenants with rows that share times, queues, agents and caller hashes,
/// several rows per `started_at` so that the keyset tie-break matters.
struct Fixture {
    a: TenantId,
    b: TenantId,
    /// All rows of `a`.
    rows: Vec<Recording>,
    /// All rows of `b`.
    b_rows: Vec<Recording>,
    hashes: [[u8; 32]; 2],
}

async fn fixture(s: &MetadataStore) -> Fixture {
    let a = new_tenant(s, "search-a").await;
    let b = new_tenant(s, "search-b").await;
    let hashes = [h32(), h32()];
    let queues = [None, Some("sales"), Some("support")];
    let agents = [None, Some("agent-1"), Some("agent-2")];
    let times = [0, 10, 10, 10, 20, 30, 30, 40, 50, 50, 50, 50, 60, 70, 80];
    let mut rows = Vec::new();
    let mut b_rows = Vec::new();
    for (i, dt) in times.iter().enumerate() {
        for (tenant, out) in [(&a, &mut rows), (&b, &mut b_rows)] {
            let mut r = recording(tenant, T0 + dt);
            r.queue = queues[i % 3].map(Into::into);
            r.agent_id = agents[(i / 3) % 3].map(Into::into);
            r.caller_hash = match i % 4 {
                0 | 1 => Some(hashes[0]),
                2 => Some(hashes[1]),
                _ => None,
            };
            s.insert_recording(&r).await.unwrap();
            out.push(r);
        }
    }
    Fixture {
        a,
        b,
        rows,
        b_rows,
        hashes,
    }
}

fn filter() -> RecordingFilter {
    RecordingFilter {
        limit: 1000,
        ..Default::default()
    }
}

/// What `f` must return from `rows`: every criterion matches, newest first, ties by id
/// descending (the keyset order), after the cursor, at most `limit`.
fn expected(rows: &[Recording], f: &RecordingFilter) -> Vec<RecordingId> {
    let mut v: Vec<&Recording> = rows
        .iter()
        .filter(|r| f.from.is_none_or(|x| r.started_at >= x))
        .filter(|r| f.to.is_none_or(|x| r.started_at < x))
        .filter(|r| f.queue.is_none() || r.queue == f.queue)
        .filter(|r| f.agent_id.is_none() || r.agent_id == f.agent_id)
        .filter(|r| f.caller_hash.is_none() || r.caller_hash == f.caller_hash)
        .filter(|r| f.after.is_none_or(|(t, id)| (r.started_at, r.id) < (t, id)))
        .collect();
    v.sort_by_key(|r| std::cmp::Reverse((r.started_at, r.id)));
    v.into_iter().take(f.limit as usize).map(|r| r.id).collect()
}

async fn search_ids(s: &MetadataStore, t: &TenantId, f: &RecordingFilter) -> Vec<RecordingId> {
    let got = s.search_recordings(t, f).await.unwrap();
    for r in &got {
        assert_eq!(&r.tenant, t, "search returned another tenant's row");
    }
    got.into_iter().map(|r| r.id).collect()
}

async fn assert_search(s: &MetadataStore, fx: &Fixture, f: &RecordingFilter, what: &str) -> usize {
    let want = expected(&fx.rows, f);
    let got = search_ids(s, &fx.a, f).await;
    assert_eq!(got, want, "{what}: {f:?}");
    got.len()
}

async fn recording_search_by_each_criterion(s: MetadataStore) {
    let fx = fixture(&s).await;
    // Whole rows come back intact, newest first.
    let all = s.search_recordings(&fx.a, &filter()).await.unwrap();
    assert_eq!(all.len(), fx.rows.len());
    assert!(
        all.windows(2).all(|w| w[0].started_at >= w[1].started_at),
        "newest first"
    );
    for r in &all {
        assert!(
            fx.rows.contains(r),
            "row {} differs from what was inserted",
            r.id
        );
    }
    assert_eq!(assert_search(&s, &fx, &filter(), "no criteria").await, 15);
    // Counts worked out by hand from the fixture, so that the model in `expected` is checked too.
    let by_queue = RecordingFilter {
        queue: Some("sales".into()),
        ..filter()
    };
    assert_eq!(assert_search(&s, &fx, &by_queue, "queue").await, 5);
    let by_agent = RecordingFilter {
        agent_id: Some("agent-2".into()),
        ..filter()
    };
    assert_eq!(assert_search(&s, &fx, &by_agent, "agent").await, 3);
    let by_caller = RecordingFilter {
        caller_hash: Some(fx.hashes[1]),
        ..filter()
    };
    assert_eq!(assert_search(&s, &fx, &by_caller, "caller hash").await, 4);
    let by_from = RecordingFilter {
        from: Some(T0 + 50),
        ..filter()
    };
    assert_eq!(assert_search(&s, &fx, &by_from, "from").await, 7);
    let by_to = RecordingFilter {
        to: Some(T0 + 30),
        ..filter()
    };
    assert_eq!(assert_search(&s, &fx, &by_to, "to").await, 5);
    let combo = RecordingFilter {
        queue: Some("support".into()),
        agent_id: Some("agent-1".into()),
        ..filter()
    };
    assert_eq!(assert_search(&s, &fx, &combo, "queue+agent").await, 2);
    let nothing = RecordingFilter {
        queue: Some("no-such-queue".into()),
        ..filter()
    };
    assert_eq!(assert_search(&s, &fx, &nothing, "unknown queue").await, 0);
    let unknown_hash = RecordingFilter {
        caller_hash: Some(h32()),
        ..filter()
    };
    assert_eq!(
        assert_search(&s, &fx, &unknown_hash, "unknown caller").await,
        0
    );
}

async fn recording_search_time_range_is_half_open(s: MetadataStore) {
    let fx = fixture(&s).await;
    // [T0+10, T0+50): three at 10, one at 20, two at 30, one at 40; the four at 50 excluded.
    let f = RecordingFilter {
        from: Some(T0 + 10),
        to: Some(T0 + 50),
        ..filter()
    };
    assert_eq!(assert_search(&s, &fx, &f, "range").await, 7);
    let got = s.search_recordings(&fx.a, &f).await.unwrap();
    assert!(
        got.iter().any(|r| r.started_at == T0 + 10),
        "from is inclusive"
    );
    assert!(
        got.iter().all(|r| r.started_at != T0 + 50),
        "to is exclusive"
    );
    let empty = RecordingFilter {
        from: Some(T0 + 50),
        to: Some(T0 + 50),
        ..filter()
    };
    assert_eq!(assert_search(&s, &fx, &empty, "empty range").await, 0);
    let single = RecordingFilter {
        from: Some(T0 + 50),
        to: Some(T0 + 51),
        ..filter()
    };
    assert_eq!(assert_search(&s, &fx, &single, "one second").await, 4);
}

async fn recording_search_all_filter_combinations(s: MetadataStore) {
    let fx = fixture(&s).await;
    let froms = [None, Some(T0 + 10), Some(T0 + 50)];
    let tos = [None, Some(T0 + 30), Some(T0 + 71)];
    let queues = [None, Some("sales"), Some("support")];
    let agents = [None, Some("agent-1"), Some("agent-2")];
    let hashes = [None, Some(fx.hashes[0]), Some(fx.hashes[1])];
    let mut nonempty = 0;
    for from in froms {
        for to in tos {
            for queue in queues {
                for agent in agents {
                    for caller_hash in hashes {
                        let f = RecordingFilter {
                            from,
                            to,
                            queue: queue.map(Into::into),
                            agent_id: agent.map(Into::into),
                            caller_hash,
                            ..filter()
                        };
                        nonempty +=
                            usize::from(assert_search(&s, &fx, &f, "combination").await > 0);
                    }
                }
            }
        }
    }
    assert!(
        nonempty > 50,
        "fixture too sparse to test combinations ({nonempty})"
    );
}

async fn recording_search_limit(s: MetadataStore) {
    let fx = fixture(&s).await;
    for limit in [1, 3, 4, 14, 15, 16] {
        let f = RecordingFilter { limit, ..filter() };
        assert_eq!(
            assert_search(&s, &fx, &f, "limit").await,
            (limit as usize).min(15)
        );
    }
}

/// Pages through `f` with the keyset cursor and checks every row comes exactly once, in order.
async fn walk(s: &MetadataStore, fx: &Fixture, f: &RecordingFilter, page: u32) {
    let want = expected(&fx.rows, f);
    let mut got: Vec<RecordingId> = Vec::new();
    let mut cursor = RecordingFilter {
        limit: page,
        after: None,
        ..f.clone()
    };
    for _ in 0..=fx.rows.len() + 1 {
        let rows = s.search_recordings(&fx.a, &cursor).await.unwrap();
        assert!(rows.len() <= page as usize, "page larger than limit");
        let Some(last) = rows.last() else { break };
        cursor.after = Some((last.started_at, last.id));
        let short = rows.len() < page as usize;
        got.extend(rows.iter().map(|r| r.id));
        if short {
            break;
        }
    }
    let unique: BTreeSet<_> = got.iter().collect();
    assert_eq!(
        unique.len(),
        got.len(),
        "a row came twice (page {page}, {f:?})"
    );
    assert_eq!(got, want, "pagination with page size {page} ({f:?})");
}

async fn recording_search_pagination_walks_each_row_once(s: MetadataStore) {
    let fx = fixture(&s).await;
    let filters = [
        filter(),
        RecordingFilter {
            caller_hash: Some(fx.hashes[0]),
            ..filter()
        },
        RecordingFilter {
            from: Some(T0 + 10),
            to: Some(T0 + 60),
            ..filter()
        },
        RecordingFilter {
            queue: Some("support".into()),
            from: Some(T0 + 10),
            ..filter()
        },
    ];
    for f in &filters {
        for page in [1, 2, 3, 4, 7, 100] {
            walk(&s, &fx, f, page).await;
        }
    }
    // A cursor in the middle of a run of equal times continues within that run.
    let mut at50: Vec<&Recording> = fx.rows.iter().filter(|r| r.started_at == T0 + 50).collect();
    at50.sort_by_key(|r| std::cmp::Reverse(r.id));
    let f = RecordingFilter {
        after: Some((T0 + 50, at50[1].id)),
        ..filter()
    };
    let got = search_ids(&s, &fx.a, &f).await;
    assert_eq!(
        got[..2],
        [at50[2].id, at50[3].id],
        "rest of the run at T0+50 first"
    );
    assert_eq!(got, expected(&fx.rows, &f));
    // A cursor past the oldest row yields nothing.
    let f = RecordingFilter {
        after: Some((
            T0,
            RecordingId::parse("rec_00000000000000000000000000000000").unwrap(),
        )),
        ..filter()
    };
    assert!(search_ids(&s, &fx.a, &f).await.is_empty());
}

async fn recording_search_never_returns_other_tenants(s: MetadataStore) {
    let fx = fixture(&s).await;
    let b_ids: BTreeSet<RecordingId> = fx.b_rows.iter().map(|r| r.id).collect();
    let a_ids: BTreeSet<RecordingId> = fx.rows.iter().map(|r| r.id).collect();
    // Criteria that match rows in both tenants.
    let filters = [
        filter(),
        RecordingFilter {
            caller_hash: Some(fx.hashes[0]),
            ..filter()
        },
        RecordingFilter {
            queue: Some("sales".into()),
            agent_id: Some("agent-1".into()),
            ..filter()
        },
        RecordingFilter {
            from: Some(T0 + 10),
            to: Some(T0 + 20),
            ..filter()
        },
    ];
    for f in &filters {
        let a: BTreeSet<_> = search_ids(&s, &fx.a, f).await.into_iter().collect();
        let b: BTreeSet<_> = search_ids(&s, &fx.b, f).await.into_iter().collect();
        assert!(
            a.is_subset(&a_ids) && !a.is_empty(),
            "tenant a sees only its rows ({f:?})"
        );
        assert!(
            b.is_subset(&b_ids) && !b.is_empty(),
            "tenant b sees only its rows ({f:?})"
        );
    }
    // The cursor of one tenant's row does not leak the other's.
    let first_b = &fx.b_rows[0];
    let f = RecordingFilter {
        after: Some((first_b.started_at + 1000, first_b.id)),
        ..filter()
    };
    assert!(
        search_ids(&s, &fx.a, &f)
            .await
            .iter()
            .all(|id| a_ids.contains(id))
    );
    let empty = new_tenant(&s, "search-empty").await;
    assert!(search_ids(&s, &empty, &filter()).await.is_empty());
    let ghost = TenantId::parse(&uniq("ghost")).unwrap();
    assert!(search_ids(&s, &ghost, &filter()).await.is_empty());
}

async fn recording_count(s: MetadataStore) {
    let before = s.count_recordings().await.unwrap();
    assert!(before > 0, "earlier checks inserted recordings");
    let t = new_tenant(&s, "count").await;
    for i in 0..3 {
        s.insert_recording(&recording(&t, T0 + i)).await.unwrap();
    }
    assert_eq!(s.count_recordings().await.unwrap(), before + 3);
    let mut dup = recording(&t, T0);
    dup.blob = s.search_recordings(&t, &filter()).await.unwrap()[0].blob;
    expect_conflict(s.insert_recording(&dup).await, "recording in a used blob");
    assert_eq!(
        s.count_recordings().await.unwrap(),
        before + 3,
        "refused insert not counted"
    );
}

async fn recording_peaks_round_trip_tenant_scoped(s: MetadataStore) {
    let a = new_tenant(&s, "peaks-a").await;
    let b = new_tenant(&s, "peaks-b").await;
    let r = recording(&a, T0);
    s.insert_recording(&r).await.unwrap();
    expect_not_found(s.get_peaks(&a, &r.id).await, "peaks never stored");
    s.put_peaks(&r.id, &[1, 2, 3]).await.unwrap();
    assert_eq!(s.get_peaks(&a, &r.id).await.unwrap(), vec![1, 2, 3]);
    s.put_peaks(&r.id, &[9; 500]).await.unwrap();
    assert_eq!(s.get_peaks(&a, &r.id).await.unwrap(), vec![9; 500]);
    expect_not_found(s.get_peaks(&b, &r.id).await, "another tenant's peaks");
    assert!(
        s.put_peaks(&RecordingId::random(), &[1]).await.is_err(),
        "peaks of a recording that does not exist"
    );
    // Erasing the recording erases its waveform with it.
    let erased = s
        .erase_recordings(&a, &[r.id], T0, ErasureCause::Request)
        .await
        .unwrap();
    assert_eq!(erased.len(), 1);
    expect_not_found(s.get_peaks(&a, &r.id).await, "an erased recording's peaks");
}

async fn recordings_per_day_by_ingest_day(s: MetadataStore) {
    let t = new_tenant(&s, "daily").await;
    let other = new_tenant(&s, "daily-other").await;
    let day = 19_700; // 2023-12-09
    let at = |d: i64, secs: i64| {
        let mut r = recording(&t, 0);
        r.created_at = d * 86_400 + secs;
        r.size = 1000;
        r
    };
    for r in [at(day, 5), at(day, 86_399), at(day + 2, 0), at(day - 1, 3)] {
        s.insert_recording(&r).await.unwrap();
    }
    let mut elsewhere = recording(&other, 0);
    elsewhere.created_at = day * 86_400;
    s.insert_recording(&elsewhere).await.unwrap();
    let got = s.recordings_per_day(Some(&t), day * 86_400).await.unwrap();
    let row = |day, calls| DailyRecordings {
        day,
        calls,
        bytes: calls * 1000,
    };
    assert_eq!(got, vec![row(day, 2), row(day + 2, 1)]);
    let all = s.recordings_per_day(None, day * 86_400).await.unwrap();
    assert_eq!(all.iter().find(|d| d.day == day).unwrap().calls, 3);
}

// ---- grants --------------------------------------------------------------------------------

async fn grant_create_and_get(s: MetadataStore) {
    let t = new_tenant(&s, "grant").await;
    let u = new_user(&s, Some(&t), "listener").await;
    let r = recording(&t, T0);
    s.insert_recording(&r).await.unwrap();
    let g = Grant {
        hash: h32(),
        recording: r.id,
        tenant: t.clone(),
        user_id: u.id,
        purpose: "complaint: case 123".into(),
        expires_at: T0 + 900,
    };
    s.create_grant(&g).await.unwrap();
    assert_eq!(s.get_grant(&g.hash).await.unwrap(), g);
    let g2 = Grant {
        hash: h32(),
        ..g.clone()
    };
    s.create_grant(&g2).await.unwrap();
    assert_eq!(s.get_grant(&g2.hash).await.unwrap(), g2);
}

async fn grant_unknown_is_not_found(s: MetadataStore) {
    expect_not_found(s.get_grant(&h32()).await, "get_grant");
}

async fn grant_duplicate_is_conflict(s: MetadataStore) {
    let t = new_tenant(&s, "grantdup").await;
    let u = new_user(&s, Some(&t), "listener").await;
    let r = recording(&t, T0);
    s.insert_recording(&r).await.unwrap();
    let g = Grant {
        hash: h32(),
        recording: r.id,
        tenant: t,
        user_id: u.id,
        purpose: "quality".into(),
        expires_at: T0 + 900,
    };
    s.create_grant(&g).await.unwrap();
    let other = Grant {
        purpose: "other".into(),
        expires_at: T0 + 99_999,
        ..g.clone()
    };
    expect_conflict(s.create_grant(&other).await, "duplicate grant hash");
    assert_eq!(s.get_grant(&g.hash).await.unwrap(), g, "grant unchanged");
}

async fn parties_find_their_recordings_and_go_with_them(s: MetadataStore) {
    let a = new_tenant(&s, "parties-a").await;
    let b = new_tenant(&s, "parties-b").await;
    let party = |n: u8| Party {
        number_hash: [n; 32],
        number_enc: vec![n, n, n],
    };
    let by = |hash: u8| RecordingFilter {
        caller_hash: Some([hash; 32]),
        limit: 10,
        ..RecordingFilter::default()
    };
    let mut called = recording(&a, T0);
    called.caller_hash = Some([1; 32]);
    let other = recording(&a, T0 + 1);
    // Parties may be added while the call is still live, before the recording row exists.
    s.add_parties(&a, &called.id, &[party(2), party(3)])
        .await
        .unwrap();
    s.insert_recording(&called).await.unwrap();
    s.insert_recording(&other).await.unwrap();
    s.add_parties(&a, &called.id, &[party(3), party(4)])
        .await
        .unwrap();
    s.add_parties(&a, &other.id, &[party(4)]).await.unwrap();
    assert_eq!(
        s.parties(&a, &called.id).await.unwrap(),
        vec![party(2), party(3), party(4)],
        "a number added twice is there once"
    );
    let ids = |rows: Vec<Recording>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.search_recordings(&a, &by(1)).await.unwrap()),
        vec![called.id]
    );
    assert_eq!(
        ids(s.search_recordings(&a, &by(2)).await.unwrap()),
        vec![called.id]
    );
    assert_eq!(
        ids(s.search_recordings(&a, &by(4)).await.unwrap()),
        vec![other.id, called.id],
        "newest first, each once"
    );
    assert!(s.search_recordings(&b, &by(2)).await.unwrap().is_empty());
    assert!(s.parties(&b, &called.id).await.unwrap().is_empty());
    // Erasing the recording erases its parties with it.
    let erased = s
        .erase_recordings(&a, &[called.id], T0, ErasureCause::Request)
        .await
        .unwrap();
    assert_eq!(erased.len(), 1);
    assert!(s.parties(&a, &called.id).await.unwrap().is_empty());
    assert_eq!(
        ids(s.search_recordings(&a, &by(4)).await.unwrap()),
        vec![other.id]
    );
}
