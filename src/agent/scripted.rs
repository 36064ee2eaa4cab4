//! A deterministic stand-in for the agent, for `local` mode and tests. It
//! does not understand anything: it matches a few keywords, calls the
//! matching tool and says what it did. Named so that nobody mistakes it for
//! a model.

use futures::future::BoxFuture;
use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::{AgentRuntime, Answer, ToolCall, ToolRunner, Turn};

/// Keyword rules, first match wins; no match echoes the turn back.
#[derive(Debug, Default, Clone)]
pub struct ScriptedRuntime;

impl ScriptedRuntime {
    /// The tool a turn's words ask for, if any.
    pub fn tool_for(text: &str) -> Option<ToolCall> {
        let lower = text.to_lowercase();
        let call = |function: &str, params: &[(&str, &str)]| ToolCall {
            action_group: "voice-tools".into(),
            function: function.into(),
            parameters: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        };
        if lower.contains("book") || lower.contains("programare") {
            // Whatever looks like a date (YYYY-MM-DD) or a time (HH:MM) in
            // the words; the app server refuses a booking without them.
            let word = |ok: fn(&str) -> bool| {
                text.split(|c: char| c.is_whitespace() || c == ',')
                    .find(|w| ok(w))
                    .unwrap_or_default()
            };
            let date = word(|w| {
                w.len() == 10
                    && w.chars().enumerate().all(|(i, c)| {
                        if i == 4 || i == 7 {
                            c == '-'
                        } else {
                            c.is_ascii_digit()
                        }
                    })
            });
            let time = word(|w| {
                w.len() == 5
                    && w.chars()
                        .enumerate()
                        .all(|(i, c)| if i == 2 { c == ':' } else { c.is_ascii_digit() })
            });
            Some(call(
                "create_appointment",
                &[
                    ("date", date),
                    ("time", time),
                    ("customerName", "caller"),
                    ("notes", text),
                ],
            ))
        } else if lower.contains("available") || lower.contains("liber") {
            Some(call("query_app_server", &[("query", text)]))
        } else {
            None
        }
    }
}

impl AgentRuntime for ScriptedRuntime {
    fn answer<'a>(
        &'a self,
        turn: &'a Turn,
        tools: &'a dyn ToolRunner,
        stream: Option<mpsc::Sender<String>>,
    ) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let mut called = Vec::new();
            let text = match Self::tool_for(&turn.text) {
                Some(call) => {
                    let output = tools.run(turn, &call).await;
                    let said = if output.ok {
                        format!("[scripted agent] {} done: {}", call.function, output.body)
                    } else {
                        format!("[scripted agent] {} failed: {}", call.function, output.body)
                    };
                    called.push(call);
                    said
                }
                None => format!("[scripted agent] You said: {}", turn.text),
            };
            if let Some(tx) = stream {
                // Word by word, so that streaming consumers see several chunks.
                for (i, word) in text.split(' ').enumerate() {
                    let piece = if i == 0 {
                        word.to_owned()
                    } else {
                        format!(" {word}")
                    };
                    if tx.send(piece).await.is_err() {
                        break;
                    }
                }
            }
            Answer {
                text,
                tools: called,
                fallback: false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ToolOutput;

    struct Echo;

    impl ToolRunner for Echo {
        fn run<'a>(&'a self, _: &'a Turn, call: &'a ToolCall) -> BoxFuture<'a, ToolOutput> {
            let body = format!("{} ran", call.function);
            Box::pin(async move { ToolOutput { body, ok: true } })
        }
    }

    fn turn(text: &str) -> Turn {
        Turn {
            session_id: "s".into(),
            business_id: "B1".into(),
            location_id: "L1".into(),
            source: "voice".into(),
            text: text.into(),
            bedrock: None,
        }
    }

    #[tokio::test]
    async fn keywords_pick_a_tool_and_the_answer_is_streamed_word_by_word() {
        let (tx, mut rx) = mpsc::channel(64);
        let answer = ScriptedRuntime
            .answer(&turn("I want to book a cleaning"), &Echo, Some(tx))
            .await;
        assert_eq!(answer.tools.len(), 1);
        assert_eq!(answer.tools[0].function, "create_appointment");
        assert_eq!(
            answer.text,
            "[scripted agent] create_appointment done: create_appointment ran"
        );
        let mut pieces = Vec::new();
        while let Some(p) = rx.recv().await {
            pieces.push(p);
        }
        assert!(pieces.len() > 3);
        assert_eq!(pieces.concat(), answer.text);
        let booked = ScriptedRuntime
            .answer(&turn("book 2026-12-01 at 10:30, please"), &Echo, None)
            .await;
        let params = &booked.tools[0].parameters;
        assert_eq!(params["date"], "2026-12-01");
        assert_eq!(params["time"], "10:30");
        let plain = ScriptedRuntime.answer(&turn("hello"), &Echo, None).await;
        assert!(plain.tools.is_empty());
        assert_eq!(plain.text, "[scripted agent] You said: hello");
    }
}
