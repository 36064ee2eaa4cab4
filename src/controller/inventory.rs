//! Which ElevenLabs agents carry which VoiceAgent's identity.
//!
//! Creating an agent is not idempotent, so before every create the
//! reconciler must know whether one already exists for the VoiceAgent. The
//! inventory lists the workspace once per leadership term, then follows
//! every create and delete this process makes; only the leader creates, so
//! it stays complete. A create whose outcome is unknown (a timeout, a 5xx:
//! ElevenLabs may have acted) marks the owner uncertain, and that owner is
//! looked up again by name before the next attempt.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::elevenlabs::{AgentPlatform, AgentSummary, ElevenLabsError, ListQuery};
use crate::ids::Id;

use super::desired::MANAGED_TAG;

/// ElevenLabs' largest page.
const PAGE_SIZE: u32 = 100;
/// A workspace with more pages than this is not listed to the end.
const MAX_PAGES: usize = 10_000;

/// Agents by owning VoiceAgent uid.
#[derive(Debug, Default)]
pub struct Inventory {
    state: Mutex<State>,
    /// Held while the first listing runs, so concurrent reconciles wait
    /// for one listing instead of each making their own.
    loading: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    loaded: bool,
    by_owner: HashMap<String, Vec<AgentSummary>>,
    uncertain: HashSet<String>,
}

impl Inventory {
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// The agents tagged with `owner`'s uid. `name` is what a create for
    /// this owner would have been called, used when an earlier create
    /// left the outcome unknown.
    pub async fn agents_of(
        &self,
        platform: &dyn AgentPlatform,
        owner: &Id,
        name: &str,
    ) -> Result<Vec<AgentSummary>, ElevenLabsError> {
        self.ensure_loaded(platform).await?;
        let uncertain = self.lock().uncertain.contains(owner.as_str());
        if uncertain {
            let query = ListQuery {
                search: Some(name.to_owned()),
                ..ListQuery::default()
            };
            let found: Vec<AgentSummary> = list_all(platform, query)
                .await?
                .into_iter()
                .filter(|a| owner_of(a) == Some(owner.as_str()))
                .collect();
            let mut state = self.lock();
            for agent in found {
                state.add(owner.as_str(), agent);
            }
            state.uncertain.remove(owner.as_str());
        }
        Ok(self
            .lock()
            .by_owner
            .get(owner.as_str())
            .cloned()
            .unwrap_or_default())
    }

    /// Records an agent this process created for `owner`.
    pub fn created(&self, owner: &Id, agent_id: &Id, name: &str, tags: &[String]) {
        let agent = AgentSummary {
            agent_id: agent_id.to_string(),
            name: name.to_owned(),
            tags: tags.to_vec(),
        };
        self.lock().add(owner.as_str(), agent);
    }

    /// A create for `owner` failed in a way that may still have made an
    /// agent.
    pub fn uncertain(&self, owner: &Id) {
        self.lock().uncertain.insert(owner.to_string());
    }

    /// Forgets an agent that was deleted or found gone.
    pub fn removed(&self, owner: &Id, agent_id: &Id) {
        let mut state = self.lock();
        if let Some(list) = state.by_owner.get_mut(owner.as_str()) {
            list.retain(|a| a.agent_id != agent_id.as_str());
            if list.is_empty() {
                state.by_owner.remove(owner.as_str());
            }
        }
    }

    async fn ensure_loaded(&self, platform: &dyn AgentPlatform) -> Result<(), ElevenLabsError> {
        if self.lock().loaded {
            return Ok(());
        }
        let _only_one = self.loading.lock().await;
        if self.lock().loaded {
            return Ok(());
        }
        let all = list_all(platform, ListQuery::default()).await?;
        let mut state = self.lock();
        for agent in all {
            if let Some(uid) = owner_of(&agent).map(str::to_owned) {
                state.add(&uid, agent);
            }
        }
        state.loaded = true;
        tracing::info!(
            owners = state.by_owner.len(),
            "listed the ElevenLabs agents this operator manages"
        );
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Files `agent` under `owner`, once.
    fn add(&mut self, owner: &str, agent: AgentSummary) {
        let list = self.by_owner.entry(owner.to_owned()).or_default();
        if !list.iter().any(|a| a.agent_id == agent.agent_id) {
            list.push(agent);
        }
    }
}

/// The VoiceAgent uid a managed agent is tagged with.
pub fn owner_of(agent: &AgentSummary) -> Option<&str> {
    if !agent.tags.iter().any(|t| t == MANAGED_TAG) {
        return None;
    }
    agent.tags.iter().find_map(|t| t.strip_prefix("uid:"))
}

async fn list_all(
    platform: &dyn AgentPlatform,
    mut query: ListQuery,
) -> Result<Vec<AgentSummary>, ElevenLabsError> {
    query.page_size = Some(PAGE_SIZE);
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = platform.list_agents(&query).await?;
        all.extend(page.agents);
        match page.next_cursor {
            Some(cursor) if page.has_more && !cursor.is_empty() => query.cursor = Some(cursor),
            _ => return Ok(all),
        }
    }
    tracing::warn!(pages = MAX_PAGES, "stopped listing ElevenLabs agents");
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_managed_agents_have_an_owner() {
        let tagged = |tags: &[&str]| AgentSummary {
            agent_id: "a".into(),
            name: "n".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        assert_eq!(owner_of(&tagged(&["voice-operator", "uid:u1"])), Some("u1"));
        assert_eq!(owner_of(&tagged(&["uid:u1"])), None);
        assert_eq!(owner_of(&tagged(&["voice-operator"])), None);
    }
}
