//! The admin API of `local` mode: activating writes a VoiceAgent manifest
//! into the manifests directory (or rewrites the document that already
//! holds the location), deactivating sets `enabled: false` in it, status
//! reads the VoiceAgent. The directory stays the one source of truth; the
//! watcher picks the change up like any other edit.

use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use super::manifests::replace_document;
use super::objects::LocalObjects;
use crate::admin::{AdminError, AgentAdmin, owns, resource_name};
use crate::controller::objects::Objects;
use crate::crd::{VoiceAgent, VoiceAgentTemplate};
use crate::tenant::TenantKey;

/// First line of every file the admin API writes.
const HEADER: &str = "# Written by the voice-operator admin API (local mode).";

/// How long a write waits for the watcher to take it in.
const PICKUP_WAIT: Duration = Duration::from_secs(5);

pub struct DirAdmin {
    dir: PathBuf,
    namespace: String,
    objects: Arc<LocalObjects>,
    /// Wakes the watcher at once after a write.
    rescan: Arc<Notify>,
    /// One write at a time: each reads, changes and writes a whole file.
    writing: tokio::sync::Mutex<()>,
}

impl DirAdmin {
    pub fn new(
        dir: PathBuf,
        namespace: String,
        objects: Arc<LocalObjects>,
        rescan: Arc<Notify>,
    ) -> DirAdmin {
        DirAdmin {
            dir,
            namespace,
            objects,
            rescan,
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// The VoiceAgent of `key` that is not being deleted.
    fn current(&self, key: &TenantKey) -> Option<VoiceAgent> {
        self.of(key)
            .find(|va| va.metadata.deletion_timestamp.is_none())
    }

    /// Every VoiceAgent of `key`: one, or while a removed manifest is
    /// being cleaned up, also the one going away.
    fn of<'a>(&self, key: &'a TenantKey) -> impl Iterator<Item = VoiceAgent> + 'a {
        self.objects.all().into_iter().filter(|va| owns(va, key))
    }

    /// Writes `spec` (merged over the current one) as the VoiceAgent of
    /// `key`, then waits until the watcher has read it.
    async fn write(
        &self,
        key: &TenantKey,
        spec: Map<String, Value>,
    ) -> Result<VoiceAgent, AdminError> {
        let _one = self.writing.lock().await;
        let current = self.current(key);
        let (name, namespace, mut merged) = match &current {
            Some(va) => (
                va.metadata
                    .name
                    .clone()
                    .unwrap_or_else(|| resource_name(key)),
                va.metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| self.namespace.clone()),
                match serde_json::to_value(&va.spec) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                },
            ),
            None => (resource_name(key), self.namespace.clone(), Map::new()),
        };
        merged.extend(spec);
        let mut merged = Value::Object(merged);
        strip_nulls(&mut merged);
        let object = json!({
            "apiVersion": "voiceagents.io/v1alpha1",
            "kind": "VoiceAgent",
            "metadata": {"name": name, "namespace": namespace},
            "spec": merged,
        });
        let yaml = serde_saphyr::to_string(&object)
            .map_err(|e| AdminError::Internal(format!("cannot write the manifest as YAML: {e}")))?;
        let origin = current.as_ref().and_then(|va| self.objects.origin(va));
        let (path, text) = match origin {
            Some((path, document)) => {
                let old = tokio::fs::read_to_string(&path).await.map_err(|e| {
                    AdminError::Unavailable(format!("cannot read {}: {e}", path.display()))
                })?;
                let text = replace_document(&old, document, &yaml).ok_or_else(|| {
                    AdminError::Conflict(format!(
                        "{} changed while it was being edited; try again",
                        path.display()
                    ))
                })?;
                (path, text)
            }
            None => (
                self.dir.join(format!("{name}.yaml")),
                format!("{HEADER}\n{yaml}"),
            ),
        };
        let tmp = path.with_extension("yaml.tmp");
        let written = async {
            tokio::fs::write(&tmp, &text).await?;
            tokio::fs::rename(&tmp, &path).await
        };
        written.await.map_err(|e| {
            AdminError::Unavailable(format!("cannot write {}: {e}", path.display()))
        })?;
        tracing::info!(file = %path.display(), voiceagent = %format!("{namespace}/{name}"), "admin API wrote a VoiceAgent manifest");
        let want: VoiceAgent = serde_json::from_value(object).map_err(|e| AdminError::Invalid {
            field: "spec".into(),
            reason: e.to_string(),
        })?;
        let deadline = tokio::time::Instant::now() + PICKUP_WAIT;
        loop {
            self.rescan.notify_one();
            if let Some(va) = self.current(key)
                && va.spec == want.spec
            {
                return Ok(va);
            }
            if tokio::time::Instant::now() >= deadline {
                // Written but not taken in: the file has an error the
                // watcher reported, or it is slow. Say what was written.
                return Ok(want);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Drops null fields: an unset optional field is left out of a manifest.
fn strip_nulls(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}

impl AgentAdmin for DirAdmin {
    /// Reads the manifests again under the write lock rather than use
    /// `found`: a file may have changed in between.
    fn apply<'a>(
        &'a self,
        key: &'a TenantKey,
        _found: Option<&'a VoiceAgent>,
        spec: Map<String, Value>,
    ) -> BoxFuture<'a, Result<VoiceAgent, AdminError>> {
        Box::pin(self.write(key, spec))
    }

    fn find<'a>(
        &'a self,
        key: &'a TenantKey,
    ) -> BoxFuture<'a, Result<Option<VoiceAgent>, AdminError>> {
        Box::pin(async move { Ok(self.current(key).or_else(|| self.of(key).next())) })
    }

    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        enabled: bool,
    ) -> BoxFuture<'a, Result<VoiceAgent, AdminError>> {
        Box::pin(async move {
            if self.current(key).is_none() {
                return Err(AdminError::no_agent(key));
            }
            let mut spec = Map::new();
            spec.insert("enabled".into(), json!(enabled));
            self.write(key, spec).await
        })
    }

    /// The template as the local controller reads it (the manifests
    /// directory's, in `va`'s namespace).
    fn template<'a>(
        &'a self,
        va: &'a VoiceAgent,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<VoiceAgentTemplate>, AdminError>> {
        Box::pin(async move {
            Objects::template(self.objects.as_ref(), va, name)
                .await
                .map_err(|e| AdminError::Unavailable(e.to_string()))
        })
    }
}
