//! The shared test support (`tests/support`), and what only the server's
//! suites need: the real `chronos` binary as a child process.
#![allow(dead_code, unused_imports)]

pub mod process;
pub mod socket;

use chronos_server::config::StoreConfig;
use chronos_server::store::Clock;
use chronos_server::store::postgres::PgStore;
use chronos_server::store::sqlite::{OpenMode, SqliteStore};
pub use chronos_test_support::*;
use sha2::{Digest, Sha256};

/// The last migration before retention, per store.
pub fn before_retention(kind: StoreKind) -> i64 {
    match kind {
        StoreKind::Postgres => 5,
        StoreKind::Sqlite => 4,
    }
}

/// Migrates `backing` as an older Chronos left it: up to the version
/// before retention, with no organization yet.
pub async fn migrate_before_retention(backing: &Backing, kind: StoreKind) {
    migrate_up_to(backing, before_retention(kind)).await;
}

/// Migrates `backing` up to version `last`, as the Chronos that stopped
/// there left it (with no organization yet).
pub async fn migrate_up_to(backing: &Backing, last: i64) {
    let applied = match backing.config() {
        StoreConfig::Postgres { url } => {
            let store = PgStore::connect(&url, 2, Clock::Database).unwrap();
            store.migrate_to(last).await.unwrap()
        }
        StoreConfig::Sqlite { path } => {
            let store = SqliteStore::open(&path, OpenMode::Command, Clock::Database).unwrap();
            store.migrate_to(last).await.unwrap()
        }
    };
    assert_eq!(applied, (1..=last).collect::<Vec<_>>());
}

/// Opens the store an older Chronos left on `backing` (`migrate_up_to`)
/// and upgrades it, checking that the upgrade starts at version `first`.
pub async fn upgrade(backing: &Backing, first: i64) -> chronos_server::store::DynStore {
    let store = backing
        .config()
        .open(OpenMode::Command, Clock::Database)
        .unwrap()
        .store;
    assert_eq!(
        store.migrate().await.unwrap().first(),
        Some(&first),
        "the upgrade starts at version {first}"
    );
    store
}

/// HMAC-SHA256 (RFC 2104) from SHA-256 alone, independent of the server's.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}
