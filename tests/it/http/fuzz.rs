//! Property test over what ElevenLabs (or anybody) may post: bodies made
//! by mangling the real payloads, and raw bytes, correctly signed so they
//! get past the signature check. The bridge must answer every one with a
//! 2xx or a 4xx, never a 5xx and never a dropped connection (a panic).

use crate::support::bridge::{LLM_SECRET, Options, TestBridge, sign};
use proptest::prelude::*;
use serde_json::{Value, json};

/// A JSON value of any shape, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        Just(json!("B0100001")),
        Just(json!("L0100001")),
        Just(json!("message")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path to a value inside `v`, as a list of keys / indices.
fn paths(v: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let mut p = prefix.clone();
                p.push(k.clone());
                out.push(p.clone());
                paths(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let mut p = prefix.clone();
                p.push(i.to_string());
                out.push(p.clone());
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for key in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(key)?,
            Value::Array(a) => a.get_mut(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// One change to a body: replace a value, or remove it.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, Value),
    Remove(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any_json()).prop_map(|(i, v)| Edit::Replace(i, v)),
            any::<usize>().prop_map(Edit::Remove),
        ],
        0..4,
    )
}

fn apply(mut body: Value, edits: &[Edit]) -> Value {
    for edit in edits {
        let mut all = Vec::new();
        paths(&body, Vec::new(), &mut all);
        if all.is_empty() {
            break;
        }
        match edit {
            Edit::Replace(i, v) => {
                if let Some(slot) = at(&mut body, &all[i % all.len()]) {
                    *slot = v.clone();
                }
            }
            Edit::Remove(i) => {
                let path = &all[i % all.len()];
                let (last, parent) = path.split_last().unwrap();
                if let Some(Value::Object(m)) = at(&mut body, parent) {
                    m.remove(last);
                }
            }
        }
    }
    body
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(crate::support::fixture(name)).unwrap()).unwrap()
}

/// A body for `route`: a mangled real payload, or (one case in eight) raw
/// bytes.
#[derive(Debug, Clone)]
enum Body {
    Mangled(usize, Vec<Edit>),
    Raw(usize, Vec<u8>),
}

fn bodies() -> impl Strategy<Value = Body> {
    prop_oneof![
        7 => (0..4usize, edits()).prop_map(|(r, e)| Body::Mangled(r, e)),
        1 => (0..4usize, prop::collection::vec(any::<u8>(), 0..200)).prop_map(|(r, b)| Body::Raw(r, b)),
    ]
}

const ROUTES: [&str; 4] = [
    "/api/elevenlabs/webhook",
    "/api/elevenlabs/post-call",
    "/api/elevenlabs/conversation-init",
    "/api/elevenlabs/llm/B0100001/L0100001/chat/completions",
];

fn seeds() -> [Value; 4] {
    [
        fixture_json("elevenlabs/seed_webhook_message.json"),
        fixture_json("elevenlabs/post_call_transcription.json"),
        json!({"caller_id": "+40721000111", "agent_id": "agent_b1",
               "called_number": "+40312345678", "call_sid": "CA1"}),
        json!({"model": "m", "stream": true, "user_id": "u1",
               "messages": [{"role": "system", "content": "be brief"},
                            {"role": "user", "content": "Vreau o programare"}],
               "elevenlabs_extra_body": {"conversation_id": "conv_fuzz"}}),
    ]
}

#[test]
fn mangled_bodies_get_2xx_or_4xx_never_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bridge = rt.block_on(async {
        let bridge = TestBridge::start(Options::default()).await;
        bridge
            .tenant("B0100001", "L0100001", "agent_7801k2abcd0efgh", true)
            .await;
        bridge
    });
    let client = reqwest::Client::new();
    let seeds = seeds();
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    let config = ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(body in bodies())| {
        let (route, bytes) = match &body {
            Body::Mangled(r, e) => (*r, apply(seeds[*r].clone(), e).to_string().into_bytes()),
            Body::Raw(r, b) => (*r, b.clone()),
        };
        let status = rt.block_on(async {
            let request = client
                .post(format!("{}{}", bridge.url, ROUTES[route]))
                .header("ElevenLabs-Signature", sign(&bytes))
                .bearer_auth(LLM_SECRET)
                .body(bytes.clone());
            let response = request.send().await.expect("the server answers");
            let status = response.status().as_u16();
            // Streams are read to the end, so a failure mid-stream shows.
            response.bytes().await.expect("the whole body arrives");
            status
        });
        *seen.lock().unwrap().entry(status).or_default() += 1;
        prop_assert!(
            (200..500).contains(&status),
            "{} answered {} to {}", ROUTES[route], status, String::from_utf8_lossy(&bytes)
        );
    });
    // The generator reaches both sides of the parser.
    let seen = seen.into_inner().unwrap();
    assert!(seen.keys().any(|s| *s < 300), "{seen:?}");
    assert!(seen.keys().any(|s| *s == 400), "{seen:?}");
    eprintln!("statuses: {seen:?}");
}
