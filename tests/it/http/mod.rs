//! The bridge's HTTP routes: the ElevenLabs routes, the custom-LLM turns,
//! the admin API, mangled bodies.

mod admin;
mod cost;
mod fuzz;
mod llm;
mod routes;
