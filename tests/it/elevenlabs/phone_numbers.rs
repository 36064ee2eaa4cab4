//! Phone numbers: the client's calls against a local server (paths, body
//! shapes, what is retried), and the stand-in holding those calls to the
//! contract's schemas.

use secrecy::SecretString;
use serde_json::{Value, json};
use voice_operator::elevenlabs::{
    AgentPlatform, ClientConfig, Deleted, ElevenLabsClient, ElevenLabsError, PhoneImport,
    PhoneNumber, PhoneProvider, SipOutbound,
};
use wiremock::matchers::body_json;

use super::api::{Api, answer, call, id, keyed};
use crate::support::fake_elevenlabs::{API_KEY, FakeElevenLabs, Faults, violations};

const NUMBERS: &str = "/v1/convai/phone-numbers";
const NUMBER_1: &str = "/v1/convai/phone-numbers/phnum_1";

fn twilio_import() -> PhoneImport {
    PhoneImport::Twilio {
        phone_number: "+40212345678".into(),
        label: "Clinica Dentara XYZ".into(),
        account_sid: "AC0123456789abcdef0123456789abcdef".into(),
        auth_token: SecretString::from("twilio-token"),
    }
}

fn sip_import() -> PhoneImport {
    PhoneImport::SipTrunk {
        phone_number: "+40212345679".into(),
        label: "Clinica Dentara XYZ".into(),
        outbound: Some(SipOutbound {
            address: "sip.clinic.example.ro".into(),
            transport: Some("tls".into()),
            media_encryption: None,
        }),
    }
}

#[tokio::test]
async fn list_reads_every_provider_and_the_assigned_agent() {
    let api = Api::start().await;
    api.expect(
        1,
        keyed("GET", NUMBERS),
        answer(
            200,
            json!([
                {"phone_number_id": "phnum_1", "phone_number": "+40212345678", "label": "a",
                 "provider": "twilio", "assigned_agent": {"agent_id": "agent_1", "agent_name": "A"}},
                {"phone_number_id": "phnum_2", "phone_number": "+40212345679", "label": "b",
                 "provider": "sip_trunk", "livekit_stack": "standard", "assigned_agent": null}
            ]),
        ),
    )
    .await;
    let numbers = api.client().list_phone_numbers().await.unwrap();
    assert_eq!(
        numbers,
        [
            PhoneNumber {
                phone_number_id: id("phnum_1"),
                phone_number: "+40212345678".into(),
                label: "a".into(),
                provider: PhoneProvider::Twilio,
                assigned_agent: Some("agent_1".into()),
            },
            PhoneNumber {
                phone_number_id: id("phnum_2"),
                phone_number: "+40212345679".into(),
                label: "b".into(),
                provider: PhoneProvider::SipTrunk,
                assigned_agent: None,
            },
        ]
    );
}

#[tokio::test]
async fn a_twilio_import_sends_sid_and_token_without_sms_and_is_never_resent_after_a_500() {
    let api = Api::start().await;
    api.expect(
        1,
        keyed("POST", NUMBERS).and(body_json(json!({
            "provider": "twilio",
            "phone_number": "+40212345678",
            "label": "Clinica Dentara XYZ",
            "sid": "AC0123456789abcdef0123456789abcdef",
            "token": "twilio-token",
            "enable_sms": false,
        }))),
        answer(200, json!({"phone_number_id": "phnum_1"})),
    )
    .await;
    let imported = api
        .client()
        .import_phone_number(&twilio_import(), None)
        .await
        .unwrap();
    assert_eq!(imported.as_str(), "phnum_1");

    let failing = Api::start().await;
    failing
        .expect(
            1,
            keyed("POST", NUMBERS),
            answer(500, json!({"detail": "boom"})),
        )
        .await;
    let err = failing
        .client()
        .import_phone_number(&twilio_import(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ElevenLabsError::Server { status: 500, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_sip_trunk_import_sends_the_outbound_trunk() {
    let api = Api::start().await;
    api.expect(
        1,
        keyed("POST", NUMBERS).and(body_json(json!({
            "provider": "sip_trunk",
            "phone_number": "+40212345679",
            "label": "Clinica Dentara XYZ",
            "outbound_trunk_config": {"address": "sip.clinic.example.ro", "transport": "tls"},
        }))),
        answer(200, json!({"phone_number_id": "phnum_2"})),
    )
    .await;
    let imported = api
        .client()
        .import_phone_number(&sip_import(), None)
        .await
        .unwrap();
    assert_eq!(imported.as_str(), "phnum_2");
}

#[tokio::test]
async fn assign_and_unassign_patch_agent_id_and_delete_tolerates_a_gone_number() {
    let api = Api::start().await;
    let assigned = json!({"phone_number_id": "phnum_1", "phone_number": "+40212345678",
        "label": "a", "provider": "twilio", "assigned_agent": {"agent_id": "agent_1", "agent_name": "A"}});
    let free = json!({"phone_number_id": "phnum_1", "phone_number": "+40212345678",
        "label": "a", "provider": "twilio", "assigned_agent": null});
    api.expect(
        1,
        keyed("PATCH", NUMBER_1).and(body_json(json!({"agent_id": "agent_1"}))),
        answer(200, assigned),
    )
    .await;
    api.expect(
        1,
        keyed("PATCH", NUMBER_1).and(body_json(json!({"agent_id": null}))),
        answer(200, free),
    )
    .await;
    api.expect(1, keyed("DELETE", NUMBER_1), answer(200, json!({})))
        .await;
    api.expect(
        1,
        call("DELETE", "/v1/convai/phone-numbers/phnum_gone"),
        answer(404, json!({"detail": "Not Found"})),
    )
    .await;
    let c = api.client();
    let number = id("phnum_1");
    let agent = id("agent_1");
    let on = c.assign_phone_number(&number, Some(&agent)).await.unwrap();
    assert_eq!(on.assigned_agent.as_deref(), Some("agent_1"));
    let off = c.assign_phone_number(&number, None).await.unwrap();
    assert_eq!(off.assigned_agent, None);
    assert_eq!(
        c.delete_phone_number(&number).await.unwrap(),
        Deleted::Removed
    );
    assert_eq!(
        c.delete_phone_number(&id("phnum_gone")).await.unwrap(),
        Deleted::AlreadyGone
    );
}

fn fake_client(fake: &FakeElevenLabs) -> ElevenLabsClient {
    ElevenLabsClient::new(ClientConfig::new(fake.uri(), SecretString::from(API_KEY))).unwrap()
}

/// The one response model an entry of the phone-number list must match.
fn response_model(number: &Value) -> &'static str {
    match number["provider"].as_str() {
        Some("sip_trunk") => "GetPhoneNumberSIPTrunkResponseModel",
        _ => "GetPhoneNumberTwilioResponseModel",
    }
}

#[tokio::test]
async fn the_stand_in_takes_the_clients_bodies_and_answers_as_the_response_models() {
    let fake = FakeElevenLabs::start(Faults::default()).await;
    let client = fake_client(&fake);
    fake.insert("agent_1", json!({"name": "Clinic"}));
    let agent = id("agent_1");
    let twilio = client
        .import_phone_number(&twilio_import(), None)
        .await
        .unwrap();
    // Imported straight onto the agent: the body's agent_id.
    let sip = client
        .import_phone_number(&sip_import(), Some(&agent))
        .await
        .unwrap();
    assert_eq!(
        fake.phone_numbers()[sip.as_str()]["assigned_agent"]["agent_id"],
        "agent_1"
    );
    let on = client
        .assign_phone_number(&twilio, Some(&agent))
        .await
        .unwrap();
    assert_eq!(on.assigned_agent.as_deref(), Some("agent_1"));

    let stored = fake.phone_numbers();
    assert_eq!(stored.len(), 2);
    for number in stored.values() {
        assert_eq!(
            violations(response_model(number), number, &[]),
            Vec::<Value>::new(),
            "{number}"
        );
    }
    assert_eq!(
        stored[twilio.as_str()]["assigned_agent"],
        json!({"agent_id": "agent_1", "agent_name": "Clinic"})
    );
    let listed = client.list_phone_numbers().await.unwrap();
    assert_eq!(listed.len(), 2);

    client.assign_phone_number(&twilio, None).await.unwrap();
    assert_eq!(
        fake.phone_numbers()[twilio.as_str()]["assigned_agent"],
        Value::Null
    );
    assert_eq!(
        client.delete_phone_number(&sip).await.unwrap(),
        Deleted::Removed
    );
    assert_eq!(fake.phone_numbers().len(), 1);
}

#[tokio::test]
async fn the_stand_in_refuses_a_twilio_import_without_its_token_and_a_wrong_agent_id_type() {
    let fake = FakeElevenLabs::start(Faults::default()).await;
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{}{path}", fake.uri()))
            .header("xi-api-key", API_KEY)
            .json(&body)
            .send()
    };
    let mut body = twilio_import().body();
    body.as_object_mut().unwrap().remove("token");
    let response = send(reqwest::Method::POST, NUMBERS, body).await.unwrap();
    assert_eq!(response.status(), 422);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["detail"][0]["loc"],
        json!(["body", "token"]),
        "{answer}"
    );
    assert_eq!(answer["detail"][0]["type"], "missing");

    let number = fake.insert_phone_number("+40212345678", None);
    let response = send(
        reqwest::Method::PATCH,
        &format!("{NUMBERS}/{number}"),
        json!({"agent_id": 7}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 422);

    let client = fake_client(&fake);
    let unknown = id("agent_nobody");
    let err = client
        .assign_phone_number(&id(&number), Some(&unknown))
        .await
        .unwrap_err();
    assert!(matches!(err, ElevenLabsError::NotFound { .. }), "{err}");
    let again = client
        .import_phone_number(&twilio_import(), None)
        .await
        .unwrap_err();
    assert!(matches!(err_status(&again), Some(400)), "{again}");
}

fn err_status(err: &ElevenLabsError) -> Option<u16> {
    match err {
        ElevenLabsError::Validation { status, .. } => Some(*status),
        _ => None,
    }
}
