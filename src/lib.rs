//! voice-operator: a Kubernetes operator for ElevenLabs voice agents, the
//! webhook bridge to a Bedrock Agent, and the action log of everything the
//! agent does.

pub mod actionlog;
pub mod admin;
pub mod agent;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod controller;
pub mod crd;
pub mod elevenlabs;
pub mod http;
pub mod ids;
pub mod local;
pub mod messaging;
pub mod retry;
pub mod telemetry;
pub mod tenant;
#[cfg(feature = "testkit")]
pub mod testkit;
