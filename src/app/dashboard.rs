//! `dashboard`: the consumer and the API together until SIGTERM or
//! Ctrl-C; `dashboard token create`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::DateTime;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::actionlog::tail::Start;
use crate::actionlog::tail::file::FileStart;
use crate::config::TailFrom;
use crate::config::dashboard::{
    DashboardArgs, DashboardCommand, DashboardServeArgs, TokenCommand, TokenCreateArgs,
};
use crate::dashboard::consumer::{self, BATCH};
use crate::dashboard::{api, store, tokens};

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
    let path = args.store.path(data_dir);
    let writer = open(&path)?;
    let reader = open(&path)?;
    let source = match args.follow.from {
        TailFrom::Jsonl => format!("file:{}", args.follow.file(data_dir)?.display()),
        TailFrom::Kinesis => format!("kinesis:{}", args.follow.kinesis_stream),
    };
    let after = store::checkpoints(&writer, &source)?;
    let offset = store::file_offset(&writer, &source)?;
    let (tx, rx) = tokio::sync::mpsc::channel(4 * BATCH);
    // Shards without a checkpoint start at their oldest record: an
    // AT_TIMESTAMP older than the trim horizon starts there
    // (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html).
    let follow = super::follow_source(
        "dashboard",
        &args.follow,
        data_dir,
        FileStart::At(offset),
        Start::Since(DateTime::UNIX_EPOCH),
        after,
        tx,
    )
    .await?;
    if admin.is_none() {
        tracing::warn!(
            "VOICE_OPERATOR_ADMIN_TOKEN is not set: only business tokens can read the dashboard"
        );
    }
    let (live, _) = broadcast::channel(1024);
    let state = Arc::new(api::DashboardState {
        db: Mutex::new(reader),
        admin,
        live: live.clone(),
    });
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, store = %path.display(), %source, "serving the dashboard API");
    let stop = CancellationToken::new();
    let server = tokio::spawn(crate::http::serve(
        listener,
        api::router(state),
        stop.clone().cancelled_owned(),
    ));
    let consumed = {
        let stop = stop.clone();
        consumer::run(
            Arc::new(Mutex::new(writer)),
            source,
            rx,
            follow,
            live,
            async move {
                tokio::select! {
                    () = super::shutdown_signal() => {}
                    () = stop.cancelled() => {}
                }
            },
        )
        .await
    };
    stop.cancel();
    server.await??;
    let counts = consumed?;
    eprintln!(
        "dashboard: {} stored, {} duplicates dropped, {} invalid skipped",
        counts.stored, counts.duplicates, counts.invalid
    );
    Ok(ExitCode::SUCCESS)
}
