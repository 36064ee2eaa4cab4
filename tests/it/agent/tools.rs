//! The tool registry as the agent runtimes call it: `Tools::run` against
//! the app server and notification server on wiremock, Twilio and the
//! WhatsApp Cloud API on wiremock, SNS and SES v2 through the real SDKs on
//! the local AWS emulator. Every message attempt must leave exactly one
//! schema-valid agent-log record; everything else must leave none.

use crate::support::providers::{
    ACCOUNT_SID, AUTH_TOKEN, TWILIO_FROM, TWILIO_PATH, WAMID, form, recorded, ses_messaging,
    sns_error, sns_publish, twilio_accepting_late, twilio_accepting_one, twilio_config,
    twilio_error, twilio_reply, verified_ses_sender, whatsapp_config, whatsapp_expecting,
};

use crate::support::{aws_config, emulator, moto_data, unique_phone, unique_sender};

use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::support::bridge::{CaptureSink, capture_log};
use base64::Engine;
use secrecy::SecretString;
use serde_json::{Value, json};
use voice_operator::actionlog::ShipperHandle;
use voice_operator::actionlog::record::Provider;
use voice_operator::agent::tools::{self, Tools, ToolsConfig};
use voice_operator::agent::{ToolCall, ToolOutput, ToolRunner, Turn};
use voice_operator::messaging::config::{self, MessagingConfig};
use voice_operator::messaging::pricing::PriceTable;
use voice_operator::messaging::sns::SnsConfig;
use voice_operator::messaging::twilio::TwilioProvider;
use voice_operator::messaging::whatsapp::WhatsAppProvider;
use voice_operator::messaging::{
    Channel, MessageProvider, Messaging, OutboundMessage, SendError, Sent,
};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SESSION: &str = "conv_01jtools0000000000000000";
const APP_TOKEN: &str = "app-server-token-test";

/// A phone call's turn for `business_id` (location `L` + the same digits).
fn turn(business_id: &str) -> Turn {
    Turn {
        session_id: SESSION.into(),
        business_id: business_id.into(),
        location_id: business_id.replacen('B', "L", 1),
        source: "voice".into(),
        text: "Vreau o programare mâine.".into(),
        ..Turn::default()
    }
}

fn call(function: &str, parameters: &[(&str, &str)]) -> ToolCall {
    ToolCall {
        action_group: tools::ACTION_GROUP.into(),
        function: function.into(),
        parameters: parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// A `send_external_message` call with just its three required parameters.
fn send(channel: &str, to: &str, message: &str) -> ToolCall {
    call(
        "send_external_message",
        &[("channel", channel), ("to", to), ("message", message)],
    )
}

/// The tools under test, with an action log that keeps its records.
struct Harness {
    tools: Tools,
    sink: CaptureSink,
    shipper: ShipperHandle,
}

impl Harness {
    fn new(config: ToolsConfig, messaging: Messaging) -> Harness {
        let (log, shipper, sink) = capture_log();
        Harness {
            tools: Tools::new(config, messaging, log),
            sink,
            shipper,
        }
    }

    fn messaging(messaging: Messaging) -> Harness {
        Harness::new(ToolsConfig::default(), messaging)
    }

    /// Sending through `messaging`, with [`PRICES`] for providers that
    /// give no price.
    fn priced(messaging: Messaging) -> Harness {
        let config = ToolsConfig {
            prices: Arc::new(PriceTable::parse(PRICES).unwrap()),
            ..ToolsConfig::default()
        };
        Harness::new(config, messaging)
    }

    /// The app and notification tools against `server`, with no messaging.
    fn app(server: &MockServer, token: Option<&str>) -> Harness {
        Harness::new(app_config(server, token), Messaging::default())
    }

    async fn run(&self, turn: &Turn, call: &ToolCall) -> ToolOutput {
        self.tools.run(turn, call).await
    }

    /// Sends `message` to `to` on `channel` in a turn of tenant B0100001.
    async fn send(&self, channel: &str, to: &str, message: &str) -> ToolOutput {
        self.run(&turn("B0100001"), &send(channel, to, message))
            .await
    }

    /// Runs `function` with `parameters` in a turn of tenant B0100001.
    async fn call(&self, function: &str, parameters: &[(&str, &str)]) -> ToolOutput {
        self.run(&turn("B0100001"), &call(function, parameters))
            .await
    }

    /// Waits until `count` records arrived, gives the shipper time to
    /// deliver any extra, then checks the count is exact and every record
    /// is valid against the agent-log schema.
    async fn records(&self, count: usize) -> Vec<Value> {
        let sink = self.sink.clone();
        crate::support::wait_for(Duration::from_secs(5), "the agent-log records", || {
            sink.records().len() >= count
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let records = self.sink.records();
        assert_eq!(records.len(), count, "{records:#?}");
        for record in &records {
            crate::support::assert_valid_against_both_schemas(record);
        }
        records
    }

    /// The one record a single message attempt leaves, without its
    /// generated `timestamp` and `requestId` (checked to be present).
    async fn only_record(&self) -> Value {
        let mut record = self.records(1).await.remove(0);
        let fields = record.as_object_mut().unwrap();
        for generated in ["timestamp", "requestId"] {
            assert!(
                fields.remove(generated).is_some_and(|v| v.is_string()),
                "{generated} missing"
            );
        }
        record
    }

    /// The one record a failed message attempt leaves, as `only_record`
    /// gives it, and the `errorMessage` taken out of its metadata.
    async fn only_failure(&self) -> (Value, String) {
        let mut record = self.only_record().await;
        let error = record["data"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("errorMessage")
            .expect("a failed record carries the error");
        (record, error.as_str().unwrap().to_owned())
    }
}

/// The price table of the cost tests: Romania (+40) and every other
/// destination per provider, an email price, none for SMTP.
const PRICES: &str = r#"
messages:
  - {provider: twilio, channel: sms, price: 0.05, currency: USD}
  - {provider: twilio, channel: sms, country: "40", price: 0.0712, currency: USD}
  - {provider: aws_sns, channel: sms, price: 0.00645, currency: USD}
  - {provider: meta, channel: meta, price: 0.03, currency: EUR}
  - {provider: meta, channel: meta, country: "+40", price: 0.0425, currency: EUR}
  - {provider: aws_ses, channel: email, price: 0.0001, currency: USD}
"#;

/// `data.metadata.cost` as the records write it.
fn cost(amount: f64, currency: &str, source: &str) -> Value {
    json!({"amount": amount, "currency": currency, "source": source})
}

/// An agent-log record of this file's session, without its generated ids.
fn record(business_id: &str, data: Value) -> Value {
    json!({
        "resourceType": "agent-log",
        "operation": "create",
        "businessId": business_id,
        "locationId": business_id.replacen('B', "L", 1),
        "data": data,
    })
}

/// The record a message to `recipient` leaves for tenant B0100001 in this
/// file's session: sent with the provider's `external_id`, or failed when
/// there is none; `metadata` is completed with the delivery status.
fn message_record(
    action_type: &str,
    provider: &str,
    recipient: Value,
    external_id: Option<&str>,
    mut metadata: Value,
) -> Value {
    let (sub_action, status) = match external_id {
        Some(_) => ("send", "sent"),
        None => ("failed", "failed"),
    };
    metadata["deliveryStatus"] = json!(status);
    record(
        "B0100001",
        json!({
            "actionType": action_type,
            "subAction": sub_action,
            "agentSessionId": SESSION,
            "triggeredBy": "bedrock_agent",
            "recipient": recipient,
            "provider": provider,
            "externalId": external_id,
            "metadata": metadata
        }),
    )
}

/// What a tool answers when it did not do what it was asked.
fn refused(body: impl Into<String>) -> ToolOutput {
    ToolOutput {
        body: body.into(),
        ok: false,
    }
}

/// The `id` a successful send tells the agent.
fn sent_id(output: &ToolOutput, channel: &str) -> String {
    assert!(output.ok, "{output:?}");
    let body: Value = serde_json::from_str(&output.body).unwrap();
    let id = body["id"].as_str().expect("the output names the id");
    assert_eq!(body, json!({"sent": true, "channel": channel, "id": id}));
    id.to_owned()
}

// ------------------------------------------------------------ app server

fn app_config(server: &MockServer, token: Option<&str>) -> ToolsConfig {
    ToolsConfig {
        app_server_url: Some(format!("{}/", server.uri())),
        app_server_token: token.map(SecretString::from),
        notification_url: Some(server.uri()),
        ..ToolsConfig::default()
    }
}

/// The app server's reply to `verb` requests for `resource`.
fn app_route(verb: &str, resource: &str, reply: ResponseTemplate) -> Mock {
    Mock::given(method(verb))
        .and(path(format!("/api/v1/{resource}")))
        .respond_with(reply)
}

/// An app server holding `mock`, and the tools calling it with `token`.
async fn on_app(mock: Mock, token: Option<&str>) -> (MockServer, Harness) {
    let server = MockServer::start().await;
    mock.mount(&server).await;
    let h = Harness::app(&server, token);
    (server, h)
}

/// Checks that the first request `server` got asked for the turn's tenant
/// and the date 2025-10-16, in that order and nothing else.
async fn assert_asked_for_the_turns_tenant(server: &MockServer) {
    let requests = server.received_requests().await.unwrap();
    let query: Vec<(String, String)> = requests[0].url.query_pairs().into_owned().collect();
    let expected = [
        ("businessId", "B0100001"),
        ("locationId", "L0100001"),
        ("date", "2025-10-16"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(query, expected);
}

#[tokio::test]
async fn query_app_server_reads_availability_for_the_turns_tenant_with_the_bearer_token() {
    let server = MockServer::start().await;
    let slots = json!({"date": "2025-10-16", "slots": ["10:00", "11:30", "16:00"]});
    Mock::given(method("GET"))
        .and(path("/api/v1/availability"))
        .and(query_param("businessId", "B0100001"))
        .and(query_param("locationId", "L0100001"))
        .and(query_param("date", "2025-10-16"))
        .and(header(
            "authorization",
            format!("Bearer {APP_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(&slots))
        .expect(1)
        .mount(&server)
        .await;
    let h = Harness::app(&server, Some(APP_TOKEN));

    let output = h.call("query_app_server", &[("date", "2025-10-16")]).await;
    assert!(output.ok, "{output:?}");
    assert_eq!(serde_json::from_str::<Value>(&output.body).unwrap(), slots);
    server.verify().await;
    assert_asked_for_the_turns_tenant(&server).await;
    h.records(0).await;
}

#[tokio::test]
async fn query_app_server_sends_no_authorization_without_a_token() {
    let reply = ResponseTemplate::new(200).set_body_json(json!([{"name": "Tuns"}]));
    let (server, h) = on_app(app_route("GET", "services", reply).expect(1), None).await;
    let output = h
        .call("query_app_server", &[("resource", " Services ")])
        .await;
    assert_eq!(
        output,
        ToolOutput {
            body: r#"[{"name":"Tuns"}]"#.into(),
            ok: true
        }
    );
    let requests = server.received_requests().await.unwrap();
    assert!(!requests[0].headers.contains_key("authorization"));
}

#[tokio::test]
async fn query_app_server_keeps_the_turns_tenant_when_the_model_names_another() {
    let reply = ResponseTemplate::new(200).set_body_json(json!([]));
    let mock = app_route("GET", "appointments", reply).expect(1);
    let (server, h) = on_app(mock, Some(APP_TOKEN)).await;
    let naming_another_tenant = [
        ("resource", "appointments"),
        ("businessId", "B0999999"),
        ("BusinessID", "B0999998"),
        ("locationId", "L0999999"),
        ("date", "2025-10-16"),
    ];
    let output = h.call("query_app_server", &naming_another_tenant).await;
    assert!(output.ok, "{output:?}");
    assert_asked_for_the_turns_tenant(&server).await;
}

#[tokio::test]
async fn query_app_server_refuses_a_resource_outside_the_allow_list() {
    let server = MockServer::start().await;
    let h = Harness::app(&server, Some(APP_TOKEN));
    for resource in ["users", "../admin", "availability/../../secrets"] {
        let output = h.call("query_app_server", &[("resource", resource)]).await;
        assert!(!output.ok, "{resource}: {output:?}");
        assert!(
            output
                .body
                .contains("not one of availability, services, hours, appointments"),
            "{output:?}"
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());
    h.records(0).await;
}

#[tokio::test]
async fn query_app_server_reports_the_status_of_a_failing_server() {
    let reply = ResponseTemplate::new(500).set_body_string("database unavailable");
    let (_server, h) = on_app(app_route("GET", "hours", reply).expect(1), None).await;
    let output = h.call("query_app_server", &[("resource", "hours")]).await;
    assert!(!output.ok);
    assert!(output.body.contains("500"), "{output:?}");
    assert!(output.body.contains("database unavailable"), "{output:?}");
}

#[tokio::test]
async fn query_app_server_gives_up_on_a_stalling_server_within_the_tool_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"slots": []}))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let config = ToolsConfig {
        timeout: Duration::from_millis(300),
        ..app_config(&server, None)
    };
    let h = Harness::new(config, Messaging::default());
    let started = Instant::now();
    let output = h.call("query_app_server", &[]).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(output, refused("the app server did not answer in time"));
}

#[tokio::test]
async fn app_tools_without_a_configured_server_say_so() {
    let h = Harness::new(ToolsConfig::default(), Messaging::default());
    let booking = [
        ("date", "2025-10-16"),
        ("time", "10:00"),
        ("customerName", "Ana"),
    ];
    for (tool, params, says) in [
        ("query_app_server", &[][..], "no app server is configured"),
        (
            "create_appointment",
            &booking[..],
            "no app server is configured",
        ),
        (
            "send_elixir_notification",
            &[("message", "Sunați-mă")][..],
            "no notification server is configured",
        ),
    ] {
        let output = h.call(tool, params).await;
        assert!(
            !output.ok && output.body.starts_with(says),
            "{tool}: {output:?}"
        );
    }
}

// ---------------------------------------------------------- appointments

#[tokio::test]
async fn create_appointment_posts_the_booking_with_the_turns_context() {
    let server = MockServer::start().await;
    let booked = json!({"id": "apt_7781", "status": "confirmed"});
    Mock::given(method("POST"))
        .and(path("/api/v1/appointments"))
        .and(header(
            "authorization",
            format!("Bearer {APP_TOKEN}").as_str(),
        ))
        .and(body_json(json!({
            "date": "2025-10-16",
            "time": "10:00",
            "service": "Tuns",
            "customerName": "Ana Pop",
            "customerPhone": "+40721000111",
            "notes": "prefer Maria",
            "businessId": "B0100001",
            "locationId": "L0100001",
            "agentSessionId": SESSION,
            "source": "voice",
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(&booked))
        .expect(1)
        .mount(&server)
        .await;
    let h = Harness::app(&server, Some(APP_TOKEN));
    let output = h
        .call(
            "create_appointment",
            &[
                ("date", "2025-10-16"),
                ("time", "10:00"),
                ("service", "Tuns"),
                ("customerName", "Ana Pop"),
                ("customerPhone", "+40721000111"),
                ("notes", "prefer Maria"),
                // The turn's tenant wins over one the model names.
                ("businessId", "B0999999"),
            ],
        )
        .await;
    assert!(output.ok, "{output:?}");
    assert_eq!(serde_json::from_str::<Value>(&output.body).unwrap(), booked);
    server.verify().await;
    h.records(0).await;
}

#[tokio::test]
async fn create_appointment_needs_date_time_and_name_before_any_request() {
    let server = MockServer::start().await;
    let h = Harness::app(&server, None);
    for (missing, params) in [
        (
            "time",
            vec![("date", "2025-10-16"), ("customerName", "Ana Pop")],
        ),
        (
            "time",
            vec![
                ("date", "2025-10-16"),
                ("time", "  "),
                ("customerName", "Ana Pop"),
            ],
        ),
        ("date", vec![("time", "10:00"), ("customerName", "Ana Pop")]),
        (
            "customerName",
            vec![("date", "2025-10-16"), ("time", "10:00")],
        ),
    ] {
        let output = h.call("create_appointment", &params).await;
        assert_eq!(
            output,
            refused(format!("parameter {missing} is required to book"))
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

// --------------------------------------------------------- notifications

#[tokio::test]
async fn elixir_notification_posts_the_event_without_the_app_token() {
    let reply = ResponseTemplate::new(202).set_body_json(json!({"delivered": 2}));
    let mock = app_route("POST", "notifications", reply).expect(2);
    let (server, h) = on_app(mock, Some(APP_TOKEN)).await;
    let first = h
        .call(
            "send_elixir_notification",
            &[
                ("event", "callback_requested"),
                ("message", "Ana Pop vrea să fie sunată de un coleg."),
            ],
        )
        .await;
    assert_eq!(
        first,
        ToolOutput {
            body: r#"{"delivered":2}"#.into(),
            ok: true
        }
    );
    let second = h
        .call("send_elixir_notification", &[("message", "Apel încheiat")])
        .await;
    assert!(second.ok, "{second:?}");
    let missing = h.call("send_elixir_notification", &[]).await;
    assert_eq!(missing, refused("parameter message is required"));

    server.verify().await;
    let requests = server.received_requests().await.unwrap();
    let bodies: Vec<Value> = requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let expected = |event: &str, message: &str| {
        json!({
            "businessId": "B0100001",
            "locationId": "L0100001",
            "agentSessionId": SESSION,
            "source": "voice",
            "event": event,
            "message": message,
        })
    };
    assert_eq!(
        bodies,
        vec![
            expected(
                "callback_requested",
                "Ana Pop vrea să fie sunată de un coleg."
            ),
            expected("agent_notification", "Apel încheiat"),
        ]
    );
    assert!(
        requests
            .iter()
            .all(|r| !r.headers.contains_key("authorization")),
        "the app server's token must not go to the notification server"
    );
    h.records(0).await;
}

// ---------------------------------------------------------------- Twilio

fn twilio_messaging(server: &MockServer) -> Messaging {
    Messaging::default().with(Arc::new(
        TwilioProvider::new(&twilio_config(&server.uri())).unwrap(),
    ))
}

/// Twilio on wiremock holding `mocks`, and the tools sending through it.
async fn on_twilio(mocks: impl IntoIterator<Item = Mock>) -> (MockServer, Harness) {
    let server = MockServer::start().await;
    for mock in mocks {
        mock.mount(&server).await;
    }
    let h = Harness::priced(twilio_messaging(&server));
    (server, h)
}

#[tokio::test]
async fn an_sms_through_twilio_is_sent_and_logged_once() {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"));
    let sid = "SM1f0e8ae6ade43cb3c0ce4525424e404f";
    let (server, h) = on_twilio([Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "status": "queued",
            "price": "-0.07400",
            "price_unit": "USD"
        })))
        .expect(1)])
    .await;
    let text = "Programare confirmată: mâine, 16 oct., la 10:00 & 50% avans.";
    let output = h
        .call(
            "send_external_message",
            &[
                ("channel", "sms"),
                ("to", "+40721000111"),
                ("message", text),
                ("name", "Ana Pop"),
                ("userId", "U42"),
            ],
        )
        .await;
    assert_eq!(sent_id(&output, "sms"), sid);

    server.verify().await;
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        form(&requests[0]),
        BTreeMap::from([
            ("To".to_owned(), "+40721000111".to_owned()),
            ("From".to_owned(), TWILIO_FROM.to_owned()),
            ("Body".to_owned(), text.to_owned()),
        ])
    );
    assert_eq!(
        h.only_record().await,
        message_record(
            "sms",
            "twilio",
            json!({"phone": "+40721000111", "name": "Ana Pop", "userId": "U42"}),
            Some(sid),
            // Twilio's own price wins over the table's 0.0712 for +40.
            json!({"messageLength": text.chars().count(), "cost": cost(0.074, "USD", "provider")})
        )
    );
    assert_ne!(text.chars().count(), text.len(), "the text has diacritics");
}

#[tokio::test]
async fn an_sms_twilio_has_not_priced_yet_is_estimated_from_the_table() {
    let mocks = [twilio_reply(ResponseTemplate::new(201).set_body_json(
        json!({
            "sid": "SMnotpricedyet",
            "status": "queued",
            "price": null,
            "price_unit": "USD"
        }),
    ))];
    let (_server, h) = on_twilio(mocks).await;
    for to in ["+40721000111", "+447700900123"] {
        sent_id(&h.send("sms", to, "Salut").await, "sms");
    }
    let records = h.records(2).await;
    let cost_to = |to: &str| {
        records
            .iter()
            .find(|r| r["data"]["recipient"]["phone"] == to)
            .map(|r| r["data"]["metadata"]["cost"].clone())
    };
    assert_eq!(
        cost_to("+40721000111"),
        Some(cost(0.0712, "USD", "estimated"))
    );
    assert_eq!(
        cost_to("+447700900123"),
        Some(cost(0.05, "USD", "estimated"))
    );
}

#[tokio::test]
async fn a_message_without_a_known_price_or_not_sent_has_no_cost() {
    // A price table with nothing for Twilio, and Twilio giving no price.
    let server = twilio_accepting_one("SMnoprice").await;
    let config = ToolsConfig {
        prices: Arc::new(
            PriceTable::parse(
                "messages: [{provider: aws_sns, channel: sms, price: 1, currency: USD}]",
            )
            .unwrap(),
        ),
        ..ToolsConfig::default()
    };
    let h = Harness::new(config, twilio_messaging(&server));
    sent_id(&h.send("sms", "+40721000111", "Salut").await, "sms");
    let record = h.only_record().await;
    assert_eq!(
        record["data"]["metadata"],
        json!({"messageLength": 5, "deliveryStatus": "sent"})
    );

    // A refused message costs nothing, whatever the table says.
    let refusal = "The 'To' number +40721000111 is not a valid phone number.";
    let (_server, h) = on_twilio([twilio_reply(twilio_error(400, 21211, refusal))]).await;
    assert!(!h.send("sms", "+40721000111", "Salut").await.ok);
    let (record, _) = h.only_failure().await;
    assert!(
        record["data"]["metadata"].get("cost").is_none(),
        "{record:#}"
    );
}

#[tokio::test]
async fn a_number_twilio_refuses_is_logged_once_as_failed() {
    let refusal = "The 'To' number +40721000111 is not a valid phone number.";
    let (server, h) = on_twilio([twilio_reply(twilio_error(400, 21211, refusal)).expect(1)]).await;
    let output = h.send("sms", "+40721000111", "Salut").await;
    assert!(!output.ok);
    assert!(output.body.contains(refusal), "{output:?}");
    assert!(!output.body.contains("sent again"), "{output:?}");
    server.verify().await;

    let (logged, error) = h.only_failure().await;
    assert!(
        error.contains("21211") && error.contains(refusal),
        "{error}"
    );
    assert_eq!(
        logged,
        message_record(
            "sms",
            "twilio",
            json!({"phone": "+40721000111"}),
            None,
            json!({"messageLength": 5})
        )
    );
}

#[tokio::test]
async fn a_throttled_sms_is_sent_once_more_and_logged_once() {
    let throttled = twilio_error(429, 20429, "Too Many Requests");
    let second_try = ResponseTemplate::new(201).set_body_json(json!({"sid": "SMsecondtry"}));
    let (server, h) = on_twilio([
        twilio_reply(throttled).up_to_n_times(1).expect(1),
        twilio_reply(second_try).expect(1),
    ])
    .await;
    let output = h.send("sms", "+40721000111", "Salut").await;
    assert_eq!(sent_id(&output, "sms"), "SMsecondtry");
    server.verify().await;
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(form(&requests[0]), form(&requests[1]), "the same message");

    let logged = h.only_record().await;
    assert_eq!(logged["data"]["subAction"], "send");
    assert_eq!(logged["data"]["externalId"], "SMsecondtry");
    assert_eq!(logged["data"]["metadata"]["deliveryStatus"], "sent");
}

#[tokio::test]
async fn throttling_that_lasts_is_tried_twice_and_logged_once_as_failed() {
    let throttled = twilio_error(429, 20429, "Too Many Requests");
    let (server, h) = on_twilio([twilio_reply(throttled).expect(2)]).await;
    let output = h.send("sms", "+40721000111", "Salut").await;
    assert!(!output.ok);
    assert!(
        output
            .body
            .ends_with("; the message may be sent again later"),
        "{output:?}"
    );
    server.verify().await;
    let logged = h.only_record().await;
    assert_eq!(logged["data"]["subAction"], "failed");
    assert_eq!(logged["data"]["externalId"], Value::Null);
    assert_eq!(logged["data"]["metadata"]["deliveryStatus"], "failed");
    let error = logged["data"]["metadata"]["errorMessage"].as_str().unwrap();
    assert!(error.contains("Too Many Requests"), "{error}");
}

/// Checks `output` and `record`, the tool's answer and the one record of
/// a send whose outcome is unknown: not sent again, the agent told not to
/// send it again, and the record a pending send whose error begins with
/// `says` after the schema-allowed `outcome unknown: ` prefix.
fn assert_unknown(output: &ToolOutput, record: &Value, says: &str) {
    assert!(!output.ok, "{output:?}");
    assert!(output.body.starts_with(says), "{output:?}");
    assert!(
        output
            .body
            .ends_with("; it may still arrive, so it was not sent again: do not send it again"),
        "{output:?}"
    );
    let data = &record["data"];
    assert_eq!(data["subAction"], "send");
    assert_eq!(data["externalId"], Value::Null);
    assert_eq!(data["metadata"]["deliveryStatus"], "pending");
    let error = data["metadata"]["errorMessage"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("outcome unknown: {says}")),
        "{error}"
    );
}

#[tokio::test]
async fn a_twilio_server_error_is_not_sent_again_and_logged_as_unknown() {
    let outage = twilio_error(503, 20500, "Service Unavailable");
    let (server, h) = on_twilio([twilio_reply(outage).expect(1)]).await;
    let output = h.send("sms", "+40721000111", "Salut").await;
    server.verify().await;
    let logged = h.only_record().await;
    assert_unknown(
        &output,
        &logged,
        "twilio did not confirm the message: HTTP 503, error 20500: Service Unavailable",
    );
}

#[tokio::test]
async fn a_timeout_after_the_request_left_is_not_resent_and_logged_as_unknown() {
    let server = MockServer::start().await;
    twilio_accepting_late("SMtoolate", Duration::from_secs(3))
        .mount(&server)
        .await;
    let mut config = twilio_config(&server.uri());
    config.timeout = Duration::from_millis(300);
    let h = Harness::messaging(
        Messaging::default().with(Arc::new(TwilioProvider::new(&config).unwrap())),
    );
    let output = h.send("sms", "+40721000111", "Salut").await;
    server.verify().await;
    let logged = h.only_record().await;
    assert_unknown(
        &output,
        &logged,
        "twilio did not confirm the message: no answer in time",
    );
    assert_eq!(
        logged["data"]["recipient"],
        json!({"phone": "+40721000111"})
    );
}

#[tokio::test]
async fn an_sns_server_error_is_sent_once_and_logged_as_unknown() {
    // The SDK's own retry would publish again; the tool must not either.
    let server = MockServer::start().await;
    sns_publish(sns_error(500, "InternalError", "Internal service error."))
        .expect(1)
        .mount(&server)
        .await;
    let config = MessagingConfig {
        sns: Some(SnsConfig::default()),
        ..MessagingConfig::default()
    };
    let aws = aws_config(&server.uri());
    let h = Harness::messaging(config::build_with_aws(&config, &aws).unwrap());
    let output = h.send("sms", "+40721000111", "Salut").await;
    server.verify().await;
    let logged = h.only_record().await;
    assert_eq!(logged["data"]["provider"], "aws_sns");
    assert_unknown(
        &output,
        &logged,
        "aws_sns did not confirm the message: InternalError: Internal service error.",
    );
}

/// A provider that holds each message until the test releases it, then
/// names it `SMheld<n>`; it counts what it was asked to send.
#[derive(Clone)]
struct HeldProvider {
    gate: Arc<Semaphore>,
    asked: Arc<AtomicUsize>,
}

impl HeldProvider {
    fn new() -> HeldProvider {
        HeldProvider {
            gate: Arc::new(Semaphore::new(0)),
            asked: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Lets one held message go.
    fn release(&self) {
        self.gate.add_permits(1);
    }

    /// How many messages it was asked to send.
    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl MessageProvider for HeldProvider {
    fn provider(&self) -> Provider {
        Provider::Twilio
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn send<'a>(&'a self, _message: &'a OutboundMessage) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let n = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
            self.gate.acquire().await.unwrap().forget();
            Ok(Sent {
                external_id: format!("SMheld{n}"),
                price: None,
            })
        })
    }
}

/// Tools sending SMS through a [`HeldProvider`], with sends bounded by
/// `send_deadline`; and the provider.
fn held_sms(send_deadline: Duration) -> (Harness, HeldProvider) {
    let provider = HeldProvider::new();
    let config = ToolsConfig {
        send_deadline,
        ..ToolsConfig::default()
    };
    let h = Harness::new(
        config,
        Messaging::default().with(Arc::new(provider.clone())),
    );
    (h, provider)
}

/// Runs `call` as a runtime does within a turn's `deadline`: the tool's
/// future is dropped when the deadline passes (`timeout_at(deadline,
/// tools.run(..))` in the Bedrock and OpenAI runtimes). None then.
async fn within_turn(h: &Harness, deadline: Duration, call: &ToolCall) -> Option<ToolOutput> {
    tokio::time::timeout(deadline, h.run(&turn("B0100001"), call))
        .await
        .ok()
}

#[tokio::test]
async fn a_send_that_outlives_the_turns_deadline_is_sent_once_and_logged_with_its_outcome() {
    let late = twilio_accepting_late("SMafterturn", Duration::from_millis(800));
    let (server, h) = on_twilio([late]).await;
    let turn_gave_up = within_turn(
        &h,
        Duration::from_millis(200),
        &send("sms", "+40721000111", "Salut"),
    )
    .await;
    assert_eq!(turn_gave_up, None, "the turn's deadline came first");

    let logged = h.only_record().await;
    server.verify().await;
    assert_eq!(
        logged,
        message_record(
            "sms",
            "twilio",
            json!({"phone": "+40721000111"}),
            Some("SMafterturn"),
            json!({"messageLength": 5, "cost": cost(0.0712, "USD", "estimated")})
        )
    );
}

#[tokio::test]
async fn a_send_past_its_own_deadline_is_logged_as_unknown_and_not_sent_again() {
    let (h, provider) = held_sms(Duration::from_millis(300));
    let turn_gave_up = within_turn(
        &h,
        Duration::from_millis(100),
        &send("sms", "+40721000111", "Salut"),
    )
    .await;
    assert_eq!(turn_gave_up, None);
    let logged = h.only_record().await;
    assert_eq!(provider.asked(), 1);
    assert_eq!(logged["data"]["subAction"], "send");
    assert_eq!(logged["data"]["metadata"]["deliveryStatus"], "pending");
    assert_eq!(
        logged["data"]["metadata"]["errorMessage"],
        "outcome unknown: twilio did not confirm the message: still sending after 300 ms, given up on"
    );
}

#[tokio::test]
async fn shutdown_waits_for_a_send_the_turn_left_behind_and_ships_its_record() {
    let (h, provider) = held_sms(Duration::from_secs(10));
    let turn_gave_up = within_turn(
        &h,
        Duration::from_millis(50),
        &send("sms", "+40721000111", "Salut"),
    )
    .await;
    assert_eq!(turn_gave_up, None);
    let sends = h.tools.sends();
    assert_eq!(sends.running(), 1);
    assert!(h.sink.records().is_empty(), "the send has not ended yet");

    // As `Serving::finish` does: the sends, then the action log's flush.
    provider.release();
    sends.finished().await;
    assert_eq!(sends.running(), 0);
    let report = h.shipper.shutdown(Duration::from_secs(2)).await;
    let records = h.sink.records();
    assert_eq!(records.len(), 1, "{report}");
    assert_eq!(records[0]["data"]["externalId"], "SMheld1");
    assert_eq!(provider.asked(), 1);
}

// -------------------------------------------------------------- WhatsApp

#[tokio::test]
async fn a_whatsapp_message_through_meta_is_logged_as_a_meta_message() {
    let text = "Programarea ta e confirmată pentru mâine la 10:00.";
    let server = whatsapp_expecting(text).await;
    let messaging = Messaging::default().with(Arc::new(
        WhatsAppProvider::new(&whatsapp_config(&server)).unwrap(),
    ));
    let h = Harness::priced(messaging);
    let output = h.send("meta", "+40721000111", text).await;
    assert_eq!(sent_id(&output, "meta"), WAMID);
    server.verify().await;
    // The Cloud API's answer has no price: the table's, for +40.
    assert_eq!(
        h.only_record().await,
        message_record(
            "meta_message",
            "meta",
            json!({"phone": "+40721000111"}),
            Some(WAMID),
            json!({"messageLength": text.chars().count(), "cost": cost(0.0425, "EUR", "estimated")})
        )
    );
}

// ------------------------------------------------------ SNS and SES (moto)

#[tokio::test]
async fn emails_through_ses_are_sent_and_logged_with_their_subject() {
    let Some(endpoint) = emulator() else { return };
    let aws = aws_config(&endpoint);
    let from = verified_ses_sender(&aws).await;
    let h = Harness::priced(ses_messaging(&aws, &from));
    let to = format!("ana@{}.example.ro", crate::support::unique_name("client"));
    let t = turn("B0100001");

    let text = "Bună Ana,\nprogramarea ta e mâine la 10:00.";
    let with_subject = h
        .call(
            "send_external_message",
            &[
                ("channel", "email"),
                ("to", &to),
                ("subject", "Confirmare programare"),
                ("message", text),
                ("name", "Ana Pop"),
            ],
        )
        .await;
    let first_id = sent_id(&with_subject, "email");
    let text_only = "Programare confirmată pentru joi\nVă așteptăm la 10:00.";
    let without_subject = h.run(&t, &send("email", &to, text_only)).await;
    let second_id = sent_id(&without_subject, "email");

    let data = moto_data(&endpoint).await;
    let email_to_ana = |id: &str, subject: &str, body: &str| {
        json!({
            "id": id,
            "source": from,
            "destinations": {"ToAddresses": [to]},
            "subject": subject,
            "body": body
        })
    };
    assert_eq!(
        recorded(&data, "ses", "Message", "id", &first_id),
        vec![&email_to_ana(&first_id, "Confirmare programare", text)]
    );
    let subject = "Programare confirmată pentru joi";
    assert_eq!(
        recorded(&data, "ses", "Message", "id", &second_id),
        vec![&email_to_ana(&second_id, subject, text_only)]
    );

    let records = h.records(2).await;
    let data_of = |id: &str| {
        records
            .iter()
            .find(|r| r["data"]["externalId"] == id)
            .unwrap_or_else(|| panic!("a record for {id} in {records:#?}"))["data"]
            .clone()
    };
    assert_eq!(
        data_of(&first_id),
        message_record(
            "email",
            "aws_ses",
            json!({"email": to, "name": "Ana Pop"}),
            Some(&first_id),
            json!({
                "subject": "Confirmare programare",
                "messageLength": text.chars().count(),
                "cost": cost(0.0001, "USD", "estimated")
            })
        )["data"]
    );
    let second = data_of(&second_id);
    assert_eq!(second["provider"], "aws_ses");
    assert_eq!(
        second["metadata"]["subject"],
        "Programare confirmată pentru joi"
    );
    assert_eq!(
        second["metadata"]["messageLength"],
        text_only.chars().count()
    );
}

#[tokio::test]
async fn an_email_from_an_unverified_ses_sender_is_logged_once_as_failed() {
    let Some(endpoint) = emulator() else { return };
    let aws = aws_config(&endpoint);
    let from = unique_sender();
    let h = Harness::messaging(ses_messaging(&aws, &from));
    let to = format!("ana@{}.example.ro", crate::support::unique_name("client"));
    let output = h
        .call(
            "send_external_message",
            &[
                ("channel", "email"),
                ("to", &to),
                ("subject", "Confirmare"),
                ("message", "Salut"),
            ],
        )
        .await;
    assert!(!output.ok);
    assert!(output.body.contains("MessageRejected"), "{output:?}");

    let logged = h.only_record().await;
    assert_eq!(logged["data"]["actionType"], "email");
    assert_eq!(logged["data"]["subAction"], "failed");
    assert_eq!(logged["data"]["provider"], "aws_ses");
    assert_eq!(logged["data"]["externalId"], Value::Null);
    assert_eq!(logged["data"]["recipient"], json!({"email": to}));
    assert_eq!(logged["data"]["metadata"]["deliveryStatus"], "failed");
    assert_eq!(logged["data"]["metadata"]["subject"], "Confirmare");
    let error = logged["data"]["metadata"]["errorMessage"].as_str().unwrap();
    assert!(
        error.contains("MessageRejected") && error.contains(&from),
        "{error}"
    );
}

#[tokio::test]
async fn an_sms_through_sns_is_sent_and_logged_once() {
    let Some(endpoint) = emulator() else { return };
    let aws = aws_config(&endpoint);
    let config = MessagingConfig {
        sns: Some(SnsConfig::default()),
        ..MessagingConfig::default()
    };
    let h = Harness::priced(config::build_with_aws(&config, &aws).unwrap());
    let phone = unique_phone();
    let text = "Programare confirmată: mâine la 10:00.";
    let output = h.send("sms", &phone, text).await;
    let id = sent_id(&output, "sms");

    let data = moto_data(&endpoint).await;
    assert_eq!(
        recorded(&data, "sns", "SMS", "message_id", &id),
        vec![&json!({"message_id": id, "phone_number": phone, "message": text})]
    );
    assert_eq!(
        h.only_record().await,
        message_record(
            "sms",
            "aws_sns",
            json!({"phone": phone}),
            Some(&id),
            // SNS Publish answers with a message id only: the table's price.
            json!({"messageLength": text.chars().count(), "cost": cost(0.00645, "USD", "estimated")})
        )
    );
}

// --------------------------------------------------------------- routing

#[tokio::test]
async fn each_tenants_sms_goes_to_its_routed_provider() {
    let Some(endpoint) = emulator() else { return };
    let server = twilio_accepting_one("SMtenantone").await;
    let config = MessagingConfig {
        twilio: Some(twilio_config(&server.uri())),
        sns: Some(SnsConfig::default()),
        routes: config::parse_routes("B0200002:sms=aws_sns").unwrap(),
        ..MessagingConfig::default()
    };
    let h = Harness::messaging(config::build_with_aws(&config, &aws_config(&endpoint)).unwrap());

    let one_phone = unique_phone();
    let one = h.send("sms", &one_phone, "Salut").await;
    assert_eq!(sent_id(&one, "sms"), "SMtenantone");
    let two_phone = unique_phone();
    let two = h
        .run(&turn("B0200002"), &send("sms", &two_phone, "Salut"))
        .await;
    let two_id = sent_id(&two, "sms");

    server.verify().await;
    let twilio_form = form(&server.received_requests().await.unwrap()[0]);
    assert_eq!(twilio_form["To"], one_phone);
    let data = moto_data(&endpoint).await;
    assert_eq!(
        recorded(&data, "sns", "SMS", "message_id", &two_id),
        vec![&json!({"message_id": two_id, "phone_number": two_phone, "message": "Salut"})]
    );
    assert!(
        recorded(&data, "sns", "SMS", "phone_number", &one_phone).is_empty(),
        "B0100001's message must not go through SNS"
    );

    let records = h.records(2).await;
    let by_tenant: BTreeMap<&str, (&Value, &Value, &Value)> = records
        .iter()
        .map(|r| {
            (
                r["businessId"].as_str().unwrap(),
                (
                    &r["data"]["provider"],
                    &r["data"]["externalId"],
                    &r["locationId"],
                ),
            )
        })
        .collect();
    assert_eq!(
        by_tenant,
        BTreeMap::from([
            (
                "B0100001",
                (&json!("twilio"), &json!("SMtenantone"), &json!("L0100001"))
            ),
            (
                "B0200002",
                (&json!("aws_sns"), &json!(two_id), &json!("L0200002"))
            ),
        ])
    );
}

// ------------------------------------------------------- what is refused

#[tokio::test]
async fn unknown_channels_missing_providers_and_unknown_tools_fail_without_a_record() {
    let (server, h) = on_twilio([]).await;
    let t = turn("B0100001");
    let message = |channel: &str, to: &str| send(channel, to, "Salut");

    let fax = h.run(&t, &message("fax", "+40721000111")).await;
    assert_eq!(fax, refused("parameter channel must be sms, email or meta"));
    let no_channel = h
        .call(
            "send_external_message",
            &[("to", "+40721000111"), ("message", "Salut")],
        )
        .await;
    assert!(!no_channel.ok, "{no_channel:?}");
    let nobody = h
        .call(
            "send_external_message",
            &[("channel", "sms"), ("message", "Salut")],
        )
        .await;
    assert_eq!(nobody, refused("parameter to is required"));
    let email = h.run(&t, &message("email", "ana@example.com")).await;
    assert_eq!(email, refused("no email provider is configured"));
    let unknown = h.call("delete_everything", &[]).await;
    assert_eq!(unknown, refused("there is no tool named delete_everything"));

    assert!(server.received_requests().await.unwrap().is_empty());
    h.records(0).await;
}
