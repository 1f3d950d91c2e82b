//! `paiid-alerts migrate-db`: the upgrade path from SQLite to PostgreSQL. Copies every table of
//! a SQLite database (incidents, episodes, events, deliveries and their attempts, escalations,
//! digests, silences, bundles, settings such as the ack signing key) into an empty PostgreSQL
//! database, in one PostgreSQL transaction, then compares the row count of every table.
//!
//! The source is opened read-only and left as it was; a source an older version left is refused
//! (`serve` upgrades it first). The target is migrated to this version's schema and must hold no
//! rows: a copy never merges. Opening the target as a store takes its one-replica lock, so no
//! service can be running on it meanwhile.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, PgConnection, QueryBuilder, Row};

use super::{BackendKind, Durability, Reader, Store, StoreError};

/// The tables in an order in which every reference points to a row already copied. Each table's
/// columns are read from the target (PostgreSQL), whose schema is the SQLite one's end state.
/// `incidents.storm_id` points at incidents too (a storm is opened after its members): it is
/// copied empty and set in a second pass.
const TABLES: &[&str] = &[
    "settings",
    "silences",
    "incidents",
    "events",
    "timeline",
    "deliveries",
    "delivery_attempts",
    "escalations",
    "digests",
    "inbound_webhooks",
    "remote_refs",
    "unparsed_shapes",
    "bundles",
    "bundle_members",
    "watch_state",
    "interval_starts",
];

/// Tables whose `id` PostgreSQL numbers (an identity): its sequence continues after the copy.
const IDENTITIES: &[&str] = &[
    "silences",
    "timeline",
    "deliveries",
    "delivery_attempts",
    "escalations",
    "bundles",
];

/// Rows per `INSERT`: PostgreSQL takes at most 65,535 parameters in one statement.
const BATCH_PARAMS: usize = 30_000;

/// One table's row count in the source and, after the copy, in the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub source: i64,
    pub target: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateDbError {
    #[error("--from must be a SQLite URL (sqlite://...)")]
    SourceNotSqlite,
    #[error("--to must be a PostgreSQL URL (postgres://...)")]
    TargetNotPostgres,
    #[error("the target database is not empty: {table} holds {rows} rows (a copy never merges)")]
    TargetNotEmpty { table: &'static str, rows: i64 },
    #[error("the copy does not add up: {0}")]
    CountsDiffer(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MigrateDbError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Db(e))
    }
}

/// A column value as PostgreSQL stores it (its `data_type` in `information_schema`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    BigInt,
    Double,
    Text,
    Bytes,
}

impl ColumnType {
    fn of(data_type: &str) -> Result<Self, MigrateDbError> {
        match data_type {
            "bigint" => Ok(Self::BigInt),
            "double precision" => Ok(Self::Double),
            "text" => Ok(Self::Text),
            "bytea" => Ok(Self::Bytes),
            other => Err(StoreError::Corrupt(format!(
                "migrate-db does not know the column type {other}"
            ))
            .into()),
        }
    }
}

enum Value {
    BigInt(Option<i64>),
    Double(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Value {
    fn read(row: &SqliteRow, i: usize, ty: ColumnType) -> Result<Self, sqlx::Error> {
        Ok(match ty {
            ColumnType::BigInt => Self::BigInt(row.try_get(i)?),
            ColumnType::Double => Self::Double(row.try_get(i)?),
            ColumnType::Text => Self::Text(row.try_get(i)?),
            ColumnType::Bytes => Self::Bytes(row.try_get(i)?),
        })
    }
}

/// Copies the SQLite database at `from` into the empty PostgreSQL database at `to`; the row
/// counts of every table, equal on both sides.
pub async fn migrate_sqlite_to_postgres(
    from: &str,
    to: &str,
) -> Result<Vec<TableCount>, MigrateDbError> {
    if BackendKind::of_url(from).ok() != Some(BackendKind::Sqlite) {
        return Err(MigrateDbError::SourceNotSqlite);
    }
    if BackendKind::of_url(to).ok() != Some(BackendKind::Postgres) {
        return Err(MigrateDbError::TargetNotPostgres);
    }
    let source = Reader::open_read_only(from).await?;
    let Some(source_pool) = source.sqlite_pool().cloned() else {
        return Err(MigrateDbError::SourceNotSqlite);
    };
    // Migrates the target and holds its one-replica lock until the copy is done.
    let target = Store::open(to, Durability::Full).await?;
    let mut conn =
        PgConnection::connect_with(&PgConnectOptions::from_str(to).map_err(StoreError::from)?)
            .await?;
    let result = copy(&source_pool, &mut conn).await;
    let _ = conn.close().await;
    target.close().await;
    source.close().await;
    result
}

async fn copy(
    source: &sqlx::SqlitePool,
    target: &mut PgConnection,
) -> Result<Vec<TableCount>, MigrateDbError> {
    for &table in TABLES {
        let rows = count(&mut *target, table).await?;
        if rows > 0 {
            return Err(MigrateDbError::TargetNotEmpty { table, rows });
        }
    }
    let mut tx = target.begin().await?;
    for &table in TABLES {
        copy_table(source, &mut tx, table).await?;
    }
    // Storms: their members point at them (`storm_id`), set once every incident is there.
    let storms: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, storm_id FROM incidents WHERE storm_id IS NOT NULL ORDER BY id")
            .fetch_all(source)
            .await?;
    for chunk in storms.chunks(BATCH_PARAMS / 2) {
        let mut q = QueryBuilder::<sqlx::Postgres>::new(
            "UPDATE incidents SET storm_id = m.storm_id FROM (",
        );
        q.push_values(chunk, |mut b, (id, storm)| {
            b.push_bind(*id).push_bind(*storm);
        });
        q.push(") AS m(id, storm_id) WHERE incidents.id = m.id");
        q.build().execute(&mut *tx).await?;
    }
    for &table in IDENTITIES {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
             COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        )))
        .execute(&mut *tx)
        .await?;
    }
    let mut counts = Vec::with_capacity(TABLES.len());
    for &table in TABLES {
        let source_rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(source)
                .await?;
        counts.push(TableCount {
            table,
            source: source_rows,
            target: count(&mut tx, table).await?,
        });
    }
    let differ: Vec<String> = counts
        .iter()
        .filter(|c| c.source != c.target)
        .map(|c| {
            format!(
                "{}: {} in SQLite, {} in PostgreSQL",
                c.table, c.source, c.target
            )
        })
        .collect();
    if !differ.is_empty() {
        // Dropped without a commit: the target is left empty, as it was.
        return Err(MigrateDbError::CountsDiffer(differ.join("; ")));
    }
    tx.commit().await?;
    Ok(counts)
}

async fn count(conn: &mut PgConnection, table: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(conn)
        .await
}

/// Copies one table, streaming the source in batches (a table of events with their bodies need
/// not fit in memory).
async fn copy_table(
    source: &sqlx::SqlitePool,
    target: &mut PgConnection,
    table: &'static str,
) -> Result<(), MigrateDbError> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *target)
    .await?;
    let types = columns
        .iter()
        .map(|(_, t)| ColumnType::of(t))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let list = names.join(", ");
    // The storm of a member is set in a second pass (see `copy`).
    let select: Vec<String> = names
        .iter()
        .map(|n| {
            if table == "incidents" && *n == "storm_id" {
                "NULL AS storm_id".to_string()
            } else {
                (*n).to_string()
            }
        })
        .collect();
    let sql = format!("SELECT {} FROM {table}", select.join(", "));
    let per_batch = (BATCH_PARAMS / names.len().max(1)).max(1);
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(source);
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(per_batch);
    loop {
        let next = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx));
        let row = tokio::time::timeout(Duration::from_secs(60), next)
            .await
            .map_err(|_| StoreError::Corrupt(format!("reading {table} stalled")))?
            .transpose()?;
        let done = row.is_none();
        if let Some(row) = row {
            batch.push(
                types
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| Value::read(&row, i, *ty))
                    .collect::<Result<_, _>>()?,
            );
        }
        if batch.len() >= per_batch || (done && !batch.is_empty()) {
            let mut q =
                QueryBuilder::<sqlx::Postgres>::new(format!("INSERT INTO {table} ({list}) "));
            q.push_values(batch.drain(..), |mut b, row| {
                for v in row {
                    match v {
                        Value::BigInt(v) => b.push_bind(v),
                        Value::Double(v) => b.push_bind(v),
                        Value::Text(v) => b.push_bind(v),
                        Value::Bytes(v) => b.push_bind(v),
                    };
                }
            });
            q.build().execute(&mut *target).await?;
        }
        if done {
            return Ok(());
        }
    }
}
