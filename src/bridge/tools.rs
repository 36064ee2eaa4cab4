//! The tools the agent can call, as the models see them. Bedrock action
//! groups (RETURN_CONTROL) declare the same functions and parameters.

use serde_json::{Value, json};

/// The action group the tools belong to, for runtimes that group them.
pub const ACTION_GROUP: &str = "voice-tools";

/// One callable function: its name, what it is for, and a JSON Schema of
/// its parameters (all strings, as Bedrock passes them).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters: Value,
}

fn strings(props: &[(&str, &str)], required: &[&str]) -> Value {
    let properties: serde_json::Map<String, Value> = props
        .iter()
        .map(|(name, doc)| {
            (
                (*name).to_owned(),
                json!({"type": "string", "description": doc}),
            )
        })
        .collect();
    json!({"type": "object", "properties": properties, "required": required})
}

/// The four tools of ARCHITECTURE.md section 6.
pub fn catalog() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "query_app_server",
            description: "Reads from the business app server: free appointment slots, services, prices, opening hours.",
            parameters: strings(
                &[
                    (
                        "resource",
                        "what to read: availability (default), services, hours, or appointments",
                    ),
                    ("date", "day asked about, YYYY-MM-DD"),
                    ("service", "service asked about"),
                    ("query", "the caller's question, in their words"),
                ],
                &[],
            ),
        },
        ToolSpec {
            name: "create_appointment",
            description: "Books an appointment in the business app server.",
            parameters: strings(
                &[
                    ("date", "YYYY-MM-DD"),
                    ("time", "HH:MM, 24-hour, local time of the location"),
                    ("service", "the service booked"),
                    ("customerName", "the caller's name"),
                    ("customerPhone", "the caller's phone number, E.164"),
                    ("notes", "anything else the caller asked for"),
                ],
                &["date", "time", "customerName"],
            ),
        },
        ToolSpec {
            name: "send_external_message",
            description: "Sends an SMS, an email or a WhatsApp message (channel meta) to the caller, for example a booking confirmation.",
            parameters: strings(
                &[
                    ("channel", "sms, email or meta (WhatsApp)"),
                    (
                        "to",
                        "phone number in E.164 for sms and meta, email address for email",
                    ),
                    ("message", "the text to send"),
                    ("subject", "email subject"),
                    ("name", "recipient's name"),
                    ("userId", "recipient's user id in the app, when known"),
                ],
                &["channel", "to", "message"],
            ),
        },
        ToolSpec {
            name: "send_elixir_notification",
            description: "Notifies the business's staff screens in real time (for example: a caller asks for a human).",
            parameters: strings(
                &[
                    ("event", "short event name, such as callback_requested"),
                    ("message", "what the staff should know"),
                ],
                &["message"],
            ),
        },
    ]
}
