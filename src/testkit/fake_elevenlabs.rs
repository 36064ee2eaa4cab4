//! A stateful stand-in for the ElevenLabs Agents API on wiremock: create,
//! get, patch, delete and paged, searchable list, with the real paths,
//! header and JSON shapes. It can fail a share of calls (500 and 429 with
//! Retry-After) and cap the request rate, as the real service does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

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
    /// Every request as "METHOD path", in arrival order.
    log: Vec<String>,
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

    /// Puts an agent in place directly, as if made earlier (or by hand).
    pub fn insert(&self, id: &str, agent: Value) {
        let mut agent = agent;
        agent["agent_id"] = json!(id);
        self.lock().agents.insert(id.to_owned(), agent);
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

fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "detail": {"status": "error", "message": message}
    }))
}

impl Respond for Handler {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let method = req.method.as_str().to_owned();
        let path = req.url.path().to_owned();
        state.log.push(format!("{method} {path}"));
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
                if made_anyway {
                    state.made_anyway += 1;
                    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                    create(&mut state, body);
                }
                return error(500, "internal error");
            }
            None => {}
        }
        let id = path.strip_prefix("/v1/convai/agents/").map(str::to_owned);
        match (method.as_str(), id.as_deref(), path.as_str()) {
            ("POST", Some("create"), _) => {
                let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                    return error(422, "body: invalid JSON");
                };
                if body["conversation_config"]["tts"]["voice_id"] == json!("nope") {
                    return error(
                        422,
                        "body.conversation_config.tts.voice_id: Voice 'nope' does not exist",
                    );
                }
                let id = create(&mut state, body);
                ResponseTemplate::new(200).set_body_json(json!({"agent_id": id}))
            }
            ("GET", None, "/v1/convai/agents") => list(&state, req),
            ("GET", Some(id), _) => match state.agents.get(id) {
                Some(agent) => ResponseTemplate::new(200).set_body_json(agent),
                None => error(404, "agent not found"),
            },
            ("PATCH", Some(id), _) => {
                let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                    return error(422, "body: invalid JSON");
                };
                match state.agents.get_mut(id) {
                    Some(agent) => {
                        merge(agent, body);
                        ResponseTemplate::new(200).set_body_json(agent.clone())
                    }
                    None => error(404, "agent not found"),
                }
            }
            ("DELETE", Some(id), _) => match state.agents.remove(id) {
                Some(_) => ResponseTemplate::new(200).set_body_json(json!({})),
                None => error(404, "agent not found"),
            },
            _ => error(404, "no such route"),
        }
    }
}

fn create(state: &mut State, mut body: Value) -> String {
    state.next_id += 1;
    state.created += 1;
    let id = format!("agent_{:06}", state.next_id);
    body["agent_id"] = json!(id);
    state.agents.insert(id.clone(), body);
    id
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
        .map(|a| json!({"agent_id": a["agent_id"], "name": a["name"], "tags": a["tags"], "created_at_unix_secs": 0}))
        .collect();
    let end = start + page.len();
    let has_more = end < matching.len();
    ResponseTemplate::new(200).set_body_json(json!({
        "agents": page,
        "has_more": has_more,
        "next_cursor": if has_more { json!(end.to_string()) } else { Value::Null },
    }))
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
