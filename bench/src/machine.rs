//! What the figures were measured on: they mean little without it.

use crate::server::{Store, connect};

pub fn describe() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or("unknown memory".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1_048_576.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let build = if cfg!(debug_assertions) {
        "debug build (use --release for real figures)"
    } else {
        "release build"
    };
    format!("{cpu}, {cores} cores, {memory}, Linux {kernel}, {build}")
}

/// The store's version and durability settings.
pub async fn store(store: &Store) -> String {
    match store {
        Store::Sqlite(_) => format!(
            "SQLite {} (embedded; WAL, synchronous=FULL)",
            rusqlite_version()
        ),
        Store::Postgres { admin_url, .. } => match connect(admin_url).await {
            Ok(client) => {
                let get = async |q: &str| -> String {
                    client
                        .query_one(q, &[])
                        .await
                        .map(|r| r.get::<_, String>(0))
                        .unwrap_or_else(|e| format!("? ({e})"))
                };
                let version = get("SHOW server_version").await;
                let sync = get("SHOW synchronous_commit").await;
                let fsync = get("SHOW fsync").await;
                let buffers = get("SHOW shared_buffers").await;
                format!(
                    "PostgreSQL {version} (synchronous_commit={sync}, fsync={fsync}, shared_buffers={buffers})"
                )
            }
            Err(e) => format!("PostgreSQL (unreachable: {e})"),
        },
    }
}

fn rusqlite_version() -> &'static str {
    chronos_server::store::sqlite::engine_version()
}
