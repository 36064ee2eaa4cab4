//! `voice-operator dashboard`: a checkpointing consumer of the action log
//! into an embedded SQLite store ([`store`], [`consumer`]), the
//! aggregates over it ([`query`]) and the hourly and daily sums they read
//! ([`rollup`]), per-business read-only tokens
//! ([`tokens`]) and the JSON API with a live feed ([`api`]).

pub mod api;
pub mod consumer;
pub mod query;
pub mod rollup;
pub mod store;
pub mod tokens;
