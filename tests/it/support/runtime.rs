//! What the agent-runtime tests share: a caller turn, a tool runner that
//! answers every call and remembers when it ran, a fake model server that
//! answers from a script, the text a runtime streamed, and a slow runtime
//! for the custom-LLM route.

use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::handler::Handler;
use tokio::sync::mpsc;
use voice_operator::agent::{AgentRuntime, Answer, ToolCall, ToolOutput, ToolRunner, Turn};

/// A phone turn of the test tenant B0100001/L0100001 in `session`.
pub fn turn(session: &str, text: &str) -> Turn {
    Turn {
        session_id: session.into(),
        business_id: "B0100001".into(),
        location_id: "L0100001".into(),
        source: "voice".into(),
        text: text.into(),
        ..Turn::default()
    }
}

/// Answers each tool with `{"result":"<function> ok"}`, after a delay if
/// given, and remembers each call with when it started and ended.
#[derive(Default)]
pub struct Tools {
    delay: Duration,
    runs: Mutex<Vec<Run>>,
}

/// One tool run as [`Tools`] saw it.
#[derive(Debug, Clone)]
pub struct Run {
    pub call: ToolCall,
    pub started: Instant,
    pub ended: Instant,
}

impl Tools {
    /// Tools that each take `delay` to answer.
    pub fn slow(delay: Duration) -> Tools {
        Tools {
            delay,
            ..Tools::default()
        }
    }

    /// The calls so far, in the order they started.
    pub fn calls(&self) -> Vec<ToolCall> {
        self.runs().into_iter().map(|r| r.call).collect()
    }

    /// The runs so far, in the order they started.
    pub fn runs(&self) -> Vec<Run> {
        let mut runs = self.runs.lock().unwrap().clone();
        runs.sort_by_key(|r| r.started);
        runs
    }
}

impl ToolRunner for Tools {
    fn run<'a>(&'a self, _turn: &'a Turn, call: &'a ToolCall) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let started = Instant::now();
            tokio::time::sleep(self.delay).await;
            self.runs.lock().unwrap().push(Run {
                call: call.clone(),
                started,
                ended: Instant::now(),
            });
            let body = format!("{{\"result\":\"{} ok\"}}", call.function);
            ToolOutput { body, ok: true }
        })
    }
}

/// A runtime that takes its time, as a model that calls tools does: it
/// notes each turn, thinks for `think`, runs `call` (when it has one)
/// through the turn's tools, and then says `says`, with what the tool
/// answered. It keeps the runtime contract: it never fails, and its words
/// go to the stream before it returns.
pub struct Slow {
    think: Duration,
    says: String,
    call: Option<ToolCall>,
    turns: Mutex<Vec<Turn>>,
}

impl Slow {
    pub fn new(think: Duration, says: &str) -> Slow {
        Slow {
            think,
            says: says.into(),
            call: None,
            turns: Mutex::new(Vec::new()),
        }
    }

    /// The same, running `function` with `parameters` once it has thought.
    pub fn calling(mut self, function: &str, parameters: &[(&str, &str)]) -> Slow {
        self.call = Some(ToolCall {
            action_group: "voice-tools".into(),
            function: function.into(),
            parameters: parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        });
        self
    }

    /// The turns it was given, in order.
    pub fn turns(&self) -> Vec<Turn> {
        self.turns.lock().unwrap().clone()
    }
}

impl AgentRuntime for Slow {
    fn answer<'a>(
        &'a self,
        turn: &'a Turn,
        tools: &'a dyn ToolRunner,
        stream: Option<mpsc::Sender<String>>,
    ) -> BoxFuture<'a, Answer> {
        self.turns.lock().unwrap().push(turn.clone());
        Box::pin(async move {
            tokio::time::sleep(self.think).await;
            let mut text = self.says.clone();
            let mut called = Vec::new();
            if let Some(call) = &self.call {
                let output = tools.run(turn, call).await;
                text = format!("{text} {}", output.body);
                called.push(call.clone());
            }
            if let Some(tx) = stream {
                let _ = tx.send(text.clone()).await;
            }
            Answer {
                text,
                tools: called,
                ..Answer::default()
            }
        })
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

/// The answer of `runtime`, bounded so that a hang fails the test instead
/// of stalling the suite.
pub async fn ask(
    runtime: &dyn AgentRuntime,
    turn: &Turn,
    tools: &Tools,
    stream: Option<mpsc::Sender<String>>,
) -> Answer {
    tokio::time::timeout(Duration::from_secs(10), runtime.answer(turn, tools, stream))
        .await
        .expect("the runtime answers within 10 s")
}

/// The answer of `runtime` to `text` in session conv_1 with tools that
/// answer at once, and every piece it streamed.
pub async fn ask_streamed(runtime: &dyn AgentRuntime, text: &str) -> (Answer, Vec<String>) {
    let (tx, rx) = mpsc::channel(16);
    let answer = ask(runtime, &turn("conv_1", text), &Tools::default(), Some(tx)).await;
    (answer, drain(rx).await)
}

/// The answer of `runtime` to `text` in session conv_1, not streamed, and
/// the tools it ran.
pub async fn ask_with_tools(runtime: &dyn AgentRuntime, text: &str) -> (Answer, Tools) {
    let tools = Tools::default();
    let answer = ask(runtime, &turn("conv_1", text), &tools, None).await;
    (answer, tools)
}

/// What a fake model server is scripted to answer, and the requests it saw.
pub struct Script<R, S> {
    replies: Vec<R>,
    /// Each request, in the order they came.
    pub seen: Vec<S>,
}

impl<R: Clone, S> Script<R, S> {
    /// Notes `request` and gives the reply scripted for it, or `past_end`
    /// once the script has run out.
    pub fn reply(&mut self, request: S, past_end: R) -> R {
        let index = self.seen.len();
        self.seen.push(request);
        self.replies.get(index).cloned().unwrap_or(past_end)
    }
}

/// The script a fake model server shares with its test.
pub type SharedScript<R, S> = Arc<Mutex<Script<R, S>>>;

/// Serves `handler` for every path on 127.0.0.1:0 with a script of
/// `replies`; the server's `http://` address and the script.
pub async fn serve_script<R, S, H, T>(replies: Vec<R>, handler: H) -> (String, SharedScript<R, S>)
where
    R: Send + 'static,
    S: Send + 'static,
    H: Handler<T, SharedScript<R, S>>,
    T: 'static,
{
    let script = Arc::new(Mutex::new(Script {
        replies,
        seen: Vec::new(),
    }));
    let app = Router::new().fallback(handler).with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, script)
}
