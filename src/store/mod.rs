//! All SQL lives under this module. SQLite in WAL mode; migrations embedded and run at start.
//!
//! Writes go through one connection (`write`, a pool of one): SQLite has a single writer anyway,
//! and an in-process queue is fairer and faster than `SQLITE_BUSY` retries. Reads use their own
//! pool and never block on the writer (WAL).

pub mod deliveries;
pub mod digests;
pub mod escalations;
pub mod incidents;
pub mod misc;

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("bad stored data: {0}")]
    Corrupt(String),
    #[error("the incident writer has stopped")]
    WriterGone,
    #[error(
        "only SQLite is supported: the database URL must start with `sqlite:` (e.g. sqlite://paiid-alerts.db)"
    )]
    UnsupportedUrl,
}

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL + synchronous=NORMAL: survives a process crash (SIGKILL), may lose the last commits
    /// on power loss. The default.
    #[default]
    Normal,
    /// WAL + synchronous=FULL: also survives power loss, slower commits.
    Full,
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            other => Err(format!(
                "unknown durability `{other}` (expected normal or full)"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pub read: SqlitePool,
    pub write: SqlitePool,
}

impl Store {
    pub async fn open(database_url: &str, durability: Durability) -> Result<Self, StoreError> {
        // sqlx would read any other URL as a file name and fail with "unable to open".
        if !database_url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl);
        }
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Normal => SqliteSynchronous::Normal,
                Durability::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .statement_cache_capacity(256);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.read_only(false))
            .await?;
        Ok(Self { read, write })
    }

    /// Database reachable and migrations applied.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.read)
                .await?;
        let expected = sqlx::migrate!("./migrations").iter().count() as i64;
        if applied < expected {
            return Err(StoreError::Corrupt(format!(
                "{applied} of {expected} migrations applied"
            )));
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}
