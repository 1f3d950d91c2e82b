//! All SQL lives under this module, for both backends: SQLite (the embedded default, in WAL
//! mode) and PostgreSQL (`DATABASE_URL=postgres://...`). Each has its own migrations folder
//! (`migrations/sqlite`, `migrations/postgres`), embedded and run at start; the queries are one
//! text for both (`$1` placeholders, which sqlx's SQLite driver reads too), run through [`on!`],
//! with the few dialect differences picked by [`Dialect`] here and nowhere above.
//!
//! Writes go through one connection (a pool of one), each in a transaction begun by
//! [`Store::begin_write`]: SQLite has a single writer anyway, and an in-process queue is fairer
//! and faster than `SQLITE_BUSY` retries; on PostgreSQL the same queue keeps group commit (one
//! batch, one commit). Reads use their own pool ([`Store::reader`]) and never wait for the
//! writer. The pools stay private so that there is one way to write.

pub(crate) mod body;
pub(crate) mod budgets;
pub(crate) mod checkpoint;
pub(crate) mod deliveries;
pub(crate) mod digests;
pub(crate) mod escalations;
pub(crate) mod gauges;
pub(crate) mod health;
pub(crate) mod inbound;
pub(crate) mod incidents;
pub(crate) mod listings;
pub(crate) mod migrate;
pub(crate) mod replicas;
pub(crate) mod retention;
pub(crate) mod settings;
pub(crate) mod silences;
pub(crate) mod stats;
pub(crate) mod storms;
#[cfg(test)]
pub(crate) mod test_plan;
#[cfg(test)]
pub(crate) mod testdb;
#[cfg(test)]
mod tests;
pub(crate) mod watch;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

/// Runs one statement on whichever backend `$src` (a `&mut WriteTx` or a `&Reader`) is on:
/// `$body` is written once and compiled once per backend, with `$c` that backend's executor
/// (a connection inside the transaction, or the read pool) and `$db` its sqlx database type
/// (for `QueryBuilder::<$db>` and [`Dialect`]). Both arms must yield the same type, so a body
/// that executes returns `rows_affected()`, not the backend's own result type.
macro_rules! on {
    ($src:expr, |$c:ident, $db:ident| $body:expr) => {
        match $crate::store::Backend::backend($src) {
            $crate::store::Exec::Sqlite($c) => {
                #[allow(unused)]
                type $db = ::sqlx::Sqlite;
                #[allow(unused_imports)]
                use $crate::store::Dialect as _;
                $body
            }
            $crate::store::Exec::Postgres($c) => {
                #[allow(unused)]
                type $db = ::sqlx::Postgres;
                #[allow(unused_imports)]
                use $crate::store::Dialect as _;
                $body
            }
        }
    };
}
pub(crate) use on;

/// One statement text per backend, written once around the one part that differs:
/// `dialect_sql!(Db: "shared start " [sqlite: "min(a, b)", postgres: "LEAST(a, b)"] " shared end")`.
macro_rules! dialect_sql {
    ($db:ident: $($before:literal)* [sqlite: $s:literal, postgres: $p:literal] $($after:literal)*) => {
        <$db as $crate::store::Dialect>::pick(
            concat!($($before,)* $s, $($after,)*),
            concat!($($before,)* $p, $($after,)*),
        )
    };
}
pub(crate) use dialect_sql;

/// Where a statement runs, per backend (see [`on!`]).
pub(crate) enum Exec<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// A `&mut WriteTx` or a `&Reader`, for [`on!`]; a function that reads either way takes
/// `impl Backend<'_>`.
pub(crate) trait Backend<'a> {
    type Sqlite: sqlx::Executor<'a, Database = Sqlite>;
    type Postgres: sqlx::Executor<'a, Database = Postgres>;
    fn backend(self) -> Exec<Self::Sqlite, Self::Postgres>;
}

/// A connection of either backend: a write transaction ([`WriteTx`]) or a read connection
/// ([`ReadConn`]). A read that runs inside a write as well as on its own takes `&mut impl
/// AsConn`.
pub(crate) trait AsConn: Send {
    fn conn(&mut self) -> Exec<&mut SqliteConnection, &mut PgConnection>;
}

impl<'a, T: AsConn + ?Sized> Backend<'a> for &'a mut T {
    type Sqlite = &'a mut SqliteConnection;
    type Postgres = &'a mut PgConnection;
    fn backend(self) -> Exec<Self::Sqlite, Self::Postgres> {
        self.conn()
    }
}

impl AsConn for WriteTx {
    fn conn(&mut self) -> Exec<&mut SqliteConnection, &mut PgConnection> {
        match &mut self.tx {
            Tx::Sqlite(t) => Exec::Sqlite(&mut **t),
            Tx::Postgres(t) => Exec::Postgres(&mut **t),
        }
    }
}

/// The SQLite connection under a write, for unit tests that set rows up with their own SQL
/// (SQLite-only tests; the ones that run on both backends go through the store's functions).
#[cfg(test)]
impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match &self.tx {
            Tx::Sqlite(t) => t,
            Tx::Postgres(_) => panic!("a SQLite-only test ran on PostgreSQL"),
        }
    }
}

#[cfg(test)]
impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match &mut self.tx {
            Tx::Sqlite(t) => t,
            Tx::Postgres(_) => panic!("a SQLite-only test ran on PostgreSQL"),
        }
    }
}

/// The SQLite read pool, for SQLite-only unit tests (see `Deref for WriteTx`).
#[cfg(test)]
impl std::ops::Deref for Reader {
    type Target = SqlitePool;
    fn deref(&self) -> &SqlitePool {
        self.sqlite_pool()
            .expect("a SQLite-only test ran on PostgreSQL")
    }
}

/// One connection of the read pool, for several reads in a row.
pub(crate) enum ReadConn {
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    Postgres(sqlx::pool::PoolConnection<Postgres>),
}

impl AsConn for ReadConn {
    fn conn(&mut self) -> Exec<&mut SqliteConnection, &mut PgConnection> {
        match self {
            ReadConn::Sqlite(c) => Exec::Sqlite(&mut **c),
            ReadConn::Postgres(c) => Exec::Postgres(&mut **c),
        }
    }
}

impl<'a> Backend<'a> for &'a Reader {
    type Sqlite = &'a SqlitePool;
    type Postgres = &'a PgPool;
    fn backend(self) -> Exec<Self::Sqlite, Self::Postgres> {
        match &self.pool {
            Pool::Sqlite(p) => Exec::Sqlite(p),
            Pool::Postgres(p) => Exec::Postgres(p),
        }
    }
}

/// The SQL that differs between the backends, chosen by the database type [`on!`] names.
pub(crate) trait Dialect {
    const POSTGRES: bool;

    /// `sqlite` on SQLite, `postgres` on PostgreSQL.
    fn pick(sqlite: &'static str, postgres: &'static str) -> &'static str {
        if Self::POSTGRES { postgres } else { sqlite }
    }

    /// `sql` as is on SQLite, without its planner hints on PostgreSQL
    /// ([`without_sqlite_hints`]).
    fn hinted(sql: &'static str) -> &'static str {
        if Self::POSTGRES {
            without_sqlite_hints(sql)
        } else {
            sql
        }
    }
}

impl Dialect for Sqlite {
    const POSTGRES: bool = false;
}

/// `sql` without SQLite's planner hints, for PostgreSQL: `INDEXED BY <index>` and the unary
/// `+` that keeps SQLite off an index (`+d.channel`). Both only steer SQLite's planner and never
/// change a result, so one text serves both backends. Rewritten once per text and kept.
pub(crate) fn without_sqlite_hints(sql: &'static str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static DONE: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    static HINTS: OnceLock<regex::Regex> = OnceLock::new();
    let done = DONE.get_or_init(Mutex::default);
    let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
    done.entry(sql).or_insert_with(|| {
        let hints = HINTS.get_or_init(|| {
            regex::Regex::new(r"INDEXED BY \w+ |(?P<pre>[ (])\+(?P<col>[a-z]+\.)")
                .expect("a valid pattern")
        });
        // Leaked on purpose: one copy per distinct statement text, for the process's life.
        Box::leak(
            hints
                .replace_all(sql, "$pre$col")
                .into_owned()
                .into_boxed_str(),
        )
    })
}

impl Dialect for Postgres {
    const POSTGRES: bool = true;
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// The key of the transaction-level advisory lock every write on PostgreSQL takes first: one
/// write at a time across every replica of the database, as SQLite has one writer. Every
/// invariant of a write (a read-modify-write of an incident sees no other writer's change;
/// intake numbers its rows from the largest id; a storm forms once) then holds across replicas
/// unchanged, and claims (outbox leases, escalation steps, digest periods) cannot overlap. Reads,
/// sends and the answering of requests run on every replica at once; a batch still commits many
/// webhooks at once (group commit), so intake pays the lock once per batch, not per webhook. The
/// server releases the lock at commit or rollback, and when a replica's connection dies.
const WRITE_LOCK_KEY: i64 = 0x0070_6169_6977;

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    pub fn of_url(database_url: &str) -> Result<Self, StoreError> {
        if database_url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            Ok(Self::Postgres)
        } else {
            // sqlx would read any other URL as a file name and fail with "unable to open".
            Err(StoreError::UnsupportedUrl)
        }
    }
}

fn migrations(kind: BackendKind) -> sqlx::migrate::Migrator {
    match kind {
        BackendKind::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        BackendKind::Postgres => sqlx::migrate!("./migrations/postgres"),
    }
}

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
        "the database URL must start with `sqlite:` (e.g. sqlite://paiid-alerts.db) or `postgres://` (e.g. postgres://paiid@db.internal/paiid)"
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
        match self {
            Self::Db(sqlx::Error::Database(e)) => match e.code() {
                // PostgreSQL's SQLSTATEs are five characters; SQLite's codes are numbers.
                Some(code) if code.len() == 5 && !code.chars().all(|c| c.is_ascii_digit()) => {
                    // 53: insufficient resources (disk full, out of memory, too many
                    // connections); 58: system error (I/O); 08: connection exception; 57P:
                    // the server is shutting down or starting; 25006: read-only transaction
                    // (a standby, before or during a failover).
                    code.starts_with("53")
                        || code.starts_with("58")
                        || code.starts_with("08")
                        || code.starts_with("57P")
                        || code == "25006"
                }
                Some(code) => {
                    let code = code.parse::<i64>().unwrap_or(0);
                    matches!(code & 0xff, SQLITE_READONLY | SQLITE_IOERR | SQLITE_FULL)
                }
                None => false,
            },
            // A PostgreSQL server that cannot be reached: the socket failed, or the pool found
            // no connection that works within its wait.
            Self::Db(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)) => true,
            _ => false,
        }
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
    write: Pool,
    /// Held by every write but intake's for its whole transaction (see [`Store::begin_write`]).
    background_lane: Arc<tokio::sync::Mutex<()>>,
    pub health: health::WriteHealth,
    pub corrupt_rows: CorruptRows,
    #[cfg(test)]
    url: String,
}

/// The read pool, with where its reads count the unreadable rows they find. The store's read
/// functions take the `Reader` and run their statements on it through [`on!`].
#[derive(Clone, Debug)]
pub(crate) struct Reader {
    pool: Pool,
    corrupt: CorruptRows,
}

impl Reader {
    pub(crate) fn corrupt(&self) -> &CorruptRows {
        &self.corrupt
    }

    /// One connection of the pool, for several reads in a row.
    pub(crate) async fn acquire(&self) -> Result<ReadConn, sqlx::Error> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => ReadConn::Sqlite(p.acquire().await?),
            Pool::Postgres(p) => ReadConn::Postgres(p.acquire().await?),
        })
    }

    pub(crate) fn kind(&self) -> BackendKind {
        match self.pool {
            Pool::Sqlite(_) => BackendKind::Sqlite,
            Pool::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// The SQLite read pool, for the integration tests' own `SELECT`s (`testing::read_pool`).
    pub(crate) fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// The database at `database_url`, for a command run beside the service (`paiid-alerts
    /// explain`) that must not change it: opened read-only, never migrated. A schema older than
    /// this version's is refused ([`StoreError::SchemaBehind`]) rather than misread.
    pub(crate) async fn open_read_only(database_url: &str) -> Result<Self, StoreError> {
        let pool = match BackendKind::of_url(database_url)? {
            BackendKind::Sqlite => Pool::Sqlite(Self::sqlite_read_only(database_url).await?),
            BackendKind::Postgres => {
                let options = PgConnectOptions::from_str(database_url)?
                    .options([("default_transaction_read_only", "on")]);
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(1)
                        .acquire_timeout(Duration::from_secs(10))
                        .connect_with(options)
                        .await?,
                )
            }
        };
        let reader = Self {
            pool,
            corrupt: CorruptRows::default(),
        };
        let (applied, expected) = reader.migrations_applied().await?;
        if applied < expected {
            reader.close().await;
            return Err(StoreError::SchemaBehind { applied, expected });
        }
        Ok(reader)
    }

    /// Journal mode left alone, no file created (see [`Reader::open_read_only`]).
    async fn sqlite_read_only(database_url: &str) -> Result<SqlitePool, StoreError> {
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
        Ok(SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?)
    }

    /// (migrations applied, migrations this version knows).
    async fn migrations_applied(&self) -> Result<(i64, i64), StoreError> {
        let expected = i64::try_from(migrations(self.kind()).iter().count()).unwrap_or(0);
        // No migrations table: not this service's database, or one from before any migration.
        let has_table: i64 = on!(self, |c, Db| {
            sqlx::query_scalar(<Db as Dialect>::pick(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations'",
            ))
            .fetch_one(c)
            .await
        })?;
        let applied: i64 = if has_table == 0 {
            0
        } else {
            on!(self, |c, Db| {
                sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(c)
                    .await
            })?
        };
        Ok((applied, expected))
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// A write transaction on the writer connection, the only way to write (see
/// [`Store::begin_write`]). The store's query functions take it (`&mut WriteTx`) and run their
/// statements inside it through [`on!`]; dropped without [`WriteTx::commit`], it rolls back.
pub struct WriteTx {
    tx: Tx,
    corrupt: CorruptRows,
    /// The background lane, released when the transaction ends (committed or dropped).
    _lane: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.tx {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// The connection under a SQLite write (`testing::sqlite_conn`).
    pub(crate) fn sqlite_conn(&mut self) -> Option<&mut SqliteConnection> {
        match &mut self.tx {
            Tx::Sqlite(t) => Some(t),
            Tx::Postgres(_) => None,
        }
    }

    /// `SET LOCAL` for the rest of this transaction on PostgreSQL; nothing on SQLite, which has
    /// no such settings (and the claim it is for is SQLite's hot path: no extra statement).
    pub(crate) async fn set_local_on_postgres(
        &mut self,
        setting: &'static str,
    ) -> Result<(), StoreError> {
        if let Tx::Postgres(t) = &mut self.tx {
            sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL {setting}")))
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Where reads inside this transaction count the unreadable rows they find.
    pub(crate) fn corrupt(&self) -> &CorruptRows {
        &self.corrupt
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
    conn: &mut SqliteConnection,
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

/// The writer's pool, on either backend: one connection (see [`Store::begin_write`]), and while
/// writes fail a fresh one for each attempt: one opened on a file system that has since gone
/// read-only, or been mounted again after a repair, or on a server that restarted or failed
/// over, keeps failing even once the database can be written.
fn writer_pool<DB: sqlx::Database>(health: &health::WriteHealth) -> sqlx::pool::PoolOptions<DB> {
    let health = health.clone();
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .before_acquire(move |_, _| {
            let reuse = !health.is_failing();
            Box::pin(async move { Ok(reuse) })
        })
}

/// The readers' pool, on either backend: a connection opened before the last outage ended is
/// replaced rather than trusted.
fn reader_pool<DB: sqlx::Database>(health: &health::WriteHealth) -> sqlx::pool::PoolOptions<DB> {
    let health = health.clone();
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .before_acquire(move |_, meta| {
            let fresh = !health.predates_recovery(meta.age);
            Box::pin(async move { Ok(fresh) })
        })
}

impl Store {
    pub async fn open(database_url: &str, durability: Durability) -> Result<Self, StoreError> {
        let health = health::WriteHealth::default();
        let (write, read) = match BackendKind::of_url(database_url)? {
            BackendKind::Sqlite => Self::open_sqlite(database_url, durability, &health).await?,
            BackendKind::Postgres => Self::open_postgres(database_url, durability, &health).await?,
        };
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
            #[cfg(test)]
            url: database_url.to_string(),
        })
    }

    /// (writer, readers) on a SQLite file in WAL mode.
    async fn open_sqlite(
        database_url: &str,
        durability: Durability,
        health: &health::WriteHealth,
    ) -> Result<(Pool, Pool), StoreError> {
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
        let write = writer_pool::<Sqlite>(health)
            .after_release(close_if_stuck_in_transaction)
            // Checkpoints run beside the writer, not inside its commits (`checkpoint`).
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        migrations(BackendKind::Sqlite).run(&write).await?;
        let read = reader_pool::<Sqlite>(health)
            .connect_with(options.read_only(false))
            .await?;
        Ok((Pool::Sqlite(write), Pool::Sqlite(read)))
    }

    /// (writer, readers) on a PostgreSQL server. `durability: normal` is
    /// `synchronous_commit = off` there: a commit returns before its WAL reaches the disk, and a
    /// crash of the server (not of this service) can lose the last moments, as on SQLite.
    async fn open_postgres(
        database_url: &str,
        durability: Durability,
        health: &health::WriteHealth,
    ) -> Result<(Pool, Pool), StoreError> {
        let options = PgConnectOptions::from_str(database_url)?
            .application_name("paiid-alerts")
            .statement_cache_capacity(256);
        let write_options = options.clone().options([(
            "synchronous_commit",
            match durability {
                Durability::Normal => "off",
                Durability::Full => "on",
            },
        )]);
        let write = writer_pool::<Postgres>(health)
            .connect_with(write_options)
            .await?;
        migrations(BackendKind::Postgres).run(&write).await?;
        let read = reader_pool::<Postgres>(health)
            .connect_with(options)
            .await?;
        Ok((Pool::Postgres(write), Pool::Postgres(read)))
    }

    /// Begins a write. On SQLite, `IMMEDIATE` takes the write lock at once, so a
    /// read-modify-write inside the transaction sees no other writer's change (there is none:
    /// one writer connection).
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
        let tx = match &self.write {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                // The database's one writer, across replicas: see [`WRITE_LOCK_KEY`].
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK_KEY)
                    .execute(&mut *tx)
                    .await?;
                Tx::Postgres(tx)
            }
        };
        Ok(WriteTx {
            tx,
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
        on!(&mut tx, |c, Db| {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ('write_probe', $1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            .bind(now_ms.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        Ok(())
    }

    /// Database reachable, migrations applied, and the last write succeeded.
    pub async fn ready(&self) -> Result<(), StoreError> {
        if let Some(f) = self.health.failing() {
            return Err(StoreError::NotWritable(f));
        }
        let (applied, expected) = self.read.migrations_applied().await?;
        if applied < expected {
            return Err(StoreError::Corrupt(format!(
                "{applied} of {expected} migrations applied"
            )));
        }
        Ok(())
    }

    pub fn kind(&self) -> BackendKind {
        self.read.kind()
    }

    /// Whether other replicas may write this database between this replica's writes
    /// (PostgreSQL): what a writer keeps in memory between transactions (the next ids, the rate
    /// windows) must then be brought up to date at the start of each.
    pub fn shared(&self) -> bool {
        self.kind() == BackendKind::Postgres
    }

    #[cfg(test)]
    pub(crate) fn url_for_tests(&self) -> &str {
        &self.url
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}
