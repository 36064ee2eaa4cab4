//! The ElevenLabs client and webhook signatures.

mod api;
mod secrets;
mod signature;
