//! Which store to use, from `--database-url` / `--data-dir`.

use crate::store::postgres::PgStore;
use crate::store::sqlite::{OpenMode, SqliteStore};
use crate::store::{Clock, Opened, StoreError};
use std::path::{Path, PathBuf};

/// The embedded store's file inside the data directory.
pub const SQLITE_FILE: &str = "chronos.db";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    Postgres { url: String },
    Sqlite { path: PathBuf },
}

impl StoreConfig {
    /// `postgres://…` selects PostgreSQL, `sqlite:PATH` a SQLite file; with no
    /// URL, the embedded store in `data_dir`.
    pub fn new(database_url: Option<&str>, data_dir: &Path) -> Result<Self, String> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(StoreConfig::Sqlite {
                path: data_dir.join(SQLITE_FILE),
            }),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StoreConfig::Postgres {
                    url: url.to_string(),
                })
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
                Ok(StoreConfig::Sqlite {
                    path: PathBuf::from(path),
                })
            }
            Some(url) => Err(format!(
                "unsupported database URL `{url}`: use postgres://user@host:port/database, or sqlite:PATH, or leave it out for the embedded store in --data-dir"
            )),
        }
    }

    /// A description for logs, without credentials.
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Postgres { url } => match url::Url::parse(url) {
                Ok(u) => format!(
                    "PostgreSQL at {}:{}{}",
                    u.host_str().unwrap_or("localhost"),
                    u.port().unwrap_or(5432),
                    u.path()
                ),
                Err(_) => "PostgreSQL".to_string(),
            },
            StoreConfig::Sqlite { path } => format!("embedded store {}", path.display()),
        }
    }

    /// Opens the store, reading `clock` ([`Clock::Database`] outside tests).
    pub fn open(&self, mode: OpenMode, clock: Clock) -> Result<Opened, StoreError> {
        Ok(match self {
            StoreConfig::Postgres { url } => Opened::of(PgStore::connect(url, 16, clock)?),
            StoreConfig::Sqlite { path } => Opened::of(SqliteStore::open(path, mode, clock)?),
        })
    }
}
