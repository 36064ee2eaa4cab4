//! The controller-rs pattern: a `kube::Client` over `tower_test`'s mock
//! service, answered by a small in-memory API server for one VoiceAgent.
//! Every request lands in a [`Journal`] that the platform and store
//! wrappers share, so a test sees the whole call sequence in order.

use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use voice_operator::crd::VoiceAgent;
use voice_operator::elevenlabs::{
    AgentPage, AgentPlatform, Deleted, DesiredAgent, ElevenLabsError, ListQuery, PhoneImport,
    PhoneNumber, RemoteAgent,
};
use voice_operator::ids::Id;
use voice_operator::tenant::{
    Read, Seen, SpecGeneration, StoreError, TenantConfig, TenantKey, TenantSettings, TenantStore,
};

use super::fake_elevenlabs::merge;

/// Calls to every backend, in the order they were made.
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }

    /// How many calls so far start with `prefix`; the journal keeps them.
    pub fn count(&self, prefix: &str) -> usize {
        let entries = self.0.lock().unwrap();
        entries.iter().filter(|e| e.starts_with(prefix)).count()
    }
}

/// A client whose API server keeps `va` (and only it) in memory.
pub struct MockKube {
    pub client: Client,
    /// The object as the API server has it now.
    pub object: Arc<Mutex<Value>>,
    /// Bodies of the Events created, in order.
    pub events: Arc<Mutex<Vec<Value>>>,
    /// Bodies of the status patches, in order.
    pub status_patches: Arc<Mutex<Vec<Value>>>,
    /// Secrets of the VoiceAgent's namespace, by name.
    pub secrets: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl MockKube {
    pub fn start(va: &VoiceAgent, journal: Journal) -> MockKube {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let object = Arc::new(Mutex::new(serde_json::to_value(va).unwrap()));
        let events = Arc::new(Mutex::new(Vec::new()));
        let status_patches = Arc::new(Mutex::new(Vec::new()));
        let secrets = Arc::new(Mutex::new(BTreeMap::new()));
        let (obj, ev, st, se) = (
            object.clone(),
            events.clone(),
            status_patches.clone(),
            secrets.clone(),
        );
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let method = request.method().to_string();
                let uri = request.uri().clone();
                let body = request.into_body().collect_bytes().await.unwrap();
                let body: Value = if body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&body).unwrap()
                };
                let (status, answer) = match secret(&method, uri.path(), &se, &journal) {
                    Some(found) => found,
                    None => answer(&method, uri.path(), body, &obj, &ev, &st, &journal),
                };
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap();
                send.send_response(response);
            }
        });
        MockKube {
            client: Client::new(service, "default"),
            object,
            events,
            status_patches,
            secrets,
        }
    }

    /// Stores Secret `name` in namespace `tenants` with `data` (plain
    /// strings, base64-encoded as the API server returns them).
    pub fn put_secret(&self, name: &str, data: &[(&str, &str)]) {
        use base64::Engine;
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| {
                let encoded = base64::engine::general_purpose::STANDARD.encode(v);
                ((*k).to_owned(), json!(encoded))
            })
            .collect();
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "tenants"},
            "data": data,
        });
        self.secrets.lock().unwrap().insert(name.to_owned(), secret);
    }

    /// The object as stored now.
    pub fn current(&self) -> VoiceAgent {
        serde_json::from_value(self.object.lock().unwrap().clone()).unwrap()
    }

    /// Replaces the stored object (a user's edit).
    pub fn set(&self, va: &VoiceAgent) {
        *self.object.lock().unwrap() = serde_json::to_value(va).unwrap();
    }

    pub fn event_reasons(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

/// `GET` of a Secret in namespace `tenants`; `None` for other requests.
fn secret(
    method: &str,
    path: &str,
    secrets: &Mutex<BTreeMap<String, Value>>,
    journal: &Journal,
) -> Option<(StatusCode, Value)> {
    let name = path.strip_prefix("/api/v1/namespaces/tenants/secrets/")?;
    journal.push(format!("kube: {} secret {name}", method.to_lowercase()));
    Some(match secrets.lock().unwrap().get(name) {
        Some(found) if method == "GET" => (StatusCode::OK, found.clone()),
        _ => (
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": format!("secrets {name:?} not found")}),
        ),
    })
}

fn answer(
    method: &str,
    path: &str,
    body: Value,
    object: &Mutex<Value>,
    events: &Mutex<Vec<Value>>,
    status_patches: &Mutex<Vec<Value>>,
    journal: &Journal,
) -> (StatusCode, Value) {
    // The recorder folds a repeated event into a series on the first (a PATCH).
    let event = match method {
        "POST" if path.ends_with("/events") => Some(("create", StatusCode::CREATED)),
        "PATCH" if path.contains("/events/") => Some(("repeat", StatusCode::OK)),
        _ => None,
    };
    if let Some((verb, status)) = event {
        let reason = body["reason"].as_str().unwrap_or("?");
        journal.push(format!("kube: {verb} Event {reason}"));
        events.lock().unwrap().push(body.clone());
        return (status, body);
    }
    let mut obj = object.lock().unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
    let base = format!("/apis/voiceagents.io/v1alpha1/namespaces/tenants/voiceagents/{name}");
    let bump = |obj: &mut Value| {
        let rv: u64 = obj["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        obj["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
    };
    if method == "PATCH" && path == format!("{base}/status") {
        journal.push("kube: patch status".into());
        status_patches.lock().unwrap().push(body.clone());
        obj["status"] = body["status"].clone();
        bump(&mut obj);
        return (StatusCode::OK, obj.clone());
    }
    if method == "PATCH" && path == base {
        let mut patch = body;
        let sent_rv = patch["metadata"]["resourceVersion"].take();
        if !sent_rv.is_null() && sent_rv != obj["metadata"]["resourceVersion"] {
            journal.push("kube: patch refused (stale resourceVersion)".into());
            return (
                StatusCode::CONFLICT,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "reason": "Conflict", "code": 409, "message": "the object has been modified"}),
            );
        }
        let finalizers = patch["metadata"]["finalizers"].clone();
        journal.push(format!("kube: patch finalizers {finalizers}"));
        merge(&mut obj, patch);
        bump(&mut obj);
        return (StatusCode::OK, obj.clone());
    }
    journal.push(format!("kube: unexpected {method} {path}"));
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "reason": "NotFound", "code": 404, "message": format!("{method} {path}")}),
    )
}

/// An [`AgentPlatform`] that notes each call in the journal, then makes it.
pub struct JournaledPlatform<P> {
    pub inner: P,
    pub journal: Journal,
}

impl<P: AgentPlatform> AgentPlatform for JournaledPlatform<P> {
    fn create_agent<'a>(
        &'a self,
        desired: &'a DesiredAgent,
    ) -> BoxFuture<'a, Result<Id, ElevenLabsError>> {
        self.journal.push("elevenlabs: create agent".into());
        self.inner.create_agent(desired)
    }
    fn get_agent<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<RemoteAgent, ElevenLabsError>> {
        self.journal.push(format!("elevenlabs: get agent {id}"));
        self.inner.get_agent(id)
    }
    fn update_agent<'a>(
        &'a self,
        id: &'a Id,
        desired: &'a DesiredAgent,
    ) -> BoxFuture<'a, Result<(), ElevenLabsError>> {
        self.journal.push(format!("elevenlabs: update agent {id}"));
        self.inner.update_agent(id, desired)
    }
    fn delete_agent<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<Deleted, ElevenLabsError>> {
        self.journal.push(format!("elevenlabs: delete agent {id}"));
        self.inner.delete_agent(id)
    }
    fn list_agents<'a>(
        &'a self,
        query: &'a ListQuery,
    ) -> BoxFuture<'a, Result<AgentPage, ElevenLabsError>> {
        self.journal.push(match &query.search {
            Some(s) => format!("elevenlabs: list agents named {s:?}"),
            None => "elevenlabs: list agents".into(),
        });
        self.inner.list_agents(query)
    }
    fn list_phone_numbers(&self) -> BoxFuture<'_, Result<Vec<PhoneNumber>, ElevenLabsError>> {
        self.journal.push("elevenlabs: list phone numbers".into());
        self.inner.list_phone_numbers()
    }
    fn import_phone_number<'a>(
        &'a self,
        import: &'a PhoneImport,
        agent: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<Id, ElevenLabsError>> {
        self.journal.push(match agent {
            Some(agent) => format!(
                "elevenlabs: import phone number {} for {agent}",
                import.phone_number()
            ),
            None => format!("elevenlabs: import phone number {}", import.phone_number()),
        });
        self.inner.import_phone_number(import, agent)
    }
    fn assign_phone_number<'a>(
        &'a self,
        id: &'a Id,
        agent: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<PhoneNumber, ElevenLabsError>> {
        self.journal.push(match agent {
            Some(agent) => format!("elevenlabs: assign phone number {id} to {agent}"),
            None => format!("elevenlabs: unassign phone number {id}"),
        });
        self.inner.assign_phone_number(id, agent)
    }
    fn delete_phone_number<'a>(
        &'a self,
        id: &'a Id,
    ) -> BoxFuture<'a, Result<Deleted, ElevenLabsError>> {
        self.journal
            .push(format!("elevenlabs: delete phone number {id}"));
        self.inner.delete_phone_number(id)
    }
}

/// A [`TenantStore`] that notes each call in the journal, then makes it.
pub struct JournaledStore<S: ?Sized> {
    pub inner: Arc<S>,
    pub journal: Journal,
}

impl<S: TenantStore + ?Sized> TenantStore for JournaledStore<S> {
    fn get<'a>(
        &'a self,
        key: &'a TenantKey,
        read: Read,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, StoreError>> {
        self.journal.push(format!("store: get {key}"));
        self.inner.get(key, read)
    }
    fn put<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        settings: &'a TenantSettings,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        self.journal.push(format!("store: put {key}"));
        self.inner.put(key, owner, seen, planned, settings)
    }
    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        enabled: bool,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        self.journal
            .push(format!("store: set {key} enabled={enabled}"));
        self.inner.set_enabled(key, owner, seen, planned, enabled)
    }
    fn delete<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.journal.push(format!("store: delete {key}"));
        self.inner.delete(key, owner)
    }
}

/// A store where another writer (a new leader) writes right after the
/// next read, once: whatever the reader then plans comes from an item that
/// is already old.
pub struct WriteAfterRead<S: ?Sized> {
    pub inner: Arc<S>,
    pending: std::sync::Mutex<Option<(Id, SpecGeneration, TenantSettings)>>,
}

impl<S: ?Sized> WriteAfterRead<S> {
    pub fn new(inner: Arc<S>) -> WriteAfterRead<S> {
        WriteAfterRead {
            inner,
            pending: std::sync::Mutex::new(None),
        }
    }

    /// After the next read, `owner` writes `settings`, planned from
    /// `planned`, over what it read.
    pub fn write_after_next_read(
        &self,
        owner: Id,
        planned: SpecGeneration,
        settings: TenantSettings,
    ) {
        *self.pending.lock().unwrap() = Some((owner, planned, settings));
    }
}

impl<S: TenantStore + ?Sized> TenantStore for WriteAfterRead<S> {
    fn get<'a>(
        &'a self,
        key: &'a TenantKey,
        read: Read,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, StoreError>> {
        Box::pin(async move {
            let found = self.inner.get(key, read).await?;
            let pending = self.pending.lock().unwrap().take();
            if let Some((owner, planned, settings)) = pending {
                let seen = Seen::of(found.as_ref());
                self.inner
                    .put(key, &owner, seen, planned, &settings)
                    .await?;
            }
            Ok(found)
        })
    }
    fn put<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        settings: &'a TenantSettings,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        self.inner.put(key, owner, seen, planned, settings)
    }
    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        enabled: bool,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        self.inner.set_enabled(key, owner, seen, planned, enabled)
    }
    fn delete<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.delete(key, owner)
    }
}
