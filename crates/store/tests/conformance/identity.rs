//! Identity checks of the metadata suite: tenants and their keys, users, sessions, API tokens.

use super::*;
use callvault_store::{ApiToken, Session, SessionStage};
use std::collections::BTreeSet;

/// Everything an adapter must do for `IdentityStore`.
pub async fn suite(store: MetadataStore) {
    check!(store, tenant_create_and_get);
    check!(store, tenant_list_sorted);
    check!(store, tenant_duplicate_is_conflict);
    check!(store, tenant_unknown_is_not_found);
    check!(store, tenant_rotate_key);
    check!(store, tenant_rotate_key_always_activates_new_key);
    check!(
        store,
        tenant_rotate_to_existing_key_id_is_conflict_and_changes_nothing
    );
    check!(store, tenant_keys_are_per_tenant);
    check!(store, user_create_and_get);
    check!(store, user_list_all_and_by_tenant);
    check!(store, user_update_changes_every_mutable_field);
    check!(store, user_duplicate_is_conflict);
    check!(store, user_unknown_is_not_found);
    check!(store, user_update_unknown_is_not_found);
    check!(store, user_language_round_trip);
    check!(store, session_create_get_update_delete);
    check!(store, session_duplicate_hash_is_conflict);
    check!(store, session_unknown_is_not_found);
    check!(store, session_delete_user_sessions_only_that_user);
    check!(store, token_create_get_list);
    check!(store, token_revoke_keeps_first_time);
    check!(store, token_revoke_unknown_is_not_found);
    check!(store, token_duplicate_is_conflict);
}

// ---- tenants -------------------------------------------------------------------------------

async fn tenant_create_and_get(s: MetadataStore) {
    let id = TenantId::parse(&uniq("create")).unwrap();
    let t = tenant(&id);
    let k = key(&id, 1);
    s.create_tenant(&t, &k).await.unwrap();
    assert_eq!(s.get_tenant(&id).await.unwrap(), t);
    assert_eq!(s.active_key(&id).await.unwrap(), k);
    assert_eq!(s.get_key(&id, 1).await.unwrap(), k);
    assert_eq!(s.next_key_id(&id).await.unwrap(), 2);
}

async fn tenant_list_sorted(s: MetadataStore) {
    let suffix = rand_hex();
    let mut ids = Vec::new();
    for p in ["zulu", "alpha", "mike"] {
        let id = TenantId::parse(&format!("{p}-{suffix}")).unwrap();
        s.create_tenant(&tenant(&id), &key(&id, 1)).await.unwrap();
        ids.push(id);
    }
    let list = s.list_tenants().await.unwrap();
    let listed: Vec<&TenantId> = list.iter().map(|t| &t.id).collect();
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "list_tenants not sorted by id: {listed:?}"
    );
    for id in &ids {
        let t = list
            .iter()
            .find(|t| &t.id == id)
            .unwrap_or_else(|| panic!("{id} not listed"));
        assert_eq!(t, &s.get_tenant(id).await.unwrap());
    }
}

async fn tenant_duplicate_is_conflict(s: MetadataStore) {
    let id = new_tenant(&s, "dup").await;
    let before = s.get_tenant(&id).await.unwrap();
    let mut other = tenant(&id);
    other.name = "someone else".into();
    expect_conflict(
        s.create_tenant(&other, &key(&id, 1)).await,
        "duplicate tenant",
    );
    expect_conflict(
        s.create_tenant(&other, &key(&id, 7)).await,
        "duplicate tenant, other key id",
    );
    assert_eq!(
        s.get_tenant(&id).await.unwrap(),
        before,
        "failed create must change nothing"
    );
    assert_eq!(s.active_key(&id).await.unwrap().key_id, 1);
    expect_not_found(s.get_key(&id, 7).await, "key of a failed create");
}

async fn tenant_unknown_is_not_found(s: MetadataStore) {
    let id = TenantId::parse(&uniq("nobody")).unwrap();
    expect_not_found(s.get_tenant(&id).await, "get_tenant");
    expect_not_found(s.active_key(&id).await, "active_key");
    expect_not_found(s.get_key(&id, 1).await, "get_key of unknown tenant");
    let known = new_tenant(&s, "known").await;
    expect_not_found(s.get_key(&known, 2).await, "get_key of unknown key id");
}

async fn tenant_rotate_key(s: MetadataStore) {
    let id = TenantId::parse(&uniq("rotate")).unwrap();
    let k1 = key(&id, 1);
    s.create_tenant(&tenant(&id), &k1).await.unwrap();
    let mut keys = vec![k1];
    for n in 2..=4 {
        assert_eq!(s.next_key_id(&id).await.unwrap(), n);
        let k = key(&id, n);
        s.rotate_key(&k).await.unwrap();
        assert_eq!(
            s.active_key(&id).await.unwrap(),
            k,
            "new key must be active"
        );
        keys.push(k);
        // Exactly one active key, the new one; old keys stay readable and unchanged.
        let mut active = 0;
        for old in &keys {
            let got = s.get_key(&id, old.key_id).await.unwrap();
            let mut want = old.clone();
            want.active = old.key_id == n;
            assert_eq!(got, want, "key {} after rotation to {n}", old.key_id);
            active += usize::from(got.active);
        }
        assert_eq!(active, 1, "exactly one active key");
    }
    assert_eq!(s.next_key_id(&id).await.unwrap(), 5);
}

async fn tenant_rotate_key_always_activates_new_key(s: MetadataStore) {
    // rotate_key "makes new_key the only active key", whatever its `active` field says.
    let id = new_tenant(&s, "rotflag").await;
    let mut k = key(&id, 2);
    k.active = false;
    s.rotate_key(&k).await.unwrap();
    let active = s.active_key(&id).await.unwrap();
    assert_eq!(active.key_id, 2);
    assert!(active.active);
    assert!(!s.get_key(&id, 1).await.unwrap().active);
}

async fn tenant_rotate_to_existing_key_id_is_conflict_and_changes_nothing(s: MetadataStore) {
    let id = new_tenant(&s, "rotdup").await;
    let k2 = key(&id, 2);
    s.rotate_key(&k2).await.unwrap();
    expect_conflict(
        s.rotate_key(&key(&id, 1)).await,
        "rotate to existing key id 1",
    );
    expect_conflict(
        s.rotate_key(&key(&id, 2)).await,
        "rotate to existing key id 2",
    );
    assert_eq!(
        s.active_key(&id).await.unwrap(),
        k2,
        "failed rotation must leave the active key"
    );
    assert!(!s.get_key(&id, 1).await.unwrap().active);
}

async fn tenant_keys_are_per_tenant(s: MetadataStore) {
    let a = new_tenant(&s, "keys-a").await;
    let b = new_tenant(&s, "keys-b").await;
    let b1 = s.active_key(&b).await.unwrap();
    s.rotate_key(&key(&a, 2)).await.unwrap();
    s.rotate_key(&key(&a, 3)).await.unwrap();
    assert_eq!(
        s.active_key(&b).await.unwrap(),
        b1,
        "rotating a must not touch b"
    );
    assert_eq!(s.next_key_id(&b).await.unwrap(), 2);
    expect_not_found(s.get_key(&b, 2).await, "b has no key 2");
}

// ---- users ---------------------------------------------------------------------------------

async fn user_create_and_get(s: MetadataStore) {
    let t = new_tenant(&s, "users").await;
    let mut u = user(Some(&t), "anna.berg_");
    u.totp_sealed = Some(h32().to_vec());
    u.totp_last_step = Some(58_000_123);
    u.failed_logins = 2;
    u.locked_until = Some(1_700_009_999);
    u.must_change_password = false;
    s.create_user(&u).await.unwrap();
    assert_eq!(s.get_user(&u.id).await.unwrap(), u);
    assert_eq!(s.get_user_by_name(&u.username).await.unwrap(), u);
    // An operator-wide user has no tenant.
    let mut admin = user(None, "root");
    admin.role = Role::Admin;
    s.create_user(&admin).await.unwrap();
    assert_eq!(s.get_user(&admin.id).await.unwrap(), admin);
}

async fn user_list_all_and_by_tenant(s: MetadataStore) {
    let a = new_tenant(&s, "ulist-a").await;
    let b = new_tenant(&s, "ulist-b").await;
    let a1 = new_user(&s, Some(&a), "a1").await;
    let a2 = new_user(&s, Some(&a), "a2").await;
    let b1 = new_user(&s, Some(&b), "b1").await;
    let op = new_user(&s, None, "op").await;
    let ids = |v: &[User]| v.iter().map(|u| u.id).collect::<BTreeSet<_>>();
    let in_a = s.list_users(Some(&a)).await.unwrap();
    assert_eq!(
        ids(&in_a),
        ids(&[a1.clone(), a2.clone()]),
        "users of tenant a"
    );
    assert!(
        in_a.contains(&a1) && in_a.contains(&a2),
        "listed rows equal stored rows"
    );
    assert_eq!(s.list_users(Some(&b)).await.unwrap(), vec![b1.clone()]);
    let empty = new_tenant(&s, "ulist-empty").await;
    assert!(s.list_users(Some(&empty)).await.unwrap().is_empty());
    let all = s.list_users(None).await.unwrap();
    for u in [&a1, &a2, &b1, &op] {
        assert!(
            all.contains(u),
            "{} missing from list_users(None)",
            u.username
        );
    }
    assert_eq!(ids(&all).len(), all.len(), "no duplicates");
}

async fn user_update_changes_every_mutable_field(s: MetadataStore) {
    let t1 = new_tenant(&s, "upd-a").await;
    let t2 = new_tenant(&s, "upd-b").await;
    let orig = new_user(&s, Some(&t1), "upd").await;

    let mut u = orig.clone();
    u.tenant = Some(t2.clone());
    u.role = Role::PrivacyOfficer;
    u.password_hash = "$argon2id$new".into();
    u.must_change_password = false;
    u.totp_sealed = Some(vec![9; 40]);
    u.totp_last_step = Some(u64::from(u32::MAX) + 7);
    u.failed_logins = 5;
    u.locked_until = Some(1_800_000_000);
    u.disabled = true;
    s.update_user(&u).await.unwrap();
    let got = s.get_user(&orig.id).await.unwrap();
    assert_eq!(got.tenant, u.tenant, "tenant");
    assert_eq!(got.role, u.role, "role");
    assert_eq!(got.password_hash, u.password_hash, "password_hash");
    assert_eq!(
        got.must_change_password, u.must_change_password,
        "must_change_password"
    );
    assert_eq!(got.totp_sealed, u.totp_sealed, "totp_sealed");
    assert_eq!(got.totp_last_step, u.totp_last_step, "totp_last_step");
    assert_eq!(got.failed_logins, u.failed_logins, "failed_logins");
    assert_eq!(got.locked_until, u.locked_until, "locked_until");
    assert_eq!(got.disabled, u.disabled, "disabled");
    assert_eq!(got.username, orig.username, "username");
    assert_eq!(got.created_at, orig.created_at, "created_at");
    assert_eq!(got, u);
    assert_eq!(s.get_user_by_name(&orig.username).await.unwrap(), u);
    assert!(
        s.list_users(Some(&t1)).await.unwrap().is_empty(),
        "moved out of t1"
    );
    assert_eq!(
        s.list_users(Some(&t2)).await.unwrap(),
        vec![u.clone()],
        "moved into t2"
    );

    // And back: optional fields can be cleared, booleans reset, tenant removed.
    let mut v = u.clone();
    v.tenant = None;
    v.role = Role::Auditor;
    v.must_change_password = true;
    v.totp_sealed = None;
    v.totp_last_step = None;
    v.failed_logins = 0;
    v.locked_until = None;
    v.disabled = false;
    s.update_user(&v).await.unwrap();
    let got = s.get_user(&orig.id).await.unwrap();
    assert_eq!(got.tenant, None, "tenant cleared");
    assert_eq!(got.totp_sealed, None, "totp_sealed cleared");
    assert_eq!(got.totp_last_step, None, "totp_last_step cleared");
    assert_eq!(got.locked_until, None, "locked_until cleared");
    assert_eq!(got, v);
}

async fn user_duplicate_is_conflict(s: MetadataStore) {
    let t = new_tenant(&s, "udup").await;
    let u = new_user(&s, Some(&t), "dup").await;
    let mut same_name = user(Some(&t), "other");
    same_name.username = u.username.clone();
    expect_conflict(s.create_user(&same_name).await, "duplicate username");
    expect_not_found(s.get_user(&same_name.id).await, "the refused user");
    let mut same_id = user(Some(&t), "other");
    same_id.id = u.id;
    expect_conflict(s.create_user(&same_id).await, "duplicate user id");
    assert_eq!(s.get_user(&u.id).await.unwrap(), u, "original unchanged");
}

async fn user_unknown_is_not_found(s: MetadataStore) {
    expect_not_found(s.get_user(&UserId::random()).await, "get_user");
    expect_not_found(
        s.get_user_by_name(&Username::parse(&uniq("ghost")).unwrap())
            .await,
        "get_user_by_name",
    );
}

async fn user_language_round_trip(s: MetadataStore) {
    let u = new_user(&s, None, "lang").await;
    assert_eq!(s.user_language(&u.id).await.unwrap(), None);
    s.set_user_language(&u.id, "sv").await.unwrap();
    assert_eq!(s.user_language(&u.id).await.unwrap().as_deref(), Some("sv"));
    // Updating the rest of the user leaves the choice alone.
    s.update_user(&u).await.unwrap();
    assert_eq!(s.user_language(&u.id).await.unwrap().as_deref(), Some("sv"));
    let ghost = UserId::random();
    expect_not_found(s.user_language(&ghost).await, "unknown user's language");
    expect_not_found(s.set_user_language(&ghost, "en").await, "unknown user");
}

async fn user_update_unknown_is_not_found(s: MetadataStore) {
    let ghost = user(None, "ghost");
    expect_not_found(s.update_user(&ghost).await, "update_user");
    expect_not_found(s.get_user(&ghost.id).await, "update must not create");
}

// ---- sessions ------------------------------------------------------------------------------

fn session(user: &UserId) -> Session {
    Session {
        hash: h32(),
        user_id: *user,
        stage: SessionStage::PasswordChange,
        pending_totp_sealed: None,
        created_at: 1_700_000_200,
        last_seen: 1_700_000_200,
    }
}

async fn session_create_get_update_delete(s: MetadataStore) {
    let u = new_user(&s, None, "sess").await;
    let sess = session(&u.id);
    s.create_session(&sess).await.unwrap();
    assert_eq!(s.get_session(&sess.hash).await.unwrap(), sess);

    let mut next = sess.clone();
    next.stage = SessionStage::TotpEnroll;
    next.pending_totp_sealed = Some(vec![1, 2, 3]);
    next.last_seen = sess.last_seen + 60;
    s.update_session(&next).await.unwrap();
    assert_eq!(s.get_session(&sess.hash).await.unwrap(), next);

    let mut full = next.clone();
    full.stage = SessionStage::Full;
    full.pending_totp_sealed = None;
    full.last_seen += 60;
    s.update_session(&full).await.unwrap();
    assert_eq!(s.get_session(&sess.hash).await.unwrap(), full);

    s.delete_session(&sess.hash).await.unwrap();
    expect_not_found(s.get_session(&sess.hash).await, "deleted session");
    s.delete_session(&sess.hash).await.unwrap(); // deleting again is not an error
}

async fn session_duplicate_hash_is_conflict(s: MetadataStore) {
    let u = new_user(&s, None, "sessdup").await;
    let a = session(&u.id);
    s.create_session(&a).await.unwrap();
    let mut b = session(&u.id);
    b.hash = a.hash;
    expect_conflict(s.create_session(&b).await, "duplicate session hash");
    assert_eq!(s.get_session(&a.hash).await.unwrap(), a);
}

async fn session_unknown_is_not_found(s: MetadataStore) {
    expect_not_found(s.get_session(&h32()).await, "get_session");
    let u = new_user(&s, None, "sessghost").await;
    let ghost = session(&u.id);
    expect_not_found(s.update_session(&ghost).await, "update_session");
    expect_not_found(s.get_session(&ghost.hash).await, "update must not create");
    s.delete_session(&ghost.hash).await.unwrap();
}

async fn session_delete_user_sessions_only_that_user(s: MetadataStore) {
    let a = new_user(&s, None, "sess-a").await;
    let b = new_user(&s, None, "sess-b").await;
    let mine: Vec<Session> = (0..3).map(|_| session(&a.id)).collect();
    let theirs = session(&b.id);
    for x in mine.iter().chain([&theirs]) {
        s.create_session(x).await.unwrap();
    }
    s.delete_user_sessions(&a.id).await.unwrap();
    for x in &mine {
        expect_not_found(
            s.get_session(&x.hash).await,
            "a's session after delete_user_sessions",
        );
    }
    assert_eq!(
        s.get_session(&theirs.hash).await.unwrap(),
        theirs,
        "b's session survives"
    );
    s.delete_user_sessions(&a.id).await.unwrap(); // nothing left: still fine
}

// ---- tokens --------------------------------------------------------------------------------

fn token(tenant: Option<&TenantId>, created_at: i64) -> ApiToken {
    ApiToken {
        id: uniq("tok"),
        hash: h32(),
        name: uniq("name"),
        tenant: tenant.cloned(),
        role: Role::Recorder,
        created_by: "user:admin".into(),
        created_at,
        expires_at: created_at + 86_400,
        revoked_at: None,
    }
}

async fn token_create_get_list(s: MetadataStore) {
    let t = new_tenant(&s, "tok").await;
    let other = new_tenant(&s, "tok-other").await;
    let t1 = token(Some(&t), 1_700_000_000);
    let t2 = token(Some(&t), 1_700_000_500);
    let o1 = token(Some(&other), 1_700_000_000);
    let mut op = token(None, 1_700_000_000);
    op.role = Role::Auditor;
    for x in [&t1, &t2, &o1, &op] {
        s.create_token(x).await.unwrap();
        assert_eq!(&s.get_token_by_hash(&x.hash).await.unwrap(), x);
    }
    let ids = |v: &[ApiToken]| v.iter().map(|x| x.id.clone()).collect::<BTreeSet<_>>();
    let in_t = s.list_tokens(Some(&t)).await.unwrap();
    assert_eq!(ids(&in_t), ids(&[t1.clone(), t2.clone()]), "tokens of t");
    assert!(in_t.contains(&t1) && in_t.contains(&t2));
    assert_eq!(s.list_tokens(Some(&other)).await.unwrap(), vec![o1.clone()]);
    let all = s.list_tokens(None).await.unwrap();
    for x in [&t1, &t2, &o1, &op] {
        assert!(all.contains(x), "{} missing from list_tokens(None)", x.id);
    }
}

async fn token_revoke_keeps_first_time(s: MetadataStore) {
    let x = token(None, 1_700_000_000);
    s.create_token(&x).await.unwrap();
    s.revoke_token(&x.id, 1_700_001_000).await.unwrap();
    let got = s.get_token_by_hash(&x.hash).await.unwrap();
    assert_eq!(got.revoked_at, Some(1_700_001_000));
    assert_eq!(
        ApiToken {
            revoked_at: None,
            ..got
        },
        x,
        "only revoked_at changes"
    );
    s.revoke_token(&x.id, 1_700_002_000).await.unwrap();
    assert_eq!(
        s.get_token_by_hash(&x.hash).await.unwrap().revoked_at,
        Some(1_700_001_000),
        "a second revoke keeps the first time"
    );
    // Other tokens are untouched.
    let y = token(None, 1_700_000_000);
    s.create_token(&y).await.unwrap();
    s.revoke_token(&x.id, 1_700_003_000).await.unwrap();
    assert_eq!(s.get_token_by_hash(&y.hash).await.unwrap().revoked_at, None);
}

async fn token_revoke_unknown_is_not_found(s: MetadataStore) {
    expect_not_found(s.revoke_token(&uniq("ghost"), 1).await, "revoke_token");
    expect_not_found(s.get_token_by_hash(&h32()).await, "get_token_by_hash");
}

async fn token_duplicate_is_conflict(s: MetadataStore) {
    let x = token(None, 1_700_000_000);
    s.create_token(&x).await.unwrap();
    let mut same_id = token(None, 1_700_000_000);
    same_id.id = x.id.clone();
    expect_conflict(s.create_token(&same_id).await, "duplicate token id");
    let mut same_hash = token(None, 1_700_000_000);
    same_hash.hash = x.hash;
    expect_conflict(s.create_token(&same_hash).await, "duplicate token hash");
    assert_eq!(s.get_token_by_hash(&x.hash).await.unwrap(), x);
}
