//! voice-operator: a Kubernetes operator for ElevenLabs voice agents, the
//! webhook bridge to a Bedrock Agent, and the action log of everything the
//! agent does.
//!
//! "Seed", wherever it appears here, means the original NestJS design this
//! project grew from. Its wire formats are kept so that existing clients
//! and data keep working: the seed webhook events (`message`,
//! `conversation_start`, `conversation_end`), the seed DynamoDB item of a
//! tenant, the seed admin API (`activate`, `deactivate`, `status`) and the
//! agent-log record. `docs/architecture.md` maps the modules.

pub mod actionlog;
pub mod admin;
pub mod agent;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod controller;
pub mod crd;
pub mod dashboard;
pub mod elevenlabs;
pub mod http;
pub mod ids;
pub mod local;
pub mod messaging;
pub mod retry;
pub mod sqlite;
pub mod telemetry;
pub mod tenant;
#[cfg(feature = "testkit")]
pub mod testkit;
