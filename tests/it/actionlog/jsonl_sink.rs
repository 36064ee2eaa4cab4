//! The embedded default: records through the action log into a JSON-lines
//! file, in the same format as Kinesis gets; bad records are refused at
//! the call, counted, and never queued.

use std::time::Duration;

use crate::support::{agent_log_validator, sample_record};
use serde_json::{Map, Value};
use voice_operator::actionlog::{
    Action, ActionLog, ActionLogConfig, LogError, Outcome, Recipient, RecordError, ShipperConfig,
    SinkConfig, SmsProvider, VoiceCall,
};

#[tokio::test]
async fn records_land_in_the_file_and_bad_ones_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/agent-log.jsonl");
    let config = ActionLogConfig {
        sink: SinkConfig::JsonLines { path: path.clone() },
        shipper: ShipperConfig::default(),
        echo: false,
    };
    let (log, shipper) = ActionLog::open(&config).await.unwrap();

    let action = |recipient| Action {
        business_id: "B0100001".into(),
        location_id: "L0100001".into(),
        agent_session_id: Some("conv_1".into()),
        recipient,
        outcome: Outcome::Received { external_id: None },
    };
    let mut huge = Map::new();
    huge.insert("transcript".into(), Value::String("x".repeat(1024 * 1024)));
    let oversize = log.log_agent_voice_call(
        action(Recipient::default()),
        VoiceCall {
            conversation_id: "conv_1".into(),
            call_duration_secs: Some(12.0),
            extra: huge,
        },
    );
    assert!(matches!(
        oversize,
        Err(LogError::Invalid(RecordError::TooLarge { .. }))
    ));
    let no_phone = log.log_agent_sms(
        action(Recipient::email("a@example.com")),
        SmsProvider::Twilio,
        3,
    );
    let err = no_phone.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid agent-log record: a sms record needs data.recipient.phone"
    );

    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(log.log(&sample_record(i, 4)).unwrap().to_string());
    }
    let report = shipper.shutdown(Duration::from_secs(5)).await;
    assert_eq!((report.delivered, report.undelivered), (40, 0));
    let m = log.metrics();
    assert_eq!(
        (m.enqueued, m.rejected, m.delivered, m.queue_depth),
        (40, 2, 40, 0)
    );

    let validator = agent_log_validator();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 40);
    for (line, id) in lines.iter().zip(&ids) {
        assert!(validator.is_valid(line), "{line}");
        assert_eq!(
            line["requestId"].as_str().unwrap(),
            id,
            "file keeps the logging order"
        );
    }
    assert!(matches!(
        log.log(&sample_record(0, 1)),
        Err(LogError::Closed { .. })
    ));
    assert_eq!(log.metrics().dropped, 1);
}
