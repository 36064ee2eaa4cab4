//! The ElevenLabs client, the contract its stand-in enforces, workspace
//! secrets and webhook signatures.

mod api;
mod contract;
mod secrets;
mod signature;
