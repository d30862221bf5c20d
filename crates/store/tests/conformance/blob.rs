//! The blob suite: everything a `BlobBackend` adapter must do, run against the local directory
//! and S3.

use super::*;
use callvault_store::BlobStore;
use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};

/// Everything a blob adapter must do. `store` must be fresh and empty.
pub async fn suite(store: BlobStore) {
    // The listing is global: this runs first, on the empty store.
    check!(store, blob_list_is_exactly_the_stored_names);
    check!(store, blob_round_trip);
    check!(store, blob_seek_and_partial_reads);
    check!(store, blob_put_existing_is_conflict);
    check!(store, blob_concurrent_puts_of_one_name_store_one);
    check!(store, blob_open_missing_is_not_found);
    check!(store, blob_delete);
    check!(store, blob_zero_length);
    check!(store, blob_five_mib);
    check!(store, blob_listing_is_consistent);
}

/// Deterministic bytes that differ at every offset (so a wrong seek reads wrong data).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

async fn read_all(s: &BlobStore, name: &BlobName) -> Vec<u8> {
    let mut r = s.open(name).await.unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

async fn blob_list_is_exactly_the_stored_names(s: BlobStore) {
    assert!(
        s.list().await.unwrap().is_empty(),
        "fresh store must list nothing"
    );
    let names: Vec<BlobName> = (0..5).map(|_| BlobName::random()).collect();
    for (i, n) in names.iter().enumerate() {
        s.put(n, pattern(100 + i, i as u8)).await.unwrap();
    }
    let listed = s.list().await.unwrap();
    assert_eq!(
        listed.len(),
        names.len(),
        "no duplicates or extras: {listed:?}"
    );
    let listed: BTreeSet<_> = listed.into_iter().collect();
    assert_eq!(listed, names.iter().copied().collect());
    s.delete(&names[2]).await.unwrap();
    let want: BTreeSet<_> = names.iter().copied().filter(|n| n != &names[2]).collect();
    assert_eq!(
        listing_after_deletes(&s, &want).await,
        want,
        "deleted blob no longer listed"
    );
    for n in &names {
        s.delete(n).await.unwrap();
    }
    assert_eq!(
        listing_after_deletes(&s, &BTreeSet::new()).await,
        BTreeSet::new(),
        "all deleted"
    );
}

/// The listing once it shows `want`, or after ten seconds whatever it shows. The trait allows a
/// multi-node object store's listing to lag a delete briefly (Garage merges replica listings;
/// CI saw a just-deleted key listed once); `open` after delete must fail at once and is tested
/// without waiting.
async fn listing_after_deletes(s: &BlobStore, want: &BTreeSet<BlobName>) -> BTreeSet<BlobName> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let listed: BTreeSet<_> = s.list().await.unwrap().into_iter().collect();
        if &listed == want || std::time::Instant::now() > deadline {
            return listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn blob_round_trip(s: BlobStore) {
    let n = BlobName::random();
    let data = pattern(70_001, 1);
    s.put(&n, data.clone()).await.unwrap();
    assert_eq!(read_all(&s, &n).await, data);
    // Opening twice gives independent readers.
    let mut a = s.open(&n).await.unwrap();
    let mut b = s.open(&n).await.unwrap();
    let mut buf_a = [0u8; 10];
    a.read_exact(&mut buf_a).unwrap();
    let mut buf_b = Vec::new();
    b.read_to_end(&mut buf_b).unwrap();
    assert_eq!(buf_a, data[..10]);
    assert_eq!(buf_b, data);
}

async fn blob_seek_and_partial_reads(s: BlobStore) {
    let n = BlobName::random();
    let len = 1 << 18;
    let data = pattern(len, 2);
    s.put(&n, data.clone()).await.unwrap();
    let mut r = s.open(&n).await.unwrap();
    for (off, k) in [
        (0usize, 16usize),
        (1, 1),
        (4095, 2),
        (65_536, 1000),
        (len - 7, 7),
        (12_345, 54_321),
    ] {
        assert_eq!(r.seek(SeekFrom::Start(off as u64)).unwrap(), off as u64);
        let mut buf = vec![0u8; k];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf, data[off..off + k], "read {k} at {off}");
        assert_eq!(r.stream_position().unwrap(), (off + k) as u64);
    }
    // Backwards, relative to the current position and to the end.
    r.seek(SeekFrom::Start(1000)).unwrap();
    assert_eq!(r.seek(SeekFrom::Current(-500)).unwrap(), 500);
    let mut buf = [0u8; 8];
    r.read_exact(&mut buf).unwrap();
    assert_eq!(buf, data[500..508]);
    assert_eq!(r.seek(SeekFrom::End(-10)).unwrap(), (len - 10) as u64);
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, data[len - 10..]);
    assert_eq!(
        r.seek(SeekFrom::End(0)).unwrap(),
        len as u64,
        "End(0) is the length"
    );
    // At or past the end a read returns 0 bytes, not an error.
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    r.seek(SeekFrom::Start(len as u64 + 100)).unwrap();
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    // A read straddling the end returns only what exists.
    r.seek(SeekFrom::Start(len as u64 - 3)).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, data[len - 3..]);
}

async fn blob_put_existing_is_conflict(s: BlobStore) {
    let n = BlobName::random();
    let first = pattern(1000, 3);
    s.put(&n, first.clone()).await.unwrap();
    expect_conflict(
        s.put(&n, pattern(2000, 4)).await,
        "put over an existing blob",
    );
    expect_conflict(s.put(&n, first.clone()).await, "put of identical bytes");
    assert_eq!(read_all(&s, &n).await, first, "the first blob is unchanged");
}

async fn blob_concurrent_puts_of_one_name_store_one(s: BlobStore) {
    let n = BlobName::random();
    let mut handles = Vec::new();
    for i in 0..8u8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            (i, s.put(&n, pattern(64 * 1024, i)).await)
        }));
    }
    let mut winners = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            (i, Ok(())) => winners.push(i),
            (_, Err(StoreError::Conflict(_))) => {}
            (i, Err(e)) => panic!("put {i}: expected Ok or Conflict, got {e:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one concurrent put wins: {winners:?}"
    );
    assert_eq!(
        read_all(&s, &n).await,
        pattern(64 * 1024, winners[0]),
        "the winner's bytes are stored"
    );
    let listed = s.list().await.unwrap();
    assert_eq!(listed.iter().filter(|x| **x == n).count(), 1, "listed once");
}

async fn blob_open_missing_is_not_found(s: BlobStore) {
    expect_not_found(
        s.open(&BlobName::random()).await.map(|_| ()),
        "open of a missing blob",
    );
}

async fn blob_delete(s: BlobStore) {
    let n = BlobName::random();
    let keep = BlobName::random();
    s.put(&n, pattern(10, 5)).await.unwrap();
    s.put(&keep, pattern(10, 6)).await.unwrap();
    s.delete(&n).await.unwrap();
    expect_not_found(s.open(&n).await.map(|_| ()), "open after delete");
    assert!(
        !s.list().await.unwrap().contains(&n),
        "deleted blob not listed"
    );
    s.delete(&n).await.unwrap(); // again: idempotent
    s.delete(&BlobName::random()).await.unwrap(); // never existed
    assert_eq!(
        read_all(&s, &keep).await,
        pattern(10, 6),
        "other blobs untouched"
    );
}

async fn blob_zero_length(s: BlobStore) {
    let n = BlobName::random();
    s.put(&n, Vec::new()).await.unwrap();
    assert!(read_all(&s, &n).await.is_empty());
    let mut r = s.open(&n).await.unwrap();
    assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), 0);
    assert!(
        s.list().await.unwrap().contains(&n),
        "an empty blob is still a blob"
    );
    expect_conflict(s.put(&n, Vec::new()).await, "put over an empty blob");
}

async fn blob_five_mib(s: BlobStore) {
    let n = BlobName::random();
    let len = 5 * 1024 * 1024;
    let data = pattern(len, 7);
    s.put(&n, data.clone()).await.unwrap();
    let got = read_all(&s, &n).await;
    assert_eq!(got.len(), len);
    assert!(got == data, "5 MiB blob differs");
    let mut r = s.open(&n).await.unwrap();
    let mid = len / 2 + 3;
    r.seek(SeekFrom::Start(mid as u64)).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    r.read_exact(&mut buf).unwrap();
    assert!(
        buf == data[mid..mid + (1 << 20)],
        "1 MiB from the middle differs"
    );
}

async fn blob_listing_is_consistent(s: BlobStore) {
    let listed = s.list().await.unwrap();
    let unique: BTreeSet<_> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "no name listed twice");
    for n in &listed {
        s.open(n)
            .await
            .unwrap_or_else(|e| panic!("listed blob {n} does not open: {e}"));
    }
}
