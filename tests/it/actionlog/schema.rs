//! Records built for every action type and outcome validate against the
//! shared agent-log JSON Schema; the shared samples round-trip unchanged.

use crate::support::{agent_log_validator, fixture, sample_record};
use serde_json::Value;
use voice_operator::actionlog::AgentLogRecord;

#[test]
fn every_action_type_and_outcome_validates_against_the_schema() {
    let validator = agent_log_validator();
    let mut kinds = std::collections::BTreeSet::new();
    // 12 consecutive samples cover 4 action types x 3 outcomes.
    for i in 0..12 {
        let record = sample_record(i, 5);
        let json = serde_json::to_value(&record).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "record {i} {json}: {errors:?}");
        kinds.insert((
            json["data"]["actionType"].as_str().unwrap().to_owned(),
            json["data"]["subAction"].as_str().unwrap().to_owned(),
        ));
        // What the shipper sends is the same JSON.
        let encoded = record.encode().unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&encoded.data).unwrap(),
            json
        );
    }
    assert_eq!(kinds.len(), 12, "{kinds:?}");
}

#[test]
fn the_validator_really_checks() {
    let validator = agent_log_validator();
    let mut json = serde_json::to_value(sample_record(0, 1)).unwrap();
    json["data"]["actionType"] = "fax".into();
    assert!(!validator.is_valid(&json));
    let mut json = serde_json::to_value(sample_record(0, 1)).unwrap();
    json["requestId"] = "not-a-uuid".into();
    assert!(!validator.is_valid(&json), "formats are checked");
}

#[test]
fn shared_samples_round_trip_unchanged() {
    let validator = agent_log_validator();
    let text = std::fs::read_to_string(fixture("agent-log/samples.jsonl")).unwrap();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let original: Value = serde_json::from_str(line).unwrap();
        assert!(validator.is_valid(&original));
        let record: AgentLogRecord = serde_json::from_str(line).unwrap();
        record.validate().unwrap();
        assert_eq!(serde_json::to_value(&record).unwrap(), original);
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn the_repositorys_schema_is_the_shared_one_verbatim() {
    let ours = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/agent-log.schema.json"
    ))
    .unwrap();
    let shared = std::fs::read(fixture("agent-log/agent-log.schema.json")).unwrap();
    assert!(
        ours == shared,
        "schemas/agent-log.schema.json differs from the shared fixture: copy it again"
    );
}
