//! ElevenLabs' call-level webhooks: `POST /api/elevenlabs/post-call`
//! (transcription, audio, initiation failure) and
//! `POST /api/elevenlabs/conversation-init` (the dynamic variables of an
//! inbound call).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::error::{ApiError, parse_json};
use super::state::AppState;
use super::transcripts::FinishedCall;
use crate::actionlog::cost::{self, CallCharges, Cost, Money};
use crate::actionlog::{Outcome, VoiceCall};
use crate::agent::Session;
use crate::ids::Id;
use crate::tenant::{TenantConfig, TenantKey};

#[derive(Debug, Deserialize)]
struct PostCall {
    #[serde(rename = "type")]
    kind: String,
    data: PostCallData,
}

#[derive(Debug, Deserialize)]
struct PostCallData {
    #[serde(default)]
    agent_id: Option<String>,
    conversation_id: String,
    #[serde(default)]
    transcript: Option<Vec<TranscriptTurn>>,
    #[serde(default)]
    metadata: Option<CallMetadata>,
    #[serde(default)]
    analysis: Option<Value>,
    #[serde(default)]
    conversation_initiation_client_data: Option<InitData>,
    /// `post_call_audio`: the whole call, base64.
    #[serde(default)]
    full_audio: Option<String>,
    /// `call_initiation_failure`: why the call never started.
    #[serde(default)]
    failure_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TranscriptTurn {
    role: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    time_in_call_secs: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
struct CallMetadata {
    #[serde(default)]
    call_duration_secs: Option<f64>,
    #[serde(default)]
    cost: Option<f64>,
    #[serde(default)]
    cost_fiat: Option<f64>,
    #[serde(default)]
    charging: Option<Charging>,
    #[serde(default)]
    termination_reason: Option<String>,
    #[serde(default)]
    phone_call: Option<PhoneCall>,
}

/// `data.metadata.charging` (`ConversationChargingCommonModel`).
#[derive(Debug, Default, Deserialize)]
struct Charging {
    #[serde(default)]
    llm_price: Option<f64>,
    #[serde(default)]
    llm_charge: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct PhoneCall {
    #[serde(default)]
    external_number: Option<String>,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    call_sid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InitData {
    #[serde(default)]
    dynamic_variables: Map<String, Value>,
}

/// Most transcript text kept in one record, so the record stays well
/// under the action log's size limit.
const MAX_TRANSCRIPT_BYTES: usize = 256 * 1024;

/// Handles one post-call webhook. An event of an agent this operator
/// does not manage is acknowledged (`{"status": "ignored"}`), counted and
/// logged at debug; only a bad signature (401) and a malformed body (400)
/// are refused.
pub async fn post_call(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    state.verify_signature(&headers, &body)?;
    let event: PostCall = parse_json(&body)?;
    let data = event.data;
    let conversation = Id::parse("data.conversation_id", &data.conversation_id)?;
    if !matches!(
        event.kind.as_str(),
        "post_call_transcription" | "post_call_audio" | "call_initiation_failure"
    ) {
        return Err(ApiError::field(
            "type",
            format!(
                "{:?} is not one of post_call_transcription, post_call_audio, call_initiation_failure",
                event.kind
            ),
        ));
    }
    let resolved = match resolve(&state, &data, &conversation).await {
        Ok(tenant) => state
            .check_agent(&tenant, data.agent_id.as_deref())
            .map(|()| tenant),
        Err(e) => Err(e),
    };
    let tenant = match resolved {
        Ok(tenant) => tenant,
        Err(e) => {
            let Some(reason) = not_managed(&e) else {
                return Err(e);
            };
            // The workspace's post-call webhook fires for every agent of
            // the workspace, ours or not. ElevenLabs disables a webhook
            // after 10 consecutive failures (any non-200), and then our
            // own calls' events stop too, so events of agents we do not
            // manage get a 200 (post-call-webhook.mdx, elevenlabs-docs).
            state.metrics.post_call_ignored(&event.kind, reason);
            tracing::debug!(
                kind = %event.kind,
                conversation = %conversation,
                agent = data.agent_id.as_deref().unwrap_or("-"),
                reason,
                cause = %e,
                "post-call event of an agent this operator does not manage; acknowledged and ignored"
            );
            return Ok(Json(json!({"status": "ignored"})));
        }
    };
    let span = tracing::info_span!(
        "post_call",
        kind = %event.kind,
        business_id = %tenant.key.business_id,
        location_id = %tenant.key.location_id,
        conversation = %conversation,
    );
    let _entered = span.enter();
    if !state.first_delivery(&event.kind, conversation.as_str()) {
        tracing::info!("already handled; acknowledged again");
        return Ok(Json(json!({"status": "duplicate"})));
    }
    // The same name on every delivery of this event, on any replica: its
    // record's request id.
    let delivery = format!("post-call/{}/{}/{}", event.kind, tenant.key, conversation);
    let metadata = data.metadata.unwrap_or_default();
    let phone = metadata.phone_call.as_ref();
    let caller = phone.and_then(|p| p.external_number.clone());
    let mut extra = Map::new();
    extra.insert("event".into(), json!(event.kind));
    if let Some(p) = phone {
        if let Some(direction) = &p.direction {
            extra.insert("direction".into(), json!(direction));
        }
        if let Some(sid) = &p.call_sid {
            extra.insert("callSid".into(), json!(sid));
        }
    }
    match event.kind.as_str() {
        "post_call_transcription" => {
            if let Some(cost) = call_cost(&metadata, state.config.price_per_credit.as_ref()) {
                extra.insert("cost".into(), json!(cost));
            }
            if let Some(reason) = &metadata.termination_reason {
                extra.insert("terminationReason".into(), json!(reason));
            }
            if let Some(found) = data
                .analysis
                .as_ref()
                .and_then(|a| analysis_metadata(a, tenant.settings.conversation.record_calls))
            {
                extra.insert("analysis".into(), found);
            }
            if tenant.settings.conversation.record_calls {
                if let Some(summary) = data
                    .analysis
                    .as_ref()
                    .and_then(|a| a.get("transcript_summary"))
                {
                    extra.insert("summary".into(), summary.clone());
                }
                if let Some(turns) = &data.transcript {
                    let (kept, cut) = transcript(turns);
                    extra.insert("transcript".into(), kept);
                    if cut {
                        extra.insert("transcriptTruncated".into(), json!(true));
                    }
                }
            }
            state.log_call(
                &tenant.key,
                Outcome::Received {
                    external_id: Some(conversation.to_string()),
                },
                VoiceCall {
                    conversation_id: conversation.to_string(),
                    call_duration_secs: metadata.call_duration_secs.filter(|d| *d >= 0.0),
                    extra,
                },
                caller.as_deref(),
                Some(&delivery),
            );
            send_transcripts(
                &state,
                &tenant,
                &conversation,
                caller.as_deref(),
                &metadata,
                data.transcript.as_deref(),
                data.analysis.as_ref(),
            );
            end_agent_session(&state, &tenant, &conversation);
        }
        "call_initiation_failure" => {
            let reason = data
                .failure_reason
                .unwrap_or_else(|| "the call could not be started".into());
            state.log_call(
                &tenant.key,
                Outcome::failed(format!("call initiation failed: {reason}")),
                VoiceCall {
                    conversation_id: conversation.to_string(),
                    call_duration_secs: None,
                    extra,
                },
                caller.as_deref(),
                Some(&delivery),
            );
        }
        _ => keep_audio(&state, &tenant, &conversation, data.full_audio),
    }
    Ok(Json(json!({"status": "ok"})))
}

/// The call's summary and transcript to the business, when its settings
/// ask for them ([`super::transcripts`]).
fn send_transcripts(
    state: &Arc<AppState>,
    tenant: &TenantConfig,
    conversation: &Id,
    caller: Option<&str>,
    metadata: &CallMetadata,
    transcript: Option<&[TranscriptTurn]>,
    analysis: Option<&Value>,
) {
    let call = FinishedCall {
        conversation: conversation.as_str(),
        caller,
        duration_secs: metadata.call_duration_secs,
        summary: analysis
            .and_then(|a| a.get("transcript_summary"))
            .and_then(Value::as_str),
        transcript: transcript
            .unwrap_or_default()
            .iter()
            .map(|t| (t.role.as_str(), t.message.as_deref().unwrap_or_default()))
            .collect(),
    };
    super::transcripts::send_transcripts(state, tenant, &call);
}

/// What ElevenLabs' post-call analysis found (`analysis` of a
/// transcription event, `ConversationHistoryAnalysisCommonModel` in its
/// OpenAPI document; elevenlabs-docs `workflows/post-call-webhook.mdx`):
/// `callSuccessful` and each evaluation criterion's `result` (and `score`
/// when numeric) always; the collected values and the rationales, which
/// may quote the caller, only when `keep_content` (the tenant records
/// calls). The summary is the record's `summary`, kept under the same
/// rule. `None` when the event carries none of it.
fn analysis_metadata(analysis: &Value, keep_content: bool) -> Option<Value> {
    let mut found = Map::new();
    if let Some(outcome) = analysis.get("call_successful").and_then(Value::as_str) {
        found.insert("callSuccessful".into(), json!(outcome));
    }
    let results = |field: &str, kept: &[&str]| -> Option<Value> {
        let items = analysis.get(field)?.as_object()?;
        let out: Map<String, Value> = items
            .iter()
            .map(|(id, item)| {
                let fields: Map<String, Value> = kept
                    .iter()
                    .filter_map(|k| {
                        item.get(*k)
                            .filter(|v| !v.is_null())
                            .map(|v| (k.to_string(), v.clone()))
                    })
                    .collect();
                (id.clone(), Value::Object(fields))
            })
            .collect();
        (!out.is_empty()).then_some(Value::Object(out))
    };
    let criteria: &[&str] = if keep_content {
        &["result", "score", "rationale"]
    } else {
        &["result", "score"]
    };
    if let Some(criteria) = results("evaluation_criteria_results", criteria) {
        found.insert("evaluationCriteria".into(), criteria);
    }
    if keep_content
        && let Some(collected) = results("data_collection_results", &["value", "rationale"])
    {
        found.insert("dataCollection".into(), collected);
    }
    (!found.is_empty()).then_some(Value::Object(found))
}

/// What the call cost, from the charges the event reports
/// ([`cost::call_cost`] says how).
fn call_cost(metadata: &CallMetadata, per_credit: Option<&Money>) -> Option<Cost> {
    let charging = metadata.charging.as_ref();
    let charges = CallCharges {
        cost_fiat_usd: metadata.cost_fiat,
        credits: metadata.cost,
        llm_price_usd: charging.and_then(|c| c.llm_price),
        llm_charge_credits: charging.and_then(|c| c.llm_charge),
    };
    cost::call_cost(&charges, per_credit)
}

/// Ends the call's agent session in the background, so the webhook's
/// answer does not wait for the agent runtime.
fn end_agent_session(state: &Arc<AppState>, tenant: &TenantConfig, conversation: &Id) {
    let session = Session {
        session_id: conversation.to_string(),
        business_id: tenant.key.business_id.to_string(),
        location_id: tenant.key.location_id.to_string(),
        bedrock: tenant.settings.bedrock.clone(),
    };
    let state = state.clone();
    tokio::spawn(
        async move { state.runtime.end_session(&session).await }
            .instrument(tracing::Span::current()),
    );
}

/// Why an event's agent is not one this operator manages (the metric's
/// `reason` label), or `None` when the refusal is about the request
/// itself (a malformed body, a store that cannot be read).
fn not_managed(error: &ApiError) -> Option<&'static str> {
    match error {
        // No such agent, no `tenant:` tag, or no way to ask about it.
        ApiError::NotFound(_) => Some("unknown_agent"),
        // Tagged, but no tenant item: a VoiceAgent that is gone, or
        // another installation's.
        ApiError::UnknownTenant(_) => Some("unknown_tenant"),
        // The tenant's item names another agent, or the conversation was
        // another tenant's: never logged under the wrong tenant.
        ApiError::Forbidden(_) => Some("other_agent"),
        _ => None,
    }
}

/// The tenant of a post-call event: from the dynamic variables the
/// conversation-init route gave the call, else from this replica's
/// memory of the conversation, else from the agent id.
async fn resolve(
    state: &AppState,
    data: &PostCallData,
    conversation: &Id,
) -> Result<TenantConfig, ApiError> {
    let vars = data
        .conversation_initiation_client_data
        .as_ref()
        .map(|d| &d.dynamic_variables);
    let var = |name: &str| vars.and_then(|v| v.get(name)).and_then(Value::as_str);
    if let (Some(business), Some(location)) = (var("business_id"), var("location_id")) {
        let key = TenantKey::parse(business, location).map_err(|e| {
            ApiError::field(
                format!(
                    "data.conversation_initiation_client_data.dynamic_variables.{}",
                    if e.field == "businessId" {
                        "business_id"
                    } else {
                        "location_id"
                    }
                ),
                e.reason,
            )
        })?;
        let tenant = state.tenant(&key).await?;
        if let Some(seen) = state.conversation(conversation.as_str())
            && seen.tenant != key
        {
            return Err(ApiError::Forbidden(format!(
                "conversation {conversation} does not belong to {key}"
            )));
        }
        return Ok(tenant);
    }
    if let Some(seen) = state.conversation(conversation.as_str()) {
        return state.tenant(&seen.tenant).await;
    }
    match &data.agent_id {
        Some(agent) => {
            let agent = Id::parse("data.agent_id", agent)?;
            state.tenant_of_agent(&agent).await
        }
        None => Err(ApiError::field(
            "data.agent_id",
            "is required when the call has no business_id/location_id dynamic variables",
        )),
    }
}

/// The transcript as the record keeps it, cut to [`MAX_TRANSCRIPT_BYTES`]
/// of text; true when turns were left out.
fn transcript(turns: &[TranscriptTurn]) -> (Value, bool) {
    let mut kept = Vec::new();
    let mut bytes = 0;
    for turn in turns {
        let message = turn.message.as_deref().unwrap_or_default();
        bytes += message.len();
        if bytes > MAX_TRANSCRIPT_BYTES {
            return (Value::Array(kept), true);
        }
        let mut entry = json!({"role": turn.role, "message": message});
        if let Some(t) = turn.time_in_call_secs {
            entry["timeInCallSecs"] = json!(t);
        }
        kept.push(entry);
    }
    (Value::Array(kept), false)
}

/// Writes the call audio under the recordings directory when the tenant
/// records calls. In the background: ElevenLabs wants a quick 200.
fn keep_audio(state: &AppState, tenant: &TenantConfig, conversation: &Id, audio: Option<String>) {
    let (Some(dir), true, Some(audio)) = (
        state.config.recordings_dir.clone(),
        tenant.settings.conversation.record_calls,
        audio,
    ) else {
        tracing::debug!(
            "call audio not kept (recordCalls off, no recordings directory, or no audio)"
        );
        return;
    };
    let path = dir
        .join(tenant.key.business_id.as_str())
        .join(tenant.key.location_id.as_str())
        .join(format!("{conversation}.mp3"));
    tokio::spawn(
        async move {
            let bytes = match base64::engine::general_purpose::STANDARD.decode(audio.trim()) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "call audio is not base64; not kept");
                    return;
                }
            };
            let written = async {
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                tokio::fs::write(&path, &bytes).await
            }
            .await;
            match written {
                Ok(()) => tracing::info!(path = %path.display(), bytes = bytes.len(), "call audio kept"),
                Err(e) => tracing::error!(path = %path.display(), error = %e, "call audio could not be written"),
            }
        }
        .in_current_span(),
    );
}

/// ElevenLabs' conversation-initiation request for inbound calls.
#[derive(Debug, Deserialize)]
struct InitRequest {
    agent_id: String,
    #[serde(default)]
    caller_id: Option<String>,
    #[serde(default)]
    called_number: Option<String>,
    #[serde(default)]
    call_sid: Option<String>,
}

/// Answers ElevenLabs' conversation-initiation webhook. It accepts the
/// `ElevenLabs-Signature` header or, since ElevenLabs sends this one with
/// configured headers instead, `Authorization: Bearer <webhook secret>`.
pub async fn conversation_init(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if headers.contains_key(crate::elevenlabs::signature::HEADER) {
        state.verify_signature(&headers, &body)?;
    } else {
        AppState::check_bearer(
            &headers,
            &state.config.webhook_secret,
            "the conversation-init route (ElevenLabs-Signature or bearer)",
        )?;
    }
    let request: InitRequest = parse_json(&body)?;
    let agent = Id::parse("agent_id", &request.agent_id)?;
    let tenant = state.tenant_of_agent(&agent).await?;
    // A disabled tenant's call is answered like any other: its agent opens
    // with the closing sentence and the custom-LLM route repeats it. An
    // error here would make ElevenLabs fail the call without a word.
    if !tenant.settings.enabled {
        tracing::info!(
            business_id = %tenant.key.business_id,
            location_id = %tenant.key.location_id,
            "a call reached a disabled VoiceAgent's agent; it hears the closing sentence"
        );
    }
    let correlation = match &request.call_sid {
        Some(sid) => Id::parse("call_sid", sid)?.to_string(),
        None => format!("init-{}", uuid::Uuid::new_v4().simple()),
    };
    let span = tracing::info_span!(
        "conversation_init",
        business_id = %tenant.key.business_id,
        location_id = %tenant.key.location_id,
        conversation = %correlation,
    );
    span.in_scope(|| tracing::info!("inbound call"));
    state.claim_conversation(&correlation, &tenant.key)?;
    let mut vars = Map::new();
    vars.insert("business_id".into(), json!(tenant.key.business_id.as_str()));
    vars.insert("location_id".into(), json!(tenant.key.location_id.as_str()));
    if let Some(name) = &tenant.settings.business_name {
        vars.insert("business_name".into(), json!(name));
    }
    if let Some(caller) = &request.caller_id {
        vars.insert("caller_id".into(), json!(caller));
    }
    if let Some(called) = &request.called_number {
        vars.insert("called_number".into(), json!(called));
    }
    Ok(Json(json!({
        "type": "conversation_initiation_client_data",
        "dynamic_variables": vars,
        "custom_llm_extra_body": {
            "correlation_id": correlation,
            "business_id": tenant.key.business_id.as_str(),
            "location_id": tenant.key.location_id.as_str(),
        },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis() -> Value {
        json!({
            "call_successful": "success",
            "transcript_summary": "Booked for tomorrow at 10.",
            "evaluation_criteria_results": {
                "appointment_handled": {"criteria_id": "appointment_handled", "result": "success",
                    "rationale": "The caller asked for 10:00 and got it."},
            },
            "data_collection_results": {
                "appointment_date": {"data_collection_id": "appointment_date", "value": "2026-12-02",
                    "rationale": "Tomorrow, said at 0:12."},
                "new_patient": {"data_collection_id": "new_patient", "value": null, "rationale": "Not said."},
            },
        })
    }

    #[test]
    fn the_analysis_keeps_results_and_content_only_when_calls_are_recorded() {
        assert_eq!(
            analysis_metadata(&analysis(), true),
            Some(json!({
                "callSuccessful": "success",
                "evaluationCriteria": {"appointment_handled": {"result": "success",
                    "rationale": "The caller asked for 10:00 and got it."}},
                "dataCollection": {
                    "appointment_date": {"value": "2026-12-02", "rationale": "Tomorrow, said at 0:12."},
                    "new_patient": {"rationale": "Not said."},
                },
            }))
        );
        assert_eq!(
            analysis_metadata(&analysis(), false),
            Some(json!({
                "callSuccessful": "success",
                "evaluationCriteria": {"appointment_handled": {"result": "success"}},
            }))
        );
        // The empty maps of an agent without analysis leave nothing.
        let bare = json!({"evaluation_criteria_results": {}, "data_collection_results": {}});
        assert_eq!(analysis_metadata(&bare, true), None);
    }
}
