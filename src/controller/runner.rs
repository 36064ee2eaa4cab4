//! Runs the controller: waits for the leader Lease, reconciles while it
//! holds it, stops reconciling the moment it is lost, and releases it on
//! shutdown so that another replica takes over without waiting for expiry.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::{mpsc, oneshot, watch};

use crate::crd::{VoiceAgent, VoiceAgentTemplate};
use crate::elevenlabs::AgentPlatform;
use crate::tenant::TenantStore;

use super::desired::OperatorSettings;
use super::metrics::Metrics;
use super::objects::KubeObjects;
use super::reconcile::{self, Context, FIELD_MANAGER, Parts, Timing};

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Watch one namespace only; every namespace when `None` (conflicts
    /// are then detected cluster-wide).
    pub namespace: Option<String>,
    /// VoiceAgents reconciled at the same time.
    pub concurrency: u16,
    pub settings: OperatorSettings,
    pub timing: Timing,
    /// Names this replica in the Lease and in Events.
    pub identity: String,
    /// `None` reconciles without leader election (one replica only).
    pub leader: Option<LeaderConfig>,
}

/// The Lease replicas compete for.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub lease_name: String,
    pub lease_namespace: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// Renew this long before it expires.
    pub renew_before: Duration,
}

/// The controller could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "the VoiceAgent CRD is not installed in this cluster; install it with `voice-operator crd | kubectl apply -f -`"
    )]
    CrdMissing,
    #[error("cannot list VoiceAgents: {0}")]
    Kube(#[source] kube::Error),
    #[error("leader election on Lease {namespace}/{name}: {source}")]
    Lease {
        namespace: String,
        name: String,
        #[source]
        source: LeaseManagerError,
    },
}

/// Everything the controller drives.
pub struct Backends {
    pub client: Client,
    pub platform: Arc<dyn AgentPlatform>,
    pub store: Arc<dyn TenantStore>,
    pub metrics: Arc<Metrics>,
}

/// Runs until `shutdown` turns true; in-flight reconciles finish first.
pub async fn run(
    backends: Backends,
    config: RunConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), RunError> {
    check_crd(&backends.client, config.namespace.as_deref()).await?;
    let Some(lease) = config.leader.clone() else {
        backends.metrics.leader(true);
        run_term(&backends, &config, stop_when(shutdown.clone(), None)).await;
        backends.metrics.leader(false);
        return Ok(());
    };
    let lease_error = |source| RunError::Lease {
        namespace: lease.lease_namespace.clone(),
        name: lease.lease_name.clone(),
        source,
    };
    let manager = LeaseManagerBuilder::new(backends.client.clone(), &lease.lease_name)
        .with_namespace(&lease.lease_namespace)
        .with_identity(&config.identity)
        .with_duration(lease.lease_duration.as_secs().max(2))
        .with_grace(lease.renew_before.as_secs().max(1))
        .with_field_manager(format!("{FIELD_MANAGER}/{}", config.identity))
        .build()
        .await
        .map_err(lease_error)?;
    let (mut leader, task) = manager.watch().await;
    tracing::info!(
        identity = %config.identity,
        lease = %format!("{}/{}", lease.lease_namespace, lease.lease_name),
        "waiting for the leader lease"
    );
    loop {
        tokio::select! {
            won = leader.wait_for(|is| *is) => if won.is_err() { break },
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        tracing::info!(identity = %config.identity, "became the leader; reconciling");
        backends.metrics.leader(true);
        run_term(
            &backends,
            &config,
            stop_when(shutdown.clone(), Some(leader.clone())),
        )
        .await;
        backends.metrics.leader(false);
        if *shutdown.borrow() {
            break;
        }
        tracing::warn!(identity = %config.identity, "lost the leader lease; stopped reconciling");
    }
    // Closing the channel makes the manager release the lease and stop.
    drop(leader);
    match task.await {
        Ok(Ok(_)) => tracing::info!("released the leader lease"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not release the leader lease; it will expire")
        }
        Err(e) => tracing::warn!(error = %e, "the lease task ended abnormally"),
    }
    Ok(())
}

/// VoiceAgents in `namespace`, or in every namespace.
fn voiceagents(client: &Client, namespace: Option<&str>) -> Api<VoiceAgent> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn check_crd(client: &Client, namespace: Option<&str>) -> Result<(), RunError> {
    let api = voiceagents(client, namespace);
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(RunError::CrdMissing),
        Err(e) => Err(RunError::Kube(e)),
    }
}

/// A future that resolves on shutdown or, when `leader` is given, on
/// losing the lease. kube-runtime wants it `Sync`, hence the oneshot.
pub(crate) fn stop_when(
    mut shutdown: watch::Receiver<bool>,
    leader: Option<watch::Receiver<bool>>,
) -> impl Future<Output = ()> + Send + Sync + 'static {
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let lost = async move {
            match leader {
                Some(mut l) => {
                    let _ = l.wait_for(|is| !*is).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => {}
            () = lost => {}
        }
        let _ = tx.send(());
    });
    async move {
        let _ = rx.await;
    }
}

/// One leadership term: a fresh reflector, inventory and Controller.
async fn run_term(
    backends: &Backends,
    config: &RunConfig,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api = voiceagents(&backends.client, config.namespace.as_deref());
    let (reader, writer) = reflector::store();
    // Status-only updates (our own writes) do not trigger a reconcile:
    // spec changes, finalizers and deletion do.
    let triggers = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger_hash, PredicateConfig::default());
    let templates = watcher(
        templates(&backends.client, config.namespace.as_deref()),
        watcher::Config::default(),
    )
    .default_backoff()
    .filter_map(|event| async move {
        match event {
            Ok(watcher::Event::Apply(t) | watcher::Event::InitApply(t)) => Some(Ok(t)),
            // A deleted template is marked so, so that its VoiceAgents are
            // told at once (they stall with TemplateNotFound).
            Ok(watcher::Event::Delete(mut t)) => {
                t.metadata
                    .deletion_timestamp
                    .get_or_insert(Time(Timestamp::now()));
                Some(Ok(t))
            }
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        }
    })
    .predicate_filter(template_trigger, PredicateConfig::default())
    .boxed();
    let stop = stop.shared();
    let rollout = template_status(
        backends.client.clone(),
        config.namespace.clone(),
        stop.clone(),
    );
    let parts = Parts {
        objects: Arc::new(KubeObjects::new(
            backends.client.clone(),
            Some(config.identity.clone()),
        )),
        platform: backends.platform.clone(),
        store: backends.store.clone(),
        settings: config.settings.clone(),
        timing: config.timing.clone(),
        claims: reader,
        metrics: backends.metrics.clone(),
    };
    futures::join!(
        drive(triggers, templates, parts, config.concurrency, stop),
        rollout
    );
}

/// What must change for a template's VoiceAgents to be reconciled: its
/// spec (generation) or its existence; not its status, which the
/// template-status Controller writes as they go.
fn template_trigger(template: &VoiceAgentTemplate) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    template.metadata.generation.hash(&mut hasher);
    template
        .metadata
        .deletion_timestamp
        .is_some()
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// VoiceAgentTemplates in `namespace`, or in every namespace.
fn templates(client: &Client, namespace: Option<&str>) -> Api<VoiceAgentTemplate> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Keeps each template's status counting its VoiceAgents, until `stop`:
/// a template is looked at again whenever one of its VoiceAgents changes.
async fn template_status(
    client: Client,
    namespace: Option<String>,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api = templates(&client, namespace.as_deref());
    let agents = voiceagents(&client, namespace.as_deref());
    Controller::new(api, watcher::Config::default())
        .watches(agents, watcher::Config::default(), |va: VoiceAgent| {
            let template = va.spec.template_ref.as_ref()?;
            Some(
                ObjectRef::<VoiceAgentTemplate>::new(&template.name)
                    .within(&va.namespace().unwrap_or_default()),
            )
        })
        .graceful_shutdown_on(stop)
        .run(
            count_rollout,
            |_, _: &kube::Error, _| kube::runtime::controller::Action::requeue(TEMPLATE_RETRY),
            Arc::new(client),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "template status will be retried");
            }
        })
        .await;
}

/// How soon a template whose status could not be written is tried again.
const TEMPLATE_RETRY: Duration = Duration::from_secs(5);

/// Writes how far `template`'s last edit has reached, when that changed.
async fn count_rollout(
    template: Arc<VoiceAgentTemplate>,
    client: Arc<Client>,
) -> Result<kube::runtime::controller::Action, kube::Error> {
    let ns = template.namespace().unwrap_or_default();
    let agents: Api<VoiceAgent> = Api::namespaced((*client).clone(), &ns);
    let list = agents.list(&ListParams::default()).await?;
    let status = super::template::rollout(&template, &list.items);
    if template.status.as_ref() != Some(&status) {
        let api: Api<VoiceAgentTemplate> = Api::namespaced((*client).clone(), &ns);
        let patch = serde_json::json!({
            "apiVersion": VoiceAgentTemplate::api_version(&()),
            "kind": VoiceAgentTemplate::kind(&()),
            "status": status,
        });
        api.patch_status(
            &template.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    Ok(kube::runtime::controller::Action::await_change())
}

/// Reconciles the VoiceAgents `triggers` names (read from `parts.claims`)
/// until `stop`; VoiceAgents waiting in Conflict are looked at again when
/// the holder of their location goes. The cluster and `local` mode both
/// run this.
pub(crate) async fn drive(
    triggers: impl futures::Stream<Item = Result<VoiceAgent, watcher::Error>> + Send + 'static,
    templates: BoxStream<'static, Result<VoiceAgentTemplate, watcher::Error>>,
    parts: Parts,
    concurrency: u16,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (released_tx, released_rx) = mpsc::unbounded_channel::<ObjectRef<VoiceAgent>>();
    let released = futures::stream::unfold(released_rx, |mut rx| async move {
        rx.recv().await.map(|r| (r, rx))
    });
    let reader = parts.claims.clone();
    let users = reader.clone();
    let ctx = Context::new(parts).with_release_channel(released_tx);
    Controller::for_stream(triggers, reader)
        // An edited template reconciles every VoiceAgent that names it.
        .watches_stream(templates, move |template: VoiceAgentTemplate| {
            let ns = template.namespace();
            let name = template.name_any();
            users
                .state()
                .into_iter()
                .filter(|va| {
                    va.namespace() == ns
                        && va.spec.template_ref.as_ref().map(|r| &r.name) == Some(&name)
                })
                .map(|va| ObjectRef::from_obj(&*va))
                .collect::<Vec<_>>()
        })
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .reconcile_on(released)
        .graceful_shutdown_on(stop)
        .run(reconcile::reconcile, reconcile::error_policy, Arc::new(ctx))
        .for_each(|result| async move { log_outcome(result) })
        .await;
}

/// What the controller stream yields, said in the log.
fn log_outcome<E: std::error::Error, Q: std::error::Error>(
    result: Result<
        (ObjectRef<VoiceAgent>, kube::runtime::controller::Action),
        kube::runtime::controller::Error<E, Q>,
    >,
) {
    match result {
        Ok((obj, _)) => tracing::debug!(voiceagent = %obj, "reconciled"),
        Err(kube::runtime::controller::Error::ReconcilerFailed(e, obj)) => {
            tracing::debug!(voiceagent = %obj, error = %e, "reconcile will be retried")
        }
        Err(e) => tracing::warn!(error = %e, "controller"),
    }
}

/// What must change for a VoiceAgent to be reconciled again at once: its
/// spec (generation) or its deletion. The operator's own writes (the
/// finalizer it adds, the status) do not count: a reconcile queued by them
/// would read the object from the cache before that status arrives and
/// redo the work it just did.
fn trigger_hash(va: &VoiceAgent) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    va.metadata.generation.hash(&mut hasher);
    va.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::VoiceAgentStatus;
    use crate::testkit::fixtures::voice_agent;

    #[test]
    fn own_writes_do_not_retrigger_but_spec_and_deletion_do() {
        let mut va = voice_agent("a", "u-a", "L1");
        va.metadata.generation = Some(1);
        let base = trigger_hash(&va);
        let mut status_only = va.clone();
        status_only.status = Some(VoiceAgentStatus {
            agent_id: Some("agent_1".into()),
            ..VoiceAgentStatus::default()
        });
        status_only.metadata.resource_version = Some("99".into());
        assert_eq!(trigger_hash(&status_only), base);
        let mut edited = va.clone();
        edited.metadata.generation = Some(2);
        assert_ne!(trigger_hash(&edited), base);
        let mut finalized = va.clone();
        finalized.metadata.finalizers = Some(vec!["voiceagents.io/cleanup".into()]);
        assert_eq!(trigger_hash(&finalized), base);
        let mut deleting = va.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_ne!(trigger_hash(&deleting), base);
    }
}
