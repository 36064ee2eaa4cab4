//! What an action cost: `data.metadata.cost` of an agent-log record,
//! `{amount, currency, source}`. The source says whether the provider
//! reported the amount or it was estimated from configured prices.
//!
//! Voice calls are priced here from what ElevenLabs' post-call event
//! reports; messages are priced in `messaging::pricing`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who put the figure on the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// The provider's own answer or event said what it charged.
    Provider,
    /// Worked out from configured prices (a price per ElevenLabs credit,
    /// the price table of messages).
    Estimated,
}

/// `data.metadata.cost`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// Zero or more, in `currency`.
    #[serde(serialize_with = "super::record::number")]
    pub amount: f64,
    /// ISO 4217 code, upper case (`USD`).
    pub currency: String,
    pub source: CostSource,
    /// ElevenLabs credits the call used, when the amount came from them.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::record::optional_number"
    )]
    pub credits: Option<f64>,
}

/// An amount of money: a price from the configuration or a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Money {
    pub amount: f64,
    /// ISO 4217 code, upper case.
    pub currency: String,
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// Why an amount or a currency cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct MoneyError {
    pub field: String,
    pub reason: String,
}

impl Money {
    /// Checks `amount` (finite, zero or more) and `currency` (three
    /// letters, upper-cased) for the setting or field named `field`.
    pub fn new(field: &str, amount: f64, currency: &str) -> Result<Money, MoneyError> {
        let error = |reason: &str| MoneyError {
            field: field.to_owned(),
            reason: reason.to_owned(),
        };
        if !(amount.is_finite() && amount >= 0.0) {
            return Err(error("the amount must be a finite number, zero or more"));
        }
        Ok(Money {
            amount,
            currency: currency_code(currency).ok_or_else(|| {
                error("the currency must be an ISO 4217 code of three letters, such as USD")
            })?,
        })
    }

    /// Parses `"0.0003 USD"`: an amount, a space and a currency code.
    pub fn parse(field: &str, text: &str) -> Result<Money, MoneyError> {
        let mut parts = text.split_whitespace();
        let (Some(amount), Some(currency), None) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(MoneyError {
                field: field.to_owned(),
                reason: format!("{text:?} is not an amount and a currency, such as \"0.0003 USD\""),
            });
        };
        let amount = amount.parse::<f64>().map_err(|_| MoneyError {
            field: field.to_owned(),
            reason: format!("{amount:?} is not a number"),
        })?;
        Money::new(field, amount, currency)
    }

    /// This price as the cost of one action, from `source`.
    pub fn cost(&self, source: CostSource) -> Cost {
        Cost {
            amount: round(self.amount),
            currency: self.currency.clone(),
            source,
            credits: None,
        }
    }
}

/// `code` upper-cased when it is three ASCII letters (Twilio writes
/// `price_unit` in either case).
pub fn currency_code(code: &str) -> Option<String> {
    let code = code.trim();
    (code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| code.to_ascii_uppercase())
}

/// Amounts are kept to a millionth of the unit, so that a product of a
/// price and a count reads as a person would write it.
fn round(amount: f64) -> f64 {
    (amount * 1e6).round() / 1e6
}

impl Cost {
    /// Checks a cost read from a record: a finite amount, zero or more,
    /// and a three-letter upper-case currency.
    pub fn check(&self) -> Result<(), &'static str> {
        if !(self.amount.is_finite() && self.amount >= 0.0) {
            return Err("amount must be a finite number, zero or more");
        }
        if currency_code(&self.currency).as_deref() != Some(self.currency.as_str()) {
            return Err("currency must be an ISO 4217 code of three upper-case letters");
        }
        if self.credits.is_some_and(|c| !(c.is_finite() && c >= 0.0)) {
            return Err("credits must be a finite number, zero or more");
        }
        Ok(())
    }
}

/// What ElevenLabs' post-call event says a call cost
/// (`data.metadata` of `post_call_transcription`, the
/// `ConversationHistoryMetadataCommonModel` of ElevenLabs' OpenAPI).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallCharges {
    /// `cost_fiat`: "total fiat cost of the conversation in USD, i.e. the
    /// sum of the LLM price and the non-LLM platform price" (OpenAPI
    /// description of `ConversationHistoryMetadataCommonModel.cost_fiat`).
    pub cost_fiat_usd: Option<f64>,
    /// `cost`: the credits the call used.
    pub credits: Option<f64>,
    /// `charging.llm_price`: the LLM's price, in USD like `cost_fiat`,
    /// of which it is a part.
    pub llm_price_usd: Option<f64>,
    /// `charging.llm_charge`: the LLM's price in credits, when ElevenLabs
    /// charged it in credits.
    pub llm_charge_credits: Option<f64>,
}

/// The currency ElevenLabs' fiat figures (`cost_fiat`, `llm_price`) are in.
const ELEVENLABS_FIAT: &str = "USD";

/// The cost of a call from its post-call charges:
///
/// - ElevenLabs' own fiat total (`cost_fiat`, USD), source `provider`;
/// - else its credits times `per_credit`, source `estimated`, plus the
///   LLM's price in USD when ElevenLabs reports one it did not charge in
///   credits (`llm_price` without `llm_charge`) and `per_credit` is in
///   USD too;
/// - else none: without a price per credit, credits are not money.
pub fn call_cost(charges: &CallCharges, per_credit: Option<&Money>) -> Option<Cost> {
    if let Some(fiat) = charges.cost_fiat_usd.filter(|f| f.is_finite() && *f >= 0.0) {
        return Some(Cost {
            amount: round(fiat),
            currency: ELEVENLABS_FIAT.to_owned(),
            source: CostSource::Provider,
            credits: charges.credits,
        });
    }
    let credits = charges.credits.filter(|c| c.is_finite() && *c >= 0.0)?;
    let per_credit = per_credit?;
    let mut amount = credits * per_credit.amount;
    let llm_outside_credits = charges.llm_charge_credits.is_none_or(|c| c == 0.0);
    if let Some(llm) = charges.llm_price_usd.filter(|p| p.is_finite() && *p > 0.0)
        && llm_outside_credits
        && per_credit.currency == ELEVENLABS_FIAT
    {
        amount += llm;
    }
    Some(Cost {
        amount: round(amount),
        currency: per_credit.currency.clone(),
        source: CostSource::Estimated,
        credits: Some(credits),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(amount: f64) -> Money {
        Money::new("test", amount, "USD").unwrap()
    }

    #[test]
    fn credits_are_converted_with_the_price_per_credit() {
        let charges = CallCharges {
            credits: Some(752.0),
            ..CallCharges::default()
        };
        let cost = call_cost(&charges, Some(&usd(0.00018))).unwrap();
        assert_eq!(
            cost,
            Cost {
                amount: 0.13536,
                currency: "USD".into(),
                source: CostSource::Estimated,
                credits: Some(752.0),
            }
        );
        let eur = Money::parse("--price-per-credit", "0.0002 eur").unwrap();
        let cost = call_cost(&charges, Some(&eur)).unwrap();
        assert_eq!((cost.amount, cost.currency.as_str()), (0.1504, "EUR"));
    }

    #[test]
    fn elevenlabs_fiat_total_wins_and_is_the_providers() {
        let charges = CallCharges {
            cost_fiat_usd: Some(0.0912),
            credits: Some(752.0),
            llm_price_usd: Some(0.004),
            llm_charge_credits: None,
        };
        let cost = call_cost(&charges, Some(&usd(1.0))).unwrap();
        assert_eq!(cost.amount, 0.0912);
        assert_eq!(cost.source, CostSource::Provider);
        assert_eq!(cost.credits, Some(752.0));
        // Without a price per credit too.
        assert_eq!(call_cost(&charges, None).unwrap().amount, 0.0912);
    }

    #[test]
    fn the_llm_price_is_added_only_when_not_already_in_the_credits() {
        let mut charges = CallCharges {
            credits: Some(1000.0),
            llm_price_usd: Some(0.02),
            ..CallCharges::default()
        };
        assert_eq!(
            call_cost(&charges, Some(&usd(0.0001))).unwrap().amount,
            0.12
        );
        charges.llm_charge_credits = Some(150.0);
        assert_eq!(call_cost(&charges, Some(&usd(0.0001))).unwrap().amount, 0.1);
        // A USD figure is never added to another currency.
        charges.llm_charge_credits = None;
        let eur = Money::new("test", 0.0001, "EUR").unwrap();
        assert_eq!(call_cost(&charges, Some(&eur)).unwrap().amount, 0.1);
    }

    #[test]
    fn no_price_means_no_cost() {
        let credits_only = CallCharges {
            credits: Some(752.0),
            ..CallCharges::default()
        };
        assert_eq!(call_cost(&credits_only, None), None);
        assert_eq!(call_cost(&CallCharges::default(), Some(&usd(0.1))), None);
        let negative = CallCharges {
            credits: Some(-3.0),
            cost_fiat_usd: Some(f64::NAN),
            ..CallCharges::default()
        };
        assert_eq!(call_cost(&negative, Some(&usd(0.1))), None);
    }

    #[test]
    fn money_is_checked_and_names_the_setting() {
        assert_eq!(
            Money::parse("--price-per-credit", " 0.0003   usd ").unwrap(),
            usd(0.0003)
        );
        for bad in [
            "", "0.1", "0.1 US", "0.1 US1", "x USD", "-1 USD", "inf USD", "1 USD x",
        ] {
            let error = Money::parse("--price-per-credit", bad).unwrap_err();
            assert_eq!(error.field, "--price-per-credit", "{bad:?}");
        }
    }

    #[test]
    fn a_cost_read_from_a_record_is_checked() {
        assert_eq!(usd(0.5).cost(CostSource::Provider).check(), Ok(()));
        let mut bad = usd(0.5).cost(CostSource::Provider);
        bad.currency = "usd".into();
        assert!(bad.check().unwrap_err().contains("currency"));
        bad.currency = "USD".into();
        bad.amount = -0.1;
        assert!(bad.check().unwrap_err().contains("amount"));
    }
}
