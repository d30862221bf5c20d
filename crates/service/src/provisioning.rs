//! Creating tenants, users and tokens: the one implementation behind both the admin API and the
//! CLI. Callers record the audit entry; these functions only build and store.

use crate::clock::unix_now;
use callvault_auth::password;
use callvault_auth::token::{self, Kind};
use callvault_core::{Role, TenantId, UserId, Username};
use callvault_crypto::{CallerHashKey, CryptoError, KeyProvider, SecretString, TenantIdentity};
use callvault_store::{ApiToken, MetadataStore, StoreError, Tenant, TenantKey, User};

/// Why a tenant, user or token was not created.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    /// A request a person must correct; the message says how.
    #[error("{0}")]
    Invalid(String),
    #[error("that username is taken")]
    UsernameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("generating the keys of tenant `{tenant}`: {source}")]
    Keygen {
        tenant: TenantId,
        #[source]
        source: CryptoError,
    },
    #[error("hashing the one-time password: {0}")]
    Password(String),
}

type Result<T> = std::result::Result<T, ProvisioningError>;

fn keygen(tenant: &TenantId) -> impl FnOnce(CryptoError) -> ProvisioningError + '_ {
    move |source| ProvisioningError::Keygen {
        tenant: tenant.clone(),
        source,
    }
}

pub async fn create_tenant(
    meta: &MetadataStore,
    kp: &KeyProvider,
    id: TenantId,
    name: String,
) -> Result<Tenant> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ProvisioningError::Invalid(
            "`name` must be 1 to 200 characters".into(),
        ));
    }
    let (sealed_identity, recipient) =
        TenantIdentity::generate(kp, id.as_str(), 1).map_err(keygen(&id))?;
    let (hash_key_sealed, _) = CallerHashKey::generate(kp, id.as_str()).map_err(keygen(&id))?;
    let t = unix_now();
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
) -> Result<i64> {
    meta.get_tenant(tenant).await?;
    let key_id = meta.next_key_id(tenant).await?;
    let (sealed, recipient) =
        TenantIdentity::generate(kp, tenant.as_str(), key_id).map_err(keygen(tenant))?;
    meta.rotate_key(&TenantKey {
        tenant: tenant.clone(),
        key_id,
        recipient: recipient.to_string(),
        identity_sealed: sealed,
        active: true,
        created_at: unix_now(),
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
) -> Result<(User, SecretString)> {
    if !role.is_human() {
        return Err(ProvisioningError::Invalid(
            "recorders are machines: create an API token with role `recorder` instead".into(),
        ));
    }
    if tenant.is_none() && !matches!(role, Role::Admin | Role::Auditor) {
        return Err(ProvisioningError::Invalid(format!(
            "a {role} must belong to a tenant: set `tenant`"
        )));
    }
    if let Some(t) = &tenant {
        tenant_exists(meta, t).await?;
    }
    let secret = password::one_time_secret();
    let user = User {
        id: UserId::random(),
        username,
        tenant,
        role,
        password_hash: password::hash(&secret)
            .map_err(|e| ProvisioningError::Password(e.to_string()))?,
        must_change_password: true,
        totp_sealed: None,
        totp_last_step: None,
        failed_logins: 0,
        locked_until: None,
        disabled: false,
        created_at: unix_now(),
    };
    meta.create_user(&user).await.map_err(|e| match e {
        StoreError::Conflict(_) => ProvisioningError::UsernameTaken,
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
) -> Result<(ApiToken, SecretString)> {
    if !TOKEN_ROLES.contains(&role) {
        return Err(ProvisioningError::Invalid(
            "tokens can carry only the `recorder` or `auditor` role".into(),
        ));
    }
    if role == Role::Recorder && tenant.is_none() {
        return Err(ProvisioningError::Invalid(
            "a recorder token must belong to a tenant: set `tenant`".into(),
        ));
    }
    if !(1..=366).contains(&days) {
        return Err(ProvisioningError::Invalid(
            "`expires_in_days` must be between 1 and 366".into(),
        ));
    }
    if name.trim().is_empty() || name.len() > 100 {
        return Err(ProvisioningError::Invalid(
            "`name` must be 1 to 100 characters".into(),
        ));
    }
    if let Some(t) = &tenant {
        tenant_exists(meta, t).await?;
    }
    let (secret, hash) = token::generate(Kind::Api);
    let t = unix_now();
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

/// A tenant named in a request must exist; naming one that does not is the requester's mistake.
async fn tenant_exists(meta: &MetadataStore, t: &TenantId) -> Result<()> {
    match meta.get_tenant(t).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound) => Err(ProvisioningError::Invalid(format!("no tenant `{t}`"))),
        Err(e) => Err(e.into()),
    }
}
