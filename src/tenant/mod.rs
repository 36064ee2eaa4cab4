//! The per-tenant configuration the seed keeps in DynamoDB table
//! `elevenlabs-agents`: one item per (businessId, locationId), written by
//! the controller and read by the webhook path.
//!
//! Every write carries the owner (the uid of the VoiceAgent that manages
//! the location): an item belongs to whoever wrote it first, and a write
//! from anybody else fails with [`StoreError::Conflict`]. An item without
//! an owner (written before the operator existed) belongs to nobody yet.
//!
//! Every write also carries the version its writer read ([`Seen`]), and
//! happens only if the item is still at that version: optimistic locking
//! as AWS describes it for DynamoDB ("DynamoDB and optimistic locking with
//! version number", Amazon DynamoDB Developer Guide). A writer that read
//! before somebody else wrote (an old leader during a Lease hand-over)
//! gets [`StoreError::Stale`] and must read again and plan again, so it
//! cannot undo the newer write.

pub mod cache;
pub mod dynamodb;
mod item;
pub mod sqlite;

use futures::future::BoxFuture;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::ids::Id;

pub use item::ItemError;

/// Default table name, as in the seed.
pub const DEFAULT_TABLE: &str = "elevenlabs-agents";

/// Primary key of a tenant item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantKey {
    pub business_id: Id,
    pub location_id: Id,
}

impl TenantKey {
    /// Checks both ids; errors name `businessId` or `locationId`.
    pub fn parse(business_id: &str, location_id: &str) -> Result<TenantKey, crate::ids::IdError> {
        Ok(TenantKey {
            business_id: Id::parse("businessId", business_id)?,
            location_id: Id::parse("locationId", location_id)?,
        })
    }
}

impl fmt::Display for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.business_id, self.location_id)
    }
}

/// The seed's `conversationSettings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationSettings {
    /// `maxDuration`, seconds.
    pub max_duration_secs: u32,
    pub record_calls: bool,
    pub send_transcripts: bool,
}

/// The Bedrock Agent a tenant's calls go to, when not the operator-wide one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedrockAgentRef {
    pub agent_id: String,
    pub alias_id: String,
}

/// Where the business hears about its calls (the VoiceAgent's
/// `spec.notify`); with `conversation.send_transcripts`, each call's
/// summary and transcript go there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    pub email: Option<String>,
    pub sms: Option<String>,
}

/// What the controller decides for a tenant. Never holds an API key: the
/// seed uses one global ElevenLabs key.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings {
    pub enabled: bool,
    /// The ElevenLabs agent serving this location.
    pub agent_id: Id,
    pub voice_id: String,
    pub greeting: String,
    pub custom_prompt: Option<String>,
    pub business_name: Option<String>,
    pub phone_number: Option<String>,
    pub bedrock: Option<BedrockAgentRef>,
    pub conversation: ConversationSettings,
    pub notify: Notify,
}

/// A stored tenant item.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    pub key: TenantKey,
    pub settings: TenantSettings,
    /// uid of the owning VoiceAgent; `None` for items nobody claimed yet.
    pub owner: Option<Id>,
    /// Raised by one on every write.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a writer read before it planned its write: the item's version, or
/// no item at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Nothing,
    /// An item at this version (0: written before versions existed).
    Version(u64),
}

impl Seen {
    /// What reading `item` saw.
    pub fn of(item: Option<&TenantConfig>) -> Seen {
        item.map_or(Seen::Nothing, |item| Seen::Version(item.version))
    }
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Nothing => f.write_str("no item"),
            Seen::Version(v) => write!(f, "version {v}"),
        }
    }
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// May be a moment old (DynamoDB's default read; the cache's TTL).
    Eventual,
    /// Sees every write that finished before it.
    Strong,
}

/// A failed store operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(
        "tenant {key} belongs to {}, not to {wanted}; the item was left as it is",
        current.as_deref().unwrap_or("nobody")
    )]
    Conflict {
        key: String,
        current: Option<String>,
        wanted: String,
    },
    /// The item changed after the writer read it; nothing was written.
    /// Not a conflict with another owner: reading again and planning again
    /// is the fix.
    #[error(
        "tenant {key} changed after it was read (read {seen}, found {found}); the write was refused, read it again"
    )]
    Stale {
        key: String,
        seen: Seen,
        found: Seen,
    },
    #[error("tenant {key} does not exist")]
    NotFound { key: String },
    /// The stored item is not in the seed format (edited by hand?).
    #[error("tenant {key} is stored in a bad shape: {error}")]
    BadItem { key: String, error: ItemError },
    /// Worth retrying: throttling, timeouts, the backend restarting.
    #[error("{backend} is unavailable: {message}")]
    Unavailable {
        backend: &'static str,
        message: String,
    },
    /// Not worth retrying until someone acts (missing table, no access).
    #[error("{backend} failed: {message}")]
    Failed {
        backend: &'static str,
        message: String,
    },
}

impl StoreError {
    /// Worth trying again: the backend may answer next time, or the item
    /// changed and a fresh read gives a write that can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Stale { .. }
        )
    }

    fn conflict(key: &TenantKey, current: Option<String>, wanted: &Id) -> StoreError {
        StoreError::Conflict {
            key: key.to_string(),
            current,
            wanted: wanted.to_string(),
        }
    }
}

/// The rule every write follows, in both stores: `owner` may write over
/// `current` (the stored item, `None` when there is none) when it owns the
/// item or nobody does, when the item exists if `must_exist`, and when it
/// is still what the writer saw (`seen`; `None` for a delete, which does
/// not read first). Refusals are checked in that order.
pub(crate) fn check_write(
    key: &TenantKey,
    owner: &Id,
    seen: Option<Seen>,
    must_exist: bool,
    current: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<(), StoreError> {
    if let Some(holder) = current
        .and_then(item::owner_of)
        .filter(|h| h != owner.as_str())
    {
        return Err(StoreError::conflict(key, Some(holder), owner));
    }
    if must_exist && current.is_none() {
        return Err(StoreError::NotFound {
            key: key.to_string(),
        });
    }
    let found = current.map_or(Seen::Nothing, |c| Seen::Version(item::version_of(c)));
    match seen {
        Some(seen) if seen != found => Err(StoreError::Stale {
            key: key.to_string(),
            seen,
            found,
        }),
        _ => Ok(()),
    }
}

/// Where tenant configuration lives. Writes are conditional on the owner
/// and on the version the writer read.
pub trait TenantStore: Send + Sync {
    fn get<'a>(
        &'a self,
        key: &'a TenantKey,
        read: Read,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, StoreError>>;

    /// Creates or replaces the item with `settings`, if `owner` owns it or
    /// nobody does and it is still as `seen`; keeps `createdAt`, sets
    /// `updatedAt`, raises `version`.
    fn put<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        settings: &'a TenantSettings,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>>;

    /// Switches `enabled` only; every other attribute (the agent id above
    /// all) stays. [`StoreError::NotFound`] when there is no item,
    /// [`StoreError::Stale`] when it is no longer as `seen`.
    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        enabled: bool,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>>;

    /// Deletes the item if `owner` owns it (or nobody does). `false` when
    /// there was nothing to delete.
    fn delete<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// Which store to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Embedded SQLite file (the default for local runs).
    Sqlite { path: PathBuf },
    /// A DynamoDB table, through the AWS SDK's standard environment.
    DynamoDb { table: String },
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    NoRegion(#[from] crate::aws::NoRegion),
    #[error("cannot open the tenant database {path}: {message}")]
    Sqlite { path: PathBuf, message: String },
}

/// Opens the store `config` names.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn TenantStore>, OpenError> {
    Ok(match config {
        StoreConfig::Sqlite { path } => Arc::new(sqlite::SqliteStore::open(path).await?),
        StoreConfig::DynamoDb { table } => {
            let sdk = dynamodb::sdk_config().await?;
            Arc::new(dynamodb::DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                table.clone(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_key_names_the_id_at_fault() {
        assert_eq!(TenantKey::parse("", "L1").unwrap_err().field, "businessId");
        assert_eq!(
            TenantKey::parse("B1", "L/1").unwrap_err().field,
            "locationId"
        );
        let long = "L".repeat(65);
        assert_eq!(
            TenantKey::parse("B1", &long).unwrap_err().field,
            "locationId"
        );
        assert_eq!(TenantKey::parse("B1", "L1").unwrap().to_string(), "B1/L1");
    }

    #[test]
    fn a_write_is_refused_for_the_owner_first_then_a_missing_item_then_the_version() {
        let key = TenantKey::parse("B1", "L1").unwrap();
        let me = Id::parse("owner", "uid-a").unwrap();
        let item = |owner: &str, version: u64| {
            serde_json::json!({"ownerUid": owner, "version": version})
                .as_object()
                .unwrap()
                .clone()
        };
        let (mine, theirs) = (item("uid-a", 3), item("uid-b", 3));
        let check = |seen, must_exist, current| check_write(&key, &me, seen, must_exist, current);

        assert!(check(Some(Seen::Version(3)), true, Some(&mine)).is_ok());
        assert!(check(Some(Seen::Nothing), false, None).is_ok());
        assert!(
            check(None, false, Some(&mine)).is_ok(),
            "a delete reads nothing"
        );
        assert!(matches!(
            check(Some(Seen::Version(2)), true, Some(&theirs)),
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(
            check(Some(Seen::Version(2)), true, None),
            Err(StoreError::NotFound { .. })
        ));
        match check(Some(Seen::Version(2)), false, Some(&mine)) {
            Err(e @ StoreError::Stale { .. }) => {
                assert!(e.is_retryable());
                assert_eq!(
                    e.to_string(),
                    "tenant B1/L1 changed after it was read (read version 2, found version 3); the write was refused, read it again"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check(Some(Seen::Nothing), false, Some(&mine)),
            Err(StoreError::Stale {
                seen: Seen::Nothing,
                found: Seen::Version(3),
                ..
            })
        ));
        // An item from before the operator has no version: it reads as 0.
        let legacy = serde_json::Map::new();
        assert!(check(Some(Seen::Version(0)), false, Some(&legacy)).is_ok());
    }
}
