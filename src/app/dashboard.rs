//! `dashboard`: the consumer and the API together until SIGTERM or
//! Ctrl-C; `dashboard token create`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use chrono::DateTime;
use futures::StreamExt as _;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::actionlog::tail::Start;
use crate::actionlog::tail::file::FileStart;
use crate::config::dashboard::{
    DashboardArgs, DashboardCommand, DashboardServeArgs, TokenCommand, TokenCreateArgs,
};
use crate::config::{FollowArgs, TailFrom};
use crate::dashboard::consumer::{self, BATCH, ConsumeError};
use crate::dashboard::store::BatchCounts;
use crate::dashboard::{api, store, tokens};

/// How long a stopping dashboard waits for its open requests (the live
/// feeds end at once).
const LIVE_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs what `args` asks for.
pub async fn command(
    args: &DashboardArgs,
    admin: Option<SecretString>,
    data_dir: &Path,
) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(DashboardCommand::Token(TokenCommand::Create(create))) => {
            token_create(create, data_dir)
        }
        None => serve(&args.serve, admin, data_dir).await,
    }
}

fn open(path: &Path) -> anyhow::Result<rusqlite::Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(store::open(path)?)
}

/// Prints a new token for one business, once.
fn token_create(args: &TokenCreateArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let db = open(&args.store.path(data_dir))?;
    let token = tokens::create(&db, &args.business)?;
    let known: bool = db.query_row(
        "SELECT EXISTS (SELECT 1 FROM rollup WHERE business_id = ?1)",
        [&args.business],
        |r| r.get(0),
    )?;
    if !known {
        eprintln!(
            "note: no record of business {} has been stored yet; the token reads nothing until one is",
            args.business
        );
    }
    eprintln!(
        "dashboard token for business {} (shown once; only its SHA-256 is kept):",
        args.business
    );
    println!("{}", token.expose_secret());
    Ok(ExitCode::SUCCESS)
}

/// The consumer and the API until SIGTERM or Ctrl-C.
async fn serve(
    args: &DashboardServeArgs,
    admin: Option<SecretString>,
    data_dir: &Path,
) -> anyhow::Result<ExitCode> {
    if admin.is_none() {
        tracing::warn!(
            "VOICE_OPERATOR_ADMIN_TOKEN is not set: only business tokens can read the dashboard"
        );
    }
    let dashboard =
        Dashboard::start(&args.follow, &args.store.path(data_dir), data_dir, admin).await?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, store = %dashboard.store.display(), source = %dashboard.source, "serving the dashboard API");
    let stop = CancellationToken::new();
    let server = tokio::spawn(crate::http::serve(
        listener,
        dashboard.router.clone(),
        stop.clone().cancelled_owned(),
    ));
    let consumed = dashboard.run_until(super::shutdown_signal()).await;
    stop.cancel();
    // The live feeds ended with the consumer (`ending_streams`); other
    // open requests get LIVE_DRAIN to finish.
    match tokio::time::timeout(LIVE_DRAIN, server).await {
        Ok(served) => served??,
        Err(_) => tracing::info!("stopped with requests still open after the drain time"),
    }
    let counts = consumed?;
    eprintln!(
        "dashboard: {} stored, {} duplicates dropped, {} invalid skipped",
        counts.stored, counts.duplicates, counts.invalid
    );
    Ok(ExitCode::SUCCESS)
}

/// The dashboard over one store: its routes, and its consumer filling the
/// store from the action log. `dashboard` serves the routes on a port of
/// their own, `local` next to the bridge's.
pub struct Dashboard {
    /// `/dashboard` and `/api/dashboard/*`.
    pub router: axum::Router,
    /// The store file.
    pub store: PathBuf,
    /// Where the consumer reads (`file:<path>` or `kinesis:<stream>`), the
    /// name its checkpoints are kept under.
    pub source: String,
    stop: CancellationToken,
    consumer: JoinHandle<Result<BatchCounts, ConsumeError>>,
}

impl Dashboard {
    /// Opens the store at `store` and starts consuming what `follow`
    /// names from the checkpoint of that source on. The routes take
    /// `admin` as the admin token.
    pub async fn start(
        follow: &FollowArgs,
        store: &Path,
        data_dir: &Path,
        admin: Option<SecretString>,
    ) -> anyhow::Result<Dashboard> {
        let writer = open(store)?;
        let reader = open(store)?;
        let source = match follow.from {
            TailFrom::Jsonl => format!("file:{}", follow.file(data_dir)?.display()),
            TailFrom::Kinesis => format!("kinesis:{}", follow.kinesis_stream),
        };
        let after = store::checkpoints(&writer, &source)?;
        let offset = store::file_offset(&writer, &source)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4 * BATCH);
        // Shards without a checkpoint start at their oldest record: an
        // AT_TIMESTAMP older than the trim horizon starts there
        // (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html).
        let follow = super::follow_source(
            "dashboard",
            follow,
            data_dir,
            FileStart::At(offset),
            Start::Since(DateTime::UNIX_EPOCH),
            after,
            tx,
        )
        .await?;
        let (live, _) = broadcast::channel(1024);
        let state = Arc::new(api::DashboardState {
            db: Mutex::new(reader),
            admin,
            live: live.clone(),
        });
        let stop = CancellationToken::new();
        let consumer = tokio::spawn(consumer::run(
            Arc::new(Mutex::new(writer)),
            source.clone(),
            rx,
            follow,
            live,
            stop.clone().cancelled_owned(),
        ));
        Ok(Dashboard {
            router: ending_streams(api::router(state), stop.clone()),
            store: store.to_owned(),
            source,
            stop,
            consumer,
        })
    }

    /// Runs until `stop` resolves or the consumer ends on its own (its
    /// source failed), then stops the consumer and ends the live feeds;
    /// what the consumer stored.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<BatchCounts> {
        let mut consumer = self.consumer;
        let ended = tokio::select! {
            ended = &mut consumer => Some(ended),
            () = stop => None,
        };
        self.stop.cancel();
        let ended = match ended {
            Some(ended) => ended,
            None => consumer.await,
        };
        Ok(ended.context("the dashboard's consumer task")??)
    }
}

/// Ends the server-sent streams of `router` (the live feed) when `stop`
/// is cancelled: a graceful shutdown waits for every open response, and a
/// page left open would otherwise hold the process up for good.
fn ending_streams(router: axum::Router, stop: CancellationToken) -> axum::Router {
    router.layer(axum::middleware::map_response(move |response: Response| {
        let stop = stop.clone();
        async move {
            let streaming = response
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            if !streaming {
                return response;
            }
            let (parts, body) = response.into_parts();
            let body = body.into_data_stream().take_until(stop.cancelled_owned());
            Response::from_parts(parts, Body::from_stream(body))
        }
    }))
}
