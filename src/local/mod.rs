//! `voice-operator local`: the controller and the bridge in one process
//! without a cluster. VoiceAgents come from a manifests directory
//! ([`manifests`]), live in [`objects::LocalObjects`] instead of the API
//! server, and are reconciled by the same kube-runtime Controller and
//! reconcile function as in a cluster. ElevenLabs is the real API when
//! ELEVENLABS_API_KEY is set and [`offline::OfflinePlatform`] otherwise.

pub mod admin;
pub mod bookings;
pub mod manifests;
pub mod objects;
pub mod offline;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::app::dashboard::Dashboard;
use crate::app::{
    BridgeBackends, Embedded, Flush, RouteSecrets, Serving, build_bridge, llm_secret_id,
};
use crate::config::bridge::AgentRuntimeKind;
use crate::config::controller::DEFAULT_LLM_SECRET_NAME;
use crate::config::dashboard::StoreArgs;
use crate::config::{
    ActionLogArgs, FollowArgs, LocalArgs, Secrets, SinkKind, TailFrom, TenantStoreKind,
};
use crate::controller::objects::Objects;
use crate::controller::runner::{drive, stop_when};
use crate::controller::{Metrics, Parts};
use crate::crd::VoiceAgent;
use crate::elevenlabs::{AgentPlatform, ClientConfig, ElevenLabsClient};
use crate::http::Ops;
use crate::tenant::StoreConfig;

use self::admin::DirAdmin;
use self::bookings::{Calendar, Hours, Place};
use self::manifests::{ManifestError, Scan, Validator};
use self::objects::{Changes, LocalObjects};
use self::offline::OfflinePlatform;

/// Name of the ElevenLabs workspace secret `local` keeps its custom-LLM
/// secret in, when --llm-secret-name is left at its default.
const LOCAL_LLM_SECRET_NAME: &str = "voice-operator-llm-secret-local";

/// VoiceAgents reconciled at the same time in `local` mode.
const LOCAL_CONCURRENCY: u16 = 4;

/// How often the dashboard of `local` looks for new records once caught
/// up, in milliseconds: a call's records show within a second.
const DASHBOARD_POLL_MS: u64 = 250;

/// Reads a JSON state file of the data directory (`what` names it in the
/// error); a missing file is the default state.
fn load_state<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
    what: &str,
) -> anyhow::Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{} is not {what} ({e}); move it away to start afresh",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces a JSON state file whole (written aside, then renamed), so a
/// crash leaves the old state or the new one, never half of one.
fn save_state<T: serde::Serialize>(path: &Path, state: &T) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Namespace of the VoiceAgents the admin API writes in `local` mode,
/// unless --admin-namespace says otherwise.
const ADMIN_NAMESPACE: &str = "default";

/// Runs `local` until SIGTERM or Ctrl-C.
pub async fn run(args: &LocalArgs, secrets: &Secrets, data_dir: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(data_dir).with_context(|| {
        format!(
            "cannot create the data directory --data-dir {} (VOICE_OPERATOR_DATA_DIR)",
            data_dir.display()
        )
    })?;
    if !args.manifests.is_dir() {
        anyhow::bail!(
            "--manifests {} (VOICE_OPERATOR_MANIFESTS) is not a directory; point it at a directory of VoiceAgent manifests, such as the repository's examples/",
            args.manifests.display()
        );
    }
    let webhook = local_secret(
        secrets.webhook.clone(),
        "ELEVENLABS_WEBHOOK_SECRET",
        data_dir,
        "webhook-secret",
    )?;
    let admin_token = local_secret(
        secrets.admin.clone(),
        "VOICE_OPERATOR_ADMIN_TOKEN",
        data_dir,
        "admin-token",
    )?;
    let llm_secret = local_secret(
        secrets.llm.clone(),
        "VOICE_OPERATOR_LLM_SECRET",
        data_dir,
        "llm-secret",
    )?;

    let (platform, elevenlabs, llm_secret_id): (Arc<dyn AgentPlatform>, String, Option<String>) =
        match secrets.elevenlabs_api_key.clone() {
            Some(key) => {
                let client = ElevenLabsClient::new(ClientConfig::new(
                    args.agents.elevenlabs_base_url.clone(),
                    key,
                ))
                .context("ELEVENLABS_BASE_URL")?;
                // Not the name `run` uses by default: a local start must
                // not overwrite the value a deployment's agents send.
                let name = if args.agents.llm_secret_name == DEFAULT_LLM_SECRET_NAME {
                    LOCAL_LLM_SECRET_NAME
                } else {
                    &args.agents.llm_secret_name
                };
                let id =
                    llm_secret_id(&args.agents, name, Some(&llm_secret.value), &client).await?;
                let line = format!(
                    "the real API at {} (ELEVENLABS_API_KEY is set): agents are created in your workspace",
                    args.agents.elevenlabs_base_url
                );
                (Arc::new(client), line, id)
            }
            None => {
                let path = data_dir.join("offline-agents.json");
                let offline = OfflinePlatform::open(&path)?;
                let line = format!(
                    "OFFLINE stand-in (ELEVENLABS_API_KEY is not set): agent ids are made up and kept in {}; no phone will ring",
                    path.display()
                );
                (Arc::new(offline), line, args.agents.llm_secret_id.clone())
            }
        };
    if elevenlabs.starts_with("OFFLINE") {
        tracing::warn!(
            "ElevenLabs is OFFLINE: ELEVENLABS_API_KEY is not set, agents exist only in the local stand-in"
        );
    }
    let store_config = args.tenant.config(TenantStoreKind::Sqlite, data_dir);
    let store = crate::tenant::open(&store_config)
        .await
        .context("opening the tenant store")?;

    let listener = TcpListener::bind(args.listen).await.with_context(|| {
        format!(
            "cannot listen on --listen {} (VOICE_OPERATOR_LISTEN)",
            args.listen
        )
    })?;
    let address = listener.local_addr()?;
    let base_url = format!("http://{address}");
    let public_url = args.public_url.clone().unwrap_or_else(|| base_url.clone());

    let (objects, triggers) = LocalObjects::open(&data_dir.join("voiceagents.json"))?;
    let objects = Arc::new(objects);
    let validator = Validator::new();
    let mut reported = Vec::new();
    let scan = manifests::scan(&args.manifests, &validator)
        .with_context(|| format!("cannot read --manifests {}", args.manifests.display()))?;
    report_scan(&scan, &mut reported);
    let changes = objects.sync(&scan, true)?;
    report_changes(&changes);

    let rescan = Arc::new(Notify::new());
    let admin_namespace = args
        .bridge
        .admin_namespace
        .clone()
        .unwrap_or_else(|| ADMIN_NAMESPACE.into());
    let admin = Arc::new(DirAdmin::new(
        args.manifests.clone(),
        admin_namespace,
        objects.clone(),
        rescan.clone(),
    ));
    let routes = RouteSecrets {
        webhook: webhook.value.clone(),
        llm: Some(llm_secret.value.clone()),
        admin: Some(admin_token.value.clone()),
    };
    let stand_ins = stand_ins(args, secrets, data_dir, address, &objects)?;
    let backends = BridgeBackends {
        platform: platform.clone(),
        store: store.clone(),
        admin,
        embedded: stand_ins.embedded,
    };
    let bridge = build_bridge(
        &args.bridge,
        &args.action_log,
        AgentRuntimeKind::Scripted,
        secrets,
        routes,
        backends,
        data_dir,
    )
    .await?;

    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    registry.register_collector(Box::new(bridge.log.collector()));
    bridge.metrics.register(&mut registry);
    bridge.agent_metrics.register(&mut registry);
    let ops = Ops {
        registry: Arc::new(registry),
        ready: Arc::new(AtomicBool::new(false)),
    };
    let mut router = crate::http::ops_routes(ops.clone()).merge(bridge.router);
    if let Some(calendar) = stand_ins.calendar {
        router = router.merge(bookings::routes(calendar));
    }
    let dashboard = match dashboard_source(&args.action_log) {
        Some(follow) => {
            let dashboard = Dashboard::start(
                &follow,
                &StoreArgs::default().path(data_dir),
                data_dir,
                Some(admin_token.value.clone()),
            )
            .await
            .context("starting the dashboard")?;
            router = router.merge(dashboard.router.clone());
            Some(dashboard)
        }
        None => None,
    };
    let dashboard_line = match &dashboard {
        Some(dashboard) => format!(
            "{base_url}/dashboard with the admin token; the action log ({}) is read into {}",
            dashboard.source,
            dashboard.store.display()
        ),
        None => "off: --action-sink stdout leaves no action log to read".to_owned(),
    };

    let report = Report {
        base_url: &base_url,
        public_url: &public_url,
        manifests: &args.manifests,
        data_dir,
        voiceagents: objects.all(),
        errors: scan.errors.len(),
        elevenlabs: &elevenlabs,
        store: &store_config,
        action_log: &bridge.action_log,
        agent: &bridge.agent,
        app_server: &stand_ins.app_server,
        messaging: stand_ins.messaging.as_deref().unwrap_or(&bridge.messaging),
        dashboard: &dashboard_line,
        dashboard_on: dashboard.is_some(),
        webhook: &webhook,
        admin: &admin_token,
        llm_secret: &llm_secret,
    };
    let text = report.render();
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    drop(stdout);

    let serving = Serving::start(listener, router);
    let stop_rx = serving.stop.clone();
    let dashboard = dashboard.map(|dashboard| {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let ended = dashboard
                .run_until(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            // Said when it happens: `local` goes on serving calls, and the
            // next start resumes from the checkpoint.
            match ended {
                Ok(counts) => tracing::info!(
                    stored = counts.stored,
                    duplicates = counts.duplicates,
                    invalid = counts.invalid,
                    "dashboard stopped"
                ),
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "the dashboard's consumer stopped; the dashboard shows what it stored so far"
                ),
            }
        })
    });
    let watcher = tokio::spawn(watch_manifests(
        args.manifests.clone(),
        Duration::from_millis(args.manifest_poll_ms),
        objects.clone(),
        validator,
        rescan,
        reported,
        stop_rx.clone(),
    ));

    let triggers = futures::stream::unfold(triggers, |mut rx| async move {
        rx.recv().await.map(|va| (Ok(va), rx))
    });
    let parts = Parts {
        objects: objects.clone() as Arc<dyn Objects>,
        platform,
        store,
        settings: args.agents.settings(public_url, llm_secret_id),
        timing: args.agents.timing(),
        claims: objects.reader(),
        metrics: metrics.clone(),
    };
    metrics.leader(true);
    ops.ready.store(true, Ordering::Release);
    drive(
        triggers,
        // A template edit reaches its VoiceAgents through the triggers
        // (LocalObjects::sync), not through a watch.
        Box::pin(futures::stream::pending()),
        parts,
        LOCAL_CONCURRENCY,
        stop_when(stop_rx.clone(), None),
    )
    .await;
    ops.ready.store(false, Ordering::Release);
    serving
        .finish(Some(Flush {
            sends: bridge.sends,
            shipper: bridge.shipper,
            grace: bridge.grace,
        }))
        .await;
    let _ = watcher.await;
    if let Some(dashboard) = dashboard {
        // Records flushed after it stopped are read at the next start,
        // from its checkpoint.
        if let Err(e) = dashboard.await {
            tracing::error!(error = %e, "the dashboard's consumer task");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the dashboard of `local` follows: the action log it writes (the
/// file, or the Kinesis stream); nothing with the stdout sink.
fn dashboard_source(log: &ActionLogArgs) -> Option<FollowArgs> {
    let from = match log.action_sink {
        SinkKind::Jsonl => TailFrom::Jsonl,
        SinkKind::Kinesis => TailFrom::Kinesis,
        SinkKind::Stdout => return None,
    };
    Some(FollowArgs {
        from,
        action_log_file: log.action_log_file.clone(),
        kinesis_stream: log.kinesis_stream.clone(),
        poll_ms: DASHBOARD_POLL_MS,
    })
}

/// What `local` runs in place of an app server and messaging providers
/// it was not given, and how the start-up report names them.
struct StandIns {
    embedded: Embedded,
    /// The embedded bookings calendar, served under [`bookings::PATH`].
    calendar: Option<Arc<Calendar>>,
    /// The app server, for the report.
    app_server: String,
    /// The messaging line of the report, when the outbox replaces it.
    messaging: Option<String>,
}

/// Without --app-server-url, the bookings calendar in
/// `<data-dir>/bookings.sqlite`, served on `address` itself; without any
/// messaging provider, the outbox in `<data-dir>/outbox.sqlite`.
fn stand_ins(
    args: &LocalArgs,
    secrets: &Secrets,
    data_dir: &Path,
    address: std::net::SocketAddr,
    objects: &Arc<LocalObjects>,
) -> anyhow::Result<StandIns> {
    let mut stand_ins = StandIns {
        embedded: Embedded::default(),
        calendar: None,
        app_server: args.bridge.app_server_url.clone().unwrap_or_default(),
        messaging: None,
    };
    if args.bridge.app_server_url.is_none() {
        let objects = Arc::clone(objects);
        let places: bookings::Places = Box::new(move |business, location| {
            objects
                .all()
                .iter()
                .find(|va| {
                    va.spec.business_id == business
                        && va.spec.location_id == location
                        && va.metadata.deletion_timestamp.is_none()
                })
                .map(Place::of)
        });
        // A fresh token each start: only this process's tools can book.
        let token = SecretString::from(uuid::Uuid::new_v4().simple().to_string());
        let calendar = Calendar::open(&data_dir.join("bookings.sqlite"), token.clone(), places)?;
        // The tools reach the calendar over loopback, whatever address
        // the server listens on.
        let ip = match address.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
            ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let url = format!(
            "http://{}{}",
            std::net::SocketAddr::new(ip, address.port()),
            bookings::PATH
        );
        stand_ins.app_server = format!(
            "EMBEDDED bookings calendar (no --app-server-url): {} in {}; every location opens {} in its VoiceAgent's timeZone (the default: VoiceAgents do not give opening hours)",
            url,
            calendar.path().display(),
            Hours::DEFAULT.describe()
        );
        stand_ins.embedded.app_server = Some((url, token));
        stand_ins.calendar = Some(calendar);
    }
    if args.bridge.messaging(secrets)?.is_empty() {
        let outbox = crate::messaging::outbox::Outbox::open(&data_dir.join("outbox.sqlite"))?;
        stand_ins.messaging = Some(format!(
            "EMBEDDED outbox (no provider configured): every SMS, email and WhatsApp message is written to {}, none is sent",
            outbox.path().display()
        ));
        stand_ins.embedded.messaging = Some(outbox.messaging());
    }
    Ok(stand_ins)
}

/// A secret of `local` mode and where it came from.
struct LocalSecret {
    value: SecretString,
    variable: &'static str,
    /// The file it is kept in, and whether this start made it; `None`
    /// when it came from the variable.
    file: Option<(PathBuf, bool)>,
}

/// `given` (from `variable`) when set; otherwise the value kept in
/// `<data-dir>/<file>`, made (random, readable by the owner only) on first
/// use, so that the simulator and curl examples can read it.
fn local_secret(
    given: Option<SecretString>,
    variable: &'static str,
    data_dir: &Path,
    file: &str,
) -> anyhow::Result<LocalSecret> {
    if let Some(value) = given {
        return Ok(LocalSecret {
            value,
            variable,
            file: None,
        });
    }
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            return Ok(LocalSecret {
                value: SecretString::from(text.trim().to_owned()),
                variable,
                file: Some((path, false)),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    let value = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(out, "{value}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(LocalSecret {
        value: SecretString::from(value),
        variable,
        file: Some((path, true)),
    })
}

impl LocalSecret {
    fn describe(&self) -> String {
        match &self.file {
            None => format!("from {}", self.variable),
            Some((path, created)) => format!(
                "{} {} (set {} to use your own)",
                if *created {
                    "generated into"
                } else {
                    "read from"
                },
                path.display(),
                self.variable
            ),
        }
    }

    /// Shell text that yields the secret.
    fn shell(&self) -> String {
        match &self.file {
            None => format!("\"${}\"", self.variable),
            Some((path, _)) => format!("\"$(cat {})\"", shell_path(path)),
        }
    }
}

fn shell_path(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Says once what is wrong in the manifests (again only when it changes).
fn report_scan(scan: &Scan, reported: &mut Vec<ManifestError>) {
    if scan.errors == *reported {
        return;
    }
    for error in &scan.errors {
        tracing::error!("invalid manifest: {error}");
    }
    for skipped in &scan.skipped {
        tracing::info!("ignored: {skipped}");
    }
    *reported = scan.errors.clone();
}

fn report_changes(changes: &Changes) {
    for key in &changes.created {
        tracing::info!(voiceagent = %key, "VoiceAgent created from its manifest");
    }
    for key in &changes.updated {
        tracing::info!(voiceagent = %key, "VoiceAgent changed in its manifest");
    }
    for key in &changes.deleting {
        tracing::info!(voiceagent = %key, "manifest removed; deleting the VoiceAgent");
    }
    for key in &changes.kept {
        tracing::warn!(voiceagent = %key, "its manifest file has errors; the VoiceAgent is kept as it was");
    }
    for error in &changes.refused {
        tracing::error!("change refused: {error}");
    }
    for template in &changes.templates {
        tracing::info!("VoiceAgentTemplate {template} in the manifests");
    }
}

/// Looks at the manifests directory every `poll` (and at once when the
/// admin API wrote to it) and syncs the VoiceAgents when it changed.
async fn watch_manifests(
    dir: PathBuf,
    poll: Duration,
    objects: Arc<LocalObjects>,
    validator: Validator,
    rescan: Arc<Notify>,
    mut reported: Vec<ManifestError>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = manifests::fingerprint(&dir).ok();
    let mut unreadable = false;
    let mut ticks = tokio::time::interval(poll);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = rescan.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = match manifests::fingerprint(&dir) {
            Ok(now) => {
                unreadable = false;
                Some(now)
            }
            Err(e) => {
                if !unreadable {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot read the manifests directory; VoiceAgents are kept as they are");
                }
                unreadable = true;
                continue;
            }
        };
        if now == last && !objects.take_removed() {
            continue;
        }
        last = now;
        let scan = match manifests::scan(&dir, &validator) {
            Ok(scan) => scan,
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot read the manifests directory");
                continue;
            }
        };
        report_scan(&scan, &mut reported);
        match objects.sync(&scan, false) {
            Ok(changes) => report_changes(&changes),
            Err(e) => tracing::error!(error = %e, "cannot save the local VoiceAgent state"),
        }
    }
}

/// The start-up report.
struct Report<'a> {
    base_url: &'a str,
    public_url: &'a str,
    manifests: &'a Path,
    data_dir: &'a Path,
    voiceagents: Vec<VoiceAgent>,
    errors: usize,
    elevenlabs: &'a str,
    store: &'a StoreConfig,
    action_log: &'a str,
    agent: &'a str,
    app_server: &'a str,
    messaging: &'a str,
    /// The dashboard line, and whether it is served.
    dashboard: &'a str,
    dashboard_on: bool,
    webhook: &'a LocalSecret,
    admin: &'a LocalSecret,
    llm_secret: &'a LocalSecret,
}

impl Report<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        let store = match self.store {
            StoreConfig::Sqlite { path } => format!("SQLite {}", path.display()),
            StoreConfig::DynamoDb { table } => {
                format!(
                    "DynamoDB table {table} (AWS_REGION / AWS_ENDPOINT_URL from the environment)"
                )
            }
        };
        let _ = writeln!(out, "voice-operator local");
        let _ = writeln!(
            out,
            "  manifests       {} ({} VoiceAgents, {} invalid documents; watched)",
            self.manifests.display(),
            self.voiceagents.len(),
            self.errors
        );
        let _ = writeln!(out, "  data directory  {}", self.data_dir.display());
        let _ = writeln!(out, "  ElevenLabs      {}", self.elevenlabs);
        let _ = writeln!(out, "  tenant store    {store}");
        let _ = writeln!(out, "  action log      {}", self.action_log);
        let _ = writeln!(out, "  agent runtime   {}", self.agent);
        let _ = writeln!(out, "  app server      {}", self.app_server);
        let _ = writeln!(out, "  messaging       {}", self.messaging);
        let _ = writeln!(out, "  dashboard       {}", self.dashboard);
        let _ = writeln!(out, "  webhook secret  {}", self.webhook.describe());
        let _ = writeln!(out, "  admin token     {}", self.admin.describe());
        let _ = writeln!(
            out,
            "  custom-LLM auth bearer {}",
            self.llm_secret.describe()
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "listening on {}", self.base_url);
        let base = self.base_url;
        for (what, path) in [
            (
                "webhook (seed events)",
                "/api/elevenlabs/webhook".to_owned(),
            ),
            (
                "custom LLM",
                "/api/elevenlabs/llm/<businessId>/<locationId>/chat/completions".to_owned(),
            ),
            ("post-call webhook", "/api/elevenlabs/post-call".to_owned()),
            (
                "conversation init",
                "/api/elevenlabs/conversation-init".to_owned(),
            ),
            (
                "admin",
                "/api/elevenlabs/{activate,deactivate,status}/<businessId>".to_owned(),
            ),
            ("health, metrics", "/healthz /readyz /metrics".to_owned()),
        ] {
            let _ = writeln!(out, "  {what:<22} {base}{path}");
        }
        if self.dashboard_on {
            let _ = writeln!(
                out,
                "  {:<22} {base}/dashboard (API under /api/dashboard/, admin token)",
                "dashboard"
            );
        }
        if self.public_url != self.base_url {
            let _ = writeln!(out, "  ElevenLabs reaches it at {}", self.public_url);
        }
        let (business, location) = self
            .voiceagents
            .iter()
            .find(|va| va.spec.enabled)
            .map(|va| (va.spec.business_id.clone(), va.spec.location_id.clone()))
            .unwrap_or_else(|| ("B0100001".into(), "L0100001".into()));
        let body = format!(
            r#"{{"event":"message","conversationId":"try-1","message":{{"content":"Is there anything free tomorrow at 10:00?"}},"metadata":{{"businessId":"{business}","locationId":"{location}"}}}}"#
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "Try a signed conversation turn (bash, openssl, curl):");
        let _ = writeln!(out, "  body='{body}'");
        let _ = writeln!(out, "  ts=$(date +%s)");
        let _ = writeln!(
            out,
            "  sig=$(printf '%s.%s' \"$ts\" \"$body\" | openssl dgst -sha256 -hmac {} | sed 's/^.*= //')",
            self.webhook.shell()
        );
        let _ = writeln!(
            out,
            "  curl -sS {base}/api/elevenlabs/webhook -H 'content-type: application/json' -H \"ElevenLabs-Signature: t=$ts,v0=$sig\" -d \"$body\""
        );
        let _ = writeln!(
            out,
            "or a whole call: python3 examples/simulate-call.py --url {base} --data-dir {}",
            shell_path(self.data_dir)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_missing_secret_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let variable = "VOICE_OPERATOR_LLM_SECRET";
        let made = local_secret(None, variable, dir.path(), "llm-secret").unwrap();
        let path = dir.path().join("llm-secret");
        assert_eq!(made.file, Some((path.clone(), true)));
        assert_eq!(made.value.expose_secret().len(), 64);
        assert!(made.describe().starts_with("generated into"));
        assert!(made.describe().contains(variable));
        let again = local_secret(None, variable, dir.path(), "llm-secret").unwrap();
        assert_eq!(again.value.expose_secret(), made.value.expose_secret());
        assert_eq!(again.file, Some((path, false)));
        let given = SecretString::from("mine");
        let chosen = local_secret(Some(given), variable, dir.path(), "llm-secret").unwrap();
        assert_eq!(chosen.value.expose_secret(), "mine");
        assert_eq!(chosen.describe(), format!("from {variable}"));
    }
}
