//! The integration tests, one binary: a module per area. Run one area with
//! `scripts/test.sh <area>::` (for example `scripts/test.sh controller::`).

mod actionlog;
mod agent;
mod cli;
mod controller;
mod dashboard;
mod elevenlabs;
mod http;
mod local;
mod messaging;
mod support;
mod tenant;
