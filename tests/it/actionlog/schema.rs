//! Records built for every action type and outcome validate against the
//! shared agent-log JSON Schema; the shared samples round-trip unchanged.

use crate::support::{
    agent_log_validator, assert_valid_against_both_schemas, fixture, repo_agent_log_validator,
    sample_record,
};
use serde_json::{Value, json};
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
fn the_repositorys_schema_is_the_shared_one_plus_the_optional_cost() {
    let ours = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/agent-log.schema.json"
    ))
    .unwrap();
    let mut ours: Value = serde_json::from_slice(&ours).unwrap();
    let shared: Value =
        serde_json::from_slice(&std::fs::read(fixture("agent-log/agent-log.schema.json")).unwrap())
            .unwrap();
    let metadata = &mut ours["properties"]["data"]["properties"]["metadata"];
    let cost = metadata["properties"]
        .as_object_mut()
        .unwrap()
        .remove("cost")
        .expect("the repository's schema names data.metadata.cost");
    assert!(metadata.get("required").is_none(), "cost stays optional");
    assert_eq!(
        cost["required"],
        json!(["amount", "currency", "source"]),
        "{cost}"
    );
    assert_eq!(
        ours, shared,
        "apart from metadata.cost, schemas/agent-log.schema.json must be the shared schema"
    );
}

/// One sample record of each action type, with `cost` in its metadata.
fn with_cost(cost: Value) -> Vec<Value> {
    (0..4)
        .map(|i| {
            let mut json = serde_json::to_value(sample_record(i, 5)).unwrap();
            json["data"]["metadata"]["cost"] = cost.clone();
            json
        })
        .collect()
}

#[test]
fn records_with_a_cost_and_without_one_are_valid_against_both_schemas() {
    for cost in [
        json!({"amount": 0.0712, "currency": "USD", "source": "provider"}),
        json!({"amount": 0, "currency": "EUR", "source": "estimated"}),
        json!({"amount": 0.13536, "currency": "USD", "source": "estimated", "credits": 752}),
    ] {
        for record in with_cost(cost) {
            assert_valid_against_both_schemas(&record);
            // And the record type reads and checks it.
            let parsed: AgentLogRecord = serde_json::from_value(record.clone()).unwrap();
            parsed.validate().unwrap();
            assert_eq!(serde_json::to_value(&parsed).unwrap(), record);
        }
    }
    // No price known: no cost field, valid against both.
    let record = serde_json::to_value(sample_record(0, 5)).unwrap();
    assert!(record["data"]["metadata"].get("cost").is_none());
    assert_valid_against_both_schemas(&record);
}

#[test]
fn the_repositorys_schema_refuses_a_malformed_cost_and_the_shared_one_does_not_look() {
    let ours = repo_agent_log_validator();
    let shared = agent_log_validator();
    for bad in [
        json!({"amount": -1, "currency": "USD", "source": "provider"}),
        json!({"amount": 1, "currency": "usd", "source": "provider"}),
        json!({"amount": 1, "currency": "USD", "source": "guessed"}),
        json!({"amount": 1, "currency": "USD"}),
        json!(752),
    ] {
        let record = with_cost(bad.clone()).remove(0);
        assert!(
            !ours.is_valid(&record),
            "{bad} passed the repository's schema"
        );
        assert!(
            shared.is_valid(&record),
            "the shared schema allows any metadata"
        );
        let parsed = serde_json::from_value::<AgentLogRecord>(record);
        let refused = match parsed {
            Err(_) => true,
            Ok(record) => record.validate().is_err(),
        };
        assert!(refused, "{bad} read as a valid record");
    }
}

/// The leaf fields of the repository's schema, as JSON paths
/// (`data.metadata.cost.amount`).
fn schema_leaves() -> Vec<String> {
    fn walk(schema: &Value, prefix: &str, out: &mut Vec<String>) {
        for (name, sub) in schema["properties"].as_object().unwrap() {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if sub.get("properties").is_some() {
                walk(sub, &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/agent-log.schema.json"
    ))
    .unwrap();
    let mut leaves = Vec::new();
    walk(&serde_json::from_slice(&text).unwrap(), "", &mut leaves);
    leaves
}

/// The text of docs/analytics.md from the line starting `start` to the
/// next line starting `end`.
fn analytics_block(start: &str, end: &str) -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/analytics.md")).unwrap();
    let from = doc
        .find(start)
        .unwrap_or_else(|| panic!("docs/analytics.md has {start:?}"));
    let rest = &doc[from..];
    let to = rest[1..]
        .find(end)
        .unwrap_or_else(|| panic!("docs/analytics.md has {end:?} after {start:?}"));
    rest[..=to].to_owned()
}

#[test]
fn the_analytics_ddl_names_every_field_of_the_schema() {
    let leaves = schema_leaves();
    assert!(leaves.contains(&"data.metadata.cost.amount".to_owned()));
    assert!(leaves.len() > 20, "{leaves:?}");
    // Athena: lower-case names (the OpenX SerDe lower-cases JSON keys),
    // nested in structs as in the record.
    let athena = analytics_block("CREATE EXTERNAL TABLE agent_log", "PARTITIONED BY");
    let words: std::collections::BTreeSet<String> = athena
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map(str::to_owned)
        .collect();
    for leaf in &leaves {
        for part in leaf.split('.') {
            assert!(
                words.contains(&part.to_ascii_lowercase()),
                "the Athena DDL in docs/analytics.md has no column for {leaf} ({part})"
            );
        }
    }
    // ClickHouse: every top-level field a column of what ClickPipes
    // writes, every field under data read by the flattening view.
    let raw = analytics_block("CREATE TABLE agent_log_raw", "ENGINE");
    let view = analytics_block("CREATE MATERIALIZED VIEW agent_log_flatten", "FROM");
    for leaf in &leaves {
        match leaf.strip_prefix("data.") {
            None => assert!(
                raw.lines()
                    .any(|l| l.split_whitespace().next() == Some(leaf.as_str())),
                "agent_log_raw in docs/analytics.md has no column {leaf}"
            ),
            Some(_) => assert!(
                view.contains(&format!("{leaf}::")),
                "agent_log_flatten in docs/analytics.md does not read {leaf}"
            ),
        }
    }
}
