//! The VoiceAgent CRD: the checked-in manifest matches the code, the
//! examples pass (or, for the deliberately bad ones, fail) its schema, and
//! the immutability rules hold when evaluated client-side.

use std::path::{Path, PathBuf};

use kube::CustomResourceExt;
use serde_json::{Value, json};
use voice_operator::crd::{
    DeletionPolicy, SipMediaEncryption, SipTransport, TelephonySpec, VoiceAgent, VoiceAgentSpec,
    VoiceAgentStatus, VoiceAgentTemplate, crd_yaml, template_crd_yaml,
};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_checked_in_crd_is_what_the_code_generates() {
    let file = std::fs::read_to_string(repo("crds/voiceagents.io_voiceagents.yaml")).unwrap();
    assert!(
        file == crd_yaml(),
        "crds/voiceagents.io_voiceagents.yaml is stale: regenerate it with `cargo run -- crd > crds/voiceagents.io_voiceagents.yaml`"
    );
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_voice-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(printed.status.success());
    let templates =
        std::fs::read_to_string(repo("crds/voiceagents.io_voiceagenttemplates.yaml")).unwrap();
    assert!(
        templates == template_crd_yaml(),
        "crds/voiceagents.io_voiceagenttemplates.yaml is stale: regenerate both with `cargo run -- crd` (two documents: voiceagents, then voiceagenttemplates)"
    );
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap(),
        format!("{file}---\n{templates}")
    );
}

#[test]
fn names_columns_and_status_subresource_are_as_designed() {
    let crd = VoiceAgent::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("voiceagents.voiceagents.io")
    );
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["va".to_owned()][..])
    );
    assert_eq!(crd.spec.scope, "Namespaced");
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    let columns: Vec<&str> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Business", "Location", "Enabled", "Phase", "Ready", "Message", "Agent", "Age"
        ]
    );
    assert!(version.subresources.as_ref().unwrap().status.is_some());
}

fn spec_validator() -> jsonschema::Validator {
    let crd = serde_json::to_value(VoiceAgent::crd()).unwrap();
    let schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    jsonschema::options().build(&schema).unwrap()
}

#[test]
fn the_good_examples_pass_the_schema_and_parse() {
    let validator = spec_validator();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(repo("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let manifest = yaml(&path);
        let errors: Vec<String> = validator
            .iter_errors(&manifest)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        let agent: VoiceAgent = serde_json::from_value(manifest).unwrap();
        seen.push((agent.spec.enabled, agent.spec.deletion_policy));
    }
    assert!(seen.contains(&(true, DeletionPolicy::Delete)), "{seen:?}");
    assert!(
        seen.iter().any(|(enabled, _)| !enabled),
        "a disabled example"
    );
    assert!(
        seen.iter().any(|(_, p)| *p == DeletionPolicy::Retain),
        "a Retain example"
    );
}

#[test]
fn the_bad_examples_fail_naming_the_field() {
    let validator = spec_validator();
    for (file, field) in [
        ("voiceagent-bad-phone.yaml", "/spec/phoneNumber"),
        ("voiceagent-missing-business.yaml", "businessId"),
        (
            "voiceagent-bad-telephony.yaml",
            "/spec/telephony/twilioSecretRef/name",
        ),
        ("voiceagent-bad-notify.yaml", "/spec/notify/email"),
    ] {
        let manifest = yaml(&repo("examples/bad").join(file));
        let errors: Vec<String> = validator
            .iter_errors(&manifest)
            .map(|e| format!("{} {e}", e.instance_path))
            .collect();
        assert!(
            errors.iter().any(|e| e.contains(field)),
            "{file}: {errors:?}"
        );
    }
}

#[test]
fn defaults_fill_what_a_minimal_manifest_leaves_out() {
    let agent: VoiceAgent =
        serde_json::from_value(yaml(&repo("examples/voiceagent-retain.yaml"))).unwrap();
    let spec = &agent.spec;
    assert!(spec.enabled);
    assert_eq!(spec.conversation.max_duration_seconds, 300);
    assert_eq!(spec.conversation.turn_timeout_seconds, 10);
    assert!(spec.conversation.record_calls);
    assert!(!spec.conversation.send_transcripts);
    assert_eq!(spec.bedrock, None);
}

#[test]
fn business_and_location_ids_are_immutable_under_cel() {
    let old: VoiceAgent =
        serde_json::from_value(yaml(&repo("examples/voiceagent-clinic.yaml"))).unwrap();
    old.validate_cel().unwrap();

    let mut renamed = old.clone();
    renamed.spec.greeting = "Bună seara!".into();
    renamed.spec.enabled = false;
    renamed.validate_cel_update(&old).unwrap();

    let mut moved = old.clone();
    moved.spec.business_id = "B0999999".into();
    let err = moved.validate_cel_update(&old).unwrap_err();
    assert!(
        format!("{err:?}").contains("businessId is immutable"),
        "{err:?}"
    );

    let mut relocated = old.clone();
    relocated.spec.location_id = "L0999999".into();
    let err = relocated.validate_cel_update(&old).unwrap_err();
    assert!(
        format!("{err:?}").contains("locationId is immutable"),
        "{err:?}"
    );
}

#[test]
fn telephony_parses_either_provider_and_status_keeps_the_phone_number() {
    let twilio: VoiceAgentSpec = serde_json::from_value(json!({
        "businessId": "B1", "locationId": "L1", "businessName": "C", "voiceId": "v",
        "greeting": "Hi", "phoneNumber": "+40312345678",
        "telephony": {"twilioSecretRef": {"name": "clinic-twilio"}}
    }))
    .unwrap();
    let telephony = twilio.telephony.unwrap();
    assert_eq!(telephony.twilio_secret_ref.unwrap().name, "clinic-twilio");
    assert_eq!(telephony.sip_trunk, None);

    let sip: TelephonySpec = serde_json::from_value(json!({
        "sipTrunk": {"address": "sip.example.com", "transport": "tls", "mediaEncryption": "required"}
    }))
    .unwrap();
    let trunk = sip.sip_trunk.unwrap();
    assert_eq!(trunk.transport.map(SipTransport::as_str), Some("tls"));
    assert_eq!(
        trunk.media_encryption.map(SipMediaEncryption::as_str),
        Some("required")
    );

    let status = VoiceAgentStatus {
        phone_number_id: Some("phnum_1".into()),
        phone_number_assigned: Some(true),
        phone_number_imported: Some(false),
        ..VoiceAgentStatus::default()
    };
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({"phoneNumberId": "phnum_1", "phoneNumberAssigned": true, "phoneNumberImported": false})
    );
}

/// Every document of `examples/fleet/<file>`.
fn fleet(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo("examples/fleet").join(file)).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .collect()
}

#[test]
fn the_fleet_example_is_one_template_and_three_locations_that_merge() {
    let template_schema = {
        let crd = serde_json::to_value(VoiceAgentTemplate::crd()).unwrap();
        jsonschema::options()
            .build(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
            .unwrap()
    };
    let [template] = &fleet("template.yaml")[..] else {
        panic!("one template")
    };
    assert!(template_schema.is_valid(template));
    let template: VoiceAgentTemplate = serde_json::from_value(template.clone()).unwrap();
    template.validate_cel().unwrap();
    let validator = spec_validator();
    let locations = fleet("locations.yaml");
    assert_eq!(locations.len(), 3);
    let mut cities = Vec::new();
    for manifest in locations {
        assert!(validator.is_valid(&manifest), "{manifest}");
        let va: VoiceAgent = serde_json::from_value(manifest).unwrap();
        va.validate_cel().unwrap();
        let spec = voice_operator::controller::template::effective(&va, &template)
            .unwrap()
            .spec;
        // The template's, with each location's own values over it.
        assert_eq!(spec.business_name, "Zâmbet Dental");
        assert_eq!(spec.language, "ro");
        assert_eq!(spec.conversation.max_duration_seconds, 600);
        assert!(spec.variables.contains_key("opening_hours"));
        cities.push((
            spec.variables["city"].clone(),
            spec.limits.unwrap().daily_calls,
            spec.transfer.len(),
        ));
    }
    assert_eq!(
        cities,
        [
            ("București".to_owned(), Some(400), 0),
            ("Cluj-Napoca".to_owned(), Some(400), 1),
            ("Iași".to_owned(), Some(150), 0),
        ]
    );
}
