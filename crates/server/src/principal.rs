//! Privilege in types. A handler states what it needs by taking one of these extractors; each
//! can only be built after authentication (and, for humans, the second factor) and the role and
//! tenant checks. A handler that forgets to ask gets no `Principal` to act with.

use crate::audit_log::Event;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use callvault_auth::token::{self, Kind};
use callvault_core::{Role, TenantId, UserId};
use callvault_store::{Session, SessionStage, StoreError, User};
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "__Host-callvault";

/// The peer address, attached to each request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

pub fn client_of(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ClientAddr>()
        .map(|c| c.0.ip().to_string())
}

/// Someone authenticated: a user with a complete session, or an API token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `user:<name>` or `token:<id>`, as written in the audit record.
    pub actor: String,
    pub user_id: Option<UserId>,
    pub role: Role,
    pub tenant: Option<TenantId>,
    pub client: Option<String>,
    pub session: Option<[u8; 32]>,
}

impl Principal {
    pub fn event(&self, action: &'static str, result: &'static str) -> Event {
        Event {
            actor: self.actor.clone(),
            tenant: self.tenant.as_ref().map(|t| t.to_string()),
            action,
            result,
            client: self.client.clone(),
            ..Event::default()
        }
    }

    /// May this principal administer `tenant`? Operator-wide admins (no tenant) may administer
    /// any; a tenant's admin only its own.
    pub fn manages(&self, tenant: Option<&TenantId>) -> bool {
        self.role == Role::Admin && (self.tenant.is_none() || self.tenant.as_ref() == tenant)
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// A session (any stage) with its user; used directly only by the sign-in steps.
pub struct AnySession {
    pub session: Session,
    pub user: User,
}

impl FromRequestParts<AppState> for AnySession {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let presented = session_cookie(parts).ok_or_else(ApiError::unauthenticated)?;
        let hash =
            token::hash(Kind::Session, &presented).map_err(|_| ApiError::unauthenticated())?;
        let mut session = match st.meta.get_session(&hash.0).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Err(ApiError::unauthenticated()),
            Err(e) => return Err(e.into()),
        };
        let t = unix_now();
        let cfg = &st.cfg.session;
        if t - session.created_at > cfg.absolute_timeout_secs
            || t - session.last_seen > cfg.idle_timeout_secs
        {
            st.meta.delete_session(&hash.0).await?;
            let mut e = ApiError::unauthenticated();
            e.code = "session_expired";
            e.message = "your session has expired; sign in again".into();
            return Err(e);
        }
        let user = st.meta.get_user(&session.user_id).await?;
        if user.disabled {
            st.meta.delete_user_sessions(&user.id).await?;
            return Err(ApiError::unauthenticated());
        }
        // Writing last_seen on every request would make each read a write; a minute is fine
        // against an idle timeout of many minutes.
        if t - session.last_seen >= 60 {
            session.last_seen = t;
            st.meta.update_session(&session).await?;
        }
        Ok(Self { session, user })
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let client = client_of(parts);
        // A presented credential is never ignored: an Authorization header that is not a valid
        // bearer token is refused, not skipped in favour of a session cookie.
        if parts.headers.contains_key(http::header::AUTHORIZATION) {
            let presented = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
            let hash =
                token::hash(Kind::Api, presented).map_err(|_| ApiError::unauthenticated())?;
            let tok = match st.meta.get_token_by_hash(&hash.0).await {
                Ok(t) => t,
                Err(StoreError::NotFound) => return Err(ApiError::unauthenticated()),
                Err(e) => return Err(e.into()),
            };
            if tok.revoked_at.is_some() || tok.expires_at <= unix_now() {
                return Err(ApiError::unauthenticated());
            }
            return Ok(Principal {
                actor: format!("token:{}", tok.id),
                user_id: None,
                role: tok.role,
                tenant: tok.tenant,
                client,
                session: None,
            });
        }
        let AnySession { session, user } = AnySession::from_request_parts(parts, st).await?;
        if session.stage != SessionStage::Full {
            return Err(ApiError::forbidden(
                "finish signing in first: set a new password and confirm your authenticator code",
            ));
        }
        csrf_check(parts)?;
        Ok(Principal {
            actor: format!("user:{}", user.username),
            user_id: Some(user.id),
            role: user.role,
            tenant: user.tenant,
            client,
            session: Some(session.hash),
        })
    }
}

/// Cookie-authenticated changes must come from our own origin. SameSite=Strict already keeps the
/// cookie off cross-site requests; this is the second lock on the same door.
pub fn csrf_check(parts: &Parts) -> Result<(), ApiError> {
    if parts.method == http::Method::GET || parts.method == http::Method::HEAD {
        return Ok(());
    }
    let site = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if matches!(site, Some(s) if s != "same-origin" && s != "none") {
        return Err(ApiError::forbidden("cross-site request refused"));
    }
    let origin = parts
        .headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok());
    if let (Some(o), Some(h)) = (origin, host) {
        let o_host = o.split("://").nth(1).unwrap_or(o);
        if o_host != h {
            return Err(ApiError::forbidden("cross-origin request refused"));
        }
    }
    Ok(())
}

/// Checks the role and records a refusal in the audit record.
async fn require(
    parts: &mut Parts,
    st: &AppState,
    allowed: &[Role],
    what: &str,
) -> Result<Principal, ApiError> {
    let p = Principal::from_request_parts(parts, st).await?;
    if allowed.contains(&p.role) {
        return Ok(p);
    }
    let mut ev = p.event("access.denied", "denied");
    ev.target = Some(parts.uri.path().to_owned());
    ev.details = Some(serde_json::json!({ "role": p.role.as_str(), "needs": what }));
    st.audit
        .record(ev)
        .await
        .map_err(ApiError::audit_unavailable)?;
    Err(ApiError::forbidden(format!("this needs the {what} role")))
}

fn tenant_of(p: &Principal) -> Result<TenantId, ApiError> {
    p.tenant
        .clone()
        .ok_or_else(|| ApiError::forbidden("this account is not attached to a tenant"))
}

/// A recorder: may send recordings into its tenant, and nothing else.
pub struct Recorder(pub Principal, pub TenantId);

impl FromRequestParts<AppState> for Recorder {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let p = require(parts, st, &[Role::Recorder], "recorder").await?;
        let t = tenant_of(&p)?;
        Ok(Self(p, t))
    }
}

/// Someone who may hear audio of their tenant (listener or privacy officer), signed in with a
/// second factor. Never an admin or auditor (separation of duties).
pub struct Listener(pub Principal, pub TenantId, pub UserId);

impl FromRequestParts<AppState> for Listener {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let p = require(
            parts,
            st,
            &[Role::Listener, Role::PrivacyOfficer],
            "listener",
        )
        .await?;
        let t = tenant_of(&p)?;
        let u = p.user_id.ok_or_else(|| {
            ApiError::forbidden("listening needs a personal sign-in, not a token")
        })?;
        Ok(Self(p, t, u))
    }
}

/// Reads and verifies the audit record.
pub struct Auditor(pub Principal);

impl FromRequestParts<AppState> for Auditor {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        require(parts, st, &[Role::Auditor], "auditor")
            .await
            .map(Self)
    }
}

/// Administers tenants, users and tokens; never hears audio.
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        require(parts, st, &[Role::Admin], "admin").await.map(Self)
    }
}

/// Reads operational metrics: admins and auditors.
pub struct Monitor(pub Principal);

impl FromRequestParts<AppState> for Monitor {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        require(parts, st, &[Role::Admin, Role::Auditor], "admin or auditor")
            .await
            .map(Self)
    }
}

/// A privacy officer of one tenant, signed in personally: legal holds, erasure, subject access,
/// the records of processing. May also hear audio (a `Listener`), never administer accounts.
pub struct PrivacyOfficer(pub Principal, pub TenantId, pub UserId);

impl FromRequestParts<AppState> for PrivacyOfficer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let p = require(parts, st, &[Role::PrivacyOfficer], "privacy_officer").await?;
        let t = tenant_of(&p)?;
        let u = p.user_id.ok_or_else(|| {
            ApiError::forbidden("privacy actions need a personal sign-in, not a token")
        })?;
        Ok(Self(p, t, u))
    }
}

/// Sets a tenant's recording policy and retention rules: its privacy officer, or an admin who
/// manages the tenant. The handler names the tenant; [`PolicyEditor::for_tenant`] checks it.
pub struct PolicyEditor(pub Principal);

impl FromRequestParts<AppState> for PolicyEditor {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        require(
            parts,
            st,
            &[Role::Admin, Role::PrivacyOfficer],
            "admin or privacy_officer",
        )
        .await
        .map(Self)
    }
}

impl PolicyEditor {
    /// May this editor change `tenant`'s policies? Another tenant looks as if it did not exist.
    pub fn for_tenant(&self, tenant: &TenantId) -> Result<(), ApiError> {
        let p = &self.0;
        let own = p.tenant.as_ref() == Some(tenant);
        if p.manages(Some(tenant)) || (p.role == Role::PrivacyOfficer && own) {
            Ok(())
        } else {
            Err(ApiError::not_found())
        }
    }
}
