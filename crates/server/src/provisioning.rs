//! Creating tenants, users and tokens: the one implementation behind both the admin API and the
//! CLI. Callers record the audit entry; these functions only build and store.

use crate::error::{ApiError, ApiResult};
use crate::principal::now;
use callvault_auth::password;
use callvault_auth::token::{self, Kind};
use callvault_core::{Role, TenantId, UserId, Username};
use callvault_crypto::{CallerHashKey, KeyProvider, SecretString, TenantIdentity};
use callvault_store::{ApiToken, MetadataStore, Tenant, TenantKey, User};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

pub async fn create_tenant(
    meta: &MetadataStore,
    kp: &KeyProvider,
    id: TenantId,
    name: String,
) -> ApiResult<Tenant> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::bad_request("`name` must be 1 to 200 characters"));
    }
    let (sealed_identity, recipient) =
        TenantIdentity::generate(kp, id.as_str(), 1).map_err(internal)?;
    let (hash_key_sealed, _) = CallerHashKey::generate(kp, id.as_str()).map_err(internal)?;
    let t = now();
    let tenant = Tenant {
        id: id.clone(),
        name,
        caller_hash_key_sealed: hash_key_sealed,
        created_at: t,
    };
    let key = TenantKey {
        tenant: id,
        key_id: 1,
        recipient: recipient.to_string(),
        identity_sealed: sealed_identity,
        active: true,
        created_at: t,
    };
    meta.create_tenant(&tenant, &key).await?;
    Ok(tenant)
}

/// New recordings use the new key; recordings under older keys keep opening with those.
pub async fn rotate_tenant_key(
    meta: &MetadataStore,
    kp: &KeyProvider,
    tenant: &TenantId,
) -> ApiResult<i64> {
    meta.get_tenant(tenant).await?;
    let key_id = meta.next_key_id(tenant).await?;
    let (sealed, recipient) =
        TenantIdentity::generate(kp, tenant.as_str(), key_id).map_err(internal)?;
    meta.rotate_key(&TenantKey {
        tenant: tenant.clone(),
        key_id,
        recipient: recipient.to_string(),
        identity_sealed: sealed,
        active: true,
        created_at: now(),
    })
    .await?;
    Ok(key_id)
}

/// A human user with a one-time password that must be changed at first sign-in.
pub async fn create_user(
    meta: &MetadataStore,
    username: Username,
    role: Role,
    tenant: Option<TenantId>,
) -> ApiResult<(User, SecretString)> {
    if !role.is_human() {
        return Err(ApiError::bad_request(
            "recorders are machines: create an API token with role `recorder` instead",
        ));
    }
    if tenant.is_none() && !matches!(role, Role::Admin | Role::Auditor) {
        return Err(ApiError::bad_request(format!(
            "a {role} must belong to a tenant: set `tenant`"
        )));
    }
    if let Some(t) = &tenant {
        meta.get_tenant(t)
            .await
            .map_err(|_| ApiError::bad_request(format!("no tenant `{t}`")))?;
    }
    let secret = password::one_time_secret();
    let user = User {
        id: UserId::random(),
        username,
        tenant,
        role,
        password_hash: password::hash(&secret).map_err(internal)?,
        must_change_password: true,
        totp_sealed: None,
        totp_last_step: None,
        failed_logins: 0,
        locked_until: None,
        disabled: false,
        created_at: now(),
    };
    meta.create_user(&user).await.map_err(|e| match e {
        callvault_store::StoreError::Conflict(_) => ApiError::conflict("that username is taken"),
        other => other.into(),
    })?;
    Ok((user, secret))
}

/// Roles a token may carry: machines and read-only auditing. Humans who hear audio or
/// administer sign in with a second factor instead.
pub const TOKEN_ROLES: [Role; 2] = [Role::Recorder, Role::Auditor];

pub async fn create_token(
    meta: &MetadataStore,
    name: String,
    role: Role,
    tenant: Option<TenantId>,
    days: i64,
    created_by: String,
) -> ApiResult<(ApiToken, SecretString)> {
    if !TOKEN_ROLES.contains(&role) {
        return Err(ApiError::bad_request(
            "tokens can carry only the `recorder` or `auditor` role",
        ));
    }
    if role == Role::Recorder && tenant.is_none() {
        return Err(ApiError::bad_request(
            "a recorder token must belong to a tenant: set `tenant`",
        ));
    }
    if !(1..=366).contains(&days) {
        return Err(ApiError::bad_request(
            "`expires_in_days` must be between 1 and 366",
        ));
    }
    if name.trim().is_empty() || name.len() > 100 {
        return Err(ApiError::bad_request("`name` must be 1 to 100 characters"));
    }
    if let Some(t) = &tenant {
        meta.get_tenant(t)
            .await
            .map_err(|_| ApiError::bad_request(format!("no tenant `{t}`")))?;
    }
    let (secret, hash) = token::generate(Kind::Api);
    let t = now();
    let tok = ApiToken {
        id: format!("tok_{}", &hash.to_hex()[..16]),
        hash: hash.0,
        name,
        tenant,
        role,
        created_by,
        created_at: t,
        expires_at: t + days * 86_400,
        revoked_at: None,
    };
    meta.create_token(&tok).await?;
    Ok((tok, secret))
}
