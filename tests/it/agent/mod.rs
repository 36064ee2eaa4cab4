//! Agent runtimes (Bedrock, OpenAI-compatible) and the tool registry.

mod bedrock;
mod openai;
mod tools;
