//! The seed's item format, as JSON: the SQLite store keeps it as text and
//! the DynamoDB store maps it attribute for attribute (S, N, BOOL, M).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::{
    BedrockAgentRef, ConversationSettings, Notify, SpecGeneration, TenantConfig, TenantKey,
    TenantSettings,
};
use crate::ids::Id;

/// Attribute names, as the seed spells them.
pub(crate) const BUSINESS_ID: &str = "businessId";
pub(crate) const LOCATION_ID: &str = "locationId";
pub(crate) const OWNER: &str = "ownerUid";
pub(crate) const VERSION: &str = "version";
pub(crate) const ENABLED: &str = "enabled";
pub(crate) const CREATED_AT: &str = "createdAt";
pub(crate) const UPDATED_AT: &str = "updatedAt";
/// What the last write was planned from (see [`super::SpecGeneration`]);
/// added after the seed, so an item may lack them.
pub(crate) const SPEC_GENERATION: &str = "specGeneration";
pub(crate) const TEMPLATE_CREATED: &str = "templateCreated";
pub(crate) const TEMPLATE_GENERATION: &str = "templateGeneration";
/// Attributes that are left out when empty, so a put must remove them.
/// `notifyEmail` and `notifySms` came after the seed: an item without them
/// notifies nobody.
pub(crate) const OPTIONAL: [&str; 7] = [
    "customPrompt",
    "businessName",
    "phoneNumber",
    "bedrockAgentId",
    "bedrockAgentAliasId",
    "notifyEmail",
    "notifySms",
];

/// An attribute of a stored item that is missing or has the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute {field} {reason}")]
pub struct ItemError {
    pub field: String,
    pub reason: String,
}

fn fail(field: &str, reason: impl Into<String>) -> ItemError {
    ItemError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Timestamps as the seed writes them: RFC 3339, whole seconds, `Z`.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Now, to the whole second, so that what a write returns equals what a
/// later read parses.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("the clock is within range")
}

/// The attributes a put sets from `settings` (keys, owner, version and
/// timestamps aside).
pub(crate) fn settings_attributes(settings: &TenantSettings) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert(ENABLED.into(), json!(settings.enabled));
    item.insert("agentId".into(), json!(settings.agent_id));
    item.insert("voiceId".into(), json!(settings.voice_id));
    item.insert("greeting".into(), json!(settings.greeting));
    let optional = [
        ("customPrompt", settings.custom_prompt.as_deref()),
        ("businessName", settings.business_name.as_deref()),
        ("phoneNumber", settings.phone_number.as_deref()),
        (
            "bedrockAgentId",
            settings.bedrock.as_ref().map(|b| b.agent_id.as_str()),
        ),
        (
            "bedrockAgentAliasId",
            settings.bedrock.as_ref().map(|b| b.alias_id.as_str()),
        ),
        ("notifyEmail", settings.notify.email.as_deref()),
        ("notifySms", settings.notify.sms.as_deref()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.into(), json!(value));
        }
    }
    item.insert(
        "conversationSettings".into(),
        json!({
            "maxDuration": settings.conversation.max_duration_secs,
            "recordCalls": settings.conversation.record_calls,
            "sendTranscripts": settings.conversation.send_transcripts,
        }),
    );
    item
}

impl TenantConfig {
    /// The whole item in the seed's format, as the stores keep it.
    pub fn to_seed_json(&self) -> Value {
        Value::Object(to_json(self))
    }
}

fn to_json(config: &TenantConfig) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert(BUSINESS_ID.into(), json!(config.key.business_id));
    item.insert(LOCATION_ID.into(), json!(config.key.location_id));
    item.extend(settings_attributes(&config.settings));
    if let Some(owner) = &config.owner {
        item.insert(OWNER.into(), json!(owner));
    }
    item.insert(VERSION.into(), json!(config.version));
    if let Some(planned) = config.spec_generation {
        item.extend(generation_attributes(planned));
    }
    item.insert(CREATED_AT.into(), json!(timestamp(config.created_at)));
    item.insert(UPDATED_AT.into(), json!(timestamp(config.updated_at)));
    item
}

/// Reads an item, naming the first attribute that is missing or wrong.
pub(crate) fn from_json(item: &Map<String, Value>) -> Result<TenantConfig, ItemError> {
    let key = TenantKey {
        business_id: id(item, BUSINESS_ID)?,
        location_id: id(item, LOCATION_ID)?,
    };
    let bedrock = match (
        optional_string(item, "bedrockAgentId")?,
        optional_string(item, "bedrockAgentAliasId")?,
    ) {
        (Some(agent_id), Some(alias_id)) => Some(BedrockAgentRef { agent_id, alias_id }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(fail(
                "bedrockAgentAliasId",
                "is missing but bedrockAgentId is set",
            ));
        }
        (None, Some(_)) => {
            return Err(fail(
                "bedrockAgentId",
                "is missing but bedrockAgentAliasId is set",
            ));
        }
    };
    let conversation = match item.get("conversationSettings") {
        Some(Value::Object(c)) => ConversationSettings {
            max_duration_secs: c
                .get("maxDuration")
                .ok_or_else(|| fail("conversationSettings.maxDuration", "is missing"))?
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    fail(
                        "conversationSettings.maxDuration",
                        "is not a whole number of seconds",
                    )
                })?,
            record_calls: nested_bool(c, "recordCalls")?,
            send_transcripts: nested_bool(c, "sendTranscripts")?,
        },
        None | Some(Value::Null) => return Err(fail("conversationSettings", "is missing")),
        Some(_) => return Err(fail("conversationSettings", "is not a map")),
    };
    let settings = TenantSettings {
        enabled: boolean(item, ENABLED)?,
        agent_id: id(item, "agentId")?,
        voice_id: string(item, "voiceId")?,
        greeting: string(item, "greeting")?,
        custom_prompt: optional_string(item, "customPrompt")?,
        business_name: optional_string(item, "businessName")?,
        phone_number: optional_string(item, "phoneNumber")?,
        bedrock,
        conversation,
        notify: Notify {
            email: optional_string(item, "notifyEmail")?,
            sms: optional_string(item, "notifySms")?,
        },
    };
    let owner = match item.get(OWNER) {
        None | Some(Value::Null) => None,
        Some(_) => Some(id(item, OWNER)?),
    };
    let version = whole_number(item, VERSION)?.unwrap_or(0);
    let spec_generation = match whole_number(item, SPEC_GENERATION)? {
        Some(voice_agent) => Some(SpecGeneration {
            voice_agent,
            template_created: whole_number(item, TEMPLATE_CREATED)?.unwrap_or(0),
            template: whole_number(item, TEMPLATE_GENERATION)?.unwrap_or(0),
        }),
        None => None,
    };
    Ok(TenantConfig {
        key,
        settings,
        owner,
        version,
        spec_generation,
        created_at: time(item, CREATED_AT)?,
        updated_at: time(item, UPDATED_AT)?,
    })
}

/// The owner of an item, read leniently so that its owner can repair an
/// item that is otherwise broken.
pub(crate) fn owner_of(item: &Map<String, Value>) -> Option<String> {
    item.get(OWNER).and_then(Value::as_str).map(str::to_owned)
}

pub(crate) fn version_of(item: &Map<String, Value>) -> u64 {
    item.get(VERSION).and_then(Value::as_u64).unwrap_or(0)
}

/// The generation an item was last written from, read leniently like the
/// owner: an item without one (or with a broken one) accepts any write.
pub(crate) fn spec_generation_of(item: &Map<String, Value>) -> Option<SpecGeneration> {
    let number = |field| item.get(field).and_then(Value::as_u64).unwrap_or(0);
    Some(SpecGeneration {
        voice_agent: item.get(SPEC_GENERATION)?.as_u64()?,
        template_created: number(TEMPLATE_CREATED),
        template: number(TEMPLATE_GENERATION),
    })
}

/// The attributes a write stores for `planned`.
pub(crate) fn generation_attributes(planned: SpecGeneration) -> [(String, Value); 3] {
    [
        (SPEC_GENERATION.into(), json!(planned.voice_agent)),
        (TEMPLATE_CREATED.into(), json!(planned.template_created)),
        (TEMPLATE_GENERATION.into(), json!(planned.template)),
    ]
}

pub(crate) fn created_at_of(item: &Map<String, Value>) -> Option<DateTime<Utc>> {
    item.get(CREATED_AT)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn string(item: &Map<String, Value>, field: &str) -> Result<String, ItemError> {
    match item.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(fail(field, "is missing")),
        Some(_) => Err(fail(field, "is not a string")),
    }
}

fn optional_string(item: &Map<String, Value>, field: &str) -> Result<Option<String>, ItemError> {
    match item.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(fail(field, "is not a string")),
    }
}

fn whole_number(item: &Map<String, Value>, field: &str) -> Result<Option<u64>, ItemError> {
    match item.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| fail(field, "is not a non-negative whole number")),
    }
}

fn id(item: &Map<String, Value>, field: &str) -> Result<Id, ItemError> {
    Id::parse(field, &string(item, field)?).map_err(|e| fail(field, e.reason))
}

fn boolean(item: &Map<String, Value>, field: &str) -> Result<bool, ItemError> {
    match item.get(field) {
        Some(Value::Bool(b)) => Ok(*b),
        None | Some(Value::Null) => Err(fail(field, "is missing")),
        Some(_) => Err(fail(field, "is not a boolean")),
    }
}

fn nested_bool(settings: &Map<String, Value>, field: &str) -> Result<bool, ItemError> {
    boolean(settings, field).map_err(|e| fail(&format!("conversationSettings.{field}"), e.reason))
}

fn time(item: &Map<String, Value>, field: &str) -> Result<DateTime<Utc>, ItemError> {
    let text = string(item, field)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| fail(field, format!("{text:?} is not an RFC 3339 timestamp")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::fixtures::seed_item;

    #[test]
    fn the_seed_example_item_reads_and_writes_back_unchanged() {
        let config = from_json(&seed_item("L0100001")).unwrap();
        assert_eq!(config.owner, None);
        assert_eq!(config.version, 0);
        assert_eq!(config.settings.conversation.max_duration_secs, 300);
        let mut expected = seed_item("L0100001");
        expected.insert(VERSION.into(), json!(0));
        assert_eq!(to_json(&config), expected);
    }

    #[test]
    fn each_broken_attribute_is_named() {
        let cases: [(&str, Value, &str); 10] = [
            ("businessId", Value::Null, "businessId"),
            ("locationId", json!("L 1"), "locationId"),
            ("enabled", json!("true"), "enabled"),
            ("agentId", Value::Null, "agentId"),
            ("greeting", json!(5), "greeting"),
            ("conversationSettings", json!("x"), "conversationSettings"),
            (
                "conversationSettings",
                json!({"recordCalls": true, "sendTranscripts": false}),
                "conversationSettings.maxDuration",
            ),
            (
                "conversationSettings",
                json!({"maxDuration": -1, "recordCalls": true, "sendTranscripts": false}),
                "conversationSettings.maxDuration",
            ),
            ("createdAt", json!("yesterday"), "createdAt"),
            ("bedrockAgentId", json!("AGENT"), "bedrockAgentAliasId"),
        ];
        for (attribute, value, named) in cases {
            let mut item = seed_item("L0100001");
            if value.is_null() {
                item.remove(attribute);
            } else {
                item.insert(attribute.into(), value);
            }
            let err = from_json(&item).unwrap_err();
            assert_eq!(err.field, named, "{attribute}: {err}");
        }
    }
}
