//! The tenant configuration store (SQLite, DynamoDB) and its cache.

mod cache;
mod store;
