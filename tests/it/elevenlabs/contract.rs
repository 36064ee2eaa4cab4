//! ElevenLabs' published contract (the OpenAPI document in
//! `shared/fixtures/elevenlabs/`) against our side: the stand-in refuses
//! what the real API refuses and answers as the response models say, the
//! bodies the operator builds pass the request schemas, and a voice model
//! the language cannot use is stopped by the CRD before any call.

use kube::CustomResourceExt;
use serde_json::{Value, json};
use voice_operator::controller::desired::{OperatorSettings, agent};
use voice_operator::crd::{
    AnalysisSpec, DataCollectionItem, DataType, EvaluationCriterion, LimitsSpec, VoiceAgent,
    VoiceModel, VoiceSpec,
};
use voice_operator::testkit::fixtures::{clinic, operator_settings};

use crate::support::fake_elevenlabs::{
    API_KEY, CONVERSATION_CONFIG, CREATE_BODY, FakeElevenLabs, Faults, PATCH_BODY,
    PLATFORM_SETTINGS, violations,
};

/// A Romanian agent body the contract accepts, with a multilingual model.
fn valid_body() -> Value {
    json!({
        "name": "Agent Test",
        "tags": ["voice-operator"],
        "conversation_config": {
            "agent": {"language": "ro", "first_message": "Bună ziua!", "prompt": {"prompt": "Help."}},
            "tts": {"voice_id": "21m00Tcm4TlvDq8ikWAM", "model_id": "eleven_flash_v2_5"},
            "turn": {"turn_timeout": 10},
            "conversation": {"max_duration_seconds": 300}
        }
    })
}

/// Sends `body` with the API key and returns the status and JSON answer.
async fn send(
    fake: &FakeElevenLabs,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", fake.uri());
    let mut request = client
        .request(method.parse().unwrap(), url)
        .header("xi-api-key", API_KEY);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The one `detail` entry of a refusal, checked against `HTTPValidationError`.
fn only_detail(answer: &Value) -> &Value {
    assert_eq!(
        violations("HTTPValidationError", answer, &[]),
        Vec::<Value>::new()
    );
    let detail = answer["detail"].as_array().expect("a detail list");
    assert_eq!(detail.len(), 1, "{answer}");
    &detail[0]
}

#[tokio::test]
async fn the_stand_in_refuses_wrong_types_unknown_enum_values_and_missing_fields_with_422() {
    let fake = FakeElevenLabs::start(Faults::default()).await;
    let create = "/v1/convai/agents/create";

    let mut wrong_type = valid_body();
    wrong_type["conversation_config"]["turn"]["turn_timeout"] = json!("ten");
    let (status, answer) = send(&fake, "POST", create, Some(&wrong_type)).await;
    assert_eq!(status, 422, "{answer}");
    let detail = only_detail(&answer);
    assert_eq!(detail["type"], "float_type");
    assert_eq!(
        detail["loc"],
        json!(["body", "conversation_config", "turn", "turn_timeout"])
    );

    let mut unknown_model = valid_body();
    unknown_model["conversation_config"]["tts"]["model_id"] = json!("eleven_flash_v9");
    let (status, answer) = send(&fake, "POST", create, Some(&unknown_model)).await;
    assert_eq!(status, 422, "{answer}");
    let detail = only_detail(&answer);
    assert_eq!(detail["type"], "enum");
    assert_eq!(
        detail["loc"],
        json!(["body", "conversation_config", "tts", "model_id"])
    );
    assert!(
        detail["msg"]
            .as_str()
            .unwrap()
            .contains("'eleven_flash_v2_5'"),
        "{detail}"
    );

    let (status, answer) = send(&fake, "POST", create, Some(&json!({"name": "x"}))).await;
    assert_eq!(status, 422, "{answer}");
    let detail = only_detail(&answer);
    assert_eq!(
        (&detail["type"], &detail["loc"]),
        (&json!("missing"), &json!(["body", "conversation_config"]))
    );

    let mut out_of_range = valid_body();
    out_of_range["conversation_config"]["tts"]["speed"] = json!(2.0);
    let (status, answer) = send(&fake, "POST", create, Some(&out_of_range)).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(only_detail(&answer)["type"], "less_than_equal");

    assert!(fake.agents().is_empty(), "nothing refused was stored");
}

#[tokio::test]
async fn the_stand_in_enforces_the_language_rule_on_create_and_on_patch() {
    let fake = FakeElevenLabs::start(Faults::default()).await;
    let create = "/v1/convai/agents/create";
    for model in [
        Value::Null,
        json!("eleven_flash_v2"),
        json!("eleven_turbo_v2"),
    ] {
        let mut body = valid_body();
        body["conversation_config"]["tts"]["model_id"] = model.clone();
        if model.is_null() {
            body["conversation_config"]["tts"]
                .as_object_mut()
                .unwrap()
                .remove("model_id");
        }
        let (status, answer) = send(&fake, "POST", create, Some(&body)).await;
        assert_eq!(status, 400, "{model}: {answer}");
        assert_eq!(
            only_detail(&answer)["msg"],
            "Non-english Agents must use turbo or flash v2_5."
        );
    }
    let mut english = valid_body();
    english["conversation_config"]["agent"]["language"] = json!("en");
    let (status, answer) = send(&fake, "POST", create, Some(&english)).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        only_detail(&answer)["msg"],
        "English Agents must use turbo or flash v2."
    );
    english["conversation_config"]["tts"]["model_id"] = json!("eleven_flash_v2");
    assert_eq!(send(&fake, "POST", create, Some(&english)).await.0, 200);

    let (status, answer) = send(&fake, "POST", create, Some(&valid_body())).await;
    assert_eq!(status, 200, "{answer}");
    let path = format!("/v1/convai/agents/{}", answer["agent_id"].as_str().unwrap());
    let before = fake.agents();
    // PATCH takes any object in its schema; the merged agent is what counts.
    let to_english_only = json!({"conversation_config": {"tts": {"model_id": "eleven_flash_v2"}}});
    let (status, answer) = send(&fake, "PATCH", &path, Some(&to_english_only)).await;
    assert_eq!(status, 400, "{answer}");
    let too_stable = json!({"conversation_config": {"tts": {"stability": 1.5}}});
    let (status, answer) = send(&fake, "PATCH", &path, Some(&too_stable)).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        only_detail(&answer)["loc"],
        json!(["body", "conversation_config", "tts", "stability"])
    );
    let bad_privacy = json!({"platform_settings": {"privacy": {"record_voice": "no"}}});
    let (status, answer) = send(&fake, "PATCH", &path, Some(&bad_privacy)).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        only_detail(&answer)["loc"],
        json!(["body", "platform_settings", "privacy", "record_voice"])
    );
    assert_eq!(fake.agents(), before, "a refused PATCH changes nothing");

    let multilingual =
        json!({"conversation_config": {"tts": {"model_id": "eleven_multilingual_v2"}}});
    let (status, answer) = send(&fake, "PATCH", &path, Some(&multilingual)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["conversation_config"]["tts"]["model_id"],
        "eleven_multilingual_v2"
    );
}

#[tokio::test]
async fn the_stand_in_answers_with_the_response_models() {
    let fake = FakeElevenLabs::start(Faults::default()).await;
    let body = agent(&clinic(), &operator_settings()).unwrap().body();
    let (status, created) = send(&fake, "POST", "/v1/convai/agents/create", Some(&body)).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        violations("CreateAgentResponseModel", &created, &[]),
        Vec::<Value>::new()
    );
    let path = format!(
        "/v1/convai/agents/{}",
        created["agent_id"].as_str().unwrap()
    );
    let (status, got) = send(&fake, "GET", &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        violations("GetAgentResponseModel", &got, &[]),
        Vec::<Value>::new()
    );
    assert!(got["metadata"]["created_at_unix_secs"].is_u64(), "{got}");
    let (status, patched) = send(&fake, "PATCH", &path, Some(&json!({"name": "Agent Nou"}))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        violations("GetAgentResponseModel", &patched, &[]),
        Vec::<Value>::new()
    );
    // An agent made by hand with only a name still lists as the model says.
    fake.insert("agent_by_hand", json!({"name": "By hand"}));
    let (status, page) = send(&fake, "GET", "/v1/convai/agents?page_size=1", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        violations("GetAgentsPageResponseModel", &page, &[]),
        Vec::<Value>::new()
    );
    assert_eq!(page["has_more"], true);
    assert_eq!(page["agents"][0]["access_info"]["role"], "admin");
    let (status, _) = send(&fake, "GET", "/v1/convai/agents/agent_by_hand", None).await;
    assert_eq!(status, 200);
}

fn english_clinic() -> VoiceAgent {
    let mut va = clinic();
    va.spec.language = "en".into();
    va.spec.greeting = "Hello, how can I help?".into();
    va
}

#[test]
fn the_operators_bodies_pass_the_request_schemas() {
    let mut tuned = clinic();
    tuned.spec.voice = Some(VoiceSpec {
        model: Some(VoiceModel::ElevenMultilingualV2),
        stability: Some(0.0),
        speed: Some(1.2),
        similarity_boost: Some(1.0),
    });
    tuned.spec.conversation.record_calls = false;
    tuned.spec.conversation.zero_retention = true;
    // Staff to hand callers to, and the location's time zone.
    tuned.spec.transfer = vec![voice_operator::crd::TransferRule {
        number: "+40722000111".into(),
        condition: "the caller asks for a person".into(),
    }];
    tuned.spec.time_zone = Some("Europe/Bucharest".into());
    // With --post-call-webhook-id, platform_settings carries
    // workspace_overrides.webhooks too.
    let scoped = OperatorSettings {
        post_call_webhook_id: Some("wh_voice_operator".into()),
        ..operator_settings()
    };
    let cases = [clinic(), english_clinic(), tuned]
        .into_iter()
        .flat_map(|va| [(va.clone(), operator_settings()), (va, scoped.clone())]);
    for (va, settings) in cases {
        let body = agent(&va, &settings).unwrap().body();
        assert_eq!(
            violations(CREATE_BODY, &body, &["body".into()]),
            Vec::<Value>::new()
        );
        assert_eq!(violations(PATCH_BODY, &body, &[]), Vec::<Value>::new());
        assert_eq!(
            violations(CONVERSATION_CONFIG, &body["conversation_config"], &[]),
            Vec::<Value>::new()
        );
        assert_eq!(
            violations(PLATFORM_SETTINGS, &body["platform_settings"], &[]),
            Vec::<Value>::new()
        );
        // The header value is the schema's dynamic-variable reference.
        let header = &body["conversation_config"]["agent"]["prompt"]["custom_llm"]["request_headers"]
            [voice_operator::elevenlabs::model::CONVERSATION_ID_HEADER];
        assert_eq!(
            violations("ConvAIDynamicVariable", header, &[]),
            Vec::<Value>::new()
        );
        assert_eq!(header["variable_name"], "system__conversation_id");
        // The system tools are the schema's, one by one.
        let tools = &body["conversation_config"]["agent"]["prompt"]["built_in_tools"];
        assert_eq!(
            violations("SystemToolConfig-Input", &tools["end_call"], &[]),
            Vec::<Value>::new()
        );
        if !tools["transfer_to_number"].is_null() {
            assert_eq!(
                violations("SystemToolConfig-Input", &tools["transfer_to_number"], &[]),
                Vec::<Value>::new()
            );
        }
    }
}

#[test]
fn a_transfer_without_a_condition_is_refused_by_the_schema() {
    let mut va = clinic();
    va.spec.transfer = vec![voice_operator::crd::TransferRule {
        number: "+40722000111".into(),
        condition: "the caller asks for a person".into(),
    }];
    let body = agent(&va, &operator_settings()).unwrap().body();
    let mut tool =
        body["conversation_config"]["agent"]["prompt"]["built_in_tools"]["transfer_to_number"]
            .clone();
    assert_eq!(
        violations("SystemToolConfig-Input", &tool, &[]),
        Vec::<Value>::new()
    );
    tool["params"]["transfers"][0]
        .as_object_mut()
        .unwrap()
        .remove("condition");
    assert_ne!(
        violations("SystemToolConfig-Input", &tool, &[]),
        Vec::<Value>::new(),
        "the schema requires condition on every transfer"
    );
}

#[test]
fn the_post_call_webhook_override_is_the_schemas_and_a_wrong_event_is_refused() {
    let scoped = OperatorSettings {
        post_call_webhook_id: Some("wh_voice_operator".into()),
        ..operator_settings()
    };
    let body = agent(&clinic(), &scoped).unwrap().body();
    let webhooks = &body["platform_settings"]["workspace_overrides"]["webhooks"];
    assert_eq!(webhooks["post_call_webhook_id"], "wh_voice_operator");
    assert_eq!(
        violations("ConvAIWebhooks", webhooks, &[]),
        Vec::<Value>::new()
    );
    let mut wrong = body.clone();
    wrong["platform_settings"]["workspace_overrides"]["webhooks"]["events"] =
        json!(["post_call_transcription"]);
    assert_ne!(
        violations(CREATE_BODY, &wrong, &["body".into()]),
        Vec::<Value>::new()
    );
    // Inside platform_settings' anyOf, the model names the item.
    let refused = violations(PLATFORM_SETTINGS, &wrong["platform_settings"], &[]);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        refused[0]["loc"],
        json!(["workspace_overrides", "webhooks", "events", 0])
    );
}

#[test]
fn the_tts_model_follows_the_language_and_privacy_the_spec() {
    let ro = agent(&clinic(), &operator_settings()).unwrap().body();
    assert_eq!(
        ro["conversation_config"]["tts"]["model_id"],
        "eleven_flash_v2_5"
    );
    assert_eq!(
        ro["platform_settings"]["privacy"],
        json!({"record_voice": true, "retention_days": 90, "zero_retention_mode": false})
    );
    let en = agent(&english_clinic(), &operator_settings())
        .unwrap()
        .body();
    assert_eq!(
        en["conversation_config"]["tts"]["model_id"],
        "eleven_flash_v2"
    );

    let mut private = clinic();
    private.spec.conversation.record_calls = false;
    private.spec.conversation.retention_days = 0;
    private.spec.conversation.zero_retention = true;
    let body = agent(&private, &operator_settings()).unwrap().body();
    assert_eq!(
        body["platform_settings"]["privacy"],
        json!({"record_voice": false, "retention_days": 0, "zero_retention_mode": true})
    );
}

/// The spec schema of the CRD, as the API server enforces it.
fn spec_validator() -> jsonschema::Validator {
    let crd = serde_json::to_value(VoiceAgent::crd()).unwrap();
    let schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    jsonschema::options().build(&schema).unwrap()
}

#[test]
fn the_crd_refuses_a_voice_the_api_would_refuse() {
    let with_voice = |language: &str, model: VoiceModel| {
        let mut va = clinic();
        va.spec.language = language.into();
        va.spec.voice = Some(VoiceSpec {
            model: Some(model),
            ..VoiceSpec::default()
        });
        va
    };
    for (language, model) in [
        ("ro", VoiceModel::ElevenFlashV2),
        ("de", VoiceModel::ElevenTurboV2),
        ("en", VoiceModel::ElevenFlashV2_5),
        ("en", VoiceModel::ElevenTurboV2_5),
    ] {
        let err = with_voice(language, model).validate_cel().unwrap_err();
        assert!(
            format!("{err:?}").contains("spec.voice.model cannot speak spec.language"),
            "{language} {model:?}: {err:?}"
        );
    }
    for (language, model) in [
        ("ro", VoiceModel::ElevenFlashV2_5),
        ("ro", VoiceModel::ElevenMultilingualV2),
        ("ro", VoiceModel::ElevenV3Conversational),
        ("en", VoiceModel::ElevenFlashV2),
        ("en", VoiceModel::ElevenMultilingualV2),
    ] {
        with_voice(language, model).validate_cel().unwrap();
    }
    clinic().validate_cel().unwrap();

    // Ranges and the model enum come from the API's TTSConversationalConfig.
    let validator = spec_validator();
    for (field, value) in [
        ("speed", json!(1.5)),
        ("speed", json!(0.5)),
        ("stability", json!(-0.1)),
        ("similarityBoost", json!(1.1)),
        ("model", json!("eleven_flash_v9")),
    ] {
        let mut manifest = serde_json::to_value(clinic()).unwrap();
        manifest["spec"]["voice"] = json!({ field: value });
        let errors: Vec<String> = validator
            .iter_errors(&manifest)
            .map(|e| e.instance_path.to_string())
            .collect();
        assert_eq!(errors, [format!("/spec/voice/{field}")], "{field}={value}");
    }
    let mut manifest = serde_json::to_value(clinic()).unwrap();
    manifest["spec"]["conversation"] = json!({"retentionDays": -2});
    assert!(!validator.is_valid(&manifest));
}

/// The clinic with call limits and a post-call analysis.
fn analysed_clinic() -> VoiceAgent {
    let mut va = clinic();
    va.spec.limits = Some(LimitsSpec {
        concurrent_calls: Some(4),
        daily_calls: Some(500),
    });
    va.spec.analysis = Some(AnalysisSpec {
        data_collection: [
            ("caller_name", DataType::String),
            ("new_patient", DataType::Boolean),
            ("party_size", DataType::Integer),
            ("quoted_price", DataType::Number),
        ]
        .into_iter()
        .map(|(id, value_type)| DataCollectionItem {
            id: id.into(),
            value_type,
            description: format!("The {id} the caller gave"),
        })
        .collect(),
        evaluation_criteria: vec![EvaluationCriterion {
            id: "appointment_booked".into(),
            goal: "The caller booked an appointment".into(),
        }],
    });
    va
}

#[test]
fn limits_and_analysis_pass_the_platform_settings_schemas() {
    let body = agent(&analysed_clinic(), &operator_settings())
        .unwrap()
        .body();
    let settings = &body["platform_settings"];
    for (schema, value) in [
        (CREATE_BODY, &body),
        (PLATFORM_SETTINGS, settings),
        ("AgentCallLimits", &settings["call_limits"]),
        ("EvaluationSettings-Input", &settings["evaluation"]),
        (
            "PromptEvaluationCriteria",
            &settings["evaluation"]["criteria"][0],
        ),
    ] {
        assert_eq!(
            violations(schema, value, &[]),
            Vec::<Value>::new(),
            "{schema}"
        );
    }
    assert_eq!(
        settings["call_limits"],
        json!({"agent_concurrency_limit": 4, "daily_limit": 500})
    );
    let items = settings["data_collection"].as_object().unwrap();
    assert_eq!(items.len(), 4);
    for (id, item) in items {
        assert_eq!(
            violations("AnalysisProperty", item, &[]),
            Vec::<Value>::new(),
            "{id}"
        );
    }
    assert_eq!(items["new_patient"]["type"], "boolean");
    // Every type the CRD offers is one the platform knows.
    let known = &violations("AnalysisProperty", &json!({"type": "date"}), &[])[0];
    assert_eq!(known["type"], "enum");
}

#[tokio::test]
async fn the_stand_in_refuses_call_limits_and_analysis_outside_the_schema() {
    let fake = FakeElevenLabs::start(Faults::default()).await;
    let good = agent(&analysed_clinic(), &operator_settings())
        .unwrap()
        .body();
    let (status, created) = send(&fake, "POST", "/v1/convai/agents/create", Some(&good)).await;
    assert_eq!(status, 200, "{created}");
    let path = format!(
        "/v1/convai/agents/{}",
        created["agent_id"].as_str().unwrap()
    );
    for (patch, loc, kind) in [
        // AgentCallLimits' limits are integers.
        (
            json!({"call_limits": {"agent_concurrency_limit": 2.5}}),
            json!([
                "body",
                "platform_settings",
                "call_limits",
                "agent_concurrency_limit"
            ]),
            "int_type",
        ),
        (
            json!({"call_limits": {"daily_limit": "100"}}),
            json!(["body", "platform_settings", "call_limits", "daily_limit"]),
            "int_type",
        ),
        // A value type the platform does not know.
        (
            json!({"data_collection": {"visit_day": {"type": "date", "description": "d"}}}),
            json!([
                "body",
                "platform_settings",
                "data_collection",
                "visit_day",
                "type"
            ]),
            "enum",
        ),
        // A goal over the 2000 characters ElevenLabs allows.
        (
            json!({"evaluation": {"criteria": [{"id": "c", "name": "c",
                "conversation_goal_prompt": "x".repeat(2001)}]}}),
            json!([
                "body",
                "platform_settings",
                "evaluation",
                "criteria",
                0,
                "conversation_goal_prompt"
            ]),
            "string_too_long",
        ),
    ] {
        let (status, answer) = send(
            &fake,
            "PATCH",
            &path,
            Some(&json!({"platform_settings": patch})),
        )
        .await;
        assert_eq!(status, 422, "{patch}: {answer}");
        let detail = only_detail(&answer);
        assert_eq!(
            (&detail["loc"], detail["type"].as_str()),
            (&loc, Some(kind))
        );
    }
    // What the operator sends is kept as sent.
    let (_, stored) = send(&fake, "GET", &path, None).await;
    assert_eq!(
        stored["platform_settings"]["call_limits"],
        good["platform_settings"]["call_limits"]
    );
}

#[test]
fn the_crd_refuses_limits_out_of_range_and_unknown_analysis_types() {
    let validator = spec_validator();
    let manifest = |spec: Value| {
        let mut va = serde_json::to_value(analysed_clinic()).unwrap();
        voice_operator::testkit::fake_elevenlabs::merge(&mut va["spec"], spec);
        va
    };
    assert!(validator.is_valid(&manifest(json!({}))));
    for (spec, path) in [
        (
            json!({"limits": {"concurrentCalls": 0}}),
            "/spec/limits/concurrentCalls",
        ),
        (
            json!({"limits": {"dailyCalls": -1}}),
            "/spec/limits/dailyCalls",
        ),
        (
            json!({"limits": {"dailyCalls": 2147483648u64}}),
            "/spec/limits/dailyCalls",
        ),
        (
            json!({"analysis": {"dataCollection": [{"id": "d", "type": "date", "description": "d"}]}}),
            "/spec/analysis/dataCollection/0/type",
        ),
        (
            json!({"analysis": {"evaluationCriteria": [{"id": "c", "goal": "x".repeat(2001)}]}}),
            "/spec/analysis/evaluationCriteria/0/goal",
        ),
    ] {
        let errors: Vec<String> = validator
            .iter_errors(&manifest(spec.clone()))
            .map(|e| e.instance_path.to_string())
            .collect();
        assert_eq!(errors, [path], "{spec}");
    }
}
