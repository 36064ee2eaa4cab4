//! `sendTranscripts` over HTTP: a signed post-call event of a tenant that
//! asks for transcripts sends its summary and transcript once, through the
//! configured email provider (SES v2 on the AWS emulator, or SMTP on
//! loopback) or by SMS, and logs each message once; a repeat of the event
//! sends nothing more; without `sendTranscripts` or a notify address
//! nothing is sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use voice_operator::messaging::smtp::{SmtpConfig, SmtpProvider, SmtpSecurity};
use voice_operator::messaging::twilio::TwilioProvider;
use voice_operator::messaging::{EmailAddress, Messaging};
use voice_operator::tenant::{Notify, TenantSettings};

use crate::support::bridge::{Options, TestBridge, json_of, settings, signed_post};
use crate::support::providers::{
    form, recorded, ses_messaging, twilio_accepting_one, twilio_config, verified_ses_sender,
};
use crate::support::smtp::SmtpServer;
use crate::support::{aws_config, emulator, moto_data};

/// The fixture's conversation and what the business should read of it.
const CONVERSATION: &str = "conv_0101k9xyz123";
const SUBJECT: &str = "Call from +40721000111, 1 min 34 s";
const SUMMARY: &str = "Caller booked an appointment for tomorrow at 10:00.";
const TRANSCRIPT: &str = "Transcript\n\
    Agent: Bună ziua! Sunt asistentul clinicii. Cu ce vă pot ajuta?\n\
    Caller: Vreau o programare mâine la 10.\n\
    Agent: Perfect! Avem disponibil mâine la 10:00. Pe ce nume fac programarea?\n";

/// The shared post-call fixture, with `conversation` as its id.
fn post_call(conversation: &str) -> Vec<u8> {
    let body = std::fs::read(crate::support::fixture(
        "elevenlabs/post_call_transcription.json",
    ))
    .unwrap();
    let mut event: Value = serde_json::from_slice(&body).unwrap();
    event["data"]["conversation_id"] = json!(conversation);
    event.to_string().into_bytes()
}

/// The fixture's tenant (its agent), sending transcripts when `on`.
fn clinic(on: bool, notify: Notify) -> TenantSettings {
    let mut clinic = settings("agent_7801k2abcd0efgh", true);
    clinic.conversation.send_transcripts = on;
    clinic.notify = notify;
    clinic
}

fn email_to(address: &str) -> Notify {
    Notify {
        email: Some(address.into()),
        sms: None,
    }
}

/// Delivers the event of `conversation`; what the route answered.
async fn deliver(bridge: &TestBridge, conversation: &str) -> Value {
    let url = format!("{}/api/elevenlabs/post-call", bridge.url);
    let (status, answer) = json_of(signed_post(&url, &post_call(conversation)).await).await;
    assert_eq!(status, 200, "{answer}");
    answer["status"].clone()
}

/// The bridge's records once there are `count`, checked schema-valid. The
/// messages are sent in the background, so this waits for them (at most
/// 20 s: a send is bounded by its deadline, 9.25 s by default).
async fn records(bridge: &TestBridge, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let records = bridge.records().await;
        if records.len() >= count || started.elapsed() > Duration::from_secs(20) {
            assert_eq!(records.len(), count, "{records:#?}");
            let validator = crate::support::agent_log_validator();
            for r in &records {
                let errors: Vec<String> = validator.iter_errors(r).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{r}: {errors:?}");
            }
            return records;
        }
    }
}

/// The one record of `action_type` among `records`.
fn only<'a>(records: &'a [Value], action_type: &str) -> &'a Value {
    let found: Vec<&Value> = records
        .iter()
        .filter(|r| r["data"]["actionType"] == action_type)
        .collect();
    assert_eq!(found.len(), 1, "{action_type} records: {records:#?}");
    found[0]
}

/// Asserts `email` is the record of the transcript email to `to` through
/// `provider`, sent (`external_id`) or refused.
fn assert_transcript_email(email: &Value, to: &str, provider: &str, external_id: Option<&str>) {
    let data = &email["data"];
    assert_eq!(
        (email["businessId"].as_str(), email["locationId"].as_str()),
        (Some("B0100001"), Some("L0100001"))
    );
    assert_eq!(data["agentSessionId"], CONVERSATION);
    assert_eq!(data["provider"], provider);
    assert_eq!(
        data["recipient"],
        json!({"email": to, "name": "Clinica Test"})
    );
    assert_eq!(data["metadata"]["subject"], SUBJECT);
    assert_eq!(data["externalId"].as_str(), external_id);
    let (sub_action, status) = match external_id {
        Some(_) => ("send", "sent"),
        None => ("failed", "failed"),
    };
    assert_eq!(data["subAction"], sub_action);
    assert_eq!(data["metadata"]["deliveryStatus"], status);
}

/// The body of the transcript email, as the business reads it.
fn assert_transcript_body(body: &str) {
    let expected =
        format!("{SUBJECT}.\nConversation {CONVERSATION}.\n\nSummary\n{SUMMARY}\n\n{TRANSCRIPT}");
    assert_eq!(body.replace("\r\n", "\n").trim_end(), expected.trim_end());
}

#[tokio::test]
async fn a_call_sends_one_email_through_ses_and_a_repeat_sends_nothing_more() {
    let Some(endpoint) = emulator() else { return };
    let aws = aws_config(&endpoint);
    let from = verified_ses_sender(&aws).await;
    let bridge = TestBridge::start(Options {
        messaging: ses_messaging(&aws, &from),
        ..Options::default()
    })
    .await;
    // An address no other test uses, so the emulator's record of it is
    // this test's alone.
    let to = format!(
        "receptie@{}.example.ro",
        crate::support::unique_name("clinica")
    );
    bridge
        .tenant_with("B0100001", "L0100001", clinic(true, email_to(&to)))
        .await;

    assert_eq!(deliver(&bridge, CONVERSATION).await, "ok");
    let records = records(&bridge, 2).await;
    assert_eq!(deliver(&bridge, CONVERSATION).await, "duplicate");
    assert_eq!(bridge.records().await, records, "a repeat logs nothing");

    let email = only(&records, "email");
    let id = email["data"]["externalId"].as_str().unwrap().to_owned();
    assert_transcript_email(email, &to, "aws_ses", Some(&id));
    assert_eq!(
        only(&records, "voice_call")["data"]["metadata"]["conversationId"],
        CONVERSATION
    );
    let data = moto_data(&endpoint).await;
    let to_clinic: Vec<&Value> = data["ses"]["Message"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destinations"]["ToAddresses"] == json!([to]))
        .collect();
    assert_eq!(to_clinic.len(), 1, "one email per call: {to_clinic:#?}");
    assert_eq!(recorded(&data, "ses", "Message", "id", &id), to_clinic);
    let message = to_clinic[0];
    assert_eq!(
        (&message["source"], &message["subject"]),
        (&json!(from), &json!(SUBJECT))
    );
    assert_transcript_body(message["body"].as_str().unwrap());
}

/// The bridge with email through SMTP on `server`.
async fn on_smtp(server: &SmtpServer) -> TestBridge {
    let mut config = SmtpConfig::new(
        "127.0.0.1",
        SmtpSecurity::None,
        EmailAddress::parse("from", "apeluri@voice.example.ro").unwrap(),
    );
    config.port = server.port;
    TestBridge::start(Options {
        messaging: Messaging::default().with(Arc::new(SmtpProvider::new(&config).unwrap())),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn only_a_tenant_that_asks_gets_the_email_through_smtp_once_per_call() {
    let server = SmtpServer::start("250 2.1.5 Ok").await;
    let bridge = on_smtp(&server).await;
    let to = "receptie@clinica.example.ro";
    // sendTranscripts off, then on without a notify address: nothing.
    bridge
        .tenant_with("B0100001", "L0100001", clinic(false, email_to(to)))
        .await;
    assert_eq!(deliver(&bridge, "conv_off").await, "ok");
    bridge
        .tenant_with("B0100001", "L0100001", clinic(true, Notify::default()))
        .await;
    assert_eq!(deliver(&bridge, "conv_nobody").await, "ok");
    // On, with an address: one email, however often the event comes.
    bridge
        .tenant_with("B0100001", "L0100001", clinic(true, email_to(to)))
        .await;
    assert_eq!(deliver(&bridge, CONVERSATION).await, "ok");
    assert_eq!(deliver(&bridge, CONVERSATION).await, "duplicate");

    let records = records(&bridge, 4).await;
    let calls = records
        .iter()
        .filter(|r| r["data"]["actionType"] == "voice_call")
        .count();
    assert_eq!(calls, 3, "every call is logged, once");
    let email = only(&records, "email");
    let id = email["data"]["externalId"].as_str().unwrap();
    assert_transcript_email(email, to, "smtp", Some(id));

    let received = server.received();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(received[0].rcpt_to, [format!("<{to}>")]);
    let headers = received[0].headers();
    assert_eq!(headers["subject"], SUBJECT);
    assert_eq!(headers["message-id"], id);
    assert_transcript_body(&received[0].text());
}

#[tokio::test]
async fn an_email_the_server_refuses_is_logged_once_as_failed_and_not_sent_again() {
    let server = SmtpServer::start("550 5.1.1 <receptie@clinica.example.ro>: User unknown").await;
    let bridge = on_smtp(&server).await;
    let to = "receptie@clinica.example.ro";
    bridge
        .tenant_with("B0100001", "L0100001", clinic(true, email_to(to)))
        .await;
    assert_eq!(deliver(&bridge, CONVERSATION).await, "ok");
    let records = records(&bridge, 2).await;
    let email = only(&records, "email");
    assert_transcript_email(email, to, "smtp", None);
    let error = email["data"]["metadata"]["errorMessage"].as_str().unwrap();
    assert!(
        error.contains("550") && error.contains("User unknown"),
        "{error}"
    );
    assert_eq!(deliver(&bridge, CONVERSATION).await, "duplicate");
    assert_eq!(bridge.records().await.len(), 2);
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn an_sms_number_gets_the_summary_only() {
    let twilio = twilio_accepting_one("SM0123456789abcdef0123456789abcdef").await;
    let provider = TwilioProvider::new(&twilio_config(&twilio.uri())).unwrap();
    let bridge = TestBridge::start(Options {
        messaging: Messaging::default().with(Arc::new(provider)),
        ..Options::default()
    })
    .await;
    let notify = Notify {
        email: None,
        sms: Some("+40722000333".into()),
    };
    bridge
        .tenant_with("B0100001", "L0100001", clinic(true, notify))
        .await;
    assert_eq!(deliver(&bridge, CONVERSATION).await, "ok");
    let records = records(&bridge, 2).await;
    let sms = &only(&records, "sms")["data"];
    assert_eq!(sms["agentSessionId"], CONVERSATION);
    assert_eq!(
        sms["recipient"],
        json!({"phone": "+40722000333", "name": "Clinica Test"})
    );
    assert_eq!(sms["externalId"], "SM0123456789abcdef0123456789abcdef");
    let requests = twilio.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let form = form(&requests[0]);
    assert_eq!(form["To"], "+40722000333");
    assert_eq!(form["Body"], format!("{SUBJECT}: {SUMMARY}"));
    twilio.verify().await;
}
