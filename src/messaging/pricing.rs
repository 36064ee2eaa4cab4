//! What a message costs: the provider's own price when its answer gives
//! one (Twilio's `price` and `price_unit`), else the configured price
//! table (per provider, channel and country calling code). SNS `Publish`,
//! SES `SendEmail` and the WhatsApp Cloud API's send answer carry no
//! price, so their messages are priced from the table or not at all.

use std::path::Path;

use serde::Deserialize;

use super::{Channel, PhoneNumber, provider_name};
use crate::actionlog::cost::{Cost, CostSource, Money};
use crate::actionlog::record::Provider;

/// One line of the price table file (`--price-table`), as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    provider: String,
    channel: String,
    /// Country calling code the price is for (`40`, `+1`, `1809`);
    /// absent for every destination (and for email).
    #[serde(default)]
    country: Option<String>,
    price: f64,
    currency: String,
}

/// The price table file: `{"messages": [...]}`, in YAML or JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default)]
    messages: Vec<EntryFile>,
}

/// One checked price: what one message costs through `provider` on
/// `channel` to numbers starting with `country`.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    provider: Provider,
    channel: Channel,
    /// Digits of the calling code; empty for every destination.
    country: String,
    price: Money,
}

/// The configured prices of messages; empty unless `--price-table` names
/// a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    entries: Vec<Entry>,
}

/// Why the price table cannot be used, naming the file and the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("price table {path}: {reason}")]
pub struct PriceTableError {
    pub path: String,
    pub reason: String,
}

const PROVIDERS: [Provider; 6] = [
    Provider::AwsSns,
    Provider::Twilio,
    Provider::Meta,
    Provider::AwsSes,
    Provider::Smtp,
    Provider::Gmail,
];

impl PriceTable {
    /// Reads the table from `path` (YAML, of which JSON is a part).
    pub fn load(path: &Path) -> Result<PriceTable, PriceTableError> {
        let error = |reason: String| PriceTableError {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        PriceTable::parse(&text).map_err(error)
    }

    /// Parses the table's text; the error names the entry and its field.
    pub fn parse(text: &str) -> Result<PriceTable, String> {
        let file: TableFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let mut entries: Vec<Entry> = Vec::with_capacity(file.messages.len());
        for (i, raw) in file.messages.into_iter().enumerate() {
            let at = |field: &str| format!("messages[{i}].{field}");
            let provider = PROVIDERS
                .into_iter()
                .find(|p| provider_name(*p) == raw.provider.trim())
                .ok_or_else(|| {
                    format!(
                        "{}: {:?} is not a messaging provider (aws_sns, twilio, meta, aws_ses, smtp, gmail)",
                        at("provider"),
                        raw.provider
                    )
                })?;
            let channel = Channel::parse(&raw.channel).ok_or_else(|| {
                format!(
                    "{}: {:?} is not sms, email or meta",
                    at("channel"),
                    raw.channel
                )
            })?;
            let country = match raw.country.as_deref().map(str::trim) {
                None | Some("") => String::new(),
                Some(code) => {
                    let digits = code.strip_prefix('+').unwrap_or(code);
                    if digits.is_empty()
                        || digits.len() > 6
                        || digits.starts_with('0')
                        || !digits.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(format!(
                            "{}: {code:?} is not a country calling code (1 to 6 digits, not starting with 0, such as 40 or +1)",
                            at("country")
                        ));
                    }
                    if channel == Channel::Email {
                        return Err(format!(
                            "{}: email has no country calling code; leave it out",
                            at("country")
                        ));
                    }
                    digits.to_owned()
                }
            };
            let price =
                Money::new(&at("price"), raw.price, &raw.currency).map_err(|e| e.to_string())?;
            let entry = Entry {
                provider,
                channel,
                country,
                price,
            };
            if entries
                .iter()
                .any(|e| (e.provider, e.channel, &e.country) == (provider, channel, &entry.country))
            {
                return Err(format!(
                    "messages[{i}]: a second price for {} {} {}",
                    raw.provider.trim(),
                    channel,
                    if entry.country.is_empty() {
                        "to any destination".to_owned()
                    } else {
                        format!("to +{}", entry.country)
                    }
                ));
            }
            entries.push(entry);
        }
        Ok(PriceTable { entries })
    }

    /// How many prices the table holds, for the start-up report.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no price.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The price of one message through `provider` on `channel` to `to`
    /// (no number for email): the entry with the longest calling code
    /// that starts the number, else the entry for every destination.
    pub fn price(
        &self,
        provider: Provider,
        channel: Channel,
        to: Option<&PhoneNumber>,
    ) -> Option<&Money> {
        let digits = to.map(PhoneNumber::digits).unwrap_or_default();
        self.entries
            .iter()
            .filter(|e| e.provider == provider && e.channel == channel)
            .filter(|e| digits.starts_with(&e.country))
            .max_by_key(|e| e.country.len())
            .map(|e| &e.price)
    }

    /// The cost of a message `provider` took: its own price when it gave
    /// one, else the table's estimate, else none.
    pub fn cost(
        &self,
        reported: Option<&Money>,
        provider: Provider,
        channel: Channel,
        to: Option<&PhoneNumber>,
    ) -> Option<Cost> {
        match reported {
            Some(price) => Some(price.cost(CostSource::Provider)),
            None => self
                .price(provider, channel, to)
                .map(|price| price.cost(CostSource::Estimated)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"
messages:
  - {provider: twilio, channel: sms, price: 0.05, currency: USD}
  - {provider: twilio, channel: sms, country: "+1", price: 0.0079, currency: USD}
  - {provider: twilio, channel: sms, country: "1809", price: 0.06, currency: USD}
  - {provider: twilio, channel: sms, country: "40", price: 0.0712, currency: usd}
  - {provider: aws_sns, channel: sms, country: "40", price: 0.0655, currency: USD}
  - {provider: meta, channel: meta, country: "40", price: 0.04, currency: EUR}
  - {provider: aws_ses, channel: email, price: 0.0001, currency: USD}
"#;

    fn phone(number: &str) -> PhoneNumber {
        PhoneNumber::parse("to", number).unwrap()
    }

    fn amount(table: &PriceTable, provider: Provider, channel: Channel, to: &str) -> Option<f64> {
        let to = (!to.is_empty()).then(|| phone(to));
        table
            .price(provider, channel, to.as_ref())
            .map(|m| m.amount)
    }

    #[test]
    fn the_longest_calling_code_wins_per_provider_and_channel() {
        let table = PriceTable::parse(TABLE).unwrap();
        assert_eq!(table.len(), 7);
        let sms = |p, to| amount(&table, p, Channel::Sms, to);
        assert_eq!(sms(Provider::Twilio, "+40721000111"), Some(0.0712));
        assert_eq!(sms(Provider::Twilio, "+14155550100"), Some(0.0079));
        assert_eq!(sms(Provider::Twilio, "+18095550100"), Some(0.06));
        // No entry for +44: the one for every destination.
        assert_eq!(sms(Provider::Twilio, "+447700900123"), Some(0.05));
        assert_eq!(sms(Provider::AwsSns, "+40721000111"), Some(0.0655));
        assert_eq!(sms(Provider::AwsSns, "+14155550100"), None);
        assert_eq!(
            amount(&table, Provider::Meta, Channel::Meta, "+40721000111"),
            Some(0.04)
        );
        assert_eq!(
            amount(&table, Provider::Meta, Channel::Sms, "+40721000111"),
            None
        );
        assert_eq!(
            amount(&table, Provider::AwsSes, Channel::Email, ""),
            Some(0.0001)
        );
        assert_eq!(amount(&table, Provider::Smtp, Channel::Email, ""), None);
        let eur = table.price(Provider::Meta, Channel::Meta, Some(&phone("+40721000111")));
        assert_eq!(eur.unwrap().currency, "EUR");
        let lower = table.price(Provider::Twilio, Channel::Sms, Some(&phone("+40721000111")));
        assert_eq!(lower.unwrap().currency, "USD", "currencies are upper-cased");
    }

    #[test]
    fn the_providers_price_wins_over_the_table() {
        let table = PriceTable::parse(TABLE).unwrap();
        let to = phone("+40721000111");
        let reported = Money::new("price", 0.074, "USD").unwrap();
        let cost = table
            .cost(Some(&reported), Provider::Twilio, Channel::Sms, Some(&to))
            .unwrap();
        assert_eq!((cost.amount, cost.source), (0.074, CostSource::Provider));
        let cost = table
            .cost(None, Provider::Twilio, Channel::Sms, Some(&to))
            .unwrap();
        assert_eq!((cost.amount, cost.source), (0.0712, CostSource::Estimated));
        assert_eq!(
            PriceTable::default().cost(None, Provider::Twilio, Channel::Sms, Some(&to)),
            None
        );
    }

    #[test]
    fn json_and_an_empty_file_are_tables_too() {
        let json = r#"{"messages": [{"provider": "smtp", "channel": "email", "price": 0, "currency": "EUR"}]}"#;
        let table = PriceTable::parse(json).unwrap();
        assert_eq!(
            amount(&table, Provider::Smtp, Channel::Email, ""),
            Some(0.0)
        );
        assert!(PriceTable::parse("messages: []").unwrap().is_empty());
        assert!(PriceTable::parse("{}").unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_named() {
        let cases = [
            (
                "messages: [{provider: fax, channel: sms, price: 1, currency: USD}]",
                "messages[0].provider",
            ),
            (
                "messages: [{provider: twilio, channel: pigeon, price: 1, currency: USD}]",
                "messages[0].channel",
            ),
            (
                "messages: [{provider: twilio, channel: sms, country: '04', price: 1, currency: USD}]",
                "messages[0].country",
            ),
            (
                "messages: [{provider: twilio, channel: sms, country: '+', price: 1, currency: USD}]",
                "messages[0].country",
            ),
            (
                "messages: [{provider: aws_ses, channel: email, country: '40', price: 1, currency: USD}]",
                "messages[0].country",
            ),
            (
                "messages: [{provider: twilio, channel: sms, price: -1, currency: USD}]",
                "messages[0].price",
            ),
            (
                "messages: [{provider: twilio, channel: sms, price: 1, currency: dollars}]",
                "messages[0].price",
            ),
            (
                "messages: [{provider: twilio, channel: sms, price: 1, currency: USD}, {provider: twilio, channel: sms, price: 2, currency: USD}]",
                "messages[1]: a second price",
            ),
            (
                "messages: [{provider: twilio, channel: sms, price: 1, currency: USD, cost: 2}]",
                "cost",
            ),
        ];
        for (text, names) in cases {
            let error = PriceTable::parse(text).unwrap_err();
            assert!(error.contains(names), "{text}: {error}");
        }
        let missing = PriceTable::load(Path::new("/nonexistent/prices.yaml")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("price table /nonexistent/prices.yaml: ")
        );
    }
}
