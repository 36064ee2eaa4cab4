//! One streamed reply assembled from its `chat.completion.chunk` events:
//! the text to speak and the tool calls, whose deltas may interleave.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{OpenAiError, cut};

/// One `chat.completion.chunk`, the parts this runtime reads.
#[derive(Debug, Deserialize)]
pub(super) struct Chunk {
    #[serde(default)]
    pub(super) choices: Vec<Choice>,
    /// OpenAI and most servers report a failure mid-stream as `error`.
    pub(super) error: Option<Value>,
    /// vLLM sends `{"object": "error", "message": ...}`.
    pub(super) object: Option<String>,
    pub(super) message: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Choice {
    #[serde(default)]
    pub(super) index: u32,
    #[serde(default)]
    pub(super) delta: Delta,
    pub(super) finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Delta {
    /// Reasoning fields (`reasoning_content`) are not read: they must not
    /// be spoken.
    pub(super) content: Option<String>,
    pub(super) tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ToolCallDelta {
    pub(super) index: Option<usize>,
    pub(super) id: Option<String>,
    pub(super) function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct FunctionDelta {
    pub(super) name: Option<String>,
    pub(super) arguments: Option<String>,
}

pub(super) fn parse_chunk(data: &str) -> Result<Chunk, OpenAiError> {
    serde_json::from_str(data).map_err(|e| OpenAiError::Malformed(format!("{e} in {}", cut(data))))
}

/// A tool call being assembled from its deltas.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct PendingCall {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) arguments: String,
}

/// One streamed reply, assembled from its chunks.
#[derive(Debug, Default)]
pub(super) struct Reply {
    pub(super) text: String,
    /// By the `index` the deltas carry.
    pub(super) calls: BTreeMap<usize, PendingCall>,
    pub(super) finish_reason: Option<String>,
}

impl Reply {
    /// Takes in one chunk; returns the text it adds, to be streamed.
    pub(super) fn absorb(&mut self, chunk: Chunk) -> Result<Option<String>, OpenAiError> {
        if let Some(error) = chunk.error {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned);
            return Err(OpenAiError::Model(cut(&message)));
        }
        if chunk.object.as_deref() == Some("error") {
            return Err(OpenAiError::Model(cut(chunk
                .message
                .as_deref()
                .unwrap_or("(no message)"))));
        }
        let mut piece = None;
        // Only one choice is asked for; others would be alternatives.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(content) = choice.delta.content.filter(|c| !c.is_empty()) {
                self.text.push_str(&content);
                piece = Some(content);
            }
            for delta in choice.delta.tool_calls.unwrap_or_default() {
                self.add(delta);
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
        Ok(piece)
    }

    /// The id and name come once, in the first delta of a call (a repeat
    /// does not change them); the arguments come in pieces. A delta without
    /// `index` (older Ollama) starts a new call when it carries an id and
    /// continues the last one otherwise.
    pub(super) fn add(&mut self, delta: ToolCallDelta) {
        let last = self.calls.last_key_value().map(|(index, _)| *index);
        let index = match (delta.index, &delta.id, last) {
            (Some(index), _, _) => index,
            (None, Some(_), Some(last)) => last + 1,
            (None, None, Some(last)) => last,
            (None, _, None) => 0,
        };
        let call = self.calls.entry(index).or_default();
        if let Some(id) = delta.id.filter(|id| !id.is_empty())
            && call.id.is_empty()
        {
            call.id = id;
        }
        let function = delta.function.unwrap_or_default();
        if let Some(name) = function.name.filter(|n| !n.is_empty())
            && call.name.is_empty()
        {
            call.name = name;
        }
        if let Some(arguments) = function.arguments {
            call.arguments.push_str(&arguments);
        }
    }

    /// The calls in index order; a server that sent no id gets one made
    /// up, unique in the turn, since each result must name its call.
    pub(super) fn tool_calls(&self, round: usize) -> Vec<PendingCall> {
        self.calls
            .iter()
            .map(|(index, call)| {
                let mut call = call.clone();
                if call.id.is_empty() {
                    call.id = format!("call_{round}_{index}");
                }
                call
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn assemble(chunks: &[Value]) -> Reply {
        let mut reply = Reply::default();
        for chunk in chunks {
            reply
                .absorb(parse_chunk(&chunk.to_string()).unwrap())
                .unwrap();
        }
        reply
    }

    fn delta(delta: Value) -> Value {
        json!({"object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
    }

    #[test]
    fn tool_calls_are_assembled_by_index_from_interleaved_deltas() {
        let reply = assemble(&[
            delta(json!({"role": "assistant", "content": null})),
            delta(
                json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                "function": {"name": "query_app_server", "arguments": ""}}]}),
            ),
            delta(
                json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                "function": {"name": "send_external_message", "arguments": "{\"chan"}}]}),
            ),
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"date\": \"2026-"}}]}),
            ),
            delta(
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "nel\": \"sms\"}"}}]}),
            ),
            delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "11-25\"}"}}]})),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        ]);
        assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            reply.tool_calls(1),
            [
                PendingCall {
                    id: "call_a".into(),
                    name: "query_app_server".into(),
                    arguments: "{\"date\": \"2026-11-25\"}".into()
                },
                PendingCall {
                    id: "call_b".into(),
                    name: "send_external_message".into(),
                    arguments: "{\"channel\": \"sms\"}".into()
                },
            ]
        );
    }

    #[test]
    fn a_repeated_id_or_name_is_not_doubled_and_a_missing_id_is_made_up() {
        let reply = assemble(&[
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"name": "create_appointment", "arguments": "{}"}}]}),
            ),
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"name": "create_appointment"}}]}),
            ),
            delta(json!({"tool_calls": [{"index": 2, "id": "x", "function": {"name": "n"}}]})),
            delta(json!({"tool_calls": [{"index": 2, "id": "x"}]})),
        ]);
        let calls = reply.tool_calls(3);
        assert_eq!(calls[0].id, "call_3_0");
        assert_eq!(calls[0].name, "create_appointment");
        assert_eq!((calls[1].id.as_str(), calls[1].name.as_str()), ("x", "n"));
    }

    #[test]
    fn deltas_without_index_start_a_call_with_each_new_id() {
        let reply = assemble(&[
            delta(
                json!({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{\"k\":"}}]}),
            ),
            delta(json!({"tool_calls": [{"function": {"arguments": "\"v\"}"}}]})),
            delta(
                json!({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
            ),
        ]);
        let calls = reply.tool_calls(1);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, "{\"k\":\"v\"}");
        assert_eq!(calls[1].name, "g");
    }

    #[test]
    fn text_pieces_are_returned_for_streaming_and_other_choices_ignored() {
        let mut reply = Reply::default();
        let piece = |reply: &mut Reply, chunk: Value| {
            reply
                .absorb(serde_json::from_value(chunk).unwrap())
                .unwrap()
        };
        assert_eq!(
            piece(&mut reply, delta(json!({"content": "Bună "}))),
            Some("Bună ".into())
        );
        assert_eq!(piece(&mut reply, delta(json!({"content": ""}))), None);
        assert_eq!(
            piece(&mut reply, delta(json!({"reasoning_content": "hmm"}))),
            None
        );
        assert_eq!(
            piece(
                &mut reply,
                json!({"choices": [{"index": 1, "delta": {"content": "alt"}}]})
            ),
            None
        );
        assert_eq!(
            piece(
                &mut reply,
                json!({"choices": [], "usage": {"total_tokens": 9}})
            ),
            None
        );
        assert_eq!(reply.text, "Bună ");
    }

    #[test]
    fn errors_inside_the_stream_are_reported() {
        for chunk in [
            json!({"error": {"message": "model overloaded", "type": "server_error"}}),
            json!({"object": "error", "message": "model overloaded", "code": 500}),
        ] {
            let err = Reply::default()
                .absorb(serde_json::from_value(chunk).unwrap())
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "the model server reported an error: model overloaded"
            );
        }
        assert!(matches!(
            parse_chunk("{not json"),
            Err(OpenAiError::Malformed(_))
        ));
    }
}
