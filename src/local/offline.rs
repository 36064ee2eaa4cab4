//! The offline stand-in for the ElevenLabs Agents API that `local` mode
//! uses when no ELEVENLABS_API_KEY is set: it keeps agents in a JSON file
//! under the data directory and assigns ids, so the controller logic runs
//! end to end, but no phone rings anywhere. It refuses what the real API
//! refuses on the language rule (a TTS model that cannot speak the agent's
//! language), so `local` does not accept an agent ElevenLabs would not.
//! Phone numbers live in `offline-phone-numbers.json` beside the agents
//! file: an import is recorded (no credentials are kept), an assignment
//! points the number at an agent, so `local` shows the same status as a
//! cluster.

use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use crate::elevenlabs::model::tts_model_refusal;
use crate::elevenlabs::{
    AgentPage, AgentPlatform, AgentSummary, Deleted, DesiredAgent, ElevenLabsError, ListQuery,
    PhoneImport, PhoneNumber, PhoneProvider, RemoteAgent,
};
use crate::ids::Id;

/// Agents and phone numbers kept on disk, keyed by id.
pub struct OfflinePlatform {
    path: PathBuf,
    agents: Mutex<BTreeMap<String, Value>>,
    numbers_path: PathBuf,
    numbers: Mutex<BTreeMap<String, StoredNumber>>,
}

/// One phone number of the offline workspace.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct StoredNumber {
    phone_number: String,
    label: String,
    provider: PhoneProvider,
    assigned_agent: Option<String>,
}

impl StoredNumber {
    fn public(&self, id: &str) -> Result<PhoneNumber, ElevenLabsError> {
        Ok(PhoneNumber {
            phone_number_id: Id::parse("phone_number_id", id)
                .map_err(ElevenLabsError::InvalidId)?,
            phone_number: self.phone_number.clone(),
            label: self.label.clone(),
            provider: self.provider,
            assigned_agent: self.assigned_agent.clone(),
        })
    }
}

impl OfflinePlatform {
    /// Opens (or starts) the agents file at `path`.
    pub fn open(path: &Path) -> anyhow::Result<OfflinePlatform> {
        let agents = super::load_state(path, "an offline agents file")?;
        let numbers_path = path.with_file_name("offline-phone-numbers.json");
        let numbers = super::load_state(&numbers_path, "an offline phone-numbers file")?;
        Ok(OfflinePlatform {
            path: path.to_owned(),
            agents: Mutex::new(agents),
            numbers_path,
            numbers: Mutex::new(numbers),
        })
    }

    /// How many agents it holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Value>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_numbers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, StoredNumber>> {
        self.numbers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(
        &self,
        agents: &BTreeMap<String, Value>,
        operation: &str,
    ) -> Result<(), ElevenLabsError> {
        write(&self.path, agents, operation)
    }

    fn save_numbers(
        &self,
        numbers: &BTreeMap<String, StoredNumber>,
        operation: &str,
    ) -> Result<(), ElevenLabsError> {
        write(&self.numbers_path, numbers, operation)
    }
}

fn write<T: serde::Serialize>(
    path: &Path,
    state: &T,
    operation: &str,
) -> Result<(), ElevenLabsError> {
    super::save_state(path, state).map_err(|e| ElevenLabsError::Server {
        operation: operation.to_owned(),
        status: 500,
        message: format!("offline stand-in cannot write {}: {e}", path.display()),
    })
}

/// ElevenLabs' 400 for a TTS model the agent's language cannot use.
fn check_language(desired: &DesiredAgent, operation: &str) -> Result<(), ElevenLabsError> {
    match tts_model_refusal(&desired.language, Some(&desired.tts.model_id)) {
        Some(message) => Err(ElevenLabsError::Validation {
            operation: operation.to_owned(),
            status: 400,
            message: format!("conversation_config: {message}"),
        }),
        None => Ok(()),
    }
}

fn not_found(operation: &str) -> ElevenLabsError {
    ElevenLabsError::NotFound {
        operation: operation.to_owned(),
    }
}

impl AgentPlatform for OfflinePlatform {
    fn create_agent<'a>(
        &'a self,
        desired: &'a DesiredAgent,
    ) -> BoxFuture<'a, Result<Id, ElevenLabsError>> {
        Box::pin(async move {
            check_language(desired, "create agent")?;
            let raw = format!("agent_offline_{}", uuid::Uuid::new_v4().simple());
            let id = Id::parse("agent_id", &raw).map_err(ElevenLabsError::InvalidId)?;
            let mut agents = self.lock();
            agents.insert(raw, desired.body());
            self.save(&agents, "create agent")?;
            Ok(id)
        })
    }

    fn get_agent<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<RemoteAgent, ElevenLabsError>> {
        Box::pin(async move {
            let agents = self.lock();
            let body = agents
                .get(id.as_str())
                .ok_or_else(|| not_found("get agent"))?;
            Ok(RemoteAgent {
                agent_id: id.clone(),
                name: body["name"].as_str().unwrap_or_default().to_owned(),
                tags: tags(body),
                conversation_config: body["conversation_config"].clone(),
                platform_settings: body
                    .get("platform_settings")
                    .cloned()
                    .unwrap_or(Value::Null),
            })
        })
    }

    fn update_agent<'a>(
        &'a self,
        id: &'a Id,
        desired: &'a DesiredAgent,
    ) -> BoxFuture<'a, Result<(), ElevenLabsError>> {
        Box::pin(async move {
            check_language(desired, "update agent")?;
            let mut agents = self.lock();
            let body = agents
                .get_mut(id.as_str())
                .ok_or_else(|| not_found("update agent"))?;
            *body = desired.body();
            self.save(&agents, "update agent")
        })
    }

    fn delete_agent<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<Deleted, ElevenLabsError>> {
        Box::pin(async move {
            let mut agents = self.lock();
            if agents.remove(id.as_str()).is_none() {
                return Ok(Deleted::AlreadyGone);
            }
            self.save(&agents, "delete agent")?;
            Ok(Deleted::Removed)
        })
    }

    fn list_agents<'a>(
        &'a self,
        query: &'a ListQuery,
    ) -> BoxFuture<'a, Result<AgentPage, ElevenLabsError>> {
        Box::pin(async move {
            let agents = self.lock();
            let matches = |body: &Value| match &query.search {
                Some(search) => body["name"]
                    .as_str()
                    .is_some_and(|name| name.to_lowercase().contains(&search.to_lowercase())),
                None => true,
            };
            Ok(AgentPage {
                agents: agents
                    .iter()
                    .filter(|(_, body)| matches(body))
                    .map(|(id, body)| AgentSummary {
                        agent_id: id.clone(),
                        name: body["name"].as_str().unwrap_or_default().to_owned(),
                        tags: tags(body),
                    })
                    .collect(),
                next_cursor: None,
                has_more: false,
            })
        })
    }

    fn list_phone_numbers(&self) -> BoxFuture<'_, Result<Vec<PhoneNumber>, ElevenLabsError>> {
        Box::pin(async move {
            self.lock_numbers()
                .iter()
                .map(|(id, n)| n.public(id))
                .collect()
        })
    }

    fn import_phone_number<'a>(
        &'a self,
        import: &'a PhoneImport,
        agent: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<Id, ElevenLabsError>> {
        Box::pin(async move {
            if let Some(agent) = agent
                && !self.lock().contains_key(agent.as_str())
            {
                return Err(not_found("import phone number"));
            }
            let raw = format!("phnum_offline_{}", uuid::Uuid::new_v4().simple());
            let id = Id::parse("phone_number_id", &raw).map_err(ElevenLabsError::InvalidId)?;
            let label = match import {
                PhoneImport::Twilio { label, .. } | PhoneImport::SipTrunk { label, .. } => label,
            };
            let mut numbers = self.lock_numbers();
            numbers.insert(
                raw,
                StoredNumber {
                    phone_number: import.phone_number().to_owned(),
                    label: label.clone(),
                    provider: import.provider(),
                    assigned_agent: agent.map(|a| a.as_str().to_owned()),
                },
            );
            self.save_numbers(&numbers, "import phone number")?;
            Ok(id)
        })
    }

    fn assign_phone_number<'a>(
        &'a self,
        id: &'a Id,
        agent: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<PhoneNumber, ElevenLabsError>> {
        Box::pin(async move {
            let operation = "assign phone number";
            if let Some(agent) = agent
                && !self.lock().contains_key(agent.as_str())
            {
                return Err(not_found(operation));
            }
            let mut numbers = self.lock_numbers();
            let number = numbers
                .get_mut(id.as_str())
                .ok_or_else(|| not_found(operation))?;
            number.assigned_agent = agent.map(|a| a.as_str().to_owned());
            let public = number.public(id.as_str())?;
            self.save_numbers(&numbers, operation)?;
            Ok(public)
        })
    }

    fn delete_phone_number<'a>(
        &'a self,
        id: &'a Id,
    ) -> BoxFuture<'a, Result<Deleted, ElevenLabsError>> {
        Box::pin(async move {
            let mut numbers = self.lock_numbers();
            if numbers.remove(id.as_str()).is_none() {
                return Ok(Deleted::AlreadyGone);
            }
            self.save_numbers(&numbers, "delete phone number")?;
            Ok(Deleted::Removed)
        })
    }
}

fn tags(body: &Value) -> Vec<String> {
    body["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::desired::agent;
    use crate::testkit::fixtures::{clinic, operator_settings};

    #[tokio::test]
    async fn refuses_a_tts_model_the_language_cannot_use_as_elevenlabs_does() {
        let dir = tempfile::tempdir().unwrap();
        let offline = OfflinePlatform::open(&dir.path().join("agents.json")).unwrap();
        let mut desired = agent(&clinic(), &operator_settings()).unwrap();
        let id = offline.create_agent(&desired).await.unwrap();

        desired.tts.model_id = "eleven_flash_v2".into();
        for result in [
            offline.create_agent(&desired).await.map(|_| ()),
            offline.update_agent(&id, &desired).await,
        ] {
            match result {
                Err(ElevenLabsError::Validation {
                    status, message, ..
                }) => {
                    assert_eq!(status, 400);
                    assert!(message.contains("Non-english Agents must use turbo or flash v2_5."));
                }
                other => panic!("not refused: {other:?}"),
            }
        }
        assert_eq!(offline.len(), 1);
        let kept = offline.get_agent(&id).await.unwrap();
        assert_eq!(
            kept.conversation_config["tts"]["model_id"],
            "eleven_flash_v2_5"
        );
    }

    #[tokio::test]
    async fn keeps_phone_numbers_and_their_assignment_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents.json");
        let offline = OfflinePlatform::open(&path).unwrap();
        let agent_id = offline
            .create_agent(&agent(&clinic(), &operator_settings()).unwrap())
            .await
            .unwrap();
        let import = PhoneImport::SipTrunk {
            phone_number: "+40212345678".into(),
            label: "clinic".into(),
            outbound: None,
        };
        let number = offline.import_phone_number(&import, None).await.unwrap();
        assert_eq!(
            offline.list_phone_numbers().await.unwrap()[0].assigned_agent,
            None
        );
        let assigned = offline
            .assign_phone_number(&number, Some(&agent_id))
            .await
            .unwrap();
        assert_eq!(assigned.assigned_agent.as_deref(), Some(agent_id.as_str()));
        let other = PhoneImport::SipTrunk {
            phone_number: "+40212345679".into(),
            label: "clinic".into(),
            outbound: None,
        };
        let second = offline
            .import_phone_number(&other, Some(&agent_id))
            .await
            .unwrap();
        assert_eq!(
            offline.delete_phone_number(&second).await.unwrap(),
            Deleted::Removed
        );
        let unknown = Id::parse("agent_id", "agent_nobody").unwrap();
        assert!(matches!(
            offline.assign_phone_number(&number, Some(&unknown)).await,
            Err(ElevenLabsError::NotFound { .. })
        ));

        let reopened = OfflinePlatform::open(&path).unwrap();
        let listed = reopened.list_phone_numbers().await.unwrap();
        assert_eq!(listed, [assigned]);
        reopened.assign_phone_number(&number, None).await.unwrap();
        assert_eq!(
            reopened.list_phone_numbers().await.unwrap()[0].assigned_agent,
            None
        );
        assert_eq!(
            reopened.delete_phone_number(&number).await.unwrap(),
            Deleted::Removed
        );
        assert_eq!(
            reopened.delete_phone_number(&number).await.unwrap(),
            Deleted::AlreadyGone
        );
    }
}
