//! A local HTTP server that speaks the Kinesis JSON protocol (awsJson1.1,
//! `X-Amz-Target: Kinesis_20131202.PutRecords`) well enough for the real
//! SDK client, and misbehaves on request as a test plans it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

/// What the server does with one `PutRecords` request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Accept every entry.
    Accept,
    /// Refuse these entries with `ProvisionedThroughputExceededException`.
    FailEntries(Vec<usize>),
    /// Refuse the whole request with this status and error type.
    Status(u16, &'static str),
    /// Answer only after this long (with a 500, accepting nothing).
    Hang(Duration),
}

type Plan = dyn Fn(usize) -> Answer + Send + Sync;

/// One request as the server saw it: the base64 `Data` of each entry.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub data: Vec<String>,
    pub partition_keys: Vec<String>,
}

struct Inner {
    plan: Box<Plan>,
    keep: bool,
    requests: Mutex<Vec<SeenRequest>>,
    accepted: Mutex<Vec<String>>,
    accepted_count: std::sync::atomic::AtomicUsize,
    request_count: std::sync::atomic::AtomicUsize,
}

/// A running fake; dropped with the test's runtime.
#[derive(Clone)]
pub struct FakeKinesis {
    pub endpoint: String,
    inner: Arc<Inner>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsBody {
    records: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    data: String,
    partition_key: String,
}

impl FakeKinesis {
    /// Starts on a free loopback port. `plan` gets the request number
    /// (from 0). With `keep`, every request and accepted record is kept
    /// for inspection; without, only counted (for benchmarks).
    pub async fn start(keep: bool, plan: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Self {
        let inner = Arc::new(Inner {
            plan: Box::new(plan),
            keep,
            requests: Mutex::new(Vec::new()),
            accepted: Mutex::new(Vec::new()),
            accepted_count: Default::default(),
            request_count: Default::default(),
        });
        let app = Router::new()
            .route("/", axum::routing::post(handle))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeKinesis { endpoint, inner }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// The base64 data of every accepted record, in acceptance order.
    pub fn accepted(&self) -> Vec<String> {
        self.inner.accepted.lock().unwrap().clone()
    }

    /// How many records were accepted.
    pub fn accepted_count(&self) -> usize {
        self.inner
            .accepted_count
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.inner
            .request_count
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn amz_json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target != "Kinesis_20131202.PutRecords" {
        let body = json!({"__type": "UnknownOperationException", "message": target});
        return amz_json(StatusCode::BAD_REQUEST, body);
    }
    let parsed: PutRecordsBody = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            let body = json!({"__type": "SerializationException", "message": e.to_string()});
            return amz_json(StatusCode::BAD_REQUEST, body);
        }
    };
    let n = inner
        .request_count
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if inner.keep {
        inner.requests.lock().unwrap().push(SeenRequest {
            data: parsed.records.iter().map(|e| e.data.clone()).collect(),
            partition_keys: parsed
                .records
                .iter()
                .map(|e| e.partition_key.clone())
                .collect(),
        });
    }
    let failed = match (inner.plan)(n) {
        Answer::Accept => Vec::new(),
        Answer::FailEntries(f) => f,
        Answer::Status(status, kind) => {
            let body = json!({"__type": kind, "message": "planned failure"});
            return amz_json(StatusCode::from_u16(status).unwrap(), body);
        }
        Answer::Hang(d) => {
            tokio::time::sleep(d).await;
            let body = json!({"__type": "InternalFailure", "message": "too late"});
            return amz_json(StatusCode::INTERNAL_SERVER_ERROR, body);
        }
    };
    let mut results = Vec::with_capacity(parsed.records.len());
    let mut accepted = Vec::new();
    for (i, entry) in parsed.records.into_iter().enumerate() {
        if failed.contains(&i) {
            results.push(json!({
                "ErrorCode": "ProvisionedThroughputExceededException",
                "ErrorMessage": "Rate exceeded for shard shardId-000000000000",
            }));
        } else {
            results.push(
                json!({"SequenceNumber": format!("{n}-{i}"), "ShardId": "shardId-000000000000"}),
            );
            if inner.keep {
                accepted.push(entry.data);
            }
        }
    }
    let ok = results.len() - failed.len();
    inner
        .accepted_count
        .fetch_add(ok, std::sync::atomic::Ordering::Relaxed);
    inner.accepted.lock().unwrap().extend(accepted);
    amz_json(
        StatusCode::OK,
        json!({"FailedRecordCount": failed.len(), "Records": results}),
    )
}
