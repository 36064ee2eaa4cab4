//! What the unit tests, the integration tests and the benchmarks share:
//! fixtures, the ElevenLabs, Kinesis and Bedrock stand-ins, a reader of the
//! custom-LLM route's server-sent events, and the helpers for the real
//! kube-apiserver. Built only with the `testkit` feature (the tests and
//! benches turn it on), never into the shipped binary.

pub mod agent_log;
pub mod cluster;
pub mod fake_bedrock;
pub mod fake_elevenlabs;
pub mod fake_kinesis;
pub mod fixtures;
pub mod sse;
