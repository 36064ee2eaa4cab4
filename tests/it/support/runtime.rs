//! What the agent-runtime tests share: a caller turn, a tool runner that
//! answers every call at once and remembers it, and the text a runtime
//! streamed.

use futures::future::BoxFuture;
use std::sync::Mutex;

use tokio::sync::mpsc;
use voice_operator::agent::{ToolCall, ToolOutput, ToolRunner, Turn};

/// A phone turn of the test tenant B0100001/L0100001 in `session`.
pub fn turn(session: &str, text: &str) -> Turn {
    Turn {
        session_id: session.into(),
        business_id: "B0100001".into(),
        location_id: "L0100001".into(),
        source: "voice".into(),
        text: text.into(),
        bedrock: None,
    }
}

/// Answers each tool with `{"result":"<function> ok"}` and remembers the calls.
#[derive(Default)]
pub struct Tools(Mutex<Vec<ToolCall>>);

impl Tools {
    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<ToolCall> {
        self.0.lock().unwrap().clone()
    }
}

impl ToolRunner for Tools {
    fn run<'a>(&'a self, _turn: &'a Turn, call: &'a ToolCall) -> BoxFuture<'a, ToolOutput> {
        self.0.lock().unwrap().push(call.clone());
        let body = format!("{{\"result\":\"{} ok\"}}", call.function);
        Box::pin(async move { ToolOutput { body, ok: true } })
    }
}

/// Every piece a runtime streamed, once it has closed the stream.
pub async fn drain(mut rx: mpsc::Receiver<String>) -> Vec<String> {
    let mut pieces = Vec::new();
    while let Some(p) = rx.recv().await {
        pieces.push(p);
    }
    pieces
}
