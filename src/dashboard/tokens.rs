//! Read-only dashboard tokens, one business each. Only the SHA-256 of a
//! token is stored; the token itself is printed once when it is created.
//! A presented token is hashed and compared with every stored hash in
//! constant time, so neither the answer's content nor its timing tells how
//! close a guess came.
//!
//! A token is 32 bytes from the operating system's random source: uuid's
//! `new_v4` draws its bytes from `getrandom`
//! (<https://docs.rs/uuid/latest/uuid/struct.Uuid.html#method.new_v4>),
//! two of them give 244 random bits.

use rusqlite::{Connection, params};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::ids::{Id, IdError};

/// How dashboard tokens begin, so a leaked one is recognisable.
pub const PREFIX: &str = "vodash_";

/// What a bearer token may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The admin token: every business.
    Admin,
    /// A business token: that business only.
    Business(String),
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("--business {0}")]
    Business(IdError),
    #[error("cannot store the token: {0}")]
    Store(#[from] rusqlite::Error),
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// Equal bytes, in time that depends only on the length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Creates a token for `business` and stores its hash; the token is
/// returned once and kept nowhere.
pub fn create(db: &Connection, business: &str) -> Result<SecretString, TokenError> {
    let business = Id::parse("businessId", business).map_err(TokenError::Business)?;
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let token = format!("{PREFIX}{}", hex::encode(bytes));
    db.execute(
        "INSERT INTO tokens (hash, business_id, created) VALUES (?1, ?2, ?3)",
        params![
            hash(&token).as_slice(),
            business.as_str(),
            chrono::Utc::now().timestamp()
        ],
    )?;
    Ok(SecretString::from(token))
}

/// What `given` may read: the admin token sees everything, a stored
/// token its business; `None` for anything else.
pub fn access(
    db: &Connection,
    admin: Option<&SecretString>,
    given: &str,
) -> rusqlite::Result<Option<Access>> {
    let given = given.trim();
    if admin.is_some_and(|a| constant_time_eq(given.as_bytes(), a.expose_secret().as_bytes())) {
        return Ok(Some(Access::Admin));
    }
    let presented = hash(given);
    let mut query = db.prepare_cached("SELECT hash, business_id FROM tokens")?;
    let mut rows = query.query([])?;
    let mut found = None;
    while let Some(row) = rows.next()? {
        let stored: Vec<u8> = row.get(0)?;
        if constant_time_eq(&stored, &presented) && found.is_none() {
            found = Some(Access::Business(row.get(1)?));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        crate::dashboard::store::open(std::path::Path::new(":memory:")).unwrap()
    }

    #[test]
    fn a_token_reads_its_business_and_only_its_hash_is_stored() {
        let db = store();
        let token = create(&db, "B1").unwrap();
        let token = token.expose_secret();
        assert!(token.starts_with(PREFIX) && token.len() == PREFIX.len() + 64);
        assert_eq!(
            access(&db, None, token).unwrap(),
            Some(Access::Business("B1".into()))
        );
        let stored: Vec<u8> = db
            .query_row("SELECT hash FROM tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, hash(token).to_vec());
        assert!(!String::from_utf8_lossy(&stored).contains(&token[PREFIX.len()..]));
        let mut guess = token.to_owned();
        guess.pop();
        guess.push('x');
        assert_eq!(access(&db, None, &guess).unwrap(), None);
        let admin = SecretString::from("admin-secret");
        assert_eq!(
            access(&db, Some(&admin), "admin-secret").unwrap(),
            Some(Access::Admin)
        );
    }

    #[test]
    fn a_token_for_a_malformed_business_is_refused() {
        let err = create(&store(), "B 1").unwrap_err().to_string();
        assert!(err.starts_with("--business businessId"), "{err}");
    }
}
