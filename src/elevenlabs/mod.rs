//! ElevenLabs: the Agents API client the controller drives (and the
//! workspace secret it keeps for the custom-LLM route), and the
//! signature check on the webhooks ElevenLabs sends us.

mod client;
mod error;
pub mod model;
pub mod signature;
pub mod spoken;

use futures::future::BoxFuture;

pub use client::{
    ClientConfig, ClientConfigError, DEFAULT_BASE_URL, ElevenLabsClient, EnsuredSecret,
    WorkspaceSecret,
};
pub use error::ElevenLabsError;
pub use model::{
    AgentPage, AgentSummary, Audio, Conversation, Deleted, DesiredAgent, ListQuery, Llm,
    PhoneImport, PhoneNumber, PhoneProvider, RemoteAgent, SipOutbound,
};

use crate::ids::Id;

/// The agent operations the controller needs, so that an offline stand-in
/// can take the real API's place.
pub trait AgentPlatform: Send + Sync {
    /// Creates an agent and returns its id.
    fn create_agent<'a>(
        &'a self,
        desired: &'a DesiredAgent,
    ) -> BoxFuture<'a, Result<Id, ElevenLabsError>>;
    fn get_agent<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<RemoteAgent, ElevenLabsError>>;
    /// Sets every managed field of the agent to `desired`.
    fn update_agent<'a>(
        &'a self,
        id: &'a Id,
        desired: &'a DesiredAgent,
    ) -> BoxFuture<'a, Result<(), ElevenLabsError>>;
    /// Deletes the agent; an agent that is already gone is not an error.
    fn delete_agent<'a>(&'a self, id: &'a Id) -> BoxFuture<'a, Result<Deleted, ElevenLabsError>>;
    /// One page of agents matching `query`.
    fn list_agents<'a>(
        &'a self,
        query: &'a ListQuery,
    ) -> BoxFuture<'a, Result<AgentPage, ElevenLabsError>>;
    /// Every phone number of the workspace (`GET /v1/convai/phone-numbers`,
    /// not paged).
    fn list_phone_numbers(&self) -> BoxFuture<'_, Result<Vec<PhoneNumber>, ElevenLabsError>>;
    /// Imports a number into the workspace, pointed at `agent` from the
    /// start (one call, so no failure can leave it imported but
    /// unassigned), and returns its id.
    fn import_phone_number<'a>(
        &'a self,
        import: &'a PhoneImport,
        agent: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<Id, ElevenLabsError>>;
    /// Points the number at `agent`, or at no agent (`agent_id: null`).
    fn assign_phone_number<'a>(
        &'a self,
        id: &'a Id,
        agent: Option<&'a Id>,
    ) -> BoxFuture<'a, Result<PhoneNumber, ElevenLabsError>>;
    /// Removes the number from the workspace; one already gone is not an error.
    fn delete_phone_number<'a>(
        &'a self,
        id: &'a Id,
    ) -> BoxFuture<'a, Result<Deleted, ElevenLabsError>>;
}
