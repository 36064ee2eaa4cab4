//! A stateful stand-in for the ElevenLabs Agents API on wiremock: create,
//! get, patch, delete and paged, searchable list, with the real paths,
//! header and JSON shapes. It holds requests to ElevenLabs' published
//! contract, the OpenAPI document in `shared/fixtures/elevenlabs/`: each
//! agent body is validated against its operation's request schema (422
//! with FastAPI's `detail` list when it fails), the server's language rule
//! is enforced (400), and answers are shaped like the response models. It
//! can fail a share of calls (500 and 429 with Retry-After) and cap the
//! request rate, as the real service does. Phone numbers
//! (`/v1/convai/phone-numbers`) are listed, imported, assigned and deleted
//! the same way: import bodies against the provider's create schema,
//! PATCH bodies against `UpdatePhoneNumberRequest`, answers shaped like
//! `GetPhoneNumber*ResponseModel` with `assigned_agent`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::elevenlabs::model::tts_model_refusal;

pub const API_KEY: &str = "xi-test-key";

/// How the fake misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share of calls (0.0 to 1.0) answered with 500 or 429.
    pub fail_ratio: f64,
    /// Which failures: both kinds (half each), or one only.
    pub kinds: FaultKinds,
    /// Requests per second served; beyond it, 429 with `Retry-After: 1`.
    pub rate_limit: Option<f64>,
    /// Seed of the fault dice, so a failing run can be repeated.
    pub seed: u64,
    /// Dotted paths (`platform_settings.privacy.retention_days`) the API
    /// accepts but does not keep: removed from every agent created or
    /// PATCHed, as pydantic drops a field its model does not know.
    pub drop_fields: Vec<String>,
    /// How long every answer takes, as a slow API's would; each request
    /// is then in flight at least this long from its arrival.
    pub latency: Option<std::time::Duration>,
}

/// The failures [`Faults::fail_ratio`] draws from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FaultKinds {
    #[default]
    Both,
    Only429,
    Only500,
}

#[derive(Debug, Default)]
struct State {
    agents: BTreeMap<String, Value>,
    next_id: u64,
    /// Phone numbers by id, as the `GetPhoneNumber*ResponseModel`s have them.
    numbers: BTreeMap<String, Value>,
    next_number: u64,
    /// Every request as "METHOD path", in arrival order.
    log: Vec<String>,
    /// The same, with the time each arrived.
    arrivals: Vec<(Instant, String)>,
    created: u64,
    /// Creates answered with 500 although the agent was made.
    made_anyway: u64,
    failed: u64,
    throttled: u64,
    bucket: Option<Bucket>,
    dice: Option<fastrand::Rng>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate)
            .min(self.rate.max(1.0));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The running fake.
pub struct FakeElevenLabs {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
    faults: Faults,
}

impl FakeElevenLabs {
    pub async fn start(faults: Faults) -> FakeElevenLabs {
        let state = Arc::new(Mutex::new(State {
            bucket: faults.rate_limit.map(|rate| Bucket {
                rate,
                tokens: rate.max(1.0),
                at: Instant::now(),
            }),
            dice: Some(fastrand::Rng::with_seed(faults.seed)),
            ..State::default()
        }));
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Handler {
                state: state.clone(),
                faults: faults.clone(),
            })
            .mount(&server)
            .await;
        FakeElevenLabs {
            server,
            state,
            faults,
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every agent that exists, by id.
    pub fn agents(&self) -> BTreeMap<String, Value> {
        self.lock().agents.clone()
    }

    /// Puts an agent in place directly, as if made earlier (or by hand),
    /// filled out to the response model's required fields.
    pub fn insert(&self, id: &str, agent: Value) {
        let agent = stored(id, agent);
        self.lock().agents.insert(id.to_owned(), agent);
    }

    /// Every phone number of the workspace, by id, as GET answers it.
    pub fn phone_numbers(&self) -> BTreeMap<String, Value> {
        self.lock().numbers.clone()
    }

    /// Puts a Twilio number in the workspace directly, as if imported by
    /// hand, assigned to `agent` when given; returns its id.
    pub fn insert_phone_number(&self, number: &str, agent: Option<&str>) -> String {
        let mut state = self.lock();
        let id = import(
            &mut state,
            &json!({"provider": "twilio", "phone_number": number, "label": number}),
        );
        let assigned = agent.map(|a| agent_info(&state, a));
        state.numbers.get_mut(&id).expect("just made")["assigned_agent"] = json!(assigned);
        id
    }

    /// Deletes an agent behind the operator's back.
    pub fn remove(&self, id: &str) {
        self.lock().agents.remove(id);
    }

    /// Changes one agent as someone would in the dashboard.
    pub fn edit(&self, id: &str, edit: impl FnOnce(&mut Value)) {
        let mut state = self.lock();
        edit(state.agents.get_mut(id).expect("agent exists"));
    }

    /// Requests served so far, "METHOD path" each, and forgets them.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().log)
    }

    /// Every request so far ("METHOD path") with the time it arrived, and
    /// forgets them.
    pub fn take_arrivals(&self) -> Vec<(Instant, String)> {
        std::mem::take(&mut self.lock().arrivals)
    }

    /// Agents created, calls failed on purpose, calls throttled.
    pub fn counts(&self) -> (u64, u64, u64) {
        let s = self.lock();
        (s.created, s.failed, s.throttled)
    }

    /// Creates that failed with 500 after making the agent.
    pub fn made_anyway(&self) -> u64 {
        self.lock().made_anyway
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Stops failing calls on purpose (the rate limit stays).
    pub fn heal(&self) {
        self.lock().dice = None;
    }
}

struct Handler {
    state: Arc<Mutex<State>>,
    faults: Faults,
}

/// ElevenLabs' error shape outside validation: `detail.status`, `detail.message`.
fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "detail": {"status": "error", "message": message}
    }))
}

/// FastAPI's refusal, `{"detail": [ValidationError, ...]}`
/// (`HTTPValidationError` in the OpenAPI document).
struct Refusal {
    status: u16,
    detail: Vec<Value>,
}

fn refused(status: u16, detail: Vec<Value>) -> Refusal {
    Refusal { status, detail }
}

impl Refusal {
    fn answer(self) -> ResponseTemplate {
        ResponseTemplate::new(self.status).set_body_json(json!({ "detail": self.detail }))
    }
}

impl Respond for Handler {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let answer = self.answer(req);
        match self.faults.latency {
            Some(latency) => answer.set_delay(latency),
            None => answer,
        }
    }
}

impl Handler {
    fn answer(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let method = req.method.as_str().to_owned();
        let path = req.url.path().to_owned();
        state.log.push(format!("{method} {path}"));
        state
            .arrivals
            .push((Instant::now(), format!("{method} {path}")));
        if req.headers.get("xi-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
            return error(401, "Invalid API key");
        }
        if let Some(bucket) = state.bucket.as_mut()
            && !bucket.take()
        {
            state.throttled += 1;
            return error(429, "Too many requests").insert_header("retry-after", "1");
        }
        let creating = method == "POST" && path == "/v1/convai/agents/create";
        let fault = state.dice.as_mut().and_then(|dice| {
            (dice.f64() < self.faults.fail_ratio).then(|| match self.faults.kinds {
                FaultKinds::Both => dice.bool(),
                FaultKinds::Only429 => true,
                FaultKinds::Only500 => false,
            })
        });
        match fault {
            Some(true) => {
                state.failed += 1;
                return error(429, "system busy").insert_header("retry-after", "1");
            }
            Some(false) => {
                state.failed += 1;
                // A 500 on create sometimes comes after the agent was made:
                // the answer is lost, the agent is not.
                let made_anyway = creating && state.dice.as_mut().is_some_and(|d| d.bool());
                if made_anyway && let Ok(body) = checked_create(&req.body) {
                    state.made_anyway += 1;
                    create(&mut state, body, &self.faults.drop_fields);
                }
                return error(500, "internal error");
            }
            None => {}
        }
        if let Some(rest) = path.strip_prefix("/v1/convai/phone-numbers") {
            return phone_numbers(&mut state, &method, rest, &req.body);
        }
        let id = path.strip_prefix("/v1/convai/agents/").map(str::to_owned);
        match (method.as_str(), id.as_deref(), path.as_str()) {
            ("POST", Some("create"), _) => match checked_create(&req.body) {
                Ok(body) => {
                    let id = create(&mut state, body, &self.faults.drop_fields);
                    // CreateAgentResponseModel
                    ok(json!({"agent_id": id}))
                }
                Err(refusal) => refusal.answer(),
            },
            ("GET", None, "/v1/convai/agents") => list(&state, req),
            ("GET", Some(id), _) => match state.agents.get(id) {
                // GetAgentResponseModel, as stored by `stored`.
                Some(agent) => ok(agent.clone()),
                None => error(404, "agent not found"),
            },
            ("PATCH", Some(id), _) => {
                let patch = match parse_body(&req.body, PATCH_BODY) {
                    Ok(patch) => patch,
                    Err(refusal) => return refusal.answer(),
                };
                let Some(agent) = state.agents.get_mut(id) else {
                    return error(404, "agent not found");
                };
                let mut merged = agent.clone();
                merge(&mut merged, patch);
                // The PATCH schema takes any object for these two; the
                // server validates the merged agent with the create-side
                // models instead (see the module comment).
                let detail: Vec<Value> = [
                    ("conversation_config", CONVERSATION_CONFIG),
                    ("platform_settings", PLATFORM_SETTINGS),
                ]
                .into_iter()
                .flat_map(|(field, schema)| {
                    violations(schema, &merged[field], &[json!("body"), json!(field)])
                })
                .collect();
                if !detail.is_empty() {
                    return refused(422, detail).answer();
                }
                if let Err(refusal) = language_rule(&merged) {
                    return refusal.answer();
                }
                merged["metadata"]["updated_at_unix_secs"] = json!(now());
                drop_fields(&mut merged, &self.faults.drop_fields);
                *agent = stored(id, merged);
                // GetAgentResponseModel, as GET answers.
                ok(agent.clone())
            }
            ("DELETE", Some(id), _) => match state.agents.remove(id) {
                Some(_) => ResponseTemplate::new(200).set_body_json(json!({})),
                None => error(404, "agent not found"),
            },
            _ => ResponseTemplate::new(404).set_body_json(json!({"detail": "Not Found"})),
        }
    }
}

/// Request body of a Twilio import, `POST /v1/convai/phone-numbers`.
pub const CREATE_TWILIO_NUMBER: &str = "CreateTwilioPhoneNumberRequest";
/// Request body of a SIP-trunk import.
pub const CREATE_SIP_TRUNK_NUMBER: &str = "CreateSIPTrunkPhoneNumberRequestV2";
/// Request body of `PATCH /v1/convai/phone-numbers/{phone_number_id}`.
pub const UPDATE_NUMBER: &str = "UpdatePhoneNumberRequest";

/// The phone-number routes; `rest` is the path after `/v1/convai/phone-numbers`.
fn phone_numbers(state: &mut State, method: &str, rest: &str, raw: &[u8]) -> ResponseTemplate {
    let id = rest.strip_prefix('/').filter(|id| !id.is_empty());
    match (method, id) {
        // An array of GetPhoneNumber*ResponseModel, not paged.
        ("GET", None) => ok(json!(state.numbers.values().collect::<Vec<_>>())),
        ("POST", None) => {
            let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
            // The body is an anyOf of the providers' create requests; the
            // `provider` const (default `twilio`) picks the one that applies.
            let schema = match body["provider"].as_str() {
                Some("sip_trunk") => CREATE_SIP_TRUNK_NUMBER,
                _ => CREATE_TWILIO_NUMBER,
            };
            let body = match parse_body(raw, schema) {
                Ok(body) => body,
                Err(refusal) => return refusal.answer(),
            };
            let number = body["phone_number"].as_str().unwrap_or_default();
            if state.numbers.values().any(|n| n["phone_number"] == number) {
                return error(400, "Phone number already exists in the workspace");
            }
            let id = import(state, &body);
            // CreatePhoneNumberResponseModel
            ok(json!({"phone_number_id": id}))
        }
        ("GET", Some(id)) => match state.numbers.get(id) {
            Some(number) => ok(number.clone()),
            None => error(404, "phone number not found"),
        },
        ("PATCH", Some(id)) => {
            let patch = match parse_body(raw, UPDATE_NUMBER) {
                Ok(patch) => patch,
                Err(refusal) => return refusal.answer(),
            };
            if !state.numbers.contains_key(id) {
                return error(404, "phone number not found");
            }
            if let Some(agent) = patch.get("agent_id") {
                let assigned = match agent.as_str() {
                    Some(agent) if !state.agents.contains_key(agent) => {
                        return error(404, "agent not found");
                    }
                    Some(agent) => json!(agent_info(state, agent)),
                    None => Value::Null,
                };
                state.numbers.get_mut(id).expect("checked")["assigned_agent"] = assigned;
            }
            ok(state.numbers[id].clone())
        }
        ("DELETE", Some(id)) => match state.numbers.remove(id) {
            Some(_) => ok(json!({})),
            None => error(404, "phone number not found"),
        },
        _ => ResponseTemplate::new(404).set_body_json(json!({"detail": "Not Found"})),
    }
}

/// Stores an imported number as its provider's response model has it.
fn import(state: &mut State, body: &Value) -> String {
    state.next_number += 1;
    let id = format!("phnum_{:06}", state.next_number);
    let provider = body["provider"].as_str().unwrap_or("twilio");
    let mut number = json!({
        "phone_number_id": id,
        "phone_number": body["phone_number"],
        "label": body["label"],
        "provider": provider,
        "supports_inbound": true,
        "supports_outbound": true,
        "assigned_agent": body.get("agent_id").and_then(Value::as_str).map(|a| agent_info(state, a)),
    });
    if provider == "sip_trunk" {
        number["livekit_stack"] = json!("standard");
        if let Some(out) = body.get("outbound_trunk_config").filter(|o| o.is_object()) {
            number["outbound_trunk"] = json!({
                "address": out["address"],
                "transport": out.get("transport").cloned().unwrap_or(json!("auto")),
                "media_encryption": out.get("media_encryption").cloned().unwrap_or(json!("allowed")),
                "has_auth_credentials": false,
            });
        }
    }
    state.numbers.insert(id.clone(), number);
    id
}

/// `PhoneNumberAgentInfo` for `agent`.
fn agent_info(state: &State, agent: &str) -> Value {
    let name = state
        .agents
        .get(agent)
        .and_then(|a| a["name"].as_str())
        .unwrap_or("");
    json!({"agent_id": agent, "agent_name": name})
}

/// Request body of `POST /v1/convai/agents/create`.
pub const CREATE_BODY: &str = "Body_Create_Agent_v1_convai_agents_create_post";
/// Request body of `PATCH /v1/convai/agents/{agent_id}`.
pub const PATCH_BODY: &str = "Body_Patches_an_Agent_settings_v1_convai_agents__agent_id__patch";
/// What a PATCHed agent's `conversation_config` must be.
pub const CONVERSATION_CONFIG: &str = "ConversationalConfigAPIModel-Input";
/// What a PATCHed agent's `platform_settings` must be.
pub const PLATFORM_SETTINGS: &str = "AgentPlatformSettingsRequestModel";

/// The body of a create, or the refusal the real API would answer.
fn checked_create(raw: &[u8]) -> Result<Value, Refusal> {
    let body = parse_body(raw, CREATE_BODY)?;
    // A server-side check the tests use for "ElevenLabs refused it".
    if body["conversation_config"]["tts"]["voice_id"] == json!("nope") {
        return Err(refused(
            422,
            vec![json!({
                "type": "value_error",
                "loc": ["body", "conversation_config", "tts", "voice_id"],
                "msg": "Voice 'nope' does not exist",
            })],
        ));
    }
    language_rule(&body)?;
    Ok(body)
}

/// The JSON body, valid against `schema`, or FastAPI's 422.
fn parse_body(raw: &[u8], schema: &str) -> Result<Value, Refusal> {
    let body: Value = serde_json::from_slice(raw).map_err(|e| {
        refused(
            422,
            vec![json!({"type": "json_invalid", "loc": ["body", e.column()],
                        "msg": "JSON decode error", "ctx": {"error": e.to_string()}})],
        )
    })?;
    let detail = violations(schema, &body, &[json!("body")]);
    if detail.is_empty() {
        Ok(body)
    } else {
        Err(refused(422, detail))
    }
}

/// ElevenLabs' rule on language and TTS model, which the schema does not
/// carry: 400 with the server's own message.
fn language_rule(agent: &Value) -> Result<(), Refusal> {
    let config = &agent["conversation_config"];
    let language = config["agent"]["language"].as_str().unwrap_or("en");
    match tts_model_refusal(language, config["tts"]["model_id"].as_str()) {
        Some(message) => Err(refused(
            400,
            vec![
                json!({"type": "value_error", "loc": ["body", "conversation_config"], "msg": message}),
            ],
        )),
        None => Ok(()),
    }
}

/// A 200 answer. Each is shaped like its response model (named at each
/// call); `tests/it/elevenlabs/contract.rs` validates them against it.
fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn create(state: &mut State, mut body: Value, drop: &[String]) -> String {
    state.next_id += 1;
    state.created += 1;
    let id = format!("agent_{:06}", state.next_id);
    drop_fields(&mut body, drop);
    state.agents.insert(id.clone(), stored(&id, body));
    id
}

/// Removes each dotted path of `paths` from `agent`, where present.
fn drop_fields(agent: &mut Value, paths: &[String]) {
    for path in paths {
        let (parent, field) = path.rsplit_once('.').unwrap_or(("", path));
        let mut at = Some(&mut *agent);
        for key in parent.split('.').filter(|k| !k.is_empty()) {
            at = at.and_then(|v| v.get_mut(key));
        }
        if let Some(Value::Object(map)) = at {
            map.remove(field);
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An agent as `GetAgentResponseModel` has it: the request's fields, with
/// `agent_id`, `metadata` and the objects the API fills in when left out.
fn stored(id: &str, mut agent: Value) -> Value {
    if !agent.is_object() {
        agent = json!({});
    }
    agent["agent_id"] = json!(id);
    if !agent["name"].is_string() {
        agent["name"] = json!("");
    }
    if !agent["tags"].is_array() {
        agent["tags"] = json!([]);
    }
    for field in ["conversation_config", "platform_settings"] {
        if !agent[field].is_object() {
            agent[field] = json!({});
        }
    }
    if !agent["metadata"].is_object() {
        let at = now();
        agent["metadata"] = json!({"created_at_unix_secs": at, "updated_at_unix_secs": at});
    }
    agent
}

fn list(state: &State, req: &Request) -> ResponseTemplate {
    let param = |name: &str| {
        req.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let search = param("search").map(|s| s.to_lowercase());
    let size: usize = param("page_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let start: usize = param("cursor").and_then(|s| s.parse().ok()).unwrap_or(0);
    let matching: Vec<&Value> = state
        .agents
        .values()
        .filter(|a| match &search {
            Some(s) => a["name"].as_str().unwrap_or("").to_lowercase().contains(s),
            None => true,
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(size)
        .map(|a| summary(a))
        .collect();
    let end = start + page.len();
    let has_more = end < matching.len();
    // GetAgentsPageResponseModel
    ok(json!({
        "agents": page,
        "has_more": has_more,
        "next_cursor": if has_more { json!(end.to_string()) } else { Value::Null },
    }))
}

/// A list entry, `AgentSummaryResponseModel`.
fn summary(agent: &Value) -> Value {
    json!({
        "agent_id": agent["agent_id"],
        "name": agent["name"],
        "tags": agent["tags"],
        "created_at_unix_secs": agent["metadata"]["created_at_unix_secs"],
        "access_info": {
            "is_creator": true,
            "creator_name": "voice-operator",
            "creator_email": "operator@example.com",
            "role": "admin",
        },
        "last_call_time_unix_secs": null,
        "archived": false,
    })
}

/// ElevenLabs' OpenAPI document, read once.
static OPENAPI: LazyLock<Value> = LazyLock::new(|| {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/elevenlabs/openapi.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the ElevenLabs contract {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the ElevenLabs contract {path}: {e}"))
});

/// One validator per schema, compiled on first use.
static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
    LazyLock::new(Mutex::default);

fn validator(schema: &str) -> Arc<jsonschema::Validator> {
    let mut validators = VALIDATORS.lock().unwrap_or_else(|p| p.into_inner());
    validators
        .entry(schema.to_owned())
        .or_insert_with(|| {
            let components = &OPENAPI["components"];
            assert!(
                components["schemas"].get(schema).is_some(),
                "no schema {schema} in the ElevenLabs contract"
            );
            // References resolve against the whole document, so recursive
            // schemas (ASTNode-Input, ...) need no inlining.
            let root =
                json!({"$ref": format!("#/components/schemas/{schema}"), "components": components});
            Arc::new(
                jsonschema::draft202012::new(&root)
                    .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}")),
            )
        })
        .clone()
}

/// What is wrong with `instance` as the OpenAPI document's `schema`, as
/// FastAPI's `ValidationError` entries whose `loc` starts with `loc`;
/// empty when it is valid.
pub fn violations(schema: &str, instance: &Value, loc: &[Value]) -> Vec<Value> {
    let validator = validator(schema);
    validator
        .iter_errors(instance)
        .map(|e| {
            let mut at: Vec<Value> = loc.to_vec();
            at.extend((&e.instance_path).into_iter().map(|segment| match segment {
                LocationSegment::Property(p) => json!(p),
                LocationSegment::Index(i) => json!(i),
            }));
            // pydantic's error types and messages for the common cases.
            let (kind, msg) = match &e.kind {
                ValidationErrorKind::Required { property } => {
                    at.push(property.clone());
                    ("missing".to_owned(), "Field required".to_owned())
                }
                ValidationErrorKind::Type {
                    kind: TypeKind::Single(t),
                } => {
                    let (kind, name) = match t.to_string().as_str() {
                        "string" => ("string_type", "a valid string"),
                        "integer" => ("int_type", "a valid integer"),
                        "number" => ("float_type", "a valid number"),
                        "boolean" => ("bool_type", "a valid boolean"),
                        "array" => ("list_type", "a valid list"),
                        "object" => ("dict_type", "a valid dictionary"),
                        _ => ("value_error", "of another type"),
                    };
                    (kind.to_owned(), format!("Input should be {name}"))
                }
                ValidationErrorKind::Enum { options } => {
                    let options: Vec<String> = options
                        .as_array()
                        .map(|o| {
                            o.iter()
                                .map(|v| format!("'{}'", v.as_str().unwrap_or_default()))
                                .collect()
                        })
                        .unwrap_or_default();
                    (
                        "enum".to_owned(),
                        format!("Input should be {}", options.join(", ")),
                    )
                }
                ValidationErrorKind::Minimum { limit } => (
                    "greater_than_equal".to_owned(),
                    format!("Input should be greater than or equal to {limit}"),
                ),
                ValidationErrorKind::Maximum { limit } => (
                    "less_than_equal".to_owned(),
                    format!("Input should be less than or equal to {limit}"),
                ),
                ValidationErrorKind::MaxLength { limit } => (
                    "string_too_long".to_owned(),
                    format!("String should have at most {limit} characters"),
                ),
                _ => ("value_error".to_owned(), e.to_string()),
            };
            json!({"type": kind, "loc": at, "msg": msg, "input": e.instance})
        })
        .collect()
}

/// JSON merge patch (RFC 7386): how PATCH treats nested objects, here and
/// in the mocked Kubernetes API.
pub fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    merge(t.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}
