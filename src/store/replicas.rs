//! Wake-ups between the replicas of a shared (PostgreSQL) database: a webhook taken in by one
//! replica may be sent by another, and an incident opened on one falls due on every replica's
//! scheduler. `NOTIFY` on a commit that made work, `LISTEN` on every replica; the workers'
//! own polls stay as the fallback, so a wake-up lost with a connection costs latency, not work.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::{Pool, Store, StoreError};

/// The `NOTIFY` channel; the payload names the task (`signal::Wake::as_str`).
const CHANNEL: &str = "paiid_alerts_wake";

impl Store {
    /// Tells every replica listening on this database to wake `what` (PostgreSQL; nothing on
    /// SQLite, which one process serves). Sent on its own, outside any transaction, after the
    /// commit that made the work; best effort (see the module's note).
    pub fn tell_replicas(&self, what: &'static str) {
        let Pool::Postgres(pool) = &self.read.pool else {
            return;
        };
        let pool = pool.clone();
        tokio::spawn(async move {
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(what)
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "telling the other replicas failed; they poll");
            }
        });
    }

    /// Listens for the other replicas' wake-ups until `cancel`, calling `on_wake` with each
    /// payload, and with `None` after the connection was lost and made again (wake-ups may have
    /// been missed: look at everything). `None` on SQLite.
    pub fn spawn_listener(
        &self,
        on_wake: impl Fn(Option<&str>) + Send + 'static,
        cancel: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let Pool::Postgres(pool) = &self.read.pool else {
            return None;
        };
        let pool = pool.clone();
        Some(tokio::spawn(async move {
            let mut listener: Option<PgListener> = None;
            while !cancel.is_cancelled() {
                let Some(l) = listener.as_mut() else {
                    match connect(&pool).await {
                        Ok(l) => {
                            listener = Some(l);
                            on_wake(None);
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "listening for other replicas failed; retrying in 1 s");
                            tokio::select! {
                                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                                _ = cancel.cancelled() => {}
                            }
                        }
                    }
                    continue;
                };
                tokio::select! {
                    n = l.try_recv() => match n {
                        Ok(Some(n)) => on_wake(Some(n.payload())),
                        // The connection was lost; `try_recv` makes it again next time.
                        Ok(None) => on_wake(None),
                        Err(e) => {
                            tracing::debug!(error = %e, "the replicas' wake-up channel failed");
                            listener = None;
                        }
                    },
                    _ = cancel.cancelled() => {}
                }
            }
        }))
    }
}

async fn connect(pool: &sqlx::PgPool) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

/// Tables whose statistics the hot statements' plans depend on (the outbox claim's turn check,
/// the scheduler's due read, intake's lookups).
const HOT_TABLES: &[&str] = &["deliveries", "incidents", "escalations", "events"];

impl Store {
    /// Refreshes PostgreSQL's statistics of a table that changed by more than a fifth (and at
    /// least 1,000 rows) since they were taken. Autovacuum does the same, but up to a minute
    /// later: after a wave of escalations queued 40,000 deliveries at once, the planner took
    /// the outbox table for small until then and one claim ran 76 s with the write lock held
    /// (BENCHMARKS.md). `ANALYZE` samples the table without blocking reads or writes. Nothing
    /// on SQLite, whose plans the partial indexes and `INDEXED BY` fix.
    pub(crate) async fn refresh_statistics(&self) -> Result<(), StoreError> {
        let Pool::Postgres(pool) = &self.read.pool else {
            return Ok(());
        };
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname = ANY($1) \
             AND n_mod_since_analyze >= GREATEST(1000, n_live_tup / 5)",
        )
        .bind(HOT_TABLES)
        .fetch_all(pool)
        .await?;
        for table in stale {
            // The name comes from the catalog and is one of HOT_TABLES.
            if HOT_TABLES.contains(&table.as_str()) {
                sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
                    .execute(pool)
                    .await?;
                tracing::debug!(table, "statistics refreshed");
            }
        }
        Ok(())
    }
}
