//! The cost of a call on its `voice_call` record, from ElevenLabs'
//! post-call event: its fiat total when it gives one, else its credits at
//! the configured price per credit, else none.

use serde_json::{Value, json};
use voice_operator::actionlog::Money;

use crate::support::assert_valid_against_both_schemas;
use crate::support::bridge::{Options, TestBridge, json_of, signed_post};

/// The shared post-call fixture (752 credits, no fiat total), changed by
/// `edit`.
fn post_call(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let bytes = std::fs::read(crate::support::fixture(
        "elevenlabs/post_call_transcription.json",
    ))
    .unwrap();
    let mut event: Value = serde_json::from_slice(&bytes).unwrap();
    edit(&mut event);
    serde_json::to_vec(&event).unwrap()
}

/// The cost on the one record a post-call event leaves on a bridge whose
/// price per credit is `per_credit`.
async fn cost_of(per_credit: Option<&str>, event: Vec<u8>) -> Value {
    let per_credit = per_credit.map(|p| Money::parse("test", p).unwrap());
    let bridge = TestBridge::start(Options {
        configure: Box::new(move |state| state.config.price_per_credit = per_credit),
        ..Options::default()
    })
    .await;
    bridge
        .tenant("B0100001", "L0100001", "agent_7801k2abcd0efgh", true)
        .await;
    let url = format!("{}/api/elevenlabs/post-call", bridge.url);
    let (status, answer) = json_of(signed_post(&url, &event).await).await;
    assert_eq!(status, 200, "{answer}");
    let records = bridge.records().await;
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_valid_against_both_schemas(&records[0]);
    records[0]["data"]["metadata"]
        .get("cost")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn credits_are_priced_at_the_configured_price_per_credit() {
    let cost = cost_of(Some("0.00018 USD"), post_call(|_| {})).await;
    assert_eq!(
        cost,
        json!({"amount": 0.13536, "currency": "USD", "source": "estimated", "credits": 752})
    );
}

#[tokio::test]
async fn the_llm_price_elevenlabs_reports_outside_the_credits_is_added() {
    let event = post_call(|e| {
        e["data"]["metadata"]["charging"] = json!({"llm_price": 0.0125, "llm_charge": null});
    });
    let cost = cost_of(Some("0.0001 USD"), event).await;
    // 752 credits at 0.0001 USD, and the LLM's 0.0125 USD.
    assert_eq!(cost["amount"], json!(0.0877));
    assert_eq!(cost["source"], json!("estimated"));
}

#[tokio::test]
async fn elevenlabs_fiat_total_is_the_providers_cost() {
    let event = post_call(|e| e["data"]["metadata"]["cost_fiat"] = json!(0.0912));
    let cost = cost_of(Some("0.00018 USD"), event).await;
    assert_eq!(
        cost,
        json!({"amount": 0.0912, "currency": "USD", "source": "provider", "credits": 752})
    );
}

#[tokio::test]
async fn credits_without_a_price_per_credit_give_no_cost() {
    assert_eq!(cost_of(None, post_call(|_| {})).await, Value::Null);
    let no_credits = post_call(|e| e["data"]["metadata"]["cost"] = Value::Null);
    assert_eq!(cost_of(Some("0.00018 USD"), no_credits).await, Value::Null);
}
