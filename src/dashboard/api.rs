//! The dashboard's JSON API and live feed, behind a bearer token: the
//! admin token reads every business, a business token only its own (403
//! for another's, 401 for a token nobody issued).
//!
//! The live feed is server-sent events: `text/event-stream`, one `record`
//! event per stored record, kept alive by comment lines
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html>,
//! <https://docs.rs/axum/0.8/axum/response/sse/index.html>).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::Stream;
use rusqlite::Connection;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::consumer::Live;
use super::query::{self, Range, Scope};
use super::store;
use super::tokens::{self, Access};
use crate::http::error::ApiError;

/// What the routes share.
pub struct DashboardState {
    /// A connection for reading; the consumer writes through its own.
    pub db: Mutex<Connection>,
    pub admin: Option<SecretString>,
    pub live: broadcast::Sender<Arc<Live>>,
}

/// The dashboard's routes.
pub fn router(state: Arc<DashboardState>) -> Router {
    Router::new()
        .route("/dashboard", get(page))
        .route("/api/dashboard/summary", get(summary))
        .route("/api/dashboard/daily", get(daily))
        .route("/api/dashboard/top", get(top))
        .route("/api/dashboard/calls/{conversation_id}", get(story))
        .route("/api/dashboard/status", get(status))
        .route("/api/dashboard/live", get(live))
        .with_state(state)
}

/// The page: self-contained (no CDN, nothing fetched but this API), so it
/// works where the machine has no internet. It asks for the token and
/// keeps it for the browser tab only (sessionStorage).
const PAGE: &str = include_str!("page.html");

/// `GET /dashboard`: the page; the data behind it needs a token.
async fn page() -> axum::response::Html<&'static str> {
    axum::response::Html(PAGE)
}

/// The query string of the aggregates.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    from: Option<String>,
    to: Option<String>,
    business_id: Option<String>,
    location_id: Option<String>,
    limit: Option<u32>,
}

/// The most entries `top` returns.
const MAX_TOP: u32 = 100;

fn time(field: &'static str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                ApiError::field(
                    field,
                    format!("{raw:?} is not an RFC 3339 time such as 2026-12-01T09:00:00Z ({e})"),
                )
            })
    })
    .transpose()
}

impl Params {
    /// `from`..`to`; `to` defaults to now and `from` to a day before `to`.
    fn range(&self) -> Result<Range, ApiError> {
        let to = time("to", self.to.as_deref())?.unwrap_or_else(Utc::now);
        let from = time("from", self.from.as_deref())?.unwrap_or(to - chrono::Duration::days(1));
        Range::new(from, to).map_err(|e| ApiError::field(e.field, e.reason))
    }
}

/// The bearer token's access, checked against the admin token and the
/// stored token hashes.
async fn access(state: &Arc<DashboardState>, headers: &HeaderMap) -> Result<Access, ApiError> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("the dashboard needs a bearer token".into()))?
        .to_owned();
    let found = read(state, move |db, admin| tokens::access(db, admin, &given)).await?;
    found.ok_or_else(|| ApiError::Unauthorized("the dashboard token is not known".into()))
}

/// The businesses `access` may read, narrowed to `asked`.
fn scope(access: &Access, asked: Option<&str>) -> Result<Option<String>, ApiError> {
    match (access, asked) {
        (Access::Admin, asked) => Ok(asked.map(str::to_owned)),
        (Access::Business(own), Some(other)) if other != own => Err(ApiError::Forbidden(format!(
            "this token reads business {own} only, not {other}"
        ))),
        (Access::Business(own), _) => Ok(Some(own.clone())),
    }
}

/// Refuses a business token `what`, which spans every business.
fn admin_only(access: &Access, what: &str) -> Result<(), ApiError> {
    match access {
        Access::Admin => Ok(()),
        Access::Business(own) => Err(ApiError::Forbidden(format!(
            "this token reads business {own} only; {what} needs the admin token"
        ))),
    }
}

/// Runs `f` on the read connection off the async threads.
async fn read<T: Send + 'static>(
    state: &Arc<DashboardState>,
    f: impl FnOnce(&Connection, Option<&SecretString>) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let db = state.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&db, state.admin.as_ref())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Unavailable(format!("the dashboard store cannot be read: {e}")))
}

async fn scoped(
    state: &Arc<DashboardState>,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(Range, Scope), ApiError> {
    let access = access(state, headers).await?;
    let range = params.range()?;
    let business = scope(&access, params.business_id.as_deref())?;
    Ok((
        range,
        Scope {
            business,
            location: params.location_id.clone(),
        },
    ))
}

/// `GET /api/dashboard/summary`: per business and location.
async fn summary(
    State(state): State<Arc<DashboardState>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let (range, scope) = scoped(&state, &headers, &params).await?;
    let rows = read(&state, move |db, _| query::summary(db, &range, &scope)).await?;
    Ok(Json(
        json!({ "from": range.from, "to": range.to, "tenants": rows }),
    ))
}

/// `GET /api/dashboard/daily`: per UTC day.
async fn daily(
    State(state): State<Arc<DashboardState>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let (range, scope) = scoped(&state, &headers, &params).await?;
    let days = read(&state, move |db, _| query::daily(db, &range, &scope)).await?;
    Ok(Json(
        json!({ "from": range.from, "to": range.to, "days": days }),
    ))
}

/// `GET /api/dashboard/top`: the businesses that cost the most; admin
/// only, since it names other businesses.
async fn top(
    State(state): State<Arc<DashboardState>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    admin_only(
        &access(&state, &headers).await?,
        "the ranking of businesses",
    )?;
    let range = params.range()?;
    let limit = params.limit.unwrap_or(10);
    if limit == 0 || limit > MAX_TOP {
        return Err(ApiError::field("limit", format!("must be 1 to {MAX_TOP}")));
    }
    let top = read(&state, move |db, _| query::top_by_cost(db, &range, limit)).await?;
    Ok(Json(
        json!({ "from": range.from, "to": range.to, "top": top }),
    ))
}

/// `GET /api/dashboard/calls/{conversationId}`: one call's story.
async fn story(
    State(state): State<Arc<DashboardState>>,
    headers: HeaderMap,
    Path(conversation_id): Path<String>,
) -> Result<Json<query::Story>, ApiError> {
    let access = access(&state, &headers).await?;
    let id = crate::ids::Id::parse("conversationId", &conversation_id)?;
    let story = read(&state, move |db, _| query::story(db, id.as_str()))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("no record names conversation {conversation_id}"))
        })?;
    scope(&access, Some(&story.business_id))?;
    Ok(Json(story))
}

/// `GET /api/dashboard/status`: what the consumer stored, dropped and
/// skipped since the store was created; admin only.
async fn status(
    State(state): State<Arc<DashboardState>>,
    headers: HeaderMap,
) -> Result<Json<store::Totals>, ApiError> {
    admin_only(&access(&state, &headers).await?, "the consumer's status")?;
    Ok(Json(read(&state, |db, _| store::totals(db)).await?))
}

/// `GET /api/dashboard/live`: records as they are stored, as server-sent
/// events; a business token sees its own only.
async fn live(
    State(state): State<Arc<DashboardState>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let only = scope(&access(&state, &headers).await?, None)?;
    let feed = state.live.subscribe();
    let events = futures::stream::unfold((feed, only), |(mut feed, only)| async move {
        loop {
            let event = match feed.recv().await {
                Ok(live) if only.as_ref().is_none_or(|b| *b == live.business_id) => {
                    Event::default().event("record").data(live.json.as_str())
                }
                Ok(_) => continue,
                // A slow reader missed some: say how many, go on.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    Event::default().event("lagged").data(n.to_string())
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((Ok(event), (feed, only)));
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
