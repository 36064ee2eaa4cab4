//! Recipients, checked before any provider sees them: phone numbers in
//! E.164, email addresses as RFC 5322 addr-specs.

use std::fmt;

/// Why a recipient was refused; names the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct AddressError {
    pub field: String,
    pub reason: String,
}

/// A phone number in E.164: `+`, a country code not starting with 0, at
/// most 15 digits in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Checks `value` as the phone number in `field`.
    pub fn parse(field: &str, value: &str) -> Result<PhoneNumber, AddressError> {
        let fail = |reason: &str| AddressError {
            field: field.to_owned(),
            reason: format!("{reason} (E.164, such as +40721000111)"),
        };
        let digits = value
            .strip_prefix('+')
            .ok_or_else(|| fail("must start with +"))?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail("must be digits after the +"));
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(fail("must have 8 to 15 digits"));
        }
        if digits.starts_with('0') {
            return Err(fail("country code cannot start with 0"));
        }
        Ok(PhoneNumber(value.to_owned()))
    }

    /// With the leading `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Without the leading `+` (as the WhatsApp Cloud API takes it).
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address: an RFC 5322 addr-spec (dot-atom local part, domain
/// of dot-separated labels), at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Checks `value` as the email address in `field`.
    pub fn parse(field: &str, value: &str) -> Result<EmailAddress, AddressError> {
        let fail = |reason: &str| AddressError {
            field: field.to_owned(),
            reason: reason.to_owned(),
        };
        if value.len() > 254 {
            return Err(fail("is longer than 254 characters"));
        }
        let (local, domain) = value
            .rsplit_once('@')
            .ok_or_else(|| fail("must contain @"))?;
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        let dot_atom = |s: &str, ok: &dyn Fn(char) -> bool| {
            !s.is_empty()
                && s.split('.')
                    .all(|part| !part.is_empty() && part.chars().all(ok))
        };
        if local.len() > 64 || !dot_atom(local, &atext) {
            return Err(fail("has an invalid part before @"));
        }
        let label = |c: char| c.is_ascii_alphanumeric() || c == '-';
        if !dot_atom(domain, &label)
            || !domain.contains('.')
            || domain
                .split('.')
                .any(|l| l.starts_with('-') || l.ends_with('-') || l.len() > 63)
        {
            return Err(fail("has an invalid domain after @"));
        }
        Ok(EmailAddress(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
