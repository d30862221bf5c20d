//! The console's charts as SVG: calls per day, storage used over time, and purpose statements
//! (accesses) per day per role. Admins and auditors see their own tenant, or all tenants when
//! their account is operator-wide. Reading them is audited like any other read of the record.

use crate::api::Path;
use crate::clock::unix_now;
use crate::error::{ApiError, ApiResult};
use crate::principal::Monitor;
use crate::state::AppState;
use crate::svg::{self, Day};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use callvault_core::Role;
use std::collections::HashMap;

/// Days shown in every chart, ending today.
const DAYS: i64 = 30;
const DAY_SECS: i64 = 86_400;
/// The roles that can state a purpose, in the order of the series (and the console's legend).
pub const ACCESS_ROLES: [Role; 2] = [Role::Listener, Role::PrivacyOfficer];

fn window() -> (i64, i64) {
    let today = unix_now() / DAY_SECS;
    (today - DAYS + 1, today)
}

/// One `Day` per day of the window, with `values` from `f` (zero where `f` has nothing).
fn days(first: i64, last: i64, mut f: impl FnMut(i64) -> Vec<f64>) -> Vec<Day> {
    (first..=last)
        .map(|day| Day {
            day,
            values: f(day),
        })
        .collect()
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = v;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

pub async fn chart(
    State(st): State<AppState>,
    Monitor(p): Monitor,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let (first, last) = window();
    let tenant = p.tenant.as_ref();
    let svg = match name.as_str() {
        "calls-per-day" | "storage" => {
            // Storage needs everything stored before the window too, so read every day.
            let rows = st.meta.recordings_per_day(tenant, 0).await?;
            if name == "calls-per-day" {
                let by_day: HashMap<i64, u64> = rows.iter().map(|r| (r.day, r.calls)).collect();
                svg::bars(
                    &days(first, last, |d| {
                        vec![by_day.get(&d).copied().unwrap_or(0) as f64]
                    }),
                    count,
                )
            } else {
                let total_through = |day: i64| -> f64 {
                    rows.iter()
                        .filter(|r| r.day <= day)
                        .map(|r| r.bytes as f64)
                        .sum()
                };
                svg::area(&days(first, last, |d| vec![total_through(d)]), bytes)
            }
        }
        "accesses-per-role" => {
            let rows = st
                .meta
                .actions_per_day("recording.access", tenant, first * DAY_SECS)
                .await?;
            let roles: HashMap<String, Role> = st
                .meta
                .list_users(tenant)
                .await?
                .into_iter()
                .map(|u| (format!("user:{}", u.username), u.role))
                .collect();
            svg::bars(
                &days(first, last, |d| {
                    ACCESS_ROLES
                        .iter()
                        .map(|role| {
                            rows.iter()
                                .filter(|r| r.day == d && roles.get(&r.actor) == Some(role))
                                .map(|r| r.count as f64)
                                .sum()
                        })
                        .collect()
                }),
                count,
            )
        }
        _ => {
            return Err(ApiError::bad_request(
                "no such chart: ask for calls-per-day, storage or accesses-per-role",
            ));
        }
    };
    let mut ev = p.event("charts.view", "ok");
    ev.target = Some(name);
    st.audit
        .record(ev)
        .await
        .map_err(ApiError::audit_unavailable)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}
