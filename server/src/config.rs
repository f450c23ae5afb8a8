//! Which store to use, from `--database-url` / `--data-dir`; and durations
//! as operators write them on the command line.

use crate::store::postgres::PgStore;
use crate::store::sqlite::{OpenMode, SqliteStore};
use crate::store::{Clock, Opened, StoreError};
use std::path::{Path, PathBuf};

/// Why a duration as operators write it was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadDuration {
    /// Not a whole number and a unit.
    Malformed,
    Negative,
    /// More seconds than fit in an `i64`.
    TooLong,
}

/// A duration as operators write it: a whole number and a unit, `90s`,
/// `15m`, `12h` or `7d`. What it may be at least, and what word stands for
/// "never", is the caller's.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, BadDuration> {
    let unit = match s.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        _ => return Err(BadDuration::Malformed),
    };
    let number = &s[..s.len() - 1];
    if number.starts_with('-') {
        return Err(BadDuration::Negative);
    }
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadDuration::Malformed);
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&secs| i64::try_from(secs).is_ok())
        .map(std::time::Duration::from_secs)
        .ok_or(BadDuration::TooLong)
}

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
