//! `voice-operator dashboard`: a checkpointing consumer of the action log
//! into an embedded SQLite store ([`store`], [`consumer`]), the
//! aggregates over it ([`query`]), per-business read-only tokens
//! ([`tokens`]) and the JSON API with a live feed ([`api`]).

pub mod api;
pub mod consumer;
pub mod query;
pub mod store;
pub mod tokens;
