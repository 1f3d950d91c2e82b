//! WAL checkpoints off the commit path.
//!
//! SQLite's default copies the WAL back into the database inside whichever `COMMIT` pushes the
//! WAL past 1,000 pages: that commit, and every webhook waiting on it, then also waits for the
//! copy and its `fsync` (a quarter of the writer's SQLite time in the issue-10 profile, and the
//! slowest commits). The writer connection turns that off (`wal_autocheckpoint=0`, see
//! [`super::Store::open`]) and this task checkpoints instead, `PASSIVE`ly, from a read
//! connection: it copies what no reader still needs without taking the write lock, so intake
//! keeps committing while it runs.
//!
//! Should passive checkpoints keep falling behind (a reader holding an old snapshot for long),
//! a WAL past [`RESTART_AFTER_PAGES`] gets a `RESTART` checkpoint so the file cannot grow without
//! bound. `RESTART` holds the write lock while it waits for readers (SQLite: "blocks concurrent
//! writers while it is running"), so it waits at most [`RESTART_WAIT`] for them, not the
//! connection's busy timeout, and is not tried again for [`RESTART_BACKOFF`]: a slow reader
//! then costs intake at most a few tens of milliseconds now and then, never seconds.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Store, StoreError};

/// How often the WAL is checkpointed. At the intake's peak (~20 MB of WAL a second) this keeps
/// it to a few MB.
const EVERY: Duration = Duration::from_millis(250);
/// About 64 MB of 4 KiB pages.
const RESTART_AFTER_PAGES: i64 = 16_384;
/// How long a `RESTART` checkpoint waits for readers (and so holds intake's commits).
const RESTART_WAIT: Duration = Duration::from_millis(25);
/// The pause after a `RESTART` before another is tried.
const RESTART_BACKOFF: Duration = Duration::from_secs(5);

/// What one `PRAGMA wal_checkpoint` reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// True when it could not finish because another connection held a lock it needed.
    pub busy: bool,
    /// Frames in the WAL.
    pub wal_pages: i64,
    /// Frames copied into the database so far.
    pub checkpointed: i64,
}

impl Checkpoint {
    /// Frames still only in the WAL.
    pub(crate) fn behind(&self) -> i64 {
        (self.wal_pages - self.checkpointed).max(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Passive,
    Restart,
}

impl Store {
    /// Runs one checkpoint on a read connection. PostgreSQL checkpoints by itself: there it
    /// reports an empty WAL.
    pub(crate) async fn checkpoint(&self, mode: Mode) -> Result<Checkpoint, StoreError> {
        let Some(pool) = self.read.sqlite_pool() else {
            return Ok(Checkpoint::default());
        };
        let sql = match mode {
            Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            Mode::Restart => "PRAGMA wal_checkpoint(RESTART)",
        };
        let mut conn = pool.acquire().await?;
        let (busy, wal_pages, checkpointed): (i64, i64, i64) = match mode {
            Mode::Passive => sqlx::query_as(sql).fetch_one(&mut *conn).await?,
            Mode::Restart => {
                let usual: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                    .fetch_one(&mut *conn)
                    .await?;
                let wait = RESTART_WAIT.as_millis();
                sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {wait}")))
                    .execute(&mut *conn)
                    .await?;
                let done = sqlx::query_as(sql).fetch_one(&mut *conn).await;
                // The connection goes back to the pool: give it its usual patience back first.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {usual}"
                )))
                .execute(&mut *conn)
                .await?;
                done?
            }
        };
        Ok(Checkpoint {
            busy: busy != 0,
            wal_pages,
            checkpointed,
        })
    }
}

/// Checkpoints every [`EVERY`] until `cancel`. A failure (full disk, I/O error) is logged at
/// debug level and tried again at the next tick: the write-health tracker already reports the
/// outage, and a WAL not yet copied loses nothing.
pub(crate) fn spawn_checkpointer(
    store: Store,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if store.kind() != super::BackendKind::Sqlite {
            return;
        }
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_restart: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => return,
            }
            match store.checkpoint(Mode::Passive).await {
                Ok(c)
                    if c.behind() > RESTART_AFTER_PAGES
                        && last_restart.is_none_or(|t| t.elapsed() >= RESTART_BACKOFF) =>
                {
                    last_restart = Some(tokio::time::Instant::now());
                    tracing::warn!(
                        wal_pages = c.wal_pages,
                        behind = c.behind(),
                        "WAL checkpoints fall behind; restarting the WAL"
                    );
                    match store.checkpoint(Mode::Restart).await {
                        Ok(r) if r.busy => tracing::warn!(
                            behind = r.behind(),
                            "a reader holds an old snapshot: the WAL keeps growing until it ends"
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(error = %e, "WAL restart checkpoint failed; retrying")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed; retrying"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Durability;

    async fn wal_pages(store: &Store) -> i64 {
        store
            .checkpoint(Mode::Passive)
            .await
            .map(|c| c.wal_pages)
            .expect("checkpoint")
    }

    #[tokio::test]
    async fn commits_leave_the_wal_to_the_checkpointer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Durability::Full).await.expect("open");
        // Well past SQLite's default auto-checkpoint (1,000 pages): with it, some commit would
        // have copied the WAL back and started it over, and the WAL would hold fewer pages.
        for i in 0..60 {
            let mut tx = store.begin_write().await.expect("begin");
            sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?)")
                .bind(format!("k{i}"))
                .bind("x".repeat(100_000))
                .execute(&mut *tx)
                .await
                .expect("insert");
            tx.commit().await.expect("commit");
        }
        let c = store.checkpoint(Mode::Passive).await.expect("checkpoint");
        assert!(
            c.wal_pages > 1_000,
            "no commit checkpointed by itself: {c:?}"
        );
        assert_eq!(c.behind(), 0, "the passive checkpoint copied it all: {c:?}");
        // The next write starts the WAL over from its beginning.
        let mut tx = store.begin_write().await.expect("begin");
        sqlx::query("INSERT INTO settings (key, value) VALUES ('after', 'x')")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        assert!(wal_pages(&store).await < 10, "the WAL was reused");
    }

    #[tokio::test]
    async fn a_restart_held_up_by_a_reader_gives_up_soon_and_leaves_writers_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, Durability::Full).await.expect("open");
        let write = |i: usize| {
            let store = store.clone();
            async move {
                let mut tx = store.begin_write().await.expect("begin");
                sqlx::query("INSERT INTO settings (key, value) VALUES (?, 'x')")
                    .bind(format!("k{i}"))
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
                tx.commit().await.expect("commit");
            }
        };
        write(0).await;
        // A reader on an old snapshot: a RESTART must wait for it to end.
        let mut reader = store.read.begin().await.expect("read tx");
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM settings")
            .fetch_one(&mut *reader)
            .await
            .expect("read");
        write(1).await;
        let started = std::time::Instant::now();
        let c = store.checkpoint(Mode::Restart).await.expect("checkpoint");
        assert!(c.busy, "the reader held it up: {c:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "gave up after its short wait, not the 10 s busy timeout: {:?}",
            started.elapsed()
        );
        let started = std::time::Instant::now();
        write(2).await;
        assert!(started.elapsed() < Duration::from_secs(2), "writers go on");
        reader.rollback().await.expect("end read");
        let c = store.checkpoint(Mode::Restart).await.expect("checkpoint");
        assert!(!c.busy, "{c:?}");
    }
}
