//! ElevenLabs: the Agents API client the controller drives, and the
//! signature check on the webhooks ElevenLabs sends us.

mod client;
mod error;
pub mod model;
pub mod signature;

use std::future::Future;
use std::pin::Pin;

pub use client::{ClientConfig, ClientConfigError, DEFAULT_BASE_URL, ElevenLabsClient};
pub use error::ApiError;
pub use model::{
    AgentPage, AgentSummary, Audio, Conversation, Deleted, DesiredAgent, ListQuery, Llm,
    RemoteAgent,
};

use crate::ids::Id;

/// What an [`AgentPlatform`] call returns.
pub type ApiFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// The agent operations the controller needs, so that an offline stand-in
/// can take the real API's place.
pub trait AgentPlatform: Send + Sync {
    /// Creates an agent and returns its id.
    fn create_agent<'a>(&'a self, desired: &'a DesiredAgent) -> ApiFuture<'a, Id>;
    fn get_agent<'a>(&'a self, id: &'a Id) -> ApiFuture<'a, RemoteAgent>;
    /// Sets every managed field of the agent to `desired`.
    fn update_agent<'a>(&'a self, id: &'a Id, desired: &'a DesiredAgent) -> ApiFuture<'a, ()>;
    /// Deletes the agent; an agent that is already gone is not an error.
    fn delete_agent<'a>(&'a self, id: &'a Id) -> ApiFuture<'a, Deleted>;
    /// One page of agents matching `query`.
    fn list_agents<'a>(&'a self, query: &'a ListQuery) -> ApiFuture<'a, AgentPage>;
}
