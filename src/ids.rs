//! Identifiers that end up in URL paths, partition keys and table keys:
//! parsed once at the edge so raw strings never reach a request or a store.

use std::fmt;

/// Longest identifier we accept.
pub const MAX_ID_LEN: usize = 64;

/// A non-empty identifier of at most [`MAX_ID_LEN`] characters from
/// `[A-Za-z0-9_-]`: business, location, agent and conversation ids.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Id(String);

/// Why a value is not an [`Id`]; names the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct IdError {
    pub field: String,
    pub reason: String,
}

impl Id {
    /// Checks `value` as the identifier in `field` (the name used in errors).
    pub fn parse(field: &str, value: &str) -> Result<Id, IdError> {
        let fail = |reason: String| IdError {
            field: field.to_owned(),
            reason,
        };
        if value.is_empty() {
            return Err(fail("must not be empty".into()));
        }
        if value.len() > MAX_ID_LEN {
            return Err(fail(format!(
                "is {} characters long; at most {MAX_ID_LEN} are allowed",
                value.len()
            )));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(fail(format!(
                "contains {bad:?}; only letters, digits, '_' and '-' are allowed"
            )));
        }
        Ok(Id(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_id_alphabet_up_to_64_characters() {
        for ok in [
            "B0100001",
            "agent_7801k2abcd0efgh",
            "a-b_C",
            &"x".repeat(64),
        ] {
            assert_eq!(Id::parse("businessId", ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters_naming_the_field() {
        let cases = [
            ("", "must not be empty"),
            (&"x".repeat(65) as &str, "65 characters"),
            ("a/b", "'/'"),
            ("../etc", "'.'"),
            ("a b", "' '"),
            ("ă", "'ă'"),
        ];
        for (value, needle) in cases {
            let err = Id::parse("locationId", value).unwrap_err();
            assert_eq!(err.field, "locationId");
            assert!(err.to_string().starts_with("locationId: "), "{err}");
            assert!(err.reason.contains(needle), "{value:?}: {err}");
        }
    }
}
