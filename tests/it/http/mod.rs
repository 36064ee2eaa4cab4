//! The bridge's HTTP routes: the ElevenLabs routes, the admin API, mangled bodies.

mod admin;
mod fuzz;
mod routes;
