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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn phone_numbers_in_e164_pass() {
        for good in [
            "+40721000111",
            "+14155552671",
            "+12345678",
            "+123456789012345",
        ] {
            let phone = PhoneNumber::parse("to", good).unwrap();
            assert_eq!(phone.as_str(), good);
            assert_eq!(phone.digits(), &good[1..]);
        }
    }

    #[test]
    fn phone_numbers_outside_e164_fail_naming_the_field() {
        for (bad, reason) in [
            ("0721000111", "must start with +"),
            ("", "must start with +"),
            ("40721000111", "must start with +"),
            ("+0712345678", "country code cannot start with 0"),
            ("+40 721 000 111", "must be digits after the +"),
            ("+40721-000-111", "must be digits after the +"),
            ("++40721000111", "must be digits after the +"),
            ("+４０７２１０００１１１", "must be digits after the +"),
            ("+", "must have 8 to 15 digits"),
            ("+4072100", "must have 8 to 15 digits"),
            ("+1234567890123456", "must have 8 to 15 digits"),
        ] {
            let error = PhoneNumber::parse("to", bad).unwrap_err();
            assert_eq!(error.field, "to", "{bad:?}");
            assert!(
                error.reason.starts_with(reason),
                "{bad:?}: {}",
                error.reason
            );
            assert!(error.to_string().starts_with("to: "));
        }
    }

    #[test]
    fn addr_specs_pass() {
        for good in [
            "ana@example.com",
            "ana.maria+programare@salon.example.ro",
            "a@b.ro",
            "x@a-b.ro",
            "!#$%&'*+/=?^_`{|}~-@x.ro",
            "ana@xn--slon-rna.ro",
            &format!("{}@x.ro", "a".repeat(64)),
            &format!("a@{}.ro", "b".repeat(63)),
        ] {
            assert_eq!(EmailAddress::parse("to", good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn malformed_addresses_fail_naming_the_field() {
        for (bad, reason) in [
            ("a@b", "has an invalid domain after @"),
            ("a..b@x.ro", "has an invalid part before @"),
            (".a@x.ro", "has an invalid part before @"),
            ("a.@x.ro", "has an invalid part before @"),
            ("@x.ro", "has an invalid part before @"),
            ("a b@x.ro", "has an invalid part before @"),
            ("\"ana\"@x.ro", "has an invalid part before @"),
            ("a@b@x.ro", "has an invalid part before @"),
            ("ană@x.ro", "has an invalid part before @"),
            ("a@", "has an invalid domain after @"),
            ("a@x..ro", "has an invalid domain after @"),
            ("a@.x.ro", "has an invalid domain after @"),
            ("a@x.ro.", "has an invalid domain after @"),
            ("a@-x.ro", "has an invalid domain after @"),
            ("a@x-.ro", "has an invalid domain after @"),
            ("a@x_y.ro", "has an invalid domain after @"),
            ("ana@sălon.ro", "has an invalid domain after @"),
            ("ana@[127.0.0.1]", "has an invalid domain after @"),
            ("ana.example.com", "must contain @"),
            (
                &format!("{}@x.ro", "a".repeat(65)),
                "has an invalid part before @",
            ),
            (
                &format!("a@{}.ro", "b".repeat(64)),
                "has an invalid domain after @",
            ),
            (
                &format!("a@{}.ro", vec!["b".repeat(60); 5].join(".")),
                "is longer than 254 characters",
            ),
        ] {
            let error = EmailAddress::parse("email", bad).unwrap_err();
            assert_eq!(error.field, "email");
            assert_eq!(error.reason, reason, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_keeps_what_it_accepts(value in "\\PC{0,40}|[+0-9 ]{0,20}|[a-z.@-]{0,20}") {
            if let Ok(phone) = PhoneNumber::parse("to", &value) {
                prop_assert_eq!(phone.as_str(), value.as_str());
                prop_assert!((8..=15).contains(&phone.digits().len()));
            }
            if let Ok(email) = EmailAddress::parse("to", &value) {
                prop_assert_eq!(email.as_str(), value.as_str());
                prop_assert!(value.contains('@'));
            }
        }

        #[test]
        fn any_e164_shaped_number_passes(cc in 1u8..=9, rest in "[0-9]{7,14}") {
            let value = format!("+{cc}{rest}");
            prop_assert!(PhoneNumber::parse("to", &value).is_ok());
        }
    }
}
