//! Reading the custom-LLM route's answer as ElevenLabs reads it: server-sent
//! events of `chat.completion.chunk`s, each with the time it arrived, until
//! the stream ends (after `data: [DONE]`).

use std::pin::Pin;
use std::time::{Duration, Instant};

use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

pub use eventsource_stream::Event;

/// The events of one streamed answer, as they come.
pub type Events =
    Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// The events of `response`, read as they arrive.
pub fn events(response: reqwest::Response) -> Events {
    Box::pin(response.bytes_stream().eventsource())
}

/// One event's data and when it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub data: String,
    pub at: Instant,
}

impl Received {
    /// Whether this is the `[DONE]` that ends the answer.
    pub fn done(&self) -> bool {
        self.data == "[DONE]"
    }

    /// The words this chunk says (`delta.content`), if any.
    pub fn content(&self) -> Option<String> {
        let chunk: Value = serde_json::from_str(&self.data).ok()?;
        content(&chunk).map(str::to_owned)
    }
}

/// Reads `events` to their end, at most `limit` in all, handing each to
/// `each` as it arrives (a test can act in the middle of an answer).
///
/// Panics, as a test helper does, on a malformed stream or one that does
/// not end in time.
pub async fn read_all(
    events: &mut Events,
    limit: Duration,
    mut each: impl FnMut(&Received),
) -> Vec<Received> {
    tokio::time::timeout(limit, async {
        let mut all = Vec::new();
        while let Some(event) = events.next().await {
            let received = Received {
                data: event.expect("well-formed server-sent events").data,
                at: Instant::now(),
            };
            each(&received);
            all.push(received);
        }
        all
    })
    .await
    .unwrap_or_else(|_| panic!("the answer did not end within {limit:?}"))
}

/// The data of each event of `events`, read to their end within `limit`.
pub async fn read_data(events: &mut Events, limit: Duration) -> Vec<String> {
    read_all(events, limit, |_| {})
        .await
        .into_iter()
        .map(|e| e.data)
        .collect()
}

/// The chunks of a finished answer: every event but `[DONE]`, which must be
/// the last, each a `chat.completion.chunk`.
pub fn chunks(events: &[String]) -> Vec<Value> {
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    events[..events.len() - 1]
        .iter()
        .map(|e| {
            let chunk: Value = serde_json::from_str(e).unwrap();
            assert_eq!(chunk["object"], json!("chat.completion.chunk"));
            chunk
        })
        .collect()
}

/// The words of a chunk (`choices[0].delta.content`), if it has any.
pub fn content(chunk: &Value) -> Option<&str> {
    chunk["choices"][0]["delta"]["content"]
        .as_str()
        .filter(|text| !text.is_empty())
}

/// The words the chunks say, in order.
pub fn said(chunks: &[Value]) -> Vec<String> {
    chunks
        .iter()
        .filter_map(content)
        .map(str::to_owned)
        .collect()
}
