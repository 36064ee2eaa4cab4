//! The ElevenLabs client and webhook signatures.

mod api;
mod contract;
mod signature;
