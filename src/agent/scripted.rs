//! A deterministic stand-in for the agent, for `local` mode and tests. It
//! does not understand anything: it matches a few keywords, calls the
//! matching tool and says what it did. Named so that nobody mistakes it for
//! a model.
//!
//! When the voice platform offers its `transfer_to_number` tool, a caller
//! who asks for a person ("a person", "human", "operator", "un om", ...)
//! is transferred to the first number the tool names (the `enum` of its
//! `transfer_number` parameter, else the first `+` and eight or more
//! digits of its description). When it offers `end_call`, a caller who says goodbye is
//! let go.

use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::{
    AgentRuntime, Answer, END_CALL, Handoff, PlatformTool, TRANSFER_TO_NUMBER, ToolCall,
    ToolRunner, Turn,
};

/// Words of a caller who wants a person, English and Romanian.
const ASKS_FOR_A_PERSON: [&str; 7] = [
    "a person",
    "human",
    "operator",
    "someone real",
    "un om",
    "o persoană",
    "cu cineva",
];

/// Words of a caller who is done, English and Romanian.
const SAYS_GOODBYE: [&str; 3] = ["goodbye", "bye", "la revedere"];

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
        // Whatever looks like a date (YYYY-MM-DD), a time (HH:MM) or a
        // phone number (+ and 8 to 15 digits) in the words; the app server
        // refuses a booking without a date and a time.
        let word = |ok: fn(&str) -> bool| {
            text.split(|c: char| c.is_whitespace() || c == ',')
                .map(|w| w.trim_end_matches(['.', '!', '?', ';']))
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
        let phone = word(|w| {
            w.strip_prefix('+').is_some_and(|digits| {
                (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
            })
        });
        if lower.contains("book") || lower.contains("programare") {
            let mut params = vec![
                ("date", date),
                ("time", time),
                ("customerName", "caller"),
                ("notes", text),
            ];
            if !phone.is_empty() {
                params.push(("customerPhone", phone));
            }
            Some(call("create_appointment", &params))
        } else if lower.contains("available") || lower.contains("liber") {
            let mut params = vec![("query", text)];
            if !date.is_empty() {
                params.push(("date", date));
            }
            Some(call("query_app_server", &params))
        } else {
            None
        }
    }

    /// The hand-off a turn's words ask for, among those its request
    /// offers, and what the agent says before it.
    pub fn handoff_for(turn: &Turn) -> Option<(Handoff, String)> {
        let lower = turn.text.to_lowercase();
        if let Some(tool) = turn.platform_tool(TRANSFER_TO_NUMBER)
            && ASKS_FOR_A_PERSON.iter().any(|words| lower.contains(words))
        {
            let number = transfer_number(tool)?;
            let handoff = Handoff::Transfer {
                number,
                reason: "the caller asked for a person".into(),
                client_message: None,
                agent_message: Some(format!("The caller said: {}", turn.text)),
            };
            return Some((handoff, "[scripted agent] Transferring you now.".into()));
        }
        // Whole words only: "bye" is not in "byelaw".
        let spaced: String = lower
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let spaced = format!(" {spaced} ");
        if turn.platform_tool(END_CALL).is_some()
            && SAYS_GOODBYE
                .iter()
                .any(|words| spaced.contains(&format!(" {words} ")))
        {
            let handoff = Handoff::EndCall {
                reason: "the caller said goodbye".into(),
                message: None,
            };
            return Some((handoff, "[scripted agent] Goodbye.".into()));
        }
        None
    }

    /// Runs the tool the turn's words ask for and says how it went, or
    /// echoes the words when they ask for none.
    async fn run_tool(
        &self,
        turn: &Turn,
        tools: &dyn ToolRunner,
        called: &mut Vec<ToolCall>,
    ) -> String {
        let Some(call) = Self::tool_for(&turn.text) else {
            return format!("[scripted agent] You said: {}", turn.text);
        };
        let output = tools.run(turn, &call).await;
        let mut said = format!(
            "[scripted agent] {} {}: {}",
            call.function,
            if output.ok { "done" } else { "failed" },
            output.body
        );
        let confirmation = Self::confirmation(&call).filter(|_| output.ok);
        called.push(call);
        // As the example prompt asks: every booking is confirmed by SMS.
        if let Some(confirm) = confirmation {
            let sent = tools.run(turn, &confirm).await;
            said.push_str(&format!(
                "; {} {}: {}",
                confirm.function,
                if sent.ok { "done" } else { "failed" },
                sent.body
            ));
            called.push(confirm);
        }
        said
    }

    /// The SMS that confirms `booking` to the number the caller gave, if
    /// they gave one.
    fn confirmation(booking: &ToolCall) -> Option<ToolCall> {
        let p = &booking.parameters;
        let phone = p.get("customerPhone")?;
        let text = format!(
            "Your appointment on {} at {} is booked. To change it, call us back.",
            p.get("date")?,
            p.get("time")?
        );
        Some(ToolCall {
            action_group: booking.action_group.clone(),
            function: "send_external_message".into(),
            parameters: [("channel", "sms"), ("to", phone), ("message", &text)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }
}

/// The first number `tool` names: the `enum` of its `transfer_number`
/// parameter, else the first `+` and eight or more digits in its
/// description.
fn transfer_number(tool: &PlatformTool) -> Option<String> {
    let listed = tool
        .parameters
        .pointer("/properties/transfer_number/enum")
        .and_then(Value::as_array)
        .and_then(|numbers| numbers.iter().find_map(Value::as_str));
    if let Some(number) = listed {
        return Some(number.to_owned());
    }
    let description = &tool.description;
    description.match_indices('+').find_map(|(at, _)| {
        let digits: String = description[at + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        // Shorter runs are parts of numbers written with spaces.
        (digits.len() >= 8).then(|| format!("+{digits}"))
    })
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
            let (handoff, text) = match Self::handoff_for(turn) {
                Some((handoff, said)) => (Some(handoff), said),
                None => (None, self.run_tool(turn, tools, &mut called).await),
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
                handoff,
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
            ..Turn::default()
        }
    }

    fn offering(text: &str, tools: &[(&str, &str, Value)]) -> Turn {
        Turn {
            platform_tools: tools
                .iter()
                .map(|(name, description, parameters)| PlatformTool {
                    name: (*name).into(),
                    description: (*description).into(),
                    parameters: parameters.clone(),
                })
                .collect(),
            ..turn(text)
        }
    }

    #[tokio::test]
    async fn a_caller_who_asks_for_a_person_is_transferred_only_when_the_platform_offers_it() {
        let listed = serde_json::json!({"type": "object", "properties": {
            "transfer_number": {"type": "string", "enum": ["+40721000222", "+40721000333"]}}});
        let asks = "Vreau să vorbesc cu un om, vă rog";
        let answer = ScriptedRuntime
            .answer(
                &offering(asks, &[(TRANSFER_TO_NUMBER, "Transfer", listed)]),
                &Echo,
                None,
            )
            .await;
        let Some(Handoff::Transfer { number, reason, .. }) = &answer.handoff else {
            panic!("no transfer: {answer:?}");
        };
        assert_eq!(number, "+40721000222");
        assert_eq!(reason, "the caller asked for a person");
        assert!(answer.tools.is_empty());

        let described = offering(
            "Can I talk to a human?",
            &[(
                TRANSFER_TO_NUMBER,
                "Reception: +40 21 not this; front desk +40312000111 when the caller asks for a person",
                serde_json::json!({}),
            )],
        );
        let (handoff, _) = ScriptedRuntime::handoff_for(&described).unwrap();
        assert!(matches!(handoff, Handoff::Transfer { number, .. } if number == "+40312000111"));

        // Not offered, or offered without any number: no transfer.
        assert!(ScriptedRuntime::handoff_for(&turn("Can I talk to a human?")).is_none());
        let bare = offering(
            "operator please",
            &[(TRANSFER_TO_NUMBER, "no number here", serde_json::json!({}))],
        );
        assert!(ScriptedRuntime::handoff_for(&bare).is_none());
    }

    #[test]
    fn goodbye_ends_the_call_only_when_the_platform_offers_it() {
        let tools = [(END_CALL, "", serde_json::json!({}))];
        let (handoff, said) =
            ScriptedRuntime::handoff_for(&offering("Thanks, goodbye!", &tools)).unwrap();
        assert!(matches!(handoff, Handoff::EndCall { .. }));
        assert_eq!(said, "[scripted agent] Goodbye.");
        assert!(
            ScriptedRuntime::handoff_for(&offering("Mulțumesc, la revedere", &tools)).is_some()
        );
        assert!(ScriptedRuntime::handoff_for(&offering("the byelaw says", &tools)).is_none());
        assert!(ScriptedRuntime::handoff_for(&turn("goodbye")).is_none());
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
        assert!(
            booked.tools.len() == 1 && !params.contains_key("customerPhone"),
            "no number, no confirmation"
        );
        let confirmed = ScriptedRuntime
            .answer(
                &turn("Please book 2026-12-01 at 10:30, my number is +40721000111."),
                &Echo,
                None,
            )
            .await;
        let functions: Vec<&str> = confirmed
            .tools
            .iter()
            .map(|t| t.function.as_str())
            .collect();
        assert_eq!(functions, ["create_appointment", "send_external_message"]);
        let sms = &confirmed.tools[1].parameters;
        assert_eq!(
            (sms["channel"].as_str(), sms["to"].as_str()),
            ("sms", "+40721000111")
        );
        assert!(sms["message"].contains("2026-12-01 at 10:30"), "{sms:?}");
        assert!(
            confirmed.text.contains("; send_external_message done"),
            "{}",
            confirmed.text
        );
        let asked = ScriptedRuntime::tool_for("Is anything available on 2026-12-02?").unwrap();
        assert_eq!(asked.parameters["date"], "2026-12-02");
        let plain = ScriptedRuntime.answer(&turn("hello"), &Echo, None).await;
        assert!(plain.tools.is_empty());
        assert_eq!(plain.text, "[scripted agent] You said: hello");
    }
}
