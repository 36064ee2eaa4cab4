//! The bridge's HTTP routes: the ElevenLabs routes, the custom-LLM turns,
//! the admin API, mangled bodies, transcripts sent to the business.

mod admin;
mod cost;
mod fuzz;
mod llm;
mod routes;
mod transcripts;
