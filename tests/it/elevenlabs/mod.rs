//! The ElevenLabs client, the contract its stand-in enforces, workspace
//! secrets, phone numbers and webhook signatures.

mod api;
mod contract;
mod phone_numbers;
mod secrets;
mod signature;
