//! Signing in: password, first-login password change, TOTP enrolment, second factor, sign-out.
//!
//! A session moves through stages (`SessionStage`); only a `Full` session yields a `Principal`.
//! Unknown users, wrong passwords and wrong codes get the same answer, and cost the same time.

use crate::api::Json;
use crate::audit_log::Event;
use crate::clock::unix_now;
use crate::error::{ApiError, ApiResult};
use crate::principal::{AnySession, Principal, SESSION_COOKIE, client_of};
use crate::state::AppState;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use callvault_auth::token::{self, Kind};
use callvault_auth::totp::{self, TotpSecret};
use callvault_auth::{lockout, password};
use callvault_core::Username;
use callvault_crypto::{ExposeSecret, SealContext, SecretString};
use callvault_store::{Session, SessionStage, StoreError, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The 6-digit authenticator code, once TOTP is enrolled.
    pub totp_code: Option<String>,
}

/// What the client must do next.
#[derive(Serialize, ToSchema)]
pub struct SignInStep {
    /// `change_password`, `enroll_totp` or `done`.
    pub next: &'static str,
    /// During `enroll_totp`: the `otpauth://` URI to show as a QR code. Shown once.
    pub otpauth_uri: Option<String>,
    pub role: Option<String>,
    pub tenant: Option<String>,
}

/// An entry about a user acting on their own account.
fn user_event(user: &User, action: &'static str, parts: &Parts) -> Event {
    Event {
        actor: format!("user:{}", user.username),
        tenant: user.tenant.as_ref().map(|t| t.to_string()),
        action,
        target: Some(user.id.to_string()),
        result: "ok",
        client: client_of(parts),
        ..Event::default()
    }
}

fn invalid() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "invalid username, password or authenticator code, or too many recent attempts: wait a few minutes and try again",
    )
}

fn sign_in_event(username: &str, result: &'static str, client: Option<String>) -> Event {
    Event {
        actor: format!("user:{username}"),
        action: "auth.login",
        result,
        client,
        ..Event::default()
    }
}

/// The TOTP step `code` proves for `user` at `t`, if it does (and was not used before).
fn totp_step(
    keys: &crate::keys::Keys,
    user: &User,
    sealed: &[u8],
    code: Option<String>,
    t: i64,
) -> ApiResult<Option<u64>> {
    let secret = keys
        .provider
        .open(&SealContext::totp_secret(&user.id.to_string()), sealed)
        .map_err(|e| ApiError::internal(format!("opening a TOTP secret: {e}")))?;
    let secret = TotpSecret::from_bytes(secret.expose_secret().clone());
    let code: String = code
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Ok(totp::verify(&secret, &code, t as u64, user.totp_last_step))
}

pub async fn login(
    State(st): State<AppState>,
    parts: Parts,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let keys = st.keys()?;
    let client = client_of(&parts);
    let pw = SecretString::from(req.password);
    let user = match Username::parse(&req.username) {
        Ok(name) => match st.meta.get_user_by_name(&name).await {
            Ok(u) => Some(u),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    let Some(mut user) = user.filter(|u| u.role.is_human() && !u.disabled) else {
        password::verify_dummy(&pw);
        st.metrics
            .login_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut ev = sign_in_event("unknown", "denied", client);
        ev.details = Some(serde_json::json!({ "reason": "unknown user" }));
        st.audit
            .record(ev)
            .await
            .map_err(ApiError::audit_unavailable)?;
        return Err(invalid());
    };
    let t = unix_now();
    // A locked account answers exactly like a wrong password (same status, message and
    // work), so lockout does not reveal which usernames exist.
    if user.locked_until.is_some_and(|u| u > t) {
        password::verify_dummy(&pw);
        let ev = sign_in_event(user.username.as_str(), "locked", client);
        st.audit
            .record(ev)
            .await
            .map_err(ApiError::audit_unavailable)?;
        return Err(invalid());
    }
    let pw_ok = password::verify(&pw, &user.password_hash)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let totp_step = match (&user.totp_sealed, pw_ok) {
        (Some(sealed), true) => totp_step(keys, &user, sealed, req.totp_code, t)?,
        _ => None,
    };
    let second_factor_ok = user.totp_sealed.is_none() || totp_step.is_some();
    if !(pw_ok && second_factor_ok) {
        user.failed_logins = user.failed_logins.saturating_add(1);
        let policy = lockout::Policy {
            threshold: st.cfg.login.lockout_threshold,
            base_secs: st.cfg.login.lockout_base_secs,
            max_secs: st.cfg.login.lockout_max_secs,
        };
        if let Some(secs) = policy.lock_secs(user.failed_logins) {
            user.locked_until = Some(t + secs as i64);
        }
        st.meta.update_user(&user).await?;
        st.metrics
            .login_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut ev = sign_in_event(user.username.as_str(), "denied", client);
        ev.details = Some(
            serde_json::json!({ "reason": if pw_ok { "bad second factor" } else { "bad password" }, "failures": user.failed_logins }),
        );
        st.audit
            .record(ev)
            .await
            .map_err(ApiError::audit_unavailable)?;
        return Err(invalid());
    }
    user.failed_logins = 0;
    user.locked_until = None;
    if totp_step.is_some() {
        user.totp_last_step = totp_step;
    }
    st.meta.update_user(&user).await?;
    let stage = if user.must_change_password {
        SessionStage::PasswordChange
    } else if user.totp_sealed.is_none() {
        SessionStage::TotpEnroll
    } else {
        SessionStage::Full
    };
    st.audit
        .record(sign_in_event(user.username.as_str(), "ok", client))
        .await
        .map_err(ApiError::audit_unavailable)?;
    let (cookie, hash) = token::generate(Kind::Session);
    let mut session = Session {
        hash: hash.0,
        user_id: user.id,
        stage,
        pending_totp_sealed: None,
        created_at: t,
        last_seen: t,
    };
    let step = next_step(&st, &mut session, &user)?;
    st.meta.create_session(&session).await?;
    let mut resp = axum::Json(step).into_response();
    set_cookie(
        resp.headers_mut(),
        cookie.expose_secret(),
        st.cfg.session.absolute_timeout_secs,
    );
    Ok(resp)
}

/// Builds the answer for the session's stage; entering `TotpEnroll` mints a fresh secret.
fn next_step(st: &AppState, session: &mut Session, user: &User) -> ApiResult<SignInStep> {
    let mut step = SignInStep {
        next: "done",
        otpauth_uri: None,
        role: None,
        tenant: None,
    };
    match session.stage {
        SessionStage::PasswordChange => step.next = "change_password",
        SessionStage::TotpEnroll => {
            let secret = TotpSecret::generate();
            let sealed = st
                .keys()?
                .provider
                .seal(
                    &SealContext::totp_secret(&user.id.to_string()),
                    secret.expose_bytes(),
                )
                .map_err(|e| ApiError::internal(e.to_string()))?;
            session.pending_totp_sealed = Some(sealed);
            step.next = "enroll_totp";
            step.otpauth_uri = Some(
                secret
                    .otpauth_uri("callvault", user.username.as_str())
                    .expose_secret()
                    .to_owned(),
            );
        }
        SessionStage::Full => {
            step.role = Some(user.role.as_str().to_owned());
            step.tenant = user.tenant.as_ref().map(|t| t.to_string());
        }
    }
    Ok(step)
}

fn set_cookie(h: &mut HeaderMap, value: &str, max_age: i64) {
    let c = format!(
        "{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        h.append(http::header::SET_COOKIE, v);
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

pub async fn change_password(
    State(st): State<AppState>,
    AnySession {
        mut session,
        mut user,
    }: AnySession,
    parts: Parts,
    Json(req): Json<PasswordChange>,
) -> ApiResult<axum::Json<SignInStep>> {
    crate::principal::csrf_check(&parts)?;
    if session.stage == SessionStage::TotpEnroll {
        return Err(ApiError::forbidden("confirm your authenticator code first"));
    }
    let current = SecretString::from(req.current_password);
    if !password::verify(&current, &user.password_hash)
        .map_err(|e| ApiError::internal(e.to_string()))?
    {
        return Err(invalid());
    }
    password::check_policy(&req.new_password, user.username.as_str())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if req.new_password == *current.expose_secret() {
        return Err(ApiError::bad_request(
            "the new password must differ from the current one",
        ));
    }
    user.password_hash = password::hash(&SecretString::from(req.new_password))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    user.must_change_password = false;
    st.audit
        .record(user_event(&user, "auth.password_change", &parts))
        .await
        .map_err(ApiError::audit_unavailable)?;
    st.meta.update_user(&user).await?;
    // Other sessions of this user end with the old password.
    st.meta.delete_user_sessions(&user.id).await?;
    session.stage = if user.totp_sealed.is_none() {
        SessionStage::TotpEnroll
    } else {
        SessionStage::Full
    };
    let step = next_step(&st, &mut session, &user)?;
    st.meta.create_session(&session).await?;
    Ok(axum::Json(step))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    pub code: String,
}

pub async fn confirm_totp(
    State(st): State<AppState>,
    AnySession {
        mut session,
        mut user,
    }: AnySession,
    parts: Parts,
    Json(req): Json<TotpConfirm>,
) -> ApiResult<axum::Json<SignInStep>> {
    crate::principal::csrf_check(&parts)?;
    let (SessionStage::TotpEnroll, Some(sealed)) =
        (session.stage, session.pending_totp_sealed.clone())
    else {
        return Err(ApiError::conflict(
            "there is no authenticator enrolment in progress for this session",
        ));
    };
    let ctx = SealContext::totp_secret(&user.id.to_string());
    let secret = st
        .keys()?
        .provider
        .open(&ctx, &sealed)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let secret = TotpSecret::from_bytes(secret.expose_secret().clone());
    let code: String = req.code.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(step) = totp::verify(&secret, &code, unix_now() as u64, None) else {
        return Err(ApiError::bad_request(
            "that code does not match; check the authenticator's clock and try the current code",
        ));
    };
    user.totp_sealed = Some(sealed);
    user.totp_last_step = Some(step);
    st.audit
        .record(user_event(&user, "auth.totp_enroll", &parts))
        .await
        .map_err(ApiError::audit_unavailable)?;
    st.meta.update_user(&user).await?;
    session.stage = SessionStage::Full;
    session.pending_totp_sealed = None;
    st.meta.update_session(&session).await?;
    next_step(&st, &mut session, &user).map(axum::Json)
}

/// The pending enrolment's `otpauth://` URI as a QR code (SVG), for the console's enrolment
/// page. Answers only during enrolment, only to the session that is enrolling.
pub async fn totp_qr(
    State(st): State<AppState>,
    AnySession { session, user }: AnySession,
) -> ApiResult<Response> {
    let (SessionStage::TotpEnroll, Some(sealed)) = (session.stage, &session.pending_totp_sealed)
    else {
        return Err(ApiError::conflict(
            "there is no authenticator enrolment in progress for this session",
        ));
    };
    let secret = st
        .keys()?
        .provider
        .open(&SealContext::totp_secret(&user.id.to_string()), sealed)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let secret = TotpSecret::from_bytes(secret.expose_secret().clone());
    let uri = secret.otpauth_uri("callvault", user.username.as_str());
    let code = qrcode::QrCode::new(uri.expose_secret().as_bytes())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .build();
    Ok(([(http::header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

pub async fn logout(State(st): State<AppState>, p: Principal) -> ApiResult<Response> {
    if let Some(h) = p.session {
        st.meta.delete_session(&h).await?;
    }
    st.audit
        .record(p.event("auth.logout", "ok"))
        .await
        .map_err(ApiError::audit_unavailable)?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    set_cookie(resp.headers_mut(), "", 0);
    Ok(resp)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub actor: String,
    pub role: String,
    pub tenant: Option<String>,
    /// The console language this person chose (`en` or `sv`); absent until they choose.
    pub language: Option<String>,
}

pub async fn me(State(st): State<AppState>, p: Principal) -> ApiResult<axum::Json<Me>> {
    let language = match &p.user_id {
        Some(u) => st.meta.user_language(u).await?,
        None => None,
    };
    Ok(axum::Json(Me {
        actor: p.actor,
        role: p.role.as_str().to_owned(),
        tenant: p.tenant.map(|t| t.to_string()),
        language,
    }))
}

/// The console's languages.
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Sv,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageChoice {
    pub language: Language,
}

/// Remembers the signed-in person's console language, so it follows them to any browser.
pub async fn set_language(
    State(st): State<AppState>,
    p: Principal,
    Json(req): Json<LanguageChoice>,
) -> ApiResult<StatusCode> {
    let user = p
        .user_id
        .ok_or_else(|| ApiError::bad_request("only people have a console language, not tokens"))?;
    let code = match req.language {
        Language::En => "en",
        Language::Sv => "sv",
    };
    st.meta.set_user_language(&user, code).await?;
    Ok(StatusCode::NO_CONTENT)
}
