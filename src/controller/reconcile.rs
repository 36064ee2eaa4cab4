//! The reconciler: makes ElevenLabs and the tenant store match one
//! VoiceAgent, then says so in its status. Decisions come from [`plan`]
//! and [`desired`]; this module only reads, calls and writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::crd::{
    DeletionPolicy, FINALIZER, Phase, TWILIO_ACCOUNT_SID_KEY, TWILIO_AUTH_TOKEN_KEY, VoiceAgent,
    VoiceAgentStatus, VoiceAgentTemplate,
};
use crate::elevenlabs::{
    AgentPlatform, Deleted, DesiredAgent, ElevenLabsError, PhoneImport, SipOutbound,
};
use crate::ids::Id;
use crate::tenant::{Read, Seen, SpecGeneration, StoreError, TenantConfig, TenantKey, TenantStore};

use super::desired::{self, OperatorSettings, SpecError};
use super::error::{Error, backoff};
use super::inventory::Inventory;
use super::metrics::Metrics;
use super::objects::Objects;
use super::plan::{self, Adoption, AgentStep, ItemStep, PhoneBlock, PhoneStep, PhoneView};
use super::reason::Reason;
use super::status::{self, Cond, PhoneStatus};
use super::template;

/// Field manager for every write the operator makes.
pub const FIELD_MANAGER: &str = "voice-operator";

/// When to come back to a VoiceAgent.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Periodic check for changes made by hand in the ElevenLabs dashboard.
    pub resync: Duration,
    /// How often a VoiceAgent in Conflict looks again.
    pub conflict_recheck: Duration,
    /// Requeue after an error that retrying does not fix.
    pub error_requeue: Duration,
    /// First and longest backoff after a transient error.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            resync: Duration::from_secs(600),
            conflict_recheck: Duration::from_secs(60),
            error_requeue: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    objects: Arc<dyn Objects>,
    platform: Arc<dyn AgentPlatform>,
    store: Arc<dyn TenantStore>,
    settings: OperatorSettings,
    timing: Timing,
    /// Every VoiceAgent the controller sees, for the conflict decision.
    claims: Store<VoiceAgent>,
    inventory: Inventory,
    metrics: Arc<Metrics>,
    attempts: Mutex<HashMap<String, u32>>,
    /// VoiceAgents to look at again when a claim is released.
    released: Option<mpsc::UnboundedSender<ObjectRef<VoiceAgent>>>,
    /// Per template (namespace/name): its rollout.maxConcurrent and the
    /// slots its VoiceAgents take to write their agent.
    rollouts: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
}

/// The parts a [`Context`] is made of.
pub struct Parts {
    /// The cluster ([`super::objects::KubeObjects`]) or the manifests
    /// directory of `local` mode.
    pub objects: Arc<dyn Objects>,
    pub platform: Arc<dyn AgentPlatform>,
    pub store: Arc<dyn TenantStore>,
    pub settings: OperatorSettings,
    pub timing: Timing,
    pub claims: Store<VoiceAgent>,
    pub metrics: Arc<Metrics>,
}

impl Context {
    pub fn new(parts: Parts) -> Context {
        Context {
            objects: parts.objects,
            platform: parts.platform,
            store: parts.store,
            settings: parts.settings,
            timing: parts.timing,
            claims: parts.claims,
            inventory: Inventory::new(),
            metrics: parts.metrics,
            attempts: Mutex::new(HashMap::new()),
            released: None,
            rollouts: Mutex::new(HashMap::new()),
        }
    }

    /// Where to send VoiceAgents waiting in Conflict when the holder of
    /// their location is deleted.
    pub fn with_release_channel(
        mut self,
        tx: mpsc::UnboundedSender<ObjectRef<VoiceAgent>>,
    ) -> Self {
        self.released = Some(tx);
        self
    }

    async fn event(&self, va: &VoiceAgent, type_: EventType, reason: Reason, note: String) {
        self.objects
            .event(va, type_, reason, truncate(note, 1000))
            .await;
    }

    /// A slot of `template`'s rollout, waited for; none without a
    /// template. A changed maxConcurrent starts a fresh count, so for a
    /// moment the old holders and the new limit overlap.
    async fn rollout_slot(
        &self,
        va: &VoiceAgent,
        template: Option<&VoiceAgentTemplate>,
    ) -> Option<OwnedSemaphorePermit> {
        let template = template?;
        let limit = template.spec.rollout.max_concurrent.max(1);
        let key = format!(
            "{}/{}",
            va.namespace().unwrap_or_default(),
            template.name_any()
        );
        let slots = {
            let mut rollouts = self.rollouts.lock().unwrap_or_else(|p| p.into_inner());
            let entry = rollouts
                .entry(key)
                .or_insert_with(|| (limit, Arc::new(Semaphore::new(limit as usize))));
            if entry.0 != limit {
                *entry = (limit, Arc::new(Semaphore::new(limit as usize)));
            }
            entry.1.clone()
        };
        slots.acquire_owned().await.ok()
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reconciles one VoiceAgent; kube-runtime calls it on every change, on
/// requeue and on resync.
pub async fn reconcile(va: Arc<VoiceAgent>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        voiceagent = %format!("{}/{}", va.namespace().unwrap_or_default(), va.name_any()),
        business_id = %va.spec.business_id,
        location_id = %va.spec.location_id,
    );
    let result = tracing::Instrument::instrument(reconcile_once(&va, &ctx), span).await;
    let uid = va.uid().unwrap_or_default();
    match result {
        Ok(action) => {
            ctx.attempts().remove(&uid);
            ctx.metrics.reconciled(started.elapsed(), None);
            Ok(action)
        }
        Err(err) if err.is_stale() => {
            // Not a failure to report: somebody else wrote the item after
            // this reconcile read it, or wrote it from a newer spec than
            // this replica's cache holds. Nothing was written, not even the
            // status; the retry reads everything again (error_policy: the
            // first wait is under backoff_base, then it grows while the
            // cache lags).
            ctx.metrics
                .reconciled(started.elapsed(), Some(err.reason()));
            if matches!(err, Error::Store(StoreError::Superseded { .. })) {
                tracing::info!(
                    error = %err,
                    "a newer spec owns the tenant item; nothing written, reconciling again once this replica's cache catches up"
                );
            } else {
                tracing::info!(error = %err, "the tenant item changed meanwhile; reconciling again");
            }
            Err(err)
        }
        Err(err) => {
            ctx.metrics
                .reconciled(started.elapsed(), Some(err.reason()));
            report_failure(&va, &ctx, &err).await;
            if err.is_permanent() {
                tracing::warn!(error = %err, "reconcile failed; waiting for a change");
                ctx.attempts().remove(&uid);
                Ok(Action::requeue(ctx.timing.error_requeue))
            } else {
                tracing::info!(error = %err, "reconcile failed; will retry");
                Err(err)
            }
        }
    }
}

/// Backoff for transient errors: exponential with jitter per VoiceAgent,
/// never shorter than a `Retry-After` the provider sent.
pub fn error_policy(va: Arc<VoiceAgent>, err: &Error, ctx: Arc<Context>) -> Action {
    let attempt = {
        let mut attempts = ctx.attempts();
        let n = attempts.entry(va.uid().unwrap_or_default()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let t = &ctx.timing;
    Action::requeue(backoff(
        attempt,
        t.backoff_base,
        t.backoff_max,
        err.retry_after(),
    ))
}

async fn reconcile_once(va: &Arc<VoiceAgent>, ctx: &Context) -> Result<Action, Error> {
    // The conflict decision needs every VoiceAgent, not just the first
    // ones the initial list delivered.
    let _ = ctx.claims.wait_until_ready().await;
    let has_finalizer = va.finalizers().iter().any(|f| f == FINALIZER);
    if va.metadata.deletion_timestamp.is_some() {
        if has_finalizer {
            cleanup(va, ctx).await?;
            ctx.objects.set_finalizer(va, false).await?;
            ctx.metrics.phase(&va.uid().unwrap_or_default(), None);
            release_claim(va, ctx);
        }
        return Ok(Action::await_change());
    }
    if has_finalizer {
        apply(va, ctx).await
    } else {
        // Not kube::runtime::finalizer: it adds the finalizer and then awaits
        // that update, which the trigger predicate (runner::trigger_hash) drops.
        let va = ctx.objects.set_finalizer(va, true).await?;
        apply(&va, ctx).await
    }
}

struct AgentOutcome {
    id: Id,
    /// ElevenLabs was written to or read from for drift.
    touched: bool,
    /// Fields the API did not keep, as JSON paths.
    not_kept: Vec<String>,
}

async fn apply(va: &VoiceAgent, ctx: &Context) -> Result<Action, Error> {
    let key = desired::tenant_key(va)?;
    let owner = desired::owner(va)?;
    let old = va.status.clone().unwrap_or_default();
    let now = Timestamp::now();

    let claims = ctx.claims.state();
    if let Some(holder) = plan::conflict_holder(va, &claims) {
        let message = format!(
            "{key} is already managed by VoiceAgent {}/{}; this one changes nothing until that one is deleted",
            holder.namespace().unwrap_or_default(),
            holder.name_any()
        );
        if old.phase != Some(Phase::Conflict) {
            ctx.event(va, EventType::Warning, Reason::Conflict, message.clone())
                .await;
        }
        let new = status::conflict(&old, va.metadata.generation, now, &message);
        write_status(va, ctx, &old, new).await?;
        return Ok(Action::requeue(ctx.timing.conflict_recheck));
    }

    // A template is read before anything is decided, so that a missing one
    // leaves ElevenLabs untouched.
    let template = match &va.spec.template_ref {
        Some(named) => Some(
            ctx.objects
                .template(va, &named.name)
                .await?
                .ok_or_else(|| SpecError::TemplateNotFound {
                    name: named.name.clone(),
                })?,
        ),
        None => None,
    };
    let resolved = template
        .as_ref()
        .map(|t| template::effective(va, t))
        .transpose()?;
    let planned = plan::spec_generation(va, template.as_ref());
    let va = resolved.as_ref().unwrap_or(va);
    let want = desired::agent(va, &ctx.settings)?;
    let hash = desired::config_hash(&want);
    // Read before ElevenLabs is touched: a replica whose cache still holds
    // an older spec than the one the item was written from (an old leader
    // during a Lease hand-over) must not PATCH that older spec onto the
    // agent either. The store checks the same again when it writes.
    let current = ctx.store.get(&key, Read::Strong).await?;
    if let Some(stored) = plan::superseded(current.as_ref(), planned) {
        return Err(StoreError::Superseded {
            key: key.to_string(),
            planned,
            stored,
        }
        .into());
    }
    // No agent yet: say so before the first call to ElevenLabs, so that
    // GitOps tools see the VoiceAgent in progress rather than current.
    let old = if old.agent_id.is_none() && !status::is_creating(&old, va.metadata.generation) {
        let creating = status::creating(&old, va.metadata.generation, now);
        write_status(va, ctx, &old, creating.clone()).await?;
        creating
    } else {
        old
    };
    let agent = {
        // Held while the agent is written and read back: an edited
        // template reaches at most rollout.maxConcurrent agents at once.
        let _slot = ctx.rollout_slot(va, template.as_ref()).await;
        sync_agent(va, ctx, &owner, &old, &want, &hash, now).await?
    };
    let phone = sync_phone(va, ctx, &old, &agent.id, now).await?;
    let (item, item_written) =
        sync_item(va, ctx, &key, &owner, planned, current, &agent.id).await?;

    let synced_now = agent.touched || item_written || old.last_synced_at.is_none();
    let mut new = status::synced(status::Synced {
        old: &old,
        generation: va.metadata.generation,
        now,
        enabled: va.spec.enabled,
        agent_id: &agent.id,
        config_hash: &hash,
        key: &key,
        item_version: item.version,
        synced_now,
        not_kept: &agent.not_kept,
        phone: phone.as_ref().map(|p| &p.status),
    });
    new.template_generation = template.and_then(|t| t.metadata.generation);
    write_status(va, ctx, &old, new).await?;
    if let Some(wait) = phone.and_then(|p| p.wait) {
        return Ok(Action::requeue(wait));
    }
    let resync = ctx.timing.resync;
    // Spread resyncs so that agents created together are not all checked
    // in the same second.
    Ok(Action::requeue(
        resync + resync.mul_f64(fastrand::f64() * 0.1),
    ))
}

/// Creates, adopts or updates the ElevenLabs agent, then reads back what
/// it wrote.
async fn sync_agent(
    va: &VoiceAgent,
    ctx: &Context,
    owner: &Id,
    old: &VoiceAgentStatus,
    want: &DesiredAgent,
    hash: &str,
    now: Timestamp,
) -> Result<AgentOutcome, Error> {
    let platform = ctx.platform.as_ref();
    // What the last read-back of this spec found not kept.
    let known = status::not_kept(old);
    // The agent status names, when it turns out to be deleted by hand.
    let gone = match plan::agent_step(old, hash, now, ctx.timing.resync) {
        AgentStep::Keep(id) => {
            return Ok(AgentOutcome {
                id,
                touched: false,
                not_kept: known,
            });
        }
        AgentStep::Update(id) => match platform.update_agent(&id, want).await {
            Ok(()) => {
                let note = format!("updated ElevenLabs agent {id} to the new spec");
                ctx.event(va, EventType::Normal, Reason::Updated, note)
                    .await;
                return written(va, ctx, id, want).await;
            }
            Err(ElevenLabsError::NotFound { .. }) => Some(id),
            Err(e) => return Err(e.into()),
        },
        AgentStep::CheckDrift(id) => match platform.get_agent(&id).await {
            Ok(remote) => {
                let Some(fields) = plan::patch_needed(want, &remote, &known) else {
                    // Nothing to PATCH; what is still not kept stays
                    // named, and a field the API keeps now is cleared.
                    return Ok(AgentOutcome {
                        not_kept: plan::not_kept(want, &remote),
                        id,
                        touched: true,
                    });
                };
                platform.update_agent(&id, want).await?;
                let note = format!(
                    "ElevenLabs agent {id} was changed outside the operator ({}); set back to the spec",
                    fields.join(", ")
                );
                ctx.event(va, EventType::Normal, Reason::DriftCorrected, note)
                    .await;
                return written(va, ctx, id, want).await;
            }
            Err(ElevenLabsError::NotFound { .. }) => Some(id),
            Err(e) => return Err(e.into()),
        },
        AgentStep::Create => None,
    };
    if let Some(id) = gone {
        ctx.inventory.removed(owner, &id);
        let note = format!("ElevenLabs agent {id} no longer exists; making a new one");
        ctx.event(va, EventType::Warning, Reason::AgentMissing, note)
            .await;
    }
    let id = adopt_or_create(va, ctx, owner, want).await?;
    written(va, ctx, id, want).await
}

/// Reads agent `id` back after a create or update and names, in a Warning
/// Event, the fields the API did not keep (see [`plan::not_kept`]). A
/// failed read fails the reconcile: the retry writes again and reads again,
/// which is harmless, and until then AgentSynced says why.
async fn written(
    va: &VoiceAgent,
    ctx: &Context,
    id: Id,
    want: &DesiredAgent,
) -> Result<AgentOutcome, Error> {
    let remote = ctx.platform.get_agent(&id).await?;
    let not_kept = plan::not_kept(want, &remote);
    if !not_kept.is_empty() {
        let note = format!(
            "ElevenLabs accepted agent {id} but did not keep {}; it answers calls without them. \
             No PATCH goes out for them again until the spec changes",
            not_kept.join(", ")
        );
        ctx.event(va, EventType::Warning, Reason::FieldsNotKept, note)
            .await;
    }
    Ok(AgentOutcome {
        id,
        touched: true,
        not_kept,
    })
}

/// Never two agents for one VoiceAgent: an agent already tagged with its
/// uid is adopted (and brought to the spec); only when there is none is
/// one created.
async fn adopt_or_create(
    va: &VoiceAgent,
    ctx: &Context,
    owner: &Id,
    want: &DesiredAgent,
) -> Result<Id, Error> {
    let platform = ctx.platform.as_ref();
    loop {
        let tagged = ctx.inventory.agents_of(platform, owner, &want.name).await?;
        let Some(Adoption { keep, duplicates }) = plan::adoption(&tagged, owner) else {
            break;
        };
        match platform.update_agent(&keep, want).await {
            Ok(()) => {}
            Err(ElevenLabsError::NotFound { .. }) => {
                // Listed, but deleted since; look at the others.
                ctx.inventory.removed(owner, &keep);
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let note = format!(
            "adopted existing ElevenLabs agent {keep}, which carries this VoiceAgent's identity"
        );
        ctx.event(va, EventType::Normal, Reason::Adopted, note)
            .await;
        for duplicate in duplicates {
            platform.delete_agent(&duplicate).await?;
            ctx.inventory.removed(owner, &duplicate);
            let note = format!("deleted ElevenLabs agent {duplicate}, a duplicate of {keep}");
            ctx.event(va, EventType::Normal, Reason::DuplicateDeleted, note)
                .await;
        }
        return Ok(keep);
    }
    match platform.create_agent(want).await {
        Ok(id) => {
            ctx.inventory.created(owner, &id, &want.name, &want.tags);
            let note = format!("created ElevenLabs agent {id}");
            ctx.event(va, EventType::Normal, Reason::Created, note)
                .await;
            Ok(id)
        }
        Err(e) => {
            if may_have_created(&e) {
                ctx.inventory.uncertain(owner);
            }
            Err(e.into())
        }
    }
}

/// Whether ElevenLabs may have made the agent although the call failed.
fn may_have_created(e: &ElevenLabsError) -> bool {
    !matches!(
        e,
        ElevenLabsError::Validation { .. }
            | ElevenLabsError::Auth { .. }
            | ElevenLabsError::RateLimited { .. }
            | ElevenLabsError::InvalidId(_)
    )
}

/// Where the phone number stands after [`sync_phone`].
struct PhoneOutcome {
    status: PhoneStatus,
    /// Blocked: look again after this long.
    wait: Option<Duration>,
}

/// Points spec.phoneNumber at the agent (at no agent while disabled),
/// importing it first when the workspace lacks it and spec.telephony says
/// how. `None` when the VoiceAgent has no number and never had one.
async fn sync_phone(
    va: &VoiceAgent,
    ctx: &Context,
    old: &VoiceAgentStatus,
    agent: &Id,
    now: Timestamp,
) -> Result<Option<PhoneOutcome>, Error> {
    let spec_number = va.spec.phone_number.as_deref();
    if spec_number.is_none() && old.phone_number_id.is_none() {
        return Ok(None);
    }
    let enabled = va.spec.enabled;
    let claims = ctx.claims.state();
    if let Some(holder) = plan::phone_holder(va, &claims) {
        let message = format!(
            "spec.phoneNumber {} is already claimed by VoiceAgent {}/{}, which is older; this one touches nothing about the number until that one lets it go",
            spec_number.unwrap_or_default(),
            holder.namespace().unwrap_or_default(),
            holder.name_any()
        );
        return Ok(Some(
            blocked(va, ctx, old, now, Reason::PhoneNumberHeld, message).await,
        ));
    }
    if !plan::phone_due(spec_number, enabled, old, now, ctx.timing.resync) {
        return Ok(Some(PhoneOutcome {
            status: settled(
                spec_number,
                old.phone_number_id.clone(),
                enabled,
                old.phone_number_imported == Some(true),
            ),
            wait: None,
        }));
    }
    let platform = ctx.platform.as_ref();
    let numbers = platform.list_phone_numbers().await?;
    let ours: Vec<String> = claims
        .iter()
        .filter_map(|c| c.status.as_ref()?.agent_id.clone())
        .collect();
    let claimed = plan::numbers_of_others(va, &claims);
    let uid = va.metadata.uid.as_deref().unwrap_or_default();
    let plan = plan::phone_plan(&PhoneView {
        spec_number,
        enabled,
        can_import: va.spec.telephony.is_some(),
        agent,
        uid,
        old,
        numbers: &numbers,
        ours: &ours,
        claimed: &claimed,
        delete_imported: va.spec.deletion_policy == DeletionPolicy::Delete,
    });
    let number = spec_number.unwrap_or_default();
    match plan.blocked {
        Some(PhoneBlock::HeldByForeignAgent { agent_id }) => {
            let message = format!(
                "phone number {number} answers for ElevenLabs agent {agent_id}, which no VoiceAgent manages; \
                 nothing is touched. Unassign it from that agent in ElevenLabs, or choose another spec.phoneNumber"
            );
            return Ok(Some(
                blocked(va, ctx, old, now, Reason::PhoneNumberHeld, message).await,
            ));
        }
        Some(PhoneBlock::NotInWorkspace) => {
            let message = format!(
                "phone number {number} is not in the ElevenLabs workspace and spec.telephony does not say how to import it; \
                 import it in ElevenLabs, or set spec.telephony.twilioSecretRef or spec.telephony.sipTrunk"
            );
            return Ok(Some(
                blocked(va, ctx, old, now, Reason::PhoneNumberMissing, message).await,
            ));
        }
        None => {}
    }
    let mut target = plan.target;
    for step in plan.steps {
        match step {
            PhoneStep::Unassign(id) => {
                platform.assign_phone_number(&id, None).await?;
                let note = format!("phone number {id} no longer reaches agent {agent}");
                ctx.event(va, EventType::Normal, Reason::PhoneNumberUnassigned, note)
                    .await;
            }
            PhoneStep::Assign(id) => {
                platform.assign_phone_number(&id, Some(agent)).await?;
                let note = format!("phone number {number} ({id}) now reaches agent {agent}");
                ctx.event(va, EventType::Normal, Reason::PhoneNumberAssigned, note)
                    .await;
            }
            PhoneStep::Import { assign } => {
                let import = match phone_import(va, ctx, number).await? {
                    Ok(import) => import,
                    Err(message) => {
                        let reason = Reason::TelephonySecretMissing;
                        return Ok(Some(blocked(va, ctx, old, now, reason, message).await));
                    }
                };
                let to = assign.then_some(agent);
                let id = platform.import_phone_number(&import, to).await?;
                let note = match to {
                    Some(agent) => format!(
                        "imported phone number {number} into the ElevenLabs workspace as {id}; it reaches agent {agent}"
                    ),
                    None => format!(
                        "imported phone number {number} into the ElevenLabs workspace as {id}"
                    ),
                };
                ctx.event(va, EventType::Normal, Reason::PhoneNumberImported, note)
                    .await;
                target = Some((id, true));
            }
            PhoneStep::Delete(id) => {
                platform.delete_phone_number(&id).await?;
                let note = format!(
                    "removed phone number {id}, which the operator had imported and spec.phoneNumber no longer names, from the ElevenLabs workspace"
                );
                ctx.event(va, EventType::Normal, Reason::PhoneNumberDeleted, note)
                    .await;
            }
        }
    }
    let (id, imported) = match target {
        Some((id, imported)) => (Some(id.to_string()), imported),
        None => (None, false),
    };
    Ok(Some(PhoneOutcome {
        status: settled(spec_number, id, enabled, imported),
        wait: None,
    }))
}

/// The phone status once the number points where the spec says.
fn settled(number: Option<&str>, id: Option<String>, enabled: bool, imported: bool) -> PhoneStatus {
    let assigned = enabled && id.is_some();
    let message = match (number, &id) {
        (Some(number), Some(id)) if enabled => {
            format!("phone number {number} ({id}) reaches this agent")
        }
        (Some(number), Some(id)) => {
            format!("phone number {number} ({id}) reaches no agent while enabled is false")
        }
        (Some(number), None) => format!(
            "phone number {number} is not in the workspace; it is imported when enabled is true"
        ),
        (None, _) => "no spec.phoneNumber; no number reaches this agent".to_owned(),
    };
    PhoneStatus {
        number: number.map(str::to_owned),
        id: number.and(id),
        assigned,
        imported,
        cond: Cond::ok(Reason::PhoneNumberAssigned, message),
    }
}

/// A phone number left alone: the condition says why, a Warning Event
/// says it once, and the next look waits as long as it has been blocked.
async fn blocked(
    va: &VoiceAgent,
    ctx: &Context,
    old: &VoiceAgentStatus,
    now: Timestamp,
    reason: Reason,
    message: String,
) -> PhoneOutcome {
    let before = old
        .conditions
        .iter()
        .find(|c| c.type_ == status::PHONE_NUMBER && c.status == "False");
    if before.is_none_or(|c| c.message != message) {
        ctx.event(va, EventType::Warning, reason, message.clone())
            .await;
    }
    let since = before.map(|c| c.last_transition_time.0);
    let t = &ctx.timing;
    PhoneOutcome {
        status: PhoneStatus {
            number: va.spec.phone_number.clone(),
            id: None,
            assigned: false,
            imported: false,
            cond: Cond::not(reason, message),
        },
        wait: Some(plan::blocked_wait(
            since,
            now,
            t.backoff_base.max(Duration::from_secs(5)),
            t.error_requeue,
        )),
    }
}

/// What to import `number` with, from spec.telephony; `Err` names what is
/// missing (the Secret, or a key of it).
async fn phone_import(
    va: &VoiceAgent,
    ctx: &Context,
    number: &str,
) -> Result<Result<PhoneImport, String>, Error> {
    let telephony = va.spec.telephony.as_ref();
    let label = plan::import_label(
        &va.spec.business_name,
        &va.spec.location_id,
        va.metadata.uid.as_deref().unwrap_or_default(),
    );
    if let Some(trunk) = telephony.and_then(|t| t.sip_trunk.as_ref()) {
        return Ok(Ok(PhoneImport::SipTrunk {
            phone_number: number.to_owned(),
            label,
            outbound: Some(SipOutbound {
                address: trunk.address.clone(),
                transport: trunk.transport.map(|t| t.as_str().to_owned()),
                media_encryption: trunk.media_encryption.map(|m| m.as_str().to_owned()),
            }),
        }));
    }
    let Some(secret) = telephony.and_then(|t| t.twilio_secret_ref.as_ref()) else {
        return Ok(Err("spec.telephony names no provider".into()));
    };
    let namespace = va.namespace().unwrap_or_default();
    let Some(mut data) = ctx.objects.secret(va, &secret.name).await? else {
        return Ok(Err(format!(
            "Secret {namespace}/{} (spec.telephony.twilioSecretRef) does not exist; create it with keys {TWILIO_ACCOUNT_SID_KEY} and {TWILIO_AUTH_TOKEN_KEY}",
            secret.name
        )));
    };
    let missing: Vec<&str> = [TWILIO_ACCOUNT_SID_KEY, TWILIO_AUTH_TOKEN_KEY]
        .into_iter()
        .filter(|k| {
            data.get(*k)
                .is_none_or(|v| secrecy::ExposeSecret::expose_secret(v).trim().is_empty())
        })
        .collect();
    if !missing.is_empty() {
        return Ok(Err(format!(
            "Secret {namespace}/{} (spec.telephony.twilioSecretRef) lacks key {}; add the Twilio {}",
            secret.name,
            missing.join(" and key "),
            missing
                .iter()
                .map(|k| if *k == TWILIO_ACCOUNT_SID_KEY {
                    "Account SID"
                } else {
                    "Auth Token"
                })
                .collect::<Vec<_>>()
                .join(" and ")
        )));
    }
    let take = |data: &mut crate::controller::objects::SecretData, key: &str| {
        data.remove(key).expect("checked above")
    };
    let account_sid =
        secrecy::ExposeSecret::expose_secret(&take(&mut data, TWILIO_ACCOUNT_SID_KEY))
            .trim()
            .to_owned();
    let auth_token = take(&mut data, TWILIO_AUTH_TOKEN_KEY);
    Ok(Ok(PhoneImport::Twilio {
        phone_number: number.to_owned(),
        label,
        account_sid,
        auth_token,
    }))
}

/// Deletion: every number pointing at one of `agents` points at none, and
/// with deletionPolicy Delete a number the operator imported is removed.
async fn cleanup_phone(va: &VoiceAgent, ctx: &Context, agents: &[Id]) -> Result<(), Error> {
    let old = va.status.clone().unwrap_or_default();
    if va.spec.phone_number.is_none() && old.phone_number_id.is_none() {
        return Ok(());
    }
    let platform = ctx.platform.as_ref();
    let numbers = platform.list_phone_numbers().await?;
    let delete_imported = va.spec.deletion_policy == DeletionPolicy::Delete;
    let claimed = plan::numbers_of_others(va, &ctx.claims.state());
    let uid = va.metadata.uid.as_deref().unwrap_or_default();
    let (unassign, delete) =
        plan::phone_cleanup(&numbers, agents, uid, &old, &claimed, delete_imported);
    for id in unassign {
        platform.assign_phone_number(&id, None).await?;
        let note = format!("phone number {id} no longer reaches this VoiceAgent's agent");
        ctx.event(va, EventType::Normal, Reason::PhoneNumberUnassigned, note)
            .await;
    }
    for id in delete {
        platform.delete_phone_number(&id).await?;
        let note = format!(
            "removed phone number {id}, which the operator had imported, from the ElevenLabs workspace"
        );
        ctx.event(va, EventType::Normal, Reason::PhoneNumberDeleted, note)
            .await;
    }
    Ok(())
}

/// Brings the tenant item (`current`, as read at the start of the
/// reconcile) to the spec. Returns it and whether it was written. The write
/// carries the version read and the generation `planned` from: if the item
/// changed in between (another replica, an old leader), it fails with
/// [`StoreError::Stale`], if it was written from a newer spec meanwhile
/// with [`StoreError::Superseded`], and the whole reconcile runs again
/// soon, reading the VoiceAgent and the item afresh, rather than planning
/// again from a spec that may be the stale one.
async fn sync_item(
    va: &VoiceAgent,
    ctx: &Context,
    key: &TenantKey,
    owner: &Id,
    planned: SpecGeneration,
    current: Option<TenantConfig>,
    agent_id: &Id,
) -> Result<(TenantConfig, bool), Error> {
    let want = desired::tenant_settings(va, agent_id);
    let seen = Seen::of(current.as_ref());
    let item = match plan::item_step(current.as_ref(), owner, &want, planned) {
        ItemStep::Keep(item) => return Ok((item.clone(), false)),
        ItemStep::EnableOnly(enabled) => {
            ctx.store
                .set_enabled(key, owner, seen, planned, enabled)
                .await?
        }
        ItemStep::Put => ctx.store.put(key, owner, seen, planned, &want).await?,
    };
    let enabled_before = current.as_ref().map(|c| c.settings.enabled);
    let (reason, note) = plan::item_event(key, &item, enabled_before);
    ctx.event(va, EventType::Normal, reason, note).await;
    Ok((item, true))
}

/// Deletion: the agent per `deletionPolicy`, then the tenant item.
async fn cleanup(va: &VoiceAgent, ctx: &Context) -> Result<(), Error> {
    let key = desired::tenant_key(va)?;
    let owner = desired::owner(va)?;
    let claims = ctx.claims.state();
    if let Some(holder) = plan::conflict_holder(va, &claims) {
        let note = format!(
            "nothing to clean up: {key} belongs to VoiceAgent {}/{}",
            holder.namespace().unwrap_or_default(),
            holder.name_any()
        );
        ctx.event(va, EventType::Normal, Reason::Deleted, note)
            .await;
        return Ok(());
    }
    let platform = ctx.platform.as_ref();
    let name = desired::agent_name(va);
    let mut agents: Vec<Id> = ctx
        .inventory
        .agents_of(platform, &owner, &name)
        .await?
        .iter()
        .filter_map(|a| Id::parse("agent_id", &a.agent_id).ok())
        .collect();
    if let Some(id) = va.status.as_ref().and_then(|s| s.agent_id.as_deref())
        && let Ok(id) = Id::parse("status.agentId", id)
        && !agents.contains(&id)
    {
        agents.push(id);
    }
    // Before the agents go: no number may be left pointing at a deleted agent.
    cleanup_phone(va, ctx, &agents).await?;
    for id in &agents {
        match va.spec.deletion_policy {
            DeletionPolicy::Delete => {
                let outcome = platform.delete_agent(id).await?;
                ctx.inventory.removed(&owner, id);
                let note = match outcome {
                    Deleted::Removed => format!("deleted ElevenLabs agent {id}"),
                    Deleted::AlreadyGone => format!("ElevenLabs agent {id} was already gone"),
                };
                ctx.event(va, EventType::Normal, Reason::AgentDeleted, note)
                    .await;
            }
            DeletionPolicy::Retain => {
                let note = format!("kept ElevenLabs agent {id} (deletionPolicy Retain)");
                ctx.event(va, EventType::Normal, Reason::AgentRetained, note)
                    .await;
            }
        }
    }
    match ctx.store.delete(&key, &owner).await {
        Ok(true) => {
            let note = format!("deleted tenant {key} configuration");
            ctx.event(va, EventType::Normal, Reason::ConfigDeleted, note)
                .await;
        }
        Ok(false) => {}
        Err(StoreError::Conflict { .. }) => {
            tracing::warn!(tenant = %key, "the tenant item belongs to another owner; left as it is");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// After a holder is gone, VoiceAgents waiting in Conflict for the same
/// location look again at once.
fn release_claim(va: &VoiceAgent, ctx: &Context) {
    let Some(tx) = &ctx.released else { return };
    for other in ctx.claims.state() {
        let same_key = other.spec.business_id == va.spec.business_id
            && other.spec.location_id == va.spec.location_id;
        if same_key && other.uid() != va.uid() {
            let _ = tx.send(ObjectRef::from_obj(other.as_ref()));
        }
    }
}

/// Writes the status when it changed.
async fn write_status(
    va: &VoiceAgent,
    ctx: &Context,
    old: &VoiceAgentStatus,
    new: VoiceAgentStatus,
) -> Result<(), Error> {
    ctx.metrics.phase(&va.uid().unwrap_or_default(), new.phase);
    if *old == new && va.status.is_some() {
        return Ok(());
    }
    ctx.objects.write_status(va, &new).await
}

/// Puts a failed reconcile into the status and an Event, best effort: the
/// error itself is what gets retried.
async fn report_failure(va: &VoiceAgent, ctx: &Context, err: &Error) {
    let old = va.status.clone().unwrap_or_default();
    let new = status::failed(&old, va.metadata.generation, Timestamp::now(), err);
    ctx.event(va, EventType::Warning, err.reason(), err.to_string())
        .await;
    if let Err(e) = write_status(va, ctx, &old, new).await {
        tracing::warn!(error = %e, "cannot record the failure in the status");
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("ăăă".into(), 3), "ă");
        assert_eq!(truncate("abc".into(), 10), "abc");
    }
}
