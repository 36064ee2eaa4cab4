//! `ElevenLabs-Signature` verification against the shared test vectors,
//! and a property check that any one-byte change is refused.

use proptest::prelude::*;
use secrecy::SecretString;
use serde::Deserialize;
use voice_operator::elevenlabs::signature::{self, SignatureError};

#[derive(Debug, Deserialize)]
struct Vector {
    file: String,
    secret: String,
    header: String,
    now: i64,
    expect: String,
}

fn body(file: &str) -> Vec<u8> {
    std::fs::read(crate::support::fixture(&format!("elevenlabs/{file}"))).unwrap()
}

fn check(vector: &Vector) {
    let got = signature::verify(
        &SecretString::from(vector.secret.clone()),
        &vector.header,
        &body(&vector.file),
        vector.now,
    );
    let expect = vector.expect.as_str();
    let ok = match &got {
        Ok(()) => expect == "valid",
        Err(SignatureError::Expired { .. }) => expect.starts_with("expired"),
        Err(SignatureError::FromTheFuture { .. }) => expect.contains("in the future"),
        Err(SignatureError::Mismatch) => expect == "invalid signature",
        Err(SignatureError::Malformed(reason)) => {
            expect.starts_with("malformed") && expect.contains("no t=") == reason.contains("no t=")
        }
    };
    assert!(ok, "{vector:?} gave {got:?}");
}

#[test]
fn every_shared_vector_gives_the_expected_verdict() {
    let text =
        std::fs::read_to_string(crate::support::fixture("elevenlabs/signature_vectors.json"))
            .unwrap();
    let vectors: Vec<Vector> = serde_json::from_str(&text).unwrap();
    assert_eq!(vectors.len(), 6);
    for expect in [
        "valid",
        "expired",
        "in the future",
        "invalid signature",
        "malformed",
    ] {
        assert!(
            vectors.iter().any(|v| v.expect.contains(expect)),
            "no {expect} vector"
        );
    }
    vectors.iter().for_each(check);
}

#[test]
fn the_seed_webhook_vector_verifies() {
    let text = std::fs::read_to_string(crate::support::fixture(
        "elevenlabs/seed_webhook_vector.json",
    ))
    .unwrap();
    let vector: Vector = serde_json::from_str(&text).unwrap();
    assert_eq!(vector.expect, "valid");
    check(&vector);
    // And our own signing reproduces the header ElevenLabs sent.
    let t = 1_763_978_400;
    assert_eq!(
        signature::sign(
            &SecretString::from(vector.secret.clone()),
            t,
            &body(&vector.file)
        ),
        vector.header
    );
}

fn seed() -> (SecretString, String, Vec<u8>, i64) {
    let text = std::fs::read_to_string(crate::support::fixture(
        "elevenlabs/seed_webhook_vector.json",
    ))
    .unwrap();
    let v: Vector = serde_json::from_str(&text).unwrap();
    (SecretString::from(v.secret), v.header, body(&v.file), v.now)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_changed_body_byte_is_refused(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (secret, header, mut body, now) = seed();
        let i = index.index(body.len());
        body[i] ^= flip;
        prop_assert_eq!(signature::verify(&secret, &header, &body, now), Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_changed_header_byte_is_refused(index in any::<prop::sample::Index>(), replacement in any::<u8>()) {
        let (secret, header, body, now) = seed();
        let mut bytes = header.clone().into_bytes();
        let i = index.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        // Bytes that are not UTF-8 cannot arrive as a header string at all.
        if let Ok(changed) = String::from_utf8(bytes) {
            // Changing a hex digit's case leaves the same signature.
            prop_assume!(!changed.eq_ignore_ascii_case(&header));
            prop_assert!(signature::verify(&secret, &changed, &body, now).is_err(), "{} was accepted", changed);
        }
    }

    #[test]
    fn another_timestamp_with_the_same_signature_is_refused(delta in -299i64..=1799) {
        prop_assume!(delta != 0);
        let (secret, header, body, _) = seed();
        let t = 1_763_978_400 + delta;
        let moved = header.replacen("t=1763978400", &format!("t={t}"), 1);
        // Within the time window, so only the signature can refuse it.
        prop_assert_eq!(signature::verify(&secret, &moved, &body, t), Err(SignatureError::Mismatch));
    }
}
