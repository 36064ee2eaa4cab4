//! The API behind its tokens: the admin token reads everything, a
//! business token only its business, anything else nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::broadcast;
use voice_operator::dashboard::api::{DashboardState, router};
use voice_operator::dashboard::{store, tokens};

use super::{Consuming, append, fixture_store, id, spec};

const ADMIN: &str = "admin-token-for-tests";

/// The API over the fixture on a free port: its base URL, a token of B1,
/// the live feed's sender and the store's directory.
struct Api {
    base: String,
    b1: String,
    live: broadcast::Sender<Arc<voice_operator::dashboard::consumer::Live>>,
    dir: tempfile::TempDir,
    store: std::path::PathBuf,
}

async fn api() -> Api {
    let (dir, store_path) = fixture_store().await;
    let db = store::open(&store_path).unwrap();
    let b1 = tokens::create(&db, "B1")
        .unwrap()
        .expose_secret()
        .to_owned();
    let (live, _) = broadcast::channel(64);
    let state = Arc::new(DashboardState {
        db: Mutex::new(db),
        admin: Some(SecretString::from(ADMIN)),
        live: live.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Api {
        base,
        b1,
        live,
        dir,
        store: store_path,
    }
}

async fn get(api: &Api, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", api.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

const RANGE: &str = "from=2026-11-30T00:00:00Z&to=2026-12-02T00:00:00Z";

fn businesses(body: &Value) -> Vec<String> {
    body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}/{}",
                t["businessId"].as_str().unwrap(),
                t["locationId"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_business_token_reads_its_own_business_only() {
    let api = api().await;
    let b1 = Some(api.b1.as_str());
    let (status, body) = get(&api, &format!("/api/dashboard/summary?{RANGE}"), b1).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(businesses(&body), ["B1/L1", "B1/L2"]);
    assert_eq!(body["tenants"][0]["calls"], 2);
    assert_eq!(body["tenants"][0]["minutes"], 2.0);
    assert_eq!(body["tenants"][0]["messages"]["sms"], 1);

    for path in [
        format!("/api/dashboard/summary?{RANGE}&businessId=B2"),
        format!("/api/dashboard/daily?{RANGE}&businessId=B2"),
        format!("/api/dashboard/top?{RANGE}"),
        "/api/dashboard/calls/c3".to_owned(),
        "/api/dashboard/status".to_owned(),
    ] {
        let (status, body) = get(&api, &path, b1).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("B1"),
            "{path}: {body}"
        );
    }
    let (status, story) = get(&api, "/api/dashboard/calls/c1", b1).await;
    assert_eq!(status, 200);
    assert_eq!(story["steps"].as_array().unwrap().len(), 3);

    let (status, body) = get(
        &api,
        &format!("/api/dashboard/summary?{RANGE}"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(businesses(&body), ["B1/L1", "B1/L2", "B2/L1"]);
    let (status, top) = get(
        &api,
        &format!("/api/dashboard/top?{RANGE}&limit=1"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(top["top"][0]["businessId"], "B2");
    let (status, totals) = get(&api, "/api/dashboard/status", Some(ADMIN)).await;
    assert_eq!((status, &totals["stored"]), (200, &Value::from(8)));
}

#[tokio::test]
async fn no_token_or_an_unknown_one_is_refused_and_guessing_does_not_help() {
    let api = api().await;
    let path = format!("/api/dashboard/summary?{RANGE}");
    let mut near = api.b1.clone();
    near.pop();
    near.push(if api.b1.ends_with('0') { '1' } else { '0' });
    let b1_hash = format!("{}{}", tokens::PREFIX, "0".repeat(64));
    for token in [
        None,
        Some("nope"),
        Some(near.as_str()),
        Some(b1_hash.as_str()),
        Some(""),
    ] {
        let (status, body) = get(&api, &path, token).await;
        assert_eq!(status, 401, "{token:?}: {body}");
    }
    // The stored hash is not a token either.
    let db = store::open(&api.store).unwrap();
    let stored: Vec<u8> = db
        .query_row("SELECT hash FROM tokens", [], |r| r.get(0))
        .unwrap();
    let (status, _) = get(&api, &path, Some(&hex::encode(stored))).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn bad_ranges_and_times_name_the_parameter() {
    let api = api().await;
    let admin = Some(ADMIN);
    let cases = [
        (
            "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            "from",
            "backwards",
        ),
        (
            "from=2020-01-01T00:00:00Z&to=2026-12-01T00:00:00Z",
            "to",
            "366 days",
        ),
        ("from=yesterday", "from", "RFC 3339"),
        ("to=2026-13-01", "to", "RFC 3339"),
    ];
    for (query, field, says) in cases {
        let (status, body) = get(&api, &format!("/api/dashboard/summary?{query}"), admin).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    let (status, body) = get(&api, &format!("/api/dashboard/top?{RANGE}&limit=0"), admin).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("limit")));
    let (status, _) = get(&api, "/api/dashboard/calls/c%201", admin).await;
    assert_eq!(status, 400);
    let (status, _) = get(&api, "/api/dashboard/calls/unknown", admin).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_live_feed_shows_new_records_of_the_token_s_business() {
    let api = api().await;
    let answer = reqwest::Client::new()
        .get(format!("{}/api/dashboard/live", api.base))
        .bearer_auth(&api.b1)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let mut events = answer.bytes_stream().eventsource();

    // A consumer feeding the same live feed, from a new file: one record
    // of B2, then one of B1.
    let log = api.dir.path().join("live.jsonl");
    let (_other_dir, other_store) = super::new_store();
    let consuming = Consuming::start(&other_store, &log, api.live.clone());
    append(
        &log,
        &[
            spec(
                20,
                "B2",
                "L1",
                "sms",
                "2026-12-01T13:00:00Z",
                None,
                None,
                "c9",
            )
            .line(),
            spec(
                21,
                "B1",
                "L1",
                "sms",
                "2026-12-01T13:01:00Z",
                None,
                None,
                "c9",
            )
            .line(),
        ],
    );
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .unwrap();
    assert_eq!(event.event, "record");
    let record: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(
        record["requestId"],
        id(21).to_string(),
        "B2's record is not shown to B1"
    );
    consuming.finish_after(&other_store, 2).await;
}

#[tokio::test]
async fn the_page_is_self_contained_and_calls_only_this_api() {
    let api = api().await;
    let answer = reqwest::get(format!("{}/dashboard", api.base))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let kind = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/html"), "{kind}");
    let page = answer.text().await.unwrap();
    for external in ["http://", "https://", "//cdn", "<link", "src="] {
        assert!(!page.contains(external), "the page refers to {external}");
    }
    for route in [
        "/api/dashboard/summary",
        "/api/dashboard/daily",
        "/api/dashboard/top",
        "/api/dashboard/live",
        "/api/dashboard/calls/",
    ] {
        assert!(page.contains(route), "the page uses {route}");
    }
}
