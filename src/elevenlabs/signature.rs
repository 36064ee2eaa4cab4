//! The `ElevenLabs-Signature` header on webhooks:
//! `t=<unix seconds>,v0=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//!
//! Verified against the raw body bytes, before any JSON parsing, with a
//! constant-time comparison and a replay window.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Name of the header ElevenLabs sends.
pub const HEADER: &str = "ElevenLabs-Signature";
/// Signatures older than this are replays (or a very late retry).
pub const MAX_AGE_SECS: i64 = 30 * 60;
/// Clock skew tolerated for timestamps ahead of ours.
pub const MAX_AHEAD_SECS: i64 = 5 * 60;
/// Longer headers are not parsed at all.
const MAX_HEADER_LEN: usize = 1024;

/// Why a signed webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed {HEADER} header: {0}")]
    Malformed(&'static str),
    #[error("{HEADER} is {age_secs} s old; at most {MAX_AGE_SECS} s is accepted")]
    Expired { age_secs: i64 },
    #[error(
        "{HEADER} timestamp is {ahead_secs} s in the future; at most {MAX_AHEAD_SECS} s is tolerated"
    )]
    FromTheFuture { ahead_secs: i64 },
    #[error("{HEADER} does not match the body and the webhook secret")]
    Mismatch,
}

/// Checks `header` for `body` at the time `now` (unix seconds).
///
/// Several `v0=` values are accepted (one matching is enough) so that the
/// secret can be rotated; unknown keys are ignored.
pub fn verify(
    secret: &SecretString,
    header: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let parsed = parse(header)?;
    let age = now.saturating_sub(parsed.timestamp);
    if age > MAX_AGE_SECS {
        return Err(SignatureError::Expired { age_secs: age });
    }
    if -age > MAX_AHEAD_SECS {
        return Err(SignatureError::FromTheFuture { ahead_secs: -age });
    }
    let mac = mac(secret, parsed.timestamp_text, body);
    let matched = parsed
        .signatures
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header value ElevenLabs would send for `body` at `timestamp`; for
/// tests and for tools that simulate ElevenLabs.
pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let digest = mac(secret, &t, body).finalize().into_bytes();
    format!("t={t},v0={}", hex::encode(digest))
}

fn mac(secret: &SecretString, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

struct Parsed<'a> {
    timestamp: i64,
    timestamp_text: &'a str,
    signatures: Vec<[u8; 32]>,
}

fn parse(header: &str) -> Result<Parsed<'_>, SignatureError> {
    use SignatureError::Malformed;
    if header.trim().is_empty() {
        return Err(Malformed("the header is empty"));
    }
    if header.len() > MAX_HEADER_LEN {
        return Err(Malformed("the header is longer than 1024 bytes"));
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(Malformed("every element must be key=value"));
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(Malformed("t= appears more than once"));
                }
                if value.is_empty()
                    || value.len() > 12
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(Malformed("t= is not a unix timestamp in seconds"));
                }
                timestamp = Some(value);
            }
            "v0" => {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(value, &mut digest)
                    .map_err(|_| Malformed("v0= is not 64 hexadecimal digits"))?;
                signatures.push(digest);
            }
            _ => {}
        }
    }
    let timestamp_text = timestamp.ok_or(Malformed("no t= timestamp"))?;
    if signatures.is_empty() {
        return Err(Malformed("no v0= signature"));
    }
    Ok(Parsed {
        timestamp: timestamp_text
            .parse()
            .map_err(|_| Malformed("t= is not a unix timestamp in seconds"))?,
        timestamp_text,
        signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretString {
        SecretString::from("wsec_unit")
    }

    #[test]
    fn a_fresh_signature_verifies_and_the_window_edges_hold() {
        let body = br#"{"event":"message"}"#;
        let header = sign(&secret(), 1_000_000, body);
        assert_eq!(verify(&secret(), &header, body, 1_000_000), Ok(()));
        assert_eq!(
            verify(&secret(), &header, body, 1_000_000 + MAX_AGE_SECS),
            Ok(())
        );
        assert_eq!(
            verify(&secret(), &header, body, 1_000_000 + MAX_AGE_SECS + 1),
            Err(SignatureError::Expired {
                age_secs: MAX_AGE_SECS + 1
            })
        );
        assert_eq!(
            verify(&secret(), &header, body, 1_000_000 - MAX_AHEAD_SECS),
            Ok(())
        );
        assert_eq!(
            verify(&secret(), &header, body, 1_000_000 - MAX_AHEAD_SECS - 1),
            Err(SignatureError::FromTheFuture {
                ahead_secs: MAX_AHEAD_SECS + 1
            })
        );
    }

    #[test]
    fn any_of_several_v0_values_may_match_and_unknown_keys_are_ignored() {
        let body = b"{}";
        let good = sign(&secret(), 50, body);
        let v0 = good.split_once(",v0=").unwrap().1;
        let header = format!("t=50, v1=abc, v0={}, v0={v0}", "0".repeat(64));
        assert_eq!(verify(&secret(), &header, body, 60), Ok(()));
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        let v0 = "a".repeat(64);
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            (&format!("v0={v0}") as &str, "no t="),
            ("t=123", "no v0="),
            (&format!("t=12x,v0={v0}"), "unix timestamp"),
            (&format!("t=-5,v0={v0}"), "unix timestamp"),
            (&format!("t=,v0={v0}"), "unix timestamp"),
            (&format!("t=1,t=2,v0={v0}"), "more than once"),
            ("t=1,v0=abc", "64 hexadecimal"),
            (&format!("t=1,v0={}", "g".repeat(64)), "64 hexadecimal"),
            (&format!("t:1,v0={v0}"), "key=value"),
            (
                &format!("t=1,v0={v0},{}", "x=1,".repeat(300)),
                "longer than",
            ),
        ];
        for (header, needle) in cases {
            match verify(&secret(), header, b"{}", 1) {
                Err(SignatureError::Malformed(reason)) => {
                    assert!(reason.contains(needle), "{header:?}: {reason}")
                }
                other => panic!("{header:?}: {other:?}"),
            }
        }
    }
}
