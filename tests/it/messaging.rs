//! Every messaging provider against its real wire format: Twilio and the
//! WhatsApp Cloud API on wiremock, SNS and SES v2 through the real SDKs on
//! the local AWS emulator, SMTP against a small SMTP server on loopback;
//! and per-tenant routing built from the typed configuration.

use crate::support::providers::{
    ACCESS_TOKEN, ACCOUNT_SID, AUTH_TOKEN, PHONE_NUMBER_ID, TWILIO_PATH, WAMID, form, recorded,
    refused_once, ses_error, ses_provider, ses_send_email, sns_error, sns_provider, sns_publish,
    sns_published, twilio_accepting_one, twilio_config, twilio_reply, whatsapp_config,
    whatsapp_expecting,
};

use crate::support::smtp::SmtpServer;
use crate::support::{aws_config, emulator, moto_data, unique_phone};

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use voice_operator::actionlog::Money;
use voice_operator::actionlog::record::Provider;
use voice_operator::messaging::config::{self, MessagingConfig, MessagingConfigError};
use voice_operator::messaging::ses::{SesConfig, SesProvider};
use voice_operator::messaging::smtp::{SmtpConfig, SmtpProvider, SmtpSecurity};
use voice_operator::messaging::sns::{SnsConfig, SnsProvider};
use voice_operator::messaging::twilio::{TwilioConfig, TwilioProvider, TwilioSender};
use voice_operator::messaging::whatsapp::{WhatsAppConfig, WhatsAppProvider};
use voice_operator::messaging::{
    Channel, DEFAULT_SEND_TIMEOUT, EmailAddress, MessageProvider, Messaging, OutboundMessage,
    PhoneNumber, SendError, Sent, To,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sms(to: &str, text: &str) -> OutboundMessage {
    OutboundMessage {
        to: To::Phone(PhoneNumber::parse("to", to).unwrap()),
        subject: None,
        text: text.to_owned(),
    }
}

/// Checks that `provider` refuses `message` before sending it, with a reason
/// that contains `says` (any reason when it is empty).
async fn assert_invalid(provider: &dyn MessageProvider, message: &OutboundMessage, says: &str) {
    let error = provider.send(message).await.unwrap_err();
    assert!(
        matches!(&error, SendError::Invalid(m) if m.contains(says)),
        "{error:?}"
    );
}

/// The salon's sender address.
fn salon_address() -> EmailAddress {
    EmailAddress::parse("from", "programari@salon.example.ro").unwrap()
}

fn email(to: &str, subject: &str, text: &str) -> OutboundMessage {
    OutboundMessage {
        to: To::Email(EmailAddress::parse("to", to).unwrap()),
        subject: Some(subject.to_owned()),
        text: text.to_owned(),
    }
}

// ---------------------------------------------------------------- Twilio

fn twilio(base_url: &str, from: TwilioSender) -> TwilioProvider {
    let mut config = twilio_config(base_url);
    config.from = from;
    TwilioProvider::new(&config).unwrap()
}

fn twilio_number() -> TwilioSender {
    TwilioSender::Number(PhoneNumber::parse("from", "+40312000000").unwrap())
}

/// The error `provider` gets for an SMS when `server` answers each request
/// to `route` with one (status, body) of `replies` in turn; each reply must
/// be asked for exactly once.
async fn errors_for(
    server: &MockServer,
    route: &str,
    provider: &dyn MessageProvider,
    replies: impl IntoIterator<Item = (u16, Value)>,
) -> Vec<SendError> {
    let mut errors = Vec::new();
    for (status, body) in replies {
        server.reset().await;
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .expect(1)
            .mount(server)
            .await;
        errors.push(
            provider
                .send(&sms("+40721000111", "Salut"))
                .await
                .unwrap_err(),
        );
        server.verify().await;
    }
    errors
}

/// The form fields of the one request `server` received.
async fn twilio_form(server: &MockServer) -> BTreeMap<String, String> {
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    form(&requests[0])
}

#[tokio::test]
async fn twilio_posts_the_form_with_basic_auth_and_reads_sid_and_price() {
    let server = MockServer::start().await;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"));
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
            "account_sid": ACCOUNT_SID,
            "to": "+40721000111",
            "from": "+40312000000",
            "body": "ignored",
            "status": "queued",
            "price": "-0.07400",
            "price_unit": "USD",
            "error_code": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    let text = "Programare confirmată: mâine 10:00 & 50% avans = ok?";
    let sent = twilio(&server.uri(), twilio_number())
        .send(&sms("+40721000111", text))
        .await
        .unwrap();
    assert_eq!(
        sent,
        Sent {
            external_id: "SM1f0e8ae6ade43cb3c0ce4525424e404f".into(),
            price: Some(Money::new("price", 0.074, "USD").unwrap()),
        }
    );
    let form = twilio_form(&server).await;
    let expected: BTreeMap<String, String> = [
        ("To", "+40721000111"),
        ("From", "+40312000000"),
        ("Body", text),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(form, expected);
}

#[tokio::test]
async fn twilio_sends_through_a_messaging_service_and_a_null_price_stays_unknown() {
    let server = MockServer::start().await;
    twilio_reply(ResponseTemplate::new(201).set_body_json(json!({
        "sid": "SM00000000000000000000000000000001",
        "status": "accepted",
        "price": null,
        "price_unit": null
    })))
    .mount(&server)
    .await;
    let service = "MG9752274e9e519418a7406176694466fa";
    let sent = twilio(
        &server.uri(),
        TwilioSender::MessagingService(service.into()),
    )
    .send(&sms("+40721000111", "Salut"))
    .await
    .unwrap();
    assert_eq!(sent.external_id, "SM00000000000000000000000000000001");
    assert_eq!(sent.price, None);
    let form = twilio_form(&server).await;
    assert_eq!(
        form.get("MessagingServiceSid").map(String::as_str),
        Some(service)
    );
    assert!(!form.contains_key("From"), "{form:?}");
}

#[tokio::test]
async fn twilio_errors_are_classified() {
    let server = MockServer::start().await;
    let provider = twilio(&server.uri(), twilio_number());
    let cases = [
        (
            400,
            json!({
                "code": 21211,
                "message": "The 'To' number +40721000111 is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400
            }),
        ),
        (
            429,
            json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
        ),
        (
            401,
            json!({"code": 20003, "message": "Authenticate", "status": 401}),
        ),
        (
            503,
            json!({"code": 20500, "message": "Internal Server Error", "status": 503}),
        ),
    ];
    // Each reply is asked for exactly once: the provider makes one attempt.
    let errors = errors_for(&server, TWILIO_PATH, &provider, cases).await;
    assert_eq!(
        errors[0],
        SendError::Permanent {
            provider: Provider::Twilio,
            message: "HTTP 400, error 21211: The 'To' number +40721000111 is not a valid phone number. (https://www.twilio.com/docs/errors/21211)".into()
        }
    );
    assert!(
        matches!(&errors[1], SendError::Retryable { message, .. } if message.contains("20429")),
        "{:?}",
        errors[1]
    );
    assert!(
        matches!(&errors[2], SendError::Auth { message, .. } if message.contains("Authenticate")),
        "{:?}",
        errors[2]
    );
    // The message may have been created before the server failed.
    assert!(
        matches!(&errors[3], SendError::Unknown { message, .. } if message.contains("20500")),
        "{:?}",
        errors[3]
    );
    for error in &errors {
        assert!(!error.to_string().contains(AUTH_TOKEN));
    }
}

#[tokio::test]
async fn twilio_refuses_what_it_cannot_send_before_any_call() {
    let server = MockServer::start().await;
    let provider = twilio(&server.uri(), twilio_number());
    let to_email = email("ana@example.com", "Programare", "Salut");
    assert_invalid(&provider, &to_email, "phone numbers").await;
    assert_invalid(&provider, &sms("+40721000111", "  "), "").await;
    assert_invalid(&provider, &sms("+40721000111", &"a".repeat(1601)), "").await;
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_twilio_timeout_is_unknown_and_a_refused_connection_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(5)))
        .expect(1)
        .mount(&server)
        .await;
    let mut config =
        TwilioConfig::new(ACCOUNT_SID, SecretString::from(AUTH_TOKEN), twilio_number());
    config.base_url = server.uri();
    config.timeout = Duration::from_millis(200);
    let slow = TwilioProvider::new(&config).unwrap();
    let error = slow.send(&sms("+40721000111", "Salut")).await.unwrap_err();
    // The request reached Twilio, which may have created the message.
    assert!(
        matches!(&error, SendError::Unknown { message, .. } if message.starts_with("no answer in time")),
        "{error:?}"
    );
    server.verify().await;

    let closed = format!("http://127.0.0.1:{}", crate::support::free_port());
    let error = twilio(&closed, twilio_number())
        .send(&sms("+40721000111", "Salut"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SendError::Retryable { message, .. } if message.starts_with("cannot connect")),
        "{error:?}"
    );
}

// -------------------------------------------------------------- WhatsApp

fn whatsapp(server: &MockServer) -> WhatsAppProvider {
    WhatsAppProvider::new(&whatsapp_config(server)).unwrap()
}

#[tokio::test]
async fn whatsapp_posts_a_text_with_the_bearer_token_and_reads_the_message_id() {
    let text = "Programarea ta e confirmată pentru mâine la 10:00.";
    let server = whatsapp_expecting(text).await;
    let sent = whatsapp(&server).send(&sms("+40721000111", text)).await;
    assert_eq!(
        sent.unwrap(),
        Sent {
            external_id: WAMID.into(),
            price: None,
        }
    );
}

#[tokio::test]
async fn whatsapp_errors_are_classified_by_graph_code() {
    let server = MockServer::start().await;
    let provider = whatsapp(&server);
    let graph = |code: i64, message: &str| {
        json!({"error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_subcode": 2494055,
            "fbtrace_id": "AazxL5-1Ni8kTn6ylbLeN2V"
        }})
    };
    let cases = [
        (400, graph(130429, "(#130429) Rate limit hit")),
        (
            401,
            graph(190, "Error validating access token: Session has expired"),
        ),
        (400, graph(131026, "(#131026) Message undeliverable")),
    ];
    let route = format!("/v21.0/{PHONE_NUMBER_ID}/messages");
    let errors = errors_for(&server, &route, &provider, cases).await;
    assert!(
        matches!(&errors[0], SendError::Retryable { provider: Provider::Meta, message } if message.contains("code 130429")),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(&errors[1], SendError::Auth { provider: Provider::Meta, message } if message.contains("Session has expired")),
        "{:?}",
        errors[1]
    );
    assert!(
        matches!(&errors[2], SendError::Permanent { provider: Provider::Meta, message } if message.contains("undeliverable")),
        "{:?}",
        errors[2]
    );
    for error in &errors {
        assert!(!error.to_string().contains(ACCESS_TOKEN));
    }
}

#[tokio::test]
async fn whatsapp_refuses_an_email_recipient_before_any_call() {
    let server = MockServer::start().await;
    let to_email = email("ana@example.com", "Programare", "Salut");
    assert_invalid(&whatsapp(&server), &to_email, "meta sends to phone numbers").await;
    assert!(server.received_requests().await.unwrap().is_empty());
}

// ------------------------------------------------------ SNS and SES (moto)

#[tokio::test]
async fn sns_publishes_an_sms_the_emulator_records() {
    let Some(endpoint) = emulator() else { return };
    let aws = aws_config(&endpoint);
    let config = SnsConfig {
        sender_id: Some("SalonAna".into()),
        ..SnsConfig::default()
    };
    let provider = SnsProvider::new(&aws, &config).unwrap();
    let phone = unique_phone();
    let text = "Programare confirmată: mâine la 10:00.";
    let sent = provider.send(&sms(&phone, text)).await.unwrap();
    assert_eq!(sent.price, None);

    let data = moto_data(&endpoint).await;
    assert_eq!(
        recorded(&data, "sns", "SMS", "message_id", &sent.external_id),
        vec![&json!({"message_id": sent.external_id, "phone_number": phone, "message": text})]
    );
}

#[tokio::test]
async fn ses_refuses_an_unverified_sender_then_sends_once_it_is_verified() {
    let Some(endpoint) = emulator() else { return };
    let aws = aws_config(&endpoint);
    let client = aws_sdk_sesv2::Client::new(&aws);
    // A domain of its own, so no identity verified by another test covers it.
    let from = format!(
        "programari@{}.example.com",
        crate::support::unique_name("salon")
    );
    let to = format!("ana@{}.example.ro", crate::support::unique_name("client"));
    let provider = SesProvider::new(
        &aws,
        &SesConfig::new(EmailAddress::parse("from", &from).unwrap()),
    )
    .unwrap();
    let subject = "Confirmare programare – mâine";
    let text = "Bună Ana,\nprogramarea ta e mâine la 10:00.";

    let error = provider.send(&email(&to, subject, text)).await.unwrap_err();
    assert_eq!(
        error,
        SendError::Permanent {
            provider: Provider::AwsSes,
            message: format!("MessageRejected: Email address not verified {from}")
        }
    );

    client
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("create the sender identity");
    let sent = provider.send(&email(&to, subject, text)).await.unwrap();

    let data = moto_data(&endpoint).await;
    assert_eq!(
        recorded(&data, "ses", "Message", "id", &sent.external_id),
        vec![&json!({
            "id": sent.external_id,
            "source": from,
            "destinations": {"ToAddresses": [to]},
            "subject": subject,
            "body": text
        })]
    );
}

#[tokio::test]
async fn aws_providers_refuse_the_wrong_recipient_before_any_call() {
    // Nothing listens here: reaching the network would be Retryable.
    let aws = aws_config(&format!("http://127.0.0.1:{}", crate::support::free_port()));
    let sns = SnsProvider::new(&aws, &SnsConfig::default()).unwrap();
    let to_email = email("ana@example.com", "Programare", "Salut");
    assert_invalid(&sns, &to_email, "aws_sns sends to phone numbers").await;
    assert_invalid(&sns, &sms("+40721000111", &"a".repeat(1601)), "").await;

    let ses = SesProvider::new(&aws, &SesConfig::new(salon_address())).unwrap();
    let to_phone = sms("+40721000111", "Salut");
    assert_invalid(&ses, &to_phone, "aws_ses sends to email addresses").await;
    let mut no_subject = email("ana@example.com", "x", "Salut");
    no_subject.subject = None;
    let error = ses.send(&no_subject).await.unwrap_err();
    assert_eq!(error, SendError::Invalid("an email needs a subject".into()));

    // And a connection refused is retryable: nothing was sent.
    let error = sns.send(&sms("+40721000111", "Salut")).await.unwrap_err();
    assert!(
        matches!(&error, SendError::Retryable { message, .. } if message.starts_with("cannot connect")),
        "{error:?}"
    );
}

// ------------------------------------ SNS and SES: one attempt per send

/// An SNS provider on `server` whose sends time out after `timeout`. The
/// shared SDK settings allow two attempts; the provider must not.
fn sns_on(server: &MockServer, timeout: Duration) -> SnsProvider {
    sns_provider(&aws_config(&server.uri()), timeout)
}

/// An SES v2 provider on `server`, as [`sns_on`].
fn ses_on(server: &MockServer, timeout: Duration) -> SesProvider {
    ses_provider(&aws_config(&server.uri()), salon_address(), timeout)
}

/// The SMS every fault case here sends.
fn salut() -> OutboundMessage {
    sms("+40721000111", "Salut")
}

/// The email every fault case here sends.
fn programare() -> OutboundMessage {
    email("ana@example.com", "Programare", "Salut")
}

/// What SNS on a stand-in answering `reply` once makes of [`salut`].
async fn sns_refusal(reply: ResponseTemplate, timeout: Duration) -> SendError {
    refused_once(sns_publish(reply), |s| sns_on(s, timeout), &salut()).await
}

/// What SES on a stand-in answering `reply` once makes of [`programare`].
async fn ses_refusal(reply: ResponseTemplate) -> SendError {
    let two = Duration::from_secs(2);
    refused_once(ses_send_email(reply), |s| ses_on(s, two), &programare()).await
}

#[tokio::test]
async fn the_sns_and_ses_clients_make_one_attempt_within_the_send_timeout() {
    // The shared settings say two attempts of 10 s (support::aws_config).
    let aws = aws_config("http://127.0.0.1:9");
    assert_eq!(aws.retry_config().unwrap().max_attempts(), 2);
    let timeout = Duration::from_millis(1500);
    let sns = sns_provider(&aws, timeout);
    let ses = ses_provider(&aws, salon_address(), timeout);
    let sns = sns.client().config();
    let ses = ses.client().config();
    assert_eq!(sns.retry_config().unwrap().max_attempts(), 1);
    assert_eq!(ses.retry_config().unwrap().max_attempts(), 1);
    for timeouts in [sns.timeout_config().unwrap(), ses.timeout_config().unwrap()] {
        assert_eq!(timeouts.operation_attempt_timeout(), Some(timeout));
        assert_eq!(timeouts.operation_timeout(), Some(timeout));
        assert!(timeouts.connect_timeout().unwrap() < timeout);
    }

    // What `build` makes for production has the same settings.
    assert_eq!(SnsConfig::default().timeout, DEFAULT_SEND_TIMEOUT);
    assert_eq!(
        SesConfig::new(salon_address()).timeout,
        DEFAULT_SEND_TIMEOUT
    );
    let zero = SnsConfig {
        timeout: Duration::ZERO,
        ..SnsConfig::default()
    };
    let error = SnsProvider::new(&aws, &zero).unwrap_err().to_string();
    assert!(error.starts_with("sns.timeout: "), "{error}");
}

#[tokio::test]
async fn the_aws_stand_ins_answer_in_the_services_wire_formats() {
    // What the real SDKs read from the stand-ins is what SNS and SES send:
    // a MessageId, or an error with its code and message.
    let server = MockServer::start().await;
    sns_publish(sns_published("94f20ce6-13c5-43a0-9a9e-ca52d816e90b"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    sns_publish(sns_error(
        400,
        "InvalidParameter",
        "Invalid parameter: PhoneNumber",
    ))
    .mount(&server)
    .await;
    let sns = sns_on(&server, Duration::from_secs(2));
    let sent = sns.send(&sms("+40721000111", "Salut")).await.unwrap();
    assert_eq!(sent.external_id, "94f20ce6-13c5-43a0-9a9e-ca52d816e90b");
    let error = sns.send(&sms("+40721000111", "Salut")).await.unwrap_err();
    assert_eq!(
        error,
        SendError::Permanent {
            provider: Provider::AwsSns,
            message: "InvalidParameter: Invalid parameter: PhoneNumber".into()
        }
    );
    let form = form(&server.received_requests().await.unwrap()[0]);
    assert_eq!(form["Action"], "Publish");
    assert_eq!(form["PhoneNumber"], "+40721000111");

    let error = ses_refusal(ses_error(
        400,
        "MessageRejected",
        "Email address is not verified.",
    ))
    .await;
    assert_eq!(
        error,
        SendError::Permanent {
            provider: Provider::AwsSes,
            message: "MessageRejected: Email address is not verified.".into()
        }
    );
}

#[tokio::test]
async fn an_aws_server_error_is_asked_once_and_its_outcome_unknown() {
    // The SDK's standard retry would ask again after a 5xx, and SNS may
    // have sent the SMS before it failed.
    let error = sns_refusal(
        sns_error(500, "InternalError", "Internal service error."),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        error,
        SendError::Unknown {
            provider: Provider::AwsSns,
            message: "InternalError: Internal service error.".into()
        }
    );

    let error = ses_refusal(ses_error(503, "ServiceUnavailable", "Service unavailable.")).await;
    assert!(
        matches!(&error, SendError::Unknown { provider: Provider::AwsSes, message } if message.contains("ServiceUnavailable")),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_aws_send_that_gets_no_answer_in_time_is_asked_once_and_unknown() {
    let late = sns_published("late").set_delay(Duration::from_secs(3));
    let error = sns_refusal(late, Duration::from_millis(300)).await;
    assert!(
        matches!(&error, SendError::Unknown { provider: Provider::AwsSns, message } if message.starts_with("no answer in time")),
        "{error:?}"
    );
}

#[tokio::test]
async fn aws_throttling_is_asked_once_and_retryable() {
    // Throttled requests are turned away unprocessed: the tool may send
    // again, but the client itself does not.
    let throttled = sns_error(400, "Throttling", "Rate exceeded");
    let error = sns_refusal(throttled, Duration::from_secs(2)).await;
    assert!(error.is_retryable(), "{error:?}");

    let throttled = ses_error(429, "TooManyRequestsException", "Too many requests");
    let error = ses_refusal(throttled).await;
    assert!(error.is_retryable(), "{error:?}");
}

// ------------------------------------------------------------------ SMTP

fn smtp(port: u16, timeout: Duration) -> SmtpProvider {
    let mut config = SmtpConfig::new("127.0.0.1", SmtpSecurity::None, salon_address());
    config.port = port;
    config.from_name = Some("Salon Ana".into());
    config.timeout = timeout;
    SmtpProvider::new(&config).unwrap()
}

/// Why `provider` could not send a short email to ana@client.example.com.
async fn smtp_refusal(provider: SmtpProvider) -> SendError {
    provider
        .send(&email("ana@client.example.com", "Programare", "Salut"))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn smtp_delivers_envelope_headers_and_body_with_our_message_id() {
    let server = SmtpServer::start("250 2.1.5 Ok").await;
    let text = "Programarea ta e maine la 10:00.\n.Linie care incepe cu punct.";
    let sent = smtp(server.port, Duration::from_secs(5))
        .send(&email(
            "ana@client.example.com",
            "Confirmare programare",
            text,
        ))
        .await
        .unwrap();
    assert_eq!(sent.price, None);
    assert!(
        sent.external_id.starts_with('<') && sent.external_id.ends_with("@salon.example.ro>"),
        "{}",
        sent.external_id
    );

    let received = server.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.mail_from, "<programari@salon.example.ro>");
    assert_eq!(message.rcpt_to, vec!["<ana@client.example.com>"]);
    let headers = message.headers();
    assert_eq!(headers["message-id"], sent.external_id);
    assert_eq!(headers["subject"], "Confirmare programare");
    assert_eq!(headers["to"], "ana@client.example.com");
    assert_eq!(
        headers["from"],
        "\"Salon Ana\" <programari@salon.example.ro>"
    );
    assert!(
        headers["content-type"].starts_with("text/plain"),
        "{headers:?}"
    );
    assert!(headers.contains_key("date"), "{headers:?}");
    assert_eq!(message.body().trim_end().replace("\r\n", "\n"), text);
}

#[tokio::test]
async fn smtp_rejections_are_permanent_and_deferrals_retryable() {
    let rejecting = SmtpServer::start(
        "550 5.1.1 <ana@client.example.com>: Recipient address rejected: User unknown",
    )
    .await;
    let error = smtp_refusal(smtp(rejecting.port, Duration::from_secs(5))).await;
    assert!(
        matches!(&error, SendError::Permanent { provider: Provider::Smtp, message } if message.contains("550") && message.contains("User unknown")),
        "{error:?}"
    );
    assert!(rejecting.received().is_empty());

    let deferring = SmtpServer::start("451 4.3.0 Temporary lookup failure, try again later").await;
    let error = smtp_refusal(smtp(deferring.port, Duration::from_secs(5))).await;
    assert!(
        matches!(&error, SendError::Retryable { provider: Provider::Smtp, message } if message.contains("451")),
        "{error:?}"
    );
    assert!(deferring.received().is_empty());
}

#[tokio::test]
async fn smtp_silence_is_unknown_and_a_refused_connection_retryable() {
    // Takes the connection and never greets.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let started = std::time::Instant::now();
    let error = smtp_refusal(smtp(port, Duration::from_millis(300))).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    // Where the session stopped is not known, so neither is the outcome.
    assert!(
        matches!(&error, SendError::Unknown { message, .. } if message.starts_with("no answer within")),
        "{error:?}"
    );
    holder.abort();

    let error = smtp_refusal(smtp(crate::support::free_port(), Duration::from_secs(2))).await;
    assert!(
        matches!(&error, SendError::Retryable { message, .. } if message.starts_with("Connection error")),
        "{error:?}"
    );
}

// --------------------------------------------------------------- Routing

/// Twilio at `twilio_url`, SNS, and SES and SMTP sending from the salon's
/// address; no routes and no chosen defaults.
fn every_provider_but_whatsapp(twilio_url: &str) -> MessagingConfig {
    MessagingConfig {
        twilio: Some(twilio_config(twilio_url)),
        sns: Some(SnsConfig::default()),
        ses: Some(SesConfig::new(salon_address())),
        smtp: Some(SmtpConfig::new(
            "127.0.0.1",
            SmtpSecurity::None,
            salon_address(),
        )),
        ..MessagingConfig::default()
    }
}

/// Checks the provider `messaging` picks for each business and channel.
fn assert_picks(messaging: &Messaging, picks: &[(&str, Channel, Provider)]) {
    for &(business, channel, provider) in picks {
        let chosen = messaging.provider_for(business, channel).unwrap();
        assert_eq!(chosen.provider(), provider, "{business} {channel:?}");
    }
}

#[tokio::test]
async fn a_tenant_route_overrides_the_channel_default() {
    let server = twilio_accepting_one("SMdefault").await;
    let config = MessagingConfig {
        whatsapp: Some(WhatsAppConfig::new(
            PHONE_NUMBER_ID,
            SecretString::from(ACCESS_TOKEN),
        )),
        routes: config::parse_routes(
            "B0100001:sms=aws_sns,B0100001:email=smtp,B0200002:sms=twilio",
        )
        .unwrap(),
        ..every_provider_but_whatsapp(&server.uri())
    };
    // The AWS clients are built but never called here.
    let aws = aws_config(&format!("http://127.0.0.1:{}", crate::support::free_port()));
    let messaging = config::build_with_aws(&config, &aws).unwrap();
    assert_eq!(
        messaging.describe(),
        "sms: twilio, email: aws_ses, meta: meta"
    );

    assert_picks(
        &messaging,
        &[
            ("B0100001", Channel::Sms, Provider::AwsSns),
            ("B0100001", Channel::Email, Provider::Smtp),
            ("B0100001", Channel::Meta, Provider::Meta),
            ("B0200002", Channel::Sms, Provider::Twilio),
            ("B0200002", Channel::Email, Provider::AwsSes),
            ("B0300003", Channel::Sms, Provider::Twilio),
        ],
    );

    // The default really is the configured Twilio client.
    let sent = messaging
        .provider_for("B0300003", Channel::Sms)
        .unwrap()
        .send(&sms("+40721000111", "Salut"))
        .await
        .unwrap();
    assert_eq!(sent.external_id, "SMdefault");
}

#[tokio::test]
async fn defaults_can_be_chosen_and_missing_channels_say_so() {
    let config = MessagingConfig {
        sms_default: Some("aws_sns".into()),
        email_default: Some("smtp".into()),
        routes: config::parse_routes("B0100001:sms=twilio").unwrap(),
        ..every_provider_but_whatsapp("http://127.0.0.1:9")
    };
    let aws = aws_config("http://127.0.0.1:9");
    let messaging = config::build_with_aws(&config, &aws).unwrap();
    assert_eq!(
        messaging.describe(),
        "sms: aws_sns, email: smtp, meta: not configured"
    );
    assert_picks(
        &messaging,
        &[
            ("B0200002", Channel::Sms, Provider::AwsSns),
            ("B0100001", Channel::Sms, Provider::Twilio),
            ("B0100001", Channel::Email, Provider::Smtp),
        ],
    );
    assert_eq!(
        messaging.provider_for("B0100001", Channel::Meta).err(),
        Some(SendError::NotConfigured(Channel::Meta))
    );
}

#[tokio::test]
async fn an_unknown_provider_in_a_route_names_the_entry() {
    let config = MessagingConfig {
        twilio: Some(twilio_config("http://127.0.0.1:9")),
        routes: config::parse_routes("B0100001:sms=twilio,B0200002:sms=nexmo").unwrap(),
        ..MessagingConfig::default()
    };
    let error = config::build(&config)
        .await
        .err()
        .expect("nexmo is not configured");
    match &error {
        MessagingConfigError::Route { entry, reason } => {
            assert_eq!(entry, "B0200002:sms=nexmo");
            assert_eq!(
                reason,
                "nexmo is not a configured sms provider (configured: twilio)"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "route \"B0200002:sms=nexmo\": nexmo is not a configured sms provider (configured: twilio)"
    );

    let error = config::parse_routes("B0100001:sms=twilio,B0200002-sms=twilio")
        .err()
        .unwrap();
    assert!(
        matches!(&error, MessagingConfigError::Route { entry, .. } if entry == "B0200002-sms=twilio"),
        "{error:?}"
    );
}

/// The Helm chart's `pricing` values (as in its ci/all-values.yaml) are a
/// price table and a price per credit the operator reads: the chart
/// renders `pricing.messages` under `messages` into the file
/// `--price-table` names.
#[test]
fn the_chart_s_pricing_values_are_what_the_operator_reads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/voice-operator/ci/all-values.yaml");
    let values: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let pricing = &values["pricing"];
    let messages = pricing["messages"].as_array().expect("pricing.messages");
    assert!(!messages.is_empty());
    let file = serde_json::json!({ "messages": messages }).to_string();
    let table = voice_operator::messaging::pricing::PriceTable::parse(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(table.len(), messages.len());
    let per_credit = pricing["pricePerCredit"].as_str().unwrap();
    voice_operator::actionlog::cost::Money::parse("pricing.pricePerCredit", per_credit)
        .unwrap_or_else(|e| panic!("{per_credit}: {e}"));
}
