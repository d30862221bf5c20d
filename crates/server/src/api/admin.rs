//! Administration: tenants, users, tokens. Admins never hear audio; every change is audited
//! before it is answered.

use crate::api::{Json, Path, rfc3339};
use crate::clock::unix_now;
use crate::error::{ApiError, ApiResult};
use crate::principal::{Admin, Principal};
use crate::provisioning;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use callvault_auth::password;
use callvault_core::{Role, TenantId, UserId, Username};
use callvault_crypto::ExposeSecret;
use callvault_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Records the change, then performs it: nothing happens unless its entry is durable (fail
/// closed). If the change then fails, a second entry says so, so the record never claims a
/// change that did not happen.
async fn audited<T, E>(
    st: &AppState,
    p: &Principal,
    action: &'static str,
    target: String,
    details: serde_json::Value,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> ApiResult<T>
where
    ApiError: From<E>,
{
    let mut ev = p.event(action, "ok");
    ev.target = Some(target);
    ev.details = Some(details);
    st.audit
        .record(ev.clone())
        .await
        .map_err(ApiError::audit_unavailable)?;
    let out = work.await.map_err(ApiError::from);
    if let Err(e) = &out {
        ev.result = "error";
        ev.details = Some(serde_json::json!({ "error": e.code }));
        if let Err(audit) = st.audit.record(ev).await {
            tracing::error!(error = %audit, action, "could not record a failed admin change");
        }
    }
    out
}

fn scope(p: &Principal, tenant: Option<&TenantId>) -> ApiResult<()> {
    if p.manages(tenant) {
        Ok(())
    } else {
        Err(ApiError::forbidden("you administer only your own tenant"))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Short id: a-z, 0-9, '-'.
    pub id: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

pub async fn create_tenant(
    State(st): State<AppState>,
    Admin(p): Admin,
    Json(req): Json<NewTenant>,
) -> ApiResult<(StatusCode, axum::Json<TenantView>)> {
    scope(&p, None)?;
    let id = TenantId::parse(&req.id)?;
    let keys = st.keys()?;
    let t = audited(
        &st,
        &p,
        "tenant.create",
        id.to_string(),
        serde_json::json!({}),
        provisioning::create_tenant(&st.meta, &keys.provider, id.clone(), req.name),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TenantView {
            id: t.id.to_string(),
            name: t.name,
            created_at: rfc3339(t.created_at),
        }),
    ))
}

pub async fn list_tenants(
    State(st): State<AppState>,
    Admin(p): Admin,
) -> ApiResult<axum::Json<Vec<TenantView>>> {
    let all = st.meta.list_tenants().await?;
    Ok(axum::Json(
        all.into_iter()
            .filter(|t| p.manages(Some(&t.id)))
            .map(|t| TenantView {
                id: t.id.to_string(),
                name: t.name,
                created_at: rfc3339(t.created_at),
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Rotated {
    pub key_id: i64,
}

pub async fn rotate_key(
    State(st): State<AppState>,
    Admin(p): Admin,
    Path(tenant): Path<String>,
) -> ApiResult<axum::Json<Rotated>> {
    let tenant = TenantId::parse(&tenant)?;
    scope(&p, Some(&tenant))?;
    let keys = st.keys()?;
    let key_id = audited(
        &st,
        &p,
        "tenant.key_rotate",
        tenant.to_string(),
        serde_json::json!({}),
        provisioning::rotate_tenant_key(&st.meta, &keys.provider, &tenant),
    )
    .await?;
    Ok(axum::Json(Rotated { key_id }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    /// listener, privacy_officer, auditor or admin.
    pub role: String,
    pub tenant: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub role: String,
    pub tenant: Option<String>,
    pub totp_enrolled: bool,
    pub disabled: bool,
    pub locked: bool,
}

#[derive(Serialize, ToSchema)]
pub struct UserCreated {
    pub user: UserView,
    /// Shown once. The user must change it at first sign-in.
    pub one_time_password: String,
}

fn user_view(u: &callvault_store::User) -> UserView {
    UserView {
        id: u.id.to_string(),
        username: u.username.to_string(),
        role: u.role.as_str().to_owned(),
        tenant: u.tenant.as_ref().map(|t| t.to_string()),
        totp_enrolled: u.totp_sealed.is_some(),
        disabled: u.disabled,
        locked: u.locked_until.is_some_and(|t| t > unix_now()),
    }
}

pub async fn create_user(
    State(st): State<AppState>,
    Admin(p): Admin,
    Json(req): Json<NewUser>,
) -> ApiResult<(StatusCode, axum::Json<UserCreated>)> {
    let username = Username::parse(&req.username)?;
    let role = Role::parse(&req.role)?;
    let tenant = req.tenant.as_deref().map(TenantId::parse).transpose()?;
    scope(&p, tenant.as_ref())?;
    let details = serde_json::json!({ "role": role.as_str(), "tenant": tenant.as_ref().map(|t| t.to_string()) });
    let (user, secret) = audited(
        &st,
        &p,
        "user.create",
        username.to_string(),
        details,
        provisioning::create_user(&st.meta, username.clone(), role, tenant),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(UserCreated {
            user: user_view(&user),
            one_time_password: secret.expose_secret().to_owned(),
        }),
    ))
}

pub async fn list_users(
    State(st): State<AppState>,
    Admin(p): Admin,
) -> ApiResult<axum::Json<Vec<UserView>>> {
    let users = st.meta.list_users(p.tenant.as_ref()).await?;
    Ok(axum::Json(users.iter().map(user_view).collect()))
}

async fn load_scoped_user(
    st: &AppState,
    p: &Principal,
    id: &str,
) -> ApiResult<callvault_store::User> {
    let id = UserId::parse(id)?;
    let user = st.meta.get_user(&id).await?;
    if !p.manages(user.tenant.as_ref()) {
        return Err(ApiError::not_found());
    }
    Ok(user)
}

/// Issues a new one-time password and clears the second factor: the user enrols again.
pub async fn reset_user(
    State(st): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<UserCreated>> {
    let mut user = load_scoped_user(&st, &p, &id).await?;
    let secret = password::one_time_secret();
    let target = user.id.to_string();
    audited(
        &st,
        &p,
        "user.reset",
        target,
        serde_json::json!({}),
        async {
            user.password_hash =
                password::hash(&secret).map_err(|e| ApiError::internal(e.to_string()))?;
            user.must_change_password = true;
            user.totp_sealed = None;
            user.totp_last_step = None;
            user.failed_logins = 0;
            user.locked_until = None;
            st.meta.update_user(&user).await?;
            st.meta.delete_user_sessions(&user.id).await?;
            Ok::<_, ApiError>(())
        },
    )
    .await?;
    Ok(axum::Json(UserCreated {
        user: user_view(&user),
        one_time_password: secret.expose_secret().to_owned(),
    }))
}

pub async fn disable_user(
    State(st): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut user = load_scoped_user(&st, &p, &id).await?;
    if Some(user.id) == p.user_id {
        return Err(ApiError::bad_request("you cannot disable your own account"));
    }
    let target = user.id.to_string();
    audited(
        &st,
        &p,
        "user.disable",
        target,
        serde_json::json!({}),
        async {
            user.disabled = true;
            st.meta.update_user(&user).await?;
            st.meta.delete_user_sessions(&user.id).await?;
            Ok::<_, StoreError>(())
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// recorder or auditor.
    pub role: String,
    pub tenant: Option<String>,
    /// 1 to 366.
    pub expires_in_days: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub tenant: Option<String>,
    pub created_by: String,
    pub expires_at: String,
    pub revoked: bool,
}

#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    pub token: TokenView,
    /// The bearer secret. Shown once; only its hash is stored.
    pub secret: String,
}

fn token_view(t: &callvault_store::ApiToken) -> TokenView {
    TokenView {
        id: t.id.clone(),
        name: t.name.clone(),
        role: t.role.as_str().to_owned(),
        tenant: t.tenant.as_ref().map(|x| x.to_string()),
        created_by: t.created_by.clone(),
        expires_at: rfc3339(t.expires_at),
        revoked: t.revoked_at.is_some(),
    }
}

pub async fn create_token(
    State(st): State<AppState>,
    Admin(p): Admin,
    Json(req): Json<NewToken>,
) -> ApiResult<(StatusCode, axum::Json<TokenCreated>)> {
    let role = Role::parse(&req.role)?;
    let tenant = req.tenant.as_deref().map(TenantId::parse).transpose()?;
    scope(&p, tenant.as_ref())?;
    let details = serde_json::json!({ "role": role.as_str(), "tenant": tenant.as_ref().map(|t| t.to_string()) });
    let (tok, secret) = audited(
        &st,
        &p,
        "token.create",
        req.name.clone(),
        details,
        provisioning::create_token(
            &st.meta,
            req.name,
            role,
            tenant,
            req.expires_in_days,
            p.actor.clone(),
        ),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TokenCreated {
            token: token_view(&tok),
            secret: secret.expose_secret().to_owned(),
        }),
    ))
}

pub async fn list_tokens(
    State(st): State<AppState>,
    Admin(p): Admin,
) -> ApiResult<axum::Json<Vec<TokenView>>> {
    let toks = st.meta.list_tokens(p.tenant.as_ref()).await?;
    Ok(axum::Json(toks.iter().map(token_view).collect()))
}

pub async fn revoke_token(
    State(st): State<AppState>,
    Admin(p): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tok = st
        .meta
        .list_tokens(p.tenant.as_ref())
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(ApiError::not_found)?;
    audited(
        &st,
        &p,
        "token.revoke",
        tok.id.clone(),
        serde_json::json!({}),
        st.meta.revoke_token(&tok.id, unix_now()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
