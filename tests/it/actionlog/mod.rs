//! The action log: record schema, JSON-lines sink, Kinesis (emulator and faults), shutdown flush, `action-log tail`.

mod jsonl_sink;
mod kinesis_emulator;
mod kinesis_faults;
mod schema;
mod shutdown;
mod tail;
