//! Coordination checks of the metadata suite: named settings and leases.

use super::*;

/// Everything an adapter must do for `CoordinationStore`.
pub async fn suite(store: MetadataStore) {
    check!(store, settings_missing_is_none);
    check!(store, settings_put_if_absent_keeps_first);
    check!(store, settings_put_replaces);
    check!(store, lease_is_exclusive_renewable_and_expires);
    check!(store, lease_concurrent_takers_get_one_winner);
}

// ---- leases --------------------------------------------------------------------------------

async fn lease_is_exclusive_renewable_and_expires(s: MetadataStore) {
    let name = uniq("job");
    assert!(s.try_lease(&name, "node-a", 1000, 30).await.unwrap());
    assert!(
        !s.try_lease(&name, "node-b", 1010, 30).await.unwrap(),
        "held by a"
    );
    assert!(
        s.try_lease(&name, "node-a", 1020, 30).await.unwrap(),
        "a renews"
    );
    assert!(
        !s.try_lease(&name, "node-b", 1049, 30).await.unwrap(),
        "renewal extended it"
    );
    assert!(
        s.try_lease(&name, "node-b", 1050, 30).await.unwrap(),
        "expired: b takes over"
    );
    assert!(
        !s.try_lease(&name, "node-a", 1051, 30).await.unwrap(),
        "a lost it"
    );
    assert!(
        s.try_lease(&uniq("other-job"), "node-a", 1051, 30)
            .await
            .unwrap(),
        "leases are per name"
    );
}

async fn lease_concurrent_takers_get_one_winner(s: MetadataStore) {
    let name = uniq("job");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (s, name) = (s.clone(), name.clone());
            tokio::spawn(async move {
                s.try_lease(&name, &format!("node-{i}"), 5000, 60)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

// ---- settings ------------------------------------------------------------------------------

async fn settings_missing_is_none(s: MetadataStore) {
    assert_eq!(s.get_setting(&uniq("missing")).await.unwrap(), None);
}

async fn settings_put_replaces(s: MetadataStore) {
    let k = uniq("latest");
    s.put_setting(&k, b"one").await.unwrap();
    s.put_setting(&k, b"two").await.unwrap();
    assert_eq!(
        s.get_setting(&k).await.unwrap().as_deref(),
        Some(&b"two"[..])
    );
    // put_if_absent does not overwrite what put stored.
    assert_eq!(s.put_setting_if_absent(&k, b"three").await.unwrap(), b"two");
}

async fn settings_put_if_absent_keeps_first(s: MetadataStore) {
    let k = uniq("setting");
    let first = s.put_setting_if_absent(&k, b"first\0value").await.unwrap();
    assert_eq!(first, b"first\0value");
    let second = s.put_setting_if_absent(&k, b"second").await.unwrap();
    assert_eq!(
        second, b"first\0value",
        "second put must return the first value"
    );
    assert_eq!(
        s.get_setting(&k).await.unwrap().as_deref(),
        Some(&b"first\0value"[..])
    );
    // An empty value is a value, not an absence.
    let k2 = uniq("empty");
    assert_eq!(s.put_setting_if_absent(&k2, b"").await.unwrap(), b"");
    assert_eq!(s.get_setting(&k2).await.unwrap(), Some(Vec::new()));
    assert_eq!(s.put_setting_if_absent(&k2, b"x").await.unwrap(), b"");
}
