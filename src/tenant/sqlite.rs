//! The embedded store: one SQLite file, each item kept as its seed-format
//! JSON. Writes run in an immediate transaction, so the owner, generation
//! and version checks and the write cannot interleave with another writer, in this
//! process or another.

use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value};

use super::item::{self, OWNER, UPDATED_AT, VERSION};
use super::{
    Expect, OpenError, Read, Seen, SpecGeneration, StoreError, TenantConfig, TenantKey,
    TenantSettings, TenantStore, check_write,
};
use crate::ids::Id;

const BACKEND: &str = "the SQLite tenant store";

/// Tenant items in a SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (and creates, with its directory) the database at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore, OpenError> {
        let path = path.to_owned();
        let fail = {
            let path = path.clone();
            move |message: String| OpenError::Sqlite {
                path: path.clone(),
                message,
            }
        };
        let opened = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> Result<Connection, String> {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                let db = Connection::open(&path).map_err(|e| e.to_string())?;
                db.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(|e| e.to_string())?;
                db.pragma_update(None, "journal_mode", "WAL")
                    .map_err(|e| e.to_string())?;
                db.execute_batch(
                    "CREATE TABLE IF NOT EXISTS tenants (
                        business_id TEXT NOT NULL,
                        location_id TEXT NOT NULL,
                        item TEXT NOT NULL,
                        PRIMARY KEY (business_id, location_id)
                    ) WITHOUT ROWID;",
                )
                .map_err(|e| e.to_string())?;
                Ok(db)
            }
        })
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(fail)?;
        Ok(SqliteStore {
            db: Arc::new(Mutex::new(opened)),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection off the async threads.
    async fn with_db<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut db)
        })
        .await
        .map_err(|e| StoreError::Failed {
            backend: BACKEND,
            message: e.to_string(),
        })?
    }

    /// Reads, checks the write as [`check_write`] says, and writes what
    /// `change` makes of the item (`None` deletes it), all in one
    /// transaction. Returns whether an item was there before, and the item
    /// written.
    async fn write<F>(
        &self,
        key: &TenantKey,
        owner: &Id,
        expect: Option<Expect>,
        must_exist: bool,
        change: F,
    ) -> Result<(bool, Option<TenantConfig>), StoreError>
    where
        F: FnOnce(Option<Map<String, Value>>) -> Result<Option<Map<String, Value>>, StoreError>
            + Send
            + 'static,
    {
        let key = key.clone();
        let owner = owner.clone();
        self.with_db(move |db| {
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error)?;
            let current = read_item(&tx, &key)?;
            let existed = current.is_some();
            check_write(&key, &owner, expect, must_exist, current.as_ref())?;
            let Some(next) = change(current)? else {
                tx.execute(
                    "DELETE FROM tenants WHERE business_id = ?1 AND location_id = ?2",
                    params![key.business_id.as_str(), key.location_id.as_str()],
                )
                .map_err(sql_error)?;
                tx.commit().map_err(sql_error)?;
                return Ok((existed, None));
            };
            let config = item::from_json(&next).map_err(|error| StoreError::BadItem {
                key: key.to_string(),
                error,
            })?;
            tx.execute(
                "INSERT INTO tenants (business_id, location_id, item) VALUES (?1, ?2, ?3)
                 ON CONFLICT (business_id, location_id) DO UPDATE SET item = excluded.item",
                params![
                    key.business_id.as_str(),
                    key.location_id.as_str(),
                    Value::Object(next).to_string()
                ],
            )
            .map_err(sql_error)?;
            tx.commit().map_err(sql_error)?;
            Ok((existed, Some(config)))
        })
        .await
    }
}

fn read_item(db: &Connection, key: &TenantKey) -> Result<Option<Map<String, Value>>, StoreError> {
    let text: Option<String> = db
        .query_row(
            "SELECT item FROM tenants WHERE business_id = ?1 AND location_id = ?2",
            params![key.business_id.as_str(), key.location_id.as_str()],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql_error)?;
    text.map(|text| match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(StoreError::BadItem {
            key: key.to_string(),
            error: item::ItemError {
                field: "item".into(),
                reason: "is not a JSON object".into(),
            },
        }),
    })
    .transpose()
}

fn sql_error(e: rusqlite::Error) -> StoreError {
    let busy = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    if busy {
        StoreError::Unavailable {
            backend: BACKEND,
            message: e.to_string(),
        }
    } else {
        StoreError::Failed {
            backend: BACKEND,
            message: e.to_string(),
        }
    }
}

/// `next` as a write leaves it: with the keys, the owner, a version one
/// above `current`'s, the generation it was `planned` from, `current`'s
/// createdAt (or now) and updatedAt now.
fn stamped(
    key: &TenantKey,
    owner: &Id,
    planned: SpecGeneration,
    current: Option<&Map<String, Value>>,
    mut next: Map<String, Value>,
) -> Map<String, Value> {
    let now = item::now();
    next.insert(item::BUSINESS_ID.into(), key.business_id.as_str().into());
    next.insert(item::LOCATION_ID.into(), key.location_id.as_str().into());
    next.insert(OWNER.into(), owner.as_str().into());
    next.insert(
        VERSION.into(),
        (current.map_or(0, item::version_of) + 1).into(),
    );
    next.extend(item::generation_attributes(planned));
    let created = current.and_then(item::created_at_of).unwrap_or(now);
    next.insert(item::CREATED_AT.into(), item::timestamp(created).into());
    next.insert(UPDATED_AT.into(), item::timestamp(now).into());
    next
}

impl TenantStore for SqliteStore {
    fn get<'a>(
        &'a self,
        key: &'a TenantKey,
        _read: Read,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, StoreError>> {
        // One file, one writer at a time: every read is strongly consistent.
        let key = key.clone();
        Box::pin(self.with_db(move |db| {
            read_item(db, &key)?
                .map(|item| {
                    item::from_json(&item).map_err(|error| StoreError::BadItem {
                        key: key.to_string(),
                        error,
                    })
                })
                .transpose()
        }))
    }

    fn put<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        settings: &'a TenantSettings,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        let attributes = item::settings_attributes(settings);
        let (k, o) = (key.clone(), owner.clone());
        let expect = Some(Expect { seen, planned });
        Box::pin(async move {
            let written = self
                .write(key, owner, expect, false, move |current| {
                    // A put replaces the whole item: cleared attributes go.
                    let next = stamped(&k, &o, planned, current.as_ref(), attributes);
                    Ok(Some(next))
                })
                .await?;
            Ok(written.1.expect("a put writes an item"))
        })
    }

    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        enabled: bool,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        let (k, o) = (key.clone(), owner.clone());
        let expect = Some(Expect { seen, planned });
        Box::pin(async move {
            let written = self
                .write(key, owner, expect, true, move |current| {
                    let Some(current) = current else {
                        return Err(StoreError::NotFound { key: k.to_string() });
                    };
                    let mut next = current.clone();
                    next.insert(item::ENABLED.into(), enabled.into());
                    Ok(Some(stamped(&k, &o, planned, Some(&current), next)))
                })
                .await?;
            Ok(written.1.expect("set_enabled writes an item"))
        })
    }

    fn delete<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let (existed, _) = self.write(key, owner, None, false, |_| Ok(None)).await?;
            Ok(existed)
        })
    }
}
