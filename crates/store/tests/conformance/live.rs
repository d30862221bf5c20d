//! Live-call checks of the metadata suite: calls in progress, their chunks, state changes and
//! storing a finished call as a recording.

use super::*;
use callvault_store::{ChunkOutcome, LiveCall, LiveChunk, LiveKey, LiveState};

/// Everything an adapter must do for `LiveStore`.
pub async fn suite(store: MetadataStore) {
    check!(store, live_call_round_trip_and_tenant_scope);
    check!(store, live_chunks_first_wins_and_closed_calls_refuse);
    check!(
        store,
        live_appends_racing_a_close_land_before_it_or_not_at_all
    );
    check!(store, live_state_moves_only_from_the_expected_state);
    check!(store, live_store_is_atomic_and_once);
}

fn live_call(tenant: &TenantId, now: i64) -> (LiveCall, LiveKey) {
    let id = RecordingId::random();
    let call = LiveCall {
        id,
        tenant: tenant.clone(),
        key_id: 1,
        codec: "pcmu".into(),
        sample_rate: 8000,
        channels: 2,
        frame_bytes: 3200,
        started_at: now - 5,
        direction: Direction::Inbound,
        caller_hash: Some(h32()),
        caller_enc: Some(vec![1, 2, 3]),
        agent_id: Some("a-7".into()),
        queue: Some("child-health".into()),
        external_call_id: None,
        state: LiveState::Open,
        total_chunks: None,
        gaps: None,
        updated_at: now,
        created_at: now,
    };
    let key = LiveKey {
        call: id,
        key_no: 1,
        wrapped: vec![9; 200],
    };
    (call, key)
}

fn chunk(call: &RecordingId, seq: u64, byte: u8) -> LiveChunk {
    LiveChunk {
        call: *call,
        seq,
        key_no: 1,
        sealed: vec![byte; 41 + 16],
    }
}

async fn live_call_round_trip_and_tenant_scope(s: MetadataStore) {
    let t = new_tenant(&s, "live").await;
    let other = new_tenant(&s, "live-other").await;
    let (call, key) = live_call(&t, 1_000);
    s.create_live_call(&call, &key).await.unwrap();
    assert_eq!(s.get_live_call(&t, &call.id).await.unwrap(), call);
    assert!(matches!(
        s.get_live_call(&other, &call.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.create_live_call(&call, &key).await,
        Err(StoreError::Conflict(_))
    ));
    let second = LiveKey {
        key_no: 2,
        ..key.clone()
    };
    s.add_live_key(&second).await.unwrap();
    assert!(matches!(
        s.add_live_key(&second).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.live_keys(&call.id).await.unwrap(), vec![key, second]);
}

async fn live_chunks_first_wins_and_closed_calls_refuse(s: MetadataStore) {
    let t = new_tenant(&s, "live").await;
    let (a, ka) = live_call(&t, 1_000);
    let (b, kb) = live_call(&t, 1_000);
    s.create_live_call(&a, &ka).await.unwrap();
    s.create_live_call(&b, &kb).await.unwrap();
    let unknown = RecordingId::random();
    let out = s
        .append_live_chunks(
            &[
                chunk(&a.id, 0, 1),
                chunk(&b.id, 3, 2),
                chunk(&a.id, 0, 3),
                chunk(&unknown, 0, 4),
                chunk(&a.id, 2, 5),
            ],
            1_010,
        )
        .await
        .unwrap();
    use ChunkOutcome::*;
    assert_eq!(out, vec![Stored, Stored, Duplicate, Closed, Stored]);
    let again = s
        .append_live_chunks(&[chunk(&a.id, 2, 6)], 1_020)
        .await
        .unwrap();
    assert_eq!(again, vec![Duplicate]);
    assert_eq!(s.live_chunk_seqs(&a.id).await.unwrap(), vec![0, 2]);
    let stored = s.live_chunks(&a.id, 1, 10).await.unwrap();
    assert_eq!(stored, vec![chunk(&a.id, 2, 5)], "the first chunk stays");
    assert_eq!(s.live_chunks(&a.id, 0, 1).await.unwrap().len(), 1);
    assert_eq!(s.get_live_call(&t, &a.id).await.unwrap().updated_at, 1_010);
    assert!(
        s.set_live_state(
            &b.id,
            LiveState::Open,
            LiveState::Finished,
            Some(4),
            None,
            1_030
        )
        .await
        .unwrap()
    );
    let late = s
        .append_live_chunks(&[chunk(&b.id, 4, 7), chunk(&b.id, 3, 8)], 1_040)
        .await
        .unwrap();
    assert_eq!(late, vec![Closed, Duplicate]);
    assert_eq!(s.live_chunk_seqs(&b.id).await.unwrap(), vec![3]);
}

/// Chunks sent while their call is being finished are either durable before the finish
/// returns or refused as closed: nothing lands in the journal afterwards (an assembly that
/// started then would miss it).
async fn live_appends_racing_a_close_land_before_it_or_not_at_all(s: MetadataStore) {
    let t = new_tenant(&s, "live").await;
    for round in 0..20 {
        let (call, key) = live_call(&t, 1_000);
        s.create_live_call(&call, &key).await.unwrap();
        let appends: Vec<_> = (0..40u64)
            .map(|seq| {
                let (s, id) = (s.clone(), call.id);
                tokio::spawn(async move {
                    let out = s.append_live_chunks(&[chunk(&id, seq, 1)], 1_010).await;
                    (seq, out.unwrap()[0])
                })
            })
            .collect();
        // Let some appends start first, varying by round.
        for _ in 0..round {
            tokio::task::yield_now().await;
        }
        let closed = s
            .set_live_state(
                &call.id,
                LiveState::Open,
                LiveState::Finished,
                None,
                None,
                1_020,
            )
            .await
            .unwrap();
        assert!(closed);
        let at_close = s.live_chunk_seqs(&call.id).await.unwrap();
        let mut stored = Vec::new();
        for a in appends {
            let (seq, outcome) = a.await.unwrap();
            match outcome {
                ChunkOutcome::Stored => stored.push(seq),
                ChunkOutcome::Closed => {}
                other => panic!("chunk {seq}: {other:?}"),
            }
        }
        stored.sort_unstable();
        assert_eq!(
            s.live_chunk_seqs(&call.id).await.unwrap(),
            at_close,
            "round {round}: a chunk landed after its call closed"
        );
        assert_eq!(stored, at_close, "round {round}: acknowledged = durable");
    }
}

async fn live_state_moves_only_from_the_expected_state(s: MetadataStore) {
    let t = new_tenant(&s, "live").await;
    let (c, k) = live_call(&t, 1_000);
    s.create_live_call(&c, &k).await.unwrap();
    assert!(
        !s.set_live_state(
            &c.id,
            LiveState::Finished,
            LiveState::Incomplete,
            None,
            Some("{}"),
            1_100
        )
        .await
        .unwrap()
    );
    let idle = s
        .live_calls_in_state(LiveState::Open, 1_001, 1000)
        .await
        .unwrap();
    assert!(idle.iter().any(|x| x.id == c.id));
    let not_yet = s
        .live_calls_in_state(LiveState::Open, 1_000, 1000)
        .await
        .unwrap();
    assert!(!not_yet.iter().any(|x| x.id == c.id), "before is exclusive");
    assert!(
        s.set_live_state(
            &c.id,
            LiveState::Open,
            LiveState::Incomplete,
            None,
            None,
            1_100
        )
        .await
        .unwrap()
    );
    let got = s.get_live_call(&t, &c.id).await.unwrap();
    assert_eq!(
        (got.state, got.total_chunks, got.updated_at, got.gaps),
        (LiveState::Incomplete, None, 1_100, None),
        "a refused move changed nothing, the outcome included"
    );
}

async fn live_store_is_atomic_and_once(s: MetadataStore) {
    let t = new_tenant(&s, "live").await;
    let (c, k) = live_call(&t, 1_000);
    s.create_live_call(&c, &k).await.unwrap();
    s.append_live_chunks(&[chunk(&c.id, 0, 1)], 1_001)
        .await
        .unwrap();
    let mut rec = recording(&t, c.started_at);
    rec.id = c.id;
    // Still open: refused, nothing stored.
    assert!(matches!(
        s.store_live_call(&rec, "[]").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.get_recording(&t, &rec.id).await,
        Err(StoreError::NotFound)
    ));
    let paused = r#"{"paused":[{"offset_ms":400,"length_ms":1500,"by":"src"}]}"#;
    s.set_live_state(
        &c.id,
        LiveState::Open,
        LiveState::Finished,
        Some(2),
        Some(paused),
        1_002,
    )
    .await
    .unwrap();
    let finished = s.get_live_call(&t, &c.id).await.unwrap();
    assert_eq!(
        (finished.total_chunks, finished.gaps.as_deref()),
        (Some(2), Some(paused)),
        "the protocol's outcome is kept until assembly replaces it"
    );
    s.store_live_call(&rec, "[[1,1]]").await.unwrap();
    assert_eq!(s.get_recording(&t, &rec.id).await.unwrap(), rec);
    let got = s.get_live_call(&t, &c.id).await.unwrap();
    assert_eq!(
        (got.state, got.gaps.as_deref()),
        (LiveState::Stored, Some("[[1,1]]"))
    );
    assert!(s.live_chunk_seqs(&c.id).await.unwrap().is_empty());
    assert!(s.live_keys(&c.id).await.unwrap().is_empty());
    assert!(matches!(
        s.store_live_call(&rec, "[]").await,
        Err(StoreError::Conflict(_))
    ));
}
