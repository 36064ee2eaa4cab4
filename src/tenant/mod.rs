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
//!
//! The version alone does not stop a writer whose *spec* is old: an old
//! leader whose informer cache still holds an older VoiceAgent may read the
//! item after the new leader wrote it, see the newest version, and write
//! its older spec over it. So every write also carries the generation its
//! plan was made from ([`SpecGeneration`], stored as `specGeneration` and
//! `templateGeneration`), and a write planned from an older one than the
//! item's is refused with [`StoreError::Superseded`]. Items without those
//! attributes (the seed's, or written before they existed) accept any.

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
    /// What the last write was planned from; `None` for items written
    /// before the operator stored it.
    pub spec_generation: Option<SpecGeneration>,
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

/// Which spec a write was planned from: the VoiceAgent's
/// `metadata.generation` and, for the VoiceAgentTemplate it names, when
/// that template was made and its `metadata.generation` (0 and 0 without
/// one). A template edit changes the effective spec without raising the
/// VoiceAgent's generation, so the template counts too. Ordered field by
/// field: naming another template raises the VoiceAgent's generation
/// first; a template deleted and made again under the same name starts at
/// generation 1 again, but was made later than the one before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpecGeneration {
    pub voice_agent: u64,
    /// The template's `creationTimestamp`, Unix seconds.
    pub template_created: u64,
    pub template: u64,
}

fn count(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

impl SpecGeneration {
    /// A plan made from a VoiceAgent at `generation` that names no
    /// template. Kubernetes counts from 1; a missing one reads as 0.
    pub fn of(generation: Option<i64>) -> SpecGeneration {
        SpecGeneration {
            voice_agent: count(generation),
            ..SpecGeneration::default()
        }
    }

    /// The same plan, made with a template created at `created` (Unix
    /// seconds) and at `generation`.
    pub fn with_template(self, created: Option<i64>, generation: Option<i64>) -> SpecGeneration {
        SpecGeneration {
            template_created: count(created),
            template: count(generation),
            ..self
        }
    }
}

impl fmt::Display for SpecGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "generation {}", self.voice_agent)?;
        if self.template > 0 {
            write!(f, " (template generation {})", self.template)?;
        }
        Ok(())
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
    /// The item was written from a newer spec than the one this write was
    /// planned from: somebody whose VoiceAgent (or template) is newer owns
    /// it now. Nothing was written; the writer's cache has to catch up.
    #[error(
        "tenant {key} was written from a newer spec ({stored}) than this write was planned from ({planned}); the write was refused"
    )]
    Superseded {
        key: String,
        planned: SpecGeneration,
        stored: SpecGeneration,
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
            StoreError::Unavailable { .. }
                | StoreError::Stale { .. }
                | StoreError::Superseded { .. }
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

/// What a write checks besides the owner: the version its writer read and
/// the spec generation it was planned from. A delete checks neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expect {
    pub seen: Seen,
    pub planned: SpecGeneration,
}

/// The rule every write follows, in both stores: `owner` may write over
/// `current` (the stored item, `None` when there is none) when it owns the
/// item or nobody does, when the item exists if `must_exist`, when the item
/// was not written from a newer spec than `expect.planned`, and when it is
/// still what the writer saw (`expect.seen`). A delete (`expect` `None`)
/// checks only the owner. Refusals are checked in that order: an older
/// spec is refused as such even when the version also moved, since reading
/// again alone does not make its plan right.
pub(crate) fn check_write(
    key: &TenantKey,
    owner: &Id,
    expect: Option<Expect>,
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
    let Some(Expect { seen, planned }) = expect else {
        return Ok(());
    };
    if let Some(stored) = current
        .and_then(item::spec_generation_of)
        .filter(|stored| *stored > planned)
    {
        return Err(StoreError::Superseded {
            key: key.to_string(),
            planned,
            stored,
        });
    }
    let found = current.map_or(Seen::Nothing, |c| Seen::Version(item::version_of(c)));
    if seen != found {
        return Err(StoreError::Stale {
            key: key.to_string(),
            seen,
            found,
        });
    }
    Ok(())
}

/// Where tenant configuration lives. Writes are conditional on the owner,
/// on the spec generation they were planned from and on the version the
/// writer read.
pub trait TenantStore: Send + Sync {
    fn get<'a>(
        &'a self,
        key: &'a TenantKey,
        read: Read,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, StoreError>>;

    /// Creates or replaces the item with `settings`, if `owner` owns it or
    /// nobody does, it was not written from a spec newer than `planned`
    /// ([`StoreError::Superseded`]) and it is still as `seen`; keeps
    /// `createdAt`, sets `updatedAt`, raises `version`, stores `planned`.
    fn put<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        settings: &'a TenantSettings,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>>;

    /// Switches `enabled` only; every other attribute (the agent id above
    /// all) stays. [`StoreError::NotFound`] when there is no item,
    /// [`StoreError::Stale`] when it is no longer as `seen`,
    /// [`StoreError::Superseded`] as for [`TenantStore::put`].
    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
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
    fn a_write_is_refused_for_the_owner_first_then_a_missing_item_then_an_older_spec_then_the_version()
     {
        let key = TenantKey::parse("B1", "L1").unwrap();
        let me = Id::parse("owner", "uid-a").unwrap();
        let item = |owner: &str, version: u64| {
            serde_json::json!({"ownerUid": owner, "version": version, "specGeneration": 4})
                .as_object()
                .unwrap()
                .clone()
        };
        let (mine, theirs) = (item("uid-a", 3), item("uid-b", 3));
        let at = |voice_agent| SpecGeneration::of(Some(voice_agent));
        let expect = |seen, voice_agent| {
            Some(Expect {
                seen,
                planned: at(voice_agent),
            })
        };
        let check =
            |expect, must_exist, current| check_write(&key, &me, expect, must_exist, current);

        assert!(check(expect(Seen::Version(3), 4), true, Some(&mine)).is_ok());
        assert!(check(expect(Seen::Version(3), 5), true, Some(&mine)).is_ok());
        assert!(check(expect(Seen::Nothing, 1), false, None).is_ok());
        assert!(
            check(None, false, Some(&mine)).is_ok(),
            "a delete reads nothing"
        );
        assert!(matches!(
            check(expect(Seen::Version(2), 1), true, Some(&theirs)),
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(
            check(expect(Seen::Version(2), 1), true, None),
            Err(StoreError::NotFound { .. })
        ));
        // Older spec and older read: the older spec is what is named.
        for seen in [Seen::Version(2), Seen::Version(3)] {
            match check(expect(seen, 3), false, Some(&mine)) {
                Err(e @ StoreError::Superseded { .. }) => {
                    assert!(e.is_retryable());
                    assert_eq!(
                        e.to_string(),
                        "tenant B1/L1 was written from a newer spec (generation 4) than this write was planned from (generation 3); the write was refused"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        match check(expect(Seen::Version(2), 4), false, Some(&mine)) {
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
            check(expect(Seen::Nothing, 4), false, Some(&mine)),
            Err(StoreError::Stale {
                seen: Seen::Nothing,
                found: Seen::Version(3),
                ..
            })
        ));
        // Same VoiceAgent generation: the template's is compared, unless
        // the template was made again since.
        let mut templated = mine.clone();
        templated.insert("templateCreated".into(), 1_000.into());
        templated.insert("templateGeneration".into(), 7.into());
        let planned = |created, template| {
            Some(Expect {
                seen: Seen::Version(3),
                planned: at(4).with_template(Some(created), Some(template)),
            })
        };
        assert!(check(planned(1_000, 7), false, Some(&templated)).is_ok());
        assert!(matches!(
            check(planned(1_000, 6), false, Some(&templated)),
            Err(StoreError::Superseded { .. })
        ));
        assert!(check(planned(1_001, 1), false, Some(&templated)).is_ok());
        assert!(matches!(
            check(planned(999, 8), false, Some(&templated)),
            Err(StoreError::Superseded { .. })
        ));
        // An item from before the operator has no version and no
        // generation: it reads as version 0 and accepts any spec.
        let legacy = serde_json::Map::new();
        assert!(check(expect(Seen::Version(0), 0), false, Some(&legacy)).is_ok());
    }
}
