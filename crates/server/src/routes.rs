//! The router as one table. The same table builds the axum router, the OpenAPI document and the
//! route list that the tests walk to prove every route denies the unauthenticated and every
//! role gets exactly what the table says.

use crate::api::{
    admin, audit, charts, live, ops, playback, privacy, recordings, session, waveform,
};
use crate::error::ErrorBody;
use crate::state::AppState;
use axum::routing::{MethodRouter, delete, get, post, put};
use callvault_core::Role;
use serde_json::{Value, json};
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa::{IntoParams, ToSchema};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials: health, sign-in, the API description. Nothing here reveals data.
    Public,
    /// A session in any sign-in stage (password change, TOTP enrolment).
    SignIn,
    /// A complete session or token whose role is listed.
    Roles(&'static [Role]),
}

type Schemas = Vec<(String, RefOr<Schema>)>;
/// Registers a body's schema (and what it refers to) and returns the schema to embed.
type SchemaFn = fn(&mut Schemas) -> Value;

fn schema<T: ToSchema>(out: &mut Schemas) -> Value {
    let name = T::name().into_owned();
    out.push((name.clone(), T::schema()));
    T::schemas(out);
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A JSON array of `T`. (Every `Vec<T>` is named "Vec" by utoipa, so lists are inlined.)
fn list<T: ToSchema>(out: &mut Schemas) -> Value {
    json!({ "type": "array", "items": schema::<T>(out) })
}

pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// Mounted on ingest-only nodes too (needs no master key).
    pub ingest: bool,
    /// Takes a recording as its body (up to `server.max_upload_bytes`); every other route takes
    /// at most `SMALL_BODY` bytes.
    pub large_body: bool,
    pub handler: MethodRouter<AppState>,
    request: Option<(&'static str, SchemaFn)>,
    response: (u16, Option<(&'static str, SchemaFn)>),
    query: Option<fn() -> Vec<utoipa::openapi::path::Parameter>>,
    /// Error statuses beyond those every route of its kind may answer.
    more_errors: &'static [u16],
}

const ANY_ROLE: &[Role] = &[
    Role::Listener,
    Role::PrivacyOfficer,
    Role::Auditor,
    Role::Admin,
    Role::Recorder,
];
const RECORDER: &[Role] = &[Role::Recorder];
const LISTENER: &[Role] = &[Role::Listener, Role::PrivacyOfficer];
const AUDITOR: &[Role] = &[Role::Auditor];
const ADMIN: &[Role] = &[Role::Admin];
const MONITOR: &[Role] = &[Role::Admin, Role::Auditor];
const PRIVACY: &[Role] = &[Role::PrivacyOfficer];
/// Recording policies, retention rules, records of processing: the tenant's privacy officer or
/// an admin managing the tenant.
const POLICY: &[Role] = &[Role::Admin, Role::PrivacyOfficer];
const JSON: &str = "application/json";

fn r(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        method,
        path,
        access,
        summary,
        ingest: false,
        large_body: false,
        handler,
        request: None,
        response: (200, None),
        query: None,
        more_errors: &[],
    }
}

impl Route {
    fn req<T: ToSchema>(mut self, content_type: &'static str) -> Self {
        self.request = Some((content_type, schema::<T>));
        self
    }
    fn res<T: ToSchema>(mut self, status: u16, content_type: &'static str) -> Self {
        self.response = (status, Some((content_type, schema::<T>)));
        self
    }
    fn res_list<T: ToSchema>(mut self, status: u16, content_type: &'static str) -> Self {
        self.response = (status, Some((content_type, list::<T>)));
        self
    }
    /// A success body that is not JSON (an SVG picture, the console's HTML).
    fn res_raw(mut self, content_type: &'static str) -> Self {
        self.response = (200, Some((content_type, |_| json!({ "type": "string" }))));
        self
    }
    fn more_errors(mut self, codes: &'static [u16]) -> Self {
        self.more_errors = codes;
        self
    }
    fn status(mut self, status: u16) -> Self {
        self.response = (status, None);
        self
    }
    fn ingest(mut self) -> Self {
        self.ingest = true;
        self
    }
    fn large_body(mut self) -> Self {
        self.large_body = true;
        self
    }
    fn query<T: IntoParams>(mut self) -> Self {
        self.query = Some(|| T::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query)));
        self
    }
}

/// Raw audio of one chunk: interleaved samples in the call's codec.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ChunkBody(#[allow(dead_code)] Vec<u8>);

/// Every route callvault serves.
// size: the route table is data, one entry per route in one readable list (ARCHITECTURE.md,
// "One route table that is data"); splitting it would hide a route from whoever reviews access.
pub fn table() -> Vec<Route> {
    use Access::*;
    vec![
        r(
            "get",
            "/healthz",
            Public,
            "Liveness; reveals nothing",
            get(ops::healthz),
        )
        .res::<ops::Health>(200, JSON)
        .ingest(),
        r(
            "get",
            "/api/v1/openapi.json",
            Public,
            "This API description",
            get(ops::openapi),
        )
        .ingest(),
        r(
            "get",
            "/metrics",
            Roles(MONITOR),
            "Prometheus metrics",
            get(ops::metrics),
        ),
        r(
            "get",
            "/api/v1/posture",
            Roles(ADMIN),
            "Posture findings: what makes this deployment unsafe, with the fix",
            get(ops::posture),
        )
        .res_list::<crate::posture::Finding>(200, JSON),
        // The web console: static files that hold no data (see console.rs); every page fills
        // itself from the API under the signed-in user's session.
        r(
            "get",
            "/console",
            Public,
            "The web console (HTML shell, no data)",
            get(crate::console::shell),
        )
        .res_raw("text/html"),
        r(
            "get",
            "/console/assets/{file}",
            Public,
            "The web console's script and style files (no data)",
            get(crate::console::asset),
        ),
        // Signing in
        r(
            "post",
            "/api/v1/auth/login",
            Public,
            "Sign in with password (and TOTP code once enrolled)",
            post(session::login),
        )
        .req::<session::LoginRequest>(JSON)
        .res::<session::SignInStep>(200, JSON),
        r(
            "post",
            "/api/v1/auth/password",
            SignIn,
            "Change password (required at first sign-in)",
            post(session::change_password),
        )
        .req::<session::PasswordChange>(JSON)
        .res::<session::SignInStep>(200, JSON),
        r(
            "post",
            "/api/v1/auth/totp",
            SignIn,
            "Confirm authenticator enrolment with a current code",
            post(session::confirm_totp),
        )
        .req::<session::TotpConfirm>(JSON)
        .res::<session::SignInStep>(200, JSON),
        r(
            "get",
            "/api/v1/auth/totp/qr",
            SignIn,
            "The pending authenticator enrolment as a QR code (SVG)",
            get(session::totp_qr),
        )
        .res_raw("image/svg+xml")
        .more_errors(&[409]),
        r(
            "post",
            "/api/v1/auth/logout",
            Roles(ANY_ROLE),
            "Sign out",
            post(session::logout),
        )
        .status(204),
        r(
            "get",
            "/api/v1/auth/me",
            Roles(ANY_ROLE),
            "Who am I",
            get(session::me),
        )
        .res::<session::Me>(200, JSON),
        r(
            "post",
            "/api/v1/auth/language",
            Roles(ANY_ROLE),
            "Choose your console language (en or sv)",
            post(session::set_language),
        )
        .req::<session::LanguageChoice>(JSON)
        .status(204),
        // Recordings
        r(
            "post",
            "/api/v1/recordings",
            Roles(RECORDER),
            "Upload a finished recording (multipart: metadata + audio)",
            post(recordings::upload),
        )
        .req::<recordings::UploadForm>("multipart/form-data")
        .res::<recordings::Uploaded>(201, JSON)
        .ingest()
        .large_body(),
        // Live calls (docs/live-ingest.md)
        r(
            "post",
            "/api/v1/live/calls",
            Roles(RECORDER),
            "Open a live call (format and metadata)",
            post(live::open),
        )
        .req::<live::OpenRequest>(JSON)
        .res::<live::OpenedCall>(201, JSON)
        .ingest(),
        r(
            "get",
            "/api/v1/live/calls/{id}",
            Roles(RECORDER),
            "Where a live call stands: what is acknowledged, what to resend",
            get(live::status),
        )
        .res::<live::CallStatusView>(200, JSON)
        .ingest(),
        r(
            "put",
            "/api/v1/live/calls/{id}/chunks/{seq}",
            Roles(RECORDER),
            "One chunk of audio; acknowledged once durable; idempotent by sequence number",
            put(live::chunk),
        )
        .req::<ChunkBody>("application/octet-stream")
        .res::<live::ChunkAck>(200, JSON)
        .ingest(),
        r(
            "post",
            "/api/v1/live/calls/{id}/finish",
            Roles(RECORDER),
            "Finish a live call; missing chunks become gaps",
            post(live::finish),
        )
        .req::<live::FinishRequest>(JSON)
        .res::<live::CallStatusView>(200, JSON)
        .ingest(),
        r(
            "get",
            "/api/v1/live/calls/{id}/stream",
            Roles(RECORDER),
            "WebSocket: binary chunks (8-byte big-endian seq + audio) in, JSON acks out",
            get(live::stream),
        )
        .status(101)
        .ingest(),
        r(
            "post",
            "/api/v1/recordings/search",
            Roles(LISTENER),
            "Search recordings of your tenant",
            post(recordings::search),
        )
        .req::<recordings::SearchRequest>(JSON)
        .res::<recordings::SearchPage>(200, JSON),
        r(
            "get",
            "/api/v1/recordings/{id}",
            Roles(LISTENER),
            "One recording's metadata",
            get(recordings::get),
        )
        .res::<recordings::RecordingDetail>(200, JSON),
        r(
            "post",
            "/api/v1/recordings/{id}/access",
            Roles(LISTENER),
            "State a purpose; get a short-lived playback grant",
            post(recordings::access),
        )
        .req::<recordings::AccessRequest>(JSON)
        .res::<recordings::AccessGrant>(201, JSON),
        r(
            "get",
            "/api/v1/playback/{grant}",
            Roles(LISTENER),
            "Play (supports Range)",
            get(playback::play),
        ),
        r(
            "get",
            "/api/v1/playback/{grant}/waveform",
            Roles(LISTENER),
            "The call's waveform (SVG), under the same grant as playback",
            get(waveform::waveform),
        )
        .res_raw("image/svg+xml"),
        // Lifecycle and privacy
        r(
            "get",
            "/api/v1/tenants/{tenant}/recording-policies",
            Roles(POLICY),
            "The tenant's recording policies",
            get(privacy::list_recording_policies),
        )
        .res_list::<privacy::RecordingPolicyView>(200, JSON),
        r(
            "post",
            "/api/v1/tenants/{tenant}/recording-policies",
            Roles(POLICY),
            "Set the recording policy of a queue or the tenant's default (audited)",
            post(privacy::set_recording_policy),
        )
        .req::<privacy::SetRecordingPolicy>(JSON)
        .res::<privacy::RecordingPolicyView>(200, JSON),
        r(
            "get",
            "/api/v1/tenants/{tenant}/retention-rules",
            Roles(POLICY),
            "The tenant's retention rules",
            get(privacy::list_retention_rules),
        )
        .res_list::<privacy::RetentionRuleView>(200, JSON),
        r(
            "post",
            "/api/v1/tenants/{tenant}/retention-rules",
            Roles(POLICY),
            "Set a retention rule for the tenant, a queue or a class; the longest matching rule wins",
            post(privacy::set_retention_rule),
        )
        .req::<privacy::SetRetentionRule>(JSON)
        .res::<privacy::RetentionRuleView>(200, JSON),
        r(
            "get",
            "/api/v1/tenants/{tenant}/processing-report",
            Roles(POLICY),
            "Records of processing (GDPR art. 30): counts by retention class, oldest, holds, erasures",
            get(privacy::processing_report),
        )
        .query::<privacy::ReportQuery>()
        .res::<privacy::ProcessingReport>(200, JSON),
        r(
            "get",
            "/api/v1/holds",
            Roles(PRIVACY),
            "Legal holds of your tenant",
            get(privacy::list_holds),
        )
        .res_list::<privacy::HoldView>(200, JSON),
        r(
            "post",
            "/api/v1/holds",
            Roles(PRIVACY),
            "Place a legal hold on a recording, a caller or a search; overrides retention and erasure",
            post(privacy::create_hold),
        )
        .req::<privacy::NewHold>(JSON)
        .res::<privacy::HoldView>(201, JSON),
        r(
            "post",
            "/api/v1/holds/{id}/lift",
            Roles(PRIVACY),
            "Lift a legal hold",
            post(privacy::lift_hold),
        )
        .status(204),
        r(
            "post",
            "/api/v1/recordings/{id}/erase",
            Roles(PRIVACY),
            "Erase one recording now by crypto-shredding (reason required)",
            post(privacy::erase_recording),
        )
        .req::<privacy::EraseRequest>(JSON)
        .res::<privacy::EraseResult>(200, JSON),
        r(
            "get",
            "/api/v1/erasures",
            Roles(PRIVACY),
            "Erasure requests of your tenant (pending ones await a second officer)",
            get(privacy::list_erasures),
        )
        .res_list::<privacy::ErasureView>(200, JSON),
        r(
            "post",
            "/api/v1/erasures",
            Roles(PRIVACY),
            "Ask to erase every recording of a caller; a second privacy officer must approve",
            post(privacy::request_erasure),
        )
        .req::<privacy::NewErasure>(JSON)
        .res::<privacy::ErasurePending>(202, JSON),
        r(
            "post",
            "/api/v1/erasures/{id}/approve",
            Roles(PRIVACY),
            "Approve another officer's erasure request; the erasure runs",
            post(privacy::approve_erasure),
        )
        .res::<privacy::EraseResult>(200, JSON),
        r(
            "post",
            "/api/v1/subject-access",
            Roles(PRIVACY),
            "Signed subject access archive (GDPR art. 15) of one caller: audio, metadata, access report",
            post(privacy::subject_access),
        )
        .req::<privacy::SubjectAccessRequest>(JSON),
        // Audit
        r(
            "get",
            "/api/v1/audit",
            Roles(AUDITOR),
            "Read the audit record",
            get(audit::query),
        )
        .query::<audit::AuditQuery>()
        .res_list::<audit::AuditEntry>(200, JSON),
        r(
            "post",
            "/api/v1/audit/verify",
            Roles(AUDITOR),
            "Verify chain, checkpoints and the external sink",
            post(audit::verify),
        )
        .res::<audit::VerifyReport>(200, JSON),
        r(
            "post",
            "/api/v1/audit/caller-report",
            Roles(AUDITOR),
            "Every access to one caller's recordings (the number is matched by keyed hash)",
            post(audit::caller_report),
        )
        .req::<audit::CallerReportRequest>(JSON)
        .res::<audit::CallerReport>(200, JSON),
        r(
            "get",
            "/api/v1/charts/{chart}",
            Roles(MONITOR),
            "A chart for the console (SVG): calls-per-day, storage or accesses-per-role",
            get(charts::chart),
        )
        .res_raw("image/svg+xml"),
        // Administration
        r(
            "get",
            "/api/v1/tenants",
            Roles(ADMIN),
            "List tenants",
            get(admin::list_tenants),
        )
        .res_list::<admin::TenantView>(200, JSON),
        r(
            "post",
            "/api/v1/tenants",
            Roles(ADMIN),
            "Create a tenant with its key pair",
            post(admin::create_tenant),
        )
        .req::<admin::NewTenant>(JSON)
        .res::<admin::TenantView>(201, JSON),
        r(
            "post",
            "/api/v1/tenants/{tenant}/keys/rotate",
            Roles(ADMIN),
            "Rotate the tenant's key pair",
            post(admin::rotate_key),
        )
        .res::<admin::Rotated>(200, JSON),
        r(
            "get",
            "/api/v1/users",
            Roles(ADMIN),
            "List users",
            get(admin::list_users),
        )
        .res_list::<admin::UserView>(200, JSON),
        r(
            "post",
            "/api/v1/users",
            Roles(ADMIN),
            "Create a user with a one-time password",
            post(admin::create_user),
        )
        .req::<admin::NewUser>(JSON)
        .res::<admin::UserCreated>(201, JSON),
        r(
            "post",
            "/api/v1/users/{id}/reset",
            Roles(ADMIN),
            "New one-time password; TOTP re-enrolment",
            post(admin::reset_user),
        )
        .res::<admin::UserCreated>(200, JSON),
        r(
            "delete",
            "/api/v1/users/{id}",
            Roles(ADMIN),
            "Disable a user",
            delete(admin::disable_user),
        )
        .status(204),
        r(
            "get",
            "/api/v1/tokens",
            Roles(ADMIN),
            "List API tokens",
            get(admin::list_tokens),
        )
        .res_list::<admin::TokenView>(200, JSON),
        r(
            "post",
            "/api/v1/tokens",
            Roles(ADMIN),
            "Create an API token (shown once)",
            post(admin::create_token),
        )
        .req::<admin::NewToken>(JSON)
        .res::<admin::TokenCreated>(201, JSON),
        r(
            "delete",
            "/api/v1/tokens/{id}",
            Roles(ADMIN),
            "Revoke an API token",
            delete(admin::revoke_token),
        )
        .status(204),
    ]
}

/// The routes mounted for a mode.
pub fn mounted(ingest_only: bool) -> Vec<Route> {
    table()
        .into_iter()
        .filter(|r| r.ingest || !ingest_only)
        .collect()
}

/// Largest JSON body any route but an upload accepts.
pub const SMALL_BODY: usize = 64 * 1024;

pub fn router(ingest_only: bool, max_upload_bytes: usize) -> axum::Router<AppState> {
    mounted(ingest_only)
        .into_iter()
        .fold(axum::Router::new(), |app, r| {
            let limit = if r.large_body {
                max_upload_bytes
            } else {
                SMALL_BODY
            };
            // The declared length is judged first (and a refused body drained, so the 413
            // arrives); the limit still caps bodies that declare no length.
            app.route(
                r.path,
                r.handler
                    .layer(axum::extract::DefaultBodyLimit::max(limit))
                    .layer(axum::middleware::from_fn(move |req, next| {
                        crate::body_limit::refuse_oversized(limit, req, next)
                    })),
            )
        })
}

/// `path` with every parameter filled by a well-formed value that names nothing: what a scanner
/// (`callvault probe`) or the route-walking tests send to prove a route refuses the
/// unauthenticated before it looks anything up.
pub fn example_path(path: &str) -> String {
    path.replace("{id}", "rec_00000000000000000000000000000000")
        .replace(
            "{grant}",
            "cvg_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )
        .replace("{tenant}", "no-such-tenant")
        .replace("{seq}", "0")
        .replace("{file}", "app.js")
        .replace("{chart}", "calls-per-day")
}

/// The OpenAPI 3.1 document, derived from the table.
pub fn openapi_json() -> String {
    let mut schemas: Schemas = Vec::new();
    let err = schema::<ErrorBody>(&mut schemas);
    let mut paths = serde_json::Map::new();
    for r in table() {
        let mut op = json!({
            "summary": r.summary,
            "operationId": format!("{}_{}", r.method, r.path.trim_start_matches('/').replace(['/', '{', '}', '.'], "_")),
            "responses": {},
        });
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .chain(r.query.map(|q| q()).unwrap_or_default().into_iter().filter_map(|p| serde_json::to_value(p).ok()))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some((ct, f)) = r.request {
            op["requestBody"] =
                json!({ "required": true, "content": { ct: { "schema": f(&mut schemas) } } });
        }
        let (status, body) = r.response;
        let mut ok = json!({ "description": "success" });
        if let Some((ct, f)) = body {
            ok["content"] = json!({ ct: { "schema": f(&mut schemas) } });
        }
        let error = json!({ "description": "error", "content": { JSON: { "schema": err } } });
        op["responses"][status.to_string()] = ok;
        // Every error any route can answer, in the one error format.
        let mut errors = vec![400, 401, 404, 500, 503];
        if r.request.is_some() {
            errors.extend([409, 413, 415, 422]);
        }
        if r.path == "/api/v1/playback/{grant}" {
            errors.push(416);
        }
        errors.extend(r.more_errors);
        if r.access != Access::Public {
            errors.push(403);
        }
        for code in errors {
            op["responses"][code.to_string()] = error.clone();
        }
        if r.access != Access::Public {
            op["security"] = json!([{ "bearer": [] }, { "session": [] }]);
            op["x-callvault-roles"] = match r.access {
                Access::Roles(roles) => json!(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()),
                _ => json!("signing-in session"),
            };
        }
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        item[r.method] = op;
    }
    let mut components = serde_json::Map::new();
    for (name, s) in schemas {
        components.insert(name, serde_json::to_value(s).unwrap_or(Value::Null));
    }
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "callvault", "version": env!("CARGO_PKG_VERSION"), "description": "Encrypted call-recording store. Every route requires authentication except health, this document, sign-in and the web console's static files (which hold no data)." },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "API token (recorder or auditor)" },
                "session": { "type": "apiKey", "in": "cookie", "name": crate::principal::SESSION_COOKIE },
            }
        }
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
