//! The SaaS messaging providers as the tests fake them on wiremock: the
//! credentials, the provider configurations pointing at the fake, and the
//! replies Twilio and the WhatsApp Cloud API give; SNS and SES v2 answers
//! in their wire formats, for the faults the AWS emulator cannot make (a
//! server error, a timeout); and what the AWS emulator recorded of the
//! messages SNS and SES sent.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use secrecy::SecretString;
use serde_json::{Value, json};
use voice_operator::messaging::config::{self, MessagingConfig};
use voice_operator::messaging::ses::{SesConfig, SesProvider};
use voice_operator::messaging::sns::{SnsConfig, SnsProvider};
use voice_operator::messaging::twilio::{TwilioConfig, TwilioSender};
use voice_operator::messaging::whatsapp::WhatsAppConfig;
use voice_operator::messaging::{
    EmailAddress, MessageProvider, Messaging, OutboundMessage, PhoneNumber, SendError,
};
use wiremock::matchers::{body_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "twilio-test-token";
pub const TWILIO_FROM: &str = "+40312000000";
pub const TWILIO_PATH: &str =
    "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const ACCESS_TOKEN: &str = "EAAG-test-token";

/// Twilio at `base_url`, sending from [`TWILIO_FROM`], with a short timeout.
pub fn twilio_config(base_url: &str) -> TwilioConfig {
    let from = TwilioSender::Number(PhoneNumber::parse("from", TWILIO_FROM).unwrap());
    let mut config = TwilioConfig::new(ACCOUNT_SID, SecretString::from(AUTH_TOKEN), from);
    config.base_url = base_url.to_owned();
    config.timeout = Duration::from_secs(2);
    config
}

/// The WhatsApp Cloud API on `server`, Graph version in the path.
pub fn whatsapp_config(server: &MockServer) -> WhatsAppConfig {
    let mut config = WhatsAppConfig::new(PHONE_NUMBER_ID, SecretString::from(ACCESS_TOKEN));
    config.base_url = format!("{}/v21.0", server.uri());
    config
}

/// A Twilio error reply.
pub fn twilio_error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status
    }))
}

/// Answers every message posted to Twilio with `reply`.
pub fn twilio_reply(reply: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .respond_with(reply)
}

/// A Twilio fake that accepts exactly one message and names it `sid`.
pub async fn twilio_accepting_one(sid: &str) -> MockServer {
    let server = MockServer::start().await;
    twilio_reply(ResponseTemplate::new(201).set_body_json(json!({"sid": sid})))
        .expect(1)
        .mount(&server)
        .await;
    server
}

/// The form fields of a request to Twilio.
pub fn form(request: &Request) -> BTreeMap<String, String> {
    let body = std::str::from_utf8(&request.body).unwrap();
    reqwest::Url::parse(&format!("http://form.test/?{body}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The message id the WhatsApp fake gives the one message it takes.
pub const WAMID: &str = "wamid.HBgLNDA3MjEwMDAxMTEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA";

/// The WhatsApp Cloud API on a new wiremock server, expecting exactly one
/// text message `text` to +40721000111 with the bearer token, and answering
/// it with message id [`WAMID`].
pub async fn whatsapp_expecting(text: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE_NUMBER_ID}/messages")))
        .and(header(
            "authorization",
            format!("Bearer {ACCESS_TOKEN}").as_str(),
        ))
        .and(body_json(json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "40721000111",
            "type": "text",
            "text": {"preview_url": false, "body": text}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "40721000111", "wa_id": "40721000111"}],
            "messages": [{"id": WAMID}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    server
}

/// The entries of the emulator's `data[service][kind]` whose `key` is `id`.
pub fn recorded<'a>(
    data: &'a Value,
    service: &str,
    kind: &str,
    key: &str,
    id: &str,
) -> Vec<&'a Value> {
    data[service][kind]
        .as_array()
        .unwrap_or_else(|| panic!("{service}.{kind} in the emulator's data"))
        .iter()
        .filter(|entry| entry[key] == id)
        .collect()
}

/// Requests SNS takes as `Publish` (the awsQuery protocol: a form POST to
/// `/` with `Action=Publish`), answered with `reply`. Any other action
/// gets wiremock's 404, which the SDK reads as an error.
pub fn sns_publish(reply: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path("/"))
        .and(body_string_contains("Action=Publish"))
        .respond_with(reply)
}

/// SNS's answer to a `Publish` it took: a `PublishResponse` document
/// naming the message.
pub fn sns_published(message_id: &str) -> ResponseTemplate {
    let xml = format!(
        "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
         <PublishResult><MessageId>{message_id}</MessageId></PublishResult>\
         <ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId></ResponseMetadata>\
         </PublishResponse>"
    );
    ResponseTemplate::new(200).set_body_raw(xml, "text/xml")
}

/// SNS's answer to a request it failed: the awsQuery error document
/// (`ErrorResponse` with the `Sender` or `Receiver` type, the code and the
/// message), as the SNS API reference's common errors list them.
pub fn sns_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let xml = format!(
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
         <Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>9dd01905-5012-5f99-8663-4b3ecd0dfaef</RequestId></ErrorResponse>"
    );
    ResponseTemplate::new(status).set_body_raw(xml, "text/xml")
}

/// Requests SES v2 takes as `SendEmail` (restJson1: a JSON POST to
/// `/v2/email/outbound-emails`), answered with `reply`.
pub fn ses_send_email(reply: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path("/v2/email/outbound-emails"))
        .respond_with(reply)
}

/// SES v2's answer to a request it failed: the code in the
/// `x-amzn-ErrorType` header and the message in the JSON body.
pub fn ses_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-ErrorType", code)
        .set_body_json(json!({"message": message}))
}

/// An SNS provider on `aws` whose sends time out after `timeout`.
pub fn sns_provider(aws: &SdkConfig, timeout: Duration) -> SnsProvider {
    let config = SnsConfig {
        timeout,
        ..SnsConfig::default()
    };
    SnsProvider::new(aws, &config).unwrap()
}

/// An SES v2 provider on `aws` sending from `from`, as [`sns_provider`].
pub fn ses_provider(aws: &SdkConfig, from: EmailAddress, timeout: Duration) -> SesProvider {
    let mut config = SesConfig::new(from);
    config.timeout = timeout;
    SesProvider::new(aws, &config).unwrap()
}

/// What the provider `on` makes on a fresh stand-in holding `mock` says
/// when it sends `message`; the stand-in must have been asked exactly
/// once (no retry behind the provider's back).
pub async fn refused_once<P: MessageProvider>(
    mock: Mock,
    on: impl FnOnce(&MockServer) -> P,
    message: &OutboundMessage,
) -> SendError {
    let server = MockServer::start().await;
    mock.expect(1).mount(&server).await;
    let error = on(&server).send(message).await.unwrap_err();
    server.verify().await;
    error
}

/// Twilio accepting one message as `sid`, `delay` after it was asked.
pub fn twilio_accepting_late(sid: &str, delay: Duration) -> Mock {
    twilio_reply(
        ResponseTemplate::new(201)
            .set_body_json(json!({"sid": sid}))
            .set_delay(delay),
    )
    .expect(1)
}

/// Email through SES v2 (on the AWS emulator at `aws`), sent from `from`.
pub fn ses_messaging(aws: &SdkConfig, from: &str) -> Messaging {
    let config = MessagingConfig {
        ses: Some(SesConfig::new(EmailAddress::parse("from", from).unwrap())),
        ..MessagingConfig::default()
    };
    config::build_with_aws(&config, aws).unwrap()
}

/// A sender of its own that SES (on the emulator at `aws`) accepts: SES
/// refuses a sender that is not a verified identity.
pub async fn verified_ses_sender(aws: &SdkConfig) -> String {
    let from = crate::support::unique_sender();
    aws_sdk_sesv2::Client::new(aws)
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("create the sender identity");
    from
}
