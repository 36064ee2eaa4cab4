//! `sendTranscripts`: after each finished call, the business gets the
//! call's summary and transcript by email, and its summary by SMS, at the
//! addresses of the VoiceAgent's `spec.notify`.
//!
//! The messages go through the tools' `send_external_message`, so they
//! take the business's configured provider for each channel and are sent
//! and recorded exactly as a message the agent sends: one attempt (once
//! more only when the provider proved it did not take it), a failure or an
//! unknown outcome recorded and never sent again, one `email` or `sms`
//! record per message with the conversation as its `agentSessionId`.
//! The post-call route calls this once per conversation: a repeated
//! delivery of the same event is answered `duplicate` before it gets here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use tracing::Instrument;

use super::state::AppState;
use crate::agent::tools::ACTION_GROUP;
use crate::agent::{ToolCall, Turn};
use crate::tenant::TenantConfig;

/// Most transcript text in one email; a longer call's transcript is cut
/// and says so. Far below what SES (40 MB) or an SMTP server takes, and
/// more than anyone reads.
const MAX_EMAIL_TRANSCRIPT_BYTES: usize = 256 * 1024;
/// Most characters of an SMS summary: two concatenated segments of plain
/// text, so it arrives as one message on the business's phone.
const MAX_SMS_CHARS: usize = 300;

/// What the business hears about one finished call.
#[derive(Debug, Default)]
pub struct FinishedCall<'a> {
    pub conversation: &'a str,
    /// The caller's number, when the call came by phone.
    pub caller: Option<&'a str>,
    pub duration_secs: Option<f64>,
    /// ElevenLabs' `analysis.transcript_summary`.
    pub summary: Option<&'a str>,
    /// `(role, message)` per turn, as ElevenLabs sends them.
    pub transcript: Vec<(&'a str, &'a str)>,
}

/// Sends the call's summary and transcript as `tenant`'s settings ask:
/// nothing unless `sendTranscripts` is on and a notify address is set.
/// The sends run in the background, so ElevenLabs gets its answer at once.
pub fn send_transcripts(state: &Arc<AppState>, tenant: &TenantConfig, call: &FinishedCall<'_>) {
    let settings = &tenant.settings;
    let notify = &settings.notify;
    if !settings.conversation.send_transcripts || (notify.email.is_none() && notify.sms.is_none()) {
        tracing::debug!("no transcript sent (sendTranscripts off, or no notify address)");
        return;
    }
    let business = settings
        .business_name
        .clone()
        .unwrap_or_else(|| tenant.key.to_string());
    let mut calls = Vec::new();
    if let Some(email) = &notify.email {
        calls.push(send_call(&[
            ("channel", "email"),
            ("to", email),
            ("name", &business),
            ("subject", &subject(call)),
            ("message", &email_text(call)),
        ]));
    }
    if let Some(sms) = &notify.sms {
        calls.push(send_call(&[
            ("channel", "sms"),
            ("to", sms),
            ("name", &business),
            ("message", &sms_text(call)),
        ]));
    }
    let turn = Turn {
        session_id: call.conversation.to_owned(),
        business_id: tenant.key.business_id.to_string(),
        location_id: tenant.key.location_id.to_string(),
        source: "post_call".into(),
        ..Turn::default()
    };
    let tools = state.tools.clone();
    tokio::spawn(
        async move {
            for message in calls {
                let output = tools.run(&turn, &message).await;
                let channel = message.parameters["channel"].as_str();
                if output.ok {
                    tracing::info!(channel, "call transcript sent to the business");
                } else {
                    tracing::warn!(channel, outcome = %output.body, "call transcript not sent");
                }
            }
        }
        .in_current_span(),
    );
}

fn send_call(parameters: &[(&str, &str)]) -> ToolCall {
    ToolCall {
        action_group: ACTION_GROUP.into(),
        function: "send_external_message".into(),
        parameters: parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// "call from +40721000111, 1 min 34 s", or what of it is known.
fn headline(call: &FinishedCall<'_>) -> String {
    let mut line = format!("call from {}", call.caller.unwrap_or("an unknown number"));
    if let Some(secs) = call.duration_secs.filter(|s| s.is_finite() && *s >= 0.0) {
        // Whole seconds are all a person reading it needs.
        let secs = secs.round() as u64;
        if secs >= 60 {
            let _ = write!(line, ", {} min {} s", secs / 60, secs % 60);
        } else {
            let _ = write!(line, ", {secs} s");
        }
    }
    line
}

fn subject(call: &FinishedCall<'_>) -> String {
    let mut subject = headline(call);
    subject[..1].make_ascii_uppercase();
    subject
}

fn summary<'a>(call: &FinishedCall<'a>) -> &'a str {
    call.summary
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("(ElevenLabs sent no summary of this call)")
}

/// The email: headline, summary, then the transcript, one line per turn
/// ("Agent: ...", "Caller: ...").
fn email_text(call: &FinishedCall<'_>) -> String {
    let mut text = format!(
        "{}.\nConversation {}.\n\nSummary\n{}\n\nTranscript\n",
        subject(call),
        call.conversation,
        summary(call)
    );
    let mut bytes = 0;
    for (role, message) in &call.transcript {
        let message = message.trim();
        if message.is_empty() {
            // A turn of tool calls only: nothing was said.
            continue;
        }
        bytes += message.len();
        if bytes > MAX_EMAIL_TRANSCRIPT_BYTES {
            text.push_str("[the rest of the transcript is left out: too long for an email]\n");
            break;
        }
        let _ = writeln!(text, "{}: {message}", speaker(role));
    }
    if call.transcript.is_empty() {
        text.push_str("(ElevenLabs sent no transcript of this call)\n");
    }
    text
}

/// Who said a turn, as the business reads it.
fn speaker(role: &str) -> &str {
    match role {
        "agent" => "Agent",
        "user" => "Caller",
        other => other,
    }
}

/// The SMS: headline and summary, cut to [`MAX_SMS_CHARS`].
fn sms_text(call: &FinishedCall<'_>) -> String {
    let text = format!("{}: {}", subject(call), summary(call));
    match text.char_indices().nth(MAX_SMS_CHARS - 1) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> FinishedCall<'static> {
        FinishedCall {
            conversation: "conv_1",
            caller: Some("+40721000111"),
            duration_secs: Some(94.0),
            summary: Some("Caller booked an appointment for tomorrow at 10:00."),
            transcript: vec![
                ("agent", "Bună ziua!"),
                ("user", "Vreau o programare."),
                ("agent", ""),
                ("agent", "Perfect."),
            ],
        }
    }

    #[test]
    fn the_email_reads_as_a_conversation() {
        assert_eq!(subject(&call()), "Call from +40721000111, 1 min 34 s");
        assert_eq!(
            email_text(&call()),
            "Call from +40721000111, 1 min 34 s.\nConversation conv_1.\n\n\
             Summary\nCaller booked an appointment for tomorrow at 10:00.\n\n\
             Transcript\nAgent: Bună ziua!\nCaller: Vreau o programare.\nAgent: Perfect.\n"
        );
        let unknown = FinishedCall {
            conversation: "conv_2",
            ..FinishedCall::default()
        };
        assert_eq!(subject(&unknown), "Call from an unknown number");
        assert!(
            email_text(&unknown).contains("(ElevenLabs sent no summary of this call)"),
            "{}",
            email_text(&unknown)
        );
    }

    #[test]
    fn a_long_transcript_is_cut_and_says_so() {
        let long = "a".repeat(100 * 1024);
        let call = FinishedCall {
            transcript: vec![("user", long.as_str()); 4],
            ..call()
        };
        let text = email_text(&call);
        assert_eq!(text.matches("Caller: ").count(), 2);
        assert!(
            text.ends_with("too long for an email]\n"),
            "{}",
            &text[text.len() - 80..]
        );
    }

    #[test]
    fn the_sms_is_the_summary_cut_to_two_segments() {
        assert_eq!(
            sms_text(&call()),
            "Call from +40721000111, 1 min 34 s: Caller booked an appointment for tomorrow at 10:00."
        );
        let summary = "ă".repeat(1000);
        let long = FinishedCall {
            summary: Some(&summary),
            duration_secs: Some(7.4),
            ..call()
        };
        let text = sms_text(&long);
        assert_eq!(text.chars().count(), MAX_SMS_CHARS);
        assert!(text.starts_with("Call from +40721000111, 7 s: ăă"));
        assert!(text.ends_with('…'));
    }
}
