//! The one place that turns typed configuration (flags from
//! [`crate::config`], secrets from [`Secrets::from_env`]) into running
//! parts: the bridge (routes, action log, agent runtime, tools,
//! messaging), the HTTP server with its shutdown order ([`Serving`]), and
//! the subcommands that run them. `cli` dispatches to it; `local` builds
//! on it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use aws_config::retry::RetryConfig;
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use secrecy::SecretString;
use tokio::io::BufReader;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::actionlog::ActionLog;
use crate::actionlog::ShipperHandle;
use crate::actionlog::replay::replay;
use crate::actionlog::tail::{self, Start, TailError};
use crate::admin::{AgentAdmin, KubeAdmin};
use crate::agent::metrics::AgentMetrics;
use crate::agent::tools::{Sends, Tools};
use crate::config::Secrets;
use crate::config::bridge::{AgentRuntimeKind, BridgeArgs};
use crate::config::{
    ActionLogArgs, AgentArgs, ControllerArgs, CreateTableArgs, FollowArgs, ReplayArgs, RunArgs,
    TailArgs, TailFrom, TenantStoreKind,
};
use crate::controller::Metrics;
use crate::controller::runner::{self, Backends, LeaderConfig, RunConfig};
use crate::elevenlabs::{AgentPlatform, ClientConfig, ElevenLabsClient};
use crate::http::Ops;
use crate::http::metrics::HttpMetrics;
use crate::http::state::{AppState, HttpConfig};
use crate::tenant::TenantStore;
use crate::tenant::cache::CachedStore;
use crate::tenant::dynamodb::{TableOutcome, create_table, sdk_config};

pub mod dashboard;

/// The bridge's parts, built before the server starts.
pub struct BridgeParts {
    pub router: axum::Router,
    /// The action log the routes write to (its counters go on /metrics).
    pub log: ActionLog,
    /// The routes' own counters, for /metrics.
    pub metrics: HttpMetrics,
    /// The agent runtime's counters, for /metrics.
    pub agent_metrics: AgentMetrics,
    pub shipper: ShipperHandle,
    pub grace: Duration,
    /// The message sends still running; shutdown waits for their records.
    pub sends: Sends,
    /// What answers the calls, for the start-up report.
    pub agent: String,
    pub messaging: String,
    pub action_log: String,
}

/// The secrets the bridge routes check requests with.
pub struct RouteSecrets {
    pub webhook: SecretString,
    pub llm: Option<SecretString>,
    pub admin: Option<SecretString>,
}

/// What the bridge is built on besides its settings.
pub struct BridgeBackends {
    pub platform: Arc<dyn AgentPlatform>,
    pub store: Arc<dyn TenantStore>,
    pub admin: Arc<dyn AgentAdmin>,
    /// Stand-ins `local` runs in place of what is not configured.
    pub embedded: Embedded,
}

/// What `local` puts in place of an app server and of messaging
/// providers when none is configured; `run` never has any.
#[derive(Default)]
pub struct Embedded {
    /// The app-server URL the tools call, and the bearer token they send.
    pub app_server: Option<(String, SecretString)>,
    /// The providers to send through instead of the configured ones.
    pub messaging: Option<crate::messaging::Messaging>,
}

/// Builds the bridge routes and the action log they write to.
pub async fn build_bridge(
    args: &BridgeArgs,
    action_log: &ActionLogArgs,
    runtime_default: AgentRuntimeKind,
    secrets: &Secrets,
    routes: RouteSecrets,
    backends: BridgeBackends,
    data_dir: &Path,
) -> anyhow::Result<BridgeParts> {
    let runtime_config = args.runtime(runtime_default, secrets)?;
    let agent_metrics = AgentMetrics::default();
    let runtime = crate::agent::open_runtime(&runtime_config, &agent_metrics).await?;
    let messaging = match backends.embedded.messaging {
        Some(messaging) => messaging,
        None => crate::messaging::config::build(&args.messaging(secrets)?).await?,
    };
    let log_config = action_log.config(data_dir)?;
    let (log, shipper) = ActionLog::open(&log_config).await?;
    let (prices, per_credit) = args.prices()?;
    let pricing = format!(
        "{} message prices, {}",
        prices.len(),
        per_credit
            .as_ref()
            .map_or("no price per credit".to_owned(), |p| format!(
                "{p} per credit"
            ))
    );
    let mut tools_config = args.tools(secrets, prices);
    if let Some((url, token)) = backends.embedded.app_server {
        tools_config.app_server_url = Some(url);
        tools_config.app_server_token = Some(token);
    }
    let app_server = tools_config
        .app_server_url
        .clone()
        .unwrap_or_else(|| "not configured".into());
    let tools = Tools::new(tools_config, messaging, log.clone());
    let sends = tools.sends();
    let agent = runtime_config.describe();
    let messaging = tools.messaging().describe();
    tracing::info!(
        %agent,
        %messaging,
        %app_server,
        %pricing,
        notifications = args.notification_url.as_deref().unwrap_or("not configured"),
        "bridge configured"
    );
    let mut config = HttpConfig::new(routes.webhook);
    config.llm_secret = routes.llm;
    config.admin_token = routes.admin;
    config.body_limit = (args.body_limit_kib * 1024) as usize;
    config.post_call_body_limit = (args.post_call_limit_mib * 1024 * 1024) as usize;
    config.request_timeout = Duration::from_secs(args.request_timeout_secs);
    config.recordings_dir = args.recordings_dir.clone();
    config.buffer_words_after = args.buffer_words_after();
    config.price_per_credit = per_credit;
    let cached: Arc<dyn TenantStore> = Arc::new(CachedStore::new(
        backends.store,
        Duration::from_millis(args.tenant_cache_ms),
        crate::tenant::cache::DEFAULT_CAPACITY,
    ));
    let mut bridge = AppState::new(config, cached, runtime, Arc::new(tools), log.clone());
    bridge.agents = Some(backends.platform);
    bridge.admin = Some(backends.admin);
    let metrics = bridge.metrics.clone();
    Ok(BridgeParts {
        router: crate::http::bridge_routes(Arc::new(bridge)),
        log,
        metrics,
        agent_metrics,
        shipper,
        grace: action_log.shutdown_grace(),
        sends,
        agent,
        messaging,
        action_log: if log_config.echo {
            format!("{} (echoed to standard output)", log_config.sink)
        } else {
            log_config.sink.to_string()
        },
    })
}

/// The bridge of `run`: secrets from the environment, the admin API over
/// VoiceAgents in the cluster.
async fn run_bridge(
    run: &RunArgs,
    secrets: &Secrets,
    platform: Arc<ElevenLabsClient>,
    store: Arc<dyn TenantStore>,
    client: &kube::Client,
    data_dir: &Path,
) -> anyhow::Result<BridgeParts> {
    let webhook = secrets.webhook.clone().context(
        "ELEVENLABS_WEBHOOK_SECRET is not set; the bridge needs it to check webhook signatures",
    )?;
    let routes = RouteSecrets {
        webhook,
        llm: secrets.llm.clone(),
        admin: secrets.admin.clone(),
    };
    if routes.llm.is_none() {
        tracing::warn!(
            "VOICE_OPERATOR_LLM_SECRET is not set and --allow-unauthenticated-llm is on: the custom-LLM route takes requests without a bearer token"
        );
    }
    if routes.admin.is_none() {
        tracing::info!("VOICE_OPERATOR_ADMIN_TOKEN is not set: the admin routes answer 401");
    }
    let namespace = run
        .bridge
        .admin_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let backends = BridgeBackends {
        platform,
        store,
        admin: Arc::new(KubeAdmin::new(client.clone(), &namespace)),
        embedded: Embedded::default(),
    };
    build_bridge(
        &run.bridge,
        &run.action_log,
        AgentRuntimeKind::Bedrock,
        secrets,
        routes,
        backends,
        data_dir,
    )
    .await
}

/// `controller` and `run`: the controller under leader election, and the
/// HTTP server on every replica (with the bridge routes in `run`).
pub async fn controller(
    args: &ControllerArgs,
    run: Option<&RunArgs>,
    secrets: &Secrets,
    data_dir: &Path,
) -> anyhow::Result<ExitCode> {
    if let Some(run) = run {
        run.check_llm_auth(secrets)?;
    }
    let api_key = secrets
        .elevenlabs_api_key
        .clone()
        .context("ELEVENLABS_API_KEY is not set; the controller needs it to manage agents")?;
    let platform = Arc::new(
        ElevenLabsClient::new(ClientConfig::new(
            args.agents.elevenlabs_base_url.clone(),
            api_key,
        ))
        .context("ELEVENLABS_BASE_URL")?,
    );
    let llm_secret_id = llm_secret_id(
        &args.agents,
        &args.agents.llm_secret_name,
        secrets.llm.as_ref(),
        &platform,
    )
    .await?;
    let store = crate::tenant::open(&args.tenant.config(TenantStoreKind::Dynamodb, data_dir))
        .await
        .context("opening the tenant store")?;
    let client = kube::Client::try_default().await.context(
        "cannot configure the Kubernetes client (in-cluster service account or KUBECONFIG)",
    )?;

    let parts = match run {
        Some(run) => Some(
            run_bridge(
                run,
                secrets,
                platform.clone(),
                store.clone(),
                &client,
                data_dir,
            )
            .await?,
        ),
        None => None,
    };
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    if let Some(parts) = &parts {
        registry.register_collector(Box::new(parts.log.collector()));
        parts.metrics.register(&mut registry);
        parts.agent_metrics.register(&mut registry);
    }
    let ops = Ops {
        registry: Arc::new(registry),
        ready: Arc::new(AtomicBool::new(false)),
    };
    let mut router = crate::http::ops_routes(ops.clone());
    let mut bridge = None;
    if let Some(parts) = parts {
        router = router.merge(parts.router);
        bridge = Some(Flush {
            sends: parts.sends,
            shipper: parts.shipper,
            grace: parts.grace,
        });
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on --listen {}", args.listen))?;
    if bridge.is_some() {
        tracing::info!(listen = %args.listen, "serving the ElevenLabs webhook, custom-LLM, post-call, conversation-init and admin routes, /healthz, /readyz and /metrics");
    } else {
        tracing::info!(listen = %args.listen, "serving /healthz, /readyz and /metrics");
    }

    let serving = Serving::start(listener, router);
    let stop_rx = serving.stop.clone();

    let identity = args.identity();
    let leader = if args.leader_election {
        Some(LeaderConfig {
            lease_name: args.lease_name.clone(),
            lease_namespace: args
                .lease_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_owned()),
            lease_duration: Duration::from_secs(args.lease_duration_secs),
            renew_before: Duration::from_secs((args.lease_duration_secs / 3).max(1)),
        })
    } else {
        None
    };
    let config = RunConfig {
        namespace: args.watch_namespace.clone(),
        concurrency: u16::try_from(args.concurrency).unwrap_or(u16::MAX),
        settings: args.agents.settings(args.public_url.clone(), llm_secret_id),
        timing: args.agents.timing(),
        identity,
        leader,
    };
    let backends = Backends {
        client,
        platform,
        store,
        metrics,
    };
    ops.ready.store(true, Ordering::Release);
    let result = runner::run(backends, config, stop_rx).await;
    ops.ready.store(false, Ordering::Release);
    // The controller may end on its own (the CRD is missing); the server
    // then stops too instead of serving a half-working process.
    serving.finish(bridge).await;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// The id of the ElevenLabs workspace secret every agent's custom LLM
/// sends as its bearer token: --llm-secret-id as given, else the secret
/// named `name` (--llm-secret-name), found or created with the value of
/// VOICE_OPERATOR_LLM_SECRET (and its value set again, so changing the
/// variable rotates it), else none.
pub async fn llm_secret_id(
    agents: &AgentArgs,
    name: &str,
    secret: Option<&SecretString>,
    client: &ElevenLabsClient,
) -> anyhow::Result<Option<String>> {
    if let Some(id) = &agents.llm_secret_id {
        tracing::info!(secret_id = %id, "agents send the workspace secret --llm-secret-id names");
        return Ok(Some(id.clone()));
    }
    let Some(value) = secret else {
        tracing::warn!(
            "VOICE_OPERATOR_LLM_SECRET is not set: agents send no bearer token to the custom-LLM route"
        );
        return Ok(None);
    };
    let ensured = client.ensure_secret(name, value).await.with_context(|| {
        format!(
            "cannot find or create the ElevenLabs workspace secret {name:?} (--llm-secret-name, VOICE_OPERATOR_LLM_SECRET_NAME) that holds VOICE_OPERATOR_LLM_SECRET; set --llm-secret-id (VOICE_OPERATOR_LLM_SECRET_ID) to use an existing one"
        )
    })?;
    tracing::info!(
        name = %name,
        secret_id = %ensured.id,
        created = ensured.created,
        "agents send the ElevenLabs workspace secret holding VOICE_OPERATOR_LLM_SECRET"
    );
    Ok(Some(ensured.id.to_string()))
}

/// The HTTP server, running until SIGTERM or Ctrl-C, or until
/// [`Serving::finish`].
pub struct Serving {
    /// Turns true when the process is to stop.
    pub stop: watch::Receiver<bool>,
    stop_tx: Arc<watch::Sender<bool>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Serving {
    pub fn start(listener: TcpListener, router: axum::Router) -> Serving {
        let (stop_tx, stop) = watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        let signalled = stop_tx.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = signalled.send(true);
        });
        let mut server_stop = stop.clone();
        let server = tokio::spawn(crate::http::serve(listener, router, async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        }));
        Serving {
            stop,
            stop_tx,
            server,
        }
    }

    /// Stops the server and waits until it has drained its requests, then
    /// until the message sends they started have ended; only then is every
    /// record of those requests queued, so the action log (`shipper`,
    /// within its grace) flushes last.
    pub async fn finish(self, log: Option<Flush>) {
        let _ = self.stop_tx.send(true);
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server"),
            Err(e) => tracing::warn!(error = %e, "HTTP server task"),
        }
        if let Some(Flush {
            sends,
            shipper,
            grace,
        }) = log
        {
            let running = sends.running();
            if running > 0 {
                tracing::info!(running, "waiting for message sends to end");
            }
            sends.finished().await;
            let report = shipper.shutdown(grace).await;
            tracing::info!(%report, "action log flushed");
        }
    }
}

/// What ends after the HTTP server, in order: the message sends still
/// running, then the action log's flush within `grace`.
pub struct Flush {
    pub sends: Sends,
    pub shipper: ShipperHandle,
    pub grace: Duration,
}

/// `dynamodb create-table`.
pub async fn create_table_command(args: &CreateTableArgs) -> anyhow::Result<ExitCode> {
    let sdk = sdk_config().await?;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = &args.table.dynamodb_table;
    let outcome = create_table(&client, table, Duration::from_secs(args.wait_secs)).await?;
    match outcome {
        TableOutcome::Created => println!("created table {table}; it is ACTIVE"),
        TableOutcome::AlreadyExisted => {
            println!("table {table} already exists with the expected key schema; it is ACTIVE")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `action-log replay`: records from a JSON-lines file or standard input
/// into the action log.
pub async fn replay_command(args: &ReplayArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let config = args.action_log.config(data_dir)?;
    let (log, shipper) = ActionLog::open(&config).await?;
    let summary = if args.input.as_os_str() == "-" {
        replay(
            &mut BufReader::new(tokio::io::stdin()),
            &log,
            shutdown_signal(),
        )
        .await
    } else {
        let file = tokio::fs::File::open(&args.input)
            .await
            .with_context(|| format!("cannot open --input {}", args.input.display()))?;
        replay(&mut BufReader::new(file), &log, shutdown_signal()).await
    }
    .with_context(|| format!("reading {}", args.input.display()))?;
    let report = shipper.shutdown(args.action_log.shutdown_grace()).await;
    let metrics = log.metrics();
    eprintln!(
        "replay: {} lines, {} queued, {} rejected; {report}; retried sends {}",
        summary.lines, summary.queued, summary.rejected, metrics.retried
    );
    let clean = summary.rejected == 0 && report.undelivered == 0;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The reader of `follow`'s source, sending to `tx`: the file from
/// `file_start`, or every Kinesis shard from `kinesis_start` (a shard
/// named in `after` right after that sequence number).
pub(crate) async fn follow_source(
    what: &'static str,
    follow: &FollowArgs,
    data_dir: &Path,
    file_start: tail::file::FileStart,
    kinesis_start: Start,
    after: std::collections::BTreeMap<String, String>,
    tx: tokio::sync::mpsc::Sender<tail::Item>,
) -> anyhow::Result<BoxFuture<'static, Result<(), TailError>>> {
    Ok(match follow.from {
        TailFrom::Jsonl => Box::pin(tail::file::follow(
            follow.file(data_dir)?,
            file_start,
            follow.timing().poll,
            tx,
        )),
        TailFrom::Kinesis => {
            // Throttling and expired iterators are handled by the tail
            // itself, which knows what to resume from.
            let sdk =
                crate::aws::load(what, RetryConfig::disabled(), Duration::from_secs(10)).await?;
            Box::pin(tail::kinesis::follow(
                aws_sdk_kinesis::Client::new(&sdk),
                follow.kinesis_stream.clone(),
                kinesis_start,
                after,
                follow.timing(),
                tx,
            ))
        }
    })
}

/// `action-log tail`: prints records as they arrive until Ctrl-C (or
/// SIGTERM), then a summary on standard error; exit 0.
pub async fn tail_command(args: &TailArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let file_start = match args.since {
        Start::Since(_) => tail::file::FileStart::At(0),
        Start::Latest => tail::file::FileStart::End,
    };
    let source = follow_source(
        "action-log tail",
        &args.follow,
        data_dir,
        file_start,
        args.since,
        std::collections::BTreeMap::new(),
        tx,
    )
    .await?;
    let format = if args.json {
        tail::Format::Json
    } else {
        tail::Format::Text
    };
    let mut out = std::io::stdout();
    let summary = tail::run(
        rx,
        source,
        args.filter(),
        format,
        &mut out,
        shutdown_signal(),
    )
    .await?;
    eprintln!("tail: {summary}");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("interrupted; shutting down"),
        () = term => tracing::info!("SIGTERM received; shutting down"),
    }
}
