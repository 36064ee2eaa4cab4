//! VoiceAgents of `local` mode: what the manifests directory says, plus
//! what an API server would add (uid, generation, finalizers, status,
//! deletion), kept in `<data-dir>/voiceagents.json` so that a restart
//! finds the agents it made. The controller reads them through a
//! kube-runtime [`Store`], exactly as in a cluster. The
//! VoiceAgentTemplates of the directory are kept beside them (uid,
//! generation, creation time; no status: `local` mode keeps no rollout
//! counts); a template that is created, edited or removed reconciles the
//! VoiceAgents that name it, as the template watch does in a cluster. The Secrets a
//! VoiceAgent names (spec.telephony.twilioSecretRef) are JSON objects of
//! strings at `<data-dir>/secrets/<namespace>/<name>.json`.

use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::Event;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::manifests::{ManifestError, Scan};
use crate::controller::Error;
use crate::controller::objects::{Objects, SecretData, finalizers};
use crate::controller::reason::Reason;
use crate::crd::{VoiceAgent, VoiceAgentStatus, VoiceAgentTemplate};

/// One VoiceAgent and where it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    object: VoiceAgent,
    file: PathBuf,
    document: usize,
}

/// One VoiceAgentTemplate and the file it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TemplateEntry {
    object: VoiceAgentTemplate,
    file: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// By `namespace/name`.
    voiceagents: BTreeMap<String, Entry>,
    /// By `namespace/name`; absent from state files written before
    /// `local` mode read templates.
    #[serde(default)]
    templates: BTreeMap<String, TemplateEntry>,
    resource_version: u64,
}

struct Inner {
    saved: Saved,
    writer: reflector::store::Writer<VoiceAgent>,
    /// An object went away; look at the directory again even if it did
    /// not change (its manifest may still be there).
    removed: bool,
}

/// What a sync did, for the log.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleting: Vec<String>,
    /// Kept as they were because their file has errors.
    pub kept: Vec<String>,
    /// Refused changes (an immutable field edited).
    pub refused: Vec<ManifestError>,
    /// VoiceAgentTemplates created, changed or removed, with what happened
    /// (`tenants/zambet-dental changed`).
    pub templates: Vec<String>,
}

/// The VoiceAgents `local` mode reconciles.
pub struct LocalObjects {
    path: PathBuf,
    inner: Mutex<Inner>,
    reader: Store<VoiceAgent>,
    triggers: mpsc::UnboundedSender<VoiceAgent>,
}

fn key_of(object: &impl ResourceExt) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

impl LocalObjects {
    /// Loads the saved state from `path`; reconcile triggers go to the
    /// receiver returned.
    pub fn open(
        path: &Path,
    ) -> anyhow::Result<(LocalObjects, mpsc::UnboundedReceiver<VoiceAgent>)> {
        let saved: Saved = super::load_state(path, "a local VoiceAgent state file")?;
        let (reader, writer) = reflector::store();
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((
            LocalObjects {
                path: path.to_owned(),
                inner: Mutex::new(Inner {
                    saved,
                    writer,
                    removed: false,
                }),
                reader,
                triggers: tx,
            },
            rx,
        ))
    }

    /// The store the controller reads.
    pub fn reader(&self) -> Store<VoiceAgent> {
        self.reader.clone()
    }

    /// Every VoiceAgent as it is now.
    pub fn all(&self) -> Vec<VoiceAgent> {
        self.lock()
            .saved
            .voiceagents
            .values()
            .map(|e| e.object.clone())
            .collect()
    }

    /// The file and document a VoiceAgent came from.
    pub fn origin(&self, va: &VoiceAgent) -> Option<(PathBuf, usize)> {
        self.lock()
            .saved
            .voiceagents
            .get(&key_of(va))
            .map(|e| (e.file.clone(), e.document))
    }

    /// Whether an object went away since the last sync (clears the flag).
    pub fn take_removed(&self) -> bool {
        std::mem::take(&mut self.lock().removed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, inner: &Inner) -> std::io::Result<()> {
        super::save_state(&self.path, &inner.saved)
    }

    /// Makes the objects match `scan`: new documents are created, changed
    /// specs get a new generation, objects whose manifest is gone are
    /// deleted (through the finalizer, as in a cluster), and objects of
    /// files with errors are kept as they were. The first sync also fills
    /// the store and marks it ready.
    pub fn sync(&self, scan: &Scan, first: bool) -> std::io::Result<Changes> {
        let mut changes = Changes::default();
        let mut triggered = Vec::new();
        let mut inner = self.lock();
        let now = Time(Timestamp::now());
        let mut present = std::collections::HashSet::new();
        // Bumped for each object written, saved with the state.
        let mut version = inner.saved.resource_version;
        for doc in &scan.documents {
            let key = key_of(&doc.object);
            present.insert(key.clone());
            match inner.saved.voiceagents.get_mut(&key) {
                Some(entry) if entry.object.metadata.deletion_timestamp.is_some() => {
                    // Being deleted; it comes back once the deletion is done.
                }
                Some(entry) => {
                    entry.file = doc.file.clone();
                    entry.document = doc.index;
                    let old = &entry.object;
                    let meta_changed = old.metadata.labels != doc.object.metadata.labels
                        || old.metadata.annotations != doc.object.metadata.annotations;
                    if old.spec == doc.object.spec && !meta_changed {
                        continue;
                    }
                    if let Some(field) = immutable_change(old, &doc.object) {
                        changes.refused.push(ManifestError {
                            file: doc.file.clone(),
                            document: doc.index,
                            field: Some(field.into()),
                            message: "is immutable; delete this VoiceAgent and create a new one to move it"
                                .into(),
                        });
                        continue;
                    }
                    let spec_changed = old.spec != doc.object.spec;
                    let object = &mut entry.object;
                    object.spec = doc.object.spec.clone();
                    object.metadata.labels = doc.object.metadata.labels.clone();
                    object.metadata.annotations = doc.object.metadata.annotations.clone();
                    if spec_changed {
                        object.metadata.generation =
                            Some(object.metadata.generation.unwrap_or(0) + 1);
                    }
                    version += 1;
                    object.metadata.resource_version = Some(version.to_string());
                    changes.updated.push(key);
                    triggered.push(object.clone());
                }
                None => {
                    let mut object = doc.object.clone();
                    object.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
                    object.metadata.generation = Some(1);
                    object.metadata.creation_timestamp = Some(now.clone());
                    version += 1;
                    object.metadata.resource_version = Some(version.to_string());
                    object.status = None;
                    inner.saved.voiceagents.insert(
                        key.clone(),
                        Entry {
                            object: object.clone(),
                            file: doc.file.clone(),
                            document: doc.index,
                        },
                    );
                    changes.created.push(key);
                    triggered.push(object);
                }
            }
        }
        inner.saved.resource_version = version;
        let templates = sync_templates(&mut inner.saved, scan, &now, &mut changes);
        let gone: Vec<String> = inner
            .saved
            .voiceagents
            .iter()
            .filter(|(key, _)| !present.contains(*key))
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            let entry = inner.saved.voiceagents.get_mut(&key).expect("listed");
            if scan.failed_files.contains(&entry.file) {
                changes.kept.push(key);
                continue;
            }
            if entry.object.metadata.deletion_timestamp.is_some() {
                continue;
            }
            entry.object.metadata.deletion_timestamp = Some(now.clone());
            changes.deleting.push(key.clone());
            if entry.object.finalizers().is_empty() {
                let entry = inner.saved.voiceagents.remove(&key).expect("listed");
                inner
                    .writer
                    .apply_watcher_event(&Event::Delete(entry.object));
            } else {
                triggered.push(entry.object.clone());
            }
        }
        if first {
            let all: Vec<VoiceAgent> = inner
                .saved
                .voiceagents
                .values()
                .map(|e| e.object.clone())
                .collect();
            inner.writer.apply_watcher_event(&Event::Init);
            for object in &all {
                inner
                    .writer
                    .apply_watcher_event(&Event::InitApply(object.clone()));
            }
            inner.writer.apply_watcher_event(&Event::InitDone);
            // Everything is looked at once at start, as after a relist.
            triggered = all;
        } else {
            // The VoiceAgents that name a template that changed look again,
            // unless they are being looked at anyway.
            let named: Vec<VoiceAgent> = inner
                .saved
                .voiceagents
                .values()
                .map(|e| &e.object)
                .filter(|va| names_any(va, &templates))
                .filter(|va| !triggered.iter().any(|t| key_of(t) == key_of(*va)))
                .cloned()
                .collect();
            triggered.extend(named);
            for object in &triggered {
                inner
                    .writer
                    .apply_watcher_event(&Event::Apply(object.clone()));
            }
        }
        self.save(&inner)?;
        drop(inner);
        for object in triggered {
            let _ = self.triggers.send(object);
        }
        Ok(changes)
    }

    fn update(
        &self,
        va: &VoiceAgent,
        change: impl FnOnce(&mut VoiceAgent),
    ) -> Result<VoiceAgent, Error> {
        let key = key_of(va);
        let mut inner = self.lock();
        inner.saved.resource_version += 1;
        let version = inner.saved.resource_version.to_string();
        let Some(entry) = inner.saved.voiceagents.get_mut(&key) else {
            return Err(gone(&key));
        };
        change(&mut entry.object);
        entry.object.metadata.resource_version = Some(version);
        let object = entry.object.clone();
        let deleted =
            object.metadata.deletion_timestamp.is_some() && object.finalizers().is_empty();
        if deleted {
            inner.saved.voiceagents.remove(&key);
            inner
                .writer
                .apply_watcher_event(&Event::Delete(object.clone()));
            inner.removed = true;
        } else {
            inner
                .writer
                .apply_watcher_event(&Event::Apply(object.clone()));
        }
        self.save(&inner).map_err(|e| {
            Error::Kube(kube::Error::Service(
                format!("cannot write {}: {e}", self.path.display()).into(),
            ))
        })?;
        Ok(object)
    }
}

/// Makes the saved templates match `scan`, as [`LocalObjects::sync`]
/// does the VoiceAgents (a template of a file with errors is kept; one
/// whose manifest is gone is removed, there is no finalizer). Returns the
/// `namespace/name` of each template created, changed or removed.
fn sync_templates(
    saved: &mut Saved,
    scan: &Scan,
    now: &Time,
    changes: &mut Changes,
) -> Vec<String> {
    let mut touched = Vec::new();
    let mut present = std::collections::HashSet::new();
    for doc in &scan.templates {
        let key = key_of(&doc.object);
        present.insert(key.clone());
        let what = match saved.templates.get_mut(&key) {
            Some(entry) => {
                entry.file = doc.file.clone();
                if entry.object.spec == doc.object.spec {
                    continue;
                }
                let object = &mut entry.object;
                object.spec = doc.object.spec.clone();
                object.metadata.generation = Some(object.metadata.generation.unwrap_or(0) + 1);
                "changed"
            }
            None => {
                let mut object = doc.object.clone();
                object.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
                object.metadata.generation = Some(1);
                object.metadata.creation_timestamp = Some(now.clone());
                object.status = None;
                let file = doc.file.clone();
                saved
                    .templates
                    .insert(key.clone(), TemplateEntry { object, file });
                "created"
            }
        };
        saved.resource_version += 1;
        let version = saved.resource_version.to_string();
        if let Some(entry) = saved.templates.get_mut(&key) {
            entry.object.metadata.resource_version = Some(version);
        }
        changes.templates.push(format!("{key} {what}"));
        touched.push(key);
    }
    saved.templates.retain(|key, entry| {
        let keep = present.contains(key) || scan.failed_files.contains(&entry.file);
        if !keep {
            changes.templates.push(format!("{key} removed"));
            touched.push(key.clone());
        }
        keep
    });
    touched
}

/// Whether `va` names one of `templates` (`namespace/name`).
fn names_any(va: &VoiceAgent, templates: &[String]) -> bool {
    va.spec.template_ref.as_ref().is_some_and(|named| {
        let key = format!("{}/{}", va.namespace().unwrap_or_default(), named.name);
        templates.contains(&key)
    })
}

fn gone(key: &str) -> Error {
    Error::Kube(kube::Error::Api(
        kube::core::Status::failure(&format!("VoiceAgent {key} is gone"), "NotFound")
            .with_code(404)
            .boxed(),
    ))
}

fn immutable_change(old: &VoiceAgent, new: &VoiceAgent) -> Option<&'static str> {
    if old.spec.business_id != new.spec.business_id {
        Some("spec.businessId")
    } else if old.spec.location_id != new.spec.location_id {
        Some("spec.locationId")
    } else {
        None
    }
}

impl Objects for LocalObjects {
    fn set_finalizer<'a>(
        &'a self,
        va: &'a VoiceAgent,
        present: bool,
    ) -> BoxFuture<'a, Result<VoiceAgent, Error>> {
        Box::pin(async move {
            let list = finalizers(va, present);
            self.update(va, |object| object.metadata.finalizers = Some(list))
        })
    }

    fn write_status<'a>(
        &'a self,
        va: &'a VoiceAgent,
        status: &'a VoiceAgentStatus,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.update(va, |object| object.status = Some(status.clone()))?;
            Ok(())
        })
    }

    /// The template of the manifests directory in `va`'s namespace; a
    /// VoiceAgent that names one that is not there is Stalled with
    /// TemplateNotFound, as in a cluster.
    fn template<'a>(
        &'a self,
        va: &'a VoiceAgent,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<VoiceAgentTemplate>, Error>> {
        let key = format!("{}/{name}", va.namespace().unwrap_or_default());
        let found = self
            .lock()
            .saved
            .templates
            .get(&key)
            .map(|e| e.object.clone());
        Box::pin(async move { Ok(found) })
    }

    fn secret<'a>(
        &'a self,
        va: &'a VoiceAgent,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SecretData>, Error>> {
        Box::pin(async move {
            let path = self
                .path
                .with_file_name("secrets")
                .join(va.namespace().unwrap_or_default())
                .join(format!("{name}.json"));
            let Some(data) = super::load_state::<Option<BTreeMap<String, String>>>(
                &path,
                "a JSON object of strings (a local Secret)",
            )
            .map_err(|e| {
                Error::Spec(crate::controller::desired::SpecError::LocalSecret(
                    e.to_string(),
                ))
            })?
            else {
                return Ok(None);
            };
            Ok(Some(
                data.into_iter()
                    .map(|(k, v)| (k, secrecy::SecretString::from(v)))
                    .collect(),
            ))
        })
    }

    fn event<'a>(
        &'a self,
        va: &'a VoiceAgent,
        type_: EventType,
        reason: Reason,
        note: String,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let voiceagent = key_of(va);
            match type_ {
                EventType::Normal => tracing::info!(%voiceagent, %reason, "{note}"),
                EventType::Warning => tracing::warn!(%voiceagent, %reason, "{note}"),
            }
        })
    }
}
