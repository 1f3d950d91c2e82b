//! All SQL lives under this module. SQLite in WAL mode; migrations embedded and run at start.
//!
//! Writes go through one connection (a pool of one), each in a `BEGIN IMMEDIATE` transaction
//! begun by [`Store::begin_write`]: SQLite has a single writer anyway, and an in-process queue is
//! fairer and faster than `SQLITE_BUSY` retries. Reads use their own pool ([`Store::reader`]) and
//! never block on the writer (WAL). The pools stay private so that there is one way to write.

pub(crate) mod body;
pub(crate) mod checkpoint;
pub(crate) mod deliveries;
pub(crate) mod digests;
pub(crate) mod escalations;
pub(crate) mod gauges;
pub(crate) mod health;
pub(crate) mod inbound;
pub(crate) mod incidents;
pub(crate) mod listings;
pub(crate) mod retention;
pub(crate) mod settings;
pub(crate) mod silences;
pub(crate) mod stats;
pub(crate) mod storms;
#[cfg(test)]
pub(crate) mod test_plan;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::ops::{Deref, DerefMut};

use sqlx::sqlite::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("bad stored data: {0}")]
    Corrupt(String),
    #[error("{0}")]
    CorruptRow(#[from] CorruptRow),
    #[error("the incident writer has stopped")]
    WriterGone,
    #[error("the database cannot be written ({}: {})", .0.source, .0.reason)]
    NotWritable(health::WriteFailure),
    #[error(
        "only SQLite is supported: the database URL must start with `sqlite:` (e.g. sqlite://paiid-alerts.db)"
    )]
    UnsupportedUrl,
    #[error(
        "the database has {applied} of the {expected} migrations this version knows: an older paiid-alerts made it (or it is not this service's database). `paiid-alerts serve` upgrades it; this command only reads and will not"
    )]
    SchemaBehind { applied: i64, expected: i64 },
}

impl StoreError {
    /// A full disk, an I/O error or a file system gone read-only: conditions that clear without
    /// a change to this service, so waiting for them beats exiting.
    pub fn is_storage_fault(&self) -> bool {
        // SQLite's primary result codes (the low byte of an extended code).
        const SQLITE_READONLY: i64 = 8;
        const SQLITE_IOERR: i64 = 10;
        const SQLITE_FULL: i64 = 13;
        let Self::Db(sqlx::Error::Database(e)) = self else {
            return false;
        };
        let code = e.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
        matches!(code & 0xff, SQLITE_READONLY | SQLITE_IOERR | SQLITE_FULL)
    }
}

/// A stored row with a value that does not decode (an unknown state, a policy that is not a
/// policy): an error, never a default, since a default policy notifies nobody and never
/// escalates. Logged and counted by the read that finds it (see [`CorruptRows::found`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} row {id} is unreadable: `{field}`: {reason}")]
pub struct CorruptRow {
    pub table: &'static str,
    /// The row's `id` in `table`, whichever table it is: a raw integer, since the typed ids
    /// (`domain::IncidentId`, ...) each name one table.
    pub id: i64,
    pub field: &'static str,
    pub reason: String,
}

/// How many unreadable rows the store's reads have found, by table and field. `store` sits
/// below `metrics`, so the count lives here (shared by every clone of `Store`, like
/// [`health::WriteHealth`]) and the metrics collector reads it at scrape time
/// (`paiid_store_corrupt_rows_total{table,field}`).
#[derive(Clone, Debug, Default)]
pub struct CorruptRows(Arc<Mutex<BTreeMap<(&'static str, &'static str), u64>>>);

impl CorruptRows {
    /// Logs and counts `row` (once per read that finds it), and hands it back.
    pub fn found(&self, row: CorruptRow) -> CorruptRow {
        self.note(&row);
        row
    }

    /// [`CorruptRows::found`] for a row kept where it was decoded (a delivery's `kind`).
    pub fn note(&self, row: &CorruptRow) {
        tracing::error!(table = row.table, id = row.id, field = row.field, reason = %row.reason, "unreadable row");
        // A panic while counting leaves nothing half-done: a poisoned map is used as is.
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry((row.table, row.field)).or_default() += 1;
    }

    /// `((table, field), count)` for every pair found so far, in order.
    pub fn totals(&self) -> Vec<((&'static str, &'static str), u64)> {
        let counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        counts.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

pub use crate::settings::Durability;

#[derive(Clone, Debug)]
pub struct Store {
    read: Reader,
    write: SqlitePool,
    /// Held by every write but intake's for its whole transaction (see [`Store::begin_write`]).
    background_lane: Arc<tokio::sync::Mutex<()>>,
    pub health: health::WriteHealth,
    pub corrupt_rows: CorruptRows,
}

/// The read pool, with where its reads count the unreadable rows they find. Dereferences to
/// the pool for the store's read functions; the ones that decode rows take the `Reader`.
#[derive(Clone, Debug)]
pub(crate) struct Reader {
    pool: SqlitePool,
    corrupt: CorruptRows,
}

impl Reader {
    pub(crate) fn corrupt(&self) -> &CorruptRows {
        &self.corrupt
    }

    /// The database at `database_url`, for a command run beside the service (`paiid-alerts
    /// explain`) that must not change it: opened read-only, never migrated, journal mode left
    /// alone, no file created. A schema older than this version's is refused
    /// ([`StoreError::SchemaBehind`]) rather than misread.
    pub(crate) async fn open_read_only(database_url: &str) -> Result<Self, StoreError> {
        if !database_url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl);
        }
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(false)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let mut wal = options.get_filename().as_os_str().to_owned();
        wal.push("-wal");
        // A read-only connection to a WAL database creates `-wal` and `-shm` files and, unable
        // to checkpoint, leaves them behind. With no `-wal` file no service has the database
        // open, so the file alone is the whole database: read it as immutable, which creates
        // nothing. With one, the service is running: share its WAL as any reader does.
        let options = if std::path::Path::new(&wal).exists() {
            options
        } else {
            options.immutable(true)
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let expected = i64::try_from(sqlx::migrate!("./migrations").iter().count()).unwrap_or(0);
        // No migrations table: not this service's database, or one from before any migration.
        let has_table: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&pool)
        .await?;
        let applied: i64 = if has_table == 0 {
            0
        } else {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&pool)
                .await?
        };
        if applied < expected {
            pool.close().await;
            return Err(StoreError::SchemaBehind { applied, expected });
        }
        Ok(Self {
            pool,
            corrupt: CorruptRows::default(),
        })
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

impl Deref for Reader {
    type Target = SqlitePool;

    fn deref(&self) -> &SqlitePool {
        &self.pool
    }
}

/// A `BEGIN IMMEDIATE` transaction on the writer connection, the only way to write (see
/// [`Store::begin_write`]). Dereferences to the connection the store's query functions take;
/// dropped without [`WriteTx::commit`], it rolls back.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    corrupt: CorruptRows,
    /// The background lane, released when the transaction ends (committed or dropped).
    _lane: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Where reads inside this transaction count the unreadable rows they find.
    pub(crate) fn corrupt(&self) -> &CorruptRows {
        &self.corrupt
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// Closes a connection that sqlx still counts as inside a transaction once it is handed back.
///
/// When SQLite rolls a transaction back by itself (`SQLITE_FULL`, `SQLITE_IOERR` on a statement
/// or on `COMMIT`), the `ROLLBACK` sqlx then sends fails with "no transaction is active" and
/// sqlx's own depth counter stays above zero for good: every later `BEGIN IMMEDIATE` on that
/// connection fails with "attempted to call begin_with at non-zero transaction depth", also
/// after the disk has room again. The pool replaces a closed connection with a fresh one.
fn close_if_stuck_in_transaction(
    conn: &mut sqlx::SqliteConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    use sqlx::Connection;
    Box::pin(async move {
        if conn.is_in_transaction() {
            // A dropped transaction queues its rollback on the connection's worker: let it run.
            conn.ping().await?;
        }
        let stuck = conn.is_in_transaction();
        if stuck {
            // Expected on every failed write while the disk is full: the outage itself is
            // logged once by the health tracker.
            tracing::debug!("replacing a database connection left inside a failed transaction");
        }
        Ok(!stuck)
    })
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
        let health = health::WriteHealth::default();
        let writer_health = health.clone();
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // While writes fail, each attempt gets a fresh connection: one opened on a file
            // system that has since gone read-only, or been mounted again after a repair, keeps
            // failing even once the file can be written.
            .before_acquire(move |_, _| {
                let reuse = !writer_health.is_failing();
                Box::pin(async move { Ok(reuse) })
            })
            .after_release(close_if_stuck_in_transaction)
            // Checkpoints run beside the writer, not inside its commits (`checkpoint`).
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        sqlx::migrate!("./migrations").run(&write).await?;
        let reader_health = health.clone();
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .before_acquire(move |_, meta| {
                let fresh = !reader_health.predates_recovery(meta.age);
                Box::pin(async move { Ok(fresh) })
            })
            .connect_with(options.read_only(false))
            .await?;
        let corrupt_rows = CorruptRows::default();
        Ok(Self {
            read: Reader {
                pool: read,
                corrupt: corrupt_rows.clone(),
            },
            write,
            background_lane: Arc::default(),
            health,
            corrupt_rows,
        })
    }

    /// Begins a write. `IMMEDIATE` takes the write lock at once, so a read-modify-write inside
    /// the transaction sees no other writer's change (there is none: one writer connection).
    ///
    /// Every writer but intake (the scheduler, each channel's outbox loop, actions, digests)
    /// first takes the background lane, so at most one of them waits for the connection at a
    /// time, and an intake batch waits for at most the transaction in progress and one other:
    /// without it, a webhook's commit queued behind every claim and record of every channel.
    /// With 100,000 escalations firing in a minute, that queue held intake to a third of its
    /// rate. Background writes still get every other turn, so none of them starves.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let lane = self.background_lane.clone().lock_owned().await;
        self.begin(Some(lane)).await
    }

    /// [`Store::begin_write`] for intake's batches, which skip the background lane: a webhook
    /// is answered only after its commit, and Sentry gives up on slow answers.
    pub async fn begin_intake_write(&self) -> Result<WriteTx, StoreError> {
        self.begin(None).await
    }

    async fn begin(
        &self,
        lane: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Result<WriteTx, StoreError> {
        Ok(WriteTx {
            tx: self.write.begin_with("BEGIN IMMEDIATE").await?,
            corrupt: self.corrupt_rows.clone(),
            _lane: lane,
        })
    }

    /// The read pool, for the store's read functions. Crate-private: writes go through
    /// [`Store::begin_write`]; integration tests read through `crate::testing`.
    pub(crate) fn reader(&self) -> &Reader {
        &self.read
    }

    /// One small committed write, for readiness: proves the file and its directory can be
    /// written (a full disk, a read-only remount) without waiting for a webhook to find out.
    pub async fn probe_write(&self, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('write_probe', ?) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(now_ms.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Database reachable, migrations applied, and the last write succeeded.
    pub async fn ready(&self) -> Result<(), StoreError> {
        if let Some(f) = self.health.failing() {
            return Err(StoreError::NotWritable(f));
        }
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&*self.read)
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
        self.read.pool.close().await;
        self.write.close().await;
    }
}
